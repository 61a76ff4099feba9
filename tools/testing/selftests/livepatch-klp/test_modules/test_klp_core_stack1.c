// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of test_klp_core_target, the first of three stacked patches:
 * a() returns "a1" and the function that all three patch, d(), "d1".
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static const char *test_klp_core_stack1_a(void)
{
	return "a1";
}

static const char *test_klp_core_stack1_d(void)
{
	return "d1";
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_core_target_a",
		.new_func = test_klp_core_stack1_a,
	},
	{
		.old_name = "test_klp_core_target_d",
		.new_func = test_klp_core_stack1_d,
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

static int __init test_klp_core_stack1_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_stack1_exit(void)
{
}

module_init(test_klp_core_stack1_init);
module_exit(test_klp_core_stack1_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: first stacked patch");
