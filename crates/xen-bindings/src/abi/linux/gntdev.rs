// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `/dev/xen/gntdev` ioctl ABI (Linux `include/uapi/xen/gntdev.h`).
//!
//! The device maps pages other domains granted to this one: a map ioctl reserves an `mmap()`
//! offset for a list of grant references, `mmap()` at that offset maps them, and after
//! `munmap()` an unmap ioctl releases the offset. It also copies to and from grants without
//! mapping them (grant copy).

use std::ffi::c_void;

use crate::sys::ioc_none;

/// One grant reference to map: which domain granted it and its number.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevGrantRef {
    /// The granting domain.
    pub domid: u32,
    /// The grant reference.
    pub ref_: u32,
}

/// Header of the variable-length [`IOCTL_GNTDEV_MAP_GRANT_REF`] argument.
///
/// The C struct ends with a one-element array `refs[1]` the kernel extends to `count` entries;
/// the ioctl number encodes the one-element size (24 bytes). Callers pass a buffer holding this
/// header with room for `count` references.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevMapGrantRef {
    /// IN: the number of references.
    pub count: u32,
    /// Padding.
    pub pad: u32,
    /// OUT: the `mmap()` offset of the references.
    pub index: u64,
    /// IN: the first reference (the rest follow in memory).
    pub refs: [IoctlGntdevGrantRef; 1],
}

/// Argument of [`IOCTL_GNTDEV_UNMAP_GRANT_REF`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevUnmapGrantRef {
    /// The offset the map ioctl returned.
    pub index: u64,
    /// The number of pages to release.
    pub count: u32,
    /// Padding.
    pub pad: u32,
}

/// Argument of [`IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevGetOffsetForVaddr {
    /// IN: the start address of a grant mapping.
    pub vaddr: u64,
    /// OUT: the `mmap()` offset used for it.
    pub offset: u64,
    /// OUT: the number of pages of the mapping.
    pub count: u32,
    /// Padding.
    pub pad: u32,
}

/// Argument of [`IOCTL_GNTDEV_SET_MAX_GRANTS`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevSetMaxGrants {
    /// The maximum number of grants mapped at once through this descriptor.
    pub count: u32,
}

/// Argument of [`IOCTL_GNTDEV_SET_UNMAP_NOTIFY`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevUnmapNotify {
    /// The `mmap()` offset of a byte in the page (the byte cleared with
    /// [`UNMAP_NOTIFY_CLEAR_BYTE`]).
    pub index: u64,
    /// `UNMAP_NOTIFY_*` flags.
    pub action: u32,
    /// The event channel port signalled with [`UNMAP_NOTIFY_SEND_EVENT`].
    pub event_channel_port: u32,
}

/// The foreign side of a grant-copy segment: a granted page and an offset in it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GntdevCopyForeign {
    /// The grant reference.
    pub ref_: u32,
    /// The byte offset in the granted page.
    pub offset: u16,
    /// The granting domain.
    pub domid: u16,
}

/// One side of a grant-copy segment: a local buffer or a foreign grant, chosen by the
/// segment's `GNTCOPY_*_gref` flags.
#[repr(C)]
#[derive(Clone, Copy)]
pub union GntdevCopyPtr {
    /// A local buffer address.
    pub virt: *mut c_void,
    /// A foreign grant.
    pub foreign: GntdevCopyForeign,
}

impl std::fmt::Debug for GntdevCopyPtr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: both variants are plain data and the union is 8 bytes, fully covered by
        // `virt`; reading it as an address is always defined.
        let raw = unsafe { self.virt } as usize;
        write!(f, "GntdevCopyPtr({raw:#x})")
    }
}

