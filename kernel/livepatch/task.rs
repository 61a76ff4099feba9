// SPDX-License-Identifier: GPL-2.0-or-later

//! Tasks and the scheduler, for the transition: a handle of
//! `struct task_struct`, the walks of all tasks, the stack check of a task
//! that cannot run, and the glue's scheduling helpers (the retry work, the
//! `cond_resched()` hook, waiting for every CPU).
//!
//! The functions that the scheduler hooks reach are inlined, so that those
//! paths make the same calls, in the same context, as without the wrappers.

use crate::sys::{self, glue, Name};
use core::marker::PhantomData;
use kernel::bindings;
use kernel::ffi::{c_int, c_ulong, c_void};
use kernel::types::Opaque;

/// A `struct task_struct`.
///
/// # Invariants
/// A `&'a Task` points to a task that stays allocated for `'a`: the current
/// task, or one that a walk's lock, `task_call_func()` or the caller of a C
/// entry point keeps.
#[repr(transparent)]
pub(crate) struct Task(Opaque<bindings::task_struct>);

impl Task {
    /// The handle of the task at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to a task that stays allocated for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::task_struct) -> &'a Task {
        // SAFETY: `Task` is a transparent wrapper of the C structure, which
        // is valid for `'a` by the contract.
        unsafe { &*ptr.cast::<Task>() }
    }

    #[inline(always)]
    fn as_raw(&self) -> *mut bindings::task_struct {
        self.0.get()
    }

    /// Calls `f` with the current task.
    #[inline(always)]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Task) -> R) -> R {
        // SAFETY: the current task stays allocated while it runs `f`; the
        // handle cannot outlive the call (`f` takes any lifetime).
        f(unsafe { Task::from_raw(sys::current()) })
    }

    /// Whether this is the current task.
    #[inline(always)]
    pub(crate) fn is_current(&self) -> bool {
        self.as_raw() == sys::current()
    }

    /// Whether the task runs on a CPU, and is not the current task.
    #[inline]
    pub(crate) fn is_running_elsewhere(&self) -> bool {
        // SAFETY: the task is allocated (type invariant).
        let curr = unsafe { bindings::task_curr(self.as_raw()) };
        curr != 0 && !self.is_current()
    }

    /// `TIF_PATCH_PENDING` of the task.
    #[inline(always)]
    pub(crate) fn patch_pending(&self) -> bool {
        // SAFETY: the task is allocated (type invariant); the glue sets and
        // tests the flag atomically.
        unsafe { glue::klp_glue_patch_pending(self.as_raw()) }
    }

    /// Sets or clears `TIF_PATCH_PENDING` of the task.
    #[inline(always)]
    pub(crate) fn set_patch_pending(&self, pending: bool) {
        // SAFETY: as in `patch_pending`.
        unsafe { glue::klp_glue_set_patch_pending(self.as_raw(), pending) }
    }

    /// Clears `TIF_PATCH_PENDING`, returning whether it was set; a full
    /// barrier.
    #[inline(always)]
    pub(crate) fn test_and_clear_patch_pending(&self) -> bool {
        // SAFETY: as in `patch_pending`.
        unsafe { glue::klp_glue_test_and_clear_patch_pending(self.as_raw()) }
    }

    /// The task's `patch_state` (`KLP_TRANSITION_*`), read once.
    #[inline(always)]
    pub(crate) fn patch_state(&self) -> c_int {
        sys::patch_state(self.as_raw())
    }

    /// Writes the task's `patch_state`, once.
    #[inline(always)]
    pub(crate) fn set_patch_state(&self, state: c_int) {
        // SAFETY: the task is allocated (type invariant); a single volatile
        // store, as the C core's WRITE_ONCE.
        unsafe { core::ptr::write_volatile(&raw mut (*self.as_raw()).patch_state, state) }
    }

    /// The task's command name, for messages.
    pub(crate) fn comm(&self) -> Name {
        // SAFETY: the task is allocated (type invariant); `comm` is always
        // NUL-terminated, as `%s` of the C core reads it.
        Name(unsafe { (*self.as_raw()).comm.as_ptr() })
    }

    /// The task's pid.
    pub(crate) fn pid(&self) -> bindings::pid_t {
        // SAFETY: the task is allocated (type invariant); the pid of a task
        // does not change.
        unsafe { (*self.as_raw()).pid }
    }

    /// Makes the task cross a switch point: a fake signal, or a wake-up
    /// for a kernel thread.
    pub(crate) fn signal(&self) {
        // SAFETY: the task is allocated (type invariant).
        unsafe { glue::klp_glue_signal_task(self.as_raw()) }
    }

    /// Calls `f` with the task stopped: the current task in place, any
    /// other through `task_call_func()`, which pins it and calls `f` under
    /// its runqueue lock (with preemption disabled).  Returns what `f`
    /// returns, or the error of `task_call_func()`.
    ///
    /// # Safety
    /// When the task is the current task, preemption must be disabled.  `f`
    /// must not stop a task itself: the stack buffer of the CPU is shared.
    #[inline]
    pub(crate) unsafe fn with_stopped<F: FnMut(&mut Stopped<'_>) -> c_int>(
        &self,
        mut f: F,
    ) -> c_int {
        /// # Safety
        /// Called by `task_call_func()` with `data` the closure below.
        unsafe extern "C" fn call<F: FnMut(&mut Stopped<'_>) -> c_int>(
            t: *mut bindings::task_struct,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: `data` is the closure of `with_stopped`, alive and not
            // otherwise borrowed during the call.
            let f = unsafe { &mut *data.cast::<F>() };
            // SAFETY: task_call_func() pinned `t`, which cannot run, and
            // holds its runqueue lock: preemption is disabled; `f` stops no
            // task itself (contract of `with_stopped`).
            f(&mut unsafe { Stopped::new(Task::from_raw(t)) })
        }
        if self.is_current() {
            // SAFETY: the current task checks itself, so it does not run
            // elsewhere; preemption is disabled and `f` stops no task
            // (contract of the function).
            f(&mut unsafe { Stopped::new(self) })
        } else {
            // SAFETY: `call` gets the closure, which outlives the call.
            unsafe { bindings::task_call_func(self.as_raw(), Some(call::<F>), (&raw mut f).cast()) }
        }
    }
}

