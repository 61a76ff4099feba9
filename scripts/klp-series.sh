# SPDX-License-Identifier: GPL-2.0
#
# klp-series.sh - "scripts/klp export-series": the overlay as a patch series
# against the pristine source.  Sourced by klp-lib.sh.
#
# The series is built without a working tree: each commit's tree is the
# previous one with the step's patches applied and the step's overlay files
# added, made in a temporary index of the cache's git repository, and
# committed with commit-tree.  "git format-patch" then writes the series.
# With --verify, a worktree of the pristine base takes the series with
# "git am", and the kernel is built after every commit.

# The steps, in order.  series_steps calls "step PATCHES PATHS" for each,
# with the commit message on standard input; an empty message takes the
# message of the step's single patch.
series_steps() {
	step "0007" "" </dev/null
	step "0008" "" </dev/null
	step "0003" "" </dev/null
	step "0002" "" </dev/null
	step "0001" "kernel/livepatch" <<'MSG'
livepatch: rust: the livepatch core in Rust

Add the livepatch core written in Rust, selected with
CONFIG_LIVEPATCH_RUST in a new choice next to the C core: patch, object
and function registration, ftrace redirection, the per-task consistency
model, atomic replace, module coming and going, klp relocations, sysfs,
shadow variables and livepatch states with their callbacks.

It keeps the entry points and the sysfs interface of the C core.  A
small C file holds what Rust cannot express: the symbol exports, the
cond_resched static call and key, notrace wrappers of inline helpers and
the per-CPU stack trace buffers.  With the Rust core, none of the C
files of kernel/livepatch is built.

The pure rules (state compatibility, the state plan, relocation section
names) are plain Rust without kernel dependencies, so that the host
model in the project's tools/klp-model builds from the same files.
MSG
	step "0006" "Documentation/livepatch" <<'MSG'
Documentation: livepatch: states, and the Rust core

Rewrite system-state.rst for the livepatch state model: a state is
introduced, taken over, kept or removed depending on which registered
livepatches carry it, its callbacks run only when it is introduced or
removed, an is_shadow state owns the shadow variables with its id, and
block_disable guards changes that cannot be undone.

Mark the per-object callbacks as the legacy API in callbacks.rst, tie the
lifetime of shadow variables to states in shadow-vars.rst, list struct
klp_state_callbacks in the API reference, and describe the Rust core's
design in rust-core.rst.
MSG
	step "0004" "rust/kernel" </dev/null
	step "0005" "samples/livepatch" </dev/null
	step "" "tools/testing/selftests" <<'MSG'
selftests: livepatch: tests of the core, the states and the samples

livepatch-klp tests the core beyond the upstream selftests: malformed
patches, module coming and going, force and reversed transitions,
atomic replace over stacked patches and klp relocations.
livepatch-states tests each rule of the livepatch state model against
the expected kernel log, and livepatch-samples loads the Rust and C
samples.
MSG
	step "" "kernel/configs" <<'MSG'
kernel/configs: livepatch test configurations

klp.config is the smallest configuration that boots under virtme-ng with
the livepatch core, Rust and the livepatch selftests; klp-rust.config and
klp-c.config pick the core.
MSG
}

# series_build: builds the series in the cache's repository and prints the
# commit at its tip.
series_build() {
	local base parent idx tip
	base=$(cat "$KLP_SRC/.git/klp-base")
	idx=$(mktemp)
	rm -f "$idx"
	parent=$base
	step() {
		local patches=$1 paths=$2 msgf p f mode tree
		msgf=$(mktemp)
		cat >"$msgf"
		(
			cd "$KLP_SRC"
			export GIT_INDEX_FILE=$idx
			[ -e "$idx" ] || git read-tree "$base"
			for p in $patches; do
				p=$(ls "$KLP_TOP"/patches/"$p"-*.patch)
				git apply --cached "$p" ||
					die "${p#"$KLP_TOP"/} does not apply at its place in the series"
				[ -s "$msgf" ] || sed '/^---$/,$d' "$p" >"$msgf"
			done
			[ -s "$msgf" ] || die "series step '$patches' '$paths' has no message"
			# The checkout's own index, not the series' temporary one;
			# no paths, no files (an empty pathspec would list them all).
			[ -z "$paths" ] ||
			for f in $(env -u GIT_INDEX_FILE git -C "$KLP_TOP" ls-files -co \
					--exclude-standard -- $paths); do
				[ -f "$KLP_TOP/$f" ] || continue
				mode=100644
				[ -x "$KLP_TOP/$f" ] && mode=100755
				git update-index --add --cacheinfo \
					"$mode,$(git hash-object -w "$KLP_TOP/$f"),$f"
			done
			tree=$(git write-tree)
			git -c user.name="klp" -c user.email="klp@localhost" \
				commit-tree "$tree" -p "$parent" -F "$msgf" >"$msgf.commit"
		) || exit 1
		parent=$(cat "$msgf.commit")
		rm -f "$msgf" "$msgf.commit"
	}
	series_steps
	tip=$parent
	rm -f "$idx"
	# Nothing of the overlay may be left out of the series.
	series_check_complete "$tip"
	echo "$tip"
}

