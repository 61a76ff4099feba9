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
//! - [`registry`] keeps the list of patches, enables and disables them,
//!   handles modules coming and going, and frees patches;
//! - [`objects`] checks and initialises patches, objects and functions,
//!   looks up symbols, and adds the nop functions of atomic replace;
//! - [`ftrace`] redirects patched functions (the ftrace handler);
//! - [`transition`] implements the per-task consistency model;
//! - [`sysfs`] provides the files of `/sys/kernel/livepatch`;
//! - [`relocs`] writes klp relocations;
//! - [`callbacks`] runs the legacy per-object callbacks;
//! - [`state`] handles livepatch states, their callbacks and compatibility;
//! - [`shadow`] provides shadow variables;
//! - [`state_rules`] and [`reloc_names`] are pure code shared with the host
//!   tests;
//! - [`sys`], [`list`], [`handles`], [`kobj`], [`task`] and [`module`] are
//!   the thin layer over C: the glue, the C lists, safe handles of the
//!   livepatch structures and the set-up and tear-down of their kobjects
//!   and links, handles of tasks and the scheduler, of modules and
//!   kallsyms.

/// Prefix of the core's messages, as the C core's `pr_fmt`.
const __LOG_PREFIX: &[u8] = b"livepatch\0";

mod callbacks;
mod ftrace;
mod handles;
mod kobj;
mod list;
mod module;
mod objects;
mod registry;
pub mod reloc_names;
mod relocs;
mod shadow;
mod state;
pub mod state_plan;
pub mod state_rules;
mod sys;
mod sysfs;
mod task;
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
