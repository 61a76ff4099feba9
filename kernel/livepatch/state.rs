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

use crate::handles::{KlpPatch, KlpState};
use crate::registry;
use crate::state_plan::{self, Callback, PatchView, Progress, Step, Target};
use crate::state_rules::{self, StateDesc, StateError};
use crate::sys::{KlpLock, Locked};
use crate::transition;
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;

fn desc(s: &KlpState) -> StateDesc {
    StateDesc {
        id: s.id() as u64,
        version: s.version(),
        has_callbacks: s.has_callbacks(),
        is_shadow: s.is_shadow(),
        block_disable: s.block_disable(),
    }
}

/// The descriptions of a patch's states.
fn descs(patch: &KlpPatch) -> impl Iterator<Item = StateDesc> + Clone + '_ {
    patch.states().map(desc)
}

/// Checks a patch that is about to be enabled: its own states, then
/// against the registered patches.
pub(crate) fn check_compatible(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    if let Err(StateError::DuplicateId(id)) = state_rules::check_own(descs(patch)) {
        pr_err!("patch '{}': state {} is listed twice\n", patch.name(), id);
        return Err(EINVAL);
    }
    let replace = patch.replace();
    for old in registry::registered(lock) {
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
                    patch.name(),
                    id,
                    new,
                    installed
                ),
                _ => pr_err!(
                    "patch '{}': replacing '{}' would drop state {}, which cannot be undone\n",
                    patch.name(),
                    old.name(),
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
pub(crate) unsafe extern "C" fn klp_get_state(
    patch: *mut bindings::klp_patch,
    id: c_ulong,
) -> *mut bindings::klp_state {
    if patch.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: per the function's contract, the patch of a live livepatch
    // module; only its `states` array is read, which the core never
    // writes but for `pre_patch_succeeded`.
    let patch = unsafe { KlpPatch::from_raw(patch) };
    patch
        .state(id)
        .map_or(core::ptr::null_mut(), KlpState::as_raw)
}

/// The state `id` of the most recent registered patch before the one in
/// transition: what the system had before.  Only meaningful in callbacks.
#[no_mangle]
pub(crate) extern "C" fn klp_get_prev_state(id: c_ulong) -> *mut bindings::klp_state {
    let Some(tp) = transition::patch() else {
        pr_err!("klp_get_prev_state() called outside of a transition\n");
        return core::ptr::null_mut();
    };
    let mut last = core::ptr::null_mut();
    for p in registry::patches_assume_locked() {
        if p == tp {
            break;
        }
        // SAFETY: registered patches are live; the callbacks that call this
        // run with klp_mutex held.
        let p = unsafe { KlpPatch::from_raw(p) };
        if let Some(s) = p.state(id) {
            last = s.as_raw();
        }
    }
    last
}

/// The registered patches, as the state plan sees them.
struct Registered<'a>(&'a KlpLock);

impl<'a> PatchView for Registered<'a> {
    type P = &'a KlpPatch;

    fn patches(&self) -> impl Iterator<Item = &'a KlpPatch> {
        registry::registered(self.0)
    }

    fn states(&self, p: &'a KlpPatch) -> impl Iterator<Item = StateDesc> + Clone {
        descs(p)
    }

    fn replace(&self, p: &'a KlpPatch) -> bool {
        p.replace()
    }
}

/// Where the plan of the running transition stands; changed under
/// klp_mutex.
static PROGRESS: Locked<Progress> = Locked::new(Progress::IDLE);

/// Runs one step of the plan: a callback of a state, or the freeing of its
/// shadow variables.  Only `pre_patch` can fail.
fn run(lock: &KlpLock, step: Step<&KlpPatch>) -> Result {
    let patch = step.patch;
    // The plan names registered patches, whose modules are alive, and
    // states they carry.
    let Some(s) = patch.state(step.state as c_ulong) else {
        return Ok(());
    };
    match step.callback {
        Callback::PrePatch => {
            let ret = s.call_pre_patch(lock, patch);
            if ret != 0 {
                pr_err!(
                    "'{}': pre_patch of state {} failed ({})\n",
                    patch.name(),
                    step.state,
                    ret
                );
                return Err(kernel::error::Error::from_errno(ret));
            }
            s.set_pre_patch_succeeded(lock, true);
        }
        Callback::PostPatch => s.call_post_patch(lock, patch),
        Callback::PreUnpatch => s.call_pre_unpatch(lock, patch),
        Callback::PostUnpatch => {
            s.call_post_unpatch(lock, patch);
            s.set_pre_patch_succeeded(lock, false);
        }
        Callback::FreeShadow => {
            crate::shadow::free_all(s.id(), s.shadow_dtor());
        }
    }
    Ok(())
}

/// Steps 2 and 3 of enabling `patch` (registered, in transition): the
/// `pre_patch` of every state it introduces and, for an atomic replace, the
/// replaced patches' `pre_unpatch` of the states it removes.  On an error,
/// nothing more runs; the cancelled transition's completion undoes the
/// states whose `pre_patch` succeeded.
pub(crate) fn begin_enable(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    let shared: &KlpLock = lock;
    let (progress, res) = Progress::enable(&Registered(shared), patch, |step| run(shared, step));
    *PROGRESS.get(lock) = progress;
    res
}

/// Disabling `patch` begins: it starts undoing the states it removes.
pub(crate) fn begin_disable(lock: &mut KlpLock, patch: &KlpPatch) {
    let shared: &KlpLock = lock;
    let progress = Progress::disable(&Registered(shared), patch, |step| {
        let _ = run(shared, step);
    });
    *PROGRESS.get(lock) = progress;
}

/// An atomic replace by `patch` completed and the replaced patches are
/// unpatched: they finish undoing the states it removes, whose shadow
/// variables go.
pub(crate) fn replaced_unpatched(lock: &mut KlpLock, patch: &KlpPatch) {
    let progress = *PROGRESS.get(lock);
    let shared: &KlpLock = lock;
    progress.complete_replaced(&Registered(shared), patch, Target::Patched, |step| {
        let _ = run(shared, step);
    });
}

/// The transition of `patch` to `target` is complete (every task switched,
/// or an enable was cancelled): finish introducing or removing its states,
/// or undo what a reversed transition began.
pub(crate) fn transition_complete(lock: &mut KlpLock, patch: &KlpPatch, target: c_int) {
    let progress = core::mem::replace(PROGRESS.get(lock), Progress::IDLE);
    let shared: &KlpLock = lock;
    let view = Registered(shared);
    let mut go = |step| {
        let _ = run(shared, step);
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
pub(crate) fn check_disable(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    if let Some(id) = state_plan::disable_blocked(&Registered(lock), patch) {
        pr_err!("'{}': disabling is blocked by state {}\n", patch.name(), id);
        return Err(EINVAL);
    }
    Ok(())
}
