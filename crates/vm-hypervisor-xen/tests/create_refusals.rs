// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box, on x86_64 and aarch64: `Hypervisor::create_vm` refuses a size the domain
//! cannot have (no RAM, part of a page, no vCPU, more RAM than the architecture's empty
//! domains hold) with `InvalidArgument`, before any domain exists.

#![cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]

use vm_hypervisor::{Error, Hypervisor};
use vm_hypervisor_xen::attach::{VmSize, Xen};
use xen_bindings::privcmd::Privcmd;

/// One page more RAM than an empty domain takes: the builder's 1 TiB on x86, both RAM banks
/// (1019 GiB) on Arm.
const TOO_MUCH_RAM: u64 = if cfg!(target_arch = "x86_64") {
    (1 << 40) + 4096
} else {
    (1019 << 30) + 4096
};

#[test]
fn a_size_xen_cannot_have_is_refused_before_any_domain_exists() {
    if !xen_box_testing::in_dom0("create_refusals::a_size_xen_cannot_have_is_refused") {
        return;
    }
    let privcmd = Privcmd::open().unwrap();
    let before = privcmd.domains().unwrap().len();
    for size in [
        VmSize { ram: 0, vcpus: 1 },
        VmSize {
            ram: 0x1001,
            vcpus: 1,
        },
        VmSize {
            ram: 1 << 20,
            vcpus: 0,
        },
        VmSize {
            ram: 1 << 20,
            vcpus: 129,
        },
        VmSize {
            ram: TOO_MUCH_RAM,
            vcpus: 1,
        },
    ] {
        let xen = Xen::open().unwrap().with_vm_size(size);
        match xen.create_vm() {
            Err(Error::InvalidArgument {
                op: "create_vm", ..
            }) => {}
            other => panic!("{size:?}: {:?}", other.map(|vm| vm.domid())),
        }
    }
    assert_eq!(privcmd.domains().unwrap().len(), before);
}
