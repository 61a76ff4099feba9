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
//! written here.  A removed site is freed once every CPU has scheduled
//! ([`free_dead_sites`]): the handler runs with preemption disabled, also
//! where RCU does not watch (the idle loop), so an RCU grace period would
//! not wait for it.

use crate::handles::{KlpFunc, KlpObject, KlpPatch};
use crate::list;
use crate::sys::{glue, KlpLock, Locked, Name};
use crate::task;
use crate::{state_plan, transition};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVVec};
use kernel::bindings;
use kernel::error::{code::*, Error, Result};
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;
use kernel::types::Opaque;

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
    /// `klp_func.stack_node`s, newest first; changed under klp_mutex.
    func_stack: Opaque<bindings::list_head>,
    /// The next unlinked site waiting to be freed ([`DEAD_SITES`]).
    dead_next: AtomicPtr<Site>,
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

/// The sites of the bucket of `ip`.
///
/// Sites are linked and unlinked only under klp_mutex, which the caller
/// holds for `'a`, and freed only by [`free_dead_sites`], whose caller
/// promises not to use them again: the references stay valid for as long
/// as they are used.
fn bucket_sites<'a>(_lock: &'a KlpLock, ip: c_ulong) -> impl Iterator<Item = &'a Site> {
    let mut cur = bucket(ip).load(Ordering::Relaxed);
    core::iter::from_fn(move || {
        // SAFETY: `cur` is null or a site of the bucket, valid as explained
        // above.
        let site = unsafe { cur.as_ref() }?;
        cur = site.next.load(Ordering::Relaxed);
        Some(site)
    })
}

/// Sites unlinked and not yet freed, through `Site::dead_next`; under
/// klp_mutex.
static DEAD_SITES: AtomicPtr<Site> = AtomicPtr::new(core::ptr::null_mut());

/// The site of `ip`, if any.
fn find_site(lock: &KlpLock, ip: c_ulong) -> Option<&Site> {
    bucket_sites(lock, ip).find(|site| site.ip == ip)
}

impl Site {
    /// The head of the stack of functions.
    fn stack(&self) -> *mut bindings::list_head {
        self.func_stack.get()
    }
}

/// Initialisation at boot: nothing to do, the table is static.
pub(crate) fn init() {}

/// The patch states a task can be in, in the order of `Site::trans`.
const TASK_STATES: [c_int; 3] = [transition::IDLE, transition::UNPATCHED, transition::PATCHED];

