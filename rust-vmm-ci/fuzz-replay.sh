#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Replays every fuzz crate's kept inputs (crates/*/fuzz/regressions/) with its plain `cargo
# test`: each input a fuzzer once crashed on stays a regression test. The fuzz crates are
# workspaces of their own (outside the main one), so `cargo test --workspace` does not see
# them. No fuzzing happens here and no nightly flag is needed; the crates share one target
# directory so their common dependencies build once.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz-replay"
found=0
for manifest in "$ROOT"/crates/*/fuzz/Cargo.toml; do
    [ -e "$manifest" ] || continue
    found=$((found + 1))
    echo "== $(dirname "${manifest#"$ROOT"/}")"
    cargo test --locked --manifest-path "$manifest"
done
if [ "$found" -eq 0 ]; then
    echo "fuzz-replay: no crates/*/fuzz/Cargo.toml found" >&2
    exit 1
fi
echo "fuzz-replay: the regressions of $found fuzz crates replayed"
