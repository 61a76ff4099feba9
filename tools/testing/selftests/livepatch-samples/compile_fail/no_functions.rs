// SPDX-License-Identifier: GPL-2.0
// compile-fail: livepatch!: every object of a livepatch needs at least one function
//! An object without functions.

kernel::livepatch! {
    static PATCH = {
        replace: false,
        objects: [(vmlinux, [])],
    };
}
