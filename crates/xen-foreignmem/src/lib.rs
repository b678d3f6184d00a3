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
//! (vm-memory's `Bytes` path, and a lazy view's own [`CacheView::read_slice`] /
//! [`CacheView::write_slice`]) against a plain `memcpy` (see the README for how to run it and
//! how it copes with the emulated, shared machine).
//!
//! Measured 2026-11-22 on an idle host (load average about 1; 2 cores) with the executable above,
//! one run per stack: bookworm (Xen 4.17, Linux 6.1) 21:51 UTC, trixie (Xen 4.20, Linux 6.12)
//! 21:52 UTC. Each cell: crate throughput over reference throughput, **median of the per-round
//! ratios** (338 to 2106 rounds), 10th-90th percentile of those ratios in brackets (the spread),
//! ratio of total times after the slash. Above 1.0 the crate is faster.
//!
//! | comparison | bookworm | trixie | target |
//! |---|---|---|---|
//! | map + unmap 1 page, `map_frames_into` vs C | **1.00** [0.90-1.11] / 1.02 | **0.99** [0.87-1.12] / 0.99 | ≥ 1.0 |
//! | map + unmap 64 pages, `map_frames_into` vs C | **1.01** [0.76-1.29] / 1.00 | **1.00** [0.75-1.32] / 1.00 | ≥ 1.0 |
//! | map + unmap 512 pages, `map_frames_into` vs C | **1.00** [0.92-1.09] / 1.01 | **1.00** [0.91-1.10] / 1.00 | ≥ 1.0 |
//! | map + unmap 1 page, `ForeignRegion::map` vs C | **0.96** [0.87-1.06] / 0.96 | **0.96** [0.84-1.08] / 0.95 | ≥ 1.0 |
//! | map + unmap 64 pages, `ForeignRegion::map` vs C | **0.95** [0.74-1.27] / 0.96 | **0.98** [0.74-1.28] / 0.97 | ≥ 1.0 |
//! | map + unmap 512 pages, `ForeignRegion::map` vs C | **0.98** [0.91-1.07] / 0.99 | **0.99** [0.90-1.10] / 0.99 | ≥ 1.0 |
//! | read 2 MiB, whole-guest | **0.98** [0.92-1.06] / 0.99 | **1.02** [0.91-1.11] / 1.01 | ≥ 0.9 |
//! | read 2 MiB, lazy view | **0.99** [0.92-1.06] / 0.99 | **1.02** [0.92-1.12] / 1.01 | ≥ 0.9 |
//! | write 2 MiB, whole-guest | **1.01** [0.93-1.08] / 1.01 | **0.99** [0.92-1.05] / 0.99 | ≥ 0.9 |
//! | write 2 MiB, lazy view | **1.02** [0.93-1.10] / 1.02 | **0.99** [0.91-1.07] / 0.99 | ≥ 0.9 |
//! | read 4 KiB, whole-guest | **0.89** [0.85-0.92] / 0.89 | **0.88** [0.84-0.91] / 0.88 | ≥ 0.9 |
//! | read 4 KiB, lazy view | **0.84** [0.80-0.87] / 0.82 | **0.83** [0.80-0.86] / 0.83 | ≥ 0.9 |
//! | read 4 KiB, lazy view, generic `Bytes` path | **0.78** [0.75-0.81] / 0.78 | **0.78** [0.75-0.80] / 0.78 | ≥ 0.9 |
//! | write 4 KiB, whole-guest | **0.89** [0.85-0.92] / 0.89 | **0.89** [0.84-0.93] / 0.89 | ≥ 0.9 |
//! | write 4 KiB, lazy view | **0.84** [0.80-0.86] / 0.84 | **0.83** [0.80-0.87] / 0.83 | ≥ 0.9 |
//! | write 4 KiB, lazy view, generic `Bytes` path | **0.75** [0.72-0.78] / 0.75 | **0.75** [0.72-0.78] / 0.75 | ≥ 0.9 |
//! | raw `memcpy` of the mapped memory, read / write 4 KiB | 0.99 / 0.99 | 0.99 / 0.99 | (reference) |
//!
//! A run of the same copy code minutes earlier (21:46-21:48 UTC, same idle host) measured 4 KiB
//! whole-guest 0.93-0.95 and lazy views 0.88-0.89: run-to-run variation is about ±0.05.
//!
//! What this says, and what it does not:
//!
//! - **Mapping (target ≥ 1.0x): parity.** `XenForeignMapper::map_frames_into` does the C library's
//!   job with its calling convention (the caller's frame list and error array: one `mmap` of the
//!   privcmd device, one `MMAPBATCH_V2` ioctl, one `munmap` on drop, nothing allocated) and
//!   measures 0.99-1.01 (medians), 0.99-1.02 (total times): equal within the resolution of this
//!   machine, not demonstrably faster. Before `map_frames_into`, the allocating `map_frames`
//!   measured 0.96-0.99 on the same idle host: under emulation the two allocations per call it
//!   then made cost about as much as the difference. `ForeignRegion::map`, which also builds the
//!   frame list and keeps each frame's status, is 1-5 % behind.
//! - **Large copies (target ≥ 0.9x): met** in both modes on both stacks (medians 0.98-1.02):
//!   2 MiB go through one `memcpy` either way.
//! - **4 KiB copies (target ≥ 0.9x): not met.** Whole-guest memory 0.88-0.95, lazy views
//!   0.83-0.89 through the view's own `read_slice`/`write_slice`, 0.75-0.78 for code generic over
//!   `GuestMemory` (virtio-queue, for one), which goes through vm-memory's `Bytes` path. The
//!   memory itself is not the cause (a raw `memcpy` of the mapped page runs at 0.99x); the fixed
//!   cost per call is: for views the bucket lookup (a shift and a lock-free check of the view's
//!   first buckets) and the slice bookkeeping, plus, on the generic path, vm-memory's iterator
//!   adapters, which this crate cannot replace (vm-memory implements `Bytes` for every
//!   `GuestMemory`). Emulation makes those instructions expensive next to a 4 KiB `memcpy`
//!   (which QEMU runs as one string instruction); bigger copies amortise them (see 2 MiB).
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
