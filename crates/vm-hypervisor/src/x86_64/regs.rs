// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Neutral x86_64 register state.
//!
//! These are plain data owned by this crate, so that no backend's structures
//! leak into the API: a backend converts them to and from its own layout at
//! its edge. Fields hold architectural values (what the CPU sees), not any
//! hypervisor's encoding.

/// A segment register with its hidden descriptor cache.
///
/// The fields mirror the parts of a segment descriptor the CPU caches when
/// a selector is loaded; this is what a hypervisor reads and writes when it
/// sets segment state without going through a descriptor table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Linear base address.
    pub base: u64,
    /// Segment limit in bytes (already scaled when `g` is set), so a flat
    /// 4 GiB segment has `limit == 0xffff_ffff`.
    pub limit: u32,
    /// Selector value (index << 3 | TI << 2 | RPL).
    pub selector: u16,
    /// Four-bit type field of the access byte (for example 11 for an
    /// execute/read accessed code segment, 3 for a read/write accessed data
    /// segment, 11 for a busy 64-bit TSS when `s` is clear).
    pub type_: u8,
    /// Present bit.
    pub present: bool,
    /// Descriptor privilege level, 0 to 3.
    pub dpl: u8,
    /// Default operation size (D/B): set for 32-bit segments.
    pub db: bool,
    /// Descriptor type: set for code/data, clear for system segments.
    pub s: bool,
    /// 64-bit code segment (L).
    pub l: bool,
    /// Granularity: the descriptor limit counts 4 KiB units.
    pub g: bool,
    /// Available for system software (AVL).
    pub avl: bool,
    /// The segment register holds no usable segment (a null selector in
    /// protected or long mode).
    pub unusable: bool,
}

/// A descriptor-table register (GDTR or IDTR).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DescriptorTable {
    /// Linear base address of the table.
    pub base: u64,
    /// Limit: size of the table in bytes minus one.
    pub limit: u16,
}

/// System registers: segments, descriptor tables, control registers and
/// the EFER and APIC base MSRs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpecialRegisters {
    /// Code segment.
    pub cs: Segment,
    /// Data segment.
    pub ds: Segment,
    /// Extra segment.
    pub es: Segment,
    /// FS segment.
    pub fs: Segment,
    /// GS segment.
    pub gs: Segment,
    /// Stack segment.
    pub ss: Segment,
    /// Task register.
    pub tr: Segment,
    /// Local descriptor table register.
    pub ldt: Segment,
    /// Global descriptor table register.
    pub gdt: DescriptorTable,
    /// Interrupt descriptor table register.
    pub idt: DescriptorTable,
    /// CR0.
    pub cr0: u64,
    /// CR2 (page-fault linear address).
    pub cr2: u64,
    /// CR3 (page-table root).
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8 (task priority).
    pub cr8: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// IA32_APIC_BASE.
    pub apic_base: u64,
}

/// General-purpose registers, instruction pointer and flags.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StandardRegisters {
    /// RAX.
    pub rax: u64,
    /// RBX.
    pub rbx: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// RSP.
    pub rsp: u64,
    /// RBP.
    pub rbp: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
    /// RIP.
    pub rip: u64,
    /// RFLAGS. Bit 1 is architecturally always one; see
    /// [`StandardRegisters::RFLAGS_RESERVED`].
    pub rflags: u64,
}

impl StandardRegisters {
    /// RFLAGS bit 1, which reads as one on every x86 CPU.
    pub const RFLAGS_RESERVED: u64 = 1 << 1;
}

/// x87/SSE state in the FXSAVE layout's terms.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FpuState {
    /// ST0-ST7 / MM0-MM7, 80 bits each stored in 16 bytes.
    pub fpr: [[u8; 16]; 8],
    /// x87 control word.
    pub fcw: u16,
    /// x87 status word.
    pub fsw: u16,
    /// Abridged x87 tag word (one bit per register).
    pub ftwx: u8,
    /// Last x87 opcode.
    pub last_opcode: u16,
    /// Last x87 instruction pointer.
    pub last_ip: u64,
    /// Last x87 data pointer.
    pub last_dp: u64,
    /// XMM0-XMM15.
    pub xmm: [[u8; 16]; 16],
    /// MXCSR.
    pub mxcsr: u32,
}

