// SPDX-License-Identifier: GPL-2.0-or-later

//! Livepatch states: what a patch declares it changed in the system, the
//! callbacks that make and undo the change, and the shadow variables that a
//! state owns.
//!
//! A state's callbacks run only when the state is *introduced* (no other
//! registered patch carries it) or *removed* (no registered patch carries
//! it any more): a patch that takes a state over from another, by atomic
//! replace or by stacking, runs none of them.  When an atomic replace
//! removes a state, the replaced patch that enabled last among those
//! carrying it undoes it, with its own callbacks ("safe downgrade").  See
//! `Documentation/livepatch/system-state.rst` for the order of events.
//!
//! The compatibility rules ([`crate::state_rules`]) and the plan of which
//! callback runs when ([`crate::state_plan`]) are pure code shared with the
//! host model; this module shows them the registered patches, runs the
//! steps of the plan at the points the core calls it (callbacks, freeing
//! the shadow variables of removed `is_shadow` states), and provides
//! `klp_get_state()` and `klp_get_prev_state()`.

use crate::objects::Patch;
use crate::registry;
use crate::state_plan::{self, Callback, PatchView, Progress, Step, Target};
use crate::state_rules::{self, StateDesc, StateError};
use crate::sys::{KlpLock, Locked};
use crate::transition;
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;

/// A state of a patch's `states` array.
type State = *mut bindings::klp_state;

/// The states of a patch, up to the terminator (id 0).
///
/// # Safety
/// `patch.states` must be null or point to an array terminated by a state
/// with id 0, valid while the patch is.
unsafe fn states(patch: Patch) -> impl Iterator<Item = State> + Clone {
    // SAFETY: per the function's contract.
    let first = unsafe { (*patch).states };
    let mut cur = first;
    core::iter::from_fn(move || {
        // SAFETY: we stop at the terminator.
        unsafe {
            if cur.is_null() || (*cur).id == 0 {
                return None;
            }
            let s = cur;
            cur = cur.add(1);
            Some(s)
        }
    })
}

fn desc(s: State) -> StateDesc {
    // SAFETY: states of a live patch.
    let s = unsafe { &*s };
    let cb = &s.callbacks;
    StateDesc {
        id: s.id as u64,
        version: s.version,
        has_callbacks: cb.pre_patch.is_some()
            || cb.post_patch.is_some()
            || cb.pre_unpatch.is_some()
            || cb.post_unpatch.is_some(),
        is_shadow: s.is_shadow,
        block_disable: s.block_disable,
    }
}

/// The descriptions of a patch's states.
fn descs(patch: Patch) -> impl Iterator<Item = StateDesc> + Clone {
    // SAFETY: `patch` is a live patch of the caller.
    unsafe { states(patch) }.map(desc)
}

/// Checks a patch that is about to be enabled: its own states, then
/// against the registered patches.
pub(crate) fn check_compatible(lock: &mut KlpLock, patch: Patch) -> Result {
    if let Err(StateError::DuplicateId(id)) = state_rules::check_own(descs(patch)) {
        pr_err!(
            "patch '{}': state {} is listed twice\n",
            crate::objects::patch_name(patch),
            id
        );
        return Err(EINVAL);
    }
    // SAFETY: `patch` was checked by `check_patch`.
    let replace = unsafe { (*patch).replace };
    for old in registry::patches(lock) {
        let Err(e) = state_rules::check_against(descs(patch), replace, descs(old)) else {
            continue;
        };
        // Conflicts of legacy states keep the C core's single message (the
        // upstream selftests compare the log line by line); those of states
        // of the new model also name the state.
        let id = match e {
            StateError::Downgrade { id, .. }
            | StateError::DropsBlocking(id)
            | StateError::DropsLegacy(id)
            | StateError::DuplicateId(id) => id,
            StateError::ZeroId => 0,
        };
        let legacy = Iterator::chain(descs(old), descs(patch))
            .filter(|s| s.id == id)
            .all(|s| s.is_legacy());
        if !legacy {
            match e {
                StateError::Downgrade { installed, new, .. } => pr_err!(
                    "patch '{}': state {} version {} is lower than the installed {}\n",
                    crate::objects::patch_name(patch),
                    id,
                    new,
                    installed
                ),
                _ => pr_err!(
                    "patch '{}': replacing '{}' would drop state {}, which cannot be undone\n",
                    crate::objects::patch_name(patch),
                    crate::objects::patch_name(old),
                    id
                ),
            }
        }
        return Err(EINVAL);
    }
    Ok(())
}

/// The state `id` of `patch`, or null.
///
/// # Safety
/// `patch` must be a live patch; called from the patch's own code.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_get_state(patch: Patch, id: c_ulong) -> State {
    if patch.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: per the function's contract.
    unsafe { states(patch) }
        // SAFETY: as above.
        .find(|&s| unsafe { (*s).id } == id)
        .unwrap_or(core::ptr::null_mut())
}

/// The state `id` of the most recent registered patch before the one in
/// transition: what the system had before.  Only meaningful in callbacks.
#[no_mangle]
pub(crate) extern "C" fn klp_get_prev_state(id: c_ulong) -> State {
    let Some(tp) = transition::patch() else {
        pr_err!("klp_get_prev_state() called outside of a transition\n");
        return core::ptr::null_mut();
    };
    let mut last = core::ptr::null_mut();
    for p in registry::patches_assume_locked() {
        if p == tp {
            break;
        }
        // SAFETY: registered patches are live.
        let s = unsafe { klp_get_state(p, id) };
        if !s.is_null() {
            last = s;
        }
    }
    last
}

