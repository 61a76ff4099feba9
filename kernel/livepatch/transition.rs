// SPDX-License-Identifier: GPL-2.0-or-later

//! The consistency model: every task switches from the old to the new set
//! of functions (or back) at a point where none of the affected functions is
//! on its stack, one task at a time.
//!
//! A transition targets one patch and one direction.  Tasks switch when
//! their stack is reliable and free of the affected functions, when they
//! return to user space, in the idle loop, or in `cond_resched()`.  Tasks
//! that do not switch get a fake signal (or a wake-up for kthreads) every
//! [`SIGNALS_TIMEOUT`] one-second retries, after [`QUICK_RETRIES`] quick
//! ones; the administrator may force the rest.  One walk of the tasks
//! checks at most [`CHECKS_PER_WALK`] stacks, the next one goes on after
//! the CPU was given up.

use crate::callbacks;
use crate::ftrace;
use crate::handles::{KlpFunc, KlpPatch};
use crate::registry;
use crate::state_plan::{self, Target};
use crate::sys::{self, glue, klp_debug, KlpLock, Name};
use core::sync::atomic::{fence, AtomicI32, AtomicPtr, AtomicU32, Ordering};
use kernel::bindings;
use kernel::error::code::*;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

const IDLE: c_int = bindings::KLP_TRANSITION_IDLE;
const UNPATCHED: c_int = bindings::KLP_TRANSITION_UNPATCHED as c_int;
const PATCHED: c_int = bindings::KLP_TRANSITION_PATCHED as c_int;

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

/// Does nothing: what counts is that it ran on every CPU.
///
/// # Safety
/// Called by the workqueue.
unsafe extern "C" fn sync_fn(_work: *mut bindings::work_struct) {}

/// Waits until no CPU can still be inside the ftrace handler or a scheduler
/// hook with a view older than now, even where RCU is not watching.
fn synchronize() {
    // SAFETY: `sync_fn` does nothing; schedule_on_each_cpu() waits for it
    // on every CPU.
    unsafe { bindings::schedule_on_each_cpu(Some(sync_fn)) };
}

/// Where a task of [`for_each_task`] comes from.
#[derive(Clone, Copy)]
enum Kind {
    /// A thread of a process.
    Thread,
    /// The idle task of a CPU, and whether that CPU is online.
    Idle(c_int, bool),
}

/// Calls `f` on every thread, then on the idle task of every possible CPU.
fn for_each_task<F: FnMut(*mut bindings::task_struct, Kind)>(mut f: F) {
    for_each_task_while(|t, kind| {
        f(t, kind);
        true
    });
}

/// A walk of [`for_each_task_while`]: the closure, and whether it asked to
/// stop.
struct Walk<F> {
    f: F,
    stopped: bool,
}

