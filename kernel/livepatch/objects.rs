// SPDX-License-Identifier: GPL-2.0-or-later

//! Patches, objects and functions: checking what a livepatch module hands
//! to `klp_enable_patch()`, initialising the internal fields, resolving the
//! patched symbols, and the nop functions of atomic replace.
//!
//! The structures are those of `include/linux/livepatch.h`, owned by the
//! livepatch module (or, for nops and their objects, allocated here).  They
//! are linked through their embedded list heads as in the C core.  All the
//! functions here run with `klp_mutex` held, which the callers prove with a
//! [`KlpLock`].

use crate::handles::{KlpFunc, KlpObject, KlpPatch};
use crate::module::{self, Module};
use crate::sys::{self, KlpLock, Name};
use kernel::bindings;
use kernel::c_str;
use kernel::error::{code::*, Result};
use kernel::ffi::{c_char, c_ulong, c_void};
use kernel::prelude::*;

const KSYM_NAME_LEN: usize = bindings::KSYM_NAME_LEN as usize;
/// `MODULE_NAME_LEN` of `include/linux/module.h` (a macro bindgen cannot see).
const MODULE_NAME_LEN: usize = 64 - core::mem::size_of::<c_ulong>();

/// The object's name as shown in sysfs and messages.
pub(crate) fn obj_name(obj: &KlpObject) -> Name {
    Name(obj.name().unwrap_or(c_str!("vmlinux")).as_char_ptr())
}

/// Whether two names are the same string; a missing name matches nothing.
fn name_eq(a: Option<&CStr>, b: Option<&CStr>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.as_bytes() == b.as_bytes(),
        _ => false,
    }
}

/// Checks what the livepatch module handed over, before anything is
/// touched.  Each refusal is logged with the patch, object and function.
/// Returns the module of the patch.
pub(crate) fn check_patch(patch: &KlpPatch) -> Result<&Module> {
    let Some(module) = patch.module() else {
        pr_err!("patch has no module\n");
        return Err(EINVAL);
    };
    let name = patch.name();
    let Some(objs) = patch.static_objects() else {
        pr_err!("patch '{}': no objects\n", name);
        return Err(EINVAL);
    };
    for obj in objs.clone() {
        let Some(funcs) = obj.static_funcs() else {
            pr_err!(
                "patch '{}': object '{}' has no functions\n",
                name,
                obj_name(obj)
            );
            return Err(EINVAL);
        };
        if obj.name().is_some_and(|n| n.len() >= MODULE_NAME_LEN) {
            pr_err!("patch '{}': object name too long\n", name);
            return Err(EINVAL);
        }
        for other in objs.clone() {
            if core::ptr::eq(other, obj) {
                break;
            }
            if same_object(obj, other) {
                pr_err!(
                    "patch '{}': object '{}' is listed twice\n",
                    name,
                    obj_name(obj)
                );
                return Err(EEXIST);
            }
        }
        // An empty array is fine: the object may be there for its
        // callbacks only.
        for func in funcs.clone() {
            let Some(old_name) = func.old_name() else {
                pr_err!(
                    "patch '{}': object '{}': function without a name\n",
                    name,
                    obj_name(obj)
                );
                return Err(EINVAL);
            };
            if func.new_func().is_null() {
                pr_err!(
                    "patch '{}': object '{}': function '{}' has no replacement\n",
                    name,
                    obj_name(obj),
                    Name(old_name.as_char_ptr())
                );
                return Err(EINVAL);
            }
            if old_name.len() >= KSYM_NAME_LEN {
                pr_err!(
                    "patch '{}': object '{}': function name too long\n",
                    name,
                    obj_name(obj)
                );
                return Err(EINVAL);
            }
            for other in funcs.clone() {
                if core::ptr::eq(other, func) {
                    break;
                }
                if same_func(func, other) {
                    pr_err!(
                        "patch '{}': object '{}': function '{},{}' is listed twice\n",
                        name,
                        obj_name(obj),
                        Name(old_name.as_char_ptr()),
                        func.old_sympos().max(1)
                    );
                    return Err(EEXIST);
                }
            }
        }
    }
    Ok(module)
}

/// `old_sympos` 0 (unique) and 1 (first) name the same symbol.
fn sympos_eq(a: c_ulong, b: c_ulong) -> bool {
    a.max(1) == b.max(1)
}

