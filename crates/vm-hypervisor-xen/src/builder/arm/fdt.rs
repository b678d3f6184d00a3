// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device tree an Arm guest boots with, made by vm-vcpu-ref's [`FdtConfig`] with the
//! platform Xen emulates (`public/arch-arm.h`): RAM, the vCPUs (PSCI through `hvc`), the GIC of
//! the version Xen picked at its fixed addresses, the architected timer (with the clock
//! frequency when Xen reports one), the `/hypervisor` node (Xen's version, the grant-table
//! space and the extended regions, the event-channel PPI) and `/chosen` (command line,
//! initrd).

use vm_vcpu_ref::fdt::{FdtConfig, HypervisorNode, PsciVersion, SbsaUart, XEN_TIMER_PPIS};
use vm_vcpu_ref::gic::{GicConfig, GicVersion, MmioRegion, IRQ_TYPE_LEVEL_LOW};
use xen_bindings::abi::xen::arch_arm::*;
use xen_bindings::layout::GuestLayout;

use super::layout::{extended_regions, Placement, DTB_SLOT};
use crate::error::{Error, Result};

/// SPIs the guest's GIC has: one bank of 32 (the guest has no device that needs one yet; the
/// device tree's GIC must have some).
pub const NR_SPIS: u32 = 32;

/// The GIC version `XEN_DOMCTL_CONFIG_GIC_*` names, if it is one the builder describes.
pub fn gic_version(config: u8) -> Option<GicVersion> {
    match config {
        XEN_DOMCTL_CONFIG_GIC_V2 => Some(GicVersion::V2),
        XEN_DOMCTL_CONFIG_GIC_V3 => Some(GicVersion::V3),
        _ => None,
    }
}

/// Xen's guest GIC of `version` for `vcpus` vCPUs.
pub fn gic(version: GicVersion, vcpus: u32) -> GicConfig {
    let (distributor, cpu_region) = match version {
        GicVersion::V2 => (
            MmioRegion::new(GUEST_GICD_BASE, GUEST_GICD_SIZE),
            MmioRegion::new(GUEST_GICC_BASE, GUEST_GICC_SIZE),
        ),
        _ => (
            MmioRegion::new(GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE),
            MmioRegion::new(GUEST_GICV3_GICR0_BASE, GUEST_GICV3_GICR0_SIZE),
        ),
    };
    GicConfig {
        version,
        num_cpus: vcpus as usize,
        distributor,
        cpu_region,
        spi_count: NR_SPIS,
    }
}

/// What the device tree describes beyond the placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// RAM in bytes: from [`RAM_BASE`](super::layout::RAM_BASE) in bank 0, the rest in bank 1
    /// ([`GuestLayout::Arm`]).
    pub ram: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The GIC version Xen picked.
    pub gic: GicVersion,
    /// Xen's major and minor version.
    pub xen: (u16, u16),
    /// The timer frequency Xen reported (`clock_frequency`; 0: none).
    pub clock_frequency: u32,
    /// Width of the guest's physical addresses (`gpaddr_bits`), which bounds its extended
    /// regions.
    pub gpaddr_bits: u8,
    /// Whether the guest has Xen's virtual SBSA UART (vPL011).
    pub vuart: bool,
}