/// Calls `f` on every thread, then on the idle task of every possible CPU,
/// until it returns `false`.
fn for_each_task_while<F: FnMut(*mut bindings::task_struct, Kind) -> bool>(f: F) {
    /// # Safety
    /// `data` must be the walk below.
    unsafe extern "C" fn one<F: FnMut(*mut bindings::task_struct, Kind) -> bool>(
        t: *mut bindings::task_struct,
        data: *mut c_void,
    ) -> bool {
        // SAFETY: `data` is the walk below, alive and not otherwise
        // borrowed during the glue's walk.
        let w = unsafe { &mut *(data as *mut Walk<F>) };
        w.stopped = !(w.f)(t, Kind::Thread);
        !w.stopped
    }
    /// # Safety
    /// `data` must be the walk below.
    unsafe extern "C" fn idle<F: FnMut(*mut bindings::task_struct, Kind) -> bool>(
        t: *mut bindings::task_struct,
        cpu: c_int,
        online: bool,
        data: *mut c_void,
    ) -> bool {
        // SAFETY: as above.
        let w = unsafe { &mut *(data as *mut Walk<F>) };
        w.stopped = !(w.f)(t, Kind::Idle(cpu, online));
        !w.stopped
    }
    let mut walk = Walk { f, stopped: false };
    let data = &raw mut walk as *mut c_void;
    // SAFETY: the glue calls back with live tasks under the tasklist lock
    // (and CPU hotplug lock for the idle tasks); `data` outlives the walks.
    unsafe {
        glue::klp_glue_walk_tasks(one::<F>, data);
        if !walk.stopped {
            glue::klp_glue_walk_idle_tasks(idle::<F>, data);
        }
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
    for_each_task(|t, _| sys::set_patch_state(t, initial));
    // Tasks' patch_state before func->transition (the handler must not see
    // a function in transition with an idle task), and the target before
    // TIF_PATCH_PENDING (the hooks must not switch a task to IDLE).
    fence(Ordering::Release);
    set_funcs_transition(lock, patch, true);
}

/// Lets the tasks switch: sets `TIF_PATCH_PENDING` on every task not in
/// the target state and turns on the `cond_resched()` hook.
pub(crate) fn start(lock: &mut KlpLock) {
    let Some(patch) = patch_locked(lock) else {
        return;
    };
    let state = target();
    pr_notice!("'{}': starting {} transition\n", patch.name(), dir(state));
    for_each_task(|t, _| {
        if sys::patch_state(t) != state {
            sys::set_patch_pending(t, true);
        }
    });
    // SAFETY: plain call of the glue.
    unsafe { glue::klp_glue_cond_resched(true) };
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

/// Whether `func`'s code (the version being left) is in `entries`.
fn func_on_stack(lock: &KlpLock, func: &KlpFunc, entries: &[kernel::ffi::c_ulong]) -> bool {
    let (addr, size) = if to_target(target()).is_some_and(state_plan::leaves_new) {
        (func.new_func() as usize, func.new_size())
    } else {
        match ftrace::previous(lock, func) {
            Some(prev) => (prev.new_func() as usize, prev.new_size()),
            None => (func.old_func() as usize, func.old_size()),
        }
    };
    entries.iter().any(|&a| a >= addr && a < addr + size)
}

struct SwitchArg {
    /// The function found on the stack, for the message.
    old_name: Name,
}

/// Checks the stack of a task that cannot run meanwhile and switches it.
///
/// # Safety
/// `task` must be current or pinned by `task_call_func()`; `arg` must be
/// the [`SwitchArg`] of [`try_switch_task`].
unsafe extern "C" fn check_and_switch(task: *mut bindings::task_struct, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `SwitchArg` of `try_switch_task`.
    let arg = unsafe { &mut *(arg as *mut SwitchArg) };
    // SAFETY: the task is pinned by task_call_func() (or is current).
    if unsafe { bindings::task_curr(task) } != 0 && task != sys::current() {
        return -(EBUSY.to_errno().abs());
    }
    let mut nr: u32 = 0;
    // SAFETY: preemption is disabled here (runqueue lock or the caller), so
    // this CPU's buffer is ours.
    let entries = unsafe { glue::klp_glue_stack_entries(&mut nr) };
    // SAFETY: the buffer has `nr` entries; the task cannot run.
    let ret = unsafe { bindings::stack_trace_save_tsk_reliable(task, entries, nr) };
    if ret < 0 {
        return EINVAL.to_errno();
    }
    // SAFETY: stack_trace_save_tsk_reliable() filled `ret` entries.
    let entries = unsafe { core::slice::from_raw_parts(entries, ret as usize) };
    // The transition patch cannot change meanwhile: the switch runs with
    // klp_mutex held, or (cond_resched hook) with TIF_PATCH_PENDING set,
    // which the end of a transition waits for.
    // SAFETY: see above.
    let lock = unsafe { KlpLock::assume_held() };
    let Some(patch) = patch_locked(&lock) else {
        return 0;
    };
    for obj in patch.objects(&lock) {
        if !obj.patched() {
            continue;
        }
        for func in obj.funcs(&lock) {
            if func_on_stack(&lock, func, entries) {
                arg.old_name = func.display_name();
                return -(bindings::EADDRINUSE as c_int);
            }
        }
    }
    sys::set_patch_pending(task, false);
    sys::set_patch_state(task, target());
    0
}

/// Tries to switch one task to the target state.
fn try_switch_task(task: *mut bindings::task_struct) -> bool {
    if sys::patch_state(task) == target() {
        return true;
    }
    let mut arg = SwitchArg {
        old_name: Name(core::ptr::null()),
    };
    let argp = &raw mut arg as *mut c_void;
    let ret = if task == sys::current() {
        // SAFETY: the current task cannot run elsewhere while it checks
        // itself; preemption is disabled by the callers of this path.
        unsafe { check_and_switch(task, argp) }
    } else {
        // SAFETY: task_call_func() pins the task and calls us under its
        // runqueue lock.
        unsafe { bindings::task_call_func(task, Some(check_and_switch), argp) }
    };
    if ret == 0 {
        return true;
    }
    // SAFETY: the task is alive (tasklist lock or current).
    let (comm, pid) = unsafe { (&(*task).comm, (*task).pid) };
    let comm = Name(comm.as_ptr());
    let busy = match ret {
        r if r == EBUSY.to_errno() => Some(Busy::Running),
        r if r == EINVAL.to_errno() => Some(Busy::Unreliable),
        r if r == -(bindings::EADDRINUSE as c_int) => Some(Busy::OnStack(arg.old_name)),
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
    let cur = sys::current();
    if !sys::patch_pending(cur) {
        return;
    }
    // SAFETY: paired below; keeps other switchers (which pin the task with
    // task_call_func) from racing with us.
    unsafe { glue::klp_glue_preempt_disable() };
    if sys::patch_pending(cur) {
        // TIF_PATCH_PENDING before the target state.
        fence(Ordering::Acquire);
        try_switch_task(cur);
    }
    // SAFETY: paired above.
    unsafe { glue::klp_glue_preempt_enable() };
}

/// Switches a task that is current or cannot run (exit to user space, the
/// idle loop, forcing).
#[no_mangle]
pub(crate) extern "C" fn klp_update_patch_state(task: *mut bindings::task_struct) {
    // SAFETY: paired below; see klp_synchronize_transition in the C core.
    unsafe { glue::klp_glue_preempt_disable() };
    // The test-and-clear is a full barrier: TIF_PATCH_PENDING is read before
    // the target state, and before a later func->transition read.
    // SAFETY: the caller passes a live task.
    if unsafe { glue::klp_glue_test_and_clear_patch_pending(task) } {
        sys::set_patch_state(task, TARGET_STATE.load(Ordering::Relaxed));
    }
    // SAFETY: paired above.
    unsafe { glue::klp_glue_preempt_enable() };
}

/// Brings a new task in line with its parent; called from fork.
#[no_mangle]
pub(crate) extern "C" fn klp_copy_process(child: *mut bindings::task_struct) {
    let cur = sys::current();
    sys::set_patch_pending(child, sys::patch_pending(cur));
    sys::set_patch_state(child, sys::patch_state(cur));
}

fn send_signals() {
    if SIGNALS_CNT.load(Ordering::Relaxed) == SIGNALS_TIMEOUT {
        pr_notice!("signaling remaining tasks\n");
    }
    /// # Safety
    /// Called by the glue with a live task.
    unsafe extern "C" fn one(t: *mut bindings::task_struct, _d: *mut c_void) -> bool {
        if sys::patch_pending(t) {
            // SAFETY: `t` is alive under the tasklist lock.
            unsafe { glue::klp_glue_signal_task(t) };
        }
        true
    }
    // SAFETY: `one` takes no data.
    unsafe { glue::klp_glue_walk_tasks(one, core::ptr::null_mut()) };
}

/// Tries to switch every task; completes the transition when all did, or
/// schedules a retry.
pub(crate) fn try_complete(lock: &mut KlpLock) {
    let mut skip = RESUME_AT.load(Ordering::Relaxed);
    let mut skipped = 0;
    let (mut checks, mut failed, mut stopped) = (0, 0, false);
    for_each_task_while(|t, kind| {
        match kind {
            Kind::Thread | Kind::Idle(_, true) => {
                if sys::patch_state(t) == target() {
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
                if !try_switch_task(t) {
                    failed += 1;
                    if let Kind::Idle(cpu, _) = kind {
                        // An idle task switches in its loop: make it go round.
                        // SAFETY: `cpu` is an online CPU.
                        unsafe { bindings::wake_up_if_idle(cpu) };
                    }
                }
            }
            Kind::Idle(_, false) => {
                // An offline CPU's idle task runs nothing: switch it now.
                if sys::patch_state(t) != target() {
                    sys::set_patch_pending(t, false);
                    sys::set_patch_state(t, target());
                }
            }
        }
        true
    });
    if stopped {
        // Give the CPU up and go on where this walk stopped: the tasks
        // still pending before that point are the skipped and the failed.
        RESUME_AT.fetch_add(failed, Ordering::Relaxed);
        // SAFETY: plain call of the glue.
        unsafe { glue::klp_glue_schedule_transition_work(0) };
        return;
    }
    RESUME_AT.store(0, Ordering::Relaxed);
    let complete = skipped == 0 && failed == 0;
    if !complete {
        let quick = QUICK_CNT.load(Ordering::Relaxed);
        if quick < QUICK_RETRIES {
            QUICK_CNT.store(quick + 1, Ordering::Relaxed);
            // SAFETY: plain call of the glue.
            unsafe { glue::klp_glue_schedule_transition_work(1 << quick) };
            return;
        }
        let cnt = SIGNALS_CNT.load(Ordering::Relaxed);
        if cnt != 0 && cnt % SIGNALS_TIMEOUT == 0 {
            send_signals();
        }
        SIGNALS_CNT.store(cnt + 1, Ordering::Relaxed);
        // SAFETY: plain call of the glue; HZ is the kernel's tick rate.
        unsafe {
            glue::klp_glue_schedule_transition_work(bindings::round_jiffies_relative(
                bindings::HZ as _,
            ))
        };
        return;
    }
    // SAFETY: plain call of the glue.
    unsafe { glue::klp_glue_cond_resched(false) };
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
        synchronize();
    }
    set_funcs_transition(lock, patch, false);
    // The handler must not see an idle task with a function in transition.
    if state == PATCHED {
        synchronize();
    }
    for_each_task(|t, _| {
        if sys::patch_pending(t) {
            pr_err!("task still pending at the end of a transition\n");
        }
        sys::set_patch_state(t, IDLE);
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
    for_each_task(|t, _| sys::set_patch_pending(t, false));
    synchronize();
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
    for_each_task(|t, _| klp_update_patch_state(t));
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
