// SPDX-License-Identifier: GPL-2.0-or-later

//! The legacy per-object callbacks (`struct klp_callbacks` in
//! `struct klp_object`): they run on every (un)patching of their object,
//! including when its module comes or goes.  `post_unpatch` runs only when
//! `pre_patch` succeeded.  New livepatches should use the callbacks of
//! livepatch states instead (see [`crate::state`]).

use crate::handles::KlpObject;
use crate::sys::KlpLock;
use kernel::error::Result;

/// Runs `pre_patch`; remembers whether `post_unpatch` may run.
pub(crate) fn pre_patch(lock: &KlpLock, obj: &KlpObject) -> Result {
    let ret = obj.call_pre_patch(lock);
    obj.set_post_unpatch_enabled(lock, ret == 0);
    kernel::error::to_result(ret)
}

/// Runs `post_patch`.
pub(crate) fn post_patch(lock: &KlpLock, obj: &KlpObject) {
    obj.call_post_patch(lock);
}

/// Runs `pre_unpatch`.
pub(crate) fn pre_unpatch(lock: &KlpLock, obj: &KlpObject) {
    obj.call_pre_unpatch(lock);
}

/// Runs `post_unpatch` if `pre_patch` succeeded, once.
pub(crate) fn post_unpatch(lock: &KlpLock, obj: &KlpObject) {
    if obj.post_unpatch_enabled() {
        obj.call_post_unpatch(lock);
    }
    obj.set_post_unpatch_enabled(lock, false);
}
