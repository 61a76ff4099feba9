#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The upstream C samples of samples/livepatch, unchanged, as their header
# comments use them (livepatch-sample.c has its own tests):
# - livepatch-callbacks-demo with its targets: livepatch-callbacks-busymod
#   keeps the patching transition open in a function the patch changes,
#   livepatch-callbacks-mod comes and goes meanwhile; the callbacks of
#   every object run as Documentation/livepatch/callbacks.rst describes;
# - livepatch-shadow-mod, whose dummies leak; livepatch-shadow-fix1 fixes
#   the leak for new dummies with a shadow variable, livepatch-shadow-fix2
#   adds a counter in a second one; disabling them frees the shadow
#   variables.
# The log of each is checked as an ordered list of the lines that matter
# (the samples' own messages carry pointers and jiffies).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

SAMPLES=$KDIR/samples/livepatch
DEMO=livepatch_callbacks_demo
BUSY=livepatch_callbacks_busymod
MOD=livepatch_callbacks_mod
SHADOW=livepatch_shadow_mod
FIX1=livepatch_shadow_fix1
FIX2=livepatch_shadow_fix2

for f in $DEMO $BUSY $MOD $SHADOW $FIX1 $FIX2; do
	[[ -e "$SAMPLES/${f//_/-}.ko" ]] ||
		skip "${f//_/-}.ko is not built (CONFIG_SAMPLE_LIVEPATCH)"
done

setup_config

# functions.sh loads "test_modules/<name>.ko"; module names have
# underscores where the sample files have dashes.
WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
for f in $DEMO $BUSY $MOD $SHADOW $FIX1 $FIX2; do
	ln -s "$SAMPLES/${f//_/-}.ko" "$WORK/test_modules/$f.ko"
done
cd "$WORK" || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

# new_log - the kernel log since the start of the test, without timestamps
new_log() {
	dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' |
		sed 's/^\[[ 0-9.]*\] //'
}

