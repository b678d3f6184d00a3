// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The last steps of a build, the same on every architecture: the console and xenstore rings
//! (HVM parameters for their frames and event channels, grant entries for dom0), then the
//! xenstore entries, the introduction to xenstored, and the unpause.

use xen_bindings::abi::xen::grant_table::{GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE};
use xen_bindings::abi::xen::hvm::{
    HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN,
};

use super::domain::{Domain, Rings};
use super::ops::DomainOps;
use super::xenstore::{self, ConsoleBackend};
use super::BACKEND_DOMID;
use crate::error::Result;

/// Connects the console ring at guest frame `console_gfn` and the xenstore ring at
/// `store_gfn` (both populated and zeroed): their frames and new event channels (bindable by
/// dom0) go to the guest as HVM parameters, and the reserved grant entries give both frames
/// to dom0. The rings are recorded in `dom`.
pub(crate) fn connect<O: DomainOps>(
    dom: &mut Domain<O>,
    console_gfn: u64,
    store_gfn: u64,
) -> Result<Rings> {
    let ops = dom.ops().clone();
    let domid = dom.domid();
    ops.set_hvm_param(domid, HVM_PARAM_STORE_PFN, store_gfn)?;
    ops.set_hvm_param(domid, HVM_PARAM_CONSOLE_PFN, console_gfn)?;
    let rings = Rings {
        console_gfn,
        console_port: ops.evtchn_alloc_unbound(domid, BACKEND_DOMID)?,
        store_gfn,
        store_port: ops.evtchn_alloc_unbound(domid, BACKEND_DOMID)?,
        vuart: None,
    };
    dom.set_rings(rings);
    ops.set_hvm_param(
        domid,
        HVM_PARAM_CONSOLE_EVTCHN,
        u64::from(rings.console_port),
    )?;
    ops.set_hvm_param(domid, HVM_PARAM_STORE_EVTCHN, u64::from(rings.store_port))?;
    ops.seed_grant_table(
        domid,
        &[
            (GNTTAB_RESERVED_CONSOLE, BACKEND_DOMID, rings.console_gfn),
            (GNTTAB_RESERVED_XENSTORE, BACKEND_DOMID, rings.store_gfn),
        ],
    )?;
    Ok(rings)
}

/// Gives the domain a virtual UART whose ring is guest frame `gfn` (populated and zeroed),
/// served by dom0, and records it in `dom`.
#[cfg(target_arch = "aarch64")]
pub(crate) fn connect_vuart<O: DomainOps>(dom: &mut Domain<O>, gfn: u64) -> Result<()> {
    let port = dom.ops().vuart_init(dom.domid(), gfn, BACKEND_DOMID)?;
    let mut rings = dom.rings();
    rings.vuart = Some(super::domain::RingRef { gfn, port });
    dom.set_rings(rings);
    Ok(())
}

/// Publishes the domain in xenstore, introduces it to xenstored and unpauses it: the guest
/// runs from here.
pub(crate) fn start<O: DomainOps>(
    dom: &mut Domain<O>,
    console: ConsoleBackend,
    steps: &mut super::steps::Steps,
) -> Result<()> {
    let rings = dom.rings();
    xenstore::publish(dom, rings, console)?;
    steps.lap("xenstore");
    dom.ops().unpause(dom.domid())?;
    steps.lap("unpause");
    Ok(())
}
