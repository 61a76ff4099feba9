// SPDX-License-Identifier: GPL-2.0-or-later

//! Shadow variables: data that a livepatch attaches to an existing object
//! (identified by its address) under a numeric id, without changing the
//! object's layout.
//!
//! The `klp_shadow_*()` functions keep their 6.12 meaning.  The variables
//! are kept in a hash table keyed by object and id that doubles or halves
//! with their number, so that a lookup stays O(1) with a million variables
//! where the C core's 4,096 fixed buckets grow chains.
//!
//! Lookups take no lock: the glue's `klp_glue_shadow_find()` reads the table
//! under `rcu_read_lock_sched()`, inline C because a call per step would
//! cost more than the lookup.  Its layout is in `klp_glue.h`; this file is
//! the only writer.  Writers serialise on a spinlock taken with interrupts
//! off (shadow variables are used from any context), publish every change
//! with release ordering, and free a variable after a grace period.
//!
//! Each variable has two chain links, and each table uses one of them
//! (`Table::gen`).  Inserting never allocates a table, so it never fails
//! once the variable is allocated; when the count leaves the table's range
//! a work item resizes it: it allocates the new table, links every
//! variable into it through the other link, a few buckets per hold of the
//! lock (writers meanwhile keep both tables right), publishes it, and
//! frees the old table after `synchronize_rcu()`, which also waits for the
//! readers' preemption-disabled sections.  Until then, readers of the old
//! table walk its chains, which nobody changes any more.
//!
//! Every variable is also on one list, kept under the writers' lock, which
//! [`free_all`] walks.  A livepatch state with `is_shadow` owns the
//! variables of its id: the core frees them, through the state's
//! destructor, when the state is removed ([`free_all`]).

use crate::sys::glue;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use kernel::alloc::flags::{GFP_KERNEL, __GFP_NOWARN};
use kernel::alloc::{KBox, KVVec};
use kernel::bindings;
use kernel::ffi::{c_int, c_uint, c_ulong, c_void};
use kernel::prelude::*;

/// One shadow variable; the caller's data follows the header.  The fields
/// up to `id` are `struct klp_shadow_node` of `klp_glue.h`.
#[repr(C)]
pub(crate) struct Shadow {
    /// The chain links: each table uses one (`Table::gen`).
    next: [AtomicPtr<Shadow>; 2],
    obj: *mut c_void,
    id: c_ulong,
    /// Neighbours on the list of all variables (writers' lock).
    prev_all: *mut Shadow,
    next_all: *mut Shadow,
    rcu: bindings::callback_head,
    /// Start of the data, aligned for any scalar type as in the C core.
    data: [u64; 0],
}

// The layout of `struct klp_shadow_node`.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Shadow, next) == 0);
    assert!(offset_of!(Shadow, obj) == 2 * size_of::<usize>());
    assert!(offset_of!(Shadow, id) == 3 * size_of::<usize>());
};

/// A table: `struct klp_shadow_table` of `klp_glue.h`, then what only the
/// writers use.
#[repr(C)]
struct Table {
    /// `1 << bits` buckets: the first variable of each chain.
    buckets: *const AtomicPtr<Shadow>,
    bits: c_uint,
    /// Which of `Shadow::next` this table's chains use; written only while
    /// no reader can see the table.
    gen: AtomicU32,
    /// The memory of `buckets`, unless it is [`BOOT_BUCKETS`].
    vec: Option<KVVec<AtomicPtr<Shadow>>>,
}

// The layout of `struct klp_shadow_table`.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Table, buckets) == 0);
    assert!(offset_of!(Table, bits) == size_of::<usize>());
    assert!(offset_of!(Table, gen) == size_of::<usize>() + size_of::<c_uint>());
};

// SAFETY: the fields are the address of the buckets, which are atomic, and
// numbers that change only while no other CPU can see the table (`gen`,
// atomic as well).
unsafe impl Sync for Table {}

/// The table's size at boot, and the smallest: the C core's number of
/// buckets.
const MIN_BITS: c_uint = 12;
/// 128M buckets (1 GB) at most: kvmalloc() refuses more than `INT_MAX`
/// bytes.
const MAX_BITS: c_uint = 27;
/// Buckets moved to the new table per hold of the writers' lock, at most.
const MOVE_CHUNK: usize = 512;
/// Variables moved per hold of the writers' lock: after the bucket that
/// reaches this many, the resize lets interrupts in (chains are long when
/// the resize lags behind the writers).
const MOVE_BUDGET: usize = 1024;

