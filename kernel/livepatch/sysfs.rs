// SPDX-License-Identifier: GPL-2.0-or-later

//! `/sys/kernel/livepatch`, with the files and formats of the C core:
//!
//! ```text
//! /sys/kernel/livepatch/<patch>/{enabled,transition,force,replace,stack_order}
//! /sys/kernel/livepatch/<patch>/<object>/patched
//! /sys/kernel/livepatch/<patch>/<object>/<function,sympos>/
//! ```
//!
//! The kobjects are embedded in the livepatch structures; their release
//! functions free what the core allocated (nops, dynamic objects) and let
//! the freeing of a patch finish.

use crate::handles::{KlpFunc, KlpObject, KlpPatch};
use crate::list::container_of;
use crate::objects;
use crate::registry;
use crate::sys::KlpLock;
use crate::transition;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::{c_char, c_int};

/// A static C structure that holds pointers; it is never written after
/// initialisation, so sharing it is fine.
#[repr(transparent)]
struct Static<T>(T);
// SAFETY: the wrapped values are read-only after compile time.
unsafe impl<T> Sync for Static<T> {}

type Show = unsafe extern "C" fn(
    *mut bindings::kobject,
    *mut bindings::kobj_attribute,
    *mut c_char,
) -> isize;
type Store = unsafe extern "C" fn(
    *mut bindings::kobject,
    *mut bindings::kobj_attribute,
    *const c_char,
    usize,
) -> isize;

const fn attr(
    name: &'static kernel::str::CStr,
    mode: u16,
    show: Option<Show>,
    store: Option<Store>,
) -> bindings::kobj_attribute {
    // SAFETY: all-zero is a valid `kobj_attribute` (null pointers, no
    // callbacks).
    let mut a: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
    a.attr.name = name.as_char_ptr();
    a.attr.mode = mode as _;
    a.show = show;
    a.store = store;
    a
}

/// The address of the patch whose kobject is at `kobj`, for the release,
/// which must not make a handle.
fn patch_of(kobj: *mut bindings::kobject) -> *mut bindings::klp_patch {
    container_of!(kobj, bindings::klp_patch, kobj)
}

/// A file of a patch's directory that shows an integer; `show` runs in the
/// trampoline [`patch_show`].
trait PatchShow {
    /// The value to show.
    fn show(patch: &KlpPatch) -> c_int;
}

/// A file of a patch's directory that takes a boolean; `store` runs in the
/// trampoline [`patch_store`].
trait PatchStore {
    /// Handles a write of `v`.
    fn store(patch: &KlpPatch, v: bool) -> Result;
}

/// The show function of the files of [`PatchShow`]: prints the value and a
/// newline.
///
/// # Safety
/// Called by sysfs with the kobject of a patch and the page to print to.
unsafe extern "C" fn patch_show<F: PatchShow>(
    kobj: *mut bindings::kobject,
    _a: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: the file belongs to a patch's kobject, alive while open.
    let v = F::show(unsafe { KlpPatch::from_kobj(kobj) });
    // SAFETY: `buf` is the page sysfs gave us; the format takes one int.
    unsafe { bindings::sysfs_emit(buf, c_str!("%d\n").as_char_ptr(), v) as isize }
}

