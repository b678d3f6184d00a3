// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the privcmd wrapper.

use std::io;

use crate::DomId;

/// Errors of [`super::Privcmd`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A device could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The device path.
        path: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An ioctl failed.
    #[error("privcmd {op} failed: {source}")]
    Ioctl {
        /// The ioctl.
        op: &'static str,
        /// The OS error (errno from the kernel or from Xen).
        #[source]
        source: io::Error,
    },
    /// An ioctl on a given domain failed.
    #[error("privcmd {op} on domain {domid} failed: {source}")]
    OnDomain {
        /// The ioctl.
        op: &'static str,
        /// The target domain.
        domid: DomId,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A hypercall returned an error.
    #[error("hypercall {op} (sub-op/first argument {subop:#x}) failed: {source}")]
    Hypercall {
        /// The hypercall number.
        op: u64,
        /// The first argument (usually the sub-op or command).
        subop: u64,
        /// The errno Xen returned.
        #[source]
        source: io::Error,
    },
    /// The running kernel does not offer an operation.
    #[error("privcmd {op} unsupported: {reason}")]
    Unsupported {
        /// The ioctl.
        op: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Mapping memory for an operation failed.
    #[error("mmap of {pages} pages for {op} failed: {source}")]
    Mmap {
        /// The operation.
        op: &'static str,
        /// Pages requested.
        pages: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Allocating a hypercall buffer failed.
    #[error("hypercall buffer of {len} bytes: {source}")]
    Buffer {
        /// Bytes requested.
        len: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An argument was rejected before reaching the kernel.
    #[error("privcmd {op}: invalid argument: {what}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        what: String,
    },
    /// Xen refused every known domctl/sysctl interface version.
    #[error("no known {interface} interface version is accepted by Xen {major}.{minor} (tried {tried:x?})")]
    InterfaceVersion {
        /// "domctl" or "sysctl".
        interface: &'static str,
        /// Xen major version.
        major: u16,
        /// Xen minor version.
        minor: u16,
        /// The versions tried.
        tried: Vec<u32>,
    },
    /// Xen returned data that does not make sense.
    #[error("{op}: unexpected answer from Xen: {what}")]
    BadAnswer {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        what: String,
    },
}

impl Error {
    /// The errno behind this error, if it came from the kernel or Xen.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Open { source, .. }
            | Error::Ioctl { source, .. }
            | Error::OnDomain { source, .. }
            | Error::Hypercall { source, .. }
            | Error::Mmap { source, .. }
            | Error::Buffer { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Names the operation and the target domain of a failed hypercall.
    pub(crate) fn on_domain(self, op: &'static str, domid: DomId) -> Self {
        match self {
            Error::Hypercall { source, .. } => Error::OnDomain { op, domid, source },
            e => e.with_domain(domid),
        }
    }

    /// Adds the target domain to an ioctl error.
    pub(crate) fn with_domain(self, domid: DomId) -> Self {
        match self {
            Error::Ioctl { op, source } => Error::OnDomain { op, domid, source },
            e => e,
        }
    }
}

/// Result of privcmd operations.
pub type Result<T> = std::result::Result<T, Error>;
