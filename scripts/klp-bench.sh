# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# scripts/klp bench: the livepatch benchmarks, C core against Rust core.
# Sourced by scripts/klp-lib.sh, never run directly.
#
# Builds both flavors (KLP_FLAVOR=c and rust: the same configuration but for
# the core), boots each under QEMU -icount with KVM off, runs the guest
# script tools/testing/selftests/livepatch-bench/run-bench.sh there, and
# prints one table: measure | C | Rust | Rust/C | spread | target.  Results
# go to $KLP_CACHE/reports/bench-<date>.{json,tsv,md} and the raw guest
# output to bench-<date>-<flavor>.log.  BENCHMARKS.md describes the method.
#
#   scripts/klp bench [-r RUNS] [-f c|rust|both] [GROUP...]
#
# With -f c or -f rust only that flavor is built and run; the other column
# comes from the last run of the other flavor (bench-last-<flavor>.log),
# which the table names.  GROUP (call ops trans shadow) limits the measures.

# Selftest directories of the benchmarks, built like KLP_SELFTESTS but only
# by this command.
KLP_BENCH_SELFTESTS="livepatch-bench"

# Guest clock = executed instructions; sleep=off: idle guest time jumps to
# the next timer instead of following the host clock (see BENCHMARKS.md).
KLP_BENCH_QEMU_OPTS=${KLP_BENCH_QEMU_OPTS:--icount shift=0,sleep=off}
KLP_BENCH_FAILED=0
# KLP_BENCH_TIMEOUT, if set: seconds a guest run may take before it is
# killed.  The default (bench_guest) is 10 minutes plus 30 a run: one run
# of every group took 507 s (Rust) and 731 s (C) of host time on
# 2026-11-29, and three runs of the C core 4,044 s while two other guests
# shared the host's two cores.

# measure|label|target (Rust/C at most), in the order of the table.
KLP_BENCH_MEASURES='
call_base_ns|call, unpatched (ns per call)|
call_1patch_ns|call, extra with 1 patch (ns per call)|1.0
call_3patch_ns|call, extra with 3 stacked patches (ns per call)|1.0
call_trans_ns|call, extra during a transition (ns per call)|1.0
enable_1_us|enable 1 function, until done (us)|
enable_100_us|enable 100 functions, until done (us)|
enable_1000_us|enable 1,000 functions, until done (us)|0.1
enable_call_1_us|klp_enable_patch(), 1 function (us)|
enable_call_100_us|klp_enable_patch(), 100 functions (us)|
enable_call_1000_us|klp_enable_patch(), 1,000 functions (us)|
disable_1_us|disable 1 function, until gone (us)|
disable_100_us|disable 100 functions, until gone (us)|
disable_1000_us|disable 1,000 functions, until gone (us)|0.1
disable_call_1_us|write of enabled=0, 1 function (us)|
disable_call_100_us|write of enabled=0, 100 functions (us)|
disable_call_1000_us|write of enabled=0, 1,000 functions (us)|
replace_1_us|atomic replace, 1 function, until done (us)|
replace_100_us|atomic replace, 100 functions, until done (us)|
replace_1000_us|atomic replace, 1,000 functions, until done (us)|0.1
replace_call_1_us|klp_enable_patch() replacing, 1 function (us)|
replace_call_100_us|klp_enable_patch() replacing, 100 functions (us)|
replace_call_1000_us|klp_enable_patch() replacing, 1,000 functions (us)|
trans_sleepers_us|transition, 1,000 sleeping tasks, until done (us)|
trans_sleepers_call_us|klp_enable_patch(), 1,000 sleeping tasks (us)|
trans_busy_us|transition, 1,000 busy tasks, until done (us)|0.5
trans_busy_call_us|klp_enable_patch(), 1,000 busy tasks (us)|
shadow_alloc_1k_ns|shadow alloc, 1K live (ns per op)|
shadow_get_1k_ns|shadow get, 1K live (ns per op)|
shadow_free_1k_ns|shadow free, 1K live (ns per op)|
shadow_alloc_100k_ns|shadow alloc, 100K live (ns per op)|
shadow_get_100k_ns|shadow get, 100K live (ns per op)|
shadow_free_100k_ns|shadow free, 100K live (ns per op)|
shadow_alloc_1m_ns|shadow alloc, 1M live (ns per op)|
shadow_get_1m_ns|shadow get, 1M live (ns per op)|0.1
shadow_free_1m_ns|shadow free, 1M live (ns per op)|
shadow_free_all_1m_ns|shadow free_all of 1M (ns per variable)|
mem_func_bytes|memory per patched function (slab bytes)|1.0
mem_patch_bytes|memory per patch, with module load (slab bytes)|
mem_vmalloc_func_bytes|vmalloc per patched function (bytes)|
'

