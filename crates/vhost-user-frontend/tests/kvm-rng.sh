#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The vhost-user relay end to end on real /dev/kvm: builds (or takes from the cache) the pinned,
# unmodified vhost-device-rng with `cargo xtask vhost-device build rng`, then runs the kvm_rng
# test against it. With the daemon's path in VHOST_DEVICE_RNG the test cannot skip: a missing
# daemon or a failure fails this script.
#
#   crates/vhost-user-frontend/tests/kvm-rng.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
[ -e /dev/kvm ] || { echo "SKIPPED: vhost-user rng on KVM: /dev/kvm is absent"; exit 0; }
bin="$(cargo xtask vhost-device build rng)"
[ -x "$bin" ] || { echo "kvm-rng: \`cargo xtask vhost-device build rng\` gave no binary ('$bin')" >&2; exit 1; }
VHOST_DEVICE_RNG="$bin" cargo test -p vhost-user-frontend --test kvm_rng -- --nocapture
