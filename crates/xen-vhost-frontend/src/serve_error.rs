// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Why a guest's devices could not be served.

/// A failure setting up, serving or tearing down a guest's devices.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The device as published cannot be served by the backend given.
    #[error("{path}: {reason}")]
    Device {
        /// The device's backend directory in xenstore.
        path: String,
        /// Why.
        reason: String,
    },
    /// A privcmd operation failed.
    #[error("cannot {op}")]
    Xen {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: xen_bindings::privcmd::Error,
    },
    /// A gntdev operation failed.
    #[error("cannot {op}")]
    Grant {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: xen_bindings::gntdev::Error,
    },
    /// An IOREQ server operation failed.
    #[error("IOREQ server: cannot {op}")]
    Ioreq {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: xen_ioreq::Error,
    },
    /// The relay to the vhost-user daemon could not be made.
    #[error("vhost-user relay")]
    Relay(#[source] vhost_user_frontend::RelayError),
    /// The guest's memory cannot be a memory table.
    #[error("guest memory")]
    Memory(#[source] vhost_user_frontend::MemoryError),
    /// A system call failed.
    #[error("cannot {op}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A serving thread failed.
    #[error("{0}")]
    Thread(&'static str),
    /// xenstore failed.
    #[error("xenstore: cannot {op}")]
    Xenstore {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: xen_bindings::xenstore::Error,
    },
}