/// The registered patches, as the state plan sees them.
struct Registered<'a>(&'a KlpLock);

impl PatchView for Registered<'_> {
    type P = Patch;

    fn patches(&self) -> impl Iterator<Item = Patch> {
        registry::patches(self.0)
    }

    fn states(&self, p: Patch) -> impl Iterator<Item = StateDesc> + Clone {
        descs(p)
    }

    fn replace(&self, p: Patch) -> bool {
        // SAFETY: registered patches are live; klp_mutex held.
        unsafe { (*p).replace }
    }
}

/// Where the plan of the running transition stands; changed under
/// klp_mutex.
static PROGRESS: Locked<Progress> = Locked::new(Progress::IDLE);

fn name(patch: Patch) -> crate::sys::Name {
    crate::objects::patch_name(patch)
}

/// Runs one step of the plan: a callback of a state, or the freeing of its
/// shadow variables.  Only `pre_patch` can fail.
fn run(step: Step<Patch>) -> Result {
    // SAFETY: the plan names registered patches, whose modules are alive,
    // and states they carry; klp_mutex held.
    let s = unsafe { klp_get_state(step.patch, step.state as c_ulong) };
    if s.is_null() {
        return Ok(());
    }
    // SAFETY: as above.
    let st = unsafe { &mut *s };
    let cb = st.callbacks;
    // SAFETY (of the calls below): a callback of the livepatch, called with
    // its own patch and state, under klp_mutex as documented.
    match step.callback {
        Callback::PrePatch => {
            if let Some(f) = cb.pre_patch {
                // SAFETY: see above.
                let ret = unsafe { f(step.patch, s) };
                if ret != 0 {
                    pr_err!(
                        "'{}': pre_patch of state {} failed ({})\n",
                        name(step.patch),
                        step.state,
                        ret
                    );
                    return Err(kernel::error::Error::from_errno(ret));
                }
            }
            st.callbacks.pre_patch_succeeded = true;
        }
        Callback::PostPatch => {
            if let Some(f) = cb.post_patch {
                // SAFETY: see above.
                unsafe { f(step.patch, s) };
            }
        }
        Callback::PreUnpatch => {
            if let Some(f) = cb.pre_unpatch {
                // SAFETY: see above.
                unsafe { f(step.patch, s) };
            }
        }
        Callback::PostUnpatch => {
            if let Some(f) = cb.post_unpatch {
                // SAFETY: see above.
                unsafe { f(step.patch, s) };
            }
            st.callbacks.pre_patch_succeeded = false;
        }
        Callback::FreeShadow => {
            crate::shadow::free_all(st.id, cb.shadow_dtor);
        }
    }
    Ok(())
}

/// Steps 2 and 3 of enabling `patch` (registered, in transition): the
/// `pre_patch` of every state it introduces and, for an atomic replace, the
/// replaced patches' `pre_unpatch` of the states it removes.  On an error,
/// nothing more runs; the cancelled transition's completion undoes the
/// states whose `pre_patch` succeeded.
pub(crate) fn begin_enable(lock: &mut KlpLock, patch: Patch) -> Result {
    let (progress, res) = Progress::enable(&Registered(lock), patch, run);
    *PROGRESS.get(lock) = progress;
    res
}

/// Disabling `patch` begins: it starts undoing the states it removes.
pub(crate) fn begin_disable(lock: &mut KlpLock, patch: Patch) {
    let progress = Progress::disable(&Registered(lock), patch, |step| {
        let _ = run(step);
    });
    *PROGRESS.get(lock) = progress;
}

/// An atomic replace by `patch` completed and the replaced patches are
/// unpatched: they finish undoing the states it removes, whose shadow
/// variables go.
pub(crate) fn replaced_unpatched(lock: &mut KlpLock, patch: Patch) {
    let progress = *PROGRESS.get(lock);
    progress.complete_replaced(&Registered(lock), patch, Target::Patched, |step| {
        let _ = run(step);
    });
}

/// The transition of `patch` to `target` is complete (every task switched,
/// or an enable was cancelled): finish introducing or removing its states,
/// or undo what a reversed transition began.
pub(crate) fn transition_complete(lock: &mut KlpLock, patch: Patch, target: c_int) {
    let progress = core::mem::replace(PROGRESS.get(lock), Progress::IDLE);
    let view = Registered(lock);
    let mut go = |step| {
        let _ = run(step);
    };
    if target == bindings::KLP_TRANSITION_PATCHED as c_int {
        progress.complete_own(&view, patch, Target::Patched, go);
    } else {
        // The replaced patches stay: they undo their pre_unpatch.
        progress.complete_replaced(&view, patch, Target::Unpatched, &mut go);
        progress.complete_own(&view, patch, Target::Unpatched, go);
    }
}

/// Whether `patch` may be disabled: no state of it blocks disabling.
pub(crate) fn check_disable(lock: &mut KlpLock, patch: Patch) -> Result {
    if let Some(id) = state_plan::disable_blocked(&Registered(lock), patch) {
        pr_err!("'{}': disabling is blocked by state {}\n", name(patch), id);
        return Err(EINVAL);
    }
    Ok(())
}
