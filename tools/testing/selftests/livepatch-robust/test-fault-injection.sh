#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fault injection in the enable, replace and module-coming paths: for
# N = 1, 2, ... the N-th allocation of the insmod task fails (fail-nth
# with failslab), until a load makes fewer than N allocations.  With
# CONFIG_FAULT_INJECTION_STACKTRACE_FILTER, only the allocations that the
# livepatch core makes (its code on the call stack) are counted and
# failed; without it, every allocation of the load is, the module
# loader's too, which takes much longer.  Every
# failed load must return a clean error, leave nothing registered and
# nothing loaded, and, when the livepatch core logged anything, name the
# patch; the patch that was there before keeps working.  A load can also
# succeed with its N-th allocation failed (a caller with a fallback takes
# the failure): it is unloaded and the next N tried.  Leaks are found by
# kmemleak at the end of the suite (debug flavors), warnings by the harness
# after each script.
#
# Needs CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB and
# CONFIG_FAULT_INJECTION_DEBUG_FS (the rust-debug and c-debug flavors).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

MOD_LIVEPATCH=test_klp_livepatch
MOD_REPLACE=test_klp_atomic_replace
# A livepatch with a function in a module, and that module (in
# livepatch-klp): its coming is what allocates (ftrace sites, filter).
MOD_DEMO=test_klp_core_mod
MOD_TARGET=test_klp_core_target
KLP_MODULES=$HERE/../livepatch-klp/test_modules
SYSFS=/sys/kernel/livepatch
FS=/sys/kernel/debug/failslab
MAX=600
KEEP=

[[ -e /proc/self/fail-nth ]] || skip "no fail-nth (CONFIG_FAULT_INJECTION is off in this flavor)"
[[ -d $FS ]] || skip "no $FS (CONFIG_FAILSLAB/CONFIG_FAULT_INJECTION_DEBUG_FS are off)"

setup_config
cd "$HERE/../livepatch" || exit 1

# core_text: prints the start and the end of the livepatch core's code,
# as "0x<start> 0x<end>": the text symbols around klp_enable_patch whose
# names say klp (C functions, and the Rust crate's mangled names), with at
# most a few other names (static helpers) between two of them.
core_text() {
	awk 'NF == 3 && $2 ~ /^[tT]$/' /proc/kallsyms | sort | awk '
		{ a[NR] = $1; n[NR] = $3 }
		$3 == "klp_enable_patch" { at = NR }
		END {
			if (!at || a[at] ~ /^0+$/)
				exit 1
			lo = at
			for (i = at - 1; i > 0 && lo - i <= 8; i--)
				if (n[i] ~ /klp/)
					lo = i
			hi = at
			for (i = at + 1; i <= NR && i - hi <= 8; i++)
				if (n[i] ~ /klp/)
					hi = i
			print "0x" a[lo], "0x" a[hi + 1]
		}'
}

# GFP_KERNEL allocations too, quietly (no stack dump per injected fault),
# and, when the kernel can tell, only those of the livepatch core.
old_wait=$(cat $FS/ignore-gfp-wait)
old_verbose=$(cat $FS/verbose)
echo N >$FS/ignore-gfp-wait
echo 0 >$FS/verbose
# KLP_FI_FILTER=0 fails the loader's allocations too, even with the filter.
if [[ -e $FS/require-start && ${KLP_FI_FILTER:-1} != 0 ]]; then
	old_range="$(cat $FS/require-start) $(cat $FS/require-end)"
	range=$(core_text) || die "cannot find the livepatch core in /proc/kallsyms"
	echo "${range% *}" >$FS/require-start
	echo "${range#* }" >$FS/require-end
	echo "failing only the allocations of the livepatch core ($range)"
else
	echo "no stacktrace filter: failing every allocation of each load"
