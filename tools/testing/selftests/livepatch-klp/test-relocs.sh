#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# klp relocations (Documentation/livepatch/module-elf-format.rst), with
# test modules that test_modules/klp_mkrela.py converted after the build
# (6.12 has no klp-convert):
# - relocations for vmlinux, written when the livepatch loads: a static
#   constant, a static function and the second of several symbols of one
#   name; their addresses are compared with /proc/kallsyms and the
#   constant is read through its relocation;
# - relocations for a module loaded after the livepatch, written when it
#   comes, cleared when it goes (so that it can come again), and for a
#   module already loaded when the livepatch is enabled;
# - faulty relocations: an unknown vmlinux symbol, a position that does not
#   exist, a malformed symbol name, an unknown symbol of a module (loaded
#   after, then before the livepatch), a vmlinux symbol in a module's
#   relocation section.  Each fails the load it should with the core's
#   message and leaves nothing registered.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../livepatch/functions.sh"

MOD_LP=test_klp_reloc
MOD_TARGET=test_klp_reloc_mod
MOD_BAD_SYM=test_klp_reloc_bad_sym
MOD_BAD_POS=test_klp_reloc_bad_pos
MOD_BAD_NAME=test_klp_reloc_bad_name
MOD_BAD_MODSYM=test_klp_reloc_bad_modsym
MOD_BAD_CROSS=test_klp_reloc_bad_cross
# A name that vmlinux has twice (test_klp_reloc.c takes the second)
DUP=proc_single_open
ZERO=0000000000000000

setup_config

RUST=0
dmesg | grep -q 'livepatch: Rust core' && RUST=1

# cannot_resolve(patch) - the line that the Rust core adds when it cannot
# set up the object of a loaded module while enabling a patch (the C core
# logs nothing more), preceded by a newline; nothing on the C core
cannot_resolve() {
	if [[ $RUST == 1 ]]; then
		printf "\nlivepatch: patch '%s': cannot resolve object '%s'" "$1" $MOD_TARGET
	fi
}

# ksym(symbol, object, sympos) - the address of a symbol of vmlinux or of
# a module in /proc/kallsyms: the only one for sympos 0, else the
# sympos-th (the order in which the core counts them).  Empty when there
# is no such symbol, or when sympos is 0 and there are several.
ksym() {
	awk -v sym="$1" -v obj="$2" -v pos="$3" '
		$3 == sym && (obj == "vmlinux" ? NF == 3 : $4 == "[" obj "]") {
			n++
			if (pos == 0 || n == pos)
				addr = $1
		}
		END { if (pos == 0 ? n == 1 : n >= pos) print addr }' /proc/kallsyms
}

# kaddr(symbol, object, sympos) - ksym() that must find the symbol
kaddr() {
	local addr

	addr=$(ksym "$@")
	[[ -n "$addr" ]] || die "no symbol $1 (position $3) of $2 in /proc/kallsyms"
	echo "$addr"
}

addr=$(kaddr cmdline_proc_show vmlinux 0) || exit 1
[[ "$addr" =~ ^0+$ ]] && skip "/proc/kallsyms shows no addresses"
NGROUPS_MAX=$(cat /proc/sys/kernel/ngroups_max)

# check_relocs(loaded) - the relocations that test_klp_reloc shows match
# /proc/kallsyms; those for test_klp_reloc_mod are written when loaded is
# "loaded" and cleared otherwise
check_relocs() {
	local want got mv mr

	if [[ "$1" == loaded ]]; then
		mv=$(kaddr test_klp_reloc_mod_value $MOD_TARGET 0) || exit 1
		mr=$(kaddr test_klp_reloc_mod_report $MOD_TARGET 0) || exit 1
	else
		mv=$ZERO
		mr=$ZERO
	fi
	want="vmlinux ngroups_max,0 $(kaddr ngroups_max vmlinux 0)
vmlinux cmdline_proc_show,0 $(kaddr cmdline_proc_show vmlinux 0)
vmlinux $DUP,2 $(kaddr $DUP vmlinux 2)
$MOD_TARGET test_klp_reloc_mod_value,0 $mv
$MOD_TARGET test_klp_reloc_mod_report,0 $mr"
	got=$(cat /sys/module/$MOD_LP/parameters/relocs)
	[[ "$want" == "$got" ]] ||
		die "klp relocations of $MOD_LP: $(diff -u --label expected --label result <(echo "$want") <(echo "$got"))"
}

