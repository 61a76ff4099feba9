// SPDX-License-Identifier: GPL-2.0-or-later

//! Safe handles of the structures of `include/linux/livepatch.h`.
//!
//! A livepatch module owns its `struct klp_patch`, the objects and
//! functions it lists and its states; the core adds internal fields to
//! them, and allocates the nop functions of atomic replace and their
//! dynamic objects.  The types here stand for those structures: a
//! `&'a KlpPatch` (or [`KlpObject`], [`KlpFunc`], [`KlpState`]) is a
//! structure that stays valid for `'a`, so the code that holds one reads
//! and writes its fields without `unsafe`.  Handles are made only by the
//! `unsafe` constructors, at the boundaries where the core gets a raw
//! pointer (the C entry points, the kobject callbacks, the lists).
//!
//! The fields fall into three groups, which the accessors follow:
//!
//! - the fields the module fills in (names, arrays, replacement addresses,
//!   callbacks, `replace`): the core reads them freely, and writes only
//!   those of the nops it allocates, under `klp_mutex`;
//! - the internal fields (`enabled`, `patched`, `mod`, the callbacks'
//!   bookkeeping...): written with `klp_mutex` held, which the setters
//!   require as a [`KlpLock`], or while the structure is being set up and
//!   nobody else sees it.  Some are read without the mutex, as the C core
//!   does (sysfs shows `enabled` and `patched`); such a read gives the old
//!   or the new value;
//! - the lists, walked with the mutex held ([`KlpPatch::objects`],
//!   [`KlpObject::funcs`]).  Until the core sets a structure up, its list
//!   heads are zero (a static structure of the module, or a zeroed
//!   allocation of the core): such a list is empty.
//!
//! The structures are wrapped in [`Opaque`], as C code may change them
//! (the module's own callbacks, for one) while a handle exists.

use crate::list::{self, container_of};
use crate::module::Module;
use crate::sys::{KlpLock, Name};
use core::marker::PhantomData;
use kernel::bindings;
use kernel::ffi::{c_int, c_uint, c_ulong, c_void};
use kernel::str::CStr;
use kernel::types::Opaque;

/// The C string at `p`, or `None` for a null pointer.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string that stays valid
/// and unchanged for `'a`.
unsafe fn opt_cstr<'a>(p: *const kernel::ffi::c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the function's contract.
        Some(unsafe { CStr::from_char_ptr(p) })
    }
}

/// A `struct klp_patch`.
///
/// # Invariants
/// A `&'a KlpPatch` points to a `struct klp_patch` that a livepatch module
/// handed to the core (being checked, registered, or being freed), laid
/// out as the C API requires (`objs` and `states` null or terminated
/// arrays; the internal fields of the patch, its objects and functions
/// zero until the core sets them up), valid for `'a`.  Its internal fields
/// are written only with `klp_mutex` held or during the set-up, before
/// anybody else sees them.  Once the core has set the patch up
/// ([`crate::objects::init_patch_early`]), the C fields that it sets up in
/// the patch, its objects and functions (kobjects, list links, work item,
/// completion; see `crate::kobj`) are initialised; a handle of a patch that
/// is not set up is used only to read what the module filled in and to set
/// the patch up.
#[repr(transparent)]
pub(crate) struct KlpPatch(Opaque<bindings::klp_patch>);

impl KlpPatch {
    /// The handle of the patch at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to a `struct klp_patch` of a livepatch module that
    /// the core accepted or is checking, laid out as the C API requires
    /// (the internal fields of the patch, its objects and functions zero
    /// until the core sets them up, as in a static structure), that stays
    /// valid for `'a`; its fields must be written only with `klp_mutex`
    /// held or during the set-up.  Unless the core has set the patch up,
    /// the handle must be used only to read what the module filled in and
    /// to set the patch up.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::klp_patch) -> &'a Self {
        // SAFETY: `KlpPatch` is a transparent wrapper of the C structure,
        // which is valid for `'a` by the contract.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The handle of the patch whose kobject is at `kobj`.
    ///
    /// # Safety
    /// `kobj` must be the `kobj` field of a patch that satisfies the
    /// requirements of [`KlpPatch::from_raw`] for `'a`.
    pub(crate) unsafe fn from_kobj<'a>(kobj: *mut bindings::kobject) -> &'a Self {
        let ptr = container_of!(kobj, bindings::klp_patch, kobj);
        // SAFETY: per the function's contract.
        unsafe { Self::from_raw(ptr) }
    }