fi
restore_fs() {
	echo "$old_wait" >$FS/ignore-gfp-wait
	echo "$old_verbose" >$FS/verbose
	if [[ -n $old_range ]]; then
		echo "${old_range% *}" >$FS/require-start
		echo "${old_range#* }" >$FS/require-end
	fi
}
# On failure, leave nothing loaded for the scripts that follow.
unload_all() {
	local m
	for m in $MOD_REPLACE $MOD_LIVEPATCH $MOD_DEMO $MOD_TARGET; do
		module_loaded "$m" && unload_one "$m" 2>/dev/null
	done
	return 0
}
# The loads read their module from a tmpfs: reading it from the 9p root
# under failing allocations runs into a bug of 6.12's netfs, whose
# unbuffered read puts its request twice when its first subrequest cannot
# be allocated (fs/netfs/direct_read.c): a refcount_t underflow that has
# nothing to do with livepatching.
KO_DIR=
trap 'restore_fs; unload_all; [[ -n $KO_DIR ]] && umount "$KO_DIR" && rmdir "$KO_DIR"; cleanup' \
	EXIT INT TERM HUP
command -v perl >/dev/null || skip "no perl (the loader of this test)"
[[ $(uname -m) == x86_64 ]] || skip "finit_module is called by its x86_64 number"
KO_DIR=$(mktemp -d) || die "mktemp failed"
mount -t tmpfs klp-fault-injection "$KO_DIR" || die "cannot mount a tmpfs on $KO_DIR"
cp test_modules/$MOD_LIVEPATCH.ko test_modules/$MOD_REPLACE.ko \
	"$KLP_MODULES/$MOD_TARGET.ko" "$KO_DIR/" || die "cannot copy the modules to $KO_DIR"

# insmod_nth N MODULE [ARGS]: loads MODULE (finit_module, as insmod does)
# with the N-th allocation of the loading task failing.  Prints "left C",
# what is left of the task's fail-nth count after the load: 0 when the
# N-th allocation came (and failed), more when the load made fewer than N
# allocations; then, for a failed load, the error.  The loader is a Perl
# one-liner, not insmod: the count must be read back by the task itself,
# and between setting it and loading it makes no system call, so that the
# allocations counted are the load's.
insmod_nth() {
	local n=$1 ko=$2
	shift 2
	perl -e '
		my ($n, $ko, $params) = @ARGV;
		open(my $m, "<", $ko) or die "ERROR: could not load module $ko: $!\n";
		open(my $r, "<", "/proc/self/fail-nth") or die "fail-nth: $!\n";
		open(my $w, ">", "/proc/self/fail-nth") or die "fail-nth: $!\n";
		syswrite($w, $n) or die "fail-nth: $!\n";
		my $ret = syscall(313, fileno($m), $params, 0);	# finit_module
		my $err = $!;
		sysread($r, my $left, 32);
		print "left $left";
		if ($ret != 0) {
			print "ERROR: could not insert module $ko: $err\n";
			exit 1;
		}
		exit 0;
	' "$n" "$ko" "$*" 2>&1
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

# check_log N MARK: stops at the first kernel report (a warning, an oops,
# a KASAN or lockdep splat) that a load with its N-th allocation failed
# caused, and shows it; the harness would fail the script at its end, but
# this names the allocation and saves the rest of a long run.
# The patterns are those of the harness (kernel-reports), but for the
# stack trace that warn_alloc() logs when, with KLP_FI_FILTER=0, one of the
# module loader's vmalloc() calls fails: that failure is the test's doing.
REPORT_PATTERNS=$(grep -v -e '^#' -e '^$' -e '^Call Trace:$' "$HERE/kernel-reports")
[[ -n $REPORT_PATTERNS ]] || die "no report patterns in $HERE/kernel-reports"
check_log() {
	local bad

	bad=$(log_since "$2" | grep -n -m1 -E -e "$REPORT_PATTERNS")
	[[ -z $bad ]] && return 0
	log_since "$2" | tail -n "+$(( ${bad%%:*} > 10 ? ${bad%%:*} - 10 : 1 ))" | head -n 70 >&2
	die "a load with allocation $1 failed made the kernel report a problem"
}

# check_failed_load MOD MARK ERR: what a failed load must leave behind.
check_failed_load() {
	local mod=$1 m=$2 err=$3 klp

	module_loaded "$mod" && die "$mod is loaded after a failed insmod"
	[[ -e $SYSFS/$mod ]] && die "$mod is registered after a failed insmod"
	[[ "$err" == *"ERROR: could not insert module"* ]] ||
		die "loading $mod failed without a clean error: $err"
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
# until a load no longer reaches the failing allocation; prints the number
# of loads that failed.
inject() {
	local mod=$1 n m out rc left failed=0
	shift
	for n in $(seq $MAX); do
		m=$(mark)
		out=$(insmod_nth "$n" "$KO_DIR/$mod.ko" "$@")
		rc=$?
		check_log "$n" "$m"
		if [[ $rc == 0 ]]; then
			left=$(sed -n 's/^left //p' <<<"$out")
			[[ $left -gt 0 ]] && { echo $failed; return 0; }
			# Loaded although the allocation failed: undo the load
			# (and what a replace took away), try the next.
			wait_done "$mod"
			unload_one "$mod"
			if [[ -n $KEEP && ! -e $SYSFS/$KEEP ]]; then
				module_loaded "$KEEP" && unload_one "$KEEP"
				load_lp "$KEEP" >/dev/null
			fi
			continue
		fi
		failed=$((failed + 1))
		check_failed_load "$mod" "$m" "$(grep -v '^left ' <<<"$out")"
	done
	die "$mod still reaches its ${MAX}th allocation"
}

# unload_one MOD: disables MOD if it is a registered livepatch, removes it.
unload_one() {
	if [[ -e $SYSFS/$1 ]]; then
		echo 0 >"$SYSFS/$1/enabled"
		loop_until "[[ ! -e $SYSFS/$1 ]]" || die "$1 did not go away"
	fi
	loop_until "rmmod $1 2>/dev/null" || die "rmmod $1 failed"
}

wait_done() {
	loop_until "[[ ! -e $SYSFS/$1 ]] || grep -q 0 $SYSFS/$1/transition" ||
		die "the transition of $1 did not end"
}

# KLP_FI_ONLY=enable|replace|coming runs one scenario (they take long on
# a debug kernel); replace needs enable's patch and loads it itself.
only=${KLP_FI_ONLY:-}
case "$only" in
""|enable|replace|coming) ;;
*) die "KLP_FI_ONLY='$only': expected enable, replace or coming" ;;
esac
want() { [[ -z $only || $only == "$1" ]]; }

