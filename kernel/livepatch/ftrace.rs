// SPDX-License-Identifier: GPL-2.0-or-later

//! Redirection of patched functions through ftrace.
//!
//! Every patched address is a *site*: the stack of the functions that patch
//! it, newest first.  All sites share one `ftrace_ops`, defined by the C glue
//! as a static object; its filter holds the addresses of the sites.  A patch
//! therefore costs ftrace one filter update for all its functions, and a
//! patch that goes away one more, instead of one registration (and one
//! RCU-tasks wait on teardown) per function.
//!
//! Each site holds where its calls go, recomputed under klp_mutex whenever
//! its stack or the transition flag of its newest function changes: one
//! target while that function is not in transition (`Site::fast`), and
//! while it is, one for each patch state a task can be in (`Site::trans`),
//! as the consistency model says (`state_plan::runs_top`).
//!
//! On every call of a patched function the glue's notrace handler takes
//! ftrace's recursion lock (which also disables preemption), finds the site
//! in the glue's fixed hash table of sites, read under RCU, and reads the
//! target: `fast`, or during a transition the entry of `trans` for the
//! calling task's patch state.  The lookup and the reads are C, inline in
//! the handler, because a call into Rust would cost more than they do
//! (rustc cannot inline across the languages); everything they read is
//! written here, and a removed site is freed after a grace period.

use crate::handles::{KlpFunc, KlpObject, KlpPatch};
use crate::list::{self, container_of};
use crate::sys::{glue, KlpLock, Locked, Name};
use crate::{state_plan, transition};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use kernel::bindings;
use kernel::error::{code::*, Error, Result};
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;

/// One patched address.  The fields up to `trans` are the
/// `struct klp_site_head` of `klp_glue.h`, which the glue's handler reads.
#[repr(C)]
struct Site {
    /// Next site of the hash bucket; published with release ordering.
    next: AtomicPtr<Site>,
    /// The ftrace location: the `ip` that the handler is called with.
    ip: c_ulong,
    /// Where every call goes while the newest function is not in
    /// transition: its `new_func`, or 0 (the original) for a nop;
    /// [`IN_TRANSITION`] while it is in transition.  Written under
    /// klp_mutex with release ordering after the change it reflects (and
    /// after `trans`).
    fast: AtomicUsize,
    /// Where a task's calls go while the newest function is in transition,
    /// by the task's `patch_state` - `KLP_TRANSITION_IDLE`; the last entry
    /// (no patch state, for the handler's masked index) stays 0.
    trans: [AtomicUsize; 4],
    /// `klp_func.stack_node`s, newest first.
    func_stack: bindings::list_head,
    /// For freeing after a grace period.
    rcu: bindings::callback_head,
}

// The layout of `struct klp_site_head`.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Site, next) == 0);
    assert!(offset_of!(Site, ip) == size_of::<usize>());
    assert!(offset_of!(Site, fast) == 2 * size_of::<usize>());
    assert!(offset_of!(Site, trans) == 3 * size_of::<usize>());
};

/// `Site::fast` while the newest function is in transition: the handler
/// then looks at the calling task's patch state (`KLP_SITE_IN_TRANSITION`;
/// 1 is no function's address).
const IN_TRANSITION: usize = 1;

/// How many sites exist, and so whether the ops is registered with ftrace.
static NR_SITES: Locked<usize> = Locked::new(0);

/// The glue's hash bucket of `ip`: singly linked sites, changed under
/// klp_mutex, read by the handler under RCU.
fn bucket(ip: c_ulong) -> &'static AtomicPtr<Site> {
    // SAFETY: the glue returns an element of its static array of bucket
    // heads, pointers that it only reads with READ_ONCE() semantics
    // (rcu_dereference_raw()); `Site` begins with its `klp_site_head`.
    unsafe { AtomicPtr::from_ptr(glue::klp_glue_site_bucket(ip).cast()) }
}

/// The site of `ip`.  The caller holds klp_mutex or is in an RCU read-side
/// (or preemption-disabled) region.
fn find_site(ip: c_ulong) -> *mut Site {
    let mut cur = bucket(ip).load(Ordering::Acquire);
    while !cur.is_null() {
        // SAFETY: sites stay allocated until a grace period after they are
        // unlinked.
        unsafe {
            if (*cur).ip == ip {
                return cur;
            }
            cur = (*cur).next.load(Ordering::Acquire);
        }
    }
    core::ptr::null_mut()
}

/// Initialisation at boot: nothing to do, the table is static.
pub(crate) fn init() {}

/// The patch states a task can be in, in the order of `Site::trans`.
const TASK_STATES: [c_int; 3] = [transition::IDLE, transition::UNPATCHED, transition::PATCHED];

