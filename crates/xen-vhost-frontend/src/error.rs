// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Why a device published in xenstore cannot be served.

/// A device entry that cannot be served as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key the device needs is missing.
    #[error("{path}: missing")]
    Missing {
        /// The key's full path.
        path: String,
    },
    /// A key's value is not what the protocol allows.
    #[error("{path}: {value:?} {reason}")]
    Invalid {
        /// The key's full path.
        path: String,
        /// The value as read (at most 64 characters of it).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn invalid(path: &str, value: &str, reason: &'static str) -> Self {
        Self::Invalid {
            path: path.to_string(),
            value: value.chars().take(64).collect(),
            reason,
        }
    }
}