/// The buckets of the table at boot, and of every table of `MIN_BITS`.
static BOOT_BUCKETS: [AtomicPtr<Shadow>; 1 << MIN_BITS] =
    [const { AtomicPtr::new(null_mut()) }; 1 << MIN_BITS];

/// The table of `MIN_BITS` buckets, current at boot: nothing to allocate
/// before the first variable, and a table to shrink back to.
static BOOT_TABLE: Table = Table {
    buckets: &raw const BOOT_BUCKETS as *const AtomicPtr<Shadow>,
    bits: MIN_BITS,
    gen: AtomicU32::new(0),
    vec: None,
};

/// The current table, read by the glue's lookup (published with release
/// ordering, under the writers' lock).
#[export_name = "klp_rust_shadow_table"]
static CURRENT: AtomicPtr<Table> = AtomicPtr::new(&raw const BOOT_TABLE as *mut Table);

impl Table {
    /// A table of `1 << bits` empty buckets whose chains use `next[gen]`:
    /// the boot table when it has the size (it is not in use then), or a
    /// new one.
    fn new(bits: c_uint, gen: u32) -> Result<*mut Table> {
        let t = if bits == MIN_BITS {
            let t = &BOOT_TABLE;
            for b in &BOOT_BUCKETS {
                b.store(null_mut(), Ordering::Relaxed);
            }
            core::ptr::from_ref(t).cast_mut()
        } else {
            let n = 1usize << bits;
            // A failure is handled (the table stays as it is): no warning.
            let mut vec = KVVec::with_capacity(n, GFP_KERNEL | __GFP_NOWARN)?;
            for i in 0..n {
                // Within the capacity: never allocates.
                vec.push(AtomicPtr::new(null_mut()), GFP_KERNEL)?;
                if i % (1 << 16) == 0 {
                    resched();
                }
            }
            let t = KBox::new(
                Table {
                    buckets: vec.as_ptr(),
                    bits,
                    gen: AtomicU32::new(0),
                    vec: Some(vec),
                },
                GFP_KERNEL,
            )?;
            KBox::into_raw(t)
        };
        // SAFETY: `t` is the boot table or a new one, valid; no reader sees
        // it until it is published.
        unsafe { (*t).gen.store(gen, Ordering::Relaxed) };
        Ok(t)
    }

    /// Frees a table of [`Table::new`] that no reader can see any more.
    ///
    /// # Safety
    /// `t` must come from [`Table::new`], be unpublished or replaced a
    /// grace period ago, and not be used afterwards.
    unsafe fn free(t: *mut Table) {
        if !core::ptr::eq(t, &BOOT_TABLE) {
            // SAFETY: per the function's contract, `t` is one of
            // `Table::new`'s boxes that nothing uses any more.
            drop(unsafe { KBox::from_raw(t) });
        }
    }

    fn len(&self) -> usize {
        1 << self.bits
    }

    fn gen(&self) -> usize {
        self.gen.load(Ordering::Relaxed) as usize
    }

    /// The bucket index of the variable `(obj, id)`.
    fn index(&self, obj: *mut c_void, id: c_ulong) -> usize {
        // SAFETY: a pure function of its arguments.
        unsafe { glue::klp_glue_shadow_index(self.bits, obj, id) as usize }
    }

    fn buckets(&self) -> &[AtomicPtr<Shadow>] {
        // SAFETY: `buckets` holds `len()` atomics for as long as the table
        // lives.
        unsafe { core::slice::from_raw_parts(self.buckets, self.len()) }
    }

    /// Puts `s` first on its chain.
    ///
    /// # Safety
    /// The writers' lock must be held and `s` be a live variable that is
    /// not on this table.
    unsafe fn link(&self, s: *mut Shadow) {
        // SAFETY: per the function's contract.
        let s = unsafe { &*s };
        let b = &self.buckets()[self.index(s.obj, s.id)];
        s.next[self.gen()].store(b.load(Ordering::Relaxed), Ordering::Relaxed);
        b.store(core::ptr::from_ref(s).cast_mut(), Ordering::Release);
    }

    /// Takes `s` off its chain, if it is there.
    ///
    /// # Safety
    /// The writers' lock must be held and `s` be a live variable.
    unsafe fn unlink(&self, s: *mut Shadow) {
        let g = self.gen();
        // SAFETY: per the function's contract; the chains hold live
        // variables, changed only under the lock.
        unsafe {
            let mut link = &self.buckets()[self.index((*s).obj, (*s).id)];
            loop {
                let cur = link.load(Ordering::Relaxed);
                if cur.is_null() {
                    return;
                }
                if cur == s {
                    link.store((*s).next[g].load(Ordering::Relaxed), Ordering::Release);
                    return;
                }
                link = &(*cur).next[g];
            }
        }
    }
}

