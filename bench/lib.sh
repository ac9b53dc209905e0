# bench/lib.sh: the helpers the benchmark scripts share (http.sh, https.sh, echo.sh,
# http_client.sh, redis_client.sh, redis.sh), sourced
# from beside the script (the build's bench/ folder holds a copy of it, as of the scripts).
# The script sets `bench` (its name: the prefix of its notes, "bench" of its JSON lines)
# before it sources this, and declares the associative arrays pid and cpupids (NAME -> PID,
# NAME -> the PIDs whose CPU counts) that launch, stop and nginx_workers use.
# shellcheck shell=bash disable=SC2034,SC2154 # it sets and reads the sourcing script's globals

# bench_options ARGS...: --json, --quick, --reps N, --seconds S and --peers DIR set json,
# quick, reps, seconds and peers (the caller sets the defaults first); every other argument
# goes to bench_rest (run.sh passes --instructions, which the scripts do not count).
bench_options() {
	bench_rest=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--json) json=1 ;;
		--quick) quick=1 ;;
		--reps) reps=$2; shift ;;
		--seconds) seconds=$2; shift ;;
		--peers) peers=$2; shift ;;
		*) bench_rest+=("$1") ;;
		esac
		shift
	done
}

# note TEXT: a line of context: stdout, or stderr with --json (stdout then holds JSON only).
note() { if [ "$json" = 1 ]; then echo "$*" >&2; else echo "$*"; fi; }

# bench_cpus: cpu_a and cpu_b, the first two CPUs this process may use ("0-1", "0,2-5", ...):
# the load generator's and the server's. With fewer, the script is skipped (exit 0).
bench_cpus() {
	read -r cpu_a cpu_b <<<"$(grep Cpus_allowed_list /proc/self/status | cut -f2 | tr ',' '\n' |
		awk -F- '{ for (c = $1; c <= ($2 == "" ? $1 : $2); c++) printf "%d ", c }')"
	[ -n "$cpu_b" ] || { note "$bench: skipped: needs two CPUs"; exit 0; }
}

# alive PID: running, not a zombie waiting to be reaped (kill -0 cannot tell).
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# ticks PID...: user+sys clock ticks of these processes, every thread of each.
ticks() {
	local p t=0 s
	for p in "$@"; do
		s=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || return 1
		[ -n "$s" ] || return 1
		t=$((t + s))
	done
	echo $t
}

# free_port: a port no socket uses, below the ephemeral range (where a client's connection
# could take it between this check and the server's bind): nginx and redis-server need one up
# front (and redis.sh gives one to rotor's Redis example); rotor's HTTP servers and the HTTP
# baselines take port 0.
free_port() {
	local p k lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	[ "${lo:-0}" -gt 12000 ] || lo=61000
	for ((k = 0; k < 50; k++)); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if command -v ss >/dev/null; then
			[ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && break
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break
		fi
	done
	echo $p
}

# nginx_workers NAME WORKERS: adds the worker processes of the nginx master pid[NAME] to
# cpupids[NAME] (the first worker may answer before the last is forked).
nginx_workers() {
	local k
	for ((k = 0; k < 20; k++)); do
		[ "$(pgrep -c -P "${pid[$1]}")" -ge "$2" ] && break
		sleep 0.05
	done
	cpupids[$1]+=" $(pgrep -P "${pid[$1]}" | tr '\n' ' ')"
}

# stop NAME: SIGTERM to pid[NAME], then up to 5 s for a clean exit (a non-zero status and a
# kill are noted).
stop() {
	local k rc
	[ -n "${pid[$1]:-}" ] || return 0
	kill -TERM "${pid[$1]}" 2>/dev/null
	for ((k = 0; k < 100; k++)); do
		alive "${pid[$1]}" || break
		sleep 0.05
	done
	if alive "${pid[$1]}"; then
		note "$bench: $1 ignored SIGTERM for 5 s: killed"
		kill -KILL "${pid[$1]}"
	fi
	wait "${pid[$1]}"
	rc=$?
	[ $rc = 0 ] || note "$bench: $1 exited with status $rc after SIGTERM"
	pid[$1]=
}

# per_op T0 T1 N: the CPU ticks T1 - T0 in microseconds per operation, of N.
per_op() {
	awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.3f", (b - a) * 1e6 / hz / n }'
}

# stats: "median min max count" of the numbers on stdin (separated by spaces or lines).
stats() {
	tr ' ' '\n' | grep -v '^$' | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)], a[1], a[NR], NR }'
}

# json_line METRIC UNIT "R RL RH RN" BASELINE "N NL NH NN": the JSON line run.sh collects,
# rotor's median, min, max and count against the baseline's (empty: not measured, null).
json_line() {
	local r rl rh rn n nl nh nn
	read -r r rl rh rn <<<"$3"
	read -r n nl nh nn <<<"$5"
	awk -v bench="${bench#bench_}" -v m="$1" -v u="$2" -v r="$r" -v rl="$rl" -v rh="$rh" \
		-v rn="$rn" -v b="$4" -v n="${n:-null}" -v nl="${nl:-null}" -v nh="${nh:-null}" \
		-v nn="${nn:-0}" 'BEGIN {
		printf "{\"bench\":\"%s\",\"metric\":\"%s\",\"unit\":\"%s\",\"value\":%s,\"min\":%s,\"max\":%s,\"reps\":%d,\"baseline\":\"%s\",\"baseline_value\":%s,\"baseline_min\":%s,\"baseline_max\":%s,\"baseline_reps\":%d,", bench, m, u, r, rl, rh, rn, b, n, nl, nh, nn
		if (n != "null" && n + 0 > 0) printf "\"ratio\":%.4f}\n", r / n
		else printf "\"ratio\":null}\n" }'
}

# ratio R N: R / N to three places (0 when N is not positive).
ratio() { awk -v r="$1" -v n="$2" 'BEGIN { printf "%.3f", (n > 0 ? r / n : 0) }'; }
