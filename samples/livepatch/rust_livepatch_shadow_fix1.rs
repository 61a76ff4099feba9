// SPDX-License-Identifier: GPL-2.0

//! Livepatch sample in Rust: fixes the memory leak of
//! `livepatch-shadow-target.c` with a typed shadow variable.
//!
//! Every dummy of the target module leaks the work buffer it gets when it
//! is allocated: `struct shadow_target_dummy` has no field for it.  This
//! livepatch replaces the allocation with one that keeps the buffer in a
//! shadow variable of the dummy (a [`Shadow<Buffer, SV_BUFFER>`]), and the
//! release with one that frees the buffer with the dummy.  Dummies
//! allocated before the fix keep leaking: the buffer's pointer is lost.
//!
//! The livepatch carries the state `SV_BUFFER`, which owns the shadow
//! variables: `rust_livepatch_shadow_fix2` takes them over when it replaces
//! this livepatch, and when the last livepatch with the state is disabled,
//! the core frees the remaining buffers.
//!
//! Usage:
//!
//! ```text
//! insmod livepatch-shadow-target.ko
//! echo alloc > /proc/livepatch_shadow_target  # target: dummy 1 allocated
//! insmod rust_livepatch_shadow_fix1.ko        # fix1: tracking the buffers of new dummies
//! echo alloc > /proc/livepatch_shadow_target  # fix1: dummy 2 allocated, buffer tracked
//! cat /proc/livepatch_shadow_target
//! dummy 1
//! dummy 2 (buffer tracked)
//! echo free > /proc/livepatch_shadow_target   # fix1: dummy 1 freed (its buffer leaked)
//! echo free > /proc/livepatch_shadow_target   # fix1: dummy 2: buffer freed
//!                                             # fix1: dummy 2 freed
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_shadow_fix1/enabled
//!                                             # fix1: no longer tracking buffers
//! rmmod rust_livepatch_shadow_fix1 livepatch_shadow_target
//! ```
//!
//! The replacement functions take the target's raw pointers: that is the
//! only `unsafe` code, one documented block in each function that needs it.

use kernel::bindings;
use kernel::ffi::c_ulong;
use kernel::livepatch::{Shadow, State, StateCallbacks, StateContext, StateId};
use kernel::prelude::*;
use kernel::seq_file::SeqFile;

module! {
    type: ShadowFix1,
    name: "rust_livepatch_shadow_fix1",
    author: "The klp project",
    description: "Rust livepatch sample: fixes a leak with a shadow variable",
    license: "GPL",
}

/// The id of the shadow variables that keep the buffers, and of the state
/// that owns them; `rust_livepatch_shadow_fix2` uses the same id and type.
const SV_BUFFER: StateId = 1;

/// The size of a dummy's work buffer.
const BUF_SIZE: usize = 64;

/// `struct shadow_target_dummy` of the target module.
#[repr(C)]
struct Dummy {
    list: bindings::list_head,
    id: c_ulong,
}

/// The work buffer of a dummy: the data of its shadow variable.
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

/// The callbacks of the state: they only log; the core frees the buffers
/// that remain when the state is removed.
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
        replace: false,
        objects: [
            ("livepatch_shadow_target", [
                ("shadow_target_dummy_alloc", dummy_alloc),
                ("shadow_target_dummy_free", dummy_free),
                ("shadow_target_dummy_show", dummy_show),
            ]),
        ],
        states: [State::shadow(BUFFERS).callbacks::<TrackBuffers>()],
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
    // and hands over: a `kmalloc()` allocation (by this livepatch, as a
    // `KBox`, or by the original function, with `kzalloc()`) of the layout
    // of `Dummy`, which nothing else references any more.
    let mut d = unsafe { KBox::from_raw(d) };
    BUFFERS.free(&mut *d);
    pr_info!("dummy {} freed\n", d.id);
}

/// The new `shadow_target_dummy_show()`.
extern "C" fn dummy_show(m: *mut bindings::seq_file, d: *mut Dummy) {
    // SAFETY: the target calls this from a `show` function, with its
    // locked `seq_file` and, under its list's mutex, a dummy of the list:
    // both are valid, and the dummy is not written, during the call.
    let (m, d) = unsafe { (SeqFile::from_raw(m), &*d) };
    if BUFFERS.get(d).is_some() {
        kernel::seq_print!(m, "dummy {} (buffer tracked)\n", d.id);
    } else {
        kernel::seq_print!(m, "dummy {}\n", d.id);
    }
}

struct ShadowFix1;

impl kernel::Module for ShadowFix1 {
    fn init(module: &'static ThisModule) -> Result<Self> {
        PATCH.enable(module)?;
        Ok(ShadowFix1)
    }
}
