// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Whole-guest mode: every RAM range of the guest mapped up front, one mapping per range.
//!
//! The result is a [`ForeignGuestMemory`]: a vm-memory [`GuestRegionCollection`] of
//! [`ForeignRegion`]s behind a [`GuestMemoryBackend`] (and through vm-memory's blanket impls a
//! [`vm_memory::GuestMemory`] with [`Bytes`]), so everything that takes a `GuestMemoryMmap` works
//! on it unchanged, plus a short copy path of its own. Each region owns its mapping; a slice
//! borrows the region, so no slice can outlive the mapping.

use vm_memory::bitmap::BS;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryError, GuestMemoryRegion,
    GuestMemoryRegionBytes, GuestMemoryResult, GuestRegionCollection, GuestUsize,
    MemoryRegionAddress, VolatileSlice,
};

use crate::error::{Error, FrameError, Result};
use crate::mapper::{ForeignMapper, MappedPages};
use xen_bindings::privcmd::Resource;
use xen_bindings::{DomId, XEN_PAGE_SIZE};

const PAGE: u64 = XEN_PAGE_SIZE as u64;

/// One range of guest RAM mapped contiguously into this process.
#[derive(Debug)]
pub struct ForeignRegion<M> {
    start: GuestAddress,
    mapping: M,
}

impl<M: MappedPages> ForeignRegion<M> {
    /// Maps `len` bytes of `domid`'s memory from guest address `start` (both 4 KiB aligned).
    ///
    /// Fails with [`Error::FramesUnavailable`] naming every frame Xen refused (the partial
    /// mapping is released): whole-guest mode hands out slices anywhere in the region, so it
    /// accepts no holes. Map RAM ranges only, or use [`crate::LazyForeignMemory`], which
    /// tolerates holes.
    pub fn map<F>(mapper: &F, domid: DomId, start: GuestAddress, len: u64) -> Result<Self>
    where
        F: ForeignMapper<Mapping = M>,
    {
        if len == 0 || len % PAGE != 0 || start.raw_value() % PAGE != 0 {
            return Err(Error::InvalidConfig(
                "region start and length must be non-zero multiples of 4 KiB",
            ));
        }
        let end = start
            .raw_value()
            .checked_add(len)
            .ok_or(Error::OutOfRange {
                addr: start.raw_value(),
                len,
                end: u64::MAX,
            })?;
        if usize::try_from(len).is_err() {
            return Err(Error::InvalidConfig("region larger than the address space"));
        }
        let gfns: Vec<u64> = (start.raw_value() / PAGE..end / PAGE).collect();
        let mapped = mapper
            .map_frames(domid, &gfns)
            .map_err(|source| Error::MapFrames {
                domid,
                first_gfn: gfns[0],
                count: gfns.len(),
                source,
            })?;
        let failed: Vec<FrameError> = gfns
            .iter()
            .zip(&mapped.errors)
            .filter(|(_, &e)| e != 0)
            .map(|(&gfn, &errno)| FrameError { gfn, errno })
            .collect();
        if let Some(&first) = failed.first() {
            return Err(Error::FramesUnavailable {
                domid,
                first,
                failed,
            });
        }
        if mapped.mapping.len() as u64 != len {
            return Err(Error::InvalidConfig(
                "mapper returned a mapping of the wrong length",
            ));
        }
        Ok(ForeignRegion {
            start,
            mapping: mapped.mapping,
        })
    }

    /// The mapping backing the region.
    pub fn mapping(&self) -> &M {
        &self.mapping
    }
}

impl<M: MappedPages> GuestMemoryRegion for ForeignRegion<M> {
    type B = ();

    fn len(&self) -> GuestUsize {
        self.mapping.len() as GuestUsize
    }

    fn start_addr(&self) -> GuestAddress {
        self.start
    }

    fn bitmap(&self) -> BS<'_, ()> {}

    fn get_host_address(&self, addr: MemoryRegionAddress) -> vm_memory::GuestMemoryResult<*mut u8> {
        self.check_address(addr)
            .ok_or(GuestMemoryError::InvalidBackendAddress)
            // Offset within the mapping: checked against len() just above.
            .map(|addr| {
                self.mapping
                    .as_ptr()
                    .wrapping_add(addr.raw_value() as usize)
            })
    }

    fn get_slice(
        &self,
        offset: MemoryRegionAddress,
        count: usize,
    ) -> vm_memory::GuestMemoryResult<VolatileSlice<'_, BS<'_, ()>>> {
        let off = offset.raw_value();
        let end = off
            .checked_add(count as u64)
            .ok_or(GuestMemoryError::InvalidBackendAddress)?;
        if end > self.len() {
            return Err(GuestMemoryError::InvalidBackendAddress);
        }
        // SAFETY: `off..end` lies within the mapping (checked above), which `MappedPages`
        // guarantees stays mapped while `self.mapping` lives; the slice borrows `self`, so it
        // cannot outlive the mapping. Every page is mapped (construction rejected failed frames).
        // The guest may write concurrently, which is why only a VolatileSlice is handed out.
        Ok(unsafe { VolatileSlice::new(self.mapping.as_ptr().add(off as usize), count) })
    }
}

impl<M: MappedPages> GuestMemoryRegionBytes for ForeignRegion<M> {}

