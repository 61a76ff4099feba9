// SPDX-License-Identifier: GPL-2.0-or-later

//! Redirection of patched functions through ftrace.
//!
//! Every patched address has one `ftrace_ops` and a stack of the functions
//! that patch it, newest first.  The handler runs on every call of a patched
//! function: it takes the newest function, or during a transition the one
//! that matches the calling task's patch state, and makes the call return
//! into it.  The handler takes no lock and allocates nothing; the stack is
//! read under the RCU-like protection of the ftrace trampoline (preemption
//! is disabled by the recursion lock), and writers wait for that with
//! `klp_synchronize_transition()`.

use crate::list::{self, container_of};
use crate::objects::{self, Func, Object, Patch};
use crate::sys::{self, glue, KlpLock, Locked, Name};
use core::sync::atomic::{fence, AtomicBool, Ordering};
use kernel::bindings;
use kernel::error::{code::*, Error, Result};
use kernel::ffi::c_ulong;
use kernel::prelude::*;

/// The ftrace registration of one patched address.
#[repr(C)]
struct KlpOps {
    /// On [`OPS`].
    node: bindings::list_head,
    /// `klp_func.stack_node`s, newest first.
    func_stack: bindings::list_head,
    fops: bindings::ftrace_ops,
}

/// All [`KlpOps`]; changed under `klp_mutex`.
static OPS: Locked<bindings::list_head> = Locked::new(bindings::list_head {
    next: core::ptr::null_mut(),
    prev: core::ptr::null_mut(),
});

/// Initialises the list of ops; called once at boot.
pub(crate) fn init() {
    // SAFETY: called once before anything else uses `OPS`.
    unsafe { list::init(OPS.as_ptr()) };
}

static HANDLER_WARNED: AtomicBool = AtomicBool::new(false);

#[cold]
fn handler_bug(what: &str) {
    if !HANDLER_WARNED.swap(true, Ordering::Relaxed) {
        pr_err!("ftrace handler: {}\n", what);
    }
}

/// The ftrace handler of every patched function.
///
/// # Safety
/// Called by ftrace only, for the `fops` of a [`KlpOps`].
unsafe extern "C" fn handler(
    ip: c_ulong,
    parent_ip: c_ulong,
    fops: *mut bindings::ftrace_ops,
    fregs: *mut bindings::ftrace_regs,
) {
    let ops = container_of!(fops, KlpOps, fops);
    // SAFETY: ftrace calls us with preemption possible; the recursion lock
    // also disables preemption, which the func_stack readers rely on.
    let bit = unsafe { glue::klp_glue_recursion_trylock(ip, parent_ip) };
    if bit < 0 {
        handler_bug("recursion");
        return;
    }
    // SAFETY: the ops stays allocated while it is registered, and funcs on
    // its stack stay valid until a synchronize_transition() after removal.
    unsafe {
        let head = &raw mut (*ops).func_stack;
        let mut node = list::first_rcu(head);
        if node.is_null() {
            handler_bug("empty function stack");
            glue::klp_glue_recursion_unlock(bit);
            return;
        }
        let mut func: Func = container_of!(node, bindings::klp_func, stack_node);
        // Order the func_stack read before the func->transition read
        // (the writer orders them in init_transition/patch_func).
        fence(Ordering::Acquire);
        if core::ptr::read_volatile(&raw const (*func).transition) {
            // Order func->transition before task->patch_state (see
            // klp_update_patch_state and __klp_disable_patch in the C core).
            fence(Ordering::Acquire);
            if sys::patch_state(sys::current()) == bindings::KLP_TRANSITION_UNPATCHED as i32 {
                // The task still runs the previous version: the next one
                // on the stack, or the original function when none.
                node = list::next_rcu(node);
                if node == head {
                    glue::klp_glue_recursion_unlock(bit);
                    return;
                }
                func = container_of!(node, bindings::klp_func, stack_node);
            }
        }
        if !(*func).nop {
            glue::klp_glue_set_ip(fregs, (*func).new_func as c_ulong);
        }
        glue::klp_glue_recursion_unlock(bit);
    }
}

/// Finds the ops of a patched address.
fn find_ops(_lock: &KlpLock, old_func: *mut kernel::ffi::c_void) -> Option<*mut KlpOps> {
    // SAFETY: `OPS` and the stacks change only under klp_mutex, held.
    unsafe { list::iter(OPS.as_ptr()) }
        .map(|l| container_of!(l, KlpOps, node))
        .find(|&ops| {
            // SAFETY: as above; an ops always has at least one function.
            unsafe {
                let first = container_of!((*ops).func_stack.next, bindings::klp_func, stack_node);
                (*first).old_func == old_func
            }
        })
}

/// The function that a task runs when `func` is not in effect for it: the
/// previous patch's version, or `None` for the original function.
pub(crate) fn previous(lock: &KlpLock, func: Func) -> Option<Func> {
    // SAFETY: klp_mutex held; `func` is on a stack.
    unsafe {
        let ops = find_ops(lock, (*func).old_func)?;
        let next = (*func).stack_node.next;
        if next == &raw mut (*ops).func_stack {
            None
        } else {
            Some(container_of!(next, bindings::klp_func, stack_node))
        }
    }
}

fn ftrace_loc(func: Func) -> c_ulong {
    // SAFETY: `old_func` is the resolved address of a kernel function.
    unsafe { bindings::ftrace_location((*func).old_func as c_ulong) }
}

