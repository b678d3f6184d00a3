// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `grant_table_op` hypercall (`grant_table.h`): setup_table, query_size and copy.

use super::{GuestHandle, XenPfn};
use crate::abi::impl_pod;

/// A grant reference (`grant_ref_t`).
pub type GrantRef = u32;

/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: u64 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
/// `GNTTABOP_setup_table`.
pub const GNTTABOP_SETUP_TABLE: u64 = 2;
/// `GNTTABOP_copy`.
pub const GNTTABOP_COPY: u64 = 5;
/// `GNTTABOP_query_size`.
pub const GNTTABOP_QUERY_SIZE: u64 = 6;
/// `GNTTABOP_set_version`.
pub const GNTTABOP_SET_VERSION: u64 = 8;
/// `GNTTABOP_get_version`.
pub const GNTTABOP_GET_VERSION: u64 = 10;

/// `GNTTAB_RESERVED_CONSOLE`: the grant entry a toolstack fills for the console ring.
pub const GNTTAB_RESERVED_CONSOLE: GrantRef = 0;
/// `GNTTAB_RESERVED_XENSTORE`: the grant entry a toolstack fills for the xenstore ring.
pub const GNTTAB_RESERVED_XENSTORE: GrantRef = 1;
/// `GTF_permit_access`: a v1 grant entry's flag that lets `domid` map `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1 << 0;

/// Copy flag: the source is a grant reference (else a frame number of the caller).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// Copy flag: the destination is a grant reference.
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// Grant status: success.
pub const GNTST_OKAY: i16 = 0;
/// Grant status: undefined error.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// Grant status: unknown domain.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// Grant status: bad grant reference.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// Grant status: bad handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// Grant status: bad virtual address.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// Grant status: bad device address.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// Grant status: no I/O MMU space.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// Grant status: permission denied.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// Grant status: bad page.
pub const GNTST_BAD_PAGE: i16 = -9;
/// Grant status: copy crosses a page boundary.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// Grant status: address too large.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// Grant status: try again.
pub const GNTST_EAGAIN: i16 = -12;
/// Grant status: out of space.
pub const GNTST_NO_SPACE: i16 = -13;

/// `struct grant_entry_v1`: one entry of a version-1 grant table.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*`; written last, after `domid` and `frame`.
    pub flags: u16,
    /// The domain granted access.
    pub domid: u16,
    /// The granted frame.
    pub frame: u32,
}

/// `struct gnttab_setup_table`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GnttabSetupTable {
    /// IN: the domain.
    pub dom: u16,
    /// Padding (implicit in C).
    pub _pad0: u16,
    /// IN: number of frames wanted.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad1: [u16; 3],
    /// OUT: frame numbers (`XEN_GUEST_HANDLE(xen_pfn_t)`).
    pub frame_list: GuestHandle,
}

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// IN: the domain.
    pub dom: u16,
    /// Padding (implicit in C).
    pub _pad0: u16,
    /// OUT: current number of frames.
    pub nr_frames: u32,
    /// OUT: maximum number of frames.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad1: u16,
}

/// One side of a grant copy (`struct gnttab_copy_ptr`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GnttabCopyPtr {
    /// A grant reference (with `GNTCOPY_*_GREF`) or a frame number of the caller, as the
    /// C union of `grant_ref_t` and `xen_pfn_t`: a reference sits in the low 32 bits.
    pub u: XenPfn,
    /// The domain.
    pub domid: u16,
    /// Byte offset in the page.
    pub offset: u16,
    /// Padding (implicit in C).
    pub _pad: u32,
}

/// `struct gnttab_copy`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GnttabCopy {
    /// IN: the source.
    pub source: GnttabCopyPtr,
    /// IN: the destination.
    pub dest: GnttabCopyPtr,
    /// IN: bytes to copy.
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad: [u16; 1],
}

impl_pod!(
    GrantEntryV1,
    GnttabSetupTable,
    GnttabQuerySize,
    GnttabCopyPtr,
    GnttabCopy
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_entry_v1_layout() {
        assert_layout!(
            GrantEntryV1,
            size = 8,
            align = 4,
            flags = 0,
            domid = 2,
            frame = 4
        );
        assert_eq!((GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE), (0, 1));
    }

    #[test]
    fn layouts() {
        assert_layout!(
            GnttabSetupTable,
            size = 24,
            align = 8,
            dom = 0,
            nr_frames = 4,
            status = 8,
            frame_list = 16
        );
        assert_layout!(
            GnttabQuerySize,
            size = 16,
            align = 4,
            dom = 0,
            nr_frames = 4,
            max_nr_frames = 8,
            status = 12
        );
        assert_layout!(
            GnttabCopyPtr,
            size = 16,
            align = 8,
            u = 0,
            domid = 8,
            offset = 10
        );
        assert_layout!(
            GnttabCopy,
            size = 40,
            align = 8,
            source = 0,
            dest = 16,
            len = 32,
            flags = 34,
            status = 36
        );
    }
}
