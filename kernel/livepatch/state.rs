// SPDX-License-Identifier: GPL-2.0-or-later

//! Livepatch states: what a patch declares it changed in the system, and
//! the compatibility of a new patch with the installed ones.
//!
//! The rules themselves are pure code in [`crate::state_rules`]; this module
//! reads them out of the C structures and provides `klp_get_state()` and
//! `klp_get_prev_state()`.

use crate::objects::Patch;
use crate::registry;
use crate::state_rules::{self, StateDesc, StateError};
use crate::sys::KlpLock;
use crate::transition;
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::c_ulong;
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
    StateDesc {
        id: s.id as u64,
        version: s.version,
        has_callbacks: false,
        is_shadow: false,
        block_disable: false,
    }
}

/// The descriptions of a patch's states.
fn descs(patch: Patch) -> impl Iterator<Item = StateDesc> + Clone {
    // SAFETY: `patch` is a live patch of the caller.
    unsafe { states(patch) }.map(desc)
}

/// Checks a patch that is about to be enabled against the registered ones.
pub(crate) fn check_compatible(lock: &mut KlpLock, patch: Patch) -> Result {
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
