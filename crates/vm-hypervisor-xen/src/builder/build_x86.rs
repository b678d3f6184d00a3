// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The x86_64 build: a PVH guest from an ELF kernel ([`super::Kernel`]), as the module
//! documentation of [`super`] lists its steps; and an empty domain for a VMM that loads its
//! guest itself.

use std::sync::Arc;

use xen_bindings::abi::xen::domctl::{XenArchDomainconfig, XEN_X86_EMU_LAPIC};
use xen_bindings::abi::xen::hvm::*;
use xen_bindings::layout::GuestLayout;
use xen_bindings::privcmd::DomainConfig;

use super::memory::{self, SpecialPage, PAGE};
use super::steps::Steps;
use super::{
    acpi, hvm_hap_domain, loader, paging_pool_bytes, populate, read, rings, vcpu, Domain,
    DomainOps, Kernel, PvhConfig,
};
use crate::error::{Error, Result};

/// [`build`](super::build) with the kernel already read and decoded ([`Kernel::open`]), so
/// that several domains can be built from one kernel without decoding it each time (or read
/// and checked, [`Kernel::open_with`]); `config.kernel` and `config.bzimage` are not used.
pub fn build_with_kernel<O: DomainOps>(
    ops: Arc<O>,
    config: &PvhConfig,
    kernel: &Kernel,
) -> Result<Domain<O>> {
    let mut steps = Steps::start();
    // 1. Inputs, checked before anything exists in Xen.
    check(config)?;
    let (_, kernel_end) = kernel.extent();
    let ram = config.ram();
    let ranges = config.ram_ranges();
    // The kernel, initrd and start info go below 4 GiB, where PVH starts (`check` keeps
    // at least 16 MiB there).
    let low_end = ranges.first().map_or(0, |r| r.end());
    if kernel_end > low_end {
        return Err(Error::MemoryTooSmall {
            what: "kernel",
            start: 0,
            end: kernel_end,
            ram_end: low_end,
        });
    }
    let initrd = config.ramdisk.as_deref().map(read).transpose()?;
    let acpi = acpi::AcpiLayout::new(config.vcpus)?;
    steps.lap("read the initrd");

    // 2. The domain; from here on `dom` destroys it on any error.
    let (domid, _) = ops.create_domain(&pvh_domain(config.vcpus))?;
    let mut dom = Domain::new(ops.clone(), domid, config.name.clone());
    // The vCPUs themselves (createdomain only sized them). Without them Xen 4.17 dereferences
    // a null vCPU in gethvmcontext and crashes.
    ops.set_max_vcpus(domid, config.vcpus)?;
    // RAM plus the special pages, with room to spare as xl leaves it (1 MiB).
    ops.set_max_mem(domid, (ram >> 10) + 1024)?;
    ops.set_paging_mempool_size(domid, paging_pool_bytes(config.memory_mib, config.vcpus))?;
    steps.lap("createdomain, vCPUs, limits");

    // 3. Memory.
    populate::populate_ranges(&*ops, domid, &ranges)?;
    let special = memory::special_gfns();
    populate::populate_exact(&*ops, domid, 0, &special, "special pages")?;
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
    let map = acpi::memory_map(&ranges, &acpi);
    let loaded = loader::load(
        &*ops,
        domid,
        low_end,
        kernel,
        initrd.as_deref(),
        &config.cmdline,
        &map,
        Some(acpi.rsdp()),
    )?;
    steps.lap("special pages, ACPI, load");

    // 5. HVM parameters, event channels, grant entries.
    for (param, page) in [
        (HVM_PARAM_BUFIOREQ_PFN, SpecialPage::BufIoreq),
        (HVM_PARAM_IOREQ_PFN, SpecialPage::Ioreq),
        (HVM_PARAM_PAGING_RING_PFN, SpecialPage::Paging),
        (HVM_PARAM_MONITOR_RING_PFN, SpecialPage::Access),
        (HVM_PARAM_SHARING_RING_PFN, SpecialPage::Sharing),
    ] {
        ops.set_hvm_param(domid, param, page.gfn())?;
    }
    ops.set_hvm_param(domid, HVM_PARAM_IDENT_PT, SpecialPage::IdentPt.gfn() * PAGE)?;
    rings::connect(
        &mut dom,
        SpecialPage::Console.gfn(),
        SpecialPage::Xenstore.gfn(),
    )?;

    steps.lap("HVM params, event channels, grants");

    // 6. vCPU state.
    let current = ops.hvm_context(domid)?;
    for records in
        vcpu::boot_contexts(domid, &current, config.vcpus, loaded.entry, loaded.protocol)?
    {
        ops.set_hvm_context(domid, &records)?;
    }

    steps.lap("vCPU context");

    // 7. xenstore, then go.
    rings::start(&mut dom, config.console, &mut steps)?;
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

/// Creates an empty, paused PVH domain with `ram` bytes of RAM laid out as
/// [`GuestLayout::native`] says (from guest-physical 0 up to 0xf000_0000, the rest from
/// 4 GiB) and `vcpus` vCPUs, for a VMM that loads and starts the guest itself (what
/// `create_vm` of the vm-hypervisor traits gives): steps 2 and 3 of [`build`](super::build)
/// without the special pages, and every vCPU's MTRRs write-back. No vCPU is up; the first
/// context loaded into one starts it. The [`Domain`] destroys the domain when dropped, and on
/// any error here.
pub fn create_empty<O: DomainOps>(
    ops: Arc<O>,
    name: &str,
    ram: u64,
    vcpus: u32,
) -> Result<Domain<O>> {
    let (dom, _) = super::EmptyDomain {
        max_ram: memory::MAX_RAM,
        ram_reason: "must be whole pages, at least one, at most 1 TiB",
        layout: GuestLayout::native(),
        config: pvh_domain(vcpus),
        with_vcpus: &|_| Ok(()),
    }
    .create(&ops, name, ram, vcpus)?;
    let domid = dom.domid();
    let current = ops.hvm_context(domid)?;
    for records in vcpu::mtrr_contexts(domid, &current, vcpus)? {
        ops.set_hvm_context(domid, &records)?;
    }
    log::info!("created empty domain {domid} ({name}): {ram:#x} bytes of RAM, {vcpus} vCPUs");
    Ok(dom)
}

/// `createdomain`'s settings for a PVH domain with `vcpus` vCPUs.
fn pvh_domain(vcpus: u32) -> DomainConfig {
    hvm_hap_domain(vcpus, pvh_arch())
}

/// The emulated devices of a PVH guest: the local APIC only.
fn pvh_arch() -> XenArchDomainconfig {
    XenArchDomainconfig {
        emulation_flags: XEN_X86_EMU_LAPIC,
        misc_flags: 0,
    }
}

/// Checks `config` for a PVH guest: at most [`memory::MAX_RAM`], in an x86 layout whose low
/// RAM ends on a page, below the ACPI tables and with room for the kernel.
pub(super) fn check(config: &PvhConfig) -> Result<()> {
    config.check(memory::MAX_RAM, "more than this builder's 1 TiB")?;
    if config.vuart {
        return Err(Error::InvalidConfig {
            what: "vuart",
            value: "true".into(),
            reason: "a virtual SBSA UART is an Arm guest's",
        });
    }
    let end = match config.layout {
        GuestLayout::X86 { below_4g_ram_end } => below_4g_ram_end,
        other => {
            return Err(Error::InvalidConfig {
                what: "layout",
                value: format!("{other:?}"),
                reason: "an x86_64 PVH guest takes an x86 layout",
            })
        }
    };
    if end % PAGE != 0
        || !(memory::MIN_BELOW_4G_RAM_END..=memory::MAX_BELOW_4G_RAM_END).contains(&end)
    {
        return Err(Error::InvalidConfig {
            what: "layout",
            value: format!("below_4g_ram_end {end:#x}"),
            reason: "must be page aligned, from 16 MiB up to the ACPI tables at 0xfc000000",
        });
    }
    Ok(())
}
