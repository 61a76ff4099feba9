// SPDX-License-Identifier: GPL-2.0-or-later

//! Shadow variables: data that a livepatch attaches to an existing object
//! (identified by its address) under a numeric id, without changing the
//! object's layout.
//!
//! The `klp_shadow_*()` functions keep their 6.12 meaning.  The variables
//! are kept in the kernel's resizable hash table (`rhashtable`, reached
//! through `klp_glue.c`, keyed by object and id), so that a lookup stays
//! O(1) with a million variables where the C core's 4,096 fixed buckets
//! grow chains.  Lookups take no lock: the table is read under RCU;
//! writers serialise on a spinlock taken with interrupts off (shadow
//! variables are used from any context), and a freed variable is released
//! after a grace period.  Every variable is also on one list, kept under
//! the writers' lock, which [`free_all`] walks.  A livepatch state with
//! `is_shadow` owns the variables of its id: the core frees them, through
//! the state's destructor, when the state is removed ([`free_all`]).

use crate::sys::glue;
use core::cell::UnsafeCell;
use kernel::bindings;
use kernel::ffi::{c_int, c_ulong, c_void};
use kernel::prelude::*;

/// The part of a variable that the hash table sees, as
/// `struct klp_shadow_head` of `klp_glue.h`: its link, then its key.
#[repr(C)]
pub(crate) struct ShadowHead {
    node: bindings::rhash_head,
    obj: *mut c_void,
    id: c_ulong,
}

/// One shadow variable; the caller's data follows the header.
#[repr(C)]
struct Shadow {
    head: ShadowHead,
    /// Neighbours on the list of all variables (writers' lock).
    prev: *mut Shadow,
    next: *mut Shadow,
    rcu: bindings::callback_head,
    /// Start of the data, aligned for any scalar type as in the C core.
    data: [u64; 0],
}

// `find` turns the table's pointer to the head into the variable.
const _: () = assert!(core::mem::offset_of!(Shadow, head) == 0);

/// The list of all variables, newest first; only touched under the
/// writers' lock.
struct AllVariables(UnsafeCell<*mut Shadow>);

// SAFETY: the pointer is only read or written with the writers' lock held
// (through `Guard::all`).
unsafe impl Sync for AllVariables {}

static ALL: AllVariables = AllVariables(UnsafeCell::new(core::ptr::null_mut()));

/// Sets up the hash table; called once by the core's init, before any
/// livepatch module can load.
pub(crate) fn init() -> Result {
    // SAFETY: called once, before any other use of the table.
    kernel::error::to_result(unsafe { glue::klp_glue_shadow_init() })
}

/// The spinlock of the writers, with interrupts disabled.
struct Guard(c_ulong);

impl Guard {
    fn lock() -> Guard {
        // SAFETY: the glue's spinlock is statically initialised.
        Guard(unsafe { glue::klp_glue_shadow_lock() })
    }

    /// The head of the list of all variables.
    fn all(&mut self) -> &mut *mut Shadow {
        // SAFETY: we hold the writers' lock, which serialises every access
        // to `ALL`; the borrow of `self` keeps the lock held.
        unsafe { &mut *ALL.0.get() }
    }

    /// Puts `s`, which is not yet published, on the list of all variables.
    fn link(&mut self, s: *mut Shadow) {
        let head = self.all();
        // SAFETY: `s` is ours; `*head` is a live variable or null, and the
        // list is ours under the lock.
        unsafe {
            (*s).prev = core::ptr::null_mut();
            (*s).next = *head;
            if let Some(first) = (*head).as_mut() {
                first.prev = s;
            }
        }
        *head = s;
    }

