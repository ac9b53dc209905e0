#!/usr/bin/env bash
# bench_http_client: HTTP/1.1 clients against the same local nginx (one worker process, pinned
# to the second allowed CPU; GET /plaintext, "Hello, World!"), 100 requests in flight over 100
# keep-alive connections, each client pinned to the first allowed CPU: rotor's
# rotor_http_client (http_client_load, one worker), Go's net/http client (peers/go/httpclient,
# GOMAXPROCS 1), Python's aiohttp (peers/aiohttp_client.py), libcurl's multi-socket API on
# epoll (load/curl_multi_load.c: the design rotor's client was chosen against) and wrk itself
# (-t1 -c100), the floor: a load generator that parses as little as a client can. Over http:// and https://
# (TLS 1.3 with TLS_AES_128_GCM_SHA256 for every client, nginx's certificate trusted as the
# CA by every client but wrk, which does not verify). Figures: client CPU per request (user+sys of the client process and its threads,
# from /proc/PID/stat of a shell that waited for it: cutime+cstime, divided by the requests
# the client completed) and requests/s. Each repetition runs the clients in turn (rotor, go,
# aiohttp, curl, wrk), every run is printed; medians [min..max] and ratios rotor/baseline follow.
# Metrics: <scheme>_c100_cpu_per_req (us) and <scheme>_c100_rps (req/s), scheme http or https,
# rotor's series once per baseline: go-nethttp-client, aiohttp-client, libcurl-multi-epoll,
# wrk (a missing one:
# "not measured"). Targets (issue #17): CPU per request <= 0.5x Go's and <= 1.3x wrk's over
# http, <= 0.5x Go's over https.
# Full runs only: --quick prints a note and exits. A missing client is skipped with a message;
# exit status 1 when nginx or rotor's client did not run.
#   bench_http_client [--json] [--quick] [--reps N] [--seconds S] [--peers DIR]
set -u
json=0 quick=0 reps=3 seconds=3 peers='' bench=bench_http_client
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_options "$@" # run.sh passes --instructions: not counted here
if [ $quick = 1 ]; then
	note "bench_http_client: skipped in --quick (needs nginx and wrk; full runs only)"
	exit 0
fi
[[ $reps =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ ]] ||
	{ note "bench_http_client: --reps and --seconds take whole numbers from 1"; exit 2; }
peers=${peers:-$here/peers}
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || echo python3)
nginx=$(command -v nginx)
for t in taskset openssl; do
	command -v $t >/dev/null || { note "bench_http_client: skipped: $t not installed"; exit 0; }
done
[ -n "$nginx" ] || { note "bench_http_client: skipped: nginx not installed (apt-get install nginx-light)"; exit 0; }
[ -x "$here/http_client_load" ] || { note "bench_http_client: skipped: $here/http_client_load not built"; exit 0; }
bench_cpus # the clients on cpu_a, nginx on cpu_b
declare -A baseline=([go]=go-nethttp-client [aiohttp]=aiohttp-client [wrk]=wrk [curl]=libcurl-multi-epoll)
clients=(rotor)
if [ -x "$peers/httpclient" ]; then clients+=(go); else
	note "bench_http_client: go-nethttp-client baseline skipped: $peers/httpclient not built (run.sh builds the Go peers)"; fi
if "$python" -c 'import aiohttp' 2>/dev/null; then clients+=(aiohttp); else
	note "bench_http_client: aiohttp-client baseline skipped: aiohttp not installed (apt-get install python3-aiohttp)"; fi
if [ -x "$here/curl_multi_load" ]; then clients+=(curl); else
	note "bench_http_client: libcurl-multi-epoll baseline skipped: $here/curl_multi_load not built (libcurl4-openssl-dev)"; fi
if command -v wrk >/dev/null; then clients+=(wrk); else
	note "bench_http_client: wrk baseline skipped: wrk not installed"; fi
runs=$((reps * 2 * ${#clients[@]}))
estimate=$(awk -v r=$runs -v s="$seconds" 'BEGIN { t = r * (s + 0.4) + 2; printf "%dm%02ds", t / 60, t % 60 }')
note "bench_http_client: about $estimate: $runs runs of $seconds s (clients: ${clients[*]} on CPU $cpu_a; nginx, one worker, on CPU $cpu_b)"

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" \
	-out "$tmp/cert.pem" -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-days 2 2>/dev/null || { note "bench_http_client: openssl could not make a certificate"; exit 1; }
chmod 644 "$tmp/cert.pem" "$tmp/key.pem"
hz=$(getconf CLK_TCK)
declare -A v

answers() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /plaintext HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3
		read -r -t 2 line <&3
		[[ $line == "HTTP/1.1 200"* ]]
	) 2>/dev/null
}

# nginx: one worker process on CPU b; three tries, each on other ports.
nginx_pid=
for _ in 1 2 3; do
	port=$(free_port)
	tport=$(free_port)
	cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	ssl_protocols TLSv1.3;
	# One suite for every client: Go prefers AES-128-GCM, OpenSSL's clients AES-256-GCM.
	ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
	server {
		listen 127.0.0.1:$port reuseport;
		listen 127.0.0.1:$tport ssl reuseport;
		ssl_certificate $tmp/cert.pem;
		ssl_certificate_key $tmp/key.pem;
		location /plaintext { default_type text/plain; return 200 "Hello, World!"; }
	}
}
CONF
	taskset -c "$cpu_b" "$nginx" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
	nginx_pid=$!
	for ((k = 0; k < 100; k++)); do
		answers "$port" && break
		kill -0 $nginx_pid 2>/dev/null || break
		sleep 0.05
	done
	answers "$port" && break
	kill -TERM $nginx_pid 2>/dev/null
	wait $nginx_pid 2>/dev/null
	nginx_pid=
