// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `domctl` hypercall (`domctl.h`): domain information and life cycle.
//!
//! The domctl interface is versioned: every call carries `interface_version` and Xen refuses
//! (with `EACCES`) a version other than its own. The version changes between releases even
//! when the structs used here do not, so callers pick the version at run time from what the
//! hypervisor reports ([`domctl_interface_version`]) or by probing
//! [`KNOWN_DOMCTL_INTERFACE_VERSIONS`].
//!
//! Layouts of the structs below are the same in Xen 4.17, 4.18, 4.19 and 4.20 (checked against
//! each release's header); only the version number differs.

use super::{DomId, DomainHandle};
use crate::abi::impl_pod;

/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17.
pub const XEN_DOMCTL_INTERFACE_VERSION_4_17: u32 = 0x15;
/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.18.
pub const XEN_DOMCTL_INTERFACE_VERSION_4_18: u32 = 0x16;
/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.19.
pub const XEN_DOMCTL_INTERFACE_VERSION_4_19: u32 = 0x17;
/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.20 (unchanged from 4.19).
pub const XEN_DOMCTL_INTERFACE_VERSION_4_20: u32 = 0x17;

/// The domctl interface versions this crate knows, newest first (for probing).
pub const KNOWN_DOMCTL_INTERFACE_VERSIONS: [u32; 3] = [
    XEN_DOMCTL_INTERFACE_VERSION_4_19,
    XEN_DOMCTL_INTERFACE_VERSION_4_18,
    XEN_DOMCTL_INTERFACE_VERSION_4_17,
];

/// The domctl interface version of Xen `major.minor`, if this crate knows it.
pub const fn domctl_interface_version(major: u16, minor: u16) -> Option<u32> {
    match (major, minor) {
        (4, 17) => Some(XEN_DOMCTL_INTERFACE_VERSION_4_17),
        (4, 18) => Some(XEN_DOMCTL_INTERFACE_VERSION_4_18),
        (4, 19) => Some(XEN_DOMCTL_INTERFACE_VERSION_4_19),
        (4, 20) => Some(XEN_DOMCTL_INTERFACE_VERSION_4_20),
        _ => None,
    }
}