/// What the writers share, under their lock.
struct Writers {
    /// The list of all variables, newest first.
    all: *mut Shadow,
    /// How many variables there are.
    count: usize,
    /// The table being filled by a resize, or null.
    next: *mut Table,
    /// How many buckets of the current table are also in `next`.
    moved: usize,
    /// A resize is queued or running.
    resizing: bool,
    /// The count when a resize last failed to allocate (0: none failed);
    /// the next try waits until the count doubled or halved.
    failed_at: usize,
}

struct WritersCell(UnsafeCell<Writers>);

// SAFETY: only used with the writers' lock held (through `Guard::w`).
unsafe impl Sync for WritersCell {}

static WRITERS: WritersCell = WritersCell(UnsafeCell::new(Writers {
    all: null_mut(),
    count: 0,
    next: null_mut(),
    moved: 0,
    resizing: false,
    failed_at: 0,
}));

/// The spinlock of the writers, with interrupts disabled; released on the
/// CPU that took it (not `Send`).
struct Guard(c_ulong, PhantomData<*mut ()>);

impl Guard {
    fn lock() -> Guard {
        // SAFETY: the glue's spinlock is statically initialised.
        Guard(unsafe { glue::klp_glue_shadow_lock() }, PhantomData)
    }

    /// The writers' shared state.
    fn w(&mut self) -> &mut Writers {
        // SAFETY: we hold the writers' lock, which serialises every access
        // to `WRITERS`; the borrow of `self` keeps the lock held.
        unsafe { &mut *WRITERS.0.get() }
    }

    /// The current table.
    fn table(&self) -> &Table {
        // SAFETY: the current table changes only under the writers' lock,
        // which we hold, and is freed a grace period after it was
        // replaced.
        unsafe { &*CURRENT.load(Ordering::Relaxed) }
    }

    /// The tables that hold `s` (or must, for a new variable): the current
    /// one, and the resize's when the bucket of `s` was already moved.
    fn tables(&mut self, s: *mut Shadow) -> impl Iterator<Item = &Table> {
        let (next, moved) = (self.w().next, self.w().moved);
        let cur = self.table();
        // SAFETY: `s` is a live variable.
        let (obj, id) = unsafe { ((*s).obj, (*s).id) };
        // SAFETY: `next` is null or a table that only the resize frees,
        // and only after it took it out of `next` under the lock.
        let next = unsafe { next.as_ref() }.filter(|_| cur.index(obj, id) < moved);
        Iterator::chain(core::iter::once(cur), next)
    }

    /// Publishes `s`, which is set up and on no table or list.
    fn insert(&mut self, s: *mut Shadow) {
        for t in self.tables(s) {
            // SAFETY: the lock is held; `s` is on no table.
            unsafe { t.link(s) };
        }
        let w = self.w();
        // SAFETY: `s` is ours; `w.all` is a live variable or null, and the
        // list is ours under the lock.
        // (Places, not references: lockless readers read other fields.)
        unsafe {
            (*s).prev_all = null_mut();
            (*s).next_all = w.all;
            if !w.all.is_null() {
                (*w.all).prev_all = s;
            }
        }
        w.all = s;
        w.count += 1;
        self.check_size();
    }

    /// Takes `s` off the tables and the list; readers that found it may
    /// use it until a grace period has passed.
    fn remove(&mut self, s: *mut Shadow) {
        for t in self.tables(s) {
            // SAFETY: the lock is held; `s` is a live variable.
            unsafe { t.unlink(s) };
        }
        let w = self.w();
        // SAFETY: `s` and its neighbours are live variables on the list,
        // which is ours under the lock.
        unsafe {
            let (prev, next) = ((*s).prev_all, (*s).next_all);
            if !next.is_null() {
                (*next).prev_all = prev;
            }
            if prev.is_null() {
                w.all = next;
            } else {
                (*prev).next_all = next;
            }
        }
        w.count -= 1;
        self.check_size();
    }

