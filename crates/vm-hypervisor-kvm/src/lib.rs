// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! KVM backend of the vm-hypervisor traits.
//!
//! This crate is at its start; see the workspace README for the plan.
