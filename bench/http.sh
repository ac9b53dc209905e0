#!/usr/bin/env bash
# bench_http: HTTP/1.1 plaintext (GET /plaintext, "Hello, World!"), rotor's examples/http_server
# against a plain epoll server in C (epoll_http, beside this script), nginx and Go net/http
# (peers/nethttp), loaded by wrk over loopback. Figures: server CPU per request (user+sys of
# the server, every thread and process, from /proc over the wrk run, divided by the requests
# wrk completed) and requests/s. Placements: "pinned" (wrk -t1 on the first allowed CPU, the
# one-worker server on the second: nginx worker_processes 1, Go GOMAXPROCS=1) and "shared"
# (wrk -t2 on both CPUs; two-worker servers left unpinned but for what they do themselves:
# rotor and epoll_http pin worker i to CPU i; nginx worker_processes 2, Go GOMAXPROCS=2).
# Loads: 100 and 400 keep-alive connections in both placements, and 100 connections with 16
# pipelined requests each (a wrk Lua script: processing cost alone) pinned. Servers start
# once per placement on free ports and stop with SIGTERM; each repetition runs rotor, epoll,
# nginx, go in turn, and every run is printed (this VM is bimodal). The shared placement also
# runs rotor --no-steer ("rotor-unsteered": connections spread by the kernel's hash instead of
# going to the worker on the CPU that handled their handshake), so that what steering buys
# and what the runtime does alone both show. The pinned placement also runs uring_floor
# ("uring-floor", beside this script): a raw liburing server with no runtime and no parser,
# the least CPU per request an io_uring server spends here; its own ratios to epoll and nginx
# are printed after the table.
# Metrics: <load>_c<conns>_cpu_per_req (us) and <load>_c<conns>_rps (req/s), load plaintext
# or pipelined16, with the suffix _shared in the shared placement (plaintext_c400_rps_shared);
# rotor's series once per baseline: epoll, nginx, go-nethttp (a missing one: "not measured"),
# uring-floor in the pinned placement and rotor-unsteered in the shared one.
# POST mode (--post, or run as bench_http_post, run.sh --only http_post): POST /post with a
# 4 KiB body (a wrk Lua script, Content-Length), 100 keep-alive connections, pinned and
# shared, rotor against epoll_http (which reads the body into its input buffer) and nginx
# (`return 200` in location /post: nginx reads the body off the socket and discards it, its
# client_body_buffer_size 16k so that a body would never go to a file); every server must
# answer 200 to the POST before it is measured and during every run (a non-2xx response makes
# the run a failure), else its row is not measured. Metrics post4k_c100_cpu_per_req and
# post4k_c100_rps, _shared in the shared placement.
# Full runs only: --quick prints a note and exits (CI has neither wrk nor nginx). A missing
# server is skipped with a message; exit status 1 when rotor did not start or one of its runs
# failed.
#   bench_http [--json] [--quick] [--reps N] [--seconds S] [--peers DIR] [--post]
set -u
json=0 quick=0 reps=5 seconds=3 peers='' post=0 bench=bench_http
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_options "$@"
[[ $0 != *bench_http_post && " ${bench_rest[*]} " != *" --post "* ]] || post=1
[ $post = 0 ] || bench=bench_http_post
if [ $quick = 1 ]; then
	note "$bench: skipped in --quick (needs wrk and nginx; full runs only)"
	exit 0
fi
[[ $reps =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ ]] ||
	{ note "$bench: --reps and --seconds take whole numbers from 1"; exit 2; }
peers=${peers:-$here/peers}
declare -A bin=([rotor]=$here/../examples/http_server [epoll]=$here/epoll_http
	[go]=$peers/nethttp [nginx]=$(command -v nginx) [floor]=$here/uring_floor)
declare -A baseline=([epoll]=epoll [nginx]=nginx [go]=go-nethttp [floor]=uring-floor
	[nosteer]=rotor-unsteered)
