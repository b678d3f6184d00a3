// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The builder's seam: every hypercall and xenstore request it makes goes through
//! [`DomainOps`], so that unit tests can run the whole build against a fake Xen and check what
//! happens when a step fails half-way. [`XenOps`] is the real implementation, over privcmd and
//! a xenstore connection.

use std::sync::Mutex;

use xen_bindings::abi::xen::arch_arm::VcpuGuestContext;
use xen_bindings::abi::xen::domctl::XenArchDomainconfig;
use xen_bindings::abi::xen::grant_table::{GrantEntryV1, GrantRef, GTF_PERMIT_ACCESS};
use xen_bindings::privcmd::{DomainConfig, ForeignMapping, Privcmd, Resource, ResourceMapping};
use xen_bindings::xenstore::{Permission, Xenstore};
use xen_bindings::DomId;

use crate::error::{Error, Result};

/// Guest pages mapped into this process, unmapped when dropped.
pub trait MappedPages: Send + Sync + std::fmt::Debug {
    /// The first byte.
    fn as_ptr(&self) -> *mut u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the mapping is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl MappedPages for ForeignMapping {
    fn as_ptr(&self) -> *mut u8 {
        ForeignMapping::as_ptr(self)
    }
    fn len(&self) -> usize {
        ForeignMapping::len(self)
    }
}

/// What the builder asks of Xen and xenstored.
pub trait DomainOps: Send + Sync {
    /// `XEN_DOMCTL_createdomain`: a new, paused domain, and its architecture configuration
    /// as Xen wrote it back (on Arm, the GIC version it picked).
    fn create_domain(&self, config: &DomainConfig) -> Result<(DomId, XenArchDomainconfig)>;
    /// `XEN_DOMCTL_destroydomain`.
    fn destroy_domain(&self, domid: DomId) -> Result<()>;
    /// `XEN_DOMCTL_max_vcpus`: allocates the vCPUs.
    fn set_max_vcpus(&self, domid: DomId, max: u32) -> Result<()>;
    /// `XEN_DOMCTL_set_address_size` (Arm: 64 for an AArch64 guest).
    fn set_address_size(&self, domid: DomId, bits: u32) -> Result<()>;
    /// `XEN_DOMCTL_setvcpucontext` with an Arm vCPU context.
    fn set_arm_vcpu_context(
        &self,
        domid: DomId,
        vcpu: u32,
        context: &VcpuGuestContext,
    ) -> Result<()>;
    /// `XENVER_version`: the running Xen's major and minor version.
    fn xen_version(&self) -> Result<(u16, u16)>;
    /// `XEN_DOMCTL_cacheflush` (Arm) over `count` frames from `gfn`.
    fn cache_flush(&self, domid: DomId, gfn: u64, count: u64) -> Result<()>;
    /// `XEN_DOMCTL_vuart_op` (Arm): a virtual SBSA UART whose ring is frame `gfn`, served by
    /// `backend`; the guest's end of its event channel.
    fn vuart_init(&self, domid: DomId, gfn: u64, backend: DomId) -> Result<u32>;
    /// `XEN_DOMCTL_max_mem`.
    fn set_max_mem(&self, domid: DomId, kib: u64) -> Result<()>;
    /// `XEN_DOMCTL_set_paging_mempool_size`.
    fn set_paging_mempool_size(&self, domid: DomId, bytes: u64) -> Result<()>;
    /// `XENMEM_populate_physmap`: how many extents were populated.
    fn populate_physmap(&self, domid: DomId, order: u32, gfns: &[u64]) -> Result<usize>;
    /// Maps guest frames `gfns` (contiguous in this process), all or an error.
    fn map_guest(&self, domid: DomId, gfns: &[u64]) -> Result<Box<dyn MappedPages>>;
    /// Fills reserved grant entries: each `(ref, backend, gfn)` grants `gfn` to `backend`.
    fn seed_grant_table(&self, domid: DomId, entries: &[(GrantRef, DomId, u64)]) -> Result<()>;
    /// `HVMOP_set_param`.
    fn set_hvm_param(&self, domid: DomId, index: u32, value: u64) -> Result<()>;
    /// `XEN_DOMCTL_gethvmcontext`.
    fn hvm_context(&self, domid: DomId) -> Result<Vec<u8>>;
    /// `XEN_DOMCTL_sethvmcontext`.
    fn set_hvm_context(&self, domid: DomId, records: &[u8]) -> Result<()>;
    /// `EVTCHNOP_alloc_unbound`.
    fn evtchn_alloc_unbound(&self, domid: DomId, remote: DomId) -> Result<u32>;
    /// `XEN_DOMCTL_unpausedomain`.
    fn unpause(&self, domid: DomId) -> Result<()>;
    /// `XEN_DOMCTL_getdomaininfo`, reduced to whether the domain can still make progress.
    fn domain_state(&self, domid: DomId) -> Result<DomainState>;
    /// `XEN_DOMCTL_getdomaininfo`'s `gpaddr_bits`: how wide the domain's guest-physical
    /// addresses are (on Arm, what its extended regions must stay below).
    fn guest_address_bits(&self, domid: DomId) -> Result<u8>;
    /// Writes a xenstore node.
    fn xs_write(&self, path: &str, value: &str) -> Result<()>;
    /// Sets a xenstore node's permissions.
    fn xs_set_perms(&self, path: &str, perms: &[Permission]) -> Result<()>;
    /// Removes a xenstore subtree.
    fn xs_rm(&self, path: &str) -> Result<()>;
    /// `XS_INTRODUCE`.
    fn xs_introduce(&self, domid: DomId, ring_gfn: u64, port: u32) -> Result<()>;
    /// `XS_RELEASE`.
    fn xs_release(&self, domid: DomId) -> Result<()>;
}

/// Whether a domain can still make progress, as [`DomainOps::domain_state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainState {
    /// Running, runnable, blocked or paused.
    Alive,
    /// Shut down, with Xen's `SHUTDOWN_*` code (0 poweroff, 1 reboot, 2 suspend, 3 crash,
    /// 4 watchdog, 5 soft reset). Nothing more runs until the domain is destroyed.
    Shutdown(u32),
    /// Being destroyed.
    Dying,
    /// Xen has no such domain.
    Gone,
}

