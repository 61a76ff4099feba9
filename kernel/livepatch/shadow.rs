// SPDX-License-Identifier: GPL-2.0-or-later

//! Shadow variables: data that a livepatch attaches to an existing object
//! (identified by its address) under a numeric id, without changing the
//! object's layout.
//!
//! The `klp_shadow_*()` functions keep their 6.12 meaning.  Lookups take no
//! lock: the table is read under RCU; writers serialise on a spinlock taken
//! with interrupts off (shadow variables are used from any context), and a
//! freed variable is released after a grace period.  A livepatch state with
//! `is_shadow` owns the variables of its id: the core frees them, through
//! the state's destructor, when the state is removed ([`free_all`]).

use crate::sys::glue;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::bindings;
use kernel::ffi::{c_int, c_ulong, c_void};
use kernel::prelude::*;

/// One shadow variable; the caller's data follows the header.
#[repr(C)]
struct Shadow {
    /// Next variable of the bucket; published with release ordering.
    next: AtomicPtr<Shadow>,
    rcu: bindings::callback_head,
    obj: *mut c_void,
    id: c_ulong,
    /// Start of the data, aligned for any scalar type as in the C core.
    data: [u64; 0],
}

const HASH_BITS: u32 = 12;

/// The buckets: singly linked lists, newest first.
static TABLE: [AtomicPtr<Shadow>; 1 << HASH_BITS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; 1 << HASH_BITS];

fn bucket(obj: *mut c_void) -> &'static AtomicPtr<Shadow> {
    // hash_64() of the object's address, as the kernel's hash_ptr().
    const GOLDEN_RATIO_64: u64 = 0x61c8_8646_80b5_83eb;
    let h = (obj as u64).wrapping_mul(GOLDEN_RATIO_64) >> (64 - HASH_BITS);
    &TABLE[h as usize]
}

/// The spinlock of the writers, with interrupts disabled.
struct Guard(c_ulong);

impl Guard {
    fn lock() -> Guard {
        // SAFETY: the glue's spinlock is statically initialised.
        Guard(unsafe { glue::klp_glue_shadow_lock() })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: we hold the lock, taken with these flags.
        unsafe { glue::klp_glue_shadow_unlock(self.0) };
    }
}

/// RCU read-side critical section.
struct RcuRead;

impl RcuRead {
    fn lock() -> RcuRead {
        // SAFETY: paired with the unlock in `drop`.
        unsafe { glue::klp_glue_rcu_read_lock() };
        RcuRead
    }
}

impl Drop for RcuRead {
    fn drop(&mut self) {
        // SAFETY: paired with `lock`.
        unsafe { glue::klp_glue_rcu_read_unlock() };
    }
}

fn data_of(s: *mut Shadow) -> *mut c_void {
    // SAFETY: `s` points to a live variable; `data` is within it.
    unsafe { (&raw mut (*s).data).cast() }
}

/// Finds the variable `(obj, id)`.  The caller is in an RCU read-side
/// section or holds the writers' lock.
fn find(obj: *mut c_void, id: c_ulong) -> Option<*mut Shadow> {
    let mut cur = bucket(obj).load(Ordering::Acquire);
    while !cur.is_null() {
        // SAFETY: variables on a bucket stay allocated for the readers until
        // a grace period after their removal.
        unsafe {
            if (*cur).obj == obj && (*cur).id == id {
                return Some(cur);
            }
            cur = (*cur).next.load(Ordering::Acquire);
        }
    }
    None
}

/// Returns the data of the shadow variable `id` of `obj`, or null.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    let _rcu = RcuRead::lock();
    find(obj, id).map_or(core::ptr::null_mut(), data_of)
}

