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

use super::DomainHandle;
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
/// `XEN_DOMCTL_max_mem`: the domain's memory limit (argument [`XenDomctlMaxMem`]).
pub const XEN_DOMCTL_MAX_MEM: u32 = 11;
/// `XEN_DOMCTL_setvcpucontext`: loads a vCPU's register state ([`XenDomctlVcpucontext`]; on Arm
/// the context is [`super::arch_arm::VcpuGuestContext`]).
pub const XEN_DOMCTL_SETVCPUCONTEXT: u32 = 12;
/// `XEN_DOMCTL_getvcpucontext`: reads a vCPU's register state into the buffer of a
/// [`XenDomctlVcpucontext`] (`ENODATA` for a vCPU that never had a state loaded).
pub const XEN_DOMCTL_GETVCPUCONTEXT: u32 = 13;
/// `XEN_DOMCTL_max_vcpus`: allocates the vCPUs (argument [`XenDomctlMaxVcpus`], the count given
/// to createdomain). Still required through Xen 4.20: until it runs the domain has no vCPUs, and
/// Xen 4.17 crashes on `gethvmcontext` for such a domain.
pub const XEN_DOMCTL_MAX_VCPUS: u32 = 15;
/// `XEN_DOMCTL_gethvmcontext`: an HVM domain's save records ([`XenDomctlHvmcontext`]).
pub const XEN_DOMCTL_GETHVMCONTEXT: u32 = 33;
/// `XEN_DOMCTL_sethvmcontext`: loads save records into an HVM domain ([`XenDomctlHvmcontext`]).
pub const XEN_DOMCTL_SETHVMCONTEXT: u32 = 34;
/// `XEN_DOMCTL_set_address_size`: on arm64, whether the guest is AArch64 (64) or AArch32 (32,
/// what a new domain is) ([`XenDomctlAddressSize`]).
pub const XEN_DOMCTL_SET_ADDRESS_SIZE: u32 = 35;
/// `XEN_DOMCTL_cacheflush` (Arm): cleans and invalidates the data cache over guest frames
/// ([`XenDomctlCacheflush`]), so that a guest starting with its MMU off sees what the
/// toolstack wrote through cacheable mappings.
pub const XEN_DOMCTL_CACHEFLUSH: u32 = 71;
/// `XEN_DOMCTL_vuart_op` (Arm): sets up a virtual UART ([`XenDomctlVuartOp`]).
pub const XEN_DOMCTL_VUART_OP: u32 = 81;
/// `XEN_DOMCTL_VUART_OP_INIT`: the only [`XenDomctlVuartOp`] command.
pub const XEN_DOMCTL_VUART_OP_INIT: u32 = 0;
/// `XEN_DOMCTL_VUART_TYPE_VPL011`: an SBSA UART (the only type).
pub const XEN_DOMCTL_VUART_TYPE_VPL011: u32 = 0;
/// `XEN_DOMCTL_set_paging_mempool_size` (Xen 4.17+): HAP/shadow pool ([`XenDomctlPagingMempool`]).
pub const XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE: u32 = 86;

/// `XEN_DOMCTL_CDF_hvm`: an HVM (or PVH) guest, not a PV one.
pub const XEN_DOMCTL_CDF_HVM: u32 = 1 << 0;
/// `XEN_DOMCTL_CDF_hap`: use hardware-assisted paging.
pub const XEN_DOMCTL_CDF_HAP: u32 = 1 << 1;
/// `XEN_DOMCTL_CDF_s3_integrity`.
pub const XEN_DOMCTL_CDF_S3_INTEGRITY: u32 = 1 << 2;
/// `XEN_DOMCTL_CDF_oos_off`.
pub const XEN_DOMCTL_CDF_OOS_OFF: u32 = 1 << 3;
/// `XEN_DOMCTL_CDF_xs_domain`: a xenstore domain.
pub const XEN_DOMCTL_CDF_XS_DOMAIN: u32 = 1 << 4;
/// `XEN_DOMCTL_CDF_iommu`: may use the IOMMU.
pub const XEN_DOMCTL_CDF_IOMMU: u32 = 1 << 5;
/// `XEN_DOMCTL_CDF_nested_virt`.
pub const XEN_DOMCTL_CDF_NESTED_VIRT: u32 = 1 << 6;
/// `XEN_DOMCTL_CDF_vpmu`.
pub const XEN_DOMCTL_CDF_VPMU: u32 = 1 << 7;

