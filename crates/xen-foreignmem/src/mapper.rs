// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The seam between this crate and the kernel: traits that map a domain's frames, resources and
//! grants into this process.
//!
//! Everything above this module (whole-guest memory, the lazy cache, grant memory) is written
//! against these traits, so it runs unchanged over the real Xen devices
//! ([`crate::xen::XenForeignMapper`], [`crate::xen::XenGrantMapper`]) and over the in-process
//! `fake::FakeGuest` (feature `test-utils`) used by the unit tests and benchmarks.

use std::io;

use xen_bindings::privcmd::Resource;
use xen_bindings::DomId;

/// A live mapping of guest pages into this process, unmapped when dropped.
///
/// # Safety
///
/// Implementors promise that, for as long as the value lives, `as_ptr()` points to `len()` bytes
/// that are mapped readable (and writable if the mapping was requested writable) in this process
/// and that the memory stays mapped at that address until the value is dropped. The memory is
/// shared with the guest, so it is only ever accessed with volatile operations; it need not be
/// backed for pages the mapping call reported as failed (the callers never touch those).
pub unsafe trait MappedPages: Send + Sync {
    /// The start of the mapping.
    fn as_ptr(&self) -> *mut u8;
    /// The length of the mapping in bytes.
    fn len(&self) -> usize;
    /// Whether the mapping is empty (never, for mappings made by this crate).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The outcome of mapping a batch of frames: the mapping and, per frame, its status.
#[derive(Debug)]
pub struct MappedFrames<M> {
    /// The mapping, `gfns.len()` pages long.
    pub mapping: M,
    /// Per frame (in request order): 0 when mapped, else the positive errno Xen reported.
    pub errors: Vec<i32>,
}

/// Maps a foreign domain's frames and resources (privcmd `MMAPBATCH_V2` and `MMAP_RESOURCE`).
pub trait ForeignMapper: Send + Sync {
    /// The mapping type; unmaps on drop.
    type Mapping: MappedPages;

    /// Maps `gfns` of `domid` contiguously, read-write.
    ///
    /// A failure of individual frames is not an `Err`: it is reported in
    /// [`MappedFrames::errors`] and those pages of the mapping must not be touched.
    fn map_frames(&self, domid: DomId, gfns: &[u64]) -> io::Result<MappedFrames<Self::Mapping>>;

    /// Maps `nr_frames` frames of `resource` of `domid`, from `frame`, read-write.
    fn map_resource(
        &self,
        domid: DomId,
        resource: Resource,
        frame: u64,
        nr_frames: u64,
    ) -> io::Result<Self::Mapping>;
}

/// Maps grant references a domain gave this one (gntdev).
pub trait GrantMapper: Send + Sync {
    /// The mapping type; unmaps (and releases the grants) on drop.
    type Mapping: MappedPages;

    /// Maps `refs` of `domid` contiguously, read-only or read-write.
    fn map_grants(&self, domid: DomId, refs: &[u32], writable: bool) -> io::Result<Self::Mapping>;
}
