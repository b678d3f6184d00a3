// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! x86_64: neutral register types and the [`VcpuX86_64`/`VmX86_64`
//! extension traits.

pub mod regs;

pub use regs::{
    bits, CpuidEntry, DescriptorTable, FpuState, MsrEntry, Segment, SpecialRegisters,
    StandardRegisters,
};
