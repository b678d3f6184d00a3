// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `dm_op` hypercall (`hvm/dm_op.h`): the device-model operations, ops 1 to 20.
//!
//! A dm_op is a list of buffers: the first holds a [`XenDmOp`] (op number plus the op's
//! struct), further buffers carry op-specific arrays (e.g. the extents of
//! [`XEN_DMOP_MODIFIED_MEMORY`]). Through privcmd, the buffers are described by
//! `privcmd_dm_op_buf` (see [`crate::abi::linux::privcmd`]).

use super::event_channel::EvtchnPort;
use super::{GuestHandle, XenUlong};
use crate::abi::impl_pod;

/// An IOREQ server id (`ioservid_t`).
pub type IoservId = u16;

/// `XEN_DMOP_create_ioreq_server`.
pub const XEN_DMOP_CREATE_IOREQ_SERVER: u32 = 1;
/// `XEN_DMOP_get_ioreq_server_info`.
pub const XEN_DMOP_GET_IOREQ_SERVER_INFO: u32 = 2;
/// `XEN_DMOP_map_io_range_to_ioreq_server`.
pub const XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER: u32 = 3;
/// `XEN_DMOP_unmap_io_range_from_ioreq_server`.
pub const XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER: u32 = 4;
/// `XEN_DMOP_set_ioreq_server_state`.
pub const XEN_DMOP_SET_IOREQ_SERVER_STATE: u32 = 5;
/// `XEN_DMOP_destroy_ioreq_server`.
pub const XEN_DMOP_DESTROY_IOREQ_SERVER: u32 = 6;
/// `XEN_DMOP_track_dirty_vram`.
pub const XEN_DMOP_TRACK_DIRTY_VRAM: u32 = 7;
/// `XEN_DMOP_set_pci_intx_level`.
pub const XEN_DMOP_SET_PCI_INTX_LEVEL: u32 = 8;
/// `XEN_DMOP_set_isa_irq_level`.
pub const XEN_DMOP_SET_ISA_IRQ_LEVEL: u32 = 9;
/// `XEN_DMOP_set_pci_link_route`.
pub const XEN_DMOP_SET_PCI_LINK_ROUTE: u32 = 10;
/// `XEN_DMOP_modified_memory`.
pub const XEN_DMOP_MODIFIED_MEMORY: u32 = 11;
/// `XEN_DMOP_set_mem_type`.
pub const XEN_DMOP_SET_MEM_TYPE: u32 = 12;
/// `XEN_DMOP_inject_event`.
pub const XEN_DMOP_INJECT_EVENT: u32 = 13;
/// `XEN_DMOP_inject_msi`.
pub const XEN_DMOP_INJECT_MSI: u32 = 14;
/// `XEN_DMOP_map_mem_type_to_ioreq_server`.
pub const XEN_DMOP_MAP_MEM_TYPE_TO_IOREQ_SERVER: u32 = 15;
/// `XEN_DMOP_remote_shutdown`.
pub const XEN_DMOP_REMOTE_SHUTDOWN: u32 = 16;
/// `XEN_DMOP_relocate_memory`.
pub const XEN_DMOP_RELOCATE_MEMORY: u32 = 17;
/// `XEN_DMOP_pin_memory_cacheattr`.
pub const XEN_DMOP_PIN_MEMORY_CACHEATTR: u32 = 18;
/// `XEN_DMOP_set_irq_level`.
pub const XEN_DMOP_SET_IRQ_LEVEL: u32 = 19;
/// `XEN_DMOP_nr_vcpus`.
pub const XEN_DMOP_NR_VCPUS: u32 = 20;

/// get_ioreq_server_info flag: do not return frame numbers (the caller maps the pages with
/// `XENMEM_acquire_resource` instead).
pub const XEN_DMOP_NO_GFNS: u16 = 1 << 0;

