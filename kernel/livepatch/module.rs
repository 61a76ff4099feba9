// SPDX-License-Identifier: GPL-2.0-or-later

//! Modules and symbols: a handle of `struct module`, and the kallsyms
//! lookups that resolve the patched functions and klp relocations.

use crate::sys::KlpLock;
use crate::task::PreemptGuard;
use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_ulong, c_void};
use kernel::str::CStr;
use kernel::types::Opaque;

/// A `struct module`.
///
/// # Invariants
/// A `&'a Module` points to a module that stays allocated for `'a`.  Its
/// `klp_alive` flag is written only with `klp_mutex` held.
#[repr(transparent)]
pub(crate) struct Module(Opaque<bindings::module>);

impl Module {
    /// The handle of the module at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to a module that stays allocated for `'a`, whose
    /// `klp_alive` is written only with `klp_mutex` held.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::module) -> &'a Module {
        // SAFETY: `Module` is a transparent wrapper of the C structure,
        // which is valid for `'a` by the contract.
        unsafe { &*ptr.cast::<Module>() }
    }

    /// The C structure.
    pub(crate) fn as_raw(&self) -> *mut bindings::module {
        self.0.get()
    }

    /// The loaded module named `name` that the module notifier saw coming
    /// (`klp_alive`).  It stays until `klp_module_going()`, which takes
    /// `klp_mutex`: the handle borrows the lock.
    pub(crate) fn find_alive<'a>(_lock: &'a KlpLock, name: &CStr) -> Option<&'a Module> {
        // find_module() wants preemption disabled (RCU-sched).
        let _preempt = PreemptGuard::new();
        // SAFETY: `name` is NUL-terminated; preemption is disabled.
        let m = unsafe { bindings::find_module(name.as_char_ptr()) };
        // SAFETY: a module that find_module() returns stays allocated while
        // preemption is disabled; `klp_alive` changes only under klp_mutex,
        // which is held (`_lock`).
        if m.is_null() || !unsafe { (*m).klp_alive } {
            return None;
        }
        // SAFETY: a module whose coming the core saw stays allocated until
        // klp_module_going(), which waits for klp_mutex, held for `'a`.
        Some(unsafe { Module::from_raw(m) })
    }

    /// The module's name.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: the module is allocated (type invariant); its name is
        // NUL-terminated and set before the module is visible.
        unsafe { CStr::from_char_ptr((*self.as_raw()).name.as_ptr()) }
    }

    /// Whether the module is marked as a livepatch module.
    pub(crate) fn is_livepatch(&self) -> bool {
        // SAFETY: the module is allocated (type invariant); set by the
        // loader before the module runs.
        unsafe { (*self.as_raw()).klp }
    }

    /// Records whether the module notifier saw the module coming (and not
    /// yet going).
    pub(crate) fn set_alive(&self, _lock: &KlpLock, alive: bool) {
        // SAFETY: the module is allocated (type invariant); klp_mutex is
        // held (`_lock`), which serialises the writers of the field.
        unsafe { (*self.as_raw()).klp_alive = alive };
    }

    /// Takes a reference on the module; `false` when it is going away.
    pub(crate) fn try_get(&self) -> bool {
        // SAFETY: the module is allocated (type invariant).
        unsafe { bindings::try_module_get(self.as_raw()) }
    }

    /// The ELF data the loader kept for a livepatch module (null when
    /// none), and its string table.
    pub(crate) fn klp_info(&self) -> (*mut bindings::klp_modinfo, *const c_char) {
        // SAFETY: the module is allocated (type invariant); both are set by
        // the loader.
        unsafe {
            (
                (*self.as_raw()).klp_info,
                (*self.as_raw()).core_kallsyms.strtab,
            )
        }
    }
}

/// Calls `f` with the address of every symbol of vmlinux named `name`,
/// until it returns `true`.
pub(crate) fn each_vmlinux_symbol<F: FnMut(c_ulong) -> bool>(name: &CStr, mut f: F) {
    /// # Safety
    /// `data` must be the closure below.
    unsafe extern "C" fn one<F: FnMut(c_ulong) -> bool>(data: *mut c_void, addr: c_ulong) -> c_int {
        // SAFETY: `data` is the closure, alive and not otherwise borrowed
        // during the walk.
        let f = unsafe { &mut *data.cast::<F>() };
        f(addr) as c_int
    }
    // SAFETY: `name` is NUL-terminated; `one` gets the closure, which
    // outlives the walk.
    unsafe {
        bindings::kallsyms_on_each_match_symbol(
            Some(one::<F>),
            name.as_char_ptr(),
            (&raw mut f).cast(),
        )
    };
}

/// Calls `f` with the name and address of every symbol of the module named
/// `modname`, until it returns `true`.
pub(crate) fn each_module_symbol<F: FnMut(&CStr, c_ulong) -> bool>(modname: &CStr, mut f: F) {
    /// # Safety
    /// `data` must be the closure below; `name` null or a NUL-terminated
    /// string.
    unsafe extern "C" fn one<F: FnMut(&CStr, c_ulong) -> bool>(
        data: *mut c_void,
        name: *const c_char,
        addr: c_ulong,
    ) -> c_int {
        if name.is_null() {
            return 0;
        }
        // SAFETY: `data` is the closure, alive and not otherwise borrowed
        // during the walk.
        let f = unsafe { &mut *data.cast::<F>() };
        // SAFETY: kallsyms passes the name of the symbol, NUL-terminated
        // and valid during the call, which the borrow does not outlive.
        f(unsafe { CStr::from_char_ptr(name) }, addr) as c_int
    }
    // SAFETY: `modname` is NUL-terminated; `one` gets the closure, which
    // outlives the walk.
    unsafe {
        bindings::module_kallsyms_on_each_symbol(
            modname.as_char_ptr(),
            Some(one::<F>),
            (&raw mut f).cast(),
        )
    };
}

/// The size of the symbol at `addr`, if kallsyms knows it.
pub(crate) fn symbol_size(addr: *mut c_void) -> Option<c_ulong> {
    let mut size: c_ulong = 0;
    // SAFETY: kallsyms only reads its tables; `size` outlives the call.
    let found = unsafe {
        bindings::kallsyms_lookup_size_offset(addr as c_ulong, &mut size, core::ptr::null_mut())
    };
    (found != 0).then_some(size)
}