    /// The C structure: for the C fields that the core sets up and tears
    /// down (kobject, list heads, work item, completion), the callbacks of
    /// the module and the record of the patch in transition.
    pub(crate) fn as_raw(&self) -> *mut bindings::klp_patch {
        self.0.get()
    }

    /// The name of the patch (its module's), for messages; `(null)` when
    /// the patch has no module, which [`crate::objects::check_patch`]
    /// refuses.
    pub(crate) fn name(&self) -> Name {
        // SAFETY: by the type invariant, the patch is valid; `mod` is set by
        // the module and never written by the core.
        let m = unsafe { (*self.as_raw()).mod_ };
        if m.is_null() {
            return Name(core::ptr::null());
        }
        // SAFETY: the module of a patch outlives it (it holds the patch).
        Name(unsafe { (*m).name.as_ptr() })
    }

    /// Whether the patch atomically replaces the patches before it.
    pub(crate) fn replace(&self) -> bool {
        // SAFETY: by the type invariant; set by the module only.
        unsafe { (*self.as_raw()).replace }
    }

    /// Whether the patch is enabled (or being enabled).  Read without
    /// `klp_mutex` by sysfs, as in the C core.
    pub(crate) fn enabled(&self) -> bool {
        // SAFETY: by the type invariant.
        unsafe { (*self.as_raw()).enabled }
    }

    /// The objects of the patch, in list order (including the dynamic
    /// ones of atomic replace).  The list does not change while the lock
    /// is borrowed.
    ///
    /// The list is linked by [`crate::objects::init_patch_early`]; a patch
    /// that was never set up (its list head still zero) has no objects.
    pub(crate) fn objects<'a>(&'a self, _lock: &'a KlpLock) -> Objects<'a> {
        // SAFETY: by the type invariant, the list head is valid, zero or
        // initialised, and changes only under klp_mutex, which `_lock`
        // proves held and keeps held (the core changes the list only with a
        // `&mut KlpLock`).
        let iter = unsafe { list::iter_or_empty(&raw mut (*self.as_raw()).obj_list) };
        Objects {
            iter,
            _lock: PhantomData,
        }
    }

    /// The states of the patch, in array order, up to the terminator.
    pub(crate) fn states(&self) -> CArray<'_, KlpState> {
        // SAFETY: by the type invariant, `states` is null or a terminated
        // array, set by the module only, valid as long as the patch.
        unsafe { CArray::new((*self.as_raw()).states.cast()) }
    }

    /// The state `id` of the patch, if it has one.
    pub(crate) fn state(&self, id: c_ulong) -> Option<&KlpState> {
        self.states().find(|s| s.id() == id)
    }

    /// The module that the patch belongs to; `None` only in a patch that
    /// [`crate::objects::check_patch`] refuses.
    pub(crate) fn module(&self) -> Option<&Module> {
        // SAFETY: by the type invariant; set by the module only.
        let m = unsafe { (*self.as_raw()).mod_ };
        // SAFETY: the module of a patch outlives it (it holds the patch);
        // `klp_alive` is written under klp_mutex only.
        (!m.is_null()).then(|| unsafe { Module::from_raw(m) })
    }

    /// The objects of the module's `objs` array, in array order, up to the
    /// terminator; `None` when the patch has no array, which
    /// [`crate::objects::check_patch`] refuses.  Unlike
    /// [`KlpPatch::objects`], this is what the module declared (no dynamic
    /// objects), and it needs no set-up.
    pub(crate) fn static_objects(&self) -> Option<CArray<'_, KlpObject>> {
        // SAFETY: by the type invariant; set by the module only.
        let objs = unsafe { (*self.as_raw()).objs };
        // SAFETY: by the type invariant, a non-null `objs` is a terminated
        // array, valid as long as the patch.
        (!objs.is_null()).then(|| unsafe { CArray::new(objs.cast()) })
    }

    /// Sets whether the patch is enabled; sysfs reads it without the
    /// mutex, as in the C core, and sees the old or the new value.
    pub(crate) fn set_enabled(&self, _lock: &KlpLock, enabled: bool) {
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field.
        unsafe { (*self.as_raw()).enabled = enabled };
    }

    /// Sets whether a transition that takes the patch away (disabling it,
    /// or replacing it) was forced (`force` of sysfs): tasks may still run
    /// its code, so its module must never be put.
    pub(crate) fn set_forced(&self, _lock: &KlpLock, forced: bool) {
        // SAFETY: as in `set_enabled`.
        unsafe { (*self.as_raw()).forced = forced };
    }
}

