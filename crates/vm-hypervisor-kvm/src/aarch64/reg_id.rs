// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Ids of arm64 vCPU registers as `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` take
//! them (Linux `arch/arm64/include/uapi/asm/kvm.h`).
//!
//! A core register's id is its byte offset in the arm64 `struct kvm_regs`
//! divided by 4, or'ed with the architecture, size and "core" group fields;
//! a system register's id packs its MRS/MSR encoding.

use vm_hypervisor::aarch64::SystemRegister;

/// Architecture field of an arm64 register id (`KVM_REG_ARM64`).
pub const KVM_REG_ARM64: u64 = 0x6000_0000_0000_0000;
/// Size field for a 64-bit register (`KVM_REG_SIZE_U64`).
pub const KVM_REG_SIZE_U64: u64 = 0x0030_0000_0000_0000;
/// Group of the registers in `struct kvm_regs` (`KVM_REG_ARM_CORE`).
pub const KVM_REG_ARM_CORE: u64 = 0x0010 << 16;
/// Group of the system registers (`KVM_REG_ARM64_SYSREG`).
pub const KVM_REG_ARM64_SYSREG: u64 = 0x0013 << 16;

/// Byte offsets in the arm64 `struct kvm_regs`, whose first member is
/// `struct user_pt_regs { u64 regs[31]; u64 sp; u64 pc; u64 pstate; }`,
/// followed by `u64 sp_el1; u64 elr_el1; u64 spsr[5];`.
mod offset {
    pub const X0: u64 = 0;
    pub const SP: u64 = 31 * 8;
    pub const PC: u64 = SP + 8;
    pub const PSTATE: u64 = PC + 8;
    pub const SP_EL1: u64 = PSTATE + 8;
    pub const ELR_EL1: u64 = SP_EL1 + 8;
    pub const SPSR: u64 = ELR_EL1 + 8;
}

/// Number of general-purpose registers X0-X30.
pub const NUM_X: usize = 31;
/// Number of banked SPSRs KVM exposes (`KVM_NR_SPSR`).
pub const NUM_SPSR: usize = 5;

/// The id of the 64-bit core register at byte `offset` of `struct kvm_regs`.
pub const fn core(offset: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4)
}

/// SP_EL0.
pub const SP: u64 = core(offset::SP);
/// The program counter.
pub const PC: u64 = core(offset::PC);
/// PSTATE.
pub const PSTATE: u64 = core(offset::PSTATE);
/// SP_EL1.
pub const SP_EL1: u64 = core(offset::SP_EL1);
/// ELR_EL1.
pub const ELR_EL1: u64 = core(offset::ELR_EL1);

/// Xn, or `None` for `n` above 30.
pub const fn x(n: usize) -> Option<u64> {
    if n < NUM_X {
        Some(core(offset::X0 + 8 * n as u64))
    } else {
        None
    }
}

/// SPSR number `n` (EL1, abt, und, irq, fiq), or `None` for `n` above 4.
pub const fn spsr(n: usize) -> Option<u64> {
    if n < NUM_SPSR {
        Some(core(offset::SPSR + 8 * n as u64))
    } else {
        None
    }
}

/// The id of a system register, or `None` when a field of its encoding is
/// wider than the architecture allows.
pub const fn sysreg(r: SystemRegister) -> Option<u64> {
    if !r.is_valid() {
        return None;
    }
    Some(
        KVM_REG_ARM64
            | KVM_REG_SIZE_U64
            | KVM_REG_ARM64_SYSREG
            | (r.op0 as u64) << 14
            | (r.op1 as u64) << 11
            | (r.crn as u64) << 7
            | (r.crm as u64) << 3
            | r.op2 as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_ids_are_the_uapi_ones() {
        assert_eq!(x(0), Some(0x6030_0000_0010_0000));
        assert_eq!(x(1), Some(0x6030_0000_0010_0002));
        assert_eq!(x(30), Some(0x6030_0000_0010_003c));
        assert_eq!(x(31), None);
        assert_eq!(SP, 0x6030_0000_0010_003e);
        assert_eq!(PC, 0x6030_0000_0010_0040);
        assert_eq!(PSTATE, 0x6030_0000_0010_0042);
        assert_eq!(SP_EL1, 0x6030_0000_0010_0044);
        assert_eq!(ELR_EL1, 0x6030_0000_0010_0046);
        assert_eq!(spsr(0), Some(0x6030_0000_0010_0048));
        assert_eq!(spsr(4), Some(0x6030_0000_0010_0050));
        assert_eq!(spsr(5), None);
    }

    #[test]
    fn sysreg_ids_pack_the_encoding() {
        assert_eq!(
            sysreg(SystemRegister::MPIDR_EL1),
            Some(0x6030_0000_0013_c005)
        );
        // SCTLR_EL1: op0 3, op1 0, CRn 1, CRm 0, op2 0.
        assert_eq!(
            sysreg(SystemRegister::new(3, 0, 1, 0, 0)),
            Some(0x6030_0000_0013_c080)
        );
        // Every field at its maximum fills exactly the low 16 bits.
        assert_eq!(
            sysreg(SystemRegister::new(3, 7, 15, 15, 7)),
            Some(0x6030_0000_0013_ffff)
        );
        assert_eq!(sysreg(SystemRegister::new(4, 0, 0, 0, 0)), None);
        assert_eq!(sysreg(SystemRegister::new(3, 0, 0, 16, 0)), None);
    }

    /// On an aarch64 host the constants and offsets are also checked
    /// against kvm-bindings' generated uapi.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn ids_match_kvm_bindings() {
        use kvm_bindings::{kvm_regs, user_pt_regs};
        use std::mem::offset_of;

        assert_eq!(KVM_REG_ARM64, kvm_bindings::KVM_REG_ARM64);
        assert_eq!(KVM_REG_SIZE_U64, kvm_bindings::KVM_REG_SIZE_U64);
        assert_eq!(KVM_REG_ARM_CORE, u64::from(kvm_bindings::KVM_REG_ARM_CORE));
        assert_eq!(
            KVM_REG_ARM64_SYSREG,
            u64::from(kvm_bindings::KVM_REG_ARM64_SYSREG)
        );
        let pt = offset_of!(kvm_regs, regs) as u64;
        assert_eq!(pt, 0);
        assert_eq!(offset::X0, pt + offset_of!(user_pt_regs, regs) as u64);
        assert_eq!(offset::SP, pt + offset_of!(user_pt_regs, sp) as u64);
        assert_eq!(offset::PC, pt + offset_of!(user_pt_regs, pc) as u64);
        assert_eq!(offset::PSTATE, pt + offset_of!(user_pt_regs, pstate) as u64);
        assert_eq!(offset::SP_EL1, offset_of!(kvm_regs, sp_el1) as u64);
        assert_eq!(offset::ELR_EL1, offset_of!(kvm_regs, elr_el1) as u64);
        assert_eq!(offset::SPSR, offset_of!(kvm_regs, spsr) as u64);
    }
}
