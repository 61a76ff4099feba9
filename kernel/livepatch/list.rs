// SPDX-License-Identifier: GPL-2.0-or-later

//! The C `struct list_head` operations the core needs.
//!
//! The livepatch structures of `include/linux/livepatch.h` link objects and
//! functions through embedded `list_head`s; the core keeps using them, so a
//! patch costs no memory beyond what C modules already provide.  The
//! operations mirror `include/linux/list.h` and `rculist.h`.
//!
//! [`PATCHES`], the list of the registered patches that `crate::registry`
//! keeps, is a typed list over them: its walks give handles that borrow
//! the `klp_mutex` guard, and only a `&mut KlpLock` changes it.

use crate::handles::KlpPatch;
use crate::sys::{KlpLock, Locked};
use core::sync::atomic::{fence, Ordering};
use kernel::bindings::{self, list_head};

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

/// The list of the registered patches: a C list of `klp_patch.list`, oldest
/// first, walked and changed with `klp_mutex` held.
///
/// # Invariants
/// The patches on the list are set up, and stay valid while they are on
/// it; the list changes only with `klp_mutex` held, and only through a
/// `&mut KlpLock`.
#[repr(transparent)]
pub(crate) struct PatchList(Locked<bindings::list_head>);

/// Registered patches, linked through `klp_patch.list`, oldest first; an
/// empty list from the start (the head points to itself).
pub(crate) static PATCHES: PatchList = PatchList(Locked::new(bindings::list_head {
    next: (&raw const PATCHES)
        .cast::<bindings::list_head>()
        .cast_mut(),
    prev: (&raw const PATCHES)
        .cast::<bindings::list_head>()
        .cast_mut(),
}));

impl PatchList {
    /// The registered patches as handles, oldest first.
    ///
    /// The iterator borrows the guard: nothing can take a patch off the
    /// list (that needs a `&mut KlpLock`) while it lives.
    pub(crate) fn iter<'a>(&'a self, _lock: &'a KlpLock) -> Patches<'a> {
        Patches {
            // SAFETY: the list is initialised, and changes only under
            // klp_mutex, which the borrowed guard keeps held, and only with
            // a `&mut KlpLock`, which cannot exist while the guard is
            // borrowed (type invariant).
            iter: unsafe { iter(self.0.as_ptr()) },
            _lock: core::marker::PhantomData,
        }
    }

    /// The registered patches as raw pointers, oldest first, for the walks
    /// that cannot borrow a guard.
    ///
    /// # Safety
    /// The caller must hold `klp_mutex` throughout the walk, and change the
    /// list only by taking off the patch last returned.
    pub(crate) unsafe fn iter_raw(&self) -> impl Iterator<Item = *mut bindings::klp_patch> {
        // SAFETY: the list is initialised; per the function's contract, it
        // stays stable but for the removal that the walk allows.
        unsafe { iter(self.0.as_ptr()) }.map(|l| container_of!(l, bindings::klp_patch, list))
    }

    /// Adds `patch` at the end of the list.
    ///
    /// # Safety
    /// `patch` must be set up and on no list, and stay valid until it is
    /// taken off the list ([`PatchList::remove`]).
    pub(crate) unsafe fn push_back(&self, lock: &mut KlpLock, patch: &KlpPatch) {
        let head = self.0.get(lock) as *mut bindings::list_head;
        // SAFETY: klp_mutex held (`lock`), mutably: no walk is in progress;
        // the patch is on no list (the function's contract).
        unsafe { add_tail(patch.list_node(), head) };
    }

    /// Takes `patch` off the list, if it is on it.
    pub(crate) fn remove(&self, _lock: &mut KlpLock, patch: &KlpPatch) {
        let node = patch.list_node();
        // SAFETY: the entry of a set-up patch (type invariant of
        // `KlpPatch`) is an empty list, or on this list, whose neighbours
        // are valid while klp_mutex is held; it is held mutably (`_lock`):
        // no walk is in progress.
        unsafe {
            if !is_empty(node) {
                del_init(node);
            }
        }
    }
}

/// Iterator over the registered patches, see [`PatchList::iter`].
#[derive(Clone)]
pub(crate) struct Patches<'a> {
    iter: Iter,
    _lock: core::marker::PhantomData<&'a KlpLock>,
}

impl<'a> Iterator for Patches<'a> {
    type Item = &'a KlpPatch;

    fn next(&mut self) -> Option<&'a KlpPatch> {
        let node = self.iter.next()?;
        let patch = container_of!(node, bindings::klp_patch, list);
        // SAFETY: a registered patch was accepted and set up; it stays on
        // the list, and valid, while klp_mutex is held, which the borrowed
        // guard proves for `'a`.
        Some(unsafe { KlpPatch::from_raw(patch) })
    }
}
