// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Building a domain: `domctl` createdomain, max_mem, paging pool, HVM context and
//! destroydomain; `memory_op` populate_physmap; `event_channel_op` alloc_unbound.
//!
//! These are the hypercalls a toolstack makes to create a guest. The createdomain argument
//! changed layout in Xen 4.19 (`altp2m_opts`), so [`DomainConfig`] is encoded for the domctl
//! interface version the running hypervisor accepts.

use super::{Error, Privcmd, Result};
use crate::abi::xen::domctl::*;
use crate::abi::xen::event_channel::{EvtchnAllocUnbound, EVTCHNOP_ALLOC_UNBOUND};
use crate::abi::xen::memory::{XenMemoryReservation, XENMEM_POPULATE_PHYSMAP};
use crate::abi::xen::{hypercall, DomainHandle};
use crate::abi::Pod;
use crate::sys::Sys;
use crate::DomId;

/// What `XEN_DOMCTL_createdomain` is asked for, independent of the interface version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainConfig {
    /// The domain id wanted, or `None` to let Xen pick one (as it also does when asked for
    /// dom0's id or a reserved one).
    pub domid: Option<DomId>,
    /// The domain's UUID.
    pub handle: DomainHandle,
    /// `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    /// Number of vCPUs.
    pub max_vcpus: u32,
    /// Highest event-channel port.
    pub max_evtchn_port: u32,
    /// Grant-table frames (negative: Xen's default).
    pub max_grant_frames: i32,
    /// Maptrack frames (negative: Xen's default).
    pub max_maptrack_frames: i32,
    /// Grant-table version (1 or 2).
    pub grant_version: u32,
    /// Architecture configuration (on x86 the emulated devices, `XEN_X86_EMU_*`).
    pub arch: XenArchDomainconfig,
}

impl DomainConfig {
    /// The createdomain domctl for interface `version`.
    pub fn encode(&self, version: u32) -> XenDomctl {
        let grant_opts = xen_domctl_grant_version(self.grant_version);
        let mut op = if version >= XEN_DOMCTL_INTERFACE_VERSION_4_19 {
            XenDomctl::with_arg(
                XEN_DOMCTL_CREATEDOMAIN,
                version,
                &XenDomctlCreatedomainV17 {
                    handle: self.handle,
                    flags: self.flags,
                    max_vcpus: self.max_vcpus,
                    max_evtchn_port: self.max_evtchn_port,
                    max_grant_frames: self.max_grant_frames,
                    max_maptrack_frames: self.max_maptrack_frames,
                    grant_opts,
                    arch: self.arch,
                    ..Default::default()
                },
            )
        } else {
            XenDomctl::with_arg(
                XEN_DOMCTL_CREATEDOMAIN,
                version,
                &XenDomctlCreatedomainV15 {
                    handle: self.handle,
                    flags: self.flags,
                    max_vcpus: self.max_vcpus,
                    max_evtchn_port: self.max_evtchn_port,
                    max_grant_frames: self.max_grant_frames,
                    max_maptrack_frames: self.max_maptrack_frames,
                    grant_opts,
                    arch: self.arch,
                    ..Default::default()
                },
            )
        };
        // Xen picks an id when asked for 0.
        op.domain = self.domid.map_or(0, DomId::get);
        op
    }

    /// The architecture configuration in createdomain `op` of interface `version`, as Xen
    /// left it.
    pub fn decode_arch(op: &XenDomctl, version: u32) -> XenArchDomainconfig {
        if version >= XEN_DOMCTL_INTERFACE_VERSION_4_19 {
            op.arg::<XenDomctlCreatedomainV17>().arch
        } else {
            op.arg::<XenDomctlCreatedomainV15>().arch
        }
    }
}

