// SPDX-License-Identifier: GPL-2.0

//! Typed shadow variables.
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h).

use super::StateId;
use crate::{alloc::Flags, bindings, ffi::c_int, ffi::c_void, prelude::*};
use core::marker::PhantomData;

/// The shadow variables with the id `ID`, each holding a `T`.
///
/// A shadow variable attaches data to an object that exists already (a
/// structure of the kernel or of a module, identified by its address)
/// without changing the object's layout, the usual way for a livepatch to
/// add a field.  The handle binds the id to one Rust type: a variable it
/// lends holds an initialised `T`, and it drops the variables it frees as
/// `T`s.
///
/// The shadow variable lives as long as the object *conceptually* owns it:
/// [`Shadow::get`] lends it for as long as the object is borrowed, and
/// [`Shadow::free`] needs the object exclusively.  When the livepatch
/// declares a state with [`State::shadow`](super::State::shadow), the state
/// owns the variables: they are handed over to a livepatch that replaces it
/// and carries the same state, and freed, dropping their values, when the
/// state is removed.
///
/// The id is global, shared by every module.  Each variable that a handle
/// creates records the layout of its `T` (size, alignment, whether it has
/// a destructor); a handle lends or drops only the variables whose record
/// matches its own `T`, and reports the others (`pr_err`) as missing, so a
/// handle of another type with the same id cannot reach them.  Handles of
/// different types with one layout are not told apart: modules that share
/// an id must share the type, as C modules must agree on a structure.  C
/// code must not create variables of an id that Rust code uses (they have
/// no record).
///
/// `T`'s destructor may run with a spinlock held and interrupts disabled,
/// so it must not sleep; `T` must be at most 8-byte aligned.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::livepatch::Shadow;
///
/// struct Object {
///     value: u32,
/// }
///
/// const HITS: Shadow<AtomicU32, 1000> = Shadow::new();
///
/// let mut obj = Object { value: 1 };
/// HITS.alloc(&mut obj, AtomicU32::new(5), GFP_KERNEL)?;
/// let hits = HITS.get(&obj).ok_or(ENOENT)?;
/// hits.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(hits.load(Ordering::Relaxed), 6);
/// HITS.free(&mut obj);
/// assert!(HITS.get(&obj).is_none());
/// # Ok::<(), Error>(())
/// ```
///
/// A handle of another type does not see the variables:
///
/// ```
/// use kernel::livepatch::Shadow;
///
/// const SMALL: Shadow<u8, 1008> = Shadow::new();
/// const LARGE: Shadow<[u64; 100], 1008> = Shadow::new();
///
/// let mut obj = 0u64;
/// SMALL.alloc(&mut obj, 1, GFP_KERNEL)?;
/// assert!(LARGE.get(&obj).is_none());
/// assert!(LARGE.alloc(&mut obj, [0; 100], GFP_KERNEL).is_err());
/// assert_eq!(SMALL.get(&obj), Some(&1));
/// SMALL.free(&mut obj);
/// # Ok::<(), Error>(())
/// ```
///
/// Within one livepatch, two handles of one id but different types cannot
/// both be owned by states: [`livepatch!`](crate::livepatch!) refuses two
/// states with one id at compile time.
pub struct Shadow<T, const ID: StateId>(PhantomData<fn() -> T>);

/// The record of the layout of a shadow variable's value, at the start of
/// each variable that a [`Shadow`] handle creates.
#[repr(C, align(8))]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Record {
    magic: u32,
    size: u32,
    align: u16,
    needs_drop: u16,
    _reserved: u32,
}

impl Record {
    /// "klps".
    const MAGIC: u32 = 0x6b6c_7073;

    const fn of<T>() -> Record {
        Record {
            magic: Self::MAGIC,
            size: core::mem::size_of::<T>() as u32,
            align: core::mem::align_of::<T>() as u16,
            needs_drop: core::mem::needs_drop::<T>() as u16,
            _reserved: 0,
        }
    }
}

/// A shadow variable's data as a [`Shadow`] handle makes it.
#[repr(C)]
struct Var<T> {
    record: Record,
    value: T,
}