/// IO range type: port I/O.
pub const XEN_DMOP_IO_RANGE_PORT: u32 = 0;
/// IO range type: MMIO.
pub const XEN_DMOP_IO_RANGE_MEMORY: u32 = 1;
/// IO range type: PCI config space (segment/bus/device/function).
pub const XEN_DMOP_IO_RANGE_PCI: u32 = 2;

/// Encodes a PCI SBDF for [`XEN_DMOP_IO_RANGE_PCI`] ranges.
pub const fn xen_dmop_pci_sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> u64 {
    ((seg as u64) << 16) | ((bus as u64) << 8) | (((dev & 0x1f) as u64) << 3) | ((func & 7) as u64)
}

/// inject_event type: external interrupt.
pub const XEN_DMOP_EVENT_EXT_INT: u8 = 0;
/// inject_event type: NMI.
pub const XEN_DMOP_EVENT_NMI: u8 = 2;
/// inject_event type: hardware exception.
pub const XEN_DMOP_EVENT_HW_EXC: u8 = 3;
/// inject_event type: software interrupt.
pub const XEN_DMOP_EVENT_SW_INT: u8 = 4;
/// inject_event type: privileged software exception (ICEBP).
pub const XEN_DMOP_EVENT_PRI_SW_EXC: u8 = 5;
/// inject_event type: software exception (INT3, INTO).
pub const XEN_DMOP_EVENT_SW_EXC: u8 = 6;

/// map_mem_type_to_ioreq_server flag: forward reads.
pub const XEN_DMOP_IOREQ_MEM_ACCESS_READ: u32 = 1 << 0;
/// map_mem_type_to_ioreq_server flag: forward writes.
pub const XEN_DMOP_IOREQ_MEM_ACCESS_WRITE: u32 = 1 << 1;

/// Cache attribute: uncachable.
pub const XEN_DMOP_MEM_CACHEATTR_UC: u32 = 0;
/// Cache attribute: write combining.
pub const XEN_DMOP_MEM_CACHEATTR_WC: u32 = 1;
/// Cache attribute: write through.
pub const XEN_DMOP_MEM_CACHEATTR_WT: u32 = 4;
/// Cache attribute: write protected.
pub const XEN_DMOP_MEM_CACHEATTR_WP: u32 = 5;
/// Cache attribute: write back.
pub const XEN_DMOP_MEM_CACHEATTR_WB: u32 = 6;
/// Cache attribute: UC minus.
pub const XEN_DMOP_MEM_CACHEATTR_UCM: u32 = 7;
/// Removes a pinned cache attribute.
pub const XEN_DMOP_DELETE_MEM_CACHEATTR: u32 = !0;

/// Op 1: create an IOREQ server.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpCreateIoreqServer {
    /// IN: `HVM_IOREQSRV_BUFIOREQ_*` (0 off, 1 legacy, 2 atomic; see
    /// [`HVM_IOREQSRV_BUFIOREQ_OFF`](super::hvm::HVM_IOREQSRV_BUFIOREQ_OFF)).
    pub handle_bufioreq: u8,
    /// Padding.
    pub pad: [u8; 3],
    /// OUT: the server id.
    pub id: IoservId,
}

/// Op 2: information about an IOREQ server.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpGetIoreqServerInfo {
    /// IN: the server id.
    pub id: IoservId,
    /// IN: [`XEN_DMOP_NO_GFNS`].
    pub flags: u16,
    /// OUT: event channel of the buffered ring.
    pub bufioreq_port: EvtchnPort,
    /// OUT: frame of the synchronous page.
    pub ioreq_gfn: u64,
    /// OUT: frame of the buffered page.
    pub bufioreq_gfn: u64,
}

/// Ops 3 and 4: (un)map an I/O range to an IOREQ server.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpIoreqServerRange {
    /// IN: the server id.
    pub id: IoservId,
    /// Padding.
    pub pad: u16,
    /// IN: `XEN_DMOP_IO_RANGE_*`.
    pub type_: u32,
    /// IN: first address (inclusive).
    pub start: u64,
    /// IN: last address (inclusive).
    pub end: u64,
}

