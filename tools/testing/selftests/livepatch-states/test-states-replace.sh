#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Livepatch states and atomic replace.
#
# - a replacing livepatch that carries a state takes it over: no callback;
# - a state that the replacing livepatch lacks is removed with the
#   REPLACED livepatch's own callbacks (safe downgrade): its pre_unpatch
#   after the new livepatch's pre_patch, its post_unpatch once the
#   transition completes, before the new livepatch's post_patch;
# - two stacked livepatches carrying a state, both replaced by one without
#   it: the state is removed exactly once, by the most recently enabled;
# - a replace that fails in a state's pre_patch leaves the replaced
#   livepatch alone; one that fails after the replaced livepatch's
#   pre_unpatch makes it run post_patch again, and it stays enabled.

. "$(dirname "$0")/functions-states.sh"

states_setup


start_test "atomic replace takes a state over without callbacks"

load_lp $MOD_A states=1
load_lp $MOD_B replace=1 states=1
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_B
unload_lp $MOD_B

check_result "% insmod test_modules/$MOD_A.ko states=1
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=1
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
$MOD_B: pre_unpatch state 1
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
$MOD_B: post_unpatch state 1
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B"


# A carries 1 and 2, B replaces it with 2 and 3: B introduces 3, takes 2
# over, and A removes 1 with its own callbacks.

start_test "a replace removes a state with the replaced livepatch's callbacks"

load_lp $MOD_A states=1,2
load_lp $MOD_B replace=1 states=2,3
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_B
unload_lp $MOD_B

check_result "% insmod test_modules/$MOD_A.ko states=1,2
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
$MOD_A: pre_patch state 2
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
$MOD_A: post_patch state 2
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=2,3
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
$MOD_B: pre_patch state 3
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
$MOD_A: post_unpatch state 1
$MOD_B: post_patch state 3
livepatch: '$MOD_B': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
$MOD_B: pre_unpatch state 2
$MOD_B: pre_unpatch state 3
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
$MOD_B: post_unpatch state 3
$MOD_B: post_unpatch state 2
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B"


# A and B (stacked) both carry state 5; C replaces both and lacks it.  The
# state goes exactly once, with B's callbacks: B was enabled last.

start_test "a state of two stacked livepatches is removed once by a replace"

load_lp $MOD_A states=5
load_lp $MOD_B states=5
load_lp $MOD_C replace=1 states=7
wait_replaced $MOD_A
wait_replaced $MOD_B
unload_lp $MOD_A
unload_lp $MOD_B
disable_lp $MOD_C
unload_lp $MOD_C

check_result "% insmod test_modules/$MOD_A.ko states=5
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 5
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 5
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko states=5
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% insmod test_modules/$MOD_C.ko replace=1 states=7
livepatch: enabling patch '$MOD_C'
livepatch: '$MOD_C': initializing patching transition
$MOD_C: pre_patch state 7
$MOD_B: pre_unpatch state 5
livepatch: '$MOD_C': starting patching transition
livepatch: '$MOD_C': completing patching transition
$MOD_B: post_unpatch state 5
$MOD_C: post_patch state 7
livepatch: '$MOD_C': patching complete
% rmmod $MOD_A
% rmmod $MOD_B
% echo 0 > /sys/kernel/livepatch/$MOD_C/enabled
livepatch: '$MOD_C': initializing unpatching transition
$MOD_C: pre_unpatch state 7
livepatch: '$MOD_C': starting unpatching transition
livepatch: '$MOD_C': completing unpatching transition
$MOD_C: post_unpatch state 7
livepatch: '$MOD_C': unpatching complete
% rmmod $MOD_C"


# B replaces A and lacks A's state 1; B's own pre_patch of state 3 fails:
# A's pre_unpatch never ran, A is left alone.

start_test "a replace whose pre_patch fails leaves the replaced livepatch alone"

load_lp $MOD_A states=1
load_failing_mod $MOD_B replace=1 states=2,3 fail=3
check_sysfs_value $MOD_A enabled 1
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
% insmod test_modules/$MOD_B.ko replace=1 states=2,3 fail=3
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
$MOD_B: pre_patch state 2
$MOD_B: pre_patch state 3: -ENODEV
livepatch: '$MOD_B': pre_patch of state 3 failed (-19)
livepatch: failed to enable patch '$MOD_B'
livepatch: '$MOD_B': canceling patching transition, going to unpatch
livepatch: '$MOD_B': completing unpatching transition
$MOD_B: post_unpatch state 2
livepatch: '$MOD_B': unpatching complete
insmod: ERROR: could not insert module test_modules/$MOD_B.ko: No such device
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A"


# The same, but B fails later, in a per-object pre_patch callback, after
# A's pre_unpatch of state 1: A undoes it with post_patch and stays, B
# undoes its state 2.

start_test "a replace that fails after the replaced livepatch's pre_unpatch"

load_mod $MOD_TARGET
load_lp $MOD_A states=1
load_failing_mod $MOD_B replace=1 states=2 obj_fail=1
check_sysfs_value $MOD_A enabled 1
disable_lp $MOD_A
unload_lp $MOD_A
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: ${MOD_TARGET}_init
% insmod test_modules/$MOD_A.ko states=1
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
$MOD_A: pre_patch_callback: $MOD_TARGET
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch_callback: $MOD_TARGET
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=2 obj_fail=1
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
$MOD_B: pre_patch state 2
$MOD_A: pre_unpatch state 1
$MOD_B: pre_patch_callback: $MOD_TARGET: -ENODEV
livepatch: pre-patch callback failed for object '$MOD_TARGET'
livepatch: failed to enable patch '$MOD_B'
livepatch: '$MOD_B': canceling patching transition, going to unpatch
livepatch: '$MOD_B': completing unpatching transition
$MOD_A: post_patch state 1
$MOD_B: post_unpatch state 2
livepatch: '$MOD_B': unpatching complete
insmod: ERROR: could not insert module test_modules/$MOD_B.ko: No such device
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
$MOD_A: pre_unpatch_callback: $MOD_TARGET
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch_callback: $MOD_TARGET
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A
% rmmod $MOD_TARGET
$MOD_TARGET: ${MOD_TARGET}_exit"

exit 0