/// Initialises the internal fields of a patch that [`check_patch`]
/// accepted; from here on, the patch is freed through its kobjects.
///
/// # Safety
/// [`check_patch`] must have accepted `patch`, and the patch must not be
/// set up already: nobody else may see its internal fields yet.
pub(crate) unsafe fn init_patch_early(lock: &mut KlpLock, patch: &KlpPatch) {
    // SAFETY: per the function's contract, the patch is not set up and
    // nobody else sees it.
    unsafe { patch.init_links() };
    patch.set_enabled(lock, false);
    patch.set_forced(lock, false);
    // SAFETY: as above; `free_work_fn` takes the `free_work` of a patch.
    unsafe { patch.init_free_work(crate::registry::free_work_fn) };
    for obj in patch.static_objects().into_iter().flatten() {
        // SAFETY: the objects and functions of the module's arrays are not
        // set up either (the patch is not), nobody else sees them, and each
        // is linked once, after its parent, which only this walk changes.
        unsafe { obj.init_links(patch) };
        for func in obj.static_funcs().into_iter().flatten() {
            // SAFETY: as above.
            unsafe { func.init_links(obj) };
        }
    }
}

/// Sets `obj.mod` when the object is a loaded module that the module
/// notifier already knows of.
fn find_object_module(lock: &KlpLock, obj: &KlpObject) {
    let Some(name) = obj.name() else {
        return;
    };
    if let Some(m) = Module::find_alive(lock, name) {
        obj.set_module(lock, Some(m));
    }
}

/// Finds the address of `name` in `objname` (vmlinux when `None`), the
/// `sympos`-th occurrence, or the only one when `sympos` is 0.
pub(crate) fn find_symbol(objname: Option<&CStr>, name: &CStr, sympos: c_ulong) -> Result<c_ulong> {
    let mut hits = Hits::new(sympos);
    match objname {
        None => module::each_vmlinux_symbol(name, |a| hits.hit(a)),
        Some(objname) => module::each_module_symbol(objname, |n, a| {
            n.as_bytes() == name.as_bytes() && hits.hit(a)
        }),
    }
    hits.resolve(objname, name)
}

/// The occurrences of one symbol name seen by a walk of a symbol table.
struct Hits {
    /// The occurrence wanted, 0 for the only one.
    sympos: c_ulong,
    /// The address of the last occurrence counted.
    addr: c_ulong,
    /// The occurrences counted: up to `sympos`, or up to two when the
    /// symbol must be unique.
    count: c_ulong,
}

impl Hits {
    fn new(sympos: c_ulong) -> Self {
        Hits {
            sympos,
            addr: 0,
            count: 0,
        }
    }

    /// Counts one occurrence at `addr`; `true` once the answer is known
    /// (the wanted position, or a second occurrence of a symbol that must
    /// be unique): later occurrences change nothing.
    fn hit(&mut self, addr: c_ulong) -> bool {
        if !self.done() {
            self.addr = addr;
            self.count += 1;
        }
        self.done()
    }

    fn done(&self) -> bool {
        if self.sympos == 0 {
            self.count > 1
        } else {
            self.count == self.sympos
        }
    }

    /// The address of the symbol `name` of `objname`, or the error that
    /// the walk found, logged.
    fn resolve(&self, objname: Option<&CStr>, name: &CStr) -> Result<c_ulong> {
        let obj = Name(objname.unwrap_or(c_str!("vmlinux")).as_char_ptr());
        let name = Name(name.as_char_ptr());
        let (addr, count, sympos) = (self.addr, self.count, self.sympos);
        if addr == 0 {
            pr_err!("symbol '{}' not found in symbol table\n", name);
        } else if count > 1 && sympos == 0 {
            pr_err!(
                "unresolvable ambiguity for symbol '{}' in object '{}'\n",
                name,
                obj
            );
        } else if sympos != count && sympos > 0 {
            pr_err!(
                "symbol position {} for symbol '{}' in object '{}' not found\n",
                sympos,
                name,
                obj
            );
        } else {
            return Ok(addr);
        }
        Err(EINVAL)
    }
}

/// A function of a module object whose symbol is being resolved.
struct Wanted<'a> {
    func: &'a KlpFunc,
    name: &'a CStr,
    hits: Hits,
}