/// Op 5: enable or disable an IOREQ server.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpSetIoreqServerState {
    /// IN: the server id.
    pub id: IoservId,
    /// IN: 1 to enable, 0 to disable.
    pub enabled: u8,
    /// Padding.
    pub pad: u8,
}

/// Op 6: destroy an IOREQ server.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpDestroyIoreqServer {
    /// IN: the server id.
    pub id: IoservId,
    /// Padding.
    pub pad: u16,
}

/// Op 7: track dirty VRAM (a bitmap follows in the second buffer).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpTrackDirtyVram {
    /// IN: number of pages.
    pub nr: u32,
    /// Padding.
    pub pad: u32,
    /// IN: first frame.
    pub first_pfn: u64,
}

/// Op 8: set a PCI INTx line level.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpSetPciIntxLevel {
    /// IN: PCI segment.
    pub domain: u16,
    /// IN: bus.
    pub bus: u8,
    /// IN: device.
    pub device: u8,
    /// IN: INTx pin (0-3).
    pub intx: u8,
    /// IN: 0 deasserted, 1 asserted.
    pub level: u8,
}

/// Op 9: set an ISA IRQ level.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpSetIsaIrqLevel {
    /// IN: ISA IRQ (0-15).
    pub isa_irq: u8,
    /// IN: 0 deasserted, 1 asserted.
    pub level: u8,
}

/// Op 10: route a PCI link to an ISA IRQ.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpSetPciLinkRoute {
    /// IN: PCI INTx link (0-3).
    pub link: u8,
    /// IN: ISA IRQ (1-15), 0 disables the link.
    pub isa_irq: u8,
}

/// Op 11: notify modified memory (extents follow in the second buffer).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpModifiedMemory {
    /// IN: number of [`XenDmOpModifiedMemoryExtent`]s.
    pub nr_extents: u32,
    /// IN/OUT: must be 0 (continuation state).
    pub opaque: u32,
}

/// One extent of [`XEN_DMOP_MODIFIED_MEMORY`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpModifiedMemoryExtent {
    /// IN: number of pages.
    pub nr: u32,
    /// Padding.
    pub pad: u32,
    /// IN: first frame.
    pub first_pfn: u64,
}

/// Op 12: set the memory type of a range.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpSetMemType {
    /// IN: number of pages.
    pub nr: u32,
    /// IN: `hvmmem_type_t`.
    pub mem_type: u16,
    /// Padding.
    pub pad: u16,
    /// IN: first frame.
    pub first_pfn: u64,
}

/// Op 13: inject an event into a vCPU.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpInjectEvent {
    /// IN: vCPU index.
    pub vcpuid: u32,
    /// IN: vector.
    pub vector: u8,
    /// IN: `XEN_DMOP_EVENT_*`.
    pub type_: u8,
    /// IN: instruction length.
    pub insn_len: u8,
    /// Padding.
    pub pad0: u8,
    /// IN: error code, or `!0` for none.
    pub error_code: u32,
    /// Padding.
    pub pad1: u32,
    /// IN: type-specific data (CR2 for #PF).
    pub cr2: u64,
}

/// Op 14: inject an MSI.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpInjectMsi {
    /// IN: MSI data.
    pub data: u32,
    /// Padding.
    pub pad: u32,
    /// IN: MSI address.
    pub addr: u64,
}

/// Op 15: forward accesses to a memory type to an IOREQ server.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpMapMemTypeToIoreqServer {
    /// IN: the server id.
    pub id: IoservId,
    /// IN: memory type.
    pub type_: u16,
    /// IN: `XEN_DMOP_IOREQ_MEM_ACCESS_*` (0 unmaps).
    pub flags: u32,
    /// IN/OUT: must be 0 (continuation state).
    pub opaque: u64,
}

