// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: the device-model mode behind the vm-hypervisor trait objects. A paused PVH
//! domU made by `xl` runs a purpose-built guest; the test attaches to it through
//! `&dyn Hypervisor`, claims a port range and an MMIO page for an `IoBus`, adds and removes a
//! virtio-mmio doorbell ioevent, injects an MSI, reads the guest's code through
//! `Vm::guest_memory`, and serves vCPU 0 with `Box<dyn Vcpu>::run` on another thread: the
//! guest's port and MMIO writes and reads reach the devices, a stop ends the run, and once the
//! domain is destroyed `run` says so.

// The guest is x86 code; on other hosts `arch.rs` says what does not run.
#![cfg(target_arch = "x86_64")]

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vm_hypervisor::vm_memory::{GuestAddress, GuestAddressSpace};
use vm_hypervisor::{
    Capability, DataMatch, DeviceBus, DeviceError, Error, EventFd, Hypervisor, IoBus,
    IoEventAddress, IoHandler, IoSpace, MsiMessage, Vcpu, VcpuExit, Vm, VmId,
};
use vm_hypervisor_xen::attach::{Xen, XenGuestMemory, XenVcpu, XenVm};
use xen_box_testing::guest_image::{pvh_kernel_with, GUEST_ENTRY};
use xen_box_testing::XlDomain;

/// The test's ports: the guest reads `PORTS + 7` and writes what it read to `PORTS + 6` last.
const PORTS: u16 = 0x5e0;
/// The test's MMIO page.
const MMIO: u64 = 0xfe00_0000;
/// What the port device answers to reads.
const PORT_VALUE: u8 = 0x99;
/// What the MMIO device answers to reads.
const MMIO_VALUE: u32 = 0x0bad_f00d;

/// 32-bit flat protected mode, entered at `GUEST_ENTRY`: `out 0x5e0, 0x42` (byte);
/// `mov [0xfe000000], 0x12345678`; `mov eax, [0xfe000008]`; `out 0x5e4, eax`;
/// `in al, 0x5e7`; `out 0x5e6, al`; then `cli; hlt` for good.
const GUEST: [u8; 38] = [
    0x66, 0xba, 0xe0, 0x05, // mov dx, 0x5e0
    0xb0, 0x42, // mov al, 0x42
    0xee, // out dx, al
    0xb8, 0x78, 0x56, 0x34, 0x12, // mov eax, 0x12345678
    0xa3, 0x00, 0x00, 0x00, 0xfe, // mov [0xfe000000], eax
    0xa1, 0x08, 0x00, 0x00, 0xfe, // mov eax, [0xfe000008]
    0x66, 0xba, 0xe4, 0x05, // mov dx, 0x5e4
    0xef, // out dx, eax
    0x66, 0xba, 0xe7, 0x05, // mov dx, 0x5e7
    0xec, // in al, dx
    0x66, 0xba, 0xe6, 0x05, // mov dx, 0x5e6
    0xee, // out dx, al
    0xfa, // cli
];
/// `jmp $`, after `GUEST`: the guest spins rather than halting, because Xen takes a vCPU
/// that halts with interrupts off down and powers the domain off, and `run` reporting that
/// shutdown would race the stop this test checks.
const SPIN: [u8; 2] = [0xeb, 0xfe];

/// One access a device saw: (space, offset, data written or the size read, write).
type Seen = (IoSpace, u64, Vec<u8>, bool);

/// Records accesses; reads answer `value`. Signals `done` on a write at `last`.
struct Recorder {
    space: IoSpace,
    value: Vec<u8>,
    log: Arc<Mutex<Vec<Seen>>>,
    last: Option<u64>,
    done: Mutex<Option<Sender<()>>>,
}

impl IoHandler for Recorder {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        for (d, v) in data.iter_mut().zip(self.value.iter().cycle()) {
            *d = *v;
        }
        let size = vec![0; data.len()];
        self.log
            .lock()
            .unwrap()
            .push((self.space, offset, size, false));
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.log
            .lock()
            .unwrap()
            .push((self.space, offset, data.to_vec(), true));
        if Some(offset) == self.last {
            if let Some(done) = self.done.lock().unwrap().take() {
                let _ = done.send(());
            }
        }
        Ok(())
    }
}

