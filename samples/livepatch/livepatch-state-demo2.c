// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * livepatch-state-demo2.c - the second version of livepatch-state-demo
 *
 * It atomically replaces the first one and carries the same state, so the
 * state (and its shadow variable) is handed over without any callback.
 * See livepatch-state-demo.c for the usage.
 */

#define DEMO_VERSION	2
#define DEMO_REPLACE	true

#include "livepatch-state-demo.c"
