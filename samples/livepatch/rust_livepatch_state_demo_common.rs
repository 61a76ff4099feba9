// SPDX-License-Identifier: GPL-2.0

//! What both versions of the Rust state demo share: the state's id, its
//! data and callbacks, and the replacement of `cmdline_proc_show()`.
//!
//! Each version includes this file as its `common` module, with its own
//! `VERSION`.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::bindings;
use kernel::ffi::{c_int, c_void};
use kernel::livepatch::{Shadow, State, StateCallbacks, StateContext, StateId};
use kernel::prelude::*;
use kernel::seq_file::SeqFile;

/// The id of the demo's state, and of the shadow variable it owns.
pub(crate) const DEMO_STATE: StateId = 94;

/// The feature that the state's callbacks turn on and off.
pub(crate) struct Feature {
    /// Whether `/proc/cmdline` shows the feature.
    on: AtomicBool,
    /// The version of the livepatch that introduced the state.
    introduced_by: u32,
}

impl Drop for Feature {
    fn drop(&mut self) {
        pr_info!("state {}: feature data freed\n", DEMO_STATE);
    }
}

/// The feature's data: a shadow variable of no object, owned by the state.
pub(crate) const FEATURE: Shadow<Feature, DEMO_STATE> = Shadow::new();

/// The state: with `block`, the livepatch cannot be disabled, nor replaced
/// by one without the state.
pub(crate) const fn state<const VERSION: u32>(block: bool) -> State {
    State::shadow(FEATURE)
        .callbacks::<Callbacks<VERSION>>()
        .block_disable(block)
}

/// The state's callbacks, in the livepatch of version `VERSION`.
pub(crate) struct Callbacks<const VERSION: u32>;

impl<const VERSION: u32> StateCallbacks for Callbacks<VERSION> {
    fn pre_patch(state: &StateContext<'_>) -> Result {
        let feature = Feature {
            on: AtomicBool::new(false),
            introduced_by: VERSION,
        };
        FEATURE.alloc_global(feature, GFP_KERNEL)?;
        pr_info!("state {}: introduced by v{}\n", state.id(), VERSION);
        Ok(())
    }

    fn post_patch(state: &StateContext<'_>) {
        FEATURE.with_global(|f| {
            if let Some(f) = f {
                f.on.store(true, Ordering::Relaxed);
            }
        });
        pr_info!("state {}: feature on\n", state.id());
    }

    fn pre_unpatch(state: &StateContext<'_>) {
        FEATURE.with_global(|f| {
            if let Some(f) = f {
                f.on.store(false, Ordering::Relaxed);
            }
        });
        pr_info!("state {}: feature off\n", state.id());
    }

    fn post_unpatch(state: &StateContext<'_>) {
        pr_info!("state {}: removed by v{}\n", state.id(), VERSION);
    }
}

/// The new `cmdline_proc_show()` of the version `VERSION`.
pub(crate) extern "C" fn cmdline_proc_show<const VERSION: u32>(
    m: *mut bindings::seq_file,
    _v: *mut c_void,
) -> c_int {
    // SAFETY: the proc file's `show` is called with a valid, locked
    // `seq_file`, which outlives this call.
    let m = unsafe { SeqFile::from_raw(m) };
    FEATURE.with_global(|f| match f {
        Some(f) if f.on.load(Ordering::Relaxed) => kernel::seq_print!(
            m,
            "rust state demo v{}: feature on, introduced by v{}\n",
            VERSION,
            f.introduced_by
        ),
        _ => kernel::seq_print!(m, "rust state demo v{}: feature off\n", VERSION),
    });
    0
}
