// SPDX-License-Identifier: GPL-2.0-or-later

//! The C `struct list_head` operations the core needs.
//!
//! The livepatch structures of `include/linux/livepatch.h` link objects and
//! functions through embedded `list_head`s; the core keeps using them, so a
//! patch costs no memory beyond what C modules already provide.  The
//! operations mirror `include/linux/list.h` and `rculist.h`.

use core::sync::atomic::{fence, Ordering};
use kernel::bindings::list_head;

/// Makes `head` an empty list.
///
/// # Safety
/// `head` must be valid for writes.
pub(crate) unsafe fn init(head: *mut list_head) {
    // SAFETY: per the function's contract.
    unsafe {
        (*head).next = head;
        (*head).prev = head;
    }
}

/// Whether the list at `head` is empty.
///
/// # Safety
/// `head` must be an initialised list head.
pub(crate) unsafe fn is_empty(head: *const list_head) -> bool {
    // SAFETY: per the function's contract.
    unsafe { core::ptr::read_volatile(&(*head).next) as *const _ == head }
}

/// Adds `new` at the tail of the list at `head`.
///
/// # Safety
/// Both must be valid; `head` initialised; `new` not on any list; the caller
/// serialises writers of the list.
pub(crate) unsafe fn add_tail(new: *mut list_head, head: *mut list_head) {
    // SAFETY: per the function's contract.
    unsafe {
        let prev = (*head).prev;
        (*new).next = head;
        (*new).prev = prev;
        (*prev).next = new;
        (*head).prev = new;
    }
}

/// Adds `new` at the head of an RCU-read list (`list_add_rcu`): readers see
/// either the old first entry or the fully initialised new one.
///
/// # Safety
/// As for [`add_tail`].
pub(crate) unsafe fn add_rcu(new: *mut list_head, head: *mut list_head) {
    // SAFETY: per the function's contract.
    unsafe {
        let next = (*head).next;
        (*new).next = next;
        (*new).prev = head;
        // rcu_assign_pointer(): publish `new` after its fields are written.
        fence(Ordering::Release);
        core::ptr::write_volatile(&mut (*head).next, new);
        (*next).prev = new;
    }
}

/// Removes `entry` from its list (`list_del_rcu`): concurrent RCU readers
/// standing on `entry` can still move forward.
///
/// # Safety
/// `entry` must be on a list whose writers the caller serialises.
pub(crate) unsafe fn del_rcu(entry: *mut list_head) {
    // SAFETY: per the function's contract.
    unsafe {
        let prev = (*entry).prev;
        let next = (*entry).next;
        (*next).prev = prev;
        core::ptr::write_volatile(&mut (*prev).next, next);
        (*entry).prev = core::ptr::null_mut();
    }
}

/// Removes `entry` from its list and leaves it as an empty list.
///
/// # Safety
/// As for [`del_rcu`], and no RCU reader may stand on `entry`.
pub(crate) unsafe fn del_init(entry: *mut list_head) {
    // SAFETY: per the function's contract.
    unsafe {
        let prev = (*entry).prev;
        let next = (*entry).next;
        (*next).prev = prev;
        (*prev).next = next;
        init(entry);
    }
}

/// The first entry of an RCU-read list, or null when it is empty
/// (`list_first_or_null_rcu`, giving the `list_head` of the entry).
///
/// # Safety
/// `head` must be an initialised list read under RCU (or its writer lock).
#[inline(always)]
pub(crate) unsafe fn first_rcu(head: *const list_head) -> *mut list_head {
    // SAFETY: per the function's contract; the dependent load ordering of
    // rcu_dereference() is provided by the address dependency.
    let first = unsafe { core::ptr::read_volatile(&(*head).next) };
    if first as *const _ == head {
        core::ptr::null_mut()
    } else {
        first
    }
}

/// The entry after `entry` on an RCU-read list (`list_next_rcu`).
///
/// # Safety
/// As for [`first_rcu`].
#[inline(always)]
pub(crate) unsafe fn next_rcu(entry: *const list_head) -> *mut list_head {
    // SAFETY: per the function's contract.
    unsafe { core::ptr::read_volatile(&(*entry).next) }
}

/// Iterator over the `list_head`s of a list, safe against removal of the
/// entry just returned (`list_for_each_safe`).
#[derive(Clone)]
pub(crate) struct Iter {
    head: *mut list_head,
    next: *mut list_head,
}

/// Iterates over the list at `head`.
///
/// # Safety
/// `head` must be an initialised list that the caller keeps stable (except
/// for removing the entry last returned) while iterating.
pub(crate) unsafe fn iter(head: *mut list_head) -> Iter {
    Iter {
        head,
        // SAFETY: per the function's contract.
        next: unsafe { (*head).next },
    }
}

/// Like [`iter`], for a list head that may also be all zeroes, as the list
/// heads of the livepatch structures are until the core initialises them:
/// such a list has no entries.
///
/// # Safety
/// `head` must be valid for reads, and either zeroed or as [`iter`]
/// requires.
pub(crate) unsafe fn iter_or_empty(head: *mut list_head) -> Iter {
    // SAFETY: per the function's contract.
    let next = unsafe { (*head).next };
    Iter {
        head,
        next: if next.is_null() { head } else { next },
    }
}

impl Iterator for Iter {
    type Item = *mut list_head;

    fn next(&mut self) -> Option<*mut list_head> {
        if self.next == self.head {
            return None;
        }
        let cur = self.next;
        // SAFETY: `cur` is on the list (contract of `iter`).
        self.next = unsafe { (*cur).next };
        Some(cur)
    }
}

/// `container_of`: the structure of type `$type` whose field `$field` is at
/// `$ptr`.
macro_rules! container_of {
    ($ptr:expr, $type:ty, $field:ident) => {
        ($ptr as *mut u8).wrapping_sub(core::mem::offset_of!($type, $field)) as *mut $type
    };
}
pub(crate) use container_of;
