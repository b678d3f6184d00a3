// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where the builder's box tests do not apply, this says so loudly instead of passing quietly.

/// The PVH builder makes x86_64 guests; Arm guests are not built yet.
#[cfg(not(target_arch = "x86_64"))]
#[test]
fn pvh_builder_is_x86_64_only() {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: vm-hypervisor-xen box tests: the PVH domain builder targets x86_64 hosts (this \
         is {}); building Arm guests is not done yet",
        std::env::consts::ARCH
    );
}
