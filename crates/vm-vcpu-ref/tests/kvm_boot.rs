// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Runs tiny guests on /dev/kvm with the state this crate builds, proving
//! that the GDT, page tables and special registers really enter 64-bit and
//! 32-bit mode. The state goes to KVM through vm-hypervisor-kvm, whose
//! conversions of the neutral register types are the ones a VMM uses; the
//! crate itself knows no hypervisor.

#![cfg(target_arch = "x86_64")]

use std::sync::{Arc, Mutex};

use vm_hypervisor::x86_64::{SpecialRegisters, StandardRegisters, VcpuX86_64};
use vm_hypervisor::{
    DeviceError, Hypervisor, IoAccess, IoBus, IoHandler, IoSpace, MemoryRegion, MemoryRegionFlags,
    Vcpu, VcpuExit, Vm,
};
use vm_hypervisor_kvm::{Kvm, KvmVcpu, KvmVm};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vm_vcpu_ref::linux_boot::{boot_registers, LinuxBoot};
use vm_vcpu_ref::long_mode;
use vm_vcpu_ref::memmap::MemoryMapEntry;
use vm_vcpu_ref::pvh::PvhBoot;

const MEM_SIZE: usize = 4 << 20;
const CODE: u64 = 0x1000;
/// The ports the guests write their findings to (0x10 to 0x12, up to 4 bytes each).
const PORTS: u16 = 0x10;
/// An unbacked address the 64-bit guest reaches through its identity map.
const MMIO: u64 = 0x3000_0000;

/// What the guests wrote to the ports and to `MMIO`, by offset, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<(u64, Vec<u8>)>>);

impl IoHandler for Recorder {
    fn read(&self, _offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0.lock().unwrap().push((offset, data.to_vec()));
        Ok(())
    }
}

/// A VM with `MEM_SIZE` bytes of RAM at 0 and one vCPU, whose device bus records the ports
/// from `PORTS` and `MMIO`; or `None` (with a loud SKIPPED) when /dev/kvm is not usable.
struct Guest {
    vcpu: KvmVcpu,
    bus: IoBus,
    writes: Arc<Recorder>,
    _vm: KvmVm,
    // Dropped after the VM, whose memory slot maps it.
    mem: GuestMemoryMmap<()>,
}

impl Guest {
    fn new(test: &str) -> Option<Guest> {
        let kvm = match Kvm::new() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("SKIPPED: {test}: /dev/kvm not usable: {e}");
                return None;
            }
        };
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap();
        let vm = kvm.create_vm().unwrap();
        for r in mem.iter() {
            let region = MemoryRegion::from_guest_region(r, MemoryRegionFlags::default()).unwrap();
            // SAFETY: the region is a mapping of `mem`, which the returned Guest owns and
            // drops after the VM (field order).
            unsafe { vm.set_memory_region(region) }.unwrap();
        }
        let vcpu = vm.create_vcpu(0).unwrap();
        let writes = Arc::new(Recorder::default());
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Pio, PORTS.into(), 8, writes.clone())
            .unwrap();
        bus.insert(IoSpace::Mmio, MMIO, 0x1000, writes.clone())
            .unwrap();
        Some(Guest {
            vcpu,
            bus,
            writes,
            _vm: vm,
            mem,
        })
    }

    /// Enters the guest with `sregs` (keeping the vCPU's APIC base: without an in-kernel
    /// irqchip it is moot) and `regs`.
    fn start(&self, sregs: &SpecialRegisters, regs: &StandardRegisters) {
        let sregs = SpecialRegisters {
            apic_base: self.vcpu.get_sregs().unwrap().apic_base,
            ..*sregs
        };
        self.vcpu.set_sregs(&sregs).unwrap();
        self.vcpu.set_regs(regs).unwrap();
    }

    /// Runs until the guest's next exit: a write the bus served (its space, address and
    /// data), or `None` for a halt.
    fn next_write(&mut self) -> Option<(IoSpace, u64, Vec<u8>)> {
        match self.vcpu.run(&self.bus).unwrap() {
            VcpuExit::Io(IoAccess {
                space,
                addr,
                write: true,
                ..
            }) => {
                let (_, data) = self.writes.0.lock().unwrap().pop().unwrap();
                Some((space, addr, data))
            }
            VcpuExit::Hlt => None,
            other => panic!("expected a guest write or hlt, got {other:?}"),
        }
    }
}

