// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! x86 vCPU state through the domain's HVM context.
//!
//! Xen has no per-vCPU register call for a device model; what it offers is the domain's save
//! record set (`XEN_DOMCTL_gethvmcontext` / `sethvmcontext`), whose CPU record of a vCPU
//! (`struct hvm_hw_cpu`) holds its general registers, segments, control registers, the FXSAVE
//! area and the MSRs Xen migrates. [`XenVcpu`](super::XenVcpu) reads a register set from
//! that record and writes one by loading the record back.
//!
//! Two facts of Xen's save code shape this (xen/arch/x86/hvm/save.c, hvm.c):
//!
//! - a vCPU that is down (never started, or taken down by `HLT` with interrupts off) has no
//!   CPU record, and loading a CPU record brings its vCPU up;
//! - a load takes every vCPU down first and brings up only those with a CPU record in it, so
//!   a write here sends the records of every vCPU that is up, the changed one among them.
//!
//! The local APIC's base and task priority (`apic_base`, `cr8`) live in the LAPIC records,
//! which are read but not written: a set that changes them is refused.

use vm_hypervisor::x86_64::{FpuState, MsrEntry, Segment, SpecialRegisters, StandardRegisters};
use xen_bindings::abi::xen::hvm_save::*;
use xen_bindings::abi::Pod;

use crate::builder::vcpu::{push_end, push_record};

/// Typecode of a vCPU's LAPIC record (`struct hvm_hw_lapic`: the APIC base MSR first).
const HVM_SAVE_CODE_LAPIC: u16 = 5;
/// Typecode of a vCPU's LAPIC register page record.
const HVM_SAVE_CODE_LAPIC_REGS: u16 = 6;
/// Offset of the task-priority register in the LAPIC register page.
const APIC_TPR: usize = 0x80;

/// One record of a context: typecode, instance, payload.
type Record<'a> = (u16, u16, &'a [u8]);

/// The records of `ctx` up to the end record (a truncated record ends the walk).
fn records(ctx: &[u8]) -> Vec<Record<'_>> {
    let d = std::mem::size_of::<HvmSaveDescriptor>();
    let mut out = Vec::new();
    let mut off = 0;
    while let Some(desc) = ctx.get(off..).and_then(HvmSaveDescriptor::from_bytes) {
        if desc.typecode == HVM_SAVE_CODE_END {
            break;
        }
        let start = off + d;
        let Some(payload) = start
            .checked_add(desc.length as usize)
            .and_then(|end| ctx.get(start..end))
        else {
            break;
        };
        out.push((desc.typecode, desc.instance, payload));
        off = start + payload.len();
    }
    out
}

fn record(ctx: &[u8], typecode: u16, instance: u16) -> Option<&[u8]> {
    records(ctx)
        .into_iter()
        .find(|(t, i, _)| *t == typecode && *i == instance)
        .map(|(_, _, p)| p)
}

/// vCPU `id`'s CPU record, if it is up.
pub(crate) fn cpu_of(ctx: &[u8], id: u16) -> Option<HvmHwCpu> {
    record(ctx, HVM_SAVE_CODE_CPU, id).and_then(HvmHwCpu::from_bytes)
}

/// The IA32_APIC_BASE and CR8 of vCPU `id` as its LAPIC records hold them (zero where a
/// record is missing).
pub(crate) fn apic_of(ctx: &[u8], id: u16) -> (u64, u64) {
    let base = record(ctx, HVM_SAVE_CODE_LAPIC, id)
        .and_then(|lapic| lapic.get(..8))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let tpr = record(ctx, HVM_SAVE_CODE_LAPIC_REGS, id)
        .and_then(|regs| regs.get(APIC_TPR))
        .map_or(0, |t| u64::from(*t >> 4));
    (base, tpr)
}

