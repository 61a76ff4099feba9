// SPDX-License-Identifier: GPL-2.0

//! Host build of the pure rules of the Rust livepatch core.
//!
//! The modules are the kernel's own source files, included by path: the
//! kernel object and this crate compile the same code.  [`model`] is a
//! model of the livepatch world that drives them and checks the invariants
//! of the state model and of the consistency model.

#[path = "../../../kernel/livepatch/state_rules.rs"]
pub mod state_rules;

#[path = "../../../kernel/livepatch/state_plan.rs"]
pub mod state_plan;

#[path = "../../../kernel/livepatch/reloc_names.rs"]
pub mod reloc_names;

pub mod model;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod reloc_tests;
#[cfg(test)]
mod tests;
