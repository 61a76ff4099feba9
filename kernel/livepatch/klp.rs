// SPDX-License-Identifier: GPL-2.0-or-later

//! The livepatch core, in Rust.
//!
//! This crate replaces `kernel/livepatch/*.c` when `CONFIG_LIVEPATCH_RUST`
//! is set.  It provides the same C entry points (`klp_enable_patch()`, the
//! module notifier hooks, the scheduler hooks, the shadow variable API, the
//! state API) and the same sysfs interface as the C core of Linux 6.12, so
//! that existing livepatch modules and tools keep working.  See
//! `Documentation/livepatch/rust-core.rst` for the design.
//!
//! The modules, one per concern:
//!
//! - [`registry`]: the list of patches, enabling and disabling, module
//!   coming and going, freeing;
//! - [`objects`]: checking and initialising patches, objects and functions,
//!   symbol lookup, the nop functions of atomic replace;
//! - [`ftrace`]: redirection of patched functions and the ftrace handler;
//! - [`transition`]: the per-task consistency model;
//! - [`sysfs`]: `/sys/kernel/livepatch`;
//! - [`relocs`]: klp relocations;
//! - [`callbacks`]: the legacy per-object callbacks;
//! - [`state`]: livepatch states, their callbacks and compatibility;
//! - [`shadow`]: shadow variables;
//! - [`state_rules`], [`reloc_names`]: pure code shared with the host tests;
//! - [`sys`], [`list`]: the thin layer over C.

/// Prefix of the core's messages, as the C core's `pr_fmt`.
const __LOG_PREFIX: &[u8] = b"livepatch\0";

mod callbacks;
mod ftrace;
mod list;
mod objects;
mod registry;
pub mod reloc_names;
mod relocs;
mod shadow;
mod state;
pub mod state_rules;
mod sys;
mod sysfs;
mod transition;

use kernel::prelude::*;

/// Initialises the core; called once at boot by the glue's initcall.
#[no_mangle]
pub(crate) extern "C" fn klp_rust_init() -> kernel::ffi::c_int {
    registry::init();
    match sysfs::init() {
        Ok(()) => {
            pr_info!("Rust core (Linux 6.12 interfaces, livepatch states)\n");
            0
        }
        Err(e) => e.to_errno(),
    }
}
