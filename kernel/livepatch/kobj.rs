// SPDX-License-Identifier: GPL-2.0-or-later

//! The C fields that the core sets up and tears down in the livepatch
//! structures: the kobjects (`/sys/kernel/livepatch`), the list links of
//! patches, objects and functions, and the work item and completion that
//! free a patch.
//!
//! Setting a structure up is `unsafe`: initialising a kobject, a list head
//! or a work item that is in use would corrupt it, and nothing in the
//! structure tells whether it was set up.  Once a structure is set up (see
//! the invariant of [`KlpPatch`]), adding its kobject to sysfs, scheduling
//! the freeing of a patch and dropping its objects are safe methods.  What
//! ends the life of a patch (the last kobject reference, the wait for its
//! release, the module reference) stays with the code that frees it, in
//! `crate::registry` and `crate::sysfs`, with raw pointers.

use crate::handles::{KlpFunc, KlpObject, KlpPatch};
use crate::list::{self, container_of};
use crate::sys::{self, KlpLock};
use crate::sysfs;
use kernel::bindings;
use kernel::c_str;
use kernel::error::Result;
use kernel::ffi::c_ulong;
use kernel::str::CStr;

impl KlpPatch {
    /// Sets up the links of the patch: its entry of the registered patches
    /// and its list of objects become empty lists, and its kobject is
    /// initialised (with the kobject type of patches).
    ///
    /// # Safety
    /// The patch must not be set up yet (those fields zero, as the module
    /// hands it over), and nobody else may see it.
    pub(crate) unsafe fn init_links(&self) {
        let p = self.as_raw();
        // SAFETY: per the function's contract, the list heads and the
        // kobject are the patch's own and unused.
        unsafe {
            list::init(&raw mut (*p).list);
            list::init(&raw mut (*p).obj_list);
            bindings::kobject_init(&raw mut (*p).kobj, sysfs::patch_ktype());
        }
    }

    /// The entry of the patch in the list of registered patches, which
    /// `crate::registry` links and unlinks under `klp_mutex`.
    pub(crate) fn list_node(&self) -> *mut bindings::list_head {
        // SAFETY: by the type invariant, the patch is valid; only the
        // field's address is taken.
        unsafe { &raw mut (*self.as_raw()).list }
    }

    /// Sets up the work item that finishes freeing the patch, which runs
    /// `f`, and the completion that the release of its kobject signals.
    ///
    /// # Safety
    /// As for [`KlpPatch::init_links`], for the work item and the
    /// completion; `f` must accept the `free_work` of the patch.
    pub(crate) unsafe fn init_free_work(
        &self,
        f: unsafe extern "C" fn(*mut bindings::work_struct),
    ) {
        let p = self.as_raw();
        // SAFETY: per the function's contract, the work item and the
        // completion are the patch's own and unused.
        unsafe {
            sys::glue::klp_glue_init_work(&raw mut (*p).free_work, f);
            sys::glue::klp_glue_init_completion(&raw mut (*p).finish);
        }
    }

    /// Adds the kobject of the patch to sysfs, as
    /// `/sys/kernel/livepatch/<patch>`.
    pub(crate) fn add_kobj(&self) -> Result {
        // SAFETY: the kobject is zero or initialised (type invariant), and
        // kobject_add() refuses one that is not initialised; the root is
        // null or the core's kobject, which lives forever; the format
        // matches the argument, the name of the patch's module or null.
        let ret = unsafe {
            bindings::kobject_add(
                &raw mut (*self.as_raw()).kobj,
                sysfs::root(),
                c_str!("%s").as_char_ptr(),
                self.name().0,
            )
        };
        kernel::error::to_result(ret)
    }

    /// Schedules the work item that finishes freeing the patch; nothing
    /// happens if it is pending already.
    pub(crate) fn schedule_free(&self) {
        // SAFETY: a patch that the core frees was set up, its work item
        // initialised (type invariant).
        unsafe { sys::glue::klp_glue_schedule_work(&raw mut (*self.as_raw()).free_work) };
    }

    /// Drops the functions for which `func_goes` holds from the lists of
    /// their objects, then the objects for which `obj_goes` holds from the
    /// list of the patch, and puts their kobjects: the memory of a nop or
    /// of a dynamic object goes with its last reference.  `obj_goes` sees
    /// each object once its functions are dropped.
    ///
    /// The handles that the predicates get do not outlive the calls; the
    /// lock is held mutably, so no other walk of the lists is in progress.
    pub(crate) fn put_objects(
        &self,
        _lock: &mut KlpLock,
        func_goes: impl Fn(&KlpFunc) -> bool,
        obj_goes: impl Fn(&KlpObject) -> bool,
    ) {
        // SAFETY: the list head is zero or initialised (type invariant),
        // and changes only under klp_mutex, held mutably (`_lock`): nothing
        // else walks it, and this walk allows taking off the entry it just
        // gave.
        let objs = unsafe { list::iter_or_empty(&raw mut (*self.as_raw()).obj_list) };
        for node in objs {
            let obj = container_of!(node, bindings::klp_object, node);
            // SAFETY: an object on the patch's list, valid until its last
            // reference goes below; nothing else walks its lists.
            unsafe { put_funcs(obj, &func_goes) };
            // SAFETY: as above; the handle does not outlive the call.
            if obj_goes(unsafe { KlpObject::from_raw(obj) }) {
                // SAFETY: the object is on the list, which nothing else
                // walks; once off it, the core does not use it any more,
                // and its memory may go with the reference.
                unsafe {
                    list::del_init(node);
                    bindings::kobject_put(&raw mut (*obj).kobj);
                }
            }
        }
    }
}

