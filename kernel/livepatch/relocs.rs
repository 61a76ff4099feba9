// SPDX-License-Identifier: GPL-2.0-or-later

//! klp relocations: a livepatch module refers to symbols that are not
//! exported (in vmlinux or in the module it patches) through `.klp.rela.*`
//! sections, which are written when the referenced object is loaded:
//! vmlinux ones by the module loader through [`klp_apply_section_relocs`],
//! module ones by the core when the patched module comes (and cleared when
//! it goes, so that it can come again).

use crate::handles::{KlpObject, KlpPatch};
use crate::objects;
use crate::reloc_names;
use kernel::bindings;
use kernel::error::{code::*, Result};
use kernel::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use kernel::prelude::*;

type Shdr = bindings::Elf64_Shdr;

extern "C" {
    // From include/linux/moduleloader.h (architecture code).
    fn apply_relocate_add(
        sechdrs: *mut Shdr,
        strtab: *const c_char,
        symindex: c_uint,
        relsec: c_uint,
        me: *mut c_void,
    ) -> c_int;
    fn clear_relocate_add(
        sechdrs: *mut Shdr,
        strtab: *const c_char,
        symindex: c_uint,
        relsec: c_uint,
        me: *mut c_void,
    );
}

/// A NUL-terminated copy of `s` in `buf`; `None` when it does not fit (or
/// `s` holds a NUL, which a name parsed out of a C string cannot).
fn to_c<'b>(s: &[u8], buf: &'b mut [u8]) -> Option<&'b CStr> {
    if s.len() >= buf.len() {
        return None;
    }
    buf[..s.len()].copy_from_slice(s);
    buf[s.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=s.len()]).ok()
}

/// Resolves the `.klp.sym.` symbols of one relocation section.
///
/// # Safety
/// The ELF data must be the livepatch module's, as the loader keeps it.
unsafe fn resolve_symbols(
    sechdrs: *mut Shdr,
    strtab: *const c_char,
    symndx: c_uint,
    relasec: *mut Shdr,
    sec_vmlinux: bool,
) -> Result {
    // SAFETY: per the function's contract.
    let (relas, n, syms) = unsafe {
        (
            (*relasec).sh_addr as *const bindings::Elf64_Rela,
            (*relasec).sh_size as usize / core::mem::size_of::<bindings::Elf64_Rela>(),
            (*sechdrs.add(symndx as usize)).sh_addr as *mut bindings::Elf64_Sym,
        )
    };
    for i in 0..n {
        // SAFETY: `i` is within the section; the symbol index comes from
        // the module's own relocation.
        let sym = unsafe { syms.add(((*relas.add(i)).r_info >> 32) as usize) };
        // SAFETY: as above; names in the module's string table are
        // NUL-terminated.
        let (shndx, name) = unsafe {
            (
                (*sym).st_shndx,
                CStr::from_char_ptr(strtab.add((*sym).st_name as usize)),
            )
        };
        let shown = crate::sys::Name(name.as_char_ptr());
        if u32::from(shndx) != bindings::SHN_LIVEPATCH {
            pr_err!("symbol {} is not marked as a livepatch symbol\n", shown);
            return Err(EINVAL);
        }
        let Some(ks) = reloc_names::parse_sym(name.as_bytes()) else {
            pr_err!("symbol {} has an incorrectly formatted name\n", shown);
            return Err(EINVAL);
        };
        let sym_vmlinux = ks.objname == b"vmlinux";
        let mut objbuf = [0u8; reloc_names::OBJNAME_MAX + 1];
        let mut namebuf = [0u8; reloc_names::SYMNAME_MAX + 1];
        let (Some(obj_c), Some(name_c)) =
            (to_c(ks.objname, &mut objbuf), to_c(ks.name, &mut namebuf))
        else {
            return Err(EINVAL);
        };
        if !sec_vmlinux && sym_vmlinux {
            pr_err!(
                "invalid access to vmlinux symbol '{}' from module-specific livepatch relocation section\n",
                crate::sys::Name(name_c.as_char_ptr())
            );
            return Err(EINVAL);
        }
        let addr = objects::find_symbol(
            if sym_vmlinux { None } else { Some(obj_c) },
            name_c,
            ks.sympos as c_ulong,
        )?;
        // SAFETY: the symbol table is writable module data at this point.
        unsafe { (*sym).st_value = addr as u64 };
    }
    Ok(())
}

