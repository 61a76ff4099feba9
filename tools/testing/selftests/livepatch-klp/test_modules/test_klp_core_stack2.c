// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of test_klp_core_target, the second of three stacked patches:
 * b() returns "b2" and the function that all three patch, d(), "d2".
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static const char *test_klp_core_stack2_b(void)
{
	return "b2";
}

static const char *test_klp_core_stack2_d(void)
{
	return "d2";
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_core_target_b",
		.new_func = test_klp_core_stack2_b,
	},
	{
		.old_name = "test_klp_core_target_d",
		.new_func = test_klp_core_stack2_d,
	},
	{ }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_core_target",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_core_stack2_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_stack2_exit(void)
{
}

module_init(test_klp_core_stack2_init);
module_exit(test_klp_core_stack2_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: second stacked patch");
