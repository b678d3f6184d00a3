#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Builds every crate of the workspace (libraries and tests, -D warnings) for
# aarch64-unknown-linux-gnu with Debian's rustc-web, the one compiler here with an aarch64
# standard library. This is what keeps the aarch64 code of crates that have no aarch64 test
# run yet (the KVM backend) compiling. `cargo xtask xen-box setup --arch aarch64 --stack any` installs
# the compiler (rustc-web, libstd-rust-web-dev:arm64, gcc-aarch64-linux-gnu).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x /usr/bin/rustc ] || ! ls -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib >/dev/null 2>&1; then
    cargo xtask xen-box setup --arch aarch64 --stack any
fi

export RUSTC=/usr/bin/rustc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export RUSTFLAGS="-D warnings"
# Its own directory: a different compiler must not evict the host build's artifacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/aarch64-build"
cargo build --workspace --exclude xtask --lib --tests --target aarch64-unknown-linux-gnu
