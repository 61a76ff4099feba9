// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of test_klp_core_target for the transition tests: a() returns
 * "busy", and test_klp_core_target_busy() is replaced by a function that
 * waits (and probes a()) the same way but logs under this module's name,
 * so that the log shows which version a worker runs.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/delay.h>
#include <linux/livepatch.h>

#include "test_klp_core_target.h"

static const char *test_klp_core_busy_a(void)
{
	return "busy";
}

static void test_klp_core_busy_wait(struct test_klp_core_worker *w)
{
	pr_info("patched busy function: enter\n");
	while (READ_ONCE(w->block)) {
		WRITE_ONCE(w->seen, w->probe());
		msleep(20);
	}
	pr_info("patched busy function: exit\n");
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_core_target_a",
		.new_func = test_klp_core_busy_a,
	},
	{
		.old_name = "test_klp_core_target_busy",
		.new_func = test_klp_core_busy_wait,
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

static int __init test_klp_core_busy_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_busy_exit(void)
{
}

module_init(test_klp_core_busy_init);
module_exit(test_klp_core_busy_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: patch of a function a worker waits in");
