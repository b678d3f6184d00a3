// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hypervisor-agnostic Hypervisor, Vm and Vcpu traits with a device bus for guest I/O.

pub mod aarch64;
pub mod x86_64;
