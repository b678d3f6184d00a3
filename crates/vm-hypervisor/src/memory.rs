// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest memory regions and the bookkeeping every backend needs to refuse
//! bad ones with a typed error before the hypervisor sees them.

use std::collections::BTreeMap;

use vm_memory::{GuestMemoryRegion, MemoryRegionAddress};

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

/// A range of guest-physical memory backed by host memory of the VMM.
///
/// A region is named by its first guest-physical address: backends keep
/// their own numbering (KVM memory slots) to themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryRegion {
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
    /// The region that hands `region` of a `vm-memory` guest memory (one of a
    /// `GuestMemoryMmap`'s, for example) to the guest: its guest address, its
    /// size and its mapping in this process, with `flags`. `None` when it has
    /// no mapping in this process.
    ///
    /// This only describes the mapping;
    /// [`Vm::set_memory_region`](crate::Vm::set_memory_region) still needs the
    /// caller's promise that it outlives the VM's use of it.
    ///
    /// ```
    /// use vm_hypervisor::{MemoryRegion, MemoryRegionFlags};
    /// use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
    ///
    /// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    /// let regions: Vec<MemoryRegion> = mem
    ///     .iter()
    ///     .filter_map(|r| MemoryRegion::from_guest_region(r, MemoryRegionFlags::default()))
    ///     .collect();
    /// assert_eq!((regions[0].guest_phys_addr, regions[0].size), (0, 0x10_0000));
    /// ```
    pub fn from_guest_region<R: GuestMemoryRegion>(
        region: &R,
        flags: MemoryRegionFlags,
    ) -> Option<MemoryRegion> {
        let host = region.get_host_address(MemoryRegionAddress(0)).ok()?;
        Some(MemoryRegion {
            guest_phys_addr: region.start_addr().0,
            size: region.len(),
            host_addr: host as u64,
            flags,
        })
    }

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
/// the others (overlap, how many the hypervisor takes) and find a region by
/// its guest address.
///
/// Each region gets a small number, unique while the region exists and
/// reused after it is removed, that a backend can use as its own handle (a
/// KVM memory slot); it never appears in the [`Vm`](crate::Vm) API.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegionTable {
    /// Region and its number, by first guest-physical address.
    by_addr: BTreeMap<u64, (u32, MemoryRegion)>,
    max_regions: u32,
}

impl MemoryRegionTable {
    /// An empty table accepting up to `max_regions` regions, numbered
    /// `0..max_regions`.
    pub fn new(max_regions: u32) -> Self {
        Self {
            by_addr: BTreeMap::new(),
            max_regions,
        }
    }

    /// Check that `region` could be added, without adding it; returns the
    /// number it would get.
    pub fn check_insert(&self, region: &MemoryRegion) -> Result<u32> {
        region.validate()?;
        if let Some((_, other)) = self
            .by_addr
            .values()
            .find(|(_, o)| o.guest_phys_addr < region.end() && region.guest_phys_addr < o.end())
        {
            return Err(Error::MemoryRegionOverlap {
                guest_phys_addr: region.guest_phys_addr,
                size: region.size,
                other_guest_phys_addr: other.guest_phys_addr,
                other_size: other.size,
            });
        }
        // The lowest free number: the table holds fewer than `max_regions`
        // entries, so one of `0..=len` is free.
        let mut used: Vec<u32> = self.by_addr.values().map(|(n, _)| *n).collect();
        used.sort_unstable();
        let free = used
            .iter()
            .enumerate()
            .find(|(i, n)| u32::try_from(*i).ok() != Some(**n))
            .map_or(used.len(), |(i, _)| i);
        match u32::try_from(free) {
            Ok(n) if n < self.max_regions => Ok(n),
            _ => Err(Error::TooManyMemoryRegions {
                guest_phys_addr: region.guest_phys_addr,
                max_regions: self.max_regions,
            }),
        }
    }

    /// Add `region` after [`check_insert`](Self::check_insert); returns its
    /// number.
    pub fn insert(&mut self, region: MemoryRegion) -> Result<u32> {
        let n = self.check_insert(&region)?;
        self.by_addr.insert(region.guest_phys_addr, (n, region));
        Ok(n)
    }

