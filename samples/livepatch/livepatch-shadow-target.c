// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * livepatch-shadow-target.c - a module that leaks memory, the target of the
 *			       Rust shadow variable samples
 *
 * The module keeps a list of "dummies", driven through
 * /proc/livepatch_shadow_target: writing "alloc" allocates a dummy, writing
 * "free" frees the oldest one, reading lists them.  Each dummy gets a work
 * buffer when it is allocated, but shadow_target_dummy_alloc() forgets the
 * buffer's pointer, and the struct has no field to keep it: every dummy
 * leaks its buffer.
 *
 * rust_livepatch_shadow_fix1.rs fixes the leak without changing the
 * struct: it keeps the buffer in a shadow variable of the dummy, and frees
 * it with the dummy.  rust_livepatch_shadow_fix2.rs replaces fix1, keeps
 * its shadow variables and adds one, a count of how often each dummy was
 * shown.  See those files for their usage.
 *
 * Usage:
 *
 *   insmod livepatch-shadow-target.ko
 *   echo alloc > /proc/livepatch_shadow_target   # log: dummy 1 allocated
 *   cat /proc/livepatch_shadow_target            # dummy 1
 *   echo free > /proc/livepatch_shadow_target    # log: dummy 1 freed
 *                                                # (its buffer leaked)
 *   rmmod livepatch_shadow_target
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kmemleak.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#define DUMMY_BUF_SIZE	64

/*
 * The Rust livepatches repeat this layout (struct Dummy): keep them in
 * step.
 */
struct shadow_target_dummy {
	struct list_head list;
	unsigned long id;
};

static LIST_HEAD(dummies);
static DEFINE_MUTEX(dummies_lock);
static unsigned long last_id;

static noinline struct shadow_target_dummy *
shadow_target_dummy_alloc(unsigned long id)
{
	struct shadow_target_dummy *d;
	void *buf;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return NULL;
	d->id = id;

	/* The bug: the buffer's pointer is not kept anywhere. */
	buf = kzalloc(DUMMY_BUF_SIZE, GFP_KERNEL);
	if (!buf) {
		kfree(d);
		return NULL;
	}
	/*
	 * The leak is this sample's point: keep kmemleak quiet about it, so
	 * that a kmemleak scan after the selftests reports only leaks that
	 * nobody meant.  The fixes' buffers are not marked.
	 */
	kmemleak_not_leak(buf);

	pr_info("dummy %lu allocated\n", id);
	return d;
}

static noinline void shadow_target_dummy_free(struct shadow_target_dummy *d)
{
	pr_info("dummy %lu freed\n", d->id);
	kfree(d);
}

static noinline void shadow_target_dummy_show(struct seq_file *m,
					      struct shadow_target_dummy *d)
{
	seq_printf(m, "dummy %lu\n", d->id);
}

static int shadow_target_show(struct seq_file *m, void *v)
{
	struct shadow_target_dummy *d;

	mutex_lock(&dummies_lock);
	list_for_each_entry(d, &dummies, list)
		shadow_target_dummy_show(m, d);
	mutex_unlock(&dummies_lock);
	return 0;
}

static int shadow_target_open(struct inode *inode, struct file *file)
{
	return single_open(file, shadow_target_show, NULL);
}

static ssize_t shadow_target_write(struct file *file, const char __user *ubuf,
				   size_t count, loff_t *ppos)
{
	struct shadow_target_dummy *d;
	char cmd[16];
	size_t n = min(count, sizeof(cmd) - 1);
	int ret = 0;

	if (copy_from_user(cmd, ubuf, n))
		return -EFAULT;
	cmd[n] = '\0';

	mutex_lock(&dummies_lock);
	if (sysfs_streq(cmd, "alloc")) {
		d = shadow_target_dummy_alloc(last_id + 1);
		if (d) {
			last_id++;
			list_add_tail(&d->list, &dummies);
		} else {
			ret = -ENOMEM;
		}
	} else if (sysfs_streq(cmd, "free")) {
		d = list_first_entry_or_null(&dummies,
					     struct shadow_target_dummy, list);
		if (d) {
			list_del(&d->list);
			shadow_target_dummy_free(d);
		} else {
			ret = -ENOENT;
		}
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&dummies_lock);

	return ret ? ret : count;
}

static const struct proc_ops shadow_target_ops = {
	.proc_open	= shadow_target_open,
	.proc_read	= seq_read,
	.proc_write	= shadow_target_write,
	.proc_lseek	= seq_lseek,
	.proc_release	= single_release,
};

static int livepatch_shadow_target_init(void)
{
	if (!proc_create("livepatch_shadow_target", 0600, NULL,
			 &shadow_target_ops))
		return -ENOMEM;
	return 0;
}

static void livepatch_shadow_target_exit(void)
{
	struct shadow_target_dummy *d, *tmp;

	remove_proc_entry("livepatch_shadow_target", NULL);

	mutex_lock(&dummies_lock);
	list_for_each_entry_safe(d, tmp, &dummies, list) {
		list_del(&d->list);
		shadow_target_dummy_free(d);
	}
	mutex_unlock(&dummies_lock);
}

module_init(livepatch_shadow_target_init);
module_exit(livepatch_shadow_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch sample: a module that leaks, for the Rust shadow variable fixes");
