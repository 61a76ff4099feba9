// SPDX-License-Identifier: GPL-2.0
// compile-fail: E0133
//! The raw constructors behind livepatch! are unsafe: an array without its
//! terminator, or a dangling pointer, would reach the core.

use kernel::livepatch::Func;

extern "C" fn replacement() {}

pub static FUNCS: [Func; 1] = [Func::new(
    kernel::c_str!("cmdline_proc_show"),
    0,
    replacement as *const (),
)];
