#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The livepatch state sample (samples/livepatch/livepatch-state-demo.c):
# a state introduced with its pre_patch, handed over by an atomic replace
# without any callback, removed with its post_unpatch and its shadow
# variable's destructor; block_disable refusing a disable and a replace
# without the state, and lifted by a replace that carries it.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

DEMO1=livepatch_state_demo
DEMO2=livepatch_state_demo2
MOD_REPLACE=test_klp_atomic_replace
SAMPLES=$KDIR/samples/livepatch

dmesg | grep -q 'livepatch: Rust core' ||
	skip "the state model needs the Rust livepatch core"
[[ -e "$SAMPLES/livepatch-state-demo.ko" ]] ||
	skip "livepatch-state-demo.ko is not built (CONFIG_SAMPLE_LIVEPATCH_STATES)"

setup_config

# functions.sh loads "test_modules/<name>.ko"; the module names have
# underscores where the sample files have dashes.
WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
ln -s "$SAMPLES/livepatch-state-demo.ko" "$WORK/test_modules/$DEMO1.ko"
ln -s "$SAMPLES/livepatch-state-demo2.ko" "$WORK/test_modules/$DEMO2.ko"
ln -s "$HERE/../livepatch/test_modules/$MOD_REPLACE.ko" "$WORK/test_modules/"
cd "$WORK" || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

# reads(version) - the read count that /proc/cmdline shows, checking the
# version of the livepatch that prints it
reads() {
	local got n

	got=$(cat /proc/cmdline)
	n=$(echo "$got" | sed -n "s/^state demo v$1: read \([0-9]*\) time(s)$/\1/p")
	[[ -n "$n" ]] || die "/proc/cmdline: '$got', expected livepatch v$1"
	echo "$n"
}

ORIG=$(cat /proc/cmdline)


start_test "state introduced, handed over by replace, removed"

load_lp $DEMO1
n1=$(reads 1) || exit 1
[[ $n1 -ge 1 ]] || die "v1 counted no read"
load_lp $DEMO2
loop_until '[[ ! -e /sys/kernel/livepatch/$DEMO1 ]]' || die "$DEMO1 was not replaced"
unload_lp $DEMO1
# The shadow variable went over to v2 with the state: the count goes on.
n2=$(reads 2) || exit 1
[[ $n2 -gt $n1 ]] || die "v2 count $n2 does not go on from v1's $n1"
disable_lp $DEMO2
unload_lp $DEMO2
expect_cmdline "$ORIG"

check_log "% insmod test_modules/$DEMO1.ko
livepatch: enabling patch '$DEMO1'
livepatch: '$DEMO1': initializing patching transition
$DEMO1: state 93 introduced: counting reads of /proc/cmdline
livepatch: '$DEMO1': starting patching transition
livepatch: '$DEMO1': completing patching transition
livepatch: '$DEMO1': patching complete
% insmod test_modules/$DEMO2.ko
livepatch: enabling patch '$DEMO2'
livepatch: '$DEMO2': initializing patching transition
livepatch: '$DEMO2': starting patching transition
livepatch: '$DEMO2': completing patching transition
livepatch: '$DEMO2': patching complete
% rmmod $DEMO1
% echo 0 > /sys/kernel/livepatch/$DEMO2/enabled
livepatch: '$DEMO2': initializing unpatching transition
livepatch: '$DEMO2': starting unpatching transition
livepatch: '$DEMO2': completing unpatching transition
$DEMO2: state 93 removed
$DEMO2: count freed after N read(s)
livepatch: '$DEMO2': unpatching complete
% rmmod $DEMO2"


start_test "block_disable refuses disable and replace, a replace lifts it"

load_lp $DEMO1 block_disable=1
log "% echo 0 > /sys/kernel/livepatch/$DEMO1/enabled"
if echo 0 2>/dev/null >/sys/kernel/livepatch/$DEMO1/enabled; then
	die "disabling $DEMO1 with block_disable succeeded"
fi
[[ $(cat /sys/kernel/livepatch/$DEMO1/enabled) == 1 ]] || die "$DEMO1 got disabled"
load_failing_mod $MOD_REPLACE replace=1
load_lp $DEMO2
loop_until '[[ ! -e /sys/kernel/livepatch/$DEMO1 ]]' || die "$DEMO1 was not replaced"
unload_lp $DEMO1
disable_lp $DEMO2
unload_lp $DEMO2

check_log "% insmod test_modules/$DEMO1.ko block_disable=1
livepatch: enabling patch '$DEMO1'
livepatch: '$DEMO1': initializing patching transition
$DEMO1: state 93 introduced: counting reads of /proc/cmdline
livepatch: '$DEMO1': starting patching transition
livepatch: '$DEMO1': completing patching transition
livepatch: '$DEMO1': patching complete
% echo 0 > /sys/kernel/livepatch/$DEMO1/enabled
livepatch: '$DEMO1': disabling is blocked by state 93
% insmod test_modules/$MOD_REPLACE.ko replace=1
livepatch: patch '$MOD_REPLACE': replacing '$DEMO1' would drop state 93, which cannot be undone
livepatch: Livepatch patch ($MOD_REPLACE) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_REPLACE.ko: Invalid parameters
% insmod test_modules/$DEMO2.ko
livepatch: enabling patch '$DEMO2'
livepatch: '$DEMO2': initializing patching transition
livepatch: '$DEMO2': starting patching transition
livepatch: '$DEMO2': completing patching transition
livepatch: '$DEMO2': patching complete
% rmmod $DEMO1
% echo 0 > /sys/kernel/livepatch/$DEMO2/enabled
livepatch: '$DEMO2': initializing unpatching transition
livepatch: '$DEMO2': starting unpatching transition
livepatch: '$DEMO2': completing unpatching transition
$DEMO2: state 93 removed
$DEMO2: count freed after N read(s)
livepatch: '$DEMO2': unpatching complete
% rmmod $DEMO2"

exit 0