/// Writes (or clears) one `.klp.rela.` section if it is for `objname`
/// (vmlinux when `None`).
///
/// # Safety
/// As for [`resolve_symbols`].
#[allow(clippy::too_many_arguments)]
unsafe fn write_section_relocs(
    pmod: *mut bindings::module,
    sechdrs: *mut Shdr,
    shstrtab: *const c_char,
    strtab: *const c_char,
    symndx: c_uint,
    secndx: c_uint,
    objname: Option<&CStr>,
    apply: bool,
) -> Result {
    // SAFETY: per the function's contract; section names in `shstrtab`
    // are NUL-terminated.
    let (sec, secname) = unsafe {
        let sec = sechdrs.add(secndx as usize);
        (
            sec,
            CStr::from_char_ptr(shstrtab.add((*sec).sh_name as usize)),
        )
    };
    let Some(sec_obj) = reloc_names::section_object(secname.as_bytes()) else {
        pr_err!(
            "section {} has an incorrectly formatted name\n",
            crate::sys::Name(secname.as_char_ptr())
        );
        return Err(EINVAL);
    };
    let want = objname.map_or(&b"vmlinux"[..], CStr::as_bytes);
    if want != sec_obj {
        return Ok(());
    }
    if apply {
        // SAFETY: per the function's contract.
        unsafe { resolve_symbols(sechdrs, strtab, symndx, sec, sec_obj == b"vmlinux")? };
        // SAFETY: as above; the architecture writes the relocations.
        kernel::error::to_result(unsafe {
            apply_relocate_add(sechdrs, strtab, symndx, secndx, pmod.cast())
        })
    } else {
        // SAFETY: as above.
        unsafe { clear_relocate_add(sechdrs, strtab, symndx, secndx, pmod.cast()) };
        Ok(())
    }
}

/// Called by the module loader for every `.klp.rela.` section of a
/// livepatch module: writes those for vmlinux (`objname` null).
///
/// # Safety
/// Called by the module loader with the module's ELF data.
#[no_mangle]
pub(crate) unsafe extern "C" fn klp_apply_section_relocs(
    pmod: *mut bindings::module,
    sechdrs: *mut Shdr,
    shstrtab: *const c_char,
    strtab: *const c_char,
    symndx: c_uint,
    secndx: c_uint,
    objname: *const c_char,
) -> c_int {
    let objname = if objname.is_null() {
        None
    } else {
        // SAFETY: the loader passes null or a NUL-terminated name.
        Some(unsafe { CStr::from_char_ptr(objname) })
    };
    // SAFETY: per the function's contract.
    match unsafe {
        write_section_relocs(
            pmod, sechdrs, shstrtab, strtab, symndx, secndx, objname, true,
        )
    } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

fn write_object_relocs(patch: &KlpPatch, obj: &KlpObject, apply: bool) -> Result {
    let objname = obj.name();
    // `check_patch` refused the patches without a module.
    let Some(m) = patch.module() else {
        return Ok(());
    };
    let (info, strtab) = m.klp_info();
    if info.is_null() {
        return Ok(());
    }
    // SAFETY: the patch module is alive (the core holds a reference) and
    // kept its klp_info for this purpose.
    unsafe {
        for i in 1..(*info).hdr.e_shnum as c_uint {
            let sec = (*info).sechdrs.add(i as usize);
            if (*sec).sh_flags & u64::from(bindings::SHF_RELA_LIVEPATCH) == 0 {
                continue;
            }
            write_section_relocs(
                m.as_raw(),
                (*info).sechdrs,
                (*info).secstrings,
                strtab,
                (*info).symndx,
                i,
                objname,
                apply,
            )?;
        }
    }
    Ok(())
}

/// Writes the relocations of `patch` for the module of `obj`.
pub(crate) fn apply_object_relocs(patch: &KlpPatch, obj: &KlpObject) -> Result {
    write_object_relocs(patch, obj, true)
}

/// Clears them again when that module goes away.
pub(crate) fn clear_object_relocs(patch: &KlpPatch, obj: &KlpObject) {
    let _ = write_object_relocs(patch, obj, false);
}