impl<S: Sys> Privcmd<S> {
    /// Runs domctl `op` (its interface version already set) and returns it as Xen left it.
    fn run_domctl(&self, mut op: XenDomctl) -> Result<XenDomctl> {
        let mut buf = self.hypercall_buffer(std::mem::size_of::<XenDomctl>())?;
        buf.write_at(0, &op);
        let domid = op.domain;
        let cmd = op.cmd;
        // SAFETY: the domctl hypercall takes one address, a `struct xen_domctl` in the buffer;
        // callers put no address in the argument except where their docs say.
        unsafe { self.hypercall(hypercall::DOMCTL, [buf.addr(), 0, 0, 0, 0]) }.map_err(
            |e| match e {
                Error::Hypercall { source, .. } => Error::OnDomain {
                    op: domctl_name(cmd),
                    domid: DomId::new(domid),
                    source,
                },
                e => e,
            },
        )?;
        op = buf.read_at(0);
        Ok(op)
    }

    fn domctl_with<T: Pod>(&self, cmd: u32, domid: DomId, arg: &T) -> Result<XenDomctl> {
        let mut op = XenDomctl::with_arg(cmd, self.domctl_version()?, arg);
        op.domain = domid.get();
        self.run_domctl(op)
    }

    /// Creates a domain (`XEN_DOMCTL_createdomain`), paused, and returns its id.
    pub fn create_domain(&self, config: &DomainConfig) -> Result<DomId> {
        self.create_domain_with_arch(config).map(|(domid, _)| domid)
    }

    /// [`Self::create_domain`], also returning the architecture configuration as Xen wrote it
    /// back (on Arm the GIC version it picked for `XEN_DOMCTL_CONFIG_GIC_NATIVE`, and the
    /// timer's clock frequency).
    pub fn create_domain_with_arch(
        &self,
        config: &DomainConfig,
    ) -> Result<(DomId, XenArchDomainconfig)> {
        let version = self.domctl_version()?;
        let op = self.run_domctl(config.encode(version))?;
        Ok((
            DomId::new(op.domain),
            DomainConfig::decode_arch(&op, version),
        ))
    }

    /// Makes `domid` a guest of `bits`-bit addresses (`XEN_DOMCTL_set_address_size`): on
    /// arm64, 64 for an AArch64 guest (a new domain is AArch32). Its vCPUs must exist.
    pub fn set_address_size(&self, domid: DomId, bits: u32) -> Result<()> {
        let arg = XenDomctlAddressSize { size: bits };
        self.domctl_with(XEN_DOMCTL_SET_ADDRESS_SIZE, domid, &arg)
            .map(drop)
    }

    /// Cleans and invalidates the data cache over `count` guest frames of `domid` from `gfn`
    /// (`XEN_DOMCTL_cacheflush`, Arm), in batches Xen accepts.
    pub fn cache_flush(&self, domid: DomId, gfn: u64, count: u64) -> Result<()> {
        // Xen refuses a range above its largest allocation order; 256 MiB a call stays below.
        const BATCH: u64 = 1 << 16;
        let mut done = 0;
        while done < count {
            let arg = XenDomctlCacheflush {
                start_pfn: gfn + done,
                nr_pfns: (count - done).min(BATCH),
            };
            self.domctl_with(XEN_DOMCTL_CACHEFLUSH, domid, &arg)?;
            done += arg.nr_pfns;
        }
        Ok(())
    }

    /// Gives `domid` a virtual SBSA UART (vPL011, `XEN_DOMCTL_vuart_op`, Arm) whose bytes go
    /// through the console ring in its frame `gfn` (populated, zeroed), served by
    /// `console_domid`; returns the guest's end of the ring's event channel, for the server
    /// to bind.
    pub fn vuart_init(&self, domid: DomId, gfn: u64, console_domid: DomId) -> Result<u32> {
        let arg = XenDomctlVuartOp {
            cmd: XEN_DOMCTL_VUART_OP_INIT,
            vuart_type: XEN_DOMCTL_VUART_TYPE_VPL011,
            gfn,
            console_domid: console_domid.get(),
            ..Default::default()
        };
        let op = self.domctl_with(XEN_DOMCTL_VUART_OP, domid, &arg)?;
        Ok(op.arg::<XenDomctlVuartOp>().evtchn)
    }

