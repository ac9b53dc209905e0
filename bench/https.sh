#!/usr/bin/env bash
# bench_https: HTTPS, rotor's examples/http_server --tls-cert/--tls-key against nginx with the
# same ECDSA P-256 certificate and the same suites (TLS 1.3 TLS_AES_128_GCM_SHA256; TLS 1.2
# ECDHE-ECDSA-AES128-GCM-SHA256, both servers preferring AES-128-GCM), over loopback. Server
# CPU is user+sys of the server (every thread and process) from /proc over each run.
#   keep-alive  GET /plaintext over 100 keep-alive TLS connections, wrk: requests/s and server
#               CPU per request (us), "pinned" (wrk -t1 on the first allowed CPU, one-worker
#               servers on the second) and "shared" (wrk -t2 on both, two-worker servers)
#   handshakes  full handshakes (no resumption), openssl s_time -new, pinned: handshakes/s
#               and handshakes per server CPU-second (target: >= 1.0x nginx)
#   file        a 1 GiB file over one HTTPS connection, curl, pinned: MB/s and server CPU
#               per GiB (s)
# Each repetition runs rotor then nginx; every run is printed (this VM is bimodal, and other
# jobs may share its two CPUs). Full runs only: --quick prints a note and exits.
#   bench_https [--json] [--quick] [--reps N] [--seconds S]
set -u
json=0 quick=0 reps=3 seconds=3 peers='' bench=bench_https
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_options "$@"
if [ $quick = 1 ]; then
	note "bench_https: skipped in --quick (needs wrk, nginx and openssl; full runs only)"
	exit 0
fi
rotor=$here/../examples/http_server
nginx=$(command -v nginx)
for t in wrk taskset openssl curl; do
	command -v $t >/dev/null || { note "bench_https: skipped: $t not installed"; exit 0; }
done
[ -x "$rotor" ] || { note "bench_https: skipped: $rotor not built"; exit 0; }
"$rotor" --tls-cert /nonexistent --tls-key /nonexistent 2>&1 | grep -q "without OpenSSL" &&
	{ note "bench_https: skipped: rotor built without OpenSSL"; exit 0; }
bench_cpus
servers=(rotor)
[ -n "$nginx" ] && servers+=(nginx) || note "bench_https: nginx baseline skipped: not installed"

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/www"
chmod 755 "$tmp" "$tmp/www" # nginx's workers run as another user
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" \
	-out "$tmp/cert.pem" -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-days 2 2>/dev/null || { note "bench_https: openssl could not make a certificate"; exit 1; }
# The 1 GiB file: in the page cache, so the disk is not measured.
head -c $((1 << 30)) /dev/zero >"$tmp/www/big.bin"
chmod 644 "$tmp/www/big.bin" "$tmp/cert.pem"
hz=$(getconf CLK_TCK)
declare -A pid port cpupids v
failed=0
answers() { curl -s -k -o /dev/null -w '%{http_code}' --max-time 2 "https://127.0.0.1:$1/plaintext" | grep -q 200; }
nginx_conf() { # WORKERS PORT
	cat <<CONF
worker_processes $1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	server {
		listen 127.0.0.1:$2 ssl reuseport;
		ssl_certificate $tmp/cert.pem;
		ssl_certificate_key $tmp/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384;
		ssl_prefer_server_ciphers on;
		ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384;
		location /plaintext { default_type text/plain; return 200 "Hello, World!"; }
		location /static/ { alias $tmp/www/; }
	}
}
CONF
}
launch() { # NAME WORKERS [CPU]
	local out=$tmp/$1.out k p='' cmd
	if [ "$1" = nginx ]; then
		p=$(free_port)
		nginx_conf "$2" "$p" >"$tmp/nginx.conf"
		cmd=("$nginx" -c "$tmp/nginx.conf")
	else
		cmd=("$rotor" --port 0 --workers "$2" --root "$tmp/www" --tls-cert "$tmp/cert.pem"
			--tls-key "$tmp/key.pem")
	fi
	${3:+taskset -c "$3"} "${cmd[@]}" >"$out" 2>&1 &
	pid[$1]=$!
	for ((k = 0; k < 100; k++)); do
		[ "$1" = nginx ] || p=$(sed -n 's/^listening on [^ ]*:\([0-9]*\).*/\1/p' "$out")
		[ -n "$p" ] && answers "$p" && break
		alive "${pid[$1]}" || break
		sleep 0.05
	done
	if ! alive "${pid[$1]}" || ! answers "${p:-0}"; then
		kill -TERM "${pid[$1]}" 2>/dev/null
		sleep 0.3
		kill -KILL "${pid[$1]}" 2>/dev/null
		wait "${pid[$1]}" 2>/dev/null
		pid[$1]=
		note "bench_https: $1 did not start: $(head -c 300 "$out" | tr '\n' ' ')"
		return 1
	fi
	port[$1]=$p
	cpupids[$1]=${pid[$1]}
	[ "$1" != nginx ] || nginx_workers "$1" "$2"
}

