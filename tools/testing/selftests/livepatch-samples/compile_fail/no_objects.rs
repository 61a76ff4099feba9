// SPDX-License-Identifier: GPL-2.0
// compile-fail: livepatch!: a livepatch needs at least one object
//! A livepatch without objects.

kernel::livepatch! {
    static PATCH = {
        replace: false,
        objects: [],
    };
}
