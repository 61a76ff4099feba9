/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The body of the test_klp_states_* livepatch test modules.
 *
 * Each test_klp_states_<x>.c includes this file, so that the test scripts
 * can stack livepatches and replace one by another under distinct names.
 * Module parameters choose what a livepatch carries:
 *
 *   states=ID[,ID...]	the ids of its states, in array order (default: 1)
 *   block=ID[,...]	states with block_disable
 *   shadow=ID[,...]	states with is_shadow: their pre_patch allocates a
 *			shadow variable of their id, which records the
 *			module that allocated it
 *   legacy=ID[,...]	states without any callback (the 6.12 kind)
 *   fail=ID		the state whose pre_patch fails with -ENODEV
 *   obj_fail=1		the pre_patch callback of the test_klp_callbacks_mod
 *			object fails with -ENODEV
 *   version=N		the version of every state (default: 0)
 *   replace=1		atomic replace
 *   busy=1		also patch busymod_work_func() of
 *			test_klp_callbacks_busy, so that a busy worker of
 *			that module keeps the patching transition pending
 *   extra_shadow=ID[,...] shadow variables allocated at load, reported and
 *			freed at unload, whatever the states do
 *   hold=1 (writable)	readers of /proc/cmdline wait in the new
 *			cmdline_proc_show() while it is set: that keeps an
 *			unpatching transition pending; "holding" counts them
 *
 * Every state callback logs "<module>: <callback> state <id>"; the shadow
 * destructor logs the id and the module that allocated the variable.  The
 * livepatch also has a klp_object for test_klp_callbacks_mod with per-object
 * (legacy) callbacks that log "<module>: <callback>_callback: <object>".
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>

#define KLP_STATES_MAX	4

/* Shadow variables hang off an object that every test module sees. */
#define KLP_STATES_SHADOW_OBJ	((void *)&init_task)

static unsigned long state_ids[KLP_STATES_MAX] = { 1 };
static int nr_state_ids = 1;
module_param_array_named(states, state_ids, ulong, &nr_state_ids, 0444);
MODULE_PARM_DESC(states, "ids of the livepatch's states (default: 1)");

static unsigned long block[KLP_STATES_MAX];
static int nr_block;
module_param_array(block, ulong, &nr_block, 0444);
MODULE_PARM_DESC(block, "ids of the states with block_disable");

static unsigned long shadow[KLP_STATES_MAX];
static int nr_shadow;
module_param_array(shadow, ulong, &nr_shadow, 0444);
MODULE_PARM_DESC(shadow, "ids of the states with is_shadow");

static unsigned long legacy[KLP_STATES_MAX];
static int nr_legacy;
module_param_array(legacy, ulong, &nr_legacy, 0444);
MODULE_PARM_DESC(legacy, "ids of the states without callbacks");

static unsigned long fail;
module_param(fail, ulong, 0444);
MODULE_PARM_DESC(fail, "id of the state whose pre_patch fails (default: none)");

static bool obj_fail;
module_param(obj_fail, bool, 0444);
MODULE_PARM_DESC(obj_fail, "the object pre_patch callback fails (default: false)");

static unsigned int version;
module_param(version, uint, 0444);
MODULE_PARM_DESC(version, "version of the states (default: 0)");

static bool replace;
module_param(replace, bool, 0444);
MODULE_PARM_DESC(replace, "atomic replace (default: false)");

static bool busy;
module_param(busy, bool, 0444);
MODULE_PARM_DESC(busy, "patch test_klp_callbacks_busy too (default: false)");

static unsigned long extra_shadow[KLP_STATES_MAX];
static int nr_extra_shadow;
module_param_array(extra_shadow, ulong, &nr_extra_shadow, 0444);
MODULE_PARM_DESC(extra_shadow, "ids of shadow variables allocated at load, freed at unload");

static bool hold;
module_param(hold, bool, 0644);
MODULE_PARM_DESC(hold, "hold readers of /proc/cmdline in the new function (default: false)");

static atomic_t holding = ATOMIC_INIT(0);

static int klp_states_set_holding(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static int klp_states_get_holding(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&holding));
}

static const struct kernel_param_ops klp_states_holding_ops = {
	.set = klp_states_set_holding,
	.get = klp_states_get_holding,
};
module_param_cb(holding, &klp_states_holding_ops, NULL, 0444);
MODULE_PARM_DESC(holding, "readers of /proc/cmdline held now");

static struct klp_patch patch;
static struct klp_state states[KLP_STATES_MAX + 1];

struct klp_states_tag {
	unsigned long id;
	char owner[MODULE_NAME_LEN];
};