# report() - reads the parameter that calls test_klp_reloc_mod_report()
report() {
	log "% cat /sys/module/$MOD_TARGET/parameters/report"
	cat /sys/module/$MOD_TARGET/parameters/report >/dev/null ||
		die "cannot read /sys/module/$MOD_TARGET/parameters/report"
}

# check_gone(module) - nothing of a module that failed to load is left
check_gone() {
	[[ -e "/sys/module/$1" ]] && die "module $1 is still loaded"
	[[ -e "$KLP_SYSFS_DIR/$1" ]] && die "livepatch $1 is still registered"
	return 0
}


start_test "klp relocations for vmlinux at load, for a module when it comes"

load_lp $MOD_LP
check_relocs
load_mod $MOD_TARGET
check_relocs loaded
unload_mod $MOD_TARGET
check_relocs
load_mod $MOD_TARGET
check_relocs loaded
unload_mod $MOD_TARGET
disable_lp $MOD_LP
unload_lp $MOD_LP

check_result "% insmod test_modules/$MOD_LP.ko
$MOD_LP: vmlinux ngroups_max = $NGROUPS_MAX
livepatch: enabling patch '$MOD_LP'
livepatch: '$MOD_LP': initializing patching transition
livepatch: '$MOD_LP': starting patching transition
livepatch: '$MOD_LP': completing patching transition
livepatch: '$MOD_LP': patching complete
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_LP' to loading module '$MOD_TARGET'
$MOD_LP: livepatch_test_klp_reloc_mod_report: test_klp_reloc_mod_value = 0x7e57
% rmmod $MOD_TARGET
livepatch: reverting patch '$MOD_LP' on unloading module '$MOD_TARGET'
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_LP' to loading module '$MOD_TARGET'
$MOD_LP: livepatch_test_klp_reloc_mod_report: test_klp_reloc_mod_value = 0x7e57
% rmmod $MOD_TARGET
livepatch: reverting patch '$MOD_LP' on unloading module '$MOD_TARGET'
% echo 0 > $KLP_SYSFS_DIR/$MOD_LP/enabled
livepatch: '$MOD_LP': initializing unpatching transition
livepatch: '$MOD_LP': starting unpatching transition
livepatch: '$MOD_LP': completing unpatching transition
livepatch: '$MOD_LP': unpatching complete
% rmmod $MOD_LP"


start_test "klp relocations for a module loaded before the livepatch"

load_mod $MOD_TARGET
load_lp $MOD_LP
check_relocs loaded
report
disable_lp $MOD_LP
report
unload_lp $MOD_LP
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: test_klp_reloc_mod_report: not patched
% insmod test_modules/$MOD_LP.ko
$MOD_LP: vmlinux ngroups_max = $NGROUPS_MAX
livepatch: enabling patch '$MOD_LP'
livepatch: '$MOD_LP': initializing patching transition
livepatch: '$MOD_LP': starting patching transition
livepatch: '$MOD_LP': completing patching transition
livepatch: '$MOD_LP': patching complete
% cat /sys/module/$MOD_TARGET/parameters/report
$MOD_LP: livepatch_test_klp_reloc_mod_report: test_klp_reloc_mod_value = 0x7e57
% echo 0 > $KLP_SYSFS_DIR/$MOD_LP/enabled
livepatch: '$MOD_LP': initializing unpatching transition
livepatch: '$MOD_LP': starting unpatching transition
livepatch: '$MOD_LP': completing unpatching transition
livepatch: '$MOD_LP': unpatching complete
% cat /sys/module/$MOD_TARGET/parameters/report
$MOD_TARGET: test_klp_reloc_mod_report: not patched
% rmmod $MOD_LP
% rmmod $MOD_TARGET"


start_test "unknown vmlinux symbol"

load_failing_mod $MOD_BAD_SYM
check_gone $MOD_BAD_SYM

