// SPDX-License-Identifier: GPL-2.0
/*
 * Target module of the livepatch core selftests: functions that the test
 * livepatches replace, and what makes their effect visible from the shell.
 *
 * - /sys/module/test_klp_core_target/parameters/state reads
 *   "a b c d": the values returned by test_klp_core_target_{a,b,c,d}(),
 *   which the livepatches change;
 * - writing 1 to .../parameters/busy starts a work item that sits in
 *   test_klp_core_target_busy() until .../parameters/block is 0, so that
 *   a transition cannot move that worker (it is on the stack of whatever
 *   version of the function was current when the work started);
 * - .../parameters/seen reads what test_klp_core_target_a() last returned
 *   to that worker while it waited ("-" for nothing yet; a write clears it).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/delay.h>
#include <linux/workqueue.h>

#include "test_klp_core_target.h"

/*
 * The functions have external linkage and read their result with a
 * volatile access, so that the compiler neither folds their results into
 * the callers nor changes their arguments: the livepatches must see the
 * calls.
 */
static const char * const values[] = { "a", "b", "c", "d" };

noinline const char *test_klp_core_target_a(void)
{
	return READ_ONCE(values[0]);
}

noinline const char *test_klp_core_target_b(void)
{
	return READ_ONCE(values[1]);
}

noinline const char *test_klp_core_target_c(void)
{
	return READ_ONCE(values[2]);
}

noinline const char *test_klp_core_target_d(void)
{
	return READ_ONCE(values[3]);
}

/*
 * Waits while w->block is set, calling w->probe() every 20 ms.  The
 * livepatches replace it by a function of the same behaviour that logs
 * under its own module's name.
 */
noinline void test_klp_core_target_busy(struct test_klp_core_worker *w)
{
	pr_info("original busy function: enter\n");
	while (READ_ONCE(w->block)) {
		WRITE_ONCE(w->seen, w->probe());
		msleep(20);
	}
	pr_info("original busy function: exit\n");
}

/* Called through a pointer: ftrace sees the call all the same. */
static struct test_klp_core_worker worker = {
	.probe = test_klp_core_target_a,
};

module_param_named(block, worker.block, bool, 0644);
MODULE_PARM_DESC(block, "keep the busy worker waiting (default: false)");

static void busy_work_fn(struct work_struct *work)
{
	test_klp_core_target_busy(&worker);
}

static DECLARE_WORK(busy_work, busy_work_fn);

static int busy_set(const char *val, const struct kernel_param *kp)
{
	bool start;
	int ret;

	ret = kstrtobool(val, &start);
	if (ret)
		return ret;
	if (!start)
		return 0;
	WRITE_ONCE(worker.seen, NULL);
	if (!schedule_work(&busy_work))
		return -EBUSY;
	return 0;
}

static int busy_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", work_busy(&busy_work) ? 1 : 0);
}

static const struct kernel_param_ops busy_ops = {
	.set = busy_set,
	.get = busy_get,
};

module_param_cb(busy, &busy_ops, NULL, 0644);
MODULE_PARM_DESC(busy, "write 1 to start the busy worker");

static int seen_set(const char *val, const struct kernel_param *kp)
{
	WRITE_ONCE(worker.seen, NULL);
	return 0;
}

static int seen_get(char *buf, const struct kernel_param *kp)
{
	const char *seen = READ_ONCE(worker.seen);

	return sysfs_emit(buf, "%s\n", seen ? seen : "-");
}

static const struct kernel_param_ops seen_ops = {
	.set = seen_set,
	.get = seen_get,
};

module_param_cb(seen, &seen_ops, NULL, 0644);
MODULE_PARM_DESC(seen, "what a() last returned to the busy worker");

static int state_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s %s %s %s\n", test_klp_core_target_a(),
			  test_klp_core_target_b(), test_klp_core_target_c(),
			  test_klp_core_target_d());
}

static const struct kernel_param_ops state_ops = {
	.get = state_get,
};

module_param_cb(state, &state_ops, NULL, 0444);
MODULE_PARM_DESC(state, "the values of the patchable functions");

static int __init test_klp_core_target_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit test_klp_core_target_exit(void)
{
	WRITE_ONCE(worker.block, false);
	flush_work(&busy_work);
	pr_info("unloaded\n");
}

module_init(test_klp_core_target_init);
module_exit(test_klp_core_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch core test: target module");
