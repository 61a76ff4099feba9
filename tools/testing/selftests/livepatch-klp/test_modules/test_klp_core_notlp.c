// SPDX-License-Identifier: GPL-2.0
/*
 * A well-formed patch of cmdline_proc_show() in a module that is not marked
 * as a livepatch module (no MODULE_INFO(livepatch, "Y")): the core must
 * refuse it.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int test_klp_core_notlp_cmdline(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: this must not be patched\n", THIS_MODULE->name);
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = test_klp_core_notlp_cmdline,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_core_notlp_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_notlp_exit(void)
{
}

module_init(test_klp_core_notlp_init);
module_exit(test_klp_core_notlp_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch core test: patch in a module that is no livepatch");
