// SPDX-License-Identifier: GPL-2.0
/*
 * Atomic replace of test_klp_core_exit: the same proc_flush_pid() without
 * the sleep (see test_klp_core_exit.c).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static void test_klp_core_exit2_flush_pid(struct pid *pid)
{
}

static struct klp_func funcs[] = {
	{
		.old_name = "proc_flush_pid",
		.new_func = test_klp_core_exit2_flush_pid,
	},
	{ }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.replace = true,
};

static int __init test_klp_core_exit2_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_exit2_exit(void)
{
}

module_init(test_klp_core_exit2_init);
module_exit(test_klp_core_exit2_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: atomic replace of test_klp_core_exit");
