// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Mapping and copying pages granted by other domains, through `/dev/xen/gntdev`.
//!
//! [`GntDev::map`] maps a list of grant references into this process as one contiguous
//! [`GrantMapping`], which is unmapped (and its grants released) when dropped.
//! [`GntDev::grant_copy`] copies between local buffers and granted pages without mapping them,
//! and reports a [`GrantStatus`] per segment.
//!
//! Grant references and offsets usually come from another domain (through xenstore or a shared
//! ring), so they are untrusted: empty or oversized lists and out-of-page offsets are rejected
//! with typed errors before the kernel sees them, and mapped memory is only reachable through
//! bounds-checked copies ([`GrantMapping::read_at`], [`GrantMapping::write_at`]).
//!
//! # Example
//!
//! ```no_run
//! use xen_bindings::gntdev::{GntDev, GrantRef};
//! use xen_bindings::DomId;
//!
//! # fn main() -> Result<(), xen_bindings::gntdev::Error> {
//! let gntdev = GntDev::open()?;
//! // Grant reference 8 of domain 1, mapped writable.
//! let gref = GrantRef {
//!     domid: DomId::new(1),
//!     gref: 8,
//! };
//! let mapping = gntdev.map(&[gref], true)?;
//! let mut header = [0u8; 16];
//! mapping.read_at(0, &mut header)?;
//! mapping.write_at(16, b"ack")?;
//! drop(mapping); // munmap + release
//! # Ok(())
//! # }
//! ```

pub(crate) mod mem;
pub(crate) mod region;

use std::ffi::c_void;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use crate::abi::linux::gntdev::*;
use crate::sys::{RealSys, Sys};
use crate::{DomId, XEN_PAGE_SIZE};
pub use mem::UnmapNotify;
use mem::{check_range, IoctlBuf};
use region::Region;

/// The device node.
pub const GNTDEV_PATH: &str = "/dev/xen/gntdev";

/// The most grant references accepted in one mapping or allocation (256 MiB of pages). The
/// kernel has its own, usually lower, limit; this one keeps a hostile count from making us
/// allocate a huge ioctl buffer first.
pub const MAX_GRANTS_PER_MAPPING: usize = 1 << 16;

/// The most segments accepted by one [`GntDev::grant_copy`].
pub const MAX_COPY_SEGMENTS: usize = 1 << 16;

/// Errors of grant mapping, copying and sharing (`gntdev` and `gntalloc`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device could not be opened.
    #[error("opening {path} failed: {source}")]
    Open {
        /// The device path.
        path: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// An ioctl failed.
    #[error("{op} ({value}) failed: {source}")]
    Ioctl {
        /// The operation.
        op: &'static str,
        /// The count, offset or reference the operation was about.
        value: u64,
        /// The errno.
        source: io::Error,
    },
    /// Mapping the pages into this process failed.
    #[error("mmap of {len} bytes at device offset {offset:#x} failed: {source}")]
    Mmap {
        /// The length.
        len: usize,
        /// The device offset.
        offset: u64,
        /// The errno.
        source: io::Error,
    },
    /// No grant reference or page was given.
    #[error("{op} needs at least one page")]
    Empty {
        /// The operation.
        op: &'static str,
    },
    /// Too many grant references or pages.
    #[error("{op} of {count} pages exceeds the limit of {max}")]
    TooMany {
        /// The operation.
        op: &'static str,
        /// The requested count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An access falls outside the mapping.
    #[error("access of {len} bytes at offset {offset} is outside the {size}-byte mapping")]
    OutOfBounds {
        /// The offset.
        offset: usize,
        /// The length.
        len: usize,
        /// The mapping size.
        size: usize,
    },
    /// A write to a read-only mapping.
    #[error("the mapping is read-only")]
    ReadOnly,
    /// A grant-copy segment is invalid.
    #[error("grant-copy segment {index} is invalid: {reason}")]
    InvalidSegment {
        /// The segment's position.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Result of grant operations.
pub type Result<T> = std::result::Result<T, Error>;

/// A grant reference of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrantRef {
    /// The granting domain.
    pub domid: DomId,
    /// The grant reference.
    pub gref: u32,
}

/// A position in a page granted by another domain, one side of a grant copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignPtr {
    /// The granting domain.
    pub domid: DomId,
    /// The grant reference.
    pub gref: u32,
    /// The byte offset in the page.
    pub offset: u16,
}

/// One segment of a grant copy. A segment never crosses the boundary of its foreign page(s).
#[derive(Debug)]
#[non_exhaustive]
pub enum CopySegment<'a> {
    /// Copies a local buffer into a granted page.
    ToForeign {
        /// The bytes to copy.
        src: &'a [u8],
        /// Where they go.
        dest: ForeignPtr,
    },
    /// Copies from a granted page into a local buffer (of the length to copy).
    FromForeign {
        /// Where the bytes come from.
        src: ForeignPtr,
        /// The buffer to fill.
        dest: &'a mut [u8],
    },
    /// Copies between two granted pages.
    ForeignToForeign {
        /// The source.
        src: ForeignPtr,
        /// The destination.
        dest: ForeignPtr,
        /// The number of bytes.
        len: u16,
    },
}

