// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! aarch64: neutral register types and the [`VcpuAarch64`] extension trait.
//!
//! Everything here is plain Rust that builds on every host, so the types
//! and the trait's object safety are tested on x86_64 CI too; only a backend
//! running on an aarch64 host implements the trait.

pub mod regs;

pub use regs::{CoreRegisters, SystemRegister, VcpuInit};

use crate::error::Result;
use crate::vcpu::Vcpu;

/// aarch64 state of a vCPU.
pub trait VcpuAarch64: Vcpu {
    /// Reset the vCPU with `init`'s features (must come before running).
    fn init(&self, init: &VcpuInit) -> Result<()>;
    /// X0-X30, SP, PC, PSTATE and the EL1 banked registers.
    fn get_core_registers(&self) -> Result<CoreRegisters>;
    /// Set X0-X30, SP, PC, PSTATE and the EL1 banked registers.
    fn set_core_registers(&self, regs: &CoreRegisters) -> Result<()>;
    /// Read a system register.
    fn get_system_register(&self, reg: SystemRegister) -> Result<u64>;
    /// Write a system register.
    fn set_system_register(&self, reg: SystemRegister, value: u64) -> Result<()>;
}
