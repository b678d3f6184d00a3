// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A pure-Rust domain builder for PVH guests on x86_64: what `xl create` does for
//! `type = "pvh"`, without libxl or libxc.
//!
//! [`build`] runs the steps of Xen's own toolstack, each through the [`ops::DomainOps`] seam:
//!
//! 1. read and check the inputs (the kernel is decompressed and its ELF extent checked against
//!    the memory size before anything exists in Xen; [`build_with_kernel`] takes a [`Kernel`]
//!    decoded once for several domains);
//! 2. `createdomain` (HVM container with HAP, only the local APIC emulated, the domctl
//!    interface version of the running Xen), then the vCPUs, memory limit and paging pool;
//! 3. populate RAM and the special pages ([`memory`]), zero the special pages and write the
//!    identity-map page table; populate and write the ACPI tables ([`acpi`]: the MADT lists
//!    every vCPU, so that the guest brings them all up);
//! 4. load the kernel, initrd and start info, mapping only the pages written ([`loader`]);
//! 5. HVM parameters for the special pages, console and xenstore event channels, grant-table
//!    entries for both rings;
//! 6. vCPU 0's entry state ([`vcpu`]);
//! 7. xenstore entries and introduction ([`xenstore`]); unpause.
//!
//! From step 2 on, the domain is held by a [`Domain`], which destroys it if a later step
//! fails: a half-way failure leaves no domain behind.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vm_hypervisor_xen::builder::{self, PvhConfig, XenOps};
//! use vm_hypervisor_xen::console::Console;
//!
//! let mut config = PvhConfig::new("guest", "/boot/vmlinuz");
//! config.ramdisk = Some("/boot/initrd.img".into());
//! let domain = builder::build(Arc::new(XenOps::open()?), &config)?;
//! let mut console = Console::attach(&domain)?;
//! console.wait_for("login:", Duration::from_secs(60))?;
//! domain.destroy()?; // also on drop
//! # Ok::<(), vm_hypervisor_xen::Error>(())
//! ```

pub mod acpi;
pub mod domain;
mod elf;
pub mod kernel;
pub mod loader;
pub mod memory;
pub mod ops;
mod steps;
#[cfg(test)]
mod tests;
pub mod vcpu;
pub mod xenstore;

use std::path::PathBuf;
use std::sync::Arc;

use xen_bindings::abi::xen::domctl::{
    XenArchDomainconfig, XEN_DOMCTL_CDF_HAP, XEN_DOMCTL_CDF_HVM, XEN_X86_EMU_LAPIC,
};
use xen_bindings::abi::xen::grant_table::{GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE};
use xen_bindings::abi::xen::hvm::*;
use xen_bindings::privcmd::DomainConfig;
use xen_bindings::DomId;

pub use domain::{Domain, Rings};
pub use kernel::Kernel;
pub use ops::{DomainOps, XenOps};
pub use xenstore::ConsoleBackend;

use crate::error::{Error, Result};
use memory::{SpecialPage, PAGE};

/// Fewest MiB of RAM the builder accepts (a Linux kernel and initrd need more anyway).
pub const MIN_MEMORY_MIB: u64 = 16;
/// Most vCPUs: Xen's limit for HVM and PVH domains (`HVM_MAX_VCPUS`). Their APIC IDs (twice
/// the vCPU ID) then all fit the MADT's 8-bit local APIC entries.
pub const MAX_VCPUS: u32 = 128;
/// The domain that serves the console and xenstore rings.
const BACKEND_DOMID: DomId = DomId::DOM0;
/// Grant-table frames, maptrack frames and event-channel ports, as `xl` defaults them.
const MAX_GRANT_FRAMES: i32 = 64;
const MAX_MAPTRACK_FRAMES: i32 = 1024;
const MAX_EVTCHN_PORT: u32 = 1023;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvhConfig {
    /// The domain's name (in xenstore, and so in `xl list`).
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The kernel: an ELF `vmlinux` with a PVH note, or a bzImage around one (xz or zstd).
    pub kernel: PathBuf,
    /// An initrd, if any.
    pub ramdisk: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
    /// Who reads the console ring.
    pub console: ConsoleBackend,
}

