// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes grant-address parsing and the bounded mapping caches: see `xen_foreignmem_fuzz`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xen_foreignmem_fuzz::grant_cache(data);
});