/// Recomputes the targets of `site` after its stack or the transition flag
/// of its newest function changed.  An empty stack (only while the site is
/// set up, before the filter update) sends every call to the original.
fn refresh(_lock: &KlpLock, site: *mut Site) {
    // SAFETY: `site` is a live site; klp_mutex is held (`_lock`): its stack
    // does not change meanwhile.
    let (head, node) = unsafe {
        let head = &raw mut (*site).func_stack;
        (head, (*head).next)
    };
    let (top, prev, in_transition) = if node == head {
        (0, 0, false)
    } else {
        // SAFETY: as above; the entries of the stack are the functions of
        // registered patches, whose flags change only under the mutex.
        let f = unsafe { KlpFunc::from_stack_node(node) };
        // SAFETY: as above, for the next entry.
        let next = unsafe { (*node).next };
        let prev = if next == head {
            0
        } else {
            // SAFETY: as above.
            unsafe { KlpFunc::from_stack_node(next) }.call_target()
        };
        (f.call_target(), prev, f.transition())
    };
    // SAFETY: as above; the handler reads only the atomic fields.
    let site = unsafe { &*site };
    // A handler that read an older `fast` may see these stores: each entry
    // is a target that the state it stands for runs before or after the
    // change (the functions stay until a synchronize_transition() after
    // they leave the stack).
    for (slot, state) in site.trans.iter().zip(TASK_STATES) {
        let runs_top = state_plan::runs_top(true, transition::to_target(state));
        slot.store(if runs_top { top } else { prev }, Ordering::Relaxed);
    }
    let fast = if in_transition { IN_TRANSITION } else { top };
    site.fast.store(fast, Ordering::Release);
}

/// Updates the handler's shortcut after the transition flag of `func`
/// changed (nothing to do while `func` is not on a stack).
pub(crate) fn transition_changed(lock: &KlpLock, func: &KlpFunc) {
    if !func.patched() {
        return;
    }
    let site = find_site(ftrace_loc(func));
    if !site.is_null() {
        refresh(lock, site);
    }
}

fn ftrace_loc(func: &KlpFunc) -> c_ulong {
    // SAFETY: ftrace_location() only looks the address up; `old_func` is
    // the resolved address of a kernel function.
    unsafe { bindings::ftrace_location(func.old_func() as c_ulong) }
}

/// The function that a task runs when `func` is not in effect for it: the
/// previous patch's version, or `None` for the original function.
pub(crate) fn previous<'a>(_lock: &'a KlpLock, func: &'a KlpFunc) -> Option<&'a KlpFunc> {
    let site = find_site(ftrace_loc(func));
    if site.is_null() {
        return None;
    }
    // SAFETY: klp_mutex is held (`_lock`): the stack of the site, on which
    // `func` is, does not change meanwhile; its entries are functions of
    // registered patches.
    unsafe {
        let next = (*func.stack_node()).next;
        if next == &raw mut (*site).func_stack {
            None
        } else {
            Some(KlpFunc::from_stack_node(next))
        }
    }
}

/// Frees a site after the grace period that follows its unlinking.
///
/// # Safety
/// Called by RCU for `Site::rcu`.
unsafe extern "C" fn free_site(rcu: *mut bindings::callback_head) {
    let site = container_of!(rcu, Site, rcu);
    // SAFETY: no reader can see the site any more.
    unsafe { bindings::kfree(site.cast()) };
}

/// Unlinks `site` from its bucket and frees it after a grace period.
fn drop_site(lock: &KlpLock, site: *mut Site) {
    // SAFETY: klp_mutex held: the buckets change only under it.
    unsafe {
        let mut link: &AtomicPtr<Site> = bucket((*site).ip);
        loop {
            let cur = link.load(Ordering::Relaxed);
            if cur.is_null() {
                break;
            }
            if cur == site {
                link.store((*site).next.load(Ordering::Relaxed), Ordering::Release);
                break;
            }
            link = &(*cur).next;
        }
        bindings::call_rcu(&raw mut (*site).rcu, Some(free_site));
    }
    NR_SITES.write(lock, NR_SITES.read(lock) - 1);
}

/// A batch of addresses for one ftrace filter update.
struct Ips {
    buf: *mut c_ulong,
    len: usize,
    cap: usize,
    /// The name of the first function of the batch, for messages.
    first: Name,
}

