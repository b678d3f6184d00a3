// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the aarch64 Xen box: `Hypervisor::create_vm` makes an empty, paused Arm domain with RAM
//! from 1 GiB; its vCPUs are down until `init`, and their registers go through the vCPU
//! context without disturbing each other; a tiny AArch64 guest loaded through
//! `Vm::guest_memory` and started through `VcpuAarch64` writes and reads an MMIO device on
//! the VMM's bus (through the IOREQ server) and powers off through PSCI, which `run` reports;
//! dropping the VM destroys the domain and releases every descriptor (sizes Xen cannot have:
//! `create_refusals.rs`).

// Arm domains on aarch64 hosts; x86_64 has `create.rs`.
#![cfg(target_arch = "aarch64")]

#[path = "common/destroyed.rs"]
mod destroyed;

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vm_hypervisor::aarch64::{CoreRegisters, SystemRegister, VcpuAarch64, VcpuInit};
use vm_hypervisor::vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use vm_hypervisor::{
    Capability, DeviceBus, DeviceError, Error, Hypervisor, IoBus, IoHandler, IoSpace,
    SystemEventKind, Vcpu, VcpuExit, Vm,
};
use vm_hypervisor_xen::attach::{VmSize, Xen};
use xen_bindings::privcmd::Privcmd;

/// Where an Arm domain's RAM starts (`GUEST_RAM0_BASE`).
const RAM_BASE: u64 = 0x4000_0000;
/// The test's RAM.
const RAM: u64 = 2 << 20;
/// The device's page: Xen's guest layout keeps `GUEST_VIRTIO_MMIO_BASE` free for device models.
const MMIO: u64 = 0x0200_0000;
/// What the device answers to reads.
const MMIO_VALUE: u32 = 0x0bad_f00d;
/// `SCTLR_EL1` and `TTBR0_EL1`.
const SCTLR_EL1: SystemRegister = SystemRegister::new(3, 0, 1, 0, 0);
const TTBR0_EL1: SystemRegister = SystemRegister::new(3, 0, 2, 0, 0);

/// At `RAM_BASE`, with the MMU off: `str` 0x12345678 to `MMIO`, `ldr` from `MMIO + 8`, `str`
/// what was read to `MMIO + 4`, then PSCI `SYSTEM_OFF` (function 0x84000008) by `hvc #0`, and
/// `b .` should it return.
const GUEST: [u32; 10] = [
    0xd2a0_4001, // movz x1, #0x200, lsl #16
    0x528a_cf02, // movz w2, #0x5678
    0x72a2_4682, // movk w2, #0x1234, lsl #16
    0xb900_0022, // str w2, [x1]
    0xb940_0823, // ldr w3, [x1, #8]
    0xb900_0423, // str w3, [x1, #4]
    0xd280_0100, // movz x0, #0x8
    0xf2b0_8000, // movk x0, #0x8400, lsl #16
    0xd400_0002, // hvc #0
    0x1400_0000, // b .
];

/// One access the device saw: offset, data written or the size read, write.
type Seen = (u64, Vec<u8>, bool);

/// Records accesses; reads answer `MMIO_VALUE`.
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl IoHandler for Recorder {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        for (d, v) in data.iter_mut().zip(MMIO_VALUE.to_le_bytes().iter().cycle()) {
            *d = *v;
        }
        self.0
            .lock()
            .unwrap()
            .push((offset, vec![0; data.len()], false));
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0.lock().unwrap().push((offset, data.to_vec(), true));
        Ok(())
    }
}