/// What to load so that vCPU `id` has `cpu` and every other vCPU that is up stays as it is:
/// `ctx`'s header, the CPU records of the vCPUs that are up with `id`'s replaced (or added),
/// the end record. `None` if `ctx` has no header.
pub(crate) fn with_cpu(ctx: &[u8], id: u16, cpu: &HvmHwCpu) -> Option<Vec<u8>> {
    let all = records(ctx);
    let header = all
        .iter()
        .find(|(t, _, _)| *t == HVM_SAVE_CODE_HEADER)
        .and_then(|(_, _, p)| HvmSaveHeader::from_bytes(p))?;
    let mut out = Vec::new();
    push_record(&mut out, HVM_SAVE_CODE_HEADER, 0, &header);
    for (_, instance, payload) in all.iter().filter(|(t, _, _)| *t == HVM_SAVE_CODE_CPU) {
        if *instance != id {
            if let Some(other) = HvmHwCpu::from_bytes(payload) {
                push_record(&mut out, HVM_SAVE_CODE_CPU, *instance, &other);
            }
        }
    }
    push_record(&mut out, HVM_SAVE_CODE_CPU, id, cpu);
    push_end(&mut out);
    Some(out)
}

/// The state of an x86 CPU after RESET (real mode, executing at 0xffff_fff0), as a CPU
/// record: what a vCPU of a new VM starts with, as on KVM.
pub(crate) fn reset_cpu() -> HvmHwCpu {
    let mut cpu = HvmHwCpu::default();
    for seg in 0..8 {
        cpu.limit[seg] = 0xffff;
        // Present, read/write data, accessed.
        cpu.arbytes[seg] = 0x93;
    }
    cpu.sel[HvmSegment::Cs as usize] = 0xf000;
    cpu.base[HvmSegment::Cs as usize] = 0xffff_0000;
    // Present, execute/read code, accessed.
    cpu.arbytes[HvmSegment::Cs as usize] = 0x9b;
    // A busy 32-bit TSS and an LDT, both present.
    cpu.arbytes[HvmSegment::Tr as usize] = 0x8b;
    cpu.arbytes[HvmSegment::Ldtr as usize] = 0x82;
    // IDTR and GDTR (limits 8 and 9).
    cpu.limit[8] = 0xffff;
    cpu.limit[9] = 0xffff;
    cpu.rip = 0xfff0;
    cpu.rflags = StandardRegisters::RFLAGS_RESERVED;
    cpu.cr0 = vm_hypervisor::x86_64::bits::CR0_ET;
    cpu.dr[HVM_DR6] = 0xffff_0ff0;
    cpu.dr[HVM_DR7] = 0x400;
    cpu
}

/// Indexes of the general registers in [`HvmHwCpu::gprs`]: rax rbx rcx rdx rbp rsi rdi rsp
/// r8..r15.
pub(crate) fn regs(cpu: &HvmHwCpu) -> StandardRegisters {
    let g = &cpu.gprs;
    StandardRegisters {
        rax: g[0],
        rbx: g[1],
        rcx: g[2],
        rdx: g[3],
        rbp: g[4],
        rsi: g[5],
        rdi: g[6],
        rsp: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: cpu.rip,
        rflags: cpu.rflags,
    }
}

pub(crate) fn set_regs(cpu: &mut HvmHwCpu, r: &StandardRegisters) {
    cpu.gprs = [
        r.rax, r.rbx, r.rcx, r.rdx, r.rbp, r.rsi, r.rdi, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15,
    ];
    cpu.rip = r.rip;
    cpu.rflags = r.rflags;
}

/// Xen's packed attributes: type 0-3, S 4, DPL 5-6, P 7, AVL 8, L 9, D/B 10, G 11. A segment
/// that is not present is unusable.
fn segment(cpu: &HvmHwCpu, i: usize) -> Segment {
    let ar = cpu.arbytes[i];
    let bit = |n: u32| ar >> n & 1 != 0;
    Segment {
        base: cpu.base[i],
        limit: cpu.limit[i],
        selector: cpu.sel[i] as u16,
        type_: (ar & 0xf) as u8,
        s: bit(4),
        dpl: (ar >> 5 & 3) as u8,
        present: bit(7),
        avl: bit(8),
        l: bit(9),
        db: bit(10),
        g: bit(11),
        unusable: !bit(7),
    }
}