fn unpatch_func(lock: &KlpLock, func: Func) {
    // SAFETY: klp_mutex held; `func` belongs to a set-up object.
    let f = unsafe { &mut *func };
    if !f.patched || f.old_func.is_null() {
        pr_err!("unpatching '{}': not patched\n", Name(f.old_name));
        return;
    }
    let Some(ops) = find_ops(lock, f.old_func) else {
        pr_err!("unpatching '{}': no ftrace ops\n", Name(f.old_name));
        return;
    };
    // SAFETY: as above; an ops whose last function goes is unregistered
    // before it is freed, and unregister_ftrace_function() waits for the
    // handlers that may still run on it.
    unsafe {
        let singular = (*ops).func_stack.next == (*ops).func_stack.prev;
        if singular {
            let loc = ftrace_loc(func);
            if bindings::unregister_ftrace_function(&raw mut (*ops).fops) != 0 {
                pr_err!(
                    "failed to unregister ftrace handler for '{}'\n",
                    Name(f.old_name)
                );
            }
            bindings::ftrace_set_filter_ip(&raw mut (*ops).fops, loc, 1, 0);
            list::del_rcu(&raw mut f.stack_node);
            list::init(&raw mut f.stack_node);
            list::del_init(&raw mut (*ops).node);
            bindings::kfree(ops.cast());
        } else {
            list::del_rcu(&raw mut f.stack_node);
        }
    }
    f.patched = false;
}

fn patch_func(lock: &KlpLock, func: Func) -> Result {
    // SAFETY: klp_mutex held; `func` belongs to a set-up object.
    let f = unsafe { &mut *func };
    if f.old_func.is_null() || f.patched {
        return Err(EINVAL);
    }
    if let Some(ops) = find_ops(lock, f.old_func) {
        // SAFETY: as above; readers see the new function fully set up.
        unsafe { list::add_rcu(&raw mut f.stack_node, &raw mut (*ops).func_stack) };
        f.patched = true;
        return Ok(());
    }
    let loc = ftrace_loc(func);
    if loc == 0 {
        pr_err!(
            "failed to find location for function '{}'\n",
            Name(f.old_name)
        );
        return Err(EINVAL);
    }
    // SAFETY: a zeroed KlpOps is a valid starting point for every field.
    let ops = unsafe {
        bindings::krealloc(
            core::ptr::null(),
            core::mem::size_of::<KlpOps>(),
            bindings::GFP_KERNEL | bindings::__GFP_ZERO,
        )
    } as *mut KlpOps;
    if ops.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `ops` is ours until registered; klp_mutex held for `OPS`.
    unsafe {
        (*ops).fops.func = Some(handler);
        (*ops).fops.flags = (bindings::FTRACE_OPS_FL_DYNAMIC
            | bindings::FTRACE_OPS_FL_IPMODIFY
            | bindings::FTRACE_OPS_FL_PERMANENT) as _;
        #[cfg(not(CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS))]
        {
            (*ops).fops.flags |= bindings::FTRACE_OPS_FL_SAVE_REGS as c_ulong;
        }
        list::add_tail(&raw mut (*ops).node, OPS.as_ptr());
        list::init(&raw mut (*ops).func_stack);
        list::add_rcu(&raw mut f.stack_node, &raw mut (*ops).func_stack);

        let mut ret = bindings::ftrace_set_filter_ip(&raw mut (*ops).fops, loc, 0, 0);
        if ret != 0 {
            pr_err!(
                "failed to set ftrace filter for function '{}' ({})\n",
                Name(f.old_name),
                ret
            );
        } else {
            ret = bindings::register_ftrace_function(&raw mut (*ops).fops);
            if ret != 0 {
                pr_err!(
                    "failed to register ftrace handler for function '{}' ({})\n",
                    Name(f.old_name),
                    ret
                );
                bindings::ftrace_set_filter_ip(&raw mut (*ops).fops, loc, 1, 0);
            }
        }
        if ret != 0 {
            list::del_init(&raw mut f.stack_node);
            list::del_init(&raw mut (*ops).node);
            bindings::kfree(ops.cast());
            return Err(Error::from_errno(ret));
        }
    }
    f.patched = true;
    Ok(())
}

fn unpatch_object_inner(lock: &KlpLock, obj: Object, nops_only: bool) {
    // SAFETY: klp_mutex held.
    for func in unsafe { objects::funcs(obj) } {
        // SAFETY: as above.
        let (nop, patched) = unsafe { ((*func).nop, (*func).patched) };
        if (nops_only && !nop) || !patched {
            continue;
        }
        unpatch_func(lock, func);
    }
    // SAFETY: as above.
    unsafe {
        if (*obj).dynamic || !nops_only {
            (*obj).patched = false;
        }
    }
}

/// Removes all functions of an object from their stacks.
pub(crate) fn unpatch_object(lock: &KlpLock, obj: Object) {
    unpatch_object_inner(lock, obj, false);
}

/// Puts all functions of a loaded object on their stacks.
pub(crate) fn patch_object(lock: &KlpLock, obj: Object) -> Result {
    // SAFETY: klp_mutex held.
    if unsafe { (*obj).patched } {
        return Err(EINVAL);
    }
    // SAFETY: as above.
    for func in unsafe { objects::funcs(obj) } {
        if let Err(e) = patch_func(lock, func) {
            unpatch_object(lock, obj);
            return Err(e);
        }
    }
    // SAFETY: as above.
    unsafe { (*obj).patched = true };
    Ok(())
}

/// Unpatches every patched object of `patch` (only the nops with
/// `nops_only`).
pub(crate) fn unpatch_objects(lock: &KlpLock, patch: Patch, nops_only: bool) {
    // SAFETY: klp_mutex held.
    for obj in unsafe { objects::objects(patch) } {
        // SAFETY: as above.
        if unsafe { (*obj).patched } {
            unpatch_object_inner(lock, obj, nops_only);
        }
    }
}
