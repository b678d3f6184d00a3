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
# prints each stage's time and a summary, and exits nonzero when any stage failed.
# Run as root on Debian 12 x86_64 (the stages install the Debian packages they need).

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The same flags as the checks, so that the Xen box's host builds reuse their artifacts.
export RUSTFLAGS="${RUSTFLAGS:--D warnings}"

# name|command: the stages, in order. Each installs the Debian packages it needs (apt-get) and
# downloads the rest into ~/.cache/xen-rust-vmm; nothing has to be installed beforehand.
# The privcmd IRQFD/IOEVENTFD kernel path runs on the aarch64 box, the one place where both work
# (an x86 PV dom0 cannot use IOEVENTFD); the x86_64 eventfd dom0 (`cargo xtask xen-box test
# --stack bookworm --dom0-kernel eventfd -p xen-bindings -p xen-ioreq`) is left out of CI so that
# a fresh machine builds one kernel, not two. The aarch64 hypervisor is rebuilt from Debian's Xen
# source: with `--stack all` a stack whose source cannot be had is skipped, loudly, and `--stack
# any` takes the first stack that can be built (at least one always runs, or the stage fails).
# vm-hypervisor-xen's unit tests are not in the qemu-user stage: under qemu-user 7.2 its test
# harness hangs. The aarch64 box test runs them in dom0 (`vm-hypervisor-xen.lib`) instead.
STAGES=(
    "rust-vmm-ci checks|rust-vmm-ci/run-checks.sh"
    "fuzz regressions (each fuzz crate's cargo test)|rust-vmm-ci/fuzz-replay.sh"
    "vhost-user rng on KVM (vhost-device-rng)|crates/vhost-user-frontend/tests/kvm-rng.sh"
    "KVM exit instructions (ours/raw <= 1.25x)|crates/vm-hypervisor-kvm/benches/exit-instructions.sh"
    "xen-box selftest (x86_64, bookworm)|cargo xtask xen-box selftest --stack bookworm"
    "xen-box test (x86_64, all stacks)|cargo xtask xen-box test --stack all"
    "xen-box test (aarch64, all stacks)|cargo xtask xen-box test --arch aarch64 --stack all"
    "xen-box test (aarch64, eventfd dom0)|cargo xtask xen-box test --arch aarch64 --stack any --dom0-kernel eventfd -p xen-bindings -p xen-ioreq -p xen-vhost-frontend"
    "xen-box virtio-domu (aarch64)|cargo xtask xen-box virtio-domu --arch aarch64 --stack any"
    "aarch64 build (all crates)|rust-vmm-ci/build-aarch64.sh"
    "aarch64 unit tests (qemu-user)|cargo xtask xen-box cross-unit -p vm-hypervisor -p vm-vcpu-ref -p xen-bindings -p xen-foreignmem -p xen-ioreq"
)

declare -a RESULTS=()
failed=0
total_start=$SECONDS
for stage in "${STAGES[@]}"; do
    name="${stage%%|*}"
    cmd="${stage#*|}"
    echo
    echo "##### stage: $name"
    echo "##### \$ $cmd"
    start=$SECONDS
    # The command strings above are fixed words; word splitting is what is wanted here.
    # shellcheck disable=SC2086
    if $cmd; then status=PASS; else status=FAIL; failed=$((failed + 1)); fi
    dur=$((SECONDS - start))
    RESULTS+=("$(printf '%-40s %-4s %4dm%02ds' "$name" "$status" $((dur / 60)) $((dur % 60)))")
    echo "##### $status: $name ($((dur / 60))m$((dur % 60))s)"
done

total=$((SECONDS - total_start))
echo
echo "##### run-all summary (total $((total / 60))m$((total % 60))s)"
for r in "${RESULTS[@]}"; do echo "  $r"; done
echo "stages: $((${#STAGES[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
