#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The cond_resched() hook.  test_klp_core_target's spinner is a kthread
# bound to CPU 1 that calls a() in a loop with cond_resched() in between
# and sleeps only one jiffy a second (RCU Tasks, which ftrace and the
# cores wait for, needs a voluntary context switch): it is on its CPU
# almost whenever a transition looks at it, so its stack is seldom
# checked, and a fake signal (a wake-up, for a kthread) does not stop it.
# The hook, in cond_resched(), is what switches it.  This script, and so the work item of the transitions that
# it starts, stays on CPU 0.  Patching and then unpatching with
# test_klp_core_busy (which changes a()) must complete, and the spinner
# must then run the version of a() of the new state.

. "$(dirname "$0")/../livepatch/functions.sh"
. "$(dirname "$0")/functions-klp.sh"

MOD_TARGET=test_klp_core_target
MOD_LIVEPATCH=test_klp_core_busy
PARAMS=/sys/module/$MOD_TARGET/parameters

setup_config

[[ $(nproc) -ge 2 ]] || skip "the spinner needs a CPU of its own"
command -v taskset >/dev/null || skip "taskset is missing"
taskset -p -c 0 $$ >/dev/null || die "cannot keep the script on CPU 0"

# write(value, path) - log and write a sysfs value, which must succeed
write() {
	log "% echo $1 > $2"
	echo "$1" > "$2" || die "writing $1 to $2 failed"
}

# spin_sees(value) - wait until a() returns value to the spinner
spin_sees() {
	SPIN_WANT="$1"
	loop_until '[[ $(cat "$PARAMS/spin_seen") == "$SPIN_WANT" ]]' ||
		die "the spinner gets '$(cat "$PARAMS/spin_seen")' from a(), not '$1'"
}

start_test "a task that never leaves its CPU switches in cond_resched()"

load_mod $MOD_TARGET
write 1 "$PARAMS/spin"
spin_sees a
load_lp $MOD_LIVEPATCH
spin_sees busy
disable_lp $MOD_LIVEPATCH
spin_sees a
write -1 "$PARAMS/spin"
[[ $(cat "$PARAMS/spin") == 0 ]] || die "the spinner did not stop"
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% echo 1 > $PARAMS/spin
$(enabled_log $MOD_LIVEPATCH)
$(disabled_log $MOD_LIVEPATCH)
% echo -1 > $PARAMS/spin
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"

exit 0
