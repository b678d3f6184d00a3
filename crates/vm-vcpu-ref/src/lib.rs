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
//!
//! aarch64 guests (plain data, built and tested on every host):
//! - [`gic`]: GICv2/v3 layout description.
//! - [`fdt`]: the device tree a kernel boots with.
//!
//! Everything that writes guest memory is generic over vm-memory's
//! [`GuestMemory`](vm_memory::GuestMemory), range-checks the whole structure
//! before writing and reports bad input as an [`Error`], never a panic.

pub mod error;
pub mod fdt;
pub mod gdt;
pub mod gic;
mod guest;
pub mod long_mode;
pub mod mptable;
pub mod paging;
pub mod protected_mode;

pub use error::{Error, Result};
