// SPDX-License-Identifier: GPL-2.0-or-later

//! The registered patches: enabling, disabling, module coming and going,
//! and freeing.
//!
//! A patch is registered (on [`PATCHES`], oldest first) from a successful
//! `klp_enable_patch()` until it is disabled or replaced; its memory belongs
//! to its module, which the core pins with a reference until the patch is
//! gone from sysfs.
//!
//! A registered patch stays valid for as long as `klp_mutex` is held, even
//! once it is being freed: the memory of its module goes only after
//! `klp_module_going()`, which takes the mutex.  The walk that frees the
//! replaced patches relies on it: it takes each patch off the list as it
//! goes, with the lock borrowed mutably, and makes its handles itself
//! ([`free_replaced_patches_async`]).  The other walks use [`registered`],
//! whose handles borrow the lock.

use crate::callbacks;
use crate::ftrace;
use crate::handles::{KlpObject, KlpPatch};
use crate::list::{self, container_of, PATCHES};
use crate::module::Module;
use crate::objects;
use crate::state;
use crate::sys::{self, KlpLock};
use crate::transition;
use core::sync::atomic::{fence, Ordering};
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::c_int;
use kernel::prelude::*;

use crate::transition::{PATCHED, UNPATCHED};

/// Initialises the registry (its ftrace side: [`PATCHES`] is an empty list
/// from the start); called once at boot.
pub(crate) fn init() {
    ftrace::init();
}

/// The registered patches as handles, oldest first.
///
/// The iterator borrows the guard: nothing can take a patch off the list
/// (that needs a `&mut KlpLock`) while it lives.
pub(crate) fn registered(lock: &KlpLock) -> list::Patches<'_> {
    PATCHES.iter(lock)
}

/// `klp_get_prev_state()` and friends need the list without a guard: they
/// run inside callbacks that the core calls with klp_mutex held.
pub(crate) fn patches_assume_locked() -> impl Iterator<Item = *mut bindings::klp_patch> {
    // SAFETY: see above; callers are documented as running under the mutex.
    unsafe { PATCHES.iter_raw() }
}

/// Work item that finishes freeing a patch outside `klp_mutex`.
///
/// # Safety
/// Called by the workqueue for `klp_patch.free_work`.
pub(crate) unsafe extern "C" fn free_work_fn(work: *mut bindings::work_struct) {
    let patch = container_of!(work, bindings::klp_patch, free_work);
    // SAFETY: `free_patch_async` scheduled the work item of the patch once
    // it took the patch off the list and dropped its objects; nothing else
    // frees it, and nothing uses it once the work is done.
    unsafe { free_patch_finish(patch, true) };
}

/// The part of freeing that is allowed under `klp_mutex`: the patch leaves
/// the list and drops its objects.
fn free_patch_start(lock: &mut KlpLock, patch: &KlpPatch) {
    PATCHES.remove(lock, patch);
    objects::free_objects(lock, patch, false);
}

/// The part of freeing that must run without `klp_mutex` (the sysfs
/// `enabled` writer may hold a kobject reference and wait for the mutex):
/// the last access to the patch, then its module reference.
///
/// First comes one RCU-tasks grace period for the whole patch.  A task
/// that is exiting may already be off the task list, where no transition
/// sees it, and still run this patch's code (a function that `do_exit()`
/// calls after `exit_notify()`); RCU Tasks waits for exiting tasks until
/// the end of `do_exit()`, so the module's code stays until they are done.
/// The C core gets such a wait only when the last function of an ftrace
/// ops goes (a disabled patch), not when a patch is replaced.  A patch
/// whose enabling failed never ran (`ran` false): no wait.
///
/// # Safety
/// `patch` must be a set-up patch that [`free_patch_start`] took off the
/// list, with `klp_mutex` released since, that nothing else frees; its
/// memory may go once the module reference is put, so nothing may use it
/// after the call.
unsafe fn free_patch_finish(patch: *mut bindings::klp_patch, ran: bool) {
    if ran {
        sys::synchronize_rcu_tasks();
    }
    // SAFETY: per the function's contract, the patch is off the list and
    // nobody else frees it; its kobject and completion are initialised.
    unsafe {
        bindings::kobject_put(&raw mut (*patch).kobj);
        bindings::wait_for_completion(&raw mut (*patch).finish);
        if !(*patch).forced {
            bindings::module_put((*patch).mod_);
        }
    }
}

