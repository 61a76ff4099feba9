#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Transitions that a task blocks.  test_klp_core_target runs a worker in
# test_klp_core_target_busy() while its "block" parameter is set;
# test_klp_core_busy patches that function (and a(), which the target's
# "state" parameter shows).  A worker that entered the function before the
# patch keeps a patching transition from completing; one that entered the
# patched function keeps an unpatching transition from completing.
#
# - patching blocked: each task runs the versions of its own patch state
#   (the worker the original a(), a new task the patched one); another
#   patch (test_klp_core_stack1/2) can neither be enabled nor disabled
#   meanwhile (EBUSY); the transition signals the
#   remaining tasks after 15 tries (6.12 has no "signal" attribute),
#   `force` completes it; the patch module keeps no extra reference and
#   can be removed later;
# - patching blocked, reversed by writing 0 to enabled;
# - unpatching blocked (the worker runs the patched a(), a new task the
#   original), reversed by writing 1 to enabled;
# - patching blocked with 600 more tasks than usual (several walks of the
#   tasks per sweep in the Rust core), completed when the worker leaves;
# - unpatching blocked and forced: the core keeps the module's reference,
#   so that the module can never be removed (the worker may still run its
#   code).  This one leaves test_klp_core_busy loaded: it comes last.
# The kernel carries the livepatch taint; forcing adds no other.
# Also: the sysfs attributes of a patch, `force` and `enabled` refused
# outside a transition.

. "$(dirname "$0")/../livepatch/functions.sh"
. "$(dirname "$0")/functions-klp.sh"

MOD_TARGET=test_klp_core_target
MOD_LIVEPATCH=test_klp_core_busy
MOD_OTHER=test_klp_core_stack2
MOD_OTHER2=test_klp_core_stack1
PARAMS=/sys/module/$MOD_TARGET/parameters
LP_DIR=$KLP_SYSFS_DIR/$MOD_LIVEPATCH

setup_config

# wait_log(msg) - wait until the kernel logged msg in this test
wait_log() {
	WAIT_MSG="$1"
	loop_until 'new_log | grep -qF -- "$WAIT_MSG"' ||
		die "the kernel did not log '$WAIT_MSG'"
}

# write(value, path) - log and write a sysfs value, which must succeed
write() {
	log "% echo $1 > $2"
	echo "$1" > "$2" || die "writing $1 to $2 failed"
}

# refuse(value, path[, error]) - a write of the value must fail with the
# error (default: EINVAL)
refuse() {
	local err want="${3:-Invalid argument}"

	err=$(echo "$1" 2>&1 > "$2") && die "writing $1 to $2 succeeded"
	[[ "$err" == *"$want"* ]] ||
		die "writing $1 to $2: '$err', expected '$want'"
}

# start_busy(version) - start the worker, wait for it to enter the
# version of the function ($ORIG_BUSY or $NEW_BUSY)
start_busy() {
	write 1 "$PARAMS/block"
	write 1 "$PARAMS/busy"
	wait_log "$1 enter"
}

# stop_busy(version) - let the worker go, wait for it to leave
stop_busy() {
	write 0 "$PARAMS/block"
	wait_log "$1 exit"
	loop_until '[[ $(cat "$PARAMS/busy") == 0 ]]' || die "the worker still runs"
}

# expect_worker(value) - what a() returns to the busy worker: the version
# that the worker's own patch state selects.  The last value is cleared
# first, so that it is one the worker got from now on.
expect_worker() {
	local got

	echo 0 > "$PARAMS/seen"
	loop_until '[[ $(cat "$PARAMS/seen") != - ]]' ||
		die "the worker did not call a() again"
	got=$(cat "$PARAMS/seen")
	[[ "$got" == "$1" ]] || die "a() returned '$got' to the worker, expected '$1'"
}

# expect_blocked(enabled) - the transition runs and does not complete
expect_blocked() {
	check_sysfs_value $MOD_LIVEPATCH transition 1
	check_sysfs_value $MOD_LIVEPATCH enabled "$1"
	# Some retries of the transition (one a second).
	sleep 3
	check_sysfs_value $MOD_LIVEPATCH transition 1
	check_sysfs_value $MOD_LIVEPATCH enabled "$1"
}

