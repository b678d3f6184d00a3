// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the IOREQ server.

use std::io;

use xen_bindings::DomId;

/// Why a synchronous slot or a buffered entry does not decode into a request.
///
/// Such a request is still completed (reads return all ones), so the vCPU does not hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The access size is not 1, 2, 4 or 8.
    #[error("ioreq access size {0} is not 1, 2, 4 or 8")]
    BadSize(u32),
    /// The repeat count is zero.
    #[error("ioreq repeat count is 0")]
    ZeroCount,
    /// `count * size` exceeds [`crate::request::MAX_REP_BYTES`].
    #[error("ioreq repeats {count} x {size} bytes, more than the bound")]
    TooManyReps {
        /// The count.
        count: u32,
        /// The element size.
        size: u8,
    },
    /// The request type is none this server knows.
    #[error("unknown ioreq type {0}")]
    UnknownType(u8),
    /// A port number above 0xffff.
    #[error("port I/O to {0:#x}, beyond port 0xffff")]
    BadPort(u64),
    /// A buffered entry asks for a read (buffered requests are posted writes).
    #[error("buffered ioreq at {0:#x} is a read")]
    BufferedRead(u32),
}

/// Problems of the buffered ring that stop the reader from trusting its pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The producer is more than a ring ahead of the consumer.
    #[error("buffered ioreq ring pointers inconsistent: read {read:#x}, write {write:#x}")]
    BadPointers {
        /// `read_pointer`.
        read: u32,
        /// `write_pointer`.
        write: u32,
    },
    /// An 8-byte entry whose second slot has not been published.
    #[error("buffered ioreq at slot {read:#x} needs two slots but only one is published")]
    TruncatedEntry {
        /// `read_pointer` of the entry.
        read: u32,
    },
}

/// Errors of the IOREQ server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A privcmd operation (dm_op, mapping) failed.
    #[error("{op} for domain {domid}: {source}")]
    Privcmd {
        /// What the server was doing.
        op: &'static str,
        /// The guest.
        domid: DomId,
        /// The cause.
        #[source]
        source: xen_bindings::privcmd::Error,
    },
    /// An event channel operation failed.
    #[error("{op} for domain {domid}: {source}")]
    Evtchn {
        /// What the server was doing.
        op: &'static str,
        /// The guest.
        domid: DomId,
        /// The cause.
        #[source]
        source: xen_bindings::evtchn::Error,
    },
    /// Xen answered something the server cannot use.
    #[error("{op} for domain {domid}: {what}")]
    BadAnswer {
        /// What the server was doing.
        op: &'static str,
        /// The guest.
        domid: DomId,
        /// What was wrong.
        what: String,
    },
    /// The caller passed something unusable.
    #[error("{op}: invalid argument: {what}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        what: String,
    },
    /// A local system call (epoll, eventfd) failed.
    #[error("{op}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The buffered ring is corrupt.
    #[error("domain {domid}: {source}")]
    Ring {
        /// The guest.
        domid: DomId,
        /// The cause.
        #[source]
        source: RingError,
    },
}

/// Result of IOREQ server operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps a local system call's failure to [`Error::Io`].
pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { op, source }
}
