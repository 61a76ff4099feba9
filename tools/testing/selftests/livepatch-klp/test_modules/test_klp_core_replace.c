// SPDX-License-Identifier: GPL-2.0
/*
 * Atomic replace livepatch of test_klp_core_target that patches only b(),
 * returning "bR": every other function that the patches it replaces
 * changed goes back to its original code.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static const char *test_klp_core_replace_b(void)
{
	return "bR";
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_core_target_b",
		.new_func = test_klp_core_replace_b,
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
	.replace = true,
};

static int __init test_klp_core_replace_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_replace_exit(void)
{
}

module_init(test_klp_core_replace_init);
module_exit(test_klp_core_replace_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: atomic replace patch");
