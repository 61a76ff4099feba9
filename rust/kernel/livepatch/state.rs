// SPDX-License-Identifier: GPL-2.0

//! Livepatch states: a change of the system that a livepatch makes, with
//! the callbacks that make and undo it.
//!
//! See `Documentation/livepatch/system-state.rst` for when the core runs
//! the callbacks.

use super::Shadow;
use crate::{bindings, ffi::c_int, prelude::*};
use core::{cell::UnsafeCell, marker::PhantomData};

/// The id of a livepatch state (`unsigned long` in C); 0 is not a valid id.
pub type StateId = crate::ffi::c_ulong;

/// The callbacks that introduce and remove a [`State`].
///
/// They run only when the state is *introduced* (no other registered
/// livepatch carries it) or *removed* (no registered livepatch carries it
/// any more), with the livepatch core's mutex held, from process context.
/// When a livepatch replaces another and both carry the state, none of them
/// runs: the state, and the shadow variables it owns, are taken over.
///
/// The order, for a livepatch that introduces the state and is later
/// disabled: `pre_patch` (before the functions are redirected; an error
/// refuses the livepatch), `post_patch` (once every task runs the new
/// code), then `pre_unpatch` (before the functions go back) and
/// `post_unpatch` (once no task runs the new code any more).  An
/// `*_unpatch` callback runs only after the matching `*_patch` one
/// succeeded.
///
/// Every method has a default that does nothing, so an implementation
/// provides only those it needs.  The implementing type is usually a unit
/// struct: the callbacks are associated functions.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicBool, Ordering};
/// use kernel::livepatch::{State, StateCallbacks, StateContext};
///
/// static FEATURE_ON: AtomicBool = AtomicBool::new(false);
///
/// struct Feature;
///
/// impl StateCallbacks for Feature {
///     fn post_patch(_state: &StateContext<'_>) {
///         FEATURE_ON.store(true, Ordering::Relaxed);
///     }
///     fn pre_unpatch(_state: &StateContext<'_>) {
///         FEATURE_ON.store(false, Ordering::Relaxed);
///     }
/// }
///
/// let feature = State::new(42).callbacks::<Feature>();
/// assert_eq!(feature.into_id(), 42);
/// ```
pub trait StateCallbacks {
    /// Prepares the change before any task runs the livepatch's code; an
    /// error refuses the livepatch (its `init` fails with it).
    fn pre_patch(_state: &StateContext<'_>) -> Result {
        Ok(())
    }

    /// Completes the change once every task runs the livepatch's code.
    fn post_patch(_state: &StateContext<'_>) {}

    /// Starts undoing the change before tasks leave the livepatch's code.
    fn pre_unpatch(_state: &StateContext<'_>) {}

    /// Completes undoing the change once no task runs the livepatch's code.
    /// For a state that owns shadow variables, the core frees them right
    /// after this callback.
    fn post_unpatch(_state: &StateContext<'_>) {}
}

/// What a state callback gets: the state, and the livepatch it belongs to.
///
/// Only state callbacks get one: the livepatch core's mutex is held, so the
/// registered livepatches cannot change meanwhile.
pub struct StateContext<'a> {
    patch: *mut bindings::klp_patch,
    state: *mut bindings::klp_state,
    _p: PhantomData<&'a bindings::klp_state>,
}

impl StateContext<'_> {
    /// The state's id.
    ///
    /// ```
    /// use kernel::livepatch::{StateCallbacks, StateContext};
    ///
    /// struct Logged;
    /// impl StateCallbacks for Logged {
    ///     fn post_patch(state: &StateContext<'_>) {
    ///         pr_info!("state {} introduced\n", state.id());
    ///     }
    /// }
    /// ```
    pub fn id(&self) -> StateId {
        self.info().id
    }

    /// The state as the livepatch running the callback declares it.
    ///
    /// ```
    /// use kernel::livepatch::{StateCallbacks, StateContext};
    ///
    /// struct Checked;
    /// impl StateCallbacks for Checked {
    ///     fn pre_patch(state: &StateContext<'_>) -> Result {
    ///         if state.info().block_disable {
    ///             pr_info!("this change cannot be undone\n");
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn info(&self) -> StateInfo {
        // SAFETY: the core passes a state of a live patch, for the duration
        // of the callback.
        unsafe { StateInfo::read(self.state) }
    }

    /// Whether the livepatch running the callback replaces the others
    /// atomically.
    ///
    /// ```
    /// use kernel::livepatch::{StateCallbacks, StateContext};
    ///
    /// struct Logged;
    /// impl StateCallbacks for Logged {
    ///     fn pre_patch(state: &StateContext<'_>) -> Result {
    ///         pr_info!("cumulative: {}\n", state.is_replace());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn is_replace(&self) -> bool {
        // SAFETY: the core passes a live patch; `replace` does not change
        // once the patch is enabled.
        unsafe { (*self.patch).replace }
    }

