/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Functions of klp_glue.c that the Rust livepatch core calls; their Rust
 * declarations are in kernel/livepatch/sys.rs.
 */
#ifndef _LIVEPATCH_KLP_GLUE_H
#define _LIVEPATCH_KLP_GLUE_H

#include <linux/completion.h>
#include <linux/ftrace.h>
#include <linux/sched.h>
#include <linux/workqueue.h>

/*
 * The start of a patched address (a site) as the ftrace handler sees it; the
 * Rust core's site (kernel/livepatch/ftrace.rs) begins with the same fields
 * and is their only writer, under klp_mutex.  @fast is where calls go while
 * the newest function of the site is not in transition: its new function,
 * or 0 for the original.  While it is in transition, @fast is
 * KLP_SITE_IN_TRANSITION and the calling task's patch state picks the
 * target in @trans, indexed by patch_state - KLP_TRANSITION_IDLE masked to
 * the size of the table, whose last entry (no patch state) stays 0: the
 * Rust core computes the whole table.
 */
struct klp_site_head {
	struct klp_site_head __rcu *next;
	unsigned long ip;
	unsigned long fast;
	unsigned long trans[4];
};

#define KLP_SITE_BITS		12
#define KLP_SITE_IN_TRANSITION	1UL

struct klp_site_head __rcu **klp_glue_site_bucket(unsigned long ip);

/* Defined in Rust. */
int klp_rust_init(void);
void klp_rust_transition_work(struct work_struct *work);

void klp_glue_cond_resched(bool enable);
struct task_struct *klp_glue_current(void);
struct ftrace_ops *klp_glue_fops(void);
bool klp_glue_patch_pending(struct task_struct *task);
void klp_glue_set_patch_pending(struct task_struct *task, bool pending);
bool klp_glue_test_and_clear_patch_pending(struct task_struct *task);
void klp_glue_preempt_disable(void);
void klp_glue_preempt_enable(void);
unsigned long *klp_glue_stack_entries(unsigned int *nr);
typedef bool (*klp_glue_task_fn_t)(struct task_struct *task, void *data);
typedef bool (*klp_glue_idle_fn_t)(struct task_struct *task, int cpu, bool online,
				 void *data);
void klp_glue_walk_tasks(klp_glue_task_fn_t fn, void *data);
void klp_glue_walk_idle_tasks(klp_glue_idle_fn_t fn, void *data);
void klp_glue_signal_task(struct task_struct *task);
void klp_glue_schedule_transition_work(unsigned long delay);
void klp_glue_init_work(struct work_struct *work, work_func_t fn);
void klp_glue_init_completion(struct completion *done);
bool klp_glue_schedule_work(struct work_struct *work);
void klp_glue_synchronize_rcu_tasks(void);
/*
 * The shadow variable table: a power-of-two array of buckets, each a chain of
 * variables linked through their next[@gen].  The Rust core
 * (kernel/livepatch/shadow.rs) is its only writer and publishes the table
 * and every link with release ordering.  To resize, it links every variable
 * into a new table through the other next[] as well, leaving the old
 * chains intact for the readers that still use the old table, publishes
 * the new table, and frees the old one after synchronize_rcu().  Readers
 * run under rcu_read_lock_sched(); variables are freed with kfree_rcu().
 * A variable begins with struct klp_shadow_node.
 */
struct klp_shadow_node {
	struct klp_shadow_node __rcu *next[2];
	void *obj;
	unsigned long id;
};

struct klp_shadow_table {
	struct klp_shadow_node __rcu **buckets;
	unsigned int bits;	/* log2 of the number of buckets */
	unsigned int gen;	/* which next[] the chains of this table use */
};

/* Defined in Rust. */
extern struct klp_shadow_table __rcu *klp_rust_shadow_table;
void klp_rust_shadow_resize(struct work_struct *work);

unsigned long klp_glue_shadow_index(unsigned int bits, void *obj,
				    unsigned long id);
struct klp_shadow_node *klp_glue_shadow_find(void *obj, unsigned long id);
void klp_glue_shadow_schedule_resize(void);
void klp_glue_resched(void);
unsigned long klp_glue_shadow_lock(void);
void klp_glue_shadow_unlock(unsigned long flags);
void klp_glue_debug(const char *msg);
void klp_try_switch_task(const char *msg);

#endif /* _LIVEPATCH_KLP_GLUE_H */
