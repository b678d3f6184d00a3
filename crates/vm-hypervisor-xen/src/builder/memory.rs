// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The guest-physical layout of a PVH domain and how its RAM is populated.
//!
//! The layout is the one Xen's own toolstack gives PVH guests, so that guests and tools see
//! what they expect:
//!
//! - RAM from 0 up to the memory size (below the special pages; guests above
//!   [`MAX_LOWMEM`] are not supported yet);
//! - eight "special pages" just below guest frame 0xff000 ([`SPECIAL_PAGES_END`]): paging,
//!   access and sharing rings, buffered and synchronous ioreq pages, xenstore ring, the
//!   identity-map page table for EPT with paging off, console ring. They are not RAM: the
//!   memory map marks them reserved.
//!
//! RAM is populated in 2 MiB extents where it is aligned (fewer p2m entries, fewer
//! hypercalls), then page by page.

use vm_vcpu_ref::memmap::MemoryMapEntry;
use xen_bindings::{DomId, XEN_PAGE_SIZE};

use super::ops::DomainOps;
use crate::error::{Error, Result};

/// Page size, as u64.
pub const PAGE: u64 = XEN_PAGE_SIZE as u64;
/// Number of special pages.
pub const NR_SPECIAL_PAGES: u64 = 8;
/// The frame after the special pages.
pub const SPECIAL_PAGES_END: u64 = 0xff000;
/// Highest RAM end supported (RAM must stay below the special pages).
pub const MAX_LOWMEM: u64 = (SPECIAL_PAGES_END - NR_SPECIAL_PAGES) * PAGE;
/// Pages in a 2 MiB extent.
const SUPERPAGE_ORDER: u32 = 9;

/// The special pages, by index from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecialPage {
    /// Paging ring.
    Paging = 0,
    /// Access (monitor) ring.
    Access = 1,
    /// Sharing ring.
    Sharing = 2,
    /// Buffered ioreq page.
    BufIoreq = 3,
    /// Xenstore ring.
    Xenstore = 4,
    /// Synchronous ioreq page.
    Ioreq = 5,
    /// Identity-map page table.
    IdentPt = 6,
    /// Console ring.
    Console = 7,
}

impl SpecialPage {
    /// Its guest frame.
    pub const fn gfn(self) -> u64 {
        SPECIAL_PAGES_END - NR_SPECIAL_PAGES + self as u64
    }
}

/// The guest frames of all special pages.
pub fn special_gfns() -> Vec<u64> {
    (0..NR_SPECIAL_PAGES)
        .map(|i| SPECIAL_PAGES_END - NR_SPECIAL_PAGES + i)
        .collect()
}

/// The memory map of a guest with `ram` bytes of RAM.
pub fn memory_map(ram: u64) -> Vec<MemoryMapEntry> {
    vec![
        MemoryMapEntry::ram(0, ram),
        MemoryMapEntry::reserved(SpecialPage::Paging.gfn() * PAGE, NR_SPECIAL_PAGES * PAGE),
    ]
}

/// Populates RAM `[0, ram)` of `domid` (2 MiB extents where aligned, else pages).
pub fn populate_ram<O: DomainOps + ?Sized>(ops: &O, domid: DomId, ram: u64) -> Result<()> {
    let pages = ram / PAGE;
    let per_super = 1u64 << SUPERPAGE_ORDER;
    let supers: Vec<u64> = (0..pages / per_super).map(|i| i * per_super).collect();
    let mut next = 0;
    if !supers.is_empty() {
        let done = ops.populate_physmap(domid, SUPERPAGE_ORDER, &supers)?;
        next = done as u64 * per_super;
    }
    // What 2 MiB extents did not cover (the tail, or all of it when Xen had no superpages).
    let rest: Vec<u64> = (next..pages).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_pages_sit_below_0xff000_like_xens_toolstack_puts_them() {
        assert_eq!(SpecialPage::Paging.gfn(), 0xfeff8);
        assert_eq!(SpecialPage::Xenstore.gfn(), 0xfeffc);
        assert_eq!(SpecialPage::Console.gfn(), 0xfefff);
        assert_eq!(special_gfns().len(), 8);
        let map = memory_map(128 << 20);
        assert_eq!(map[1].addr, 0xfeff8000);
        assert_eq!(map[1].size, 0x8000);
    }
}
