// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * C glue of the Rust livepatch core (klp.rs).
 *
 * Only what Rust cannot express lives here: the exports of the C entry
 * points that the Rust core defines, the static key of the cond_resched
 * hook, per-CPU data, notrace wrappers of inline helpers used on the ftrace
 * and task-switch paths, and the dynamic-debug call sites, so that dynamic
 * debug selects the core's debug messages by file and function as it does
 * for the C core.  The prototypes are in klp_glue.h and, for Rust, in
 * kernel/livepatch/sys.rs.
 */

#define pr_fmt(fmt) "livepatch: " fmt

#include <linux/cpu.h>
#include <linux/ftrace.h>
#include <linux/hash.h>
#include <linux/init.h>
#include <linux/irq_work.h>
#include <linux/livepatch.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/moduleloader.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/static_call.h>
#include <linux/workqueue.h>

#include "klp_glue.h"

EXPORT_SYMBOL_GPL(klp_enable_patch);
EXPORT_SYMBOL_GPL(klp_shadow_get);
EXPORT_SYMBOL_GPL(klp_shadow_alloc);
EXPORT_SYMBOL_GPL(klp_shadow_get_or_alloc);
EXPORT_SYMBOL_GPL(klp_shadow_free);
EXPORT_SYMBOL_GPL(klp_shadow_free_all);
EXPORT_SYMBOL_GPL(klp_get_state);
EXPORT_SYMBOL_GPL(klp_get_prev_state);
EXPORT_SYMBOL(__klp_sched_try_switch);

/* The mutex that serializes every change of the livepatch world. */
DEFINE_MUTEX(klp_mutex);

/* Retries of a transition whose stragglers did not switch yet. */
static DECLARE_DELAYED_WORK(klp_transition_work, klp_rust_transition_work);

#define KLP_MAX_STACK_ENTRIES 100
static DEFINE_PER_CPU(unsigned long[KLP_MAX_STACK_ENTRIES], klp_stack_entries);

#if defined(CONFIG_PREEMPT_DYNAMIC) && defined(CONFIG_HAVE_PREEMPT_DYNAMIC_CALL)
void klp_glue_cond_resched(bool enable)
{
	if (enable)
		sched_dynamic_klp_enable();
	else
		sched_dynamic_klp_disable();
}
#else
DEFINE_STATIC_KEY_FALSE(klp_sched_try_switch_key);
EXPORT_SYMBOL(klp_sched_try_switch_key);

void klp_glue_cond_resched(bool enable)
{
	if (enable)
		static_branch_enable(&klp_sched_try_switch_key);
	else
		static_branch_disable(&klp_sched_try_switch_key);
}
#endif

/* --- the ftrace handler and the task switch: notrace, no locks --------- */

notrace struct task_struct *klp_glue_current(void)
{
	return current;
}

/* The sites, by address: singly linked buckets, read under RCU-sched. */
static struct klp_site_head __rcu *klp_glue_sites[1 << KLP_SITE_BITS];

notrace struct klp_site_head __rcu **klp_glue_site_bucket(unsigned long ip)
{
	return &klp_glue_sites[hash_long(ip, KLP_SITE_BITS)];
}

/*
 * Where the calling task's calls go while the newest function of @site is
 * in transition.  The caller read @site->fast with acquire ordering: the
 * task's state is read after it, as the C core reads it after
 * func->transition.  The mask keeps the index in the table without a
 * branch (a state out of range would get the original function).
 */
static __always_inline unsigned long
klp_glue_trans_target(struct klp_site_head *site)
{
	unsigned int i = READ_ONCE(current->patch_state) - KLP_TRANSITION_IDLE;

	BUILD_BUG_ON(!is_power_of_2(ARRAY_SIZE(site->trans)));
	return READ_ONCE(site->trans[i & (ARRAY_SIZE(site->trans) - 1)]);
}

