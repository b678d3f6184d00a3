// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A device mapping shared with another domain, as both gntdev and gntalloc hand them out.
//!
//! Both devices give out the same kind of memory: pages at a device offset (`index`), mapped
//! shared into this process, reached only through bounds-checked volatile copies, with an
//! unmap-notify ioctl and a munmap before the device releases the offset.

use std::ffi::c_void;
use std::sync::Arc;

use super::mem::{self, check_range};
use super::{Device, Error, Result, UnmapNotify};
use crate::sys::Sys;

/// Pages of a device mapped at `addr`, `len` bytes from device offset `index`.
///
/// Not unmapped on drop: the owner decides the order of munmap and releasing the offset.
pub(crate) struct Region<S: Sys> {
    pub(crate) dev: Arc<Device<S>>,
    pub(crate) addr: *mut c_void,
    pub(crate) len: usize,
    pub(crate) index: u64,
}

// SAFETY: the region is plain shared memory owned by its holder; it is only reached through
// volatile byte copies (which tolerate concurrent writers, as the remote domain already is one)
// or through raw pointers whose use is the caller's unsafe business. The device handle is
// `Send + Sync` because `Sys` is.
unsafe impl<S: Sys> Send for Region<S> {}
// SAFETY: see `Send`: `&self` methods only do bounds-checked volatile copies and ioctls.
unsafe impl<S: Sys> Sync for Region<S> {}

impl<S: Sys> Region<S> {
    /// Copies `buf.len()` bytes from `offset`.
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: the range lies inside the mapping, which is readable and lives as long as
        // `self`.
        unsafe { mem::read_volatile(self.addr, offset, buf) };
        Ok(())
    }

    /// Copies `buf` to `offset`; the caller has checked that the mapping is writable.
    pub(crate) fn write_at(&self, offset: usize, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: the range lies inside the mapping, which is writable (checked by the caller)
        // and lives as long as `self`.
        unsafe { mem::write_volatile(self.addr, offset, buf) };
        Ok(())
    }

    /// Checks that `[offset, offset + len)` lies inside the region.
    pub(crate) fn check(&self, offset: usize, len: usize) -> Result<()> {
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

    /// Issues the device's unmap-notify ioctl for the page holding byte `notify.clear_byte`
    /// (or the first page). `arg` builds the request's argument from (index, action, port).
    ///
    /// # Safety
    ///
    /// `request` must encode an argument of type `T` (whose first field is the index `arg`
    /// is given), and `arg` must build it.
    pub(crate) unsafe fn set_unmap_notify<T>(
        &self,
        op: &'static str,
        request: u32,
        notify: UnmapNotify,
        arg: impl FnOnce(u64, u32, u32) -> T,
    ) -> Result<()> {
        let offset = notify.clear_byte.unwrap_or(0);
        self.check(offset, 1)?;
        let (action, event_channel_port) = notify.action();
        let index = self.index + offset as u64;
        let mut arg = arg(index, action, event_channel_port);
        // SAFETY: `arg` is the live `T` the caller guarantees `request` encodes.
        unsafe {
            self.dev
                .ioctl(op, index, request, (&mut arg as *mut T).cast())
        }
        .map(drop)
    }

    /// Unmaps the region, logging (as `what`) a failure: it runs from `Drop`.
    ///
    /// # Safety
    ///
    /// Nothing may use the region afterwards.
    pub(crate) unsafe fn munmap(&self, what: &str) {
        // SAFETY: `addr`/`len` is the mapping this value made and owns; the caller guarantees
        // nothing uses it afterwards.
        if let Err(e) = unsafe { self.dev.sys.munmap(self.addr, self.len) } {
            log::warn!("munmap of {what} at {:p} failed: {e}", self.addr);
        }
    }
}