for t in wrk taskset; do
	command -v $t >/dev/null || { note "$bench: skipped: $t not installed (apt-get install wrk util-linux)"; exit 0; }
done
[ -x "${bin[rotor]}" ] || { note "$bench: skipped: ${bin[rotor]} not built"; exit 0; }
bench_cpus # wrk on cpu_a, the server on cpu_b
servers=(rotor)
# POST mode: against epoll_http and nginx only.
others=(epoll nginx go floor)
[ $post = 0 ] || others=(epoll nginx)
declare -A why=([epoll]="${bin[epoll]} not built" [nginx]="nginx not installed (apt-get install nginx-light)"
	[go]="${bin[go]} not built (run.sh builds the Go peers)" [floor]="${bin[floor]} not built")
for s in "${others[@]}"; do
	if [ -n "${bin[$s]}" ] && [ -x "${bin[$s]}" ]; then
		servers+=("$s")
	else
		note "$bench: ${baseline[$s]} baseline skipped: ${why[$s]}"
	fi
done
# placement conns lua-or-"-" metric-name
configs=("pinned 100 - plaintext_c100" "pinned 400 - plaintext_c400"
	"pinned 100 pipeline pipelined16_c100"
	"shared 100 - plaintext_c100_shared" "shared 400 - plaintext_c400_shared")
# The two shared configurations run rotor-unsteered and not uring-floor (one worker only).
runs=$((reps * (${#configs[@]} * ${#servers[@]} + 2)))
[ -z "${bin[floor]}" ] || [ ! -x "${bin[floor]}" ] || runs=$((runs - 2 * reps))
path=/plaintext
if [ $post = 1 ]; then
	configs=("pinned 100 post post4k_c100" "shared 100 post post4k_c100_shared")
	runs=$((reps * ${#configs[@]} * ${#servers[@]}))
	path=/post
fi
# Each run costs its seconds plus about 0.15 s (wrk start and exit, /proc reads); each
# placement about 1.5 s to start and stop the servers.
estimate=$(awk -v r=$runs -v s="$seconds" 'BEGIN { t = r * (s + 0.15) + 3; printf "%dm%02ds", t / 60, t % 60 }')
note "$bench: about $estimate: $runs runs of $seconds s (servers: ${servers[*]}; pinned: wrk -t1 on CPU $cpu_a, one-worker servers on CPU $cpu_b; shared: wrk -t2 on CPUs $cpu_a,$cpu_b, two-worker servers)"

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
cat >"$tmp/pipeline.lua" <<'LUA'
init = function(args)
	local r = {}
	for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
	req = table.concat(r)
end
request = function() return req end
LUA
# 4096 bytes of body; wrk.format adds its Content-Length.
cat >"$tmp/post.lua" <<'LUA'
init = function(args)
	req = wrk.format("POST", "/post", { ["Content-Type"] = "application/octet-stream" },
		string.rep("x", 4096))
end
request = function() return req end
LUA
declare -A pid port cpupids v
failed=0

# answers PORT: GET /plaintext gets a 200 (POST mode: POST /post with a 4 KiB body does).
answers() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		if [ $post = 1 ]; then
			printf 'POST /post HTTP/1.1\r\nHost: bench\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n%s' \
				"$(head -c 4096 /dev/zero | tr '\0' x)" >&3
		else
			printf 'GET /plaintext HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3
		fi
		read -r -t 2 line <&3
		[[ $line == "HTTP/1.1 200"* ]]
	) 2>/dev/null
}
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
		listen 127.0.0.1:$2 reuseport;
		location /plaintext { default_type text/plain; return 200 "Hello, World!"; }
		# return discards the body: nginx reads it off the socket, as it must to keep the
		# connection; a buffer larger than the body keeps it off disk if it were read.
		location = /post {
			client_body_buffer_size 16k;
			default_type text/plain;
			return 200 "received 4096 bytes\n";
		}
	}
}
CONF
}

# launch NAME WORKERS [CPU]: starts a server, waits until it answers; sets pid, port, cpupids.
launch() {
	local out=$tmp/$1.out k p='' cmd
	case $1 in
	nginx)
		p=$(free_port)
		nginx_conf "$2" "$p" >"$tmp/nginx.conf"
		cmd=("${bin[nginx]}" -c "$tmp/nginx.conf")
		;;
	go) cmd=("${bin[go]}" -port 0 -procs "$2") ;;
	nosteer) cmd=("${bin[rotor]}" --port 0 --workers "$2" --no-steer) ;;
	*) cmd=("${bin[$1]}" --port 0 --workers "$2") ;;
	esac
	${3:+taskset -c "$3"} "${cmd[@]}" >"$out" 2>&1 &
	pid[$1]=$!
	for ((k = 0; k < 100; k++)); do
		[ "$1" = nginx ] || p=$(sed -n 's/^listening on [^ ]*:\([0-9]*\).*/\1/p' "$out")
		[ -n "$p" ] && answers "$p" && break
		alive "${pid[$1]}" || break
		grep -q 'Address already in use' "$out" && break
		sleep 0.05
	done
	if ! alive "${pid[$1]}" || ! answers "${p:-0}"; then
		# SIGTERM first: an nginx master killed outright would leave its workers behind.
		kill -TERM "${pid[$1]}" 2>/dev/null
		for ((k = 0; k < 20; k++)); do
			alive "${pid[$1]}" || break
			sleep 0.05
		done
		kill -KILL "${pid[$1]}" 2>/dev/null
		wait "${pid[$1]}" 2>/dev/null
		pid[$1]=
		return 1
	fi
	port[$1]=$p
	cpupids[$1]=${pid[$1]}
	# nginx: the master and all its worker processes.
	[ "$1" != nginx ] || nginx_workers "$1" "$2"
	return 0
}

