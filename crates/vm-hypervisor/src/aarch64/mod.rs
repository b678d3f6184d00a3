// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! aarch64: neutral register types and the `VcpuAarch64` extension trait.

pub mod regs;

pub use regs::{CoreRegisters, SystemRegister, VcpuInit};
