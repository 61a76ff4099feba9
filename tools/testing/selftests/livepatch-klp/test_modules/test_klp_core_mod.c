// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of the module test_klp_core_target, loaded before or after it:
 * a() returns "A" and d() "D" while the patch applies.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static const char *test_klp_core_mod_a(void)
{
	return "A";
}

static const char *test_klp_core_mod_d(void)
{
	return "D";
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_core_target_a",
		.new_func = test_klp_core_mod_a,
	},
	{
		.old_name = "test_klp_core_target_d",
		.new_func = test_klp_core_mod_d,
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

static int __init test_klp_core_mod_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_mod_exit(void)
{
}

module_init(test_klp_core_mod_init);
module_exit(test_klp_core_mod_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: patch of a module object");
