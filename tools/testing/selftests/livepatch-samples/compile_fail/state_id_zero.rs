// SPDX-License-Identifier: GPL-2.0
// compile-fail: livepatch!: a state id must not be 0
//! A state with the id 0.

use kernel::livepatch::State;

extern "C" fn replacement() {}

kernel::livepatch! {
    static PATCH = {
        replace: false,
        objects: [(vmlinux, [("cmdline_proc_show", replacement)])],
        states: [State::new(0)],
    };
}