    /// Remove the region starting at `guest_phys_addr`; returns its number
    /// and the region.
    pub fn remove(&mut self, guest_phys_addr: u64) -> Result<(u32, MemoryRegion)> {
        self.by_addr
            .remove(&guest_phys_addr)
            .ok_or(Error::NoMemoryRegion { guest_phys_addr })
    }

    /// The number and region starting at `guest_phys_addr`.
    pub fn get(&self, guest_phys_addr: u64) -> Result<(u32, MemoryRegion)> {
        self.by_addr
            .get(&guest_phys_addr)
            .copied()
            .ok_or(Error::NoMemoryRegion { guest_phys_addr })
    }

    /// All regions, by guest address.
    pub fn iter(&self) -> impl Iterator<Item = &MemoryRegion> {
        self.by_addr.values().map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_memory_region_is_described_by_its_mapping() {
        use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
        let mem = GuestMemoryMmap::<()>::from_ranges(&[
            (GuestAddress(0), 0x2000),
            (GuestAddress(0x10_0000), 0x1000),
        ])
        .unwrap();
        let flags = MemoryRegionFlags {
            readonly: true,
            log_dirty: false,
        };
        let regions: Vec<_> = mem
            .iter()
            .map(|r| MemoryRegion::from_guest_region(r, flags).unwrap())
            .collect();
        for (r, (gpa, size)) in regions.iter().zip([(0, 0x2000), (0x10_0000, 0x1000)]) {
            assert_eq!((r.guest_phys_addr, r.size, r.flags), (gpa, size, flags));
            let host = mem.get_host_address(GuestAddress(gpa)).unwrap();
            assert_eq!(r.host_addr, host as u64);
            r.validate().unwrap();
        }
    }

    fn region(gpa: u64, size: u64) -> MemoryRegion {
        MemoryRegion {
            guest_phys_addr: gpa,
            size,
            host_addr: 0x7f00_0000_0000,
            flags: MemoryRegionFlags::default(),
        }
    }

    #[test]
    fn overlap_is_a_typed_error_naming_both_regions() {
        let mut t = MemoryRegionTable::new(8);
        t.insert(region(0x10000, 0x10000)).unwrap();
        for (gpa, size) in [(0x0, 0x11000), (0x1f000, 0x1000), (0x12000, 0x1000)] {
            let err = t.insert(region(gpa, size)).unwrap_err();
            match err {
                Error::MemoryRegionOverlap {
                    other_guest_phys_addr: 0x10000,
                    other_size: 0x10000,
                    ..
                } => {}
                other => panic!("{gpa:#x}: unexpected {other:?}"),
            }
        }
        // Adjacent regions are fine.
        t.insert(region(0x0, 0x10000)).unwrap();
        t.insert(region(0x20000, 0x1000)).unwrap();
        assert_eq!(t.iter().count(), 3);
    }

    #[test]
    fn regions_are_counted_and_numbers_reused() {
        let mut t = MemoryRegionTable::new(2);
        assert_eq!(t.insert(region(0, 0x1000)).unwrap(), 0);
        assert_eq!(t.insert(region(0x1000, 0x1000)).unwrap(), 1);
        assert!(matches!(
            t.insert(region(0x2000, 0x1000)),
            Err(Error::TooManyMemoryRegions {
                guest_phys_addr: 0x2000,
                max_regions: 2
            })
        ));
        assert!(matches!(
            t.remove(0x5000),
            Err(Error::NoMemoryRegion {
                guest_phys_addr: 0x5000
            })
        ));
        assert_eq!(t.remove(0).unwrap(), (0, region(0, 0x1000)));
        assert!(t.get(0).is_err());
        // The freed number is handed out again, not a third one.
        assert_eq!(t.insert(region(0x2000, 0x1000)).unwrap(), 0);
        assert_eq!(t.get(0x1000).unwrap().0, 1);
    }

    #[test]
    fn malformed_regions_are_rejected() {
        let t = MemoryRegionTable::new(8);
        let mut unaligned_host = region(0, 0x1000);
        unaligned_host.host_addr += 8;
        for r in [
            region(0, 0),
            region(0, 0x800),
            region(0x10, 0x1000),
            region(u64::MAX - 0xfff, 0x2000),
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
        assert_eq!(region(0, 0x5000).pages(), 5);
        assert_eq!(region(0x1000, 0x5000).end(), 0x6000);
    }
}
