#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The project's single test command: every rust-vmm-ci check, then the Xen box (Xen under QEMU
# running the Xen crates' integration tests as root in a real dom0).
#
#   rust-vmm-ci/run-all.sh
#
# Every stage runs even when an earlier one failed, so that one run reports everything; the script
# prints each stage's time and a summary, and exits nonzero when any stage failed. The x86_64 and
# the aarch64 box stages run as two lanes side by side (RUN_ALL_SERIAL=1: one after the other).
# Run as root on Debian 12 x86_64 (the stages install the Debian packages they need).

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The same flags as the checks, so that the Xen box's host builds reuse their artifacts.
export RUSTFLAGS="${RUSTFLAGS:--D warnings}"

# name|command: the stages. Each installs the Debian packages it needs (apt-get) and
# downloads the rest into ~/.cache/xen-rust-vmm; nothing has to be installed beforehand.
# The privcmd IRQFD/IOEVENTFD kernel path runs on the aarch64 box, the one place where both work
# (an x86 PV dom0 cannot use IOEVENTFD); the x86_64 eventfd dom0 (`cargo xtask xen-box test
# --stack bookworm --dom0-kernel eventfd -p xen-bindings -p xen-ioreq`) is left out of CI so that
# a fresh machine builds one kernel, not two. The aarch64 hypervisor is rebuilt from Debian's Xen
# source: with `--stack all` a stack whose source cannot be had is skipped, loudly, and `--stack
# any` takes the first stack that can be built (at least one always runs, or the stage fails).
# vm-hypervisor-xen's unit tests are not in the qemu-user stage: under qemu-user 7.2 its test
# harness hangs. The aarch64 box test runs them in dom0 (`vm-hypervisor-xen.lib`) instead.
# The stages before the boxes, one after another.
STAGES=(
    "rust-vmm-ci checks|rust-vmm-ci/run-checks.sh"
    "fuzz regressions (each fuzz crate's cargo test)|rust-vmm-ci/fuzz-replay.sh"
    "vhost-user rng on KVM (vhost-device-rng)|crates/vhost-user-frontend/tests/kvm-rng.sh"
    "KVM exit instructions (ours/raw <= 1.25x)|crates/vm-hypervisor-kvm/benches/exit-instructions.sh"
)
# Then two lanes side by side. The boxes run QEMU's TCG single-threaded, so one box keeps about
# one host core busy: on this project's 2-core machines an x86_64 and an aarch64 box at the same
# time take about as long as the longer lane, instead of the sum of the two. Each lane boots one
# box at a time. RUN_ALL_SERIAL=1 runs the aarch64 lane after the x86_64 one instead.
X86_LANE=(
    "xen-box selftest (x86_64, bookworm)|cargo xtask xen-box selftest --stack bookworm"
    "xen-box test (x86_64, all stacks)|cargo xtask xen-box test --stack all"
)
AARCH64_LANE=(
    "xen-box test (aarch64, all stacks)|cargo xtask xen-box test --arch aarch64 --stack all"
    "xen-box test (aarch64, eventfd dom0)|cargo xtask xen-box test --arch aarch64 --stack any --dom0-kernel eventfd -p xen-bindings -p xen-ioreq -p xen-vhost-frontend"
    "xen-box virtio-domu (aarch64)|cargo xtask xen-box virtio-domu --arch aarch64 --stack any"
    "aarch64 build (all crates)|rust-vmm-ci/build-aarch64.sh"
    "aarch64 unit tests (qemu-user)|cargo xtask xen-box cross-unit -p vm-hypervisor -p vm-vcpu-ref -p xen-bindings -p xen-foreignmem -p xen-ioreq"
)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# run_stages RESULTS_FILE STAGE...: runs each stage, appending its summary line to RESULTS_FILE.
run_stages() {
    local results="$1" stage name cmd start status dur
    shift
    for stage in "$@"; do
        name="${stage%%|*}"
        cmd="${stage#*|}"
        echo
        echo "##### stage: $name"
        echo "##### \$ $cmd"
        start=$SECONDS
        # The command strings above are fixed words; word splitting is what is wanted here.
        # shellcheck disable=SC2086
        if $cmd; then status=PASS; else status=FAIL; fi
        dur=$((SECONDS - start))
        printf '%-40s %-4s %4dm%02ds\n' "$name" "$status" $((dur / 60)) $((dur % 60)) >>"$results"
        echo "##### $status: $name ($((dur / 60))m$((dur % 60))s)"
    done
}

total_start=$SECONDS
run_stages "$WORK/0-first" "${STAGES[@]}"
if [ "${RUN_ALL_SERIAL:-0}" = 1 ]; then
    run_stages "$WORK/1-x86_64" "${X86_LANE[@]}"
    run_stages "$WORK/2-aarch64" "${AARCH64_LANE[@]}"
else
    echo
    echo "##### the aarch64 lane runs beside the x86_64 lane; its log follows the x86_64 lane's"
    run_stages "$WORK/2-aarch64" "${AARCH64_LANE[@]}" >"$WORK/aarch64.log" 2>&1 &
    aarch64_lane=$!
    run_stages "$WORK/1-x86_64" "${X86_LANE[@]}"
    wait "$aarch64_lane"
    echo
    echo "##### the aarch64 lane's log"
    cat "$WORK/aarch64.log"
fi

total=$((SECONDS - total_start))
results=$(cat "$WORK"/[0-9]-*)
stages=$((${#STAGES[@]} + ${#X86_LANE[@]} + ${#AARCH64_LANE[@]}))
passed=$(grep -c ' PASS ' <<<"$results")
echo
echo "##### run-all summary (total $((total / 60))m$((total % 60))s)"
sed 's/^/  /' <<<"$results"
echo "stages: $passed passed, $((stages - passed)) failed"
[ "$passed" -eq "$stages" ]
