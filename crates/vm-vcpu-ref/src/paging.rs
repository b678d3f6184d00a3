// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Identity-mapped page tables for entering long mode.
//!
//! Four-level paging with 2 MiB pages: one PML4 page, one PDPT page and one
//! page directory per GiB mapped, laid out contiguously from a 4 KiB-aligned
//! base. Only the first PML4 entry is used, so up to 512 GiB can be mapped.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::paging::IdentityMap;
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let tables = IdentityMap::default().write(&mem, GuestAddress(0x9000)).unwrap();
//! assert_eq!(tables.cr3, 0x9000);
//! ```

use vm_memory::{GuestAddress, GuestMemory};

use crate::error::{Error, Result};
use crate::guest;

/// Size of one paging structure.
pub const PAGE_SIZE: u64 = 0x1000;
/// Size of a page mapped by a page-directory entry with PS set.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Memory one page directory maps.
pub const GIB: u64 = 1 << 30;
/// Most memory one PML4 entry (and so this map) covers.
pub const MAX_IDENTITY_MAP: u64 = 512 * GIB;

/// Entry bit: present.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Entry bit: writable.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Page-directory entry bit: maps a 2 MiB page (page size).
pub const PTE_PAGE_SIZE: u64 = 1 << 7;

/// An identity map of `[0, size)` with 2 MiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityMap {
    /// Bytes to map from guest physical address 0: a non-zero multiple of
    /// 2 MiB, at most 512 GiB. Defaults to 1 GiB.
    pub size: u64,
}

impl Default for IdentityMap {
    fn default() -> Self {
        Self { size: GIB }
    }
}

/// Where the paging structures of an [`IdentityMap`] were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTables {
    /// Value for CR3: the PML4 address (no PCD/PWT bits).
    pub cr3: u64,
    /// Address of the page-directory-pointer table.
    pub pdpt: GuestAddress,
    /// Address of the first page directory; the others follow at 4 KiB steps.
    pub first_pd: GuestAddress,
    /// Number of page directories.
    pub pd_count: usize,
    /// Bytes identity-mapped from address 0.
    pub mapped: u64,
    /// Bytes of guest memory the structures occupy from the PML4 on.
    pub footprint: u64,
}

impl IdentityMap {
    /// A map of `size` bytes.
    pub fn new(size: u64) -> Self {
        Self { size }
    }

    fn validate(&self) -> Result<()> {
        if self.size == 0 || self.size % LARGE_PAGE_SIZE != 0 {
            return Err(Error::InvalidSize {
                what: "identity map",
                value: self.size,
                reason: "must be a non-zero multiple of 2 MiB",
            });
        }
        if self.size > MAX_IDENTITY_MAP {
            return Err(Error::InvalidSize {
                what: "identity map",
                value: self.size,
                reason: "at most 512 GiB can be mapped",
            });
        }
        Ok(())
    }

    /// Number of page directories the map needs.
    pub fn pd_count(&self) -> usize {
        self.size.div_ceil(GIB) as usize
    }

    /// Bytes of guest memory the paging structures occupy.
    pub fn footprint(&self) -> u64 {
        (2 + self.pd_count() as u64) * PAGE_SIZE
    }

    /// Builds the structures in memory (PML4, PDPT, page directories, each a
    /// full little-endian 4 KiB page) without touching the guest.
    pub fn build(&self, base: GuestAddress) -> Result<Vec<u8>> {
        self.validate()?;
        if base.0 % PAGE_SIZE != 0 {
            return Err(Error::Misaligned {
                what: "page tables",
                addr: base.0,
                align: PAGE_SIZE,
            });
        }
        let footprint = self.footprint();
        if base.0.checked_add(footprint).is_none() {
            return Err(Error::AddressOverflow {
                what: "page tables",
                addr: base.0,
                len: footprint as usize,
            });
        }
        let mut bytes = vec![0u8; footprint as usize];
        let mut put = |page: u64, index: u64, value: u64| {
            let off = (page * PAGE_SIZE + index * 8) as usize;
            bytes[off..off + 8].copy_from_slice(&value.to_le_bytes());
        };
        let pdpt = base.0 + PAGE_SIZE;
        put(0, 0, pdpt | PTE_PRESENT | PTE_WRITABLE);
        let pages = self.size / LARGE_PAGE_SIZE;
        for pd in 0..self.pd_count() as u64 {
            let pd_addr = base.0 + (2 + pd) * PAGE_SIZE;
            put(1, pd, pd_addr | PTE_PRESENT | PTE_WRITABLE);
            let first = pd * 512;
            for entry in 0..512u64.min(pages - first) {
                let phys = (first + entry) * LARGE_PAGE_SIZE;
                put(
                    2 + pd,
                    entry,
                    phys | PTE_PRESENT | PTE_WRITABLE | PTE_PAGE_SIZE,
                );
            }
        }
        Ok(bytes)
    }

