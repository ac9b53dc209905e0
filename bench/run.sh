#!/usr/bin/env bash
# Run every benchmark program of BUILD_DIR/bench with its peers, collect their --json lines
# into bench-results/<YYYYmmdd-HHMMSS>-<hostname>/results.jsonl (at the repo root), and
# print one table: rotor's value, the baseline's, the ratio and the target where one is set.
#
#   bench/run.sh BUILD_DIR [--quick] [--only NAME]
#
# The Go peers are built with `go build` into BUILD_DIR/bench/peers (where the programs look
# for them). Each program runs under a time limit, so that a hang is reported, not waited on.
set -u

usage() {
	echo "usage: $0 BUILD_DIR [--quick] [--only NAME]" >&2
	echo "  NAME: spawn post submit million ctx_switch timers" >&2
	exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
build=$1
shift
quick=
only=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=--quick ;;
	--only)
		[ $# -ge 2 ] || usage
		only=$2
		shift
		;;
	*) usage ;;
	esac
	shift
done

case "$only" in
"" | spawn | post | submit | million | ctx_switch | timers) ;;
*) usage ;;
esac
[ -d "$build/bench" ] || {
	echo "$0: $build/bench does not exist: configure and build first, e.g." >&2
	echo "  cmake -S . -B $build -DROTOR_TESTS=OFF -DROTOR_EXAMPLES=OFF && cmake --build $build" >&2
	exit 2
}
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=$build/bench
peers=$bindir/peers
out=$root/bench-results/$(date +%Y%m%d-%H%M%S)-$(hostname)
mkdir -p "$out" "$peers"
results=$out/results.jsonl
: >"$results"
if [ -n "$quick" ]; then limit=60; else limit=600; fi

{
	echo "date: $(date -Is)"
	echo "host: $(hostname)"
	echo "kernel: $(uname -srm)"
	echo "cpus: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)" \
		"($(git -C "$root" status --porcelain 2>/dev/null | wc -l) paths changed since)"
	echo "sources sha1: $(cat "$root"/lib/*.[chS] "$root"/lib/arch/*.S "$root"/bench/*.[ch] 2>/dev/null | sha1sum | cut -c1-12)"
	echo "mode: ${quick:-full}"
	command -v go >/dev/null && echo "go: $(go version)"
	echo "python: $( (/usr/bin/python3 --version || python3 --version) 2>&1 | head -1)"
} >"$out/meta.txt"

load=$(cut -d' ' -f1 /proc/loadavg)
echo "load: $load" >>"$out/meta.txt"
if awk -v l="$load" 'BEGIN { exit !(l > 1.0) }'; then
	echo "warning: load average $load: other work is running, figures will be noisy"
fi

# ---- peers ----------------------------------------------------------------------------------
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
if command -v go >/dev/null; then
	# No network here: build offline, and keep a cache even where HOME is unset (CI).
	export GOPROXY=off GOFLAGS=-mod=mod GO111MODULE=on
	[ -n "${HOME:-}" ] || [ -n "${GOCACHE:-}" ] || export GOCACHE=$peers/gocache
	for p in spawn million; do
		want "$p" || continue
		if ! (cd "$root/bench/peers/go" && go build -o "$peers/$p" "./$p") 2>"$out/go-build-$p.log"; then
			echo "go build $p failed (see $out/go-build-$p.log)" >&2
			rm -f "$peers/$p"
		fi
		[ -s "$out/go-build-$p.log" ] || rm -f "$out/go-build-$p.log"
	done
else
	echo "skipped go: not installed"
fi

# ---- programs -------------------------------------------------------------------------------
failed=0
for name in spawn post submit million ctx_switch timers; do
	want "$name" || continue
	exe=$bindir/bench_$name
	if [ ! -x "$exe" ]; then
		echo "skipped $name: $exe does not exist"
		continue
	fi
	echo "== $name ${quick}"
	stale=$(find "$root/lib" "$root/include" "$root"/bench/{bench,mq}.[ch] "$root/bench/$name.c" \
		-name '*.[chS]' -newer "$exe" 2>/dev/null | head -3)
	[ -z "$stale" ] || echo "   warning: newer than $exe (rebuild?): ${stale//$'\n'/ }"
	start=$(date +%s%N)
	timeout --kill-after=10 "$limit" "$exe" --json $quick >"$out/$name.jsonl" 2>"$out/$name.log"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	# The log holds every repetition (the human tables); show only the notes here.
	grep -E '^bench_|rror|anitizer|^rotor' "$out/$name.log" | sed 's/^/   /'
	echo "   every repetition: $out/$name.log"
	grep '^{' "$out/$name.jsonl" >>"$results"
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "   $name: TIMED OUT after ${limit}s (partial output kept in $out/$name.log)"
		failed=1
	elif [ $rc -ne 0 ]; then
		echo "   $name: exit status $rc"
		failed=1
	fi
	printf '   %s: %d.%03d s\n' "$name" $((ms / 1000)) $((ms % 1000))
done

# ---- table ----------------------------------------------------------------------------------
# Targets: bench/metric/baseline -> "ratio>=X", "ratio<=X" or "value<=X" (from the design).
echo
echo "results: $results"
awk '
function field(line, key,    m, v) {
	if (match(line, "\"" key "\":(\"[^\"]*\"|[^,}]*)")) {
		v = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
		gsub(/"/, "", v)
		return v
	}
	return ""
}
function num(v) {
	if (v == "" || v == "null") return "-"
	if (v + 0 >= 1e6) return sprintf("%.2fM", v / 1e6)
	if (v + 0 >= 1e4) return sprintf("%.0f", v)
	return sprintf("%.4g", v)
}
BEGIN {
	target["post/post_k64/mutex-eventfd-queue"] = "ratio>=1.0"
	target["post/post_k1/mutex-eventfd-queue"] = "ratio>=0.3"
	target["submit/submit_throughput/asyncio"] = "ratio>=20"
	target["submit/call_roundtrip/asyncio"] = "ratio<=0.2"
	target["million/million_wall/go-goroutine"] = "ratio<=0.6"
	target["million/million_rss/go-goroutine"] = "value<=5"
	fmt = "%-10s %-20s %-12s %12s  %-30s %12s %8s  %-11s %s\n"
	printf fmt, "bench", "metric", "unit", "rotor", "baseline", "baseline", "ratio", "target", ""
}
/^\{/ {
	b = field($0, "bench"); m = field($0, "metric"); u = field($0, "unit")
	v = field($0, "value"); bl = field($0, "baseline"); bv = field($0, "baseline_value")
	r = field($0, "ratio")
	t = target[b "/" m "/" bl]; verdict = ""
	if (t != "") {
		what = substr(t, 1, 5); op = substr(t, 6, 2); lim = substr(t, 8) + 0
		x = (what == "ratio") ? r : v
		if (x == "" || x == "null") verdict = "n/a"
		else if (op == ">=") verdict = (x + 0 >= lim) ? "met" : "MISSED"
		else verdict = (x + 0 <= lim) ? "met" : "MISSED"
	}
	printf fmt, b, m, u, num(v), bl, num(bv), num(r), t, verdict
}' "$results" | tee "$out/table.txt"
exit $failed
