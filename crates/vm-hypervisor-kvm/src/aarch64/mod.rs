// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! aarch64: register ids for `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` and, on an
//! aarch64 host, [`VcpuAarch64`](vm_hypervisor::aarch64::VcpuAarch64) for
//! [`KvmVcpu`](crate::KvmVcpu) and the in-kernel GICv3.
//!
//! The register ids are plain arithmetic and built on every host so x86_64
//! CI checks them against the uapi facts too.

pub mod reg_id;

#[cfg(target_arch = "aarch64")]
mod gic;
#[cfg(target_arch = "aarch64")]
mod vcpu;

#[cfg(target_arch = "aarch64")]
pub use gic::KvmGicV3;