    /// Queues a resize when the count left the current table's range.
    fn check_size(&mut self) {
        let bits = self.table().bits;
        let w = self.w();
        let backoff = w.failed_at != 0 && w.count / 2 < w.failed_at && w.count > w.failed_at / 2;
        if !w.resizing && !backoff && wanted_bits(w.count, bits) != bits {
            w.resizing = true;
            // SAFETY: queueing the static work item is allowed in any
            // context but NMI, which shadow variables do not support.
            unsafe { glue::klp_glue_shadow_schedule_resize() };
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: we hold the lock, taken with these flags.
        unsafe { glue::klp_glue_shadow_unlock(self.0) };
    }
}

/// The size (log2) the table should have for `count` variables: it
/// doubles past one variable a bucket and halves below one per eight.
fn wanted_bits(count: usize, bits: c_uint) -> c_uint {
    let len = 1usize << bits;
    if count > len && bits < MAX_BITS {
        (count.next_power_of_two().trailing_zeros() as c_uint).clamp(MIN_BITS, MAX_BITS)
    } else if count < len / 8 && bits > MIN_BITS {
        ((count * 2).next_power_of_two().trailing_zeros() as c_uint).clamp(MIN_BITS, MAX_BITS)
    } else {
        bits
    }
}

/// The resize work item: moves the variables into a table of the size
/// their count wants, until it wants none.
#[no_mangle]
pub(crate) extern "C" fn klp_rust_shadow_resize(_work: *mut bindings::work_struct) {
    loop {
        let (bits, gen) = {
            let mut g = Guard::lock();
            let (bits, gen) = (g.table().bits, g.table().gen());
            let want = wanted_bits(g.w().count, bits);
            if want == bits {
                g.w().resizing = false;
                return;
            }
            (want, 1 - gen as u32)
        };
        let new = match Table::new(bits, gen) {
            Ok(t) => t,
            Err(_) => {
                // Lookups get slower, nothing else: try again once the
                // count has doubled or halved (`check_size`).
                pr_warn!(
                    "no memory to resize the shadow variable table to 2^{} buckets\n",
                    bits
                );
                let mut g = Guard::lock();
                let w = g.w();
                w.resizing = false;
                w.failed_at = w.count.max(1);
                return;
            }
        };
        {
            let mut g = Guard::lock();
            let w = g.w();
            w.next = new;
            w.moved = 0;
        }
        let old = loop {
            let mut g = Guard::lock();
            let (mut moved, len) = (g.w().moved, g.table().len());
            let end = (moved + MOVE_CHUNK).min(len);
            let cur = g.table();
            // SAFETY: `new` is alive until this function frees it.
            let nt = unsafe { &*new };
            let cg = cur.gen();
            let mut nodes = 0;
            while moved < end && nodes < MOVE_BUDGET {
                let mut s = cur.buckets()[moved].load(Ordering::Relaxed);
                while !s.is_null() {
                    // SAFETY: the lock is held; `s` is a live variable of
                    // the current table, on no chain of `nt`: buckets up to
                    // `moved` were moved, and writers link a variable into
                    // `nt` only when its bucket was.
                    unsafe {
                        nt.link(s);
                        s = (*s).next[cg].load(Ordering::Relaxed);
                    }
                    nodes += 1;
                }
                moved += 1;
            }
            let w = g.w();
            w.moved = moved;
            if moved == len {
                let old = CURRENT.load(Ordering::Relaxed);
                CURRENT.store(new, Ordering::Release);
                w.next = null_mut();
                w.failed_at = 0;
                break old;
            }
            drop(g);
            resched();
        };
        // SAFETY: a plain grace-period wait; readers of the old table run
        // with preemption disabled, which it waits for.
        unsafe { bindings::synchronize_rcu() };
        // SAFETY: replaced a grace period ago: no reader walks it, and the
        // next resize (after this one) is the next to change the chain
        // links of its `gen`.
        unsafe { Table::free(old) };
        crate::sys::debug(format_args!(
            "shadow variable table: {} buckets",
            1usize << bits
        ));
    }
}

/// A reschedule point; no spinlock may be held.
fn resched() {
    // SAFETY: a plain call of the glue (cond_resched()).
    unsafe { glue::klp_glue_resched() }
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
    let s = unsafe { glue::klp_glue_shadow_find(obj, id) };
    (!s.is_null()).then_some(s)
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
    // Publishing never fails: a table that is too small only makes the
    // lookups longer until the resize.
    guard.insert(new);
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
    guard.remove(s);
    // SAFETY: `s` is off the tables and the list, and we hold the writers'
    // lock; readers that found it keep it until the grace period queued
    // last.
    unsafe {
        if let Some(dtor) = dtor {
            dtor((*s).obj, data_of(s));
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
    let mut cur = guard.w().all;
    while !cur.is_null() {
        // SAFETY: `cur` is on the list, which is ours under the lock; its
        // successor is read before it is removed.
        let (next, cur_id) = unsafe { ((*cur).next_all, (*cur).id) };
        if cur_id == id {
            remove(&mut guard, cur, dtor);
            n += 1;
        }
        cur = next;
    }
    n
}
