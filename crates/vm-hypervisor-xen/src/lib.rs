// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Xen backend of the rust-vmm hypervisor crates.
//!
//! Device-model mode: [`attach::Xen`] implements the `vm-hypervisor` traits over a domain the
//! toolstack made (`Hypervisor::attach_vm`), with guest memory through `xen-foreignmem`, guest
//! I/O through an `xen-ioreq` server onto the caller's device bus inside `Vcpu::run`, and
//! interrupts through dm_op; see [`attach`].
//!
//! Toolstack mode: [`builder`] makes a PVH domain from a
//! Linux kernel and initrd the way `xl create` does, with hypercalls through privcmd and
//! requests to xenstored, and no C Xen library; [`console`] reads the domain's console ring.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vm_hypervisor_xen::builder::{self, PvhConfig, XenOps};
//! use vm_hypervisor_xen::console::Console;
//!
//! let mut config = PvhConfig::new("guest", "/boot/vmlinuz");
//! config.ramdisk = Some("/boot/initrd.img".into());
//! let domain = builder::build(Arc::new(XenOps::open()?), &config)?;
//! let mut console = Console::attach(&domain)?;
//! console.wait_for("login:", Duration::from_secs(60))?;
//! domain.destroy()?;
//! # Ok::<(), vm_hypervisor_xen::Error>(())
//! ```

#![deny(missing_docs)]

pub mod attach;
#[cfg(target_arch = "x86_64")]
pub mod builder;
#[cfg(target_arch = "x86_64")]
pub mod console;
mod error;

pub use error::{Error, Result};
