// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: the backend-agnostic guest suite (the same cases KVM runs) on domains that
//! `Hypervisor::create_vm` makes, each an empty PVH domain with the suite's RAM and one vCPU,
//! its I/O served through an IOREQ server. Cases that need what Xen does not offer are
//! skipped by capability, loudly, with the capability named.

use vm_hypervisor_xen::attach::Xen;

/// Xen with domains of the suite's memory map, or `None` after saying loudly why not.
#[cfg(target_arch = "x86_64")]
fn open_xen() -> Option<Xen> {
    use vm_hypervisor_xen::attach::VmSize;

    if !xen_box_testing::in_dom0("guest_suite") {
        return None;
    }
    let xen = Xen::open().expect("privcmd in dom0");
    // RAM only where the suite's RAM is: its MMIO, read-only and dirty-logged regions above
    // stay holes, so guest accesses there reach the IOREQ server.
    Some(xen.with_vm_size(VmSize {
        ram: vm_guest_suite::layout::RAM_SIZE,
        vcpus: 1,
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn open_xen() -> Option<Xen> {
    None
}

vm_guest_suite::guest_suite_tests!(open_xen);
