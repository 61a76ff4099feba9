# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Library of scripts/klp.  Sourced, never run directly.

# Packages of the toolchain root.  Changing this list re-runs the install step.
KLP_PACKAGES=(
	# kernel build, LLVM=1 with Rust
	make flex bison bc cpio kmod xz-utils libelf-dev libssl-dev dwarves
	python3 perl libc6-dev git rsync ca-certificates
	# make htmldocs (scripts/klp check)
	python3-sphinx python3-yaml
	clang lld llvm
	rustc rust-src rustfmt rust-clippy cargo bindgen
	# guest: QEMU, virtme-ng and what its init needs
	qemu-system-x86 virtme-ng busybox iproute2 udev procps systemd-sysv
	# the kernel source itself
	linux-source-6.12
)

log() { printf '[klp] %s\n' "$*" >&2; }
die() { printf '[klp] error: %s\n' "$*" >&2; exit 1; }

# --- the toolchain root -----------------------------------------------------

# Run a command inside the toolchain root.  The root is entered in a private
# mount namespace, so /proc, /sys, /dev and the bind mounts of the checkout and
# the cache vanish with the command, even when it is killed.  The checkout and
# the cache appear at the same paths inside as outside.
in_root() {
	[ -x "$KLP_ROOT/usr/bin/env" ] || die "toolchain root missing: run 'scripts/klp setup'"
	unshare --mount --propagation private -- /bin/sh -c '
		set -e
		R=$1 C=$2 T=$3; shift 3
		mount -t proc proc "$R/proc"
		mount --rbind /sys "$R/sys"
		mount --rbind /dev "$R/dev"
		mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
		mkdir -p "$R$C" "$R$T"
		mount --bind "$C" "$R$C"
		mount --bind "$T" "$R$T"
		cd "$R$T"
		exec chroot "$R" /usr/bin/env -i \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
			KLP_CACHE="$C" KLP_TOP="$T" CI="${CI:-}" \
			/bin/sh -c "cd \"\$KLP_TOP\" && exec \"\$@\"" sh "$@"
	' sh "$KLP_ROOT" "$KLP_CACHE" "$KLP_TOP" "$@"
}

host_prereqs() {
	[ "$(id -u)" = 0 ] || die "scripts/klp needs root (debootstrap, chroot, mount namespaces)"
	command -v unshare >/dev/null || die "unshare (util-linux) is missing on the host"
	if ! command -v debootstrap >/dev/null; then
		command -v apt-get >/dev/null ||
			die "debootstrap is missing and this host has no apt-get: install debootstrap"
		log "installing debootstrap on the host"
		apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
	fi
}

setup_root() {
	local stamp=$KLP_ROOT/.klp-base
	if [ ! -e "$stamp" ]; then
		log "debootstrap $KLP_SUITE into $KLP_ROOT (first time only)"
		mkdir -p "$KLP_CACHE/debs"
		# A root without the stamp is an interrupted one: start it over;
		# the downloaded packages are kept in the cache directory.
		rm -rf "$KLP_ROOT"
		debootstrap --variant=minbase --cache-dir="$KLP_CACHE/debs" \
			"$KLP_SUITE" "$KLP_ROOT" >"$KLP_CACHE/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$KLP_CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
		touch "$stamp"
	fi
	local want have=''
	want=$(printf '%s\n' "${KLP_PACKAGES[@]}" | sort | sha256sum | cut -c1-16)
	[ -e "$KLP_ROOT/.klp-packages" ] && have=$(cat "$KLP_ROOT/.klp-packages")
	if [ "$want" != "$have" ]; then
		log "installing the toolchain into the root (first time only)"
		cp /etc/resolv.conf "$KLP_ROOT/etc/resolv.conf"
		in_root sh -c 'export DEBIAN_FRONTEND=noninteractive
			apt-get update -q &&
			apt-get install -y -q --no-install-recommends "$@"' sh \
			"${KLP_PACKAGES[@]}" >"$KLP_CACHE/apt.log" 2>&1 ||
			{ tail -n 30 "$KLP_CACHE/apt.log" >&2; die "installing packages failed"; }
		in_root apt-get clean
		echo "$want" >"$KLP_ROOT/.klp-packages"
	fi
	setup_kpatch
}

# Debian's kpatch runtime tool, for the selftest that drives livepatches
# with it.  Its package depends on kpatch-build's whole toolchain (TeX and
# Ghostscript included), none of which "kpatch load/list/unload" uses: the
# package is unpacked into /opt/kpatch of the root (the guest's /) instead
# of installed.
KLP_KPATCH=/opt/kpatch
setup_kpatch() {
	local dir=$KLP_ROOT$KLP_KPATCH
	[ -x "$dir/usr/sbin/kpatch" ] && return 0
	log "unpacking Debian's kpatch tool into the root (first time only)"
	rm -rf "$dir"
	in_root sh -c 'set -e; d=$(mktemp -d); cd "$d"
		apt-get download -q kpatch
		rm -rf "$1.partial"
		dpkg-deb -x kpatch_*.deb "$1.partial"
		mv "$1.partial" "$1"; rm -rf "$d"' sh "$KLP_KPATCH" \
		>>"$KLP_CACHE/apt.log" 2>&1 ||
		{ tail -n 10 "$KLP_CACHE/apt.log" >&2; die "unpacking kpatch failed"; }
}

