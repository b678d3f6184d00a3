// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The real mappers, over `xen-bindings`' privcmd and gntdev wrappers.

use std::io;

use std::sync::Arc;

use xen_bindings::gntdev::{Error as GntdevError, GntDev, GrantMapping};
use xen_bindings::privcmd::{Error as PrivcmdError, Mapping, Privcmd, Resource};

use crate::mapper::{ForeignMapper, GrantMapper, MappedFrames, MappedPages};
use xen_bindings::DomId;

/// The mapping type of [`XenForeignMapper`] (privcmd's, unmapped on drop).
pub type XenForeignMapping = Mapping;

/// The mapping type of [`XenGrantMapper`] (gntdev's, unmapped and released on drop).
pub type XenGrantMapping = GrantMapping;

/// Maps grants through `/dev/xen/gntdev`.
#[derive(Debug, Clone)]
pub struct XenGrantMapper {
    gntdev: GntDev,
}

impl XenGrantMapper {
    /// Opens `/dev/xen/gntdev`.
    pub fn open() -> io::Result<Self> {
        Ok(XenGrantMapper {
            gntdev: GntDev::open().map_err(io::Error::other)?,
        })
    }

    /// Wraps an open gntdev.
    pub fn from_gntdev(gntdev: GntDev) -> Self {
        XenGrantMapper { gntdev }
    }
}

// SAFETY: a `GrantMapping` owns its mmap of `len()` bytes at `as_ptr()` until dropped (it
// munmaps in Drop), readable, and writable when mapped so.
unsafe impl MappedPages for GrantMapping {
    fn as_ptr(&self) -> *mut u8 {
        GrantMapping::as_ptr(self).cast()
    }

    fn len(&self) -> usize {
        GrantMapping::len(self)
    }
}

impl GrantMapper for XenGrantMapper {
    type Mapping = GrantMapping;

    fn map_grants(&self, domid: DomId, refs: &[u32], writable: bool) -> io::Result<GrantMapping> {
        self.gntdev
            .map_domain(domid, refs, writable)
            .map_err(|e| match e {
                // Keep the errno: callers match on it (EINVAL for a bad reference...).
                GntdevError::Ioctl { source, .. }
                | GntdevError::Mmap { source, .. }
                | GntdevError::Open { source, .. } => source,
                e => io::Error::other(e),
            })
    }
}

/// Maps foreign frames and resources through `/dev/xen/privcmd`; cheap to clone.
#[derive(Debug, Clone)]
pub struct XenForeignMapper {
    privcmd: Arc<Privcmd>,
}

impl XenForeignMapper {
    /// Opens `/dev/xen/privcmd`.
    pub fn open() -> io::Result<Self> {
        Ok(XenForeignMapper {
            privcmd: Arc::new(Privcmd::open().map_err(io::Error::other)?),
        })
    }

    /// Shares an open privcmd.
    pub fn from_privcmd(privcmd: Arc<Privcmd>) -> Self {
        XenForeignMapper { privcmd }
    }

    /// The privcmd handle.
    pub fn privcmd(&self) -> &Privcmd {
        &self.privcmd
    }

    /// [`ForeignMapper::map_frames`] with the per-frame results (0, or a positive errno for a
    /// frame that must not be touched) written to the caller's `errors`, one per frame: no
    /// allocation, for callers that map in a loop (the calling convention of
    /// libxenforeignmemory's map, which is what the crate's benchmark compares it with).
    pub fn map_frames_into(
        &self,
        domid: DomId,
        gfns: &[u64],
        errors: &mut [i32],
    ) -> io::Result<Mapping> {
        let mapping = self
            .privcmd
            .map_foreign_into(domid, gfns, true, errors)
            .map_err(to_io)?;
        for e in errors.iter_mut() {
            *e = unsign(*e);
        }
        Ok(mapping)
    }
}

// SAFETY: a privcmd `Mapping` owns its mmap of `len()` bytes at `as_ptr()` until dropped (it
// munmaps in Drop), read-write as this crate always requests; failed pages are reported and
// never touched by this crate.
unsafe impl MappedPages for Mapping {
    fn as_ptr(&self) -> *mut u8 {
        Mapping::as_ptr(self)
    }

    fn len(&self) -> usize {
        Mapping::len(self)
    }
}

/// privcmd reports negative errnos per page; the seam uses positive ones.
fn unsign(errno: i32) -> i32 {
    errno.checked_abs().unwrap_or(libc::EINVAL)
}

/// Carries the OS error of a privcmd failure when there is one, so callers can match errno.
fn to_io(e: PrivcmdError) -> io::Error {
    match e {
        PrivcmdError::Ioctl { source, .. }
        | PrivcmdError::OnDomain { source, .. }
        | PrivcmdError::Open { source, .. } => source,
        e => io::Error::other(e),
    }
}

impl ForeignMapper for XenForeignMapper {
    type Mapping = Mapping;

    fn map_frames(&self, domid: DomId, gfns: &[u64]) -> io::Result<MappedFrames<Mapping>> {
        let mut errors = vec![0; gfns.len()];
        let mapping = self.map_frames_into(domid, gfns, &mut errors)?;
        Ok(MappedFrames { mapping, errors })
    }

    fn map_resource(
        &self,
        domid: DomId,
        resource: Resource,
        frame: u64,
        nr_frames: u64,
    ) -> io::Result<Mapping> {
        self.privcmd
            .map_resource(domid, resource, frame, nr_frames, true)
            .map_err(to_io)
    }
}
