#!/usr/bin/env bash
# bench_redis_client: rotor's Redis client (redis_client_load, one worker) against
# redis-benchmark (hiredis-based C) and redis-py's asyncio client (redis.asyncio) at the same
# concurrency and pipeline, GET and SET of 16 bytes over a keyspace of 100000 keys
# ("key:%012d", as redis-benchmark -r names them), against one redis-server pinned on the
# first allowed CPU, every client pinned on the second.
#   c50   50 tasks (rotor: 50 tasks sharing one connection, pipelined automatically;
#         redis-benchmark -c 50 -P 1: 50 connections; redis-py: 50 tasks over a pool of 50)
#   p16   one task sending pipelines of 16 (rotor_redis_pipeline; redis-benchmark -c 1 -P 16;
#         redis-py: pipeline(transaction=False) of 16)
# Each run starts the client, lets it warm up, then measures a window: operations are the
# server's total_commands_processed over it (INFO stats), client CPU the client process's
# utime+stime from /proc/PID/stat over it, server CPU the same for redis-server. Every run is
# printed; medians [min..max] and ratios rotor/baseline at the end. Targets: ops/s >= 1.0x
# redis-benchmark's, client CPU per op <= 1.0x its. Full runs only (--quick: a note).
#   bench_redis_client [--json] [--quick] [--reps N] [--seconds S] [--modes "c50 p16"]
set -u
json=0 quick=0 reps=3 seconds=3 warm=1 modes="c50 p16" bench=bench_redis_client
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_options "$@"
set -- "${bench_rest[@]}"
while [ $# -gt 0 ]; do
	case "$1" in
	--modes) modes=$2; shift ;;
	*) ;; # run.sh passes --instructions: not counted here
	esac
	shift
done
if [ $quick = 1 ]; then
	note "bench_redis_client: skipped in --quick (needs redis-server, redis-benchmark; full runs only)"
	exit 0
fi
load=$here/redis_client_load
pyclient=$here/redis_asyncio.py
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
for t in redis-server redis-cli redis-benchmark taskset; do
	command -v $t >/dev/null || { note "bench_redis_client: skipped: $t not installed"; exit 0; }
done
[ -x "$load" ] || { note "bench_redis_client: skipped: $load not built (libhiredis-dev?)"; exit 0; }
bench_cpus # redis-server on cpu_a, the clients on cpu_b
# rotor twice: as it comes (the idle worker polls its ring a while before it sleeps: less
# latency, more CPU) and with ROTOR_NO_SPIN (--no-spin).
clients=(rotor rotor-nospin redis-benchmark)
if "$python" -c 'import redis.asyncio' 2>/dev/null; then
	clients+=(redis-py)
else
	note "bench_redis_client: redis-py baseline skipped: python3-redis not installed"
fi

tmp=$(mktemp -d)
srv=
trap 'kill $(jobs -p) 2>/dev/null; [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT
hz=$(getconf CLK_TCK)
port=$(free_port)
taskset -c "$cpu_a" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$tmp" --maxclients 10000 >"$tmp/server.log" 2>&1 &
srv=$!
for _ in $(seq 200); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$port" PING >/dev/null 2>&1 || { note "bench_redis_client: redis-server did not start"; exit 1; }
commands() { redis-cli -p "$port" INFO stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'; }
# The keys GET reads: all of them, once.
"$python" - "$port" <<'EOF' || { note "bench_redis_client: could not fill the keyspace"; exit 1; }
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
v = b"x" * 16
out = b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$16\r\n%s\r\n" % (i, v) for i in range(100000))
s.sendall(out)
want, got = 100000 * 5, 0
while got < want:
    got += len(s.recv(1 << 20))
EOF

# client MODE CMD: the command line of one client.
cmdline() {
	local c=$1 mode=$2 cmd=$3
	case "$c.$mode" in
	rotor.c50) echo "$load --port $port --tasks 50 --cmd $cmd" ;;
	rotor.p16) echo "$load --port $port --pipeline 16 --cmd $cmd" ;;
	rotor-nospin.c50) echo "$load --port $port --tasks 50 --cmd $cmd --no-spin" ;;
	rotor-nospin.p16) echo "$load --port $port --pipeline 16 --cmd $cmd --no-spin" ;;
	redis-benchmark.c50) echo "redis-benchmark -p $port -c 50 -P 1 -n 2000000000 -r 100000 -d 16 -t $cmd -q" ;;
	redis-benchmark.p16) echo "redis-benchmark -p $port -c 1 -P 16 -n 2000000000 -r 100000 -d 16 -t $cmd -q" ;;
	redis-py.c50) echo "$python $pyclient --port $port --tasks 50 --cmd $cmd" ;;
	redis-py.p16) echo "$python $pyclient --port $port --pipeline 16 --cmd $cmd" ;;
	esac
}

