#!/usr/bin/env bash
# Packaging checks, one mode per CTest test (registered at the end of tests/CMakeLists.txt):
#
#   install       `cmake --install BUILD --prefix TMP` puts everything a user needs there:
#                 public headers (rotor.h and every rotor/<module>.h, each compiling
#                 against the installed tree alone), the library and its SONAME link,
#                 rotor.pc, the CMake package, every man page (and man(1) follows the .so
#                 stubs)
#   pkgconfig     the README's example, built outside the tree against that prefix with
#                 `pkg-config --cflags --libs rotor`, runs and prints what the README says
#   find_package  the same, built by a CMake project with find_package(rotor) and rotor::rotor
#   doc_programs  every complete program in README.md and docs/*.md (a ```c block that
#                 includes <rotor.h> or a <rotor/module.h> and defines main; other blocks
#                 are fragments) builds against the installed library and runs; a ```text
#                 block right after one is its expected output
#   headers_c     every public header compiles alone, twice included, as strict C11
#   headers_cxx   ... and as C++ (C++11 and the compiler's default), and links from C++
#   exports       the shared library exports exactly the ROTOR_API functions of include/,
#                 each versioned by lib/rotor.map, and nothing else
#
# Environment (set by CTest): ROTOR_BUILD, ROTOR_SRC, ROTOR_LIB (the built librotor.so),
# ROTOR_CC, ROTOR_CXX (may be empty), ROTOR_CMAKE. Exit 0 pass, 1 fail, 77 skipped (no
# io_uring here, or no C++ compiler).
set -euo pipefail
mode=${1:?usage: packaging.sh MODE}
: "${ROTOR_BUILD:?}" "${ROTOR_SRC:?}" "${ROTOR_LIB:?}" "${ROTOR_CC:?}"
cmake=${ROTOR_CMAKE:-cmake}
cxx=${ROTOR_CXX:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rotor-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

cache_var() {
	sed -n "s/^$1:[A-Z]*=//p" "$ROTOR_BUILD/CMakeCache.txt"
}

libdir=$(cache_var CMAKE_INSTALL_LIBDIR)
incdir=$(cache_var CMAKE_INSTALL_INCLUDEDIR)
mandir=$(cache_var CMAKE_INSTALL_MANDIR)
# GNUInstallDirs caches an empty MANDIR meaning DATAROOTDIR/man.
datarootdir=$(cache_var CMAKE_INSTALL_DATAROOTDIR)
mandir=${mandir:-${datarootdir:-share}/man}
prefix=$tmp/prefix

do_install() {
	"$cmake" --install "$ROTOR_BUILD" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
		{ cat "$tmp/install.log" >&2; fail "cmake --install $ROTOR_BUILD --prefix $prefix"; }
}

# Public headers, relative to include/: rotor.h, rotor/<area>.h ...
public_headers() {
	(cd "$ROTOR_SRC/include" && find . -name '*.h' | sed 's|^\./||' | sort)
}

# The ROTOR_API functions the headers declare (declarations start a line), sorted.
api_functions() {
	public_headers | while read -r h; do
		awk '/^ROTOR_API[[:space:]]/ { decl = 1; text = "" }
			decl { text = text " " $0; if (index($0, ";")) { decl = 0; print text } }' \
			"$ROTOR_SRC/include/$h" |
			sed -E 's/\(.*//; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*$/\1/'
	done | sort -u
}

# Fenced blocks of a markdown file: complete program N (1-based: a c block with
# #include <rotor.h> or <rotor/module.h>, and main) goes to
# DIR/N.c, and a ```text block that follows it (blank lines between allowed) to DIR/N.out.
extract_programs() {
	awk -v dir="$2" '
		function flush() {
			if (kind == "c" && body ~ /#include <rotor(\.h|\/[a-z_]+\.h)>/ && body ~ /int main\(/) {
				n++; printf "%s", body > (dir "/" n ".c"); close(dir "/" n ".c"); want = 1
			} else if (kind == "text" && want) {
				printf "%s", body > (dir "/" n ".out"); close(dir "/" n ".out"); want = 0
			} else {
				want = 0
			}
		}
		inblock && /^```[[:space:]]*$/ { inblock = 0; flush(); next }
		inblock { body = body $0 "\n"; next }
		/^```/ { inblock = 1; kind = substr($0, 4); sub(/[[:space:]]+$/, "", kind); body = ""; next }
		/^[[:space:]]*$/ { next }
		{ want = 0 }
	' "$1"
}

# Run a built program (bounded), compare with the expected output if there is one.
# Returns 77 when io_uring is not available to this process.
run_program() {
	local exe=$1 expect=${2:-} what=$3 rc=0
	timeout 60 "$exe" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" != 0 ]; then
		if grep -q "rotor: io_uring_setup" "$tmp/err"; then
			echo "SKIP: io_uring is not available here: $(cat "$tmp/err")" >&2
			return 77
		fi
		cat "$tmp/out" "$tmp/err" >&2
		fail "$what exited with $rc"
	fi
	if [ -n "$expect" ] && ! diff -u "$expect" "$tmp/out" >&2; then
		fail "$what printed something else than its documented output (diff above)"
	fi
	echo "ok: $what"
}

readme_program() {
	mkdir -p "$tmp/readme"
	extract_programs "$ROTOR_SRC/README.md" "$tmp/readme"
	[ -f "$tmp/readme/1.c" ] || fail "README.md has no complete C program (a \`\`\`c block with main)"
}

case "$mode" in
install)
	do_install
	for h in $(public_headers); do
		cmp -s "$ROTOR_SRC/include/$h" "$prefix/$incdir/$h" || fail "header $incdir/$h not installed"
	done
	installed=$(cd "$prefix/$incdir" && find . -type f | sed 's|^\./||' | sort)
	[ "$installed" = "$(public_headers)" ] ||
		fail "installed headers differ from include/: ${installed//$'\n'/ }"
	modules=$(grep -c '^rotor/' <<<"$installed" || true)
	[ "$modules" -gt 0 ] || fail "no module header (rotor/<module>.h) installed"
	# What a header includes of ours must be installed too: compile each against the prefix.
	for h in $installed; do
		printf '#include <%s>\n' "$h" | "$ROTOR_CC" -x c -std=c11 -I"$prefix/$incdir" \
			-fsyntax-only - || fail "installed $h does not compile against $prefix/$incdir alone"
	done
	soname=$(readelf -d "$ROTOR_LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ -n "$soname" ] || fail "librotor.so has no SONAME"
	for f in "$libdir/librotor.so" "$libdir/$soname" "$libdir/pkgconfig/rotor.pc" \
		"$libdir/cmake/rotor/rotorConfig.cmake" "$libdir/cmake/rotor/rotorConfigVersion.cmake" \
		"$libdir/cmake/rotor/rotorTargets.cmake" "$mandir/man7/rotor.7"; do
		[ -e "$prefix/$f" ] || fail "$f not installed"
	done
	n=0
	for page in "$ROTOR_SRC"/man/*.3; do
		cmp -s "$page" "$prefix/$mandir/man3/${page##*/}" || fail "man page ${page##*/} not installed"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fail "no man pages in man/"
	if command -v man >/dev/null; then
		# A .so stub must lead to its page once installed.
		MANWIDTH=80 man -M "$prefix/$mandir" 3 rotor_spawn_attr 2>/dev/null | grep -c 'rotor_spawn_attr' >/dev/null ||
			fail "man -M $prefix/$mandir 3 rotor_spawn_attr does not show the page"
	else
		echo "note: man(1) not installed; .so stubs not rendered"
	fi
	echo "ok: rotor.h and $modules module headers, librotor.so -> $soname, rotor.pc," \
		"CMake package, $n man pages + rotor(7)"
	;;
pkgconfig)
	do_install
	readme_program
	export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
	pc_prefix=$(pkg-config --variable=prefix rotor) || fail "pkg-config does not find rotor.pc in $PKG_CONFIG_PATH"
	if [ "$(realpath -m "$pc_prefix")" != "$(realpath -m "$prefix")" ]; then
		fail "rotor.pc installed under $prefix says prefix=$pc_prefix: cmake/rotor.pc.in" \
			"writes the configure-time CMAKE_INSTALL_PREFIX, so an install with" \
			"\`cmake --install --prefix\` (or DESTDIR relocation) yields a .pc pointing elsewhere;" \
			"derive prefix from \${pcfiledir} instead"
	fi
	libpath=$(pkg-config --variable=libdir rotor)
	# shellcheck disable=SC2046
	"$ROTOR_CC" -Wall -Wextra -Werror -o "$tmp/app" "$tmp/readme/1.c" \
		$(pkg-config --cflags --libs rotor) -Wl,-rpath,"$libpath" ||
		fail "the README example does not build with pkg-config"
	# grep -c reads everything: grep -q would exit early and, with pipefail, fail the pipe
	# whenever ldd is still writing (SIGPIPE).
	ldd "$tmp/app" | grep -c "$prefix/" >/dev/null || fail "the program did not link the installed librotor"
	run_program "$tmp/app" "$tmp/readme/1.out" "README example built with pkg-config"
	;;