/// This process's open descriptors.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn create_vm_makes_an_arm_domain_whose_guest_runs_on_the_vmms_bus_and_dropping_it_destroys_it() {
    if !xen_box_testing::in_dom0("arm_create::create_vm_makes_an_arm_domain") {
        return;
    }
    let privcmd = Privcmd::open().unwrap();
    let before = privcmd.domains().unwrap().len();
    let fds_before = open_fds();
    let xen = Xen::open()
        .unwrap()
        .with_vm_size(VmSize { ram: RAM, vcpus: 2 });
    let hv: &dyn Hypervisor<Vm = _> = &xen;
    assert!(hv.check_capability(Capability::CreateVm));
    let vm = hv.create_vm().unwrap();
    let domid = vm.domid();
    let info = privcmd.domain_info(domid).unwrap();
    assert!(info.paused(), "left paused: {}", info.state_string());
    assert_eq!(info.max_vcpu_id, Some(1));
    assert_eq!(vm.max_vcpu_id(), 2);

    // RAM is bank 0's first RAM bytes; below and above it there is none.
    let mem = vm.guest_memory();
    mem.memory()
        .write_obj(0x1234_5678u32, GuestAddress(RAM_BASE + RAM - 4))
        .unwrap();
    assert_eq!(
        mem.memory()
            .read_obj::<u32>(GuestAddress(RAM_BASE + RAM - 4))
            .unwrap(),
        0x1234_5678
    );
    assert!(mem
        .memory()
        .read_obj::<u32>(GuestAddress(RAM_BASE + RAM))
        .is_err());
    assert!(mem
        .memory()
        .read_obj::<u32>(GuestAddress(RAM_BASE - 4))
        .is_err());

    // vCPUs have no state until `init`; then the reset state, and each keeps its own.
    let v0 = vm.create_vcpu(0).unwrap();
    let v1 = vm.create_vcpu(1).unwrap();
    assert!(matches!(
        v0.get_core_registers(),
        Err(Error::InvalidArgument {
            op: "get_core_registers",
            ..
        })
    ));
    assert!(matches!(
        v0.init(&VcpuInit {
            el1_32bit: true,
            ..Default::default()
        }),
        Err(Error::InvalidArgument { op: "init", .. })
    ));
    v0.init(&VcpuInit::default()).unwrap();
    v1.init(&VcpuInit {
        power_off: true,
        ..Default::default()
    })
    .unwrap();
    let reset = v0.get_core_registers().unwrap();
    assert_eq!(
        (reset.pc, reset.pstate),
        (0, CoreRegisters::PSTATE_EL1H_DAIF_MASKED)
    );
    assert_eq!(v0.get_system_register(SCTLR_EL1).unwrap(), 0x00c5_0078);
    let mut r1 = v1.get_core_registers().unwrap();
    r1.x[0] = 0x1111;
    r1.pc = RAM_BASE + 0x2000;
    v1.set_core_registers(&r1).unwrap();
    v1.set_system_register(TTBR0_EL1, 0x4010_0000).unwrap();
    let mut r0 = reset;
    r0.pc = RAM_BASE;
    r0.x[1] = 0x2222;
    v0.set_core_registers(&r0).unwrap();
    assert_eq!(
        v1.get_core_registers().unwrap(),
        r1,
        "vCPU 1 kept its registers"
    );
    assert_eq!(v1.get_system_register(TTBR0_EL1).unwrap(), 0x4010_0000);
    assert_eq!(v0.get_core_registers().unwrap(), r0);
    assert_eq!(v0.get_system_register(TTBR0_EL1).unwrap(), 0);
    assert!(matches!(
        v0.get_system_register(SystemRegister::MPIDR_EL1),
        Err(Error::InvalidArgument { .. })
    ));

    // The guest: loaded through the VM's memory, run by vCPU 0 (vCPU 1 stays down).
    let code: Vec<u8> = GUEST.iter().flat_map(|i| i.to_le_bytes()).collect();
    mem.memory()
        .write_slice(&code, GuestAddress(RAM_BASE))
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO, 0x1000, Arc::new(Recorder(log.clone())))
        .unwrap();
    vm.claim_io_range(IoSpace::Mmio, MMIO, 0x1000).unwrap();
    let stopper = v0.stopper();
    let mut vcpu: Box<dyn Vcpu> = Box::new(v0);
    let (tx, rx) = channel();
    let bus: &(dyn DeviceBus + Sync) = &bus;
    let (exit, timed_out) = std::thread::scope(|s| {
        let runner = s.spawn(move || {
            let exit = vcpu.run(bus);
            let _ = tx.send(());
            exit
        });
        // A bound so that a guest that never powers off fails the test instead of hanging
        // it; the stop ends the run either way.
        let timed_out = rx.recv_timeout(Duration::from_secs(300)).is_err();
        if timed_out {
            stopper.stop();
        }
        (runner.join().unwrap(), timed_out)
    });
    assert!(
        !timed_out,
        "the guest did not power off within 300 s; the device saw {:?}",
        log.lock().unwrap()
    );
    assert_eq!(
        exit.unwrap(),
        VcpuExit::SystemEvent(SystemEventKind::Shutdown),
        "PSCI SYSTEM_OFF"
    );
    drop((v1, mem));
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (0, 0x1234_5678u32.to_le_bytes().to_vec(), true),
            (8, vec![0; 4], false),
            (4, MMIO_VALUE.to_le_bytes().to_vec(), true),
        ],
        "the guest's accesses, in order"
    );

    drop(vm);
    destroyed::assert_destroyed(&privcmd, domid, before);
    drop(privcmd);
    assert_eq!(open_fds(), fds_before, "every descriptor released");
}
