// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

#![doc = include_str!("../README.md")]

mod convert;
mod hypervisor;
mod vcpu;
mod vm;

pub use hypervisor::{Kvm, KVM_PATH};
pub use vcpu::KvmVcpu;
pub use vm::KvmVm;
