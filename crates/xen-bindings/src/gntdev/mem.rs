// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bounds-checked access to memory shared with another domain.
//!
//! The other domain may write the pages at any time, so handing out `&[u8]` to them would
//! promise an immutability nobody can keep. Accesses copy bytes in and out instead, with volatile
//! operations so the compiler neither caches nor elides them.

use std::ffi::c_void;

/// Checks that `[offset, offset + len)` lies inside a region of `size` bytes.
pub(crate) fn check_range(offset: usize, len: usize, size: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= size)
}

/// Copies `buf.len()` bytes from `base + offset`.
///
/// # Safety
///
/// `[base + offset, base + offset + buf.len())` must be mapped readable for the whole call.
pub(crate) unsafe fn read_volatile(base: *const c_void, offset: usize, buf: &mut [u8]) {
    let src = base.cast::<u8>();
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the whole range is mapped and readable.
        *b = unsafe { src.add(offset + i).read_volatile() };
    }
}

/// Copies `buf` to `base + offset`.
///
/// # Safety
///
/// `[base + offset, base + offset + buf.len())` must be mapped writable for the whole call.
pub(crate) unsafe fn write_volatile(base: *mut c_void, offset: usize, buf: &[u8]) {
    let dst = base.cast::<u8>();
    for (i, b) in buf.iter().enumerate() {
        // SAFETY: the caller guarantees the whole range is mapped and writable.
        unsafe { dst.add(offset + i).write_volatile(*b) };
    }
}

/// What the kernel does for a page when its mapping goes away (also when the process dies):
/// the other side's way to learn that this side is gone.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnmapNotify {
    /// Byte offset (from the start of the mapping) of a byte to set to zero.
    pub clear_byte: Option<usize>,
    /// Event channel port to signal.
    pub event_port: Option<u32>,
}

impl UnmapNotify {
    /// The `UNMAP_NOTIFY_*` action bits and the port field of the ioctl.
    pub(crate) fn action(&self) -> (u32, u32) {
        // Both devices define the same two bits.
        use crate::abi::linux::gntdev::{UNMAP_NOTIFY_CLEAR_BYTE, UNMAP_NOTIFY_SEND_EVENT};
        let mut action = 0;
        if self.clear_byte.is_some() {
            action |= UNMAP_NOTIFY_CLEAR_BYTE;
        }
        if self.event_port.is_some() {
            action |= UNMAP_NOTIFY_SEND_EVENT;
        }
        (action, self.event_port.unwrap_or(0))
    }
}

/// An 8-byte aligned byte buffer for variable-length ioctl arguments (a fixed header followed
/// by an array the kernel sizes from a count field).
pub(crate) struct IoctlBuf {
    words: Vec<u64>,
    len: usize,
}

impl IoctlBuf {
    /// A zeroed buffer of at least `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// The buffer's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes, any byte of a `u64` is a valid
        // `u8`, and the returned slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }

    /// The buffer's bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, with the exclusive borrow of `self` making the slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.len) }
    }

    /// Writes `v` at byte `offset` (native endian).
    pub(crate) fn put_u16(&mut self, offset: usize, v: u16) {
        self.bytes_mut()[offset..offset + 2].copy_from_slice(&v.to_ne_bytes());
    }

    /// Writes `v` at byte `offset` (native endian).
    pub(crate) fn put_u32(&mut self, offset: usize, v: u32) {
        self.bytes_mut()[offset..offset + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Reads the `u32` at byte `offset` (native endian).
    pub(crate) fn get_u32(&self, offset: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.bytes()[offset..offset + 4]);
        u32::from_ne_bytes(b)
    }

    /// Reads the `u64` at byte `offset` (native endian).
    pub(crate) fn get_u64(&self, offset: usize) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.bytes()[offset..offset + 8]);
        u64::from_ne_bytes(b)
    }

    /// The pointer handed to the ioctl.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::xen::XEN_PAGE_SIZE;

    #[test]
    fn range_checks_reject_overflow() {
        assert!(check_range(0, XEN_PAGE_SIZE, XEN_PAGE_SIZE));
        assert!(check_range(XEN_PAGE_SIZE, 0, XEN_PAGE_SIZE));
        assert!(!check_range(1, XEN_PAGE_SIZE, XEN_PAGE_SIZE));
        assert!(!check_range(usize::MAX, 2, XEN_PAGE_SIZE));
    }

    #[test]
    fn notify_actions() {
        assert_eq!(UnmapNotify::default().action(), (0, 0));
        let n = UnmapNotify {
            clear_byte: Some(3),
            event_port: Some(9),
        };
        assert_eq!(n.action(), (3, 9));
    }

    #[test]
    fn ioctl_buf_fields() {
        let mut b = IoctlBuf::new(20);
        assert_eq!(b.bytes().len(), 20);
        assert_eq!(b.as_mut_ptr() as usize % 8, 0);
        b.put_u16(0, 0x1234);
        b.put_u32(4, 7);
        b.bytes_mut()[8..16].copy_from_slice(&0xdead_beef_u64.to_ne_bytes());
        assert_eq!(b.get_u32(4), 7);
        assert_eq!(b.get_u64(8), 0xdead_beef);
        assert_eq!(&b.bytes()[..2], &0x1234u16.to_ne_bytes());
    }

    #[test]
    fn volatile_copies_roundtrip() {
        let mut region = [0u8; 16];
        let base = region.as_mut_ptr().cast::<c_void>();
        // SAFETY: bytes 4..8 lie inside `region`, which outlives the calls.
        unsafe { write_volatile(base, 4, b"abcd") };
        let mut out = [0u8; 4];
        // SAFETY: as above.
        unsafe { read_volatile(base, 4, &mut out) };
        assert_eq!(&out, b"abcd");
    }
}
