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

use crate::list::{self, container_of};
use crate::sys::{self, KlpLock, Name};
use crate::sysfs;
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::{c_char, c_int, c_ulong, c_void};
use kernel::prelude::*;

/// A patch, object or function of the C API.
pub(crate) type Patch = *mut bindings::klp_patch;
/// See [`Patch`].
pub(crate) type Object = *mut bindings::klp_object;
/// See [`Patch`].
pub(crate) type Func = *mut bindings::klp_func;

const KSYM_NAME_LEN: usize = bindings::KSYM_NAME_LEN as usize;
/// `MODULE_NAME_LEN` of `include/linux/module.h` (a macro bindgen cannot see).
const MODULE_NAME_LEN: usize = 64 - core::mem::size_of::<c_ulong>();

/// The objects of a patch, as linked by [`init_patch_early`] (including the
/// dynamic ones of atomic replace).
///
/// # Safety
/// `patch` must be a patch initialised by [`init_patch_early`]; the caller
/// holds `klp_mutex` and may remove only the object last returned.
pub(crate) unsafe fn objects(patch: Patch) -> impl Iterator<Item = Object> + Clone {
    // SAFETY: per the function's contract.
    unsafe { list::iter(&raw mut (*patch).obj_list) }
        .map(|l| container_of!(l, bindings::klp_object, node))
}

/// The functions of an object, including nops.
///
/// # Safety
/// As for [`objects`].
pub(crate) unsafe fn funcs(obj: Object) -> impl Iterator<Item = Func> + Clone {
    // SAFETY: per the function's contract.
    unsafe { list::iter(&raw mut (*obj).func_list) }
        .map(|l| container_of!(l, bindings::klp_func, node))
}

/// The objects of the module's static array, up to its terminator.
///
/// # Safety
/// `patch.objs` must point to an array terminated by an object with neither
/// name nor functions.
unsafe fn static_objects(patch: Patch) -> impl Iterator<Item = Object> {
    // SAFETY: per the function's contract.
    let mut cur = unsafe { (*patch).objs };
    core::iter::from_fn(move || {
        // SAFETY: `cur` stays within the array: we stop at the terminator.
        unsafe {
            if (*cur).funcs.is_null() && (*cur).name.is_null() {
                return None;
            }
            let obj = cur;
            cur = cur.add(1);
            Some(obj)
        }
    })
}

/// The functions of an object's static array.
///
/// # Safety
/// `obj.funcs` must point to an array terminated by an all-zero function.
unsafe fn static_funcs(obj: Object) -> impl Iterator<Item = Func> {
    // SAFETY: per the function's contract.
    let mut cur = unsafe { (*obj).funcs };
    core::iter::from_fn(move || {
        // SAFETY: as in `static_objects`.
        unsafe {
            if (*cur).old_name.is_null() && (*cur).new_func.is_null() && (*cur).old_sympos == 0 {
                return None;
            }
            let func = cur;
            cur = cur.add(1);
            Some(func)
        }
    })
}

/// Whether the object is a module (vmlinux has no name).
pub(crate) fn is_module(obj: Object) -> bool {
    // SAFETY: objects handed to the core stay valid while it uses them.
    !unsafe { (*obj).name }.is_null()
}

/// Whether the object's code is in memory: vmlinux, or a loaded module.
pub(crate) fn is_loaded(obj: Object) -> bool {
    // SAFETY: as in `is_module`.
    !is_module(obj) || !unsafe { (*obj).mod_ }.is_null()
}

/// The object's name as shown in sysfs and messages.
pub(crate) fn obj_name(obj: Object) -> Name {
    if is_module(obj) {
        // SAFETY: as in `is_module`.
        Name(unsafe { (*obj).name })
    } else {
        Name(kernel::c_str!("vmlinux").as_char_ptr())
    }
}

/// The name of the patch: its module's name.
pub(crate) fn patch_name(patch: Patch) -> Name {
    // SAFETY: a patch's module is alive while the patch is registered.
    Name(unsafe { (*(*patch).mod_).name.as_ptr() })
}

fn c_strlen(p: *const c_char, max: usize) -> usize {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated; we never read past the NUL.
    while n < max && unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    n
}

