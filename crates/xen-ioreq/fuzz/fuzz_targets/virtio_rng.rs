// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes the virtio_rng example device's register file and queue handling: see `xen_ioreq_fuzz::virtio_rng`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xen_ioreq_fuzz::virtio_rng(data);
});
