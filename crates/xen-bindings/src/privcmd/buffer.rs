// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hypercall buffers: memory the hypervisor may read and write during a hypercall.
//!
//! Xen accesses hypercall arguments by guest virtual address while the hypercall runs; the pages
//! must be present and must not move. `/dev/xen/hypercall` hands out kernel pages made for
//! that; without it, anonymous pages locked with `mlock` do the job.

use std::os::fd::RawFd;
use std::sync::Arc;

use libc::c_void;

use super::error::{Error, Result};
use crate::abi::xen::XEN_PAGE_SIZE;
use crate::abi::Pod;
use crate::sys::Sys;

/// A zeroed, page-aligned hypercall buffer, unmapped on drop.
#[derive(Debug)]
pub struct HypercallBuffer<S: Sys> {
    sys: Arc<S>,
    ptr: *mut u8,
    len: usize,
}

impl<S: Sys> HypercallBuffer<S> {
    pub(super) fn new(sys: Arc<S>, hypercall_fd: Option<RawFd>, len: usize) -> Result<Self> {
        let len = len
            .max(1)
            .checked_next_multiple_of(XEN_PAGE_SIZE)
            .ok_or_else(|| Error::Buffer {
                len,
                source: std::io::Error::from_raw_os_error(libc::ENOMEM),
            })?;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let ptr = match hypercall_fd {
            Some(fd) => {
                // SAFETY: a fresh shared mapping of the hypercall device at a kernel-chosen
                // address.
                unsafe { sys.mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) }
                    .map_err(|source| Error::Buffer { len, source })?
            }
            None => {
                // SAFETY: a fresh private anonymous mapping at a kernel-chosen address.
                let p = unsafe {
                    sys.mmap(
                        std::ptr::null_mut(),
                        len,
                        prot,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                }
                .map_err(|source| Error::Buffer { len, source })?;
                // SAFETY: `p` is the mapping just made, owned here.
                if let Err(source) = unsafe { sys.mlock(p, len) } {
                    // SAFETY: unmapping the mapping just made; nothing else refers to it.
                    let _ = unsafe { sys.munmap(p, len) };
                    return Err(Error::Buffer { len, source });
                }
                p
            }
        };
        let ptr = ptr.cast::<u8>();
        // SAFETY: the mapping is `len` writable bytes owned by this buffer. Both kinds start
        // zeroed already; writing zeroes makes that explicit and faults the pages in.
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
        Ok(Self { sys, ptr, len })
    }

    /// The buffer's address, as passed to Xen.
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// The buffer's size in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: buffers hold at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The buffer's contents.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while `self` lives. Xen writes to it only
        // inside an (unsafe) hypercall given its address, whose caller promises not to hold
        // slices of it meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The buffer's contents, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Writes `value` at byte `offset`. Panics if it does not fit.
    pub fn write_at<T: Pod>(&mut self, offset: usize, value: &T) {
        let b = value.as_bytes();
        self.as_mut_slice()[offset..offset + b.len()].copy_from_slice(b);
    }

    /// Reads a `T` at byte `offset`. Panics if it does not fit.
    pub fn read_at<T: Pod>(&self, offset: usize) -> T {
        T::from_bytes(&self.as_slice()[offset..]).expect("read past the hypercall buffer")
    }
}

impl<S: Sys> Drop for HypercallBuffer<S> {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this buffer and no longer used.
        let _ = unsafe { self.sys.munmap(self.ptr.cast::<c_void>(), self.len) };
    }
}

// SAFETY: the buffer is plain memory owned by this value; access goes through &/&mut self.
unsafe impl<S: Sys> Send for HypercallBuffer<S> {}
// SAFETY: shared access only reads.
unsafe impl<S: Sys> Sync for HypercallBuffer<S> {}
