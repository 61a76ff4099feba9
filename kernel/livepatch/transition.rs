// SPDX-License-Identifier: GPL-2.0-or-later

//! The consistency model: every task switches from the old to the new set
//! of functions (or back) at a point where none of the affected functions is
//! on its stack, one task at a time.
//!
//! A transition targets one patch and one direction.  Tasks switch when
//! their stack is reliable and free of the affected functions, when they
//! return to user space, in the idle loop, or, once the quick retries did
//! not suffice, in `cond_resched()`.  Tasks that do not switch get a fake
//! signal (or a wake-up for kthreads) every [`SIGNALS_TIMEOUT`] one-second
//! retries, after [`QUICK_RETRIES`] quick ones; the administrator may force
//! the rest.  One walk of the tasks
//! checks at most [`CHECKS_PER_WALK`] stacks, the next one goes on after
//! the CPU was given up.

use crate::callbacks;
use crate::ftrace;
use crate::handles::{KlpFunc, KlpPatch};
use crate::registry;
use crate::state_plan::{self, Target};
use crate::sys::{self, klp_debug, KlpLock, Name};
use crate::task::{self, for_each_task, for_each_task_while, Kind, PreemptGuard, Stopped, Task};
use core::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
use kernel::bindings;
use kernel::error::code::*;
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;

/// The patch states of a task (`KLP_TRANSITION_*`), as C ints.
pub(crate) const IDLE: c_int = bindings::KLP_TRANSITION_IDLE;
/// See [`IDLE`].
pub(crate) const UNPATCHED: c_int = bindings::KLP_TRANSITION_UNPATCHED as c_int;
/// See [`IDLE`].
pub(crate) const PATCHED: c_int = bindings::KLP_TRANSITION_PATCHED as c_int;

/// Retries between two rounds of fake signals.
const SIGNALS_TIMEOUT: u32 = 15;

/// The patch in transition, or null.  Written under `klp_mutex`.
static TRANSITION_PATCH: AtomicPtr<bindings::klp_patch> = AtomicPtr::new(core::ptr::null_mut());
/// The state tasks switch to: `KLP_TRANSITION_*`.  Written under
/// `klp_mutex`, read locklessly by the scheduler hooks.
static TARGET_STATE: AtomicI32 = AtomicI32::new(IDLE);
/// One-second retries of the current transition.
static SIGNALS_CNT: AtomicU32 = AtomicU32::new(0);
/// Quick retries of the current transition so far.
static QUICK_CNT: AtomicU32 = AtomicU32::new(0);
/// Retries sooner than the one-second cadence: after 1, 2, 4, .. jiffies.
/// A task that could not switch at the first try (often the idle task of a
/// busy CPU, or a task just running) usually can a moment later, so that a
/// transition need not wait a whole second; the few extra walks of the task
/// list are bounded by this count.
const QUICK_RETRIES: u32 = 6;
/// Stack checks of one walk of the tasks at most.  A walk holds the
/// tasklist lock, so it does not sleep and cannot be preempted: with many
/// tasks, the checks are spread over several walks, and the work item that
/// runs them gives the CPU up in between.
const CHECKS_PER_WALK: u32 = 256;
/// Whether the `cond_resched()` hook is on.  Under `klp_mutex`.
///
/// Unlike the C core, which turns it on with every transition, the hook
/// comes on only when the quick retries did not complete the transition:
/// turning it on and off rewrites every `cond_resched()` call site (with
/// `PREEMPT_DYNAMIC`) or the sites of a static key, each rewrite a
/// `text_poke_bp()` that waits for every CPU, twice, which costs more than
/// most transitions (a task busy in a loop is usually off its CPU at one
/// of the quick retries).  A task that never leaves its CPU switches a
/// quarter of a second later than it would with the C core.
static HOOK_ON: AtomicBool = AtomicBool::new(false);
/// Where the next walk goes on, counted in tasks still pending that it
/// passes over before it checks any: those that the walks of this sweep
/// checked in vain.
static RESUME_AT: AtomicU32 = AtomicU32::new(0);

