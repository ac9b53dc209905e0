#!/usr/bin/env bash
# Build a libFuzzer target of tests/fuzz (+ASan, UBSan) with the HTTP framing module's source
# (lib/service/http_parse.c: pure functions, so no librotor is needed) and run it on its corpus
# for SECONDS (default 20). TARGET: fuzz_http (requests, corpus_http) or fuzz_http_response
# (responses, corpus_http_response); without one, both, SECONDS split between them. Exit 77
# (CTest: skipped) without clang's fuzzer runtime. Usage: run_fuzz.sh BUILD_DIR [SECONDS [TARGET]]
set -eu
build=$1 # a failing input is written here (TARGET-crash-...); the targets need no librotor
secs=${2:-20}
targets=${3:-"fuzz_http fuzz_http_response"}
src=$(cd "$(dirname "$0")/../.." && pwd)
clang=$(command -v clang || true)
[ -n "$clang" ] || { echo "skipped: needs clang (libFuzzer)"; exit 77; }
[ -d "$build" ] || { echo "no build directory $build"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=$(wc -w <<<"$targets")
per=$(( secs / n > 0 ? secs / n : 1 ))
for t in $targets; do
	case $t in
	fuzz_http) corpus=corpus_http ;;
	fuzz_http_response) corpus=corpus_http_response ;;
	*) echo "unknown target $t"; exit 1 ;;
	esac
	if ! "$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -I"$src/lib/service" "$src/tests/fuzz/$t.c" \
		"$src/lib/service/http_parse.c" -o "$out/$t" 2>"$out/build.log"; then
		if grep -q "fuzzer" "$out/build.log"; then
			echo "skipped: clang has no libFuzzer runtime"; cat "$out/build.log"; exit 77
		fi
		cat "$out/build.log"; exit 1
	fi
	mkdir -p "$out/$corpus"
	cp "$src/tests/fuzz/$corpus"/* "$out/$corpus/"
	echo "== $t: $per s on $corpus"
	# A failed check traps: libFuzzer then exits non-zero and set -e fails the test.
	"$out/$t" -max_total_time="$per" -print_final_stats=1 -artifact_prefix="$build/$t-" \
		"$out/$corpus" >"$out/$t.log" 2>&1 ||
		{ tail -40 "$out/$t.log"; exit 1; }
	tail -12 "$out/$t.log"
done