# Builds the kernel of the current flavor and the benchmark modules (not the
# selftests: the benchmarks do not need them).  The caller syncs the tree.
bench_build() {
	local out t t0 stamp
	t0=$(date +%s)
	do_config
	out=$(build_dir)
	log "bench: building the $KLP_FLAVOR kernel in $out"
	kmake >"$out/build.log" 2>&1 ||
		{ grep -E -B2 -A8 'error|Error' "$out/build.log" | head -60 >&2; die "kernel build failed (log: $out/build.log)"; }
	for t in $KLP_BENCH_SELFTESTS; do
		[ -d "$KLP_SRC/tools/testing/selftests/$t" ] || die "no tools/testing/selftests/$t"
		mkdir -p "$out/kselftest/$t"
		# The modules build in the source directory, for one flavor at
		# a time: Kbuild does not see that KDIR changed, so start clean.
		stamp=$KLP_SRC/tools/testing/selftests/$t/.klp-bench-kdir
		if [ "$(cat "$stamp" 2>/dev/null)" != "$out" ]; then
			in_root make -C "$KLP_SRC/tools/testing/selftests/$t" KDIR="$out" \
				clean >/dev/null 2>&1 || true
			echo "$out" >"$stamp"
		fi
		in_root make -C "$KLP_SRC/tools/testing/selftests/$t" KDIR="$out" \
			LLVM=1 OUTPUT="$out/kselftest/$t" \
			INSTALL_PATH="$out/kselftest_install/$t" install \
			>"$out/kselftest-build-$t.log" 2>&1 ||
			{ tail -n 30 "$out/kselftest-build-$t.log" >&2; die "build of $t failed"; }
	done
	log "bench: build of $KLP_FLAVOR done in $(($(date +%s) - t0)) s"
}

# bench_guest LOG RUNS GROUP...: boots the current flavor and runs the
# benchmarks; their output goes to LOG.
bench_guest() {
	local log=$1 runs=$2 out t0 tmo
	shift 2
	out=$(build_dir)
	t0=$(date +%s)
	tmo=${KLP_BENCH_TIMEOUT:-$((600 + runs * 1800))}
	log "bench: booting the $KLP_FLAVOR kernel (QEMU $KLP_BENCH_QEMU_OPTS, no KVM, at most $tmo s)"
	: >"$log"
	# vm()'s guest, without KVM and under a time limit: a guest that
	# hangs leaves a partial column instead of a stuck command.
	in_root timeout -s KILL "$tmo" \
		vng --run "$out" --force-9p --user root --cpus 2 --memory 2G \
		--disable-kvm --qemu-opts="$KLP_BENCH_QEMU_OPTS" \
		--exec "$out/kselftest_install/livepatch-bench/run-bench.sh -r $runs $*" \
		>>"$log" 2>&1 || true
	sed -i 's/\r$//' "$log"
	echo "BENCH-INFO host_seconds $(($(date +%s) - t0))" >>"$log"
	if grep -q '^BENCH-ERROR' "$log" || ! grep -q '^BENCH-DONE' "$log"; then
		grep -E '^BENCH-ERROR|^# ' "$log" | tail -n 25 >&2 || true
		log "bench: the $KLP_FLAVOR guest run did not finish: its table column is partial (log: $log)"
		echo "BENCH-INFO incomplete yes" >>"$log"
		KLP_BENCH_FAILED=1
		return 0
	fi
	log "bench: $KLP_FLAVOR done in $(($(date +%s) - t0)) s"
}

