#!/bin/sh
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Round trips of guest MMIO reads in the Xen box: xen-ioreq versus QEMU, side by side in one
# HVM domain (tests/xen_ioreq_qemu.rs, guest tests/guests/qemu_bench.S), one boot per stack.
#
#   crates/xen-ioreq/benches/xen-box-qemu.sh bookworm|trixie [rounds]
#
# The box boots the dom0 image variant with Debian's qemu-system-xen (`--with-pkg`; the
# default image, which CI uses, has no QEMU and is left alone). `xl` starts QEMU as the
# domain's device model (`device_model_version = "qemu-xen"`, Debian's
# /usr/libexec/xen-qemu-system-i386, standard VGA). The test runs once per dom0 vCPU, pinned
# with taskset; QEMU, started by `xl` from the test process, inherits the pinning, so both
# device models serve from the same vCPU. Each round is one domain of XIOREQ_QEMU_BLOCKS
# alternating blocks of XIOREQ_QEMU_READS reads (defaults in the test).
set -eu
STACK=${1:?usage: $0 bookworm|trixie [rounds]}
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/xen-ioreq-bench
mkdir -p "$WORK"
cd "$ROOT"

BIN=$(cargo test --release -p xen-ioreq --test xen_ioreq_qemu --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
cp "$BIN" "$WORK/xen_ioreq_qemu"
cat >"$WORK/bench-qemu-in-dom0.sh" <<DOM0
#!/bin/sh
# dom0 is emulated: give QEMU more than libxl's default 60 s to come up.
export LIBXL_DEVICE_MODEL_START_TIMEOUT=600
echo "BENCH device model: \$(/usr/libexec/xen-qemu-system-i386 --version | head -n 1)"
for cpu in \$(seq 0 \$((\$(nproc) - 1))); do
    echo "BENCH pinned to dom0 vCPU \$cpu"
    XIOREQ_BENCH_ROUNDS=$ROUNDS ${XIOREQ_QEMU_READS:+XIOREQ_QEMU_READS=$XIOREQ_QEMU_READS} \
        ${XIOREQ_QEMU_BLOCKS:+XIOREQ_QEMU_BLOCKS=$XIOREQ_QEMU_BLOCKS} \
        taskset -c \$cpu ./xen_ioreq_qemu --ignored --exact round_trips_versus_qemu \
        --nocapture || exit \$?
done
DOM0
chmod +x "$WORK/bench-qemu-in-dom0.sh"
echo "BENCH $(date -u '+%Y-%m-%d %H:%M') UTC, host load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo xtask xen-box run --stack "$STACK" --with-pkg qemu-system-xen --timeout 1500 \
    --add "$WORK/xen_ioreq_qemu" -- "$WORK/bench-qemu-in-dom0.sh"