/// A task that cannot run meanwhile, on a CPU with preemption disabled:
/// its stack can be saved into the CPU's buffer (see [`Task::with_stopped`]).
///
/// # Invariants
/// While it exists, the task does not run, preemption is disabled and no
/// other `Stopped` exists on this CPU.
pub(crate) struct Stopped<'a> {
    task: &'a Task,
}

impl<'a> Stopped<'a> {
    /// # Safety
    /// The task must not run, preemption must stay disabled, and no other
    /// `Stopped` may exist on this CPU, for as long as the result lives.
    #[inline(always)]
    unsafe fn new(task: &'a Task) -> Self {
        Stopped { task }
    }

    /// The task.
    #[inline(always)]
    pub(crate) fn task(&self) -> &'a Task {
        self.task
    }

    /// Saves the task's stack; `None` when it is not reliable.  The entries
    /// live in this CPU's buffer, which the next save overwrites.
    #[inline]
    pub(crate) fn save_stack_reliable(&mut self) -> Option<&[c_ulong]> {
        let mut nr: u32 = 0;
        // SAFETY: preemption is disabled (type invariant), so this CPU's
        // buffer stays ours.
        let entries = unsafe { glue::klp_glue_stack_entries(&mut nr) };
        // SAFETY: the buffer has `nr` entries; the task cannot run (type
        // invariant).
        let ret =
            unsafe { bindings::stack_trace_save_tsk_reliable(self.task.as_raw(), entries, nr) };
        if ret < 0 {
            return None;
        }
        // SAFETY: stack_trace_save_tsk_reliable() filled `ret` entries;
        // nothing else writes the buffer while `self` is borrowed (type
        // invariant).
        Some(unsafe { core::slice::from_raw_parts(entries, ret as usize) })
    }
}

/// A possible CPU, as the walk of the idle tasks gives it.
#[derive(Clone, Copy)]
pub(crate) struct Cpu(c_int);

impl Cpu {
    /// Makes the CPU go round its idle loop, if it is idle.
    pub(crate) fn wake_up_if_idle(self) {
        // SAFETY: a possible CPU (type invariant).
        unsafe { bindings::wake_up_if_idle(self.0) }
    }
}

/// Where a task of a walk comes from.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// A thread of a process.
    Thread,
    /// The idle task of a CPU, and whether that CPU is online.
    Idle(Cpu, bool),
}

/// A walk of [`walk`]: the closure, and whether it asked to stop.
struct Walk<F> {
    f: F,
    stopped: bool,
}