impl FpuState {
    /// The x87 control word after FINIT.
    pub const FCW_DEFAULT: u16 = 0x37f;
    /// MXCSR after reset (all exceptions masked).
    pub const MXCSR_DEFAULT: u32 = 0x1f80;
}

/// One model-specific register.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsrEntry {
    /// MSR index (ECX of RDMSR/WRMSR).
    pub index: u32,
    /// Value.
    pub data: u64,
}

impl MsrEntry {
    /// An entry for `index` holding `data`.
    pub const fn new(index: u32, data: u64) -> Self {
        Self { index, data }
    }
}

/// One CPUID leaf (and subleaf) as the guest will see it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuidEntry {
    /// Leaf (EAX input).
    pub function: u32,
    /// Subleaf (ECX input); only meaningful when `significant_index` is
    /// set.
    pub index: u32,
    /// The leaf's output depends on the subleaf in ECX (leaves 4, 7, 0xb,
    /// 0xd, ...), so `index` selects this entry; otherwise the entry answers
    /// every subleaf.
    pub significant_index: bool,
    /// EAX output.
    pub eax: u32,
    /// EBX output.
    pub ebx: u32,
    /// ECX output.
    pub ecx: u32,
    /// EDX output.
    pub edx: u32,
}

/// Well-known bits of x86 control registers and EFER, so guest setup code
/// can say what it means instead of writing magic numbers.
pub mod bits {
    /// CR0.PE: protected mode enable.
    pub const CR0_PE: u64 = 1 << 0;
    /// CR0.MP: monitor coprocessor.
    pub const CR0_MP: u64 = 1 << 1;
    /// CR0.ET: extension type (always one on modern CPUs).
    pub const CR0_ET: u64 = 1 << 4;
    /// CR0.NE: native x87 error reporting.
    pub const CR0_NE: u64 = 1 << 5;
    /// CR0.WP: write protect in supervisor mode.
    pub const CR0_WP: u64 = 1 << 16;
    /// CR0.PG: paging enable.
    pub const CR0_PG: u64 = 1 << 31;
    /// CR4.PAE: physical address extension (required for long mode).
    pub const CR4_PAE: u64 = 1 << 5;
    /// CR4.OSFXSR: OS supports FXSAVE/FXRSTOR.
    pub const CR4_OSFXSR: u64 = 1 << 9;
    /// CR4.OSXMMEXCPT: OS handles SIMD exceptions.
    pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
    /// EFER.SCE: SYSCALL enable.
    pub const EFER_SCE: u64 = 1 << 0;
    /// EFER.LME: long mode enable.
    pub const EFER_LME: u64 = 1 << 8;
    /// EFER.LMA: long mode active.
    pub const EFER_LMA: u64 = 1 << 10;
    /// EFER.NXE: no-execute enable.
    pub const EFER_NXE: u64 = 1 << 11;
    /// RFLAGS.IF: interrupts enabled.
    pub const RFLAGS_IF: u64 = 1 << 9;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zero_except_documented_constants() {
        let s = SpecialRegisters::default();
        assert_eq!(s.cr0, 0);
        assert!(!s.cs.present);
        assert_eq!(StandardRegisters::RFLAGS_RESERVED, 2);
        assert_eq!(FpuState::FCW_DEFAULT, 0x37f);
        assert_eq!(bits::CR0_PG | bits::CR0_PE, 0x8000_0001);
        assert_eq!(bits::EFER_LME | bits::EFER_LMA, 0x500);
    }

    #[test]
    fn msr_entry_new_keeps_fields() {
        let m = MsrEntry::new(0xc000_0080, 0x500);
        assert_eq!((m.index, m.data), (0xc000_0080, 0x500));
    }
}
