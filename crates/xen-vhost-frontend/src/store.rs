// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The few xenstore operations device discovery and the handshake need.

use xen_bindings::xenstore::{Transport, Xenstore};

/// The xenstore operations this crate uses, so that discovery and the handshake can be driven
/// by a real connection or by a map in tests.
pub trait Store {
    /// The value at `path`, or `None` if it does not exist or cannot be read as text.
    fn read(&mut self, path: &str) -> Option<String>;
    /// The children of `path` (none if it does not exist).
    fn directory(&mut self, path: &str) -> Vec<String>;
    /// Writes `value` at `path`.
    fn write(&mut self, path: &str, value: &str) -> Result<(), String>;
}

impl<T: Transport> Store for Xenstore<T> {
    fn read(&mut self, path: &str) -> Option<String> {
        match self.read_string(path) {
            Ok(v) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                log::warn!("xenstore read {path}: {e}");
                None
            }
        }
    }

    fn directory(&mut self, path: &str) -> Vec<String> {
        match Xenstore::directory(self, path) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => {
                log::warn!("xenstore directory {path}: {e}");
                Vec::new()
            }
        }
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
        Xenstore::write(self, path, value).map_err(|e| e.to_string())
    }
}
