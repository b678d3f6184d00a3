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
//! devices); [`fake::FakeGuest`] implements them in-process for tests and benchmarks.
//!
//! # Performance
//!
//! `benches/vs_libxenforeignmemory.rs` measures, in a real dom0 of the Xen box and side by side,
//! mapping throughput against Xen's C libxenforeignmemory and copy throughput of mapped memory
//! (the memory types' own [`ForeignGuestMemory::read_slice`], [`CacheView::read_slice`] and
//! their `write_slice`, and vm-memory's generic `Bytes` path) against a plain `memcpy` (see the
//! README for how to run it and how it copes with the emulated, shared machine).
//!
//! Measured 2026-11-22 on an idle host (load average about 1.5; 2 cores) with the executable above,
//! one run per stack: bookworm (Xen 4.17, Linux 6.1) 23:17 UTC, trixie (Xen 4.20, Linux 6.12)
//! 23:18 UTC. Each cell: crate throughput over reference throughput, **median of the per-round
//! ratios** (196 to 1190 rounds), 10th-90th percentile of those ratios in brackets (the spread),
//! ratio of total times after the slash. Above 1.0 the crate is faster.
//!
//! | comparison | bookworm | trixie | target |
//! |---|---|---|---|
//! | map + unmap 1 page, `map_frames_into` vs C | **0.99** [0.90-1.16] / 1.00 | **0.99** [0.87-1.14] / 1.00 | ≥ 1.0 |
//! | map + unmap 64 pages, `map_frames_into` vs C | **1.00** [0.79-1.25] / 1.00 | **1.01** [0.82-1.24] / 1.00 | ≥ 1.0 |
//! | map + unmap 512 pages, `map_frames_into` vs C | **1.00** [0.90-1.11] / 1.00 | **1.00** [0.90-1.13] / 1.00 | ≥ 1.0 |
//! | map + unmap 1 page, `ForeignRegion::map` vs C | **0.97** [0.86-1.09] / 0.96 | **0.97** [0.85-1.12] / 0.97 | ≥ 1.0 |
//! | map + unmap 64 pages, `ForeignRegion::map` vs C | **0.96** [0.78-1.22] / 0.97 | **0.98** [0.79-1.22] / 0.98 | ≥ 1.0 |
//! | map + unmap 512 pages, `ForeignRegion::map` vs C | **0.98** [0.88-1.08] / 0.97 | **0.98** [0.87-1.12] / 0.98 | ≥ 1.0 |
//! | read 4 KiB, whole-guest | **0.99** [0.94-1.03] / 0.98 | **0.99** [0.94-1.05] / 0.99 | ≥ 0.9 |
//! | read 4 KiB, lazy view | **0.96** [0.92-1.01] / 0.96 | **0.96** [0.90-1.01] / 0.95 | ≥ 0.9 |
//! | write 4 KiB, whole-guest | **0.98** [0.93-1.05] / 0.98 | **0.98** [0.94-1.05] / 0.99 | ≥ 0.9 |
//! | write 4 KiB, lazy view | **0.95** [0.89-1.02] / 0.95 | **0.96** [0.91-1.01] / 0.96 | ≥ 0.9 |
//! | read 2 MiB, whole-guest | **1.06** [0.90-1.23] / 1.05 | **1.10** [0.98-1.23] / 1.09 | ≥ 0.9 |
//! | read 2 MiB, lazy view | **0.99** [0.85-1.13] / 0.98 | **1.01** [0.91-1.13] / 1.02 | ≥ 0.9 |
//! | write 2 MiB, whole-guest | **0.91** [0.84-1.01] / 0.91 | **0.92** [0.83-1.04] / 0.93 | ≥ 0.9 |
//! | write 2 MiB, lazy view | **1.02** [0.94-1.13] / 1.03 | **1.03** [0.93-1.13] / 1.02 | ≥ 0.9 |
//! | *generic `Bytes` path:* read / write 4 KiB, lazy view | 0.85 / 0.79 | 0.85 / 0.83 | |
//! | *generic `Bytes` path:* read / write 4 KiB, `GuestMemoryMmap` of ordinary memory | 0.94 / 0.93 | 0.94 / 0.94 | (reference) |
//! | raw `memcpy` of the mapped memory, read / write 4 KiB | 1.01 / 1.02 | 1.01 / 1.01 | (reference) |
//! | raw `memcpy` of the mapped memory, read / write 2 MiB | 0.98 / 0.92 | 1.01 / 0.94 | (reference) |
//!
//! What this says, and what it does not:
//!
//! - **Mapping (target ≥ 1.0x): parity.** `XenForeignMapper::map_frames_into` does the C library's
//!   job with its calling convention (the caller's frame list and error array: one `mmap` of the
//!   privcmd device, one `MMAPBATCH_V2` ioctl, one `munmap` on drop, nothing allocated) and
//!   measures 0.99-1.01 (medians), 1.00 (total times) in every size on both stacks: equal within
//!   the resolution of this machine, not demonstrably faster. Both make the same three system
//!   calls, which are the whole cost. `ForeignRegion::map`, which also builds the frame list and
//!   keeps each frame's status, is 2-4 % behind.
//! - **Copies (target ≥ 0.9x): met** through the memory types' own `read_slice`/`write_slice`,
//!   in both modes, on both stacks: 4 KiB at 0.95-0.99, 2 MiB at 0.91-1.10. Whole-guest memory
//!   finds the region and makes one copy; a lazy view finds the bucket among the few its first
//!   accesses pinned (a shift and lock-free loads) and makes one copy. The 2 MiB whole-guest
//!   writes (0.91-0.92) go exactly as fast as a raw `memcpy` into the same mapping (0.92-0.94):
//!   that is where the pages are, not the access path. (Before the short paths, the same
//!   benchmark measured 4 KiB at 0.88-0.95 whole-guest and 0.83-0.89 for views.)
//! - **Code generic over `GuestMemory`** (virtio-queue, for one) goes through vm-memory's own
//!   `Bytes` implementation, which every `GuestMemory` gets and this crate cannot replace: in the
//!   runs above its iterator adapters cost 0.06-0.07 of a 4 KiB copy over vm-memory's own
//!   `GuestMemoryMmap` and 0.15-0.21 over a lazy view. That gap is not stable: a later build
//!   (23:45 UTC, trixie, same code but for an out-of-line slow path in the view's iterator)
//!   measured 0.84 / 0.82 over `GuestMemoryMmap` and 0.85 / 0.81 over the view, so under
//!   emulation the generic path's cost moves with code layout by as much as the difference.
//!   Code that holds the concrete type gets the short paths (that build: whole-guest 1.00 / 0.96,
//!   view 0.96 / 0.93); large copies amortise either way (2 MiB at 1.02-1.09 on the generic
//!   path).
//!
//! # Example
//!
//! ```no_run
//! use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
//! use xen_foreignmem::{CacheConfig, LazyForeignMemory, XenForeignMapper};
//!
//! let domid = 1;
//! let cache = LazyForeignMemory::new(XenForeignMapper::open()?, domid, 1 << 30, CacheConfig::default())?;
//! let mem = cache.memory(); // one view per unit of work
//! mem.write_obj(0xfeed_u32, GuestAddress(0x2000))?;
//! assert_eq!(mem.read_obj::<u32>(GuestAddress(0x2000))?, 0xfeed);
//! drop(mem);
//! cache.invalidate(); // the guest's physmap changed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
mod error;
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
pub use mapper::{DomId, ForeignMapper, GrantMapper, MappedFrames, MappedPages, XEN_PAGE_SIZE};
pub use whole::{map_whole_guest, ForeignGuestMemory, ForeignRegion, ForeignResource};
pub use xen::{XenForeignMapper, XenForeignMapping, XenGrantMapper, XenGrantMapping};

#[cfg(test)]
mod tests;

// Compiles the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