impl Ips {
    fn with_capacity(cap: usize) -> Result<Ips> {
        if cap == 0 {
            return Ok(Ips {
                buf: core::ptr::null_mut(),
                len: 0,
                cap: 0,
                first: Name(core::ptr::null()),
            });
        }
        let bytes = cap
            .checked_mul(core::mem::size_of::<c_ulong>())
            .ok_or(ENOMEM)?;
        // SAFETY: a plain allocation, freed in `drop`.
        let buf = unsafe { bindings::krealloc(core::ptr::null(), bytes, bindings::GFP_KERNEL) };
        if buf.is_null() {
            return Err(ENOMEM);
        }
        Ok(Ips {
            buf: buf.cast(),
            len: 0,
            cap,
            first: Name(core::ptr::null()),
        })
    }

    fn push(&mut self, ip: c_ulong, name: Name) {
        if self.len == 0 {
            self.first = name;
        }
        if self.len < self.cap {
            // SAFETY: within the allocation.
            unsafe { *self.buf.add(self.len) = ip };
            self.len += 1;
        }
    }
}

impl Drop for Ips {
    fn drop(&mut self) {
        if !self.buf.is_null() {
            // SAFETY: allocated by krealloc in `with_capacity`.
            unsafe { bindings::kfree(self.buf.cast()) };
        }
    }
}

/// " and N other(s)" after the first function's name in a message about
/// a batch of `n` functions.
struct Others(usize);

impl core::fmt::Display for Others {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 > 1 {
            write!(f, " and {} other(s)", self.0 - 1)
        } else {
            Ok(())
        }
    }
}

/// The ftrace filter update: adds (or removes) the addresses of `ips` to the
/// shared ops, registering it with ftrace when its first addresses come and
/// unregistering it before its last ones go (an ops with an empty filter
/// would trace every function).
fn update_filter(lock: &KlpLock, ips: &Ips, remove: bool) -> Result {
    if ips.len == 0 {
        return Ok(());
    }
    // The glue's ops is static; its filter changes and (un)registrations are
    // serialised by klp_mutex (`lock`), and ftrace takes its own locks.
    // SAFETY: returns the address of that static ops.
    let fops = unsafe { glue::klp_glue_fops() };
    let n = ips.len as core::ffi::c_uint;
    if remove {
        if NR_SITES.read(lock) == 0 {
            // SAFETY: the ops is registered: it had sites until now.
            let ret = unsafe { bindings::unregister_ftrace_function(fops) };
            if ret != 0 {
                pr_err!("failed to unregister the ftrace handler ({})\n", ret);
            }
        }
        // SAFETY: `ips.buf` holds `n` addresses.
        let ret = unsafe { bindings::ftrace_set_filter_ips(fops, ips.buf, n, 1, 0) };
        if ret != 0 {
            pr_err!(
                "failed to remove {} functions from the ftrace filter ({})\n",
                n,
                ret
            );
        }
        return Ok(());
    }
    let first = NR_SITES.read(lock) == ips.len;
    // SAFETY: as above.
    let ret = unsafe { bindings::ftrace_set_filter_ips(fops, ips.buf, n, 0, 0) };
    if ret != 0 {
        pr_err!(
            "failed to set ftrace filter for function '{}'{} ({})\n",
            ips.first,
            Others(ips.len),
            ret
        );
        return Err(Error::from_errno(ret));
    }
    if first {
        // SAFETY: the ops is not registered: it had no sites before this
        // batch; its filter is not empty.
        let ret = unsafe { bindings::register_ftrace_function(fops) };
        if ret != 0 {
            pr_err!(
                "failed to register ftrace handler for function '{}'{} ({})\n",
                ips.first,
                Others(ips.len),
                ret
            );
            // SAFETY: as for the filter update above.
            unsafe { bindings::ftrace_set_filter_ips(fops, ips.buf, n, 1, 0) };
            return Err(Error::from_errno(ret));
        }
    }
    Ok(())
}

/// Takes `funcs` off their sites' stacks; sites left empty are unlinked and
/// their addresses go to `gone` (when given) for the filter update.
fn unlink_funcs<'a>(
    lock: &KlpLock,
    funcs: impl Iterator<Item = &'a KlpFunc>,
    mut gone: Option<&mut Ips>,
) {
    for func in funcs {
        if !func.patched() {
            continue;
        }
        let ip = ftrace_loc(func);
        let site = find_site(ip);
        if site.is_null() {
            pr_err!("unpatching '{}': no site\n", func.display_name());
            func.set_patched(lock, false);
            continue;
        }
        // SAFETY: klp_mutex is held (`lock`): the stacks change only under
        // it; `func` is patched, so on the stack of `site`; RCU readers see
        // either the old or the new stack.
        let empty = unsafe {
            list::del_rcu(func.stack_node());
            list::is_empty(&raw const (*site).func_stack)
        };
        func.set_patched(lock, false);
        if empty {
            if let Some(g) = gone.as_deref_mut() {
                g.push(ip, func.display_name());
            }
            drop_site(lock, site);
        } else {
            refresh(lock, site);
        }
    }
}

