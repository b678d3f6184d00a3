// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! vm-memory [`GuestMemory`](vm_memory::GuestMemory) over Xen foreign and grant mappings.
//!
//! A Xen device model or vhost-user frontend in dom0 reaches a guest's memory by mapping it:
//! foreign mappings of its frames (privcmd `MMAPBATCH_V2`), mappings of resources such as IOREQ
//! server pages (privcmd `MMAP_RESOURCE`), or mappings of pages the guest granted (gntdev). This
//! crate turns those into vm-memory guest memory, so `virtio-queue` and anything else written
//! against vm-memory's traits works on a Xen guest unchanged. Three shapes:
//!
//! - [`map_whole_guest`]: every RAM range mapped up front into a [`ForeignGuestMemory`], a
//!   `GuestMemoryBackend` like `GuestMemoryMmap` (over vm-memory's `GuestRegionCollection`).
//! - [`LazyForeignMemory`]: buckets mapped on first touch, at most a fixed number at once, LRU
//!   eviction, [`invalidate`](MappingCache::invalidate) for Xen's `IOREQ_TYPE_INVALIDATE`.
//! - [`GrantMemory`]: guest addresses that are grant addresses (`1 << 63 | gref << 12 | offset`,
//!   virtio with Xen grant DMA), each referenced page mapped on first touch and cached.
//!
//! [`ForeignResource`] maps resources.
//!
//! # Example
//!
//! Read and write a guest's memory through a bounded cache of foreign mappings (as root in
//! dom0; domain 1 is the guest):
//!
//! ```no_run
//! use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
//! use xen_foreignmem::{CacheConfig, DomId, LazyForeignMemory, XenForeignMapper};
//!
//! let domid = DomId::new(1);
//! let cache = LazyForeignMemory::new(XenForeignMapper::open()?, domid, 1 << 30, CacheConfig::default())?;
//! let mem = cache.memory(); // one view per unit of work
//! mem.write_obj(0xfeed_u32, GuestAddress(0x2000))?;
//! assert_eq!(mem.read_obj::<u32>(GuestAddress(0x2000))?, 0xfeed);
//! drop(mem);
//! cache.invalidate(); // the guest's physmap changed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Soundness of the cached modes
//!
//! vm-memory slices borrow the memory object, they do not own a mapping. The cached modes
//! therefore implement `GuestMemory` on a short-lived [`CacheView`] that pins (holds an `Arc` of)
//! every bucket it hands out a slice of; eviction and invalidation never unmap a pinned bucket.
//! See the [`cache`] module.
//!
//! # The seam
//!
//! Everything is written against the [`ForeignMapper`] and [`GrantMapper`] traits.
//! [`XenForeignMapper`] and [`XenGrantMapper`] implement them over `xen-bindings` (the real
//! devices); `fake::FakeGuest` (feature `test-utils`) implements them in-process for tests
//! and benchmarks.
//!
//! # Performance
//!
//! Mapping throughput against Xen's C libxenforeignmemory and copy throughput of mapped
//! memory against `memcpy` are measured side by side in a real dom0 by
//! `benches/vs_libxenforeignmemory.rs`; the workspace's `docs/benchmarks.md` has the figures
//! and the command that reproduces them.

pub mod cache;
mod error;
#[cfg(any(test, feature = "test-utils"))]
pub mod fake;
mod grant;
mod lazy;
mod mapper;
mod whole;
mod xen;

pub use cache::{BucketSource, CacheConfig, CacheStats, CacheView, MappedBucket, MappingCache};
pub use error::{Error, FrameError, Result};
pub use grant::{
    grant_addr, split_grant_addr, GrantKey, GrantMemory, GrantSource, GrantView, GRANT_ADDR_FLAG,
};
pub use lazy::{FrameSource, LazyForeignMemory, LazyView};
pub use mapper::{ForeignMapper, GrantMapper, MappedFrames, MappedPages};
// Re-exported because the API speaks of them: users need not name xen-bindings.
pub use whole::{map_whole_guest, ForeignGuestMemory, ForeignRegion, ForeignResource};
pub use xen::{XenForeignMapper, XenForeignMapping, XenGrantMapper, XenGrantMapping};
pub use xen_bindings::privcmd::Resource;
pub use xen_bindings::{DomId, XEN_PAGE_SIZE};

#[cfg(test)]
mod tests;

// Compiles the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
