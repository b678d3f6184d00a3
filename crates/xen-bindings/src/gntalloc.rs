// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Sharing local pages with another domain, through `/dev/xen/gntalloc`.
//!
//! [`GntAlloc::share`] allocates pages, grants them to a domain and maps them into this
//! process as [`SharedPages`]; the grant references to hand to the other side (through xenstore,
//! usually) are [`SharedPages::grefs`]. Dropping the value unmaps the pages and releases the
//! grants; the kernel frees a page once the other domain has unmapped it too.
//!
//! # Example
//!
//! ```no_run
//! use xen_bindings::gntalloc::GntAlloc;
//! use xen_bindings::DomId;
//!
//! # fn main() -> Result<(), xen_bindings::gntalloc::Error> {
//! let gntalloc = GntAlloc::open()?;
//! // Two pages domain 1 may map writable.
//! let pages = gntalloc.share(DomId::new(1), 2, true)?;
//! pages.write_at(0, b"hello")?;
//! println!("grant references: {:?}", pages.grefs());
//! # Ok(())
//! # }
//! ```

use std::ffi::c_void;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::abi::linux::gntalloc::*;
use crate::gntdev::mem::IoctlBuf;
use crate::gntdev::region::Region;
use crate::gntdev::{check_count, open_device, Device};
use crate::sys::{RealSys, Sys};
use crate::{DomId, XEN_PAGE_SIZE};

pub use crate::gntdev::{Error, Result, UnmapNotify, MAX_GRANTS_PER_MAPPING};

/// The device node.
pub const GNTALLOC_PATH: &str = "/dev/xen/gntalloc";

/// An open `/dev/xen/gntalloc` descriptor.
///
/// Cheap to clone; shared pages keep the descriptor open until they are dropped.
#[derive(Debug)]
pub struct GntAlloc<S: Sys = RealSys> {
    dev: Arc<Device<S>>,
}

impl<S: Sys> Clone for GntAlloc<S> {
    fn clone(&self) -> Self {
        Self {
            dev: Arc::clone(&self.dev),
        }
    }
}

impl GntAlloc<RealSys> {
    /// Opens `/dev/xen/gntalloc`.
    pub fn open() -> Result<Self> {
        Ok(Self::from_parts(open_device(GNTALLOC_PATH)?, RealSys))
    }
}

impl<S: Sys> GntAlloc<S> {
    /// Wraps an already open gntalloc descriptor, reaching the kernel through `sys`.
    pub fn from_parts(fd: OwnedFd, sys: S) -> Self {
        Self {
            dev: Arc::new(Device { fd, sys }),
        }
    }

    /// Allocates `count` zeroed pages, grants them to `domid` (writable or read-only for it)
    /// and maps them here, read-write.
    pub fn share(&self, domid: DomId, count: usize, writable: bool) -> Result<SharedPages<S>> {
        const OP: &str = "gntalloc alloc_gref";
        check_count(OP, count)?;
        // Checked above: at most MAX_GRANTS_PER_MAPPING, so the cast is lossless.
        let count32 = count as u32;
        // Header (domid, flags, count, index) then one u32 reference per page; never less than
        // the one-reference C struct the ioctl number encodes.
        let header = std::mem::offset_of!(IoctlGntallocAllocGref, gref_ids);
        let mut buf =
            IoctlBuf::new((header + count * 4).max(std::mem::size_of::<IoctlGntallocAllocGref>()));
        buf.put_u16(0, domid.get());
        buf.put_u16(2, if writable { GNTALLOC_FLAG_WRITABLE } else { 0 });
        buf.put_u32(4, count32);
        // SAFETY: `buf` holds the header and room for `count` references, as the kernel
        // writes them.
        unsafe {
            self.dev.ioctl(
                OP,
                count as u64,
                IOCTL_GNTALLOC_ALLOC_GREF,
                buf.as_mut_ptr(),
            )
        }?;
        let index = buf.get_u64(8);
        let grefs: Vec<u32> = (0..count).map(|i| buf.get_u32(header + i * 4)).collect();
        let len = count * XEN_PAGE_SIZE;
        let addr = match self.dev.mmap(len, index, true) {
            Ok(addr) => addr,
            Err(e) => {
                // Release the grants; the mmap error is the one to report.
                let _ = dealloc(&self.dev, index, count32);
                return Err(e);
            }
        };
        Ok(SharedPages {
            region: Region {
                dev: Arc::clone(&self.dev),
                addr,
                len,
                index,
            },
            grefs,
        })
    }
}