# bench_report C_LOG RUST_LOG BASE: the table (stdout, BASE.md), BASE.tsv
# and BASE.json.
bench_report() {
	local clog=$1 rlog=$2 base=$3
	printf '%s\n' "$KLP_BENCH_MEASURES" | awk -v clog="$clog" -v rlog="$rlog" \
		-v tsv="$base.tsv" -v json="$base.json" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		-v qemu="$KLP_BENCH_QEMU_OPTS" -v host="$(uname -srm)" \
		-v hostcpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" '
	function median(a, n,   i, j, t, b) {
		for (i = 1; i <= n; i++) b[i] = a[i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
		return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
	}
	function load(file, f,   line, k) {
		while ((getline line < file) > 0) {
			split(line, k, " ")
			if (k[1] == "BENCH") {
				n[f, k[2]]++
				v[f, k[2], n[f, k[2]]] = k[4] + 0
			} else if (k[1] == "BENCH-INFO") {
				sub(/^BENCH-INFO [^ ]+ /, "", line)
				info[f, k[2]] = line
			}
		}
		close(file)
	}
	function stats(f, m,   a, i, lo, hi) {
		cnt = n[f, m] + 0
		if (!cnt) { med = ""; spr = ""; return }
		lo = hi = v[f, m, 1]
		for (i = 1; i <= cnt; i++) {
			a[i] = v[f, m, i]
			if (a[i] < lo) lo = a[i]
			if (a[i] > hi) hi = a[i]
		}
		med = median(a, cnt)
		spr = med != 0 ? (hi - lo) / (med < 0 ? -med : med) * 100 : 0
		vals = ""
		for (i = 1; i <= cnt; i++) vals = vals (i > 1 ? "," : "") a[i]
	}
	function num(x) { return x == "" ? "-" : (x >= 100 || x <= -100 ? sprintf("%.0f", x) : sprintf("%.3g", x)) }
	function pct(s, c) { return c < 2 ? "-" : sprintf("%.0f%%", s) }
	function jnum(x) { return x == "" ? "null" : x }
	function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
	BEGIN {
		load(clog, "c"); load(rlog, "rust")
		print "| measure | C | Rust | Rust/C | spread | target |"
		print "| --- | ---: | ---: | ---: | ---: | --- |"
		printf "measure\tc_median\trust_median\tratio\tc_spread_pct\trust_spread_pct\ttarget\tmet\tc_values\trust_values\n" > tsv
		printf "{\n  \"date\": %s,\n  \"qemu\": %s,\n  \"host\": %s,\n  \"host_cpu\": %s,\n", jstr(date), jstr(qemu), jstr(host), jstr(hostcpu) > json
		printf "  \"c_log\": %s,\n  \"rust_log\": %s,\n", jstr(clog), jstr(rlog) > json
		for (fi = 1; fi <= 2; fi++) {
			f = fi == 1 ? "c" : "rust"
			g[f] = sprintf("{\"core\": %s, \"kernel\": %s, \"params\": %s, \"host_seconds\": %s, \"complete\": %s}", jstr(info[f, "core"]), jstr(info[f, "kernel"]), jstr(info[f, "params"]), jnum(info[f, "host_seconds"]), info[f, "incomplete"] == "" ? "true" : "false")
		}
		printf "  \"guest\": {\"c\": %s, \"rust\": %s},\n", g["c"], g["rust"] > json
		printf "  \"measures\": [" > json
		nj = 0
	}
	NF && $0 ~ /\|/ {
		split($0, d, "|")
		m = d[1]; label = d[2]; target = d[3]
		stats("c", m); cm = med; cs = spr; cv = vals; cn = cnt
		stats("rust", m); rm = med; rs = spr; rv = vals; rn = cnt
		if (!cn && !rn) next
		ratio = (cm != "" && rm != "" && cm != 0) ? rm / cm : ""
		spread = pct(cs, cn) " / " pct(rs, rn)
		met = ""
		if (target != "" && ratio != "") met = ratio <= target ? "met" : "missed"
		tcol = target == "" ? "" : "<= " target " " (met == "" ? "(no data)" : met)
		printf "| %s | %s | %s | %s | %s | %s |\n", label, num(cm), num(rm), ratio == "" ? "-" : sprintf("%.2f", ratio), spread, tcol
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m, cm, rm, ratio, cs, rs, target, met, cv, rv > tsv
		printf "%s\n    {\"measure\": %s, \"label\": %s, \"c\": {\"median\": %s, \"spread_pct\": %s, \"values\": [%s]}, \"rust\": {\"median\": %s, \"spread_pct\": %s, \"values\": [%s]}, \"ratio\": %s, \"target\": %s, \"met\": %s}", nj++ ? "," : "", jstr(m), jstr(label), jnum(cm), jnum(cs), cv, jnum(rm), jnum(rs), rv, jnum(ratio), jnum(target), met == "" ? "null" : (met == "met" ? "true" : "false") > json
	}
	END { printf "\n  ]\n}\n" > json }
	' | tee "$base.md"
}

cmd_bench() {
	local runs=3 only=both groups stamp rdir f log t0 o OPTIND=1
	local -A logs=()
	while getopts r:f: o; do
		case $o in
		r) runs=$OPTARG ;;
		f) only=$OPTARG ;;
		*) die "usage: scripts/klp bench [-r RUNS] [-f c|rust|both] [GROUP...]" ;;
		esac
	done
	shift $((OPTIND - 1))
	groups=$*
	case "$only" in
	both) set -- c rust ;;
	c|rust) set -- "$only" ;;
	*) die "bench: -f c, rust or both" ;;
	esac
	t0=$(date +%s)
	stamp=$(date +%Y%m%d-%H%M%S)
	rdir=$KLP_CACHE/reports
	mkdir -p "$rdir"
	host_prereqs
	setup_root
	# One sync for both builds: the two kernels come from the same tree.
	sync_tree
	for f in "$@"; do
		KLP_FLAVOR=$f
		bench_build
	done
	for f in "$@"; do
		KLP_FLAVOR=$f
		log=$rdir/bench-$stamp-$f.log
		bench_guest "$log" "$runs" $groups
		cp "$log" "$rdir/bench-last-$f.log"
		logs[$f]=$log
	done
	for f in c rust; do
		if [ -z "${logs[$f]:-}" ]; then
			logs[$f]=$rdir/bench-last-$f.log
			[ -e "${logs[$f]}" ] || : >"${logs[$f]}"
			log "bench: the $f column comes from an earlier run: $(readlink -f "${logs[$f]}")"
		fi
	done
	# The two kernels must differ only by the core.
	src_setup
	if [ -e "$KLP_CACHE/build/$(basename "$KLP_SRC")-c/.config" ] &&
		[ -e "$KLP_CACHE/build/$(basename "$KLP_SRC")-rust/.config" ]; then
		log "bench: configuration difference between the flavors (C < > Rust):"
		diff <(grep '^CONFIG_' "$KLP_CACHE/build/$(basename "$KLP_SRC")-c/.config") \
			<(grep '^CONFIG_' "$KLP_CACHE/build/$(basename "$KLP_SRC")-rust/.config") |
			grep '^[<>]' | sed 's/^/[klp]   /' >&2 || true
	fi
	bench_report "${logs[c]}" "${logs[rust]}" "$rdir/bench-$stamp"
	log "bench: results in $rdir/bench-$stamp.{json,tsv,md} ($(($(date +%s) - t0)) s)"
	[ "$KLP_BENCH_FAILED" = 0 ]
}