/// Calls `f` on every thread (under the tasklist lock), then, with `idle`,
/// on the idle task of every possible CPU (under the CPU hotplug lock),
/// until it returns `false`.
fn walk<F: FnMut(&Task, Kind) -> bool>(f: F, idle: bool) {
    /// # Safety
    /// `data` must be the walk below.
    unsafe extern "C" fn one<F: FnMut(&Task, Kind) -> bool>(
        t: *mut bindings::task_struct,
        data: *mut c_void,
    ) -> bool {
        // SAFETY: `data` is the walk below, alive and not otherwise
        // borrowed during the glue's walk.
        let w = unsafe { &mut *data.cast::<Walk<F>>() };
        // SAFETY: the glue calls back with a live task, under the tasklist
        // lock, which the handle does not outlive.
        w.stopped = !(w.f)(unsafe { Task::from_raw(t) }, Kind::Thread);
        !w.stopped
    }
    /// # Safety
    /// `data` must be the walk below.
    unsafe extern "C" fn one_idle<F: FnMut(&Task, Kind) -> bool>(
        t: *mut bindings::task_struct,
        cpu: c_int,
        online: bool,
        data: *mut c_void,
    ) -> bool {
        // SAFETY: as above.
        let w = unsafe { &mut *data.cast::<Walk<F>>() };
        // SAFETY: the idle task of a possible CPU never goes; `cpu` is that
        // CPU.
        w.stopped = !(w.f)(unsafe { Task::from_raw(t) }, Kind::Idle(Cpu(cpu), online));
        !w.stopped
    }
    let mut walk = Walk { f, stopped: false };
    let data = (&raw mut walk).cast::<c_void>();
    // SAFETY: `data` is the walk, which outlives the glue's walks, and the
    // callbacks take it as such.
    unsafe {
        glue::klp_glue_walk_tasks(one::<F>, data);
        if idle && !walk.stopped {
            glue::klp_glue_walk_idle_tasks(one_idle::<F>, data);
        }
    }
}

/// Calls `f` on every thread, then on the idle task of every possible CPU.
pub(crate) fn for_each_task<F: FnMut(&Task, Kind)>(mut f: F) {
    walk(
        |t, kind| {
            f(t, kind);
            true
        },
        true,
    );
}

/// Calls `f` on every thread, then on the idle task of every possible CPU,
/// until it returns `false`.
pub(crate) fn for_each_task_while<F: FnMut(&Task, Kind) -> bool>(f: F) {
    walk(f, true);
}

/// Calls `f` on every thread (not the idle tasks).
pub(crate) fn for_each_thread<F: FnMut(&Task)>(mut f: F) {
    walk(
        |t, _| {
            f(t);
            true
        },
        false,
    );
}

/// Turns the `cond_resched()` hook, which lets busy tasks switch, on or
/// off.
pub(crate) fn set_cond_resched_hook(enable: bool) {
    // SAFETY: plain call of the glue.
    unsafe { glue::klp_glue_cond_resched(enable) }
}

/// (Re)schedules the retry work of the transition in `delay` jiffies.
pub(crate) fn schedule_transition_work(delay: c_ulong) {
    // SAFETY: plain call of the glue.
    unsafe { glue::klp_glue_schedule_transition_work(delay) }
}

/// One second in jiffies, rounded so that timers of several subsystems
/// fire together.
pub(crate) fn about_a_second() -> c_ulong {
    // SAFETY: a plain computation; HZ is the kernel's tick rate.
    unsafe { bindings::round_jiffies_relative(bindings::HZ as _) }
}

/// Waits until a work item ran on every CPU: no CPU is still in code
/// that started before the call (where preemption was disabled).
pub(crate) fn synchronize_cpus() {
    /// Does nothing: what counts is that it ran on every CPU.
    ///
    /// # Safety
    /// Called by the workqueue.
    unsafe extern "C" fn sync_fn(_work: *mut bindings::work_struct) {}
    // SAFETY: `sync_fn` does nothing; schedule_on_each_cpu() waits for it
    // on every CPU.
    unsafe { bindings::schedule_on_each_cpu(Some(sync_fn)) };
}

/// Preemption disabled (without tracing) until the guard is dropped.
pub(crate) struct PreemptGuard {
    /// Not `Send`: enabled again on the CPU that disabled it.
    _not_send: PhantomData<*mut ()>,
}

impl PreemptGuard {
    /// Disables preemption.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        // SAFETY: paired with the `drop` below.
        unsafe { glue::klp_glue_preempt_disable() };
        PreemptGuard {
            _not_send: PhantomData,
        }
    }
}

impl Drop for PreemptGuard {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: paired with `new`.
        unsafe { glue::klp_glue_preempt_enable() };
    }
}
