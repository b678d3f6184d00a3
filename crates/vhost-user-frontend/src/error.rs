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

/// What went wrong between the relay and its vhost-user daemon.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The daemon's socket could not be connected (or set up) in time.
    #[error("cannot connect to the vhost-user daemon at {}", socket.display())]
    Connect {
        /// The socket.
        socket: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The daemon closed the connection (it exited or crashed).
    #[error("the vhost-user daemon closed the connection ({op})")]
    Disconnected {
        /// What the relay was doing.
        op: &'static str,
    },
    /// A request failed (refused, timed out, or a malformed reply).
    #[error("vhost-user {op} failed")]
    Protocol {
        /// The request.
        op: &'static str,
        /// The vhost crate's error.
        #[source]
        source: vhost::Error,
    },
    /// An eventfd operation failed.
    #[error("cannot {op}")]
    Eventfd {
        /// What was attempted.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The daemon has fewer queues than the device profile.
    #[error("the daemon offers {offered} queues, the device needs {needed}")]
    TooFewQueues {
        /// GET_QUEUE_NUM's answer.
        offered: u64,
        /// The profile's queue count.
        needed: u16,
    },
    /// A queue area the driver set up is not in the shared memory.
    #[error("queue {index}: {area} at guest address {addr:#x} ({len} bytes) is not in shared guest memory")]
    QueueOutsideMemory {
        /// Queue index.
        index: u16,
        /// Which area.
        area: &'static str,
        /// Its guest address.
        addr: u64,
        /// Its length.
        len: u64,
    },
    /// A queue index past the device's queues.
    #[error("queue {index} does not exist (the device has {num_queues})")]
    NoQueue {
        /// Queue index.
        index: u16,
        /// Queues the device has.
        num_queues: u16,
    },
    /// GET_CONFIG answered with another size than asked.
    #[error("GET_CONFIG returned {got} bytes, asked for {asked}")]
    ConfigSize {
        /// Bytes asked for.
        asked: usize,
        /// Bytes returned.
        got: usize,
    },
    /// The daemon did not answer in time; the connection was shut down.
    #[error("the vhost-user daemon did not answer within {timeout:?}")]
    Timeout {
        /// The reply timeout.
        timeout: std::time::Duration,
    },
    /// An earlier failure dropped the connection; the device must be reset.
    #[error("the vhost-user connection failed earlier; the device needs a reset")]
    NeedsReset,
    /// The memory is Xen's but the daemon does not offer protocol feature
    /// XEN_MMAP (it was built without Xen support).
    #[error("the guest's memory is Xen's, and the daemon does not offer XEN_MMAP (build it with its `xen` feature)")]
    NoXenMmap,
    /// The Xen memory table could not be sent, or the daemon refused it.
    #[error("Xen SET_MEM_TABLE failed: {reason}")]
    XenMemTable {
        /// Why.
        reason: String,
    },
}

/// `e` and its sources, `: `-separated, for a log line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
