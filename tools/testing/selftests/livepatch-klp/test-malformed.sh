#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Malformed patches: klp_enable_patch() must refuse each of them, the
# module's init fails with the errno of Linux 6.12 and nothing stays
# registered; afterwards the same module loads with a good patch.
#
# Cases (test_klp_core_bad.ko case=...): objs NULL, a module object without
# functions, a function without old_name or without new_func, a function
# name kallsyms does not know, old_sympos past the last match, an ambiguous
# name with old_sympos 0, an object name of MODULE_NAME_LEN characters, a
# function name of KSYM_NAME_LEN characters, the unknown name and the
# position past the last match in a module object (whose functions the Rust
# core resolves in one walk of the module's symbols: the first error in
# the order of the functions is the one reported), a module without
# MODULE_INFO(livepatch, "Y") (test_klp_core_notlp.ko), loading the
# livepatch module a second time; an empty object array, which 6.12
# accepts.  The Rust core only: the same function or vmlinux twice in one
# patch (the C core runs into a duplicate sysfs entry and its warning).
#
# The Rust core names each refusal in the log where the C core refuses
# silently: the expected logs have those lines on the Rust core only.

. "$(dirname "$0")/../livepatch/functions.sh"

MOD_BAD=test_klp_core_bad
MOD_NOTLP=test_klp_core_notlp
EINVAL_MSG="Invalid parameters"

setup_config

RUST=0
dmesg | grep -q 'livepatch: Rust core' && RUST=1

# lines(LINE...) - the lines given, one per line, without the empty ones
lines() {
	local l

	for l in "$@"; do
		[[ -n "$l" ]] && printf '%s\n' "$l"
	done
}

# rust_only(LINE) - LINE on the Rust core, nothing on the C core
rust_only() {
	[[ $RUST == 1 ]] && printf '%s\n' "$1"
}

# per_core(RUST_LINE, C_LINE) - the line that the running core logs
per_core() {
	if [[ $RUST == 1 ]]; then
		printf '%s\n' "$1"
	else
		printf '%s\n' "$2"
	fi
}

# expect_clean(mod) - nothing is registered, the module is gone
expect_clean() {
	local left

	left=$(ls -A "$KLP_SYSFS_DIR")
	[[ -z "$left" ]] || die "$KLP_SYSFS_DIR is not empty: $left"
	[[ ! -e "/sys/module/$1" ]] || die "module $1 stayed loaded"
}

# refused(case, errno text, log line...) - load the module with the case,
# expect insmod to fail with the errno and the log lines before its error
refused() {
	local c="$1" err="$2"

	shift 2
	start_test "malformed patch: case=$c"
	load_failing_mod $MOD_BAD "case=$c"
	check_result "$(lines "% insmod test_modules/$MOD_BAD.ko case=$c" "$@" \
		"insmod: ERROR: could not insert module test_modules/$MOD_BAD.ko: $err")"
	expect_clean $MOD_BAD
}

CANNOT_RESOLVE="livepatch: patch '$MOD_BAD': cannot resolve object 'vmlinux'"

refused noobjs "$EINVAL_MSG" \
	"$(rust_only "livepatch: patch '$MOD_BAD': no objects")"

refused nofuncs "$EINVAL_MSG" \
	"$(rust_only "livepatch: patch '$MOD_BAD': object 'test_klp_core_target' has no functions")"

refused noname "$EINVAL_MSG" \
	"$(rust_only "livepatch: patch '$MOD_BAD': object 'vmlinux': function without a name")"

refused nonew "$EINVAL_MSG" \
	"$(rust_only "livepatch: patch '$MOD_BAD': object 'vmlinux': function 'cmdline_proc_show' has no replacement")"

refused unknown "$EINVAL_MSG" \
	"livepatch: symbol 'test_klp_core_no_such_function' not found in symbol table" \
	"$(rust_only "$CANNOT_RESOLVE")"

refused sympos "$EINVAL_MSG" \
	"livepatch: symbol position 2 for symbol 'cmdline_proc_show' in object 'vmlinux' not found" \
	"$(rust_only "$CANNOT_RESOLVE")"

refused longobj "$EINVAL_MSG" \
	"$(rust_only "livepatch: patch '$MOD_BAD': object name too long")"

refused longfunc "$EINVAL_MSG" \
	"$(rust_only "livepatch: patch '$MOD_BAD': object 'vmlinux': function name too long")"

# A module object: the target module is loaded first.
TARGET=test_klp_core_target
CANNOT_RESOLVE_MOD="livepatch: patch '$MOD_BAD': cannot resolve object '$TARGET'"
load_mod $TARGET

refused modunknown "$EINVAL_MSG" \
	"livepatch: symbol 'test_klp_core_no_such_function' not found in symbol table" \
	"$(rust_only "$CANNOT_RESOLVE_MOD")"

refused modsympos "$EINVAL_MSG" \
	"livepatch: symbol position 2 for symbol 'test_klp_core_target_b' in object '$TARGET' not found" \
	"$(rust_only "$CANNOT_RESOLVE_MOD")"

unload_mod $TARGET