/// Resolves the patched symbols of every function of `obj`, a loaded
/// module, in one walk of the module's symbols: a walk per function costs
/// the size of the module's symbol table for each one, which dominated
/// enabling a patch of many functions of one module.  The functions come
/// back in the object's order, each with what the walk found.
fn resolve_module_funcs<'a>(
    lock: &'a KlpLock,
    patch: &KlpPatch,
    obj: &'a KlpObject,
    objname: &CStr,
) -> Result<KVVec<Wanted<'a>>> {
    let n = obj.funcs(lock).count();
    let nomem = |e| {
        pr_err!(
            "no memory to resolve the symbols of object '{}' of patch '{}'\n",
            obj_name(obj),
            patch.name()
        );
        e
    };
    let mut wanted = KVVec::with_capacity(n, GFP_KERNEL).map_err(|_| nomem(ENOMEM))?;
    let mut by_name: KVVec<usize> =
        KVVec::with_capacity(n, GFP_KERNEL).map_err(|_| nomem(ENOMEM))?;
    for (i, func) in obj.funcs(lock).enumerate() {
        // `init_func` refused the functions without a name.
        let name = func.old_name().ok_or(EINVAL)?;
        let hits = Hits::new(func.old_sympos());
        wanted
            .push(Wanted { func, name, hits }, GFP_KERNEL)
            .map_err(|_| nomem(ENOMEM))?;
        by_name.push(i, GFP_KERNEL).map_err(|_| nomem(ENOMEM))?;
    }
    by_name.sort_unstable_by(|&a, &b| wanted[a].name.as_bytes().cmp(wanted[b].name.as_bytes()));
    module::each_module_symbol(objname, |sym, addr| {
        let sym = sym.as_bytes();
        let first = by_name.partition_point(|&i| wanted[i].name.as_bytes() < sym);
        // Every function of this name (they differ in `old_sympos`).
        for &i in by_name[first..].iter() {
            if wanted[i].name.as_bytes() != sym {
                break;
            }
            wanted[i].hits.hit(addr);
        }
        false
    });
    Ok(wanted)
}

/// The part of an object's set-up that needs its code in memory: klp
/// relocations of a module, addresses and sizes of the functions.
pub(crate) fn init_object_loaded(lock: &KlpLock, patch: &KlpPatch, obj: &KlpObject) -> Result {
    if obj.is_module() {
        crate::relocs::apply_object_relocs(patch, obj)?;
    }
    match obj.name() {
        Some(objname) => {
            for w in resolve_module_funcs(lock, patch, obj, objname)?.iter() {
                let addr = w.hits.resolve(Some(objname), w.name)?;
                init_func_addr(lock, w.func, w.name, addr)?;
            }
        }
        None => {
            for func in obj.funcs(lock) {
                // `init_func` refused the functions without a name.
                let old_name = func.old_name().ok_or(EINVAL)?;
                let addr = find_symbol(None, old_name, func.old_sympos())?;
                init_func_addr(lock, func, old_name, addr)?;
            }
        }
    }
    Ok(())
}

/// Sets the addresses and sizes of `func`, whose patched function
/// `old_name` was found at `addr`.
fn init_func_addr(lock: &KlpLock, func: &KlpFunc, old_name: &CStr, addr: c_ulong) -> Result {
    let addr = addr as *mut c_void;
    func.set_old_func(lock, addr);
    let Some(size) = module::symbol_size(addr) else {
        pr_err!(
            "kallsyms size lookup failed for '{}'\n",
            Name(old_name.as_char_ptr())
        );
        return Err(ENOENT);
    };
    func.set_old_size(lock, size);
    if func.nop() {
        func.set_new_func(lock, addr);
    }
    let Some(size) = module::symbol_size(func.new_func()) else {
        pr_err!(
            "kallsyms size lookup failed for '{}' replacement\n",
            Name(old_name.as_char_ptr())
        );
        return Err(ENOENT);
    };
    func.set_new_size(lock, size);
    Ok(())
}

