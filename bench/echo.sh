#!/usr/bin/env bash
# bench_echo: TCP echo round trips over loopback, rotor's examples/echo_server against a
# plain epoll server (epoll_echo) and a libuv one (uv_echo), loaded by echo_load: each
# connection keeps one 64-byte message in flight (send, read the echo back, check it, send
# again). Figures: server CPU per round trip (user+sys of the server process, every thread,
# from /proc over the client run, divided by the round trips it completed) and round trips/s.
# Placements: "pinned" (echo_load on CPU 0, one-worker servers on CPU 1) with 100 and 400
# connections; "shared" (two-worker servers, which pin their workers themselves, and a
# two-thread echo_load, unpinned) with 100. Servers start once per placement and stop with
# SIGTERM; runs alternate the servers within each repetition, and every run is printed.
# The shared placement also runs rotor --no-steer ("rotor-unsteered": connections spread by
# the kernel's hash instead of going to the worker on the CPU that handled their handshake),
# so that what steering buys and what the runtime does alone both show. The pinned placement
# also runs uring_floor --echo ("uring-floor"): a raw liburing echo with no runtime, the least
# CPU per round trip an io_uring server spends here; its ratio to epoll follows the table.
#   bench_echo [--json] [--quick] [--reps N] [--seconds S]
# --quick: one 1-second run of each server, pinned, 100 connections. A peer not built is
# skipped with a message; other options (run.sh passes --instructions) are ignored.
set -u
json=0 quick=0 reps=5 seconds=3 peers='' bench=bench_echo
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_options "$@"
if [ $quick = 1 ]; then
	reps=1 seconds=1
fi
load=$here/echo_load
declare -A bin=([rotor]=$here/../examples/echo_server [epoll]=$here/epoll_echo [libuv]=$here/uv_echo
	[nosteer]=$here/../examples/echo_server [floor]=$here/uring_floor)
declare -A baseline=([epoll]=epoll [libuv]=libuv [floor]=uring-floor [nosteer]=rotor-unsteered)
declare -A extra=([nosteer]=--no-steer [floor]=--echo)
declare -A why=([rotor]="examples/echo_server" [epoll]="epoll_echo" [libuv]="uv_echo (needs libuv1-dev)"
	[floor]="uring_floor")
for b in "$load" "${bin[rotor]}"; do
	[ -x "$b" ] || { note "bench_echo: skipped: $b not built"; exit 0; }
done
command -v taskset >/dev/null || { note "bench_echo: skipped: taskset not installed (util-linux)"; exit 0; }
bench_cpus # the client on cpu_a, the server on cpu_b
servers=(rotor)
floor=0
for s in epoll libuv floor; do
	if [ -x "${bin[$s]}" ]; then
		servers+=("$s")
		[ "$s" != floor ] || floor=1
	else
		note "bench_echo: $s peer skipped: ${why[$s]} not built"
	fi
done
# Configurations: placement, connections, repetitions. 400 connections get at most three
# repetitions, which keeps a default full run near two minutes.
configs=("pinned 100 $reps")
if [ $quick = 0 ]; then
	configs+=("pinned 400 $((reps < 3 ? reps : 3))" "shared 100 $reps")
