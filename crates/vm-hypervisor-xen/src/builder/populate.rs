// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Giving a new domain its memory (`XENMEM_populate_physmap`), for guests of either
//! architecture: RAM in 2 MiB extents where it is aligned (fewer p2m entries, fewer
//! hypercalls), then page by page; special or magic pages one by one, all or an error.

use xen_bindings::layout::RamRange;
use xen_bindings::DomId;

use super::memory::PAGE;
use super::ops::DomainOps;
use crate::error::{Error, Result};

/// Pages in a 2 MiB extent, as an order.
const SUPERPAGE_ORDER: u32 = 9;
/// Extents per hypercall: keeps each list (and so what a size costs here) small.
const BATCH: u64 = 4096;

/// Populates every range of `ram` in `domid` ([`populate_ram`]).
pub fn populate_ranges<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    ram: &[RamRange],
) -> Result<()> {
    ram.iter()
        .try_for_each(|r| populate_ram(ops, domid, r.start, r.len))
}

/// Populates RAM `[base, base + bytes)` of `domid` (`base` page aligned): 2 MiB extents where
/// aligned, pages for the rest and from the first extent Xen could not give on.
pub fn populate_ram<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    base: u64,
    bytes: u64,
) -> Result<()> {
    let per_super = 1u64 << SUPERPAGE_ORDER;
    let first = base / PAGE;
    let end = first + bytes / PAGE;
    let supers_start = first.next_multiple_of(per_super).min(end);
    let supers_end = supers_start + (end - supers_start) / per_super * per_super;
    populate_pages(ops, domid, first, supers_start)?;
    let mut next = supers_start;
    while next < supers_end {
        let extents: Vec<u64> = (next..supers_end)
            .step_by(per_super as usize)
            .take(BATCH as usize)
            .collect();
        let done = ops.populate_physmap(domid, SUPERPAGE_ORDER, &extents)?;
        next += done.min(extents.len()) as u64 * per_super;
        if done < extents.len() {
            // Xen had no more 2 MiB runs: pages from here on.
            break;
        }
    }
    populate_pages(ops, domid, next, end)
}

/// Populates the pages `[first, end)` of `domid` one by one, in batches, all or an error.
fn populate_pages<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    first: u64,
    end: u64,
) -> Result<()> {
    let mut next = first;
    while next < end {
        let batch_end = end.min(next + BATCH);
        let gfns: Vec<u64> = (next..batch_end).collect();
        populate_exact(ops, domid, 0, &gfns, "RAM")?;
        next = batch_end;
    }
    Ok(())
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
    for chunk in gfns.chunks(BATCH as usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::fake::FakeXen;

    /// The populate calls for `bytes` of RAM at `base` when Xen has `supers` 2 MiB extents,
    /// as `(order, first gfn, extents asked)`.
    fn calls(base: u64, bytes: u64, supers: Option<usize>) -> Vec<(u32, u64, usize)> {
        let xen = FakeXen::default();
        *xen.superpages.lock().unwrap() = supers;
        populate_ram(&xen, DomId::new(1), base, bytes).unwrap();
        let state = xen.state.lock().unwrap();
        state
            .populated
            .iter()
            .map(|&(o, g, n, _)| (o, g, n))
            .collect()
    }

    #[test]
    fn aligned_ram_goes_in_2m_extents_and_the_edges_in_pages() {
        // 4 KiB past a 2 MiB boundary, 6 MiB long: 511 pages, two extents, one page.
        assert_eq!(
            calls(0x20_1000, 6 << 20, None),
            [(0, 0x201, 511), (9, 0x400, 2), (0, 0x800, 1)]
        );
        // Less than an extent's worth: pages only.
        assert_eq!(calls(0x1000, 0x3000, None), [(0, 1, 3)]);
    }

    #[test]
    fn when_xen_runs_out_of_extents_the_rest_goes_in_pages() {
        // 8 MiB from 0: one extent given, then the other 6 MiB page by page.
        assert_eq!(calls(0, 8 << 20, Some(1)), [(9, 0, 4), (0, 0x200, 1536)]);
    }

    #[test]
    fn a_large_guest_is_populated_in_bounded_batches() {
        // 32 GiB at 4 GiB: 16384 extents in four calls of 4096.
        let c = calls(1 << 32, 32 << 30, None);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|&(order, _, n)| order == 9 && n == 4096));
        assert_eq!(c[3].1, (1 << 32) / PAGE + 3 * 4096 * 512);
        // And page by page when Xen has no extent: 4096 pages a call.
        let c = calls(0, 64 << 20, Some(0));
        assert_eq!(c.len(), 1 + 4);
        assert!(c[1..].iter().all(|&(order, _, n)| order == 0 && n == 4096));
    }
}
