#!/usr/bin/env bash
# Runs every seed scenario once at a readable pace, after the benchmarks (tools/rotor bench).
#   bash examples/run_demos.sh BUILD_DIR [SCALE]
# Each program checks its own invariants; this script stops at the first that fails.
set -euo pipefail
dir=${1:?usage: run_demos.sh BUILD_DIR [SCALE]}
scale=${2:-0.2}
ex="$dir/examples"

demo() {
  echo "== $*"
  "$ex/$@" 2>&1 | awk 'NR <= 12 { print; next } { last = $0; n++ } END { if (n) print "   ... (" n " more lines)\n" last }'
  return "${PIPESTATUS[0]}"
}

demo seed000_submit_at_runtime --batches 3 --scale "$scale"
demo seed001_event_loop run --scale "$scale"
demo seed001_event_loop run_until_complete --scale "$scale"
demo seed001_event_loop loop_per_thread --scale "$scale"
demo seed001_event_loop callbacks --scale "$scale"
demo seed001_event_loop blocking --scale "$scale"
demo seed001_event_loop blocking_fixed --scale "$scale"
demo seed002_many_loops --loops 5 --scale "$scale"
demo seed002_many_loops --coroutines 1000000 --stack-size 16384 --sleep 2
# Seed 003 talks to Redis: a redis-server of its own on a free loopback port, stopped after.
if command -v redis-server >/dev/null; then
  rport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  rpid=$!
  for _ in $(seq 100); do redis-cli -p "$rport" PING >/dev/null 2>&1 && break; sleep 0.05; done
  # Its HTTPS half fetches a page from a local nginx with TLS (self-signed) when there is one.
  https=() npid=
  if command -v nginx >/dev/null && command -v openssl >/dev/null; then
    ndir=$(mktemp -d /tmp/rotor-demo-nginx-XXXXXX)
    nport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir "$ndir/www" "$ndir/tmp"
    head -c 20000 /dev/urandom | base64 >"$ndir/www/page.html"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ndir/key.pem" \
      -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 2 -out "$ndir/cert.pem" 2>/dev/null
    cat >"$ndir/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $ndir/nginx.pid; error_log $ndir/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $ndir/tmp; proxy_temp_path $ndir/tmp;
  fastcgi_temp_path $ndir/tmp; uwsgi_temp_path $ndir/tmp; scgi_temp_path $ndir/tmp;
  server { listen 127.0.0.1:$nport ssl; root $ndir/www;
    ssl_certificate $ndir/cert.pem; ssl_certificate_key $ndir/key.pem; } }
EOF
    nginx -p "$ndir" -c "$ndir/nginx.conf" >/dev/null 2>&1 &
    npid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.05; done
    https=(--https-url "https://127.0.0.1:$nport/page.html" --cacert "$ndir/cert.pem")
  else
    echo "== seed003_loop_thread: its HTTPS half is skipped (needs nginx and openssl)"
  fi
  rc=0; demo seed003_loop_thread --scale "$scale" --redis-port "$rport" "${https[@]}" || rc=$?
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  if [ -n "$npid" ]; then kill "$npid"; wait "$npid" 2>/dev/null || true; rm -rf "$ndir"; fi
  [ "$rc" = 0 ] || exit "$rc"
else
  echo "== seed003_loop_thread: skipped (needs redis-server)"
fi
demo seed004_loop_api --scale "$scale"
echo "== all seed scenarios held their invariants"
