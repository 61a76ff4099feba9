#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Rust state demo (samples/livepatch/rust_livepatch_state_demo.rs and
# rust_livepatch_state_demo2.rs), a state declared through the Rust
# livepatch API:
# - v1 introduces the state: its pre_patch callback creates the feature's
#   data (a typed shadow variable that the state owns), post_patch turns
#   the feature on, visible in /proc/cmdline;
# - v2 replaces v1 and takes the state over: no callback runs, the feature
#   stays on with v1's data; its state blocks disable, and a C livepatch
#   without the state cannot replace it;
# - v1 replaces v2 and lifts the block; disabling it runs pre_unpatch
#   (feature off) and post_unpatch, then the core drops the data;
# - v2 introducing the state itself runs its own callbacks.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

DEMO1=rust_livepatch_state_demo
DEMO2=rust_livepatch_state_demo2
MOD_REPLACE=test_klp_atomic_replace
SAMPLES=$KDIR/samples/livepatch

dmesg | grep -q 'livepatch: Rust core' ||
	skip "livepatch states need the Rust livepatch core"
for f in $DEMO1 $DEMO2; do
	[[ -e "$SAMPLES/$f.ko" ]] ||
		skip "$f.ko is not built (CONFIG_SAMPLE_LIVEPATCH_RUST_STATES)"
done

setup_config

# functions.sh loads "test_modules/<name>.ko" from the working directory.
WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
ln -s "$SAMPLES/$DEMO1.ko" "$SAMPLES/$DEMO2.ko" "$WORK/test_modules/"
ln -s "$HERE/../livepatch/test_modules/$MOD_REPLACE.ko" "$WORK/test_modules/"
cd "$WORK" || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

# disable_blocked(mod) - writing 0 to the livepatch's enabled file fails
# and the livepatch stays enabled
disable_blocked() {
	log "% echo 0 > /sys/kernel/livepatch/$1/enabled"
	if echo 0 2>/dev/null >"/sys/kernel/livepatch/$1/enabled"; then
		die "disabling $1 succeeded despite block_disable"
	fi
	[[ $(cat "/sys/kernel/livepatch/$1/enabled") == 1 ]] || die "$1 got disabled"
}

ORIG=$(cat /proc/cmdline)


start_test "Rust state: introduced, taken over, blocking, lifted, removed"

load_lp $DEMO1
expect_cmdline "rust state demo v1: feature on, introduced by v1"
load_lp $DEMO2
loop_until '[[ ! -e /sys/kernel/livepatch/$DEMO1 ]]' || die "$DEMO1 was not replaced"
unload_lp $DEMO1
expect_cmdline "rust state demo v2: feature on, introduced by v1"
disable_blocked $DEMO2
load_failing_mod $MOD_REPLACE replace=1
expect_cmdline "rust state demo v2: feature on, introduced by v1"
load_lp $DEMO1
loop_until '[[ ! -e /sys/kernel/livepatch/$DEMO2 ]]' || die "$DEMO2 was not replaced"
unload_lp $DEMO2
expect_cmdline "rust state demo v1: feature on, introduced by v1"
disable_lp $DEMO1
unload_lp $DEMO1
expect_cmdline "$ORIG"

check_log "% insmod test_modules/$DEMO1.ko
livepatch: enabling patch '$DEMO1'
livepatch: '$DEMO1': initializing patching transition
$DEMO1: state 94: introduced by v1
livepatch: '$DEMO1': starting patching transition
livepatch: '$DEMO1': completing patching transition
$DEMO1: state 94: feature on
livepatch: '$DEMO1': patching complete
% insmod test_modules/$DEMO2.ko
livepatch: enabling patch '$DEMO2'
livepatch: '$DEMO2': initializing patching transition
livepatch: '$DEMO2': starting patching transition
livepatch: '$DEMO2': completing patching transition
livepatch: '$DEMO2': patching complete
% rmmod $DEMO1
% echo 0 > /sys/kernel/livepatch/$DEMO2/enabled
livepatch: '$DEMO2': disabling is blocked by state 94
% insmod test_modules/$MOD_REPLACE.ko replace=1
livepatch: patch '$MOD_REPLACE': replacing '$DEMO2' would drop state 94, which cannot be undone
livepatch: Livepatch patch ($MOD_REPLACE) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_REPLACE.ko: Invalid parameters
% insmod test_modules/$DEMO1.ko
livepatch: enabling patch '$DEMO1'
livepatch: '$DEMO1': initializing patching transition
livepatch: '$DEMO1': starting patching transition
livepatch: '$DEMO1': completing patching transition
livepatch: '$DEMO1': patching complete
% rmmod $DEMO2
% echo 0 > /sys/kernel/livepatch/$DEMO1/enabled
livepatch: '$DEMO1': initializing unpatching transition
$DEMO1: state 94: feature off
livepatch: '$DEMO1': starting unpatching transition
livepatch: '$DEMO1': completing unpatching transition
$DEMO1: state 94: removed by v1
$DEMO1: state 94: feature data freed
livepatch: '$DEMO1': unpatching complete
% rmmod $DEMO1"


start_test "Rust state: introduced by the blocking version, replaced to go"

load_lp $DEMO2
expect_cmdline "rust state demo v2: feature on, introduced by v2"
disable_blocked $DEMO2
load_lp $DEMO1
loop_until '[[ ! -e /sys/kernel/livepatch/$DEMO2 ]]' || die "$DEMO2 was not replaced"
unload_lp $DEMO2
expect_cmdline "rust state demo v1: feature on, introduced by v2"
disable_lp $DEMO1
unload_lp $DEMO1
expect_cmdline "$ORIG"

check_log "% insmod test_modules/$DEMO2.ko
livepatch: enabling patch '$DEMO2'
livepatch: '$DEMO2': initializing patching transition
$DEMO2: state 94: introduced by v2
livepatch: '$DEMO2': starting patching transition
livepatch: '$DEMO2': completing patching transition
$DEMO2: state 94: feature on
livepatch: '$DEMO2': patching complete
% echo 0 > /sys/kernel/livepatch/$DEMO2/enabled
livepatch: '$DEMO2': disabling is blocked by state 94
% insmod test_modules/$DEMO1.ko
livepatch: enabling patch '$DEMO1'
livepatch: '$DEMO1': initializing patching transition
livepatch: '$DEMO1': starting patching transition
livepatch: '$DEMO1': completing patching transition
livepatch: '$DEMO1': patching complete
% rmmod $DEMO2
% echo 0 > /sys/kernel/livepatch/$DEMO1/enabled
livepatch: '$DEMO1': initializing unpatching transition
$DEMO1: state 94: feature off
livepatch: '$DEMO1': starting unpatching transition
livepatch: '$DEMO1': completing unpatching transition
$DEMO1: state 94: removed by v1
$DEMO1: state 94: feature data freed
livepatch: '$DEMO1': unpatching complete
% rmmod $DEMO1"

exit 0
