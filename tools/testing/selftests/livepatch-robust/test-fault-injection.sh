#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fault injection in the enable, replace and module-coming paths: for
# N = 1, 2, ... the N-th allocation of the insmod task fails (fail-nth
# with failslab), until the load goes through.  Every failed load must
# return a clean error, leave nothing registered and nothing loaded, and,
# when the livepatch core logged anything, name the patch; the patch that
# was there before keeps working; the same load then succeeds.  Leaks are
# found by kmemleak at the end of the suite (debug flavors), warnings by
# the harness after each script.
#
# Needs CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB and
# CONFIG_FAULT_INJECTION_DEBUG_FS (the rust-debug and c-debug flavors).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

MOD_LIVEPATCH=test_klp_livepatch
MOD_REPLACE=test_klp_atomic_replace
MOD_DEMO=test_klp_callbacks_demo
MOD_TARGET=test_klp_callbacks_mod
SYSFS=/sys/kernel/livepatch
FS=/sys/kernel/debug/failslab
MAX=600
KEEP=

[[ -e /proc/self/fail-nth ]] || skip "no fail-nth (CONFIG_FAULT_INJECTION is off in this flavor)"
[[ -d $FS ]] || skip "no $FS (CONFIG_FAILSLAB/CONFIG_FAULT_INJECTION_DEBUG_FS are off)"

setup_config
cd "$HERE/../livepatch" || exit 1

# GFP_KERNEL allocations too, quietly (no stack dump per injected fault).
old_wait=$(cat $FS/ignore-gfp-wait)
old_verbose=$(cat $FS/verbose)
echo N >$FS/ignore-gfp-wait
echo 0 >$FS/verbose
restore_fs() {
	echo "$old_wait" >$FS/ignore-gfp-wait
	echo "$old_verbose" >$FS/verbose
}
trap 'restore_fs; cleanup' EXIT INT TERM HUP

# insmod_nth N MODULE [ARGS]: insmod with the N-th allocation failing;
# prints insmod's error output.
insmod_nth() {
	local n=$1
	shift
	sh -c 'echo "$1" >/proc/self/fail-nth && shift && exec insmod "$@"' \
		sh "$n" "$@" 2>&1
}

mark() {
	local m="fault-injection mark $RANDOM$RANDOM"
	echo "$m" >/dev/kmsg
	echo "$m"
}

log_since() {
	dmesg | awk -v m="$1" 'p; index($0, m) { p = 1 }'
}

module_loaded() {
	grep -q "^$1 " /proc/modules
}

# check_failed_load MOD MARK ERR: what a failed load must leave behind.
check_failed_load() {
	local mod=$1 m=$2 err=$3 klp

	module_loaded "$mod" && die "$mod is loaded after a failed insmod"
	[[ -e $SYSFS/$mod ]] && die "$mod is registered after a failed insmod"
	[[ "$err" == *"ERROR: could not insert module"* ]] ||
		die "insmod of $mod failed without a clean error: $err"
	if [[ -n "$KEEP" ]]; then
		[[ $(cat "$SYSFS/$KEEP/enabled" 2>/dev/null) == 1 ]] ||
			die "$KEEP is no longer enabled after a failed load of $mod"
	fi
	klp=$(log_since "$m" | grep 'livepatch:' | grep -v 'tainting kernel')
	if [[ -n "$klp" ]] && ! grep -q -- "$mod" <<<"$klp"; then
		die "the core logged an error that does not name $mod: $klp"
	fi
}

# inject MOD [ARGS]: fails the 1st, 2nd, ... allocation of loading MOD
# until the load succeeds; prints the number of failed loads.
inject() {
	local mod=$1 n m err
	shift
	for n in $(seq $MAX); do
		m=$(mark)
		if err=$(insmod_nth "$n" "test_modules/$mod.ko" "$@"); then
			echo $((n - 1))
			return 0
		fi
		check_failed_load "$mod" "$m" "$err"
	done
	die "$mod still fails to load with the ${MAX}th allocation failing"
}

wait_done() {
	loop_until "[[ ! -e $SYSFS/$1 ]] || grep -q 0 $SYSFS/$1/transition" ||
		die "the transition of $1 did not end"
}

start_test "enable: every allocation of loading a livepatch fails in turn"

n=$(inject $MOD_LIVEPATCH) || exit 1
wait_done $MOD_LIVEPATCH
echo "$n failed loads of $MOD_LIVEPATCH before it loaded"
[[ $n -gt 0 ]] || die "no allocation failed: fault injection did not work"
[[ $(cat $SYSFS/$MOD_LIVEPATCH/enabled) == 1 ]] || die "$MOD_LIVEPATCH is not enabled"
grep -q "$MOD_LIVEPATCH: this has been live patched" /proc/cmdline ||
	die "$MOD_LIVEPATCH loaded but does not patch /proc/cmdline"


start_test "replace: every allocation of an atomic replace fails in turn"

KEEP=$MOD_LIVEPATCH
n=$(inject $MOD_REPLACE replace=1) || exit 1
KEEP=
wait_done $MOD_REPLACE
echo "$n failed loads of $MOD_REPLACE before it loaded"
[[ $n -gt 0 ]] || die "no allocation failed: fault injection did not work"
loop_until "[[ ! -e $SYSFS/$MOD_LIVEPATCH ]]" || die "$MOD_LIVEPATCH was not replaced"
grep -q "$MOD_REPLACE: this has been live patched" /proc/cmdline ||
	die "$MOD_REPLACE does not patch /proc/cmdline"
unload_lp $MOD_LIVEPATCH
disable_lp $MOD_REPLACE
unload_lp $MOD_REPLACE


start_test "module coming: every allocation of loading a patched module fails in turn"

load_lp $MOD_DEMO
KEEP=$MOD_DEMO
n=$(inject $MOD_TARGET) || exit 1
KEEP=
echo "$n failed loads of $MOD_TARGET before it loaded"
[[ $n -gt 0 ]] || die "no allocation failed: fault injection did not work"
[[ $(cat $SYSFS/$MOD_DEMO/$MOD_TARGET/patched) == 1 ]] ||
	die "$MOD_TARGET loaded but is not patched"
[[ $(cat $SYSFS/$MOD_DEMO/enabled) == 1 ]] || die "$MOD_DEMO got disabled"
unload_mod $MOD_TARGET
disable_lp $MOD_DEMO
unload_lp $MOD_DEMO
[[ -z $(ls $SYSFS) ]] || die "livepatches left registered: $(ls $SYSFS)"

exit 0