check_result "% insmod test_modules/$MOD_BAD_SYM.ko
livepatch: symbol 'test_klp_reloc_no_such_symbol' not found in symbol table
insmod: ERROR: could not insert module test_modules/$MOD_BAD_SYM.ko: Invalid parameters"


start_test "position of a vmlinux symbol that does not exist"

load_failing_mod $MOD_BAD_POS
check_gone $MOD_BAD_POS

check_result "% insmod test_modules/$MOD_BAD_POS.ko
livepatch: symbol position 2 for symbol 'ngroups_max' in object 'vmlinux' not found
insmod: ERROR: could not insert module test_modules/$MOD_BAD_POS.ko: Invalid parameters"


start_test "livepatch symbol name without a number as position"

load_failing_mod $MOD_BAD_NAME
check_gone $MOD_BAD_NAME

check_result "% insmod test_modules/$MOD_BAD_NAME.ko
livepatch: symbol .klp.sym.vmlinux.ngroups_max,pos has an incorrectly formatted name
insmod: ERROR: could not insert module test_modules/$MOD_BAD_NAME.ko: Invalid parameters"


start_test "unknown symbol of a module loaded after the livepatch"

load_lp $MOD_BAD_MODSYM
load_failing_mod $MOD_TARGET
check_gone $MOD_TARGET
disable_lp $MOD_BAD_MODSYM
unload_lp $MOD_BAD_MODSYM
load_mod $MOD_TARGET
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_BAD_MODSYM.ko
livepatch: enabling patch '$MOD_BAD_MODSYM'
livepatch: '$MOD_BAD_MODSYM': initializing patching transition
livepatch: '$MOD_BAD_MODSYM': starting patching transition
livepatch: '$MOD_BAD_MODSYM': completing patching transition
livepatch: '$MOD_BAD_MODSYM': patching complete
% insmod test_modules/$MOD_TARGET.ko
livepatch: symbol 'test_klp_reloc_no_such_symbol' not found in symbol table
livepatch: failed to initialize patch '$MOD_BAD_MODSYM' for module '$MOD_TARGET' (-22)
livepatch: patch '$MOD_BAD_MODSYM' failed for module '$MOD_TARGET', refusing to load module '$MOD_TARGET'
insmod: ERROR: could not insert module test_modules/$MOD_TARGET.ko: Invalid parameters
% echo 0 > $KLP_SYSFS_DIR/$MOD_BAD_MODSYM/enabled
livepatch: '$MOD_BAD_MODSYM': initializing unpatching transition
livepatch: '$MOD_BAD_MODSYM': starting unpatching transition
livepatch: '$MOD_BAD_MODSYM': completing unpatching transition
livepatch: '$MOD_BAD_MODSYM': unpatching complete
% rmmod $MOD_BAD_MODSYM
% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: test_klp_reloc_mod_report: not patched
% rmmod $MOD_TARGET"


start_test "unknown symbol of a module loaded before the livepatch"

load_mod $MOD_TARGET
load_failing_mod $MOD_BAD_MODSYM
check_gone $MOD_BAD_MODSYM
report
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: test_klp_reloc_mod_report: not patched
% insmod test_modules/$MOD_BAD_MODSYM.ko
livepatch: symbol 'test_klp_reloc_no_such_symbol' not found in symbol table$(cannot_resolve $MOD_BAD_MODSYM)
insmod: ERROR: could not insert module test_modules/$MOD_BAD_MODSYM.ko: Invalid parameters
% cat /sys/module/$MOD_TARGET/parameters/report
$MOD_TARGET: test_klp_reloc_mod_report: not patched
% rmmod $MOD_TARGET"


start_test "vmlinux symbol in a module's relocation section"

load_mod $MOD_TARGET
load_failing_mod $MOD_BAD_CROSS
check_gone $MOD_BAD_CROSS
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko
$MOD_TARGET: test_klp_reloc_mod_report: not patched
% insmod test_modules/$MOD_BAD_CROSS.ko
livepatch: invalid access to vmlinux symbol 'ngroups_max' from module-specific livepatch relocation section$(cannot_resolve $MOD_BAD_CROSS)
insmod: ERROR: could not insert module test_modules/$MOD_BAD_CROSS.ko: Invalid parameters
% rmmod $MOD_TARGET"

exit 0