fn init_func(lock: &KlpLock, obj: &KlpObject, func: &KlpFunc) -> Result {
    let Some(old_name) = func.old_name() else {
        return Err(EINVAL);
    };
    if func.new_func().is_null() && !func.nop() {
        return Err(EINVAL);
    }
    // SAFETY: the function is on no site's stack: its patch is being set
    // up, and nobody else sees the node.
    unsafe { func.init_stack_node() };
    func.set_patched(lock, false);
    func.set_transition(lock, false);
    // The directory is <function,sympos>; a unique symbol is the first one.
    let pos: c_ulong = if func.old_sympos() != 0 {
        func.old_sympos()
    } else {
        1
    };
    func.add_kobj(obj, old_name, pos)
}

fn init_object(lock: &KlpLock, patch: &KlpPatch, obj: &KlpObject) -> Result {
    obj.set_patched(lock, false);
    obj.set_module(lock, None);
    find_object_module(lock, obj);
    let name = obj.name().unwrap_or(c_str!("vmlinux"));
    obj.add_kobj(patch, name)?;
    for func in obj.funcs(lock) {
        init_func(lock, obj, func)?;
    }
    if obj.is_loaded() {
        init_object_loaded(lock, patch, obj).inspect_err(|_| {
            pr_err!(
                "patch '{}': cannot resolve object '{}'\n",
                patch.name(),
                obj_name(obj)
            )
        })?;
    }
    Ok(())
}

/// Second part of the set-up: sysfs, nops, objects; then the caller adds
/// the patch to the list of patches.
pub(crate) fn init_patch(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    patch.add_kobj()?;
    if patch.replace() {
        add_nops(lock, patch)?;
    }
    for obj in patch.objects(lock) {
        init_object(lock, patch, obj)?;
    }
    Ok(())
}

/// Whether `a` and `b` name the same object: vmlinux, or one module.
fn same_object(a: &KlpObject, b: &KlpObject) -> bool {
    match (a.name(), b.name()) {
        (None, None) => true,
        (a, b) => name_eq(a, b),
    }
}

/// Whether `a` and `b` patch the same symbol (name and position).
fn same_func(a: &KlpFunc, b: &KlpFunc) -> bool {
    name_eq(a.old_name(), b.old_name()) && sympos_eq(a.old_sympos(), b.old_sympos())
}

/// Finds the object of `patch` that patches the same thing as `old`.
fn find_object<'a>(
    lock: &'a KlpLock,
    patch: &'a KlpPatch,
    old: &KlpObject,
) -> Option<&'a KlpObject> {
    patch.objects(lock).find(|obj| same_object(old, obj))
}

/// A function of a patch as atomic replace compares them: the same symbol
/// in the same object.
#[derive(Clone, Copy)]
struct FuncRef<'a> {
    obj: &'a KlpObject,
    func: &'a KlpFunc,
}

impl PartialEq for FuncRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        // The function first: its name tells most functions apart.
        same_func(self.func, other.func) && same_object(self.obj, other.obj)
    }
}

/// The functions of `patch` with their objects.
fn func_refs<'a>(lock: &'a KlpLock, patch: &'a KlpPatch) -> impl Iterator<Item = FuncRef<'a>> {
    patch
        .objects(lock)
        .flat_map(move |obj| obj.funcs(lock).map(move |func| FuncRef { obj, func }))
}

/// A copy of `s` for a structure of the core (null for `None`), freed
/// with the structure.
fn kstrdup(s: Option<&CStr>) -> Result<*const c_char> {
    s.map_or(Ok(core::ptr::null()), sys::kstrdup)
}

/// Allocates a dynamic object named `name` (vmlinux when `None`) for the
/// nops of `patch`, which is being set up.
fn alloc_object_dynamic<'a>(patch: &'a KlpPatch, name: Option<&CStr>) -> Result<&'a KlpObject> {
    // Freed if the name cannot be copied, as it is not published yet.
    let mut obj = sys::kzalloc::<bindings::klp_object>()?;
    obj.name = kstrdup(name)?;
    obj.dynamic = true;
    // SAFETY: a zeroed object with a name is laid out as the C API wants;
    // it is freed only when `free_objects` takes it off the patch's list,
    // with the lock held mutably, which nothing does while `patch` is being
    // set up.
    let obj = unsafe { KlpObject::from_raw(KBox::into_raw(obj)) };
    // SAFETY: the new object is zeroed and nobody else sees it; `patch` is
    // set up (`init_patch_early`), and only its set-up changes its list.
    unsafe { obj.init_links(patch) };
    Ok(obj)
}

