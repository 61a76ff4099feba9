#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Atomic replace over three stacked patches of test_klp_core_target (its
# "state" parameter shows what a(), b(), c() and d() return):
# test_klp_core_stack1/2/3 patch a(), b() and c() respectively and all of
# them d(); the last one wins for d().  test_klp_core_replace patches only
# b(): once it completes, a(), c() and d() run their original code again
# (the nops are gone from sysfs), the replaced patches leave sysfs and can
# be removed, and disabling the replace patch leaves nothing patched.
# The same with the target module loaded only after the replace: it comes
# patched by the replace patch alone.
# stack_order is checked where the core has it (6.12's C core has not).

. "$(dirname "$0")/../livepatch/functions.sh"
. "$(dirname "$0")/functions-klp.sh"

MOD_TARGET=test_klp_core_target
MOD_LP1=test_klp_core_stack1
MOD_LP2=test_klp_core_stack2
MOD_LP3=test_klp_core_stack3
MOD_REPLACE=test_klp_core_replace
STATE=/sys/module/$MOD_TARGET/parameters/state

setup_config

# expect_state(values) - what the target's functions return
expect_state() {
	local got

	got=$(cat "$STATE")
	[[ "$got" == "$1" ]] || die "$STATE: '$got', expected '$1'"
}

# expect_stack_order(mod, n) - the patch's stack_order, when the core has one
expect_stack_order() {
	[[ -e "$KLP_SYSFS_DIR/$1/stack_order" ]] || return 0
	check_sysfs_value "$1" stack_order "$2"
}

