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
//! [`super::populate`] gives the domain that RAM and these pages.

use vm_vcpu_ref::memmap::MemoryMapEntry;
use xen_bindings::XEN_PAGE_SIZE;

/// Page size, as u64.
pub const PAGE: u64 = XEN_PAGE_SIZE as u64;
/// Number of special pages.
pub const NR_SPECIAL_PAGES: u64 = 8;
/// The frame after the special pages.
pub const SPECIAL_PAGES_END: u64 = 0xff000;
/// Highest RAM end supported (RAM must stay below the special pages).
pub const MAX_LOWMEM: u64 = (SPECIAL_PAGES_END - NR_SPECIAL_PAGES) * PAGE;

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
