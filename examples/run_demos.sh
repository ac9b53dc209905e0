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
  rc=0; demo seed003_loop_thread --scale "$scale" --redis-port "$rport" || rc=$?
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  [ "$rc" = 0 ] || exit "$rc"
else
  echo "== seed003_loop_thread: skipped (needs redis-server)"
fi
demo seed004_loop_api --scale "$scale"
echo "== all seed scenarios held their invariants"
