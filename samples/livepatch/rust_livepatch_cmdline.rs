// SPDX-License-Identifier: GPL-2.0

//! Livepatch sample in Rust: replaces `cmdline_proc_show()`, so that
//! `/proc/cmdline` shows a message instead of the kernel command line.
//!
//! Usage:
//!
//! ```text
//! insmod rust_livepatch_cmdline.ko
//! cat /proc/cmdline
//! this has been live patched by a Rust livepatch
//! ```
//!
//! To undo it:
//!
//! ```text
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_cmdline/enabled
//! rmmod rust_livepatch_cmdline
//! cat /proc/cmdline
//! <your cmdline>
//! ```

use kernel::bindings;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::seq_file::SeqFile;

module! {
    type: CmdlineLivepatch,
    name: "rust_livepatch_cmdline",
    author: "The klp project",
    description: "Rust livepatch sample: replaces /proc/cmdline",
    license: "GPL",
}

kernel::livepatch! {
    static PATCH = {
        replace: false,
        objects: [
            (vmlinux, [("cmdline_proc_show", livepatch_cmdline_proc_show)]),
        ],
    };
}

/// The new `cmdline_proc_show()`: same C signature as the original.
extern "C" fn livepatch_cmdline_proc_show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the proc file's `show` is called with a valid, locked
    // `seq_file`, which outlives this call.
    let m = unsafe { SeqFile::from_raw(m) };
    kernel::seq_print!(m, "this has been live patched by a Rust livepatch\n");
    0
}

struct CmdlineLivepatch;

impl kernel::Module for CmdlineLivepatch {
    fn init(module: &'static ThisModule) -> Result<Self> {
        PATCH.enable(module)?;
        Ok(CmdlineLivepatch)
    }
}