# run CLIENT MODE CMD: "ops/s client_us_per_op server_us_per_op", or "fail".
run() {
	local pid c0 c1 s0 s1 n0 n1 t0 t1
	# shellcheck disable=SC2046
	taskset -c "$cpu_b" $(cmdline "$@") >"$tmp/client.log" 2>&1 &
	pid=$!
	sleep "$warm"
	kill -0 $pid 2>/dev/null || { echo fail; return; }
	n0=$(commands) c0=$(ticks $pid) s0=$(ticks $srv) t0=$(date +%s%N)
	sleep "$seconds"
	n1=$(commands) c1=$(ticks $pid) s1=$(ticks $srv) t1=$(date +%s%N)
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ -n "$c1" ] && [ -n "$n1" ] || { echo fail; return; }
	awk -v n=$((n1 - n0 - 1)) -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v t=$((t1 - t0)) -v hz="$hz" \
		'BEGIN { if (n <= 0) { print "fail"; exit }
			printf "%.0f %.3f %.3f\n", n / (t / 1e9), c * 1e6 / hz / n, s * 1e6 / hz / n }'
}

declare -A v
failed=0
note "bench_redis_client: redis-server on CPU $cpu_a, clients on CPU $cpu_b; ${seconds}s windows after ${warm}s of warm-up; CPU from /proc/PID/stat (${hz} Hz ticks)"
for mode in $modes; do
	for cmd in get set; do
		for ((i = 1; i <= reps; i++)); do
			line="  $mode $cmd rep $i:"
			for c in "${clients[@]}"; do
				read -r ops cpu scpu <<<"$(run "$c" "$mode" "$cmd")"
				if [ "$ops" = fail ]; then
					line+=" $c FAILED;"
					[ "${c%-nospin}" = rotor ] && failed=1
					continue
				fi
				v[$mode.$cmd.$c.ops]+="$ops " v[$mode.$cmd.$c.cpu]+="$cpu " v[$mode.$cmd.$c.scpu]+="$scpu "
				line+=" $c $ops ops/s, client $cpu us/op, server $scpu us/op;"
			done
			note "${line%;}"
		done
	done
done

emit() { # METRIC UNIT KEY KIND BASELINE [SUBJECT]
	local r rl rh rn n nl nh nn who=${6:-rotor}
	read -r r rl rh rn <<<"$(echo "${v[$3.$who.$4]:-}" | stats)"
	[ -n "$r" ] || return
	n="" nl="" nh="" nn=0
	read -r n nl nh nn <<<"$(echo "${v[$3.$5.$4]:-}" | stats)"
	if [ $json = 1 ]; then
		json_line "$1" "$2" "$r $rl $rh $rn" "$5" "$n $nl $nh $nn"
	else
		printf '  %-34s %-6s %-12s %10s [%s..%s]  %-15s %10s [%s..%s]  ratio %s\n' "$1" "$2" "$who" \
			"$r" "$rl" "$rh" "$5" "${n:-n/a}" "${nl:-}" "${nh:-}" \
			"$(ratio "$r" "${n:-0}")"
	fi
}
note "bench_redis_client: medians [min..max], ratio rotor/baseline"
for mode in $modes; do
	for cmd in get set; do
		for b in redis-benchmark redis-py; do
			emit "redis_${mode}_${cmd}_ops" ops/s "$mode.$cmd" ops "$b"
			emit "redis_${mode}_${cmd}_cpu_per_op" us "$mode.$cmd" cpu "$b"
			emit "redis_${mode}_${cmd}_server_cpu_per_op" us "$mode.$cmd" scpu "$b"
		done
		emit "redis_${mode}_${cmd}_ops_nospin" ops/s "$mode.$cmd" ops redis-benchmark rotor-nospin
		emit "redis_${mode}_${cmd}_cpu_per_op_nospin" us "$mode.$cmd" cpu redis-benchmark rotor-nospin
	done
done
exit $failed
