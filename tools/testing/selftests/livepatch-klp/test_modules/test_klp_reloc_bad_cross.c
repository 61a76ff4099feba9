// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch test: a faulty klp relocation (test-relocs.sh):
 * a vmlinux symbol in a relocation section for test_klp_reloc_mod, which
 * the core refuses when it writes that section.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>

#include "test_klp_reloc.h"

KLP_SYM(klp_bad, vmlinux, ngroups_max, 0);

static const void *ptrs[] KLP_DATA(test_klp_reloc_mod) = {
	klp_bad,
};

static void livepatch_test_klp_reloc_mod_report(void)
{
	pr_info("%s: %p\n", __func__, READ_ONCE(ptrs[0]));
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_reloc_mod_report",
		.new_func = livepatch_test_klp_reloc_mod_report,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_reloc_mod",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int test_klp_reloc_bad_cross_init(void)
{
	return klp_enable_patch(&patch);
}

static void test_klp_reloc_bad_cross_exit(void)
{
}

module_init(test_klp_reloc_bad_cross_init);
module_exit(test_klp_reloc_bad_cross_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch test: faulty klp relocation");
