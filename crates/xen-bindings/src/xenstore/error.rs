// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the xenstore client.

use std::io;

use super::wire::XsErrno;

/// Errors of xenstore operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No transport to xenstored could be opened.
    #[error("cannot reach xenstored: {tried}")]
    Unreachable {
        /// Each endpoint tried and why it failed.
        tried: String,
    },
    /// Talking to xenstored failed.
    #[error("xenstore {op}: I/O error: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// xenstored closed the connection.
    #[error("xenstore {op}: xenstored closed the connection")]
    Closed {
        /// The operation.
        op: &'static str,
    },
    /// xenstored answered with an error.
    #[error("xenstore {op} {path:?}: {errno}")]
    Xenstored {
        /// The operation.
        op: &'static str,
        /// The path (or other argument) of the request.
        path: String,
        /// The error name xenstored sent.
        errno: XsErrno,
    },
    /// A request argument is unusable (NUL byte, too long, empty list, ...).
    #[error("xenstore {op}: invalid argument {value:?}: {reason}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// The argument (lossily printed).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A reply or event does not have the expected shape.
    #[error("xenstore {op}: malformed reply: {reason}")]
    Malformed {
        /// The operation.
        op: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The message stream lost its framing (an oversized length, an unknown message type, a
    /// reply to nobody); the connection cannot be used any more.
    #[error("xenstore connection is unusable after a protocol error: {reason}")]
    Desynchronized {
        /// The first protocol error seen.
        reason: String,
    },
    /// xenstored did not reply in time (see `Xenstore::set_reply_timeout`); the connection
    /// is unusable from then on.
    #[error("xenstore {op}: no reply from xenstored within {after:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// How long it waited.
        after: std::time::Duration,
    },
    /// A transaction kept conflicting with others.
    #[error("xenstore transaction still conflicting (EAGAIN) after {attempts} attempts")]
    Conflict {
        /// How many times it ran.
        attempts: u32,
    },
}

impl Error {
    /// The error name xenstored replied with, if this is an error reply.
    pub fn xs_errno(&self) -> Option<&XsErrno> {
        match self {
            Self::Xenstored { errno, .. } => Some(errno),
            _ => None,
        }
    }

    /// Whether xenstored said `ENOENT` (no such node).
    pub fn is_not_found(&self) -> bool {
        self.xs_errno() == Some(&XsErrno::NoEnt)
    }

    /// Whether xenstored said `EAGAIN` (rerun the transaction).
    pub fn is_again(&self) -> bool {
        self.xs_errno() == Some(&XsErrno::Again)
    }
}

/// Result of xenstore operations.
pub type Result<T> = std::result::Result<T, Error>;
