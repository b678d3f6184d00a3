// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Conversions between vm-hypervisor's neutral register types and KVM's
//! structures. This is the only place that knows both.

use kvm_bindings::{
    kvm_cpuid_entry2, kvm_dtable, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs,
};
/// `kvm_cpuid_entry2::flags` bit saying the entry is for one subleaf (Linux's uapi
/// `asm/kvm.h`; kvm-bindings does not carry it).
const KVM_CPUID_FLAG_SIGNIFICANT_INDEX: u32 = 1 << 0;

use vm_hypervisor::x86_64::{
    CpuidEntry, DescriptorTable, FpuState, MsrEntry, Segment, SpecialRegisters, StandardRegisters,
};

pub(crate) fn segment_from_kvm(s: &kvm_segment) -> Segment {
    Segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present != 0,
        dpl: s.dpl,
        db: s.db != 0,
        s: s.s != 0,
        l: s.l != 0,
        g: s.g != 0,
        avl: s.avl != 0,
        unusable: s.unusable != 0,
    }
}

pub(crate) fn segment_to_kvm(s: &Segment) -> kvm_segment {
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

fn dtable_from_kvm(d: &kvm_dtable) -> DescriptorTable {
    DescriptorTable {
        base: d.base,
        limit: d.limit,
    }
}

fn dtable_to_kvm(d: &DescriptorTable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

pub(crate) fn sregs_from_kvm(s: &kvm_sregs) -> SpecialRegisters {
    SpecialRegisters {
        cs: segment_from_kvm(&s.cs),
        ds: segment_from_kvm(&s.ds),
        es: segment_from_kvm(&s.es),
        fs: segment_from_kvm(&s.fs),
        gs: segment_from_kvm(&s.gs),
        ss: segment_from_kvm(&s.ss),
        tr: segment_from_kvm(&s.tr),
        ldt: segment_from_kvm(&s.ldt),
        gdt: dtable_from_kvm(&s.gdt),
        idt: dtable_from_kvm(&s.idt),
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        apic_base: s.apic_base,
    }
}

/// Fill `k` from `s`, leaving the fields KVM has and the neutral type has
/// not (the pending-interrupt bitmap) as they are.
pub(crate) fn sregs_into_kvm(s: &SpecialRegisters, k: &mut kvm_sregs) {
    k.cs = segment_to_kvm(&s.cs);
    k.ds = segment_to_kvm(&s.ds);
    k.es = segment_to_kvm(&s.es);
    k.fs = segment_to_kvm(&s.fs);
    k.gs = segment_to_kvm(&s.gs);
    k.ss = segment_to_kvm(&s.ss);
    k.tr = segment_to_kvm(&s.tr);
    k.ldt = segment_to_kvm(&s.ldt);
    k.gdt = dtable_to_kvm(&s.gdt);
    k.idt = dtable_to_kvm(&s.idt);
    k.cr0 = s.cr0;
    k.cr2 = s.cr2;
    k.cr3 = s.cr3;
    k.cr4 = s.cr4;
    k.cr8 = s.cr8;
    k.efer = s.efer;
    k.apic_base = s.apic_base;
}

pub(crate) fn regs_from_kvm(r: &kvm_regs) -> StandardRegisters {
    StandardRegisters {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

pub(crate) fn regs_to_kvm(r: &StandardRegisters) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

pub(crate) fn fpu_from_kvm(f: &kvm_fpu) -> FpuState {
    FpuState {
        fpr: f.fpr,
        fcw: f.fcw,
        fsw: f.fsw,
        ftwx: f.ftwx,
        last_opcode: f.last_opcode,
        last_ip: f.last_ip,
        last_dp: f.last_dp,
        xmm: f.xmm,
        mxcsr: f.mxcsr,
    }
}

pub(crate) fn fpu_to_kvm(f: &FpuState) -> kvm_fpu {
    kvm_fpu {
        fpr: f.fpr,
        fcw: f.fcw,
        fsw: f.fsw,
        ftwx: f.ftwx,
        last_opcode: f.last_opcode,
        last_ip: f.last_ip,
        last_dp: f.last_dp,
        xmm: f.xmm,
        mxcsr: f.mxcsr,
        ..Default::default()
    }
}

pub(crate) fn msr_to_kvm(m: &MsrEntry) -> kvm_msr_entry {
    kvm_msr_entry {
        index: m.index,
        data: m.data,
        ..Default::default()
    }
}

pub(crate) fn cpuid_from_kvm(e: &kvm_cpuid_entry2) -> CpuidEntry {
    CpuidEntry {
        function: e.function,
        index: e.index,
        significant_index: e.flags & KVM_CPUID_FLAG_SIGNIFICANT_INDEX != 0,
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
    }
}

pub(crate) fn cpuid_to_kvm(e: &CpuidEntry) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function: e.function,
        index: e.index,
        // KVM's other flags (stateful leaves) are obsolete and never set by it today.
        flags: if e.significant_index {
            KVM_CPUID_FLAG_SIGNIFICANT_INDEX
        } else {
            0
        },
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code64() -> Segment {
        Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x8,
            type_: 11,
            present: true,
            dpl: 0,
            db: false,
            s: true,
            l: true,
            g: true,
            avl: false,
            unusable: false,
        }
    }

    #[test]
    fn segment_round_trips_every_field() {
        let mut s = code64();
        s.avl = true;
        s.dpl = 3;
        s.base = 0x1234_5678;
        let k = segment_to_kvm(&s);
        assert_eq!(
            (k.type_, k.l, k.g, k.db, k.s, k.present),
            (11, 1, 1, 0, 1, 1)
        );
        assert_eq!((k.avl, k.dpl, k.selector), (1, 3, 8));
        assert_eq!(segment_from_kvm(&k), s);
    }

    #[test]
    fn sregs_keep_the_interrupt_bitmap() {
        let mut k = kvm_sregs {
            interrupt_bitmap: [1, 2, 3, 4],
            ..Default::default()
        };
        let s = SpecialRegisters {
            cs: code64(),
            gdt: DescriptorTable {
                base: 0x500,
                limit: 0x1f,
            },
            cr0: 0x8000_0031,
            cr3: 0x9000,
            cr4: 0x20,
            efer: 0x500,
            ..Default::default()
        };
        sregs_into_kvm(&s, &mut k);
        assert_eq!(k.interrupt_bitmap, [1, 2, 3, 4]);
        assert_eq!((k.gdt.base, k.gdt.limit), (0x500, 0x1f));
        assert_eq!(sregs_from_kvm(&k), s);
    }

    #[test]
    fn regs_fpu_msr_cpuid_round_trip() {
        let r = StandardRegisters {
            rax: 1,
            r15: 15,
            rip: 0x1000,
            rflags: 2,
            ..Default::default()
        };
        assert_eq!(regs_from_kvm(&regs_to_kvm(&r)), r);
        let f = FpuState {
            fcw: FpuState::FCW_DEFAULT,
            mxcsr: FpuState::MXCSR_DEFAULT,
            xmm: [[7; 16]; 16],
            ..Default::default()
        };
        assert_eq!(fpu_from_kvm(&fpu_to_kvm(&f)), f);
        let m = msr_to_kvm(&MsrEntry::new(0x10, 99));
        assert_eq!((m.index, m.data), (0x10, 99));
        let c = CpuidEntry {
            function: 7,
            index: 0,
            significant_index: true,
            ebx: 0xdead,
            ..Default::default()
        };
        assert_eq!(cpuid_from_kvm(&cpuid_to_kvm(&c)), c);
        assert_eq!(cpuid_to_kvm(&c).flags, KVM_CPUID_FLAG_SIGNIFICANT_INDEX);
        let plain = CpuidEntry { function: 1, ..c };
        let plain = CpuidEntry {
            significant_index: false,
            ..plain
        };
        assert_eq!(cpuid_to_kvm(&plain).flags, 0);
        assert_eq!(cpuid_from_kvm(&cpuid_to_kvm(&plain)), plain);
    }
}
