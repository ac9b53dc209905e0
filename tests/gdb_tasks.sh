#!/usr/bin/env bash
# tools/rotor-gdb.py against tests/gdb_tasks.c: gdb runs the program to the breakpoint where
# its tasks are asleep ("live"), lets it go on until a task aborts ("crashed"), and each time
# `rotor tasks` must list every task with its name, worker, state and a backtrace through its
# body function (suspended coroutines included).
#   gdb_tasks.sh PROGRAM HELPER
# Exit 77 (skipped) without gdb, or where this process may not trace its children.
set -u
prog=$(readlink -f "$1")
helper=$2
command -v gdb >/dev/null || {
	echo "skipped: gdb not installed"
	exit 77
}
out=$(timeout 180 gdb -batch -nx \
	-ex 'set pagination off' -ex 'set confirm off' -ex 'set print thread-events off' \
	-ex "source $helper" -ex 'break gdb_tasks_ready' -ex run \
	-ex 'echo ==live==\n' -ex 'rotor tasks' \
	-ex continue \
	-ex 'echo ==crashed==\n' -ex 'rotor tasks' -ex 'echo ==end==\n' \
	-ex kill --args "$prog" crash 2>&1)
printf '%s\n' "$out"
if grep -qE 'ptrace: Operation not permitted|Could not trace|not permitted' <<<"$out" &&
	! grep -q '==live==' <<<"$out"; then
	echo "skipped: this process may not trace its children"
	exit 77
fi

# The lines of one task's entry (its header and backtrace) in one section.
entry() { # section task-name-regex
	awk -v sec="==$1==" -v name="$2" '
		/^==[a-z]+==$/ { in_sec = ($0 == sec); next }
		!in_sec { next }
		/^    task / { on = ($0 ~ "\"" name "\"") }
		/^  worker / { on = 0 }
		on' <<<"$out"
}
fail=0
checked="live and crashed"
expect() { # section task-name-regex extended-regex what
	if ! entry "$1" "$2" | grep -cE "$3" >/dev/null; then
		echo "FAIL ($1): task \"$2\": no $4 (/$3/)"
		fail=1
	fi
}
for sec in live crashed; do
	expect $sec sleeper-0 'worker 0  WAITING  body nap' "header"
	expect $sec sleeper-0 '#0 +0x[0-9a-f]+ rotor__' "innermost frame in rotor"
	expect $sec sleeper-0 '#[0-9]+ +0x[0-9a-f]+ nap at .*gdb_tasks.c' "body frame"
	expect $sec sleeper-1 'worker 1  WAITING  body nap' "header"
	expect $sec sleeper-1 '#[0-9]+ +0x[0-9a-f]+ nap at .*gdb_tasks.c' "body frame"
	expect $sec deep-sleeper 'worker 1  WAITING  body deep_nap' "header"
	expect $sec deep-sleeper '#[0-9]+ +0x[0-9a-f]+ deep_nap' "body frame"
	[ "$(entry $sec deep-sleeper | grep -c ' nap_deeper')" -ge 4 ] || {
		echo "FAIL ($sec): deep-sleeper: fewer than 4 nap_deeper frames"
		fail=1
	}
	expect $sec 'task-[0-9]+' 'worker 0  WAITING  body nap' "default-named sleeper"
done
expect crashed crasher 'worker 1  RUNNING  body crash' "header"
expect crashed crasher '#[0-9]+ +0x[0-9a-f]+ crash_now' "crash_now frame"

# A core file the kernel wrote, where core_pattern is a plain file name (not a pipe to a
# crash collector) and cores may be written at all.
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)
dir=$(mktemp -d)
if [[ "$pattern" != "|"* ]] && [ -n "$pattern" ] && (ulimit -c unlimited) 2>/dev/null; then
	(cd "$dir" && ulimit -c unlimited && "$prog" crash >/dev/null 2>&1)
	core=$(find "$dir" -maxdepth 1 -name 'core*' | head -1)
	if [ -n "$core" ]; then
		out=$(printf '==core==\n'; gdb -batch -nx -ex "source $helper" -ex 'rotor tasks' "$prog" "$core" 2>&1)
		printf '%s\n' "$out" | sed -n '/^runtime/,$p'
		expect core deep-sleeper '#[0-9]+ +0x[0-9a-f]+ deep_nap' "body frame"
		expect core crasher '#[0-9]+ +0x[0-9a-f]+ crash_now' "crash_now frame"
		checked+=", and from a core file"
	else
		echo "core file check skipped: no core written (core_pattern '$pattern')"
	fi
else
	echo "core file check skipped: core_pattern '$pattern' or core size limit"
fi
rm -rf "$dir"
[ $fail -eq 0 ] && echo "PASS: rotor tasks listed every task, $checked"
exit $fail