/// Two handles are equal when they are the same patch.
impl PartialEq for KlpPatch {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self, other)
    }
}

impl Eq for KlpPatch {}

/// Iterator over the objects of a patch, see [`KlpPatch::objects`].
#[derive(Clone)]
pub(crate) struct Objects<'a> {
    iter: list::Iter,
    _lock: PhantomData<&'a KlpLock>,
}

impl<'a> Iterator for Objects<'a> {
    type Item = &'a KlpObject;

    fn next(&mut self) -> Option<&'a KlpObject> {
        let node = self.iter.next()?;
        let obj = container_of!(node, bindings::klp_object, node);
        // SAFETY: the objects on a patch's list belong to it (or were
        // allocated for it) and stay until they are taken off the list,
        // under klp_mutex, which the iterator keeps held for `'a`.
        Some(unsafe { KlpObject::from_raw(obj) })
    }
}

/// A `struct klp_object`.
///
/// # Invariants
/// A `&'a KlpObject` points to an object of a patch that satisfies the
/// invariant of [`KlpPatch`] (an element of its `objs` array, or a dynamic
/// object that the core allocated for it), valid for `'a`.  Its internal
/// fields are written only with `klp_mutex` held or during the set-up.
#[repr(transparent)]
pub(crate) struct KlpObject(Opaque<bindings::klp_object>);

impl KlpObject {
    /// The handle of the object at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to an object of a patch that satisfies the
    /// requirements of [`KlpPatch::from_raw`], and stay valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::klp_object) -> &'a Self {
        // SAFETY: `KlpObject` is a transparent wrapper of the C structure,
        // which is valid for `'a` by the contract.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The handle of the object whose kobject is at `kobj`.
    ///
    /// # Safety
    /// `kobj` must be the `kobj` field of an object that satisfies the
    /// requirements of [`KlpObject::from_raw`] for `'a`.
    pub(crate) unsafe fn from_kobj<'a>(kobj: *mut bindings::kobject) -> &'a Self {
        let ptr = container_of!(kobj, bindings::klp_object, kobj);
        // SAFETY: per the function's contract.
        unsafe { Self::from_raw(ptr) }
    }

    /// The C structure: for the C fields that the core sets up and tears
    /// down (kobject, list heads) and the callbacks of the module.
    pub(crate) fn as_raw(&self) -> *mut bindings::klp_object {
        self.0.get()
    }

    /// The module's name, or `None` for vmlinux.
    pub(crate) fn name(&self) -> Option<&CStr> {
        // SAFETY: by the type invariant; the name is set by the module (or
        // copied for a dynamic object) before the core uses the object, is
        // never changed, and lives as long as the object.
        unsafe { opt_cstr((*self.as_raw()).name) }
    }