/// The patch in transition, if any.
pub(crate) fn patch() -> Option<*mut bindings::klp_patch> {
    let p = TRANSITION_PATCH.load(Ordering::Relaxed);
    (!p.is_null()).then_some(p)
}

/// The patch in transition, if any, as a handle.  While `_lock` is
/// borrowed, the transition cannot end nor the patch go: both take a
/// `&mut KlpLock`.
pub(crate) fn patch_locked(_lock: &KlpLock) -> Option<&KlpPatch> {
    // SAFETY: the patch in transition was set up and handed to `prepare`;
    // it stays valid until it is freed, which happens only after
    // `complete_transition` cleared `TRANSITION_PATCH`, with klp_mutex held
    // and a `&mut KlpLock`, which cannot exist while `_lock` is borrowed.
    patch().map(|p| unsafe { KlpPatch::from_raw(p) })
}

/// The target state of the running transition (`KLP_TRANSITION_*`).
pub(crate) fn target() -> c_int {
    TARGET_STATE.load(Ordering::Relaxed)
}

/// A task's patch state (`KLP_TRANSITION_*`) as the shared plan names it;
/// `None` for `KLP_TRANSITION_IDLE`.
#[inline]
pub(crate) fn to_target(state: c_int) -> Option<Target> {
    match state {
        PATCHED => Some(Target::Patched),
        UNPATCHED => Some(Target::Unpatched),
        _ => None,
    }
}

fn from_target(target: Target) -> c_int {
    match target {
        Target::Patched => PATCHED,
        Target::Unpatched => UNPATCHED,
    }
}

fn dir(state: c_int) -> &'static str {
    if state == PATCHED {
        "patching"
    } else {
        "unpatching"
    }
}

/// Sets every function of the transition patch to `on` in transition.
fn set_funcs_transition(lock: &KlpLock, patch: &KlpPatch, on: bool) {
    for obj in patch.objects(lock) {
        for func in obj.funcs(lock) {
            // A single store: the handler reads the flag concurrently.
            func.set_transition(lock, on);
            ftrace::transition_changed(lock, func);
        }
    }
}

/// Prepares a transition of `patch` to `state`: every task starts in the
/// opposite state; the functions are marked in transition.
pub(crate) fn prepare(lock: &mut KlpLock, patch: &KlpPatch, state: c_int) {
    let Some(goal) = to_target(state) else {
        pr_err!("transition to an unknown state {}\n", state);
        return;
    };
    let initial = from_target(state_plan::task_initial(goal));
    if target() != IDLE {
        pr_err!("transition already initialised\n");
    }
    TRANSITION_PATCH.store(patch.as_raw(), Ordering::Relaxed);
    TARGET_STATE.store(state, Ordering::Relaxed);
    klp_debug!("'{}': initializing {} transition", patch.name(), dir(state));
    for_each_task(|t, _| t.set_patch_state(initial));
    // Tasks' patch_state before func->transition (the handler must not see
    // a function in transition with an idle task), and the target before
    // TIF_PATCH_PENDING (the hooks must not switch a task to IDLE).
    fence(Ordering::Release);
    set_funcs_transition(lock, patch, true);
}

/// Lets the tasks switch: sets `TIF_PATCH_PENDING` on every task not in
/// the target state.
pub(crate) fn start(lock: &mut KlpLock) {
    let Some(patch) = patch_locked(lock) else {
        return;
    };
    let state = target();
    pr_notice!("'{}': starting {} transition\n", patch.name(), dir(state));
    for_each_task(|t, _| {
        if t.patch_state() != state {
            t.set_patch_pending(true);
        }
    });
    SIGNALS_CNT.store(0, Ordering::Relaxed);
    QUICK_CNT.store(0, Ordering::Relaxed);
    RESUME_AT.store(0, Ordering::Relaxed);
}

