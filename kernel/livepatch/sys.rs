// SPDX-License-Identifier: GPL-2.0-or-later

//! The C side of the core: the glue of `klp_glue.c` and thin wrappers of
//! kernel facilities that the rest of the core uses.
//!
//! Everything here is small; each `unsafe` block states why it is sound.

use core::cell::UnsafeCell;
use core::fmt;
use kernel::alloc::flags::{GFP_KERNEL, __GFP_ZERO};
use kernel::alloc::KBox;
use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

/// Signatures of the functions in `kernel/livepatch/klp_glue.c`.
pub(crate) mod glue {
    use super::*;

    // The C structures are only passed by pointer, never by value.
    #[allow(improper_ctypes)]
    extern "C" {
        pub(crate) static mut klp_mutex: bindings::mutex;
        pub(crate) fn klp_glue_cond_resched(enable: bool);
        pub(crate) fn klp_glue_current() -> *mut bindings::task_struct;
        pub(crate) fn klp_glue_fops() -> *mut bindings::ftrace_ops;
        pub(crate) fn klp_glue_site_bucket(ip: c_ulong) -> *mut *mut c_void;
        pub(crate) fn klp_glue_patch_pending(task: *mut bindings::task_struct) -> bool;
        pub(crate) fn klp_glue_set_patch_pending(task: *mut bindings::task_struct, pending: bool);
        pub(crate) fn klp_glue_test_and_clear_patch_pending(
            task: *mut bindings::task_struct,
        ) -> bool;
        pub(crate) fn klp_glue_preempt_disable();
        pub(crate) fn klp_glue_preempt_enable();
        pub(crate) fn klp_glue_stack_entries(nr: *mut u32) -> *mut c_ulong;
        pub(crate) fn klp_glue_walk_tasks(
            f: unsafe extern "C" fn(*mut bindings::task_struct, *mut c_void) -> bool,
            data: *mut c_void,
        );
        pub(crate) fn klp_glue_walk_idle_tasks(
            f: unsafe extern "C" fn(*mut bindings::task_struct, c_int, bool, *mut c_void) -> bool,
            data: *mut c_void,
        );
        pub(crate) fn klp_glue_signal_task(task: *mut bindings::task_struct);
        pub(crate) fn klp_glue_schedule_transition_work(delay: c_ulong);
        pub(crate) fn klp_glue_init_work(
            work: *mut bindings::work_struct,
            f: unsafe extern "C" fn(*mut bindings::work_struct),
        );
        pub(crate) fn klp_glue_init_completion(done: *mut bindings::completion);
        pub(crate) fn klp_glue_schedule_work(work: *mut bindings::work_struct) -> bool;
        pub(crate) fn klp_glue_synchronize_rcu_tasks();
        pub(crate) fn klp_glue_shadow_index(bits: c_uint, obj: *mut c_void, id: c_ulong)
            -> c_ulong;
        pub(crate) fn klp_glue_shadow_find(
            obj: *mut c_void,
            id: c_ulong,
        ) -> *mut crate::shadow::Shadow;
        pub(crate) fn klp_glue_shadow_schedule_resize();
        pub(crate) fn klp_glue_resched();
        pub(crate) fn klp_glue_shadow_lock() -> c_ulong;
        pub(crate) fn klp_glue_shadow_unlock(flags: c_ulong);
        pub(crate) fn klp_glue_debug(msg: *const c_char);
        pub(crate) fn klp_try_switch_task(msg: *const c_char);
    }
}

/// A message formatted into a fixed buffer (longer ones are cut), always
/// NUL-terminated.
struct MsgBuf {
    buf: [u8; 256],
    len: usize,
}

impl MsgBuf {
    fn format(args: fmt::Arguments<'_>) -> MsgBuf {
        let mut m = MsgBuf {
            buf: [0; 256],
            len: 0,
        };
        // A full buffer is not an error: the message is cut.
        let _ = fmt::Write::write_fmt(&mut m, args);
        m
    }

    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr()
    }
}

impl fmt::Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep the last byte for the terminating NUL.
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Prints a debug message through the dynamic-debug site of the glue:
/// `file kernel/livepatch/* +p` turns it on, as for the C core.
pub(crate) fn debug(args: fmt::Arguments<'_>) {
    let m = MsgBuf::format(args);
    // SAFETY: `m` holds a NUL-terminated string that outlives the call.
    unsafe { glue::klp_glue_debug(m.as_ptr()) }
}

/// Like [`debug`], through the call site that `func klp_try_switch_task`
/// selects.
pub(crate) fn debug_switch(args: fmt::Arguments<'_>) {
    let m = MsgBuf::format(args);
    // SAFETY: as in `debug`.
    unsafe { glue::klp_try_switch_task(m.as_ptr()) }
}

/// `pr_debug` of the core, controlled by dynamic debug.
macro_rules! klp_debug {
    ($($arg:tt)*) => { $crate::sys::debug(format_args!($($arg)*)) };
}
pub(crate) use klp_debug;

/// Proof that the caller holds `klp_mutex`.
///
/// Functions that touch the core's state under the mutex take a reference
/// to it, so the compiler checks that the lock is held.
pub(crate) struct KlpLock {
    _private: (),
}

impl KlpLock {
    /// Takes `klp_mutex`; it is released when the guard is dropped.
    pub(crate) fn lock() -> KlpLock {
        // SAFETY: `klp_mutex` is a statically initialised mutex that lives
        // forever; we are in process context (every caller may sleep).
        unsafe { bindings::mutex_lock(&raw mut glue::klp_mutex) };
        KlpLock { _private: () }
    }