    /// Takes `s` off the list of all variables.
    fn unlink(&mut self, s: *mut Shadow) {
        // SAFETY: `s` and its neighbours are live variables on the list,
        // which is ours under the lock.
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if let Some(n) = next.as_mut() {
                n.prev = prev;
            }
            match prev.as_mut() {
                Some(p) => p.next = next,
                None => *self.all() = next,
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: we hold the lock, taken with these flags.
        unsafe { glue::klp_glue_shadow_unlock(self.0) };
    }
}

fn data_of(s: *mut Shadow) -> *mut c_void {
    // SAFETY: `s` points to a live variable; `data` is within it.
    unsafe { (&raw mut (*s).data).cast() }
}

/// Finds the variable `(obj, id)`.  As the C core's lookup, the result
/// stays valid as long as the caller keeps the variable from being freed
/// (the writers' lock, or the livepatch's own rules).
fn find(obj: *mut c_void, id: c_ulong) -> Option<*mut Shadow> {
    // SAFETY: the lookup reads the table under RCU by itself.
    let head = unsafe { glue::klp_glue_shadow_lookup(obj, id) };
    // `head` is the first field of a `Shadow` (`repr(C)`).
    (!head.is_null()).then_some(head.cast::<Shadow>())
}

/// Returns the data of the shadow variable `id` of `obj`, or null.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
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
    let mut guard = Guard::lock();
    // Somebody may have added it meanwhile.
    if let Some(s) = find(obj, id) {
        let data = data_of(s);
        drop(guard);
        // SAFETY: `new` was never published.
        unsafe { bindings::kfree(new.cast()) };
        return existing(data);
    }
    // SAFETY: `new` is ours until published below.
    unsafe {
        (*new).head.obj = obj;
        (*new).head.id = id;
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
    // SAFETY: `new` is fully set up; the table publishes it to lock-free
    // readers (with release ordering) and copies nothing.
    let err = unsafe { glue::klp_glue_shadow_insert(&raw mut (*new).head) };
    if err != 0 {
        drop(guard);
        // The C core cannot fail after the constructor; the table's insert
        // can, rarely (a table over its load factor whose growth could not
        // allocate in atomic context).  The constructor's work is then
        // lost: the allocating calls take no destructor to undo it.
        // SAFETY: `new` was not published.
        unsafe { bindings::kfree(new.cast()) };
        pr_err!("Failed to add shadow variable (id {}): {}\n", id, err);
        return core::ptr::null_mut();
    }
    guard.link(new);
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

/// Removes the variable `s` from the table and the list (held lock), calls
/// `dtor` and frees it after a grace period.
fn remove(guard: &mut Guard, s: *mut Shadow, dtor: bindings::klp_shadow_dtor_t) {
    guard.unlink(s);
    // SAFETY: `s` is in the table and we hold the writers' lock; readers
    // that found it keep it until the grace period queued last.
    unsafe {
        glue::klp_glue_shadow_remove(&raw mut (*s).head);
        if let Some(dtor) = dtor {
            dtor((*s).head.obj, data_of(s));
        }
        bindings::kvfree_call_rcu(&raw mut (*s).rcu, s.cast());
    }
}

/// Frees the shadow variable `id` of `obj`, calling `dtor` first.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_free(
    obj: *mut c_void,
    id: c_ulong,
    dtor: bindings::klp_shadow_dtor_t,
) {
    let mut guard = Guard::lock();
    if let Some(s) = find(obj, id) {
        remove(&mut guard, s, dtor);
    }
}

/// Frees every shadow variable `id`, calling `dtor` on each.
#[no_mangle]
pub(crate) extern "C" fn klp_shadow_free_all(id: c_ulong, dtor: bindings::klp_shadow_dtor_t) {
    free_all(id, dtor);
}

/// Frees every shadow variable `id` (the garbage collection of states);
/// returns how many there were.
pub(crate) fn free_all(id: c_ulong, dtor: bindings::klp_shadow_dtor_t) -> usize {
    let mut guard = Guard::lock();
    let mut n = 0;
    let mut cur = *guard.all();
    while !cur.is_null() {
        // SAFETY: `cur` is on the list, which is ours under the lock; its
        // successor is read before it is removed.
        let (next, cur_id) = unsafe { ((*cur).next, (*cur).head.id) };
        if cur_id == id {
            remove(&mut guard, cur, dtor);
            n += 1;
        }
        cur = next;
    }
    n
}
