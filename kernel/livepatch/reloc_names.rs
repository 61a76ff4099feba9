// SPDX-License-Identifier: GPL-2.0-or-later

//! Parsing of the names that klp relocations use.
//!
//! Pure code, compiled into the kernel core and into the host tests:
//!
//! - a klp relocation section is named `.klp.rela.<object>.<section>`;
//! - a symbol it references is named `.klp.sym.<object>.<symbol>,<sympos>`.
//!
//! The field widths are those of the module ABI: object names hold at most
//! [`OBJNAME_MAX`] bytes, symbol names at most [`SYMNAME_MAX`].

/// Longest object name in a relocation name (`MODULE_NAME_LEN` - 1 on the
/// strictest architecture).
pub const OBJNAME_MAX: usize = 55;
/// Longest symbol name (`KSYM_NAME_LEN` - 1).
pub const SYMNAME_MAX: usize = 511;

/// The parts of a `.klp.sym.` symbol name.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct KlpSym<'a> {
    /// The object that holds the symbol (`vmlinux` or a module).
    pub objname: &'a [u8],
    /// The symbol.
    pub name: &'a [u8],
    /// Its position among symbols of that name (0: unique).
    pub sympos: u64,
}

/// Takes the longest prefix of `s`, at most `max` bytes, that holds no
/// byte equal to `stop`.  `None` when it is empty.
fn field(s: &[u8], stop: u8, max: usize) -> Option<(&[u8], &[u8])> {
    let n = s.iter().take(max).take_while(|&&c| c != stop).count();
    (n > 0).then(|| s.split_at(n))
}

/// The object of a klp relocation section name: `None` when the name does
/// not start with `.klp.rela.` followed by at least one byte other than
/// `.`.  A longer object name is cut to [`OBJNAME_MAX`] bytes.
pub fn section_object(secname: &[u8]) -> Option<&[u8]> {
    let rest = secname.strip_prefix(b".klp.rela.")?;
    field(rest, b'.', OBJNAME_MAX).map(|(obj, _)| obj)
}

/// Parses a `.klp.sym.<object>.<symbol>,<sympos>` name.  The position is
/// a decimal number, optionally preceded by blanks and a sign; what follows
/// it is ignored.
pub fn parse_sym(name: &[u8]) -> Option<KlpSym<'_>> {
    let rest = name.strip_prefix(b".klp.sym.")?;
    let (objname, rest) = field(rest, b'.', OBJNAME_MAX)?;
    let rest = rest.strip_prefix(b".")?;
    let (sym, rest) = field(rest, b',', SYMNAME_MAX)?;
    let rest = rest.strip_prefix(b",")?;
    let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    let (neg, rest) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let v = rest[..digits].iter().fold(0u64, |v, &d| {
        v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    });
    Some(KlpSym {
        objname,
        name: sym,
        sympos: if neg { v.wrapping_neg() } else { v },
    })
}
