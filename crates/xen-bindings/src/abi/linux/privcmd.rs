// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `/dev/xen/privcmd` ioctl ABI (Linux `include/uapi/xen/privcmd.h`), 64-bit layouts.
//!
//! User pointers in the C structs are 64-bit addresses here (`u64`), which is their size and
//! alignment on every 64-bit Linux.

use crate::abi::impl_pod;
use crate::sys::{io, ioc_none, iow};

/// `struct privcmd_hypercall`: a hypercall number and up to five arguments.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdHypercall {
    /// Hypercall number (`__HYPERVISOR_*`).
    pub op: u64,
    /// Arguments.
    pub arg: [u64; 5],
}

/// `struct privcmd_mmap_entry`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdMmapEntry {
    /// Virtual address.
    pub va: u64,
    /// First guest frame.
    pub mfn: u64,
    /// Number of pages.
    pub npages: u64,
}

/// `struct privcmd_mmap` (legacy).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdMmap {
    /// Number of entries.
    pub num: i32,
    /// Target domain.
    pub dom: u16,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// Address of the [`PrivcmdMmapEntry`] array.
    pub entry: u64,
}

/// `struct privcmd_mmapbatch` (legacy, errors or'ed into the frame array).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdMmapbatch {
    /// Number of pages.
    pub num: i32,
    /// Target domain.
    pub dom: u16,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// Virtual address of the mapping.
    pub addr: u64,
    /// Address of the frame array.
    pub arr: u64,
}

/// Legacy MMAPBATCH per-frame error marker.
pub const PRIVCMD_MMAPBATCH_MFN_ERROR: u32 = 0xf000_0000;
/// Legacy MMAPBATCH per-frame "paged out" marker.
pub const PRIVCMD_MMAPBATCH_PAGED_ERROR: u32 = 0x8000_0000;

/// `struct privcmd_mmapbatch_v2`: map foreign frames with a per-page error array.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdMmapbatchV2 {
    /// Number of pages.
    pub num: u32,
    /// Target domain.
    pub dom: u16,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// Virtual address of the mapping (made by `mmap` of the privcmd fd).
    pub addr: u64,
    /// Address of the `xen_pfn_t` frame array.
    pub arr: u64,
    /// Address of the `int` per-page error array (0 or a negative errno).
    pub err: u64,
}

/// `struct privcmd_dm_op_buf`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdDmOpBuf {
    /// Buffer address.
    pub uptr: u64,
    /// Buffer size.
    pub size: u64,
}

/// `struct privcmd_dm_op`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdDmOp {
    /// Target domain.
    pub dom: u16,
    /// Number of buffers.
    pub num: u16,
    /// Padding (implicit in C).
    pub _pad: u32,
    /// Address of the [`PrivcmdDmOpBuf`] array.
    pub ubufs: u64,
}

/// `struct privcmd_mmap_resource`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdMmapResource {
    /// Target domain.
    pub dom: u16,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// `XENMEM_resource_*`.
    pub type_: u32,
    /// Type-specific id.
    pub id: u32,
    /// First frame index.
    pub idx: u32,
    /// Number of frames (0 with `addr` 0 asks for the size).
    pub num: u64,
    /// Virtual address of the mapping.
    pub addr: u64,
}

/// `PRIVCMD_IRQFD_FLAG_DEASSIGN`.
pub const PRIVCMD_IRQFD_FLAG_DEASSIGN: u32 = 1 << 0;

/// `struct privcmd_irqfd` (Linux 6.7+ layout): an eventfd whose signal runs a dm_op.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdIrqfd {
    /// Address of the dm_op buffer run on each signal.
    pub dm_op: u64,
    /// Size of that buffer.
    pub size: u32,
    /// The eventfd.
    pub fd: u32,
    /// `PRIVCMD_IRQFD_FLAG_*`.
    pub flags: u32,
    /// Target domain.
    pub dom: u16,
    /// Padding.
    pub pad: [u8; 2],
}

/// `PRIVCMD_IOEVENTFD_FLAG_DEASSIGN`.
pub const PRIVCMD_IOEVENTFD_FLAG_DEASSIGN: u32 = 1 << 0;

/// `struct privcmd_ioeventfd` (Linux 6.7+): the kernel completes virtio-mmio notify writes
/// of an IOREQ server and signals an eventfd.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdIoeventfd {
    /// Address of the mapped synchronous ioreq page.
    pub ioreq: u64,
    /// Address of the per-vCPU event-channel port array.
    pub ports: u64,
    /// MMIO address to watch.
    pub addr: u64,
    /// Length of the watched access.
    pub addr_len: u32,
    /// The eventfd.
    pub event_fd: u32,
    /// Number of vCPUs (entries of `ports`).
    pub vcpus: u32,
    /// Virtqueue index matched against the written value.
    pub vq: u32,
    /// `PRIVCMD_IOEVENTFD_FLAG_*`.
    pub flags: u32,
    /// Target domain.
    pub dom: u16,
    /// Padding.
    pub pad: [u8; 2],
}

/// `struct privcmd_pcidev_get_gsi`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrivcmdPcidevGetGsi {
    /// IN: PCI segment/bus/device/function.
    pub sbdf: u32,
    /// OUT: the GSI.
    pub gsi: u32,
}

impl_pod!(
    PrivcmdHypercall,
    PrivcmdMmapEntry,
    PrivcmdMmap,
    PrivcmdMmapbatch,
    PrivcmdMmapbatchV2,
    PrivcmdDmOpBuf,
    PrivcmdDmOp,
    PrivcmdMmapResource,
    PrivcmdIrqfd,
    PrivcmdIoeventfd,
    PrivcmdPcidevGetGsi,
);

