// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The parts of a new domain's RAM the loaders write, mapped into this process.
//!
//! Only the guest frames a loader writes (a kernel's segments or image, the initrd, boot data
//! such as the PVH start info or the device tree) are mapped (foreign mappings), as Xen's own
//! toolstack maps only the segments it loads, and seen as one vm-memory `GuestMemoryMmap` with
//! a region per part, so that code written for vm-memory (vm-vcpu-ref's boot structures, the
//! ELF loader) writes them unchanged. The rest of RAM is never touched here.

use vm_memory::{GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};
use xen_bindings::DomId;

use super::memory::PAGE;
use super::ops::{DomainOps, MappedPages};
use crate::error::{Error, Result};

/// Mapped parts of a domain's RAM, as a `GuestMemoryMmap`; unmapped when dropped.
pub(crate) struct GuestRam {
    // Declared first: dropped before the mappings it points into.
    pub(crate) mem: GuestMemoryMmap,
    _pages: Vec<Box<dyn MappedPages>>,
}

/// `ranges` (byte ranges, in any order) widened to whole pages, sorted, and merged where they
/// overlap or touch.
pub(crate) fn page_ranges(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut pages: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|(start, end)| start < end)
        .map(|&(start, end)| (start & !(PAGE - 1), end.div_ceil(PAGE) * PAGE))
        .collect();
    pages.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(pages.len());
    for (start, end) in pages {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Maps the byte ranges `ranges` of `domid`, whose RAM is `[ram.0, ram.1)`; a range outside
/// it is a [`Error::MemoryTooSmall`] and maps nothing more.
pub(crate) fn map_ranges<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    ram: (u64, u64),
    ranges: &[(u64, u64)],
) -> Result<GuestRam> {
    let load = |reason: String| Error::Load {
        what: "guest memory",
        reason,
    };
    let mut regions = Vec::new();
    let mut mappings = Vec::new();
    for (start, end) in page_ranges(ranges) {
        if start < ram.0 || end > ram.1 {
            return Err(Error::MemoryTooSmall {
                what: "boot data",
                start,
                end,
                ram_end: ram.1,
            });
        }
        let gfns: Vec<u64> = (start / PAGE..end / PAGE).collect();
        let pages = ops.map_guest(domid, &gfns)?;
        // SAFETY: `pages` maps `pages.len()` bytes readable and writable, and `GuestRam` keeps
        // it mapped for as long as the region built here lives (field order: `mem` drops
        // first). The region does not own the mapping (it is not unmapped through it).
        let region = unsafe {
            MmapRegion::build_raw(
                pages.as_ptr(),
                pages.len(),
                libc_prot_rw(),
                libc_map_shared(),
            )
        }
        .map_err(|e| load(e.to_string()))?;
        mappings.push(pages);
        regions.push(
            GuestRegionMmap::new(region, GuestAddress(start))
                .ok_or_else(|| load("region wraps around".into()))?,
        );
    }
    let mem = GuestMemoryMmap::from_regions(regions).map_err(|e| load(e.to_string()))?;
    Ok(GuestRam {
        mem,
        _pages: mappings,
    })
}

/// `PROT_READ | PROT_WRITE` (Linux values; the region only records them).
const fn libc_prot_rw() -> i32 {
    0x1 | 0x2
}

/// `MAP_SHARED` (Linux value; the region only records it).
const fn libc_map_shared() -> i32 {
    0x01
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_whole_pages_sorted_and_merged() {
        let r = page_ranges(&[
            (0x2_0000, 0x2_0010),
            (0x6000, 0x6040),
            (0x100_0000, 0x100_1001),
            (0x100_1800, 0x100_3000),
            (0x5000, 0x5000),
        ]);
        assert_eq!(
            r,
            [
                (0x6000, 0x7000),
                (0x2_0000, 0x2_1000),
                (0x100_0000, 0x100_3000)
            ]
        );
    }
}
