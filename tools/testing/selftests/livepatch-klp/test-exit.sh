#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A task that exits inside a patch's code after it left the task list.
# test_klp_core_exit patches proc_flush_pid(), which release_task() calls
# after unhashing the task; a kernel thread, reaped by itself, runs it in
# its own do_exit() and keeps running there, inside the patch's module,
# until the test lets it go (see test_modules/test_klp_core_exit.c).  No
# walk of the tasks sees that thread, so a transition completes while it
# still runs the patch's code.  The patch must not go (sysfs directory,
# module reference) before the thread has left that code, or removing the
# module frees code that a task runs: the crash of an atomic replace
# touching do_exit() seen in fleets.  The Rust core waits for an RCU
# Tasks grace period before it lets a patch go, which waits for exiting
# tasks that run or are preempted; a task that *sleeps* there counts as
# quiescent for RCU Tasks, and is not covered yet.
#
# - atomic replace by test_klp_core_exit2 while the thread runs there;
# - disabling while the thread runs there.

. "$(dirname "$0")/../livepatch/functions.sh"
. "$(dirname "$0")/functions-klp.sh"

MOD_LIVEPATCH=test_klp_core_exit
MOD_REPLACE=test_klp_core_exit2
RUNNER=klp_exit_run
PARAM=/sys/module/$MOD_LIVEPATCH/parameters/exit_runner

setup_config
# Let the thread go whatever happens: it would hold its CPU for a minute.
trap '[[ -e $PARAM ]] && echo 0 > "$PARAM"; cleanup' EXIT INT TERM HUP

# start_runner - start the thread, wait until it runs in the patch
start_runner() {
	log "% echo 1 > $PARAM"
	echo 1 > "$PARAM" || die "cannot start the exiting thread"
	loop_until 'new_log | grep -qF "$RUNNER runs in proc_flush_pid"' ||
		die "the thread did not reach the patched proc_flush_pid"
}

# release_after_stay(mod) - the patch of mod stays while the thread runs
# its code (with some retries of the core's work meanwhile); then the
# thread goes, and the patch after it
release_after_stay() {
	sleep 2
	[[ -e "$KLP_SYSFS_DIR/$1" ]] ||
		die "$1 went while $RUNNER still ran its code"
	[[ $(cat /sys/module/$1/refcnt) != 0 ]] ||
		die "$1 can be removed while $RUNNER still runs its code"
	log "% echo 0 > $PARAM"
	echo 0 > "$PARAM" || die "cannot release the exiting thread"
	loop_until 'new_log | grep -qF "$RUNNER leaves proc_flush_pid"' ||
		die "the thread did not leave proc_flush_pid"
	loop_until '[[ ! -e "$KLP_SYSFS_DIR/$1" ]]' || die "$1 did not go"
}

RUNNING="% echo 1 > $PARAM
$MOD_LIVEPATCH: $RUNNER runs in proc_flush_pid"
LEAVING="% echo 0 > $PARAM
$MOD_LIVEPATCH: $RUNNER leaves proc_flush_pid"


start_test "atomic replace while an exiting task runs the replaced patch"

load_lp $MOD_LIVEPATCH
start_runner
load_lp $MOD_REPLACE
release_after_stay $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
disable_lp $MOD_REPLACE
unload_lp $MOD_REPLACE

check_result "$(enabled_log $MOD_LIVEPATCH)
$RUNNING
$(enabled_log $MOD_REPLACE)
$LEAVING
% rmmod $MOD_LIVEPATCH
$(disabled_log $MOD_REPLACE)
% rmmod $MOD_REPLACE"


start_test "disabling while an exiting task runs the patch"

load_lp $MOD_LIVEPATCH
start_runner
log "% echo 0 > $KLP_SYSFS_DIR/$MOD_LIVEPATCH/enabled"
echo 0 > "$KLP_SYSFS_DIR/$MOD_LIVEPATCH/enabled"
loop_until 'grep -q "^0$" "$KLP_SYSFS_DIR/$MOD_LIVEPATCH/transition" 2>/dev/null ||
	    [[ ! -e "$KLP_SYSFS_DIR/$MOD_LIVEPATCH" ]]' ||
	die "the unpatching transition did not complete"
release_after_stay $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH

check_result "$(enabled_log $MOD_LIVEPATCH)
$RUNNING
$(disabled_log $MOD_LIVEPATCH)
$LEAVING
% rmmod $MOD_LIVEPATCH"

exit 0
