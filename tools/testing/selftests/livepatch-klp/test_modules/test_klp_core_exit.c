// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of proc_flush_pid(), which release_task() calls after the task
 * left the task list.  A kernel thread is reaped by itself when it exits
 * (kthreadd ignores SIGCHLD), so it runs proc_flush_pid() in its own
 * do_exit(), where no walk of the tasks sees it any more.
 *
 * Writing 1 to the "exit_runner" parameter starts such a thread, named
 * klp_exit_run, which exits at once; this patch's proc_flush_pid() keeps
 * it running inside this module's code until 0 is written to the
 * parameter (or a minute passed).  It runs, calling cond_resched(), rather
 * than sleeps: the Rust core protects a patch's code from exiting tasks
 * that run or are preempted in it, not from ones that sleep there (see
 * test-exit.sh).  The replacement does not flush the /proc dentries of the
 * dead pid, which proc revalidates anyway: acceptable in a test.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/jiffies.h>

#define RUNNER "klp_exit_run"

static bool runner_released;

static void test_klp_core_exit_flush_pid(struct pid *pid)
{
	unsigned long timeout = jiffies + 60 * HZ;

	if (strcmp(current->comm, RUNNER))
		return;
	pr_info("%s runs in proc_flush_pid\n", RUNNER);
	while (!READ_ONCE(runner_released)) {
		if (time_after(jiffies, timeout)) {
			pr_info("%s: nobody released it\n", RUNNER);
			break;
		}
		cond_resched();
	}
	pr_info("%s leaves proc_flush_pid\n", RUNNER);
}

static int runner_fn(void *data)
{
	return 0;
}

static int exit_runner_set(const char *val, const struct kernel_param *kp)
{
	struct task_struct *t;
	bool start;
	int ret;

	ret = kstrtobool(val, &start);
	if (ret)
		return ret;
	if (!start) {
		WRITE_ONCE(runner_released, true);
		return 0;
	}
	WRITE_ONCE(runner_released, false);
	t = kthread_run(runner_fn, NULL, RUNNER);
	return PTR_ERR_OR_ZERO(t);
}

static const struct kernel_param_ops exit_runner_ops = {
	.set = exit_runner_set,
};
module_param_cb(exit_runner, &exit_runner_ops, NULL, 0200);
MODULE_PARM_DESC(exit_runner, "1: start a thread that exits in this patch, 0: let it go");

static struct klp_func funcs[] = {
	{
		.old_name = "proc_flush_pid",
		.new_func = test_klp_core_exit_flush_pid,
	},
	{ }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_core_exit_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_exit_exit(void)
{
}

module_init(test_klp_core_exit_init);
module_exit(test_klp_core_exit_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: a task exiting inside a patch");