/// Frees a registered patch from a context that holds `klp_mutex` (the
/// rest runs in a work item).  The patch stays valid until the caller
/// releases the mutex, even if the work item runs at once (see the
/// module's documentation).
pub(crate) fn free_patch_async(lock: &mut KlpLock, patch: &KlpPatch) {
    free_patch_start(lock, patch);
    patch.schedule_free();
}

/// Frees every patch registered before `new`, which replaced them.
pub(crate) fn free_replaced_patches_async(lock: &mut KlpLock, new: &KlpPatch) {
    // SAFETY: the list changes only under klp_mutex, which we hold (`lock`)
    // throughout the walk; the walk allows taking off the patch it just
    // gave, which is all that `free_patch_async` does to the list.
    for p in unsafe { PATCHES.iter_raw() } {
        // SAFETY: a registered patch, valid while klp_mutex is held, even
        // once off the list (see the module's documentation); the handle
        // is not used after this iteration.
        let p = unsafe { KlpPatch::from_raw(p) };
        if p == new {
            break;
        }
        free_patch_async(lock, p);
    }
}

/// Unpatches the patches that `new` replaced (transition done).
pub(crate) fn unpatch_replaced_patches(lock: &KlpLock, new: &KlpPatch) {
    for p in registered(lock).take_while(|&p| p != new) {
        p.set_enabled(lock, false);
        ftrace::unpatch_objs(lock, p, false);
    }
}

/// Removes the nops of a replacing patch once no task needs them.
pub(crate) fn discard_nops(lock: &mut KlpLock, patch: &KlpPatch) {
    ftrace::unpatch_objs(lock, patch, true);
    objects::free_objects(lock, patch, true);
}

fn enable(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    if transition::patch().is_some() {
        return Err(EBUSY);
    }
    if patch.enabled() {
        return Err(EINVAL);
    }
    pr_notice!("enabling patch '{}'\n", patch.name());
    transition::prepare(lock, patch, PATCHED);
    // func->transition before the functions become visible on the stacks.
    fence(Ordering::Release);
    if let Err(e) = state::begin_enable(lock, patch) {
        pr_warn!("failed to enable patch '{}'\n", patch.name());
        transition::cancel(lock);
        return Err(e);
    }
    // The walk ends with the first error; the transition is cancelled
    // after it, with the lock no longer borrowed by the walk.
    let res = {
        let lock: &KlpLock = lock;
        patch
            .objects(lock)
            .filter(|obj| obj.is_loaded())
            .try_for_each(|obj| {
                callbacks::pre_patch(lock, obj)
                    .inspect_err(|_| {
                        pr_warn!(
                            "pre-patch callback failed for object '{}'\n",
                            objects::obj_name(obj)
                        )
                    })
                    .and_then(|()| {
                        ftrace::patch_obj(lock, obj).inspect_err(|_| {
                            pr_warn!("failed to patch object '{}'\n", objects::obj_name(obj))
                        })
                    })
            })
    };
    if let Err(e) = res {
        pr_warn!("failed to enable patch '{}'\n", patch.name());
        transition::cancel(lock);
        return Err(e);
    }
    transition::start(lock);
    patch.set_enabled(lock, true);
    transition::try_complete(lock);
    Ok(())
}

/// Starts disabling an enabled patch.
pub(crate) fn disable(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    if !patch.enabled() {
        return Err(EINVAL);
    }
    if transition::patch().is_some() {
        return Err(EBUSY);
    }
    transition::prepare(lock, patch, UNPATCHED);
    state::begin_disable(lock, patch);
    for obj in patch.objects(lock) {
        if obj.patched() {
            callbacks::pre_unpatch(lock, obj);
        }
    }
    // func->transition before TIF_PATCH_PENDING: a task switched right away
    // by klp_update_patch_state() must see the function in transition.
    fence(Ordering::Release);
    transition::start(lock);
    patch.set_enabled(lock, false);
    transition::try_complete(lock);
    Ok(())
}