impl std::fmt::Display for DomainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Alive => f.write_str("alive"),
            Self::Shutdown(3) => f.write_str("crashed"),
            Self::Shutdown(code) => write!(f, "shut down (code {code})"),
            Self::Dying => f.write_str("dying"),
            Self::Gone => f.write_str("gone"),
        }
    }
}

/// The real Xen: privcmd hypercalls and a xenstored connection.
pub struct XenOps {
    privcmd: Privcmd,
    xenstore: Mutex<Xenstore>,
}

impl std::fmt::Debug for XenOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XenOps")
            .field("privcmd", &self.privcmd)
            .finish_non_exhaustive()
    }
}

impl XenOps {
    /// Opens privcmd and connects to xenstored.
    pub fn open() -> Result<Self> {
        let privcmd = Privcmd::open().map_err(|source| Error::Xen {
            step: "opening privcmd",
            source,
        })?;
        let xenstore = Xenstore::open().map_err(|source| Error::Xenstore {
            step: "connecting to xenstored",
            source,
        })?;
        Ok(Self::new(privcmd, xenstore))
    }

    /// Over an open privcmd and xenstore connection.
    pub fn new(privcmd: Privcmd, xenstore: Xenstore) -> Self {
        Self {
            privcmd,
            xenstore: Mutex::new(xenstore),
        }
    }

    /// The privcmd handle.
    pub fn privcmd(&self) -> &Privcmd {
        &self.privcmd
    }

