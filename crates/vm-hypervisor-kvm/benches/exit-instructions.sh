#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Userspace instructions per KVM exit, ours (vm-hypervisor's Vcpu and an IoBus) against raw
# kvm-ioctls calling the same device, counted by callgrind inside the per-exit functions of the
# `exits` benchmark, all out of line, for the same tiny real-mode guests: `ours_exit` is
# `Vcpu::run_on` with the concrete `IoBus` (the gated path), `dyn_exit` is `Vcpu::run` through
# `&dyn DeviceBus` (reported), `raw_exit` is kvm-ioctls. Instruction counts are deterministic
# for one binary, whatever else the machine is doing, so the figures of two runs of one build agree and a regression past MAX_RATIO fails the script.
#
#   crates/vm-hypervisor-kvm/benches/exit-instructions.sh [N]     (N exits per path, default 20000)
#
# Needs /dev/kvm and valgrind (installed with apt-get when missing). Prints one line per path with the
# ratio and the heap allocations our exits made; exits 1 when a ratio exceeds MAX_RATIO
# (default 1.25, the goal of issue 18) or our exits allocated at all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
N="${1:-20000}"
MAX_RATIO="${MAX_RATIO:-1.25}"
[ -e /dev/kvm ] || { echo "SKIPPED: exit instructions: /dev/kvm is absent"; exit 0; }
if ! command -v valgrind >/dev/null; then
    # Debian's valgrind, as CI's other stages install what they need.
    echo "exit-instructions: installing valgrind (apt-get)"
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get install -y -q --no-install-recommends valgrind >/dev/null ||
        { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q --no-install-recommends valgrind >/dev/null; } ||
        { echo "exit-instructions: valgrind is not installed and apt-get could not install it" >&2; exit 2; }
fi
bin="$(cargo bench -p vm-hypervisor-kvm --bench exits --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)"
[ -x "$bin" ] || { echo "exit-instructions: the exits benchmark did not build" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
count() { # path function -> instructions per exit
    EXIT_INSTRUCTIONS="$1:$N" valgrind --tool=callgrind --callgrind-out-file="$out/$1.cg" \
        --toggle-collect="*$2*" "$bin" >"$out/$1.out" 2>"$out/$1.err" ||
        { cat "$out/$1.err" >&2; exit 2; }
    local total
    total="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$1.cg")"
    awk -v t="$total" -v n="$N" 'BEGIN { printf "%.1f", t / n }'
}
status=0
for kind in pio mmio; do
    ours="$(count "ours-$kind" ours_exit)"
    dyn="$(count "dyn-$kind" dyn_exit)"
    raw="$(count "raw-$kind" raw_exit)"
    allocs="$(sed -n 's/.* \([0-9]*\) heap allocations$/\1/p' "$out/ours-$kind.out")"
    [ -n "$allocs" ] || { echo "exit-instructions: no allocation count from the benchmark" >&2; exit 2; }
    ratio="$(awk -v a="$ours" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')"
    dyn_ratio="$(awk -v a="$dyn" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')"
    echo "$kind exit: vm-hypervisor run_on(&IoBus) $ours instructions, raw kvm-ioctls $raw, ratio ${ratio}x ($N exits each); heap allocations in ours: $allocs"
    echo "$kind exit: vm-hypervisor run(&dyn DeviceBus) $dyn instructions, ratio ${dyn_ratio}x (not gated)"
    if [ "$allocs" != 0 ]; then
        echo "exit-instructions: FAIL: $kind exits allocated $allocs times"
        status=1
    fi
    if awk -v r="$ratio" -v m="$MAX_RATIO" 'BEGIN { exit !(r > m) }'; then
        echo "exit-instructions: FAIL: $kind ratio ${ratio}x is above ${MAX_RATIO}x"
        status=1
    fi
done
exit "$status"