    /// Loads vCPU `vcpu` of `domid` with `context` (`XEN_DOMCTL_setvcpucontext`), which must be
    /// the hypervisor's `vcpu_guest_context` (on Arm [`VcpuGuestContext`]).
    ///
    /// [`VcpuGuestContext`]: crate::abi::xen::arch_arm::VcpuGuestContext
    pub fn set_vcpu_context<T: Pod>(&self, domid: DomId, vcpu: u32, context: &T) -> Result<()> {
        let bytes = context.as_bytes();
        let mut buf = self.hypercall_buffer(bytes.len())?;
        buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
        let arg = XenDomctlVcpucontext {
            vcpu,
            _pad: 0,
            ctxt: buf.addr(),
        };
        // The buffer lives until the domctl returns.
        self.domctl_with(XEN_DOMCTL_SETVCPUCONTEXT, domid, &arg)
            .map(drop)
    }

    /// Reads vCPU `vcpu` of `domid` (`XEN_DOMCTL_getvcpucontext`) as `T`, which must be the
    /// hypervisor's `vcpu_guest_context` (on Arm [`VcpuGuestContext`]). Xen answers `ENODATA`
    /// for a vCPU that never had a state loaded.
    ///
    /// [`VcpuGuestContext`]: crate::abi::xen::arch_arm::VcpuGuestContext
    pub fn vcpu_context<T: Pod>(&self, domid: DomId, vcpu: u32) -> Result<T> {
        let size = std::mem::size_of::<T>();
        let buf = self.hypercall_buffer(size)?;
        let arg = XenDomctlVcpucontext {
            vcpu,
            _pad: 0,
            ctxt: buf.addr(),
        };
        self.domctl_with(XEN_DOMCTL_GETVCPUCONTEXT, domid, &arg)?;
        // The buffer holds at least `size` bytes; `from_bytes` cannot fail on them.
        T::from_bytes(&buf.as_slice()[..size]).ok_or_else(|| Error::InvalidArgument {
            op: "getvcpucontext",
            what: format!("a {size}-byte context"),
        })
    }

    /// Destroys a domain (`XEN_DOMCTL_destroydomain`), repeating while Xen asks to be called
    /// again (`EAGAIN`: it releases the memory in steps).
    pub fn destroy_domain(&self, domid: DomId) -> Result<()> {
        loop {
            match self.domctl_with(XEN_DOMCTL_DESTROYDOMAIN, domid, &0u64) {
                Err(e) if e.errno() == Some(libc::EAGAIN) => continue,
                r => return r.map(drop),
            }
        }
    }

    /// Allocates the `max` vCPUs of `domid` (`XEN_DOMCTL_max_vcpus`; `max` must be the count
    /// given to [`Self::create_domain`]).
    pub fn set_max_vcpus(&self, domid: DomId, max: u32) -> Result<()> {
        let arg = XenDomctlMaxVcpus { max };
        self.domctl_with(XEN_DOMCTL_MAX_VCPUS, domid, &arg)
            .map(drop)
    }

    /// Sets the memory limit of `domid` in KiB (`XEN_DOMCTL_max_mem`).
    pub fn set_max_mem(&self, domid: DomId, max_kib: u64) -> Result<()> {
        let arg = XenDomctlMaxMem { max_memkb: max_kib };
        self.domctl_with(XEN_DOMCTL_MAX_MEM, domid, &arg).map(drop)
    }

    /// Sets the size of the HAP/shadow pool of `domid` in bytes
    /// (`XEN_DOMCTL_set_paging_mempool_size`, Xen 4.17+).
    pub fn set_paging_mempool_size(&self, domid: DomId, bytes: u64) -> Result<()> {
        let arg = XenDomctlPagingMempool { size: bytes };
        self.domctl_with(XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE, domid, &arg)
            .map(drop)
    }

