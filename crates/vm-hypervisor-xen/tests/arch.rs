// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where the builder's box tests do not apply, this says so loudly instead of passing quietly.

/// On aarch64 the builder boots Arm guests (`arm_boot.rs`) and `Hypervisor::create_vm` makes
/// empty Arm domains (`arm_create.rs`); the PVH ones of `create.rs`, the timing against `xl
/// create` (`pvh_create_time.rs`) and the device-model test with its x86 guest (`attach.rs`)
/// are x86_64 only.
#[cfg(target_arch = "aarch64")]
#[test]
fn pvh_domains_pvh_timing_and_the_x86_guest_are_x86_64_only() {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: vm-hypervisor-xen box tests create.rs, pvh_create_time.rs and attach.rs: \
         empty PVH domains, the PVH creation timing and the x86 guest are x86_64 only; \
         Arm guests and empty Arm domains are tested by arm_boot.rs and arm_create.rs"
    );
}

/// Other hosts get neither kind of guest.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[test]
fn the_builder_targets_x86_64_and_aarch64_only() {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: vm-hypervisor-xen box tests: the domain builder targets x86_64 and aarch64 \
         hosts (this is {})",
        std::env::consts::ARCH
    );
}
