// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

#![doc = include_str!("../README.md")]

pub mod aarch64;
mod hypervisor;
mod vcpu;
mod vm;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub use aarch64::KvmGicV3;
pub use hypervisor::{Kvm, KVM_PATH};
pub use vcpu::KvmVcpu;
#[cfg(target_arch = "x86_64")]
pub use vm::KVM_TSS_ADDRESS;
pub use vm::{KvmGuestMemory, KvmVm};
