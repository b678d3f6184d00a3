// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Typed host and domain information: Xen version, physical info, the domain list.
//!
//! domctl and sysctl are versioned interfaces: Xen answers `EACCES` to any version but its
//! own. The version is picked from what `xen_version` reports and, if that Xen is unknown or
//! refuses it, found by probing the versions this crate knows. The result is cached per
//! [`Privcmd`].

use bitflags::bitflags;

use super::{Error, Privcmd, Result};
use crate::abi::xen::domctl::*;
use crate::abi::xen::hypercall;
use crate::abi::xen::sysctl::*;
use crate::abi::xen::version::*;
use crate::abi::xen::{DomainHandle, XEN_PAGE_SIZE};
use crate::abi::Pod;
use crate::sys::Sys;
use crate::DomId;

/// The hypervisor's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XenVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Extra version string, e.g. `.7` or `-rc`.
    pub extra: String,
}

impl std::fmt::Display for XenVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}{}", self.major, self.minor, self.extra)
    }
}

bitflags! {
    /// What the host can run and offer (`XEN_SYSCTL_PHYSCAP_*`, sysctl physinfo).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PhysCaps: u32 {
        /// HVM (and PVH) guests.
        const HVM = XEN_SYSCTL_PHYSCAP_HVM;
        /// PV guests.
        const PV = XEN_SYSCTL_PHYSCAP_PV;
        /// Device pass-through.
        const DIRECTIO = XEN_SYSCTL_PHYSCAP_DIRECTIO;
        /// Hardware-assisted paging.
        const HAP = XEN_SYSCTL_PHYSCAP_HAP;
        /// Shadow paging.
        const SHADOW = XEN_SYSCTL_PHYSCAP_SHADOW;
        /// The IOMMU can share the HAP page tables.
        const IOMMU_HAP_PT_SHARE = XEN_SYSCTL_PHYSCAP_IOMMU_HAP_PT_SHARE;
        /// Processor tracing of guests.
        const VMTRACE = XEN_SYSCTL_PHYSCAP_VMTRACE;
        /// Virtual performance counters.
        const VPMU = XEN_SYSCTL_PHYSCAP_VPMU;
        /// Grant table v1.
        const GNTTAB_V1 = XEN_SYSCTL_PHYSCAP_GNTTAB_V1;
        /// Grant table v2.
        const GNTTAB_V2 = XEN_SYSCTL_PHYSCAP_GNTTAB_V2;
    }
}

bitflags! {
    /// The state and kind of a domain (`XEN_DOMINF_*`, domctl getdomaininfo), without the
    /// shutdown code Xen packs into the same word (see [`DomainInfo::shutdown_code`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DomainFlags: u32 {
        /// Being destroyed.
        const DYING = XEN_DOMINF_DYING;
        /// An HVM or PVH guest.
        const HVM_GUEST = XEN_DOMINF_HVM_GUEST;
        /// Shut down; [`DomainInfo::shutdown_code`] says why.
        const SHUTDOWN = XEN_DOMINF_SHUTDOWN;
        /// Paused by the toolstack.
        const PAUSED = XEN_DOMINF_PAUSED;
        /// Blocked waiting for an event.
        const BLOCKED = XEN_DOMINF_BLOCKED;
        /// Running on a CPU now.
        const RUNNING = XEN_DOMINF_RUNNING;
        /// Being debugged.
        const DEBUGGED = XEN_DOMINF_DEBUGGED;
        /// The xenstore domain.
        const XS_DOMAIN = XEN_DOMINF_XS_DOMAIN;
        /// Uses hardware-assisted paging.
        const HAP = XEN_DOMINF_HAP;
    }
}

/// Physical host information (sysctl physinfo), sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysInfo {
    /// CPUs online.
    pub nr_cpus: u32,
    /// Threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// Total memory in bytes.
    pub total_memory: u64,
    /// Free memory in bytes.
    pub free_memory: u64,
    /// What the host can run and offer.
    pub capabilities: PhysCaps,
}

