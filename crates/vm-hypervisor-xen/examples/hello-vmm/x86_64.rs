// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The x86_64 body of the example: its guest is x86 code.

use std::io::Write;
use std::sync::Arc;

use vm_hypervisor::vm_memory::{
    Bytes, GuestAddress, GuestAddressSpace, GuestMemoryBackend, GuestMemoryMmap,
};
use vm_hypervisor::x86_64::{HypervisorX86_64, VcpuX86_64};
use vm_hypervisor::{
    Capability, DeviceError, IoBus, IoHandler, IoSpace, MemoryRegion, MemoryRegionFlags, Vcpu,
    VcpuExit, Vm,
};
use vm_hypervisor_kvm::Kvm;
use vm_hypervisor_xen::attach::{VmSize, Xen};
use vm_vcpu_ref::long_mode;

/// Guest RAM: 2 MiB at guest-physical 0.
const MEM_SIZE: u64 = 2 << 20;
/// Where the guest program goes.
const ENTRY: u64 = 0x1000;
/// Initial stack pointer.
const STACK: u64 = 0x8000;
/// First port of the UART (8250 transmit holding register at offset 0).
const COM1: u16 = 0x3f8;

/// The guest, 64-bit code; the message follows it at offset 20.
const GUEST: &[u8] = &[
    0x48, 0x8d, 0x35, 0x0d, 0x00, 0x00, 0x00, // lea rsi, [rip + 13] ; the message
    0x66, 0xba, 0xf8, 0x03, //                   mov dx, 0x3f8       ; UART THR
    // next:
    0xac, //                                     lodsb
    0x84, 0xc0, //                               test al, al
    0x74, 0x03, //                               jz done
    0xee, //                                     out dx, al
    0xeb, 0xf8, //                               jmp next
    // done:
    0xf4, //                                     hlt
];
/// What the guest prints, NUL-terminated.
const MESSAGE: &[u8] = b"Hello from a 64-bit guest\n\0";

/// The transmit side of an 8250 UART: bytes written to THR go to stdout;
/// the line status register always says "transmitter empty".
struct Uart;

impl IoHandler for Uart {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        // LSR (offset 5): THR empty and transmitter empty.
        data.fill(if offset == 5 { 0x60 } else { 0 });
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        if offset == 0 {
            let mut out = std::io::stdout().lock();
            out.write_all(&data[..1])?;
            out.flush()?;
        }
        Ok(())
    }
}

/// Which backend to run on, from `--hypervisor kvm|xen` (KVM when not given).
fn backend() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok("kvm".into()),
        (Some("--hypervisor"), Some(name), None) if name == "kvm" || name == "xen" => Ok(name),
        _ => Err("usage: hello-vmm [--hypervisor kvm|xen]".into()),
    }
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    match backend()?.as_str() {
        "xen" => {
            let xen = Xen::open()
                .map_err(|e| format!("hello-vmm on Xen needs privcmd (root in dom0): {e}"))?;
            run(&xen.with_vm_size(VmSize {
                ram: MEM_SIZE,
                vcpus: 1,
            }))
        }
        _ => {
            if !Kvm::is_present() {
                return Err("hello-vmm needs /dev/kvm, which is absent on this machine".into());
            }
            run(&Kvm::new()?)
        }
    }
}

/// The VMM, the same for every backend.
fn run<H: HypervisorX86_64>(hv: &H) -> Result<(), Box<dyn std::error::Error>> {
    // VMM memory for backends that take it, declared before the VM so it is dropped after it.
    let mut host_memory = None;
    let vm = hv.create_vm()?;
    if vm.check_capability(Capability::UserMemory) {
        let mem = host_memory.insert(GuestMemoryMmap::<()>::from_ranges(&[(
            GuestAddress(0),
            MEM_SIZE as usize,
        )])?);
        let region = MemoryRegion {
            guest_phys_addr: 0,
            size: MEM_SIZE,
            host_addr: mem.get_host_address(GuestAddress(0))? as u64,
            flags: MemoryRegionFlags::default(),
        };
        // SAFETY: `region` is exactly the mapping of `mem`, which outlives `vm` (declared
        // before it, so dropped after it).
        unsafe { vm.set_memory_region(region)? };
    }
    // Otherwise the hypervisor gave the VM its RAM (Xen: `VmSize`).
    let guest = vm.guest_memory();
    let mem = guest.memory();
    mem.write_slice(GUEST, GuestAddress(ENTRY))?;
    mem.write_slice(MESSAGE, GuestAddress(ENTRY + GUEST.len() as u64))?;

    let mut vcpu = vm.create_vcpu(0)?;
    let sregs = long_mode::setup_from(&*mem, &long_mode::Layout::default(), &vcpu.get_sregs()?)?;
    vcpu.set_sregs(&sregs)?;
    vcpu.set_regs(&long_mode::entry_registers(ENTRY, STACK))?;
    drop(mem);

    let mut bus = IoBus::new();
    bus.insert(IoSpace::Pio, COM1.into(), 8, Arc::new(Uart))?;
    // Where guest I/O reaches the VMM only for claimed ranges (Xen's IOREQ server).
    vm.claim_io_range(IoSpace::Pio, COM1.into(), 8)?;

    let mut exits = 0u64;
    loop {
        match vcpu.run(&bus)? {
            VcpuExit::Io(_) => exits += 1,
            VcpuExit::Hlt => break,
            other => return Err(format!("unexpected vCPU exit {other:?}").into()),
        }
    }
    eprintln!(
        "hello-vmm: the guest halted on {} after {exits} exits to the VMM",
        hv.name()
    );
    Ok(())
}