find_package)
	do_install
	readme_program
	mkdir -p "$tmp/consumer"
	cp "$ROTOR_SRC/tests/packaging/consumer/CMakeLists.txt" "$tmp/consumer/"
	cp "$tmp/readme/1.c" "$tmp/consumer/app.c"
	"$cmake" -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
		-DCMAKE_C_COMPILER="$ROTOR_CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/configure.log" 2>&1 ||
		{ cat "$tmp/configure.log" >&2; fail "find_package(rotor) consumer does not configure"; }
	grep -q "rotor_DIR=$prefix/" "$tmp/configure.log" ||
		fail "find_package found another rotor: $(grep rotor_DIR "$tmp/configure.log")"
	"$cmake" --build "$tmp/consumer/build" >"$tmp/build.log" 2>&1 ||
		{ cat "$tmp/build.log" >&2; fail "find_package(rotor) consumer does not build"; }
	ldd "$tmp/consumer/build/app" | grep -c "$prefix/" >/dev/null ||
		fail "the program did not link the installed librotor"
	run_program "$tmp/consumer/build/app" "$tmp/readme/1.out" "README example built with find_package(rotor)"
	;;
doc_programs)
	do_install
	count=0
	for md in "$ROTOR_SRC/README.md" "$ROTOR_SRC"/docs/*.md; do
		[ -f "$md" ] || continue
		rel=${md#"$ROTOR_SRC"/}
		out=$tmp/progs/${rel//\//_}
		mkdir -p "$out"
		extract_programs "$md" "$out"
		for src in "$out"/*.c; do
			[ -f "$src" ] || continue
			n=$(basename "$src" .c)
			what="$rel, program $n"
			"$ROTOR_CC" -Wall -Wextra -Werror -o "$out/$n" "$src" -I"$prefix/$incdir" \
				-L"$prefix/$libdir" -lrotor -lpthread -Wl,-rpath,"$prefix/$libdir" ||
				fail "$what does not build"
			expect=""
			[ -f "$out/$n.out" ] && expect=$out/$n.out
			run_program "$out/$n" "$expect" "$what"
			count=$((count + 1))
		done
	done
	[ "$count" -gt 0 ] || fail "no complete program found in README.md or docs/"
	;;
headers_c | headers_cxx)
	if [ "$mode" = headers_c ]; then
		compilers=("$ROTOR_CC -x c -std=c11 -Wstrict-prototypes -Wmissing-prototypes")
	else
		if [ -z "$cxx" ]; then
			echo "SKIP: no C++ compiler found (install g++; tools/rotor deps does)" >&2
			exit 77
		fi
		compilers=("$cxx -x c++ -std=c++11" "$cxx -x c++")
	fi
	for h in $(public_headers); do
		for c in "${compilers[@]}"; do
			# shellcheck disable=SC2086
			printf '#include <%s>\n#include <%s>\n' "$h" "$h" |
				$c -pedantic-errors -Wall -Wextra -Werror -I"$ROTOR_SRC/include" -fsyntax-only - ||
				fail "$h does not compile on its own with: $c"
			echo "ok: $h alone, $c"
		done
	done
	if [ "$mode" = headers_cxx ] && [ -z "${ROTOR_SANITIZER:-}" ]; then
		# C++ callers link against the C symbols: the extern "C" block is right.
		printf '#include <rotor.h>\nint main() { return rotor_now() > 0 ? 0 : 1; }\n' >"$tmp/t.cc"
		$cxx -Wall -Wextra -Werror -I"$ROTOR_SRC/include" "$tmp/t.cc" -o "$tmp/t" \
			-L"$(dirname "$ROTOR_LIB")" -lrotor -Wl,-rpath,"$(dirname "$ROTOR_LIB")" ||
			fail "a C++ program calling rotor_now() does not link"
		"$tmp/t" || fail "a C++ program calling rotor_now() fails"
		echo "ok: C++ program links and runs"
	fi
	;;
exports)
	nm -D --defined-only "$ROTOR_LIB" >"$tmp/nm" || fail "nm -D --defined-only $ROTOR_LIB"
	bad=$(awk '$2 == "A" && $3 ~ /^ROTOR_[0-9.]+$/ { next }
		$2 != "T" || $3 !~ /^rotor_[a-z0-9][a-z0-9_]*@@ROTOR_[0-9.]+$/ { print }' "$tmp/nm")
	[ -z "$bad" ] || fail "exported besides versioned rotor_ functions:$(printf '\n%s' "$bad")"
	awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm" | sort >"$tmp/exported"
	api_functions >"$tmp/declared"
	if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
		cat "$tmp/diff" >&2
		fail "exported functions (+) differ from the ROTOR_API declarations of include/ (-)"
	fi
	echo "ok: $(wc -l <"$tmp/exported") functions, all versioned, nothing else exported"
	;;
*)
	fail "unknown mode $mode"
	;;
esac
