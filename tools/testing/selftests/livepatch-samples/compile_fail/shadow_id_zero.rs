// SPDX-License-Identifier: GPL-2.0
// compile-fail: Shadow: the id must not be 0
//! A shadow variable handle with the id 0.

use kernel::livepatch::Shadow;

pub const NOTE: Shadow<u32, 0> = Shadow::new();
