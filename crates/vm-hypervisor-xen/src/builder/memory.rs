// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The guest-physical layout of a PVH domain and how its RAM is populated.
//!
//! The layout is the one Xen's own toolstack gives PVH guests, so that guests and tools see
//! what they expect:
//!
//! - RAM from 0 up to the MMIO hole below 4 GiB, the rest from 4 GiB
//!   ([`GuestLayout::X86`]; the hole starts at 0xf000_0000 unless the guest's configuration
//!   moves it, at most up to the ACPI tables at [`MAX_BELOW_4G_RAM_END`]);
//! - eight "special pages" just below guest frame 0xff000 ([`SPECIAL_PAGES_END`]): paging,
//!   access and sharing rings, buffered and synchronous ioreq pages, xenstore ring, the
//!   identity-map page table for EPT with paging off, console ring. They are not RAM: the
//!   memory map marks them reserved.
//!
//! [`super::populate`] gives the domain that RAM and these pages.

use vm_vcpu_ref::memmap::MemoryMapEntry;
#[cfg(doc)]
use xen_bindings::layout::GuestLayout;
use xen_bindings::layout::RamRange;
use xen_bindings::XEN_PAGE_SIZE;

/// Page size, as u64.
pub const PAGE: u64 = XEN_PAGE_SIZE as u64;
/// Number of special pages.
pub const NR_SPECIAL_PAGES: u64 = 8;
/// The frame after the special pages.
pub const SPECIAL_PAGES_END: u64 = 0xff000;
/// The highest end of RAM below 4 GiB: the ACPI information page (`0xfc00_0000`), the tables
/// after it, the local APIC and the special pages all lie above it.
pub const MAX_BELOW_4G_RAM_END: u64 = 0xfc00_0000;
/// Smallest end of RAM below 4 GiB: the PVH kernel, its initrd and start info go there.
pub const MIN_BELOW_4G_RAM_END: u64 = 16 << 20;
/// Most RAM an x86 guest of this builder takes: a bound of its own (1 TiB), so that a size
/// is refused before any domain exists rather than when Xen runs out.
pub const MAX_RAM: u64 = 1 << 40;

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

/// The memory map of a guest whose RAM is `ram`, by address.
pub fn memory_map(ram: &[RamRange]) -> Vec<MemoryMapEntry> {
    let mut map: Vec<MemoryMapEntry> = ram
        .iter()
        .map(|r| MemoryMapEntry::ram(r.start, r.len))
        .collect();
    map.push(MemoryMapEntry::reserved(
        SpecialPage::Paging.gfn() * PAGE,
        NR_SPECIAL_PAGES * PAGE,
    ));
    map.sort_unstable_by_key(|e| e.addr);
    map
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
        let map = memory_map(&[RamRange {
            start: 0,
            len: 128 << 20,
        }]);
        assert_eq!(map[1].addr, 0xfeff8000);
        assert_eq!(map[1].size, 0x8000);
    }

    #[test]
    fn ram_above_4g_comes_after_the_special_pages_in_the_map() {
        let map = memory_map(&[
            RamRange {
                start: 0,
                len: 0xf000_0000,
            },
            RamRange {
                start: 1 << 32,
                len: 1 << 30,
            },
        ]);
        let entries: Vec<(u64, u64, u32)> = map
            .iter()
            .map(|e| (e.addr, e.size, e.kind.code()))
            .collect();
        assert_eq!(
            entries,
            [
                (0, 0xf000_0000, 1),
                (0xfeff_8000, 0x8000, 2),
                (1 << 32, 1 << 30, 1)
            ]
        );
    }
}