/// Puts `funcs` on their sites' stacks, creating the missing sites, with
/// one ftrace filter update for all the new addresses.
fn link_funcs<'a>(lock: &KlpLock, funcs: impl Iterator<Item = &'a KlpFunc> + Clone) -> Result {
    let mut ips = Ips::with_capacity(funcs.clone().count())?;
    let mut res = Ok(());
    for func in funcs.clone() {
        if func.old_func().is_null() || func.patched() {
            res = Err(EINVAL);
            break;
        }
        let ip = ftrace_loc(func);
        if ip == 0 {
            pr_err!(
                "failed to find location for function '{}'\n",
                func.display_name()
            );
            res = Err(EINVAL);
            break;
        }
        let mut site = find_site(ip);
        if site.is_null() {
            // SAFETY: a zeroed site is a valid starting point.
            site = unsafe {
                bindings::krealloc(
                    core::ptr::null(),
                    core::mem::size_of::<Site>(),
                    bindings::GFP_KERNEL | bindings::__GFP_ZERO,
                )
            }
            .cast::<Site>();
            if site.is_null() {
                pr_err!("no memory to patch function '{}'\n", func.display_name());
                res = Err(ENOMEM);
                break;
            }
            // SAFETY: the site is ours until published; klp_mutex held.
            unsafe {
                // Zeroed: every call to the original until `refresh`.
                (*site).ip = ip;
                list::init(&raw mut (*site).func_stack);
                let b = bucket(ip);
                (*site)
                    .next
                    .store(b.load(Ordering::Relaxed), Ordering::Relaxed);
                b.store(site, Ordering::Release);
            }
            NR_SITES.write(lock, NR_SITES.read(lock) + 1);
            ips.push(ip, func.display_name());
        }
        // SAFETY: klp_mutex is held (`lock`): the stacks change only under
        // it; `func` is on no stack (not patched); readers see the new
        // function fully set up.
        unsafe { list::add_rcu(func.stack_node(), &raw mut (*site).func_stack) };
        func.set_patched(lock, true);
        refresh(lock, site);
    }
    if res.is_ok() {
        res = update_filter(lock, &ips, false);
    }
    if res.is_err() {
        // Nothing of this batch reached ftrace: undo it without a filter
        // update.
        unlink_funcs(lock, funcs, None);
    }
    res
}

/// Takes functions off their stacks: those of `obj`, or only its nops.
fn unpatch_object_inner(lock: &KlpLock, obj: &KlpObject, nops_only: bool) {
    let funcs = obj.funcs(lock).filter(move |f| !nops_only || f.nop());
    unpatch_funcs(lock, funcs);
    if obj.dynamic() || !nops_only {
        obj.set_patched(lock, false);
    }
}

/// Takes `funcs` off their stacks, with one filter update for the
/// addresses that no function patches any more.
fn unpatch_funcs<'a>(lock: &KlpLock, funcs: impl Iterator<Item = &'a KlpFunc> + Clone) {
    // When this allocation fails the addresses are removed one at a time.
    match Ips::with_capacity(funcs.clone().count()) {
        Ok(mut gone) => {
            unlink_funcs(lock, funcs, Some(&mut gone));
            let _ = update_filter(lock, &gone, true);
        }
        Err(_) => {
            for f in funcs {
                if let Ok(mut one) = Ips::with_capacity(1) {
                    unlink_funcs(lock, core::iter::once(f), Some(&mut one));
                    let _ = update_filter(lock, &one, true);
                } else {
                    pr_err!("no memory to unpatch a function\n");
                }
            }
        }
    }
}

/// Removes all functions of an object from their stacks.
pub(crate) fn unpatch_obj(lock: &KlpLock, obj: &KlpObject) {
    unpatch_object_inner(lock, obj, false);
}

/// Puts all functions of a loaded object on their stacks.
pub(crate) fn patch_obj(lock: &KlpLock, obj: &KlpObject) -> Result {
    if obj.patched() {
        return Err(EINVAL);
    }
    link_funcs(lock, obj.funcs(lock))?;
    obj.set_patched(lock, true);
    Ok(())
}

/// Unpatches every patched object of `patch` (only the nops with
/// `nops_only`), with one filter update for the whole patch.
pub(crate) fn unpatch_objs(lock: &KlpLock, patch: &KlpPatch, nops_only: bool) {
    let objs = patch.objects(lock).filter(|o| o.patched());
    let funcs = objs
        .clone()
        .flat_map(move |o| o.funcs(lock))
        .filter(move |f| !nops_only || f.nop());
    unpatch_funcs(lock, funcs);
    for obj in objs {
        if obj.dynamic() || !nops_only {
            obj.set_patched(lock, false);
        }
    }
}
