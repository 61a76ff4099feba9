#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress: enable, disable and atomically replace livepatches, C and Rust,
# with states and shadow variables, KLP_STRESS_OPS times (default 45
# operations), while the guest forks and execs, loads and unloads a
# patched target module, and keeps tasks running in a patched function.
# Each round the state sample's shadow variable is freed exactly once.  At
# the end nothing is registered or loaded, the kmalloc and kernfs caches hold
# as many objects as after the first round (within SLAB_SLACK), and the
# harness finds the log clean (kmemleak scans after the suite in the debug
# flavors).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

OPS=${KLP_STRESS_OPS:-45}
# How many more kmalloc/kernfs objects may be in use at the end than after
# the first round, for what the rest of the kernel does meanwhile.  Read
# once, the counts moved by -433 to +246 (slab_objects says why); read as
# below, by -43 to +27 in four runs of 18 operations.  A leak of a few
# objects per operation shows at 45 operations; at 1,000 (KLP_STRESS_OPS)
# a leak of one object every four operations does.
# kmemleak, in the debug flavors, finds any single leaked object.
SLAB_SLACK=${KLP_STRESS_SLAB_SLACK:-256}
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

# Objects in use in the kmalloc caches and in kernfs (the sysfs nodes of
# patches), one "cache count" line each.  /proc/slabinfo overcounts in two
# ways.  SLUB counts the free objects of a CPU's current slab as in use:
# shrinking every cache flushes those slabs, but one allocation from a cache
# after its flush makes it count a whole slab again (up to 511 objects more
# in kmalloc-8).  And objects freed after an RCU grace period, kernfs nodes
# among them, still count until it ends.  Both only add, so each count is
# the least of several readings, taken until one finds no cache lower (at
# least three, at most ten, a second apart).  Each reading drops dentries
# and inodes first (with them the 9p fids of the guest's root file system),
# and the shrink drains KASAN's quarantine.
slab_read() {
	local f name active rest

	echo 3 >/proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do
		echo 1 >"$f" 2>/dev/null
	done
	# The shell's own read: no fork (and its allocations) after the flush.
	while read -r name active rest; do
		case $name in
		kmalloc-*|kernfs_node_cache) echo "$name $active" ;;
		esac
	done </proc/slabinfo
}

slab_objects() {
	local try

	sync
	slab_read >"$WORK/slab.try"
	LC_ALL=C sort "$WORK/slab.try" >"$WORK/slab.min"
	for try in 2 3 4 5 6 7 8 9 10; do
		sleep 1
		slab_read >"$WORK/slab.try"
		LC_ALL=C sort "$WORK/slab.try" |
			LC_ALL=C join -o 0,1.2,2.2 "$WORK/slab.min" - |
			awk '{ print $1, ($3 < $2 ? $3 : $2) }' >"$WORK/slab.new"
		if [[ $try -ge 3 ]] && cmp -s "$WORK/slab.new" "$WORK/slab.min"; then
			break
		fi
		mv "$WORK/slab.new" "$WORK/slab.min"
	done
	echo "slab counts: the least of $try readings" >&2
	cat "$WORK/slab.min"
}

# The caches whose counts changed from the snapshot $1 to $2, and the sum of
# the changes on the last line.
slab_delta() {
	LC_ALL=C join -a1 -a2 -e 0 -o 0,1.2,2.2 "$1" "$2" |
		awk '{ d = $3 - $2; t += d; if (d) print $1, $2, "->", $3 } END { print t + 0 }'
}

# One phase: the load starts, operations run until $1 are done in all, and
# everything stops and is unloaded again.
run_phase() {
	# Load: fork and exec, readers of the patched /proc/cmdline, a
	# patched module coming and going.
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

	while [[ $done_ops -lt $1 ]]; do
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
	loop_until "rmmod $TARGET 2>/dev/null || ! grep -q '^$TARGET ' /proc/modules" ||
		die "rmmod $TARGET failed"
	lp_disable $DEMO
	lp_rmmod $DEMO
}

start_test "$OPS enable/disable/replace operations under load"

done_ops=0
round=0
# The first round warms up what the kernel allocates once and keeps (ftrace
# and module bookkeeping, for one); the slab counts are compared from there.
run_phase 1
slab_objects >"$WORK/slab.before"
run_phase "$OPS"
slab_objects >"$WORK/slab.after"
echo "$done_ops operations in $round rounds"

[[ -z $(ls $SYSFS) ]] || die "livepatches left registered: $(ls $SYSFS)"
grep -q -e "$C_LP" -e "$C_REPLACE" -e "$RUST_LP" /proc/cmdline &&
	die "/proc/cmdline still patched: $(cat /proc/cmdline)"
for m in $C_LP $C_REPLACE $DEMO $TARGET $RUST_LP $STATE1 $STATE2; do
	grep -q "^$m " /proc/modules && die "$m is still loaded"
done

# Every operation after the first round frees what it allocated; what the
# rest of the kernel did meanwhile stays within SLAB_SLACK.
slab_delta "$WORK/slab.before" "$WORK/slab.after" >"$WORK/slab.delta"
grew=$(tail -n 1 "$WORK/slab.delta")
echo "slab objects in use after the first round and at the end: ${grew} more"
head -n -1 "$WORK/slab.delta" | sed 's/^/  /'
[[ $grew -le $SLAB_SLACK ]] ||
	die "$grew more slab objects in use than after the first round (bound: $SLAB_SLACK)"

exit 0