# --- the kernel source --------------------------------------------------------

# The working tree is a git repository in the cache: its first commit is the
# pristine source, HEAD is always pristine + patches/ + the overlay.
src_setup() {
	local name origin
	if [ -n "${KLP_KERNEL_SRC:-}" ]; then
		origin=$(cd "$KLP_KERNEL_SRC" && pwd) || die "KLP_KERNEL_SRC=$KLP_KERNEL_SRC is not a directory"
		[ -f "$origin/Makefile" ] || die "$origin is not a kernel tree"
		name=$(basename "$origin")-$(printf '%s' "$origin" | sha256sum | cut -c1-8)
	else
		origin=tarball
		name=debian-6.12
	fi
	KLP_SRC=$KLP_CACHE/src/$name
	[ -e "$KLP_SRC/.git/klp-base" ] && return 0
	log "importing the kernel source into $KLP_SRC (first time only)"
	rm -rf "$KLP_SRC" "$KLP_SRC.partial"
	mkdir -p "$KLP_SRC.partial"
	if [ "$origin" = tarball ]; then
		tar -C "$KLP_SRC.partial" --strip-components=1 \
			-xf "$KLP_ROOT/usr/src/linux-source-6.12.tar.xz"
	else
		(cd "$origin" && tar --exclude=.git -cf - .) | tar -C "$KLP_SRC.partial" -xf -
	fi
	grep -q '^PATCHLEVEL = 12$' "$KLP_SRC.partial/Makefile" ||
		log "warning: $origin is not a 6.12 tree; patches may not apply"
	(
		cd "$KLP_SRC.partial"
		git init -q -b pristine .
		git add -Af .
		git -c user.name=klp -c user.email=klp@localhost \
			commit -q -m "pristine $(make -s kernelversion 2>/dev/null || echo source)"
		git rev-parse HEAD >.git/klp-base
	)
	mv "$KLP_SRC.partial" "$KLP_SRC"
}

# Files of the checkout that belong in the kernel tree.
overlay_files() {
	git -C "$KLP_TOP" ls-files -co --exclude-standard -- \
		Documentation include kernel lib rust samples tools \
		':!:*/target/*' ':!:tools/klp-model/*'
}

