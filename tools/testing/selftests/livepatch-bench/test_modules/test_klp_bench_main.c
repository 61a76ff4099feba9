// SPDX-License-Identifier: GPL-2.0
/*
 * test_klp_bench - the driver of the livepatch benchmarks (scripts/klp bench).
 *
 * The module holds the functions that the benchmark livepatches patch
 * (bench_fn_0 .. bench_fn_999 in test_klp_bench_funcs.c, and bench_block_fn)
 * and runs timed loops on request through debugfs:
 *
 *   echo "CMD [N]" >/sys/kernel/debug/test_klp_bench/ctl
 *   cat /sys/kernel/debug/test_klp_bench/ctl   # ns taken by the last CMD
 *
 *   call N           N calls of bench_fn_0(), by chunks of 1,000 with
 *                    interrupts off (ticks are not counted)
 *   shadow_fill N    allocate shadow variables (8 bytes) until N are live
 *   shadow_alloc N   allocate N more (timed), then free them (not timed)
 *   shadow_get N     look up N live variables, spread over all of them
 *   shadow_free N    free N live variables (timed), allocate them again
 *   shadow_free_all  klp_shadow_free_all() of every live variable
 *   sleepers N       start N kthreads that sleep outside patched functions
 *   busy N           start N kthreads (SCHED_IDLE) that loop calling
 *                    bench_fn_999() and cond_resched()
 *   block            start a kthread that sleeps inside bench_block_fn(),
 *                    which keeps a transition of a patch of it open
 *   stop             stop every kthread started
 *
 * Times come from ktime_get_ns(): under QEMU -icount shift=0 one ns is one
 * executed guest instruction.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <uapi/linux/sched/types.h>
#include "bench.h"

#define BENCH_SHADOW_ID	0x6b6c7062UL
#define BENCH_CHUNK	1000

static DEFINE_MUTEX(bench_mutex);
static struct dentry *bench_dir;
static u64 bench_result;
static unsigned long bench_sink;
static unsigned long shadow_live;

static struct task_struct **bench_tasks;
static unsigned long bench_ntasks;

static DECLARE_WAIT_QUEUE_HEAD(block_wq);
static bool block_release;
/* Ends every loop at once: stopping 1,000 busy tasks one by one is slow. */
static bool tasks_stop;

/* Sleeps until released: a stack that holds bench_block_fn. */
noinline void bench_block_fn(void)
{
	wait_event_interruptible(block_wq, READ_ONCE(block_release));
}

/*
 * The threads return on their own once tasks_stop is set; bench_stop_tasks()
 * holds a reference to each, so kthread_stop() is fine either way.
 */
static int bench_block_thread(void *data)
{
	while (!READ_ONCE(tasks_stop))
		bench_block_fn();
	return 0;
}

static int bench_sleeper(void *data)
{
	while (!READ_ONCE(tasks_stop)) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!READ_ONCE(tasks_stop))
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

static int bench_busy(void *data)
{
	struct sched_attr attr = {
		.size = sizeof(attr),
		.sched_policy = SCHED_IDLE,
	};
	unsigned long i = 0;

	/* The lowest weight: the measuring tasks still get the CPUs. */
	sched_setattr_nocheck(current, &attr);
	while (!READ_ONCE(tasks_stop)) {
		WRITE_ONCE(bench_sink, bench_fn_999(i++));
		cond_resched();
	}
	return 0;
}

static void bench_stop_tasks(void)
{
	unsigned long i;

	WRITE_ONCE(tasks_stop, true);
	WRITE_ONCE(block_release, true);
	wake_up_all(&block_wq);
	for (i = 0; i < bench_ntasks; i++)
		wake_up_process(bench_tasks[i]);
	for (i = 0; i < bench_ntasks; i++) {
		kthread_stop(bench_tasks[i]);
		put_task_struct(bench_tasks[i]);
	}
	kfree(bench_tasks);
	bench_tasks = NULL;
	bench_ntasks = 0;
}

static int bench_start_tasks(int (*fn)(void *), unsigned long n,
			     const char *name)
{
	struct task_struct **tasks;
	struct task_struct *t;
	unsigned long i;

	tasks = krealloc_array(bench_tasks, bench_ntasks + n, sizeof(*tasks),
			       GFP_KERNEL);
	if (!tasks)
		return -ENOMEM;
	bench_tasks = tasks;
	WRITE_ONCE(tasks_stop, false);
	for (i = 0; i < n; i++) {
		t = kthread_create(fn, NULL, "%s/%lu", name, i);
		if (IS_ERR(t))
			return PTR_ERR(t);
		get_task_struct(t);
		bench_tasks[bench_ntasks++] = t;
		wake_up_process(t);
	}
	return 0;
}

