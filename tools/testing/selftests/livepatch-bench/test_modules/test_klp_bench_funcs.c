// SPDX-License-Identifier: GPL-2.0
/*
 * The 1,000 target functions of the livepatch benchmarks: small, not
 * inlined, each with its ftrace location, each returning something else.
 */
#include <linux/compiler.h>
#include "bench.h"

#define BENCH_FN(n)						\
	noinline unsigned long bench_fn_##n(unsigned long x)	\
	{							\
		return x * 3 + (n);				\
	}

BENCH_LIST_1000(BENCH_FN)