/*
 * The ftrace handler of every patched function.  The recursion lock also
 * disables preemption, which makes the handler an RCU-sched reader of the
 * sites.  The lookup and the reads of the targets that the Rust core
 * computed for the site are here, inline, because a call into Rust would
 * cost more than they do.  No site: it went away while this call was on
 * its way, and the original function runs.
 */
static notrace void klp_glue_ftrace_handler(unsigned long ip,
					    unsigned long parent_ip,
					    struct ftrace_ops *fops,
					    struct ftrace_regs *fregs)
{
	struct klp_site_head *site;
	unsigned long target;
	int bit;

	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (WARN_ON_ONCE(bit < 0))
		return;
	site = rcu_dereference_raw(*klp_glue_site_bucket(ip));
	while (site && site->ip != ip)
		site = rcu_dereference_raw(site->next);
	if (site) {
		/* Pairs with the release store of the Rust core. */
		target = smp_load_acquire(&site->fast);
		if (likely(target > KLP_SITE_IN_TRANSITION)) {
			ftrace_regs_set_instruction_pointer(fregs, target);
		} else if (target == KLP_SITE_IN_TRANSITION) {
			target = klp_glue_trans_target(site);
			if (target)
				ftrace_regs_set_instruction_pointer(fregs, target);
		}
	}
	ftrace_test_recursion_unlock(bit);
}

/*
 * One ftrace_ops for all patched functions; its filter holds their
 * addresses.  Being static (not FTRACE_OPS_FL_DYNAMIC), it never needs the
 * RCU-tasks waits that ftrace does before freeing dynamic ops.
 */
static struct ftrace_ops klp_glue_ops = {
	.func = klp_glue_ftrace_handler,
	.flags = FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT
#ifndef CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS
		 | FTRACE_OPS_FL_SAVE_REGS
#endif
		 ,
};

struct ftrace_ops *klp_glue_fops(void)
{
	return &klp_glue_ops;
}

notrace bool klp_glue_patch_pending(struct task_struct *task)
{
	return test_tsk_thread_flag(task, TIF_PATCH_PENDING);
}

notrace void klp_glue_set_patch_pending(struct task_struct *task, bool pending)
{
	if (pending)
		set_tsk_thread_flag(task, TIF_PATCH_PENDING);
	else
		clear_tsk_thread_flag(task, TIF_PATCH_PENDING);
}

notrace bool klp_glue_test_and_clear_patch_pending(struct task_struct *task)
{
	return test_and_clear_tsk_thread_flag(task, TIF_PATCH_PENDING);
}

notrace void klp_glue_preempt_disable(void)
{
	preempt_disable_notrace();
}

notrace void klp_glue_preempt_enable(void)
{
	preempt_enable_notrace();
}

notrace unsigned long *klp_glue_stack_entries(unsigned int *nr)
{
	*nr = KLP_MAX_STACK_ENTRIES;
	return this_cpu_ptr(klp_stack_entries);
}

/* Architectures without it have nothing to clear (as in the C core). */
void __weak clear_relocate_add(Elf_Shdr *sechdrs, const char *strtab,
			       unsigned int symindex, unsigned int relsec,
			       struct module *me)
{
}

/* --- helpers of the slow paths ------------------------------------------ */

/* Calls fn on every thread, under the tasklist lock; stops when fn is false. */
void klp_glue_walk_tasks(klp_glue_task_fn_t fn, void *data)
{
	struct task_struct *g, *task;

	read_lock(&tasklist_lock);
	for_each_process_thread(g, task)
		if (!fn(task, data))
			goto out;
out:
	read_unlock(&tasklist_lock);
}

/* Calls fn on the idle task of every possible CPU, with CPU hotplug held. */
void klp_glue_walk_idle_tasks(klp_glue_idle_fn_t fn, void *data)
{
	unsigned int cpu;

	cpus_read_lock();
	for_each_possible_cpu(cpu)
		if (!fn(idle_task(cpu), cpu, cpu_online(cpu), data))
			break;
	cpus_read_unlock();
}