/// The reason a task could not switch.
enum Busy {
    Running,
    Unreliable,
    OnStack(Name),
}

/// The code of `func` that the tasks leave: its start and size.
fn leaving(lock: &KlpLock, func: &KlpFunc) -> (usize, usize) {
    if to_target(target()).is_some_and(state_plan::leaves_new) {
        (func.new_func() as usize, func.new_size())
    } else {
        match ftrace::previous(lock, func) {
            Some(prev) => (prev.new_func() as usize, prev.new_size()),
            None => (func.old_func() as usize, func.old_size()),
        }
    }
}

/// Whether `func`'s code (the version being left) is in `entries`.
fn func_on_stack(lock: &KlpLock, func: &KlpFunc, entries: &[c_ulong]) -> bool {
    let (addr, size) = leaving(lock, func);
    entries.iter().any(|&a| a >= addr && a < addr + size)
}

/// The code that the tasks leave, for the stack checks of one walk: the
/// ranges of every function of the patched objects of the transition
/// patch, sorted by start, so that each stack entry is one binary search
/// instead of a comparison with every function (and a site lookup for
/// each, see [`leaving`]).  A walk holds klp_mutex: the patch, its objects
/// and the site stacks do not change while it runs.
struct LeftCode {
    /// `(start, max_end)` of each range, sorted by start, where `max_end`
    /// is the largest end of this range and those before it.  Ranges may
    /// overlap (one replacement can serve several functions), so the end
    /// of the range just before an address does not tell alone.
    ranges: KVVec<(usize, usize)>,
}

impl LeftCode {
    /// The ranges of the transition patch; `None` without one, or when
    /// there is no memory for them (the checks then compare each function).
    fn new(lock: &KlpLock) -> Option<LeftCode> {
        let patch = patch_locked(lock)?;
        let patched = || patch.objects(lock).filter(|o| o.patched());
        let n = patched().map(|o| o.funcs(lock).count()).sum();
        let mut ranges = KVVec::with_capacity(n, GFP_KERNEL).ok()?;
        for obj in patched() {
            for func in obj.funcs(lock) {
                let (start, size) = leaving(lock, func);
                ranges.push((start, start + size), GFP_KERNEL).ok()?;
            }
        }
        ranges.sort_unstable_by_key(|r| r.0);
        let mut max_end = 0;
        for r in ranges.iter_mut() {
            max_end = max_end.max(r.1);
            r.1 = max_end;
        }
        Some(LeftCode { ranges })
    }

    /// Whether one of `entries` is in the code being left.
    fn on_stack(&self, entries: &[c_ulong]) -> bool {
        entries.iter().any(|&a| {
            // The ranges that start at or before `a`; one of them holds
            // `a` exactly when the largest of their ends is past it.
            let i = self.ranges.partition_point(|r| r.0 <= a);
            i > 0 && self.ranges[i - 1].1 > a
        })
    }
}

/// Checks the stack of a task that cannot run meanwhile and switches it;
/// `old_name` gets the function found on the stack, for the message.
/// `left`, when the walk made it, answers whether the stack holds code
/// being left; which function it is, the rare case, is looked up as
/// without it.
fn check_and_switch(
    stopped: &mut Stopped<'_>,
    left: Option<&LeftCode>,
    old_name: &mut Name,
) -> c_int {
    let task = stopped.task();
    if task.is_running_elsewhere() {
        return -(EBUSY.to_errno().abs());
    }
    let Some(entries) = stopped.save_stack_reliable() else {
        return EINVAL.to_errno();
    };
    // The transition patch cannot change meanwhile: the switch runs with
    // klp_mutex held, or (cond_resched hook) with TIF_PATCH_PENDING set,
    // which the end of a transition waits for.
    // SAFETY: see above.
    let lock = unsafe { KlpLock::assume_held() };
    let Some(patch) = patch_locked(&lock) else {
        return 0;
    };
    // Without the walk's ranges, or when they hold an entry, look for the
    // function on the stack.
    let maybe_on_stack = match left {
        Some(left) => left.on_stack(entries),
        None => true,
    };
    if maybe_on_stack {
        for obj in patch.objects(&lock) {
            if !obj.patched() {
                continue;
            }
            for func in obj.funcs(&lock) {
                if func_on_stack(&lock, func, entries) {
                    *old_name = func.display_name();
                    return -(bindings::EADDRINUSE as c_int);
                }
            }
        }
    }
    task.set_patch_pending(false);
    task.set_patch_state(target());
    0
}