    /// Gives `domid` memory at the guest frames `gfns`, each the first of an extent of
    /// `1 << order` pages (`XENMEM_populate_physmap`); returns how many extents Xen populated
    /// (fewer than asked when it ran out of memory or hit the domain's limit).
    pub fn populate_physmap(&self, domid: DomId, order: u32, gfns: &[u64]) -> Result<usize> {
        if gfns.is_empty() {
            return Ok(0);
        }
        let bytes = std::mem::size_of_val(gfns);
        let mut list = self.hypercall_buffer(bytes)?;
        for (slot, gfn) in list.as_mut_slice()[..bytes].chunks_exact_mut(8).zip(gfns) {
            slot.copy_from_slice(&gfn.to_ne_bytes());
        }
        let mut res = XenMemoryReservation {
            extent_start: list.addr(),
            nr_extents: gfns.len() as u64,
            extent_order: order,
            mem_flags: 0,
            domid: domid.get(),
            _pad: [0; 3],
        };
        // SAFETY: XENMEM_populate_physmap reads one xen_memory_reservation whose extent list
        // is the hypercall buffer `list`, holding `nr_extents` frame numbers.
        let done =
            unsafe { self.hypercall_with(hypercall::MEMORY_OP, XENMEM_POPULATE_PHYSMAP, &mut res) }
                .map_err(|e| e.on_domain("XENMEM_populate_physmap", domid))?;
        usize::try_from(done).map_err(|_| Error::BadAnswer {
            op: "XENMEM_populate_physmap",
            what: format!("{done} extents"),
        })
    }

    /// The HVM save records of `domid` (`XEN_DOMCTL_gethvmcontext`): header, per-vCPU and
    /// platform records, end record.
    pub fn hvm_context(&self, domid: DomId) -> Result<Vec<u8>> {
        // A null buffer asks for the size.
        let op = self.domctl_with(
            XEN_DOMCTL_GETHVMCONTEXT,
            domid,
            &XenDomctlHvmcontext::default(),
        )?;
        let size = op.arg::<XenDomctlHvmcontext>().size as usize;
        let buf = self.hypercall_buffer(size)?;
        let arg = XenDomctlHvmcontext {
            size: size as u32,
            _pad: 0,
            buffer: buf.addr(),
        };
        let op = self.domctl_with(XEN_DOMCTL_GETHVMCONTEXT, domid, &arg)?;
        let filled = (op.arg::<XenDomctlHvmcontext>().size as usize).min(size);
        Ok(buf.as_slice()[..filled].to_vec())
    }

    /// Loads HVM save records into `domid` (`XEN_DOMCTL_sethvmcontext`).
    pub fn set_hvm_context(&self, domid: DomId, records: &[u8]) -> Result<()> {
        let size = u32::try_from(records.len()).map_err(|_| Error::InvalidArgument {
            op: "sethvmcontext",
            what: format!("{} bytes of records", records.len()),
        })?;
        let mut buf = self.hypercall_buffer(records.len())?;
        buf.as_mut_slice()[..records.len()].copy_from_slice(records);
        let arg = XenDomctlHvmcontext {
            size,
            _pad: 0,
            buffer: buf.addr(),
        };
        self.domctl_with(XEN_DOMCTL_SETHVMCONTEXT, domid, &arg)
            .map(drop)
    }

    /// Allocates an unbound event-channel port in `domid` that `remote` may bind
    /// (`EVTCHNOP_alloc_unbound`); returns the port.
    pub fn evtchn_alloc_unbound(&self, domid: DomId, remote: DomId) -> Result<u32> {
        let mut arg = EvtchnAllocUnbound {
            dom: domid.get(),
            remote_dom: remote.get(),
            port: 0,
        };
        // SAFETY: EVTCHNOP_alloc_unbound reads and writes one evtchn_alloc_unbound, which
        // holds no address.
        unsafe {
            self.hypercall_with(
                hypercall::EVENT_CHANNEL_OP,
                EVTCHNOP_ALLOC_UNBOUND,
                &mut arg,
            )
        }
        .map_err(|e| e.on_domain("EVTCHNOP_alloc_unbound", domid))?;
        Ok(arg.port)
    }
}