impl PhysInfo {
    /// Capability names like `xl info`'s `virt_caps` (e.g. `pv hvm hap gnttab-v1`).
    pub fn virt_caps(&self) -> Vec<&'static str> {
        // xl's names and order, not the constants' (`gnttab-v1`, `pv` first).
        const NAMES: [(PhysCaps, &str); 10] = [
            (PhysCaps::PV, "pv"),
            (PhysCaps::HVM, "hvm"),
            (PhysCaps::DIRECTIO, "directio"),
            (PhysCaps::HAP, "hap"),
            (PhysCaps::SHADOW, "shadow"),
            (PhysCaps::IOMMU_HAP_PT_SHARE, "iommu_hap_pt_share"),
            (PhysCaps::VMTRACE, "vmtrace"),
            (PhysCaps::VPMU, "vpmu"),
            (PhysCaps::GNTTAB_V1, "gnttab-v1"),
            (PhysCaps::GNTTAB_V2, "gnttab-v2"),
        ];
        NAMES
            .iter()
            .filter(|(cap, _)| self.capabilities.contains(*cap))
            .map(|(_, n)| *n)
            .collect()
    }
}

/// One domain, as getdomaininfo reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// Domain id.
    pub domid: DomId,
    /// State and kind.
    pub flags: DomainFlags,
    /// Why the domain shut down (`SHUTDOWN_*` of Xen's `sched.h`: 0 poweroff, 1 reboot,
    /// 2 suspend, 3 crash, 4 watchdog, 5 soft reset); meaningful with
    /// [`DomainFlags::SHUTDOWN`].
    pub shutdown_code: u32,
    /// Memory currently owned, in bytes: RAM and the special pages (console, xenstore,
    /// IOREQ...) alike, so more than the guest's RAM; that is
    /// [`Xenstore::domain_ram_bytes`](crate::xenstore::Xenstore::domain_ram_bytes), laid out
    /// as [`crate::layout`] says.
    pub memory: u64,
    /// Memory limit, in bytes (`u64::MAX` pages = unlimited saturates).
    pub max_memory: u64,
    /// vCPUs online.
    pub online_vcpus: u32,
    /// Highest vCPU id, if any.
    pub max_vcpu_id: Option<u32>,
    /// CPU time used, in ns.
    pub cpu_time_ns: u64,
    /// The domain's UUID.
    pub handle: DomainHandle,
    /// CPU pool.
    pub cpupool: u32,
    /// Width of the domain's guest-physical addresses in bits (on Arm its stage-2 size,
    /// which bounds the extended regions a toolstack offers it).
    pub gpaddr_bits: u8,
}

/// `SHUTDOWN_crash`: the shutdown code of a crashed domain.
const SHUTDOWN_CRASH: u32 = 3;

impl DomainInfo {
    fn from_raw(r: &XenDomctlGetdomaininfo) -> Self {
        let pages = |p: u64| p.saturating_mul(XEN_PAGE_SIZE as u64);
        Self {
            domid: DomId::new(r.domain),
            flags: DomainFlags::from_bits_truncate(r.flags),
            shutdown_code: r.shutdown_code(),
            memory: pages(r.tot_pages),
            max_memory: pages(r.max_pages),
            online_vcpus: r.nr_online_vcpus,
            max_vcpu_id: (r.max_vcpu_id != XEN_INVALID_MAX_VCPU_ID).then_some(r.max_vcpu_id),
            cpu_time_ns: r.cpu_time,
            handle: r.handle,
            cpupool: r.cpupool,
            gpaddr_bits: r.gpaddr_bits,
        }
    }

