// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest memory as the vhost-user memory table sees it.
//!
//! A vhost-user backend maps guest memory itself, from file descriptors the
//! frontend passes in SET_MEM_TABLE (for KVM, the memfd behind guest RAM).
//! Each region carries three addresses: where it sits in the guest, where
//! the frontend (this process) mapped it, and where it starts in its file.
//! The vring addresses of SET_VRING_ADDR are *frontend virtual addresses*:
//! the backend translates them through the table's frontend addresses, so
//! [`SharedMemory::frontend_address`] turns the guest addresses the driver
//! wrote into those.
//!
//! On Xen the frontend does not map the guest at all: each region's fd is a
//! Xen device handle through which the daemon maps the guest's frames itself
//! ([`Mapping::XenForeign`], [`Mapping::XenGrant`]), and the frontend
//! address is the guest address.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use thiserror::Error;

/// The most regions one SET_MEM_TABLE carries (the fds ride in one message).
pub const MAX_REGIONS: usize = 8;

/// How the daemon maps a region from the fd it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mapping {
    /// An ordinary file (a memfd): the daemon maps it from `offset`.
    File {
        /// Offset of the region's first byte in the file.
        offset: u64,
    },
    /// Xen foreign mapping: the fd is a `/dev/xen/privcmd` handle (best
    /// restricted to `domid`) through which the daemon maps the region's
    /// frames of domain `domid` up front (XEN_MMAP FOREIGN).
    XenForeign {
        /// The guest whose memory it is.
        domid: u16,
    },
    /// Xen grants: the fd is a `/dev/xen/gntdev` handle through which the
    /// daemon maps the grant references the guest's addresses carry
    /// (bit 63 set, the reference in the frame number) when it needs them
    /// (XEN_MMAP GRANT with NO_ADVANCE_MAP).
    XenGrant {
        /// The guest that grants.
        domid: u16,
    },
}

impl Mapping {
    /// Whether the daemon must speak Xen's memory table (XEN_MMAP) for it.
    pub fn is_xen(self) -> bool {
        !matches!(self, Mapping::File { .. })
    }
}

/// One region of guest memory that a backend daemon can map.
#[derive(Debug)]
pub struct SharedRegion {
    /// Guest-physical address of the region's first byte.
    pub guest_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Where this process mapped the region (its virtual address).
    pub frontend_addr: u64,
    /// What the daemon maps the region from: a memfd, or a Xen device
    /// handle (see [`Mapping`]).
    pub fd: OwnedFd,
    /// How the daemon maps it.
    pub mapping: Mapping,
}

/// Why a set of regions cannot be a memory table.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryError {
    /// No region at all, or more than [`MAX_REGIONS`].
    #[error("a memory table needs 1 to {MAX_REGIONS} regions, got {count}")]
    RegionCount {
        /// Regions given.
        count: usize,
    },
    /// A region of size zero, or one whose end overflows.
    #[error("region at guest address {guest_addr:#x} of {size:#x} bytes is empty or wraps")]
    BadRegion {
        /// Guest address of the region.
        guest_addr: u64,
        /// Its size.
        size: u64,
    },
    /// Some regions are Xen mappings and others are not: a daemon speaks
    /// one memory table layout per connection.
    #[error("Xen and non-Xen regions cannot share one memory table")]
    MixedMappings,
    /// Two regions overlap in guest-physical space.
    #[error("regions at guest addresses {first:#x} and {second:#x} overlap")]
    Overlap {
        /// Lower region.
        first: u64,
        /// Region that starts inside it.
        second: u64,
    },
}

/// Guest memory shared with a vhost-user backend: the regions of its
/// memory table, sorted by guest address and checked not to overlap.
#[derive(Debug)]
pub struct SharedMemory {
    regions: Vec<SharedRegion>,
}

impl SharedMemory {
    /// Checks `regions` and keeps them sorted by guest address.
    pub fn new(mut regions: Vec<SharedRegion>) -> Result<Self, MemoryError> {
        if regions.is_empty() || regions.len() > MAX_REGIONS {
            return Err(MemoryError::RegionCount {
                count: regions.len(),
            });
        }
        let xen = regions[0].mapping.is_xen();
        if regions.iter().any(|r| r.mapping.is_xen() != xen) {
            return Err(MemoryError::MixedMappings);
        }
        for r in &regions {
            let offset = match r.mapping {
                Mapping::File { offset } => offset,
                _ => 0,
            };
            let wraps = r.guest_addr.checked_add(r.size).is_none()
                || r.frontend_addr.checked_add(r.size).is_none()
                || offset.checked_add(r.size).is_none();
            if r.size == 0 || wraps {
                return Err(MemoryError::BadRegion {
                    guest_addr: r.guest_addr,
                    size: r.size,
                });
            }
        }
        regions.sort_by_key(|r| r.guest_addr);
        for w in regions.windows(2) {
            if w[0].guest_addr + w[0].size > w[1].guest_addr {
                return Err(MemoryError::Overlap {
                    first: w[0].guest_addr,
                    second: w[1].guest_addr,
                });
            }
        }
        Ok(SharedMemory { regions })
    }