/// Outcome of one grant-copy segment (Xen's `GNTST_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantStatus {
    /// Done.
    Okay,
    /// Unspecified error.
    GeneralError,
    /// Unknown domain.
    BadDomain,
    /// Unknown or unsuitable grant reference.
    BadGntref,
    /// Unknown or unsuitable handle.
    BadHandle,
    /// Unsuitable virtual address.
    BadVirtAddr,
    /// Unsuitable device address.
    BadDevAddr,
    /// No IOMMU space.
    NoDeviceSpace,
    /// Not permitted.
    PermissionDenied,
    /// Invalid page.
    BadPage,
    /// The copy crosses a page boundary.
    BadCopyArg,
    /// Page address too large.
    AddressTooBig,
    /// Not done, try again.
    Eagain,
    /// A status this crate does not know.
    Other(i16),
}

impl GrantStatus {
    /// Decodes a `GNTST_*` value.
    pub fn from_raw(status: i16) -> Self {
        match status {
            0 => Self::Okay,
            -1 => Self::GeneralError,
            -2 => Self::BadDomain,
            -3 => Self::BadGntref,
            -4 => Self::BadHandle,
            -5 => Self::BadVirtAddr,
            -6 => Self::BadDevAddr,
            -7 => Self::NoDeviceSpace,
            -8 => Self::PermissionDenied,
            -9 => Self::BadPage,
            -10 => Self::BadCopyArg,
            -11 => Self::AddressTooBig,
            -12 => Self::Eagain,
            other => Self::Other(other),
        }
    }

    /// Whether the segment was copied.
    pub fn is_ok(self) -> bool {
        self == Self::Okay
    }
}

pub(crate) fn open_device(path: &'static str) -> Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| Error::Open { path, source })?;
    Ok(file.into())
}

