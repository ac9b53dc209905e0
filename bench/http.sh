#!/usr/bin/env bash
# bench_http: HTTP/1.1 plaintext, rotor's examples/http_server against nginx (one worker
# each), loaded by wrk over loopback: server CPU per request (user+sys of the server from
# /proc, over the run) and requests/s. Placement "pinned": wrk on CPU 0, the server on
# CPU 1. Loads: 100 keep-alive connections, and the same with 16 pipelined requests per
# connection (a wrk Lua script), which keeps both servers busy and measures processing
# cost alone. Runs alternate rotor and nginx; every run is printed (this VM is bimodal).
# Full runs only: --quick prints a note and exits (CI has neither wrk nor nginx).
#   bench_http [--json] [--quick] [--reps N]
set -u
json=0 quick=0 reps=5
while [ $# -gt 0 ]; do
	case "$1" in
	--json) json=1 ;;
	--quick) quick=1 ;;
	--reps) reps=$2; shift ;;
	*) ;;
	esac
	shift
done
note() { if [ $json = 1 ]; then echo "$*" >&2; else echo "$*"; fi; }
if [ $quick = 1 ]; then
	note "bench_http: skipped in --quick (needs wrk and nginx; full runs only)"
	exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
server=$here/../examples/http_server
for t in wrk nginx; do
	command -v $t >/dev/null || { note "bench_http: skipped: $t not installed (apt-get install wrk nginx-light)"; exit 0; }
done
[ -x "$server" ] || { note "bench_http: skipped: $server not built"; exit 0; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	server {
		listen 127.0.0.1:18081;
		location /plaintext { default_type text/plain; return 200 "Hello, World!"; }
	}
}
CONF
cat >"$tmp/pipeline.lua" <<'LUA'
init = function(args)
	local r = {}
	for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
	req = table.concat(r)
end
request = function() return req end
LUA
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# one_run NAME PID URL [LUA]: prints "rps cpu_us_per_request"
one_run() {
	local t0 t1 out req rps
	t0=$(ticks "$2")
	out=$(taskset -c 0 wrk -t1 -c100 -d4s ${4:+-s "$4"} "$3" 2>&1)
	t1=$(ticks "$2")
	req=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	[ -n "$req" ] && [ "$req" -gt 0 ] || { echo "0 0"; return; }
	echo "$rps $(awk -v a="$t0" -v b="$t1" -v n="$req" -v hz="$hz" 'BEGIN {printf "%.3f", (b - a) * 1e6 / hz / n}')"
}
taskset -c 1 "$server" --port 18080 --workers 1 >"$tmp/rotor.out" 2>&1 &
rpid=$!
taskset -c 1 nginx -c "$tmp/nginx.conf" 2>/dev/null &
sleep 1
npid=$(pgrep -P "$(cat "$tmp/nginx.pid" 2>/dev/null || echo 0)" | head -1)
[ -n "$npid" ] || { note "bench_http: skipped: nginx did not start"; exit 0; }
nver=$(nginx -v 2>&1 | sed 's/.*nginx\///')
declare -A v
for load in keepalive pipelined; do
	lua=
	[ $load = pipelined ] && lua=$tmp/pipeline.lua
	for ((i = 1; i <= reps; i++)); do
		read -r rr rc <<<"$(one_run rotor $rpid http://127.0.0.1:18080/plaintext $lua)"
		read -r nr nc <<<"$(one_run nginx $npid http://127.0.0.1:18081/plaintext $lua)"
		v[$load.rotor.rps]+="$rr "
		v[$load.rotor.cpu]+="$rc "
		v[$load.nginx.rps]+="$nr "
		v[$load.nginx.cpu]+="$nc "
		note "  $load rep $i: rotor $rr req/s ${rc} us CPU/req; nginx $nr req/s ${nc} us CPU/req"
	done
done
stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)], a[1], a[NR], NR}'; }
emit() { # metric unit rotor-values nginx-values
	local r rl rh rn n nl nh nn
	read -r r rl rh rn <<<"$(echo "$3" | stats)"
	read -r n nl nh nn <<<"$(echo "$4" | stats)"
	if [ $json = 1 ]; then
		awk -v m="$1" -v u="$2" -v r="$r" -v rl="$rl" -v rh="$rh" -v rn="$rn" \
			-v n="$n" -v nl="$nl" -v nh="$nh" -v nn="$nn" 'BEGIN {
			printf "{\"bench\":\"http\",\"metric\":\"%s\",\"unit\":\"%s\",\"value\":%s,\"min\":%s,\"max\":%s,\"reps\":%d,\"baseline\":\"nginx\",\"baseline_value\":%s,\"baseline_min\":%s,\"baseline_max\":%s,\"baseline_reps\":%d,\"ratio\":%.4f}\n", m, u, r, rl, rh, rn, n, nl, nh, nn, (n > 0 ? r / n : 0) }'
	else
		printf '  %-28s rotor %10s [%s..%s]  nginx %10s [%s..%s]  (%s)\n' "$1" "$r" "$rl" "$rh" "$n" "$nl" "$nh" "$2"
	fi
}
note "bench_http: nginx $nver; pinned placement (wrk CPU 0, server CPU 1), 100 connections, 4 s per run"
emit plaintext_cpu_per_req us "${v[keepalive.rotor.cpu]}" "${v[keepalive.nginx.cpu]}"
emit plaintext_rps req/s "${v[keepalive.rotor.rps]}" "${v[keepalive.nginx.rps]}"
emit pipelined16_cpu_per_req us "${v[pipelined.rotor.cpu]}" "${v[pipelined.nginx.cpu]}"
emit pipelined16_rps req/s "${v[pipelined.rotor.rps]}" "${v[pipelined.nginx.rps]}"
kill -TERM $rpid
kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
wait 2>/dev/null
exit 0
