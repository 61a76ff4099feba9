#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shell functions of the livepatch-states selftests, on top of upstream's
# ../livepatch/functions.sh.  states_setup skips on a kernel without the Rust
# livepatch core and runs the test from a temporary directory whose
# test_modules/ holds this directory's modules and the upstream target
# modules (functions.sh loads "test_modules/<name>.ko").

STATES_DIR=$(cd "$(dirname "$0")" && pwd)
. "$STATES_DIR/../livepatch/functions.sh"

MOD_A=test_klp_states_a
MOD_B=test_klp_states_b
MOD_C=test_klp_states_c
MOD_TARGET=test_klp_callbacks_mod
MOD_TARGET_BUSY=test_klp_callbacks_busy

states_setup() {
	local m

	dmesg | grep -q 'livepatch: Rust core' ||
		skip "livepatch states need the Rust livepatch core"
	setup_config

	STATES_WORK=$(mktemp -d) || die "mktemp failed"
	mkdir "$STATES_WORK/test_modules"
	for m in $MOD_A $MOD_B $MOD_C; do
		[[ -f "$STATES_DIR/test_modules/$m.ko" ]] ||
			die "$STATES_DIR/test_modules/$m.ko is missing, try \"make\""
		ln -s "$STATES_DIR/test_modules/$m.ko" "$STATES_WORK/test_modules/"
	done
	for m in $MOD_TARGET $MOD_TARGET_BUSY; do
		[[ -f "$STATES_DIR/../livepatch/test_modules/$m.ko" ]] ||
			die "../livepatch/test_modules/$m.ko is missing"
		ln -s "$STATES_DIR/../livepatch/test_modules/$m.ko" "$STATES_WORK/test_modules/"
	done
	cd "$STATES_WORK" || die "cannot enter $STATES_WORK"
	trap 'cleanup; rm -rf "$STATES_WORK"' EXIT INT TERM HUP
}

# write_sysfs(path, value) - log and write a value to a sysfs file, which
# must succeed
function write_sysfs() {
	local path="$1" value="$2" ret

	log "% echo $value > $path"
	ret=$( (echo "$value" > "$path") 2>&1) || die "writing $value to $path failed: $ret"
}

# disable_lp_refused(modname) - writing 0 to the livepatch's enabled file
# must fail with EINVAL, and the livepatch must stay enabled
function disable_lp_refused() {
	local mod="$1" path="$KLP_SYSFS_DIR/$1/enabled" ret

	log "% echo 0 > $path"
	if ret=$( (echo 0 > "$path") 2>&1); then
		die "disabling $mod succeeded"
	fi
	[[ "$ret" == *"Invalid argument"* ]] ||
		die "disabling $mod failed with '$ret', expected EINVAL"
	check_sysfs_value "$mod" enabled 1
	check_sysfs_value "$mod" transition 0
}

# wait_transition(modname, value) - wait for the livepatch's transition
# file to show value (0: done, 1: pending)
function wait_transition() {
	local mod="$1" value="$2"

	loop_until "grep -q '^$value\$' $KLP_SYSFS_DIR/$mod/transition" ||
		die "$mod: transition did not become $value"
}

# wait_replaced(modname) - wait until the livepatch is gone from sysfs
# (replaced, or disabled)
function wait_replaced() {
	local mod="$1"

	loop_until "[[ ! -e $KLP_SYSFS_DIR/$mod ]]" ||
		die "$mod is still in $KLP_SYSFS_DIR"
}
