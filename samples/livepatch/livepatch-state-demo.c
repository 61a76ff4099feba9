// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * livepatch-state-demo.c - a livepatch state that owns its callbacks and
 *			    shadow variable
 *
 * The livepatch replaces cmdline_proc_show(): /proc/cmdline tells how often
 * it was read since the state was introduced.  The count is a shadow
 * variable that the state owns (is_shadow): it is created by the state's
 * pre_patch callback when the state is introduced, it survives an atomic
 * replace by livepatch-state-demo2 (which carries the same state, so no
 * callback runs), and it is freed through the state's shadow_dtor when the
 * last livepatch carrying the state goes away.
 *
 * Usage (the Rust livepatch core, CONFIG_LIVEPATCH_RUST):
 *
 *   insmod livepatch-state-demo.ko      # log: state 93 introduced
 *   cat /proc/cmdline                   # state demo v1: read 1 time(s)
 *   insmod livepatch-state-demo2.ko     # replaces v1; no callback runs
 *   cat /proc/cmdline                   # state demo v2: read 2 time(s)
 *   echo 0 > /sys/kernel/livepatch/livepatch_state_demo2/enabled
 *                                       # log: state 93 removed,
 *                                       #      count freed after 2 read(s)
 *   rmmod livepatch_state_demo2 livepatch_state_demo
 *
 * Loaded with block_disable=1, the livepatch cannot be disabled, nor
 * replaced by one that does not carry the state: the change it made is
 * declared impossible to undo.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>

#ifndef DEMO_VERSION
#define DEMO_VERSION	1
#define DEMO_REPLACE	false
#endif

#define DEMO_STATE_ID	93

/* The shadow variable hangs off a kernel object that every version sees. */
#define DEMO_SHADOW_OBJ	((void *)&init_task)

struct demo_count {
	atomic_t reads;
};

static bool block_disable;
module_param(block_disable, bool, 0444);
MODULE_PARM_DESC(block_disable, "the state cannot be undone (default: false)");

static int demo_pre_patch(struct klp_patch *patch, struct klp_state *state)
{
	if (!klp_shadow_alloc(DEMO_SHADOW_OBJ, state->id,
			      sizeof(struct demo_count), GFP_KERNEL,
			      NULL, NULL))
		return -ENOMEM;

	pr_info("state %lu introduced: counting reads of /proc/cmdline\n",
		state->id);
	return 0;
}

static void demo_post_unpatch(struct klp_patch *patch, struct klp_state *state)
{
	pr_info("state %lu removed\n", state->id);
}

static void demo_shadow_dtor(void *obj, void *shadow_data)
{
	struct demo_count *count = shadow_data;

	pr_info("count freed after %d read(s)\n", atomic_read(&count->reads));
}

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	struct demo_count *count;
	int reads = 0;

	count = klp_shadow_get(DEMO_SHADOW_OBJ, DEMO_STATE_ID);
	if (count)
		reads = atomic_inc_return(&count->reads);

	seq_printf(m, "state demo v%d: read %d time(s)\n", DEMO_VERSION, reads);
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_state states[] = {
	{
		.id = DEMO_STATE_ID,
		.is_shadow = true,
		.callbacks = {
			.pre_patch = demo_pre_patch,
			.post_unpatch = demo_post_unpatch,
			.shadow_dtor = demo_shadow_dtor,
		},
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.states = states,
	.replace = DEMO_REPLACE,
};

static int livepatch_state_demo_init(void)
{
	states[0].block_disable = block_disable;
	return klp_enable_patch(&patch);
}

static void livepatch_state_demo_exit(void)
{
}

module_init(livepatch_state_demo_init);
module_exit(livepatch_state_demo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch sample: a state with callbacks and a shadow variable");
MODULE_INFO(livepatch, "Y");