fn set_segment(cpu: &mut HvmHwCpu, i: usize, s: &Segment) {
    cpu.base[i] = s.base;
    cpu.limit[i] = s.limit;
    cpu.sel[i] = u32::from(s.selector);
    let flag = |b: bool, n: u32| u32::from(b) << n;
    cpu.arbytes[i] = u32::from(s.type_ & 0xf)
        | flag(s.s, 4)
        | (u32::from(s.dpl & 3) << 5)
        | flag(s.present && !s.unusable, 7)
        | flag(s.avl, 8)
        | flag(s.l, 9)
        | flag(s.db, 10)
        | flag(s.g, 11);
}

const SEGMENTS: [HvmSegment; 8] = [
    HvmSegment::Cs,
    HvmSegment::Ds,
    HvmSegment::Es,
    HvmSegment::Fs,
    HvmSegment::Gs,
    HvmSegment::Ss,
    HvmSegment::Tr,
    HvmSegment::Ldtr,
];

fn segments_mut(s: &mut SpecialRegisters) -> [&mut Segment; 8] {
    [
        &mut s.cs, &mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss, &mut s.tr, &mut s.ldt,
    ]
}

/// The special registers of `cpu`, with the APIC base and CR8 from the LAPIC records.
pub(crate) fn sregs(cpu: &HvmHwCpu, (apic_base, cr8): (u64, u64)) -> SpecialRegisters {
    let mut s = SpecialRegisters {
        cr0: cpu.cr0,
        cr2: cpu.cr2,
        cr3: cpu.cr3,
        cr4: cpu.cr4,
        cr8,
        efer: cpu.msr_efer,
        apic_base,
        ..Default::default()
    };
    for (seg, out) in SEGMENTS.iter().zip(segments_mut(&mut s)) {
        *out = segment(cpu, *seg as usize);
    }
    s.idt.base = cpu.base[8];
    s.idt.limit = cpu.limit[8] as u16;
    s.gdt.base = cpu.base[9];
    s.gdt.limit = cpu.limit[9] as u16;
    s
}

pub(crate) fn set_sregs(cpu: &mut HvmHwCpu, s: &SpecialRegisters) {
    let mut s = *s;
    for (seg, from) in SEGMENTS.iter().zip(segments_mut(&mut s)) {
        set_segment(cpu, *seg as usize, from);
    }
    cpu.base[8] = s.idt.base;
    cpu.limit[8] = u32::from(s.idt.limit);
    cpu.base[9] = s.gdt.base;
    cpu.limit[9] = u32::from(s.gdt.limit);
    cpu.cr0 = s.cr0;
    cpu.cr2 = s.cr2;
    cpu.cr3 = s.cr3;
    cpu.cr4 = s.cr4;
    cpu.msr_efer = s.efer;
}

/// Offsets in the 64-bit FXSAVE area.
mod fx {
    pub const FCW: usize = 0;
    pub const FSW: usize = 2;
    pub const FTW: usize = 4;
    pub const FOP: usize = 6;
    pub const FIP: usize = 8;
    pub const FDP: usize = 16;
    pub const MXCSR: usize = 24;
    pub const ST: usize = 32;
    pub const XMM: usize = 160;
}

fn le<const N: usize>(area: &[u8; 512], at: usize) -> [u8; N] {
    let mut b = [0; N];
    b.copy_from_slice(&area[at..at + N]);
    b
}

