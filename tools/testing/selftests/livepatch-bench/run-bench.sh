#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-bench.sh - the livepatch benchmarks, run inside the VM that
# "scripts/klp bench" boots (QEMU -icount shift=0: the guest clock counts
# executed instructions, 1 ns each).  BENCHMARKS.md describes each measure.
#
#   run-bench.sh [-r RUNS] [GROUP...]
#
# GROUP: call (per-call cost of a patched function), ops (enable, disable,
# replace of 1/100/1,000 functions and their memory), trans (transitions
# with 1,000 sleeping or busy tasks), shadow (shadow variables); all of them
# by default (call ops shadow trans), RUNS times (default 3).
#
# Output: "BENCH <measure> <run> <value>", the unit being the suffix of the
# measure's name (_ns, _us, _bytes), and "BENCH-INFO <key> <value>" lines
# about the guest.  Nothing is printed on success otherwise; a failure
# prints "BENCH-ERROR <what>" and exits non-zero.

set -u

RUNS=3
while getopts r: o; do
	case $o in
	r) RUNS=$OPTARG ;;
	*) echo "usage: $0 [-r RUNS] [call|ops|trans|shadow]..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
GROUPS_RUN=${*:-call ops shadow trans}

CALLS=${BENCH_CALLS:-500000}		# calls per call measure
SHADOW_OPS=${BENCH_SHADOW_OPS:-2000}	# operations per shadow measure
NTASKS=${BENCH_TASKS:-1000}		# tasks of the transition measures
SIZES="1 100 1000"

SRC=$(cd "$(dirname "$0")" && pwd)/test_modules
SYS=/sys/kernel/livepatch
CTL=/sys/kernel/debug/test_klp_bench/ctl
RUN=0

fail() {
	echo "BENCH-ERROR $*"
	dmesg | tail -n 20 | sed 's/^/# /'
	exit 1
}
out() { echo "BENCH $1 $RUN $2"; }

