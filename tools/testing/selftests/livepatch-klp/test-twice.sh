#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# klp_enable_patch() called a second time on a patch that is registered
# (a write to test_klp_core_bad.ko's "again" parameter, once the patch is
# enabled and its transition done, so that the log has one order): the
# second call must fail without touching the registered patch, which then
# works, disables and goes as any other.
#
# Linux 6.12 does not check this: its C core initialises the registered
# patch's list head and kobjects again, which corrupts its list of patches
# and warns.  The test runs on the Rust core only.
# The Rust core refuses the second call with -EINVAL ("patch '<name>' is
# already registered").

. "$(dirname "$0")/../livepatch/functions.sh"

MOD_BAD=test_klp_core_bad

dmesg | grep -q 'livepatch: Rust core' ||
	skip "the C core of 6.12 corrupts its patch list on a second klp_enable_patch()"

setup_config


start_test "klp_enable_patch() twice on the same patch"

ORIG=$(cat /proc/cmdline)
load_lp $MOD_BAD
log "% echo 1 > /sys/module/$MOD_BAD/parameters/again"
if echo 1 2>/dev/null > "/sys/module/$MOD_BAD/parameters/again"; then
	die "the second klp_enable_patch() succeeded"
fi
check_sysfs_value $MOD_BAD enabled 1
[[ "$(cat /proc/cmdline)" == "$MOD_BAD: this is a good patch" ]] ||
	die "/proc/cmdline is not patched: $(cat /proc/cmdline)"
disable_lp $MOD_BAD
[[ "$(cat /proc/cmdline)" == "$ORIG" ]] ||
	die "/proc/cmdline is still patched: $(cat /proc/cmdline)"
unload_lp $MOD_BAD
[[ -z "$(ls -A "$KLP_SYSFS_DIR")" ]] || die "$KLP_SYSFS_DIR is not empty"

check_result "% insmod test_modules/$MOD_BAD.ko
livepatch: enabling patch '$MOD_BAD'
livepatch: '$MOD_BAD': initializing patching transition
livepatch: '$MOD_BAD': starting patching transition
livepatch: '$MOD_BAD': completing patching transition
livepatch: '$MOD_BAD': patching complete
% echo 1 > /sys/module/$MOD_BAD/parameters/again
livepatch: patch '$MOD_BAD' is already registered
$MOD_BAD: klp_enable_patch() again: -22
% echo 0 > $KLP_SYSFS_DIR/$MOD_BAD/enabled
livepatch: '$MOD_BAD': initializing unpatching transition
livepatch: '$MOD_BAD': starting unpatching transition
livepatch: '$MOD_BAD': completing unpatching transition
livepatch: '$MOD_BAD': unpatching complete
% rmmod $MOD_BAD"

exit 0