/// Op 16: shut the domain down.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpRemoteShutdown {
    /// IN: `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// Op 17: relocate guest memory.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpRelocateMemory {
    /// IN/OUT: number of frames.
    pub size: u32,
    /// Padding.
    pub pad: u32,
    /// IN/OUT: first source frame.
    pub src_gfn: u64,
    /// IN/OUT: first destination frame.
    pub dst_gfn: u64,
}

/// Op 18: pin the cache attribute of a range.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpPinMemoryCacheattr {
    /// IN: first frame.
    pub start: u64,
    /// IN: last frame.
    pub end: u64,
    /// IN: `XEN_DMOP_MEM_CACHEATTR_*`.
    pub type_: u32,
    /// Padding.
    pub pad: u32,
}

/// Op 19: set the level of a (GSI or SPI) interrupt line.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpSetIrqLevel {
    /// IN: the IRQ.
    pub irq: u32,
    /// IN: 0 deasserted, 1 asserted.
    pub level: u8,
    /// Padding.
    pub pad: [u8; 3],
}

/// Op 20: number of vCPUs of the domain.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpNrVcpus {
    /// OUT: the count.
    pub vcpus: u32,
}

/// `struct xen_dm_op`: op number and the op's argument, 32 bytes.
///
/// The C union is kept as raw 8-byte-aligned storage; [`XenDmOp::new`] writes an op's struct
/// into it and [`XenDmOp::payload`] reads one back.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOp {
    /// `XEN_DMOP_*`.
    pub op: u32,
    /// Padding.
    pub pad: u32,
    /// The op's struct (the C union `u`), zero-filled after it.
    pub u: [u64; 3],
}

impl XenDmOp {
    /// Builds a dm_op with `op` and its argument `arg` (which must fit the 24-byte union).
    pub fn new<T: crate::abi::Pod>(op: u32, arg: &T) -> Self {
        use crate::abi::Pod;
        let mut s = Self {
            op,
            ..Self::default()
        };
        let src = arg.as_bytes();
        assert!(src.len() <= 24, "dm_op argument larger than the C union");
        s.u.as_bytes_mut()[..src.len()].copy_from_slice(src);
        s
    }

    /// Reads the union as the op's struct `T`.
    pub fn payload<T: crate::abi::Pod>(&self) -> T {
        use crate::abi::Pod;
        T::from_bytes(self.u.as_bytes()).expect("dm_op argument larger than the C union")
    }
}

/// `struct xen_dm_op_buf`: one buffer of a dm_op as Xen sees it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDmOpBuf {
    /// The buffer's address.
    pub h: GuestHandle,
    /// Its size in bytes.
    pub size: XenUlong,
}

