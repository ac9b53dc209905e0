#!/usr/bin/env bash
# Build tests/fuzz/fuzz_NAME.c (default http) with clang's libFuzzer (+ASan, UBSan) against a
# built librotor and run it on corpus_NAME for SECONDS (default 20). Exit 77 (CTest: skipped)
# without clang's fuzzer runtime. Usage: run_fuzz.sh BUILD_DIR [SECONDS] [NAME]
set -eu
build=$1
secs=${2:-20}
name=${3:-http}
src=$(cd "$(dirname "$0")/../.." && pwd)
clang=$(command -v clang || true)
[ -n "$clang" ] || { echo "skipped: needs clang (libFuzzer)"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! "$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -I"$src/include" "$src/tests/fuzz/fuzz_$name.c" -L"$build/lib" -lrotor \
	-Wl,-rpath,"$build/lib" -lpthread -luring -o "$out/fuzz_$name" 2>"$out/build.log"; then
	if grep -q "fuzzer" "$out/build.log"; then
		echo "skipped: clang has no libFuzzer runtime"; cat "$out/build.log"; exit 77
	fi
	cat "$out/build.log"; exit 1
fi
mkdir -p "$out/corpus"
cp "$src"/tests/fuzz/corpus_"$name"/* "$out/corpus/"
"$out/fuzz_$name" -max_total_time="$secs" -print_final_stats=1 "$out/corpus" 2>&1 | tail -20