static bool klp_states_listed(const unsigned long *ids, int nr, unsigned long id)
{
	int i;

	for (i = 0; i < nr; i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

/* Logs a state callback, and whether the core passed a foreign patch. */
static void klp_states_log(const char *callback, struct klp_patch *p,
			   struct klp_state *s, const char *what)
{
	bool own = p == &patch && s >= states && s < states + nr_state_ids;

	pr_info("%s state %lu%s%s\n", callback, s->id, what,
		own ? "" : " (called with another livepatch's patch or state)");
}

static int klp_states_tag_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	struct klp_states_tag *tag = shadow_data;

	tag->id = *(unsigned long *)ctor_data;
	strscpy(tag->owner, KBUILD_MODNAME, sizeof(tag->owner));
	return 0;
}

static void klp_states_tag_dtor(void *obj, void *shadow_data)
{
	struct klp_states_tag *tag = shadow_data;

	pr_info("shadow_dtor: shadow variable %lu of %s\n", tag->id, tag->owner);
}

static int klp_states_pre_patch(struct klp_patch *p, struct klp_state *s)
{
	struct klp_states_tag *tag;

	if (s->id == fail) {
		klp_states_log("pre_patch", p, s, ": -ENODEV");
		return -ENODEV;
	}
	klp_states_log("pre_patch", p, s, "");
	if (!s->is_shadow)
		return 0;

	tag = klp_shadow_get(KLP_STATES_SHADOW_OBJ, s->id);
	if (tag) {
		pr_info("shadow variable %lu of %s is still there\n",
			tag->id, tag->owner);
		return 0;
	}
	if (!klp_shadow_alloc(KLP_STATES_SHADOW_OBJ, s->id, sizeof(*tag),
			      GFP_KERNEL, klp_states_tag_ctor, &s->id))
		return -ENOMEM;
	return 0;
}

static void klp_states_post_patch(struct klp_patch *p, struct klp_state *s)
{
	klp_states_log("post_patch", p, s, "");
}

static void klp_states_pre_unpatch(struct klp_patch *p, struct klp_state *s)
{
	klp_states_log("pre_unpatch", p, s, "");
}

static void klp_states_post_unpatch(struct klp_patch *p, struct klp_state *s)
{
	klp_states_log("post_unpatch", p, s, "");
}

/* Per-object (legacy) callbacks of test_klp_callbacks_mod */
static int klp_states_obj_pre_patch(struct klp_object *obj)
{
	pr_info("pre_patch_callback: %s%s\n", obj->name,
		obj_fail ? ": -ENODEV" : "");
	return obj_fail ? -ENODEV : 0;
}

static void klp_states_obj_post_patch(struct klp_object *obj)
{
	pr_info("post_patch_callback: %s\n", obj->name);
}

static void klp_states_obj_pre_unpatch(struct klp_object *obj)
{
	pr_info("pre_unpatch_callback: %s\n", obj->name);
}

static void klp_states_obj_post_unpatch(struct klp_object *obj)
{
	pr_info("post_unpatch_callback: %s\n", obj->name);
}

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	if (READ_ONCE(hold)) {
		atomic_inc(&holding);
		while (READ_ONCE(hold))
			msleep(20);
		atomic_dec(&holding);
	}
	seq_printf(m, "%s: this has been live patched\n", KBUILD_MODNAME);
	return 0;
}

static void livepatch_busymod_work_func(struct work_struct *work)
{
	pr_info("the new busymod_work_func() runs\n");
}

static struct klp_func vmlinux_funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct klp_func no_funcs[] = {
	{ }
};

static struct klp_func busymod_funcs[] = {
	{
		.old_name = "busymod_work_func",
		.new_func = livepatch_busymod_work_func,
	}, { }
};

#define KLP_STATES_BUSY_OBJ	2

static struct klp_object objs[] = {
	{
		.name = NULL,	/* vmlinux */
		.funcs = vmlinux_funcs,
	}, {
		.name = "test_klp_callbacks_mod",
		.funcs = no_funcs,
		.callbacks = {
			.pre_patch = klp_states_obj_pre_patch,
			.post_patch = klp_states_obj_post_patch,
			.pre_unpatch = klp_states_obj_pre_unpatch,
			.post_unpatch = klp_states_obj_post_unpatch,
		},
	}, {
		/* KLP_STATES_BUSY_OBJ, dropped unless busy=1 */
		.name = "test_klp_callbacks_busy",
		.funcs = busymod_funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.states = states,
};

static void klp_states_build(void)
{
	int i;

	for (i = 0; i < nr_state_ids; i++) {
		struct klp_state *s = &states[i];

		s->id = state_ids[i];
		s->version = version;
		s->block_disable = klp_states_listed(block, nr_block, s->id);
		s->is_shadow = klp_states_listed(shadow, nr_shadow, s->id);
		if (klp_states_listed(legacy, nr_legacy, s->id))
			continue;
		s->callbacks.pre_patch = klp_states_pre_patch;
		s->callbacks.post_patch = klp_states_post_patch;
		s->callbacks.pre_unpatch = klp_states_pre_unpatch;
		s->callbacks.post_unpatch = klp_states_post_unpatch;
		if (s->is_shadow)
			s->callbacks.shadow_dtor = klp_states_tag_dtor;
	}
	patch.replace = replace;
	if (!busy)
		memset(&objs[KLP_STATES_BUSY_OBJ], 0, sizeof(objs[0]));
}

static int klp_states_init(void)
{
	int i, ret;

	klp_states_build();
	for (i = 0; i < nr_extra_shadow; i++) {
		if (!klp_shadow_alloc(KLP_STATES_SHADOW_OBJ, extra_shadow[i],
				      sizeof(struct klp_states_tag), GFP_KERNEL,
				      klp_states_tag_ctor, &extra_shadow[i])) {
			ret = -ENOMEM;
			goto out_free;
		}
	}

	ret = klp_enable_patch(&patch);
	if (!ret)
		return 0;

out_free:
	while (--i >= 0)
		klp_shadow_free(KLP_STATES_SHADOW_OBJ, extra_shadow[i], NULL);
	return ret;
}

static void klp_states_exit(void)
{
	struct klp_states_tag *tag;
	int i;

	for (i = 0; i < nr_extra_shadow; i++) {
		tag = klp_shadow_get(KLP_STATES_SHADOW_OBJ, extra_shadow[i]);
		if (tag)
			pr_info("exit: shadow variable %lu of %s is still there\n",
				tag->id, tag->owner);
		else
			pr_info("exit: shadow variable %lu is gone\n",
				extra_shadow[i]);
		klp_shadow_free(KLP_STATES_SHADOW_OBJ, extra_shadow[i],
				klp_states_tag_dtor);
	}
}

module_init(klp_states_init);
module_exit(klp_states_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch test: states that own callbacks and shadow variables");
