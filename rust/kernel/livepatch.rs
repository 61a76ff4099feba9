// SPDX-License-Identifier: GPL-2.0

//! Livepatch modules written in Rust.
//!
//! A livepatch replaces functions of the running kernel or of a module with
//! new versions that its module provides.  The structures the livepatch
//! core keeps pointers to (the patch, its objects, functions and states) are
//! `static` items that [`livepatch!`](crate::livepatch!) declares, so they
//! live as long as the module, which the core pins while the patch is
//! registered.  The module enables the patch from its `init` with
//! [`Patch::enable`].
//!
//! A patch may carry [`State`]s: a state names a change of the system by a
//! non-zero id.  Its [`StateCallbacks`] run only when the state is
//! introduced (no other livepatch carries it) and when it is removed (no
//! livepatch carries it any more); a livepatch that takes a state over from
//! the one it replaces runs none of them.  A state may block the disabling
//! of its livepatch, and may own the [`Shadow`] variables of its id, which
//! the core frees when the state is removed.
//!
//! The macro checks at compile time what it can: a patch has objects, each
//! object has functions, no state has the id 0 and no two states of a
//! patch share an id.
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h).
//! Documentation: `Documentation/livepatch/livepatch.rst`,
//! `Documentation/livepatch/system-state.rst` and
//! `Documentation/livepatch/shadow-vars.rst`.
//!
//! # Examples
//!
//! A livepatch of `cmdline_proc_show()` with a state whose callbacks log
//! its introduction and removal (the module's `init` enables it; here the
//! example only reads the declared patch back):
//!
//! ```
//! use kernel::ffi::{c_int, c_void};
//! use kernel::livepatch::{State, StateCallbacks, StateContext};
//! use kernel::prelude::*;
//! use kernel::seq_file::SeqFile;
//!
//! struct Logged;
//!
//! impl StateCallbacks for Logged {
//!     fn post_patch(state: &StateContext<'_>) {
//!         pr_info!("state {} introduced\n", state.id());
//!     }
//!     fn post_unpatch(state: &StateContext<'_>) {
//!         pr_info!("state {} removed\n", state.id());
//!     }
//! }
//!
//! /// The replacement, with the C signature of `cmdline_proc_show()`.
//! extern "C" fn my_cmdline_proc_show(
//!     m: *mut kernel::bindings::seq_file,
//!     _v: *mut c_void,
//! ) -> c_int {
//!     // SAFETY: proc calls `show` with a valid, locked `seq_file`.
//!     let m = unsafe { SeqFile::from_raw(m) };
//!     kernel::seq_print!(m, "patched\n");
//!     0
//! }
//!
//! kernel::livepatch! {
//!     static PATCH = {
//!         replace: false,
//!         objects: [
//!             (vmlinux, [("cmdline_proc_show", my_cmdline_proc_show)]),
//!         ],
//!         states: [State::new(1).callbacks::<Logged>()],
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
//!
//! let state = PATCH.state(1).ok_or(ENOENT)?;
//! assert!(!state.block_disable && !state.is_shadow);
//! assert!(PATCH.state(2).is_none());
//! # Ok::<(), Error>(())
//! ```

use crate::{bindings, error::to_result, prelude::*, str::CStr, ThisModule};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

mod shadow;
mod state;

