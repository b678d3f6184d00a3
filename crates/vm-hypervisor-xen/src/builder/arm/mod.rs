// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Arm build: an arm64 Linux `Image` booted as an Arm domain (what `xl create` makes of a
//! `type = "pvh"` guest on Arm), on an aarch64 dom0.
//!
//! The steps, each through the [`DomainOps`](super::DomainOps) seam:
//!
//! 1. read and check the inputs ([`image`]), and place kernel, initrd and device tree in RAM
//!    ([`layout`]) before anything exists in Xen;
//! 2. `createdomain` (always HVM with HAP on Arm; the GIC version left to Xen, which writes
//!    back the one it picked; one bank of SPIs; no TEE), then the vCPUs, a 64-bit guest
//!    (`set_address_size`), the memory limit and the P2M pool;
//! 3. RAM from `GUEST_RAM0_BASE` (beyond 3 GiB, in bank 1 from `GUEST_RAM1_BASE`), the magic
//!    pages (zeroed), the event-channel callback PPI;
//! 4. the device tree ([`fdt`]), then kernel, initrd and device tree written, mapping only
//!    their pages, and the data cache cleaned over them (and over the magic pages) for a
//!    guest that starts with its MMU off;
//! 5. the console and xenstore rings, shared with x86, the memory-access ring's parameter,
//!    and the virtual UART (vPL011) when asked for;
//! 6. vCPU 0's context ([`vcpu`]);
//! 7. xenstore entries and introduction; unpause (shared with x86).
//!
//! From step 2 on, the domain is held by a [`Domain`](super::Domain), which destroys it if a
//! later step fails. The modules are plain data (tested on every host); the build itself runs
//! on aarch64.

pub mod fdt;
pub mod image;
pub mod layout;
#[cfg(all(test, target_arch = "aarch64"))]
mod tests;
pub mod vcpu;

use xen_bindings::abi::xen::arch_arm::GUEST_EVTCHN_PPI;
use xen_bindings::abi::xen::hvm::{
    HVM_PARAM_CALLBACK_TYPE_PPI, HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL,
};

use xen_bindings::layout::GuestLayout;

use super::PvhConfig;
use crate::error::Result;

/// The value of `HVM_PARAM_CALLBACK_IRQ` for an Arm guest: the event-channel upcall is
/// `GUEST_EVTCHN_PPI`, level-sensitive, active low (what the device tree says too).
pub const fn evtchn_callback() -> u64 {
    (HVM_PARAM_CALLBACK_TYPE_PPI << 56)
        | (HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL << 8)
        | GUEST_EVTCHN_PPI as u64
}

/// Checks `config` for an Arm guest: RAM must fit the two banks, in the Arm layout.
pub fn check(config: &PvhConfig) -> Result<()> {
    config.check(
        layout::MAX_RAM,
        "more than Arm guests' two RAM banks hold (1019 GiB)",
    )?;
    if config.layout != GuestLayout::Arm {
        return Err(crate::Error::InvalidConfig {
            what: "layout",
            value: format!("{:?}", config.layout),
            reason: "an Arm guest takes the Arm layout",
        });
    }
    Ok(())
}

#[cfg(target_arch = "aarch64")]
pub use build::{build_with_image, create_empty};

#[cfg(target_arch = "aarch64")]
mod build {
    use std::sync::Arc;

    use vm_memory::{Bytes, GuestAddress};
    use xen_bindings::abi::xen::arch_arm::{
        XEN_DOMCTL_CONFIG_GIC_NATIVE, XEN_DOMCTL_CONFIG_TEE_NONE,
    };
    use xen_bindings::abi::xen::domctl::XenArchDomainconfig;
    use xen_bindings::abi::xen::hvm::{HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_MONITOR_RING_PFN};
    use xen_bindings::privcmd::DomainConfig;

    use super::image::ArmImage;
    use super::layout::{self, MagicPage, RAM_BASE};
    use super::{fdt, vcpu, GuestLayout};
    use crate::builder::guest_ram::{map_ranges, page_ranges};
    use crate::builder::memory::PAGE;
    use crate::builder::steps::Steps;
    use crate::builder::{
        hvm_hap_domain, paging_pool_bytes, populate, read, rings, Domain, DomainOps, PvhConfig,
    };
    use crate::error::{Error, Result};

