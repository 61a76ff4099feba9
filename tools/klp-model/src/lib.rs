// SPDX-License-Identifier: GPL-2.0

//! Host build of the pure rules of the Rust livepatch core.
//!
//! The modules are the kernel's own source files, included by path: the
//! kernel object and this crate compile the same code.

#[path = "../../../kernel/livepatch/state_rules.rs"]
pub mod state_rules;

#[path = "../../../kernel/livepatch/reloc_names.rs"]
pub mod reloc_names;

#[cfg(test)]
mod reloc_tests;
#[cfg(test)]
mod tests;