# expect_state(values) - what the target's functions return
expect_state() {
	local got

	got=$(cat "$PARAMS/state")
	[[ "$got" == "$1" ]] || die "$PARAMS/state: '$got', expected '$1'"
}

ORIG_BUSY="$MOD_TARGET: original busy function:"
NEW_BUSY="$MOD_LIVEPATCH: patched busy function:"


start_test "force a patching transition that a sleeping task blocks"

load_mod $MOD_TARGET
load_lp $MOD_OTHER
start_busy "$ORIG_BUSY"
load_lp_nowait $MOD_LIVEPATCH
expect_blocked 1
# One transition at a time: other patches can neither come nor go.
load_failing_mod $MOD_OTHER2
refuse 0 "$KLP_SYSFS_DIR/$MOD_OTHER/enabled" "Device or resource busy"
check_sysfs_value $MOD_OTHER enabled 1
# The attributes of 6.12 (stack_order came later; the Rust core has it).
attrs=$(cd "$LP_DIR" && find . -maxdepth 1 -type f | sed 's#^\./##' |
	grep -v '^stack_order$' | sort | tr '\n' ' ')
[[ "$attrs" == "enabled force replace transition " ]] ||
	die "$LP_DIR has the attributes '$attrs'"
check_sysfs_rights $MOD_LIVEPATCH force "--w-------"
# 6.12 signals the remaining tasks by itself after 15 tries.
wait_log "livepatch: signaling remaining tasks"
check_sysfs_value $MOD_LIVEPATCH transition 1
# Meanwhile each task runs the versions of its own patch state: the
# worker, which cannot switch, the original a(); a new task the patch's.
expect_worker a
expect_state "busy b2 c d2"
# A livepatch module taints the kernel (K, bit 15); forcing adds nothing.
taint=$(cat /proc/sys/kernel/tainted)
(( taint & (1 << 15) )) || die "no livepatch taint: $taint"
write 1 "$LP_DIR/force"
loop_until 'grep -q "^0$" "$LP_DIR/transition"' ||
	die "the forced transition did not complete"
check_sysfs_value $MOD_LIVEPATCH enabled 1
[[ $(cat /proc/sys/kernel/tainted) == "$taint" ]] ||
	die "forcing changed the taint from $taint to $(cat /proc/sys/kernel/tainted)"
expect_state "busy b2 c d2"
# Nothing to force, nothing to enable.
refuse 1 "$LP_DIR/force"
refuse 1 "$LP_DIR/enabled"
# A forced patching leaves the module reference as it was: the core's.
[[ $(cat /sys/module/$MOD_LIVEPATCH/refcnt) == 1 ]] ||
	die "$MOD_LIVEPATCH refcnt $(cat /sys/module/$MOD_LIVEPATCH/refcnt), expected 1"
stop_busy "$ORIG_BUSY"
disable_lp $MOD_LIVEPATCH
expect_state "a b2 c d2"
disable_lp $MOD_OTHER
expect_state "a b c d"
unload_lp $MOD_LIVEPATCH
unload_lp $MOD_OTHER
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% insmod test_modules/$MOD_OTHER.ko
livepatch: enabling patch '$MOD_OTHER'
livepatch: '$MOD_OTHER': initializing patching transition
livepatch: '$MOD_OTHER': starting patching transition
livepatch: '$MOD_OTHER': completing patching transition
livepatch: '$MOD_OTHER': patching complete
% echo 1 > $PARAMS/block
% echo 1 > $PARAMS/busy
$ORIG_BUSY enter
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
% insmod test_modules/$MOD_OTHER2.ko
insmod: ERROR: could not insert module test_modules/$MOD_OTHER2.ko: Device or resource busy
livepatch: signaling remaining tasks
% echo 1 > $LP_DIR/force
livepatch: forcing remaining tasks to the patched state
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $PARAMS/block
$ORIG_BUSY exit
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% echo 0 > $KLP_SYSFS_DIR/$MOD_OTHER/enabled
livepatch: '$MOD_OTHER': initializing unpatching transition
livepatch: '$MOD_OTHER': starting unpatching transition
livepatch: '$MOD_OTHER': completing unpatching transition
livepatch: '$MOD_OTHER': unpatching complete
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_OTHER
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "reverse a patching transition that a sleeping task blocks"

