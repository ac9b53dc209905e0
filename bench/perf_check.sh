#!/usr/bin/env bash
# tools/rotor-perf.sh on bench/prof_demo: the report must charge the demo's CPU to its tasks,
# by name where the USDT probes could be used, by body function where not.
#   perf_check.sh [--no-tracefs] BUILD_DIR
# --no-tracefs: the same in a private mount namespace where no tracefs is mounted, as on a
# machine where nothing has used tracing since boot; the probes must still name the tasks.
# Exit 77 (skipped) where perf is missing or may not sample here.
set -u
if [ "${1:-}" = --no-tracefs ]; then
	shift
	[ "$(id -u)" = 0 ] || {
		echo "skipped: --no-tracefs needs root (a private mount namespace)"
		exit 77
	}
	command -v unshare >/dev/null || {
		echo "skipped: no unshare(1)"
		exit 77
	}
	# Deepest mounts first: debugfs's tracing automount before what holds it.
	exec unshare -m bash -c 'for m in $(awk '\''$3 == "tracefs" { print $2 }'\'' /proc/mounts | sort -r); do
		umount "$m" || exit 1
	done
	exec env PERF_CHECK_NEED_NAMES=1 bash "$0" "$@"' "$0" "$@"
fi
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
command -v perf >/dev/null || {
	echo "skipped: perf not installed"
	exit 77
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! perf record -q -e cpu-clock -o "$out/probe.data" -- true >/dev/null 2>&1; then
	echo "skipped: perf may not record here (perf_event_paranoid, or a container without perf events)"
	exit 77
fi
report=$(bash "$root/tools/rotor-perf.sh" "$build" -o "$out" -- bench/prof_demo 500 2>&1)
rc=$?
printf '%s\n' "$report"
[ $rc -eq 0 ] || {
	echo "FAIL: rotor-perf.sh exit status $rc"
	exit 1
}
fail=0
expect() { # extended-regex what
	grep -qE "$1" <<<"$report" || {
		echo "FAIL: no $2 (/$1/)"
		fail=1
	}
}
expect '^  +[0-9]+ +[0-9.]+%  .* count_primes' "row for count_primes"
expect '^  +[0-9]+ +[0-9.]+%  .* hash_loop' "row for hash_loop"
if grep -q '^task names: from the task_spawn probe' <<<"$report"; then
	expect '%  primes-1, primes-2 +count_primes +2$' "primes-1 and primes-2 on count_primes"
	expect '%  hasher +hash_loop +1$' "hasher on hash_loop"
	expect '%  task-\* \(default names\) +tiny_job +[0-9]+$' "default-named tasks on tiny_job"
elif [ -n "${PERF_CHECK_NEED_NAMES:-}" ] && grep -q 'not recorded\|no rotor USDT' <<<"$report"; then
	echo "(no USDT here: checked body functions only)"
elif [ -n "${PERF_CHECK_NEED_NAMES:-}" ]; then
	echo "FAIL: no task names without a mounted tracefs"
	fail=1
else
	echo "(no USDT here: checked body functions only)"
fi
[ $fail -eq 0 ] && echo "PASS: the report charged the demo's CPU to its tasks"
exit $fail