/// Drops the functions of the object at `obj` for which `func_goes` holds
/// (see [`KlpPatch::put_objects`]).
///
/// # Safety
/// `obj` must be an object on the list of a patch, valid during the call,
/// whose lists nothing else walks or changes.
unsafe fn put_funcs(obj: *mut bindings::klp_object, func_goes: &impl Fn(&KlpFunc) -> bool) {
    // SAFETY: per the function's contract; the list head is zero or
    // initialised, and this walk allows taking off the entry it just gave.
    let funcs = unsafe { list::iter_or_empty(&raw mut (*obj).func_list) };
    for node in funcs {
        let func = container_of!(node, bindings::klp_func, node);
        // SAFETY: a function on the object's list, valid until its last
        // reference goes below; the handle does not outlive the call.
        if func_goes(unsafe { KlpFunc::from_raw(func) }) {
            // SAFETY: the function is on the list, which nothing else
            // walks; once off it, the core does not use it any more, and
            // its memory may go with the reference.
            unsafe {
                list::del_init(node);
                bindings::kobject_put(&raw mut (*func).kobj);
            }
        }
    }
}

impl KlpObject {
    /// Sets up the links of the object: its list of functions becomes an
    /// empty list, its kobject is initialised (with the kobject type of
    /// objects), and it joins the list of objects of `patch`, at the end.
    ///
    /// # Safety
    /// The object must not be set up yet (those fields zero), and nobody
    /// else may see it; `patch` must be set up, and its list of objects
    /// changed by nobody else.
    pub(crate) unsafe fn init_links(&self, patch: &KlpPatch) {
        let o = self.as_raw();
        // SAFETY: per the function's contract; the object is on no list.
        unsafe {
            list::init(&raw mut (*o).func_list);
            bindings::kobject_init(&raw mut (*o).kobj, sysfs::object_ktype());
            list::add_tail(&raw mut (*o).node, &raw mut (*patch.as_raw()).obj_list);
        }
    }

    /// Adds the kobject of the object to sysfs, as `<patch>/<name>`.
    pub(crate) fn add_kobj(&self, patch: &KlpPatch, name: &CStr) -> Result {
        // SAFETY: both kobjects are zero or initialised (type invariants),
        // and kobject_add() refuses one that is not initialised; the parent
        // is valid while `patch` is; the format matches the argument.
        let ret = unsafe {
            bindings::kobject_add(
                &raw mut (*self.as_raw()).kobj,
                &raw mut (*patch.as_raw()).kobj,
                c_str!("%s").as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        kernel::error::to_result(ret)
    }
}

impl KlpFunc {
    /// Sets up the links of the function: its kobject is initialised (with
    /// the kobject type of functions), and it joins the list of functions
    /// of `obj`, at the end.
    ///
    /// # Safety
    /// The function must not be set up yet (those fields zero), and nobody
    /// else may see it; `obj` must be set up, and its list of functions
    /// changed by nobody else.
    pub(crate) unsafe fn init_links(&self, obj: &KlpObject) {
        let f = self.as_raw();
        // SAFETY: per the function's contract; the function is on no list.
        unsafe {
            bindings::kobject_init(&raw mut (*f).kobj, sysfs::func_ktype());
            list::add_tail(&raw mut (*f).node, &raw mut (*obj.as_raw()).func_list);
        }
    }

    /// Makes the node of the function on the stack of its address an empty
    /// list.
    ///
    /// # Safety
    /// The function must be on no stack (its patch is being set up), and
    /// nobody else may see the node.
    pub(crate) unsafe fn init_stack_node(&self) {
        // SAFETY: per the function's contract.
        unsafe { list::init(self.stack_node()) };
    }

    /// Adds the kobject of the function to sysfs, as
    /// `<patch>/<object>/<name>,<pos>`.
    pub(crate) fn add_kobj(&self, obj: &KlpObject, name: &CStr, pos: c_ulong) -> Result {
        // SAFETY: as in `KlpObject::add_kobj`; the format matches the
        // arguments.
        let ret = unsafe {
            bindings::kobject_add(
                &raw mut (*self.as_raw()).kobj,
                &raw mut (*obj.as_raw()).kobj,
                c_str!("%s,%lu").as_char_ptr(),
                name.as_char_ptr(),
                pos,
            )
        };
        kernel::error::to_result(ret)
    }
}