/// The store function of the files of [`PatchStore`]: parses a boolean
/// (`kstrtobool()`), and returns `count` or the error.
///
/// # Safety
/// Called by sysfs with the kobject of a patch and a NUL-terminated
/// buffer.
unsafe extern "C" fn patch_store<F: PatchStore>(
    kobj: *mut bindings::kobject,
    _a: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: as in `patch_show`.
    let patch = unsafe { KlpPatch::from_kobj(kobj) };
    let mut v = false;
    // SAFETY: sysfs passes a NUL-terminated buffer; `v` outlives the call.
    let ret = unsafe { bindings::kstrtobool(buf, &mut v) };
    match kernel::error::to_result(ret).and_then(|()| F::store(patch, v)) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `enabled`: shows whether the patch is enabled; a write disables it, or
/// reverses its transition.
struct Enabled;

impl PatchShow for Enabled {
    fn show(patch: &KlpPatch) -> c_int {
        patch.enabled() as c_int
    }
}

impl PatchStore for Enabled {
    fn store(patch: &KlpPatch, v: bool) -> Result {
        registry::set_enabled(patch, v)
    }
}

/// `transition`: whether the patch is in transition.
struct Transition;

impl PatchShow for Transition {
    fn show(patch: &KlpPatch) -> c_int {
        (transition::patch() == Some(patch.as_raw())) as c_int
    }
}

/// `force`: a write of a true value forces the transition.
struct Force;

impl PatchStore for Force {
    fn store(patch: &KlpPatch, v: bool) -> Result {
        if v {
            registry::force(patch)
        } else {
            Ok(())
        }
    }
}

/// `replace`: whether the patch replaces the ones before it.
struct Replace;

impl PatchShow for Replace {
    fn show(patch: &KlpPatch) -> c_int {
        patch.replace() as c_int
    }
}

/// `stack_order`: the position among the registered patches.
struct StackOrder;

impl PatchShow for StackOrder {
    fn show(patch: &KlpPatch) -> c_int {
        let lock = KlpLock::lock();
        let mut order = 0;
        for p in registry::registered(&lock) {
            order += 1;
            if p == patch {
                break;
            }
        }
        drop(lock);
        order
    }
}

/// Shows `patched` of an object.
///
/// # Safety
/// Called by sysfs with the kobject of an object and the page to print to.
unsafe extern "C" fn patched_show(
    kobj: *mut bindings::kobject,
    _a: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: the file belongs to the object's kobject, alive while open.
    let obj = unsafe { KlpObject::from_kobj(kobj) };
    // SAFETY: as in `patch_show`.
    unsafe {
        bindings::sysfs_emit(buf, c_str!("%d\n").as_char_ptr(), obj.patched() as c_int) as isize
    }
}

static ENABLED: Static<bindings::kobj_attribute> = Static(attr(
    c_str!("enabled"),
    0o644,
    Some(patch_show::<Enabled>),
    Some(patch_store::<Enabled>),
));
static TRANSITION: Static<bindings::kobj_attribute> = Static(attr(
    c_str!("transition"),
    0o444,
    Some(patch_show::<Transition>),
    None,
));
static FORCE: Static<bindings::kobj_attribute> = Static(attr(
    c_str!("force"),
    0o200,
    None,
    Some(patch_store::<Force>),
));
static REPLACE: Static<bindings::kobj_attribute> = Static(attr(
    c_str!("replace"),
    0o444,
    Some(patch_show::<Replace>),
    None,
));
static STACK_ORDER: Static<bindings::kobj_attribute> = Static(attr(
    c_str!("stack_order"),
    0o444,
    Some(patch_show::<StackOrder>),
    None,
));
static PATCHED: Static<bindings::kobj_attribute> =
    Static(attr(c_str!("patched"), 0o444, Some(patched_show), None));

macro_rules! attr_ptr {
    ($a:ident) => {
        &raw const $a.0.attr as *mut bindings::attribute
    };
}

static PATCH_ATTRS: Static<[*mut bindings::attribute; 6]> = Static([
    attr_ptr!(ENABLED),
    attr_ptr!(TRANSITION),
    attr_ptr!(FORCE),
    attr_ptr!(REPLACE),
    attr_ptr!(STACK_ORDER),
    core::ptr::null_mut(),
]);
static OBJECT_ATTRS: Static<[*mut bindings::attribute; 2]> =
    Static([attr_ptr!(PATCHED), core::ptr::null_mut()]);

const fn group(attrs: *mut *mut bindings::attribute) -> bindings::attribute_group {
    // SAFETY: all-zero is a valid, unnamed `attribute_group`.
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.attrs = attrs;
    g
}

static PATCH_GROUP: Static<bindings::attribute_group> = Static(group(
    &raw const PATCH_ATTRS.0 as *mut *mut bindings::attribute,
));
static OBJECT_GROUP: Static<bindings::attribute_group> = Static(group(
    &raw const OBJECT_ATTRS.0 as *mut *mut bindings::attribute,
));
static PATCH_GROUPS: Static<[*const bindings::attribute_group; 2]> =
    Static([&raw const PATCH_GROUP.0, core::ptr::null()]);
static OBJECT_GROUPS: Static<[*const bindings::attribute_group; 2]> =
    Static([&raw const OBJECT_GROUP.0, core::ptr::null()]);

/// Release of a patch's kobject: lets the freeing finish.
///
/// # Safety
/// Called by sysfs/kobject code with the kobject of a patch.
unsafe extern "C" fn release_patch(kobj: *mut bindings::kobject) {
    // SAFETY: the last reference of a patch's kobject: let
    // `free_patch_finish` go on.  No handle: the patch may be gone as soon
    // as `complete()` wakes the waiter.
    unsafe { bindings::complete(&raw mut (*patch_of(kobj)).finish) };
}

/// Release of an object's kobject: frees a dynamic object.
///
/// # Safety
/// Called by sysfs/kobject code with the kobject of an object.
unsafe extern "C" fn release_object(kobj: *mut bindings::kobject) {
    // SAFETY: the last reference of the object's kobject: the object is
    // valid until it is freed below, after the last use of the handle.
    let obj = unsafe { KlpObject::from_kobj(kobj) };
    if obj.dynamic() {
        // SAFETY: a dynamic object, whose last reference went: nothing
        // uses it once freed.
        unsafe { objects::free_object_dynamic(obj.as_raw()) };
    }
}

/// Release of a function's kobject: frees a nop.
///
/// # Safety
/// Called by sysfs/kobject code with the kobject of a function.
unsafe extern "C" fn release_func(kobj: *mut bindings::kobject) {
    // SAFETY: the last reference of the function's kobject: as in
    // `release_object`.
    let func = unsafe { KlpFunc::from_kobj(kobj) };
    if func.nop() {
        // SAFETY: a nop, whose last reference went: nothing uses it once
        // freed.
        unsafe { objects::free_func_nop(func.as_raw()) };
    }
}

const fn ktype(
    release: unsafe extern "C" fn(*mut bindings::kobject),
    groups: *const *const bindings::attribute_group,
) -> bindings::kobj_type {
    // SAFETY: all-zero is a valid `kobj_type`.
    let mut t: bindings::kobj_type = unsafe { core::mem::zeroed() };
    t.release = Some(release);
    t.sysfs_ops = &raw const bindings::kobj_sysfs_ops;
    t.default_groups = groups as *mut _;
    t
}

static PATCH_KTYPE: Static<bindings::kobj_type> = Static(ktype(
    release_patch,
    &raw const PATCH_GROUPS.0 as *const *const bindings::attribute_group,
));
static OBJECT_KTYPE: Static<bindings::kobj_type> = Static(ktype(
    release_object,
    &raw const OBJECT_GROUPS.0 as *const *const bindings::attribute_group,
));
static FUNC_KTYPE: Static<bindings::kobj_type> = Static(ktype(release_func, core::ptr::null()));

/// The kobject type of patches.
pub(crate) fn patch_ktype() -> *const bindings::kobj_type {
    &PATCH_KTYPE.0
}

/// The kobject type of objects.
pub(crate) fn object_ktype() -> *const bindings::kobj_type {
    &OBJECT_KTYPE.0
}

/// The kobject type of functions.
pub(crate) fn func_ktype() -> *const bindings::kobj_type {
    &FUNC_KTYPE.0
}

static ROOT: AtomicPtr<bindings::kobject> = AtomicPtr::new(core::ptr::null_mut());

/// `/sys/kernel/livepatch`, or null before [`init`].
pub(crate) fn root() -> *mut bindings::kobject {
    ROOT.load(Ordering::Acquire)
}

/// Creates `/sys/kernel/livepatch`.
pub(crate) fn init() -> Result {
    // SAFETY: `kernel_kobj` exists from early boot on.
    let k = unsafe {
        bindings::kobject_create_and_add(
            kernel::c_str!("livepatch").as_char_ptr(),
            bindings::kernel_kobj,
        )
    };
    if k.is_null() {
        return Err(ENOMEM);
    }
    ROOT.store(k, Ordering::Release);
    Ok(())
}

use kernel::c_str;
