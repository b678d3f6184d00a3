// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hypervisor-agnostic Hypervisor, Vm and Vcpu traits with a device bus for guest I/O.
//!
//! This crate is at its start; see the workspace README for the plan.
