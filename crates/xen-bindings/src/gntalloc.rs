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
//!
//! # fn main() -> Result<(), xen_bindings::gntalloc::Error> {
//! let gntalloc = GntAlloc::open()?;
//! // Two pages domain 1 may map writable.
//! let pages = gntalloc.share(1, 2, true)?;
//! pages.write_at(0, b"hello")?;
//! println!("grant references: {:?}", pages.grefs());
//! # Ok(())
//! # }
//! ```

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::abi::linux::gntalloc::*;
use crate::gntdev::mem::{self, check_range, IoctlBuf};
use crate::gntdev::{check_count, open_device, Device};
use crate::sys::{RealSys, Sys};

pub use crate::gntdev::{Error, Result, UnmapNotify, MAX_GRANTS_PER_MAPPING, PAGE_SIZE};

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
    pub fn share(&self, domid: u16, count: usize, writable: bool) -> Result<SharedPages<S>> {
        const OP: &str = "gntalloc alloc_gref";
        check_count(OP, count)?;
        // Checked above: at most MAX_GRANTS_PER_MAPPING, so the cast is lossless.
        let count32 = count as u32;
        // Header (domid, flags, count, index) then one u32 reference per page; never less than
        // the one-reference C struct the ioctl number encodes.
        let header = std::mem::offset_of!(IoctlGntallocAllocGref, gref_ids);
        let mut buf =
            IoctlBuf::new((header + count * 4).max(std::mem::size_of::<IoctlGntallocAllocGref>()));
        buf.put_u16(0, domid);
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
        let len = count * PAGE_SIZE;
        let addr = match self.dev.mmap(len, index, true) {
            Ok(addr) => addr,
            Err(e) => {
                // Release the grants; the mmap error is the one to report.
                let _ = dealloc(&self.dev, index, count32);
                return Err(e);
            }
        };
        Ok(SharedPages {
            dev: Arc::clone(&self.dev),
            addr,
            len,
            index,
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
#[derive(Debug)]
pub struct SharedPages<S: Sys = RealSys> {
    dev: Arc<Device<S>>,
    addr: *mut c_void,
    len: usize,
    index: u64,
    grefs: Vec<u32>,
}

// SAFETY: the pages are plain shared memory owned by this value, only reached through volatile
// byte copies or through raw pointers whose use is the caller's unsafe business; the device
// handle is `Send + Sync` because `Sys` is.
unsafe impl<S: Sys> Send for SharedPages<S> {}
// SAFETY: see `Send`: `&self` methods only do bounds-checked volatile copies and ioctls.
unsafe impl<S: Sys> Sync for SharedPages<S> {}

impl<S: Sys> SharedPages<S> {
    /// The grant references, one per page, in order.
    pub fn grefs(&self) -> &[u32] {
        &self.grefs
    }

    /// The start of the pages. Dereferencing it is the caller's responsibility: the other
    /// domain may change the memory at any time.
    pub fn as_ptr(&self) -> *mut c_void {
        self.addr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: at least one page is shared.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` bytes from `offset`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: the range lies inside the mapping, which is readable and lives as long as
        // `self`.
        unsafe { mem::read_volatile(self.addr, offset, buf) };
        Ok(())
    }

    /// Copies `buf` to `offset`.
    pub fn write_at(&self, offset: usize, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: the range lies inside the mapping, which is writable and lives as long as
        // `self`.
        unsafe { mem::write_volatile(self.addr, offset, buf) };
        Ok(())
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        if check_range(offset, len, self.len) {
            Ok(())
        } else {
            Err(Error::OutOfBounds {
                offset,
                len,
                size: self.len,
            })
        }
    }

    /// Sets what happens for the page holding byte `notify.clear_byte` (or the first page)
    /// when these pages are released, including when the process dies.
    pub fn set_unmap_notify(&self, notify: UnmapNotify) -> Result<()> {
        let offset = notify.clear_byte.unwrap_or(0);
        self.check(offset, 1)?;
        let (action, event_channel_port) = notify.action();
        let mut arg = IoctlGntallocUnmapNotify {
            index: self.index + offset as u64,
            action,
            event_channel_port,
        };
        // SAFETY: `arg` is the live 16-byte struct IOCTL_GNTALLOC_SET_UNMAP_NOTIFY encodes.
        unsafe {
            self.dev.ioctl(
                "gntalloc set_unmap_notify",
                arg.index,
                IOCTL_GNTALLOC_SET_UNMAP_NOTIFY,
                (&mut arg as *mut IoctlGntallocUnmapNotify).cast(),
            )
        }
        .map(drop)
    }
}

impl<S: Sys> Drop for SharedPages<S> {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` is the mapping this value made and owns; nothing can use it
        // after drop.
        if let Err(e) = unsafe { self.dev.sys.munmap(self.addr, self.len) } {
            log::warn!("munmap of shared pages at {:p} failed: {e}", self.addr);
        }
        // `grefs.len()` was checked against MAX_GRANTS_PER_MAPPING at allocation.
        if let Err(e) = dealloc(&self.dev, self.index, self.grefs.len() as u32) {
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
