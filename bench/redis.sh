#!/usr/bin/env bash
# bench_redis: the Redis example (examples/redis_server) against redis-server 7.0, loaded by
# redis-benchmark over loopback (-c 50 -d 16 -r 100000). Figures: server CPU per operation
# (user+sys of the server process, every thread, from /proc/PID/stat before and after each
# redis-benchmark run, divided by the requests it made), operations/s (its CSV), and the
# benchmark's own CPU per operation (its cutime+cstime), which says when the load generator
# is the limit. Every run is printed; rotor and its peer alternate run by run.
# Placements:
#   pinned  rotor --workers 1 and redis-server on the second allowed CPU, redis-benchmark on
#           the first: set, get, incr, lpush, mset at -P 1 and -P 16.
#   shared  rotor --workers 2 (it pins worker i to CPU i) against redis-server and against
#           redis-server --io-threads 2 (reads too), redis-benchmark --threads 2, all unpinned:
#           set, get at -P 1 and -P 16.
#   cross   the cross-core path alone: rotor --workers 2 --owners 1 (worker 0 owns every key,
#           so worker 1's connections forward every command) against the same two workers
#           with keys sharded across both, set at -c 1 -P 1, -c 50 -P 1 and -c 50 -P 16; the
#           server's --stats give forwarded parts and batches (one posted callback each, one
#           MSG_RING per worker pair per loop turn at most): parts per batch rise with load.
# Metrics: <placement>_<test>_P<p>_cpu_per_op (us), _ops (ops/s); cross_<load>_parts_per_batch.
#   bench_redis [--json] [--quick] [--reps N] [--requests N]
set -u
json=0 quick=0 reps=3 requests=20000 bench=bench_redis
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_options "$@"
set -- "${bench_rest[@]}"
while [ $# -gt 0 ]; do
	case "$1" in
	--requests) requests=$2; shift ;;
	*) ;; # run.sh passes --instructions: not counted here
	esac
	shift
done
if [ $quick = 1 ]; then
	note "bench_redis: skipped in --quick (full runs only)"
	exit 0
fi
rotor=$here/../examples/redis_server
for t in redis-server redis-benchmark redis-cli taskset; do
	command -v $t >/dev/null || { note "bench_redis: skipped: $t not installed (apt-get install redis-server redis-tools util-linux)"; exit 0; }
done
[ -x "$rotor" ] || { note "bench_redis: skipped: $rotor not built"; exit 0; }
bench_cpus # redis-benchmark on cpu_a, the pinned servers on cpu_b
hz=$(getconf CLK_TCK)
tmp=$(mktemp -d)
declare -A pid=() cpupids=() # pid[srv]: the server running (lib.sh's stop srv ends it)
cleanup() { [ -z "${pid[srv]:-}" ] || kill -9 "${pid[srv]}" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# start KIND: a server on a free port; sets pid[srv] and port.
start() {
	port=$(free_port)
	case "$1" in
	rotor1) taskset -c "$cpu_b" "$rotor" --port "$port" --workers 1 >"$tmp/out" 2>&1 & ;;
	rotor2) "$rotor" --port "$port" --workers 2 --stats >"$tmp/out" 2>&1 & ;;
	rotor2own1) "$rotor" --port "$port" --workers 2 --owners 1 --stats >"$tmp/out" 2>&1 & ;;
	redis1) taskset -c "$cpu_b" redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 & ;;
	redis) redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 & ;;
	redisio2) redis-server --port "$port" --save '' --appendonly no --io-threads 2 \
		--io-threads-do-reads yes >/dev/null 2>&1 & ;;
	esac
	pid[srv]=$!
	for _ in $(seq 100); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	note "bench_redis: $1 did not start"
	return 1
}

declare -A v  # key.series.cpu / .ops: space-separated values of every rep
# load PLACEMENT SERIES TEST P CLIENTS: one redis-benchmark run; prints its line.
load() {
	local placement=$1 series=$2 test=$3 p=$4 c=$5 n=$requests pre gen=() out
	[ "$p" = 1 ] || n=$((requests * 10))
	[ "$c" != 1 ] || n=$((requests / 5)) # one client: one request per round trip
	if [ "$placement" = pinned ]; then gen=(taskset -c "$cpu_a"); else gen=(); fi
	local extra=()
	[ "$placement" != shared ] || extra=(--threads 2)
	pre=$(ticks "${pid[srv]}")
	out=$( ("${gen[@]}" redis-benchmark -p "$port" -c "$c" -d 16 -r 100000 -n "$n" -P "$p" \
		-t "$test" "${extra[@]}" --csv 2>/dev/null; awk '{ print "bench_ticks", $16 + $17 }' \
		/proc/$BASHPID/stat))
	local post ops bt cpu bcpu key
	post=$(ticks "${pid[srv]}")
	ops=$(echo "$out" | awk -F'"' 'NR > 1 && $2 != "" && $0 !~ /bench_ticks/ { print $4; exit }')
	bt=$(echo "$out" | awk '/bench_ticks/ { print $2 }')
	cpu=$(awk -v a="$pre" -v b="$post" -v hz="$hz" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / hz / n * 1e6 }')
	bcpu=$(awk -v t="$bt" -v hz="$hz" -v n="$n" 'BEGIN { printf "%.3f", t / hz / n * 1e6 }')
	key=${placement}_${test}_P${p}
	[ "$placement" != cross ] || key=${key}_c$c
	v[$key.$series.cpu]+="$cpu "
	v[$key.$series.ops]+="${ops:-0} "
	note "$(printf '  %-22s %-16s ops/s %10s  server %7s us/op  redis-benchmark %7s us/op' \
		"$key" "$series" "${ops:-?}" "$cpu" "$bcpu")"
}