    /// Whether the object is a module (vmlinux has no name).
    pub(crate) fn is_module(&self) -> bool {
        // SAFETY: by the type invariant; the name is never changed.
        !unsafe { (*self.as_raw()).name }.is_null()
    }

    /// Whether the object's code is in memory: vmlinux, or a loaded
    /// module.
    pub(crate) fn is_loaded(&self) -> bool {
        // SAFETY: by the type invariant; `mod` changes only under
        // klp_mutex.
        !self.is_module() || !unsafe { (*self.as_raw()).mod_ }.is_null()
    }

    /// Whether the object is patched.  Read without `klp_mutex` by sysfs,
    /// as in the C core.
    pub(crate) fn patched(&self) -> bool {
        // SAFETY: by the type invariant.
        unsafe { (*self.as_raw()).patched }
    }

    /// Whether the core allocated the object (for the nops of atomic
    /// replace).
    pub(crate) fn dynamic(&self) -> bool {
        // SAFETY: by the type invariant; set during the set-up only.
        unsafe { (*self.as_raw()).dynamic }
    }

    /// The functions of the object, in list order (including nops).  The
    /// list does not change while the lock is borrowed.
    ///
    /// An object of a patch that was never set up (its list head still
    /// zero) has no functions.
    pub(crate) fn funcs<'a>(&'a self, _lock: &'a KlpLock) -> Funcs<'a> {
        // SAFETY: as in `KlpPatch::objects`, for the object's list.
        let iter = unsafe { list::iter_or_empty(&raw mut (*self.as_raw()).func_list) };
        Funcs {
            iter,
            _lock: PhantomData,
        }
    }

    /// The callbacks of the object.
    fn callbacks(&self) -> bindings::klp_callbacks {
        // SAFETY: by the type invariant; the structure is plain data.
        unsafe { (*self.as_raw()).callbacks }
    }

    /// Runs the `pre_patch` callback of the module; its result, 0 when
    /// there is none.
    pub(crate) fn call_pre_patch(&self, _lock: &KlpLock) -> c_int {
        match self.callbacks().pre_patch {
            // SAFETY: a callback of the live module, called with its own
            // object and klp_mutex held, as the C API documents.
            Some(f) => unsafe { f(self.as_raw()) },
            None => 0,
        }
    }

    /// Runs the `post_patch` callback of the module, if any.
    pub(crate) fn call_post_patch(&self, _lock: &KlpLock) {
        if let Some(f) = self.callbacks().post_patch {
            // SAFETY: as in `call_pre_patch`.
            unsafe { f(self.as_raw()) };
        }
    }

    /// Runs the `pre_unpatch` callback of the module, if any.
    pub(crate) fn call_pre_unpatch(&self, _lock: &KlpLock) {
        if let Some(f) = self.callbacks().pre_unpatch {
            // SAFETY: as in `call_pre_patch`.
            unsafe { f(self.as_raw()) };
        }
    }

    /// Runs the `post_unpatch` callback of the module, if any.
    pub(crate) fn call_post_unpatch(&self, _lock: &KlpLock) {
        if let Some(f) = self.callbacks().post_unpatch {
            // SAFETY: as in `call_pre_patch`.
            unsafe { f(self.as_raw()) };
        }
    }

    /// Whether `post_unpatch` may run: `pre_patch` succeeded.
    pub(crate) fn post_unpatch_enabled(&self) -> bool {
        self.callbacks().post_unpatch_enabled
    }

    /// Sets whether `post_unpatch` may run.
    pub(crate) fn set_post_unpatch_enabled(&self, _lock: &KlpLock, enabled: bool) {
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field.
        unsafe { (*self.as_raw()).callbacks.post_unpatch_enabled = enabled };
    }