/// The name of a domctl command, for errors.
fn domctl_name(cmd: u32) -> &'static str {
    match cmd {
        XEN_DOMCTL_CREATEDOMAIN => "domctl createdomain",
        XEN_DOMCTL_DESTROYDOMAIN => "domctl destroydomain",
        XEN_DOMCTL_PAUSEDOMAIN => "domctl pausedomain",
        XEN_DOMCTL_UNPAUSEDOMAIN => "domctl unpausedomain",
        XEN_DOMCTL_GETDOMAININFO => "domctl getdomaininfo",
        XEN_DOMCTL_MAX_MEM => "domctl max_mem",
        XEN_DOMCTL_MAX_VCPUS => "domctl max_vcpus",
        XEN_DOMCTL_GETHVMCONTEXT => "domctl gethvmcontext",
        XEN_DOMCTL_SETHVMCONTEXT => "domctl sethvmcontext",
        XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE => "domctl set_paging_mempool_size",
        XEN_DOMCTL_SETVCPUCONTEXT => "domctl setvcpucontext",
        XEN_DOMCTL_GETVCPUCONTEXT => "domctl getvcpucontext",
        XEN_DOMCTL_SET_ADDRESS_SIZE => "domctl set_address_size",
        XEN_DOMCTL_CACHEFLUSH => "domctl cacheflush",
        XEN_DOMCTL_VUART_OP => "domctl vuart_op",
        _ => "domctl",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn createdomain_is_encoded_for_the_interface_version() {
        let cfg = DomainConfig {
            domid: None,
            flags: XEN_DOMCTL_CDF_HVM | XEN_DOMCTL_CDF_HAP,
            max_vcpus: 2,
            max_evtchn_port: 1023,
            max_grant_frames: 32,
            max_maptrack_frames: -1,
            grant_version: 1,
            ..Default::default()
        };
        let old = cfg.encode(XEN_DOMCTL_INTERFACE_VERSION_4_17);
        let v15: XenDomctlCreatedomainV15 = old.arg();
        assert_eq!(old.cmd, XEN_DOMCTL_CREATEDOMAIN);
        assert_eq!(old.interface_version, 0x15);
        assert_eq!((v15.flags, v15.max_vcpus, v15.grant_opts), (3, 2, 1));
        assert_eq!((v15.vmtrace_size, v15.cpupool_id), (0, 0));
        let new = cfg.encode(XEN_DOMCTL_INTERFACE_VERSION_4_20);
        let v17: XenDomctlCreatedomainV17 = new.arg();
        assert_eq!(new.interface_version, 0x17);
        assert_eq!((v17.max_grant_frames, v17.max_maptrack_frames), (32, -1));
        assert_eq!((v17.altp2m_opts, v17.vmtrace_size), (0, 0));
        assert_eq!(new.domain, 0, "no id wanted: Xen picks");
        let wanted = DomainConfig {
            domid: Some(DomId::new(5)),
            ..cfg
        };
        assert_eq!(wanted.encode(XEN_DOMCTL_INTERFACE_VERSION_4_20).domain, 5);
    }

    #[test]
    fn the_arch_config_xen_wrote_back_is_read_from_either_layout() {
        for version in [
            XEN_DOMCTL_INTERFACE_VERSION_4_17,
            XEN_DOMCTL_INTERFACE_VERSION_4_20,
        ] {
            let mut arch = XenArchDomainconfig::default();
            // A distinctive value in the arch config's first 4 bytes (Arm: the GIC version and
            // TEE type; x86: the emulation flags).
            arch.as_bytes_mut()[..4].copy_from_slice(&[2, 0, 0, 0]);
            let cfg = DomainConfig {
                arch,
                max_vcpus: 1,
                ..Default::default()
            };
            let op = cfg.encode(version);
            assert_eq!(
                DomainConfig::decode_arch(&op, version),
                arch,
                "{version:#x}"
            );
        }
    }
}
