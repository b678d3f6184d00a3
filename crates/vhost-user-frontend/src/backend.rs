// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The seam between the virtio-mmio state machine and whatever serves the
//! device (a vhost-user daemon, or a mock in tests).

use std::fmt;

/// Where the driver put one virtqueue, as the transport hands it to the
/// backend when the driver sets QueueReady.
///
/// The transport has checked the size (a power of two, at most
/// QueueNumMax) and the alignment of each area; that the areas lie in guest
/// memory is for the backend to check, since only it knows the memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// Number of descriptors (QueueNum).
    pub size: u16,
    /// Guest address of the descriptor table (QueueDesc).
    pub desc: u64,
    /// Guest address of the driver (available) ring (QueueDriver).
    pub driver: u64,
    /// Guest address of the device (used) ring (QueueDevice).
    pub device: u64,
}

/// A failure the backend reports; the transport turns it into
/// DEVICE_NEEDS_RESET or a failed access.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the virtio-mmio transport needs from the device behind it.
///
/// The transport calls these under its own lock, one at a time.
pub trait Backend: Send {
    /// The device's feature bits (all 64; the transport shows them 32 at a
    /// time through DeviceFeatures). An error (a backend that is gone) sets
    /// DEVICE_NEEDS_RESET and shows the driver no features.
    fn device_features(&mut self) -> Result<u64, BackendError>;
    /// The driver accepted `features` (a subset of [`device_features`]) and
    /// is setting FEATURES_OK. An error leaves FEATURES_OK clear.
    ///
    /// [`device_features`]: Backend::device_features
    fn set_features(&mut self, features: u64) -> Result<(), BackendError>;
    /// Read `data.len()` bytes of the device's config space at `offset`.
    fn read_config(&mut self, offset: u32, data: &mut [u8]) -> Result<(), BackendError>;
    /// Write `data` to the device's config space at `offset`.
    fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<(), BackendError>;
    /// The driver set QueueReady for queue `index`.
    fn activate_queue(&mut self, index: u16, queue: QueueConfig) -> Result<(), BackendError>;
    /// The driver wrote `index` to QueueNotify. A backend whose kick eventfd
    /// the hypervisor signals itself never sees this.
    fn notify(&mut self, index: u16) -> Result<(), BackendError>;
    /// The driver reset the device (Status 0): stop every queue.
    fn reset(&mut self) -> Result<(), BackendError>;
    /// Is the backend still there? A VMM's event loop asks from time to
    /// time (or when the backend's connection becomes readable) through
    /// [`MmioTransport::check_backend`]; the default says yes.
    ///
    /// [`MmioTransport::check_backend`]: crate::MmioTransport::check_backend
    fn check(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

impl fmt::Debug for dyn Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Backend")
    }
}