/// One segment of [`IOCTL_GNTDEV_GRANT_COPY`] (`struct gntdev_grant_copy_segment`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GntdevGrantCopySegment {
    /// The source.
    pub source: GntdevCopyPtr,
    /// The destination.
    pub dest: GntdevCopyPtr,
    /// The number of bytes to copy.
    pub len: u16,
    /// `GNTCOPY_source_gref` and/or `GNTCOPY_dest_gref`.
    pub flags: u16,
    /// OUT: a `GNTST_*` status of the segment.
    pub status: i16,
    /// Tail padding of the C struct.
    pub _pad: u16,
}

/// Argument of [`IOCTL_GNTDEV_GRANT_COPY`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IoctlGntdevGrantCopy {
    /// The number of segments.
    pub count: u32,
    /// Padding before the pointer.
    pub _pad: u32,
    /// The segments.
    pub segments: *mut GntdevGrantCopySegment,
}

/// Argument of [`IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS`] (variable length, like the map ioctl).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevDmabufExpFromRefs {
    /// IN: `GNTDEV_DMA_FLAG_*`.
    pub flags: u32,
    /// IN: the number of references.
    pub count: u32,
    /// OUT: the dma-buf file descriptor.
    pub fd: u32,
    /// IN: the granting domain.
    pub domid: u32,
    /// IN: the first reference (the rest follow in memory).
    pub refs: [u32; 1],
}

/// Argument of [`IOCTL_GNTDEV_DMABUF_EXP_WAIT_RELEASED`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevDmabufExpWaitReleased {
    /// The dma-buf file descriptor.
    pub fd: u32,
    /// The time to wait, in milliseconds.
    pub wait_to_ms: u32,
}

/// Argument of [`IOCTL_GNTDEV_DMABUF_IMP_TO_REFS`] (variable length).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevDmabufImpToRefs {
    /// IN: the dma-buf file descriptor.
    pub fd: u32,
    /// IN: the number of references.
    pub count: u32,
    /// IN: the domain the pages are granted to.
    pub domid: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// OUT: the first reference (the rest follow in memory).
    pub refs: [u32; 1],
}

/// Argument of [`IOCTL_GNTDEV_DMABUF_IMP_RELEASE`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlGntdevDmabufImpRelease {
    /// The dma-buf file descriptor.
    pub fd: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

crate::abi::impl_pod!(
    IoctlGntdevGrantRef,
    IoctlGntdevMapGrantRef,
    IoctlGntdevUnmapGrantRef,
    IoctlGntdevGetOffsetForVaddr,
    IoctlGntdevSetMaxGrants,
    IoctlGntdevUnmapNotify,
    GntdevCopyForeign,
    IoctlGntdevDmabufExpFromRefs,
    IoctlGntdevDmabufExpWaitReleased,
    IoctlGntdevDmabufImpToRefs,
    IoctlGntdevDmabufImpRelease,
);

/// On unmap, clear the byte at the notification offset.
pub const UNMAP_NOTIFY_CLEAR_BYTE: u32 = 0x1;
/// On unmap, send an event on the notification port.
pub const UNMAP_NOTIFY_SEND_EVENT: u32 = 0x2;
/// dma-buf backed by write-combining DMA memory.
pub const GNTDEV_DMA_FLAG_WC: u32 = 1 << 0;
/// dma-buf backed by coherent DMA memory.
pub const GNTDEV_DMA_FLAG_COHERENT: u32 = 1 << 1;

/// Grant-copy segment flag (Xen `grant_table.h`): the source is a foreign grant.
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// Grant-copy segment flag (Xen `grant_table.h`): the destination is a foreign grant.
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// Reserves an `mmap()` offset for a list of grant references.
pub const IOCTL_GNTDEV_MAP_GRANT_REF: u32 = ioc_none::<IoctlGntdevMapGrantRef>(b'G', 0);
/// Releases an offset after `munmap()`.
pub const IOCTL_GNTDEV_UNMAP_GRANT_REF: u32 = ioc_none::<IoctlGntdevUnmapGrantRef>(b'G', 1);
/// Finds the offset and page count of a mapping from its address.
pub const IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR: u32 =
    ioc_none::<IoctlGntdevGetOffsetForVaddr>(b'G', 2);
