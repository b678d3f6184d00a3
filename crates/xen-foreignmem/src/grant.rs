// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Grant mode: guest memory reached through grant references, for virtio with Xen grant DMA.
//!
//! A guest whose virtio devices use grants puts grant addresses in its rings and descriptors:
//! `(1 << 63) | (gref << 12) | offset`. A buffer spanning several pages uses consecutive
//! references, so plain address arithmetic walks it page by page. Each referenced page is mapped
//! through gntdev on first touch and kept in a bounded [`MappingCache`], so a hot buffer (the
//! rings, above all) is not remapped on every access.
//!
//! A guest cannot take back a grant the backend still maps, so mappings must not linger: call
//! [`GrantMemory::release`] for references a finished request used, or
//! [`MappingCache::invalidate`] to drop all of them (pinned ones go when their views go).

use vm_memory::Permissions;

use crate::cache::{BucketSource, CacheView, MappedBucket, MappingCache};
use crate::error::{Error, Result};
use crate::mapper::GrantMapper;
use xen_bindings::{DomId, XEN_PAGE_SIZE};

/// Bit 63 marks an address as a grant address.
pub const GRANT_ADDR_FLAG: u64 = 1 << 63;

/// Builds the grant address of byte `offset` of the page granted by `gref`.
pub fn grant_addr(gref: u32, offset: u16) -> u64 {
    GRANT_ADDR_FLAG | (u64::from(gref) << 12) | u64::from(offset & 0xfff)
}

/// Splits a grant address into grant reference and offset within the page.
pub fn split_grant_addr(addr: u64) -> Result<(u32, usize)> {
    if addr & GRANT_ADDR_FLAG == 0 {
        return Err(Error::NotAGrantAddress { addr });
    }
    let gref = u32::try_from((addr & !GRANT_ADDR_FLAG) >> 12)
        .map_err(|_| Error::NotAGrantAddress { addr })?;
    Ok((gref, (addr & 0xfff) as usize))
}

/// Identifies a grant mapping: read-only and read-write mappings are kept apart, since a guest
/// may grant a page read-only (a buffer the device only reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrantKey {
    /// The grant reference.
    pub gref: u32,
    /// Whether the mapping is writable.
    pub writable: bool,
}

/// Buckets of one granted page each, mapped through a [`GrantMapper`].
#[derive(Debug)]
pub struct GrantSource<G> {
    mapper: G,
    domid: DomId,
}

impl<G> GrantSource<G> {
    /// The mapper.
    pub fn mapper(&self) -> &G {
        &self.mapper
    }

    /// The granting domain.
    pub fn domid(&self) -> DomId {
        self.domid
    }
}

impl<G: GrantMapper> BucketSource for GrantSource<G> {
    type Key = GrantKey;
    type Mapping = G::Mapping;

    fn locate(&self, addr: u64, _len: usize, access: Permissions) -> Result<(GrantKey, usize)> {
        let (gref, offset) = split_grant_addr(addr)?;
        Ok((
            GrantKey {
                gref,
                writable: access.has_write(),
            },
            offset,
        ))
    }

    fn map(&self, key: GrantKey) -> Result<MappedBucket<G::Mapping>> {
        let mapping = self
            .mapper
            .map_grants(self.domid, &[key.gref], key.writable)
            .map_err(|source| Error::MapGrant {
                domid: self.domid,
                gref: key.gref,
                source,
            })?;
        if crate::mapper::MappedPages::len(&mapping) != XEN_PAGE_SIZE {
            return Err(Error::InvalidConfig(
                "mapper returned a mapping of the wrong length",
            ));
        }
        Ok(MappedBucket {
            mapping,
            page_errors: Vec::new(),
            domid: self.domid,
            first_gfn: 0,
            base_addr: GRANT_ADDR_FLAG | (u64::from(key.gref) << 12),
        })
    }
}

/// Guest memory addressed by grant DMA addresses, with a bounded cache of grant mappings.
///
/// Slices handed out for [`Permissions::Read`] come from read-only mappings: do not write
/// through them (virtio-queue's `Reader` and `Writer` ask for the right access).
///
/// # Example
///
/// ```no_run
/// use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
/// use xen_foreignmem::{grant_addr, DomId, GrantMemory, XenGrantMapper};
///
/// let grants = GrantMemory::new(XenGrantMapper::open()?, DomId::new(1), 64)?;
/// let mem = grants.memory();
/// let header: u32 = mem.read_obj(GuestAddress(grant_addr(12, 0)))?;
/// drop(mem);
/// grants.release(12); // the request is done: let the guest take its grant back
/// # let _ = header;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type GrantMemory<G> = MappingCache<GrantSource<G>>;

/// The [`vm_memory::GuestMemory`] view of a [`GrantMemory`].
pub type GrantView<G> = CacheView<GrantSource<G>>;

impl<G: GrantMapper> MappingCache<GrantSource<G>> {
    /// Maps grants of `domid`, at most `max_grants` mapped at once.
    pub fn new(mapper: G, domid: DomId, max_grants: usize) -> Result<Self> {
        Self::with_source(GrantSource { mapper, domid }, max_grants)
    }

    /// Drops the cached mappings of `gref` (unmapped now, or when the views pinning them go).
    pub fn release(&self, gref: u32) {
        self.forget(|k| k.gref == gref);
    }
}