    /// The functions of the module's `funcs` array, in array order, up to
    /// the terminator; `None` when the object has no array (a dynamic
    /// object, or one that [`crate::objects::check_patch`] refuses).
    /// Unlike [`KlpObject::funcs`], this is what the module declared (no
    /// nops), and it needs no set-up.
    pub(crate) fn static_funcs(&self) -> Option<CArray<'_, KlpFunc>> {
        // SAFETY: by the type invariant; set by the module only (null in a
        // dynamic object).
        let funcs = unsafe { (*self.as_raw()).funcs };
        // SAFETY: by the type invariant of `KlpPatch`, a non-null `funcs`
        // is a terminated array, valid as long as the object.
        (!funcs.is_null()).then(|| unsafe { CArray::new(funcs.cast()) })
    }

    /// Sets the module of the object: the loaded module, or `None` when it
    /// is not loaded.
    pub(crate) fn set_module(&self, _lock: &KlpLock, m: Option<&Module>) {
        let m = m.map_or(core::ptr::null_mut(), Module::as_raw);
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field.
        unsafe { (*self.as_raw()).mod_ = m };
    }

    /// Sets whether the object is patched (its functions are on their
    /// stacks).  sysfs reads the flag without the mutex, as in the C core.
    pub(crate) fn set_patched(&self, _lock: &KlpLock, patched: bool) {
        // SAFETY: as in `set_module`.
        unsafe { (*self.as_raw()).patched = patched };
    }
}

/// Iterator over the functions of an object, see [`KlpObject::funcs`].
#[derive(Clone)]
pub(crate) struct Funcs<'a> {
    iter: list::Iter,
    _lock: PhantomData<&'a KlpLock>,
}

impl<'a> Iterator for Funcs<'a> {
    type Item = &'a KlpFunc;

    fn next(&mut self) -> Option<&'a KlpFunc> {
        let node = self.iter.next()?;
        let func = container_of!(node, bindings::klp_func, node);
        // SAFETY: as in `Objects::next`, for the functions of an object.
        Some(unsafe { KlpFunc::from_raw(func) })
    }
}

/// A `struct klp_func`.
///
/// # Invariants
/// A `&'a KlpFunc` points to a function of an object that satisfies the
/// invariant of [`KlpObject`] (an element of its `funcs` array, or a nop
/// that the core allocated for it), valid for `'a`.  Its internal fields
/// are written only with `klp_mutex` held or during the set-up.
#[repr(transparent)]
pub(crate) struct KlpFunc(Opaque<bindings::klp_func>);

impl KlpFunc {
    /// The handle of the function at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to a function of an object that satisfies the
    /// requirements of [`KlpObject::from_raw`], and stay valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::klp_func) -> &'a Self {
        // SAFETY: `KlpFunc` is a transparent wrapper of the C structure,
        // which is valid for `'a` by the contract.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The handle of the function whose kobject is at `kobj`.
    ///
    /// # Safety
    /// `kobj` must be the `kobj` field of a function that satisfies the
    /// requirements of [`KlpFunc::from_raw`] for `'a`.
    pub(crate) unsafe fn from_kobj<'a>(kobj: *mut bindings::kobject) -> &'a Self {
        let ptr = container_of!(kobj, bindings::klp_func, kobj);
        // SAFETY: per the function's contract.
        unsafe { Self::from_raw(ptr) }
    }

    /// The handle of the function whose `stack_node` is at `node`.
    ///
    /// # Safety
    /// `node` must be the `stack_node` field of a function that satisfies
    /// the requirements of [`KlpFunc::from_raw`] for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn from_stack_node<'a>(node: *mut bindings::list_head) -> &'a Self {
        let ptr = container_of!(node, bindings::klp_func, stack_node);
        // SAFETY: per the function's contract; `KlpFunc` is a transparent
        // wrapper of the C structure.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C structure: for the C fields that the core sets up and tears
    /// down (kobject, list heads).
    pub(crate) fn as_raw(&self) -> *mut bindings::klp_func {
        self.0.get()
    }

    /// Whether the core allocated the function as a nop of atomic replace.
    pub(crate) fn nop(&self) -> bool {
        // SAFETY: by the type invariant; set during the set-up only.
        unsafe { (*self.as_raw()).nop }
    }