/// Checks a page count against the limits.
pub(crate) fn check_count(op: &'static str, count: usize) -> Result<()> {
    if count == 0 {
        return Err(Error::Empty { op });
    }
    if count > MAX_GRANTS_PER_MAPPING {
        return Err(Error::TooMany {
            op,
            count,
            max: MAX_GRANTS_PER_MAPPING,
        });
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) struct Device<S: Sys> {
    pub(crate) fd: OwnedFd,
    pub(crate) sys: S,
}

impl<S: Sys> Device<S> {
    /// Issues an ioctl whose argument is the live object behind `arg`.
    ///
    /// # Safety
    ///
    /// `arg` must point to a live buffer of the size `request` expects (for variable-length
    /// requests, the size its count field implies), valid for reads and writes.
    pub(crate) unsafe fn ioctl(
        &self,
        op: &'static str,
        value: u64,
        request: u32,
        arg: *mut c_void,
    ) -> Result<i32> {
        // SAFETY: the caller's contract is the seam's contract.
        unsafe { self.sys.ioctl(self.fd.as_raw_fd(), request, arg) }
            .map_err(|source| Error::Ioctl { op, value, source })
    }

    /// Maps `len` bytes of the device at `offset`, shared.
    pub(crate) fn mmap(&self, len: usize, offset: u64, writable: bool) -> Result<*mut c_void> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        let off = i64::try_from(offset).map_err(|_| Error::Mmap {
            len,
            offset,
            source: io::Error::from_raw_os_error(libc::EOVERFLOW),
        })?;
        // SAFETY: no MAP_FIXED, so the kernel picks an unused range and nothing we own is
        // replaced.
        unsafe {
            self.sys.mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                self.fd.as_raw_fd(),
                off,
            )
        }
        .map_err(|source| Error::Mmap {
            len,
            offset,
            source,
        })
    }
}

/// An open `/dev/xen/gntdev` descriptor.
///
/// Cheap to clone; mappings keep the descriptor open until they are dropped.
#[derive(Debug)]
pub struct GntDev<S: Sys = RealSys> {
    dev: Arc<Device<S>>,
}

impl<S: Sys> Clone for GntDev<S> {
    fn clone(&self) -> Self {
        Self {
            dev: Arc::clone(&self.dev),
        }
    }
}

impl GntDev<RealSys> {
    /// Opens `/dev/xen/gntdev`.
    pub fn open() -> Result<Self> {
        Ok(Self::from_parts(open_device(GNTDEV_PATH)?, RealSys))
    }
}

impl<S: Sys> GntDev<S> {
    /// Wraps an already open gntdev descriptor, reaching the kernel through `sys`.
    pub fn from_parts(fd: OwnedFd, sys: S) -> Self {
        Self {
            dev: Arc::new(Device { fd, sys }),
        }
    }

    /// Limits how many grants this descriptor maps at once. Old kernels require this before
    /// any other ioctl; recent ones accept and ignore it.
    pub fn set_max_grants(&self, count: u32) -> Result<()> {
        let mut arg = IoctlGntdevSetMaxGrants { count };
        // SAFETY: `arg` is the live 4-byte struct IOCTL_GNTDEV_SET_MAX_GRANTS encodes.
        unsafe {
            self.dev.ioctl(
                "gntdev set_max_grants",
                count.into(),
                IOCTL_GNTDEV_SET_MAX_GRANTS,
                (&mut arg as *mut IoctlGntdevSetMaxGrants).cast(),
            )
        }
        .map(drop)
    }

    /// Maps the pages of `refs`, in order, as one contiguous mapping, writable or read-only.
    pub fn map(&self, refs: &[GrantRef], writable: bool) -> Result<GrantMapping<S>> {
        const OP: &str = "gntdev map_grant_ref";
        check_count(OP, refs.len())?;
        // Checked above: at most MAX_GRANTS_PER_MAPPING, so the cast is lossless.
        let count = refs.len() as u32;
        // Header (count, pad, index) then the (domid, ref) pairs; never less than the one-ref
        // C struct the ioctl number encodes.
        let header = std::mem::offset_of!(IoctlGntdevMapGrantRef, refs);
        let entry = std::mem::size_of::<IoctlGntdevGrantRef>();
        let mut buf = IoctlBuf::new(
            (header + refs.len() * entry).max(std::mem::size_of::<IoctlGntdevMapGrantRef>()),
        );
        buf.put_u32(0, count);
        for (i, r) in refs.iter().enumerate() {
            buf.put_u32(header + i * entry, r.domid.get().into());
            buf.put_u32(header + i * entry + 4, r.gref);
        }
        // SAFETY: `buf` holds the header and `count` references, as the kernel reads them.
        unsafe {
            self.dev.ioctl(
                OP,
                count.into(),
                IOCTL_GNTDEV_MAP_GRANT_REF,
                buf.as_mut_ptr(),
            )
        }?;
        let index = buf.get_u64(8);
        let len = refs.len() * XEN_PAGE_SIZE;
        let addr = match self.dev.mmap(len, index, writable) {
            Ok(addr) => addr,
            Err(e) => {
                // Give the reserved offset back; the mmap error is the one to report.
                let _ = self.unmap_grant_ref(index, count);
                return Err(e);
            }
        };
        Ok(GrantMapping {
            region: Region {
                dev: Arc::clone(&self.dev),
                addr,
                len,
                index,
            },
            count,
            writable,
        })
    }

