// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch test: klp relocations (test-relocs.sh).
 *
 * Reaches through klp relocations symbols that the module loader cannot
 * resolve: non-exported ones of vmlinux (the static constant ngroups_max,
 * the static function cmdline_proc_show() and, by its position, the
 * second of two static functions named proc_single_open()), written when
 * this module loads, and static ones of test_klp_reloc_mod, written when
 * that module comes and cleared when it goes.  The parameter "relocs"
 * shows where each one points; the init function and the replacement of
 * test_klp_reloc_mod_report() read through them.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>

#include "test_klp_reloc.h"

KLP_SYM(klp_ngroups_max, vmlinux, ngroups_max, 0);
KLP_SYM(klp_cmdline_proc_show, vmlinux, cmdline_proc_show, 0);
KLP_SYM(klp_proc_single_open2, vmlinux, proc_single_open, 2);
KLP_SYM(klp_mod_value, test_klp_reloc_mod, test_klp_reloc_mod_value, 0);
KLP_SYM(klp_mod_report, test_klp_reloc_mod, test_klp_reloc_mod_report, 0);

static const void *vmlinux_ptrs[] KLP_DATA(vmlinux) = {
	klp_ngroups_max,
	klp_cmdline_proc_show,
	klp_proc_single_open2,
};

static const char * const vmlinux_names[] = {
	"ngroups_max,0",
	"cmdline_proc_show,0",
	"proc_single_open,2",
};

static const void *mod_ptrs[] KLP_DATA(test_klp_reloc_mod) = {
	klp_mod_value,
	klp_mod_report,
};

static const char * const mod_names[] = {
	"test_klp_reloc_mod_value,0",
	"test_klp_reloc_mod_report,0",
};

/* One line per klp relocation: object, symbol,sympos, address. */
static int relocs_get(char *buf, const struct kernel_param *kp)
{
	int i, len = 0;

	for (i = 0; i < ARRAY_SIZE(vmlinux_ptrs); i++)
		len += sysfs_emit_at(buf, len, "vmlinux %s %016lx\n",
				     vmlinux_names[i],
				     (unsigned long)READ_ONCE(vmlinux_ptrs[i]));
	for (i = 0; i < ARRAY_SIZE(mod_ptrs); i++)
		len += sysfs_emit_at(buf, len, "test_klp_reloc_mod %s %016lx\n",
				     mod_names[i],
				     (unsigned long)READ_ONCE(mod_ptrs[i]));
	return len;
}

static const struct kernel_param_ops relocs_ops = {
	.get = relocs_get,
};

module_param_cb(relocs, &relocs_ops, NULL, 0400);
MODULE_PARM_DESC(relocs, "Where the klp relocations point");

static void livepatch_test_klp_reloc_mod_report(void)
{
	const int *value = READ_ONCE(mod_ptrs[0]);

	if (value)
		pr_info("%s: test_klp_reloc_mod_value = %#x\n", __func__,
			*value);
	else
		pr_info("%s: test_klp_reloc_mod_value not relocated\n",
			__func__);
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

static int test_klp_reloc_init(void)
{
	const int *ngroups_max = READ_ONCE(vmlinux_ptrs[0]);

	if (ngroups_max)
		pr_info("vmlinux ngroups_max = %d\n", *ngroups_max);
	else
		pr_info("vmlinux ngroups_max not relocated\n");
	return klp_enable_patch(&patch);
}

static void test_klp_reloc_exit(void)
{
}

module_init(test_klp_reloc_init);
module_exit(test_klp_reloc_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch test: klp relocations");
