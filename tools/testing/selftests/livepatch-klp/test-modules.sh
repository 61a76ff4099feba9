#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A patch of a module object (test_klp_core_mod patches a() and d() of
# test_klp_core_target; the target's "state" parameter shows their values):
# - the target loaded after the patch is patched as it comes, unpatched
#   as it goes, and patched again when it comes back;
# - the target loaded before the patch is patched by the transition, and
#   unpatched by the disable.
# The object's "patched" attribute follows the target.

. "$(dirname "$0")/../livepatch/functions.sh"

MOD_LIVEPATCH=test_klp_core_mod
MOD_TARGET=test_klp_core_target
STATE=/sys/module/$MOD_TARGET/parameters/state

setup_config

# expect_state(values) - what the target's functions return
expect_state() {
	local got

	got=$(cat "$STATE")
	[[ "$got" == "$1" ]] || die "$STATE: '$got', expected '$1'"
}


start_test "target module loaded after the patch, unloaded and reloaded"

load_lp $MOD_LIVEPATCH
check_sysfs_value $MOD_LIVEPATCH enabled 1
check_sysfs_value $MOD_LIVEPATCH $MOD_TARGET/patched 0
[[ -d "$KLP_SYSFS_DIR/$MOD_LIVEPATCH/$MOD_TARGET/test_klp_core_target_a,1" ]] ||
	die "no test_klp_core_target_a,1 in sysfs"
load_mod $MOD_TARGET
check_sysfs_value $MOD_LIVEPATCH $MOD_TARGET/patched 1
expect_state "A b c D"
unload_mod $MOD_TARGET
check_sysfs_value $MOD_LIVEPATCH $MOD_TARGET/patched 0
load_mod $MOD_TARGET
check_sysfs_value $MOD_LIVEPATCH $MOD_TARGET/patched 1
expect_state "A b c D"
disable_lp $MOD_LIVEPATCH
expect_state "a b c d"
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_LIVEPATCH' to loading module '$MOD_TARGET'
$MOD_TARGET: loaded
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded
livepatch: reverting patch '$MOD_LIVEPATCH' on unloading module '$MOD_TARGET'
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_LIVEPATCH' to loading module '$MOD_TARGET'
$MOD_TARGET: loaded
% echo 0 > $KLP_SYSFS_DIR/$MOD_LIVEPATCH/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "target module loaded before the patch"

load_mod $MOD_TARGET
expect_state "a b c d"
load_lp $MOD_LIVEPATCH
check_sysfs_value $MOD_LIVEPATCH $MOD_TARGET/patched 1
expect_state "A b c D"
disable_lp $MOD_LIVEPATCH
expect_state "a b c d"
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $KLP_SYSFS_DIR/$MOD_LIVEPATCH/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "target module unloaded while the patch is disabled"

load_mod $MOD_TARGET
load_lp $MOD_LIVEPATCH
expect_state "A b c D"
disable_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET
load_mod $MOD_TARGET
expect_state "a b c d"
unload_mod $MOD_TARGET
unload_lp $MOD_LIVEPATCH

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $KLP_SYSFS_DIR/$MOD_LIVEPATCH/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded
% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded
% rmmod $MOD_LIVEPATCH"

exit 0