/// `XEN_DOMCTL_GRANT_version(v)`: the grant-table version in `grant_opts`.
pub const fn xen_domctl_grant_version(v: u32) -> u32 {
    v & 0xf
}

/// `XEN_X86_EMU_LAPIC`: Xen emulates the local APIC (the only device a PVH guest gets).
pub const XEN_X86_EMU_LAPIC: u32 = 1 << 0;
/// `XEN_X86_EMU_HPET`.
pub const XEN_X86_EMU_HPET: u32 = 1 << 1;
/// `XEN_X86_EMU_PM`.
pub const XEN_X86_EMU_PM: u32 = 1 << 2;
/// `XEN_X86_EMU_RTC`.
pub const XEN_X86_EMU_RTC: u32 = 1 << 3;
/// `XEN_X86_EMU_IOAPIC`.
pub const XEN_X86_EMU_IOAPIC: u32 = 1 << 4;
/// `XEN_X86_EMU_PIC`.
pub const XEN_X86_EMU_PIC: u32 = 1 << 5;
/// `XEN_X86_EMU_VGA`.
pub const XEN_X86_EMU_VGA: u32 = 1 << 6;
/// `XEN_X86_EMU_IOMMU`.
pub const XEN_X86_EMU_IOMMU: u32 = 1 << 7;
/// `XEN_X86_EMU_PIT`.
pub const XEN_X86_EMU_PIT: u32 = 1 << 8;
/// `XEN_X86_EMU_USE_PIRQ`.
pub const XEN_X86_EMU_USE_PIRQ: u32 = 1 << 9;
/// `XEN_X86_EMU_VPCI`.
pub const XEN_X86_EMU_VPCI: u32 = 1 << 10;

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
    pub domain: u16,
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
    pub domain: u16,
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

/// `struct xen_domctl_createdomain` of Xen 4.17 and 4.18 (domctl interface 0x15, 0x16).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlCreatedomainV15 {
    /// IN: security reference.
    pub ssidref: u32,
    /// IN: the domain's UUID.
    pub handle: DomainHandle,
    /// IN: `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    /// IN: `XEN_DOMCTL_IOMMU_*`.
    pub iommu_opts: u32,
    /// IN: number of vCPUs.
    pub max_vcpus: u32,
    /// IN: highest event-channel port.
    pub max_evtchn_port: u32,
    /// IN: grant-table frames (< 0: Xen's default).
    pub max_grant_frames: i32,
    /// IN: maptrack frames (< 0: Xen's default).
    pub max_maptrack_frames: i32,
    /// IN: grant-table version in the low 4 bits ([`xen_domctl_grant_version`]).
    pub grant_opts: u32,
    /// IN: per-vCPU trace buffer size in bytes (0: none).
    pub vmtrace_size: u32,
    /// IN: CPU pool (0: the default pool).
    pub cpupool_id: u32,
    /// IN: architecture configuration.
    pub arch: XenArchDomainconfig,
}

/// `struct xen_domctl_createdomain` of Xen 4.19 and 4.20 (domctl interface 0x17): 4.19 added
/// `altp2m_opts` before `vmtrace_size`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlCreatedomainV17 {
    /// IN: security reference.
    pub ssidref: u32,
    /// IN: the domain's UUID.
    pub handle: DomainHandle,
    /// IN: `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    /// IN: `XEN_DOMCTL_IOMMU_*`.
    pub iommu_opts: u32,
    /// IN: number of vCPUs.
    pub max_vcpus: u32,
    /// IN: highest event-channel port.
    pub max_evtchn_port: u32,
    /// IN: grant-table frames (< 0: Xen's default).
    pub max_grant_frames: i32,
    /// IN: maptrack frames (< 0: Xen's default).
    pub max_maptrack_frames: i32,
    /// IN: grant-table version in the low 4 bits ([`xen_domctl_grant_version`]).
    pub grant_opts: u32,
    /// IN: `XEN_DOMCTL_ALTP2M_*` mode (0: altp2m off).
    pub altp2m_opts: u32,
    /// IN: per-vCPU trace buffer size in bytes (0: none).
    pub vmtrace_size: u32,
    /// IN: CPU pool (0: the default pool).
    pub cpupool_id: u32,
    /// IN: architecture configuration.
    pub arch: XenArchDomainconfig,
}

