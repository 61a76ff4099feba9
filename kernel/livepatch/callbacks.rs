// SPDX-License-Identifier: GPL-2.0-or-later

//! The legacy per-object callbacks (`struct klp_callbacks` in
//! `struct klp_object`): they run on every (un)patching of their object,
//! including when its module comes or goes.  `post_unpatch` runs only when
//! `pre_patch` succeeded.  New livepatches should use the callbacks of
//! livepatch states instead (see [`crate::state`]).

use crate::objects::Object;
use kernel::error::Result;

/// Runs `pre_patch`; remembers whether `post_unpatch` may run.
pub(crate) fn pre_patch(obj: Object) -> Result {
    // SAFETY: the object and its callbacks belong to a live patch module;
    // klp_mutex is held by the callers.
    let cb = unsafe { &mut (*obj).callbacks };
    let ret = match cb.pre_patch {
        // SAFETY: a callback of the module, called with its own object.
        Some(f) => unsafe { f(obj) },
        None => 0,
    };
    cb.post_unpatch_enabled = ret == 0;
    kernel::error::to_result(ret)
}

/// Runs `post_patch`.
pub(crate) fn post_patch(obj: Object) {
    // SAFETY: as in `pre_patch`.
    if let Some(f) = unsafe { (*obj).callbacks.post_patch } {
        // SAFETY: as in `pre_patch`.
        unsafe { f(obj) };
    }
}

/// Runs `pre_unpatch`.
pub(crate) fn pre_unpatch(obj: Object) {
    // SAFETY: as in `pre_patch`.
    if let Some(f) = unsafe { (*obj).callbacks.pre_unpatch } {
        // SAFETY: as in `pre_patch`.
        unsafe { f(obj) };
    }
}

/// Runs `post_unpatch` if `pre_patch` succeeded, once.
pub(crate) fn post_unpatch(obj: Object) {
    // SAFETY: as in `pre_patch`.
    let cb = unsafe { &mut (*obj).callbacks };
    if cb.post_unpatch_enabled {
        if let Some(f) = cb.post_unpatch {
            // SAFETY: as in `pre_patch`.
            unsafe { f(obj) };
        }
    }
    cb.post_unpatch_enabled = false;
}
