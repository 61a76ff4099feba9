/* SPDX-License-Identifier: GPL-2.0 */
/*
 * klp relocations of the test_klp_reloc* modules (test-relocs.sh).
 *
 * Linux 6.12 has no klp-convert.  A test module declares each symbol that
 * it reaches through a klp relocation with KLP_SYM(): a weak undefined
 * symbol that already has the livepatch symbol name
 * .klp.sym.<object>.<symbol>,<sympos>, so that modpost and the module
 * loader let it through.  It refers to these symbols only from pointers
 * placed with KLP_DATA(<object>) in a section of their own,
 * .klp_data.<object>, so that the relocation section of that data holds
 * nothing else (no __fentry__ call nor return thunk).
 *
 * After the build, klp_mkrela.py marks the symbols SHN_LIVEPATCH and turns
 * .rela.klp_data.<object> into .klp.rela.<object>..klp_data.<object> with
 * SHF_RELA_LIVEPATCH, as Documentation/livepatch/module-elf-format.rst
 * describes (the Makefile of the directory above runs it).  An unconverted
 * module loads with null pointers (the weak symbols resolve to 0), which
 * the tests would report.
 */
#ifndef _TEST_KLP_RELOC_H
#define _TEST_KLP_RELOC_H

#include <linux/compiler.h>

/* Declares @var as symbol @sym (position @pos) of object @obj. */
#define KLP_SYM(var, obj, sym, pos) \
	extern const char var[] asm(".klp.sym." #obj "." #sym "," #pos) __weak

/* Places pointers where the klp relocations of object @obj write. */
#define KLP_DATA(obj) __section(".klp_data." #obj)

#endif /* _TEST_KLP_RELOC_H */
