// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A hypervisor-agnostic virtio-mmio transport (virtio 1.2, MMIO version 2)
//! for devices served by a vhost-user backend daemon.
//!
//! [`MmioTransport`] implements `vm_device_bus::IoHandler`, so the same
//! object serves a KVM guest (from a vCPU loop) and a Xen guest (from an
//! IOREQ server). The register state machine is kept apart from whatever
//! does the device's work behind the [`Backend`] trait: [`VhostUserRelay`]
//! relays it to a vhost-user backend daemon over its Unix socket, sharing
//! guest memory described by [`SharedMemory`]. When the daemon signals a
//! queue's call eventfd, the VMM calls
//! [`MmioTransport::used_buffer_interrupt`] with its [`Interrupt`].
//!
//! ```
//! use vhost_user_frontend::{Backend, BackendError, DeviceType, MmioTransport, QueueConfig};
//!
//! struct Nothing;
//! impl Backend for Nothing {
//!     fn device_features(&mut self) -> Result<u64, BackendError> { Ok(1 << 32) }
//!     fn set_features(&mut self, _: u64) -> Result<(), BackendError> { Ok(()) }
//!     fn read_config(&mut self, _: u32, d: &mut [u8]) -> Result<(), BackendError> { d.fill(0); Ok(()) }
//!     fn write_config(&mut self, _: u32, _: &[u8]) -> Result<(), BackendError> { Ok(()) }
//!     fn activate_queue(&mut self, _: u16, _: QueueConfig) -> Result<(), BackendError> { Ok(()) }
//!     fn notify(&mut self, _: u16) -> Result<(), BackendError> { Ok(()) }
//!     fn reset(&mut self) -> Result<(), BackendError> { Ok(()) }
//! }
//!
//! let dev = MmioTransport::new(DeviceType::Rng.profile(), Nothing);
//! let mut magic = [0; 4];
//! dev.read_register(0, &mut magic).unwrap();
//! assert_eq!(&magic, b"virt");
//! // Guest mistakes are errors, not panics.
//! assert!(dev.read_register(0, &mut [0; 2]).is_err());
//! ```

pub mod backend;
pub mod devices;
pub mod error;
pub mod interrupt;
pub mod memory;
pub mod mmio;
pub mod vhost_user;
pub mod xen_mmap;

pub use backend::{Backend, BackendError, QueueConfig};
pub use devices::{DeviceProfile, DeviceType};
pub use error::{Error, RelayError};
pub use interrupt::Interrupt;
pub use memory::{Mapping, MemoryError, SharedMemory, SharedRegion};
pub use mmio::MmioTransport;
pub use vhost_user::{QueueEventFds, RelayConfig, VhostUserRelay};

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