pub(crate) fn fpu(cpu: &HvmHwCpu) -> FpuState {
    let a = &cpu.fpu_regs;
    let mut f = FpuState {
        fcw: u16::from_le_bytes(le(a, fx::FCW)),
        fsw: u16::from_le_bytes(le(a, fx::FSW)),
        ftwx: a[fx::FTW],
        last_opcode: u16::from_le_bytes(le(a, fx::FOP)),
        last_ip: u64::from_le_bytes(le(a, fx::FIP)),
        last_dp: u64::from_le_bytes(le(a, fx::FDP)),
        mxcsr: u32::from_le_bytes(le(a, fx::MXCSR)),
        ..Default::default()
    };
    for (i, r) in f.fpr.iter_mut().enumerate() {
        *r = le(a, fx::ST + 16 * i);
    }
    for (i, r) in f.xmm.iter_mut().enumerate() {
        *r = le(a, fx::XMM + 16 * i);
    }
    f
}

pub(crate) fn set_fpu(cpu: &mut HvmHwCpu, f: &FpuState) {
    let a = &mut cpu.fpu_regs;
    let mut put = |at: usize, bytes: &[u8]| a[at..at + bytes.len()].copy_from_slice(bytes);
    put(fx::FCW, &f.fcw.to_le_bytes());
    put(fx::FSW, &f.fsw.to_le_bytes());
    put(fx::FTW, &[f.ftwx]);
    put(fx::FOP, &f.last_opcode.to_le_bytes());
    put(fx::FIP, &f.last_ip.to_le_bytes());
    put(fx::FDP, &f.last_dp.to_le_bytes());
    put(fx::MXCSR, &f.mxcsr.to_le_bytes());
    for (i, r) in f.fpr.iter().enumerate() {
        put(fx::ST + 16 * i, r);
    }
    for (i, r) in f.xmm.iter().enumerate() {
        put(fx::XMM + 16 * i, r);
    }
    // Without the flag Xen loads a fresh FPU state, not this one.
    cpu.flags |= XEN_X86_FPU_INITIALISED;
}

/// The field of `cpu` that holds MSR `index`, for the MSRs a CPU record carries.
pub(crate) fn msr(cpu: &mut HvmHwCpu, index: u32) -> Option<&mut u64> {
    Some(match index {
        0x10 => &mut cpu.tsc,
        0x174..=0x176 => &mut cpu.sysenter[(index - 0x174) as usize],
        0xc000_0080 => &mut cpu.msr_efer,
        // LSTAR, STAR, CSTAR and SFMASK sit in the record in that order.
        0xc000_0082 => &mut cpu.msr_syscall[0],
        0xc000_0081 => &mut cpu.msr_syscall[1],
        0xc000_0083 => &mut cpu.msr_syscall[2],
        0xc000_0084 => &mut cpu.msr_syscall[3],
        0xc000_0102 => &mut cpu.shadow_gs,
        0xc000_0103 => &mut cpu.msr_tsc_aux,
        _ => return None,
    })
}

/// Reads `msrs` from `cpu` up to the first it does not carry; how many were read.
pub(crate) fn get_msrs(cpu: &mut HvmHwCpu, msrs: &mut [MsrEntry]) -> usize {
    let mut n = 0;
    for e in msrs.iter_mut() {
        let Some(v) = msr(cpu, e.index) else { break };
        e.data = *v;
        n += 1;
    }
    n
}

