// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes the buffered ring with a concurrent producer and two consumers: see `xen_ioreq_fuzz::buffered_ring_concurrent`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xen_ioreq_fuzz::buffered_ring_concurrent(data);
});