impl<T, const ID: StateId> Clone for Shadow<T, ID> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, const ID: StateId> Copy for Shadow<T, ID> {}

impl<T: Send + Sync, const ID: StateId> Default for Shadow<T, ID> {
    fn default() -> Self {
        Self::new()
    }
}

/// The key of the variables "of no object": see [`Shadow::with_global`].
fn global_key() -> *mut c_void {
    core::ptr::null_mut()
}

/// The key of the variables of `obj`: its address.
fn key<O: ?Sized>(obj: &O) -> *mut c_void {
    (obj as *const O).cast::<c_void>().cast_mut()
}

impl<T: Send + Sync, const ID: StateId> Shadow<T, ID> {
    /// Compile-time checks of the parameters.
    const CHECK: () = {
        assert!(ID != 0, "Shadow: the id must not be 0");
        assert!(
            core::mem::align_of::<T>() <= 8,
            "Shadow: shadow data is only 8-byte aligned"
        );
    };

    /// The handle; a `const` item usually holds it.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// const EXTRA: Shadow<u64, 7> = Shadow::new();
    /// assert_eq!(EXTRA.id(), 7);
    /// ```
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        Shadow(PhantomData)
    }

    /// The id of the shadow variables.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// assert_eq!(Shadow::<u8, 9>::new().id(), 9);
    /// ```
    pub const fn id(&self) -> StateId {
        ID
    }

    /// The destructor that frees a variable of this handle, for a state
    /// that owns them.
    pub(super) const fn dtor(&self) -> bindings::klp_shadow_dtor_t {
        Some(Self::drop_data)
    }

    /// The `T` of `obj`, if it has one.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// const NOTE: Shadow<u32, 1001> = Shadow::new();
    /// let obj = 0u64;
    /// assert!(NOTE.get(&obj).is_none());
    /// ```
    pub fn get<'a, O: ?Sized>(&self, obj: &'a O) -> Option<&'a T> {
        // SAFETY: any object address is a valid key.
        let p = unsafe { bindings::klp_shadow_get(key(obj), ID) };
        // SAFETY: a variable whose layout matches was created by a handle
        // of this type: it holds an initialised `T`, suitably aligned, that
        // stays until the object is borrowed mutably (`free`) or the owning
        // state goes, which happens only when no code of a livepatch
        // carrying the state runs any more.
        unsafe { Self::value(p, key(obj)).as_ref() }
    }

    /// The value of the variable `p` (of `key`), or null when there is
    /// none or it was made for another layout (reported).
    ///
    /// # Safety
    ///
    /// `p` is null or a variable of this id made by a Rust handle (see the
    /// type's documentation about C code).
    unsafe fn value(p: *mut c_void, key: *mut c_void) -> *mut T {
        if p.is_null() {
            return core::ptr::null_mut();
        }
        let var = p.cast::<Var<T>>();
        // SAFETY: per the function's contract, the variable starts with a
        // `Record`.
        if unsafe { (*var).record } != Record::of::<T>() {
            pr_err!(
                "shadow variable {} of {:p}: made for another type, not used\n",
                ID,
                key
            );
            return core::ptr::null_mut();
        }
        // SAFETY: the layout matches: the variable is a `Var<T>`.
        unsafe { &raw mut (*var).value }
    }

    /// The `T` of `obj`, mutably, if it has one.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// const NOTE: Shadow<u32, 1002> = Shadow::new();
    /// let mut obj = 0u64;
    /// NOTE.alloc(&mut obj, 1, GFP_KERNEL)?;
    /// *NOTE.get_mut(&mut obj).ok_or(ENOENT)? += 1;
    /// assert_eq!(NOTE.get(&obj), Some(&2));
    /// NOTE.free(&mut obj);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn get_mut<'a, O: ?Sized>(&self, obj: &'a mut O) -> Option<&'a mut T> {
        let k = key(obj);
        // SAFETY: any object address is a valid key.
        let p = unsafe { bindings::klp_shadow_get(k, ID) };
        // SAFETY: as in `get`; the exclusive borrow of the object excludes
        // other borrows of its variable.
        unsafe { Self::value(p, k).as_mut() }
    }

    /// Attaches `value` to `obj`.
    ///
    /// Fails with `EEXIST` when `obj` has a variable of this id already (the
    /// value is dropped), or with `ENOMEM`.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// const NOTE: Shadow<u32, 1003> = Shadow::new();
    /// let mut obj = 0u64;
    /// NOTE.alloc(&mut obj, 1, GFP_KERNEL)?;
    /// assert_eq!(NOTE.alloc(&mut obj, 2, GFP_KERNEL), Err(EEXIST));
    /// NOTE.free(&mut obj);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn alloc<'a, O: ?Sized>(
        &self,
        obj: &'a mut O,
        value: T,
        flags: Flags,
    ) -> Result<&'a mut T> {
        let (p, created) = self.get_or_insert(key(obj), value, flags)?;
        if !created {
            return Err(EEXIST);
        }
        // SAFETY: `p` points to the `T` just created, which only the
        // exclusive borrower of `obj` reaches.
        Ok(unsafe { &mut *p })
    }

    /// The `T` of `obj`; when it has none, `init()` makes one, attached to
    /// `obj`.
    ///
    /// `init` runs without locks held; if another thread attaches a value
    /// meanwhile, that one is returned and `init`'s is dropped.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicU32, Ordering};
    /// use kernel::livepatch::Shadow;
    /// const HITS: Shadow<AtomicU32, 1004> = Shadow::new();
    /// let mut obj = 0u64;
    /// for _ in 0..3 {
    ///     HITS.get_or_alloc(&obj, GFP_KERNEL, || AtomicU32::new(0))?
    ///         .fetch_add(1, Ordering::Relaxed);
    /// }
    /// assert_eq!(HITS.get(&obj).map(|h| h.load(Ordering::Relaxed)), Some(3));
    /// HITS.free(&mut obj);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn get_or_alloc<'a, O: ?Sized>(
        &self,
        obj: &'a O,
        flags: Flags,
        init: impl FnOnce() -> T,
    ) -> Result<&'a T> {
        if let Some(v) = self.get(obj) {
            return Ok(v);
        }
        let (p, _) = self.get_or_insert(key(obj), init(), flags)?;
        // SAFETY: as in `get`.
        Ok(unsafe { &*p })
    }

    /// Frees the variable of `obj`, if any, dropping its `T`.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// const NOTE: Shadow<u32, 1005> = Shadow::new();
    /// let mut obj = 0u64;
    /// NOTE.free(&mut obj); // none: nothing happens
    /// ```
    pub fn free<O: ?Sized>(&self, obj: &mut O) {
        // SAFETY: any address is a valid key; the destructor matches the
        // variables of this id (type invariant).
        unsafe { bindings::klp_shadow_free(key(obj), ID, self.dtor()) };
    }

    /// Frees every variable of this id, of every object, dropping their
    /// values.
    ///
    /// A state that owns the variables ([`State::shadow`](super::State::shadow))
    /// does it when it is removed; a livepatch without such a state calls
    /// this, typically from a `post_unpatch` callback.
    ///
    /// # Safety
    ///
    /// No reference returned by this handle's methods (of this or another
    /// module) may be in use, nor may any other thread use them until this
    /// returns: no code that gets them may run concurrently.
    ///
    /// ```
    /// use kernel::livepatch::Shadow;
    /// const NOTE: Shadow<u32, 1006> = Shadow::new();
    /// let (mut a, mut b) = (0u64, 0u64);
    /// NOTE.alloc(&mut a, 1, GFP_KERNEL)?;
    /// NOTE.alloc(&mut b, 2, GFP_KERNEL)?;
    /// // SAFETY: no reference to the variables is alive.
    /// unsafe { NOTE.free_all() };
    /// assert!(NOTE.get(&a).is_none() && NOTE.get(&b).is_none());
    /// # Ok::<(), Error>(())
    /// ```
    pub unsafe fn free_all(&self) {
        // SAFETY: the destructor matches the variables of this id; their
        // references are unused per the function's contract.
        unsafe { bindings::klp_shadow_free_all(ID, self.dtor()) };
    }

    /// Calls `f` with the variable "of no object" of this id, if there is
    /// one: data that belongs to the change itself rather than to an
    /// object, shared by every livepatch that uses the id.
    ///
    /// A state that owns the id frees it when it is removed.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicBool, Ordering};
    /// use kernel::livepatch::Shadow;
    /// const ON: Shadow<AtomicBool, 1007> = Shadow::new();
    /// assert!(ON.with_global(|on| on.is_none()));
    /// ON.alloc_global(AtomicBool::new(true), GFP_KERNEL)?;
    /// assert!(ON.with_global(|on| on.is_some_and(|b| b.load(Ordering::Relaxed))));
    /// // SAFETY: no reference to the variable is alive.
    /// unsafe { ON.free_all() };
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_global<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        // SAFETY: the null key is valid.
        let p = unsafe { bindings::klp_shadow_get(global_key(), ID) };
        // SAFETY: as in `get`; the reference does not outlive `f`, and the
        // variable goes only through `free_all` (whose caller guarantees
        // that no such call runs) or with the owning state.
        f(unsafe { Self::value(p, global_key()).as_ref() })
    }

    /// Creates the variable "of no object" of this id with `value` (see
    /// [`Shadow::with_global`]).
    ///
    /// Fails with `EEXIST` when it exists already (the value is dropped),
    /// or with `ENOMEM`.
    pub fn alloc_global(&self, value: T, flags: Flags) -> Result {
        match self.get_or_insert(global_key(), value, flags)? {
            (_, true) => Ok(()),
            (_, false) => Err(EEXIST),
        }
    }

    /// Looks up the variable of `key`, or creates it with `value`; returns
    /// it and whether it was created (else `value` was dropped).
    /// Fails with `EINVAL` when the existing variable was made for another
    /// layout (reported), or `ENOMEM`.
    fn get_or_insert(&self, key: *mut c_void, value: T, flags: Flags) -> Result<(*mut T, bool)> {
        let mut slot = Some(value);
        // SAFETY: any key is valid; `construct` moves the value out of
        // `slot`, which lives until the call returns.
        let p = unsafe {
            bindings::klp_shadow_get_or_alloc(
                key,
                ID,
                core::mem::size_of::<Var<T>>(),
                flags.as_raw(),
                Some(Self::construct),
                (&raw mut slot).cast(),
            )
        };
        if p.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: a variable of this id, made by a Rust handle (this one
        // when `construct` ran).
        let value = unsafe { Self::value(p, key) };
        if value.is_null() {
            return Err(EINVAL);
        }
        Ok((value, slot.is_none()))
    }

    /// The constructor: moves the value out of the slot that `ctor_data`
    /// points to into the new variable.
    ///
    /// # Safety
    ///
    /// `data` points to `size_of::<Var<T>>()` writable bytes, 8-byte
    /// aligned; `ctor_data` to the `Option<T>` of `get_or_insert`.
    unsafe extern "C" fn construct(
        _obj: *mut c_void,
        data: *mut c_void,
        ctor_data: *mut c_void,
    ) -> c_int {
        // SAFETY: per the function's contract.
        let slot = unsafe { &mut *ctor_data.cast::<Option<T>>() };
        match slot.take() {
            Some(value) => {
                let var = Var {
                    record: Record::of::<T>(),
                    value,
                };
                // SAFETY: per the function's contract.
                unsafe { data.cast::<Var<T>>().write(var) };
                0
            }
            None => EINVAL.to_errno(),
        }
    }

    /// The destructor: drops the `T` of a variable that is being freed.
    ///
    /// # Safety
    ///
    /// `data` is a variable of this id made by a Rust handle, not used any
    /// more.  Its value is dropped only when it was made for `T`.
    unsafe extern "C" fn drop_data(obj: *mut c_void, data: *mut c_void) {
        // SAFETY: per the function's contract.
        let value = unsafe { Self::value(data, obj) };
        if !value.is_null() {
            // SAFETY: a `T`, not used any more.
            unsafe { core::ptr::drop_in_place(value) };
        }
    }
}