fn dealloc<S: Sys>(dev: &Device<S>, index: u64, count: u32) -> Result<()> {
    let mut arg = IoctlGntallocDeallocGref {
        index,
        count,
        _pad: 0,
    };
    // SAFETY: `arg` is the live 16-byte struct IOCTL_GNTALLOC_DEALLOC_GREF encodes.
    unsafe {
        dev.ioctl(
            "gntalloc dealloc_gref",
            index,
            IOCTL_GNTALLOC_DEALLOC_GREF,
            (&mut arg as *mut IoctlGntallocDeallocGref).cast(),
        )
    }
    .map(drop)
}

/// Local pages granted to another domain and mapped here; unmapped and released when dropped.
pub struct SharedPages<S: Sys = RealSys> {
    region: Region<S>,
    grefs: Vec<u32>,
}

// Written out so the output stays the flat list of fields it always was.
impl<S: Sys + fmt::Debug> fmt::Debug for SharedPages<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPages")
            .field("dev", &self.region.dev)
            .field("addr", &self.region.addr)
            .field("len", &self.region.len)
            .field("index", &self.region.index)
            .field("grefs", &self.grefs)
            .finish()
    }
}

impl<S: Sys> SharedPages<S> {
    /// The grant references, one per page, in order.
    pub fn grefs(&self) -> &[u32] {
        &self.grefs
    }

    /// The start of the pages. Dereferencing it is the caller's responsibility: the other
    /// domain may change the memory at any time.
    pub fn as_ptr(&self) -> *mut c_void {
        self.region.addr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Always false: at least one page is shared.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }

    /// Copies `buf.len()` bytes from `offset`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.region.read_at(offset, buf)
    }

    /// Copies `buf` to `offset`.
    pub fn write_at(&self, offset: usize, buf: &[u8]) -> Result<()> {
        // Always mapped read-write here, whatever the other domain may do.
        self.region.write_at(offset, buf)
    }

    /// Sets what happens for the page holding byte `notify.clear_byte` (or the first page)
    /// when these pages are released, including when the process dies.
    pub fn set_unmap_notify(&self, notify: UnmapNotify) -> Result<()> {
        // SAFETY: IOCTL_GNTALLOC_SET_UNMAP_NOTIFY encodes the 16-byte struct built here.
        unsafe {
            self.region.set_unmap_notify(
                "gntalloc set_unmap_notify",
                IOCTL_GNTALLOC_SET_UNMAP_NOTIFY,
                notify,
                |index, action, event_channel_port| IoctlGntallocUnmapNotify {
                    index,
                    action,
                    event_channel_port,
                },
            )
        }
    }
}

impl<S: Sys> Drop for SharedPages<S> {
    fn drop(&mut self) {
        // SAFETY: nothing can use the pages after drop.
        unsafe { self.region.munmap("shared pages") };
        // `grefs.len()` was checked against MAX_GRANTS_PER_MAPPING at allocation.
        if let Err(e) = dealloc(&self.region.dev, self.region.index, self.grefs.len() as u32) {
            log::warn!("{e}");
        }
    }
}

impl<S: Sys> AsRawFd for GntAlloc<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.fd.as_raw_fd()
    }
}

impl<S: Sys> AsFd for GntAlloc<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dev.fd.as_fd()
    }
}

#[cfg(test)]
mod tests;
