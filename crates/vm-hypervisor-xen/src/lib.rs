// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Xen backend of the rust-vmm hypervisor crates.
//!
//! Device-model mode: [`attach::Xen`] implements the `vm-hypervisor` traits over a domain the
//! toolstack made (`Hypervisor::attach_vm`), with guest memory through `xen-foreignmem`, guest
//! I/O through an `xen-ioreq` server onto the caller's device bus inside `Vcpu::run`, and
//! interrupts through dm_op; see [`attach`].
//!
//! Toolstack mode: [`builder`] makes a domain from a Linux kernel and initrd the way
//! `xl create` does (a PVH guest on x86_64, an Arm guest on aarch64), with hypercalls through
//! privcmd and requests to xenstored, and no C Xen library; [`console`] reads the domain's
//! console ring.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vm_hypervisor::{DeviceError, Hypervisor, IoBus, IoHandler, IoSpace, Vcpu, VcpuExit, Vm, VmId};
//! use vm_hypervisor_xen::attach::Xen;
//!
//! /// Ports that read as zero and print what is written.
//! struct Port;
//! impl IoHandler for Port {
//!     fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
//!         data.fill(0);
//!         Ok(())
//!     }
//!     fn write(&self, _: u64, data: &[u8]) -> Result<(), DeviceError> {
//!         println!("{data:?}");
//!         Ok(())
//!     }
//! }
//!
//! // Domain 7 was created paused by the toolstack.
//! let vm = Xen::open()?.attach_vm(VmId(7))?;
//! let mut bus = IoBus::new();
//! bus.insert(IoSpace::Pio, 0x5e0, 8, Arc::new(Port)).expect("free ports");
//! vm.claim_io_range(IoSpace::Pio, 0x5e0, 8)?;
//! let mut vcpu = vm.create_vcpu(0)?;
//! while !matches!(vcpu.run(&bus)?, VcpuExit::SystemEvent(_) | VcpuExit::Shutdown) {}
//! # Ok::<(), vm_hypervisor::Error>(())
//! ```

#![deny(missing_docs)]

pub mod attach;
pub mod builder;
pub mod console;
mod error;

pub use error::{Error, Result};

// Compiles the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