#[test]
fn a_pvh_guests_port_and_mmio_accesses_reach_the_bus_through_the_trait_objects() {
    let test = "attach::a_pvh_guests_port_and_mmio_accesses_reach_the_bus";
    if !xen_box_testing::in_dom0(test) {
        return;
    }
    let code: Vec<u8> = GUEST.iter().chain(&SPIN).copied().collect();
    let kernel = std::env::temp_dir().join(format!("attach-guest-{}.elf", std::process::id()));
    std::fs::write(&kernel, pvh_kernel_with(&code)).unwrap();
    let domu = XlDomain::create(
        format!("rust-attach-{}", std::process::id()),
        &format!(
            "{}kernel = \"{}\"\nmemory = 32\nvcpus = 1\non_poweroff = \"preserve\"\n\
             on_crash = \"preserve\"\n",
            xen_box_testing::pvh_type_line(),
            kernel.display()
        ),
        true,
    );
    let _ = std::fs::remove_file(&kernel);
    eprintln!(
        "created paused PVH domU {} (domid {})",
        domu.name, domu.domid
    );

    let xen = Xen::open().expect("privcmd");
    let hv: &dyn Hypervisor<Vm = XenVm> = &xen;
    assert!(hv.check_capability(Capability::AttachVm));
    assert!(hv.check_capability(Capability::CreateVm));
    assert!(!hv.check_capability(Capability::IoExits));
    let vm = hv
        .attach_vm(VmId(domu.domid.into()))
        .unwrap_or_else(|e| panic!("attaching to domain {}: {e}", domu.domid));
    let vm: &dyn Vm<Vcpu = XenVcpu, Memory = XenGuestMemory> = &vm;
    assert_eq!(vm.max_vcpu_id(), 1, "one vCPU");
    vm.claim_io_range(IoSpace::Pio, PORTS.into(), 8).unwrap();
    vm.claim_io_range(IoSpace::Mmio, MMIO, 0x1000).unwrap();

    // A virtio-mmio doorbell (QueueNotify of a device at MMIO) comes and goes, through
    // privcmd or this process, whichever this dom0 has.
    let kick = EventFd::new(0).unwrap();
    let doorbell = IoEventAddress::Mmio(MMIO + 0x50);
    vm.register_ioevent(&kick, doorbell, DataMatch::U32(0))
        .expect("a doorbell ioevent");
    vm.unregister_ioevent(&kick, doorbell, DataMatch::U32(0))
        .expect("removing the doorbell");
    assert!(matches!(
        vm.unregister_ioevent(&kick, doorbell, DataMatch::U32(0)),
        Err(Error::InvalidArgument { .. })
    ));

    // An MSI goes in through dm_op (the guest runs with interrupts off and never takes it).
    assert_eq!(
        vm.signal_msi(MsiMessage::x86_fixed(0, 0x40)).ok(),
        Some(true)
    );

    // Devices reach guest memory through the VM: the code as the toolstack loaded it.
    let mut loaded = vec![0u8; code.len()];
    vm.guest_memory()
        .memory()
        .read_slice(&mut loaded, GuestAddress(GUEST_ENTRY.into()))
        .expect("reading the guest's code through Vm::guest_memory");
    assert_eq!(loaded, code);

    let log = Arc::new(Mutex::new(Vec::new()));
    let (done, finished) = channel();
    let mut bus = IoBus::new();
    let ports = Recorder {
        space: IoSpace::Pio,
        value: vec![PORT_VALUE],
        log: log.clone(),
        last: Some(6),
        done: Mutex::new(Some(done)),
    };
    let mmio = Recorder {
        space: IoSpace::Mmio,
        value: MMIO_VALUE.to_le_bytes().to_vec(),
        log: log.clone(),
        last: None,
        done: Mutex::new(None),
    };
    bus.insert(IoSpace::Pio, PORTS.into(), 8, Arc::new(ports))
        .unwrap();
    bus.insert(IoSpace::Mmio, MMIO, 0x1000, Arc::new(mmio))
        .unwrap();

    let vcpu = vm.create_vcpu(0).unwrap();
    assert!(matches!(
        vm.create_vcpu(0),
        Err(Error::VcpuIdInUse { id: 0 })
    ));
    let stopper = vcpu.stopper();
    let mut vcpu: Box<dyn Vcpu> = Box::new(vcpu);
    let bus: &(dyn DeviceBus + Sync) = &bus;
    let (mut vcpu, exit, seen_all) = std::thread::scope(|s| {
        let runner = s.spawn(move || {
            let exit = vcpu.run(bus);
            (vcpu, exit)
        });
        domu.unpause();
        // A bound so that a guest that never gets there fails the test instead of hanging
        // it; the stop below ends the run either way.
        let seen_all = finished.recv_timeout(Duration::from_secs(120)).is_ok();
        stopper.stop();
        let (vcpu, exit) = runner.join().expect("the vCPU thread");
        (vcpu, exit, seen_all)
    });
    let log = log.lock().unwrap().clone();
    eprintln!("devices saw: {log:x?}");
    assert!(
        seen_all,
        "the guest's last write never arrived; devices saw {log:x?}"
    );
    assert!(
        matches!(exit, Ok(VcpuExit::Interrupted)),
        "a stop ends run: {exit:?}"
    );
    let expected: Vec<Seen> = vec![
        (IoSpace::Pio, 0, vec![0x42], true),
        (
            IoSpace::Mmio,
            0,
            0x1234_5678u32.to_le_bytes().to_vec(),
            true,
        ),
        (IoSpace::Mmio, 8, vec![0; 4], false),
        (IoSpace::Pio, 4, MMIO_VALUE.to_le_bytes().to_vec(), true),
        (IoSpace::Pio, 7, vec![0], false),
        (IoSpace::Pio, 6, vec![PORT_VALUE], true),
    ];
    assert_eq!(log, expected);

    // The domain goes away under the device model: run says so instead of waiting.
    drop(domu);
    let exit = vcpu.run(bus);
    assert!(
        matches!(exit, Ok(VcpuExit::Shutdown)),
        "run after the domain was destroyed: {exit:?}"
    );
}