    fn flag(&self, f: DomainFlags) -> bool {
        self.flags.contains(f)
    }
    /// Running on a CPU now.
    pub fn running(&self) -> bool {
        self.flag(DomainFlags::RUNNING)
    }
    /// Blocked waiting for an event.
    pub fn blocked(&self) -> bool {
        self.flag(DomainFlags::BLOCKED)
    }
    /// Paused by the toolstack.
    pub fn paused(&self) -> bool {
        self.flag(DomainFlags::PAUSED)
    }
    /// Shut down (for a reason other than a crash).
    pub fn shutdown(&self) -> bool {
        self.flag(DomainFlags::SHUTDOWN) && self.shutdown_code != SHUTDOWN_CRASH
    }
    /// Crashed.
    pub fn crashed(&self) -> bool {
        self.flag(DomainFlags::SHUTDOWN) && self.shutdown_code == SHUTDOWN_CRASH
    }
    /// Being destroyed.
    pub fn dying(&self) -> bool {
        self.flag(DomainFlags::DYING)
    }
    /// HVM or PVH guest.
    pub fn hvm(&self) -> bool {
        self.flag(DomainFlags::HVM_GUEST)
    }
    /// The six-letter state `xl list` prints (`r`unning, `b`locked, `p`aused, `s`hutdown,
    /// `c`rashed, `d`ying; `-` when not).
    pub fn state_string(&self) -> String {
        [
            (self.running(), 'r'),
            (self.blocked(), 'b'),
            (self.paused(), 'p'),
            (self.shutdown(), 's'),
            (self.crashed(), 'c'),
            (self.dying(), 'd'),
        ]
        .iter()
        .map(|&(on, c)| if on { c } else { '-' })
        .collect()
    }
}

