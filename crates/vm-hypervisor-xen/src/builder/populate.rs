// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Giving a new domain its memory (`XENMEM_populate_physmap`), for guests of either
//! architecture: RAM in 2 MiB extents where it is aligned (fewer p2m entries, fewer
//! hypercalls), then page by page; special or magic pages one by one, all or an error.

use xen_bindings::DomId;

use super::memory::PAGE;
use super::ops::DomainOps;
use crate::error::{Error, Result};

/// Pages in a 2 MiB extent, as an order.
const SUPERPAGE_ORDER: u32 = 9;

/// Populates RAM `[base, base + bytes)` of `domid` (`base` page aligned; 2 MiB extents where
/// aligned, else pages).
pub fn populate_ram<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    base: u64,
    bytes: u64,
) -> Result<()> {
    let first = base / PAGE;
    let end = first + bytes / PAGE;
    let per_super = 1u64 << SUPERPAGE_ORDER;
    let aligned = first.next_multiple_of(per_super);
    let supers: Vec<u64> = (aligned..end)
        .step_by(per_super as usize)
        .take_while(|gfn| gfn + per_super <= end)
        .collect();
    let mut rest: Vec<u64> = (first..aligned.min(end)).collect();
    if !supers.is_empty() {
        let done = ops.populate_physmap(domid, SUPERPAGE_ORDER, &supers)?;
        // What 2 MiB extents did not cover (all of it when Xen had no superpages).
        rest.extend(supers[0] + done as u64 * per_super..end);
    } else {
        rest.extend(aligned.min(end)..end);
    }
    populate_exact(ops, domid, 0, &rest, "RAM")
}

/// Populates the pages `gfns` of `domid` with extents of order `order`, all or an error.
pub fn populate_exact<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    order: u32,
    gfns: &[u64],
    what: &'static str,
) -> Result<()> {
    // Batches keep each hypercall buffer small.
    for chunk in gfns.chunks(4096) {
        let done = ops.populate_physmap(domid, order, chunk)?;
        if done != chunk.len() {
            return Err(Error::Populate {
                domid,
                what,
                wanted: chunk.len(),
                done,
                order,
            });
        }
    }
    Ok(())
}