    fn xs<R>(
        &self,
        step: &'static str,
        f: impl FnOnce(&mut Xenstore) -> xen_bindings::xenstore::Result<R>,
    ) -> Result<R> {
        let mut xs = self.xenstore.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut xs).map_err(|source| Error::Xenstore { step, source })
    }
}

fn xen(step: &'static str) -> impl FnOnce(xen_bindings::privcmd::Error) -> Error {
    move |source| Error::Xen { step, source }
}

impl DomainOps for XenOps {
    fn create_domain(&self, config: &DomainConfig) -> Result<(DomId, XenArchDomainconfig)> {
        self.privcmd
            .create_domain_with_arch(config)
            .map_err(xen("creating the domain"))
    }
    fn set_address_size(&self, domid: DomId, bits: u32) -> Result<()> {
        self.privcmd
            .set_address_size(domid, bits)
            .map_err(xen("setting the guest's address size"))
    }
    fn set_arm_vcpu_context(
        &self,
        domid: DomId,
        vcpu: u32,
        context: &VcpuGuestContext,
    ) -> Result<()> {
        self.privcmd
            .set_vcpu_context(domid, vcpu, context)
            .map_err(xen("setting the vCPU state"))
    }
    fn cache_flush(&self, domid: DomId, gfn: u64, count: u64) -> Result<()> {
        self.privcmd
            .cache_flush(domid, gfn, count)
            .map_err(xen("flushing the guest's data cache"))
    }
    fn vuart_init(&self, domid: DomId, gfn: u64, backend: DomId) -> Result<u32> {
        self.privcmd
            .vuart_init(domid, gfn, backend)
            .map_err(xen("giving the guest its virtual UART"))
    }
    fn xen_version(&self) -> Result<(u16, u16)> {
        self.privcmd
            .xen_version()
            .map(|v| (v.major, v.minor))
            .map_err(xen("reading Xen's version"))
    }
    fn destroy_domain(&self, domid: DomId) -> Result<()> {
        self.privcmd
            .destroy_domain(domid)
            .map_err(xen("destroying the domain"))
    }
    fn set_max_vcpus(&self, domid: DomId, max: u32) -> Result<()> {
        self.privcmd
            .set_max_vcpus(domid, max)
            .map_err(xen("allocating the vCPUs"))
    }
    fn set_max_mem(&self, domid: DomId, kib: u64) -> Result<()> {
        self.privcmd
            .set_max_mem(domid, kib)
            .map_err(xen("setting the memory limit"))
    }
    fn set_paging_mempool_size(&self, domid: DomId, bytes: u64) -> Result<()> {
        self.privcmd
            .set_paging_mempool_size(domid, bytes)
            .map_err(xen("sizing the paging pool"))
    }
    fn populate_physmap(&self, domid: DomId, order: u32, gfns: &[u64]) -> Result<usize> {
        self.privcmd
            .populate_physmap(domid, order, gfns)
            .map_err(xen("populating guest memory"))
    }
    fn map_guest(&self, domid: DomId, gfns: &[u64]) -> Result<Box<dyn MappedPages>> {
        let m = self
            .privcmd
            .map_foreign(domid, gfns, true)
            .map_err(xen("mapping guest memory"))?;
        if let Some(i) = m.page_errors().iter().position(|&e| e != 0) {
            return Err(Error::Xen {
                step: "mapping guest memory",
                source: xen_bindings::privcmd::Error::OnDomain {
                    op: "MMAPBATCH_V2",
                    domid,
                    source: m.page_error(i).expect("an error at a failed page"),
                },
            });
        }
        Ok(Box::new(m))
    }
    fn seed_grant_table(&self, domid: DomId, entries: &[(GrantRef, DomId, u64)]) -> Result<()> {
        let table: ResourceMapping = self
            .privcmd
            .map_resource(domid, Resource::GrantTableShared, 0, 1, true)
            .map_err(xen("mapping the grant table"))?;
        let slots = table.len() / std::mem::size_of::<GrantEntryV1>();
        let base = table.as_ptr().cast::<GrantEntryV1>();
        for &(gref, backend, gfn) in entries {
            let frame = u32::try_from(gfn).map_err(|_| Error::InvalidConfig {
                what: "granted frame",
                value: format!("{gfn:#x}"),
                reason: "a v1 grant entry holds 32-bit frames",
            })?;
            assert!(
                (gref as usize) < slots,
                "reserved grant refs are in frame 0"
            );
            // SAFETY: `gref` indexes the first grant frame, mapped writable for the life of
            // `table`; the guest is paused and does not use its table yet. The fields are
            // written before the flags that make the entry valid, as Xen expects.
            unsafe {
                let e = base.add(gref as usize);
                std::ptr::addr_of_mut!((*e).domid).write_volatile(backend.get());
                std::ptr::addr_of_mut!((*e).frame).write_volatile(frame);
                std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
                std::ptr::addr_of_mut!((*e).flags).write_volatile(GTF_PERMIT_ACCESS);
            }
        }
        Ok(())
    }
    fn set_hvm_param(&self, domid: DomId, index: u32, value: u64) -> Result<()> {
        self.privcmd
            .set_hvm_param(domid, index, value)
            .map_err(xen("setting an HVM parameter"))
    }
    fn hvm_context(&self, domid: DomId) -> Result<Vec<u8>> {
        self.privcmd
            .hvm_context(domid)
            .map_err(xen("reading the HVM context"))
    }
    fn set_hvm_context(&self, domid: DomId, records: &[u8]) -> Result<()> {
        self.privcmd
            .set_hvm_context(domid, records)
            .map_err(xen("setting the vCPU state"))
    }
    fn evtchn_alloc_unbound(&self, domid: DomId, remote: DomId) -> Result<u32> {
        self.privcmd
            .evtchn_alloc_unbound(domid, remote)
            .map_err(xen("allocating an event channel"))
    }
    fn unpause(&self, domid: DomId) -> Result<()> {
        self.privcmd
            .unpause_domain(domid)
            .map_err(xen("unpausing the domain"))
    }
    fn domain_state(&self, domid: DomId) -> Result<DomainState> {
        match self.privcmd.domain_info(domid) {
            Ok(info) if info.dying() => Ok(DomainState::Dying),
            Ok(info) if info.shutdown() || info.crashed() => {
                Ok(DomainState::Shutdown(info.shutdown_code))
            }
            Ok(_) => Ok(DomainState::Alive),
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(DomainState::Gone),
            Err(e) => Err(xen("reading the domain's state")(e)),
        }
    }
    fn guest_address_bits(&self, domid: DomId) -> Result<u8> {
        self.privcmd
            .domain_info(domid)
            .map(|info| info.gpaddr_bits)
            .map_err(xen("reading the guest's address width"))
    }
    fn xs_write(&self, path: &str, value: &str) -> Result<()> {
        self.xs("writing xenstore entries", |xs| xs.write(path, value))
    }
    fn xs_set_perms(&self, path: &str, perms: &[Permission]) -> Result<()> {
        self.xs("setting xenstore permissions", |xs| {
            xs.set_perms(path, perms)
        })
    }
    fn xs_rm(&self, path: &str) -> Result<()> {
        self.xs("removing xenstore entries", |xs| xs.rm(path))
    }
    fn xs_introduce(&self, domid: DomId, ring_gfn: u64, port: u32) -> Result<()> {
        self.xs("introducing the domain to xenstored", |xs| {
            xs.introduce_domain(domid, ring_gfn, port)
        })
    }
    fn xs_release(&self, domid: DomId) -> Result<()> {
        self.xs("releasing the domain from xenstored", |xs| {
            xs.release_domain(domid)
        })
    }
}