pub use shadow::Shadow;
pub use state::{State, StateCallbacks, StateContext, StateId, StateInfo};

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
    /// [`livepatch!`](crate::livepatch!) takes `new_func` by path.
    ///
    /// # Safety
    ///
    /// `new_func` must be a function with the C signature of the original,
    /// which the livepatch core may call as long as it is linked.
    #[doc(hidden)]
    pub const unsafe fn new(
        old_name: &'static CStr,
        old_sympos: usize,
        new_func: *const (),
    ) -> Self {
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
    /// functions.
    ///
    /// # Safety
    ///
    /// `funcs` must end with [`Func::end`], its only terminator: the core
    /// walks the array up to it.
    #[doc(hidden)]
    pub const unsafe fn new(name: Option<&'static CStr>, funcs: &'static [Func]) -> Self {
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
pub struct Patch {
    raw: UnsafeCell<bindings::klp_patch>,
    /// Set by the first [`Patch::enable`]: the core gets the patch once.
    enabled: AtomicBool,
}

// SAFETY: as for `Func`; `enable` writes `mod` before the core sees the
// patch, and only the first call does (`enabled`).
unsafe impl Sync for Patch {}

impl Patch {
    /// A patch of `objs` and of `states`; with `replace`, it atomically
    /// replaces every livepatch enabled before it.
    ///
    /// # Safety
    ///
    /// `objs` must end with [`Object::end`] and `states` with
    /// [`State::end`], their only terminators: the core walks the arrays
    /// up to them.
    #[doc(hidden)]
    pub const unsafe fn new(
        objs: &'static [Object],
        states: &'static [State],
        replace: bool,
    ) -> Self {
        // SAFETY: all-zero is a valid `klp_patch`.
        let mut p: bindings::klp_patch = unsafe { core::mem::zeroed() };
        p.objs = objs.as_ptr() as *mut bindings::klp_object;
        // `State` is a transparent wrapper of `klp_state`.
        p.states = states.as_ptr() as *mut bindings::klp_state;
        p.replace = replace;
        Patch {
            raw: UnsafeCell::new(p),
            enabled: AtomicBool::new(false),
        }
    }

    /// Registers and enables the patch; call it from the module's `init`.
    ///
    /// The patch then stays until it is disabled through
    /// `/sys/kernel/livepatch/<module>/enabled` (or replaced); the module can
    /// be removed only after that.  The state callbacks of the states that
    /// the patch introduces run from here: an error of a `pre_patch`
    /// callback is returned.  A patch is enabled once: a second call fails
    /// with `EINVAL` (as `klp_enable_patch()` of a registered patch does)
    /// without touching it.
    ///
    /// # Examples
    ///
    /// ```
    /// extern "C" fn replacement() {}
    ///
    /// kernel::livepatch! {
    ///     static PATCH = {
    ///         replace: false,
    ///         objects: [(vmlinux, [("cmdline_proc_show", replacement)])],
    ///     };
    /// }
    ///
    /// struct MyLivepatch;
    ///
    /// impl kernel::Module for MyLivepatch {
    ///     fn init(module: &'static ThisModule) -> Result<Self> {
    ///         PATCH.enable(module)?;
    ///         Ok(MyLivepatch)
    ///     }
    /// }
    /// ```
    pub fn enable(&'static self, module: &'static ThisModule) -> Result {
        if self.enabled.swap(true, Ordering::AcqRel) {
            return Err(EINVAL);
        }
        let p = self.raw.get();
        // SAFETY: the patch is static (it outlives the core's use of it);
        // only this first call of `enable` gets here, before the core has
        // seen the patch, so nobody else accesses it.
        unsafe {
            (*p).mod_ = module.as_ptr();
            to_result(bindings::klp_enable_patch(p))
        }
    }

    /// The state `id` of this patch, as `klp_get_state()` finds it.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::livepatch::State;
    ///
    /// extern "C" fn replacement() {}
    ///
    /// kernel::livepatch! {
    ///     static PATCH = {
    ///         replace: false,
    ///         objects: [(vmlinux, [("cmdline_proc_show", replacement)])],
    ///         states: [State::new(1).block_disable(true), State::new(2).version(3)],
    ///     };
    /// }
    ///
    /// let state = PATCH.state(1).ok_or(EINVAL)?;
    /// pr_info!("state {} blocks disable: {}\n", state.id, state.block_disable);
    /// assert!(state.block_disable);
    /// assert_eq!(PATCH.state(2).map(|s| s.version), Some(3));
    /// assert!(PATCH.state(3).is_none());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn state(&'static self, id: StateId) -> Option<StateInfo> {
        // SAFETY: the patch is static; `klp_get_state()` only reads its
        // `states` array, which the core never writes but for the
        // `pre_patch_succeeded` flags that `StateInfo` does not read.
        let s = unsafe { bindings::klp_get_state(self.raw.get(), id) };
        // SAFETY: `s` is null or one of this patch's states.
        unsafe { StateInfo::from_raw(s) }
    }
}

/// Compile-time checks of [`livepatch!`](crate::livepatch!): `nfuncs` holds
/// the number of functions of each object, `ids` the state ids.
///
/// Evaluated in a constant, so that a failure is a compile error.
#[doc(hidden)]
pub const fn check_patch(nfuncs: &[usize], ids: &[StateId]) {
    if nfuncs.is_empty() {
        panic!("livepatch!: a livepatch needs at least one object");
    }
    let mut i = 0;
    while i < nfuncs.len() {
        if nfuncs[i] == 0 {
            panic!("livepatch!: every object of a livepatch needs at least one function");
        }
        i += 1;
    }
    let mut i = 0;
    while i < ids.len() {
        if ids[i] == 0 {
            panic!("livepatch!: a state id must not be 0");
        }
        let mut j = i + 1;
        while j < ids.len() {
            if ids[i] == ids[j] {
                panic!("livepatch!: two states of the livepatch have the same id");
            }
            j += 1;
        }
        i += 1;
    }
}

/// Declares the static livepatch of a module.
///
/// Each object is `vmlinux` or a module name (a string), with the
/// functions it replaces: `("name", replacement)` or
/// `("name", replacement, sympos)`.  The replacement must have the C
/// signature of the function it replaces; it is usually an
/// `extern "C" fn`.
///
/// `states`, optional, lists [`State`] values (constant expressions), in the
/// order in which their `pre_patch` callbacks run.
///
/// These do not compile: a patch without objects, an object without
/// functions, a state with the id 0, two states with the same id.
///
/// The macro also marks the module as a livepatch module.
///
/// The replacements' signatures are not checked: the compiler does not see
/// the C prototypes of the functions they replace (nor does the C core,
/// whose `new_func` is a `void *`).  A replacement with another signature
/// is undefined behaviour, as in C.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::AtomicU32;
/// use kernel::ffi::{c_int, c_void};
/// use kernel::livepatch::{Shadow, State, StateCallbacks};
///
/// struct Feature;
/// impl StateCallbacks for Feature {}
///
/// const COUNT: Shadow<AtomicU32, 7> = Shadow::new();
///
/// extern "C" fn my_cmdline_proc_show(
///     _m: *mut kernel::bindings::seq_file,
///     _v: *mut c_void,
/// ) -> c_int {
///     0
/// }
/// extern "C" fn my_some_function() {}
///
/// kernel::livepatch! {
///     static PATCH = {
///         replace: true,
///         objects: [
///             (vmlinux, [("cmdline_proc_show", my_cmdline_proc_show)]),
///             ("some_module", [("some_function", my_some_function, 1)]),
///         ],
///         states: [
///             State::new(1).callbacks::<Feature>().block_disable(true),
///             State::shadow(COUNT),
///         ],
///     };
/// }
///
/// assert!(PATCH.state(1).ok_or(ENOENT)?.block_disable);
/// assert!(PATCH.state(7).ok_or(ENOENT)?.is_shadow);
/// # Ok::<(), Error>(())
/// ```
///
/// A state id of 0 does not compile ("the evaluated program panicked at
/// 'livepatch!: a state id must not be 0'"); the project's build checks
/// compile such modules and expect these errors
/// (`tools/testing/selftests/livepatch-samples/compile_fail/`):
///
/// ```ignore
/// kernel::livepatch! {
///     static PATCH = {
///         replace: false,
///         objects: [(vmlinux, [("cmdline_proc_show", f)])],
///         states: [kernel::livepatch::State::new(0)],
///     };
/// }
/// ```
#[macro_export]
macro_rules! livepatch {
    (
        $vis:vis static $name:ident = {
            replace: $replace:expr,
            objects: [
                $( ($obj:tt, [ $( ($fname:literal, $fnew:path $(, $pos:expr)?) ),* $(,)? ]) ),*
                $(,)?
            ]
            $(, states: [ $($state:expr),* $(,)? ])?
            $(,)?
        };
    ) => {
        const _: () = $crate::livepatch::check_patch(
            &[ $( <[&str]>::len(&[ $($fname),* ]) ),* ],
            &[ $( $( $crate::livepatch::State::into_id($state) ),* )? ],
        );

        // SAFETY: the arrays below end with their terminators, and only
        // there; the replacements have the C signatures of the functions
        // they replace (the macro's contract, stated in its documentation).
        $vis static $name: $crate::livepatch::Patch = unsafe { $crate::livepatch::Patch::new(
            {
                static OBJS: [$crate::livepatch::Object;
                    <[&str]>::len(&[$(stringify!($obj)),*]) + 1] = [
                    $(
                        // SAFETY: `FUNCS` ends with its terminator.
                        unsafe { $crate::livepatch::Object::new(
                            $crate::livepatch!(@object $obj),
                            {
                                static FUNCS: [$crate::livepatch::Func;
                                    <[&str]>::len(&[$($fname),*]) + 1] = [
                                    $(
                                        // SAFETY: the replacement has the C
                                        // signature of the original (the
                                        // macro's contract).
                                        unsafe { $crate::livepatch::Func::new(
                                            $crate::c_str!($fname),
                                            $crate::livepatch!(@pos $($pos)?),
                                            $fnew as *const (),
                                        ) },
                                    )*
                                    $crate::livepatch::Func::end(),
                                ];
                                &FUNCS
                            },
                        ) },
                    )*
                    $crate::livepatch::Object::end(),
                ];
                &OBJS
            },
            $crate::livepatch!(@states $( $($state),* )?),
            $replace,
        ) };

        #[cfg(MODULE)]
        #[doc(hidden)]
        #[link_section = ".modinfo"]
        #[used]
        static __LIVEPATCH_MODINFO: [u8; 12] = *b"livepatch=Y\0";
    };
    (@states $($state:expr),*) => {
        {
            static STATES: [$crate::livepatch::State;
                <[&str]>::len(&[$(stringify!($state)),*]) + 1] = [
                $($state,)*
                $crate::livepatch::State::end(),
            ];
            &STATES
        }
    };
    (@object vmlinux) => { None };
    (@object $obj:literal) => { Some($crate::c_str!($obj)) };
    (@pos) => { 0 };
    (@pos $pos:expr) => { $pos };
}