fn c_streq(a: *const c_char, b: *const c_char) -> bool {
    match (sys::cstr(a), sys::cstr(b)) {
        (Some(a), Some(b)) => a.as_bytes() == b.as_bytes(),
        _ => false,
    }
}

/// Checks what the livepatch module handed over, before anything is
/// touched.  Each refusal is logged with the patch, object and function.
///
/// # Safety
/// `patch` must point to a `struct klp_patch` of a live module.
pub(crate) unsafe fn check_patch(patch: Patch) -> Result {
    // SAFETY: per the function's contract.
    let p = unsafe { &*patch };
    if p.mod_.is_null() {
        pr_err!("patch has no module\n");
        return Err(EINVAL);
    }
    let name = patch_name(patch);
    if p.objs.is_null() {
        pr_err!("patch '{}': no objects\n", name);
        return Err(EINVAL);
    }
    // SAFETY: `objs` is the module's terminated array.
    for obj in unsafe { static_objects(patch) } {
        // SAFETY: `obj` is an element of that array.
        let o = unsafe { &*obj };
        if o.funcs.is_null() {
            pr_err!(
                "patch '{}': object '{}' has no functions\n",
                name,
                obj_name(obj)
            );
            return Err(EINVAL);
        }
        if is_module(obj) && c_strlen(o.name, MODULE_NAME_LEN) >= MODULE_NAME_LEN {
            pr_err!("patch '{}': object name too long\n", name);
            return Err(EINVAL);
        }
        // SAFETY: `objs` is the module's terminated array.
        for other in unsafe { static_objects(patch) } {
            if other == obj {
                break;
            }
            let same = if is_module(obj) {
                // SAFETY: `other` is an element of the same array.
                is_module(other) && c_streq(o.name, unsafe { (*other).name })
            } else {
                !is_module(other)
            };
            if same {
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
        // SAFETY: `funcs` is the module's terminated array.
        for func in unsafe { static_funcs(obj) } {
            // SAFETY: `func` is an element of that array.
            let f = unsafe { &*func };
            if f.old_name.is_null() {
                pr_err!(
                    "patch '{}': object '{}': function without a name\n",
                    name,
                    obj_name(obj)
                );
                return Err(EINVAL);
            }
            if f.new_func.is_null() {
                pr_err!(
                    "patch '{}': object '{}': function '{}' has no replacement\n",
                    name,
                    obj_name(obj),
                    Name(f.old_name)
                );
                return Err(EINVAL);
            }
            if c_strlen(f.old_name, KSYM_NAME_LEN) >= KSYM_NAME_LEN {
                pr_err!(
                    "patch '{}': object '{}': function name too long\n",
                    name,
                    obj_name(obj)
                );
                return Err(EINVAL);
            }
            // SAFETY: `funcs` is the module's terminated array.
            for other in unsafe { static_funcs(obj) } {
                if other == func {
                    break;
                }
                // SAFETY: as above.
                let g = unsafe { &*other };
                if c_streq(f.old_name, g.old_name) && sympos_eq(f.old_sympos, g.old_sympos) {
                    pr_err!(
                        "patch '{}': object '{}': function '{},{}' is listed twice\n",
                        name,
                        obj_name(obj),
                        Name(f.old_name),
                        f.old_sympos.max(1)
                    );
                    return Err(EEXIST);
                }
            }
        }
    }
    Ok(())
}

/// `old_sympos` 0 (unique) and 1 (first) name the same symbol.
fn sympos_eq(a: c_ulong, b: c_ulong) -> bool {
    a.max(1) == b.max(1)
}

fn init_func_early(obj: Object, func: Func) {
    // SAFETY: `func` and `obj` are valid and not yet visible to anyone else.
    unsafe {
        bindings::kobject_init(&raw mut (*func).kobj, sysfs::func_ktype());
        list::add_tail(&raw mut (*func).node, &raw mut (*obj).func_list);
    }
}

fn init_object_early(patch: Patch, obj: Object) {
    // SAFETY: as in `init_func_early`.
    unsafe {
        list::init(&raw mut (*obj).func_list);
        bindings::kobject_init(&raw mut (*obj).kobj, sysfs::object_ktype());
        list::add_tail(&raw mut (*obj).node, &raw mut (*patch).obj_list);
    }
}

/// Initialises the internal fields of a patch that [`check_patch`]
/// accepted; from here on, the patch is freed through its kobjects.
///
/// # Safety
/// As for [`check_patch`], which must have succeeded.
pub(crate) unsafe fn init_patch_early(patch: Patch) {
    // SAFETY: per the function's contract.
    unsafe {
        list::init(&raw mut (*patch).list);
        list::init(&raw mut (*patch).obj_list);
        bindings::kobject_init(&raw mut (*patch).kobj, sysfs::patch_ktype());
        (*patch).enabled = false;
        (*patch).forced = false;
        sys::glue::klp_glue_init_work(&raw mut (*patch).free_work, crate::registry::free_work_fn);
        sys::glue::klp_glue_init_completion(&raw mut (*patch).finish);
        for obj in static_objects(patch) {
            init_object_early(patch, obj);
            for func in static_funcs(obj) {
                init_func_early(obj, func);
            }
        }
    }
}

/// Sets `obj.mod` when the object is a loaded module that the module
/// notifier already knows of.
fn find_object_module(obj: Object) {
    if !is_module(obj) {
        return;
    }
    // SAFETY: find_module() wants preemption disabled (RCU-sched); the
    // module cannot go away before klp_module_going(), which takes
    // klp_mutex, which we hold.
    unsafe {
        sys::glue::klp_glue_preempt_disable();
        let m = bindings::find_module((*obj).name);
        if !m.is_null() && (*m).klp_alive {
            (*obj).mod_ = m;
        }
        sys::glue::klp_glue_preempt_enable();
    }
}

struct FindArg {
    name: *const c_char,
    addr: c_ulong,
    count: c_ulong,
    pos: c_ulong,
}

/// kallsyms callback of [`find_symbol`] for vmlinux.
///
/// # Safety
/// `data` must be the [`FindArg`] of the walk.
unsafe extern "C" fn match_cb(data: *mut c_void, addr: c_ulong) -> c_int {
    // SAFETY: `data` is the `FindArg` of `find_symbol`.
    let a = unsafe { &mut *(data as *mut FindArg) };
    a.addr = addr;
    a.count += 1;
    // Stop at the wanted position, or at the second hit of a symbol that
    // must be unique.
    ((a.pos != 0 && a.count == a.pos) || (a.pos == 0 && a.count > 1)) as c_int
}

/// kallsyms callback of [`find_symbol`] for a module.
///
/// # Safety
/// As for [`match_cb`]; `name` is a NUL-terminated symbol name.
unsafe extern "C" fn find_cb(data: *mut c_void, name: *const c_char, addr: c_ulong) -> c_int {
    // SAFETY: `data` is the `FindArg` of `find_symbol`.
    let wanted = unsafe { (*(data as *mut FindArg)).name };
    if !c_streq(wanted, name) {
        return 0;
    }
    // SAFETY: as above.
    unsafe { match_cb(data, addr) }
}

/// Finds the address of `name` in `objname` (vmlinux when `None`), the
/// `sympos`-th occurrence, or the only one when `sympos` is 0.
pub(crate) fn find_symbol(
    objname: *const c_char,
    name: *const c_char,
    sympos: c_ulong,
) -> Result<c_ulong> {
    let mut a = FindArg {
        name,
        addr: 0,
        count: 0,
        pos: sympos,
    };
    let data = &raw mut a as *mut c_void;
    // SAFETY: the callbacks only use `data` as the `FindArg` above, which
    // outlives the walk; names are NUL-terminated.
    unsafe {
        if objname.is_null() {
            bindings::kallsyms_on_each_match_symbol(Some(match_cb), name, data);
        } else {
            bindings::module_kallsyms_on_each_symbol(objname, Some(find_cb), data);
        }
    }
    let obj = if objname.is_null() {
        Name(kernel::c_str!("vmlinux").as_char_ptr())
    } else {
        Name(objname)
    };
    if a.addr == 0 {
        pr_err!("symbol '{}' not found in symbol table\n", Name(name));
    } else if a.count > 1 && sympos == 0 {
        pr_err!(
            "unresolvable ambiguity for symbol '{}' in object '{}'\n",
            Name(name),
            obj
        );
    } else if sympos != a.count && sympos > 0 {
        pr_err!(
            "symbol position {} for symbol '{}' in object '{}' not found\n",
            sympos,
            Name(name),
            obj
        );
    } else {
        return Ok(a.addr);
    }
    Err(EINVAL)
}

fn symbol_size(addr: *mut c_void) -> Option<c_ulong> {
    let mut size: c_ulong = 0;
    // SAFETY: kallsyms only reads its tables; `size` outlives the call.
    let found = unsafe {
        bindings::kallsyms_lookup_size_offset(addr as c_ulong, &mut size, core::ptr::null_mut())
    };
    (found != 0).then_some(size)
}

/// The part of an object's set-up that needs its code in memory: klp
/// relocations of a module, addresses and sizes of the functions.
pub(crate) fn init_object_loaded(patch: Patch, obj: Object) -> Result {
    if is_module(obj) {
        crate::relocs::apply_object_relocs(patch, obj)?;
    }
    // SAFETY: we hold klp_mutex (all callers do); the object is set up.
    for func in unsafe { funcs(obj) } {
        // SAFETY: as above.
        let f = unsafe { &mut *func };
        let addr = find_symbol(
            if is_module(obj) {
                // SAFETY: as above.
                unsafe { (*obj).name }
            } else {
                core::ptr::null()
            },
            f.old_name,
            f.old_sympos,
        )?;
        f.old_func = addr as *mut c_void;
        let Some(size) = symbol_size(f.old_func) else {
            pr_err!("kallsyms size lookup failed for '{}'\n", Name(f.old_name));
            return Err(ENOENT);
        };
        f.old_size = size;
        if f.nop {
            f.new_func = f.old_func;
        }
        let Some(size) = symbol_size(f.new_func) else {
            pr_err!(
                "kallsyms size lookup failed for '{}' replacement\n",
                Name(f.old_name)
            );
            return Err(ENOENT);
        };
        f.new_size = size;
    }
    Ok(())
}

fn init_func(obj: Object, func: Func) -> Result {
    // SAFETY: the function is set up by `init_func_early`; klp_mutex held.
    let f = unsafe { &mut *func };
    if f.old_name.is_null() || (f.new_func.is_null() && !f.nop) {
        return Err(EINVAL);
    }
    // SAFETY: as above.
    unsafe { list::init(&raw mut f.stack_node) };
    f.patched = false;
    f.transition = false;
    // The directory is <function,sympos>; a unique symbol is the first one.
    let pos: c_ulong = if f.old_sympos != 0 { f.old_sympos } else { 1 };
    // SAFETY: both kobjects are initialised; the format matches the
    // arguments.
    let ret = unsafe {
        bindings::kobject_add(
            &mut f.kobj,
            &raw mut (*obj).kobj,
            kernel::c_str!("%s,%lu").as_char_ptr(),
            f.old_name,
            pos,
        )
    };
    kernel::error::to_result(ret)
}

fn init_object(patch: Patch, obj: Object) -> Result {
    // SAFETY: set up by `init_object_early`; klp_mutex held.
    unsafe {
        (*obj).patched = false;
        (*obj).mod_ = core::ptr::null_mut();
    }
    find_object_module(obj);
    let name = if is_module(obj) {
        // SAFETY: as above.
        unsafe { (*obj).name }
    } else {
        kernel::c_str!("vmlinux").as_char_ptr()
    };
    // SAFETY: both kobjects are initialised.
    let ret = unsafe {
        bindings::kobject_add(
            &raw mut (*obj).kobj,
            &raw mut (*patch).kobj,
            kernel::c_str!("%s").as_char_ptr(),
            name,
        )
    };
    kernel::error::to_result(ret)?;
    // SAFETY: as above.
    for func in unsafe { funcs(obj) } {
        init_func(obj, func)?;
    }
    if is_loaded(obj) {
        init_object_loaded(patch, obj).inspect_err(|_| {
            pr_err!(
                "patch '{}': cannot resolve object '{}'\n",
                patch_name(patch),
                obj_name(obj)
            )
        })?;
    }
    Ok(())
}

/// Second part of the set-up: sysfs, nops, objects; then the patch joins
/// the list of patches.
pub(crate) fn init_patch(lock: &mut KlpLock, patch: Patch) -> Result {
    // SAFETY: `patch` was set up by `init_patch_early`.
    let ret = unsafe {
        bindings::kobject_add(
            &raw mut (*patch).kobj,
            sysfs::root(),
            kernel::c_str!("%s").as_char_ptr(),
            (*(*patch).mod_).name.as_ptr(),
        )
    };
    kernel::error::to_result(ret)?;
    // SAFETY: as above.
    if unsafe { (*patch).replace } {
        add_nops(lock, patch)?;
    }
    // SAFETY: as above.
    for obj in unsafe { objects(patch) } {
        init_object(patch, obj)?;
    }
    crate::registry::add_patch(lock, patch);
    Ok(())
}

/// Finds the object of `patch` that patches the same thing as `old`.
/// Whether `a` and `b` name the same object: vmlinux, or one module.
fn same_object(a: Object, b: Object) -> bool {
    if is_module(a) {
        // SAFETY: objects of set-up patches; klp_mutex held by the caller.
        is_module(b) && c_streq(unsafe { (*a).name }, unsafe { (*b).name })
    } else {
        !is_module(b)
    }
}

/// Whether `a` and `b` patch the same symbol (name and position).
fn same_func(a: Func, b: Func) -> bool {
    // SAFETY: functions of set-up patches; klp_mutex held by the caller.
    let (a, b) = unsafe { (&*a, &*b) };
    c_streq(a.old_name, b.old_name) && sympos_eq(a.old_sympos, b.old_sympos)
}

fn find_object(patch: Patch, old: Object) -> Option<Object> {
    // SAFETY: klp_mutex held by the caller; the patch is set up.
    unsafe { objects(patch) }.find(|&obj| same_object(old, obj))
}

/// A function of a patch as atomic replace compares them: the same symbol
/// in the same object.
#[derive(Clone, Copy)]
struct FuncRef {
    obj: Object,
    func: Func,
}

impl PartialEq for FuncRef {
    fn eq(&self, other: &Self) -> bool {
        // The function first: its name tells most functions apart.
        same_func(self.func, other.func) && same_object(self.obj, other.obj)
    }
}

/// The functions of `patch` with their objects.
///
/// # Safety
/// As for [`objects`]; no object or function of `patch` may be removed
/// while the iterator lives.
unsafe fn func_refs(patch: Patch) -> impl Iterator<Item = FuncRef> + Clone {
    // SAFETY: per the function's contract.
    unsafe { objects(patch) }.flat_map(|obj| {
        // SAFETY: as above.
        unsafe { funcs(obj) }.map(move |func| FuncRef { obj, func })
    })
}

fn kstrdup(s: *const c_char) -> Result<*const c_char> {
    if s.is_null() {
        return Ok(s);
    }
    // SAFETY: `s` is a NUL-terminated string.
    let copy = unsafe { bindings::kstrdup(s, bindings::GFP_KERNEL) };
    if copy.is_null() {
        Err(ENOMEM)
    } else {
        Ok(copy)
    }
}

/// Allocates a zeroed C structure with kmalloc, to be freed with kfree.
fn kzalloc<T>() -> Result<*mut T> {
    // SAFETY: krealloc with a null pointer is kmalloc; __GFP_ZERO zeroes it.
    let p = unsafe {
        bindings::krealloc(
            core::ptr::null(),
            core::mem::size_of::<T>(),
            bindings::GFP_KERNEL | bindings::__GFP_ZERO,
        )
    };
    if p.is_null() {
        Err(ENOMEM)
    } else {
        Ok(p.cast())
    }
}

fn alloc_object_dynamic(patch: Patch, name: *const c_char) -> Result<Object> {
    let obj: Object = kzalloc()?;
    match kstrdup(name) {
        // SAFETY: `obj` is a fresh zeroed allocation.
        Ok(n) => unsafe { (*obj).name = n },
        Err(e) => {
            // SAFETY: allocated above, never published.
            unsafe { bindings::kfree(obj.cast()) };
            return Err(e);
        }
    }
    init_object_early(patch, obj);
    // SAFETY: as above.
    unsafe { (*obj).dynamic = true };
    Ok(obj)
}

fn alloc_func_nop(obj: Object, old: Func) -> Result<Func> {
    let func: Func = kzalloc()?;
    // SAFETY: `old` belongs to a registered patch; klp_mutex held.
    let old = unsafe { &*old };
    match kstrdup(old.old_name) {
        // SAFETY: `func` is a fresh zeroed allocation.
        Ok(n) => unsafe { (*func).old_name = n },
        Err(e) => {
            // SAFETY: allocated above, never published.
            unsafe { bindings::kfree(func.cast()) };
            return Err(e);
        }
    }
    init_func_early(obj, func);
    // The address of the replacement (the original function itself) is set
    // when the object is loaded, in `init_object_loaded`.
    // SAFETY: as above.
    unsafe {
        (*func).old_sympos = old.old_sympos;
        (*func).nop = true;
    }
    Ok(func)
}

/// Adds a nop function to `patch` for every function that a registered
/// patch patches and `patch` does not: atomic replace then reverts those
/// functions to the original code.
fn add_nops(lock: &mut KlpLock, patch: Patch) -> Result {
    // The functions as two flat arrays: cheap to walk again and again, and
    // no adapter nested in an adapter (whose monomorphised symbols would be
    // too long for kallsyms).
    let mut registered = KVVec::new();
    for p in crate::registry::patches(lock) {
        // SAFETY: registered patches are set up and stay while klp_mutex is
        // held; nothing of them is removed here.
        for f in unsafe { func_refs(p) } {
            registered.push(f, GFP_KERNEL)?;
        }
    }
    let mut new = KVVec::new();
    // SAFETY: `patch` is set up; the nops added below are not in `new`,
    // which the plan does not need (they match registered functions that
    // it has seen already).
    for f in unsafe { func_refs(patch) } {
        new.push(f, GFP_KERNEL)?;
    }
    let mut res = Ok(());
    // The plan (shared with the host model) says which functions need one.
    crate::state_plan::for_each_nop(
        registered.iter().copied(),
        new.iter().copied(),
        |old: FuncRef| {
            if res.is_err() {
                return;
            }
            let obj = match find_object(patch, old.obj) {
                Some(o) => Ok(o),
                // SAFETY: `old.obj` belongs to a registered patch.
                None => alloc_object_dynamic(patch, unsafe { (*old.obj).name }),
            };
            res = obj.and_then(|obj| alloc_func_nop(obj, old.func).map(|_| ()));
        },
    );
    res
}

/// Frees a nop function (kobject release).
pub(crate) fn free_func_nop(func: Func) {
    // SAFETY: nops and their names were allocated by `alloc_func_nop`; this
    // is the last reference.
    unsafe {
        bindings::kfree((*func).old_name.cast());
        bindings::kfree(func.cast());
    }
}

/// Frees a dynamic object (kobject release).
pub(crate) fn free_object_dynamic(obj: Object) {
    // SAFETY: as in `free_func_nop`, for `alloc_object_dynamic`.
    unsafe {
        bindings::kfree((*obj).name.cast());
        bindings::kfree(obj.cast());
    }
}

fn free_funcs(obj: Object, nops_only: bool) {
    // SAFETY: klp_mutex held by the callers; we remove only the current
    // entry.
    for func in unsafe { funcs(obj) } {
        // SAFETY: as above.
        unsafe {
            if nops_only && !(*func).nop {
                continue;
            }
            list::del_init(&raw mut (*func).node);
            bindings::kobject_put(&raw mut (*func).kobj);
        }
    }
}

/// Drops the objects (all, or only the nops and dynamic objects) of a
/// patch; the memory goes with the last kobject reference.
pub(crate) fn free_objects(patch: Patch, nops_only: bool) {
    // SAFETY: as in `free_funcs`.
    for obj in unsafe { objects(patch) } {
        free_funcs(obj, nops_only);
        // SAFETY: as above.
        unsafe {
            if nops_only && !(*obj).dynamic {
                continue;
            }
            list::del_init(&raw mut (*obj).node);
            bindings::kobject_put(&raw mut (*obj).kobj);
        }
    }
}

/// Forgets the addresses of an object whose module is going away.
pub(crate) fn free_object_loaded(obj: Object) {
    // SAFETY: klp_mutex held by the caller.
    unsafe {
        (*obj).mod_ = core::ptr::null_mut();
        for func in funcs(obj) {
            (*func).old_func = core::ptr::null_mut();
            if (*func).nop {
                (*func).new_func = core::ptr::null_mut();
            }
        }
    }
}