    /// The state with this id of the livepatches installed before the one
    /// in transition, as `klp_get_prev_state()` finds it: the most recent
    /// one that carries it, or `None`.
    ///
    /// Useful for legacy states with a version: a `pre_patch` callback can
    /// see which version of the change the system has.
    ///
    /// ```
    /// use kernel::livepatch::{StateCallbacks, StateContext};
    ///
    /// struct Upgrade;
    /// impl StateCallbacks for Upgrade {
    ///     fn pre_patch(state: &StateContext<'_>) -> Result {
    ///         if let Some(prev) = state.prev() {
    ///             pr_info!("upgrading from version {}\n", prev.version);
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn prev(&self) -> Option<StateInfo> {
        // SAFETY: callbacks run during a transition with the core's mutex
        // held, as `klp_get_prev_state()` requires; the returned state is
        // null or a state of a registered (live) patch.
        unsafe { StateInfo::from_raw(bindings::klp_get_prev_state(self.id())) }
    }
}

/// A copy of the public fields of a livepatch state.
///
/// ```
/// use kernel::livepatch::{Shadow, State};
///
/// const NOTE: Shadow<u32, 1> = Shadow::new();
/// extern "C" fn replacement() {}
///
/// kernel::livepatch! {
///     static PATCH = {
///         replace: false,
///         objects: [(vmlinux, [("cmdline_proc_show", replacement)])],
///         states: [State::shadow(NOTE).block_disable(true)],
///     };
/// }
///
/// let info = PATCH.state(1).ok_or(EINVAL)?;
/// assert!(info.is_shadow && info.block_disable);
/// assert_eq!(info.version, 0);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateInfo {
    /// The state's id.
    pub id: StateId,
    /// The version of a legacy state (0 for the others).
    pub version: u32,
    /// Whether the state blocks disabling its livepatch.
    pub block_disable: bool,
    /// Whether the state owns the shadow variables of its id.
    pub is_shadow: bool,
}

impl StateInfo {
    /// Reads the public fields of `s`.
    ///
    /// # Safety
    ///
    /// `s` must point to a valid `klp_state`.
    unsafe fn read(s: *const bindings::klp_state) -> StateInfo {
        // SAFETY: per the function's contract; only fields that the core
        // does not write are read, without a reference to the whole state.
        unsafe {
            StateInfo {
                id: (*s).id,
                version: (*s).version,
                block_disable: (*s).block_disable,
                is_shadow: (*s).is_shadow,
            }
        }
    }

    /// As [`StateInfo::read`], or `None` when `s` is null.
    ///
    /// # Safety
    ///
    /// `s` must be null or point to a valid `klp_state`.
    pub(super) unsafe fn from_raw(s: *const bindings::klp_state) -> Option<StateInfo> {
        if s.is_null() {
            None
        } else {
            // SAFETY: non-null, valid per the function's contract.
            Some(unsafe { StateInfo::read(s) })
        }
    }
}

/// A state of a livepatch, declared in the `states` of
/// [`livepatch!`](crate::livepatch!).
///
/// Built in constant context: [`State::new`] or [`State::shadow`], then
/// the builder methods.  A state without callbacks, not owning shadow
/// variables, is a *legacy* state (the 6.12 model: an id and a version):
/// nothing undoes it, so a livepatch without it cannot replace one with it.
///
/// # Examples
///
/// ```
/// use kernel::livepatch::{Shadow, State, StateCallbacks};
///
/// struct Feature;
/// impl StateCallbacks for Feature {}
///
/// const SV: Shadow<u64, 3> = Shadow::new();
///
/// // A state whose callbacks make and undo a change, which cannot be
/// // undone while this livepatch is installed.
/// let _a = State::new(1).callbacks::<Feature>().block_disable(true);
/// // A state that owns the shadow variables of `SV` (id 3).
/// let b = State::shadow(SV);
/// // A legacy state, version 2.
/// let _c = State::new(4).version(2);
/// assert_eq!(b.into_id(), 3);
/// ```
#[repr(transparent)]
pub struct State(UnsafeCell<bindings::klp_state>);

