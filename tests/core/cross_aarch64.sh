#!/usr/bin/env bash
# Build tests/core/arch_switch.c with lib/core/arch/switch_aarch64.S for aarch64 and run it under
# qemu-user. Exit 77 (CTest: skipped) when the cross compiler or qemu is missing.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
cc=$(command -v aarch64-linux-gnu-gcc || true)
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [ -z "$cc" ] || [ -z "$qemu" ]; then
	echo "skipped: needs aarch64-linux-gnu-gcc and qemu-aarch64 (gcc-aarch64-linux-gnu, qemu-user)"
	exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$cc" -O2 -static -Wall -Wextra -Werror -DROTOR_ASM_SWITCH=1 -I"$src/lib/core" -I"$src/include" \
	"$src/tests/core/arch_switch.c" "$src/lib/core/context.c" "$src/lib/core/arch/switch_aarch64.S" \
	-o "$out/arch_switch"
"$qemu" "$out/arch_switch"