/// `XEN_DOMCTL_createdomain`.
pub const XEN_DOMCTL_CREATEDOMAIN: u32 = 1;
/// `XEN_DOMCTL_destroydomain`.
pub const XEN_DOMCTL_DESTROYDOMAIN: u32 = 2;
/// `XEN_DOMCTL_pausedomain`.
pub const XEN_DOMCTL_PAUSEDOMAIN: u32 = 3;
/// `XEN_DOMCTL_unpausedomain`.
pub const XEN_DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`.
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;

/// Domain flag: the domain is dying.
pub const XEN_DOMINF_DYING: u32 = 1 << 0;
/// Domain flag: HVM (or PVH) guest.
pub const XEN_DOMINF_HVM_GUEST: u32 = 1 << 1;
/// Domain flag: the guest has shut down.
pub const XEN_DOMINF_SHUTDOWN: u32 = 1 << 2;
/// Domain flag: paused by the toolstack.
pub const XEN_DOMINF_PAUSED: u32 = 1 << 3;
/// Domain flag: blocked waiting for an event.
pub const XEN_DOMINF_BLOCKED: u32 = 1 << 4;
/// Domain flag: running.
pub const XEN_DOMINF_RUNNING: u32 = 1 << 5;
/// Domain flag: being debugged.
pub const XEN_DOMINF_DEBUGGED: u32 = 1 << 6;
/// Domain flag: xenstore domain.
pub const XEN_DOMINF_XS_DOMAIN: u32 = 1 << 7;
/// Domain flag: hardware-assisted paging.
pub const XEN_DOMINF_HAP: u32 = 1 << 8;
/// Mask of the shutdown code (after shifting by [`XEN_DOMINF_SHUTDOWNSHIFT`]).
pub const XEN_DOMINF_SHUTDOWNMASK: u32 = 255;
/// Shift of the shutdown code in the flags.
pub const XEN_DOMINF_SHUTDOWNSHIFT: u32 = 16;
/// `max_vcpu_id` of a domain without vCPUs.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// `struct xen_arch_domainconfig` of x86.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenArchDomainconfig {
    /// `XEN_X86_EMU_*`: devices Xen emulates for the domain.
    pub emulation_flags: u32,
    /// `XEN_X86_*` miscellaneous flags.
    pub misc_flags: u32,
}

/// `struct xen_arch_domainconfig` of Arm.
#[cfg(not(target_arch = "x86_64"))]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenArchDomainconfig {
    /// GIC version.
    pub gic_version: u8,
    /// SVE vector length (Xen 4.18+; padding in 4.17).
    pub sve_vl: u8,
    /// TEE mediator type.
    pub tee_type: u16,
    /// Number of SPIs.
    pub nr_spis: u32,
    /// Clock frequency.
    pub clock_frequency: u32,
}

/// `struct xen_domctl_getdomaininfo` (also the element of sysctl getdomaininfolist).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlGetdomaininfo {
    /// OUT: the domain id.
    pub domain: DomId,
    /// Padding.
    pub pad1: u16,
    /// OUT: `XEN_DOMINF_*`.
    pub flags: u32,
    /// OUT: pages currently owned.
    pub tot_pages: u64,
    /// OUT: page limit.
    pub max_pages: u64,
    /// OUT: pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// OUT: shared pages.
    pub shr_pages: u64,
    /// OUT: paged-out pages.
    pub paged_pages: u64,
    /// OUT: frame of the shared-info page.
    pub shared_info_frame: u64,
    /// OUT: CPU time used, in ns.
    pub cpu_time: u64,
    /// OUT: vCPUs online.
    pub nr_online_vcpus: u32,
    /// OUT: highest vCPU id ([`XEN_INVALID_MAX_VCPU_ID`] if none).
    pub max_vcpu_id: u32,
    /// OUT: security reference.
    pub ssidref: u32,
    /// OUT: the domain's UUID.
    pub handle: DomainHandle,
    /// OUT: CPU pool.
    pub cpupool: u32,
    /// OUT: guest physical address width.
    pub gpaddr_bits: u8,
    /// Padding.
    pub pad2: [u8; 7],
    /// OUT: architecture configuration.
    pub arch_config: XenArchDomainconfig,
    /// Padding (implicit in C, Arm only: 120 bytes with 8-byte alignment).
    #[cfg(not(target_arch = "x86_64"))]
    pub _pad3: [u8; 4],
}

impl XenDomctlGetdomaininfo {
    /// The guest's shutdown code (meaningful when [`XEN_DOMINF_SHUTDOWN`] is set).
    pub const fn shutdown_code(&self) -> u32 {
        (self.flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK
    }
}

/// `struct xen_domctl`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctl {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// The interface version (see the module docs).
    pub interface_version: u32,
    /// The target domain.
    pub domain: DomId,
    /// Padding.
    pub _pad: [u16; 3],
    /// The command's argument: the C union (`pad[128]`), kept as raw 8-byte-aligned storage.
    pub u: [u64; 16],
}

impl XenDomctl {
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

impl_pod!(XenArchDomainconfig, XenDomctlGetdomaininfo, XenDomctl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        #[cfg(target_arch = "x86_64")]
        assert_layout!(
            XenArchDomainconfig,
            size = 8,
            align = 4,
            emulation_flags = 0,
            misc_flags = 4
        );
        #[cfg(target_arch = "x86_64")]
        assert_layout!(
            XenDomctlGetdomaininfo,
            size = 112,
            align = 8,
            arch_config = 104
        );
        #[cfg(target_arch = "aarch64")]
        assert_layout!(
            XenArchDomainconfig,
            size = 12,
            align = 4,
            gic_version = 0,
            sve_vl = 1,
            tee_type = 2,
            nr_spis = 4,
            clock_frequency = 8
        );
        #[cfg(target_arch = "aarch64")]
        assert_layout!(
            XenDomctlGetdomaininfo,
            size = 120,
            align = 8,
            arch_config = 104
        );
        assert_layout!(
            XenDomctlGetdomaininfo,
            size = std::mem::size_of::<XenDomctlGetdomaininfo>(),
            align = 8,
            domain = 0,
            pad1 = 2,
            flags = 4,
            tot_pages = 8,
            max_pages = 16,
            outstanding_pages = 24,
            shr_pages = 32,
            paged_pages = 40,
            shared_info_frame = 48,
            cpu_time = 56,
            nr_online_vcpus = 64,
            max_vcpu_id = 68,
            ssidref = 72,
            handle = 76,
            cpupool = 92,
            gpaddr_bits = 96,
            pad2 = 97
        );
        assert_layout!(
            XenDomctl,
            size = 144,
            align = 8,
            cmd = 0,
            interface_version = 4,
            domain = 8,
            _pad = 10,
            u = 16
        );
    }

    #[test]
    fn versions() {
        assert_eq!(domctl_interface_version(4, 17), Some(0x15));
        assert_eq!(domctl_interface_version(4, 18), Some(0x16));
        assert_eq!(domctl_interface_version(4, 19), Some(0x17));
        assert_eq!(domctl_interface_version(4, 20), Some(0x17));
        assert_eq!(domctl_interface_version(4, 16), None);
    }

    #[test]
    fn shutdown_code() {
        let info = XenDomctlGetdomaininfo {
            flags: XEN_DOMINF_SHUTDOWN | (3 << 16),
            ..Default::default()
        };
        assert_eq!(info.shutdown_code(), 3);
    }
}