    /// The regions, by guest address.
    pub fn regions(&self) -> &[SharedRegion] {
        &self.regions
    }

    /// Whether some region is Xen grants (the device reaches guest memory through grant
    /// references: a platform translation the driver must know of).
    pub fn has_grants(&self) -> bool {
        self.regions
            .iter()
            .any(|r| matches!(r.mapping, Mapping::XenGrant { .. }))
    }

    /// Whether the regions are Xen mappings, which need the daemon's
    /// XEN_MMAP memory table.
    pub fn is_xen(&self) -> bool {
        self.regions.iter().any(|r| r.mapping.is_xen())
    }

    /// The frontend virtual address of guest range `[guest_addr,
    /// guest_addr + len)`, if the whole range lies in one region.
    pub fn frontend_address(&self, guest_addr: u64, len: u64) -> Option<u64> {
        let end = guest_addr.checked_add(len)?;
        let r = self
            .regions
            .iter()
            .find(|r| r.guest_addr <= guest_addr && end <= r.guest_addr + r.size)?;
        Some(r.frontend_addr + (guest_addr - r.guest_addr))
    }

    /// The raw fds of the regions, in table order (borrowed from `self`).
    pub(crate) fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.regions.iter().map(|r| r.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(guest_addr: u64, size: u64, frontend_addr: u64) -> SharedRegion {
        let fd = std::fs::File::open("/dev/null").unwrap().into();
        SharedRegion {
            guest_addr,
            size,
            frontend_addr,
            fd,
            mapping: Mapping::File { offset: 0 },
        }
    }

    #[test]
    fn guest_ranges_translate_to_frontend_addresses_within_one_region() {
        let m = SharedMemory::new(vec![
            region(0x10_0000, 0x1000, 0x7f00_0000_0000),
            region(0, 0x1000, 0x7f00_1000_0000),
        ])
        .unwrap();
        assert_eq!(m.regions()[0].guest_addr, 0, "sorted");
        assert_eq!(m.frontend_address(0x10, 0x20), Some(0x7f00_1000_0010));
        assert_eq!(m.frontend_address(0x10_0ff0, 0x10), Some(0x7f00_0000_0ff0));
        assert_eq!(m.frontend_address(0xff0, 0x20), None, "runs past the end");
        assert_eq!(m.frontend_address(0x2000, 1), None, "a hole");
        assert_eq!(m.frontend_address(u64::MAX, 2), None, "wraps");
        assert_eq!(m.raw_fds().count(), 2);
    }

    #[test]
    fn bad_tables_are_refused() {
        assert_eq!(
            SharedMemory::new(vec![]).unwrap_err(),
            MemoryError::RegionCount { count: 0 }
        );
        let nine = (0..9).map(|i| region(i << 20, 0x1000, 0)).collect();
        assert!(matches!(
            SharedMemory::new(nine),
            Err(MemoryError::RegionCount { count: 9 })
        ));
        assert!(matches!(
            SharedMemory::new(vec![region(0, 0, 0)]),
            Err(MemoryError::BadRegion { .. })
        ));
        assert!(matches!(
            SharedMemory::new(vec![region(u64::MAX - 1, 0x10, 0)]),
            Err(MemoryError::BadRegion { .. })
        ));
        assert_eq!(
            SharedMemory::new(vec![region(0, 0x2000, 0), region(0x1000, 0x1000, 0)]).unwrap_err(),
            MemoryError::Overlap {
                first: 0,
                second: 0x1000
            }
        );
        let mut xen = region(0x1000, 0x1000, 0x1000);
        xen.mapping = Mapping::XenForeign { domid: 3 };
        assert_eq!(
            SharedMemory::new(vec![region(0, 0x1000, 0), xen]).unwrap_err(),
            MemoryError::MixedMappings
        );
    }

    #[test]
    fn xen_regions_make_a_xen_table() {
        let mut r = region(0x4000_0000, 0x800_0000, 0x4000_0000);
        r.mapping = Mapping::XenForeign { domid: 3 };
        let m = SharedMemory::new(vec![r]).unwrap();
        assert!(m.is_xen());
        assert!(!SharedMemory::new(vec![region(0, 0x1000, 0)])
            .unwrap()
            .is_xen());
    }
}