    /// Maps pages of one domain; see [`GntDev::map`].
    pub fn map_domain(
        &self,
        domid: DomId,
        grefs: &[u32],
        writable: bool,
    ) -> Result<GrantMapping<S>> {
        check_count("gntdev map_grant_ref", grefs.len())?;
        let refs: Vec<GrantRef> = grefs.iter().map(|&gref| GrantRef { domid, gref }).collect();
        self.map(&refs, writable)
    }

    fn unmap_grant_ref(&self, index: u64, count: u32) -> Result<()> {
        let mut arg = IoctlGntdevUnmapGrantRef {
            index,
            count,
            pad: 0,
        };
        // SAFETY: `arg` is the live 16-byte struct IOCTL_GNTDEV_UNMAP_GRANT_REF encodes.
        unsafe {
            self.dev.ioctl(
                "gntdev unmap_grant_ref",
                index,
                IOCTL_GNTDEV_UNMAP_GRANT_REF,
                (&mut arg as *mut IoctlGntdevUnmapGrantRef).cast(),
            )
        }
        .map(drop)
    }

    /// Copies the segments and returns each one's status, in order.
    ///
    /// `Err` means the kernel rejected the whole batch; `Ok` means every segment was tried,
    /// and the statuses say which ones succeeded.
    pub fn grant_copy(&self, segments: &mut [CopySegment<'_>]) -> Result<Vec<GrantStatus>> {
        const OP: &str = "gntdev grant_copy";
        if segments.len() > MAX_COPY_SEGMENTS {
            return Err(Error::TooMany {
                op: OP,
                count: segments.len(),
                max: MAX_COPY_SEGMENTS,
            });
        }
        if segments.is_empty() {
            return Ok(Vec::new());
        }
        let mut raw = Vec::with_capacity(segments.len());
        for (index, seg) in segments.iter_mut().enumerate() {
            raw.push(raw_segment(index, seg)?);
        }
        let mut arg = IoctlGntdevGrantCopy {
            count: raw.len() as u32, // at most MAX_COPY_SEGMENTS
            _pad: 0,
            segments: raw.as_mut_ptr(),
        };
        // SAFETY: `arg` is the live 16-byte struct IOCTL_GNTDEV_GRANT_COPY encodes; its
        // `segments` points to `count` initialised segments whose local pointers borrow the
        // caller's slices (shared ones only read, exclusive ones written) for this call.
        unsafe {
            self.dev.ioctl(
                OP,
                raw.len() as u64,
                IOCTL_GNTDEV_GRANT_COPY,
                (&mut arg as *mut IoctlGntdevGrantCopy).cast(),
            )
        }?;
        Ok(raw
            .iter()
            .map(|s| GrantStatus::from_raw(s.status))
            .collect())
    }
}

/// Validates one segment and lays it out for the kernel.
fn raw_segment(index: usize, seg: &mut CopySegment<'_>) -> Result<GntdevGrantCopySegment> {
    let invalid = |reason| Error::InvalidSegment { index, reason };
    let foreign = |p: &ForeignPtr, len: usize| {
        if check_range(p.offset.into(), len, XEN_PAGE_SIZE) {
            Ok(GntdevCopyPtr {
                foreign: GntdevCopyForeign {
                    ref_: p.gref,
                    offset: p.offset,
                    domid: p.domid.get(),
                },
            })
        } else {
            Err(invalid("the copy crosses the end of the foreign page"))
        }
    };
    let (source, dest, len, flags) = match seg {
        CopySegment::ToForeign { src, dest } => {
            let len = src.len();
            (
                GntdevCopyPtr {
                    virt: src.as_ptr().cast_mut().cast(),
                },
                foreign(dest, len)?,
                len,
                GNTCOPY_DEST_GREF,
            )
        }
        CopySegment::FromForeign { src, dest } => {
            let len = dest.len();
            (
                foreign(src, len)?,
                GntdevCopyPtr {
                    virt: dest.as_mut_ptr().cast(),
                },
                len,
                GNTCOPY_SOURCE_GREF,
            )
        }
        CopySegment::ForeignToForeign { src, dest, len } => {
            let len = usize::from(*len);
            (
                foreign(src, len)?,
                foreign(dest, len)?,
                len,
                GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF,
            )
        }
    };
    // A page-bounded length always fits the u16 field.
    let len = u16::try_from(len).map_err(|_| invalid("longer than a page"))?;
    Ok(GntdevGrantCopySegment {
        source,
        dest,
        len,
        flags,
        status: 0,
        _pad: 0,
    })
}

/// Pages of other domains mapped into this process; unmapped and released when dropped.
pub struct GrantMapping<S: Sys = RealSys> {
    region: Region<S>,
    count: u32,
    writable: bool,
}

// Written out so the output stays the flat list of fields it always was.
impl<S: Sys + fmt::Debug> fmt::Debug for GrantMapping<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantMapping")
            .field("dev", &self.region.dev)
            .field("addr", &self.region.addr)
            .field("len", &self.region.len)
            .field("index", &self.region.index)
            .field("count", &self.count)
            .field("writable", &self.writable)
            .finish()
    }
}