/// `struct xen_domctl_max_mem`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlMaxMem {
    /// IN: the limit in KiB.
    pub max_memkb: u64,
}

/// `struct xen_domctl_max_vcpus`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlMaxVcpus {
    /// IN: the number of vCPUs (must equal createdomain's `max_vcpus`).
    pub max: u32,
}

/// `struct xen_domctl_hvmcontext`: get (a null buffer asks for the size) or set the save
/// records of an HVM domain.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlHvmcontext {
    /// IN/OUT: buffer size / bytes filled.
    pub size: u32,
    /// Padding (implicit in C: the handle is 8-byte aligned).
    pub _pad: u32,
    /// IN: the buffer (`XEN_GUEST_HANDLE_64(uint8)`), or 0.
    pub buffer: u64,
}

/// `struct xen_domctl_vcpucontext`: the argument of [`XEN_DOMCTL_SETVCPUCONTEXT`] and
/// [`XEN_DOMCTL_GETVCPUCONTEXT`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlVcpucontext {
    /// IN: the vCPU.
    pub vcpu: u32,
    /// Padding (implicit in C: the handle is 8-byte aligned).
    pub _pad: u32,
    /// IN: the context (`XEN_GUEST_HANDLE_64(vcpu_guest_context_t)`).
    pub ctxt: u64,
}

/// `struct xen_domctl_address_size`: the argument of [`XEN_DOMCTL_SET_ADDRESS_SIZE`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlAddressSize {
    /// IN: 32 or 64.
    pub size: u32,
}

/// `struct xen_domctl_cacheflush`: the argument of [`XEN_DOMCTL_CACHEFLUSH`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlCacheflush {
    /// IN: the first guest frame.
    pub start_pfn: u64,
    /// IN: how many frames.
    pub nr_pfns: u64,
}

/// `struct xen_domctl_vuart_op`: the argument of [`XEN_DOMCTL_VUART_OP`]. Xen emulates the
/// UART and moves its bytes through a console ring (`struct xencons_interface`) in guest
/// frame `gfn`, signalled through an event channel to `console_domid`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlVuartOp {
    /// IN: [`XEN_DOMCTL_VUART_OP_INIT`].
    pub cmd: u32,
    /// IN: [`XEN_DOMCTL_VUART_TYPE_VPL011`].
    pub vuart_type: u32,
    /// IN: the ring's guest frame.
    pub gfn: u64,
    /// IN: the domain that serves the ring.
    pub console_domid: u16,
    /// Padding.
    pub pad: [u8; 2],
    /// OUT: the guest's end of the ring's event channel, for `console_domid` to bind.
    pub evtchn: u32,
}

/// `struct xen_domctl_paging_mempool`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenDomctlPagingMempool {
    /// IN: pool size in bytes.
    pub size: u64,
}

