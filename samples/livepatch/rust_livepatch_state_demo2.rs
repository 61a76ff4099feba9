// SPDX-License-Identifier: GPL-2.0

//! Livepatch sample in Rust: version 2 of `rust_livepatch_state_demo`,
//! whose state blocks disabling.
//!
//! It carries the same state 94, declared with `block_disable`: once it is
//! enabled, writing 0 to its `enabled` file fails, and a livepatch without
//! the state cannot replace it; one with the state (version 1) can, and
//! lifts the block.  When it introduces the state itself, its own
//! callbacks run.
//!
//! Usage: see `rust_livepatch_state_demo.rs`.  On its own:
//!
//! ```text
//! insmod rust_livepatch_state_demo2.ko   # state 94: introduced by v2
//!                                        # state 94: feature on
//! cat /proc/cmdline
//! rust state demo v2: feature on, introduced by v2
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_state_demo2/enabled
//! -bash: echo: write error: Invalid argument   # blocked by state 94
//! ```

use kernel::prelude::*;

#[path = "rust_livepatch_state_demo_common.rs"]
mod common;

module! {
    type: StateDemo2,
    name: "rust_livepatch_state_demo2",
    author: "The klp project",
    description: "Rust livepatch sample: a state with callbacks, version 2, blocking disable",
    license: "GPL",
}

kernel::livepatch! {
    static PATCH = {
        replace: true,
        objects: [
            (vmlinux, [("cmdline_proc_show", common::cmdline_proc_show::<2>)]),
        ],
        states: [common::state::<2>(true)],
    };
}

struct StateDemo2;

impl kernel::Module for StateDemo2 {
    fn init(module: &'static ThisModule) -> Result<Self> {
        PATCH.enable(module)?;
        Ok(StateDemo2)
    }
}
