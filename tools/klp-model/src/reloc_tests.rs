// SPDX-License-Identifier: GPL-2.0

//! Tests of the klp relocation name parsing (`kernel/livepatch/reloc_names.rs`).

use crate::reloc_names::*;

#[test]
fn section_names() {
    assert_eq!(
        section_object(b".klp.rela.vmlinux..text.foo"),
        Some(&b"vmlinux"[..])
    );
    assert_eq!(
        section_object(b".klp.rela.mod_a..text"),
        Some(&b"mod_a"[..])
    );
    // No object: the name is refused.
    assert_eq!(section_object(b".klp.rela..text"), None);
    assert_eq!(section_object(b".rela.text"), None);
    // A longer object name is cut to the ABI's width.
    let long = [b'x'; 70];
    let mut name = b".klp.rela.".to_vec();
    name.extend_from_slice(&long);
    assert_eq!(section_object(&name).map(<[u8]>::len), Some(OBJNAME_MAX));
}

#[test]
fn symbol_names() {
    assert_eq!(
        parse_sym(b".klp.sym.vmlinux.printk,0"),
        Some(KlpSym {
            objname: b"vmlinux",
            name: b"printk",
            sympos: 0
        })
    );
    let s = parse_sym(b".klp.sym.mod.func.cold,2").unwrap();
    assert_eq!(
        (s.objname, s.name, s.sympos),
        (&b"mod"[..], &b"func.cold"[..], 2)
    );
    // Blanks and a sign before the position, as the C parser accepts.
    assert_eq!(parse_sym(b".klp.sym.m.f, +3").unwrap().sympos, 3);
    // Missing parts.
    for bad in [
        &b".klp.sym.vmlinux.printk"[..],
        b".klp.sym.vmlinux.printk,",
        b".klp.sym.vmlinux,1",
        b".klp.sym..f,1",
        b".klp.sym.m.,1",
        b"klp.sym.m.f,1",
    ] {
        assert_eq!(parse_sym(bad), None, "{}", String::from_utf8_lossy(bad));
    }
    // An object name over the width does not parse (the '.' is not where
    // the format wants it).
    let mut name = b".klp.sym.".to_vec();
    name.extend_from_slice(&[b'o'; OBJNAME_MAX + 1]);
    name.extend_from_slice(b".f,1");
    assert_eq!(parse_sym(&name), None);
}
