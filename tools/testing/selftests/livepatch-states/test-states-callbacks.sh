#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Livepatch states own their callbacks: who runs them, and when.
#
# - a state is introduced (pre_patch, post_patch) once, and removed
#   (pre_unpatch, post_unpatch) when the last livepatch carrying it is
#   disabled;
# - a stacked livepatch takes a state over without any callback, and its
#   disable leaves the state to the livepatch below; disabling the lower
#   one first leaves it to the upper one, which removes it later;
# - a pre_patch that fails in the middle of the states array: the states
#   before it get post_unpatch in reverse order, the ones after nothing,
#   and the load fails with the error;
# - state callbacks run at enable only; a target module that comes later
#   (or goes) runs only the per-object (legacy) callbacks.

. "$(dirname "$0")/functions-states.sh"

states_setup


start_test "states introduced at enable, removed at disable"

load_lp $MOD_A states=1,2
disable_lp $MOD_A
unload_lp $MOD_A

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
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
$MOD_A: pre_unpatch state 2
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 2
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A"


# B is stacked on A and carries A's state 1 and a new state 2: it
# introduces 2 only.  Disabling B removes 2 only; 1 goes with A.

start_test "a stacked livepatch takes a state over without callbacks"

load_lp $MOD_A states=1
load_lp $MOD_B states=1,2
disable_lp $MOD_B
unload_lp $MOD_B
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
% insmod test_modules/$MOD_B.ko states=1,2
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
$MOD_B: pre_patch state 2
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
$MOD_B: post_patch state 2
livepatch: '$MOD_B': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
$MOD_B: pre_unpatch state 2
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
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
% rmmod $MOD_A"


# A and B (stacked) carry state 1; A, the lower one, is disabled first: B
# still carries the state, so nothing runs.  B removes it with its own
# callbacks although A introduced it.

start_test "disabling the lower of two stacked livepatches"

load_lp $MOD_A states=1
load_lp $MOD_B states=1
disable_lp $MOD_A
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
% insmod test_modules/$MOD_B.ko states=1
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
$MOD_B: pre_unpatch state 1
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
$MOD_B: post_unpatch state 1
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B"


start_test "a pre_patch fails in the middle of the states"

load_failing_mod $MOD_A states=1,2,3,4 fail=3
[[ ! -e /sys/module/$MOD_A ]] || die "$MOD_A is loaded"

check_result "% insmod test_modules/$MOD_A.ko states=1,2,3,4 fail=3
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
$MOD_A: pre_patch state 2
$MOD_A: pre_patch state 3: -ENODEV
livepatch: '$MOD_A': pre_patch of state 3 failed (-19)
livepatch: failed to enable patch '$MOD_A'
livepatch: '$MOD_A': canceling patching transition, going to unpatch
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 2
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
insmod: ERROR: could not insert module test_modules/$MOD_A.ko: No such device"


# The same with a state taken over before the failing one: its pre_patch
# did not run (A has it), so neither does its post_unpatch.

start_test "a pre_patch fails after a state taken over"

load_lp $MOD_A states=1
load_failing_mod $MOD_B states=1,2,3 fail=3
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
% insmod test_modules/$MOD_B.ko states=1,2,3 fail=3
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


# The livepatch has a klp_object for $MOD_TARGET with per-object
# callbacks.  The module comes after the livepatch and goes before it:
# only the object's callbacks run then; the state's ran at enable and run
# again only at disable.

start_test "a target module loaded late runs no state callback"

load_lp $MOD_A states=1
load_mod $MOD_TARGET
unload_mod $MOD_TARGET
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
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_A' to loading module '$MOD_TARGET'
$MOD_A: pre_patch_callback: $MOD_TARGET
$MOD_A: post_patch_callback: $MOD_TARGET
$MOD_TARGET: ${MOD_TARGET}_init
% rmmod $MOD_TARGET
$MOD_TARGET: ${MOD_TARGET}_exit
$MOD_A: pre_unpatch_callback: $MOD_TARGET
livepatch: reverting patch '$MOD_A' on unloading module '$MOD_TARGET'
$MOD_A: post_unpatch_callback: $MOD_TARGET
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 1
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 1
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A"


# With the target module loaded first, the object's callbacks run with
# the livepatch's: the state's pre_patch before the objects', its
# post_patch after them, and the reverse order at disable.

start_test "a target module loaded first: state and object callbacks"

load_mod $MOD_TARGET
load_lp $MOD_A states=1
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