keepalive() { # NAME THREADS CPUS -> "rps cpu_us"
	local t0 t1 out req rps
	t0=$(ticks ${cpupids[$1]})
	out=$(taskset -c "$3" wrk -t"$2" -c100 -d"${seconds}s" "https://127.0.0.1:${port[$1]}/plaintext" 2>&1)
	t1=$(ticks ${cpupids[$1]})
	req=$(echo "$out" | awk '/requests in/ { print $1 }')
	rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
	echo "$out" | grep -qE 'Socket errors|Non-2xx' && echo "bench_https: $1: $(echo "$out" | grep -E 'Socket errors|Non-2xx')" >&2
	[ -n "$rps" ] && [ "${req:-0}" != 0 ] || { echo fail; return; }
	echo "$rps $(per_op "$t0" "$t1" "$req")"
}
handshakes() { # NAME CPU -> "per_s per_cpu_s"
	local t0 t1 out n real
	t0=$(ticks ${cpupids[$1]})
	out=$(taskset -c "$2" openssl s_time -connect "127.0.0.1:${port[$1]}" -new -time "$seconds" \
		-cipher ECDHE-ECDSA-AES128-GCM-SHA256 -ciphersuites TLS_AES_128_GCM_SHA256 2>&1)
	t1=$(ticks ${cpupids[$1]})
	read -r n real <<<"$(echo "$out" | sed -n 's/^\([0-9]*\) connections in \([0-9.]*\)s;.*/\1 \2/p' | head -1)"
	[ -n "$n" ] && [ "$n" != 0 ] || { echo "bench_https: $1 s_time: $(echo "$out" | tail -3 | tr '\n' ' ')" >&2; echo fail; return; }
	awk -v n="$n" -v r="$real" -v a="$t0" -v b="$t1" -v hz="$hz" \
		'BEGIN { c = (b - a) / hz; printf "%.1f %.1f\n", n / r, (c > 0 ? n / c : 0) }'
}
bigfile() { # NAME CPU -> "MB/s cpu_s_per_GiB"
	local t0 t1 out
	t0=$(ticks ${cpupids[$1]})
	out=$(taskset -c "$2" curl -s -k -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' \
		"https://127.0.0.1:${port[$1]}/static/big.bin")
	t1=$(ticks ${cpupids[$1]})
	read -r code size speed <<<"$out"
	[ "$code" = 200 ] && [ "$size" = $((1 << 30)) ] || { echo "bench_https: $1 file: $out" >&2; echo fail; return; }
	awk -v s="$speed" -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.1f %.3f\n", s / 1e6, (b - a) / hz }'
}

note "bench_https: $reps reps of $seconds s; nginx $(nginx -v 2>&1 | sed -n 's/.*nginx\///p'); $(openssl version); pinned: client on CPU $cpu_a, one-worker servers on CPU $cpu_b"
for where in pinned shared; do
	up=()
	for s in "${servers[@]}"; do
		if [ $where = pinned ]; then launch "$s" 1 "$cpu_b" && up+=("$s"); else launch "$s" 2 && up+=("$s"); fi
	done
	[ -n "${pid[rotor]:-}" ] || failed=1
	if [ $where = pinned ]; then th=1 cpus=$cpu_a sfx=; else th=2 cpus=$cpu_a,$cpu_b sfx=_shared; fi
	for ((i = 1; i <= reps; i++)); do
		line="  keep-alive c100 $where rep $i:"
		for s in "${up[@]}"; do
			read -r a b <<<"$(keepalive "$s" $th "$cpus")"
			[ "$a" = fail ] && { line+=" $s FAILED;"; [ $s = rotor ] && failed=1; continue; }
			v[ka$sfx.$s.rps]+="$a " v[ka$sfx.$s.cpu]+="$b "
			line+=" $s $a req/s $b us CPU/req;"
		done
		note "${line%;}"
	done
	if [ $where = pinned ]; then
		for ((i = 1; i <= reps; i++)); do
			line="  handshakes rep $i:"
			for s in "${up[@]}"; do
				read -r a b <<<"$(handshakes "$s" "$cpu_a")"
				[ "$a" = fail ] && { line+=" $s FAILED;"; [ $s = rotor ] && failed=1; continue; }
				v[hs.$s.rate]+="$a " v[hs.$s.percpu]+="$b "
				line+=" $s $a/s $b per server CPU-s;"
			done
			note "${line%;}"
		done
		for ((i = 1; i <= reps; i++)); do
			line="  1 GiB file rep $i:"
			for s in "${up[@]}"; do
				read -r a b <<<"$(bigfile "$s" "$cpu_a")"
				[ "$a" = fail ] && { line+=" $s FAILED;"; [ $s = rotor ] && failed=1; continue; }
				v[file.$s.mbs]+="$a " v[file.$s.cpu]+="$b "
				line+=" $s $a MB/s $b s CPU/GiB;"
			done
			note "${line%;}"
		done
	fi
	for s in "${servers[@]}"; do stop "$s"; done
done

emit() { # METRIC UNIT KEY KIND
	local r rl rh rn n nl nh nn
	read -r r rl rh rn <<<"$(echo "${v[$3.rotor.$4]:-}" | stats)"
	[ -n "$r" ] || return
	n="" nl="" nh="" nn=0
	read -r n nl nh nn <<<"$(echo "${v[$3.nginx.$4]:-}" | stats)"
	if [ $json = 1 ]; then
		json_line "$1" "$2" "$r $rl $rh $rn" nginx "$n $nl $nh $nn"
	else
		printf '  %-34s %-8s rotor %10s [%s..%s]  nginx %10s [%s..%s]  ratio %s\n' "$1" "$2" \
			"$r" "$rl" "$rh" "${n:-n/a}" "${nl:-}" "${nh:-}" "$(ratio "$r" "${n:-0}")"
	fi
}
note "bench_https: medians [min..max], ratio rotor/nginx"
emit https_c100_cpu_per_req us ka cpu
emit https_c100_rps req/s ka rps
emit https_c100_cpu_per_req_shared us ka_shared cpu
emit https_c100_rps_shared req/s ka_shared rps
emit https_handshakes_per_cpu_s 1/s hs percpu
emit https_handshakes_rps 1/s hs rate
emit https_file_1gib_cpu s file cpu
emit https_file_1gib_mbs MB/s file mbs
exit $failed