impl PvhConfig {
    /// A guest `name` booting `kernel` with 128 MiB, one vCPU and `console=hvc0`.
    pub fn new(name: impl Into<String>, kernel: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            memory_mib: 128,
            vcpus: 1,
            kernel: kernel.into(),
            ramdisk: None,
            cmdline: "console=hvc0".into(),
            console: ConsoleBackend::default(),
        }
    }

    fn check(&self) -> Result<()> {
        let invalid = |what, value: String, reason| Error::InvalidConfig {
            what,
            value,
            reason,
        };
        if self.vcpus == 0 || self.vcpus > MAX_VCPUS {
            return Err(invalid(
                "vcpus",
                self.vcpus.to_string(),
                "must be between 1 and 128",
            ));
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                "below the 16 MiB minimum",
            ));
        }
        if self.memory_mib.saturating_mul(1 << 20) > memory::MAX_LOWMEM {
            return Err(invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                "RAM above the special pages (about 4 GiB) is not supported yet",
            ));
        }
        if self.memory_mib.saturating_mul(1 << 20) > acpi::ACPI_INFO_ADDR {
            return Err(invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                "RAM would reach the ACPI tables at 0xfc000000 (4032 MiB)",
            ));
        }
        if self.name.is_empty() || self.name.contains(['/', '\0']) {
            return Err(invalid(
                "name",
                format!("{:?}", self.name),
                "must be non-empty, without '/' or NUL",
            ));
        }
        Ok(())
    }

    fn ram(&self) -> u64 {
        self.memory_mib << 20
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The paging (HAP) pool `xl` gives a guest: 4 KiB x (256 per vCPU + 2 per MiB of RAM).
fn paging_pool_bytes(memory_mib: u64, vcpus: u32) -> u64 {
    4096 * (256 * u64::from(vcpus) + 2 * memory_mib)
}

/// Builds and starts a PVH domain as `config` says, through `ops`.
pub fn build<O: DomainOps>(ops: Arc<O>, config: &PvhConfig) -> Result<Domain<O>> {
    // 1. Inputs, checked before anything exists in Xen (the kernel is decoded here).
    config.check()?;
    let kernel = Kernel::open(&config.kernel)?;
    build_with_kernel(ops, config, &kernel)
}

/// [`build`] with the kernel already read and decoded ([`Kernel::open`]), so that several
/// domains can be built from one kernel without decoding it each time; `config.kernel` is not
/// read.
pub fn build_with_kernel<O: DomainOps>(
    ops: Arc<O>,
    config: &PvhConfig,
    kernel: &Kernel,
) -> Result<Domain<O>> {
    let mut steps = steps::Steps::start();
    // 1. Inputs, checked before anything exists in Xen.
    config.check()?;
    let (_, kernel_end) = kernel.extent();
    let ram = config.ram();
    if kernel_end > ram {
        return Err(Error::MemoryTooSmall {
            what: "kernel",
            start: 0,
            end: kernel_end,
            ram_end: ram,
        });
    }
    let initrd = config.ramdisk.as_deref().map(read).transpose()?;
    let acpi = acpi::AcpiLayout::new(config.vcpus)?;
    steps.lap("read the initrd");

    // 2. The domain; from here on `dom` destroys it on any error.
    let domid = ops.create_domain(&pvh_domain(config.vcpus))?;
    let mut dom = Domain::new(ops.clone(), domid, config.name.clone());
    // The vCPUs themselves (createdomain only sized them). Without them Xen 4.17 dereferences
    // a null vCPU in gethvmcontext and crashes.
    ops.set_max_vcpus(domid, config.vcpus)?;
    // RAM plus the special pages, with room to spare as xl leaves it (1 MiB).
    ops.set_max_mem(domid, (ram >> 10) + 1024)?;
    ops.set_paging_mempool_size(domid, paging_pool_bytes(config.memory_mib, config.vcpus))?;
    steps.lap("createdomain, vCPUs, limits");

    // 3. Memory.
    memory::populate_ram(&*ops, domid, ram)?;
    let special = memory::special_gfns();
    memory::populate_exact(&*ops, domid, 0, &special, "special pages")?;
    steps.lap("populate");
    {
        // Zeroed first: the console and xenstore rings' indexes live here, and Xen does not
        // promise scrubbed pages (a host booted with `bootscrub=0` hands out freed boot
        // memory as it was; the console ring then read as garbage). Eight pages.
        let pages = ops.map_guest(domid, &special)?;
        // SAFETY: `pages` maps the special pages writable for this scope, `pages.len()`
        // bytes; the domain is paused and nothing else uses them yet.
        unsafe { std::ptr::write_bytes(pages.as_ptr(), 0, pages.len()) };
        // The identity-map page table (for EPT with CR0.PG clear): 4 MiB superpages covering
        // 4 GiB, present, writable, user, accessed, dirty, PSE.
        let pt = SpecialPage::IdentPt as usize * PAGE as usize;
        for i in 0..1024u32 {
            let entry = (i << 22) | 0xe7;
            // SAFETY: entry `i` of the identity page table lies inside the special pages,
            // mapped writable for this scope (page `IdentPt`, 1024 four-byte entries); the
            // domain is paused and nothing else uses them yet.
            unsafe {
                std::ptr::write_unaligned(
                    pages.as_ptr().add(pt + i as usize * 4).cast::<u32>(),
                    entry,
                )
            };
        }
    }

    acpi::write(&*ops, domid, &acpi)?;

    // 4. Kernel, initrd, start info.
    let map = acpi::memory_map(ram, &acpi);
    let loaded = loader::load(
        &*ops,
        domid,
        ram,
        kernel,
        initrd.as_deref(),
        &config.cmdline,
        &map,
        Some(acpi.rsdp()),
    )?;
    steps.lap("special pages, ACPI, load");

    // 5. HVM parameters, event channels, grant entries.
    for (param, page) in [
        (HVM_PARAM_STORE_PFN, SpecialPage::Xenstore),
        (HVM_PARAM_BUFIOREQ_PFN, SpecialPage::BufIoreq),
        (HVM_PARAM_IOREQ_PFN, SpecialPage::Ioreq),
        (HVM_PARAM_CONSOLE_PFN, SpecialPage::Console),
        (HVM_PARAM_PAGING_RING_PFN, SpecialPage::Paging),
        (HVM_PARAM_MONITOR_RING_PFN, SpecialPage::Access),
        (HVM_PARAM_SHARING_RING_PFN, SpecialPage::Sharing),
    ] {
        ops.set_hvm_param(domid, param, page.gfn())?;
    }
    ops.set_hvm_param(domid, HVM_PARAM_IDENT_PT, SpecialPage::IdentPt.gfn() * PAGE)?;
    let rings = Rings {
        console_gfn: SpecialPage::Console.gfn(),
        console_port: ops.evtchn_alloc_unbound(domid, BACKEND_DOMID)?,
        store_gfn: SpecialPage::Xenstore.gfn(),
        store_port: ops.evtchn_alloc_unbound(domid, BACKEND_DOMID)?,
    };
    dom.set_rings(rings);
    ops.set_hvm_param(
        domid,
        HVM_PARAM_CONSOLE_EVTCHN,
        u64::from(rings.console_port),
    )?;
    ops.set_hvm_param(domid, HVM_PARAM_STORE_EVTCHN, u64::from(rings.store_port))?;
    ops.seed_grant_table(
        domid,
        &[
            (GNTTAB_RESERVED_CONSOLE, BACKEND_DOMID, rings.console_gfn),
            (GNTTAB_RESERVED_XENSTORE, BACKEND_DOMID, rings.store_gfn),
        ],
    )?;

    steps.lap("HVM params, event channels, grants");

    // 6. vCPU state.
    let current = ops.hvm_context(domid)?;
    for records in vcpu::boot_contexts(
        domid,
        &current,
        config.vcpus,
        loaded.entry,
        loaded.start_info,
    )? {
        ops.set_hvm_context(domid, &records)?;
    }

    steps.lap("vCPU context");

    // 7. xenstore, then go.
    xenstore::publish(&mut dom, rings, config.console)?;
    steps.lap("xenstore");
    ops.unpause(domid)?;
    steps.lap("unpause");
    log::debug!("domain {domid} build steps: {steps}");
    log::info!(
        "built domain {domid} ({}): entry {:#x}, kernel end {:#x}, initrd {:?}",
        config.name,
        loaded.entry,
        loaded.kernel_end,
        loaded.initrd
    );
    Ok(dom)
}

/// Creates an empty, paused PVH domain with `ram` bytes of RAM from guest-physical 0 and
/// `vcpus` vCPUs, for a VMM that loads and starts the guest itself (what `create_vm` of the
/// vm-hypervisor traits gives): steps 2 and 3 of [`build`] without the special pages, and
/// every vCPU's MTRRs write-back. No vCPU is up; the first context loaded into one starts
/// it. The [`Domain`] destroys the domain when dropped, and on any error here.
pub fn create_empty<O: DomainOps>(
    ops: Arc<O>,
    name: &str,
    ram: u64,
    vcpus: u32,
) -> Result<Domain<O>> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(Error::InvalidConfig {
            what: "vcpus",
            value: vcpus.to_string(),
            reason: "must be between 1 and 128",
        });
    }
    // PAGE is a power of two; a mask keeps this within the crate's MSRV.
    if ram == 0 || ram & (PAGE - 1) != 0 || ram > memory::MAX_LOWMEM {
        return Err(Error::InvalidConfig {
            what: "ram",
            value: format!("{ram:#x}"),
            reason: "must be whole pages, at least one, below the special pages (about 4 GiB)",
        });
    }
    let domid = ops.create_domain(&pvh_domain(vcpus))?;
    let dom = Domain::new(ops.clone(), domid, name.to_owned());
    ops.set_max_vcpus(domid, vcpus)?;
    ops.set_max_mem(domid, (ram >> 10) + 1024)?;
    let mib = ram.div_ceil(1 << 20);
    ops.set_paging_mempool_size(domid, paging_pool_bytes(mib, vcpus))?;
    memory::populate_ram(&*ops, domid, ram)?;
    let current = ops.hvm_context(domid)?;
    for records in vcpu::mtrr_contexts(domid, &current, vcpus)? {
        ops.set_hvm_context(domid, &records)?;
    }
    log::info!("created empty domain {domid} ({name}): {ram:#x} bytes of RAM, {vcpus} vCPUs");
    Ok(dom)
}

/// `createdomain`'s settings for a PVH domain with `vcpus` vCPUs: an HVM container with HAP,
/// grant and event-channel limits as `xl` sets them.
fn pvh_domain(vcpus: u32) -> DomainConfig {
    DomainConfig {
        flags: XEN_DOMCTL_CDF_HVM | XEN_DOMCTL_CDF_HAP,
        max_vcpus: vcpus,
        max_evtchn_port: MAX_EVTCHN_PORT,
        max_grant_frames: MAX_GRANT_FRAMES,
        max_maptrack_frames: MAX_MAPTRACK_FRAMES,
        grant_version: 1,
        arch: pvh_arch(),
        ..Default::default()
    }
}

/// The emulated devices of a PVH guest: the local APIC only.
fn pvh_arch() -> XenArchDomainconfig {
    #[cfg(target_arch = "x86_64")]
    {
        XenArchDomainconfig {
            emulation_flags: XEN_X86_EMU_LAPIC,
            misc_flags: 0,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = XEN_X86_EMU_LAPIC;
        XenArchDomainconfig::default()
    }
}
