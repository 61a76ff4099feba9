// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of test_klp_core_target, the third of three stacked patches:
 * c() returns "c3" and the function that all three patch, d(), "d3".
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static const char *test_klp_core_stack3_c(void)
{
	return "c3";
}

static const char *test_klp_core_stack3_d(void)
{
	return "d3";
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_core_target_c",
		.new_func = test_klp_core_stack3_c,
	},
	{
		.old_name = "test_klp_core_target_d",
		.new_func = test_klp_core_stack3_d,
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

static int __init test_klp_core_stack3_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_stack3_exit(void)
{
}

module_init(test_klp_core_stack3_init);
module_exit(test_klp_core_stack3_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: third stacked patch");
