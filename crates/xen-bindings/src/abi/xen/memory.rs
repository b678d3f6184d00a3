// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `memory_op` hypercall (`memory.h`): `XENMEM_acquire_resource`, `XENMEM_populate_physmap`
//! and a few sub-op numbers.

use super::GuestHandle;
use crate::abi::impl_pod;

/// `XENMEM_populate_physmap`: gives a domain memory at the guest frames it names
/// (argument [`XenMemoryReservation`]); returns how many extents were populated.
pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
/// `XENMEM_maximum_ram_page`.
pub const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
/// `XENMEM_current_reservation`.
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
/// `XENMEM_maximum_reservation`.
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
/// `XENMEM_maximum_gpfn`.
pub const XENMEM_MAXIMUM_GPFN: u64 = 14;
/// `XENMEM_acquire_resource`: maps (or sizes) a resource of a domain.
pub const XENMEM_ACQUIRE_RESOURCE: u64 = 28;

/// Resource type: the pages of an IOREQ server.
pub const XENMEM_RESOURCE_IOREQ_SERVER: u16 = 0;
/// Resource type: a domain's grant table.
pub const XENMEM_RESOURCE_GRANT_TABLE: u16 = 1;
/// Resource type: a vCPU's trace buffer.
pub const XENMEM_RESOURCE_VMTRACE_BUF: u16 = 2;

/// Grant-table resource id: the shared frames.
pub const XENMEM_RESOURCE_GRANT_TABLE_ID_SHARED: u32 = 0;
/// Grant-table resource id: the status frames (grant table v2).
pub const XENMEM_RESOURCE_GRANT_TABLE_ID_STATUS: u32 = 1;

/// IOREQ-server resource frame index of the buffered-ioreq page.
pub const XENMEM_RESOURCE_IOREQ_SERVER_FRAME_BUFIOREQ: u64 = 0;

/// IOREQ-server resource frame index of the `n`th synchronous-ioreq page.
pub const fn xenmem_resource_ioreq_server_frame_ioreq(n: u64) -> u64 {
    1 + n
}

/// `struct xen_mem_acquire_resource`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenMemAcquireResource {
    /// IN: the domain owning the resource.
    pub domid: u16,
    /// IN: `XENMEM_RESOURCE_*`.
    pub type_: u16,
    /// IN: type-specific id (ioreq server id, grant-table id).
    pub id: u32,
    /// IN/OUT: number of frames; with a null frame list and 0, asks for the resource's size.
    pub nr_frames: u32,
    /// Must be zero.
    pub pad: u32,
    /// IN: index of the first frame.
    pub frame: u64,
    /// IN/OUT: list of frame numbers (`XEN_GUEST_HANDLE(xen_pfn_t)`).
    pub frame_list: GuestHandle,
}

/// `struct xen_memory_reservation`: argument of `XENMEM_{increase,decrease}_reservation` and
/// [`XENMEM_POPULATE_PHYSMAP`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenMemoryReservation {
    /// IN: the guest frames, one per extent (`XEN_GUEST_HANDLE(xen_pfn_t)`).
    pub extent_start: GuestHandle,
    /// IN: number of extents.
    pub nr_extents: u64,
    /// IN: each extent is `1 << extent_order` pages.
    pub extent_order: u32,
    /// IN: `XENMEMF_*` flags.
    pub mem_flags: u32,
    /// IN: the domain.
    pub domid: u16,
    /// Padding (implicit in C).
    pub _pad: [u16; 3],
}

impl_pod!(XenMemAcquireResource, XenMemoryReservation);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            XenMemAcquireResource,
            size = 32,
            align = 8,
            domid = 0,
            type_ = 2,
            id = 4,
            nr_frames = 8,
            pad = 12,
            frame = 16,
            frame_list = 24
        );
        assert_eq!(xenmem_resource_ioreq_server_frame_ioreq(0), 1);
        assert_layout!(
            XenMemoryReservation,
            size = 32,
            align = 8,
            extent_start = 0,
            nr_extents = 8,
            extent_order = 16,
            mem_flags = 20,
            domid = 24
        );
        assert_eq!(XENMEM_POPULATE_PHYSMAP, 6);
    }
}
