// SPDX-License-Identifier: GPL-2.0

//! Livepatch sample in Rust: a state whose callbacks turn a feature on and
//! off, kept across an atomic replace.
//!
//! The livepatch replaces `cmdline_proc_show()`: `/proc/cmdline` shows
//! whether the feature is on, and which livepatch introduced it.  The
//! feature belongs to the livepatch state 94: its `pre_patch` callback
//! creates the feature's data (a typed shadow variable that the state
//! owns), `post_patch` turns the feature on, `pre_unpatch` turns it off and
//! `post_unpatch` logs the removal, after which the core frees the data.
//!
//! `rust_livepatch_state_demo2` is the same livepatch, version 2, whose
//! state blocks disabling.  Both replace every livepatch before them.  When
//! one replaces the other, the state is taken over: no callback runs and
//! the feature stays on.
//!
//! Usage (the Rust livepatch core, `CONFIG_LIVEPATCH_RUST`):
//!
//! ```text
//! insmod rust_livepatch_state_demo.ko    # state 94: introduced by v1
//!                                        # state 94: feature on
//! cat /proc/cmdline
//! rust state demo v1: feature on, introduced by v1
//! insmod rust_livepatch_state_demo2.ko   # replaces v1: no callback runs
//! rmmod rust_livepatch_state_demo
//! cat /proc/cmdline
//! rust state demo v2: feature on, introduced by v1
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_state_demo2/enabled
//! -bash: echo: write error: Invalid argument   # blocked by state 94
//! insmod rust_livepatch_state_demo.ko    # replaces v2: disabling is allowed again
//! rmmod rust_livepatch_state_demo2
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_state_demo/enabled
//!                                        # state 94: feature off
//!                                        # state 94: removed by v1
//!                                        # state 94: feature data freed
//! rmmod rust_livepatch_state_demo
//! ```

use kernel::prelude::*;

#[path = "rust_livepatch_state_demo_common.rs"]
mod common;

module! {
    type: StateDemo,
    name: "rust_livepatch_state_demo",
    author: "The klp project",
    description: "Rust livepatch sample: a state with callbacks, version 1",
    license: "GPL",
}

kernel::livepatch! {
    static PATCH = {
        replace: true,
        objects: [
            (vmlinux, [("cmdline_proc_show", common::cmdline_proc_show::<1>)]),
        ],
        states: [common::state::<1>(false)],
    };
}

struct StateDemo;

impl kernel::Module for StateDemo {
    fn init(module: &'static ThisModule) -> Result<Self> {
        PATCH.enable(module)?;
        Ok(StateDemo)
    }
}
