// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A pure-Rust domain builder: what `xl create` does for `type = "pvh"`, without libxl or
//! libxc; PVH guests on x86_64, Arm guests on aarch64 ([`arm`], whose module documentation
//! lists its steps).
//!
//! On x86_64, [`build`] runs the steps of Xen's own toolstack, each through the
//! [`ops::DomainOps`] seam:
//!
//! 1. read and check the inputs before anything exists in Xen: the kernel's extent against the
//!    memory size. A bzImage is by default left for the guest to decompress
//!    ([`BzImageBoot::SelfDecompressing`]); decoded here ([`BzImageBoot::Decoded`]), it can be
//!    decoded once for several domains ([`build_with_kernel`] takes a [`Kernel`]);
//! 2. `createdomain` (HVM container with HAP, only the local APIC emulated, the domctl
//!    interface version of the running Xen), then the vCPUs, memory limit and paging pool;
//! 3. populate RAM and the special pages ([`memory`]), zero the special pages and write the
//!    identity-map page table; populate and write the ACPI tables ([`acpi`]: the MADT lists
//!    every vCPU, so that the guest brings them all up);
//! 4. load the kernel, initrd and start info (for a bzImage left to decompress itself: the
//!    bzImage, initrd, zero page and boot GDT, [`bzimage`]), mapping only the pages written
//!    ([`loader`]);
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

#[cfg(target_arch = "x86_64")]
pub mod acpi;
pub mod arm;
#[cfg(target_arch = "x86_64")]
mod build_x86;
#[cfg(target_arch = "x86_64")]
pub mod bzimage;
pub mod domain;
#[cfg(target_arch = "x86_64")]
mod elf;
#[cfg(test)]
mod fake;
mod guest_ram;
#[cfg(target_arch = "x86_64")]
pub mod kernel;
#[cfg(target_arch = "x86_64")]
pub mod loader;
pub mod memory;
pub mod ops;
pub mod populate;
mod rings;
mod steps;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
#[cfg(target_arch = "x86_64")]
pub mod vcpu;
pub mod xenstore;

use std::path::PathBuf;
use std::sync::Arc;

use xen_bindings::abi::xen::domctl::{XenArchDomainconfig, XEN_DOMCTL_CDF_HAP, XEN_DOMCTL_CDF_HVM};
use xen_bindings::layout::{GuestLayout, RamRange};
use xen_bindings::privcmd::DomainConfig;
use xen_bindings::DomId;

#[cfg(target_arch = "aarch64")]
pub use arm::create_empty;
#[cfg(target_arch = "x86_64")]
pub use build_x86::{build_with_kernel, create_empty};
pub use domain::{Domain, RingRef, Rings};
#[cfg(target_arch = "x86_64")]
pub use kernel::Kernel;
pub use ops::{DomainOps, DomainState, XenOps};
pub use xenstore::ConsoleBackend;

use crate::error::{Error, Result};

/// Fewest MiB of RAM the builder accepts (a Linux kernel and initrd need more anyway).
pub const MIN_MEMORY_MIB: u64 = 16;
/// Most vCPUs: Xen's limit for HVM and PVH domains (`HVM_MAX_VCPUS`; their APIC IDs, twice
/// the vCPU ID, then all fit the MADT's 8-bit local APIC entries) and for Arm domains
/// (`GUEST_MAX_VCPUS`).
pub const MAX_VCPUS: u32 = 128;
/// The domain that serves the console and xenstore rings.
const BACKEND_DOMID: DomId = DomId::DOM0;
/// Grant-table frames, maptrack frames and event-channel ports, as `xl` defaults them.
const MAX_GRANT_FRAMES: i32 = 64;
const MAX_MAPTRACK_FRAMES: i32 = 1024;
const MAX_EVTCHN_PORT: u32 = 1023;

/// `createdomain`'s settings for a domain of `vcpus` vCPUs with the architecture's `arch`
/// settings: an HVM container with HAP (a PVH guest on x86, every guest on Arm), with the
/// grant and event-channel limits `xl` sets.
fn hvm_hap_domain(vcpus: u32, arch: XenArchDomainconfig) -> DomainConfig {
    DomainConfig {
        flags: XEN_DOMCTL_CDF_HVM | XEN_DOMCTL_CDF_HAP,
        max_vcpus: vcpus,
        max_evtchn_port: MAX_EVTCHN_PORT,
        max_grant_frames: MAX_GRANT_FRAMES,
        max_maptrack_frames: MAX_MAPTRACK_FRAMES,
        grant_version: 1,
        arch,
        ..Default::default()
    }
}

