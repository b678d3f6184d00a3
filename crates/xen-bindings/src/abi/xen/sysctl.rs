// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `sysctl` hypercall (`sysctl.h`): host information and the domain list.
//!
//! Like domctl, sysctl carries an interface version Xen checks (`EACCES` on mismatch). It is
//! 0x15 in Xen 4.17, 4.18, 4.19 and 4.20, and the structs below have the same layout in all four.

use super::domctl::XenDomctlGetdomaininfo;
use super::GuestHandle;
use crate::abi::impl_pod;

/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.17 to 4.20.
pub const XEN_SYSCTL_INTERFACE_VERSION_4_17: u32 = 0x15;
/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.18.
pub const XEN_SYSCTL_INTERFACE_VERSION_4_18: u32 = 0x15;
/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.19.
pub const XEN_SYSCTL_INTERFACE_VERSION_4_19: u32 = 0x15;
/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.20.
pub const XEN_SYSCTL_INTERFACE_VERSION_4_20: u32 = 0x15;

/// The sysctl interface versions this crate knows, newest first (for probing).
pub const KNOWN_SYSCTL_INTERFACE_VERSIONS: [u32; 1] = [XEN_SYSCTL_INTERFACE_VERSION_4_20];

/// The sysctl interface version of Xen `major.minor`, if this crate knows it.
pub const fn sysctl_interface_version(major: u16, minor: u16) -> Option<u32> {
    match (major, minor) {
        (4, 17) => Some(XEN_SYSCTL_INTERFACE_VERSION_4_17),
        (4, 18) => Some(XEN_SYSCTL_INTERFACE_VERSION_4_18),
        (4, 19) => Some(XEN_SYSCTL_INTERFACE_VERSION_4_19),
        (4, 20) => Some(XEN_SYSCTL_INTERFACE_VERSION_4_20),
        _ => None,
    }
}

/// `XEN_SYSCTL_physinfo`.
pub const XEN_SYSCTL_PHYSINFO: u32 = 3;
/// `XEN_SYSCTL_getdomaininfolist`.
pub const XEN_SYSCTL_GETDOMAININFOLIST: u32 = 6;

/// Host capability: HVM guests.
pub const XEN_SYSCTL_PHYSCAP_HVM: u32 = 1 << 0;
/// Host capability: PV guests.
pub const XEN_SYSCTL_PHYSCAP_PV: u32 = 1 << 1;
/// Host capability: direct I/O (passthrough).
pub const XEN_SYSCTL_PHYSCAP_DIRECTIO: u32 = 1 << 2;
/// Host capability: hardware-assisted paging.
pub const XEN_SYSCTL_PHYSCAP_HAP: u32 = 1 << 3;
/// Host capability: shadow paging.
pub const XEN_SYSCTL_PHYSCAP_SHADOW: u32 = 1 << 4;
/// Host capability: IOMMU shares the HAP page tables.
pub const XEN_SYSCTL_PHYSCAP_IOMMU_HAP_PT_SHARE: u32 = 1 << 5;
/// Host capability: VM tracing.
pub const XEN_SYSCTL_PHYSCAP_VMTRACE: u32 = 1 << 6;
/// Host capability: vPMU.
pub const XEN_SYSCTL_PHYSCAP_VPMU: u32 = 1 << 7;
/// Host capability: grant table v1.
pub const XEN_SYSCTL_PHYSCAP_GNTTAB_V1: u32 = 1 << 8;
/// Host capability: grant table v2.
pub const XEN_SYSCTL_PHYSCAP_GNTTAB_V2: u32 = 1 << 9;

/// `struct xen_sysctl_physinfo`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenSysctlPhysinfo {
    /// Threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// CPUs online.
    pub nr_cpus: u32,
    /// Highest possible CPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    /// Highest possible node id.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    /// Architecture-specific capabilities.
    pub arch_capabilities: u32,
    /// Padding.
    pub pad: u32,
    /// Total host pages.
    pub total_pages: u64,
    /// Free host pages.
    pub free_pages: u64,
    /// Pages waiting to be scrubbed.
    pub scrub_pages: u64,
    /// Pages claimed but not allocated.
    pub outstanding_pages: u64,
    /// Highest possible machine frame.
    pub max_mfn: u64,
    /// Hardware capability words.
    pub hw_cap: [u32; 8],
}

/// `struct xen_sysctl_getdomaininfolist`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenSysctlGetdomaininfolist {
    /// IN: first domain id to report.
    pub first_domain: u16,
    /// Padding (implicit in C).
    pub _pad0: u16,
    /// IN: room in the buffer, in entries.
    pub max_domains: u32,
    /// IN: array of [`XenDomctlGetdomaininfo`] (`XEN_GUEST_HANDLE_64`).
    pub buffer: GuestHandle,
    /// OUT: entries written.
    pub num_domains: u32,
    /// Padding (implicit in C).
    pub _pad1: u32,
}

/// `struct xen_sysctl`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenSysctl {
    /// `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// The interface version (see the module docs).
    pub interface_version: u32,
    /// The command's argument: the C union (`pad[128]`), kept as raw 8-byte-aligned storage.
    pub u: [u64; 16],
}

impl XenSysctl {
    /// A zeroed command `cmd` with interface version `version` and argument `arg` written
    /// at the start of the union.
    pub fn with_arg<T: crate::abi::Pod>(cmd: u32, version: u32, arg: &T) -> Self {
        let mut s = Self {
            cmd,
            interface_version: version,
            ..Self::default()
        };
        s.set_arg(arg);
        s
    }

    /// Writes `arg` at the start of the union (the C union's member for this command).
    pub fn set_arg<T: crate::abi::Pod>(&mut self, arg: &T) {
        use crate::abi::Pod;
        let src = arg.as_bytes();
        assert!(src.len() <= 128, "argument larger than the 128-byte union");
        self.u.as_bytes_mut()[..src.len()].copy_from_slice(src);
    }

    /// Reads the start of the union as `T`.
    pub fn arg<T: crate::abi::Pod>(&self) -> T {
        use crate::abi::Pod;
        T::from_bytes(self.u.as_bytes()).expect("argument larger than the 128-byte union")
    }
}

impl_pod!(XenSysctlPhysinfo, XenSysctlGetdomaininfolist, XenSysctl);

// The domain list hands out whole getdomaininfo structs.
const _: () = assert!(std::mem::size_of::<XenDomctlGetdomaininfo>() % 8 == 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            XenSysctlPhysinfo,
            size = 112,
            align = 8,
            threads_per_core = 0,
            cores_per_socket = 4,
            nr_cpus = 8,
            max_cpu_id = 12,
            nr_nodes = 16,
            max_node_id = 20,
            cpu_khz = 24,
            capabilities = 28,
            arch_capabilities = 32,
            pad = 36,
            total_pages = 40,
            free_pages = 48,
            scrub_pages = 56,
            outstanding_pages = 64,
            max_mfn = 72,
            hw_cap = 80
        );
        assert_layout!(
            XenSysctlGetdomaininfolist,
            size = 24,
            align = 8,
            first_domain = 0,
            max_domains = 4,
            buffer = 8,
            num_domains = 16
        );
        assert_layout!(
            XenSysctl,
            size = 136,
            align = 8,
            cmd = 0,
            interface_version = 4,
            u = 8
        );
    }

    #[test]
    fn versions() {
        for minor in 17..=20 {
            assert_eq!(sysctl_interface_version(4, minor), Some(0x15));
        }
        assert_eq!(sysctl_interface_version(5, 0), None);
    }
}