impl_pod!(
    XenDmOpCreateIoreqServer,
    XenDmOpGetIoreqServerInfo,
    XenDmOpIoreqServerRange,
    XenDmOpSetIoreqServerState,
    XenDmOpDestroyIoreqServer,
    XenDmOpTrackDirtyVram,
    XenDmOpSetPciIntxLevel,
    XenDmOpSetIsaIrqLevel,
    XenDmOpSetPciLinkRoute,
    XenDmOpModifiedMemory,
    XenDmOpModifiedMemoryExtent,
    XenDmOpSetMemType,
    XenDmOpInjectEvent,
    XenDmOpInjectMsi,
    XenDmOpMapMemTypeToIoreqServer,
    XenDmOpRemoteShutdown,
    XenDmOpRelocateMemory,
    XenDmOpPinMemoryCacheattr,
    XenDmOpSetIrqLevel,
    XenDmOpNrVcpus,
    XenDmOp,
    XenDmOpBuf,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            XenDmOpCreateIoreqServer,
            size = 6,
            align = 2,
            handle_bufioreq = 0,
            pad = 1,
            id = 4
        );
        assert_layout!(
            XenDmOpGetIoreqServerInfo,
            size = 24,
            align = 8,
            id = 0,
            flags = 2,
            bufioreq_port = 4,
            ioreq_gfn = 8,
            bufioreq_gfn = 16
        );
        assert_layout!(
            XenDmOpIoreqServerRange,
            size = 24,
            align = 8,
            id = 0,
            pad = 2,
            type_ = 4,
            start = 8,
            end = 16
        );
        assert_layout!(
            XenDmOpSetIoreqServerState,
            size = 4,
            align = 2,
            id = 0,
            enabled = 2,
            pad = 3
        );
        assert_layout!(
            XenDmOpDestroyIoreqServer,
            size = 4,
            align = 2,
            id = 0,
            pad = 2
        );
        assert_layout!(
            XenDmOpTrackDirtyVram,
            size = 16,
            align = 8,
            nr = 0,
            pad = 4,
            first_pfn = 8
        );
        assert_layout!(
            XenDmOpSetPciIntxLevel,
            size = 6,
            align = 2,
            domain = 0,
            bus = 2,
            device = 3,
            intx = 4,
            level = 5
        );
        assert_layout!(
            XenDmOpSetIsaIrqLevel,
            size = 2,
            align = 1,
            isa_irq = 0,
            level = 1
        );
        assert_layout!(
            XenDmOpSetPciLinkRoute,
            size = 2,
            align = 1,
            link = 0,
            isa_irq = 1
        );
        assert_layout!(
            XenDmOpModifiedMemory,
            size = 8,
            align = 4,
            nr_extents = 0,
            opaque = 4
        );
        assert_layout!(
            XenDmOpModifiedMemoryExtent,
            size = 16,
            align = 8,
            nr = 0,
            pad = 4,
            first_pfn = 8
        );
        assert_layout!(
            XenDmOpSetMemType,
            size = 16,
            align = 8,
            nr = 0,
            mem_type = 4,
            pad = 6,
            first_pfn = 8
        );
        assert_layout!(
            XenDmOpInjectEvent,
            size = 24,
            align = 8,
            vcpuid = 0,
            vector = 4,
            type_ = 5,
            insn_len = 6,
            pad0 = 7,
            error_code = 8,
            pad1 = 12,
            cr2 = 16
        );
        assert_layout!(
            XenDmOpInjectMsi,
            size = 16,
            align = 8,
            data = 0,
            pad = 4,
            addr = 8
        );
        assert_layout!(
            XenDmOpMapMemTypeToIoreqServer,
            size = 16,
            align = 8,
            id = 0,
            type_ = 2,
            flags = 4,
            opaque = 8
        );
        assert_layout!(XenDmOpRemoteShutdown, size = 4, align = 4, reason = 0);
        assert_layout!(
            XenDmOpRelocateMemory,
            size = 24,
            align = 8,
            size = 0,
            pad = 4,
            src_gfn = 8,
            dst_gfn = 16
        );
        assert_layout!(
            XenDmOpPinMemoryCacheattr,
            size = 24,
            align = 8,
            start = 0,
            end = 8,
            type_ = 16,
            pad = 20
        );
        assert_layout!(
            XenDmOpSetIrqLevel,
            size = 8,
            align = 4,
            irq = 0,
            level = 4,
            pad = 5
        );
        assert_layout!(XenDmOpNrVcpus, size = 4, align = 4, vcpus = 0);
        assert_layout!(XenDmOp, size = 32, align = 8, op = 0, pad = 4, u = 8);
        assert_layout!(XenDmOpBuf, size = 16, align = 8, h = 0, size = 8);
    }

    #[test]
    fn op_payload_roundtrip() {
        let arg = XenDmOpSetIoreqServerState {
            id: 3,
            enabled: 1,
            pad: 0,
        };
        let op = XenDmOp::new(XEN_DMOP_SET_IOREQ_SERVER_STATE, &arg);
        assert_eq!(op.op, 5);
        assert_eq!(op.payload::<XenDmOpSetIoreqServerState>(), arg);
        assert_eq!(xen_dmop_pci_sbdf(0, 1, 2, 3), 0x0113);
    }
}