/// How the x86_64 builder starts a bzImage: a distribution kernel, whose real-mode setup is
/// followed by a compressed `vmlinux` (an ELF `vmlinux` is always entered at its PVH entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BzImageBoot {
    /// The builder loads the bzImage as it is, at 1 MiB, and enters it through Linux's 32-bit
    /// boot protocol (a zero page with the memory map, command line, initrd and ACPI RSDP;
    /// flat `__BOOT_CS` and `__BOOT_DS` segments): the kernel decompresses itself on the
    /// guest's vCPU, in whatever format it was built with, and the build spends no time and
    /// no memory on the decoded image. Linux then finds it runs in a PVH domain from the ACPI
    /// tables (no CMOS RTC, no VGA), as it does when a boot loader inside the guest started
    /// it. Needs boot protocol 2.15 (Linux 5.5) or later; older kernels are refused with a
    /// [`BadKernel`](crate::Error::BadKernel) error that says so.
    #[default]
    SelfDecompressing,
    /// The builder decodes the payload (xz or zstd) and enters the ELF image at its PVH entry
    /// point with a PVH start info, as `xl create` does for `type = "pvh"`. The decoding is
    /// most of such a build's time; [`Kernel::open`](kernel::Kernel::open) and
    /// [`build_with_kernel`] let several domains share one decoded kernel.
    Decoded,
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvhConfig {
    /// The domain's name (in xenstore, and so in `xl list`).
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Where the RAM lies ([`GuestLayout::ram_ranges`]); [`GuestLayout::native`] unless set.
    /// On x86_64 the MMIO hole below 4 GiB may be moved down
    /// (`GuestLayout::X86 { below_4g_ram_end }`, page aligned, from 16 MiB up to the ACPI
    /// tables at 0xfc00_0000), for a device model that needs more room there; RAM that does
    /// not fit below it continues at 4 GiB either way. Arm guests take [`GuestLayout::Arm`].
    pub layout: GuestLayout,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The kernel: on x86_64 an ELF `vmlinux` with a PVH note, or a bzImage (started as
    /// [`bzimage`](Self::bzimage) says); on aarch64 an arm64 `Image` (uncompressed, as Debian
    /// ships it).
    pub kernel: PathBuf,
    /// x86_64 only (ignored on aarch64): how a bzImage kernel is started,
    /// [`BzImageBoot::SelfDecompressing`] unless set.
    pub bzimage: BzImageBoot,
    /// An initrd, if any.
    pub ramdisk: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
    /// Who reads the console ring.
    pub console: ConsoleBackend,
    /// Arm only: also a virtual SBSA UART (Xen's vPL011, `ttyAMA0` to Linux), whose ring
    /// the same backend as the console's reads ([`crate::console::Console::attach_vuart`]
    /// here); an early console for the guest, as `vuart = "sbsa_uart"` gives it in `xl`.
    pub vuart: bool,
}

impl PvhConfig {
    /// A guest `name` booting `kernel` with 128 MiB, one vCPU and `console=hvc0`.
    pub fn new(name: impl Into<String>, kernel: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            memory_mib: 128,
            layout: GuestLayout::native(),
            vcpus: 1,
            kernel: kernel.into(),
            bzimage: BzImageBoot::default(),
            ramdisk: None,
            cmdline: "console=hvc0".into(),
            console: ConsoleBackend::default(),
            vuart: false,
        }
    }

    /// Checks the configuration for a guest whose RAM may be at most `max_ram` bytes
    /// (`ram_limit` says why, in the error); the layout is the architecture's to check.
    fn check(&self, max_ram: u64, ram_limit: &'static str) -> Result<()> {
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
        if self.memory_mib.saturating_mul(1 << 20) > max_ram {
            return Err(invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                ram_limit,
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

    /// Where its RAM lies.
    fn ram_ranges(&self) -> Vec<RamRange> {
        self.layout.ram_ranges(self.ram())
    }
}

/// What differs between the architectures' empty domains (`create_empty`).
struct EmptyDomain<'a> {
    /// Most RAM, and why, for the error.
    max_ram: u64,
    ram_reason: &'static str,
    /// Where RAM lies.
    layout: GuestLayout,
    /// `createdomain`'s settings.
    config: DomainConfig,
    /// Run once the vCPUs exist, before the memory limits.
    with_vcpus: &'a dyn Fn(DomId) -> Result<()>,
}

impl EmptyDomain<'_> {
    /// Checks the size (1 to [`MAX_VCPUS`] vCPUs; `ram` whole pages, at least one, at most
    /// `max_ram`), then makes the domain: `createdomain`, the vCPUs, the memory limit and
    /// paging pool, and `ram` bytes of RAM. Returns it with the architecture settings Xen
    /// wrote back; the [`Domain`] destroys it on any later error.
    fn create<O: DomainOps>(
        &self,
        ops: &Arc<O>,
        name: &str,
        ram: u64,
        vcpus: u32,
    ) -> Result<(Domain<O>, XenArchDomainconfig)> {
        if vcpus == 0 || vcpus > MAX_VCPUS {
            return Err(Error::InvalidConfig {
                what: "vcpus",
                value: vcpus.to_string(),
                reason: "must be between 1 and 128",
            });
        }
        // PAGE is a power of two; a mask keeps this within the crate's MSRV.
        if ram == 0 || ram & (memory::PAGE - 1) != 0 || ram > self.max_ram {
            return Err(Error::InvalidConfig {
                what: "ram",
                value: format!("{ram:#x}"),
                reason: self.ram_reason,
            });
        }
        let (domid, arch) = ops.create_domain(&self.config)?;
        let dom = Domain::new(ops.clone(), domid, name.to_owned());
        ops.set_max_vcpus(domid, vcpus)?;
        (self.with_vcpus)(domid)?;
        ops.set_max_mem(domid, (ram >> 10) + 1024)?;
        let mib = ram.div_ceil(1 << 20);
        ops.set_paging_mempool_size(domid, paging_pool_bytes(mib, vcpus))?;
        populate::populate_ranges(&**ops, domid, &self.layout.ram_ranges(ram))?;
        Ok((dom, arch))
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

/// Builds and starts a domain as `config` says, through `ops`: on x86_64 a PVH guest, on
/// aarch64 an Arm guest ([`arm`]).
pub fn build<O: DomainOps>(ops: Arc<O>, config: &PvhConfig) -> Result<Domain<O>> {
    #[cfg(target_arch = "x86_64")]
    {
        // 1. Inputs, checked before anything exists in Xen (the kernel is decoded here).
        build_x86::check(config)?;
        let kernel = Kernel::open_with(&config.kernel, config.bzimage)?;
        build_with_kernel(ops, config, &kernel)
    }
    #[cfg(target_arch = "aarch64")]
    {
        arm::check(config)?;
        let image = arm::image::ArmImage::open(&config.kernel)?;
        arm::build_with_image(ops, config, &image)
    }
}
