#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shadow variables while lookups run on other CPUs: test_klp_core_shadow
# allocates, checks and frees tens of thousands of variables in rounds
# while two kthreads keep looking up a fixed set (always found, with its
# value) and one that never exists (never found); its init fails when any
# check failed.  On the Rust core the table must grow past its 4,096 boot
# buckets and shrink back to them meanwhile (its dynamic debug messages):
# lookups that race with a resize are what this test is for.

. "$(dirname "$0")/../livepatch/functions.sh"
. "$(dirname "$0")/functions-klp.sh"

MOD=test_klp_core_shadow

setup_config

start_test "shadow variables with lookups racing allocations, frees and resizes"

load_mod $MOD
unload_mod $MOD

log=$(new_log)
grep -q "$MOD: 3 rounds of 50000 variables: 0 errors; readers: [1-9][0-9]* lookups, 0 errors" <<<"$log" ||
	die "no clean summary from $MOD: $(grep "$MOD" <<<"$log")"
if dmesg | grep -q 'livepatch: Rust core'; then
	# 50,000 variables want 65,536 buckets; none want the 4,096 again.
	# The last shrink may still be running.
	loop_until 'new_log | grep -q "shadow variable table: 4096 buckets"' ||
		die "the shadow variable table did not shrink back to 4096 buckets"
	new_log | grep -q "shadow variable table: 65536 buckets" ||
		die "the shadow variable table did not grow to 65536 buckets"
	echo "resizes: $(new_log | grep -c 'shadow variable table:')"
fi

echo "ok"
exit 0