# expect_in_order(line...) - each line begins a line of the log of the
# test, after the line that the previous one began
expect_in_order() {
	local rest want

	rest=$(new_log)
	for want in "$@"; do
		rest=$(awk -v w="$want" 'found { print; next }
			index($0, w) == 1 { found = 1 } END { exit !found }' <<<"$rest") ||
			die "the kernel did not log '$want' (after the lines before it)"
	done
}


start_test "callbacks demo: a target busy in the patched function, another coming and going"

# The busy work must outlast the loading and removal of $MOD below: 10
# seconds, times KLP_SLOWDOWN on a slow (debug) kernel.
BUSY_SECS=$((10 * ${KLP_SLOWDOWN:-1}))
log "% insmod test_modules/$BUSY.ko sleep_secs=$BUSY_SECS"
insmod "test_modules/$BUSY.ko" sleep_secs=$BUSY_SECS || die "insmod $BUSY"
loop_until 'new_log | grep -q "busymod_work_func, sleeping $BUSY_SECS seconds"' ||
	die "$BUSY did not start its work"
load_lp_nowait $DEMO
check_sysfs_value $DEMO transition 1
load_mod $MOD
unload_mod $MOD
loop_until 'grep -q "^0$" /sys/kernel/livepatch/$DEMO/transition' ||
	die "the transition of $DEMO did not complete"
disable_lp $DEMO
unload_lp $DEMO
unload_mod $BUSY

expect_in_order \
	"$BUSY: busymod_work_func, sleeping $BUSY_SECS seconds ..." \
	"livepatch: enabling patch '$DEMO'" \
	"livepatch: '$DEMO': initializing patching transition" \
	"$DEMO: pre_patch_callback: vmlinux" \
	"$DEMO: pre_patch_callback: $BUSY -> [MODULE_STATE_LIVE] Normal state" \
	"livepatch: '$DEMO': starting patching transition" \
	"livepatch: applying patch '$DEMO' to loading module '$MOD'" \
	"$DEMO: pre_patch_callback: $MOD -> [MODULE_STATE_COMING] Full formed, running module_init" \
	"$MOD: livepatch_callbacks_mod_init" \
	"$MOD: livepatch_callbacks_mod_exit" \
	"livepatch: reverting patch '$DEMO' on unloading module '$MOD'" \
	"$DEMO: post_unpatch_callback: $MOD -> [MODULE_STATE_GOING] Going away" \
	"$BUSY: busymod_work_func exit" \
	"livepatch: '$DEMO': completing patching transition" \
	"$DEMO: post_patch_callback: vmlinux" \
	"$DEMO: post_patch_callback: $BUSY -> [MODULE_STATE_LIVE] Normal state" \
	"livepatch: '$DEMO': patching complete" \
	"livepatch: '$DEMO': initializing unpatching transition" \
	"$DEMO: pre_unpatch_callback: vmlinux" \
	"$DEMO: pre_unpatch_callback: $BUSY -> [MODULE_STATE_LIVE] Normal state" \
	"livepatch: '$DEMO': unpatching complete" \
	"$BUSY: livepatch_callbacks_mod_exit"
echo "ok"


start_test "shadow variable demo: the leak, fixed by fix1, extended by fix2"

load_mod $SHADOW
# Let it allocate some dummies that will leak.
sleep 3
load_lp $FIX1
# Dummies expire after 12 s and are freed every 3 s: the old ones leak,
# the new ones no more.
loop_until 'new_log | grep -q "^$FIX1: livepatch_fix1_dummy_free: dummy @ .* leaked!"' ||
	die "fix1 did not see a leaking dummy"
loop_until 'new_log | grep -q "^$FIX1: livepatch_fix1_dummy_leak_dtor: dummy @ .*, prevented leak @"' ||
	die "fix1 did not free a dummy's leak"
load_lp $FIX2
loop_until 'new_log | grep -q "^$FIX2: livepatch_fix2_dummy_free: dummy @ .*, check counter = [1-9]"' ||
	die "fix2 did not count the checks of a dummy"
loop_until 'new_log | grep -q "^$FIX2: livepatch_fix2_dummy_leak_dtor: dummy @ .*, prevented leak @"' ||
	die "fix2 did not free a dummy's leak"
disable_lp $FIX2
disable_lp $FIX1
unload_lp $FIX2
unload_lp $FIX1
# Where the module's code is, to know its leaks once it is gone (kmemleak
# then shows their call chains as bare addresses).
KML=/sys/kernel/debug/kmemleak
if [[ -w "$KML" ]]; then
	SHADOW_TEXT=$(cat /sys/module/$SHADOW/sections/.text) || die "no .text of $SHADOW"
	SHADOW_SIZE=$(cat /sys/module/$SHADOW/coresize) || die "no coresize of $SHADOW"
fi
unload_mod $SHADOW

expect_in_order \
	"dummy_alloc: dummy @ " \
	"livepatch: enabling patch '$FIX1'" \
	"livepatch: '$FIX1': patching complete" \
	"$FIX1: livepatch_fix1_dummy_alloc: dummy @ " \
	"livepatch: enabling patch '$FIX2'" \
	"livepatch: '$FIX2': patching complete" \
	"livepatch: '$FIX2': unpatching complete" \
	"livepatch: '$FIX1': unpatching complete"

# livepatch-shadow-mod leaks by design (the dummies allocated without a
# fix): with kmemleak (debug kernels), there must be such leaks and no
# other; they are then cleared, so that the suite's final scan judges the
# rest.  kmemleak reports an object only from the second scan after its
# allocation.  An object is the module's when a frame of its call chain
# lies in the module's code.
if [[ -w "$KML" ]]; then
	sleep 6
	echo scan > "$KML"
	echo scan > "$KML"
	lo=$((SHADOW_TEXT)) hi=$((SHADOW_TEXT + SHADOW_SIZE)) mine=0 others=0 obj=""
	while read -r line; do
		case "$line" in
		"unreferenced object"*)
			[[ -n "$obj" ]] && { [[ "$obj" == mine ]] && ((++mine)) || ((++others)); }
			obj=other ;;
		0x*)
			addr=$((${line%% *}))
			((addr >= lo && addr < hi)) && obj=mine ;;
		esac
	done < <(sed 's/^ *//' "$KML")
	[[ -n "$obj" ]] && { [[ "$obj" == mine ]] && ((++mine)) || ((++others)); }
	((mine > 0)) || die "kmemleak reports no leak of $SHADOW"
	((others == 0)) || die "kmemleak reports $others leak(s) besides $SHADOW's: $(head -n 40 "$KML")"
	echo clear > "$KML"
fi
echo "ok"

exit 0
