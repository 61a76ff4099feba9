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
//! The compatibility rules are pure code in [`crate::state_rules`]; this
//! module reads the C structures, runs the callbacks at the points the core
//! calls it, frees the shadow variables of removed `is_shadow` states, and
//! provides `klp_get_state()` and `klp_get_prev_state()`.

use crate::objects::Patch;
use crate::registry;
use crate::state_rules::{self, StateDesc, StateError};
use crate::sys::KlpLock;
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

/// Whether a registered patch other than `patch` (and, with `skip`, other
/// than the patches `skip` accepts) carries the state `id`.
fn carried_elsewhere(lock: &KlpLock, patch: Patch, id: c_ulong) -> bool {
    registry::patches(lock)
        // SAFETY: registered patches are live; klp_mutex held.
        .any(|p| p != patch && !unsafe { klp_get_state(p, id) }.is_null())
}

fn name(patch: Patch) -> crate::sys::Name {
    crate::objects::patch_name(patch)
}

/// Runs one of the state's void callbacks.
fn call(
    patch: Patch,
    s: State,
    pick: impl Fn(&bindings::klp_state_callbacks) -> Option<unsafe extern "C" fn(Patch, State)>,
) {
    // SAFETY: the state belongs to `patch`, whose module is alive.
    if let Some(f) = pick(unsafe { &(*s).callbacks }) {
        // SAFETY: a callback of the livepatch, called with its own patch and
        // state, under klp_mutex as documented.
        unsafe { f(patch, s) };
    }
}

/// Frees the shadow variables of a removed `is_shadow` state.
fn free_shadow(s: State) {
    // SAFETY: as in `call`.
    let st = unsafe { &*s };
    if st.is_shadow {
        crate::shadow::free_all(st.id, st.callbacks.shadow_dtor);
    }
}

/// Whether the replaced patches already ran `pre_unpatch` for the states
/// that the patch in transition removes.  Changed under klp_mutex.
static REPLACED_PRE_UNPATCH: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Step 2 of enabling `patch`: `pre_patch` of every state it introduces, in
/// array order.  On an error, the states before the failing one are undone
/// (their `post_unpatch`, in reverse order, when the cancelled transition
/// completes) and the error is returned.
pub(crate) fn pre_patch(lock: &mut KlpLock, patch: Patch) -> Result {
    // SAFETY: `patch` is set up; klp_mutex held.
    for s in unsafe { states(patch) } {
        // SAFETY: as above.
        let st = unsafe { &mut *s };
        if !carried_elsewhere(lock, patch, st.id) {
            if let Some(f) = st.callbacks.pre_patch {
                // SAFETY: as in `call`.
                let ret = unsafe { f(patch, s) };
                if ret != 0 {
                    pr_err!(
                        "'{}': pre_patch of state {} failed ({})\n",
                        name(patch),
                        st.id,
                        ret
                    );
                    return Err(kernel::error::Error::from_errno(ret));
                }
            }
        }
        // From here on this patch may undo the state when it goes away.
        st.callbacks.pre_patch_succeeded = true;
    }
    Ok(())
}

/// The states that an atomic replace by `patch` removes, each with the
/// replaced patch that undoes it: the most recently enabled one carrying it.
fn for_each_removed_by_replace(lock: &KlpLock, patch: Patch, mut f: impl FnMut(Patch, State)) {
    for old in registry::patches(lock) {
        if old == patch {
            break;
        }
        // SAFETY: registered patches are live; klp_mutex held.
        for s in unsafe { states(old) } {
            // SAFETY: as above.
            let id = unsafe { (*s).id };
            // SAFETY: as above.
            if !unsafe { klp_get_state(patch, id) }.is_null() {
                continue;
            }
            // Only the last replaced patch carrying the state runs it.
            let later = registry::patches(lock)
                .skip_while(|&p| p != old)
                .skip(1)
                .take_while(|&p| p != patch)
                // SAFETY: as above.
                .any(|p| !unsafe { klp_get_state(p, id) }.is_null());
            if !later {
                f(old, s);
            }
        }
    }
}

