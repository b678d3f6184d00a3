// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes the buffered ring reader over any page contents: see `xen_ioreq_fuzz::buffered_ring`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xen_ioreq_fuzz::buffered_ring(data);
});
