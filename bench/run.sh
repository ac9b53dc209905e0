#!/usr/bin/env bash
# Run every benchmark program of BUILD_DIR/bench with its peers, collect their --json lines
# into bench-results/<YYYYmmdd-HHMMSS>-<hostname>/results.jsonl (at the repo root), and
# print one table: rotor's median [min..max], the peer's (with its version), the ratio and
# the target where one is set; then draw chart.png (gnuplot) beside it.
#
#   bench/run.sh BUILD_DIR [--quick] [--only NAME] [--out DIR] [--no-build] [--no-instructions]
#
#   --quick            a short run: every program in a few seconds, under a minute in all
#   --only NAME        one program: spawn post submit million sync ctx_switch timers http
#                      echo fileread (or any other bench_NAME the build has)
#   --out DIR          write the results there instead of bench-results/<date>-<host>
#   --no-build         do not rebuild stale programs (only warn)
#   --no-instructions  do not count instructions even where the machine can
#
# The bench programs are (re)built first when BUILD_DIR is a CMake build; the Go peers are
# built with `go build` (offline) into BUILD_DIR/bench/peers, where the programs look for
# them. A missing peer (no Go, no Python, no Boost) is skipped with a message, never an
# error. Each program runs under a time limit, so that a hang is reported, not waited on.
# Exit status: 0 when every program ran, 1 when one failed or timed out (a MISSED target is
# reported, not a failure), 2 on bad usage.
set -u

# The programs in this order, then any other bench_* program the build has.
programs=(spawn post submit million sync ctx_switch timers http echo fileread)
# Typical durations on the 2-vCPU development VM, in seconds, "quick full"; a later run on
# this host replaces them with what it measured (durations.txt of the newest result).
declare -A typical=(
	[spawn]="1 5" [post]="1 9" [submit]="3 22"
	[million]="3 22" [ctx_switch]="1 7" [timers]="4 9"
	[http]="1 330" [http_post]="1 100" [echo]="4 125" [fileread]="3 100" [resolve]="2 9" [https]="1 100"
	[redis]="1 300"
	[http_client]="1 90"
	[redis_client]="1 170"
)
typical_other="5 30"

usage() {
	sed -n '7,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
build=$1
shift
quick=
only=
out=
do_build=1
instructions=1
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=--quick ;;
	--only)
		[ $# -ge 2 ] || usage
		only=$2
		shift
		;;
	--out)
		[ $# -ge 2 ] || usage
		out=$2
		shift
		;;
	--no-build) do_build= ;;
	--no-instructions) instructions= ;;
	*) usage ;;
	esac
	shift
done

[ -d "$build/bench" ] || {
	echo "$0: $build/bench does not exist: configure and build first, e.g." >&2
	echo "  cmake -S . -B $build -DROTOR_TESTS=OFF -DROTOR_EXAMPLES=OFF && cmake --build $build" >&2
	exit 2
}
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=$build/bench
peers=$bindir/peers
host=$(hostname)
[ -n "$out" ] || out=$root/bench-results/$(date +%Y%m%d-%H%M%S)-$host
mkdir -p "$out" "$peers"
out=$(cd "$out" && pwd)
results=$out/results.jsonl
: >"$results"
mode=${quick:+quick}
mode=${mode:-full}
if [ -n "$quick" ]; then limit=60; else limit=600; fi
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

