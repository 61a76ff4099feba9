#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile input to the writable sysfs attributes of a livepatch ("enabled",
# "force"): empty (a lone newline), huge, negative, non-numeric and binary
# writes fail with the error that Linux 6.12 returns and change nothing;
# concurrent writers racing with a pending transition and its reversals
# leave the patch in one consistent state, from which it is disabled and
# unloaded.  The kernel log must stay free of warnings (the harness checks
# it after the script).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

MOD_LIVEPATCH=test_klp_livepatch
MOD_BUSY_TARGET=test_klp_callbacks_busy
MOD_BUSY_PATCH=test_klp_callbacks_demo
SYSFS=/sys/kernel/livepatch

setup_config

cd "$HERE/../livepatch" || exit 1

# write_attr FILE DATA: writes DATA (printf %b) in one write(2) and prints
# "ok" or the error text that the write returned.
write_attr() {
	local out
	if out=$( { printf '%b' "$2" >"$1"; } 2>&1); then
		echo ok
	else
		echo "${out##*: }"
	fi
}

# expect_write FILE DATA EXPECTED
expect_write() {
	local got

	got=$(write_attr "$1" "$2")
	[[ "$got" == "$3" ]] ||
		die "writing '$(printf '%q' "$2" | cut -c1-40)' to $1: '$got', expected '$3'"
}

expect_value() {
	local got

	got=$(cat "$SYSFS/$1")
	[[ "$got" == "$2" ]] || die "$SYSFS/$1 is '$got', expected '$2'"
}

HUGE=$(head -c 8192 /dev/zero | tr '\0' '1')

start_test "garbage written to enabled and force of an enabled patch"

load_lp $MOD_LIVEPATCH
E=$SYSFS/$MOD_LIVEPATCH/enabled
F=$SYSFS/$MOD_LIVEPATCH/force
# kstrtobool() reads only the first characters: "yes please" is a yes
# (refused, as the patch is enabled), "0x1" would be a no.
for bad in "\n" "2" "-1" "-0" "yes please" " 0" "\x01\x02\xff" \
	   "18446744073709551616" "enabled" "\x00"; do
	expect_write "$E" "$bad" "Invalid argument"
	expect_value "$MOD_LIVEPATCH/enabled" 1
done
# Already enabled: enabling again is refused.
expect_write "$E" "1" "Invalid argument"
expect_write "$E" "y" "Invalid argument"
# More than a page at once is cut off by sysfs or refused; never taken.
got=$(write_attr "$E" "$HUGE")
[[ "$got" != ok ]] || die "an 8 KiB write to enabled succeeded"
expect_value "$MOD_LIVEPATCH/enabled" 1
# force: garbage refused, "0" accepted and ignored, "1" refused with no
# transition running.
for bad in "\n" "2" "-1" "\xff"; do
	expect_write "$F" "$bad" "Invalid argument"
done
expect_write "$F" "0" ok
expect_write "$F" "1" "Invalid argument"
expect_value "$MOD_LIVEPATCH/transition" 0
# Read-only attributes cannot be written at all.
for ro in transition replace vmlinux/patched; do
	got=$(write_attr "$SYSFS/$MOD_LIVEPATCH/$ro" "1")
	[[ "$got" != ok ]] || die "writing to read-only $ro succeeded"
done
expect_value "$MOD_LIVEPATCH/enabled" 1
# The patch still works and goes away cleanly.
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH

check_result "% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $SYSFS/$MOD_LIVEPATCH/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH"


start_test "concurrent writers to enabled and force during a transition"

# A task sleeping in a patched function keeps the transition pending, so
# that the writers race with a transition, with reversals and with force.
load_mod $MOD_BUSY_TARGET block_transition=Y
load_lp_nowait $MOD_BUSY_PATCH
loop_until "grep -q 1 $SYSFS/$MOD_BUSY_PATCH/transition" ||
	die "the transition of $MOD_BUSY_PATCH did not start"
E=$SYSFS/$MOD_BUSY_PATCH/enabled
F=$SYSFS/$MOD_BUSY_PATCH/force
pids=()
for w in 1 2 3; do
	(
		for i in $(seq 60); do
			printf '%s' $((i % 2)) >"$E" 2>/dev/null
			printf 'x' >"$E" 2>/dev/null
		done
	) &
	pids+=($!)
done
(
	for i in $(seq 20); do
		printf '0' >"$F" 2>/dev/null
		printf 'garbage' >"$F" 2>/dev/null
	done
) &
pids+=($!)
wait "${pids[@]}"
# Whatever the writers left, the core must end in a consistent state: let
# the busy task go, wait for the transition to end, then disable the patch
# if it ended enabled.
echo N >/sys/module/$MOD_BUSY_TARGET/parameters/block_transition
loop_until "[[ ! -e $SYSFS/$MOD_BUSY_PATCH ]] || grep -q 0 $SYSFS/$MOD_BUSY_PATCH/transition" ||
	die "the transition of $MOD_BUSY_PATCH did not end"
if [[ -e "$E" ]] && [[ $(cat "$E") == 1 ]]; then
	echo 0 >"$E" || die "disabling $MOD_BUSY_PATCH failed"
fi
loop_until "[[ ! -e $SYSFS/$MOD_BUSY_PATCH ]]" ||
	die "$MOD_BUSY_PATCH is still registered"
unload_lp $MOD_BUSY_PATCH
unload_mod $MOD_BUSY_TARGET
[[ -z $(ls $SYSFS) ]] || die "livepatches left registered: $(ls $SYSFS)"
echo "ok"

exit 0
