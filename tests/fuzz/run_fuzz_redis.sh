#!/usr/bin/env bash
# Build tests/fuzz/fuzz_redis_reply.c (the Redis client's reply path: hiredis's reader with
# rotor's reply objects) with clang's libFuzzer (+ASan, UBSan) and run it on the corpus for
# SECONDS (default 20). Exit 77 (CTest: skipped) without clang's fuzzer runtime or hiredis.
# Usage: run_fuzz_redis.sh [SECONDS]
set -eu
secs=${1:-20}
src=$(cd "$(dirname "$0")/../.." && pwd)
clang=$(command -v clang || true)
[ -n "$clang" ] || { echo "skipped: needs clang (libFuzzer)"; exit 77; }
pkg-config --exists hiredis || { echo "skipped: needs libhiredis-dev"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2046
if ! "$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -I"$src/include" "$src/tests/fuzz/fuzz_redis_reply.c" \
	$(pkg-config --cflags --libs hiredis) -o "$out/fuzz_redis_reply" 2>"$out/build.log"; then
	if grep -q "fuzzer" "$out/build.log"; then
		echo "skipped: clang has no libFuzzer runtime"; cat "$out/build.log"; exit 77
	fi
	cat "$out/build.log"; exit 1
fi
mkdir -p "$out/corpus"
cp "$src"/tests/fuzz/corpus_redis/* "$out/corpus/"
# A failed check or a crash makes libFuzzer exit non-zero, which fails the test (the input
# is kept in the current directory as crash-*).
"$out/fuzz_redis_reply" -max_total_time="$secs" -print_final_stats=1 "$out/corpus" \
	>"$out/fuzz.log" 2>&1 || { tail -40 "$out/fuzz.log"; exit 1; }
tail -12 "$out/fuzz.log"
