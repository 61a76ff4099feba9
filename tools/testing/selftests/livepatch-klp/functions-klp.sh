#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Helpers of the livepatch-klp selftests, sourced after
# ../livepatch/functions.sh.

# new_log - the kernel log since the start of the test
new_log() {
	dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }'
}

# enabled_log(mod) - the log of an insmod of mod whose patching
# transition completes at once
enabled_log() {
	echo "% insmod test_modules/$1.ko
livepatch: enabling patch '$1'
livepatch: '$1': initializing patching transition
livepatch: '$1': starting patching transition
livepatch: '$1': completing patching transition
livepatch: '$1': patching complete"
}

# disabled_log(mod) - the log of a disable of mod whose unpatching
# transition completes at once
disabled_log() {
	echo "% echo 0 > $KLP_SYSFS_DIR/$1/enabled
livepatch: '$1': initializing unpatching transition
livepatch: '$1': starting unpatching transition
livepatch: '$1': completing unpatching transition
livepatch: '$1': unpatching complete"
}
