// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Neutral aarch64 register state.
//!
//! Plain data that compiles on every host so it is built and tested on
//! x86_64 too; only a backend running on an aarch64 host uses it.

/// The general-purpose, stack, program-counter and state registers of one
/// vCPU at EL1.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoreRegisters {
    /// X0-X30 (X29 is the frame pointer, X30 the link register).
    pub x: [u64; 31],
    /// SP_EL0.
    pub sp: u64,
    /// Program counter.
    pub pc: u64,
    /// PSTATE (as SPSR bits).
    pub pstate: u64,
    /// SP_EL1.
    pub sp_el1: u64,
    /// ELR_EL1.
    pub elr_el1: u64,
    /// SPSR_EL1, SPSR_abt, SPSR_und, SPSR_irq, SPSR_fiq.
    pub spsr: [u64; 5],
}

impl CoreRegisters {
    /// PSTATE for EL1h with D, A, I and F masked: how Linux expects to be
    /// entered on arm64.
    pub const PSTATE_EL1H_DAIF_MASKED: u64 = 0x3c5;
}

/// A system register named by its MRS/MSR encoding.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemRegister {
    /// op0 (2 bits).
    pub op0: u8,
    /// op1 (3 bits).
    pub op1: u8,
    /// CRn (4 bits).
    pub crn: u8,
    /// CRm (4 bits).
    pub crm: u8,
    /// op2 (3 bits).
    pub op2: u8,
}

impl SystemRegister {
    /// MPIDR_EL1 (affinity of the vCPU).
    pub const MPIDR_EL1: Self = Self::new(3, 0, 0, 0, 5);

    /// The register with encoding `op0, op1, CRn, CRm, op2`.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// Whether each field fits its architectural width.
    pub const fn is_valid(&self) -> bool {
        self.op0 < 4 && self.op1 < 8 && self.crn < 16 && self.crm < 16 && self.op2 < 8
    }
}

/// Features requested when a vCPU is initialised.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VcpuInit {
    /// Start the vCPU powered off (secondary CPUs brought up by PSCI).
    pub power_off: bool,
    /// Run EL1 in AArch32 state.
    pub el1_32bit: bool,
    /// Use PSCI 0.2 or later.
    pub psci_0_2: bool,
    /// Enable the PMUv3 for this vCPU.
    pub pmu_v3: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysreg_validity_follows_field_widths() {
        assert!(SystemRegister::MPIDR_EL1.is_valid());
        assert!(!SystemRegister::new(4, 0, 0, 0, 0).is_valid());
        assert!(!SystemRegister::new(3, 0, 16, 0, 0).is_valid());
    }

    #[test]
    fn core_registers_default_is_zero() {
        let r = CoreRegisters::default();
        assert_eq!(r.x, [0; 31]);
        assert_eq!(CoreRegisters::PSTATE_EL1H_DAIF_MASKED & 0xf, 0x5);
    }
}