    /// `createdomain`'s settings for an Arm guest with `vcpus` vCPUs: the GIC version left to
    /// Xen (it writes back the one it picked), no TEE.
    fn arm_domain(vcpus: u32) -> DomainConfig {
        hvm_hap_domain(
            vcpus,
            XenArchDomainconfig {
                gic_version: XEN_DOMCTL_CONFIG_GIC_NATIVE,
                tee_type: XEN_DOMCTL_CONFIG_TEE_NONE,
                nr_spis: fdt::NR_SPIS,
                clock_frequency: 0,
                ..Default::default()
            },
        )
    }

    /// Creates an empty, paused Arm domain with `ram` bytes of RAM from [`RAM_BASE`] (bank 0,
    /// then bank 1 from 8 GiB: [`GuestLayout::Arm`]) and `vcpus` vCPUs, for a VMM that loads
    /// and starts the guest itself (what `create_vm` of the vm-hypervisor traits gives): step
    /// 2 and the RAM of step 3 of [`build_with_image`], without the magic pages. Every vCPU is down until a
    /// context is loaded into it (`XEN_DOMCTL_setvcpucontext` with `VGCF_ONLINE`, or PSCI
    /// `CPU_ON` from a running one). The [`Domain`] destroys the domain when dropped, and on
    /// any error here.
    pub fn create_empty<O: DomainOps>(
        ops: Arc<O>,
        name: &str,
        ram: u64,
        vcpus: u32,
    ) -> Result<Domain<O>> {
        let (dom, arch) = crate::builder::EmptyDomain {
            max_ram: layout::MAX_RAM,
            ram_reason: "must be whole pages, at least one, within the two RAM banks (1019 GiB)",
            layout: GuestLayout::Arm,
            config: arm_domain(vcpus),
            // A new Arm domain is AArch32; the vCPUs must exist to be switched.
            with_vcpus: &|domid| ops.set_address_size(domid, 64),
        }
        .create(&ops, name, ram, vcpus)?;
        let domid = dom.domid();
        log::info!(
            "created empty Arm domain {domid} ({name}): {ram:#x} bytes of RAM at {RAM_BASE:#x}, \
             {vcpus} vCPUs, GIC version {}",
            arch.gic_version
        );
        Ok(dom)
    }