# ---- build -----------------------------------------------------------------------------------
if [ -n "$do_build" ] && [ -f "$build/CMakeCache.txt" ]; then
	targets=()
	# "... bench_x" from Makefiles, "bench_x: phony" from Ninja.
	for t in $(cmake --build "$build" --target help 2>/dev/null | sed -n \
		-e 's/^\.\.\. \(bench_[a-z0-9_]*\)$/\1/p' -e 's/^\(bench_[a-z0-9_]*\): .*/\1/p'); do
		[ -z "$only" ] || [ "$t" = "bench_$only" ] && targets+=("$t")
	done
	# bench_http and bench_https are scripts; the server they measure is the HTTP example.
	{ want http || want https || want http_post; } && cmake --build "$build" --target help 2>/dev/null | grep -q 'http_server' &&
		targets+=(http_server)
	# bench_redis is a script; the server it measures is the Redis example.
	want redis && cmake --build "$build" --target help 2>/dev/null | grep -q 'redis_server' &&
		targets+=(redis_server)
	if [ ${#targets[@]} -gt 0 ] &&
		! cmake --build "$build" --target "${targets[@]}" -j"$(nproc)" >"$out/build.log" 2>&1; then
		echo "build failed (see $out/build.log):" >&2
		grep -m5 -E 'error|Error' "$out/build.log" >&2
		exit 1
	fi
fi
for exe in "$bindir"/bench_*; do
	name=${exe##*/bench_}
	[ -x "$exe" ] && [[ " ${programs[*]} " != *" $name "* ]] && programs+=("$name")
done
if [ -n "$only" ] && [[ " ${programs[*]} " != *" $only "* ]]; then
	echo "$0: unknown program '$only' (one of: ${programs[*]})" >&2
	rm -f "$out/build.log" "$results"
	rmdir "$out" 2>/dev/null
	exit 2
fi
selected=()
for name in "${programs[@]}"; do want "$name" && selected+=("$name"); done

# ---- peers and their versions ----------------------------------------------------------------
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || echo python3)
py_version=$("$python" --version 2>&1 | sed -n 's/^Python /Python /p' | head -1)
uv_version=$("$python" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null)
glibc=$(ldd --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*$')
nginx_version=$(nginx -v 2>&1 | sed -n 's/.*nginx\///p')
libuv_version=$(pkg-config --modversion libuv 2>/dev/null)
fio_version=$(fio --version 2>/dev/null | head -1)
boost=$(ldd "$bindir/bench_ctx_switch" 2>/dev/null | grep -o 'libboost_context\.so\.[0-9.]*' |
	head -1 | sed 's/libboost_context\.so\./Boost /')
go_version=
if command -v go >/dev/null; then
	# No network here: build offline, and keep a cache even where HOME is unset (CI).
	export GOPROXY=off GOFLAGS=-mod=mod GO111MODULE=on
	[ -n "${HOME:-}" ] || [ -n "${GOCACHE:-}" ] || export GOCACHE=$peers/gocache
	# Every peer (a go build is cached, so the ones this run does not need cost little).
	for dir in "$root"/bench/peers/go/*/; do
		p=$(basename "$dir")
		if ! (cd "$root/bench/peers/go" && go build -o "$peers/$p" "./$p") 2>"$out/go-build-$p.log"; then
			echo "go build $p failed (see $out/go-build-$p.log): its baseline is skipped" >&2
			rm -f "$peers/$p"
		fi
		[ -s "$out/go-build-$p.log" ] || rm -f "$out/go-build-$p.log"
		[ -x "$peers/$p" ] && go_version=$(go version "$peers/$p" | sed 's/.*: //')
	done
else
	# A peer left over from an earlier build would still run; say which Go built it.
	if ls "$peers"/* >/dev/null 2>&1; then
		echo "go not installed: the Go peers built earlier in $peers are used"
	else
		echo "go not installed: the Go baselines are skipped"
	fi
	for p in "$peers"/*; do
		[ -x "$p" ] && go_version=$(go version "$p" 2>/dev/null | sed 's/.*: //') && break
	done
fi
[ -n "$py_version" ] || echo "python3 not found: the asyncio baseline is skipped"
# The tokio peers (bench/peers/tokio), built offline from Debian's librust-tokio-dev with
# whichever cargo is found; without cargo their baselines are skipped.
tokio_version=
cargo=$(command -v cargo || true)
[ -n "$cargo" ] || [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ] || cargo=${HOME:-/root}/.cargo/bin/cargo
if [ -n "$cargo" ]; then
	if (cd "$root/bench/peers/tokio" && "$cargo" build --release --offline \
		--target-dir "$peers/tokio-target") >"$out/tokio-build.log" 2>&1; then
		for p in million submit spawn; do cp "$peers/tokio-target/release/$p" "$peers/tokio-$p"; done
		tokio_version=$(sed -n '/^name = "tokio"$/{n;s/^version = "\(.*\)"/tokio \1/p}' \
			"$root/bench/peers/tokio/Cargo.lock" 2>/dev/null)
		rm -f "$out/tokio-build.log"
	else
		echo "cargo build of the tokio peers failed (see $out/tokio-build.log): their baselines are skipped" >&2
		rm -f "$peers"/tokio-{million,submit,spawn}
	fi
else
	echo "cargo not installed: the tokio baselines are skipped"
	rm -f "$peers"/tokio-{million,submit,spawn}
fi
if want ctx_switch && [ -z "$boost" ]; then
	echo "Boost.Context not linked (libboost-context-dev): its baseline is skipped"
fi

# ---- what this run is ------------------------------------------------------------------------
cpus_allowed=$(grep Cpus_allowed_list /proc/self/status | cut -f2)
pinning="rotor pins each worker of a multi-worker runtime to one CPU (allowed: $cpus_allowed);"
pinning+=" bench_post's pthread baselines are pinned to CPUs 0 and 1;"
pinning+=" the thread pool, Go and Python peers run where the scheduler puts them"
if [ -n "$instructions" ] && command -v perf >/dev/null; then
	probe=$(perf stat -x, -e instructions true 2>&1 | grep instructions)
	case "$probe" in
	"<not supported>"* | "<not counted>"* | "")
		instr_note="instruction counts: not supported on this machine (perf stat -e instructions: ${probe%%,*})"
		instructions=
		;;
	*) instr_note="instruction counts: beside the times (instr/op, user+kernel, all threads)" ;;
	esac
elif [ -n "$instructions" ]; then
	instr_note="instruction counts: asked of perf_event_open (perf not installed to check first)"
else
	instr_note="instruction counts: off (--no-instructions)"
fi
rotor_version=$(sed -n 's/^#define ROTOR_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' \
	"$root/include/rotor/base.h" | paste -sd.)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)
changed=$(git -C "$root" status --porcelain 2>/dev/null | wc -l)
load=$(cut -d' ' -f1 /proc/loadavg)
{
	echo "date: $(date -Is)"
	echo "host: $host"
	echo "kernel: $(uname -srm)"
	echo "cpus: $(nproc) (allowed: $cpus_allowed)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "rotor: $rotor_version, commit $commit ($changed paths changed since)"
	# The C that is measured: the library, rotor's programs, the baselines and the load
	# generator (the peers are other projects' code, named by their versions above).
	echo "sources sha1: $(cat "$root"/lib/*/*.[chS] "$root"/lib/core/arch/*.S \
		"$root"/bench/*.[ch] "$root"/bench/{rotor,baselines,load}/*.[ch] 2>/dev/null |
		sha1sum | cut -c1-12)"
	echo "build: $build ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null))"
	echo "mode: $mode${only:+ (only $only)}"
	echo "go: ${go_version:-not available}"
	echo "tokio: ${tokio_version:-not available}"
	echo "python: ${py_version:-not available}${uv_version:+, uvloop $uv_version}"
	echo "boost: ${boost:-not available}"
	echo "nginx: ${nginx_version:-not available}"
	echo "libuv: ${libuv_version:-not available}"
	echo "fio: ${fio_version:-not available}"
	echo "glibc: ${glibc:-?}"
	echo "pinning: $pinning"
	echo "$instr_note"
	echo "load: $load"
} >"$out/meta.txt"

echo "rotor $rotor_version ($commit), $mode run of ${selected[*]} on $host: $(nproc) CPUs, $(uname -r)"
echo "pinning: $pinning"
echo "$instr_note"
if awk -v l="$load" 'BEGIN { exit !(l > 1.0) }'; then
	echo "warning: load average $load: other work is running, figures will be noisy"
fi

# ---- progress --------------------------------------------------------------------------------
# The newest earlier durations.txt of this mode on this host, if any, beats the built-in table.
prev=$(ls -d "$root"/bench-results/*-"$host" 2>/dev/null | sort -r |
	while read -r d; do [ -f "$d/durations.txt" ] && [ "$d" != "$out" ] && echo "$d/durations.txt"; done)
estimate() { # name -> seconds
	local f s
	for f in $prev; do
		s=$(awk -v n="$1" -v m="$mode" '$1 == n && $2 == m { print $3; exit }' "$f")
		[ -n "$s" ] && {
			echo "$s"
			return
		}
	done
	set -- ${typical[$1]:-$typical_other}
	if [ "$mode" = quick ]; then echo "$1"; else echo "$2"; fi
}
fmt_s() { # seconds -> "1m05s" or "42 s"
	if [ "$1" -ge 60 ]; then printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); else printf '%d s' "$1"; fi
}
left=0
declare -A est
for name in "${selected[@]}"; do
	est[$name]=$(estimate "$name")
	left=$((left + est[$name]))
done
echo "about $(fmt_s "$left") in all (estimated from typical durations)"
ticker_pid=
ticker() { # name est left_after: a live status line while a program runs (terminals only)
	local t=0
	while sleep 1; do
		t=$((t + 1))
		local rest=$(($2 - t))
		[ $rest -ge 0 ] || rest=0
		printf '\r   %s: %d s (typically %d s); about %s left in all   ' "$1" $t "$2" \
			"$(fmt_s $((rest + $3)))"
	done
}

# ---- programs --------------------------------------------------------------------------------
failed=0
: >"$out/durations.txt"
i=0
for name in "${selected[@]}"; do
	i=$((i + 1))
	exe=$bindir/bench_$name
	left=$((left - est[$name]))
	if [ ! -x "$exe" ]; then
		echo "[$i/${#selected[@]}] skipped $name: $exe does not exist"
		continue
	fi
	if [ "$left" -gt 0 ]; then then="then about $(fmt_s "$left") more"; else then="the last one"; fi
	echo "[$i/${#selected[@]}] $name: typically $(fmt_s "${est[$name]}"), $then"
	# A script (bench_http, bench_echo) is only copied: what it runs was built above.
	stale=
	head -c2 "$exe" | grep -q '#!' ||
		stale=$(find "$root/lib" "$root/include" "$root"/bench/bench.[ch] \
			"$root"/bench/baselines/mq.[ch] "$root/bench/rotor/$name.c" -name '*.[chS]' \
			-newer "$exe" 2>/dev/null | head -3)
	[ -z "$stale" ] || echo "   warning: newer than $exe (rebuild?): ${stale//$'\n'/ }"
	if [ -t 1 ]; then
		ticker "$name" "${est[$name]}" "$left" &
		ticker_pid=$!
	fi
	start=$(date +%s%N)
	timeout --kill-after=10 "$limit" "$exe" --json $quick ${instructions:+--instructions} \
		>"$out/$name.jsonl" 2>"$out/$name.log"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	if [ -n "$ticker_pid" ]; then
		kill "$ticker_pid" 2>/dev/null
		wait "$ticker_pid" 2>/dev/null
		ticker_pid=
		printf '\r\033[K'
	fi
	echo "$name $mode $(((ms + 999) / 1000))" >>"$out/durations.txt"
	# The log holds every repetition (the human tables); show only the notes here.
	grep -E '^bench_|rror|anitizer|^rotor' "$out/$name.log" | grep -v 'instruction counts: not supported' |
		sed 's/^/   /'
	grep '^{' "$out/$name.jsonl" >>"$results"
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "   $name: TIMED OUT after ${limit}s (partial output kept in $out/$name.log)"
		failed=1
	elif [ $rc -ne 0 ]; then
		echo "   $name: exit status $rc"
		failed=1
	fi
	printf '   %s: %d.%03d s; every repetition: %s\n' "$name" $((ms / 1000)) $((ms % 1000)) "$out/$name.log"
done

# ---- table -----------------------------------------------------------------------------------
# Targets: bench/metric/baseline -> "ratio>=X", "ratio<=X" or "value<=X" (from the design).
# Noise: a side whose max and min differ by more than 10% of its median is flagged with "!"
# and listed below the table (noisy.txt), not hidden.
echo
: >"$out/noisy.txt"
: >"$out/chart.dat"
awk -v go="${go_version:-go ?}" -v tokio="${tokio_version:-tokio ?}" -v py="${py_version:-Python ?}" -v uv="$uv_version" \
	-v boost="${boost:-Boost ?}"  -v glibc="glibc ${glibc:-?}" -v nginx="nginx ${nginx_version:-?}" \
	-v libuv="libuv ${libuv_version:-?}" -v fio="${fio_version:-fio ?}" -v kernel="Linux $(uname -r | cut -d- -f1)" \
	-v noisy_file="$out/noisy.txt" -v chart_file="$out/chart.dat" '
function field(line, key,    v) {
	if (match(line, "\"" key "\":(\"[^\"]*\"|[^,}]*)")) {
		v = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
		gsub(/"/, "", v)
		return v
	}
	return ""
}
function has(v) { return v != "" && v != "null" }
function num(v) {
	if (!has(v)) return "-"
	if (v + 0 >= 1e6) return sprintf("%.2fM", v / 1e6)
	if (v + 0 >= 1e4) return sprintf("%.0f", v)
	return sprintf("%.4g", v)
}
# "median [min..max]", with "!" when max - min > 10% of the median.
function spread(v, lo, hi, who,    s) {
	if (!has(v)) return "-"
	s = num(v)
	if (has(lo) && has(hi) && hi != lo) s = s " [" num(lo) ".." num(hi) "]"
	if (has(lo) && has(hi) && v + 0 != 0 && (hi - lo) / v > 0.10) {
		s = s "!"
		key = b "/" m; what = sprintf("%s %.0f%%", who, 100 * (hi - lo) / v)
		if (!(key in noisy)) order[++nnoisy] = key
		if (index(", " noisy[key] ", ", ", " what ", ") == 0)
			noisy[key] = noisy[key] (noisy[key] == "" ? "" : ", ") what
	}
	return s
}
function version(bl) {
	if (bl ~ /^go/) return go
	if (bl ~ /^tokio/) return tokio
	if (bl == "asyncio") return py
	if (bl == "aiohttp-client") return py ", aiohttp"
	if (bl == "wrk") return "wrk"
	if (bl == "redis-py") return py ", redis.asyncio"
	if (bl == "uvloop") return "uvloop " uv
	if (bl ~ /^boost/) return boost
	if (bl ~ /^kernel/) return kernel
	if (bl == "nginx") return nginx
	if (bl == "libuv") return libuv
	if (bl ~ /^fio/) return fio
	return "C, " glibc # every other baseline is C in the program itself
}
BEGIN {
	target["post/post_k64/mutex-eventfd-queue"] = "ratio>=1.0"
	target["post/post_k1/mutex-eventfd-queue"] = "ratio>=0.3"
	# "The core paths at the mechanism limit" (#19): against the preallocated queue,
	# the thread pool and tokio.
	target["post/post_k64/mutex-eventfd-queue-prealloc"] = "ratio>=1.0"
	target["post/post_k1/mutex-eventfd-queue-prealloc"] = "ratio>=0.8"
	target["post/post_cb_k64/mutex-eventfd-queue-prealloc"] = "ratio>=1.0"
	target["post/post_cb_k1/mutex-eventfd-queue-prealloc"] = "ratio>=0.8"
	target["submit/submit_throughput/threadpool-mutex-condvar"] = "ratio>=1.5"
	target["submit/submit_cpu/threadpool-mutex-condvar"] = "ratio<=0.7"
	target["submit/submit_throughput/tokio-handle-spawn"] = "ratio>=1.0"
	target["submit/submit_throughput/asyncio"] = "ratio>=20"
	target["submit/call_roundtrip/asyncio"] = "ratio<=0.2"
	target["million/million_wall/go-goroutine"] = "ratio<=0.6"
	target["million/million_wall/tokio"] = "ratio<=1.0"
	target["million/million_rss/go-goroutine"] = "value<=5"
	target["million/million_alive/go-goroutine"] = "ratio>=1.0"
	target["ctx_switch/switch/boost-jump_fcontext"] = "ratio<=1.0"
	target["ctx_switch/switch/swapcontext"] = "ratio<=0.05"
	target["spawn/spawn_batch100/go-goroutine"] = "ratio<=0.4"
	target["post/pingpong/mutex-eventfd-queue"] = "ratio<=1.0"
	target["sync/mutex_local_lock_unlock/pthread-mutex"] = "value<=10"
	target["sync/chan_send_recv_local/mutex-condvar-queue"] = "value<=50"
	target["sync/chan_cross_worker/mutex-condvar-queue"] = "ratio>=2"
	target["sync/chan_cross_worker/go-chan-gomaxprocs2"] = "ratio>=1.0"
	target["sync/offload_roundtrip/mutex-condvar-pool"] = "ratio<=0.5"
	target["http/plaintext_c100_cpu_per_req/epoll"] = "ratio<=0.9"
	target["http/plaintext_c100_cpu_per_req/nginx"] = "ratio<=0.7"
	target["http/plaintext_c400_cpu_per_req/epoll"] = "ratio<=0.9"
	target["http/plaintext_c400_cpu_per_req/nginx"] = "ratio<=0.7"
	target["http/plaintext_c100_rps_shared/nginx"] = "ratio>=1.3"
	target["http/plaintext_c400_rps_shared/nginx"] = "ratio>=1.3"
	target["https/https_c100_cpu_per_req/nginx"] = "ratio<=0.8"
	target["https/https_c100_cpu_per_req_shared/nginx"] = "ratio<=0.8"
	target["https/https_handshakes_per_cpu_s/nginx"] = "ratio>=1.0"
	target["redis_client/redis_c50_get_ops/redis-benchmark"] = "ratio>=1.0"
	target["redis_client/redis_c50_set_ops/redis-benchmark"] = "ratio>=1.0"
	target["redis_client/redis_p16_get_ops/redis-benchmark"] = "ratio>=1.0"
	target["redis_client/redis_p16_set_ops/redis-benchmark"] = "ratio>=1.0"
	target["redis_client/redis_c50_get_cpu_per_op/redis-benchmark"] = "ratio<=1.0"
	target["redis_client/redis_c50_set_cpu_per_op/redis-benchmark"] = "ratio<=1.0"
	target["redis_client/redis_p16_get_cpu_per_op/redis-benchmark"] = "ratio<=1.0"
	target["redis_client/redis_p16_set_cpu_per_op/redis-benchmark"] = "ratio<=1.0"
	target["echo/echo_c100_cpu_per_rt/epoll"] = "ratio<=0.75"
	target["http_client/http_c100_cpu_per_req/go-nethttp-client"] = "ratio<=0.5"
	target["http_client/http_c100_cpu_per_req/wrk"] = "ratio<=1.3"
	target["http_client/https_c100_cpu_per_req/go-nethttp-client"] = "ratio<=0.5"
	target["echo/echo_c100_rt_per_s_shared/epoll"] = "ratio>=1.3"
	target["fileread/randread4k_qd1_iops/fio-io_uring"] = "ratio>=0.95"
	target["fileread/randread4k_qd32_iops/fio-io_uring"] = "ratio>=0.95"
	target["fileread/randread4k_qd128_iops/fio-io_uring"] = "ratio>=0.95"
}
/^\{/ { line[++n] = $0; if (has(field($0, "instr")) || has(field($0, "baseline_instr"))) instr = 1 }
END {
	fmt = "%-10s %-28s %-13s %-24s %-44s %-24s %7s  %-11s %-6s"
	ifmt = " %9s %9s"
	printf fmt, "bench", "metric", "unit", "rotor [min..max]", "baseline (version)", \
		"baseline [min..max]", "ratio", "target", ""
	if (instr) printf ifmt, "instr/op", "base i/op"
	printf "\n"
	for (k = 1; k <= n; k++) {
		$0 = line[k]
		b = field($0, "bench"); m = field($0, "metric"); u = field($0, "unit")
		v = field($0, "value"); bl = field($0, "baseline"); bv = field($0, "baseline_value")
		r = field($0, "ratio")
		t = target[b "/" m "/" bl]; verdict = ""
		if (t != "") {
			what = substr(t, 1, 5); op = substr(t, 6, 2); lim = substr(t, 8) + 0
			x = (what == "ratio") ? r : v
			if (!has(x)) verdict = "n/a"
			else if (op == ">=") verdict = (x + 0 >= lim) ? "met" : "MISSED"
			else verdict = (x + 0 <= lim) ? "met" : "MISSED"
		}
		vers = has(bv) ? version(bl) : "not measured"
		rs = spread(v, field($0, "min"), field($0, "max"), "rotor")
		bs = spread(bv, field($0, "baseline_min"), field($0, "baseline_max"), bl)
		printf fmt, b, m, u, rs, bl (vers != "" ? " (" vers ")" : ""), bs, num(r), t, verdict
		if (instr) printf ifmt, num(field($0, "instr")), num(field($0, "baseline_instr"))
		printf "\n"
		# The chart: how many times better rotor is (higher is better for rates and counts).
		if (has(r) && r + 0 > 0) {
			adv = (u ~ /\/s$/ || u == "tasks" || u == "IOPS") ? r : 1 / r
			printf "%s/%s vs %s\t%g\t%s\n", b, m, bl, adv, \
				(rs bs) ~ /!/ ? "noisy" : "ok" > chart_file
		}
	}
	# One line per figure; a rotor series reported against several baselines appears once.
	for (k = 1; k <= nnoisy; k++) print order[k] ": " noisy[order[k]] > noisy_file
}' "$results" | tee "$out/table.txt"
if [ -s "$out/noisy.txt" ]; then
	echo
	echo "warning: noisy figures, marked ! above: max - min is more than 10% of the median (other"
	echo "work on the machine, or too few repetitions); rerun before trusting these ratios:"
	sed 's/^/   /' "$out/noisy.txt"
fi
[ -n "$instructions" ] || echo "$instr_note"

# ---- chart -----------------------------------------------------------------------------------
if [ ! -s "$out/chart.dat" ]; then
	echo "chart: nothing to draw (no figure with a baseline)"
elif ! command -v gnuplot >/dev/null; then
	echo "chart: skipped (gnuplot not installed: apt-get install gnuplot-nox)"
else
	rows=$(wc -l <"$out/chart.dat")
	# Whole decades around every bar, at least 0.1x..10x.
	xrange=$(awk -F'\t' '{ if (NR == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
		END { l = 0.1; while (l > lo / 3) l /= 10; h = 10; while (h < hi * 3) h *= 10; print l ":" h }' \
		"$out/chart.dat")
	# One horizontal bar per figure, first at the top; log scale centred on 1x.
	gnuplot >"$out/gnuplot.log" 2>&1 <<EOF
set terminal pngcairo size 1100,$((150 + 22 * rows)) font "sans,9"
set output "$out/chart.png"
set title "rotor $rotor_version ($commit) against its peers: $mode run on $host, $(date '+%Y-%m-%d %H:%M')\nhow many times better rotor is (medians; left of 1x the peer is better; ! noisy: max - min over 10%)"
set datafile separator "\t"
set logscale x 10
set format x "%gx"
set xrange [$xrange]
set grid xtics
set yrange [$rows - 0.4:-0.6]
set ytics noenhanced nomirror
set key off
set lmargin 46
plot "$out/chart.dat" using (1):0:(\$2 < 1 ? \$2 : 1):(\$2 < 1 ? 1 : \$2):(\$0 - 0.38):(\$0 + 0.38):(\$2 >= 1 ? 0x2e8b57 : 0xcd3333):ytic(1) \
	with boxxyerror fill solid 0.8 lc rgb variable, \
	"$out/chart.dat" using (\$2 >= 1 ? \$2 * 1.1 : NaN):0:(sprintf("%.3gx%s", \$2, strcol(3) eq "noisy" ? " !" : "")) \
	with labels left font "sans,8", \
	"$out/chart.dat" using (\$2 < 1 ? \$2 / 1.1 : NaN):0:(sprintf("%s%.3gx", strcol(3) eq "noisy" ? "! " : "", \$2)) \
	with labels right font "sans,8"
EOF
	if [ -s "$out/chart.png" ]; then
		echo "chart: $out/chart.png"
	else
		echo "chart: gnuplot failed (see $out/gnuplot.log)"
	fi
fi
echo "results: $out (table.txt, results.jsonl, meta.txt, one log per program)"
exit $failed
