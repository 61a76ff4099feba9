#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Rust livepatch samples, loaded from the kernel build tree: their effect,
# their kernel log, and stacking and atomic replace with C livepatches.
# Needs the upstream livepatch selftests installed beside this directory
# (functions.sh and their test modules).

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"
. "$HERE/functions-samples.sh"

MOD_RUST=rust_livepatch_cmdline
MOD_C=test_klp_livepatch
MOD_REPLACE=test_klp_atomic_replace
RUST_MSG="this has been live patched by a Rust livepatch"
C_MSG="$MOD_C: this has been live patched"

setup_config

# check_result() keeps the kernel log lines with "livepatch:" or "test_klp":
# the "% insmod"-style lines of the Rust sample (no "test_klp" in its name)
# are not among them.
#
# functions.sh loads "test_modules/<name>.ko" from the working directory:
# gather the sample and the upstream test modules there.
WORK=$(mktemp -d)
mkdir "$WORK/test_modules"
ln -s "$KDIR/samples/livepatch/$MOD_RUST.ko" "$WORK/test_modules/"
ln -s "$HERE/../livepatch/test_modules/$MOD_C.ko" "$WORK/test_modules/"
ln -s "$HERE/../livepatch/test_modules/$MOD_REPLACE.ko" "$WORK/test_modules/"
[[ -e "$KDIR/samples/livepatch/$MOD_RUST.ko" ]] ||
	skip "$MOD_RUST.ko is not built (CONFIG_SAMPLE_LIVEPATCH_RUST)"
cd "$WORK" || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM HUP

ORIG=$(cat /proc/cmdline)


# - load the Rust cmdline sample: /proc/cmdline shows its message
# - disable and unload it: the original command line is back

start_test "Rust sample: basic function patching"

load_lp $MOD_RUST
expect_cmdline "$RUST_MSG"
disable_lp $MOD_RUST
unload_lp $MOD_RUST
expect_cmdline "$ORIG"

check_result "livepatch: enabling patch '$MOD_RUST'
livepatch: '$MOD_RUST': initializing patching transition
livepatch: '$MOD_RUST': starting patching transition
livepatch: '$MOD_RUST': completing patching transition
livepatch: '$MOD_RUST': patching complete
livepatch: '$MOD_RUST': initializing unpatching transition
livepatch: '$MOD_RUST': starting unpatching transition
livepatch: '$MOD_RUST': completing unpatching transition
livepatch: '$MOD_RUST': unpatching complete"


# - the Rust sample, then a C livepatch of the same function on top: the C
#   one wins; disabling it brings the Rust one back, then the original

start_test "Rust and C livepatches stacked"

load_lp $MOD_RUST
load_lp $MOD_C
expect_cmdline "$C_MSG"
if [[ -e /sys/kernel/livepatch/$MOD_RUST/stack_order ]]; then
	check_sysfs_value "$MOD_RUST" stack_order 1
	check_sysfs_value "$MOD_C" stack_order 2
fi
disable_lp $MOD_C
unload_lp $MOD_C
expect_cmdline "$RUST_MSG"
disable_lp $MOD_RUST
unload_lp $MOD_RUST
expect_cmdline "$ORIG"

check_result "livepatch: enabling patch '$MOD_RUST'
livepatch: '$MOD_RUST': initializing patching transition
livepatch: '$MOD_RUST': starting patching transition
livepatch: '$MOD_RUST': completing patching transition
livepatch: '$MOD_RUST': patching complete
% insmod test_modules/$MOD_C.ko
livepatch: enabling patch '$MOD_C'
livepatch: '$MOD_C': initializing patching transition
livepatch: '$MOD_C': starting patching transition
livepatch: '$MOD_C': completing patching transition
livepatch: '$MOD_C': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_C/enabled
livepatch: '$MOD_C': initializing unpatching transition
livepatch: '$MOD_C': starting unpatching transition
livepatch: '$MOD_C': completing unpatching transition
livepatch: '$MOD_C': unpatching complete
% rmmod $MOD_C
livepatch: '$MOD_RUST': initializing unpatching transition
livepatch: '$MOD_RUST': starting unpatching transition
livepatch: '$MOD_RUST': completing unpatching transition
livepatch: '$MOD_RUST': unpatching complete"


# - the Rust sample, then a C livepatch with atomic replace: the Rust patch
#   goes away (its module can be removed while the C one stays)

start_test "C atomic replace of a Rust livepatch"

load_lp $MOD_RUST
load_lp $MOD_REPLACE replace=1
loop_until '[[ ! -e /sys/kernel/livepatch/$MOD_RUST ]]' ||
	die "$MOD_RUST was not replaced"
unload_lp $MOD_RUST
expect_cmdline "$ORIG"
disable_lp $MOD_REPLACE
unload_lp $MOD_REPLACE

check_result "livepatch: enabling patch '$MOD_RUST'
livepatch: '$MOD_RUST': initializing patching transition
livepatch: '$MOD_RUST': starting patching transition
livepatch: '$MOD_RUST': completing patching transition
livepatch: '$MOD_RUST': patching complete
% insmod test_modules/$MOD_REPLACE.ko replace=1
livepatch: enabling patch '$MOD_REPLACE'
livepatch: '$MOD_REPLACE': initializing patching transition
livepatch: '$MOD_REPLACE': starting patching transition
livepatch: '$MOD_REPLACE': completing patching transition
livepatch: '$MOD_REPLACE': patching complete
% echo 0 > /sys/kernel/livepatch/$MOD_REPLACE/enabled
livepatch: '$MOD_REPLACE': initializing unpatching transition
livepatch: '$MOD_REPLACE': starting unpatching transition
livepatch: '$MOD_REPLACE': completing unpatching transition
livepatch: '$MOD_REPLACE': unpatching complete
% rmmod $MOD_REPLACE"

exit 0
