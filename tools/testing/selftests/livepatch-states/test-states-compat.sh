#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Compatibility of livepatch states.
#
# - block_disable: writing 0 to "enabled" fails with EINVAL and the
#   livepatch stays; a replace that lacks the state is refused at load; a
#   replace that carries the state with block_disable cleared is accepted,
#   takes the state over without callbacks, and can be disabled;
# - a state's version must not go down (stacked or replacing);
# - two states with one id in a livepatch are refused at load;
# - a replace that lacks a legacy state (no callbacks, not is_shadow) of an
#   installed livepatch is refused, as on the C core.

. "$(dirname "$0")/functions-states.sh"

states_setup


start_test "block_disable refuses a disable"

load_lp $MOD_A states=1,2 block=2
disable_lp_refused $MOD_A

check_result "% insmod test_modules/$MOD_A.ko states=1,2 block=2
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
livepatch: '$MOD_A': disabling is blocked by state 2"


# $MOD_A (block_disable on state 2) stays from the previous test.

start_test "block_disable refuses a replace without the state"

load_failing_mod $MOD_B replace=1 states=1
check_sysfs_value $MOD_A enabled 1

check_result "% insmod test_modules/$MOD_B.ko replace=1 states=1
livepatch: patch '$MOD_B': replacing '$MOD_A' would drop state 2, which cannot be undone
livepatch: Livepatch patch ($MOD_B) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_B.ko: Invalid parameters"


# C carries both states and blocks nothing: it takes them over, and it can
# be disabled, which removes them with C's callbacks.

start_test "a replace carrying the state lifts block_disable"

load_lp $MOD_C replace=1 states=1,2
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_C
unload_lp $MOD_C

check_result "% insmod test_modules/$MOD_C.ko replace=1 states=1,2
livepatch: enabling patch '$MOD_C'
livepatch: '$MOD_C': initializing patching transition
livepatch: '$MOD_C': starting patching transition
livepatch: '$MOD_C': completing patching transition
livepatch: '$MOD_C': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_C/enabled
livepatch: '$MOD_C': initializing unpatching transition
$MOD_C: pre_unpatch state 1
$MOD_C: pre_unpatch state 2
livepatch: '$MOD_C': starting unpatching transition
livepatch: '$MOD_C': completing unpatching transition
$MOD_C: post_unpatch state 2
$MOD_C: post_unpatch state 1
livepatch: '$MOD_C': unpatching complete
% rmmod $MOD_C"


start_test "a lower state version is refused"

load_lp $MOD_A states=1 version=2
load_failing_mod $MOD_B replace=1 states=1 version=1
load_failing_mod $MOD_B states=1 version=1
load_lp $MOD_C replace=1 states=1 version=2
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_C
unload_lp $MOD_C

check_result "% insmod test_modules/$MOD_A.ko states=1 version=2
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 1
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 1
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=1 version=1
livepatch: patch '$MOD_B': state 1 version 1 is lower than the installed 2
livepatch: Livepatch patch ($MOD_B) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_B.ko: Invalid parameters
% insmod test_modules/$MOD_B.ko states=1 version=1
livepatch: patch '$MOD_B': state 1 version 1 is lower than the installed 2
livepatch: Livepatch patch ($MOD_B) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_B.ko: Invalid parameters
% insmod test_modules/$MOD_C.ko replace=1 states=1 version=2
livepatch: enabling patch '$MOD_C'
livepatch: '$MOD_C': initializing patching transition
livepatch: '$MOD_C': starting patching transition
livepatch: '$MOD_C': completing patching transition
livepatch: '$MOD_C': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_C/enabled
livepatch: '$MOD_C': initializing unpatching transition
$MOD_C: pre_unpatch state 1
livepatch: '$MOD_C': starting unpatching transition
livepatch: '$MOD_C': completing unpatching transition
$MOD_C: post_unpatch state 1
livepatch: '$MOD_C': unpatching complete
% rmmod $MOD_C"


start_test "two states with one id are refused"

load_failing_mod $MOD_A states=4,4
[[ ! -e /sys/module/$MOD_A ]] || die "$MOD_A is loaded"

check_result "% insmod test_modules/$MOD_A.ko states=4,4
livepatch: patch '$MOD_A': state 4 is listed twice
livepatch: Livepatch patch ($MOD_A) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_A.ko: Invalid parameters"


# A legacy state keeps the C core's rule and its single message: a
# cumulative livepatch must carry every installed legacy state.

start_test "a replace without an installed legacy state is refused"

load_lp $MOD_A states=1 legacy=1
load_failing_mod $MOD_B replace=1 states=2
load_lp $MOD_B replace=1 states=1 legacy=1
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_B
unload_lp $MOD_B

check_result "% insmod test_modules/$MOD_A.ko states=1 legacy=1
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=2
livepatch: Livepatch patch ($MOD_B) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_B.ko: Invalid parameters
% insmod test_modules/$MOD_B.ko replace=1 states=1 legacy=1
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B"

exit 0
