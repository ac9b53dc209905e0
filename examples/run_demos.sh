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
demo seed003_loop_thread --scale "$scale"
demo seed004_loop_api --scale "$scale"
echo "== all seed scenarios held their invariants"
