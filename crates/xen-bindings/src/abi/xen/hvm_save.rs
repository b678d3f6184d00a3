// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! HVM save records (`hvm/save.h`, `arch-x86/hvm/save.h`), the format of
//! `XEN_DOMCTL_{get,set}hvmcontext`.
//!
//! A context is a sequence of records, each a [`HvmSaveDescriptor`] followed by `length` bytes
//! of the type its `typecode` names, ending with an [`HVM_SAVE_CODE_END`] record. A toolstack
//! that sets a vCPU's initial state takes the header record from the domain's own context
//! (Xen checks it against the host) and sends header, CPU record and end record back.

use crate::abi::impl_pod;

/// Typecode of the end record (no payload).
pub const HVM_SAVE_CODE_END: u16 = 0;
/// Typecode of the header record ([`HvmSaveHeader`]).
pub const HVM_SAVE_CODE_HEADER: u16 = 1;
/// Typecode of a vCPU's register record ([`HvmHwCpu`]).
pub const HVM_SAVE_CODE_CPU: u16 = 2;
/// Typecode of a vCPU's MTRR record ([`HvmHwMtrr`]).
pub const HVM_SAVE_CODE_MTRR: u16 = 14;

/// `HVM_FILE_MAGIC`: the header's magic.
pub const HVM_FILE_MAGIC: u32 = 0x5438_1286;

/// `XEN_X86_FPU_INITIALISED` in [`HvmHwCpu::flags`].
pub const XEN_X86_FPU_INITIALISED: u32 = 1 << 0;

/// `struct hvm_save_descriptor`: the head of each record.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HvmSaveDescriptor {
    /// The record type (`HVM_SAVE_CODE_*`).
    pub typecode: u16,
    /// Instance (the vCPU for per-vCPU records).
    pub instance: u16,
    /// Payload length in bytes, not counting this descriptor.
    pub length: u32,
}

/// `struct hvm_save_header`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HvmSaveHeader {
    /// [`HVM_FILE_MAGIC`].
    pub magic: u32,
    /// File format version.
    pub version: u32,
    /// Version of the Xen that saved it.
    pub changeset: u64,
    /// CPUID leaf 1 EAX of the saving host.
    pub cpuid: u32,
    /// The guest's TSC frequency in kHz.
    pub gtsc_khz: u32,
}

/// `struct hvm_hw_cpu`: a vCPU's registers (x86).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HvmHwCpu {
    /// FXSAVE area.
    pub fpu_regs: [u8; 512],
    /// General-purpose registers, in the order rax rbx rcx rdx rbp rsi rdi rsp r8..r15.
    pub gprs: [u64; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// Flags.
    pub rflags: u64,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// DR0-DR3, DR6, DR7.
    pub dr: [u64; 6],
    /// Selectors: cs ds es fs gs ss tr ldtr.
    pub sel: [u32; 8],
    /// Limits: cs ds es fs gs ss tr ldtr idtr gdtr.
    pub limit: [u32; 10],
    /// Bases: cs ds es fs gs ss tr ldtr idtr gdtr.
    pub base: [u64; 10],
    /// Attributes (VMX-style access rights, packed): cs ds es fs gs ss tr ldtr.
    pub arbytes: [u32; 8],
    /// SYSENTER_CS, SYSENTER_ESP, SYSENTER_EIP.
    pub sysenter: [u64; 3],
    /// Kernel GS base.
    pub shadow_gs: u64,
    /// `msr_flags`: obsolete, ignored by Xen, saved as zero. It still takes its eight bytes:
    /// without it every field after `shadow_gs` sits eight bytes early, the record is eight
    /// bytes short (Xen zero-extends it) and EFER lands in Xen's SYSCALL mask.
    pub msr_flags: u64,
    /// LSTAR, STAR, CSTAR, SYSCALL mask.
    pub msr_syscall: [u64; 4],
    /// EFER.
    pub msr_efer: u64,
    /// TSC_AUX.
    pub msr_tsc_aux: u64,
    /// TSC.
    pub tsc: u64,
    /// Pending event (vector, type, error-valid, valid bit 31).
    pub pending_event: u32,
    /// Pending event's error code.
    pub error_code: u32,
    /// `XEN_X86_FPU_INITIALISED`.
    pub flags: u32,
    /// Padding.
    pub pad0: u32,
}