if [[ $RUST == 1 ]]; then
	refused dupfunc "File exists" \
		"livepatch: patch '$MOD_BAD': object 'vmlinux': function 'cmdline_proc_show,1' is listed twice"
	refused dupobj "File exists" \
		"livepatch: patch '$MOD_BAD': object 'vmlinux' is listed twice"
fi


# A function name that kallsyms has more than once in vmlinux (a static
# function of two files): old_sympos 0 cannot choose.
DUP=$(awk 'NF == 3 && $2 ~ /^[tT]$/ && $3 !~ /[.]/ { print $3 }' /proc/kallsyms |
      sort | uniq -d | grep -v '^__pfx_' | head -n 1)
if [[ -n "$DUP" ]]; then
	start_test "malformed patch: case=ambiguous ($DUP)"
	load_failing_mod $MOD_BAD case=ambiguous "func=$DUP"
	check_result "$(lines "% insmod test_modules/$MOD_BAD.ko case=ambiguous func=$DUP" \
		"$(per_core "livepatch: unresolvable ambiguity for symbol '$DUP' in object 'vmlinux'" \
			    "livepatch: unresolvable ambiguity for symbol '$DUP' in object '(null)'")" \
		"$(rust_only "$CANNOT_RESOLVE")" \
		"insmod: ERROR: could not insert module test_modules/$MOD_BAD.ko: $EINVAL_MSG")"
	expect_clean $MOD_BAD
else
	echo "no duplicated function name in /proc/kallsyms: case=ambiguous not run"
fi


start_test "a module not marked as a livepatch module"

load_failing_mod $MOD_NOTLP
check_result "% insmod test_modules/$MOD_NOTLP.ko
livepatch: module $MOD_NOTLP is not marked as a livepatch module
insmod: ERROR: could not insert module test_modules/$MOD_NOTLP.ko: $EINVAL_MSG"
expect_clean $MOD_NOTLP
[[ "$(cat /proc/cmdline)" != *"must not be patched"* ]] ||
	die "/proc/cmdline is patched by $MOD_NOTLP"


start_test "an empty object array is a patch that changes nothing"

load_lp $MOD_BAD case=empty
check_sysfs_value $MOD_BAD enabled 1
[[ -z "$(find "$KLP_SYSFS_DIR/$MOD_BAD" -mindepth 1 -type d)" ]] ||
	die "$MOD_BAD has objects in sysfs: $(ls "$KLP_SYSFS_DIR/$MOD_BAD")"
disable_lp $MOD_BAD
unload_lp $MOD_BAD
check_result "% insmod test_modules/$MOD_BAD.ko case=empty
livepatch: enabling patch '$MOD_BAD'
livepatch: '$MOD_BAD': initializing patching transition
livepatch: '$MOD_BAD': starting patching transition
livepatch: '$MOD_BAD': completing patching transition
livepatch: '$MOD_BAD': patching complete
% echo 0 > $KLP_SYSFS_DIR/$MOD_BAD/enabled
livepatch: '$MOD_BAD': initializing unpatching transition
livepatch: '$MOD_BAD': starting unpatching transition
livepatch: '$MOD_BAD': completing unpatching transition
livepatch: '$MOD_BAD': unpatching complete
% rmmod $MOD_BAD"
expect_clean $MOD_BAD


start_test "after the refusals the module loads a good patch, once"

ORIG=$(cat /proc/cmdline)
load_lp $MOD_BAD case=good
check_sysfs_value $MOD_BAD enabled 1
check_sysfs_value $MOD_BAD transition 0
check_sysfs_value $MOD_BAD replace 0
[[ -d "$KLP_SYSFS_DIR/$MOD_BAD/vmlinux/cmdline_proc_show,1" ]] ||
	die "no cmdline_proc_show,1 in $KLP_SYSFS_DIR/$MOD_BAD/vmlinux"
check_sysfs_value $MOD_BAD vmlinux/patched 1
[[ "$(cat /proc/cmdline)" == "$MOD_BAD: this is a good patch" ]] ||
	die "/proc/cmdline is not patched: $(cat /proc/cmdline)"
# The module loader refuses a second copy before the core sees it.
load_failing_mod $MOD_BAD case=good
disable_lp $MOD_BAD
[[ "$(cat /proc/cmdline)" == "$ORIG" ]] ||
	die "/proc/cmdline is still patched: $(cat /proc/cmdline)"
unload_lp $MOD_BAD
check_result "% insmod test_modules/$MOD_BAD.ko case=good
livepatch: enabling patch '$MOD_BAD'
livepatch: '$MOD_BAD': initializing patching transition
livepatch: '$MOD_BAD': starting patching transition
livepatch: '$MOD_BAD': completing patching transition
livepatch: '$MOD_BAD': patching complete
% insmod test_modules/$MOD_BAD.ko case=good
insmod: ERROR: could not insert module test_modules/$MOD_BAD.ko: File exists
% echo 0 > $KLP_SYSFS_DIR/$MOD_BAD/enabled
livepatch: '$MOD_BAD': initializing unpatching transition
livepatch: '$MOD_BAD': starting unpatching transition
livepatch: '$MOD_BAD': completing unpatching transition
livepatch: '$MOD_BAD': unpatching complete
% rmmod $MOD_BAD"
expect_clean $MOD_BAD

exit 0