# Every overlay file and every patch must be in the series.
series_check_complete() {
	local tip=$1 f missing=0 steps
	# Not "series_steps_patches | grep -q": with pipefail, grep's early
	# exit would make the writer's SIGPIPE a failure.
	steps=$(series_steps_patches)
	for f in $(overlay_files); do
		case "$f" in tools/klp-model/*) continue ;; esac
		git -C "$KLP_SRC" cat-file -e "$tip:$f" 2>/dev/null ||
			{ log "not in the series: $f"; missing=1; }
	done
	for f in "$KLP_TOP"/patches/*.patch; do
		f=$(basename "$f")
		grep -qx "${f%%-*}" <<<"$steps" ||
			{ log "not in the series: patches/$f"; missing=1; }
	done
	[ "$missing" = 0 ] || die "add the files above to series_steps in scripts/klp-series.sh"
}

series_steps_patches() {
	step() { local p; for p in $1; do echo "$p"; done; cat >/dev/null; }
	series_steps
}

cmd_export_series() {
	local verify=0 out tip base wt n=0 p bdir
	while [ $# -gt 0 ]; do
		case "$1" in
		--verify) verify=1 ;;
		*) die "usage: scripts/klp export-series [--verify]" ;;
		esac
		shift
	done
	host_prereqs
	setup_root
	src_setup
	base=$(cat "$KLP_SRC/.git/klp-base")
	tip=$(series_build)
	out=$KLP_CACHE/series
	rm -rf "$out"
	mkdir -p "$out"
	git -C "$KLP_SRC" format-patch -q --no-signature -o "$out" "$base..$tip"
	log "the series, $(ls "$out" | wc -l) patches against the pristine source, is in $out"
	ls "$out"
	[ "$verify" = 1 ] || return 0

	# Apply with git am on a pristine worktree and build every step.
	wt=$KLP_CACHE/series-verify/tree
	bdir=$KLP_CACHE/series-verify/build
	git -C "$KLP_SRC" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
	git -C "$KLP_SRC" worktree prune
	git -C "$KLP_SRC" worktree add -q --detach "$wt" "$base"
	mkdir -p "$bdir"
	for p in "$out"/*.patch; do
		n=$((n + 1))
		git -C "$wt" -c user.name=klp -c user.email=klp@localhost am -q "$p" ||
			die "git am failed on $(basename "$p")"
		log "step $n: $(basename "$p"): applied; building"
		series_verify_build "$wt" "$bdir" >"$bdir/step-$n.log" 2>&1 ||
			{ tail -n 30 "$bdir/step-$n.log" >&2; die "the tree does not build after $(basename "$p")"; }
	done
	log "export-series --verify: $n patches apply with git am and build at every step"
}

# series_verify_build TREE BUILD: the project's configuration as far as the
# tree knows it (options that later patches add are left out), then a build.
series_verify_build() {
	local tree=$1 bdir=$2 frags
	frags=$bdir/klp.config
	cat "$KLP_TOP"/kernel/configs/klp.config "$KLP_TOP"/kernel/configs/klp-rust.config >"$frags"
	in_root make -C "$tree" O="$bdir" LLVM=1 KCONFIG_ALLCONFIG="$frags" allnoconfig &&
		in_root make -C "$tree" O="$bdir" LLVM=1 -j"$KLP_JOBS"
}

# series_checkpatch: checkpatch --strict of every patch of the exported
# series, in a temporary directory.  The series carries no Signed-off-by:
# whoever submits it signs it off ("git format-patch -s"), no tool can.
# "Does MAINTAINERS need updating?" (FILE_PATH_CHANGES) is advice that
# comes with every new file.  The glue exports functions defined in Rust,
# with no C definition for EXPORT_SYMBOL to follow.  The selftests'
# expected kernel logs are lines as long as the messages they quote, as in
# the upstream selftests.
series_checkpatch() {
	local base tip dir p ignore rc=0
	base=$(cat "$KLP_SRC/.git/klp-base")
	tip=$(series_build)
	dir=$(mktemp -d "$KLP_CACHE/series-check.XXXXXX")
	git -C "$KLP_SRC" format-patch -q --no-signature -o "$dir" "$base..$tip"
	for p in "$dir"/*.patch; do
		ignore=FILE_PATH_CHANGES,EXPORT_SYMBOL
		case "$(basename "$p")" in
		*-selftests-*) ignore=$ignore,LONG_LINE,LONG_LINE_STRING ;;
		esac
		echo "== $(basename "$p")"
		in_root sh -c "cd '$KLP_SRC' && perl scripts/checkpatch.pl --strict --no-tree \
			--no-signoff -q --ignore $ignore '$p'" || rc=1
	done
	rm -rf "$dir"
	return "$rc"
}