# Make the kernel tree equal to pristine + patches + overlay.  Only the files
# that differ from the tree's current state are written, so every unchanged
# file keeps its timestamp and builds stay incremental.  A patch that does not
# apply to the pristine source stops the sync.
sync_tree() {
	src_setup
	local base idx tree head f p mode commit
	base=$(cat "$KLP_SRC/.git/klp-base")
	idx=$(mktemp)
	rm -f "$idx"
	(
		cd "$KLP_SRC"
		export GIT_INDEX_FILE=$idx
		git read-tree "$base"
		for p in "$KLP_TOP"/patches/*.patch; do
			[ -e "$p" ] || continue
			git apply --cached "$p" ||
				die "patch ${p#"$KLP_TOP"/} does not apply to the pristine source"
		done
		overlay_files | while read -r f; do
			[ -f "$KLP_TOP/$f" ] || continue
			mode=100644
			[ -x "$KLP_TOP/$f" ] && mode=100755
			git update-index --add --cacheinfo \
				"$mode,$(git hash-object -w "$KLP_TOP/$f"),$f"
		done
		# scripts/klp inject-check: bugs put into the core on purpose.
		for p in ${KLP_INJECT:-}; do
			git apply --cached "$p" ||
				die "injected bug ${p#"$KLP_TOP"/} does not apply to the overlay"
		done
		git write-tree >"$idx.tree"
	)
	tree=$(cat "$idx.tree")
	rm -f "$idx" "$idx.tree"
	head=$(git -C "$KLP_SRC" rev-parse -q --verify HEAD^{tree})
	if [ "$tree" != "$head" ]; then
		commit=$(git -C "$KLP_SRC" -c user.name=klp -c user.email=klp@localhost \
			commit-tree "$tree" -p "$base" -m "klp overlay")
	else
		commit=HEAD
	fi
	# Writes only the paths whose content differs from the work tree, and
	# restores anything edited by hand in the cache.
	git -C "$KLP_SRC" reset -q --hard "$commit"
	git -C "$KLP_SRC" clean -q -f -d -- Documentation include kernel lib rust samples
}

# --- configuration and build ------------------------------------------------

# flavor -> build directory and config fragments
build_dir() { echo "$KLP_CACHE/build/$(basename "$KLP_SRC")-$KLP_FLAVOR"; }

flavor_fragments() {
	local frags=("$KLP_TOP/kernel/configs/klp.config")
	case "$KLP_FLAVOR" in
	rust|rust-debug) frags+=("$KLP_TOP/kernel/configs/klp-rust.config") ;;
	c|c-debug) frags+=("$KLP_TOP/kernel/configs/klp-c.config") ;;
	*) die "unknown flavor '$KLP_FLAVOR' (rust, c, rust-debug, c-debug)" ;;
	esac
	case "$KLP_FLAVOR" in
	*-debug) frags+=("$KLP_TOP/kernel/configs/klp-debug.config") ;;
	esac
	printf '%s\n' "${frags[@]}"
}

kmake() {
	local out
	out=$(build_dir)
	mkdir -p "$out"
	in_root make -C "$KLP_SRC" O="$out" LLVM=1 -j"$KLP_JOBS" "$@"
}

# Configure only when the fragments changed: allnoconfig with the fragments
# as the only things switched on, then check that every request took.
do_config() {
	local out frag want have='' line
	out=$(build_dir)
	mkdir -p "$out"
	frag=$out/klp-fragment.config
	flavor_fragments | xargs cat >"$frag.new"
	want=$(sha256sum <"$frag.new" | cut -c1-16)
	[ -e "$out/.klp-config" ] && have=$(cat "$out/.klp-config")
	if [ "$want" = "$have" ] && [ -e "$out/.config" ] && [ "${1:-}" != force ]; then
		rm -f "$frag.new"
		return 0
	fi
	mv "$frag.new" "$frag"
	log "configuring $KLP_FLAVOR in $out"
	kmake -s KCONFIG_ALLCONFIG="$frag" allnoconfig >/dev/null
	while read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qxF "$line" "$out/.config" ||
			die "config: $line did not take (unmet dependency?)" ;;
		esac
	done <"$frag"
	echo "$want" >"$out/.klp-config"
}

do_build() {
	local t0 out
	t0=$(date +%s)
	sync_tree
	do_config
	out=$(build_dir)
	log "building $KLP_FLAVOR kernel in $out"
	kmake >"$out/build.log" 2>&1 || { grep -E -B2 -A8 'error|Error' "$out/build.log" | head -60 >&2; die "kernel build failed (log: $out/build.log)"; }
	# The selftests (upstream's and the project's) build their modules
	# against the tree, in place, and are installed into the build tree.
	local t stamp=$KLP_SRC/.git/klp-selftests-built-for
	# The selftest modules are built in the source tree, shared by the
	# flavors: modules built against another flavor's kernel must go.
	if [ "$(cat "$stamp" 2>/dev/null)" != "$KLP_FLAVOR" ]; then
		for t in $KLP_SELFTESTS; do
			git -C "$KLP_SRC" clean -q -f -d -x -- "tools/testing/selftests/$t"
		done
		echo "$KLP_FLAVOR" >"$stamp"
	fi
	for t in $KLP_SELFTESTS; do
		[ -d "$KLP_SRC/tools/testing/selftests/$t" ] || continue
		mkdir -p "$out/kselftest/$t"
		in_root make -C "$KLP_SRC/tools/testing/selftests/$t" KDIR="$out" \
			LLVM=1 OUTPUT="$out/kselftest/$t" \
			INSTALL_PATH="$out/kselftest_install/$t" install \
			>"$out/kselftest-build-$t.log" 2>&1 ||
			{ tail -n 30 "$out/kselftest-build-$t.log" >&2; die "selftest build of $t failed"; }
	done
	# What kbuild compiled or linked ("  CC      kernel/...", "  RUSTC L
	# ..."): nothing on a warm cache with an unchanged tree.
	log "build of $KLP_FLAVOR done in $(($(date +%s) - t0)) s;" \
		"$(grep -c -E '^  (CC|AS|LD|RUSTC|BINDGEN|HOSTCC|HOSTRUSTC) ' "$out/build.log")" \
		"objects compiled or linked (0: nothing was rebuilt)"
}

# --- the virtual machine ----------------------------------------------------

# Decide between KVM and software emulation.  KVM is used only when a guest
# really runs under it: the built kernel is booted with no root file system
# and must reach its "no root" panic within a few seconds.
KLP_ACCEL=
probe_kvm() {
	[ -n "$KLP_ACCEL" ] && return 0
	local out img boot
	out=$(build_dir)
	img=$out/arch/x86/boot/bzImage
	KLP_ACCEL=tcg
	if [ "${KLP_KVM:-auto}" = 0 ]; then
		log "KVM probe: skipped (KLP_KVM=0): software emulation"
		return 0
	fi
	if [ ! -w /dev/kvm ]; then
		log "KVM probe: /dev/kvm is not usable: software emulation"
		return 0
	fi
	# The whole output, then the search: "qemu | grep -q" would fail
	# under pipefail when grep's early exit kills QEMU with SIGPIPE.
	boot=$(in_root timeout 6 qemu-system-x86_64 -accel kvm -cpu host -m 256M \
		-nodefaults -nographic -no-reboot -serial stdio -monitor none \
		-kernel "$img" -append "console=ttyS0 panic=-1 root=/dev/klp-none" \
		2>&1 || true)
	if grep -q 'Kernel panic' <<<"$boot"; then
		KLP_ACCEL=kvm
		log "KVM probe: a guest booted under KVM: using KVM"
	else
		log "KVM probe: no guest ran under KVM within 6 s: software emulation (TCG)"
	fi
}

# vm CMD...: boot the built kernel with the toolchain root as the guest's
# root file system and run CMD in it, as root, in the checkout.
# virtme-init (Debian's virtme-ng) waits for udev's coldplug with a bare
# "udevadm settle", which gives up after 120 s.  A debug kernel under
# software emulation takes longer (the settle's ping alone timed out after
# 120 s, with the coldplug still running); virtme-init then finds no console
# ports, which udev names, and powers the guest off before the script
# starts.  The root's copy of virtme-init gets a longer limit; the change
# is made again if a package upgrade reverts it.
guest_init_settle() {
	local f=$KLP_ROOT/usr/lib/python3/dist-packages/virtme/guest/virtme-init
	[ -f "$f" ] || return 0
	grep -q '^    udevadm settle$' "$f" || return 0
	sed -i 's/^    udevadm settle$/    udevadm settle --timeout=900/' "$f"
}

vm() {
	local out opts=()
	out=$(build_dir)
	probe_kvm
	guest_init_settle
	# Without KVM, QEMU's translator runs one vCPU at a time
	# (thread=single).  With a host thread per vCPU, a vCPU sometimes
	# executes an int3 that text_poke_bp() has already removed on the
	# other one, and the kernel dies of "Oops: int3" in a static call or
	# static key site that it was patching.  Toggling tracepoints under
	# fork/exec load, with no livepatch at all, shows it within minutes.
	[ "$KLP_ACCEL" = kvm ] ||
		opts+=(--disable-kvm --qemu-opts="-accel tcg,thread=single")
	# The debug kernels get entropy from the host (klp-debug.config).
	case "$KLP_FLAVOR" in *-debug) opts+=(--qemu-opt=-device --qemu-opt=virtio-rng-pci) ;; esac
	[ -n "${KLP_QEMU_OPTS:-}" ] && opts+=(--qemu-opts="$KLP_QEMU_OPTS")
	# The kernel crate's doctests (KUnit) run at boot.
	in_root vng --run "$out" --force-9p --user root --cpus 2 --memory 2G \
		--append "kunit.enable=1" "${opts[@]}" "$@"
}

# console_of REPORT: the file of the guest's kernel console for REPORT.
console_of() {
	printf '%s/console.log\n' "$(dirname "$1")"
}

# vm_script REPORT CMD: run CMD in the VM, its output appended to REPORT.
# Under software emulation a debug kernel is slow enough that virtme's init
# sometimes gives up before udev has named the virtio console ports ("cannot
# find script I/O ports"): CMD then never starts and REPORT stays empty.
# Such a boot is tried once more; a script that started is never re-run.
# The kernel's console (--verbose sends it to standard error) goes to
# console.log next to REPORT (console_of): when the guest dies, it holds the
# last words.
vm_script() {
	local rep=$1 con try
	con=$(console_of "$rep")
	shift
	: >"$con"
	for try in 1 2; do
		# Append mode: QEMU reopens its output, which would otherwise
		# write over what came before it.  The console of a first boot
		# that never started the script stays, for the reason why.
		: >"$rep"
		echo "=== klp: boot $try" >>"$con"
		vm --verbose --exec "$*" >>"$rep" 2>>"$con" || true
		[ -s "$rep" ] && return 0
		[ "$try" = 1 ] && log "the guest never started its script (boot $try); booting again"
	done
	log "the guest never started its script"
}

# --- subcommands --------------------------------------------------------------

KLP_PASS=0 KLP_FAIL=0 KLP_SKIP=0

# Selftest directories under tools/testing/selftests, in the order they run.
KLP_SELFTESTS="livepatch livepatch-klp livepatch-states livepatch-samples livepatch-robust"

# Count TAP lines ("ok", "not ok", "# SKIP") of one report file.
count_tap() {
	local f=$1 p s n
	p=$(grep -c '^ok ' "$f" || true)
	s=$(grep -c '^ok .*# SKIP' "$f" || true)
	n=$(grep -c '^not ok ' "$f" || true)
	KLP_PASS=$((KLP_PASS + p - s))
	KLP_SKIP=$((KLP_SKIP + s))
	KLP_FAIL=$((KLP_FAIL + n))
}

# Host side: cargo test of the top-level workspace, with the root's cargo.
host_tests() {
	local rep=$1 line p f i
	log "host tests: cargo test"
	if ! in_root env CARGO_HOME="$KLP_CACHE/cargo-home" \
		CARGO_TARGET_DIR="$KLP_CACHE/cargo-target" \
		cargo test --workspace --offline --quiet >"$rep" 2>&1; then
		KLP_FAIL=$((KLP_FAIL + 1))
	fi
	while read -r line; do
		p=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$line")
		f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
		i=$(sed -n 's/.* \([0-9]*\) ignored.*/\1/p' <<<"$line")
		KLP_PASS=$((KLP_PASS + ${p:-0}))
		KLP_FAIL=$((KLP_FAIL + ${f:-0}))
		KLP_SKIP=$((KLP_SKIP + ${i:-0}))
	done < <(grep '^test result:' "$rep")
	grep -E '^test result:|^error|panicked|FAILED' "$rep" >&2 || true
}

guest_tests() {
	local rep=$1 out
	shift
	out=$(build_dir)
	log "guest tests: booting $KLP_FLAVOR kernel"
	# The guest does not inherit the host's environment: pass the
	# selftests' knobs on the command line.
	# A script may take 15 minutes, more for a long stress run: under
	# software emulation on one TCG thread, an operation takes about 14 s
	# (plain) or 2 minutes (debug); the limit allows about twice that.
	# KLP_TIMEOUT sets it outright.
	# KLP_SLOWDOWN: how much longer than usual a test's own waits should
	# be, for the scripts whose checks race a timer.
	local ops=${KLP_STRESS_OPS:-45} tmo=900 per=25 slow=1
	case "$KLP_FLAVOR" in *-debug) per=200 slow=4 ;; esac
	[ $((ops * per)) -gt $tmo ] && tmo=$((ops * per))
	tmo=${KLP_TIMEOUT:-$tmo}
	vm_script "$rep" "env KLP_STRESS_OPS=$ops KLP_TIMEOUT=$tmo KLP_SLOWDOWN=$slow" \
		"${KLP_STRESS_SLAB_SLACK:+KLP_STRESS_SLAB_SLACK=$KLP_STRESS_SLAB_SLACK}" \
		"${KLP_FI_ONLY:+KLP_FI_ONLY=$KLP_FI_ONLY}" \
		"${KLP_FI_FILTER:+KLP_FI_FILTER=$KLP_FI_FILTER}" \
		"scripts/klp-guest test $out $KLP_SELFTESTS -- $*"
	cat "$rep"
	if ! grep -q '^KLP-GUEST-DONE' "$rep"; then
		log "the guest did not finish its run; the end of its console:"
		tail -n 80 "$(console_of "$rep")" | sed 's/^/# console: /' |
			tee -a "$rep" >&2
		echo "not ok - guest run did not finish (crash or hang)" >>"$rep"
	fi
	count_tap "$rep"
}