// SAFETY: after `Patch::enable`, only the livepatch core writes the state
// (its `pre_patch_succeeded` flag, under its mutex); Rust code only reads
// fields that never change after the build.
unsafe impl Sync for State {}

impl State {
    /// A state with the id `id` (non-zero, unique within the livepatch),
    /// no callbacks, not blocking disable, owning no shadow variable.
    pub const fn new(id: StateId) -> State {
        // SAFETY: all-zero is a valid `klp_state` (no callbacks, null data).
        let mut s: bindings::klp_state = unsafe { core::mem::zeroed() };
        s.id = id;
        State(UnsafeCell::new(s))
    }

    /// A state that owns the shadow variables of `shadow`: its id is the
    /// shadow variable's id; when the state is removed, the core frees the
    /// remaining variables, dropping their values.
    pub const fn shadow<T: Send + Sync, const ID: StateId>(shadow: Shadow<T, ID>) -> State {
        let mut s = State::new(ID).0.into_inner();
        s.is_shadow = true;
        s.callbacks.shadow_dtor = shadow.dtor();
        State(UnsafeCell::new(s))
    }

    /// The state's callbacks: those of `C`.
    pub const fn callbacks<C: StateCallbacks>(self) -> State {
        let mut s = self.0.into_inner();
        s.callbacks.pre_patch = Some(pre_patch::<C>);
        s.callbacks.post_patch = Some(post_patch::<C>);
        s.callbacks.pre_unpatch = Some(pre_unpatch::<C>);
        s.callbacks.post_unpatch = Some(post_unpatch::<C>);
        State(UnsafeCell::new(s))
    }

    /// With `block`, the change cannot be undone: the livepatch cannot be
    /// disabled, nor replaced by one that does not carry the state.
    pub const fn block_disable(self, block: bool) -> State {
        let mut s = self.0.into_inner();
        s.block_disable = block;
        State(UnsafeCell::new(s))
    }

    /// The version of a legacy state: a livepatch cannot replace one with a
    /// higher version of the state.
    pub const fn version(self, version: u32) -> State {
        let mut s = self.0.into_inner();
        s.version = version;
        State(UnsafeCell::new(s))
    }

    /// The state's id, for the compile-time checks of
    /// [`livepatch!`](crate::livepatch!).
    pub const fn into_id(self) -> StateId {
        self.0.into_inner().id
    }

    /// The terminator of an array of states.
    #[doc(hidden)]
    pub const fn end() -> State {
        State::new(0)
    }
}

/// Wraps the arguments of a callback.
fn context<'a>(
    patch: *mut bindings::klp_patch,
    state: *mut bindings::klp_state,
) -> StateContext<'a> {
    StateContext {
        patch,
        state,
        _p: PhantomData,
    }
}

/// # Safety
///
/// Called by the livepatch core with a live patch and one of its states.
unsafe extern "C" fn pre_patch<C: StateCallbacks>(
    patch: *mut bindings::klp_patch,
    state: *mut bindings::klp_state,
) -> c_int {
    match C::pre_patch(&context(patch, state)) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// As for [`pre_patch`].
unsafe extern "C" fn post_patch<C: StateCallbacks>(
    patch: *mut bindings::klp_patch,
    state: *mut bindings::klp_state,
) {
    C::post_patch(&context(patch, state));
}

/// # Safety
///
/// As for [`pre_patch`].
unsafe extern "C" fn pre_unpatch<C: StateCallbacks>(
    patch: *mut bindings::klp_patch,
    state: *mut bindings::klp_state,
) {
    C::pre_unpatch(&context(patch, state));
}

/// # Safety
///
/// As for [`pre_patch`].
unsafe extern "C" fn post_unpatch<C: StateCallbacks>(
    patch: *mut bindings::klp_patch,
    state: *mut bindings::klp_state,
) {
    C::post_unpatch(&context(patch, state));
}
