#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The rustdoc examples of the kernel crate's livepatch module run as KUnit
# tests at boot (CONFIG_RUST_KERNEL_DOCTESTS): every one of them must have
# run and passed, and the suite as a whole must not have failed.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

dmesg | grep -q 'livepatch: Rust core' ||
	skip "the Rust livepatch API needs the Rust livepatch core"
dmesg | grep -q 'rust_doctest_kernel_' ||
	skip "the kernel crate's doctests did not run at boot (CONFIG_RUST_KERNEL_DOCTESTS off, or KUnit not enabled at boot: CONFIG_KUNIT_DEFAULT_ENABLED / kunit.enable=1)"

start_test "kernel::livepatch rustdoc examples as KUnit tests"

results=$(dmesg | sed 's/^\[[ 0-9.]*\] *//' |
	  grep -E '^(not )?ok [0-9]+ rust_doctest_kernel_livepatch')
n=$(grep -c '^ok' <<<"$results")
bad=$(grep '^not ok' <<<"$results")
echo "$n livepatch doctests passed"
[[ -z "$bad" ]] || die "livepatch doctests failed: $bad"
[[ $n -ge 3 ]] || die "only $n livepatch doctests ran: $results"
# The whole doctest suite of the kernel crate passed too.
dmesg | sed 's/^\[[ 0-9.]*\] *//' | grep -qE '^not ok [0-9]+ rust_doctests_kernel' &&
	die "the kernel crate's doctest suite failed"

exit 0