# Entry points of the core and whether livepatch modules may use them.
KLP_ENTRY_POINTS="klp_enable_patch:GPL klp_module_coming klp_module_going
klp_copy_process klp_update_patch_state klp_apply_section_relocs
__klp_sched_try_switch:EXPORT klp_shadow_get:GPL klp_shadow_alloc:GPL
klp_shadow_get_or_alloc:GPL klp_shadow_free:GPL klp_shadow_free_all:GPL
klp_get_state:GPL klp_get_prev_state:GPL"

# Checks of the built kernel itself, as TAP: with the Rust core, no C file
# of kernel/livepatch was compiled, every entry point is defined by the
# Rust object and exported as the C core exports it.
build_checks() {
	local rep=$1 out n=0 e sym kind defs
	out=$(build_dir)
	case "$KLP_FLAVOR" in rust|rust-debug) ;; *) return 0 ;; esac
	{
		for e in core patch shadow state transition; do
			n=$((n + 1))
			if [ -e "$out/kernel/livepatch/$e.o" ]; then
				echo "not ok $n build: kernel/livepatch/$e.c was compiled"
			else
				echo "ok $n build: kernel/livepatch/$e.c not compiled"
			fi
		done
		defs=$(in_root llvm-nm --defined-only "$out/kernel/livepatch/klp.o")
		for e in $KLP_ENTRY_POINTS; do
			sym=${e%%:*}
			kind=${e#"$sym"}
			n=$((n + 1))
			if ! grep -qE " T $sym\$" <<<"$defs"; then
				echo "not ok $n build: $sym is not defined by the Rust object klp.o"
				continue
			fi
			case "$kind" in
			:GPL) grep -qP "\t$sym\tvmlinux\tEXPORT_SYMBOL_GPL\t" "$out/Module.symvers" ;;
			:EXPORT) grep -qP "\t$sym\tvmlinux\tEXPORT_SYMBOL\t" "$out/Module.symvers" ;;
			*) ! grep -qP "\t$sym\t" "$out/Module.symvers" ;;
			esac &&
				echo "ok $n build: $sym defined by klp.o${kind:+, exported ${kind#:}}" ||
				echo "not ok $n build: $sym export does not match the C core (${kind:-none})"
		done
		compile_fail_checks "$n"
	} >"$rep"
	cat "$rep"
	count_tap "$rep"
}

