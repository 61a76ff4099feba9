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
 *   to that worker while it waited ("-" for nothing yet; a write clears it);
 * - writing a CPU number to .../parameters/spin starts the spinner, a
 *   kthread bound to that CPU that calls test_klp_core_target_a() in a
 *   loop with cond_resched() in between (-1 stops it; reading gives its
 *   pid, or 0), and .../parameters/spin_seen reads what a() last returned
 *   to it.  It sleeps one jiffy a second only, as RCU Tasks (which ftrace
 *   and the cores wait for) needs a voluntary context switch: it is on its
 *   CPU almost whenever a transition looks at it, so that the
 *   cond_resched() hook is what switches it.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/pid.h>
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

static struct task_struct *spinner;
static const char *spin_seen;

static int spin_fn(void *unused)
{
	unsigned long rest = jiffies + HZ;

	while (!kthread_should_stop()) {
		WRITE_ONCE(spin_seen, test_klp_core_target_a());
		cond_resched();
		if (time_after(jiffies, rest)) {
			schedule_timeout_uninterruptible(1);
			rest = jiffies + HZ;
		}
	}
	return 0;
}

static int spin_set(const char *val, const struct kernel_param *kp)
{
	struct task_struct *t;
	int cpu, ret;

	ret = kstrtoint(val, 0, &cpu);
	if (ret)
		return ret;
	if (cpu < 0) {
		if (spinner)
			kthread_stop(spinner);
		spinner = NULL;
		return 0;
	}
	if (spinner)
		return -EBUSY;
	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	t = kthread_create_on_cpu(spin_fn, NULL, cpu, "klp_spin/%u");
	if (IS_ERR(t))
		return PTR_ERR(t);
	spinner = t;
	wake_up_process(t);
	return 0;
}

static int spin_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", spinner ? task_pid_nr(spinner) : 0);
}

static const struct kernel_param_ops spin_ops = {
	.set = spin_set,
	.get = spin_get,
};
module_param_cb(spin, &spin_ops, NULL, 0644);
MODULE_PARM_DESC(spin, "write a CPU number to start the spinner there, -1 to stop it");

static int spin_seen_get(char *buf, const struct kernel_param *kp)
{
	const char *seen = READ_ONCE(spin_seen);

	return sysfs_emit(buf, "%s\n", seen ? seen : "-");
}

static const struct kernel_param_ops spin_seen_ops = {
	.get = spin_seen_get,
};
module_param_cb(spin_seen, &spin_seen_ops, NULL, 0444);
MODULE_PARM_DESC(spin_seen, "what a() last returned to the spinner");

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
	if (spinner)
		kthread_stop(spinner);
	pr_info("unloaded\n");
}

module_init(test_klp_core_target_init);
module_exit(test_klp_core_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch core test: target module");