impl Default for HvmHwCpu {
    fn default() -> Self {
        crate::abi::Pod::zeroed()
    }
}

/// Index of a segment in [`HvmHwCpu::sel`], [`HvmHwCpu::limit`], [`HvmHwCpu::base`] and
/// [`HvmHwCpu::arbytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HvmSegment {
    /// CS.
    Cs = 0,
    /// DS.
    Ds = 1,
    /// ES.
    Es = 2,
    /// FS.
    Fs = 3,
    /// GS.
    Gs = 4,
    /// SS.
    Ss = 5,
    /// TR.
    Tr = 6,
    /// LDTR.
    Ldtr = 7,
}

/// Index of RBX in [`HvmHwCpu::gprs`] (rax, rbx, rcx, rdx, rbp, rsi, rdi, rsp, r8-r15).
pub const HVM_GPR_RBX: usize = 1;
/// Index of RSI in [`HvmHwCpu::gprs`].
pub const HVM_GPR_RSI: usize = 5;
/// Index of DR6 in [`HvmHwCpu::dr`].
pub const HVM_DR6: usize = 4;
/// Index of DR7 in [`HvmHwCpu::dr`].
pub const HVM_DR7: usize = 5;

/// `struct hvm_hw_mtrr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HvmHwMtrr {
    /// PAT.
    pub msr_pat_cr: u64,
    /// Variable-range base/mask pairs (`MTRR_VCNT` = 8).
    pub msr_mtrr_var: [u64; 16],
    /// Fixed-range MSRs (`NUM_FIXED_MSR` = 11).
    pub msr_mtrr_fixed: [u64; 11],
    /// MTRRcap.
    pub msr_mtrr_cap: u64,
    /// MTRRdefType.
    pub msr_mtrr_def_type: u64,
}

/// MTRR type write-back.
pub const MTRR_TYPE_WRBACK: u64 = 6;
/// MTRRdefType: MTRRs enabled.
pub const MTRR_DEF_TYPE_ENABLE: u64 = 1 << 11;

impl_pod!(HvmSaveDescriptor, HvmSaveHeader, HvmHwCpu, HvmHwMtrr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            HvmSaveDescriptor,
            size = 8,
            align = 4,
            typecode = 0,
            instance = 2,
            length = 4
        );
        assert_layout!(
            HvmSaveHeader,
            size = 24,
            align = 8,
            magic = 0,
            version = 4,
            changeset = 8,
            cpuid = 16,
            gtsc_khz = 20
        );
        // arch-x86/hvm/save.h: rax at 512, rip 640, cr0 656, dr0 688, cs_sel 736,
        // cs_limit 768, cs_base 808, cs_arbytes 888, sysenter_cs 920, shadow_gs 944,
        // msr_flags 952, msr_lstar 960, msr_efer 992, tsc 1008, pending_event 1016,
        // flags 1024; 1032 bytes (the length of the CPU records Xen 4.17 and 4.20 save).
        assert_layout!(
            HvmHwCpu,
            size = 1032,
            align = 8,
            gprs = 512,
            rip = 640,
            rflags = 648,
            cr0 = 656,
            cr2 = 664,
            cr3 = 672,
            cr4 = 680,
            dr = 688,
            sel = 736,
            limit = 768,
            base = 808,
            arbytes = 888,
            sysenter = 920,
            shadow_gs = 944,
            msr_flags = 952,
            msr_syscall = 960,
            msr_efer = 992,
            msr_tsc_aux = 1000,
            tsc = 1008,
            pending_event = 1016,
            error_code = 1020,
            flags = 1024,
            pad0 = 1028
        );
        // rbx at 520 and rsi at 552 in save.h's `struct hvm_hw_cpu`.
        assert_eq!(512 + 8 * HVM_GPR_RBX, 520);
        assert_eq!(512 + 8 * HVM_GPR_RSI, 552);
        assert_layout!(
            HvmHwMtrr,
            size = 240,
            align = 8,
            msr_pat_cr = 0,
            msr_mtrr_var = 8,
            msr_mtrr_fixed = 136,
            msr_mtrr_cap = 224,
            msr_mtrr_def_type = 232
        );
        assert_eq!(
            [
                HVM_SAVE_CODE_END,
                HVM_SAVE_CODE_HEADER,
                HVM_SAVE_CODE_CPU,
                HVM_SAVE_CODE_MTRR
            ],
            [0, 1, 2, 14]
        );
    }
}
