/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The functions of test_klp_core_target that the livepatches of the core
 * selftests replace (they find them by name, through kallsyms).
 */
#ifndef _TEST_KLP_CORE_TARGET_H
#define _TEST_KLP_CORE_TARGET_H

#include <linux/types.h>

const char *test_klp_core_target_a(void);
const char *test_klp_core_target_b(void);
const char *test_klp_core_target_c(void);
const char *test_klp_core_target_d(void);

/*
 * What the busy worker waits on: it waits while @block is set, and
 * meanwhile stores in @seen what @probe (test_klp_core_target_a())
 * returns to it: the version of a() that the worker's own calls reach.
 */
struct test_klp_core_worker {
	bool block;
	const char *(*probe)(void);
	const char *seen;
};

void test_klp_core_target_busy(struct test_klp_core_worker *w);

#endif
