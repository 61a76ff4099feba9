#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Debian's kpatch runtime tool ("kpatch load", "kpatch list", "kpatch
# unload") driving the C and the Rust cmdline samples: the tool only knows
# the sysfs ABI of /sys/kernel/livepatch, which must work for it as with the
# C core.  scripts/klp unpacks the tool into /opt/kpatch of the guest's root;
# $KPATCH names another one.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

MOD_C=livepatch_sample
MOD_RUST=rust_livepatch_cmdline
KO_C=$KDIR/samples/livepatch/livepatch-sample.ko
KO_RUST=$KDIR/samples/livepatch/$MOD_RUST.ko
C_MSG="this has been live patched"
RUST_MSG="this has been live patched by a Rust livepatch"

if [[ -z "${KPATCH:-}" ]]; then
	KPATCH=/opt/kpatch/usr/sbin/kpatch
	[[ -x "$KPATCH" ]] || KPATCH=$(command -v kpatch)
fi
[[ -x "$KPATCH" ]] || skip "no kpatch tool (scripts/klp setup unpacks Debian's)"
[[ -e "$KO_C" ]] || skip "$KO_C is not built (CONFIG_SAMPLE_LIVEPATCH)"
[[ -e "$KO_RUST" ]] || skip "$KO_RUST is not built (CONFIG_SAMPLE_LIVEPATCH_RUST)"

setup_config

# check_result() keeps the kernel log lines with "livepatch:" or "test_klp":
# the "% kpatch ..." lines written here are not among them, only what the
# core logs.

ORIG=$(cat /proc/cmdline)

# kpatch CMD...: runs the tool, keeps its output in KPATCH_OUT, fails the
# test (showing the output) on error
kpatch() {
	log "% kpatch $*"
	KPATCH_OUT=$("$KPATCH" "$@" 2>&1) || die "kpatch $* failed: $KPATCH_OUT"
}

# listed MOD STATE: "kpatch list" shows MOD in STATE, or not at all ("")
listed() {
	local line

	kpatch list
	line=$(echo "$KPATCH_OUT" | grep "^$1 \[")
	if [[ -z "$2" ]]; then
		[[ -z "$line" ]] || die "kpatch list still shows '$line'"
	else
		[[ "$line" == "$1 [$2]" ]] || die "kpatch list shows '$line', expected '$1 [$2]'"
	fi
}

gone() {
	[[ ! -e "$KLP_SYSFS_DIR/$1" ]] || die "$KLP_SYSFS_DIR/$1 is still there"
	[[ ! -e "/sys/module/$1" ]] || die "module $1 is still loaded"
}

log_of() {
	echo "livepatch: enabling patch '$1'
livepatch: '$1': initializing patching transition
livepatch: '$1': starting patching transition
livepatch: '$1': completing patching transition
livepatch: '$1': patching complete"
}

unlog_of() {
	echo "livepatch: '$1': initializing unpatching transition
livepatch: '$1': starting unpatching transition
livepatch: '$1': completing unpatching transition
livepatch: '$1': unpatching complete"
}


for mod in $MOD_C $MOD_RUST; do
	if [[ $mod == "$MOD_C" ]]; then
		ko=$KO_C msg=$C_MSG lang=C
	else
		ko=$KO_RUST msg=$RUST_MSG lang=Rust
	fi

	start_test "kpatch load, list and unload of the $lang sample"

	kpatch load "$ko"
	expect_cmdline "$msg"
	check_sysfs_value $mod enabled 1
	listed $mod enabled
	kpatch unload $mod
	gone $mod
	listed $mod ""
	expect_cmdline "$ORIG"

	check_result "$(log_of $mod)
$(unlog_of $mod)"
done


start_test "kpatch: C and Rust samples stacked, then unload --all"

kpatch load "$KO_C"
kpatch load "$KO_RUST"
expect_cmdline "$RUST_MSG"
listed $MOD_C enabled
listed $MOD_RUST enabled
kpatch unload --all
gone $MOD_C
gone $MOD_RUST
expect_cmdline "$ORIG"

check_result "$(log_of $MOD_C)
$(log_of $MOD_RUST)
$(unlog_of $MOD_C)
$(unlog_of $MOD_RUST)"

exit 0