# expect_funcs(mod, func...) - the function directories of the target
# object of the patch, exactly
expect_funcs() {
	local mod="$1" got want

	shift
	got=$(cd "$KLP_SYSFS_DIR/$mod/$MOD_TARGET" && find . -mindepth 1 -maxdepth 1 -type d |
	      sed 's#^\./##' | sort | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	[[ "$got" == "$want" ]] ||
		die "$mod/$MOD_TARGET has functions '$got', expected '$want'"
}

HAS_STACK_ORDER=0


start_test "atomic replace of three stacked patches"

load_mod $MOD_TARGET
expect_state "a b c d"
load_lp $MOD_LP1
expect_state "a1 b c d1"
load_lp $MOD_LP2
expect_state "a1 b2 c d2"
load_lp $MOD_LP3
expect_state "a1 b2 c3 d3"
[[ -e "$KLP_SYSFS_DIR/$MOD_LP1/stack_order" ]] && HAS_STACK_ORDER=1
expect_stack_order $MOD_LP1 1
expect_stack_order $MOD_LP2 2
expect_stack_order $MOD_LP3 3
for m in $MOD_LP1 $MOD_LP2 $MOD_LP3; do
	check_sysfs_value $m replace 0
	check_sysfs_value $m enabled 1
done
expect_funcs $MOD_LP3 "test_klp_core_target_c,1" "test_klp_core_target_d,1"

load_lp $MOD_REPLACE
for m in $MOD_LP1 $MOD_LP2 $MOD_LP3; do
	loop_until '[[ ! -e "$KLP_SYSFS_DIR/$m" ]]' ||
		die "$m was not replaced"
done
check_sysfs_value $MOD_REPLACE replace 1
check_sysfs_value $MOD_REPLACE enabled 1
expect_stack_order $MOD_REPLACE 1
expect_funcs $MOD_REPLACE "test_klp_core_target_b,1"
expect_state "a bR c d"

unload_lp $MOD_LP1
unload_lp $MOD_LP2
unload_lp $MOD_LP3
expect_state "a bR c d"

disable_lp $MOD_REPLACE
expect_state "a b c d"
unload_lp $MOD_REPLACE
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
$(enabled_log $MOD_LP1)
$(enabled_log $MOD_LP2)
$(enabled_log $MOD_LP3)
$(enabled_log $MOD_REPLACE)
% rmmod $MOD_LP1
% rmmod $MOD_LP2
% rmmod $MOD_LP3
% echo 0 > $KLP_SYSFS_DIR/$MOD_REPLACE/enabled
livepatch: '$MOD_REPLACE': initializing unpatching transition
livepatch: '$MOD_REPLACE': starting unpatching transition
livepatch: '$MOD_REPLACE': completing unpatching transition
livepatch: '$MOD_REPLACE': unpatching complete
% rmmod $MOD_REPLACE
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "atomic replace with the target module loaded afterwards"

load_lp $MOD_LP1
load_lp $MOD_LP2
load_lp $MOD_LP3
load_lp $MOD_REPLACE
for m in $MOD_LP1 $MOD_LP2 $MOD_LP3; do
	loop_until '[[ ! -e "$KLP_SYSFS_DIR/$m" ]]' ||
		die "$m was not replaced"
done
check_sysfs_value $MOD_REPLACE $MOD_TARGET/patched 0
expect_funcs $MOD_REPLACE "test_klp_core_target_b,1"
unload_lp $MOD_LP1
unload_lp $MOD_LP2
unload_lp $MOD_LP3
load_mod $MOD_TARGET
check_sysfs_value $MOD_REPLACE $MOD_TARGET/patched 1
expect_state "a bR c d"
disable_lp $MOD_REPLACE
expect_state "a b c d"
unload_lp $MOD_REPLACE
unload_mod $MOD_TARGET

check_result "$(enabled_log $MOD_LP1)
$(enabled_log $MOD_LP2)
$(enabled_log $MOD_LP3)
$(enabled_log $MOD_REPLACE)
% rmmod $MOD_LP1
% rmmod $MOD_LP2
% rmmod $MOD_LP3
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_REPLACE' to loading module '$MOD_TARGET'
$MOD_TARGET: loaded
% echo 0 > $KLP_SYSFS_DIR/$MOD_REPLACE/enabled
livepatch: '$MOD_REPLACE': initializing unpatching transition
livepatch: '$MOD_REPLACE': starting unpatching transition
livepatch: '$MOD_REPLACE': completing unpatching transition
livepatch: '$MOD_REPLACE': unpatching complete
% rmmod $MOD_REPLACE
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "stack_order follows the patches as they come and go"

if dmesg | grep -q 'livepatch: Rust core' && [[ $HAS_STACK_ORDER == 0 ]]; then
	die "the Rust core has no stack_order attribute"
fi

load_mod $MOD_TARGET
load_lp $MOD_LP1
load_lp $MOD_LP2
load_lp $MOD_LP3
expect_stack_order $MOD_LP3 3
# A patch in the middle goes: the one above it moves down.
disable_lp $MOD_LP2
expect_stack_order $MOD_LP1 1
expect_stack_order $MOD_LP3 2
expect_state "a1 b c3 d3"
disable_lp $MOD_LP3
expect_state "a1 b c d1"
disable_lp $MOD_LP1
expect_state "a b c d"
unload_lp $MOD_LP1
unload_lp $MOD_LP2
unload_lp $MOD_LP3
unload_mod $MOD_TARGET

# disabling(mod) - the log of a disable that completes at once
disabling() {
	echo "% echo 0 > $KLP_SYSFS_DIR/$1/enabled
livepatch: '$1': initializing unpatching transition
livepatch: '$1': starting unpatching transition
livepatch: '$1': completing unpatching transition
livepatch: '$1': unpatching complete"
}

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
$(enabled_log $MOD_LP1)
$(enabled_log $MOD_LP2)
$(enabled_log $MOD_LP3)
$(disabling $MOD_LP2)
$(disabling $MOD_LP3)
$(disabling $MOD_LP1)
% rmmod $MOD_LP1
% rmmod $MOD_LP2
% rmmod $MOD_LP3
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"

exit 0
