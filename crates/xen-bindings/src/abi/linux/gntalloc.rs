// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `/dev/xen/gntalloc` ioctl ABI (Linux `include/uapi/xen/gntalloc.h`).
//!
//! The device allocates local pages, grants them to another domain and lets this process map
//! them with `mmap()` at the offset the allocation returns.

use crate::sys::ioc_none;

/// Header of the variable-length [`IOCTL_GNTALLOC_ALLOC_GREF`] argument.
///
/// The C struct ends with a one-element array `gref_ids[1]` the kernel extends to `count`
/// entries; its size (24 bytes, with 4 bytes of tail padding after the first id) is what the
/// ioctl number encodes. Callers pass a buffer holding this header followed by room for `count`
/// `u32` ids.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntallocAllocGref {
    /// IN: the domain given access to the pages.
    pub domid: u16,
    /// IN: `GNTALLOC_FLAG_*`.
    pub flags: u16,
    /// IN: the number of pages to allocate.
    pub count: u32,
    /// OUT: the `mmap()` offset of the pages.
    pub index: u64,
    /// OUT: the first grant reference (the rest follow in memory).
    pub gref_ids: [u32; 1],
    /// Tail padding of the C struct (where a second reference would go).
    pub _pad: u32,
}

/// Argument of [`IOCTL_GNTALLOC_DEALLOC_GREF`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntallocDeallocGref {
    /// The offset returned by the allocation.
    pub index: u64,
    /// The number of pages to release.
    pub count: u32,
    /// Tail padding of the C struct.
    pub _pad: u32,
}

/// Argument of [`IOCTL_GNTALLOC_SET_UNMAP_NOTIFY`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntallocUnmapNotify {
    /// The `mmap()` offset of a byte in the page (the byte cleared with
    /// [`UNMAP_NOTIFY_CLEAR_BYTE`]).
    pub index: u64,
    /// `UNMAP_NOTIFY_*` flags.
    pub action: u32,
    /// The event channel port signalled with [`UNMAP_NOTIFY_SEND_EVENT`].
    pub event_channel_port: u32,
}

crate::abi::impl_pod!(
    IoctlGntallocAllocGref,
    IoctlGntallocDeallocGref,
    IoctlGntallocUnmapNotify
);

/// Grant the pages writable to the remote domain (otherwise read-only).
pub const GNTALLOC_FLAG_WRITABLE: u16 = 1;
/// On unmap, clear the byte at the notification offset.
pub const UNMAP_NOTIFY_CLEAR_BYTE: u32 = 0x1;
/// On unmap, send an event on the notification port.
pub const UNMAP_NOTIFY_SEND_EVENT: u32 = 0x2;

/// Allocates and grants pages.
pub const IOCTL_GNTALLOC_ALLOC_GREF: u32 = ioc_none::<IoctlGntallocAllocGref>(b'G', 5);
/// Releases pages (freed once unmapped and no longer mapped by the remote domain).
pub const IOCTL_GNTALLOC_DEALLOC_GREF: u32 = ioc_none::<IoctlGntallocDeallocGref>(b'G', 6);
/// Sets the unmap notification of one page.
pub const IOCTL_GNTALLOC_SET_UNMAP_NOTIFY: u32 = ioc_none::<IoctlGntallocUnmapNotify>(b'G', 7);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_match_header() {
        // 20 bytes of fields, padded to 24 by the u64's alignment: the size the ioctl encodes.
        assert_eq!(size_of::<IoctlGntallocAllocGref>(), 24);
        assert_eq!(align_of::<IoctlGntallocAllocGref>(), 8);
        assert_eq!(offset_of!(IoctlGntallocAllocGref, domid), 0);
        assert_eq!(offset_of!(IoctlGntallocAllocGref, flags), 2);
        assert_eq!(offset_of!(IoctlGntallocAllocGref, count), 4);
        assert_eq!(offset_of!(IoctlGntallocAllocGref, index), 8);
        assert_eq!(offset_of!(IoctlGntallocAllocGref, gref_ids), 16);
        assert_eq!(offset_of!(IoctlGntallocAllocGref, _pad), 20);

        assert_eq!(size_of::<IoctlGntallocDeallocGref>(), 16);
        assert_eq!(align_of::<IoctlGntallocDeallocGref>(), 8);
        assert_eq!(offset_of!(IoctlGntallocDeallocGref, index), 0);
        assert_eq!(offset_of!(IoctlGntallocDeallocGref, count), 8);
        assert_eq!(offset_of!(IoctlGntallocDeallocGref, _pad), 12);

        assert_eq!(size_of::<IoctlGntallocUnmapNotify>(), 16);
        assert_eq!(align_of::<IoctlGntallocUnmapNotify>(), 8);
        assert_eq!(offset_of!(IoctlGntallocUnmapNotify, index), 0);
        assert_eq!(offset_of!(IoctlGntallocUnmapNotify, action), 8);
        assert_eq!(offset_of!(IoctlGntallocUnmapNotify, event_channel_port), 12);
    }

    #[test]
    fn ioctl_numbers_match_header() {
        assert_eq!(IOCTL_GNTALLOC_ALLOC_GREF, 0x0018_4705);
        assert_eq!(IOCTL_GNTALLOC_DEALLOC_GREF, 0x0010_4706);
        assert_eq!(IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, 0x0010_4707);
    }
}
