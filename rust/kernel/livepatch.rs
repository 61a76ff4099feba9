// SPDX-License-Identifier: GPL-2.0

//! Livepatch modules written in Rust.
//!
//! A livepatch replaces functions of the running kernel or of a module with
//! new versions that its module provides.  The structures the livepatch
//! core keeps pointers to (the patch, its objects and functions) are
//! `static` items that [`livepatch!`](crate::livepatch!) declares, so they
//! live as long as the module, which the core pins while the patch is
//! registered.  The module enables the patch from its `init` with
//! [`Patch::enable`].
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h).
//! Documentation: `Documentation/livepatch/livepatch.rst`.
//!
//! # Examples
//!
//! ```ignore
//! use kernel::prelude::*;
//!
//! kernel::livepatch! {
//!     static PATCH = {
//!         replace: false,
//!         objects: [
//!             (vmlinux, [("cmdline_proc_show", my_cmdline_proc_show)]),
//!         ],
//!     };
//! }
//!
//! struct MyLivepatch;
//!
//! impl kernel::Module for MyLivepatch {
//!     fn init(module: &'static ThisModule) -> Result<Self> {
//!         PATCH.enable(module)?;
//!         Ok(MyLivepatch)
//!     }
//! }
//! ```

use crate::{bindings, error::to_result, prelude::*, str::CStr, ThisModule};
use core::cell::UnsafeCell;

/// A function that a livepatch replaces.
///
/// Built by [`livepatch!`](crate::livepatch!); the livepatch core writes its
/// internal fields.
#[repr(transparent)]
pub struct Func(UnsafeCell<bindings::klp_func>);

// SAFETY: the livepatch core is the only writer, under its mutex, after
// `Patch::enable`; nothing in Rust reads the structure.
unsafe impl Sync for Func {}

impl Func {
    /// The function `old_name` (the `old_sympos`-th symbol of that name in
    /// its object, or the only one when 0) is replaced by `new_func`.
    ///
    /// `new_func` must be a function with the same C signature as the
    /// original; [`livepatch!`](crate::livepatch!) takes it by path.
    #[doc(hidden)]
    pub const fn new(old_name: &'static CStr, old_sympos: usize, new_func: *const ()) -> Self {
        // SAFETY: all-zero is a valid `klp_func` (null pointers, no flags).
        let mut f: bindings::klp_func = unsafe { core::mem::zeroed() };
        f.old_name = old_name.as_char_ptr();
        f.old_sympos = old_sympos as _;
        f.new_func = new_func as *mut _;
        Func(UnsafeCell::new(f))
    }

    /// The terminator of an array of functions.
    #[doc(hidden)]
    pub const fn end() -> Self {
        // SAFETY: as in `new`.
        Func(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }
}

/// An object that a livepatch patches: vmlinux or a module.
#[repr(transparent)]
pub struct Object(UnsafeCell<bindings::klp_object>);

// SAFETY: as for `Func`.
unsafe impl Sync for Object {}

impl Object {
    /// The object named `name` (a module), or vmlinux when `None`, with its
    /// functions; `funcs` ends with [`Func::end`].
    #[doc(hidden)]
    pub const fn new(name: Option<&'static CStr>, funcs: &'static [Func]) -> Self {
        // SAFETY: all-zero is a valid `klp_object`.
        let mut o: bindings::klp_object = unsafe { core::mem::zeroed() };
        o.name = match name {
            Some(n) => n.as_char_ptr(),
            None => core::ptr::null(),
        };
        // `Func` is a transparent wrapper of `klp_func`.
        o.funcs = funcs.as_ptr() as *mut bindings::klp_func;
        Object(UnsafeCell::new(o))
    }

    /// The terminator of an array of objects.
    #[doc(hidden)]
    pub const fn end() -> Self {
        // SAFETY: as in `new`.
        Object(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }
}

/// A livepatch, declared with [`livepatch!`](crate::livepatch!).
#[repr(transparent)]
pub struct Patch(UnsafeCell<bindings::klp_patch>);

// SAFETY: as for `Func`; `enable` writes `mod` before the core sees the
// patch, once.
unsafe impl Sync for Patch {}

impl Patch {
    /// A patch of `objs` (ending with [`Object::end`]); with `replace`, it
    /// atomically replaces every livepatch enabled before it.
    #[doc(hidden)]
    pub const fn new(objs: &'static [Object], replace: bool) -> Self {
        // SAFETY: all-zero is a valid `klp_patch`.
        let mut p: bindings::klp_patch = unsafe { core::mem::zeroed() };
        p.objs = objs.as_ptr() as *mut bindings::klp_object;
        p.replace = replace;
        Patch(UnsafeCell::new(p))
    }

    /// Registers and enables the patch; call it from the module's `init`.
    ///
    /// The patch then stays until it is disabled through
    /// `/sys/kernel/livepatch/<module>/enabled` (or replaced); the module can
    /// be removed only after that.
    pub fn enable(&'static self, module: &'static ThisModule) -> Result {
        let p = self.0.get();
        // SAFETY: the patch is static (it outlives the core's use of it);
        // the core has not seen it yet, so nobody else accesses it; it is
        // enabled at most once because the module's `init` runs once.
        unsafe {
            (*p).mod_ = module.as_ptr();
            to_result(bindings::klp_enable_patch(p))
        }
    }
}

/// Declares the static livepatch of a module.
///
/// Each object is `vmlinux` or a module name (a string), with the
/// functions it replaces: `("name", replacement)` or
/// `("name", replacement, sympos)`.  A patch needs at least one object and
/// each object at least one function: anything else does not compile.  The
/// replacement must have the C signature of the function it replaces; it is
/// usually an `extern "C" fn`.
///
/// The macro also marks the module as a livepatch module.
#[macro_export]
macro_rules! livepatch {
    (
        $vis:vis static $name:ident = {
            replace: $replace:expr,
            objects: [
                $( ($obj:tt, [ $( ($fname:literal, $fnew:path $(, $pos:expr)?) ),+ $(,)? ]) ),+
                $(,)?
            ] $(,)?
        };
    ) => {
        $vis static $name: $crate::livepatch::Patch = $crate::livepatch::Patch::new(
            {
                static OBJS: [$crate::livepatch::Object;
                    [$(stringify!($obj)),+].len() + 1] = [
                    $(
                        $crate::livepatch::Object::new(
                            $crate::livepatch!(@object $obj),
                            {
                                static FUNCS: [$crate::livepatch::Func;
                                    [$($fname),+].len() + 1] = [
                                    $(
                                        $crate::livepatch::Func::new(
                                            $crate::c_str!($fname),
                                            $crate::livepatch!(@pos $($pos)?),
                                            $fnew as *const (),
                                        ),
                                    )+
                                    $crate::livepatch::Func::end(),
                                ];
                                &FUNCS
                            },
                        ),
                    )+
                    $crate::livepatch::Object::end(),
                ];
                &OBJS
            },
            $replace,
        );

        #[cfg(MODULE)]
        #[doc(hidden)]
        #[link_section = ".modinfo"]
        #[used]
        static __LIVEPATCH_MODINFO: [u8; 12] = *b"livepatch=Y\0";
    };
    (@object vmlinux) => { None };
    (@object $obj:literal) => { Some($crate::c_str!($obj)) };
    (@pos) => { 0 };
    (@pos $pos:expr) => { $pos };
}