# emit KEY METRIC-SUFFIX UNIT ROTOR-SERIES BASELINE-SERIES BASELINE-NAME
emit() {
	local r rl rh rn b bl bh bn
	read -r r rl rh rn <<<"$(echo "${v[$1.$4.$2]:-}" | stats)"
	read -r b bl bh bn <<<"$(echo "${v[$1.$5.$2]:-}" | stats)"
	[ -n "$r" ] && [ -n "$b" ] || return
	local unit=$3 metric=${1}_$([ "$2" = cpu ] && echo cpu_per_op || echo ops)
	if [ $json = 1 ]; then
		json_line "$metric" "$unit" "$r $rl $rh $rn" "$6" "$b $bl $bh $bn"
	else
		printf '  %-30s %-5s rotor %10s [%s..%s]  %-14s %10s [%s..%s]  ratio %s\n' "$metric" "$unit" \
			"$r" "$rl" "$rh" "$6" "$b" "$bl" "$bh" \
			"$(ratio "$r" "$b")"
	fi
}

note "bench_redis: $reps reps, $requests requests at -P 1 (10x at -P 16); CPU from /proc/PID/stat (CLK_TCK $hz)"
failed=0
# ---- pinned -----------------------------------------------------------------------------------
note "pinned: servers on CPU $cpu_b, redis-benchmark on CPU $cpu_a"
for rep in $(seq "$reps"); do
	for test in set get incr lpush mset; do
		for p in 1 16; do
			for s in rotor1 redis1; do
				start $s || { failed=1; continue; }
				load pinned "$s" "$test" "$p" 50
				stop srv
			done
		done
	done
done
# ---- shared -----------------------------------------------------------------------------------
note "shared: rotor 2 workers, redis-server, redis-server --io-threads 2; redis-benchmark --threads 2"
for rep in $(seq "$reps"); do
	for test in set get; do
		for p in 1 16; do
			for s in rotor2 redis redisio2; do
				start $s || { failed=1; continue; }
				load shared "$s" "$test" "$p" 50
				stop srv
			done
		done
	done
done
# ---- cross-core -------------------------------------------------------------------------------
note "cross: rotor 2 workers, one owner (every command of worker 1 forwarded) vs sharded"
declare -A ppb
for rep in $(seq "$reps"); do
	for cp in "1 1" "50 1" "50 16"; do
		read -r c p <<<"$cp"
		for s in rotor2own1 rotor2; do
			start $s || { failed=1; continue; }
			load cross "$s" set "$p" "$c"
			stop srv
			line=$(grep '^total:' "$tmp/out")
			per=$(echo "$line" | sed -n 's/.*parts per batch \([0-9.]*\).*/\1/p')
			note "      $line"
			key=cross_set_P${p}_c$c
			ppb[$key.$s]+="${per:-0} "
		done
	done
done

note ""
note "summary (medians of $reps; ratio = rotor / baseline; CPU per op: lower is better)"
for test in set get incr lpush mset; do
	for p in 1 16; do
		emit "pinned_${test}_P$p" cpu us rotor1 redis1 redis-server
		emit "pinned_${test}_P$p" ops ops/s rotor1 redis1 redis-server
	done
done
for test in set get; do
	for p in 1 16; do
		for b in redis redisio2; do
			name=redis-server
			[ $b = redis ] || name=io-threads-2
			emit "shared_${test}_P$p" cpu us rotor2 $b $name
			emit "shared_${test}_P$p" ops ops/s rotor2 $b $name
		done
	done
done
for cp in "1 1" "50 1" "50 16"; do
	read -r c p <<<"$cp"
	key=cross_set_P${p}_c$c
	emit "$key" cpu us rotor2own1 rotor2 sharded
	emit "$key" ops ops/s rotor2own1 rotor2 sharded
	for s in rotor2own1 rotor2; do
		read -r m ml mh mn <<<"$(echo "${ppb[$key.$s]:-}" | stats)"
		[ -n "$m" ] || continue
		if [ $json = 1 ]; then
			echo "{\"bench\":\"redis\",\"metric\":\"${key}_parts_per_batch_$s\",\"unit\":\"parts\",\"value\":$m,\"min\":$ml,\"max\":$mh,\"reps\":$mn,\"baseline\":null,\"baseline_value\":null,\"ratio\":null}"
		else
			printf '  %-30s %-5s %-10s %s [%s..%s]\n' "${key}_parts_per_batch" parts "$s" "$m" "$ml" "$mh"
		fi
	done
done
exit $failed