/* Wakes a task that sleeps in the kernel so that it crosses a switch point. */
void klp_glue_signal_task(struct task_struct *task)
{
	if (task->flags & PF_KTHREAD)
		wake_up_state(task, TASK_INTERRUPTIBLE);
	else
		set_notify_signal(task);
}

void klp_glue_schedule_transition_work(unsigned long delay)
{
	schedule_delayed_work(&klp_transition_work, delay);
}

void klp_glue_init_work(struct work_struct *work, work_func_t fn)
{
	INIT_WORK(work, fn);
}

void klp_glue_init_completion(struct completion *done)
{
	init_completion(done);
}

bool klp_glue_schedule_work(struct work_struct *work)
{
	return schedule_work(work);
}

/* A function or, without CONFIG_TASKS_RCU, a macro for synchronize_rcu(). */
void klp_glue_synchronize_rcu_tasks(void)
{
	synchronize_rcu_tasks();
}

/*
 * The shadow variable table (see klp_glue.h).  Only the lookup is here, so
 * that it stays a handful of inline instructions: the Rust core is the
 * only writer, under klp_shadow_lock, taken with interrupts off because
 * shadow calls come from any context.
 */
static DEFINE_SPINLOCK(klp_shadow_lock);
static DECLARE_WORK(klp_shadow_resize_work, klp_rust_shadow_resize);

/*
 * Writers may be called with any lock held, the scheduler's included: they
 * raise an irq_work, which queues the resize from its own context.
 */
static void klp_shadow_resize_kick(struct irq_work *work)
{
	schedule_work(&klp_shadow_resize_work);
}

static DEFINE_IRQ_WORK(klp_shadow_resize_irq_work, klp_shadow_resize_kick);

static __always_inline unsigned long
klp_shadow_index(unsigned int bits, void *obj, unsigned long id)
{
	return hash_64((unsigned long)obj ^ (id * GOLDEN_RATIO_64), bits);
}

unsigned long klp_glue_shadow_index(unsigned int bits, void *obj,
				    unsigned long id)
{
	return klp_shadow_index(bits, obj, id);
}

/*
 * As klp_shadow_get() of the C core, the result is used after the read-side
 * section: the caller owns the variable's lifetime.
 */
struct klp_shadow_node *klp_glue_shadow_find(void *obj, unsigned long id)
{
	const struct klp_shadow_table *t;
	struct klp_shadow_node *s;

	rcu_read_lock_sched();
	t = rcu_dereference_sched(klp_rust_shadow_table);
	s = rcu_dereference_sched(t->buckets[klp_shadow_index(t->bits, obj, id)]);
	while (s && (s->obj != obj || s->id != id))
		s = rcu_dereference_sched(s->next[t->gen]);
	rcu_read_unlock_sched();
	return s;
}

void klp_glue_shadow_schedule_resize(void)
{
	irq_work_queue(&klp_shadow_resize_irq_work);
}

/* cond_resched() is a macro. */
void klp_glue_resched(void)
{
	cond_resched();
}

unsigned long klp_glue_shadow_lock(void)
{
	unsigned long flags;

	spin_lock_irqsave(&klp_shadow_lock, flags);
	return flags;
}

void klp_glue_shadow_unlock(unsigned long flags)
{
	spin_unlock_irqrestore(&klp_shadow_lock, flags);
}

/* --- dynamic debug --------------------------------------------------------- */

void klp_glue_debug(const char *msg)
{
	pr_debug("%s\n", msg);
}

/*
 * The per-task messages of a transition have their own call site, named like
 * the C core's function, so that "func klp_try_switch_task -p" (as the
 * selftests write) silences them here too.
 */
void klp_try_switch_task(const char *msg)
{
	pr_debug("%s\n", msg);
}

static int __init klp_glue_init(void)
{
	return klp_rust_init();
}
module_init(klp_glue_init);
