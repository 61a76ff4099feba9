// SPDX-License-Identifier: GPL-2.0

//! Livepatch sample in Rust: the second version of
//! `rust_livepatch_shadow_fix1.rs`, which it atomically replaces.
//!
//! It carries the same state `SV_BUFFER`, so it takes the buffers' shadow
//! variables over from fix1 without any callback: the buffers of dummies
//! allocated under fix1 are still tracked, and freed by this livepatch.  It
//! adds a second shadow variable, owned by a second state: how often each
//! dummy was shown.
//!
//! Usage, after the steps of fix1 up to its `echo alloc`:
//!
//! ```text
//! insmod rust_livepatch_shadow_fix2.ko        # replaces fix1: no callback runs
//! rmmod rust_livepatch_shadow_fix1
//! cat /proc/livepatch_shadow_target
//! dummy 1, shown 1 time(s)
//! dummy 2 (buffer tracked), shown 1 time(s)
//! echo free > /proc/livepatch_shadow_target   # fix2: dummy 1 freed
//! echo free > /proc/livepatch_shadow_target   # fix2: dummy 2: buffer freed
//!                                             # fix2: dummy 2 freed
//! echo alloc > /proc/livepatch_shadow_target  # fix2: dummy 3 allocated, buffer tracked
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_shadow_fix2/enabled
//!                                             # fix2: no longer tracking buffers
//!                                             # fix2: dummy 3: buffer freed
//! rmmod rust_livepatch_shadow_fix2 livepatch_shadow_target
//! ```
//!
//! The replacement functions take the target's raw pointers: that is the
//! only `unsafe` code, one documented block in each function that needs it.

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::bindings;
use kernel::ffi::c_ulong;
use kernel::livepatch::{Shadow, State, StateCallbacks, StateContext, StateId};
use kernel::prelude::*;
use kernel::seq_file::SeqFile;

module! {
    type: ShadowFix2,
    name: "rust_livepatch_shadow_fix2",
    author: "The klp project",
    description: "Rust livepatch sample: replaces fix1, keeps its shadow variables",
    license: "GPL",
}

/// The id of the buffers' shadow variables, as in fix1.
const SV_BUFFER: StateId = 1;

/// The id of the shadow variables that count the showings of a dummy.
const SV_SHOWN: StateId = 2;

/// The size of a dummy's work buffer.
const BUF_SIZE: usize = 64;

/// `struct shadow_target_dummy` of the target module.
#[repr(C)]
struct Dummy {
    list: bindings::list_head,
    id: c_ulong,
}

/// The work buffer of a dummy, as in fix1 (the same type for the same id).
struct Buffer {
    /// The dummy's id, for the log.
    id: c_ulong,
    _buf: KBox<[u8; BUF_SIZE]>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        pr_info!("dummy {}: buffer freed\n", self.id);
    }
}

/// The buffers of the dummies, one per dummy.
const BUFFERS: Shadow<Buffer, SV_BUFFER> = Shadow::new();

/// How often each dummy was shown.
const SHOWN: Shadow<AtomicU32, SV_SHOWN> = Shadow::new();

/// The callbacks of the buffers' state, as in fix1; they run only when
/// this livepatch introduces or removes the state, not when it takes the
/// state over from fix1.
struct TrackBuffers;

impl StateCallbacks for TrackBuffers {
    fn post_patch(_state: &StateContext<'_>) {
        pr_info!("tracking the buffers of new dummies\n");
    }

    fn post_unpatch(_state: &StateContext<'_>) {
        pr_info!("no longer tracking buffers\n");
    }
}

kernel::livepatch! {
    static PATCH = {
        replace: true,
        objects: [
            ("livepatch_shadow_target", [
                ("shadow_target_dummy_alloc", dummy_alloc),
                ("shadow_target_dummy_free", dummy_free),
                ("shadow_target_dummy_show", dummy_show),
            ]),
        ],
        states: [
            State::shadow(BUFFERS).callbacks::<TrackBuffers>(),
            State::shadow(SHOWN),
        ],
    };
}

/// Allocates the dummy `id` and its buffer, which a shadow variable keeps.
fn alloc(id: c_ulong) -> Result<KBox<Dummy>> {
    let list = bindings::list_head {
        next: core::ptr::null_mut(),
        prev: core::ptr::null_mut(),
    };
    let mut d = KBox::new(Dummy { list, id }, GFP_KERNEL)?;
    let buffer = Buffer {
        id,
        _buf: KBox::new([0; BUF_SIZE], GFP_KERNEL)?,
    };
    BUFFERS.alloc(&mut *d, buffer, GFP_KERNEL)?;
    pr_info!("dummy {} allocated, buffer tracked\n", id);
    Ok(d)
}

/// The new `shadow_target_dummy_alloc()`.
extern "C" fn dummy_alloc(id: c_ulong) -> *mut Dummy {
    match alloc(id) {
        Ok(d) => KBox::into_raw(d),
        Err(_) => core::ptr::null_mut(),
    }
}

/// The new `shadow_target_dummy_free()`.
extern "C" fn dummy_free(d: *mut Dummy) {
    // SAFETY: the target calls this with a dummy that it took off its list
    // and hands over: a `kmalloc()` allocation (by a fix, as a `KBox`, or by
    // the original function, with `kzalloc()`) of the layout of `Dummy`,
    // which nothing else references any more.
    let mut d = unsafe { KBox::from_raw(d) };
    SHOWN.free(&mut *d);
    BUFFERS.free(&mut *d);
    pr_info!("dummy {} freed\n", d.id);
}

/// The new `shadow_target_dummy_show()`.
extern "C" fn dummy_show(m: *mut bindings::seq_file, d: *mut Dummy) {
    // SAFETY: the target calls this from a `show` function, with its
    // locked `seq_file` and, under its list's mutex, a dummy of the list:
    // both are valid, and the dummy is not written, during the call.
    let (m, d) = unsafe { (SeqFile::from_raw(m), &*d) };
    let tracked = if BUFFERS.get(d).is_some() {
        " (buffer tracked)"
    } else {
        ""
    };
    match SHOWN.get_or_alloc(d, GFP_KERNEL, || AtomicU32::new(0)) {
        Ok(shown) => {
            let n = shown.fetch_add(1, Ordering::Relaxed) + 1;
            kernel::seq_print!(m, "dummy {}{}, shown {} time(s)\n", d.id, tracked, n);
        }
        Err(_) => kernel::seq_print!(m, "dummy {}{}\n", d.id, tracked),
    }
}

struct ShadowFix2;

impl kernel::Module for ShadowFix2 {
    fn init(module: &'static ThisModule) -> Result<Self> {
        PATCH.enable(module)?;
        Ok(ShadowFix2)
    }
}