    /// A token for code that is serialised against the holders of
    /// `klp_mutex` by other means; dropping it does not unlock anything.
    ///
    /// # Safety
    /// The caller must explain why nothing it reads can change under it.
    pub(crate) unsafe fn assume_held() -> core::mem::ManuallyDrop<KlpLock> {
        core::mem::ManuallyDrop::new(KlpLock { _private: () })
    }
}

impl Drop for KlpLock {
    fn drop(&mut self) {
        // SAFETY: a `KlpLock` exists only while the mutex is held.
        unsafe { bindings::mutex_unlock(&raw mut glue::klp_mutex) };
    }
}

/// Data that is only ever accessed with `klp_mutex` held; laid out as the
/// data itself.
#[repr(transparent)]
pub(crate) struct Locked<T>(UnsafeCell<T>);

// SAFETY: all access goes through `get`, which requires the mutex.
unsafe impl<T> Sync for Locked<T> {}

impl<T> Locked<T> {
    /// Wraps a value.
    pub(crate) const fn new(v: T) -> Self {
        Locked(UnsafeCell::new(v))
    }

    /// The value, borrowed for as long as the lock is.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn get<'a>(&'a self, _lock: &'a mut KlpLock) -> &'a mut T {
        // SAFETY: the mutex is held and the `&mut KlpLock` borrow makes this
        // the only access for its lifetime.
        unsafe { &mut *self.0.get() }
    }

    /// Raw access for readers that do not take the mutex (the ftrace handler,
    /// the scheduler hooks); they must follow the core's barrier rules.
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.0.get()
    }
}

impl<T: Copy> Locked<T> {
    /// A copy of the value, for a holder of the mutex that cannot lend its
    /// guard mutably (it walks lists that borrow the guard).
    pub(crate) fn read(&self, _lock: &KlpLock) -> T {
        // SAFETY: the mutex is held (`_lock`).  A `&mut T` of `get` lives
        // only while the guard is borrowed mutably, so none exists while
        // `_lock` is borrowed; no reference escapes.
        unsafe { *self.0.get() }
    }

    /// Replaces the value; see [`Locked::read`].
    pub(crate) fn write(&self, _lock: &KlpLock, v: T) {
        // SAFETY: as in `read`.
        unsafe { *self.0.get() = v };
    }
}

/// The current task.
#[inline(always)]
pub(crate) fn current() -> *mut bindings::task_struct {
    // SAFETY: always valid in task context.
    unsafe { glue::klp_glue_current() }
}

/// Reads `task->patch_state`.
#[inline(always)]
pub(crate) fn patch_state(task: *mut bindings::task_struct) -> c_int {
    // SAFETY: callers pass a task that is alive (current, or one pinned by
    // the tasklist lock or the runqueue lock); the field is read once, as
    // the C core does with READ_ONCE semantics.
    unsafe { core::ptr::read_volatile(&raw const (*task).patch_state) }
}

/// Waits for an RCU Tasks grace period; the caller may sleep.
pub(crate) fn synchronize_rcu_tasks() {
    // SAFETY: plain call of the glue.
    unsafe { glue::klp_glue_synchronize_rcu_tasks() }
}

/// A `kstrdup()` copy of `s`, to be freed with `kfree()`.
pub(crate) fn kstrdup(s: &kernel::str::CStr) -> kernel::error::Result<*const c_char> {
    // SAFETY: `s` is a NUL-terminated string.
    let copy = unsafe { bindings::kstrdup(s.as_char_ptr(), bindings::GFP_KERNEL) };
    if copy.is_null() {
        Err(kernel::error::code::ENOMEM)
    } else {
        Ok(copy)
    }
}

/// C structures for which all-zero bytes are a valid value, and the state
/// in which the C API expects a new one.
///
/// # Safety
/// All-zero bytes must be a valid value of the type.
pub(crate) unsafe trait Zeroed {}

// SAFETY: integers, booleans, raw pointers, optional function pointers and
// C structures of those (kobject, list heads, callbacks).
unsafe impl Zeroed for bindings::klp_object {}
// SAFETY: as for `klp_object`.
unsafe impl Zeroed for bindings::klp_func {}

/// A zeroed `T` from kmalloc; [`KBox::into_raw`] hands it over, to be freed
/// with `kfree()`.
pub(crate) fn kzalloc<T: Zeroed>() -> kernel::error::Result<KBox<T>> {
    let b = KBox::<T>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
    // SAFETY: `__GFP_ZERO` zeroed the memory, a valid `T` (`Zeroed`).
    Ok(unsafe { b.assume_init() })
}

/// The NUL-terminated C string at `p`, or `None` for a null pointer.
pub(crate) fn cstr<'a>(p: *const kernel::ffi::c_char) -> Option<&'a kernel::str::CStr> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the livepatch structures hold NUL-terminated names that
        // live as long as the module that defines them, which outlives
        // every use the core makes of them.
        Some(unsafe { kernel::str::CStr::from_char_ptr(p) })
    }
}

/// Displays a possibly-null C string (`"(null)"` for a null pointer).
pub(crate) struct Name(pub(crate) *const kernel::ffi::c_char);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match cstr(self.0) {
            Some(s) => match s.to_str() {
                Ok(s) => f.write_str(s),
                Err(_) => f.write_str("(invalid)"),
            },
            None => f.write_str("(null)"),
        }
    }
}
