/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The functions of test_klp_bench that the benchmark livepatches patch:
 * bench_fn_0 .. bench_fn_<BENCH_NFUNCS - 1> (test_klp_bench_funcs.c) and
 * bench_block_fn (test_klp_bench_main.c).
 */
#ifndef BENCH_H
#define BENCH_H

#include "bench_list.h"

void bench_block_fn(void);

#endif