/// Registers and enables a livepatch; the livepatch module calls it from
/// its init function.
///
/// # Safety
/// `patch` must be null or point to a `struct klp_patch` of the calling
/// module, which stays valid until the module is unloaded.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_enable_patch(patch: *mut bindings::klp_patch) -> c_int {
    if patch.is_null() {
        pr_err!("klp_enable_patch: no patch\n");
        return EINVAL.to_errno();
    }
    // SAFETY: per the function's contract; the module cannot be unloaded
    // while it runs its init function, which called us.  The handle is
    // used to check the patch and set it up before anything else.
    let patch = unsafe { KlpPatch::from_raw(patch) };
    let module = match objects::check_patch(patch) {
        Ok(module) => module,
        Err(e) => return e.to_errno(),
    };
    if !module.is_livepatch() {
        pr_err!(
            "module {} is not marked as a livepatch module\n",
            patch.name()
        );
        return EINVAL.to_errno();
    }
    if crate::sysfs::root().is_null() {
        return ENODEV.to_errno();
    }
    let mut lock = KlpLock::lock();
    // A second call for a registered patch must not set it up again.
    if registered(&lock).any(|p| p == patch) {
        pr_err!("patch '{}' is already registered\n", patch.name());
        return EINVAL.to_errno();
    }
    if let Err(e) = state::check_compatible(&mut lock, patch) {
        pr_err!(
            "Livepatch patch ({}) is not compatible with the already installed livepatches.\n",
            patch.name()
        );
        return e.to_errno();
    }
    if !module.try_get() {
        return ENODEV.to_errno();
    }
    // SAFETY: `check_patch` accepted the patch, which is not registered
    // (checked under the lock, still held).
    unsafe { objects::init_patch_early(&mut lock, patch) };
    let res = objects::init_patch(&mut lock, patch).and_then(|()| {
        // SAFETY: the patch is set up, and not registered (checked under
        // the lock, still held); its module, which holds it, stays until
        // the module reference taken above is put, after the patch left
        // the list (`free_patch_finish`).
        unsafe { PATCHES.push_back(&mut lock, patch) };
        enable(&mut lock, patch)
    });
    match res {
        Ok(()) => 0,
        Err(e) => {
            free_patch_start(&mut lock, patch);
            drop(lock);
            // SAFETY: set up and taken off the list above, with the lock
            // released; the patch is not used afterwards.  No task switched
            // to it: its transition never started.
            unsafe { free_patch_finish(patch.as_raw(), false) };
            e.to_errno()
        }
    }
}

/// Whether `obj` is the object of the module named `modname`.
fn obj_is_for(obj: &KlpObject, modname: &CStr) -> bool {
    obj.name()
        .is_some_and(|name| name.as_bytes() == modname.as_bytes())
}

/// Reverts the objects of the module named `modname` in the patches before
/// `limit` (all when `None`).
fn cleanup_module_patches(lock: &KlpLock, modname: &CStr, limit: Option<&KlpPatch>) {
    let tp = transition::patch_locked(lock);
    for patch in registered(lock).take_while(|&p| Some(p) != limit) {
        let Some(obj) = patch.objects(lock).find(|o| obj_is_for(o, modname)) else {
            continue;
        };
        if Some(patch) != tp {
            callbacks::pre_unpatch(lock, obj);
        }
        pr_notice!(
            "reverting patch '{}' on unloading module '{}'\n",
            patch.name(),
            objects::obj_name(obj)
        );
        ftrace::unpatch_obj(lock, obj);
        callbacks::post_unpatch(lock, obj);
        crate::relocs::clear_object_relocs(patch, obj);
        objects::free_object_loaded(lock, obj);
    }
}