/// `IOCTL_PRIVCMD_HYPERCALL`.
pub const IOCTL_PRIVCMD_HYPERCALL: u32 = ioc_none::<PrivcmdHypercall>(b'P', 0);
/// `IOCTL_PRIVCMD_MMAP`.
pub const IOCTL_PRIVCMD_MMAP: u32 = ioc_none::<PrivcmdMmap>(b'P', 2);
/// `IOCTL_PRIVCMD_MMAPBATCH`.
pub const IOCTL_PRIVCMD_MMAPBATCH: u32 = ioc_none::<PrivcmdMmapbatch>(b'P', 3);
/// `IOCTL_PRIVCMD_MMAPBATCH_V2`.
pub const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = ioc_none::<PrivcmdMmapbatchV2>(b'P', 4);
/// `IOCTL_PRIVCMD_DM_OP`.
pub const IOCTL_PRIVCMD_DM_OP: u32 = ioc_none::<PrivcmdDmOp>(b'P', 5);
/// `IOCTL_PRIVCMD_RESTRICT` (argument: a `domid_t`).
pub const IOCTL_PRIVCMD_RESTRICT: u32 = ioc_none::<u16>(b'P', 6);
/// `IOCTL_PRIVCMD_MMAP_RESOURCE`.
pub const IOCTL_PRIVCMD_MMAP_RESOURCE: u32 = ioc_none::<PrivcmdMmapResource>(b'P', 7);
/// `IOCTL_PRIVCMD_IRQFD` as of Linux 6.7 (`_IOW`).
pub const IOCTL_PRIVCMD_IRQFD: u32 = iow::<PrivcmdIrqfd>(b'P', 8);
/// `IOCTL_PRIVCMD_IRQFD` of Linux 6.6 (`_IOC_NONE`, a different ABI this crate does not use).
pub const IOCTL_PRIVCMD_IRQFD_LINUX_6_6: u32 = ioc_none::<PrivcmdIrqfd>(b'P', 8);
/// `IOCTL_PRIVCMD_IOEVENTFD` (Linux 6.7+).
pub const IOCTL_PRIVCMD_IOEVENTFD: u32 = iow::<PrivcmdIoeventfd>(b'P', 9);
/// `IOCTL_PRIVCMD_PCIDEV_GET_GSI`.
pub const IOCTL_PRIVCMD_PCIDEV_GET_GSI: u32 = ioc_none::<PrivcmdPcidevGetGsi>(b'P', 10);
/// `IOCTL_PRIVCMD_UNIMPLEMENTED`.
pub const IOCTL_PRIVCMD_UNIMPLEMENTED: u32 = io(b'P', 0xff);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(PrivcmdHypercall, size = 48, align = 8, op = 0, arg = 8);
        assert_layout!(
            PrivcmdMmapEntry,
            size = 24,
            align = 8,
            va = 0,
            mfn = 8,
            npages = 16
        );
        assert_layout!(
            PrivcmdMmap,
            size = 16,
            align = 8,
            num = 0,
            dom = 4,
            entry = 8
        );
        assert_layout!(
            PrivcmdMmapbatch,
            size = 24,
            align = 8,
            num = 0,
            dom = 4,
            addr = 8,
            arr = 16
        );
        assert_layout!(
            PrivcmdMmapbatchV2,
            size = 32,
            align = 8,
            num = 0,
            dom = 4,
            addr = 8,
            arr = 16,
            err = 24
        );
        assert_layout!(PrivcmdDmOpBuf, size = 16, align = 8, uptr = 0, size = 8);
        assert_layout!(
            PrivcmdDmOp,
            size = 16,
            align = 8,
            dom = 0,
            num = 2,
            ubufs = 8
        );
        assert_layout!(
            PrivcmdMmapResource,
            size = 32,
            align = 8,
            dom = 0,
            type_ = 4,
            id = 8,
            idx = 12,
            num = 16,
            addr = 24
        );
        assert_layout!(
            PrivcmdIrqfd,
            size = 24,
            align = 8,
            dm_op = 0,
            size = 8,
            fd = 12,
            flags = 16,
            dom = 20,
            pad = 22
        );
        assert_layout!(
            PrivcmdIoeventfd,
            size = 48,
            align = 8,
            ioreq = 0,
            ports = 8,
            addr = 16,
            addr_len = 24,
            event_fd = 28,
            vcpus = 32,
            vq = 36,
            flags = 40,
            dom = 44,
            pad = 46
        );
        assert_layout!(PrivcmdPcidevGetGsi, size = 8, align = 4, sbdf = 0, gsi = 4);
    }

    // Values computed from the uapi header with a C compiler (64-bit Linux).
    #[test]
    fn ioctl_numbers() {
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
        assert_eq!(IOCTL_PRIVCMD_MMAP, 0x0010_5002);
        assert_eq!(IOCTL_PRIVCMD_MMAPBATCH, 0x0018_5003);
        assert_eq!(IOCTL_PRIVCMD_MMAPBATCH_V2, 0x0020_5004);
        assert_eq!(IOCTL_PRIVCMD_DM_OP, 0x0010_5005);
        assert_eq!(IOCTL_PRIVCMD_RESTRICT, 0x0002_5006);
        assert_eq!(IOCTL_PRIVCMD_MMAP_RESOURCE, 0x0020_5007);
        assert_eq!(IOCTL_PRIVCMD_IRQFD, 0x4018_5008);
        assert_eq!(IOCTL_PRIVCMD_IRQFD_LINUX_6_6, 0x0018_5008);
        assert_eq!(IOCTL_PRIVCMD_IOEVENTFD, 0x4030_5009);
        assert_eq!(IOCTL_PRIVCMD_PCIDEV_GET_GSI, 0x0008_500a);
        assert_eq!(IOCTL_PRIVCMD_UNIMPLEMENTED, 0x0000_50ff);
    }
}