/// Limits the grants mapped at once (obsolete in recent kernels, still accepted).
pub const IOCTL_GNTDEV_SET_MAX_GRANTS: u32 = ioc_none::<IoctlGntdevSetMaxGrants>(b'G', 3);
/// Sets the unmap notification of one page.
pub const IOCTL_GNTDEV_SET_UNMAP_NOTIFY: u32 = ioc_none::<IoctlGntdevUnmapNotify>(b'G', 7);
/// Copies between local buffers and grants.
pub const IOCTL_GNTDEV_GRANT_COPY: u32 = ioc_none::<IoctlGntdevGrantCopy>(b'G', 8);
/// Exports grants as a dma-buf.
pub const IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS: u32 =
    ioc_none::<IoctlGntdevDmabufExpFromRefs>(b'G', 9);
/// Waits until an exported dma-buf is released.
pub const IOCTL_GNTDEV_DMABUF_EXP_WAIT_RELEASED: u32 =
    ioc_none::<IoctlGntdevDmabufExpWaitReleased>(b'G', 10);
/// Imports a dma-buf and grants its pages.
pub const IOCTL_GNTDEV_DMABUF_IMP_TO_REFS: u32 = ioc_none::<IoctlGntdevDmabufImpToRefs>(b'G', 11);
/// Releases an imported dma-buf.
pub const IOCTL_GNTDEV_DMABUF_IMP_RELEASE: u32 = ioc_none::<IoctlGntdevDmabufImpRelease>(b'G', 12);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_match_header() {
        assert_eq!(size_of::<IoctlGntdevGrantRef>(), 8);
        assert_eq!(align_of::<IoctlGntdevGrantRef>(), 4);
        assert_eq!(offset_of!(IoctlGntdevGrantRef, domid), 0);
        assert_eq!(offset_of!(IoctlGntdevGrantRef, ref_), 4);

        assert_eq!(size_of::<IoctlGntdevMapGrantRef>(), 24);
        assert_eq!(align_of::<IoctlGntdevMapGrantRef>(), 8);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, count), 0);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, pad), 4);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, index), 8);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, refs), 16);

        assert_eq!(size_of::<IoctlGntdevUnmapGrantRef>(), 16);
        assert_eq!(align_of::<IoctlGntdevUnmapGrantRef>(), 8);
        assert_eq!(offset_of!(IoctlGntdevUnmapGrantRef, index), 0);
        assert_eq!(offset_of!(IoctlGntdevUnmapGrantRef, count), 8);
        assert_eq!(offset_of!(IoctlGntdevUnmapGrantRef, pad), 12);

        assert_eq!(size_of::<IoctlGntdevGetOffsetForVaddr>(), 24);
        assert_eq!(align_of::<IoctlGntdevGetOffsetForVaddr>(), 8);
        assert_eq!(offset_of!(IoctlGntdevGetOffsetForVaddr, vaddr), 0);
        assert_eq!(offset_of!(IoctlGntdevGetOffsetForVaddr, offset), 8);
        assert_eq!(offset_of!(IoctlGntdevGetOffsetForVaddr, count), 16);
        assert_eq!(offset_of!(IoctlGntdevGetOffsetForVaddr, pad), 20);

        assert_eq!(size_of::<IoctlGntdevSetMaxGrants>(), 4);
        assert_eq!(align_of::<IoctlGntdevSetMaxGrants>(), 4);
        assert_eq!(offset_of!(IoctlGntdevSetMaxGrants, count), 0);

        assert_eq!(size_of::<IoctlGntdevUnmapNotify>(), 16);
        assert_eq!(align_of::<IoctlGntdevUnmapNotify>(), 8);
        assert_eq!(offset_of!(IoctlGntdevUnmapNotify, index), 0);
        assert_eq!(offset_of!(IoctlGntdevUnmapNotify, action), 8);
        assert_eq!(offset_of!(IoctlGntdevUnmapNotify, event_channel_port), 12);

        assert_eq!(size_of::<GntdevCopyForeign>(), 8);
        assert_eq!(offset_of!(GntdevCopyForeign, ref_), 0);
        assert_eq!(offset_of!(GntdevCopyForeign, offset), 4);
        assert_eq!(offset_of!(GntdevCopyForeign, domid), 6);
        assert_eq!(size_of::<GntdevCopyPtr>(), 8);
        assert_eq!(align_of::<GntdevCopyPtr>(), 8);

        assert_eq!(size_of::<GntdevGrantCopySegment>(), 24);
        assert_eq!(align_of::<GntdevGrantCopySegment>(), 8);
        assert_eq!(offset_of!(GntdevGrantCopySegment, source), 0);
        assert_eq!(offset_of!(GntdevGrantCopySegment, dest), 8);
        assert_eq!(offset_of!(GntdevGrantCopySegment, len), 16);
        assert_eq!(offset_of!(GntdevGrantCopySegment, flags), 18);
        assert_eq!(offset_of!(GntdevGrantCopySegment, status), 20);
        assert_eq!(offset_of!(GntdevGrantCopySegment, _pad), 22);

        assert_eq!(size_of::<IoctlGntdevGrantCopy>(), 16);
        assert_eq!(align_of::<IoctlGntdevGrantCopy>(), 8);
        assert_eq!(offset_of!(IoctlGntdevGrantCopy, count), 0);
        assert_eq!(offset_of!(IoctlGntdevGrantCopy, _pad), 4);
        assert_eq!(offset_of!(IoctlGntdevGrantCopy, segments), 8);

        assert_eq!(size_of::<IoctlGntdevDmabufExpFromRefs>(), 20);
        assert_eq!(align_of::<IoctlGntdevDmabufExpFromRefs>(), 4);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpFromRefs, flags), 0);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpFromRefs, count), 4);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpFromRefs, fd), 8);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpFromRefs, domid), 12);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpFromRefs, refs), 16);

        assert_eq!(size_of::<IoctlGntdevDmabufExpWaitReleased>(), 8);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpWaitReleased, fd), 0);
        assert_eq!(offset_of!(IoctlGntdevDmabufExpWaitReleased, wait_to_ms), 4);

        assert_eq!(size_of::<IoctlGntdevDmabufImpToRefs>(), 20);
        assert_eq!(align_of::<IoctlGntdevDmabufImpToRefs>(), 4);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpToRefs, fd), 0);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpToRefs, count), 4);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpToRefs, domid), 8);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpToRefs, reserved), 12);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpToRefs, refs), 16);

        assert_eq!(size_of::<IoctlGntdevDmabufImpRelease>(), 8);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpRelease, fd), 0);
        assert_eq!(offset_of!(IoctlGntdevDmabufImpRelease, reserved), 4);
    }

    #[test]
    fn ioctl_numbers_match_header() {
        assert_eq!(IOCTL_GNTDEV_MAP_GRANT_REF, 0x0018_4700);
        assert_eq!(IOCTL_GNTDEV_UNMAP_GRANT_REF, 0x0010_4701);
        assert_eq!(IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR, 0x0018_4702);
        assert_eq!(IOCTL_GNTDEV_SET_MAX_GRANTS, 0x0004_4703);
        assert_eq!(IOCTL_GNTDEV_SET_UNMAP_NOTIFY, 0x0010_4707);
        assert_eq!(IOCTL_GNTDEV_GRANT_COPY, 0x0010_4708);
        assert_eq!(IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS, 0x0014_4709);
        assert_eq!(IOCTL_GNTDEV_DMABUF_EXP_WAIT_RELEASED, 0x0008_470a);
        assert_eq!(IOCTL_GNTDEV_DMABUF_IMP_TO_REFS, 0x0014_470b);
        assert_eq!(IOCTL_GNTDEV_DMABUF_IMP_RELEASE, 0x0008_470c);
    }
}
