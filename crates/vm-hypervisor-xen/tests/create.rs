// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: `Hypervisor::create_vm` makes an empty, paused PVH domain of the size asked
//! for, whose vCPUs' registers go through the HVM context without disturbing each other, and
//! dropping the VM destroys the domain (sizes Xen cannot have: `create_refusals.rs`).

// Empty PVH domains are x86_64 ones; aarch64 has `arm_create.rs`.
#![cfg(target_arch = "x86_64")]

#[path = "common/destroyed.rs"]
mod destroyed;

use vm_hypervisor::vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use vm_hypervisor::x86_64::VcpuX86_64;
use vm_hypervisor::{Capability, Hypervisor, Vm};
use vm_hypervisor_xen::attach::{VmSize, Xen};
use xen_bindings::privcmd::Privcmd;

#[test]
fn create_vm_makes_a_paused_domain_of_the_size_asked_and_dropping_it_destroys_it() {
    if !xen_box_testing::in_dom0("create::create_vm_makes_a_paused_domain") {
        return;
    }
    let privcmd = Privcmd::open().unwrap();
    let before = privcmd.domains().unwrap().len();
    let xen = Xen::open().unwrap().with_vm_size(VmSize {
        ram: 2 << 20,
        vcpus: 2,
    });
    assert!(xen.check_capability(Capability::CreateVm));
    let vm = xen.create_vm().unwrap();
    let domid = vm.domid();
    let info = privcmd.domain_info(domid).unwrap();
    assert!(info.paused(), "left paused: {}", info.state_string());
    assert!(info.hvm());
    assert_eq!(info.max_vcpu_id, Some(1));
    assert_eq!(vm.max_vcpu_id(), 2);
    assert!(!vm.check_capability(Capability::UserMemory));

    // RAM is there up to the size asked, and not beyond.
    let mem = vm.guest_memory();
    mem.memory()
        .write_obj(0x1234_5678u32, GuestAddress((2 << 20) - 4))
        .unwrap();
    assert_eq!(
        mem.memory()
            .read_obj::<u32>(GuestAddress((2 << 20) - 4))
            .unwrap(),
        0x1234_5678
    );
    assert!(mem.memory().read_obj::<u32>(GuestAddress(2 << 20)).is_err());

    // Each vCPU starts at RESET; writing one vCPU's registers leaves the other's alone (a
    // context load takes down every vCPU it has no record for).
    let v0 = vm.create_vcpu(0).unwrap();
    let v1 = vm.create_vcpu(1).unwrap();
    let reset = v0.get_regs().unwrap();
    assert_eq!((reset.rip, reset.rflags), (0xfff0, 2));
    assert_eq!(v0.get_sregs().unwrap().cs.base, 0xffff_0000);
    let mut r1 = v1.get_regs().unwrap();
    r1.rax = 0x1111;
    r1.rip = 0x2000;
    v1.set_regs(&r1).unwrap();
    let mut r0 = reset;
    r0.rbx = 0x2222;
    v0.set_regs(&r0).unwrap();
    assert_eq!(v1.get_regs().unwrap(), r1, "vCPU 1 kept its registers");
    assert_eq!(v0.get_regs().unwrap(), r0);

    // The mappings go with the VM's last user: the domain's pages are not kept.
    drop((v0, v1, mem));
    drop(vm);
    destroyed::assert_destroyed(&privcmd, domid, before);
}