/// Recomputes the targets of `site` after its stack or the transition flag
/// of its newest function changed.  An empty stack (only while the site is
/// set up, before the filter update) sends every call to the original.
fn refresh(_lock: &KlpLock, site: &Site) {
    let head = site.stack();
    // SAFETY: klp_mutex is held (`_lock`): the stack, an initialised list,
    // does not change meanwhile.
    let node = unsafe { (*head).next };
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
    if let Some(site) = find_site(lock, ftrace_loc(func)) {
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
pub(crate) fn previous<'a>(lock: &'a KlpLock, func: &'a KlpFunc) -> Option<&'a KlpFunc> {
    let site = find_site(lock, ftrace_loc(func))?;
    // SAFETY: klp_mutex is held (`lock`): the stack of the site, on which
    // `func` is, does not change meanwhile; its entries are functions of
    // registered patches.
    unsafe {
        let next = (*func.stack_node()).next;
        if next == site.stack() {
            None
        } else {
            Some(KlpFunc::from_stack_node(next))
        }
    }
}

/// Takes `site` out of its bucket and queues it for [`free_dead_sites`];
/// handlers that found it before may still read it until then.
fn unlink_site(lock: &KlpLock, site: &Site) {
    let this = core::ptr::from_ref(site).cast_mut();
    let head = bucket(site.ip);
    let link = if head.load(Ordering::Relaxed) == this {
        head
    } else if let Some(prev) =
        bucket_sites(lock, site.ip).find(|s| s.next.load(Ordering::Relaxed) == this)
    {
        &prev.next
    } else {
        pr_err!("site {:#x} is not in its bucket\n", site.ip);
        return;
    };
    // The link's own pointer: that of `KBox::into_raw`, for the free.
    let raw = link.load(Ordering::Relaxed);
    link.store(site.next.load(Ordering::Relaxed), Ordering::Release);
    NR_SITES.write(lock, NR_SITES.read(lock) - 1);
    site.dead_next
        .store(DEAD_SITES.load(Ordering::Relaxed), Ordering::Relaxed);
    DEAD_SITES.store(raw, Ordering::Relaxed);
}

/// Frees the unlinked sites once no handler can be reading them: after
/// every CPU has scheduled, since handlers run with preemption disabled.
///
/// # Safety
/// klp_mutex must be held, and the caller must not use any reference to
/// an unlinked site afterwards.
unsafe fn free_dead_sites(_lock: &KlpLock) {
    let mut cur = DEAD_SITES.swap(core::ptr::null_mut(), Ordering::Relaxed);
    if cur.is_null() {
        return;
    }
    task::synchronize_cpus();
    while !cur.is_null() {
        // SAFETY: an unlinked site, allocated by `new_site` and queued
        // once by `unlink_site`; no handler reads it after the wait above,
        // and per the function's contract nothing else uses it.
        let site = unsafe { KBox::from_raw(cur) };
        cur = site.dead_next.load(Ordering::Relaxed);
    }
}

/// Creates the site of `ip` with an empty stack, every call to the
/// original until [`refresh`], and links it in its bucket.
fn new_site(lock: &KlpLock, ip: c_ulong) -> Result<&Site> {
    let b = bucket(ip);
    let site = KBox::new(
        Site {
            next: AtomicPtr::new(b.load(Ordering::Relaxed)),
            ip,
            fast: AtomicUsize::new(0),
            trans: [const { AtomicUsize::new(0) }; 4],
            func_stack: Opaque::uninit(),
            dead_next: AtomicPtr::new(core::ptr::null_mut()),
        },
        GFP_KERNEL,
    )?;
    // SAFETY: the head is at its final place (boxed) and not yet shared.
    unsafe { list::init(site.stack()) };
    let site = KBox::into_raw(site);
    // Readers see the site fully set up (release); klp_mutex is held.
    b.store(site, Ordering::Release);
    NR_SITES.write(lock, NR_SITES.read(lock) + 1);
    // SAFETY: a site of the bucket now, valid as for `bucket_sites`.
    Ok(unsafe { &*site })
}

/// A batch of addresses for one ftrace filter update, allocated for all the
/// functions of the batch up front.
struct Ips {
    ips: KVVec<c_ulong>,
    /// The name of the first function of the batch, for messages.
    first: Name,
}

impl Ips {
    fn with_capacity(cap: usize) -> Result<Ips> {
        Ok(Ips {
            ips: KVVec::with_capacity(cap, GFP_KERNEL)?,
            first: Name(core::ptr::null()),
        })
    }

    fn len(&self) -> usize {
        self.ips.len()
    }

    /// Adds `ip`, within the capacity: never allocates.
    fn push(&mut self, ip: c_ulong, name: Name) {
        if self.ips.is_empty() {
            self.first = name;
        }
        // The batch is sized for all its functions.
        debug_assert!(self.ips.len() < self.ips.capacity());
        if self.ips.len() < self.ips.capacity() {
            // Cannot fail: there is room.
            let _ = self.ips.push(ip, GFP_KERNEL);
        }
    }

    /// The addresses for ftrace, which only reads them.
    fn as_ffi(&self) -> *mut c_ulong {
        self.ips.as_ptr().cast_mut()
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
    if ips.len() == 0 {
        return Ok(());
    }
    // The glue's ops is static; its filter changes and (un)registrations are
    // serialised by klp_mutex (`lock`), and ftrace takes its own locks.
    // SAFETY: returns the address of that static ops.
    let fops = unsafe { glue::klp_glue_fops() };
    let n = ips.len() as core::ffi::c_uint;
    if remove {
        if NR_SITES.read(lock) == 0 {
            // SAFETY: the ops is registered: it had sites until now.
            let ret = unsafe { bindings::unregister_ftrace_function(fops) };
            if ret != 0 {
                pr_err!("failed to unregister the ftrace handler ({})\n", ret);
            }
        }
        // SAFETY: `ips` holds `n` addresses.
        let ret = unsafe { bindings::ftrace_set_filter_ips(fops, ips.as_ffi(), n, 1, 0) };
        if ret != 0 {
            pr_err!(
                "failed to remove {} functions from the ftrace filter ({})\n",
                n,
                ret
            );
        }
        return Ok(());
    }
    let first = NR_SITES.read(lock) == ips.len();
    // SAFETY: as above.
    let ret = unsafe { bindings::ftrace_set_filter_ips(fops, ips.as_ffi(), n, 0, 0) };
    if ret != 0 {
        pr_err!(
            "failed to set ftrace filter for function '{}'{} ({})\n",
            ips.first,
            Others(ips.len()),
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
                Others(ips.len()),
                ret
            );
            // SAFETY: as for the filter update above.
            unsafe { bindings::ftrace_set_filter_ips(fops, ips.as_ffi(), n, 1, 0) };
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
        let Some(site) = find_site(lock, ip) else {
            pr_err!("unpatching '{}': no site\n", func.display_name());
            func.set_patched(lock, false);
            continue;
        };
        // SAFETY: klp_mutex is held (`lock`): the stacks change only under
        // it; `func` is patched, so on the stack of `site`; RCU readers see
        // either the old or the new stack.
        let empty = unsafe {
            list::del_rcu(func.stack_node());
            list::is_empty(site.stack())
        };
        func.set_patched(lock, false);
        if empty {
            if let Some(g) = gone.as_deref_mut() {
                g.push(ip, func.display_name());
            }
            unlink_site(lock, site);
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
        let site = match find_site(lock, ip) {
            Some(site) => site,
            None => match new_site(lock, ip) {
                Ok(site) => {
                    ips.push(ip, func.display_name());
                    site
                }
                Err(e) => {
                    pr_err!("no memory to patch function '{}'\n", func.display_name());
                    res = Err(e);
                    break;
                }
            },
        };
        // SAFETY: klp_mutex is held (`lock`): the stacks change only under
        // it; `func` is on no stack (not patched); readers see the new
        // function fully set up.
        unsafe { list::add_rcu(func.stack_node(), site.stack()) };
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
        // SAFETY: klp_mutex is held (`lock`); no site reference of this
        // function is alive.
        unsafe { free_dead_sites(lock) };
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
    // SAFETY: klp_mutex is held (`lock`); no site reference of this
    // function is alive.
    unsafe { free_dead_sites(lock) };
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
