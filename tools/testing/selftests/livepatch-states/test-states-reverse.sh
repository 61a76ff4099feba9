#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Livepatch states and reversed transitions (the opposite value written to
# "enabled" while the transition is pending).
#
# - a reversed enable runs no pre_unpatch; post_unpatch runs for the
#   states whose pre_patch succeeded, and their shadow variables go;
# - a reversed enable of an atomic replace: the replaced livepatch, which
#   ran pre_unpatch, runs post_patch again and stays enabled;
# - a reversed disable ends with post_patch again;
# - an enable reversed twice runs post_patch once at the end, and nothing
#   on the way (no callback twice in a row on one side).
#
# An enable is kept pending by test_klp_callbacks_busy, whose worker sleeps
# in busymod_work_func() (block_transition=Y), patched with busy=1.  A
# disable is kept pending by a reader of /proc/cmdline held in the new
# cmdline_proc_show() (hold=1).

. "$(dirname "$0")/functions-states.sh"

states_setup


start_test "a reversed enable"

load_mod $MOD_TARGET_BUSY block_transition=Y
load_lp_nowait $MOD_A busy=1 states=1,2 shadow=2
wait_transition $MOD_A 1
write_sysfs $KLP_SYSFS_DIR/$MOD_A/enabled 0
wait_replaced $MOD_A
unload_lp $MOD_A
unload_mod $MOD_TARGET_BUSY

check_result "% insmod test_modules/$MOD_TARGET_BUSY.ko block_transition=Y
$MOD_TARGET_BUSY: ${MOD_TARGET_BUSY}_init
$MOD_TARGET_BUSY: busymod_work_func enter
% insmod test_modules/$MOD_A.ko busy=1 states=1,2 shadow=2
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
$MOD_A: pre_patch state 2
livepatch: '$MOD_A': starting patching transition
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': reversing transition from patching to unpatching
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 2
$MOD_A: shadow_dtor: shadow variable 2 of $MOD_A
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A
% rmmod $MOD_TARGET_BUSY
$MOD_TARGET_BUSY: busymod_work_func exit
$MOD_TARGET_BUSY: ${MOD_TARGET_BUSY}_exit"


# A carries state 1; B replaces A, lacks 1 and carries 2.  B's enable is
# reversed after A's pre_unpatch of 1: A undoes it with post_patch and
# stays; B's own state 2 is undone with post_unpatch.

start_test "a reversed enable of an atomic replace"

load_lp $MOD_A states=1
load_mod $MOD_TARGET_BUSY block_transition=Y
load_lp_nowait $MOD_B replace=1 busy=1 states=2
wait_transition $MOD_B 1
write_sysfs $KLP_SYSFS_DIR/$MOD_B/enabled 0
wait_replaced $MOD_B
check_sysfs_value $MOD_A enabled 1
unload_lp $MOD_B
disable_lp $MOD_A
unload_lp $MOD_A
unload_mod $MOD_TARGET_BUSY

check_result "% insmod test_modules/$MOD_A.ko states=1
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_TARGET_BUSY.ko block_transition=Y
$MOD_TARGET_BUSY: ${MOD_TARGET_BUSY}_init
$MOD_TARGET_BUSY: busymod_work_func enter
% insmod test_modules/$MOD_B.ko replace=1 busy=1 states=2
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
$MOD_B: pre_patch state 2
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_B': starting patching transition
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': reversing transition from patching to unpatching
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
$MOD_A: post_patch state 1
$MOD_B: post_unpatch state 2
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A
% rmmod $MOD_TARGET_BUSY
$MOD_TARGET_BUSY: busymod_work_func exit
$MOD_TARGET_BUSY: ${MOD_TARGET_BUSY}_exit"


start_test "a reversed disable"

load_lp $MOD_A states=1
write_sysfs /sys/module/$MOD_A/parameters/hold 1
cat /proc/cmdline > "$STATES_WORK/cmdline" &
reader=$!
loop_until "[[ \$(cat /sys/module/$MOD_A/parameters/holding) != 0 ]]" ||
	die "no reader of /proc/cmdline is held"
write_sysfs $KLP_SYSFS_DIR/$MOD_A/enabled 0
check_sysfs_value $MOD_A transition 1
write_sysfs $KLP_SYSFS_DIR/$MOD_A/enabled 1
wait_transition $MOD_A 0
check_sysfs_value $MOD_A enabled 1
write_sysfs /sys/module/$MOD_A/parameters/hold 0
wait $reader || die "the reader of /proc/cmdline failed"
[[ "$(cat "$STATES_WORK/cmdline")" == "$MOD_A: this has been live patched" ]] ||
	die "/proc/cmdline read '$(cat "$STATES_WORK/cmdline")'"
disable_lp $MOD_A
unload_lp $MOD_A

check_result "% insmod test_modules/$MOD_A.ko states=1
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% echo 1 > /sys/module/$MOD_A/parameters/hold
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_A': starting unpatching transition
% echo 1 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': reversing transition from unpatching to patching
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% echo 0 > /sys/module/$MOD_A/parameters/hold
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A"


# Both directions are kept pending: the busy worker sleeps in the old
# busymod_work_func(), a reader of /proc/cmdline in the new
# cmdline_proc_show().  The enable is reversed, then reversed again: no
# callback runs on the way, and post_patch runs once at the end.

start_test "an enable reversed twice"

load_mod $MOD_TARGET_BUSY block_transition=Y
load_lp_nowait $MOD_A busy=1 states=1
wait_transition $MOD_A 1
write_sysfs /sys/module/$MOD_A/parameters/hold 1
cat /proc/cmdline > "$STATES_WORK/cmdline" &
reader=$!
loop_until "[[ \$(cat /sys/module/$MOD_A/parameters/holding) != 0 ]]" ||
	die "no reader of /proc/cmdline is held"
write_sysfs $KLP_SYSFS_DIR/$MOD_A/enabled 0
check_sysfs_value $MOD_A transition 1
write_sysfs $KLP_SYSFS_DIR/$MOD_A/enabled 1
check_sysfs_value $MOD_A transition 1
write_sysfs /sys/module/$MOD_A/parameters/hold 0
wait $reader || die "the reader of /proc/cmdline failed"
write_sysfs /sys/module/$MOD_TARGET_BUSY/parameters/block_transition 0
wait_transition $MOD_A 0
check_sysfs_value $MOD_A enabled 1
disable_lp $MOD_A
unload_lp $MOD_A
unload_mod $MOD_TARGET_BUSY

check_result "% insmod test_modules/$MOD_TARGET_BUSY.ko block_transition=Y
$MOD_TARGET_BUSY: ${MOD_TARGET_BUSY}_init
$MOD_TARGET_BUSY: busymod_work_func enter
% insmod test_modules/$MOD_A.ko busy=1 states=1
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
livepatch: '$MOD_A': starting patching transition
% echo 1 > /sys/module/$MOD_A/parameters/hold
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': reversing transition from patching to unpatching
livepatch: '$MOD_A': starting unpatching transition
% echo 1 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': reversing transition from unpatching to patching
livepatch: '$MOD_A': starting patching transition
% echo 0 > /sys/module/$MOD_A/parameters/hold
% echo 0 > /sys/module/$MOD_TARGET_BUSY/parameters/block_transition
$MOD_TARGET_BUSY: busymod_work_func exit
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A
% rmmod $MOD_TARGET_BUSY
$MOD_TARGET_BUSY: ${MOD_TARGET_BUSY}_exit"

exit 0
