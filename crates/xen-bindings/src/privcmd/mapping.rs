// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Mappings of foreign guest frames and of resources, unmapped on drop.

use std::io;
use std::sync::Arc;

use libc::c_void;

use crate::abi::xen::XEN_PAGE_SIZE;
use crate::sys::{RealSys, Sys};

/// A region of this process mapped through privcmd, unmapped on drop.
///
/// For foreign mappings ([`super::Privcmd::map_foreign`]) each page has a result: 0 if it is
/// mapped, else a negative errno from Xen; pages in error must not be accessed (they fault).
#[derive(Debug)]
pub struct Mapping<S: Sys = RealSys> {
    sys: Arc<S>,
    ptr: *mut u8,
    len: usize,
    errors: Vec<i32>,
}

/// A mapping of foreign guest frames (`IOCTL_PRIVCMD_MMAPBATCH_V2`).
pub type ForeignMapping<S = RealSys> = Mapping<S>;
/// A mapping of resource frames (`IOCTL_PRIVCMD_MMAP_RESOURCE`).
pub type ResourceMapping<S = RealSys> = Mapping<S>;

impl<S: Sys> Mapping<S> {
    pub(super) fn new(sys: Arc<S>, ptr: *mut u8, len: usize, errors: Vec<i32>) -> Self {
        Self {
            sys,
            ptr,
            len,
            errors,
        }
    }

    pub(super) fn set_page_errors(&mut self, errors: Vec<i32>) {
        self.errors = errors;
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, mappings hold at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.len / XEN_PAGE_SIZE
    }

    /// Per-page results of a foreign mapping: 0 or a negative errno (empty for resources).
    pub fn page_errors(&self) -> &[i32] {
        &self.errors
    }

    /// The error of page `index`, if it failed.
    pub fn page_error(&self, index: usize) -> Option<io::Error> {
        match self.errors.get(index) {
            Some(&e) if e != 0 => Some(io::Error::from_raw_os_error(-e)),
            _ => None,
        }
    }

    /// Whether every page is mapped.
    pub fn all_mapped(&self) -> bool {
        self.errors.iter().all(|&e| e == 0)
    }

    /// Copies page `index` out, or returns its error. Guest memory may change under the copy.
    pub fn read_page(&self, index: usize) -> io::Result<Vec<u8>> {
        if index >= self.pages() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if let Some(e) = self.page_error(index) {
            return Err(e);
        }
        let mut out = vec![0u8; XEN_PAGE_SIZE];
        // SAFETY: page `index` is inside the mapping and mapped (no error). Another domain may
        // write it concurrently, so the bytes are copied with volatile reads, never referenced.
        unsafe {
            let src = self.ptr.add(index * XEN_PAGE_SIZE);
            for (i, b) in out.iter_mut().enumerate() {
                *b = std::ptr::read_volatile(src.add(i));
            }
        }
        Ok(out)
    }
}

impl<S: Sys> Drop for Mapping<S> {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this value and no longer used.
        let _ = unsafe { self.sys.munmap(self.ptr.cast::<c_void>(), self.len) };
    }
}

// SAFETY: the mapping is shared memory with no thread affinity; users access it through raw
// pointers with their own synchronisation.
unsafe impl<S: Sys> Send for Mapping<S> {}
// SAFETY: as above; the struct itself is immutable after creation.
unsafe impl<S: Sys> Sync for Mapping<S> {}