impl<S: Sys> GrantMapping<S> {
    /// The start of the mapping. Dereferencing it is the caller's responsibility: the memory
    /// is shared with another domain that may change it at any time.
    pub fn as_ptr(&self) -> *mut c_void {
        self.region.addr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Always false: mappings hold at least one page.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }

    /// The number of pages.
    pub fn page_count(&self) -> usize {
        self.count as usize
    }

    /// Whether the mapping is writable.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Copies `buf.len()` bytes from `offset` of the mapping.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.region.read_at(offset, buf)
    }

    /// Copies `buf` to `offset` of the mapping.
    pub fn write_at(&self, offset: usize, buf: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        self.region.write_at(offset, buf)
    }

    /// Sets what happens for the page holding byte `notify.clear_byte` (or the first page)
    /// when this mapping goes away, including when the process dies.
    pub fn set_unmap_notify(&self, notify: UnmapNotify) -> Result<()> {
        // SAFETY: IOCTL_GNTDEV_SET_UNMAP_NOTIFY encodes the 16-byte struct built here.
        unsafe {
            self.region.set_unmap_notify(
                "gntdev set_unmap_notify",
                IOCTL_GNTDEV_SET_UNMAP_NOTIFY,
                notify,
                |index, action, event_channel_port| IoctlGntdevUnmapNotify {
                    index,
                    action,
                    event_channel_port,
                },
            )
        }
    }
}

impl<S: Sys> Drop for GrantMapping<S> {
    fn drop(&mut self) {
        // The kernel refuses to release the offset while it is still mapped: munmap first.
        // SAFETY: nothing can use the mapping after drop.
        unsafe { self.region.munmap("grant mapping") };
        let gntdev = GntDev {
            dev: Arc::clone(&self.region.dev),
        };
        if let Err(e) = gntdev.unmap_grant_ref(self.region.index, self.count) {
            log::warn!("{e}");
        }
    }
}

impl<S: Sys> AsRawFd for GntDev<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.fd.as_raw_fd()
    }
}

impl<S: Sys> AsFd for GntDev<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dev.fd.as_fd()
    }
}

#[cfg(test)]
mod tests;