load_mod $MOD_TARGET
start_busy "$ORIG_BUSY"
load_lp_nowait $MOD_LIVEPATCH
expect_blocked 1
write 0 "$LP_DIR/enabled"
loop_until '[[ ! -e "$LP_DIR" ]]' || die "the reversed transition did not complete"
expect_state "a b c d"
stop_busy "$ORIG_BUSY"
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% echo 1 > $PARAMS/block
% echo 1 > $PARAMS/busy
$ORIG_BUSY enter
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': reversing transition from patching to unpatching
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% echo 0 > $PARAMS/block
$ORIG_BUSY exit
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "reverse an unpatching transition that a sleeping task blocks"

load_mod $MOD_TARGET
load_lp $MOD_LIVEPATCH
expect_state "busy b c d"
start_busy "$NEW_BUSY"
write 0 "$LP_DIR/enabled"
expect_blocked 0
# The worker still runs the patch's a(), a new task the original.
expect_worker busy
expect_state "a b c d"
write 1 "$LP_DIR/enabled"
loop_until 'grep -q "^0$" "$LP_DIR/transition"' ||
	die "the reversed transition did not complete"
check_sysfs_value $MOD_LIVEPATCH enabled 1
expect_state "busy b c d"
stop_busy "$NEW_BUSY"
disable_lp $MOD_LIVEPATCH
expect_state "a b c d"
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 1 > $PARAMS/block
% echo 1 > $PARAMS/busy
$NEW_BUSY enter
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
% echo 1 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': reversing transition from unpatching to patching
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $PARAMS/block
$NEW_BUSY exit
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "a transition over more tasks than one walk of the tasks checks"

# 600 sleeping processes more than the guest's own: the Rust core checks at
# most 256 stacks a walk and goes on in the next one; the worker, blocked
# in the patched function, is checked in every sweep until it leaves.
SLEEPERS=()
for i in $(seq 600); do
	sleep 600 &
	SLEEPERS+=($!)
done
load_mod $MOD_TARGET
start_busy "$ORIG_BUSY"
load_lp_nowait $MOD_LIVEPATCH
expect_blocked 1
stop_busy "$ORIG_BUSY"
loop_until 'grep -q "^0$" "$LP_DIR/transition"' ||
	die "the transition did not complete"
expect_state "busy b c d"
disable_lp $MOD_LIVEPATCH
kill "${SLEEPERS[@]}"
wait "${SLEEPERS[@]}" 2>/dev/null
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% echo 1 > $PARAMS/block
% echo 1 > $PARAMS/busy
$ORIG_BUSY enter
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
% echo 0 > $PARAMS/block
$ORIG_BUSY exit
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"


start_test "force an unpatching transition: the module stays for good"

load_mod $MOD_TARGET
load_lp $MOD_LIVEPATCH
start_busy "$NEW_BUSY"
write 0 "$LP_DIR/enabled"
expect_blocked 0
write 1 "$LP_DIR/force"
loop_until '[[ ! -e "$LP_DIR" ]]' || die "the forced transition did not complete"
expect_state "a b c d"
stop_busy "$NEW_BUSY"
# The core keeps the reference of a forced patch: rmmod must fail.
sleep 1
[[ $(cat /sys/module/$MOD_LIVEPATCH/refcnt) == 1 ]] ||
	die "$MOD_LIVEPATCH refcnt $(cat /sys/module/$MOD_LIVEPATCH/refcnt), expected 1"
log "% rmmod $MOD_LIVEPATCH"
ret=$(rmmod $MOD_LIVEPATCH 2>&1) && die "rmmod of the forced $MOD_LIVEPATCH succeeded"
log "$ret"
[[ -e /sys/module/$MOD_LIVEPATCH ]] || die "$MOD_LIVEPATCH is gone"
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: loaded
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 1 > $PARAMS/block
% echo 1 > $PARAMS/busy
$NEW_BUSY enter
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
% echo 1 > $LP_DIR/force
livepatch: forcing remaining tasks to the patched state
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% echo 0 > $PARAMS/block
$NEW_BUSY exit
% rmmod $MOD_LIVEPATCH
rmmod: ERROR: Module $MOD_LIVEPATCH is in use
% rmmod $MOD_TARGET
$MOD_TARGET: unloaded"

exit 0
