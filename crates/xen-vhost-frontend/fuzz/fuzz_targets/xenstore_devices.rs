// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes xenstore device discovery and the xenbus handshake: see `xen_vhost_frontend_fuzz`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xen_vhost_frontend_fuzz::xenstore_devices(data);
});