    /// Writes the structures at `base` (4 KiB aligned) and returns where
    /// they are and the CR3 value. Unused entries are written as zero, so
    /// stale memory cannot add mappings.
    pub fn write<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        base: GuestAddress,
    ) -> Result<PageTables> {
        let bytes = self.build(base)?;
        guest::write(mem, base, &bytes, "page tables")?;
        Ok(PageTables {
            cr3: base.0,
            pdpt: GuestAddress(base.0 + PAGE_SIZE),
            first_pd: GuestAddress(base.0 + 2 * PAGE_SIZE),
            pd_count: self.pd_count(),
            mapped: self.size,
            footprint: bytes.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::test_util;
    use vm_memory::Bytes;

    fn entry(mem: &vm_memory::GuestMemoryMmap<()>, addr: u64) -> u64 {
        mem.read_obj::<u64>(GuestAddress(addr)).unwrap()
    }

    #[test]
    fn default_maps_one_gib_with_2m_pages() {
        let mem = test_util::mem(1 << 20);
        let pt = IdentityMap::default()
            .write(&mem, GuestAddress(0x9000))
            .unwrap();
        assert_eq!(pt.cr3, 0x9000);
        assert_eq!(pt.pd_count, 1);
        assert_eq!(entry(&mem, 0x9000), 0xa003);
        assert_eq!(entry(&mem, 0x9008), 0);
        assert_eq!(entry(&mem, 0xa000), 0xb003);
        assert_eq!(entry(&mem, 0xa008), 0);
        assert_eq!(entry(&mem, 0xb000), 0x83);
        assert_eq!(entry(&mem, 0xb008), 0x20_0083);
        assert_eq!(entry(&mem, 0xb000 + 511 * 8), (511 << 21) | 0x83);
    }

    #[test]
    fn partial_gib_and_multi_gib_ranges() {
        let mem = test_util::mem(1 << 20);
        let map = IdentityMap::new(GIB + 4 * LARGE_PAGE_SIZE);
        // Stale data must be cleared.
        guest::write(&mem, GuestAddress(0xc000 + 8 * 8), &[0xff; 8], "t").unwrap();
        let pt = map.write(&mem, GuestAddress(0x9000)).unwrap();
        assert_eq!(pt.pd_count, 2);
        assert_eq!(pt.footprint, 4 * PAGE_SIZE);
        assert_eq!(entry(&mem, 0xa008), 0xc003);
        assert_eq!(entry(&mem, 0xa010), 0);
        assert_eq!(entry(&mem, 0xc000), GIB | 0x83);
        assert_eq!(entry(&mem, 0xc018), (GIB + 3 * LARGE_PAGE_SIZE) | 0x83);
        assert_eq!(entry(&mem, 0xc020), 0);
        assert_eq!(entry(&mem, 0xc040), 0);
    }

    #[test]
    fn full_512_gib_map_builds() {
        let map = IdentityMap::new(MAX_IDENTITY_MAP);
        let bytes = map.build(GuestAddress(0)).unwrap();
        assert_eq!(bytes.len() as u64, 514 * PAGE_SIZE);
        let last = bytes.len() - 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[last..]);
        assert_eq!(
            u64::from_le_bytes(b),
            (MAX_IDENTITY_MAP - LARGE_PAGE_SIZE) | 0x83
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mem = test_util::mem(0x10000);
        for size in [0, 0x1000, MAX_IDENTITY_MAP + LARGE_PAGE_SIZE] {
            assert!(matches!(
                IdentityMap::new(size).write(&mem, GuestAddress(0)),
                Err(Error::InvalidSize { .. })
            ));
        }
        assert!(matches!(
            IdentityMap::default().write(&mem, GuestAddress(0x9001)),
            Err(Error::Misaligned { .. })
        ));
        assert!(matches!(
            IdentityMap::default().write(&mem, GuestAddress(0xe000)),
            Err(Error::OutsideGuestMemory { .. })
        ));
        assert!(matches!(
            IdentityMap::default().write(&mem, GuestAddress(!0xfff)),
            Err(Error::AddressOverflow { .. })
        ));
    }
}