/// Tries to switch one task to the target state.  For the current task,
/// preemption must be disabled: the scheduler hook disables it, and the
/// walk of the threads holds the tasklist lock (the walk of the idle tasks
/// never meets the current task).  `left`: see [`check_and_switch`].
fn try_switch_task(task: &Task, left: Option<&LeftCode>) -> bool {
    if task.patch_state() == target() {
        return true;
    }
    let mut old_name = Name(core::ptr::null());
    // SAFETY: preemption is disabled when `task` is current (see above);
    // `check_and_switch` stops no task itself.
    let ret = unsafe { task.with_stopped(|t| check_and_switch(t, left, &mut old_name)) };
    if ret == 0 {
        return true;
    }
    let (comm, pid) = (task.comm(), task.pid());
    let busy = match ret {
        r if r == EBUSY.to_errno() => Some(Busy::Running),
        r if r == EINVAL.to_errno() => Some(Busy::Unreliable),
        r if r == -(bindings::EADDRINUSE as c_int) => Some(Busy::OnStack(old_name)),
        _ => None,
    };
    match busy {
        Some(Busy::Running) => sys::debug_switch(format_args!(
            "klp_try_switch_task: {}:{} is running",
            comm, pid
        )),
        Some(Busy::Unreliable) => sys::debug_switch(format_args!(
            "klp_try_switch_task: {}:{} has an unreliable stack",
            comm, pid
        )),
        Some(Busy::OnStack(name)) => sys::debug_switch(format_args!(
            "klp_try_switch_task: {}:{} is sleeping on function {}",
            comm, pid, name
        )),
        None => sys::debug_switch(format_args!(
            "klp_try_switch_task: Unknown error code ({}) when trying to switch {}:{}",
            ret, comm, pid
        )),
    }
    false
}

/// The `cond_resched()` hook: lets a busy task switch itself.
#[no_mangle]
pub(crate) extern "C" fn __klp_sched_try_switch() {
    Task::with_current(|cur| {
        if !cur.patch_pending() {
            return;
        }
        // Keeps other switchers (which pin the task with task_call_func)
        // from racing with us.
        let _preempt = PreemptGuard::new();
        if cur.patch_pending() {
            // TIF_PATCH_PENDING before the target state.
            fence(Ordering::Acquire);
            try_switch_task(cur, None);
        }
    })
}

/// Switches a task that is current or cannot run (exit to user space, the
/// idle loop, forcing).
///
/// # Safety
/// `task` must point to a live task.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_update_patch_state(task: *mut bindings::task_struct) {
    // SAFETY: per the function's contract; the handle does not outlive the
    // call.
    update_patch_state(unsafe { Task::from_raw(task) });
}

/// See [`klp_update_patch_state`].
#[inline(always)]
fn update_patch_state(task: &Task) {
    // See klp_synchronize_transition in the C core.
    let _preempt = PreemptGuard::new();
    // The test-and-clear is a full barrier: TIF_PATCH_PENDING is read before
    // the target state, and before a later func->transition read.
    if task.test_and_clear_patch_pending() {
        task.set_patch_state(TARGET_STATE.load(Ordering::Relaxed));
    }
}