/// The module loader tells the core that `m` is coming: patch it with every
/// registered patch that has an object for it.
///
/// # Safety
/// Called by the module loader with a module in `MODULE_STATE_COMING`.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_module_coming(m: *mut bindings::module) -> c_int {
    // SAFETY: per the function's contract, the module stays until the
    // notifier sees it going, which cannot happen during this call.
    let m = unsafe { Module::from_raw(m) };
    let name = m.name();
    if name.as_bytes() == b"vmlinux" {
        pr_err!("vmlinux.ko: invalid module name\n");
        return EINVAL.to_errno();
    }
    let lock = KlpLock::lock();
    // Every module must know that the core saw it coming.
    m.set_alive(&lock, true);
    let tp = transition::patch_locked(&lock);
    for patch in registered(&lock) {
        let Some(obj) = patch.objects(&lock).find(|o| obj_is_for(o, name)) else {
            continue;
        };
        obj.set_module(&lock, Some(m));
        let res = (|| -> Result {
            objects::init_object_loaded(&lock, patch, obj).inspect_err(|e| {
                pr_warn!(
                    "failed to initialize patch '{}' for module '{}' ({})\n",
                    patch.name(),
                    name.to_str().unwrap_or("?"),
                    e.to_errno()
                )
            })?;
            pr_notice!(
                "applying patch '{}' to loading module '{}'\n",
                patch.name(),
                name.to_str().unwrap_or("?")
            );
            callbacks::pre_patch(&lock, obj).inspect_err(|_| {
                pr_warn!(
                    "pre-patch callback failed for object '{}'\n",
                    objects::obj_name(obj)
                )
            })?;
            if let Err(e) = ftrace::patch_obj(&lock, obj) {
                pr_warn!(
                    "failed to apply patch '{}' to module '{}' ({})\n",
                    patch.name(),
                    name.to_str().unwrap_or("?"),
                    e.to_errno()
                );
                callbacks::post_unpatch(&lock, obj);
                return Err(e);
            }
            if Some(patch) != tp {
                callbacks::post_patch(&lock, obj);
            }
            Ok(())
        })();
        if let Err(e) = res {
            pr_warn!(
                "patch '{}' failed for module '{}', refusing to load module '{}'\n",
                patch.name(),
                name.to_str().unwrap_or("?"),
                name.to_str().unwrap_or("?")
            );
            m.set_alive(&lock, false);
            obj.set_module(&lock, None);
            cleanup_module_patches(&lock, name, Some(patch));
            return e.to_errno();
        }
    }
    0
}

/// The module loader tells the core that `m` goes away: revert what the
/// patches did to it.
///
/// # Safety
/// Called by the module loader with a module in `MODULE_STATE_GOING` (or
/// `COMING`, when its load failed).
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_module_going(m: *mut bindings::module) {
    // SAFETY: per the function's contract, the module stays until this
    // call returns.
    let m = unsafe { Module::from_raw(m) };
    let lock = KlpLock::lock();
    m.set_alive(&lock, false);
    cleanup_module_patches(&lock, m.name(), None);
}

/// Handles a write of `enabled` in sysfs.
pub(crate) fn set_enabled(patch: &KlpPatch, enabled: bool) -> Result {
    let mut lock = KlpLock::lock();
    if patch.enabled() == enabled {
        return Err(EINVAL);
    }
    if transition::patch_locked(&lock) == Some(patch) {
        // A transition can be reversed in both directions.
        transition::reverse(&mut lock);
        Ok(())
    } else if !enabled {
        state::check_disable(&mut lock, patch)?;
        disable(&mut lock, patch)
    } else {
        // A disabled patch cannot be enabled again.
        Err(EINVAL)
    }
}

/// Handles a write of `force` in sysfs.
pub(crate) fn force(patch: &KlpPatch) -> Result {
    let mut lock = KlpLock::lock();
    if transition::patch_locked(&lock) != Some(patch) {
        return Err(EINVAL);
    }
    transition::force(&mut lock);
    Ok(())
}