    /// The name of the patched function (set by the module, or copied for
    /// a nop); `None` only in an array that `check_patch` refuses.
    pub(crate) fn old_name(&self) -> Option<&CStr> {
        // SAFETY: by the type invariant; the name is never changed and lives
        // as long as the function.
        unsafe { opt_cstr((*self.as_raw()).old_name) }
    }

    /// Which occurrence of the name is patched (0: the only one).
    pub(crate) fn old_sympos(&self) -> c_ulong {
        // SAFETY: by the type invariant; set by the module (or for a nop,
        // during the set-up).
        unsafe { (*self.as_raw()).old_sympos }
    }

    /// The address of the patched function, null while its object is not
    /// loaded.
    pub(crate) fn old_func(&self) -> *mut c_void {
        // SAFETY: by the type invariant; written under klp_mutex.
        unsafe { (*self.as_raw()).old_func }
    }

    /// The address of the replacement (for a nop, the patched function
    /// itself once its object is loaded).
    pub(crate) fn new_func(&self) -> *mut c_void {
        // SAFETY: by the type invariant; written under klp_mutex for nops.
        unsafe { (*self.as_raw()).new_func }
    }

    /// Whether the function is patched (its redirection is in place).
    pub(crate) fn patched(&self) -> bool {
        // SAFETY: by the type invariant; written under klp_mutex.
        unsafe { (*self.as_raw()).patched }
    }

    /// Whether the function is in transition.
    pub(crate) fn transition(&self) -> bool {
        // SAFETY: by the type invariant; written under klp_mutex.
        unsafe { (*self.as_raw()).transition }
    }

    /// The name of the patched function, for messages: `(null)` when it has
    /// none.
    pub(crate) fn display_name(&self) -> Name {
        // SAFETY: by the type invariant; the name is never changed and lives
        // as long as the function.
        Name(unsafe { (*self.as_raw()).old_name })
    }

    /// The size of the patched function's code, once its object is loaded.
    pub(crate) fn old_size(&self) -> c_ulong {
        // SAFETY: by the type invariant; written under klp_mutex.
        unsafe { (*self.as_raw()).old_size }
    }

    /// The size of the replacement's code (for a nop, the patched
    /// function's), once its object is loaded.
    pub(crate) fn new_size(&self) -> c_ulong {
        // SAFETY: by the type invariant; written under klp_mutex.
        unsafe { (*self.as_raw()).new_size }
    }

    /// Sets the address of the patched function (null while its object is
    /// not loaded).
    pub(crate) fn set_old_func(&self, _lock: &KlpLock, addr: *mut c_void) {
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field.
        unsafe { (*self.as_raw()).old_func = addr };
    }

    /// Sets the address of the replacement: the core does so only for
    /// nops, whose replacement is the patched function itself.
    pub(crate) fn set_new_func(&self, _lock: &KlpLock, addr: *mut c_void) {
        // SAFETY: as in `set_old_func`.
        unsafe { (*self.as_raw()).new_func = addr };
    }

    /// Sets the size of the patched function.
    pub(crate) fn set_old_size(&self, _lock: &KlpLock, size: c_ulong) {
        // SAFETY: as in `set_old_func`.
        unsafe { (*self.as_raw()).old_size = size };
    }

    /// Sets the size of the replacement.
    pub(crate) fn set_new_size(&self, _lock: &KlpLock, size: c_ulong) {
        // SAFETY: as in `set_old_func`.
        unsafe { (*self.as_raw()).new_size = size };
    }

    /// Puts the function in transition or takes it out, with the single
    /// store of `WRITE_ONCE()`.  The ftrace handler does not read the flag:
    /// it reads the targets that `crate::ftrace` computes from it, which the
    /// caller updates; the ordering against the tasks' states is the
    /// caller's (see `crate::transition`).
    pub(crate) fn set_transition(&self, _lock: &KlpLock, on: bool) {
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field; lockless readers use a
        // volatile read.
        unsafe { core::ptr::write_volatile(&raw mut (*self.as_raw()).transition, on) };
    }

