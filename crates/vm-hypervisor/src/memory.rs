// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest memory regions and the bookkeeping every backend needs to refuse
//! bad ones with a typed error before the hypervisor sees them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Guest page size the region checks and dirty bitmaps use.
pub const PAGE_SIZE: u64 = 4096;

/// How the guest may use a region.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryRegionFlags {
    /// Guest writes do not reach the memory; they arrive on the device bus
    /// as MMIO writes (ROM, flash).
    pub readonly: bool,
    /// The hypervisor records which pages the guest writes
    /// (see [`Vm::get_dirty_log`](crate::Vm::get_dirty_log)).
    pub log_dirty: bool,
}

/// A range of guest-physical memory backed by host memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryRegion {
    /// Slot number naming the region; unique per VM.
    pub slot: u32,
    /// First guest-physical address, page aligned.
    pub guest_phys_addr: u64,
    /// Size in bytes, a non-zero multiple of [`PAGE_SIZE`].
    pub size: u64,
    /// Host virtual address of the backing memory, page aligned.
    pub host_addr: u64,
    /// Read-only and dirty-logging flags.
    pub flags: MemoryRegionFlags,
}

impl MemoryRegion {
    /// First guest-physical address after the region (saturating).
    pub fn end(&self) -> u64 {
        self.guest_phys_addr.saturating_add(self.size)
    }

    /// Number of [`PAGE_SIZE`] pages, i.e. bits of its dirty bitmap.
    pub fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE_SIZE)
    }

    /// Check alignment, size and wrap-around of one region by itself.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: &'static str| Error::InvalidMemoryRegion {
            slot: self.slot,
            guest_phys_addr: self.guest_phys_addr,
            size: self.size,
            reason,
        };
        if self.size == 0 {
            return Err(invalid("size is zero"));
        }
        if self.size % PAGE_SIZE != 0 {
            return Err(invalid("size is not a multiple of 4 KiB"));
        }
        if self.guest_phys_addr % PAGE_SIZE != 0 {
            return Err(invalid("guest address is not 4 KiB aligned"));
        }
        if self.host_addr % PAGE_SIZE != 0 {
            return Err(invalid("host address is not 4 KiB aligned"));
        }
        if self.guest_phys_addr.checked_add(self.size).is_none()
            || self.host_addr.checked_add(self.size).is_none()
        {
            return Err(invalid("range wraps around the address space"));
        }
        Ok(())
    }
}

/// The regions of one VM, kept so a backend can check a new region against
/// the others (slot reuse, overlap) and find a region by slot.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegionTable {
    by_slot: BTreeMap<u32, MemoryRegion>,
    max_slots: u32,
}

impl MemoryRegionTable {
    /// An empty table accepting slots `0..max_slots`.
    pub fn new(max_slots: u32) -> Self {
        Self {
            by_slot: BTreeMap::new(),
            max_slots,
        }
    }

    /// Check that `region` could be added, without adding it.
    pub fn check_insert(&self, region: &MemoryRegion) -> Result<()> {
        region.validate()?;
        if region.slot >= self.max_slots {
            return Err(Error::MemorySlotOutOfRange {
                slot: region.slot,
                max_slots: self.max_slots,
            });
        }
        if self.by_slot.contains_key(&region.slot) {
            return Err(Error::MemorySlotInUse { slot: region.slot });
        }
        if let Some(other) = self
            .by_slot
            .values()
            .find(|o| o.guest_phys_addr < region.end() && region.guest_phys_addr < o.end())
        {
            return Err(Error::MemoryRegionOverlap {
                slot: region.slot,
                guest_phys_addr: region.guest_phys_addr,
                size: region.size,
                other_slot: other.slot,
                other_guest_phys_addr: other.guest_phys_addr,
                other_size: other.size,
            });
        }
        Ok(())
    }

    /// Add `region` after [`check_insert`](Self::check_insert).
    pub fn insert(&mut self, region: MemoryRegion) -> Result<()> {
        self.check_insert(&region)?;
        self.by_slot.insert(region.slot, region);
        Ok(())
    }

    /// Remove and return the region in `slot`.
    pub fn remove(&mut self, slot: u32) -> Result<MemoryRegion> {
        self.by_slot
            .remove(&slot)
            .ok_or(Error::NoSuchMemorySlot { slot })
    }

    /// The region in `slot`.
    pub fn get(&self, slot: u32) -> Result<&MemoryRegion> {
        self.by_slot
            .get(&slot)
            .ok_or(Error::NoSuchMemorySlot { slot })
    }

    /// All regions, by slot.
    pub fn iter(&self) -> impl Iterator<Item = &MemoryRegion> {
        self.by_slot.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(slot: u32, gpa: u64, size: u64) -> MemoryRegion {
        MemoryRegion {
            slot,
            guest_phys_addr: gpa,
            size,
            host_addr: 0x7f00_0000_0000,
            flags: MemoryRegionFlags::default(),
        }
    }

    #[test]
    fn overlap_is_a_typed_error_naming_both_regions() {
        let mut t = MemoryRegionTable::new(8);
        t.insert(region(0, 0x10000, 0x10000)).unwrap();
        for (gpa, size) in [(0x0, 0x11000), (0x1f000, 0x1000), (0x12000, 0x1000)] {
            let err = t.insert(region(1, gpa, size)).unwrap_err();
            match err {
                Error::MemoryRegionOverlap {
                    slot: 1,
                    other_slot: 0,
                    other_guest_phys_addr: 0x10000,
                    ..
                } => {}
                other => panic!("{gpa:#x}: unexpected {other:?}"),
            }
        }
        // Adjacent regions are fine.
        t.insert(region(1, 0x0, 0x10000)).unwrap();
        t.insert(region(2, 0x20000, 0x1000)).unwrap();
        assert_eq!(t.iter().count(), 3);
    }

    #[test]
    fn slots_are_checked() {
        let mut t = MemoryRegionTable::new(2);
        t.insert(region(0, 0, 0x1000)).unwrap();
        assert!(matches!(
            t.insert(region(0, 0x1000, 0x1000)),
            Err(Error::MemorySlotInUse { slot: 0 })
        ));
        assert!(matches!(
            t.insert(region(2, 0x1000, 0x1000)),
            Err(Error::MemorySlotOutOfRange {
                slot: 2,
                max_slots: 2
            })
        ));
        assert!(matches!(
            t.remove(1),
            Err(Error::NoSuchMemorySlot { slot: 1 })
        ));
        assert_eq!(t.remove(0).unwrap().size, 0x1000);
        assert!(t.get(0).is_err());
    }

    #[test]
    fn malformed_regions_are_rejected() {
        let t = MemoryRegionTable::new(8);
        let mut unaligned_host = region(0, 0, 0x1000);
        unaligned_host.host_addr += 8;
        for r in [
            region(0, 0, 0),
            region(0, 0, 0x800),
            region(0, 0x10, 0x1000),
            region(0, u64::MAX - 0xfff, 0x2000),
            unaligned_host,
        ] {
            assert!(
                matches!(t.check_insert(&r), Err(Error::InvalidMemoryRegion { .. })),
                "{r:?}"
            );
        }
    }

    #[test]
    fn pages_counts_bitmap_bits() {
        assert_eq!(region(0, 0, 0x5000).pages(), 5);
        assert_eq!(region(0, 0x1000, 0x5000).end(), 0x6000);
    }
}
