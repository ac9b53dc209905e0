#!/usr/bin/env bash
# Valgrind memcheck over rotor's tests (docs/testing.md, "Valgrind memcheck").
#
#   tests/valgrind.sh [--build DIR] [--timeout SECONDS] [--keep-logs DIR] [TEST[:FILTER]...]
#
# Builds (or reuses) a Debug build in DIR (default build-valgrind), runs each test program
# under memcheck with every child it forks or execs, one test at a time, each bounded by
# --timeout (default 600 s), and prints one line per test: seconds, memcheck errors, bytes
# definitely/indirectly/possibly lost. Exits 0 when every test passed with no report, 1 when
# a test failed or memcheck reported anything, 2 when a test timed out, 3 when this valgrind
# cannot run rotor at all (the preflight below). TEST names a CTest test (test_task,
# stress, ...); TEST:FILTER passes a Criterion --filter (e.g. 'test_task:task/*join*').
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-valgrind
limit=600
logs=
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$(realpath -m "$2"); shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    --keep-logs) logs=$(realpath -m "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "valgrind.sh: unknown option $1" >&2; exit 2 ;;
    *) only+=("$1"); shift ;;
  esac
done

command -v valgrind >/dev/null || { echo "valgrind.sh: needs valgrind (apt-get install valgrind)" >&2; exit 3; }

# Debug: asserts on, -O0 frames for readable reports. Benchmarks are not tests.
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DROTOR_BENCH=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null

if [ -z "$logs" ]; then
  logs=$(mktemp -d /tmp/rotor-valgrind.XXXXXX)
fi
mkdir -p "$logs"

# --trace-children: test_examples, test_echo and test_http exec the example programs, which
# are checked too; a shell, curl or a compiler they start is not rotor code.
# --fair-sched=yes: valgrind runs one thread at a time; a ticket lock hands it round in
# order, so a worker that polls before sleeping cannot keep the lock from the thread that
# would give it work.
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=none
  --show-leak-kinds=definite,indirect,possible --track-origins=yes --num-callers=30
  --trace-children=yes --trace-children-skip='*/sh,*/bash,*/dash,*/curl,*/cc,*/gcc,*/env'
  --fair-sched=yes --child-silent-after-fork=no)
if [ -f "$root/tests/valgrind.supp" ]; then
  vg+=(--suppressions="$root/tests/valgrind.supp")
fi

# Valgrind before 3.23 runs io_uring_enter holding the lock that lets one thread run at a
# time (valgrind bug 428364): a worker asleep in it stops the thread that would wake it.
# rotor sleeps in poll instead when it runs under valgrind (lib/core/ring.c); check that this
# build does, in a few seconds, before spending an hour on timeouts.
probe() {
  timeout -k 5 60 "${vg[@]}" --log-file="$logs/preflight.%p.log" \
    "$build/examples/seed001_event_loop" run --scale 0.02 >"$logs/preflight.out" 2>&1
}
if ! probe; then
  echo "valgrind.sh: a two-worker rotor program does not finish under $(valgrind --version)" >&2
  echo "  (a worker asleep in io_uring_enter holds valgrind's lock; needs valgrind >= 3.23," >&2
  echo "  or a lib/core/ring.c that sleeps in poll under valgrind; logs in $logs)" >&2
  exit 3
fi

# What runs, and what does not (each with the reason; nothing is left out silently):
#   Criterion tests (tests/test_*.c and tests/<layer>/test_*.c, all built into
#     BUILD/tests): every one, --jobs=1; Criterion forks a child per test, which valgrind
#     follows; the per-test Criterion timeout is the script's own.
#   stress, arch_switch: as CTest runs them. soak: 10 s instead of 60 (a random mix; under
#     memcheck a 60 s run adds nothing a 10 s one misses but the time).
#   Not run, not valgrind's business: packaging_* and arch_switch_aarch64 (compilers, qemu),
#     gdb_tasks (gdb drives the program through ptrace; valgrind's gdbserver is another
#     debugger), fuzz_http (libFuzzer instruments the binary itself).
#   Single Criterion tests left out (a Criterion filter; a TEST:FILTER argument replaces it),
#   each for a reason that is valgrind's slowdown (20 to 50 times), not rotor:
declare -A skip=(
  # asserts that five loops of 0.6 s finish within 2 s of wall time; and that a fifth of
  # 50,000 coroutines sleeping 0.5 s are asleep at once, i.e. spawned faster than they
  # sleep (under memcheck: 8,615 at most, 2026-11-22)
  [test_examples]='examples/@(five_loops_in_five_threads_run_concurrently|one_runtime_runs_tens_of_thousands_of_sleeping_coroutines)'
  # rely on sleeps of 5, 20, 40 and 100 ms ending in that order relative to the test's own
  # steps (which task ends first; a cancel arriving before a 100 ms sleep ends)
  [test_sync]='sync/@(wait_any_returns_the_first_task_to_end|cancelled_wait_any_leaves_the_tasks_joinable)'
  # spawn 1000 sleepers (or set 1000 timers) with deadlines 100 ms (50 ms) ahead, assuming
  # the loop ends first: under memcheck it does not, late ones start past their deadline
  [test_timer]='timer/@(a_thousand_deadlines_wake_in_order|a_thousand_call_laters_fire_in_order)'
)
declare -a tests=()
for exe in "$build"/tests/test_*; do
  [ -x "$exe" ] && [ -f "$exe" ] && tests+=("$(basename "$exe")")
