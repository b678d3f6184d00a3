// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Runs tiny guests on /dev/kvm with the state this crate builds, proving
//! that the GDT, page tables and special registers really enter 64-bit and
//! 32-bit mode. The KVM structures are filled here, in the test, from the
//! neutral types; the crate itself knows no hypervisor.

#![cfg(target_arch = "x86_64")]

use kvm_bindings::{kvm_dtable, kvm_segment, kvm_sregs, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_hypervisor::x86_64::{DescriptorTable, Segment, SpecialRegisters, StandardRegisters};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vm_vcpu_ref::linux_boot::{boot_registers, LinuxBoot};
use vm_vcpu_ref::long_mode;
use vm_vcpu_ref::memmap::MemoryMapEntry;
use vm_vcpu_ref::pvh::PvhBoot;

const MEM_SIZE: usize = 4 << 20;
const CODE: u64 = 0x1000;

fn kvm_seg(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present.into(),
        dpl: s.dpl,
        db: s.db.into(),
        s: s.s.into(),
        l: s.l.into(),
        g: s.g.into(),
        avl: s.avl.into(),
        unusable: s.unusable.into(),
        padding: 0,
    }
}

fn kvm_dt(d: &DescriptorTable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

fn apply(vcpu: &VcpuFd, s: &SpecialRegisters, r: &StandardRegisters) {
    let mut k: kvm_sregs = vcpu.get_sregs().unwrap();
    k.cs = kvm_seg(&s.cs);
    k.ds = kvm_seg(&s.ds);
    k.es = kvm_seg(&s.es);
    k.fs = kvm_seg(&s.fs);
    k.gs = kvm_seg(&s.gs);
    k.ss = kvm_seg(&s.ss);
    k.tr = kvm_seg(&s.tr);
    k.ldt = kvm_seg(&s.ldt);
    k.gdt = kvm_dt(&s.gdt);
    k.idt = kvm_dt(&s.idt);
    k.cr0 = s.cr0;
    k.cr3 = s.cr3;
    k.cr4 = s.cr4;
    k.efer = s.efer;
    // Keep KVM's own APIC base: without an in-kernel irqchip it is moot.
    vcpu.set_sregs(&k).unwrap();
    let mut regs = vcpu.get_regs().unwrap();
    regs.rip = r.rip;
    regs.rsp = r.rsp;
    regs.rbx = r.rbx;
    regs.rsi = r.rsi;
    regs.rflags = r.rflags;
    vcpu.set_regs(&regs).unwrap();
}

/// A VM with `MEM_SIZE` bytes of RAM at 0 and one vCPU, or `None` (with a
/// loud SKIPPED) when /dev/kvm is not usable.
fn vm(test: &str) -> Option<(GuestMemoryMmap<()>, VmFd, VcpuFd)> {
    let kvm = match Kvm::new() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("SKIPPED: {test}: /dev/kvm not usable: {e}");
            return None;
        }
    };
    let vm = kvm.create_vm().unwrap();
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap();
    let host = mem.get_host_address(GuestAddress(0)).unwrap();
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: MEM_SIZE as u64,
        userspace_addr: host as u64,
    };
    // SAFETY: `host` is the start of a live anonymous mapping of MEM_SIZE
    // bytes owned by `mem`; callers bind `mem` before the VM in one pattern,
    // so the VM (and its memory slot) is dropped before the mapping.
    unsafe { vm.set_user_memory_region(region) }.unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    Some((mem, vm, vcpu))
}

#[test]
fn long_mode_guest_does_pio_and_paged_mmio() {
    let Some((mem, _vm, mut vcpu)) = vm("long_mode_guest_does_pio_and_paged_mmio") else {
        return;
    };
    // mov al, 0x42; out 0x10, al;
    // mov dword [0x3000_0000], 0x1234  (unbacked, mapped by the 1 GiB identity map)
    // hlt
    let code = [
        0xb0, 0x42, 0xe6, 0x10, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x30, 0x34, 0x12, 0x00, 0x00,
        0xf4,
    ];
    mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let sregs = long_mode::setup(&mem, &long_mode::Layout::default()).unwrap();
    apply(&vcpu, &sregs, &long_mode::entry_registers(CODE, 0x8000));

    match vcpu.run().unwrap() {
        VcpuExit::IoOut(port, data) => assert_eq!((port, data), (0x10, &[0x42u8][..])),
        other => panic!("expected PIO out, got {other:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::MmioWrite(addr, data) => {
            assert_eq!(addr, 0x3000_0000);
            assert_eq!(data, &0x1234u32.to_le_bytes());
        }
        other => panic!("expected MMIO write, got {other:?}"),
    }
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Hlt));
    let k = vcpu.get_sregs().unwrap();
    assert_eq!(k.efer & 0x400, 0x400, "EFER.LMA still set");
}

#[test]
fn pvh_entry_runs_in_32_bit_mode_with_ebx_at_start_info() {
    let Some((mem, _vm, mut vcpu)) = vm("pvh_entry_runs_in_32_bit_mode_with_ebx_at_start_info")
    else {
        return;
    };
    // mov eax, ebx; out 0x10, eax; mov eax, [ebx]; out 0x11, eax; hlt
    let code = [0x89, 0xd8, 0xe7, 0x10, 0x8b, 0x03, 0xe7, 0x11, 0xf4];
    mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let map = [MemoryMapEntry::ram(0, MEM_SIZE as u64)];
    let boot = PvhBoot::new("console=hvc0", &map);
    let (sregs, regs) = boot.setup(&mem, GuestAddress(CODE)).unwrap();
    apply(&vcpu, &sregs, &regs);

    match vcpu.run().unwrap() {
        VcpuExit::IoOut(port, data) => {
            assert_eq!(port, 0x10);
            assert_eq!(data, &(boot.start_info.0 as u32).to_le_bytes());
        }
        other => panic!("expected PIO out, got {other:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::IoOut(port, data) => {
            assert_eq!(port, 0x11);
            assert_eq!(data, &0x336e_c578u32.to_le_bytes(), "guest reads the magic");
        }
        other => panic!("expected PIO out, got {other:?}"),
    }
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Hlt));
}

#[test]
fn linux_64_bit_entry_sees_zero_page_in_rsi_and_boot_cs() {
    let Some((mem, _vm, mut vcpu)) = vm("linux_64_bit_entry_sees_zero_page_in_rsi_and_boot_cs")
    else {
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
    mem.write_slice(&code, GuestAddress(CODE)).unwrap();
    let map = [MemoryMapEntry::ram(0, MEM_SIZE as u64)];
    let boot = LinuxBoot::new("console=ttyS0", &map);
    boot.write(&mem).unwrap();
    let sregs = long_mode::setup(&mem, &long_mode::Layout::default()).unwrap();
    apply(
        &vcpu,
        &sregs,
        &boot_registers(GuestAddress(CODE), boot.zero_page),
    );

    let expect = [
        (0x10u16, 0xaa55u32.to_le_bytes()[..2].to_vec()),
        (0x11, (boot.cmdline_addr.0 as u32).to_le_bytes().to_vec()),
        (0x12, 0x10u32.to_le_bytes().to_vec()),
    ];
    for (want_port, want_data) in expect {
        match vcpu.run().unwrap() {
            VcpuExit::IoOut(port, data) => assert_eq!((port, data), (want_port, &want_data[..])),
            other => panic!("expected PIO out on {want_port:#x}, got {other:?}"),
        }
    }
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Hlt));
}