# compile_fail_checks N: the Rust livepatch modules that must not compile
# (tools/testing/selftests/livepatch-samples/compile_fail), as TAP results
# numbered from N + 1.  Each is built alone as an external module; it must
# fail with the error that its "// compile-fail:" line names.
compile_fail_checks() {
	local n=$1 f name want dir log
	for f in "$KLP_TOP"/tools/testing/selftests/livepatch-samples/compile_fail/*.rs; do
		name=$(basename "$f" .rs)
		want=$(sed -n 's#^// compile-fail: ##p' "$f")
		dir=$out/klp-compile-fail/$name
		log=$dir/build.log
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$f" "$dir/$name.rs"
		echo "obj-m := $name.o" >"$dir/Kbuild"
		n=$((n + 1))
		if in_root make -C "$out" M="$dir" LLVM=1 modules >"$log" 2>&1; then
			echo "not ok $n build: compile_fail/$name.rs compiled"
		elif [ -n "$want" ] && grep -qF -- "$want" "$log"; then
			echo "ok $n build: compile_fail/$name.rs does not compile ($want)"
		else
			echo "not ok $n build: compile_fail/$name.rs failed without '$want' (log: $log)"
		fi
	done
}

cmd_test() {
	local rdir stamp
	stamp=$(date +%Y%m%d-%H%M%S)
	rdir=$KLP_CACHE/reports/$stamp
	mkdir -p "$rdir"
	host_prereqs
	setup_root
	do_build
	host_tests "$rdir/host.log"
	build_checks "$rdir/build.log"
	guest_tests "$rdir/guest.log" "$@"
	log "reports in $rdir"
	echo "$KLP_PASS passed, $KLP_FAIL failed, $KLP_SKIP skipped"
	[ "$KLP_FAIL" = 0 ]
}

cmd_run() {
	local rep rc
	host_prereqs
	setup_root
	do_build
	mkdir -p "$KLP_CACHE/reports"
	rep=$KLP_CACHE/reports/run-$(date +%Y%m%d-%H%M%S).log
	rc=0
	vm --exec "scripts/klp-guest demo $(build_dir)" 2>&1 | tee "$rep" || rc=$?
	log "transcript in $rep"
	return "$rc"
}

# rust-analyzer: the kernel's rust-project.json, with the overlay's files
# pointing into the checkout, placed at the top of the checkout.
cmd_rust_analyzer() {
	local out
	host_prereqs
	setup_root
	do_build
	out=$(build_dir)
	kmake rust-analyzer >"$out/rust-analyzer.log" 2>&1 ||
		{ tail -n 20 "$out/rust-analyzer.log" >&2; die "make rust-analyzer failed"; }
	in_root python3 scripts/klp-ra.py "$out/rust-project.json" \
		"$KLP_TOP/rust-project.json" "$KLP_SRC" "$KLP_TOP" "$KLP_ROOT"
	log "wrote $KLP_TOP/rust-project.json: open the checkout in an editor with rust-analyzer"
}

cmd_shell() {
	host_prereqs
	setup_root
	do_build
	log "interactive VM; the build tree is $(build_dir); 'exit' powers off"
	vm "$@"
}

cmd_clean() {
	case "${1:-}" in
	all) log "removing $KLP_CACHE"; rm -rf "$KLP_CACHE" ;;
	'') src_setup; log "removing $(build_dir)"; rm -rf "$(build_dir)" ;;
	*) die "clean: unknown argument $1" ;;
	esac
}

# check_step NAME LOG CMD...: one step of `check`, as a TAP line.
KLP_CHECK_N=0
check_step() {
	local name=$1 logf=$2
	shift 2
	KLP_CHECK_N=$((KLP_CHECK_N + 1))
	if "$@" >"$logf" 2>&1; then
		echo "ok $KLP_CHECK_N check: $name"
		KLP_PASS=$((KLP_PASS + 1))
	else
		sed 's/^/# /' "$logf" | tail -n 40
		echo "not ok $KLP_CHECK_N check: $name (log: $logf)"
		KLP_FAIL=$((KLP_FAIL + 1))
	fi
}

# A kernel build step that must not print any warning.
no_warnings() {
	local logf
	logf=$(mktemp)
	kmake "$@" >"$logf" 2>&1 || { cat "$logf"; rm -f "$logf"; return 1; }
	# scripts/kallsyms skips (and reports) symbols longer than
	# KSYM_NAME_LEN, such as deeply generic Rust ones: a warning too.
	if grep -E -A6 '(^|[^a-z])warning(\[|:)|too long for kallsyms' "$logf"; then
		rm -f "$logf"
		return 1
	fi
	rm -f "$logf"
}

# make htmldocs of Documentation/livepatch: Sphinx and kernel-doc say
# "WARNING" or "ERROR" in capitals.
docs_clean() {
	local logf
	logf=$(mktemp)
	kmake SPHINXDIRS=livepatch htmldocs >"$logf" 2>&1 || { cat "$logf"; rm -f "$logf"; return 1; }
	# Sphinx's note that graphviz is missing is about the tools, not the
	# documents (Documentation/livepatch has no graphs).
	if grep -v 'dot(1) not found' "$logf" | grep -i -E -A3 '(warning|error)(:| \()'; then
		rm -f "$logf"
		return 1
	fi
	rm -f "$logf"
}

# The project's Rust sources, for rustfmt.
rust_sources() {
	git -C "$KLP_TOP" ls-files -co --exclude-standard -- \
		'kernel/livepatch/*.rs' 'rust/kernel/*.rs' 'samples/livepatch/*.rs'
}

# Each bug that inject-check puts into the core must still apply to the
# checkout: a stale one would only show when inject-check runs.
inject_applies() {
	local p
	for p in "$KLP_TOP"/scripts/inject/*.patch; do
		(cd "$KLP_TOP" && git apply --check "$p") || {
			echo "${p#"$KLP_TOP"/} does not apply"
			return 1
		}
	done
}

cmd_check() {
	local rdir out
	rdir=$KLP_CACHE/reports/check-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$rdir"
	host_prereqs
	setup_root
	sync_tree
	do_config
	out=$(build_dir)
	# shellcheck disable=SC2046
	check_step "rustfmt of the kernel Rust sources" "$rdir/rustfmt.log" \
		in_root rustfmt --check --edition 2021 \
		--config-path "$KLP_SRC/.rustfmt.toml" $(rust_sources)
	check_step "rustfmt of the host workspace" "$rdir/cargo-fmt.log" \
		in_root cargo fmt --all --check
	# The glue exports functions that are defined in Rust: there is no C
	# definition for the EXPORT_SYMBOL to follow.
	check_step "checkpatch --strict of the C glue and C samples" "$rdir/checkpatch.log" \
		in_root sh -c "cd '$KLP_SRC' && perl scripts/checkpatch.pl --strict --no-tree -q \
			--ignore EXPORT_SYMBOL \
			-f kernel/livepatch/klp_glue.c kernel/livepatch/klp_glue.h \
			\$(cd '$KLP_TOP' && git ls-files -co --exclude-standard 'samples/livepatch/*.c')"
	check_step "checkpatch --strict of the patches" "$rdir/checkpatch-patches.log" \
		in_root sh -c "cd '$KLP_SRC' && for p in '$KLP_TOP'/patches/*.patch; do
			perl scripts/checkpatch.pl --strict --no-signoff -q \"\$p\" || exit 1; done"
	check_step "checkpatch --strict of the exported series" "$rdir/checkpatch-series.log" \
		series_checkpatch
	check_step "the injected bugs of scripts/inject still apply" \
		"$rdir/inject-apply.log" inject_applies
	check_step "CLIPPY=1 build without warnings" "$rdir/clippy.log" \
		no_warnings CLIPPY=1
	check_step "make rustdoc without warnings" "$rdir/rustdoc.log" \
		no_warnings rustdoc
	check_step "make htmldocs of Documentation/livepatch without warnings" \
		"$rdir/htmldocs.log" docs_clean
	echo "$KLP_PASS passed, $KLP_FAIL failed"
	[ "$KLP_FAIL" = 0 ]
}

# scripts/klp inject-check: the debug flavor must catch bugs in the core.
# Every scripts/inject/*.patch is applied to the overlay at once (never to
# the checkout), the kernel is rebuilt and the scripts that exercise the
# bugs run; each patch's "Expect:" line must then appear in the report.
# The next build without KLP_INJECT puts the sources back.
KLP_INJECT_TESTS="livepatch-klp/test-replace.sh"
cmd_inject_check() {
	local rdir rep p want n=0
	case "$KLP_FLAVOR" in
	*-debug) ;;
	*) log "inject-check needs a debug flavor: using rust-debug"; KLP_FLAVOR=rust-debug ;;
	esac
	rdir=$KLP_CACHE/reports/inject-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$rdir"
	KLP_INJECT=$(ls "$KLP_TOP"/scripts/inject/*.patch)
	host_prereqs
	setup_root
	do_build
	log "guest: $KLP_INJECT_TESTS, with $(wc -w <<<"$KLP_INJECT") bugs injected"
	KLP_INJECT=
	rep=$rdir/guest.log
	vm_script "$rep" "scripts/klp-guest test $(build_dir) $KLP_SELFTESTS -- $KLP_INJECT_TESTS"
	sed 's/^/# /' "$rep"
	for p in "$KLP_TOP"/scripts/inject/*.patch; do
		n=$((n + 1))
		want=$(sed -n 's/^Expect: //p' "$p")
		if [ -n "$want" ] && grep -q '^not ok' "$rep" && grep -qF -- "$want" "$rep"; then
			echo "ok $n inject: $(basename "$p" .patch) is caught ($want)"
			KLP_PASS=$((KLP_PASS + 1))
		else
			echo "not ok $n inject: $(basename "$p" .patch) went unnoticed (no '$want')"
			KLP_FAIL=$((KLP_FAIL + 1))
		fi
	done
	log "report in $rep; the next build restores the core"
	echo "$KLP_PASS passed, $KLP_FAIL failed"
	[ "$KLP_FAIL" = 0 ]
}

usage() {
	cat <<USAGE
usage: scripts/klp COMMAND [ARGS]

  run              set up, build, boot, load the sample livepatch, show its
                   effect on /proc/cmdline and power off
  test [TEST...]   host tests, then the livepatch selftests in the VM (all,
                   or the named test-*.sh); ends with "N passed, N failed"
  shell [VNG...]   an interactive shell in the VM (extra args go to vng)
  check            rustfmt, checkpatch --strict, CLIPPY=1, rustdoc and
                   htmldocs (Documentation/livepatch) without warnings
  rust-analyzer    build, then write rust-project.json at the top of the
                   checkout for editors (the overlay's files, the kernel
                   crate and the toolchain's sources resolved)
  export-series [--verify]
                   the overlay as a git format-patch series against the
                   pristine source, in \$KLP_CACHE/series; --verify applies
                   it with git am on a pristine tree and builds every step
  bench [-r RUNS] [-f c|rust|both] [GROUP...]
                   build both cores, run the livepatch benchmarks in each
                   (QEMU -icount) and print C, Rust and Rust/C
  inject-check     the debug flavor with the bugs of scripts/inject/*.patch
                   put into the core: the suite must report each of them
  setup            install the toolchain root and the kernel source
  config           (re)write the kernel configuration of the flavor
  build            sync the overlay into the tree and build
  clean [all]      remove the flavor's build tree (all: the whole cache)
  help             this text

Environment:
  KLP_CACHE        cache directory (default ~/.cache/klp): $KLP_CACHE
  KLP_FLAVOR       rust (the Rust core) or c (the stock C core): $KLP_FLAVOR
  KLP_KERNEL_SRC   another 6.12.y source tree to use instead of Debian's
  KLP_JOBS         parallel make jobs (default 3)
  KLP_KVM          0 to skip the KVM probe and use software emulation
  KLP_QEMU_OPTS    extra QEMU options (e.g. "-icount shift=0")
USAGE
}

klp_main() {
	local cmd=${1:-help}
	shift || true
	case "${1:-}" in -h|--help) usage; return 0 ;; esac
	# One command at a time works on the cache: a second one (another
	# shell, a helper) waits here instead of racing on the kernel tree.
	case "$cmd" in
	setup|config|build|run|test|shell|check|rust-analyzer|export-series|bench|inject-check)
		# KLP_LOCKED=1: the caller holds the lock already (a wrapper
		# that runs several commands in a row under one flock).
		if [ "${KLP_LOCKED:-}" != 1 ]; then
			mkdir -p "$KLP_CACHE"
			exec 9>"$KLP_CACHE/.lock"
			if ! flock -n 9; then
				log "waiting for another scripts/klp command on $KLP_CACHE"
				flock 9
			fi
		fi
		;;
	esac
	case "$cmd" in
	setup) host_prereqs; setup_root; src_setup ;;
	config) host_prereqs; setup_root; sync_tree; do_config force ;;
	build) host_prereqs; setup_root; do_build ;;
	run) cmd_run "$@" ;;
	test) cmd_test "$@" ;;
	shell) cmd_shell "$@" ;;
	clean) cmd_clean "$@" ;;
	check) cmd_check "$@" ;;
	inject-check) cmd_inject_check "$@" ;;
	bench) cmd_bench "$@" ;;
	rust-analyzer) cmd_rust_analyzer "$@" ;;
	export-series) cmd_export_series "$@" ;;
	help|-h|--help) usage ;;
	*) usage >&2; die "unknown command '$cmd'" ;;
	esac
}

# scripts/klp bench
# shellcheck source=scripts/klp-bench.sh
. "$KLP_TOP/scripts/klp-bench.sh"
