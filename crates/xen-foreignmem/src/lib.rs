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
//! - [`map_whole_guest`]: every RAM range mapped up front into a [`ForeignGuestMemory`], a plain
//!   vm-memory `GuestRegionCollection` (a `GuestMemoryBackend`, like `GuestMemoryMmap`).
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
//! Measured 2026-11-22 with the executable above and the code of this version, one run per stack
//! (bookworm: Xen 4.17, Linux 6.1, 20:29-20:31 UTC, host load average 12.3 falling to 7.8;
//! trixie: Xen 4.20, Linux 6.12, 20:31-20:33 UTC, load 7.8 falling to 5.0; the host has 2
//! cores). Each cell: crate throughput over reference throughput, **median of the per-round
//! ratios** (141 to 1245 rounds), 10th-90th percentile of those ratios in brackets (the spread),
//! ratio of total times after the slash. Above 1.0 the crate is faster.
//!
//! | comparison | bookworm | trixie | target |
//! |---|---|---|---|
//! | map + unmap 1 page, `map_frames` vs C | **0.93** [0.34-3.16] / 1.01 | **0.99** [0.51-2.17] / 1.02 | ≥ 1.0 |
//! | map + unmap 64 pages, `map_frames` vs C | **1.00** [0.23-4.35] / 0.92 | **1.02** [0.42-2.40] / 1.01 | ≥ 1.0 |
//! | map + unmap 512 pages, `map_frames` vs C | **0.92** [0.31-2.95] / 0.95 | **1.01** [0.53-2.26] / 1.06 | ≥ 1.0 |
//! | map + unmap 1 page, `ForeignRegion::map` vs C | **1.00** [0.30-2.71] / 1.01 | **0.96** [0.52-1.99] / 0.97 | ≥ 1.0 |
//! | map + unmap 64 pages, `ForeignRegion::map` vs C | **0.98** [0.29-3.49] / 0.97 | **0.97** [0.41-2.52] / 0.96 | ≥ 1.0 |
//! | map + unmap 512 pages, `ForeignRegion::map` vs C | **0.92** [0.37-2.77] / 0.92 | **0.97** [0.48-2.10] / 0.99 | ≥ 1.0 |
//! | read 2 MiB, whole-guest | **0.97** [0.49-1.95] / 0.99 | **0.98** [0.50-1.96] / 1.02 | ≥ 0.9 |
//! | read 2 MiB, lazy view | **0.97** [0.46-1.99] / 0.98 | **0.98** [0.59-1.55] / 1.01 | ≥ 0.9 |
//! | write 2 MiB, whole-guest | **1.03** [0.54-2.07] / 1.10 | **1.01** [0.55-1.56] / 1.00 | ≥ 0.9 |
//! | write 2 MiB, lazy view | **1.04** [0.55-2.14] / 1.03 | **1.01** [0.59-1.52] / 0.97 | ≥ 0.9 |
//! | read 4 KiB, whole-guest | **0.93** [0.31-2.11] / 0.87 | **0.95** [0.52-1.69] / 0.94 | ≥ 0.9 |
//! | read 4 KiB, lazy view | **0.87** [0.37-2.03] / 0.88 | **0.89** [0.53-1.31] / 0.88 | ≥ 0.9 |
//! | read 4 KiB, lazy view, generic `Bytes` path | **0.82** [0.32-1.91] / 0.76 | **0.82** [0.55-1.38] / 0.84 | ≥ 0.9 |
//! | write 4 KiB, whole-guest | **0.94** [0.55-1.77] / 0.97 | **0.93** [0.59-1.58] / 1.00 | ≥ 0.9 |
//! | write 4 KiB, lazy view | **0.86** [0.52-1.55] / 0.82 | **0.88** [0.59-1.40] / 0.97 | ≥ 0.9 |
//! | write 4 KiB, lazy view, generic `Bytes` path | **0.79** [0.54-1.17] / 0.81 | **0.78** [0.44-1.29] / 0.80 | ≥ 0.9 |
//! | raw `memcpy` of the mapped memory, read / write 4 KiB | 0.97 / 1.00 | 1.01 / 1.01 | (reference) |
//!
//! What this says, and what it does not:
//!
//! - **Mapping (target ≥ 1.0x): not demonstrated.** With the identical job on both sides
//!   (`XenForeignMapper::map_frames` given the C library's frame list: one anonymous `mmap` of the
//!   privcmd device, one `MMAPBATCH_V2` ioctl for the batch, one `munmap` on drop, no other
//!   system call; the crate adds only small allocations for the per-frame error lists), the
//!   medians lie between 0.92 and 1.02 while single rounds spread over 0.23-4.35x: the difference
//!   between the crate and the C library is far below what this machine can measure. The time
//!   goes to Xen validating and installing one page-table entry per frame, emulated.
//!   `ForeignRegion::map`, which also builds the frame list and checks every frame's status,
//!   stays within the same noise (0.92-1.00).
//! - **Large copies (target ≥ 0.9x): met** in both modes on both stacks (medians 0.97-1.04):
//!   2 MiB go through one `memcpy` either way.
//! - **4 KiB copies (target ≥ 0.9x): not reliably met.** Whole-guest memory measured 0.93-0.95
//!   (medians) in this run but 0.85-0.87 in a run of the same code minutes earlier (20:24-20:28
//!   UTC) and 0.80-0.84 at 18:41-18:49 UTC: it sits around the target, within run-to-run
//!   variation. Lazy views: **0.86-0.89** through the view's own `read_slice`/`write_slice`,
//!   **0.78-0.82** for code generic over `GuestMemory` (virtio-queue, for one), which goes through
//!   vm-memory's `Bytes` path (0.73-0.77 before this version's changes). The memory itself is not
//!   the cause (a raw `memcpy` of the mapped page runs at 0.97-1.01x); the fixed cost per call is:
//!   for views the bucket lookup (now a shift and a lock-free check of the view's first buckets,
//!   formerly a mutex and a division) and the slice bookkeeping, plus, on the generic path,
//!   vm-memory's iterator adapters, which this crate cannot replace (vm-memory implements `Bytes`
//!   for every `GuestMemory`). Emulation makes those instructions expensive next to a 4 KiB
//!   `memcpy`; bigger copies amortise them (see 2 MiB).
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