static u64 bench_call(unsigned long n)
{
	unsigned long done = 0, i, m, flags, sum = 0;
	u64 total = 0, t0;

	while (done < n) {
		m = min_t(unsigned long, n - done, BENCH_CHUNK);
		local_irq_save(flags);
		t0 = ktime_get_ns();
		for (i = 0; i < m; i++)
			sum += bench_fn_0(i);
		total += ktime_get_ns() - t0;
		local_irq_restore(flags);
		done += m;
		cond_resched();
	}
	WRITE_ONCE(bench_sink, sum);
	return total;
}

/* The objects are keys only: the core never dereferences them. */
static void *shadow_obj(unsigned long i)
{
	return (void *)(0x100000UL + i * 64);
}

static int shadow_alloc_range(unsigned long from, unsigned long to)
{
	unsigned long i;

	for (i = from; i < to; i++) {
		if (!klp_shadow_alloc(shadow_obj(i), BENCH_SHADOW_ID,
				      sizeof(unsigned long), GFP_KERNEL,
				      NULL, NULL))
			return -ENOMEM;
		if (!(i % 1024))
			cond_resched();
	}
	return 0;
}

static void shadow_free_range(unsigned long from, unsigned long to)
{
	unsigned long i;

	for (i = from; i < to; i++)
		klp_shadow_free(shadow_obj(i), BENCH_SHADOW_ID, NULL);
}

static int bench_shadow(const char *cmd, unsigned long n)
{
	unsigned long i, hits = 0;
	u64 t0 = ktime_get_ns();
	int ret = 0;

	if (!strcmp(cmd, "shadow_fill")) {
		if (n > shadow_live) {
			ret = shadow_alloc_range(shadow_live, n);
			shadow_live = n;
		}
	} else if (!strcmp(cmd, "shadow_alloc")) {
		ret = shadow_alloc_range(shadow_live, shadow_live + n);
		bench_result = ktime_get_ns() - t0;
		shadow_free_range(shadow_live, shadow_live + n);
		return ret;
	} else if (!strcmp(cmd, "shadow_get")) {
		if (!shadow_live)
			return -EINVAL;
		for (i = 0; i < n; i++)
			hits += !!klp_shadow_get(shadow_obj((i * 7919) % shadow_live),
						 BENCH_SHADOW_ID);
		if (hits != n)
			ret = -ENOENT;
	} else if (!strcmp(cmd, "shadow_free")) {
		if (n > shadow_live)
			return -EINVAL;
		shadow_free_range(shadow_live - n, shadow_live);
		bench_result = ktime_get_ns() - t0;
		return shadow_alloc_range(shadow_live - n, shadow_live);
	} else if (!strcmp(cmd, "shadow_free_all")) {
		klp_shadow_free_all(BENCH_SHADOW_ID, NULL);
		shadow_live = 0;
	} else {
		return -EINVAL;
	}
	bench_result = ktime_get_ns() - t0;
	return ret;
}

static int bench_cmd(const char *cmd, unsigned long n)
{
	if (!strcmp(cmd, "call")) {
		bench_result = bench_call(n);
		return 0;
	}
	if (!strncmp(cmd, "shadow_", 7))
		return bench_shadow(cmd, n);
	if (!strcmp(cmd, "sleepers"))
		return bench_start_tasks(bench_sleeper, n, "klp_bench_sleep");
	if (!strcmp(cmd, "busy"))
		return bench_start_tasks(bench_busy, n, "klp_bench_busy");
	if (!strcmp(cmd, "block")) {
		WRITE_ONCE(block_release, false);
		return bench_start_tasks(bench_block_thread, 1, "klp_bench_block");
	}
	if (!strcmp(cmd, "stop")) {
		bench_stop_tasks();
		return 0;
	}
	return -EINVAL;
}

static ssize_t bench_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	char buf[64], cmd[32];
	unsigned long n = 0;
	int ret;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	if (sscanf(buf, "%31s %lu", cmd, &n) < 1)
		return -EINVAL;
	mutex_lock(&bench_mutex);
	ret = bench_cmd(cmd, n);
	mutex_unlock(&bench_mutex);
	if (ret) {
		pr_err("%s %lu failed: %d\n", cmd, n, ret);
		return ret;
	}
	return count;
}

static ssize_t bench_read(struct file *file, char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	char buf[32];
	int len;

	mutex_lock(&bench_mutex);
	len = scnprintf(buf, sizeof(buf), "%llu\n", bench_result);
	mutex_unlock(&bench_mutex);
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static const struct file_operations bench_fops = {
	.owner = THIS_MODULE,
	.read = bench_read,
	.write = bench_write,
	.llseek = default_llseek,
};

static int __init bench_init(void)
{
	bench_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("ctl", 0600, bench_dir, NULL, &bench_fops);
	return 0;
}

static void __exit bench_exit(void)
{
	debugfs_remove_recursive(bench_dir);
	bench_stop_tasks();
	klp_shadow_free_all(BENCH_SHADOW_ID, NULL);
}

module_init(bench_init);
module_exit(bench_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch benchmark driver: timed calls, shadow variables, tasks");