# start NAME WORKERS [CPU]: launch; nginx gets three tries, each on another port.
start() {
	local _
	for _ in 1 2 3; do
		launch "$@" && return 0
		[ "$1" = nginx ] || break
	done
	local what="did not start"
	[ $post = 0 ] || what="did not start or did not answer POST /post with 200"
	note "$bench: $1 $what: $(head -c 300 "$tmp/$1.out" | tr '\n' ' ')"
	return 1
}

# one_run NAME CONNS THREADS CPUS [LUA]: prints "rps cpu_us_per_request", or "fail".
one_run() {
	local t0 t1 out rc req rps errs
	# shellcheck disable=SC2086 # cpupids is a list
	t0=$(ticks ${cpupids[$1]})
	out=$(taskset -c "$4" wrk -t"$3" -c"$2" -d"${seconds}s" ${5:+-s "$5"} \
		"http://127.0.0.1:${port[$1]}$path" 2>&1)
	rc=$?
	# shellcheck disable=SC2086
	t1=$(ticks ${cpupids[$1]})
	req=$(echo "$out" | awk '/requests in/ { print $1 }')
	rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
	errs=$(echo "$out" | grep -E 'Socket errors|Non-2xx' | tr -s ' \n' ' ')
	if [ $rc != 0 ] || [ -z "$rps" ] || [ -z "$t0" ] || [ -z "$t1" ] || [ "${req:-0}" = 0 ]; then
		echo "$bench: $1 run failed (status $rc): $(echo "$out" | tr '\n' ' ' | head -c 300)" >&2
		echo fail
		return
	fi
	[ -z "$errs" ] || echo "$bench: $1, $2 connections: wrk reports$errs" >&2
	# POST: a run where a request was not answered 200 measured something else.
	if [ $post = 1 ] && [[ $errs == *Non-2xx* ]]; then
		echo "$bench: $1 run failed: not every POST was answered 200" >&2
		echo fail
		return
	fi
	echo "$rps $(per_op "$t0" "$t1" "$req")"
}