done
[ -n "$nginx_pid" ] || { note "bench_http_client: nginx did not start: $(head -c 300 "$tmp/nginx-error.log")"; exit 1; }
# The worker process too (taskset on the master covers the workers it forks).

# one_run CLIENT SCHEME: prints "rps cpu_us_per_request", or "fail".
one_run() {
	local url cmd out st ticks req secs
	if [ "$2" = https ]; then url=https://127.0.0.1:$tport/plaintext; else url=http://127.0.0.1:$port/plaintext; fi
	case $1 in
	rotor) cmd=("$here/http_client_load" --url "$url" --conns 100 --seconds "$seconds" --ca "$tmp/cert.pem") ;;
	go) cmd=("$peers/httpclient" -url "$url" -conns 100 -seconds "$seconds" -ca "$tmp/cert.pem" -procs 1) ;;
	aiohttp) cmd=("$python" "$here/aiohttp_client.py" --url "$url" --conns 100 --seconds "$seconds" --ca "$tmp/cert.pem") ;;
	curl) cmd=("$here/curl_multi_load" --url "$url" --conns 100 --seconds "$seconds" --ca "$tmp/cert.pem") ;;
	wrk) cmd=(wrk -t1 -c100 -d"${seconds}s" "$url") ;;
	esac
	out=$tmp/$1.out
	# The shell waits for the client, then its own /proc/PID/stat holds the client's CPU
	# (cutime, cstime: fields 16 and 17) in clock ticks.
	st=$(taskset -c "$cpu_a" sh -c '"$@" >"$0" 2>&1; echo "rc $?"; cat /proc/$$/stat' "$out" "${cmd[@]}")
	ticks=$(echo "$st" | tail -1 | sed 's/.*) //' | awk '{ print $14 + $15 }')
	if [ "$1" = wrk ]; then
		req=$(awk '/requests in/ { print $1 }' "$out")
		secs=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' "$out")
		grep -qE 'Socket errors|Non-2xx' "$out" && echo "bench_http_client: wrk $2: $(grep -E 'Socket errors|Non-2xx' "$out")" >&2
	else
		read -r _ req _ secs _ errs _ <<<"$(grep '^requests' "$out")"
		[ "${errs:-0}" = 0 ] || echo "bench_http_client: $1 $2: $errs errors: $(grep -m1 'first error' "$out")" >&2
	fi
	if [ -z "${req:-}" ] || [ "${req:-0}" = 0 ] || [ -z "$ticks" ] || ! echo "$st" | grep -q '^rc 0'; then
		echo "bench_http_client: $1 $2 run failed: $(head -c 300 "$out" | tr '\n' ' ')" >&2
		echo fail
		return
	fi
	awk -v n="$req" -v s="$secs" -v t="$ticks" -v hz="$hz" \
		'BEGIN { printf "%.0f %.3f\n", n / s, t * 1e6 / hz / n }'
}

failed=0
for scheme in http https; do
	for ((i = 1; i <= reps; i++)); do
		line="  ${scheme}_c100 rep $i:"
		for c in "${clients[@]}"; do
			read -r rps cpu <<<"$(one_run "$c" "$scheme")"
			if [ "$rps" = fail ]; then
				line+=" ${baseline[$c]:-$c} FAILED;"
				[ "$c" = rotor ] && failed=1
				continue
			fi
			v[$scheme.$c.rps]+="$rps "
			v[$scheme.$c.cpu]+="$cpu "
			line+=" ${baseline[$c]:-$c} $rps req/s $cpu us CPU/req;"
		done
		note "${line%;}"
	done
done
kill -TERM $nginx_pid 2>/dev/null
wait $nginx_pid 2>/dev/null

# emit METRIC UNIT KEY KIND: rotor's series against each baseline, one JSON line each.
emit() {
	local r rl rh rn s n nl nh nn
	read -r r rl rh rn <<<"$(echo "${v[$3.rotor.$4]:-}" | stats)"
	[ -n "$r" ] || return
	[ $json = 1 ] || printf '  %-26s %-5s rotor              %10s [%s..%s]\n' "$1" "$2" "$r" "$rl" "$rh"
	for s in go aiohttp curl wrk; do
		n="" nl="" nh="" nn=0
		read -r n nl nh nn <<<"$(echo "${v[$3.$s.$4]:-}" | stats)"
		if [ $json = 1 ]; then
			json_line "$1" "$2" "$r $rl $rh $rn" "${baseline[$s]}" "$n $nl $nh $nn"
		elif [ -n "$n" ]; then
			printf '  %-32s %-18s %10s [%s..%s]  ratio %s\n' "" "${baseline[$s]}" "$n" "$nl" "$nh" \
				"$(ratio "$r" "$n")"
		else
			printf '  %-32s %-18s not measured\n' "" "${baseline[$s]}"
		fi
	done
}
nver=$(nginx -v 2>&1 | sed -n 's/.*nginx\///p')
note "bench_http_client: nginx $nver; $seconds s per run; medians [min..max], ratio rotor/baseline"
for scheme in http https; do
	emit "${scheme}_c100_cpu_per_req" us "$scheme" cpu
	emit "${scheme}_c100_rps" req/s "$scheme" rps
done
exit $failed
