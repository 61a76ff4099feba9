#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Rust shadow variable samples (samples/livepatch/
# rust_livepatch_shadow_fix1.rs and _fix2.rs) on their target module
# (livepatch-shadow-target.c), through the Rust livepatch API's typed
# shadow variables and states that own them:
# - fix1 keeps the buffer of each new dummy in a shadow variable and frees
#   it with the dummy; dummies allocated before it still leak;
# - fix2 replaces fix1, takes the state and its shadow variables over
#   without any callback, frees the buffers that fix1 tracked, and adds a
#   second shadow variable (made by get-or-alloc);
# - disabling the last fix removes the states: the core frees the buffers
#   still tracked, through the Rust destructor of their type;
# - disabling fix1 alone frees its buffers the same way.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

TARGET=livepatch_shadow_target
FIX1=rust_livepatch_shadow_fix1
FIX2=rust_livepatch_shadow_fix2
SAMPLES=$KDIR/samples/livepatch
PROC=/proc/$TARGET

dmesg | grep -q 'livepatch: Rust core' ||
	skip "livepatch states need the Rust livepatch core"
for f in livepatch-shadow-target $FIX1 $FIX2; do
	[[ -e "$SAMPLES/$f.ko" ]] ||
		skip "$f.ko is not built (CONFIG_SAMPLE_LIVEPATCH_RUST_STATES)"
done

setup_config

# functions.sh loads "test_modules/<name>.ko"; module names have
# underscores where the sample files have dashes.
WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
ln -s "$SAMPLES/livepatch-shadow-target.ko" "$WORK/test_modules/$TARGET.ko"
ln -s "$SAMPLES/$FIX1.ko" "$SAMPLES/$FIX2.ko" "$WORK/test_modules/"
cd "$WORK" || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

# target(cmd) - writes cmd (alloc, free) to the target's proc file
target() {
	log "% echo $1 > $PROC"
	echo "$1" > "$PROC" || die "echo $1 > $PROC failed"
}

# expect_list(text) - the target's list of dummies, as it shows it
expect_list() {
	local got

	got=$(cat "$PROC")
	[[ "$got" == "$1" ]] ||
		die "$PROC: '$got', expected '$1'"
}


start_test "Rust shadow variables: fix1, replaced by fix2, disabled"

load_mod $TARGET
target alloc
expect_list "dummy 1"
load_lp $FIX1
target alloc
expect_list "dummy 1
dummy 2 (buffer tracked)"
load_lp $FIX2
loop_until '[[ ! -e /sys/kernel/livepatch/$FIX1 ]]' || die "$FIX1 was not replaced"
unload_lp $FIX1
# fix1's shadow variable of dummy 2 went over to fix2 with the state.
expect_list "dummy 1, shown 1 time(s)
dummy 2 (buffer tracked), shown 1 time(s)"
expect_list "dummy 1, shown 2 time(s)
dummy 2 (buffer tracked), shown 2 time(s)"
target free
target free
target alloc
expect_list "dummy 3 (buffer tracked), shown 1 time(s)"
disable_lp $FIX2
unload_lp $FIX2
expect_list "dummy 3"
target free
unload_mod $TARGET

check_log "% insmod test_modules/$TARGET.ko
% echo alloc > $PROC
$TARGET: dummy 1 allocated
% insmod test_modules/$FIX1.ko
livepatch: enabling patch '$FIX1'
livepatch: '$FIX1': initializing patching transition
livepatch: '$FIX1': starting patching transition
livepatch: '$FIX1': completing patching transition
$FIX1: tracking the buffers of new dummies
livepatch: '$FIX1': patching complete
% echo alloc > $PROC
$FIX1: dummy 2 allocated, buffer tracked
% insmod test_modules/$FIX2.ko
livepatch: enabling patch '$FIX2'
livepatch: '$FIX2': initializing patching transition
livepatch: '$FIX2': starting patching transition
livepatch: '$FIX2': completing patching transition
livepatch: '$FIX2': patching complete
% rmmod $FIX1
% echo free > $PROC
$FIX2: dummy 1 freed
% echo free > $PROC
$FIX2: dummy 2: buffer freed
$FIX2: dummy 2 freed
% echo alloc > $PROC
$FIX2: dummy 3 allocated, buffer tracked
% echo 0 > /sys/kernel/livepatch/$FIX2/enabled
livepatch: '$FIX2': initializing unpatching transition
livepatch: '$FIX2': starting unpatching transition
livepatch: '$FIX2': completing unpatching transition
$FIX2: no longer tracking buffers
$FIX2: dummy 3: buffer freed
livepatch: '$FIX2': unpatching complete
% rmmod $FIX2
% echo free > $PROC
$TARGET: dummy 3 freed
% rmmod $TARGET"


start_test "Rust shadow variables: disabling fix1 frees its buffers"

load_mod $TARGET
target alloc
load_lp $FIX1
target alloc
expect_list "dummy 1
dummy 2 (buffer tracked)"
disable_lp $FIX1
expect_list "dummy 1
dummy 2"
unload_lp $FIX1
unload_mod $TARGET

check_log "% insmod test_modules/$TARGET.ko
% echo alloc > $PROC
$TARGET: dummy 1 allocated
% insmod test_modules/$FIX1.ko
livepatch: enabling patch '$FIX1'
livepatch: '$FIX1': initializing patching transition
livepatch: '$FIX1': starting patching transition
livepatch: '$FIX1': completing patching transition
$FIX1: tracking the buffers of new dummies
livepatch: '$FIX1': patching complete
% echo alloc > $PROC
$FIX1: dummy 2 allocated, buffer tracked
% echo 0 > /sys/kernel/livepatch/$FIX1/enabled
livepatch: '$FIX1': initializing unpatching transition
livepatch: '$FIX1': starting unpatching transition
livepatch: '$FIX1': completing unpatching transition
$FIX1: no longer tracking buffers
$FIX1: dummy 2: buffer freed
livepatch: '$FIX1': unpatching complete
% rmmod $FIX1
% rmmod $TARGET
$TARGET: dummy 1 freed
$TARGET: dummy 2 freed"

exit 0
