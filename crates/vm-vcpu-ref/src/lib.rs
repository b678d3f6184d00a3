// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! x86_64 guests:
//! - [`gdt`]: typed segment descriptors, selectors and GDTs, converted to
//!   and from vm-hypervisor's neutral [`Segment`](vm_hypervisor::x86_64::Segment).
//! - [`paging`]: identity-mapped 4-level page tables with 2 MiB pages.
//! - [`long_mode`]: one call from guest memory to 64-bit special registers.
//! - [`protected_mode`]: the same for flat 32-bit protected mode.
//! - [`mptable`]: MultiProcessor Specification tables.
//! - [`cpuid`]: per-vCPU normalisation of a CPUID table.
//! - [`linux_boot`]: the Linux zero page and 64-bit entry registers.
//! - [`pvh`]: PVH start info and 32-bit entry state.
//! - [`bootparam`] and [`start_info`]: the zero page's and the PVH start
//!   info's binary layouts (Linux's and Xen's structures, `ByteValued`).
//! - [`memmap`]: memory map entries shared by both boot protocols.
//! - [`acpi`]: RSDP, XSDT, hardware-reduced FADT, DSDT and MADT, so that a
//!   kernel finds its processors.
//!
//! aarch64 guests (plain data, built and tested on every host):
//! - [`gic`]: GICv2/v3 layout description.
//! - [`fdt`]: the device tree a kernel boots with.
//! - [`arm64_boot`]: device tree placement and the boot vCPU's registers.
//!
//! Everything that writes guest memory is generic over vm-memory's
//! [`GuestMemory`](vm_memory::GuestMemory), range-checks the whole structure
//! before writing and reports bad input as an [`Error`], never a panic.

pub mod acpi;
pub mod arm64_boot;
pub mod bootparam;
pub mod cpuid;
pub mod error;
pub mod fdt;
pub mod gdt;
pub mod gic;
mod guest;
pub mod linux_boot;
pub mod long_mode;
pub mod memmap;
pub mod mptable;
pub mod paging;
pub mod protected_mode;
pub mod pvh;
pub mod start_info;

pub use error::{Error, Result};
