#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Livepatch states that own shadow variables (is_shadow).
#
# The livepatches allocate a shadow variable of a shadow state's id in
# its pre_patch; the variable records which module allocated it, and the
# destructor logs that.
#
# - the variable survives a replace that carries the state, and is freed
#   through shadow_dtor right after post_unpatch when the state is removed;
# - a replace that lacks the state frees it through the replaced
#   livepatch's shadow_dtor;
# - a state shared by two stacked livepatches, both replaced by one
#   without it: the variable is freed exactly once;
# - disabling a livepatch stacked on one that carries the state frees
#   nothing;
# - shadow variables of ids that no is_shadow state owns are untouched.

. "$(dirname "$0")/functions-states.sh"

states_setup


start_test "a shadow variable is kept across a replace, freed at removal"

load_lp $MOD_A states=3 shadow=3
load_lp $MOD_B replace=1 states=3 shadow=3
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_B
unload_lp $MOD_B

check_result "% insmod test_modules/$MOD_A.ko states=3 shadow=3
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 3
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 3
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=3 shadow=3
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
$MOD_B: pre_unpatch state 3
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
$MOD_B: post_unpatch state 3
$MOD_B: shadow_dtor: shadow variable 3 of $MOD_A
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B"


start_test "a replace without the state frees with the replaced shadow_dtor"

load_lp $MOD_A states=3 shadow=3
load_lp $MOD_B replace=1 states=4
wait_replaced $MOD_A
unload_lp $MOD_A
disable_lp $MOD_B
unload_lp $MOD_B

check_result "% insmod test_modules/$MOD_A.ko states=3 shadow=3
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 3
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 3
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko replace=1 states=4
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
$MOD_B: pre_patch state 4
$MOD_A: pre_unpatch state 3
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
$MOD_A: post_unpatch state 3
$MOD_A: shadow_dtor: shadow variable 3 of $MOD_A
$MOD_B: post_patch state 4
livepatch: '$MOD_B': patching complete
% rmmod $MOD_A
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
$MOD_B: pre_unpatch state 4
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
$MOD_B: post_unpatch state 4
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B"


start_test "a shadow state of two stacked livepatches is freed once by a replace"

load_lp $MOD_A states=5 shadow=5
load_lp $MOD_B states=5 shadow=5
load_lp $MOD_C replace=1 states=7
wait_replaced $MOD_A
wait_replaced $MOD_B
unload_lp $MOD_A
unload_lp $MOD_B
disable_lp $MOD_C
unload_lp $MOD_C

check_result "% insmod test_modules/$MOD_A.ko states=5 shadow=5
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 5
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 5
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko states=5 shadow=5
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
$MOD_B: shadow_dtor: shadow variable 5 of $MOD_A
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


start_test "disabling a stacked livepatch keeps the shadow variable"

load_lp $MOD_A states=3 shadow=3
load_lp $MOD_B states=3 shadow=3
disable_lp $MOD_B
unload_lp $MOD_B
disable_lp $MOD_A
unload_lp $MOD_A

check_result "% insmod test_modules/$MOD_A.ko states=3 shadow=3
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 3
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 3
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko states=3 shadow=3
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 3
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 3
$MOD_A: shadow_dtor: shadow variable 3 of $MOD_A
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A"


# A allocates shadow variables 4 (the id of its state 4, which is not
# is_shadow) and 77 (no state) at load.  Removing the states frees only
# the variable of the is_shadow state 3; A finds 4 and 77 at unload.

start_test "shadow variables that no is_shadow state owns are untouched"

load_lp $MOD_A states=3,4 shadow=3 extra_shadow=4,77
disable_lp $MOD_A
unload_lp $MOD_A

check_result "% insmod test_modules/$MOD_A.ko states=3,4 shadow=3 extra_shadow=4,77
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
$MOD_A: pre_patch state 3
$MOD_A: pre_patch state 4
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
$MOD_A: post_patch state 3
$MOD_A: post_patch state 4
livepatch: '$MOD_A': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
$MOD_A: pre_unpatch state 3
$MOD_A: pre_unpatch state 4
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
$MOD_A: post_unpatch state 4
$MOD_A: post_unpatch state 3
$MOD_A: shadow_dtor: shadow variable 3 of $MOD_A
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A
$MOD_A: exit: shadow variable 4 of $MOD_A is still there
$MOD_A: shadow_dtor: shadow variable 4 of $MOD_A
$MOD_A: exit: shadow variable 77 of $MOD_A is still there
$MOD_A: shadow_dtor: shadow variable 77 of $MOD_A"

exit 0