/// The device tree blob for `platform` with `cmdline` and the initrd where `placement` puts
/// it; at most [`DTB_SLOT`] bytes.
pub fn device_tree(platform: &Platform, placement: &Placement, cmdline: &str) -> Result<Vec<u8>> {
    let fdt_error = |e: vm_vcpu_ref::Error| Error::Load {
        what: "device tree",
        reason: e.to_string(),
    };
    let grant_table = MmioRegion::new(GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE);
    let (major, minor) = platform.xen;
    let mut xen =
        HypervisorNode::xen(major, minor, grant_table, GUEST_EVTCHN_PPI).map_err(fdt_error)?;
    // After the grant-table space, the extended regions (as Xen's toolstack gives them).
    xen.reg.extend(
        extended_regions(platform.ram, platform.gpaddr_bits)
            .into_iter()
            .map(|(base, size)| MmioRegion::new(base, size)),
    );
    let mut config = FdtConfig::new(
        GuestLayout::Arm
            .ram_ranges(platform.ram)
            .into_iter()
            .map(|r| MmioRegion::new(r.start, r.len))
            .collect(),
        platform.vcpus as usize,
        gic(platform.gic, platform.vcpus),
    )
    .with_cmdline(cmdline)
    .with_hypervisor(xen);
    if let Some((addr, size)) = placement.initrd {
        config = config.with_initrd(MmioRegion::new(addr, size));
    }
    config.timer_frequency = (platform.clock_frequency != 0).then_some(platform.clock_frequency);
    // The timer as Xen's toolstack describes it: secure and non-secure physical, virtual.
    config.timer_ppis = XEN_TIMER_PPIS.to_vec();
    config.timer_trigger = IRQ_TYPE_LEVEL_LOW;
    // Xen implements PSCI 1.1 for its guests, and its toolstack declares 1.0.
    config.psci_version = PsciVersion::V1_0;
    // Xen's vPL011, where the public header puts it, at the speed its toolstack gives.
    config.sbsa_uart = platform.vuart.then_some(SbsaUart {
        regs: MmioRegion::new(GUEST_PL011_BASE, GUEST_PL011_SIZE),
        spi: GUEST_VPL011_SPI - 32,
        baud: 115_200,
    });
    let blob = config.create().map_err(fdt_error)?;
    if blob.len() as u64 > DTB_SLOT {
        return Err(Error::Load {
            what: "device tree",
            reason: format!("{} bytes, more than the {DTB_SLOT} reserved", blob.len()),
        });
    }
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::super::layout::RAM_BASE;
    use super::*;

    fn platform(gic: GicVersion) -> Platform {
        Platform {
            ram: 256 << 20,
            vcpus: 2,
            gic,
            xen: (4, 20),
            clock_frequency: 0,
            gpaddr_bits: 40,
            vuart: false,
        }
    }

    fn placement() -> Placement {
        Placement {
            kernel: RAM_BASE,
            kernel_end: RAM_BASE + 0x201_0000,
            initrd: Some((0x4800_0000, 0x30_0000)),
            dtb: 0x4830_0000,
        }
    }

    /// Whether `blob` holds `needle` (a property's value or a node's name).
    fn has(blob: &[u8], needle: &[u8]) -> bool {
        blob.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn the_tree_names_xen_its_gic_and_the_initrd() {
        let blob = device_tree(&platform(GicVersion::V3), &placement(), "console=hvc0").unwrap();
        assert!(has(&blob, b"xen,xen-4.20\0xen,xen\0"));
        assert!(has(&blob, b"arm,gic-v3\0"));
        assert!(has(&blob, b"intc@3001000\0"));
        assert!(has(&blob, b"console=hvc0\0"));
        assert!(has(&blob, b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0"));
        // The grant-table space, then the extended regions, as the hypervisor node's reg
        // (big-endian cells).
        let reg: Vec<u8> = [
            GUEST_GNTTAB_BASE,
            GUEST_GNTTAB_SIZE,
            0x5000_0000,
            0xb000_0000,
            0x2_0000_0000,
            0xfe_0000_0000,
        ]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
        assert!(has(&blob, &reg));
        assert!(has(&blob, &0x4830_0000u64.to_be_bytes()), "initrd end");
        // The timer's interrupts: PPIs 13, 14 and 11, level low (GICv3: no CPU mask).
        let timer: Vec<u8> = [1u32, 13, 8, 1, 14, 8, 1, 11, 8]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert!(has(&blob, &timer));
        let v2 = device_tree(&platform(GicVersion::V2), &placement(), "").unwrap();
        assert!(has(&v2, b"arm,cortex-a15-gic\0"));
    }

    #[test]
    fn ram_beyond_bank_0_is_a_second_memory_node_in_bank_1() {
        let mut p = platform(GicVersion::V3);
        p.ram = (3 << 30) + (512 << 20);
        let blob = device_tree(&p, &placement(), "").unwrap();
        assert!(has(&blob, b"memory@40000000\0"));
        assert!(has(&blob, b"memory@200000000\0"));
        let reg = |base: u64, size: u64| -> Vec<u8> {
            [base, size].iter().flat_map(|v| v.to_be_bytes()).collect()
        };
        assert!(has(&blob, &reg(0x4000_0000, 0xc000_0000)), "bank 0, full");
        assert!(has(&blob, &reg(0x2_0000_0000, 512 << 20)), "bank 1");
        // The extended region of bank 1 starts after its RAM; bank 0 has none left.
        assert!(has(
            &blob,
            &reg(0x2_2000_0000, 0xfe_0000_0000 - (512 << 20))
        ));
    }

    #[test]
    fn the_vuart_is_described_only_when_asked_for() {
        let node = b"sbsa-uart@22000000\0";
        let mut p = platform(GicVersion::V3);
        assert!(!has(&device_tree(&p, &placement(), "").unwrap(), node));
        p.vuart = true;
        let blob = device_tree(&p, &placement(), "").unwrap();
        assert!(has(&blob, node));
        assert!(has(&blob, b"arm,sbsa-uart\0"));
        // SPI 0 (interrupt 32), level high.
        let irq: Vec<u8> = [0u32, 0, 4].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert!(has(&blob, &irq));
    }

    #[test]
    fn only_gic_v2_and_v3_are_described() {
        assert_eq!(gic_version(1), Some(GicVersion::V2));
        assert_eq!(gic_version(2), Some(GicVersion::V3));
        assert_eq!(gic_version(0), None, "NATIVE is never written back");
        assert_eq!(gic_version(7), None);
    }

    #[test]
    fn nine_vcpus_on_a_gic_v2_are_a_typed_error() {
        let mut p = platform(GicVersion::V2);
        p.vcpus = 9;
        let err = device_tree(&p, &placement(), "").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Load {
                    what: "device tree",
                    ..
                }
            ),
            "{err}"
        );
    }
}
