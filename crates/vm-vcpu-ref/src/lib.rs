// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Typed boot primitives (GDT, page tables, MP table, CPUID, boot params, PVH, FDT/GIC) over vm-hypervisor.
//!
//! This crate is at its start; see the workspace README for the plan.