fi
runs=0
for c in "${configs[@]}"; do
	read -r where _ n <<<"$c"
	runs=$((runs + n * ${#servers[@]}))
	# Shared: rotor-unsteered runs, uring-floor (one worker only) does not.
	[ "$where" = pinned ] || runs=$((runs + n - n * floor))
done
# Each run costs its seconds plus about 0.15 s (connections, warm-up, exits).
estimate=$(awk -v r=$runs -v s="$seconds" 'BEGIN { printf "%.0f", r * (s + 0.15) + 2 }')
note "bench_echo: about $estimate s: $runs runs of $seconds s (servers: ${servers[*]}; pinned: echo_load on CPU $cpu_a, one-worker servers on CPU $cpu_b$([ $quick = 0 ] && echo "; shared: two-worker servers, two-thread echo_load, unpinned"))"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
# key PLACEMENT CONNS: c100, c400, c100_shared (also the metric's suffix).
key() { if [ "$1" = shared ]; then echo "c${2}_shared"; else echo "c$2"; fi; }
declare -A pid port v
failed=0

# start NAME WORKERS [CPU]: runs the server on a free port, waits for its "listening" line.
start() {
	local out=$tmp/$1.out k p=
	: >"$out" # before the server opens it: the first look below must find it
	if [ -n "${3:-}" ]; then
		taskset -c "$3" "${bin[$1]}" --port 0 --workers "$2" ${extra[$1]:+"${extra[$1]}"} >"$out" 2>&1 &
	else
		"${bin[$1]}" --port 0 --workers "$2" ${extra[$1]:+"${extra[$1]}"} >"$out" 2>&1 &
	fi
	pid[$1]=$!
	for ((k = 0; k < 100; k++)); do
		p=$(sed -n 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' "$out")
		[ -n "$p" ] && break
		alive "${pid[$1]}" || break
		sleep 0.05
	done
	if [ -z "$p" ]; then
		note "bench_echo: $1 did not start: $(head -c 300 "$out" | tr '\n' ' ')"
		kill -KILL "${pid[$1]}" 2>/dev/null
		wait "${pid[$1]}" 2>/dev/null
		pid[$1]=
		return 1
	fi
	port[$1]=$p
}

# one_run NAME CONNS THREADS [CPU]: prints "rate cpu_us_per_roundtrip", or "fail".
one_run() {
	local t0 t1 out rate all
	t0=$(ticks "${pid[$1]}")
	out=$(${4:+taskset -c "$4"} "$load" --port "${port[$1]}" --conns "$2" --threads "$3" \
		--size 64 --seconds "$seconds" 2>&1)
	local rc=$?
	t1=$(ticks "${pid[$1]}")
	rate=$(echo "$out" | sed -n 's/^roundtrips .* rate \([0-9.]*\) all .*/\1/p')
	all=$(echo "$out" | sed -n 's/^roundtrips .* all \([0-9]*\)$/\1/p')
	if [ $rc != 0 ] || [ -z "$rate" ] || [ -z "$t0" ] || [ -z "$t1" ] || [ "${all:-0}" = 0 ]; then
		echo "bench_echo: $1 run failed (status $rc): $(echo "$out" | tr '\n' ' ' | head -c 300)" >&2
		echo fail
		return
	fi
	echo "$rate $(per_op "$t0" "$t1" "$all")"
}

placement=
for c in "${configs[@]}"; do
	read -r where conns nreps <<<"$c"
	if [ "$where" != "$placement" ]; then
		for s in "${servers[@]}" nosteer; do stop "$s"; done
		placement=$where
		up=()
		for s in "${servers[@]}"; do
			if [ "$where" = pinned ]; then
				start "$s" 1 "$cpu_b" && up+=("$s")
			elif [ "$s" != floor ]; then
				start "$s" 2 && up+=("$s")
			fi
		done
		# Steering needs several workers: the shared placement only.
		[ "$where" = pinned ] || { start nosteer 2 && up+=(nosteer); }
		[ -n "${pid[rotor]:-}" ] || failed=1
	fi
	if [ "$where" = pinned ]; then threads=1 lcpu=$cpu_a; else threads=2 lcpu=; fi
	key=$(key "$where" "$conns")
	for ((i = 1; i <= nreps; i++)); do
		line="  $where c$conns rep $i:"
		# Rotate who goes first, so that no server always follows the same one.
		for ((j = 0; j < ${#up[@]}; j++)); do
			s=${up[$(((i - 1 + j) % ${#up[@]}))]}
			read -r rate cpu <<<"$(one_run "$s" "$conns" "$threads" "$lcpu")"
			if [ "$rate" = fail ]; then
				line+=" ${baseline[$s]:-$s} FAILED;"
				[ "$s" = rotor ] && failed=1
				continue
			fi
			v[$key.$s.rate]+="$rate "
			v[$key.$s.cpu]+="$cpu "
			line+=" ${baseline[$s]:-$s} $rate rt/s $cpu us CPU/rt;"
		done
		note "${line%;}"
	done
done
for s in "${servers[@]}" nosteer; do stop "$s"; done

# emit METRIC UNIT KEY KIND: rotor's series against each baseline, one JSON line each.
emit() {
	local r rl rh rn b n nl nh nn human
	read -r r rl rh rn <<<"$(echo "${v[$3.rotor.$4]:-}" | stats)"
	[ -n "$r" ] || return
	human=$(printf '  %-28s %-5s rotor %10s [%s..%s]' "$1" "$2" "$r" "$rl" "$rh")
	for b in epoll libuv floor nosteer; do
		[[ $b != @(floor|nosteer) ]] || [ -n "${v[$3.$b.$4]:-}" ] || continue
		n="" nl="" nh="" nn=0
		read -r n nl nh nn <<<"$(echo "${v[$3.$b.$4]:-}" | stats)"
		if [ $json = 1 ]; then
			json_line "$1" "$2" "$r $rl $rh $rn" "${baseline[$b]}" "$n $nl $nh $nn"
		elif [ -n "$n" ]; then
			human+=$(printf '  %s %s [%s..%s] ratio %s' "${baseline[$b]}" "$n" "$nl" "$nh" \
				"$(ratio "$r" "$n")")
		else
			human+="  ${baseline[$b]} not measured"
		fi
	done
	[ $json = 1 ] || echo "$human"
}
note "bench_echo: 64-byte messages, one in flight per connection, $seconds s per run; medians [min..max]"
for c in "${configs[@]}"; do
	read -r where conns nreps <<<"$c"
	key=$(key "$where" "$conns")
	suffix=${key#c"$conns"}
	emit "echo_c${conns}_cpu_per_rt$suffix" us "$key" cpu
	emit "echo_c${conns}_rt_per_s$suffix" rt/s "$key" rate
done
# The floor against epoll: how far below it an io_uring server can go at all.
for c in "${configs[@]}"; do
	read -r where conns _ <<<"$c"
	key=$(key "$where" "$conns")
	[ -n "${v[$key.floor.cpu]:-}" ] && [ -n "${v[$key.epoll.cpu]:-}" ] || continue
	read -r f _ <<<"$(echo "${v[$key.floor.cpu]}" | stats)"
	read -r n _ <<<"$(echo "${v[$key.epoll.cpu]}" | stats)"
	note "bench_echo: echo_${key}_cpu_per_rt: uring-floor $f us, $(awk -v f="$f" -v n="$n" 'BEGIN { printf "%.3f", f / n }') of epoll's"
done
exit $failed
