#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress: enable, disable and atomically replace livepatches, C and Rust,
# with states and shadow variables, KLP_STRESS_OPS times (default 45
# operations), while the guest forks and execs, loads and unloads a
# patched target module, and keeps tasks running in a patched function.
# Each round the state sample's shadow variable is freed exactly once;
# at the end nothing is registered or loaded, and the harness finds the log
# clean (kmemleak scans after the suite in the debug flavors).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

OPS=${KLP_STRESS_OPS:-45}
SYSFS=/sys/kernel/livepatch
SAMPLES=$KDIR/samples/livepatch
UP=$HERE/../livepatch/test_modules

C_LP=test_klp_livepatch
C_REPLACE=test_klp_atomic_replace
DEMO=test_klp_callbacks_demo
TARGET=test_klp_callbacks_mod
RUST_LP=rust_livepatch_cmdline
STATE1=livepatch_state_demo
STATE2=livepatch_state_demo2

for ko in "$SAMPLES/rust_livepatch_cmdline.ko" "$SAMPLES/livepatch-state-demo.ko" \
	  "$SAMPLES/livepatch-state-demo2.ko"; do
	[[ -e "$ko" ]] || skip "$(basename "$ko") is not built"
done
dmesg | grep -q 'livepatch: Rust core' || STATE1=

setup_config

WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
for m in $C_LP $C_REPLACE $DEMO $TARGET; do
	ln -s "$UP/$m.ko" "$WORK/test_modules/"
done
ln -s "$SAMPLES/rust_livepatch_cmdline.ko" "$WORK/test_modules/$RUST_LP.ko"
ln -s "$SAMPLES/livepatch-state-demo.ko" "$WORK/test_modules/$STATE1.ko" 2>/dev/null
ln -s "$SAMPLES/livepatch-state-demo2.ko" "$WORK/test_modules/$STATE2.ko" 2>/dev/null
cd "$WORK" || exit 1

bg=()
stop_bg() {
	[[ ${#bg[@]} -gt 0 ]] && kill "${bg[@]}" 2>/dev/null
	wait 2>/dev/null
	bg=()
}
trap 'stop_bg; cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

lp_insmod() {
	insmod "test_modules/$1.ko" "${@:2}" >/dev/null 2>&1 ||
		die "insmod $1 failed"
}

wait_idle() {
	loop_until "[[ ! -e $SYSFS/$1 ]] || grep -q 0 $SYSFS/$1/transition" ||
		die "the transition of $1 did not end"
}

lp_disable() {
	echo 0 >"$SYSFS/$1/enabled" || die "disabling $1 failed"
	loop_until "[[ ! -e $SYSFS/$1 ]]" || die "$1 did not go away"
}

lp_rmmod() {
	loop_until "rmmod $1 2>/dev/null" || die "rmmod $1 failed"
}

start_test "$OPS enable/disable/replace operations under load"

# Load: fork and exec, readers of the patched /proc/cmdline, a patched
# module coming and going.
( while :; do /bin/true; done ) & bg+=($!)
( while :; do cat /proc/cmdline >/dev/null; done ) & bg+=($!)
( while :; do cat /proc/cmdline >/dev/null; done ) & bg+=($!)
lp_insmod $DEMO
wait_idle $DEMO
(
	while :; do
		insmod "test_modules/$TARGET.ko" 2>/dev/null
		rmmod $TARGET 2>/dev/null
	done
) & bg+=($!)

done_ops=0
round=0
while [[ $done_ops -lt $OPS ]]; do
	round=$((round + 1))
	# C patch, replaced by a C patch, disabled: 3 operations.
	lp_insmod $C_LP; wait_idle $C_LP
	lp_insmod $C_REPLACE replace=1; wait_idle $C_REPLACE
	loop_until "[[ ! -e $SYSFS/$C_LP ]]" || die "$C_LP was not replaced"
	lp_rmmod $C_LP
	# The replace also took over the demo patch: it goes with it.
	loop_until "[[ ! -e $SYSFS/$DEMO ]]" || die "$DEMO was not replaced"
	lp_rmmod $DEMO
	lp_disable $C_REPLACE; lp_rmmod $C_REPLACE
	# Rust patch enabled and disabled: 2 operations.
	lp_insmod $RUST_LP; wait_idle $RUST_LP
	lp_disable $RUST_LP; lp_rmmod $RUST_LP
	done_ops=$((done_ops + 5))
	# States with a shadow variable, handed over by a replace: 3.
	if [[ -n "$STATE1" ]]; then
		m="stress round $round $RANDOM$RANDOM"
		echo "$m" >/dev/kmsg
		lp_insmod $STATE1; wait_idle $STATE1
		lp_insmod $STATE2; wait_idle $STATE2
		loop_until "[[ ! -e $SYSFS/$STATE1 ]]" || die "$STATE1 was not replaced"
		lp_rmmod $STATE1
		lp_disable $STATE2; lp_rmmod $STATE2
		freed=$(dmesg | awk -v m="$m" 'p; index($0, m) { p = 1 }' |
			grep -c "$STATE2: count freed after")
		[[ $freed == 1 ]] ||
			die "round $round: the state's shadow variable was freed $freed times, not once"
		done_ops=$((done_ops + 3))
	fi
	# The module-coming patch again, for the next round's replace.
	lp_insmod $DEMO; wait_idle $DEMO
	done_ops=$((done_ops + 1))
done
stop_bg
rmmod $TARGET 2>/dev/null
lp_disable $DEMO
lp_rmmod $DEMO
echo "$done_ops operations in $round rounds"

[[ -z $(ls $SYSFS) ]] || die "livepatches left registered: $(ls $SYSFS)"
grep -q -e "$C_LP" -e "$C_REPLACE" -e "$RUST_LP" /proc/cmdline &&
	die "/proc/cmdline still patched: $(cat /proc/cmdline)"
for m in $C_LP $C_REPLACE $DEMO $TARGET $RUST_LP $STATE1 $STATE2; do
	grep -q "^$m " /proc/modules && die "$m is still loaded"
done

exit 0