/// Brings a new task in line with its parent; called from fork.
///
/// # Safety
/// `child` must point to the new task, alive for the call.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_copy_process(child: *mut bindings::task_struct) {
    // SAFETY: per the function's contract.
    let child = unsafe { Task::from_raw(child) };
    Task::with_current(|cur| {
        child.set_patch_pending(cur.patch_pending());
        child.set_patch_state(cur.patch_state());
    });
}

fn send_signals() {
    if SIGNALS_CNT.load(Ordering::Relaxed) == SIGNALS_TIMEOUT {
        pr_notice!("signaling remaining tasks\n");
    }
    task::for_each_thread(|t| {
        if t.patch_pending() {
            t.signal();
        }
    });
}

/// Tries to switch every task; completes the transition when all did, or
/// schedules a retry.
pub(crate) fn try_complete(lock: &mut KlpLock) {
    let left = LeftCode::new(lock);
    let mut skip = RESUME_AT.load(Ordering::Relaxed);
    let mut skipped = 0;
    let (mut checks, mut failed, mut stopped) = (0, 0, false);
    for_each_task_while(|t, kind| {
        match kind {
            Kind::Thread | Kind::Idle(_, true) => {
                if t.patch_state() == target() {
                    return true;
                }
                if skip > 0 {
                    // Checked by an earlier walk of this sweep.
                    skip -= 1;
                    skipped += 1;
                    return true;
                }
                if checks == CHECKS_PER_WALK {
                    stopped = true;
                    return false;
                }
                checks += 1;
                if !try_switch_task(t, left.as_ref()) {
                    failed += 1;
                    if let Kind::Idle(cpu, _) = kind {
                        // An idle task switches in its loop: make it go round.
                        cpu.wake_up_if_idle();
                    }
                }
            }
            Kind::Idle(_, false) => {
                // An offline CPU's idle task runs nothing: switch it now.
                if t.patch_state() != target() {
                    t.set_patch_pending(false);
                    t.set_patch_state(target());
                }
            }
        }
        true
    });
    if stopped {
        // Give the CPU up and go on where this walk stopped: the tasks
        // still pending before that point are the skipped and the failed.
        RESUME_AT.fetch_add(failed, Ordering::Relaxed);
        task::schedule_transition_work(0);
        return;
    }
    RESUME_AT.store(0, Ordering::Relaxed);
    let complete = skipped == 0 && failed == 0;
    if !complete {
        let quick = QUICK_CNT.load(Ordering::Relaxed);
        if quick < QUICK_RETRIES {
            QUICK_CNT.store(quick + 1, Ordering::Relaxed);
            task::schedule_transition_work(1 << quick);
            return;
        }
        if !HOOK_ON.swap(true, Ordering::Relaxed) {
            task::set_cond_resched_hook(true);
        }
        let cnt = SIGNALS_CNT.load(Ordering::Relaxed);
        if cnt != 0 && cnt % SIGNALS_TIMEOUT == 0 {
            send_signals();
        }
        SIGNALS_CNT.store(cnt + 1, Ordering::Relaxed);
        task::schedule_transition_work(task::about_a_second());
        return;
    }
    let Some(patch) = patch() else { return };
    // SAFETY: the patch in transition is set up and registered; it stays
    // valid after `complete_transition`, until it is freed below (after
    // its last use here).  klp_mutex held throughout (`lock`).
    let patch = unsafe { KlpPatch::from_raw(patch) };
    complete_transition(lock, patch);
    let (enabled, replace) = (patch.enabled(), patch.replace());
    if !enabled {
        registry::free_patch_async(lock, patch);
    } else if replace {
        registry::free_replaced_patches_async(lock, patch);
    }
}

/// The retry work of a transition.
///
/// # Safety
/// Called by the workqueue for the glue's delayed work.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_rust_transition_work(_work: *mut bindings::work_struct) {
    let mut lock = KlpLock::lock();
    if patch().is_some() {
        try_complete(&mut lock);
    }
}

