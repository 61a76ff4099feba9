// SPDX-License-Identifier: GPL-2.0

//! Sequence files, as `show` functions (for example of `/proc` files) get
//! them.
//!
//! C header: [`include/linux/seq_file.h`](srctree/include/linux/seq_file.h).

use crate::{bindings, c_str, types::Opaque};
use core::fmt;

/// A `struct seq_file` that a `show` function writes to.
///
/// # Invariants
///
/// The wrapped `seq_file` is valid for the lifetime of the reference.
#[repr(transparent)]
pub struct SeqFile(Opaque<bindings::seq_file>);

impl SeqFile {
    /// Wraps the `seq_file` that the kernel passed to a `show` function.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `seq_file` for `'a`, and nothing else may
    /// write to it meanwhile (the kernel calls `show` functions with the
    /// file's lock held).
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::seq_file) -> &'a SeqFile {
        // SAFETY: `SeqFile` is a transparent wrapper; validity per the
        // function's contract.
        unsafe { &*ptr.cast() }
    }

    /// Appends formatted text (see [`seq_print!`](crate::seq_print!)).
    pub fn call_printf(&self, args: fmt::Arguments<'_>) {
        // SAFETY: the file is valid (type invariant); `%pA` formats the
        // `fmt::Arguments` before the call returns.
        unsafe {
            bindings::seq_printf(
                self.0.get(),
                c_str!("%pA").as_char_ptr(),
                &args as *const _ as *const crate::ffi::c_void,
            );
        }
    }
}

/// Writes formatted text to a [`SeqFile`], like `seq_printf()`.
#[macro_export]
macro_rules! seq_print {
    ($m:expr, $($arg:tt)+) => {
        $m.call_printf(format_args!($($arg)+))
    };
}