done
tests+=(stress arch_switch soak)

want() {
  local t=$1 o
  [ ${#only[@]} -eq 0 ] && return 0
  for o in "${only[@]}"; do [ "${o%%:*}" = "$t" ] && return 0; done
  return 1
}
filter_of() {
  local o
  for o in "${only[@]}"; do
    if [ "${o%%:*}" = "$1" ] && [ "$o" != "${o#*:}" ]; then echo "${o#*:}"; return; fi
  done
}

command_of() {
  case "$1" in
    stress) echo "$build/tests/rotor_stress" ;;
    arch_switch) echo "$build/tests/arch_switch" ;;
    soak) echo "$build/tests/rotor_soak --seconds 10" ;;
    *)
      local f
      f=$(filter_of "$1")
      [ -z "$f" ] && [ -n "${skip[$1]:-}" ] && f="!(${skip[$1]})"
      echo "$build/tests/$1 --jobs=1 --timeout=$limit${f:+ --filter=$f}" ;;
  esac
}

# Leaks: "<kind> lost: N bytes" summed over the logs of processes that ended normally. A
# process killed by a signal (the stack-overflow death test's child aborts on purpose) had
# no chance to free anything; its errors other than leaks still count (ERROR SUMMARY, with
# leaks not counted as errors: --errors-for-leak-kinds=none).
bytes_lost() { # kind, logs...
  local kind=$1 f; shift
  for f in "$@"; do
    grep -q 'Process terminating with default action of signal' "$f" && continue
    cat "$f"
  done | sed -n "s/.*$kind lost: \([0-9,]*\) bytes.*/\1/p" | tr -d , |
    awk '{s += $1} END {print s + 0}'
}

for t in "${!skip[@]}"; do echo "valgrind.sh: not run: $t ${skip[$t]} (see the script)" >&2; done
printf '%-16s %8s %7s %8s %8s %8s  %s\n' test seconds errors definite indirect possible result
status=0
for t in "${tests[@]}"; do
  want "$t" || continue
  cmd=$(command_of "$t")
  [ -x "${cmd%% *}" ] || { printf '%-16s %8s %7s %8s %8s %8s  %s\n' "$t" - - - - - "not built"; continue; }
  rm -f "$logs/$t".*.log
  start=$(date +%s.%N)
  rc=0
  # timeout signals its own process group: Criterion's forked children and the programs
  # they exec go too. KILL 20 s after TERM: valgrind may not take TERM while a thread sits
  # in a system call that it runs holding its lock.
  # shellcheck disable=SC2086
  (set -f; cd "$build/tests" && exec timeout -k 20 "$limit" "${vg[@]}" --log-file="$logs/$t.%p.log" \
    $cmd) >"$logs/$t.out" 2>&1 || rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
  shopt -s nullglob
  files=("$logs/$t".*.log)
  shopt -u nullglob
  errors=$(cat "${files[@]}" /dev/null | sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' |
    tr -d , | awk '{s += $1} END {print s + 0}')
  def=$(bytes_lost definitely "${files[@]}")
  ind=$(bytes_lost indirectly "${files[@]}")
  pos=$(bytes_lost possibly "${files[@]}")
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    result="TIMEOUT after ${limit}s"
    [ "$status" = 0 ] && status=2
  elif [ "$errors" != 0 ] || [ "$def$ind$pos" != 000 ]; then
    result="REPORTS (exit $rc)"
    status=1
  elif [ "$rc" != 0 ]; then
    result="FAILED (exit $rc)"
    status=1
  else
    result=ok
  fi
  printf '%-16s %8s %7s %8s %8s %8s  %s\n' "$t" "$secs" "$errors" "$def" "$ind" "$pos" "$result"
done
echo "valgrind.sh: $(valgrind --version); logs in $logs" >&2
exit "$status"
