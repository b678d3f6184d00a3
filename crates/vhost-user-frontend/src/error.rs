// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the virtio-mmio transport.

use thiserror::Error;

use crate::backend::BackendError;

/// What went wrong with one guest access to the virtio-mmio registers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A register access that is not 32 bits wide or not 4-byte aligned.
    #[error("register access at offset {offset:#x} of {size} bytes, expected 4 bytes at a 4-byte aligned offset")]
    InvalidRegisterAccess {
        /// Offset in the device's MMIO window.
        offset: u64,
        /// Size of the access.
        size: usize,
    },
    /// A config space access of a size the spec does not allow.
    #[error("config space access at offset {offset:#x} of {size} bytes, expected 1, 2, 4 or 8")]
    InvalidConfigAccess {
        /// Offset in the device's MMIO window.
        offset: u64,
        /// Size of the access.
        size: usize,
    },
    /// No register at this offset.
    #[error("no virtio-mmio register at offset {offset:#x}")]
    NoRegister {
        /// Offset in the device's MMIO window.
        offset: u64,
    },
    /// A read of a write-only register.
    #[error("register {name} at offset {offset:#x} is write-only")]
    WriteOnly {
        /// Register name as the spec spells it.
        name: &'static str,
        /// Offset in the device's MMIO window.
        offset: u64,
    },
    /// A write to a read-only register.
    #[error("register {name} at offset {offset:#x} is read-only (wrote {value:#x})")]
    ReadOnly {
        /// Register name as the spec spells it.
        name: &'static str,
        /// Offset in the device's MMIO window.
        offset: u64,
        /// Value the driver wrote.
        value: u32,
    },
    /// A queue register written while QueueSel names no queue.
    #[error("QueueSel {index} names no queue (the device has {num_queues})")]
    NoQueue {
        /// Selected queue.
        index: u32,
        /// Queues the device has.
        num_queues: u16,
    },
    /// A queue register written while that queue is ready.
    #[error("queue {index} is ready; its {name} register cannot change")]
    QueueReady {
        /// Selected queue.
        index: u16,
        /// Register name.
        name: &'static str,
    },
    /// QueueReady set on a queue whose set-up is not valid.
    #[error("queue {index}: {reason} (size {size}, desc {desc:#x}, driver {driver:#x}, device {device:#x})")]
    InvalidQueue {
        /// Selected queue.
        index: u16,
        /// What is wrong.
        reason: &'static str,
        /// QueueNum.
        size: u32,
        /// QueueDesc.
        desc: u64,
        /// QueueDriver.
        driver: u64,
        /// QueueDevice.
        device: u64,
    },
    /// A Status write that clears bits the driver set (only 0 may do that).
    #[error("Status write {value:#x} clears bits of {current:#x}; only a write of 0 resets")]
    StatusCleared {
        /// Status before the write.
        current: u32,
        /// Value written.
        value: u32,
    },
    /// A queue or notify write while the device needs a reset.
    #[error("the device needs a reset (Status has DEVICE_NEEDS_RESET)")]
    NeedsReset,
    /// The backend failed an operation.
    #[error("backend failed to {op}")]
    Backend {
        /// What the transport asked for.
        op: &'static str,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
}