/// Writes `msrs` into `cpu` up to the first it does not carry; how many were written.
pub(crate) fn set_msrs(cpu: &mut HvmHwCpu, msrs: &[MsrEntry]) -> usize {
    let mut n = 0;
    for e in msrs {
        let Some(v) = msr(cpu, e.index) else { break };
        *v = e.data;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(cpus: &[(u16, HvmHwCpu)]) -> Vec<u8> {
        let mut c = crate::builder::vcpu::tests::header_only();
        for (id, cpu) in cpus {
            push_record(&mut c, HVM_SAVE_CODE_CPU, *id, cpu);
        }
        // A LAPIC record: the APIC base MSR, then fields this code does not read.
        let lapic = HvmSaveDescriptor {
            typecode: HVM_SAVE_CODE_LAPIC,
            instance: 0,
            length: 24,
        };
        c.extend_from_slice(lapic.as_bytes());
        c.extend_from_slice(&0xfee0_0900u64.to_le_bytes());
        c.extend_from_slice(&[0; 16]);
        push_record(&mut c, HVM_SAVE_CODE_MTRR, 0, &HvmHwMtrr::default());
        push_end(&mut c);
        c
    }

    #[test]
    fn a_write_keeps_the_other_vcpus_that_are_up_and_drops_device_records() {
        let mut one = reset_cpu();
        one.rip = 0x1111;
        let ctx = context(&[(0, reset_cpu()), (1, one)]);
        let mut zero = reset_cpu();
        zero.rip = 0x2222;
        let out = with_cpu(&ctx, 0, &zero).unwrap();
        assert_eq!(cpu_of(&out, 0).unwrap().rip, 0x2222);
        assert_eq!(
            cpu_of(&out, 1).unwrap().rip,
            0x1111,
            "vCPU 1 stays up as it was"
        );
        let kinds: Vec<u16> = records(&out).iter().map(|r| r.0).collect();
        assert_eq!(kinds, [HVM_SAVE_CODE_HEADER, 2, 2]);
        // A vCPU that is down has no record; writing it brings it up.
        let ctx = context(&[]);
        assert!(cpu_of(&ctx, 0).is_none());
        assert!(cpu_of(&with_cpu(&ctx, 0, &zero).unwrap(), 0).is_some());
        assert!(with_cpu(&[0u8; 8], 0, &zero).is_none(), "no header");
    }

    #[test]
    fn registers_survive_the_cpu_record() {
        let mut cpu = reset_cpu();
        let r = StandardRegisters {
            rax: 1,
            rbx: 2,
            rbp: 5,
            rsp: 8,
            r15: 16,
            rip: 0x1000,
            rflags: 0x202,
            ..Default::default()
        };
        set_regs(&mut cpu, &r);
        assert_eq!(regs(&cpu), r);
        assert_eq!(cpu.gprs[7], 8, "rsp is eighth");
        let mut s = sregs(&cpu, (0xfee0_0900, 0));
        assert_eq!(s.cs.selector, 0xf000);
        assert_eq!(s.cs.base, 0xffff_0000);
        assert!(s.cs.present && s.cs.s && !s.cs.unusable);
        s.cs = Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x10,
            type_: 11,
            present: true,
            s: true,
            l: true,
            g: true,
            ..Default::default()
        };
        s.ds.present = false;
        s.cr0 = 0x8000_0011;
        s.efer = 0x500;
        set_sregs(&mut cpu, &s);
        assert_eq!(cpu.arbytes[0], 0xa9b, "64-bit code: G, L, P, S, type 11");
        let back = sregs(&cpu, (0xfee0_0900, 0));
        assert!(back.ds.unusable);
        s.ds.unusable = true;
        assert_eq!(back, s);
    }

    #[test]
    fn fpu_and_msrs_map_to_their_fields() {
        let mut cpu = HvmHwCpu::default();
        let f = FpuState {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            xmm: [[0x5a; 16]; 16],
            fpr: [[1; 16]; 8],
            ..Default::default()
        };
        set_fpu(&mut cpu, &f);
        assert_eq!(fpu(&cpu), f);
        assert_eq!(cpu.fpu_regs[24..28], 0x1f80u32.to_le_bytes());
        assert_eq!(cpu.flags & XEN_X86_FPU_INITIALISED, XEN_X86_FPU_INITIALISED);
        let msrs = [
            MsrEntry::new(0x174, 0x10),
            MsrEntry::new(0x175, 0x8000),
            MsrEntry::new(0xc000_0082, 7),
            MsrEntry::new(0x1b, 1),
        ];
        assert_eq!(
            set_msrs(&mut cpu, &msrs),
            3,
            "APIC_BASE is not in the record"
        );
        assert_eq!(cpu.sysenter, [0x10, 0x8000, 0]);
        assert_eq!(cpu.msr_syscall[0], 7);
        let mut read = [MsrEntry::new(0x175, 0), MsrEntry::new(0x1234, 0)];
        assert_eq!(get_msrs(&mut cpu, &mut read), 1);
        assert_eq!(read[0].data, 0x8000);
    }

    #[test]
    fn the_apic_base_comes_from_the_lapic_record() {
        let ctx = context(&[(0, reset_cpu())]);
        assert_eq!(apic_of(&ctx, 0), (0xfee0_0900, 0));
        assert_eq!(apic_of(&ctx, 1), (0, 0));
    }
    /// Byte offsets in Xen's `struct hvm_hw_cpu` (public/arch-x86/hvm/save.h, 4.17 and
    /// 4.20), which is 1032 bytes long: the fields from `msr_flags` on.
    mod xen_offsets {
        pub const LSTAR: usize = 960;
        pub const SFMASK: usize = 984;
        pub const EFER: usize = 992;
        pub const TSC_AUX: usize = 1000;
        pub const FLAGS: usize = 1024;
        pub const LEN: usize = 1032;
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// A long-mode state must reach Xen with EFER.LME|LMA where Xen reads EFER: with the
    /// record eight bytes short (no `msr_flags`), EFER landed in Xen's SYSCALL mask, Xen ran
    /// the vCPU with EFER 0, so CR0.PG|CR4.PAE meant 32-bit PAE paging over 4-level tables,
    /// and the first fetch took a reserved-bit page fault.
    #[test]
    fn efer_and_the_msrs_sit_where_xen_reads_and_writes_them() {
        use xen_offsets::*;
        // Written: the long-mode special registers into a record loaded into Xen.
        let mut cpu = reset_cpu();
        let mut s = sregs(&cpu, (0xfee0_0900, 0));
        s.cr0 = 0x8000_0031;
        s.cr4 = 0x20;
        s.efer = 0x500;
        set_sregs(&mut cpu, &s);
        set_msrs(
            &mut cpu,
            &[MsrEntry::new(0xc000_0082, 0xffff_8000_0000_1000)],
        );
        let out = with_cpu(&context(&[]), 0, &cpu).unwrap();
        let (_, _, payload) = records(&out)
            .into_iter()
            .find(|r| r.0 == HVM_SAVE_CODE_CPU)
            .unwrap();
        assert_eq!(payload.len(), LEN, "the record has Xen's length");
        assert_eq!(u64_at(payload, EFER), 0x500, "EFER where Xen reads it");
        assert_eq!(u64_at(payload, SFMASK), 0, "not in the SYSCALL mask");
        assert_eq!(u64_at(payload, LSTAR), 0xffff_8000_0000_1000);

        // Read: a record as Xen saves it for a vCPU in long mode.
        let mut saved = vec![0u8; LEN];
        saved[EFER..EFER + 8].copy_from_slice(&0x500u64.to_le_bytes());
        saved[TSC_AUX..TSC_AUX + 8].copy_from_slice(&7u64.to_le_bytes());
        saved[FLAGS..FLAGS + 4].copy_from_slice(&XEN_X86_FPU_INITIALISED.to_le_bytes());
        let mut ctx = crate::builder::vcpu::tests::header_only();
        let desc = HvmSaveDescriptor {
            typecode: HVM_SAVE_CODE_CPU,
            instance: 0,
            length: LEN as u32,
        };
        ctx.extend_from_slice(desc.as_bytes());
        ctx.extend_from_slice(&saved);
        push_end(&mut ctx);
        let mut cpu = cpu_of(&ctx, 0).unwrap();
        assert_eq!(sregs(&cpu, (0, 0)).efer, 0x500);
        let mut aux = [MsrEntry::new(0xc000_0103, 0)];
        assert_eq!(get_msrs(&mut cpu, &mut aux), 1);
        assert_eq!(aux[0].data, 7);
        assert_eq!(cpu.flags, XEN_X86_FPU_INITIALISED);
    }
}
