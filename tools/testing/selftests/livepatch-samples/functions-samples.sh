#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Helpers of the livepatch-samples selftests, sourced after
# ../livepatch/functions.sh.

# check_log(expected) - like check_result of functions.sh, but keeps every
# kernel log line that mentions livepatch: the samples' own messages too.
# The number of reads in the C state demo's destructor message becomes N:
# other programs read /proc/cmdline too.
check_log() {
	local expect="$*" result

	result=$(dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' |
		 grep -e 'livepatch' -e 'test_klp' |
		 grep -v -e '\(tainting\|taints\) kernel' -e 'kselftest timestamp' |
		 sed 's/^\[[ 0-9.]*\] //; s/count freed after [0-9]* read/count freed after N read/')
	if [[ "$expect" == "$result" ]]; then
		echo "ok"
	else
		echo -e "not ok\n\n$(diff -upr --label expected --label result <(echo "$expect") <(echo "$result"))\n"
		die "livepatch kselftest(s) failed"
	fi
}

# expect_cmdline(text) - /proc/cmdline reads exactly text
expect_cmdline() {
	local got

	got=$(cat /proc/cmdline)
	[[ "$got" == "$1" ]] ||
		die "/proc/cmdline: '$got', expected '$1'"
}
