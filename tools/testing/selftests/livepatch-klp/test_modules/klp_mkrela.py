#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# klp_mkrela.py - write the klp relocations of a livepatch test module.
#
# Linux 6.12 has no klp-convert, so the test_klp_reloc* modules are built
# normally and converted afterwards, in place, to the livepatch module ELF
# format of Documentation/livepatch/module-elf-format.rst:
#
# - every undefined symbol whose name already is a livepatch symbol name
#   (.klp.sym.<object>.<symbol>,<sympos>; the C sources give it with an asm
#   label, weak so that modpost and the module loader let it through) gets
#   st_shndx = SHN_LIVEPATCH and a global binding;
# - every relocation section whose entries refer to such symbols is renamed
#   .klp.rela.<object>.<section> and marked SHF_ALLOC | SHF_RELA_LIVEPATCH.
#   <object> comes from the name of the relocated section when it is
#   .klp_data.<object> (the sources put the pointers there), otherwise from
#   the symbols, which must then agree.  A section that mixes livepatch
#   symbols with other ones is an error: the module loader would apply its
#   other relocations too early or never.
#
# The new section names are appended to a copy of .shstrtab at the end of
# the file; the old one stays, unreferenced.  A module that has nothing left
# to convert is left untouched, so running the tool again is harmless.
#
# Usage: klp_mkrela.py [-v] MODULE.ko...

import os
import struct
import sys

SHN_UNDEF = 0
SHN_LIVEPATCH = 0xff20
SHT_SYMTAB = 2
SHT_RELA = 4
SHF_ALLOC = 0x2
SHF_RELA_LIVEPATCH = 0x00100000
STB_GLOBAL = 1
KLP_SYM = b".klp.sym."
KLP_DATA = ".klp_data."


class Error(Exception):
    pass


def cstr(data, off):
    end = data.index(b"\0", off)
    return bytes(data[off:end])


def convert(path, verbose):
    with open(path, "rb") as f:
        data = bytearray(f.read())

    if data[:4] != b"\x7fELF":
        raise Error("not an ELF file")
    if data[4] != 2:
        raise Error("only ELF64 is supported")
    end = {1: "<", 2: ">"}.get(data[5])
    if end is None:
        raise Error("unknown ELF data encoding")
    ehdr = struct.Struct(end + "16sHHIQQQIHHHHHH")
    shdr = struct.Struct(end + "IIQQQQIIQQ")
    sym_s = struct.Struct(end + "IBBHQQ")
    rela_s = struct.Struct(end + "QQq")

    eh = list(ehdr.unpack_from(data, 0))
    shoff, shentsize, shnum, shstrndx = eh[6], eh[11], eh[12], eh[13]
    if shentsize != shdr.size or shnum == 0:
        raise Error("unexpected section header table")
    secs = [list(shdr.unpack_from(data, shoff + i * shdr.size))
            for i in range(shnum)]
    shstr = secs[shstrndx]

    def secname(i):
        return cstr(data, shstr[4] + secs[i][0]).decode()

    symtabs = [i for i, s in enumerate(secs) if s[1] == SHT_SYMTAB]
    if len(symtabs) != 1:
        raise Error("expected one symbol table")
    symndx = symtabs[0]
    symtab = secs[symndx]
    strtab = secs[symtab[6]]
    nsyms = symtab[5] // sym_s.size

    # The livepatch symbols: index -> (object, name), converting those
    # still undefined.
    klp = {}
    converted = 0
    for n in range(1, nsyms):
        off = symtab[4] + n * sym_s.size
        name, info, other, shndx, value, size = sym_s.unpack_from(data, off)
        sname = cstr(data, strtab[4] + name)
        if not sname.startswith(KLP_SYM):
            continue
        rest = sname[len(KLP_SYM):]
        obj = rest.split(b".", 1)[0].decode()
        if shndx == SHN_UNDEF:
            info = (STB_GLOBAL << 4) | (info & 0xf)
            sym_s.pack_into(data, off, name, info, other, SHN_LIVEPATCH,
                            0, 0)
            converted += 1
            if verbose:
                print("%s: symbol %d %s -> SHN_LIVEPATCH"
                      % (path, n, sname.decode()))
        elif shndx != SHN_LIVEPATCH:
            raise Error("symbol %s is defined in the module"
                        % sname.decode())
        klp[n] = obj

    # The relocation sections that refer to them.
    renames = {}
    for i, s in enumerate(secs):
        if s[1] != SHT_RELA or s[6] != symndx:
            continue
        name = secname(i)
        if s[2] & SHF_RELA_LIVEPATCH:
            continue
        nrel = s[5] // rela_s.size
        objs = set()
        others = 0
        for r in range(nrel):
            _, info, _ = rela_s.unpack_from(data, s[4] + r * rela_s.size)
            n = info >> 32
            if n in klp:
                objs.add(klp[n])
            else:
                others += 1
        if not objs:
            continue
        if others:
            raise Error("%s mixes livepatch symbols with %d other "
                        "relocation(s)" % (name, others))
        target = secname(s[7])
        if target.startswith(KLP_DATA):
            obj = target[len(KLP_DATA):].split(".", 1)[0]
        elif len(objs) == 1:
            obj = objs.pop()
        else:
            raise Error("%s refers to the symbols of several objects: %s"
                        % (name, ", ".join(sorted(objs))))
        renames[i] = ".klp.rela.%s.%s" % (obj, target)

    if not renames:
        if converted:
            raise Error("livepatch symbols without relocation sections")
        if verbose:
            print("%s: nothing to convert" % path)
        return

    # A new .shstrtab: the old contents and the new names, at the end of
    # the file.
    table = bytearray(data[shstr[4]:shstr[4] + shstr[5]])
    for i, new in renames.items():
        if verbose:
            print("%s: section %d %s -> %s" % (path, i, secname(i), new))
        secs[i][0] = len(table)
        table += new.encode() + b"\0"
        secs[i][2] |= SHF_ALLOC | SHF_RELA_LIVEPATCH
    shstr[4] = len(data)
    shstr[5] = len(table)
    data += table
    for i, s in enumerate(secs):
        shdr.pack_into(data, shoff + i * shdr.size, *s)

    tmp = path + ".klp_mkrela.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, os.stat(path).st_mode)
    os.replace(tmp, path)


def main(argv):
    verbose = False
    if argv and argv[0] == "-v":
        verbose = True
        argv = argv[1:]
    if not argv:
        print("usage: klp_mkrela.py [-v] MODULE.ko...", file=sys.stderr)
        return 2
    ret = 0
    for path in argv:
        try:
            convert(path, verbose)
        except (Error, OSError, ValueError, struct.error) as e:
            print("klp_mkrela.py: %s: %s" % (path, e), file=sys.stderr)
            ret = 1
    return ret


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
