// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow variables under concurrent lookups: while two kthreads look up a
 * fixed set of variables (each must be found, with its value) and one that
 * never exists (never found), the module's init allocates "nr" more
 * variables, checks them, frees half, checks again and frees the rest,
 * "rounds" times.  On the Rust core the table doubles and halves meanwhile.
 * The init fails with -EINVAL when any check failed, and logs its counts.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/slab.h>

#define SHADOW_FIXED	0x51ad0001UL
#define SHADOW_MANY	0x51ad0002UL
#define NR_FIXED	64

static unsigned int nr = 50000;
module_param(nr, uint, 0444);
MODULE_PARM_DESC(nr, "variables allocated in each round (default 50000)");
static unsigned int rounds = 3;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "rounds (default 3)");

static unsigned long fixed[NR_FIXED];
static unsigned long absent;
static atomic_long_t lookups, reader_errors;

static unsigned long fixed_value(unsigned int i)
{
	return 0xfeed0000UL + i;
}

static int set_value(void *obj, void *data, void *arg)
{
	*(unsigned long *)data = *(unsigned long *)arg;
	return 0;
}

static int reader(void *unused)
{
	unsigned long *v;
	unsigned int i;

	while (!kthread_should_stop()) {
		for (i = 0; i < NR_FIXED; i++) {
			v = klp_shadow_get(&fixed[i], SHADOW_FIXED);
			if (!v || *v != fixed_value(i))
				atomic_long_inc(&reader_errors);
		}
		if (klp_shadow_get(&absent, SHADOW_FIXED))
			atomic_long_inc(&reader_errors);
		atomic_long_add(NR_FIXED + 1, &lookups);
		cond_resched();
	}
	return 0;
}

/* Variables [0, nr) of the given parity (2: all, -1: none) must be there. */
static unsigned long check_many(unsigned long *objs, int parity)
{
	unsigned long errors = 0, *v;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		bool want = parity == 2 || (i & 1) == parity;

		v = klp_shadow_get(&objs[i], SHADOW_MANY);
		if (want != !!v || (v && *v != i))
			errors++;
	}
	return errors;
}

static unsigned long one_round(unsigned long *objs)
{
	unsigned long errors = 0, val, *v;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		val = i;
		if (!klp_shadow_alloc(&objs[i], SHADOW_MANY, sizeof(val),
				      GFP_KERNEL, set_value, &val))
			errors++;
		if (!(i % 1024))
			cond_resched();
	}
	msleep(100);
	errors += check_many(objs, 2);
	/* An existing variable is returned, not allocated again. */
	val = ~0UL;
	v = klp_shadow_get_or_alloc(&objs[0], SHADOW_MANY, sizeof(val),
				    GFP_KERNEL, set_value, &val);
	if (!v || *v != 0)
		errors++;
	for (i = 1; i < nr; i += 2)
		klp_shadow_free(&objs[i], SHADOW_MANY, NULL);
	msleep(100);
	errors += check_many(objs, 0);
	klp_shadow_free_all(SHADOW_MANY, NULL);
	msleep(100);
	errors += check_many(objs, -1);
	return errors;
}

static int test_klp_core_shadow_init(void)
{
	struct task_struct *readers[2] = {};
	unsigned long errors = 0, val, *objs;
	unsigned int i, r;
	int ret = 0;

	objs = kvcalloc(nr, sizeof(*objs), GFP_KERNEL);
	if (!objs)
		return -ENOMEM;
	for (i = 0; i < NR_FIXED; i++) {
		val = fixed_value(i);
		if (!klp_shadow_alloc(&fixed[i], SHADOW_FIXED, sizeof(val),
				      GFP_KERNEL, set_value, &val)) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < ARRAY_SIZE(readers); i++) {
		readers[i] = kthread_run(reader, NULL, "klp_shadow_rd%u", i);
		if (IS_ERR(readers[i])) {
			ret = PTR_ERR(readers[i]);
			readers[i] = NULL;
			goto out;
		}
	}
	for (r = 0; r < rounds; r++)
		errors += one_round(objs);
out:
	for (i = 0; i < ARRAY_SIZE(readers); i++)
		if (readers[i])
			kthread_stop(readers[i]);
	klp_shadow_free_all(SHADOW_FIXED, NULL);
	kvfree(objs);
	if (ret)
		return ret;
	pr_info("%u rounds of %u variables: %lu errors; readers: %ld lookups, %ld errors\n",
		rounds, nr, errors, atomic_long_read(&lookups),
		atomic_long_read(&reader_errors));
	if (errors || atomic_long_read(&reader_errors) || !atomic_long_read(&lookups))
		return -EINVAL;
	return 0;
}

static void test_klp_core_shadow_exit(void)
{
}

module_init(test_klp_core_shadow_init);
module_exit(test_klp_core_shadow_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch test: shadow variables under concurrent lookups");