# Work from a tmpfs: no 9p reads while measuring.
WORK=$(mktemp -d /tmp/klp-bench.XXXXXX) || fail "mktemp"
mount -t tmpfs -o size=64m tmpfs "$WORK" || fail "mount tmpfs"
cp "$SRC"/*.ko "$WORK"/ || fail "no modules in $SRC"
mkfifo "$WORK/fifo"
exec 9<>"$WORK/fifo"
cleanup() {
	exec 9>&-
	umount "$WORK" 2>/dev/null
	rmdir "$WORK" 2>/dev/null
}
trap cleanup EXIT

# sleep_ms N: sleeps without forking (so that nothing else runs).
sleep_ms() {
	local s
	printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
	read -r -t "$s" -u 9 _ || true
}

# NOW: microseconds of the guest clock, without forking.
now() { NOW=${EPOCHREALTIME/./}; NOW=$((10#$NOW)); }

# wait_for COND...: polls COND every 2 ms, for at most 600 s of guest time.
wait_for() {
	local t0 t
	now
	t0=$NOW
	until "$@"; do
		sleep_ms 2
		now
		t=$NOW
		[ $((t - t0)) -lt 600000000 ] || fail "timeout waiting for: $*"
	done
}
transition_done() { local v; read -r v <"$SYS/$1/transition" && [ "$v" = 0 ]; }
patch_gone() { [ ! -d "$SYS/$1" ]; }

lp_insmod() { insmod "$WORK/test_klp_bench_$1.ko" || fail "insmod $1"; }
lp_enable_ns() { local v; read -r v <"/sys/module/test_klp_bench_$1/parameters/enable_ns"; echo "$v"; }
lp_disable() {
	echo 0 >"$SYS/test_klp_bench_$1/enabled" || fail "disable $1"
	wait_for patch_gone "test_klp_bench_$1"
}
lp_remove() { rmmod "test_klp_bench_$1" || fail "rmmod $1"; }

ctl() {
	echo "$*" >"$CTL" || fail "ctl $*"
	read -r CTL_NS <"$CTL"
}

# Slab and vmalloc in use, in bytes, after folding the per-CPU counters.
SLAB=0 VMALLOC=0
mem() {
	local k v _
	echo 1 >/proc/sys/vm/stat_refresh 2>/dev/null
	while read -r k v _; do
		case $k in
		Slab:) SLAB=$((v * 1024)) ;;
		VmallocUsed:) VMALLOC=$((v * 1024)) ;;
		esac
	done </proc/meminfo
}

# calls: the timed loop of bench_call, once the work that the last module
# load or transition left to the other CPU is done (a module's init
# memory is freed after a grace period, for one): the clock counts what
# both CPUs execute.
calls() {
	sleep_ms 500
	ctl call "$CALLS"
}

bench_call() {
	local base p1 p3 pt
	calls
	base=$CTL_NS
	lp_insmod lp1
	wait_for transition_done test_klp_bench_lp1
	calls
	p1=$CTL_NS
	lp_insmod lp1s2
	wait_for transition_done test_klp_bench_lp1s2
	lp_insmod lp1s3
	wait_for transition_done test_klp_bench_lp1s3
	calls
	p3=$CTL_NS
	lp_disable lp1s3
	lp_disable lp1s2
	lp_disable lp1
	lp_remove lp1s3
	lp_remove lp1s2
	lp_remove lp1
	# A transition kept open by a task asleep in bench_block_fn.
	ctl block
	sleep_ms 100
	lp_insmod lpt
	transition_done test_klp_bench_lpt && fail "lpt: the transition did not stay open"
	calls
	pt=$CTL_NS
	ctl stop
	wait_for transition_done test_klp_bench_lpt
	lp_disable lpt
	lp_remove lpt
	# ns per call, in thousandths
	out call_base_ns "$(awk -v a="$base" -v n="$CALLS" 'BEGIN { printf "%.3f", a / n }')"
	out call_1patch_ns "$(awk -v a="$p1" -v b="$base" -v n="$CALLS" 'BEGIN { printf "%.3f", (a - b) / n }')"
	out call_3patch_ns "$(awk -v a="$p3" -v b="$base" -v n="$CALLS" 'BEGIN { printf "%.3f", (a - b) / n }')"
	out call_trans_ns "$(awk -v a="$pt" -v b="$base" -v n="$CALLS" 'BEGIN { printf "%.3f", (a - b) / n }')"
}

bench_ops() {
	local n t0 t1 t2 lp d1=0 d1000=0 v1=0 v1000=0 s0 vm0
	for n in $SIZES; do
		lp=lp$n
		sleep_ms 200
		mem
		s0=$SLAB vm0=$VMALLOC
		now
		t0=$NOW
		lp_insmod $lp
		wait_for transition_done test_klp_bench_$lp
		now
		t1=$NOW
		out enable_${n}_us $((t1 - t0))
		out enable_call_${n}_us $(($(lp_enable_ns $lp) / 1000))
		mem
		[ "$n" = 1 ] && d1=$((SLAB - s0)) v1=$((VMALLOC - vm0))
		[ "$n" = 1000 ] && d1000=$((SLAB - s0)) v1000=$((VMALLOC - vm0))
		sleep_ms 50
		now
		t0=$NOW
		echo 0 >"$SYS/test_klp_bench_$lp/enabled" || fail "disable $lp"
		now
		t1=$NOW
		wait_for patch_gone test_klp_bench_$lp
		now
		t2=$NOW
		out disable_${n}_us $((t2 - t0))
		out disable_call_${n}_us $((t1 - t0))
		lp_remove $lp

		# Atomic replace of lpN by lpNr (the same functions).
		lp_insmod $lp
		wait_for transition_done test_klp_bench_$lp
		sleep_ms 50
		now
		t0=$NOW
		lp_insmod ${lp}r
		wait_for transition_done test_klp_bench_${lp}r
		wait_for patch_gone test_klp_bench_$lp
		now
		t1=$NOW
		out replace_${n}_us $((t1 - t0))
		out replace_call_${n}_us $(($(lp_enable_ns ${lp}r) / 1000))
		lp_disable ${lp}r
		lp_remove ${lp}r
		lp_remove $lp
	done
	out mem_func_bytes $(((d1000 - d1) / 999))
	out mem_patch_bytes $((d1 - (d1000 - d1) / 999))
	out mem_vmalloc_func_bytes $(((v1000 - v1) / 999))
}

# bench_trans KIND: a patch of 100 functions with NTASKS extra tasks.
bench_trans() {
	local kind=$1 t0 t1
	ctl "$kind" "$NTASKS"
	sleep_ms 100
	now
	t0=$NOW
	lp_insmod lp100
	wait_for transition_done test_klp_bench_lp100
	now
	t1=$NOW
	out trans_${kind}_us $((t1 - t0))
	out trans_${kind}_call_us $(($(lp_enable_ns lp100) / 1000))
	ctl stop
	lp_disable lp100
	lp_remove lp100
}

bench_shadow() {
	local level name op n t0 t1
	for level in 1000 100000 1000000; do
		case $level in
		1000) name=1k ;;
		100000) name=100k ;;
		1000000) name=1m ;;
		esac
		ctl shadow_fill $level
		# A resizable table (the Rust core's) rehashes in a work item
		# after growing: let it finish, so that the timed loops below do
		# not count the other CPU's rehashing (see "The clock").
		sleep_ms 1000
		# No more frees than live variables.
		n=$SHADOW_OPS
		[ "$n" -gt $level ] && n=$level
		for op in alloc get free; do
			ctl shadow_$op "$n"
			out shadow_${op}_${name}_ns "$(awk -v a="$CTL_NS" -v n="$n" 'BEGIN { printf "%.1f", a / n }')"
		done
	done
	ctl shadow_free_all
	out shadow_free_all_1m_ns "$(awk -v a="$CTL_NS" 'BEGIN { printf "%.1f", a / 1000000 }')"
	out shadow_free_all_1m_us $((CTL_NS / 1000))
	sleep_ms 2000	# let RCU free the variables before the next run
}

[ -d "$SYS" ] || fail "no $SYS: livepatch is not enabled"
# The measuring tasks (this script, insmod) before the busy tasks.
renice -n -20 -p $$ >/dev/null || fail "renice"
grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs none /sys/kernel/debug
banner=$(dmesg | grep -o 'livepatch: .* core.*' | head -n 1)
echo "BENCH-INFO core ${banner:-livepatch: C core (no Rust core banner)}"
echo "BENCH-INFO kernel $(uname -r)"
echo "BENCH-INFO cpus $(nproc)"
echo "BENCH-INFO memory $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
echo "BENCH-INFO cpu $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "BENCH-INFO preempt $(cat /sys/kernel/debug/sched/preempt 2>/dev/null || echo unknown)"
echo "BENCH-INFO params runs=$RUNS calls=$CALLS shadow_ops=$SHADOW_OPS tasks=$NTASKS"

insmod "$WORK/test_klp_bench.ko" || fail "insmod test_klp_bench"
for RUN in $(seq "$RUNS"); do
	for g in $GROUPS_RUN; do
		case $g in
		call) bench_call ;;
		ops) bench_ops ;;
		trans) bench_trans sleepers; bench_trans busy ;;
		shadow) bench_shadow ;;
		*) fail "unknown group $g" ;;
		esac
	done
done
rmmod test_klp_bench || fail "rmmod test_klp_bench"
echo "BENCH-DONE"
