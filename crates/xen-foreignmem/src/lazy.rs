// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Lazy mode: a foreign guest's memory mapped bucket by bucket on first touch, through a bounded
//! [`MappingCache`].

use vm_memory::Permissions;

use crate::cache::{BucketSource, CacheConfig, CacheView, MappedBucket, MappingCache};
use crate::error::{Error, Result};
use crate::mapper::{ForeignMapper, MappedPages};
use xen_bindings::{DomId, XEN_PAGE_SIZE};

const PAGE: u64 = XEN_PAGE_SIZE as u64;

/// Buckets of a foreign guest's frames `[0, mem_size)`: bucket `k` covers guest addresses
/// `k * bucket_size` up to the next bucket or the end of memory.
#[derive(Debug)]
pub struct FrameSource<F> {
    mapper: F,
    domid: DomId,
    mem_size: u64,
    bucket_size: u64,
    /// `log2(bucket_size)` when it is a power of two (the default is): a shift and a mask per
    /// access instead of a 64-bit division, which is slow on emulated CPUs.
    bucket_shift: Option<u32>,
}

impl<F> FrameSource<F> {
    /// The mapper.
    pub fn mapper(&self) -> &F {
        &self.mapper
    }

    /// The domain.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The size of guest memory covered, in bytes.
    pub fn mem_size(&self) -> u64 {
        self.mem_size
    }
}

impl<F: ForeignMapper> BucketSource for FrameSource<F> {
    type Key = u64;
    type Mapping = F::Mapping;

    fn locate(&self, addr: u64, len: usize, _access: Permissions) -> Result<(u64, usize)> {
        if addr >= self.mem_size {
            return Err(Error::OutOfRange {
                addr,
                len: len as u64,
                end: self.mem_size,
            });
        }
        Ok(match self.bucket_shift {
            Some(shift) => (addr >> shift, (addr & (self.bucket_size - 1)) as usize),
            None => (addr / self.bucket_size, (addr % self.bucket_size) as usize),
        })
    }

    fn map(&self, key: u64) -> Result<MappedBucket<F::Mapping>> {
        let base = key * self.bucket_size;
        // Saturating: the last bucket of memory reaching the top of the address space ends at
        // `mem_size`, not past 2^64.
        let end = base.saturating_add(self.bucket_size).min(self.mem_size);
        let gfns: Vec<u64> = (base / PAGE..end.div_ceil(PAGE)).collect();
        let mapped = self
            .mapper
            .map_frames(self.domid, &gfns)
            .map_err(|source| Error::MapFrames {
                domid: self.domid,
                first_gfn: gfns[0],
                count: gfns.len(),
                source,
            })?;
        if mapped.mapping.len() != gfns.len() * XEN_PAGE_SIZE || mapped.errors.len() != gfns.len() {
            return Err(Error::InvalidConfig(
                "mapper returned a mapping of the wrong length",
            ));
        }
        let page_errors = if mapped.errors.iter().all(|&e| e == 0) {
            Vec::new()
        } else {
            mapped.errors
        };
        Ok(MappedBucket {
            mapping: mapped.mapping,
            page_errors,
            domid: self.domid,
            first_gfn: gfns[0],
            base_addr: base,
        })
    }
}

/// A foreign guest's memory, mapped lazily in buckets with a bound on what is mapped at once.
///
/// # Example
///
/// ```no_run
/// use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
/// use xen_foreignmem::{CacheConfig, DomId, LazyForeignMemory, XenForeignMapper};
///
/// let mapper = XenForeignMapper::open()?;
/// let cache = LazyForeignMemory::new(mapper, DomId::new(1), 4 << 30, CacheConfig::default())?;
/// let mem = cache.memory(); // a view; what it maps stays mapped until it is dropped
/// let value: u64 = mem.read_obj(GuestAddress(0x10_0000))?;
/// # let _ = value;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type LazyForeignMemory<F> = MappingCache<FrameSource<F>>;

/// The [`vm_memory::GuestMemory`] view of a [`LazyForeignMemory`].
pub type LazyView<F> = CacheView<FrameSource<F>>;

impl<F: ForeignMapper> MappingCache<FrameSource<F>> {
    /// Covers guest addresses `[0, mem_size)` of `domid`, mapped in buckets of
    /// `config.bucket_size` bytes, at most `config.max_buckets` at once.
    pub fn new(mapper: F, domid: DomId, mem_size: u64, config: CacheConfig) -> Result<Self> {
        if config.bucket_size == 0 || config.bucket_size % XEN_PAGE_SIZE != 0 {
            return Err(Error::InvalidConfig(
                "bucket_size must be a non-zero multiple of 4 KiB",
            ));
        }
        if mem_size == 0 || mem_size % PAGE != 0 {
            return Err(Error::InvalidConfig(
                "mem_size must be a non-zero multiple of 4 KiB",
            ));
        }
        Self::with_source(
            FrameSource {
                mapper,
                domid,
                mem_size,
                bucket_size: config.bucket_size as u64,
                bucket_shift: config
                    .bucket_size
                    .is_power_of_two()
                    .then(|| config.bucket_size.trailing_zeros()),
            },
            config.max_buckets,
        )
    }
}