    /// The function's node on the stack of the functions that patch its
    /// address, which ftrace.rs links and unlinks under klp_mutex.
    pub(crate) fn stack_node(&self) -> *mut bindings::list_head {
        // SAFETY: by the type invariant, the function is valid; only the
        // field's address is taken.
        unsafe { &raw mut (*self.as_raw()).stack_node }
    }

    /// Sets whether the function is patched (on the stack of its address).
    pub(crate) fn set_patched(&self, _lock: &KlpLock, patched: bool) {
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field.
        unsafe { (*self.as_raw()).patched = patched };
    }

    /// Where a call goes when this function is the one in effect: the
    /// address of its replacement, or 0 (the original code) for a nop.
    pub(crate) fn call_target(&self) -> usize {
        let p = self.as_raw();
        // SAFETY: by the type invariant; `nop` is set during the set-up and
        // `new_func` (of a nop) under klp_mutex before the function goes on
        // a stack.
        unsafe {
            if (*p).nop {
                0
            } else {
                (*p).new_func as usize
            }
        }
    }
}

/// A `struct klp_state`.
///
/// # Invariants
/// A `&'a KlpState` points to an element of the `states` array of a patch
/// that satisfies the invariant of [`KlpPatch`], valid for `'a`; only
/// [`CArray`] makes one of the terminator, to see that it is one.  The
/// core writes only `callbacks.pre_patch_succeeded`, with `klp_mutex`
/// held.
#[repr(transparent)]
pub(crate) struct KlpState(Opaque<bindings::klp_state>);

impl KlpState {
    /// The C structure, for the module's callbacks and `klp_get_state()`.
    pub(crate) fn as_raw(&self) -> *mut bindings::klp_state {
        self.0.get()
    }

    /// The identifier of the state.
    pub(crate) fn id(&self) -> c_ulong {
        // SAFETY: by the type invariant; set by the module only.
        unsafe { (*self.as_raw()).id }
    }

    /// The version of the state (legacy compatibility).
    pub(crate) fn version(&self) -> c_uint {
        // SAFETY: as in `id`.
        unsafe { (*self.as_raw()).version }
    }

    /// Whether the state owns the shadow variables with its id.
    pub(crate) fn is_shadow(&self) -> bool {
        // SAFETY: as in `id`.
        unsafe { (*self.as_raw()).is_shadow }
    }

    /// Whether the state forbids disabling its patch.
    pub(crate) fn block_disable(&self) -> bool {
        // SAFETY: as in `id`.
        unsafe { (*self.as_raw()).block_disable }
    }

    /// The callbacks of the state.
    fn callbacks(&self) -> bindings::klp_state_callbacks {
        // SAFETY: as in `id`; the structure is plain data.
        unsafe { (*self.as_raw()).callbacks }
    }

    /// Whether the state has any of the four callbacks.
    pub(crate) fn has_callbacks(&self) -> bool {
        let cb = self.callbacks();
        cb.pre_patch.is_some()
            || cb.post_patch.is_some()
            || cb.pre_unpatch.is_some()
            || cb.post_unpatch.is_some()
    }

    /// The destructor of the state's shadow variables.
    pub(crate) fn shadow_dtor(&self) -> bindings::klp_shadow_dtor_t {
        self.callbacks().shadow_dtor
    }

    /// Runs the `pre_patch` callback of the state of `patch`; its result,
    /// 0 when there is none.
    pub(crate) fn call_pre_patch(&self, _lock: &KlpLock, patch: &KlpPatch) -> c_int {
        match self.callbacks().pre_patch {
            // SAFETY: a callback of the live livepatch module, called with
            // the patch that carries the state and klp_mutex held, as
            // documented for state callbacks.
            Some(f) => unsafe { f(patch.as_raw(), self.as_raw()) },
            None => 0,
        }
    }