/// Turns a NUL-terminated byte buffer into a string (lossy).
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl<S: Sys> Privcmd<S> {
    /// Gives this vCPU's physical CPU to whatever else Xen has to run there, then returns
    /// (`SCHEDOP_yield`): a device model that polls for requests lets the guest vCPU that
    /// will make the next one run, instead of spinning. Refused (`EPERM`) on a descriptor
    /// restricted to one domain.
    pub fn yield_vcpu(&self) -> Result<()> {
        // SAFETY: SCHEDOP_yield takes no argument and writes nothing.
        unsafe { self.hypercall(hypercall::SCHED_OP, [hypercall::SCHEDOP_YIELD, 0, 0, 0, 0]) }
            .map(drop)
    }

    /// The hypervisor's version (`xen_version` XENVER_version and XENVER_extraversion).
    pub fn xen_version(&self) -> Result<XenVersion> {
        // SAFETY: XENVER_version takes no buffer; the second argument is ignored (0).
        let ret = unsafe { self.hypercall(hypercall::XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0]) }?;
        let (major, minor) = split_version(ret as u32);
        let mut extra: XenExtraversion = [0; 16];
        // SAFETY: XENVER_extraversion writes a 16-byte xen_extraversion_t.
        unsafe { self.hypercall_with(hypercall::XEN_VERSION, XENVER_EXTRAVERSION, &mut extra) }?;
        Ok(XenVersion {
            major,
            minor,
            extra: c_string(&extra),
        })
    }

    /// The hypervisor's capability string (e.g. `xen-3.0-x86_64 hvm-3.0-x86_32 ...`).
    pub fn xen_capabilities(&self) -> Result<String> {
        let mut caps: XenCapabilitiesInfo = [0; 1024];
        // SAFETY: XENVER_capabilities writes a 1024-byte xen_capabilities_info_t.
        unsafe { self.hypercall_with(hypercall::XEN_VERSION, XENVER_CAPABILITIES, &mut caps) }?;
        Ok(c_string(&caps))
    }

    /// Finds the interface version Xen accepts: the one of its release first, then the others
    /// this crate knows; `EACCES` means "not this version".
    fn probe_version(
        &self,
        interface: &'static str,
        preferred: Option<u32>,
        known: &[u32],
        try_one: impl Fn(u32) -> Result<()>,
    ) -> Result<u32> {
        let mut candidates: Vec<u32> = preferred.into_iter().collect();
        candidates.extend(known.iter().copied().filter(|v| Some(*v) != preferred));
        for &v in &candidates {
            match try_one(v) {
                Ok(()) => return Ok(v),
                Err(e) if e.errno() == Some(libc::EACCES) => continue,
                Err(e) => return Err(e),
            }
        }
        let (major, minor) = self
            .xen_version()
            .map(|v| (v.major, v.minor))
            .unwrap_or((0, 0));
        Err(Error::InterfaceVersion {
            interface,
            major,
            minor,
            tried: candidates,
        })
    }

    fn release(&self) -> Option<(u16, u16)> {
        self.xen_version().ok().map(|v| (v.major, v.minor))
    }

    /// The domctl interface version of the running Xen (cached).
    pub fn domctl_version(&self) -> Result<u32> {
        if let Some(v) = self.domctl_version.get() {
            return Ok(*v);
        }
        let preferred = self
            .release()
            .and_then(|(a, b)| domctl_interface_version(a, b));
        let v = self.probe_version("domctl", preferred, &KNOWN_DOMCTL_INTERFACE_VERSIONS, |v| {
            self.getdomaininfo_raw(v, DomId::DOM0).map(|_| ())
        })?;
        Ok(*self.domctl_version.get_or_init(|| v))
    }

    /// The sysctl interface version of the running Xen (cached).
    pub fn sysctl_version(&self) -> Result<u32> {
        if let Some(v) = self.sysctl_version.get() {
            return Ok(*v);
        }
        let preferred = self
            .release()
            .and_then(|(a, b)| sysctl_interface_version(a, b));
        let v = self.probe_version("sysctl", preferred, &KNOWN_SYSCTL_INTERFACE_VERSIONS, |v| {
            self.physinfo_raw(v).map(|_| ())
        })?;
        Ok(*self.sysctl_version.get_or_init(|| v))
    }

    fn physinfo_raw(&self, version: u32) -> Result<XenSysctlPhysinfo> {
        let mut op =
            XenSysctl::with_arg(XEN_SYSCTL_PHYSINFO, version, &XenSysctlPhysinfo::zeroed());
        let mut buf = self.hypercall_buffer(std::mem::size_of::<XenSysctl>())?;
        buf.write_at(0, &op);
        // SAFETY: the sysctl hypercall takes one address, a `struct xen_sysctl` in the buffer.
        unsafe { self.hypercall(hypercall::SYSCTL, [buf.addr(), 0, 0, 0, 0]) }?;
        op = buf.read_at(0);
        Ok(op.arg())
    }

    /// Physical host information (`sysctl` physinfo).
    pub fn physinfo(&self) -> Result<PhysInfo> {
        let r = self.physinfo_raw(self.sysctl_version()?)?;
        let bytes = |p: u64| p.saturating_mul(XEN_PAGE_SIZE as u64);
        Ok(PhysInfo {
            nr_cpus: r.nr_cpus,
            threads_per_core: r.threads_per_core,
            cores_per_socket: r.cores_per_socket,
            nr_nodes: r.nr_nodes,
            cpu_khz: r.cpu_khz,
            total_memory: bytes(r.total_pages),
            free_memory: bytes(r.free_pages),
            capabilities: PhysCaps::from_bits_truncate(r.capabilities),
        })
    }

    fn getdomaininfo_raw(&self, version: u32, domid: DomId) -> Result<XenDomctlGetdomaininfo> {
        let mut op = XenDomctl::with_arg(
            XEN_DOMCTL_GETDOMAININFO,
            version,
            &XenDomctlGetdomaininfo::zeroed(),
        );
        op.domain = domid.get();
        let mut buf = self.hypercall_buffer(std::mem::size_of::<XenDomctl>())?;
        buf.write_at(0, &op);
        // SAFETY: the domctl hypercall takes one address, a `struct xen_domctl` in the buffer.
        unsafe { self.hypercall(hypercall::DOMCTL, [buf.addr(), 0, 0, 0, 0]) }?;
        op = buf.read_at(0);
        Ok(op.arg())
    }

    /// Information about domain `domid` (`domctl` getdomaininfo).
    ///
    /// Note that Xen reports the next existing domain when `domid` does not exist; this
    /// function returns `ESRCH` as an error in that case instead.
    pub fn domain_info(&self, domid: DomId) -> Result<DomainInfo> {
        let raw = self.getdomaininfo_raw(self.domctl_version()?, domid)?;
        if raw.domain != domid.get() {
            return Err(Error::OnDomain {
                op: "getdomaininfo",
                domid,
                source: std::io::Error::from_raw_os_error(libc::ESRCH),
            });
        }
        Ok(DomainInfo::from_raw(&raw))
    }

    /// Pauses domain `domid` (`domctl` pausedomain).
    pub fn pause_domain(&self, domid: DomId) -> Result<()> {
        self.simple_domctl(XEN_DOMCTL_PAUSEDOMAIN, domid)
    }

    /// Unpauses domain `domid` (`domctl` unpausedomain).
    pub fn unpause_domain(&self, domid: DomId) -> Result<()> {
        self.simple_domctl(XEN_DOMCTL_UNPAUSEDOMAIN, domid)
    }

    fn simple_domctl(&self, cmd: u32, domid: DomId) -> Result<()> {
        let mut op = XenDomctl::with_arg(cmd, self.domctl_version()?, &0u64);
        op.domain = domid.get();
        let mut buf = self.hypercall_buffer(std::mem::size_of::<XenDomctl>())?;
        buf.write_at(0, &op);
        // SAFETY: the domctl hypercall takes one address, a `struct xen_domctl` in the buffer.
        unsafe { self.hypercall(hypercall::DOMCTL, [buf.addr(), 0, 0, 0, 0]) }?;
        Ok(())
    }

    /// All domains, in id order (`sysctl` getdomaininfolist, in batches).
    pub fn domains(&self) -> Result<Vec<DomainInfo>> {
        const BATCH: u32 = 64;
        let version = self.sysctl_version()?;
        let entry = std::mem::size_of::<XenDomctlGetdomaininfo>();
        let list = self.hypercall_buffer(entry * BATCH as usize)?;
        let mut opbuf = self.hypercall_buffer(std::mem::size_of::<XenSysctl>())?;
        let mut out = Vec::new();
        let mut first = DomId::DOM0;
        loop {
            let arg = XenSysctlGetdomaininfolist {
                first_domain: first.get(),
                max_domains: BATCH,
                buffer: list.addr(),
                ..Default::default()
            };
            opbuf.write_at(
                0,
                &XenSysctl::with_arg(XEN_SYSCTL_GETDOMAININFOLIST, version, &arg),
            );
            // SAFETY: the sysctl reads the `xen_sysctl` in `opbuf` and writes at most
            // `max_domains` entries into `list`, which has room for them.
            unsafe { self.hypercall(hypercall::SYSCTL, [opbuf.addr(), 0, 0, 0, 0]) }?;
            let op: XenSysctl = opbuf.read_at(0);
            let n = op.arg::<XenSysctlGetdomaininfolist>().num_domains;
            if n > BATCH {
                return Err(Error::BadAnswer {
                    op: "getdomaininfolist",
                    what: format!("{n} domains for room of {BATCH}"),
                });
            }
            let mut last = None;
            for i in 0..n as usize {
                let raw: XenDomctlGetdomaininfo = list.read_at(i * entry);
                last = Some(raw.domain);
                out.push(DomainInfo::from_raw(&raw));
            }
            // The next batch starts after the last domain, unless that was the last real one
            // (or Xen answered an id the addition would wrap).
            match last.and_then(|d: u16| d.checked_add(1)).map(DomId::new) {
                Some(next) if n == BATCH && !next.is_reserved() => first = next,
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_flags_and_the_shutdown_code_come_apart() {
        // A crashed domain: XEN_DOMINF_SHUTDOWN with SHUTDOWN_crash (3) in bits 16..24.
        let raw = XenDomctlGetdomaininfo {
            domain: 4,
            flags: XEN_DOMINF_SHUTDOWN | XEN_DOMINF_HVM_GUEST | (3 << 16),
            ..Default::default()
        };
        let info = DomainInfo::from_raw(&raw);
        assert_eq!(info.flags, DomainFlags::SHUTDOWN | DomainFlags::HVM_GUEST);
        assert_eq!(info.shutdown_code, 3);
        assert!(info.crashed() && !info.shutdown() && info.hvm());
        assert_eq!(info.state_string(), "----c-");
    }

    #[test]
    fn host_capabilities_read_as_xl_names_them() {
        let info = PhysInfo {
            nr_cpus: 1,
            threads_per_core: 1,
            cores_per_socket: 1,
            nr_nodes: 1,
            cpu_khz: 0,
            total_memory: 0,
            free_memory: 0,
            capabilities: PhysCaps::from_bits_truncate(
                XEN_SYSCTL_PHYSCAP_HVM | XEN_SYSCTL_PHYSCAP_GNTTAB_V1 | (1 << 31),
            ),
        };
        assert_eq!(info.capabilities, PhysCaps::HVM | PhysCaps::GNTTAB_V1);
        assert_eq!(info.virt_caps(), ["hvm", "gnttab-v1"]);
    }
}
