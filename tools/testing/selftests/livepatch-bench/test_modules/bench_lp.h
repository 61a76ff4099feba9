/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One benchmark livepatch of the functions of test_klp_bench, included by the
 * generated test_klp_bench_lp*.c, which define:
 *
 *   BENCH_LP_LIST     the list of the patched functions (BENCH_LIST_<n>)
 *   BENCH_LP_REPLACE  1 for an atomic-replace patch
 *   BENCH_LP_BLOCK    1 to also patch bench_block_fn
 *   BENCH_LP_SALT     what the new functions add, to tell them apart
 *
 * The init function times klp_enable_patch() (ktime_get_ns(): executed
 * instructions under QEMU -icount shift=0) and exposes it as the read-only
 * parameter enable_ns.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/timekeeping.h>
#include "bench_list.h"

static unsigned long enable_ns;
module_param(enable_ns, ulong, 0444);
MODULE_PARM_DESC(enable_ns, "duration of klp_enable_patch() in ns");

#define BENCH_LP_FN(n)							\
	static noinline unsigned long lp_bench_fn_##n(unsigned long x)	\
	{								\
		return x * 3 + (n) + BENCH_LP_SALT;			\
	}

BENCH_LP_LIST(BENCH_LP_FN)

#define BENCH_LP_FUNC(n)				\
	{						\
		.old_name = "bench_fn_" #n,		\
		.new_func = lp_bench_fn_##n,		\
	},

#if BENCH_LP_BLOCK
static noinline void lp_bench_block_fn(void)
{
}
#endif

static struct klp_func funcs[] = {
	BENCH_LP_LIST(BENCH_LP_FUNC)
#if BENCH_LP_BLOCK
	{
		.old_name = "bench_block_fn",
		.new_func = lp_bench_block_fn,
	},
#endif
	{ }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_bench",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.replace = BENCH_LP_REPLACE,
};

static int __init bench_lp_init(void)
{
	u64 t0 = ktime_get_ns();
	int ret = klp_enable_patch(&patch);

	enable_ns = ktime_get_ns() - t0;
	return ret;
}

static void __exit bench_lp_exit(void)
{
}

module_init(bench_lp_init);
module_exit(bench_lp_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch benchmark: a patch of the test_klp_bench functions");
MODULE_INFO(livepatch, "Y");
