#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Rust and C livepatches with states, stacked and replacing each other:
# - a Rust livepatch stacked on a C one, then disabled: the C one is back;
# - a Rust livepatch with a state (rust_livepatch_state_demo) atomically
#   replaces a C one with another state (livepatch-state-demo): the C
#   state is removed through its C callbacks and C shadow destructor, the
#   Rust state introduced through its Rust callbacks;
# - a C livepatch stacked on the Rust one, then disabled;
# - a C livepatch with a state (livepatch-state-demo2) replaces the Rust
#   one: the Rust state is removed through its Rust callbacks and its
#   shadow data dropped, the C state introduced.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

C_DEMO1=livepatch_state_demo
C_DEMO2=livepatch_state_demo2
C_LP=test_klp_livepatch
RUST_LP=rust_livepatch_cmdline
RUST_DEMO=rust_livepatch_state_demo
SAMPLES=$KDIR/samples/livepatch

dmesg | grep -q 'livepatch: Rust core' ||
	skip "livepatch states need the Rust livepatch core"
for f in livepatch-state-demo livepatch-state-demo2 $RUST_LP $RUST_DEMO; do
	[[ -e "$SAMPLES/$f.ko" ]] || skip "$f.ko is not built"
done

setup_config

# functions.sh loads "test_modules/<name>.ko"; module names have
# underscores where the sample files have dashes.
WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
ln -s "$SAMPLES/livepatch-state-demo.ko" "$WORK/test_modules/$C_DEMO1.ko"
ln -s "$SAMPLES/livepatch-state-demo2.ko" "$WORK/test_modules/$C_DEMO2.ko"
ln -s "$SAMPLES/$RUST_LP.ko" "$SAMPLES/$RUST_DEMO.ko" "$WORK/test_modules/"
ln -s "$HERE/../livepatch/test_modules/$C_LP.ko" "$WORK/test_modules/"
cd "$WORK" || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

# expect_cmdline_re(regex) - /proc/cmdline matches the extended regex
expect_cmdline_re() {
	local got

	got=$(cat /proc/cmdline)
	[[ "$got" =~ ^$1$ ]] ||
		die "/proc/cmdline: '$got', expected /$1/"
}

ORIG=$(cat /proc/cmdline)
RUST_MSG="this has been live patched by a Rust livepatch"
C_MSG="$C_LP: this has been live patched"


start_test "Rust on C: stacked, then a Rust state replaces a C state"

load_lp $C_DEMO1
expect_cmdline_re "state demo v1: read [0-9]+ time\(s\)"
load_lp $RUST_LP
expect_cmdline "$RUST_MSG"
disable_lp $RUST_LP
unload_lp $RUST_LP
expect_cmdline_re "state demo v1: read [0-9]+ time\(s\)"
load_lp $RUST_DEMO
loop_until '[[ ! -e /sys/kernel/livepatch/$C_DEMO1 ]]' || die "$C_DEMO1 was not replaced"
unload_lp $C_DEMO1
expect_cmdline "rust state demo v1: feature on, introduced by v1"

check_log "% insmod test_modules/$C_DEMO1.ko
livepatch: enabling patch '$C_DEMO1'
livepatch: '$C_DEMO1': initializing patching transition
$C_DEMO1: state 93 introduced: counting reads of /proc/cmdline
livepatch: '$C_DEMO1': starting patching transition
livepatch: '$C_DEMO1': completing patching transition
livepatch: '$C_DEMO1': patching complete
% insmod test_modules/$RUST_LP.ko
livepatch: enabling patch '$RUST_LP'
livepatch: '$RUST_LP': initializing patching transition
livepatch: '$RUST_LP': starting patching transition
livepatch: '$RUST_LP': completing patching transition
livepatch: '$RUST_LP': patching complete
% echo 0 > /sys/kernel/livepatch/$RUST_LP/enabled
livepatch: '$RUST_LP': initializing unpatching transition
livepatch: '$RUST_LP': starting unpatching transition
livepatch: '$RUST_LP': completing unpatching transition
livepatch: '$RUST_LP': unpatching complete
% rmmod $RUST_LP
% insmod test_modules/$RUST_DEMO.ko
livepatch: enabling patch '$RUST_DEMO'
livepatch: '$RUST_DEMO': initializing patching transition
$RUST_DEMO: state 94: introduced by v1
livepatch: '$RUST_DEMO': starting patching transition
livepatch: '$RUST_DEMO': completing patching transition
$C_DEMO1: state 93 removed
$C_DEMO1: count freed after N read(s)
$RUST_DEMO: state 94: feature on
livepatch: '$RUST_DEMO': patching complete
% rmmod $C_DEMO1"


start_test "C on Rust: stacked, then a C state replaces a Rust state"

load_lp $C_LP
expect_cmdline "$C_MSG"
disable_lp $C_LP
unload_lp $C_LP
expect_cmdline "rust state demo v1: feature on, introduced by v1"
load_lp $C_DEMO2
loop_until '[[ ! -e /sys/kernel/livepatch/$RUST_DEMO ]]' || die "$RUST_DEMO was not replaced"
unload_lp $RUST_DEMO
expect_cmdline_re "state demo v2: read [0-9]+ time\(s\)"
disable_lp $C_DEMO2
unload_lp $C_DEMO2
expect_cmdline "$ORIG"

check_log "% insmod test_modules/$C_LP.ko
livepatch: enabling patch '$C_LP'
livepatch: '$C_LP': initializing patching transition
livepatch: '$C_LP': starting patching transition
livepatch: '$C_LP': completing patching transition
livepatch: '$C_LP': patching complete
% echo 0 > /sys/kernel/livepatch/$C_LP/enabled
livepatch: '$C_LP': initializing unpatching transition
livepatch: '$C_LP': starting unpatching transition
livepatch: '$C_LP': completing unpatching transition
livepatch: '$C_LP': unpatching complete
% rmmod $C_LP
% insmod test_modules/$C_DEMO2.ko
livepatch: enabling patch '$C_DEMO2'
livepatch: '$C_DEMO2': initializing patching transition
$C_DEMO2: state 93 introduced: counting reads of /proc/cmdline
$RUST_DEMO: state 94: feature off
livepatch: '$C_DEMO2': starting patching transition
livepatch: '$C_DEMO2': completing patching transition
$RUST_DEMO: state 94: removed by v1
$RUST_DEMO: state 94: feature data freed
livepatch: '$C_DEMO2': patching complete
% rmmod $RUST_DEMO
% echo 0 > /sys/kernel/livepatch/$C_DEMO2/enabled
livepatch: '$C_DEMO2': initializing unpatching transition
livepatch: '$C_DEMO2': starting unpatching transition
livepatch: '$C_DEMO2': completing unpatching transition
$C_DEMO2: state 93 removed
$C_DEMO2: count freed after N read(s)
livepatch: '$C_DEMO2': unpatching complete
% rmmod $C_DEMO2"

exit 0