impl_pod!(
    XenArchDomainconfig,
    XenDomctlGetdomaininfo,
    XenDomctl,
    XenDomctlCreatedomainV15,
    XenDomctlCreatedomainV17,
    XenDomctlMaxMem,
    XenDomctlMaxVcpus,
    XenDomctlHvmcontext,
    XenDomctlVcpucontext,
    XenDomctlAddressSize,
    XenDomctlCacheflush,
    XenDomctlVuartOp,
    XenDomctlPagingMempool
);

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
    #[cfg(target_arch = "x86_64")]
    fn createdomain_layouts() {
        // domctl.h of 4.17/4.18 (no altp2m_opts) and of 4.19/4.20.
        assert_layout!(
            XenDomctlCreatedomainV15,
            size = 64,
            align = 4,
            ssidref = 0,
            handle = 4,
            flags = 20,
            iommu_opts = 24,
            max_vcpus = 28,
            max_evtchn_port = 32,
            max_grant_frames = 36,
            max_maptrack_frames = 40,
            grant_opts = 44,
            vmtrace_size = 48,
            cpupool_id = 52,
            arch = 56
        );
        assert_layout!(
            XenDomctlCreatedomainV17,
            size = 68,
            align = 4,
            grant_opts = 44,
            altp2m_opts = 48,
            vmtrace_size = 52,
            cpupool_id = 56,
            arch = 60
        );
    }

    #[test]
    #[cfg(target_arch = "aarch64")]
    fn createdomain_layouts_arm() {
        // domctl.h of 4.17/4.18 and of 4.19/4.20 on arm64: the 12-byte Arm arch config at the
        // end, 4-byte aligned.
        assert_layout!(
            XenDomctlCreatedomainV15,
            size = 68,
            align = 4,
            max_vcpus = 28,
            grant_opts = 44,
            cpupool_id = 52,
            arch = 56
        );
        assert_layout!(
            XenDomctlCreatedomainV17,
            size = 72,
            align = 4,
            altp2m_opts = 48,
            cpupool_id = 56,
            arch = 60
        );
    }

    #[test]
    fn vcpu_context_and_address_size_layouts() {
        assert_layout!(
            XenDomctlVcpucontext,
            size = 16,
            align = 8,
            vcpu = 0,
            ctxt = 8
        );
        assert_layout!(XenDomctlAddressSize, size = 4, align = 4, size = 0);
        assert_layout!(
            XenDomctlCacheflush,
            size = 16,
            align = 8,
            start_pfn = 0,
            nr_pfns = 8
        );
        assert_eq!(
            [
                XEN_DOMCTL_SETVCPUCONTEXT,
                XEN_DOMCTL_GETVCPUCONTEXT,
                XEN_DOMCTL_SET_ADDRESS_SIZE,
                XEN_DOMCTL_CACHEFLUSH
            ],
            [12, 13, 35, 71]
        );
    }

    #[test]
    fn vuart_op_layout() {
        assert_layout!(
            XenDomctlVuartOp,
            size = 24,
            align = 8,
            cmd = 0,
            vuart_type = 4,
            gfn = 8,
            console_domid = 16,
            pad = 18,
            evtchn = 20
        );
        assert_eq!(
            (
                XEN_DOMCTL_VUART_OP,
                XEN_DOMCTL_VUART_OP_INIT,
                XEN_DOMCTL_VUART_TYPE_VPL011
            ),
            (81, 0, 0)
        );
    }

    #[test]
    fn build_layouts() {
        assert_layout!(XenDomctlMaxMem, size = 8, align = 8, max_memkb = 0);
        assert_layout!(XenDomctlMaxVcpus, size = 4, align = 4, max = 0);
        assert_eq!(XEN_DOMCTL_MAX_VCPUS, 15);
        assert_layout!(
            XenDomctlHvmcontext,
            size = 16,
            align = 8,
            size = 0,
            buffer = 8
        );
        assert_layout!(XenDomctlPagingMempool, size = 8, align = 8, size = 0);
        assert_eq!(
            [
                XEN_DOMCTL_MAX_MEM,
                XEN_DOMCTL_GETHVMCONTEXT,
                XEN_DOMCTL_SETHVMCONTEXT,
                XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE
            ],
            [11, 33, 34, 86]
        );
        assert_eq!(XEN_DOMCTL_CDF_HVM | XEN_DOMCTL_CDF_HAP, 3);
        assert_eq!(XEN_X86_EMU_LAPIC, 1);
        assert_eq!(XEN_X86_EMU_VPCI, 0x400);
        assert_eq!(xen_domctl_grant_version(1), 1);
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
