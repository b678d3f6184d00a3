// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Serves Xen guests' virtio-mmio devices from unmodified vhost-user backend daemons.
//!
//! [`Service`] is the whole frontend: it watches xenstore, serves each guest's devices through
//! a [`Guest`] while they exist, and answers the xenbus handshake; the `xen-vhost-frontend`
//! binary runs it. Below it:
//!
//! The toolstack (libxl, from an `xl` configuration's `virtio = [...]` on Xen 4.18 and later,
//! or a `specification=virtio` disk on Xen 4.17) publishes each device under the backend
//! domain's `backend/` directory in xenstore and waits for the backend to answer. This crate
//! reads those entries into checked [`VirtioDevice`]s ([`discover`]) and drives the backend's
//! half of the xenbus handshake for each ([`Lifecycle`]):
//!
//! | toolstack / guest | backend (this crate) |
//! |---|---|
//! | writes the device, `state` = Initialising | sets the device up, then `state` = InitWait |
//! | guest driver sets DRIVER_OK | `state` = Connected |
//! | `online` = 0 or `state` = Closing (destroy, hot-unplug) | tears down, `state` = Closed |
//!
//! Every value read from xenstore is checked before use: a domU's own directory is the guest's
//! to write, and even the toolstack's entries are parsed as untrusted text (bounded sizes,
//! typed errors, no panics).
//!
//! ```
//! use std::collections::BTreeMap;
//! use xen_vhost_frontend::{discover, DomId, Layout, Store};
//!
//! // Any xenstore client implements `Store`; here, a map standing in for one.
//! struct Map(BTreeMap<String, String>);
//! impl Store for Map {
//!     fn read(&mut self, path: &str) -> Option<String> {
//!         self.0.get(path).cloned()
//!     }
//!     fn directory(&mut self, path: &str) -> Vec<String> {
//!         let prefix = format!("{path}/");
//!         let mut kids: Vec<String> = self.0.keys()
//!             .filter_map(|k| k.strip_prefix(&prefix))
//!             .map(|rest| rest.split('/').next().unwrap().to_string())
//!             .collect();
//!         kids.dedup();
//!         kids
//!     }
//!     fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
//!         self.0.insert(path.to_string(), value.to_string());
//!         Ok(())
//!     }
//! }
//!
//! let be = "/local/domain/0/backend/virtio/3/0";
//! let mut xs = Map(BTreeMap::new());
//! for (k, v) in [("frontend-id", "3"), ("online", "1"), ("state", "1"), ("irq", "33"),
//!                ("base", "0x2000000"), ("type", "virtio,device4"), ("transport", "mmio"),
//!                ("grant_usage", "1")] {
//!     xs.0.insert(format!("{be}/{k}"), v.to_string());
//! }
//! let found = discover(&mut xs, "/local/domain/0");
//! assert_eq!(found.len(), 1);
//! let dev = found[0].as_ref().unwrap();
//! assert_eq!((dev.domid, dev.devid, dev.base, dev.irq), (DomId::new(3), 0, 0x200_0000, 33));
//! assert_eq!(dev.device_id, Some(4)); // virtio entropy
//! assert!(dev.grants);
//! assert_eq!(dev.layout, Layout::Virtio);
//! ```

mod device;
mod discovery;
mod error;
pub mod guest;
pub mod guest_ram;
mod lifecycle;
mod serve_error;
pub mod service;
mod state;
mod store;

pub use device::{Layout, VirtioDevice, MMIO_WINDOW};
pub use discovery::discover;
pub use error::Error;
pub use guest::{DeviceBackend, Guest, Paths};
pub use lifecycle::{Action, Lifecycle};
pub use serve_error::ServeError;
pub use service::{Config, Service};
pub use state::XenbusState;
pub use store::Store;
pub use vhost_user_frontend::DeviceType;
// Re-exported so users need not depend on xen-bindings to name a guest.
pub use xen_bindings::DomId;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