    /// Runs the `post_patch` callback of the state of `patch`, if any.
    pub(crate) fn call_post_patch(&self, _lock: &KlpLock, patch: &KlpPatch) {
        if let Some(f) = self.callbacks().post_patch {
            // SAFETY: as in `call_pre_patch`.
            unsafe { f(patch.as_raw(), self.as_raw()) };
        }
    }

    /// Runs the `pre_unpatch` callback of the state of `patch`, if any.
    pub(crate) fn call_pre_unpatch(&self, _lock: &KlpLock, patch: &KlpPatch) {
        if let Some(f) = self.callbacks().pre_unpatch {
            // SAFETY: as in `call_pre_patch`.
            unsafe { f(patch.as_raw(), self.as_raw()) };
        }
    }

    /// Runs the `post_unpatch` callback of the state of `patch`, if any.
    pub(crate) fn call_post_unpatch(&self, _lock: &KlpLock, patch: &KlpPatch) {
        if let Some(f) = self.callbacks().post_unpatch {
            // SAFETY: as in `call_pre_patch`.
            unsafe { f(patch.as_raw(), self.as_raw()) };
        }
    }

    /// Records whether `pre_patch` succeeded.
    pub(crate) fn set_pre_patch_succeeded(&self, _lock: &KlpLock, succeeded: bool) {
        // SAFETY: by the type invariant; klp_mutex is held (`_lock`), which
        // serialises the writers of the field.
        unsafe { (*self.as_raw()).callbacks.pre_patch_succeeded = succeeded };
    }
}

/// An element of an array that a livepatch module declares and ends with
/// an empty element (`objs`, `funcs`, `states`).
pub(crate) trait Terminated {
    /// Whether this is the empty element that ends the array.
    fn is_terminator(&self) -> bool;
}

impl Terminated for KlpObject {
    /// An object with neither a name nor functions.
    fn is_terminator(&self) -> bool {
        // SAFETY: by the type invariant; both are set by the module only.
        unsafe { (*self.as_raw()).funcs.is_null() && (*self.as_raw()).name.is_null() }
    }
}

impl Terminated for KlpFunc {
    /// A function with neither a name, a replacement nor a position.
    fn is_terminator(&self) -> bool {
        // SAFETY: by the type invariant; the three are set by the module
        // only, for the functions of its arrays.
        unsafe {
            let f = self.as_raw();
            (*f).old_name.is_null() && (*f).new_func.is_null() && (*f).old_sympos == 0
        }
    }
}

impl Terminated for KlpState {
    /// A state with id 0.
    fn is_terminator(&self) -> bool {
        self.id() == 0
    }
}

/// Iterator over an array of a livepatch module, in array order, up to
/// its terminator (see [`Terminated`]); an array that is a null pointer is
/// empty.  See [`KlpPatch::states`], [`KlpPatch::static_objects`] and
/// [`KlpObject::static_funcs`].
pub(crate) struct CArray<'a, T> {
    cur: *mut T,
    _array: PhantomData<&'a T>,
}

impl<'a, T: Terminated> CArray<'a, T> {
    /// The iterator over the array that starts at `first`.
    ///
    /// # Safety
    /// `first` must be null, or point to the first element of an array of
    /// `T` that ends with an element for which [`Terminated::is_terminator`]
    /// holds, all of it valid for `'a`.
    unsafe fn new(first: *mut T) -> Self {
        Self {
            cur: first,
            _array: PhantomData,
        }
    }
}

impl<T> Clone for CArray<'_, T> {
    fn clone(&self) -> Self {
        Self {
            cur: self.cur,
            _array: PhantomData,
        }
    }
}

impl<'a, T: Terminated> Iterator for CArray<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: `cur` is in the array, at or before its terminator (the
        // contract of `new`, and we stop at the terminator), valid for `'a`.
        let elem = unsafe { &*self.cur };
        if elem.is_terminator() {
            return None;
        }
        // SAFETY: `cur` is not the terminator, so the next element is in
        // the array too.
        self.cur = unsafe { self.cur.add(1) };
        Some(elem)
    }
}