placement=
for c in "${configs[@]}"; do
	read -r where conns lua key <<<"$c"
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
		# Steering needs several workers: the shared placement only (not in POST mode).
		[ "$where" = pinned ] || [ $post = 1 ] || { start nosteer 2 && up+=(nosteer); }
		[ -n "${pid[rotor]:-}" ] || failed=1
	fi
	if [ "$where" = pinned ]; then threads=1 wcpus=$cpu_a; else threads=2 wcpus=$cpu_a,$cpu_b; fi
	if [ "$lua" = - ]; then lua=''; else lua=$tmp/$lua.lua; fi
	for ((i = 1; i <= reps; i++)); do
		line="  $key rep $i:"
		for s in "${up[@]}"; do
			read -r rps cpu <<<"$(one_run "$s" "$conns" "$threads" "$wcpus" ${lua:+"$lua"})"
			if [ "$rps" = fail ]; then
				line+=" ${baseline[$s]:-$s} FAILED;"
				[ "$s" = rotor ] && failed=1
				continue
			fi
			v[$key.$s.rps]+="$rps "
			v[$key.$s.cpu]+="$cpu "
			line+=" ${baseline[$s]:-$s} $rps req/s $cpu us CPU/req;"
		done
		note "${line%;}"
	done
done
for s in "${servers[@]}" nosteer; do stop "$s"; done

# emit METRIC UNIT KEY KIND: rotor's series against each baseline, one JSON line each.
emit() {
	local r rl rh rn s n nl nh nn
	read -r r rl rh rn <<<"$(echo "${v[$3.rotor.$4]:-}" | stats)"
	[ -n "$r" ] || return
	[ $json = 1 ] || printf '  %-34s %-5s rotor      %10s [%s..%s]\n' "$1" "$2" "$r" "$rl" "$rh"
	for s in "${others[@]}" nosteer; do
		[[ $s != @(floor|nosteer) ]] || [ -n "${v[$3.$s.$4]:-}" ] || continue
		n="" nl="" nh="" nn=0
		read -r n nl nh nn <<<"$(echo "${v[$3.$s.$4]:-}" | stats)"
		if [ $json = 1 ]; then
			json_line "$1" "$2" "$r $rl $rh $rn" "${baseline[$s]}" "$n $nl $nh $nn"
		elif [ -n "$n" ]; then
			printf '  %-40s %-10s %10s [%s..%s]  ratio %s\n' "" "${baseline[$s]}" "$n" "$nl" "$nh" \
				"$(ratio "$r" "$n")"
		else
			printf '  %-40s %-10s not measured\n' "" "${baseline[$s]}"
		fi
	done
}
nver=$(nginx -v 2>&1 | sed -n 's/.*nginx\///p')
note "$bench: nginx ${nver:-not installed}; $seconds s per run; medians [min..max], ratio rotor/baseline"
for c in "${configs[@]}"; do
	read -r _ _ _ key <<<"$c"
	metric=${key%_shared}
	suffix=${key#"$metric"}
	emit "${metric}_cpu_per_req$suffix" us "$key" cpu
	emit "${metric}_rps$suffix" req/s "$key" rps
done
# The floor against the baselines: how far below them an io_uring server can go at all.
for c in "${configs[@]}"; do
	read -r where _ _ key <<<"$c"
	[ "$where" = pinned ] && [ -n "${v[$key.floor.cpu]:-}" ] || continue
	read -r f _ <<<"$(echo "${v[$key.floor.cpu]}" | stats)"
	line="$bench: ${key}_cpu_per_req: uring-floor $f us"
	for s in epoll nginx; do
		[ -n "${v[$key.$s.cpu]:-}" ] || continue
		read -r n _ <<<"$(echo "${v[$key.$s.cpu]}" | stats)"
		line+=", $(awk -v f="$f" -v n="$n" 'BEGIN { printf "%.3f", f / n }') of $s's"
	done
	note "$line"
done
exit $failed