/// Step 3 of an atomic replace: the replaced patches start undoing the
/// states that `patch` does not carry.
pub(crate) fn pre_unpatch_replaced(lock: &mut KlpLock, patch: Patch) {
    for_each_removed_by_replace(lock, patch, |old, s| call(old, s, |c| c.pre_unpatch));
    REPLACED_PRE_UNPATCH.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Step 5 of an atomic replace, once the replaced patches are unpatched:
/// they finish undoing the removed states, whose shadow variables go.
pub(crate) fn post_unpatch_replaced(lock: &mut KlpLock, patch: Patch) {
    for_each_removed_by_replace(lock, patch, |old, s| {
        // SAFETY: as in `call`.
        if unsafe { (*s).callbacks.pre_patch_succeeded } {
            call(old, s, |c| c.post_unpatch);
            free_shadow(s);
            // SAFETY: as above.
            unsafe { (*s).callbacks.pre_patch_succeeded = false };
        }
    });
    REPLACED_PRE_UNPATCH.store(false, core::sync::atomic::Ordering::Relaxed);
}

/// Disabling `patch` begins: it starts undoing the states it removes.
pub(crate) fn pre_unpatch(lock: &mut KlpLock, patch: Patch) {
    // SAFETY: `patch` is registered; klp_mutex held.
    for s in unsafe { states(patch) } {
        // SAFETY: as above.
        if !carried_elsewhere(lock, patch, unsafe { (*s).id }) {
            call(patch, s, |c| c.pre_unpatch);
        }
    }
}

/// The transition of `patch` to `target` is complete (every task switched):
/// finish introducing or removing its states.
pub(crate) fn transition_complete(lock: &mut KlpLock, patch: Patch, target: c_int) {
    if target == bindings::KLP_TRANSITION_PATCHED as c_int {
        // Introduced by an enable, or kept by a reversed disable (undoing
        // its pre_unpatch).
        // SAFETY: `patch` is registered; klp_mutex held.
        for s in unsafe { states(patch) } {
            // SAFETY: as above.
            if !carried_elsewhere(lock, patch, unsafe { (*s).id }) {
                call(patch, s, |c| c.post_patch);
            }
        }
        return;
    }
    // Unpatched: a disable, or an enable that was reversed or cancelled.
    // SAFETY: as above.
    if unsafe { (*patch).replace }
        && REPLACED_PRE_UNPATCH.load(core::sync::atomic::Ordering::Relaxed)
    {
        // The replaced patches stay: they undo their pre_unpatch.
        for_each_removed_by_replace(lock, patch, |old, s| call(old, s, |c| c.post_patch));
        REPLACED_PRE_UNPATCH.store(false, core::sync::atomic::Ordering::Relaxed);
    }
    // SAFETY: as above.
    let all: &mut [bindings::klp_state] = unsafe {
        let first = (*patch).states;
        let n = states(patch).count();
        if n == 0 {
            &mut []
        } else {
            core::slice::from_raw_parts_mut(first, n)
        }
    };
    // In reverse order, so that a failed enable undoes its states as a stack.
    for st in all.iter_mut().rev() {
        if !st.callbacks.pre_patch_succeeded || carried_elsewhere(lock, patch, st.id) {
            st.callbacks.pre_patch_succeeded = false;
            continue;
        }
        call(patch, st, |c| c.post_unpatch);
        free_shadow(st);
        st.callbacks.pre_patch_succeeded = false;
    }
}

/// Whether `patch` may be disabled: no state of it blocks disabling.
pub(crate) fn check_disable(_lock: &mut KlpLock, patch: Patch) -> Result {
    // SAFETY: `patch` is registered; klp_mutex held.
    if let Some(s) = unsafe { states(patch) }.find(|&s| unsafe { (*s).block_disable }) {
        pr_err!(
            "'{}': disabling is blocked by state {}\n",
            name(patch),
            // SAFETY: as above.
            unsafe { (*s).id }
        );
        return Err(EINVAL);
    }
    Ok(())
}