    /// Builds and starts an Arm domain as `config` says from `image` (`config.kernel` is not
    /// read), through `ops`.
    pub fn build_with_image<O: DomainOps>(
        ops: Arc<O>,
        config: &PvhConfig,
        image: &ArmImage,
    ) -> Result<Domain<O>> {
        let mut steps = Steps::start();
        // 1. Inputs and placement, before anything exists in Xen.
        super::check(config)?;
        let ram = config.ram();
        let ram_ranges = config.ram_ranges();
        let initrd = config.ramdisk.as_deref().map(read).transpose()?;
        let placement = layout::place(
            ram,
            image.text_offset(),
            image.load_size(),
            initrd.as_ref().map(|i| i.len() as u64),
        )?;
        steps.lap("read the initrd");

        // 2. The domain; from here on `dom` destroys it on any error.
        let (domid, arch) = ops.create_domain(&arm_domain(config.vcpus))?;
        let mut dom = Domain::new(ops.clone(), domid, config.name.clone());
        ops.set_max_vcpus(domid, config.vcpus)?;
        // A new Arm domain is AArch32; the vCPUs must exist to be switched.
        ops.set_address_size(domid, 64)?;
        ops.set_max_mem(domid, (ram >> 10) + 1024)?;
        ops.set_paging_mempool_size(domid, paging_pool_bytes(config.memory_mib, config.vcpus))?;
        let gic = fdt::gic_version(arch.gic_version).ok_or(Error::UnsupportedGic {
            domid,
            version: arch.gic_version,
        })?;
        steps.lap("createdomain, vCPUs, limits");

        // 3. Memory: RAM, then the magic pages, zeroed (Xen does not promise scrubbed pages,
        // and the rings' indexes live there).
        populate::populate_ranges(&*ops, domid, &ram_ranges)?;
        let magic = layout::magic_gfns();
        populate::populate_exact(&*ops, domid, 0, &magic, "magic pages")?;
        {
            let pages = ops.map_guest(domid, &magic)?;
            // SAFETY: `pages` maps the magic pages writable for this scope, `pages.len()`
            // bytes; the domain is paused and nothing else uses them yet.
            unsafe { std::ptr::write_bytes(pages.as_ptr(), 0, pages.len()) };
        }
        ops.cache_flush(domid, magic[0], magic.len() as u64)?;
        ops.set_hvm_param(domid, HVM_PARAM_CALLBACK_IRQ, super::evtchn_callback())?;
        steps.lap("populate");

        // 4. Device tree, kernel, initrd.
        let platform = fdt::Platform {
            ram,
            vcpus: config.vcpus,
            gic,
            xen: ops.xen_version()?,
            clock_frequency: arch.clock_frequency,
            gpaddr_bits: ops.guest_address_bits(domid)?,
            vuart: config.vuart,
        };
        let blob = fdt::device_tree(&platform, &placement, &config.cmdline)?;
        let data = image.data();
        let mut ranges = vec![
            (placement.kernel, placement.kernel + data.len() as u64),
            (placement.dtb, placement.dtb + blob.len() as u64),
        ];
        ranges.extend(placement.initrd.map(|(a, s)| (a, a + s)));
        // Everything written lies in bank 0, the first range (`layout::place`).
        let bank0 = ram_ranges
            .first()
            .map_or((RAM_BASE, RAM_BASE), |r| (r.start, r.end()));
        let guest = map_ranges(&*ops, domid, bank0, &ranges)?;
        let load = |what: &'static str| {
            move |e: vm_memory::GuestMemoryError| Error::Load {
                what,
                reason: e.to_string(),
            }
        };
        guest
            .mem
            .write_slice(data, GuestAddress(placement.kernel))
            .map_err(load("kernel"))?;
        if let (Some(bytes), Some((addr, _))) = (&initrd, placement.initrd) {
            guest
                .mem
                .write_slice(bytes, GuestAddress(addr))
                .map_err(load("initrd"))?;
        }
        vm_vcpu_ref::fdt::write_fdt(&guest.mem, GuestAddress(placement.dtb), &blob).map_err(
            |e| Error::Load {
                what: "device tree",
                reason: e.to_string(),
            },
        )?;
        drop(guest);
        // Written through cacheable mappings, read by a guest whose MMU (and so its data
        // cache) is off at first: cleaned to memory, as Xen's toolstack does on Arm.
        for (start, end) in page_ranges(&ranges) {
            ops.cache_flush(domid, start / PAGE, (end - start) / PAGE)?;
        }
        steps.lap("load");

        // 5. Rings (shared with x86), and the memory-access ring as libxc gives it.
        ops.set_hvm_param(
            domid,
            HVM_PARAM_MONITOR_RING_PFN,
            MagicPage::MemAccess.gfn(),
        )?;
        rings::connect(
            &mut dom,
            MagicPage::Console.gfn(),
            MagicPage::Xenstore.gfn(),
        )?;
        if config.vuart {
            // Its page is the last magic page, populated and zeroed with the others.
            rings::connect_vuart(&mut dom, MagicPage::Vuart.gfn())?;
        }
        steps.lap("HVM params, event channels, grants");

        // 6. vCPU 0.
        let context = vcpu::boot_context(placement.kernel, placement.dtb);
        ops.set_arm_vcpu_context(domid, 0, &context)?;
        steps.lap("vCPU context");

        // 7. xenstore, then go.
        rings::start(&mut dom, config.console, &mut steps)?;
        log::debug!("domain {domid} build steps: {steps}");
        log::info!(
            "built Arm domain {domid} ({}): GIC {gic:?}, kernel {:#x}, device tree {:#x}, \
             initrd {:?}",
            config.name,
            placement.kernel,
            placement.dtb,
            placement.initrd
        );
        Ok(dom)
    }
}

#[cfg(test)]
mod callback_tests {
    #[test]
    fn the_callback_is_ppi_31_level_low() {
        // HVM_PARAM_CALLBACK_TYPE_PPI (2) in the top byte, the low-level flag (2) in bits 8-15.
        assert_eq!(super::evtchn_callback(), 0x0200_0000_0000_021f);
    }
}