if want enable; then
start_test "enable: every allocation of loading a livepatch fails in turn"

n=$(inject $MOD_LIVEPATCH) || exit 1
wait_done $MOD_LIVEPATCH
echo "$n failed loads of $MOD_LIVEPATCH before it loaded"
[[ $n -gt 0 ]] || die "no allocation failed: fault injection did not work"
[[ $(cat $SYSFS/$MOD_LIVEPATCH/enabled) == 1 ]] || die "$MOD_LIVEPATCH is not enabled"
grep -q "$MOD_LIVEPATCH: this has been live patched" /proc/cmdline ||
	die "$MOD_LIVEPATCH loaded but does not patch /proc/cmdline"
fi

if want replace; then
[[ -e $SYSFS/$MOD_LIVEPATCH ]] || load_lp $MOD_LIVEPATCH >/dev/null

start_test "replace: every allocation of an atomic replace fails in turn"

KEEP=$MOD_LIVEPATCH
n=$(inject $MOD_REPLACE replace=1) || exit 1
KEEP=
wait_done $MOD_REPLACE
echo "$n failed loads of $MOD_REPLACE before it loaded"
[[ $n -gt 0 ]] || die "no allocation failed: fault injection did not work"
loop_until "[[ ! -e $SYSFS/$MOD_LIVEPATCH ]]" || die "$MOD_LIVEPATCH was not replaced"
grep -q "$MOD_REPLACE: this has been live patched" /proc/meminfo ||
	die "$MOD_REPLACE does not patch /proc/meminfo"
grep -q "$MOD_LIVEPATCH: this has been live patched" /proc/cmdline &&
	die "/proc/cmdline is still patched after the replace"
unload_lp $MOD_LIVEPATCH
disable_lp $MOD_REPLACE
unload_lp $MOD_REPLACE
elif [[ -e $SYSFS/$MOD_LIVEPATCH ]]; then
	disable_lp $MOD_LIVEPATCH
	unload_lp $MOD_LIVEPATCH
fi

if want coming; then

start_test "module coming: every allocation of loading a patched module fails in turn"

(cd "$KLP_MODULES/.." && load_lp $MOD_DEMO) || exit 1
[[ $(cat $SYSFS/$MOD_DEMO/$MOD_TARGET/patched) == 0 ]] ||
	die "$MOD_DEMO patches $MOD_TARGET before it is loaded"
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
fi
[[ -z $(ls $SYSFS) ]] || die "livepatches left registered: $(ls $SYSFS)"

exit 0