#[test]
fn long_mode_guest_does_pio_and_paged_mmio() {
    let Some(mut g) = Guest::new("long_mode_guest_does_pio_and_paged_mmio") else {
        return;
    };
    // mov al, 0x42; out 0x10, al;
    // mov dword [0x3000_0000], 0x1234  (unbacked, mapped by the 1 GiB identity map)
    // hlt
    let code = [
        0xb0, 0x42, 0xe6, 0x10, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x30, 0x34, 0x12, 0x00, 0x00,
        0xf4,
    ];
    g.mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let sregs = long_mode::setup(&g.mem, &long_mode::Layout::default()).unwrap();
    g.start(&sregs, &long_mode::entry_registers(CODE, 0x8000));

    assert_eq!(g.next_write(), Some((IoSpace::Pio, 0x10, vec![0x42])));
    assert_eq!(
        g.next_write(),
        Some((IoSpace::Mmio, MMIO, 0x1234u32.to_le_bytes().to_vec()))
    );
    assert_eq!(g.next_write(), None);
    let efer = g.vcpu.get_sregs().unwrap().efer;
    assert_eq!(efer & 0x400, 0x400, "EFER.LMA still set");
}

#[test]
fn pvh_entry_runs_in_32_bit_mode_with_ebx_at_start_info() {
    let Some(mut g) = Guest::new("pvh_entry_runs_in_32_bit_mode_with_ebx_at_start_info") else {
        return;
    };
    // mov eax, ebx; out 0x10, eax; mov eax, [ebx]; out 0x11, eax; hlt
    let code = [0x89, 0xd8, 0xe7, 0x10, 0x8b, 0x03, 0xe7, 0x11, 0xf4];
    g.mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let map = [MemoryMapEntry::ram(0, MEM_SIZE as u64)];
    let boot = PvhBoot::new("console=hvc0", &map);
    let (sregs, regs) = boot.setup(&g.mem, GuestAddress(CODE)).unwrap();
    g.start(&sregs, &regs);

    let start_info = (boot.start_info.0 as u32).to_le_bytes().to_vec();
    assert_eq!(g.next_write(), Some((IoSpace::Pio, 0x10, start_info)));
    assert_eq!(
        g.next_write(),
        Some((IoSpace::Pio, 0x11, 0x336e_c578u32.to_le_bytes().to_vec())),
        "the guest reads the magic"
    );
    assert_eq!(g.next_write(), None);
}

#[test]
fn linux_64_bit_entry_sees_zero_page_in_rsi_and_boot_cs() {
    let Some(mut g) = Guest::new("linux_64_bit_entry_sees_zero_page_in_rsi_and_boot_cs") else {
        return;
    };
    // mov ax, [rsi + 0x1fe]; out 0x10, ax      (boot_flag)
    // mov eax, [rsi + 0x228]; out 0x11, eax    (cmd_line_ptr)
    // mov eax, cs; out 0x12, eax               (__BOOT_CS)
    // hlt
    let code = [
        0x66, 0x8b, 0x86, 0xfe, 0x01, 0x00, 0x00, 0x66, 0xe7, 0x10, 0x8b, 0x86, 0x28, 0x02, 0x00,
        0x00, 0xe7, 0x11, 0x8c, 0xc8, 0xe7, 0x12, 0xf4,
    ];
    g.mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let map = [MemoryMapEntry::ram(0, MEM_SIZE as u64)];
    let boot = LinuxBoot::new("console=ttyS0", &map);
    boot.write(&g.mem).unwrap();
    let sregs = long_mode::setup(&g.mem, &long_mode::Layout::default()).unwrap();
    g.start(&sregs, &boot_registers(GuestAddress(CODE), boot.zero_page));

    let expect = [
        (0x10u64, 0xaa55u32.to_le_bytes()[..2].to_vec()),
        (0x11, (boot.cmdline_addr.0 as u32).to_le_bytes().to_vec()),
        (0x12, 0x10u32.to_le_bytes().to_vec()),
    ];
    for (port, data) in expect {
        assert_eq!(g.next_write(), Some((IoSpace::Pio, port, data)));
    }
    assert_eq!(g.next_write(), None);
}