/// The whole guest mapped up front: its RAM ranges as [`ForeignRegion`]s.
///
/// A [`GuestMemoryBackend`] (like `GuestMemoryMmap`), so through vm-memory's blanket impls a
/// [`vm_memory::GuestMemory`] with [`Bytes`]: code generic over guest memory (virtio-queue for
/// one) works on it unchanged.
///
/// Its inherent [`Self::read_slice`] and [`Self::write_slice`] give the same results and errors
/// as [`Bytes::read_slice`] and [`Bytes::write_slice`], by a shorter path for the common case of
/// a range inside one region: a region lookup, a bounds check and one copy, where vm-memory's
/// generic path (fallible slice iterator adapters, per-slice bounds re-checks and re-slicing)
/// costs a good part of a small copy. Being inherent, they are what `mem.read_slice(..)` calls
/// on a concrete `ForeignGuestMemory`.
#[derive(Debug)]
pub struct ForeignGuestMemory<M> {
    regions: GuestRegionCollection<ForeignRegion<M>>,
}

impl<M: MappedPages> GuestMemoryBackend for ForeignGuestMemory<M> {
    type R = ForeignRegion<M>;

    fn num_regions(&self) -> usize {
        self.regions.num_regions()
    }

    fn find_region(&self, addr: GuestAddress) -> Option<&ForeignRegion<M>> {
        self.regions.find_region(addr)
    }

    fn iter(&self) -> impl Iterator<Item = &ForeignRegion<M>> {
        self.regions.iter()
    }
}

impl<M: MappedPages> ForeignGuestMemory<M> {
    /// The regions as vm-memory's collection.
    pub fn regions(&self) -> &GuestRegionCollection<ForeignRegion<M>> {
        &self.regions
    }

    /// Reads `buf.len()` bytes from `addr`: [`Bytes::read_slice`], shorter when the range lies
    /// in one region (see the [type documentation](Self)).
    pub fn read_slice(&self, buf: &mut [u8], addr: GuestAddress) -> GuestMemoryResult<()> {
        match self.within_one_region(addr, buf.len()) {
            Some(slice) => {
                slice.copy_to(buf);
                Ok(())
            }
            None => Bytes::read_slice(&self.regions, buf, addr),
        }
    }

    /// Writes `buf` at `addr`: [`Bytes::write_slice`], shorter when the range lies in one
    /// region (see the [type documentation](Self)).
    pub fn write_slice(&self, buf: &[u8], addr: GuestAddress) -> GuestMemoryResult<()> {
        match self.within_one_region(addr, buf.len()) {
            Some(slice) => {
                slice.copy_from(buf);
                Ok(())
            }
            None => Bytes::write_slice(&self.regions, buf, addr),
        }
    }

    /// `addr..addr + len` as one slice, if one region holds all of it.
    fn within_one_region(&self, addr: GuestAddress, len: usize) -> Option<VolatileSlice<'_>> {
        let region = self.regions.find_region(addr)?;
        // `find_region` returned the region holding `addr`: no underflow.
        let offset = addr.raw_value() - region.start.raw_value();
        region.get_slice(MemoryRegionAddress(offset), len).ok()
    }
}

/// Maps every range of `ranges` (guest address, length in bytes; 4 KiB aligned, sorted, not
/// overlapping) of `domid` and returns them as one [`ForeignGuestMemory`].
///
/// # Example
///
/// ```no_run
/// use vm_memory::{Bytes, GuestAddress};
/// use xen_foreignmem::{map_whole_guest, DomId, XenForeignMapper};
///
/// let mapper = XenForeignMapper::open()?;
/// let mem = map_whole_guest(&mapper, DomId::new(1), &[(GuestAddress(0), 128 << 20)])?;
/// let magic: u32 = mem.read_obj(GuestAddress(0x1000))?;
/// # let _ = magic;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn map_whole_guest<F: ForeignMapper>(
    mapper: &F,
    domid: DomId,
    ranges: &[(GuestAddress, u64)],
) -> Result<ForeignGuestMemory<F::Mapping>> {
    let regions = ranges
        .iter()
        .map(|&(start, len)| ForeignRegion::map(mapper, domid, start, len))
        .collect::<Result<Vec<_>>>()?;
    GuestRegionCollection::from_regions(regions)
        .map(|regions| ForeignGuestMemory { regions })
        .map_err(|_| Error::InvalidConfig("ranges must be non-empty, sorted and not overlap"))
}

/// A mapped resource of a domain (`IOCTL_PRIVCMD_MMAP_RESOURCE`): IOREQ server pages, grant
/// table frames, vmtrace buffers...
#[derive(Debug)]
pub struct ForeignResource<M> {
    mapping: M,
}

impl<M: MappedPages> ForeignResource<M> {
    /// Maps `nr_frames` frames of `resource` of `domid`, from `frame`.
    pub fn map<F>(
        mapper: &F,
        domid: DomId,
        resource: Resource,
        frame: u64,
        nr_frames: u64,
    ) -> Result<Self>
    where
        F: ForeignMapper<Mapping = M>,
    {
        let err = |source| Error::MapResource {
            domid,
            resource,
            frame,
            nr_frames,
            source,
        };
        if nr_frames == 0 {
            return Err(err(std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        let mapping = mapper
            .map_resource(domid, resource, frame, nr_frames)
            .map_err(err)?;
        if Some(mapping.len() as u64) != nr_frames.checked_mul(PAGE) {
            return Err(Error::InvalidConfig(
                "mapper returned a mapping of the wrong length",
            ));
        }
        Ok(ForeignResource { mapping })
    }

    /// The whole resource as a volatile slice; it borrows `self`, which keeps the mapping alive.
    pub fn as_volatile_slice(&self) -> VolatileSlice<'_> {
        // SAFETY: the whole mapping is valid while `self.mapping` lives (`MappedPages`), and the
        // slice borrows `self`. The memory is shared with Xen and the guest: volatile access only.
        unsafe { VolatileSlice::new(self.mapping.as_ptr(), self.mapping.len()) }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.mapping.len()
    }

    /// Whether the mapping is empty (never: mapping zero frames is refused).
    pub fn is_empty(&self) -> bool {
        self.mapping.is_empty()
    }
}
