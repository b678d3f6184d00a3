// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A built domain's life: what has been made so far, torn down in reverse order when the build
//! fails half-way or the domain is destroyed.
//!
//! [`Domain`] owns a domain from `createdomain` on. Until the build commits it, any error
//! drops it, which removes its xenstore entries, releases it from xenstored and destroys it: a
//! failed build leaves nothing behind. Destroying the domain releases its memory, vCPUs,
//! event channels and grant table in Xen; nothing of it stays mapped in this process (the
//! builder unmaps guest memory as soon as it has loaded it).

use std::sync::Arc;

use xen_bindings::DomId;

use super::ops::DomainOps;
use crate::error::Result;

/// The event channels and rings of a built domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rings {
    /// The console ring's guest frame.
    pub console_gfn: u64,
    /// The console event channel (the guest's port, bindable by dom0).
    pub console_port: u32,
    /// The xenstore ring's guest frame.
    pub store_gfn: u64,
    /// The xenstore event channel (the guest's port).
    pub store_port: u32,
    /// The virtual UART's ring, when the guest has one (Arm, `PvhConfig::vuart`).
    pub vuart: Option<RingRef>,
}

/// A console-protocol ring (`struct xencons_interface`) and the event channel that signals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingRef {
    /// The ring's guest frame.
    pub gfn: u64,
    /// The guest's end of the event channel, bindable by dom0.
    pub port: u32,
}

/// A domain made by the builder, destroyed when dropped.
#[derive(Debug)]
pub struct Domain<O: DomainOps> {
    ops: Arc<O>,
    domid: DomId,
    name: String,
    rings: Rings,
    xs_paths: Vec<String>,
    introduced: bool,
    destroyed: bool,
}

impl<O: DomainOps> Domain<O> {
    /// Takes ownership of the just-created domain `domid`.
    pub(crate) fn new(ops: Arc<O>, domid: DomId, name: String) -> Self {
        Self {
            ops,
            domid,
            name,
            rings: Rings::default(),
            xs_paths: Vec::new(),
            introduced: false,
            destroyed: false,
        }
    }

    /// The domain id.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The name it has in xenstore (and `xl list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its console and xenstore rings.
    pub fn rings(&self) -> Rings {
        self.rings
    }

    /// The backend through which it was built.
    pub fn ops(&self) -> &Arc<O> {
        &self.ops
    }

    pub(crate) fn set_rings(&mut self, rings: Rings) {
        self.rings = rings;
    }

    /// Records a xenstore subtree to remove at teardown.
    pub(crate) fn owns_xs_path(&mut self, path: String) {
        self.xs_paths.push(path);
    }

    pub(crate) fn set_introduced(&mut self) {
        self.introduced = true;
    }

    /// Destroys the domain: removes its xenstore entries, releases it from xenstored and
    /// destroys it in Xen. Every step is tried; the first error is returned.
    pub fn destroy(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        let mut first = None;
        let mut keep = |r: Result<()>| {
            if let Err(e) = r {
                log::warn!("tearing down domain: {e}");
                first.get_or_insert(e);
            }
        };
        for path in self.xs_paths.drain(..).rev() {
            keep(self.ops.xs_rm(&path));
        }
        if self.introduced {
            keep(self.ops.xs_release(self.domid));
        }
        keep(self.ops.destroy_domain(self.domid));
        first.map_or(Ok(()), Err)
    }
}

impl<O: DomainOps> Drop for Domain<O> {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            log::error!(
                "domain {} ({}) not fully destroyed: {e}",
                self.domid,
                self.name
            );
        }
    }
}