/// Ends the transition of `patch`, the patch in transition, once every
/// task is in the target state: cleans up what the direction leaves behind
/// and runs the post callbacks.
fn complete_transition(lock: &mut KlpLock, patch: &KlpPatch) {
    if HOOK_ON.swap(false, Ordering::Relaxed) {
        task::set_cond_resched_hook(false);
    }
    let state = target();
    klp_debug!("'{}': completing {} transition", patch.name(), dir(state));

    if patch.replace() && state == PATCHED {
        registry::unpatch_replaced_patches(lock, patch);
        registry::discard_nops(lock, patch);
        crate::state::replaced_unpatched(lock, patch);
    }
    if state == UNPATCHED {
        // Everybody runs the old code: take the functions off the stacks,
        // and make sure the handler no longer sees them before they stop
        // being in transition.
        ftrace::unpatch_objs(lock, patch, false);
        task::synchronize_cpus();
    }
    set_funcs_transition(lock, patch, false);
    // The handler must not see an idle task with a function in transition.
    if state == PATCHED {
        task::synchronize_cpus();
    }
    for_each_task(|t, _| {
        if t.patch_pending() {
            pr_err!("task still pending at the end of a transition\n");
        }
        t.set_patch_state(IDLE);
    });

    for obj in patch.objects(lock) {
        if !obj.is_loaded() {
            continue;
        }
        if state == PATCHED {
            callbacks::post_patch(lock, obj);
        } else {
            callbacks::post_unpatch(lock, obj);
        }
    }
    crate::state::transition_complete(lock, patch, state);

    pr_notice!("'{}': {} complete\n", patch.name(), dir(state));
    TARGET_STATE.store(IDLE, Ordering::Relaxed);
    TRANSITION_PATCH.store(core::ptr::null_mut(), Ordering::Relaxed);
}

/// Cancels a transition that was initialised but not started (an error
/// while enabling).
pub(crate) fn cancel(lock: &mut KlpLock) {
    let Some(patch) = patch() else { return };
    // SAFETY: the patch in transition is set up and registered; the caller
    // frees it, if at all, after this returns.  klp_mutex held (`lock`).
    let patch = unsafe { KlpPatch::from_raw(patch) };
    if target() != PATCHED {
        pr_err!("cancelling a transition that is not patching\n");
        return;
    }
    klp_debug!(
        "'{}': canceling patching transition, going to unpatch",
        patch.name()
    );
    TARGET_STATE.store(UNPATCHED, Ordering::Relaxed);
    complete_transition(lock, patch);
}

/// Reverses the running transition (`enabled` written while it runs).
pub(crate) fn reverse(lock: &mut KlpLock) {
    let Some(patch) = patch_locked(lock) else {
        return;
    };
    let state = target();
    let Some(goal) = to_target(state) else { return };
    klp_debug!(
        "'{}': reversing transition from {}",
        patch.name(),
        if state == PATCHED {
            "patching to unpatching"
        } else {
            "unpatching to patching"
        }
    );
    // Stop the hooks from switching tasks while the direction changes.
    for_each_task(|t, _| t.set_patch_pending(false));
    task::synchronize_cpus();
    patch.set_enabled(lock, !patch.enabled());
    let new = from_target(goal.opposite());
    TARGET_STATE.store(new, Ordering::Relaxed);
    // The target before the TIF_PATCH_PENDING writes of `start`.
    fence(Ordering::Release);
    start(lock);
}

/// Forces every task to the target state (`force` written to sysfs).
pub(crate) fn force(lock: &mut KlpLock) {
    let Some(patch) = patch_locked(lock) else {
        return;
    };
    pr_warn!("forcing remaining tasks to the patched state\n");
    for_each_task(|t, _| update_patch_state(t));
    if target() == UNPATCHED {
        patch.set_forced(lock, true);
    } else if patch.replace() {
        for p in registry::registered(lock) {
            if p != patch {
                p.set_forced(lock, true);
            }
        }
    }
}