/// Allocates a nop of `obj` for `old`, a function of a registered patch.
fn alloc_func_nop(obj: &KlpObject, old: &KlpFunc) -> Result {
    // Freed if the name cannot be copied, as it is not published yet.
    let mut func = sys::kzalloc::<bindings::klp_func>()?;
    func.old_name = kstrdup(old.old_name())?;
    // The address of the replacement (the original function itself) is set
    // when the object is loaded, in `init_object_loaded`.
    func.old_sympos = old.old_sympos();
    func.nop = true;
    // SAFETY: as in `alloc_object_dynamic`, for a function of `obj`.
    let func = unsafe { KlpFunc::from_raw(KBox::into_raw(func)) };
    // SAFETY: as in `alloc_object_dynamic`, for the new function and `obj`,
    // which is set up (by `init_patch_early`, or when allocated).
    unsafe { func.init_links(obj) };
    Ok(())
}

/// Adds a nop function to `patch` for every function that a registered
/// patch patches and `patch` does not: atomic replace then reverts those
/// functions to the original code.
fn add_nops(lock: &mut KlpLock, patch: &KlpPatch) -> Result {
    // The lists of `patch` grow below, which only its set-up does: nobody
    // else walks them, and the walks here are done by then.  What was
    // borrowed from them stays valid: nothing is removed.
    let lock: &KlpLock = lock;
    // The functions as two flat arrays: cheap to walk again and again, and
    // no adapter nested in an adapter (whose monomorphised symbols would be
    // too long for kallsyms).
    let mut registered = KVVec::new();
    for p in crate::registry::registered(lock) {
        for f in func_refs(lock, p) {
            registered.push(f, GFP_KERNEL)?;
        }
    }
    // The nops added below are not in `new`, which the plan does not need
    // (they match registered functions that it has seen already).
    let mut new = KVVec::new();
    for f in func_refs(lock, patch) {
        new.push(f, GFP_KERNEL)?;
    }
    let mut res = Ok(());
    // The plan (shared with the host model) says which functions need one.
    crate::state_plan::for_each_nop(
        registered.iter().copied(),
        new.iter().copied(),
        |old: FuncRef<'_>| {
            if res.is_err() {
                return;
            }
            let obj = match find_object(lock, patch, old.obj) {
                Some(o) => Ok(o),
                None => alloc_object_dynamic(patch, old.obj.name()),
            };
            res = obj.and_then(|obj| alloc_func_nop(obj, old.func));
        },
    );
    res
}

/// Frees a nop function (kobject release).
///
/// # Safety
/// `func` must be a nop that [`alloc_func_nop`] allocated, whose last
/// kobject reference went; nothing may use it afterwards.
pub(crate) unsafe fn free_func_nop(func: *mut bindings::klp_func) {
    // SAFETY: per the function's contract, the nop and its name were
    // allocated by `alloc_func_nop`, and this is the last use.
    unsafe {
        bindings::kfree((*func).old_name.cast());
        bindings::kfree(func.cast());
    }
}

/// Frees a dynamic object (kobject release).
///
/// # Safety
/// As for [`free_func_nop`], for an object of [`alloc_object_dynamic`].
pub(crate) unsafe fn free_object_dynamic(obj: *mut bindings::klp_object) {
    // SAFETY: as in `free_func_nop`, for `alloc_object_dynamic`.
    unsafe {
        bindings::kfree((*obj).name.cast());
        bindings::kfree(obj.cast());
    }
}

/// Drops the objects (all, or only the nops and dynamic objects) of a
/// patch; the memory goes with the last kobject reference.
pub(crate) fn free_objects(lock: &mut KlpLock, patch: &KlpPatch, nops_only: bool) {
    patch.put_objects(
        lock,
        |func| !nops_only || func.nop(),
        |obj| !nops_only || obj.dynamic(),
    );
}

/// Forgets the addresses of an object whose module is going away.
pub(crate) fn free_object_loaded(lock: &KlpLock, obj: &KlpObject) {
    obj.set_module(lock, None);
    for func in obj.funcs(lock) {
        func.set_old_func(lock, core::ptr::null_mut());
        if func.nop() {
            func.set_new_func(lock, core::ptr::null_mut());
        }
    }
}
