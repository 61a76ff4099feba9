// SPDX-License-Identifier: GPL-2.0
// compile-fail: livepatch!: two states of the livepatch have the same id
//! Two states with one id.

use kernel::livepatch::State;

extern "C" fn replacement() {}

kernel::livepatch! {
    static PATCH = {
        replace: false,
        objects: [(vmlinux, [("cmdline_proc_show", replacement)])],
        states: [State::new(3), State::new(3).version(2)],
    };
}