fn get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: bindings::gfp_t,
    ctor: bindings::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
    warn_on_exist: bool,
) -> *mut c_void {
    let existing = |data: *mut c_void| {
        if warn_on_exist {
            pr_err!("Duplicate shadow variable (id {})\n", id);
            core::ptr::null_mut()
        } else {
            data
        }
    };
    let found = klp_shadow_get(obj, id);
    if !found.is_null() {
        return existing(found);
    }
    let Some(total) = size.checked_add(core::mem::size_of::<Shadow>()) else {
        return core::ptr::null_mut();
    };
    // Allocate outside the lock, with the caller's flags.
    // SAFETY: krealloc of null is kmalloc; __GFP_ZERO zeroes the memory.
    let new = unsafe { bindings::krealloc(core::ptr::null(), total, gfp | bindings::__GFP_ZERO) }
        as *mut Shadow;
    if new.is_null() {
        return core::ptr::null_mut();
    }
    let guard = Guard::lock();
    // Somebody may have added it meanwhile.
    if let Some(s) = find(obj, id) {
        drop(guard);
        // SAFETY: `new` was never published.
        unsafe { bindings::kfree(new.cast()) };
        return existing(data_of(s));
    }
    // SAFETY: `new` is ours until published below.
    unsafe {
        (*new).obj = obj;
        (*new).id = id;
    }
    if let Some(ctor) = ctor {
        // SAFETY: the livepatch's constructor, called as in the C core
        // (under the lock, interrupts off) on the zeroed data.
        let err: c_int = unsafe { ctor(obj, data_of(new), ctor_data) };
        if err != 0 {
            drop(guard);
            // SAFETY: `new` was never published.
            unsafe { bindings::kfree(new.cast()) };
            pr_err!("Failed to construct shadow variable (id {}): {}\n", id, err);
            return core::ptr::null_mut();
        }
    }
    let head = bucket(obj);
    // SAFETY: `new` is fully set up; publishing it with release ordering
    // makes its fields visible to lock-free readers.
    unsafe {
        (*new)
            .next
            .store(head.load(Ordering::Relaxed), Ordering::Relaxed)
    };
    head.store(new, Ordering::Release);
    drop(guard);
    data_of(new)
}

/// Allocates the shadow variable `id` of `obj` (`size` bytes, zeroed, then
/// `ctor`); fails when it exists.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: bindings::gfp_t,
    ctor: bindings::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    get_or_alloc(obj, id, size, gfp, ctor, ctor_data, true)
}

/// Returns the shadow variable `id` of `obj`, allocating it if needed.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: bindings::gfp_t,
    ctor: bindings::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    get_or_alloc(obj, id, size, gfp, ctor, ctor_data, false)
}

/// Unlinks the variable after `link` (held lock), calls `dtor` and frees
/// it after a grace period.
fn remove(link: &AtomicPtr<Shadow>, s: *mut Shadow, dtor: bindings::klp_shadow_dtor_t) {
    // SAFETY: `s` is on the bucket and we hold the writers' lock; readers
    // standing on `s` can still follow its `next`.
    unsafe {
        link.store((*s).next.load(Ordering::Relaxed), Ordering::Release);
        if let Some(dtor) = dtor {
            dtor((*s).obj, data_of(s));
        }
        bindings::kvfree_call_rcu(&raw mut (*s).rcu, s.cast());
    }
}

/// Calls `f(link, variable)` for every variable of a bucket; `f` returns
/// whether it removed the variable.  The caller holds the writers' lock.
fn walk(head: &AtomicPtr<Shadow>, mut f: impl FnMut(&AtomicPtr<Shadow>, *mut Shadow) -> bool) {
    let mut link = head;
    loop {
        let cur = link.load(Ordering::Relaxed);
        if cur.is_null() {
            return;
        }
        if !f(link, cur) {
            // SAFETY: `cur` stays on the list: we hold the lock.
            link = unsafe { &(*cur).next };
        }
    }
}

/// Frees the shadow variable `id` of `obj`, calling `dtor` first.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_free(
    obj: *mut c_void,
    id: c_ulong,
    dtor: bindings::klp_shadow_dtor_t,
) {
    let _guard = Guard::lock();
    let mut done = false;
    walk(bucket(obj), |link, s| {
        // SAFETY: under the lock.
        if !done && unsafe { (*s).obj == obj && (*s).id == id } {
            remove(link, s, dtor);
            done = true;
            return true;
        }
        false
    });
}

/// Frees every shadow variable `id`, calling `dtor` on each.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_free_all(id: c_ulong, dtor: bindings::klp_shadow_dtor_t) {
    free_all(id, dtor);
}

/// Frees every shadow variable `id` (the garbage collection of states);
/// returns how many there were.
pub(crate) fn free_all(id: c_ulong, dtor: bindings::klp_shadow_dtor_t) -> usize {
    let _guard = Guard::lock();
    let mut n = 0;
    for head in TABLE.iter() {
        walk(head, |link, s| {
            // SAFETY: under the lock.
            if unsafe { (*s).id } == id {
                remove(link, s, dtor);
                n += 1;
                return true;
            }
            false
        });
    }
    n
}
