// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Description of an Arm Generic Interrupt Controller (v2 or v3).
//!
//! Plain data shared by the device tree builder and by whatever programs
//! the hypervisor's virtual GIC: where the distributor and the per-CPU
//! region (redistributors for v3, CPU interface for v2) live and how many
//! shared peripheral interrupts (SPIs) exist. It compiles and is tested on
//! every host architecture.
//!
//! ```
//! use vm_vcpu_ref::gic::{GicConfig, GicVersion};
//!
//! let gic = GicConfig::below(GicVersion::V3, 2, 0x4000_0000, 96).unwrap();
//! assert_eq!(gic.distributor.base, 0x3fff_0000);
//! assert_eq!(gic.cpu_region.size, 2 * 0x2_0000);
//! assert_eq!(gic.nr_irqs(), 128);
//! ```

use crate::error::{Error, Result};

/// Size of the distributor frame (v2 and v3).
pub const DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// Size of one GICv3 redistributor (RD_base and SGI_base frames).
pub const REDISTRIBUTOR_SIZE: u64 = 0x2_0000;
/// Size of the GICv2 CPU interface.
pub const CPU_INTERFACE_SIZE: u64 = 0x2000;
/// Alignment [`GicConfig::below`] gives the frames (64 KiB, what KVM requires).
pub const FRAME_ALIGN: u64 = 0x1_0000;
/// Alignment every frame needs (a 4 KiB page): Xen's guest GIC frames are only page aligned.
pub const PAGE_ALIGN: u64 = 0x1000;
/// Size of a GICv2 distributor (4 KiB; GICv3's is [`DISTRIBUTOR_SIZE`]).
pub const V2_DISTRIBUTOR_SIZE: u64 = 0x1000;
/// Interrupt IDs below this are SGIs and PPIs, private to each CPU.
pub const PRIVATE_IRQS: u32 = 32;
/// Most SPIs a GIC describes: 1024 interrupt lines in steps of 32, the
/// first 32 private (IDs 1020 to 1023 are special and never delivered).
pub const MAX_SPIS: u32 = 992;
/// Most CPUs a GICv2 serves.
pub const MAX_V2_CPUS: usize = 8;
/// Most CPUs this description accepts for a GICv3.
pub const MAX_V3_CPUS: usize = 512;

/// Device tree interrupt specifier type: shared peripheral interrupt.
pub const FDT_IRQ_SPI: u32 = 0;
/// Device tree interrupt specifier type: private peripheral interrupt.
pub const FDT_IRQ_PPI: u32 = 1;
/// Device tree interrupt flag: edge, rising.
pub const IRQ_TYPE_EDGE_RISING: u32 = 1;
/// Device tree interrupt flag: level, active low.
pub const IRQ_TYPE_LEVEL_LOW: u32 = 8;
/// Device tree interrupt flag: level, active high.
pub const IRQ_TYPE_LEVEL_HIGH: u32 = 4;
/// PPI number of the GIC maintenance interrupt (interrupt ID 25).
pub const MAINTENANCE_PPI: u32 = 9;

/// GIC architecture version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GicVersion {
    /// GICv2: distributor plus a memory-mapped CPU interface.
    V2,
    /// GICv3: distributor plus one redistributor per CPU.
    V3,
}

impl GicVersion {
    /// The device tree `compatible` string.
    pub fn compatible(self) -> &'static str {
        match self {
            Self::V2 => "arm,cortex-a15-gic",
            Self::V3 => "arm,gic-v3",
        }
    }

    /// The smallest distributor frame of this version.
    pub fn distributor_size(self) -> u64 {
        match self {
            Self::V2 => V2_DISTRIBUTOR_SIZE,
            Self::V3 => DISTRIBUTOR_SIZE,
        }
    }

    /// Most CPUs this version serves here.
    pub fn max_cpus(self) -> usize {
        match self {
            Self::V2 => MAX_V2_CPUS,
            Self::V3 => MAX_V3_CPUS,
        }
    }
}

/// A guest-physical MMIO range.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MmioRegion {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl MmioRegion {
    /// A region of `size` bytes at `base`.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last address, if it does not overflow.
    pub fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.base < other.base.saturating_add(other.size)
            && other.base < self.base.saturating_add(self.size)
    }
}

/// Where a virtual GIC lives and how large it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GicConfig {
    /// Architecture version.
    pub version: GicVersion,
    /// Number of CPUs (vCPUs) it serves.
    pub num_cpus: usize,
    /// Distributor frame.
    pub distributor: MmioRegion,
    /// GICv3: the redistributor region (one per CPU, contiguous);
    /// GICv2: the CPU interface.
    pub cpu_region: MmioRegion,
    /// Number of SPIs: a non-zero multiple of 32, at most [`MAX_SPIS`].
    pub spi_count: u32,
}

impl GicConfig {
    /// A GIC whose distributor ends at `top` with the per-CPU region right
    /// below it, validated.
    pub fn below(version: GicVersion, num_cpus: usize, top: u64, spi_count: u32) -> Result<Self> {
        let cpu_size = match version {
            GicVersion::V2 => CPU_INTERFACE_SIZE,
            GicVersion::V3 => REDISTRIBUTOR_SIZE.saturating_mul(num_cpus as u64),
        };
        let below = |what, value: u64, size: u64| {
            value.checked_sub(size).ok_or(Error::InvalidGic {
                reason: what,
                value,
            })
        };
        let dist_base = below(
            "top of the GIC range is below the distributor size",
            top,
            DISTRIBUTOR_SIZE,
        )?;
        let cpu_base = below(
            "no room below the distributor for the CPU region",
            dist_base,
            cpu_size,
        )?;
        // Keep the CPU interface frame 64 KiB aligned.
        let cpu_base = cpu_base & !(FRAME_ALIGN - 1);
        let cfg = Self {
            version,
            num_cpus,
            distributor: MmioRegion::new(dist_base, DISTRIBUTOR_SIZE),
            cpu_region: MmioRegion::new(cpu_base, cpu_size),
            spi_count,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Total interrupt IDs (private plus shared), the number a hypervisor's
    /// virtual GIC is told to implement.
    pub fn nr_irqs(&self) -> u32 {
        PRIVATE_IRQS + self.spi_count
    }

    /// The guest-visible interrupt ID of SPI number `spi`.
    pub fn spi_to_irq(&self, spi: u32) -> Result<u32> {
        if spi >= self.spi_count {
            return Err(Error::InvalidGic {
                reason: "SPI number beyond the configured SPI count",
                value: u64::from(spi),
            });
        }
        Ok(PRIVATE_IRQS + spi)
    }

    /// Checks CPU count, SPI count, alignment (4 KiB pages), sizes and overlap.
    pub fn validate(&self) -> Result<()> {
        if self.num_cpus == 0 {
            return Err(Error::NoVcpus { what: "GIC" });
        }
        if self.num_cpus > self.version.max_cpus() {
            return Err(Error::TooManyVcpus {
                what: "GIC",
                count: self.num_cpus,
                max: self.version.max_cpus(),
            });
        }
        if self.spi_count == 0 || self.spi_count % 32 != 0 || self.spi_count > MAX_SPIS {
            return Err(Error::InvalidGic {
                reason: "SPI count must be a non-zero multiple of 32, at most 992",
                value: u64::from(self.spi_count),
            });
        }
        let need = match self.version {
            GicVersion::V2 => CPU_INTERFACE_SIZE,
            GicVersion::V3 => REDISTRIBUTOR_SIZE * self.num_cpus as u64,
        };
        if self.cpu_region.size < need {
            return Err(Error::InvalidGic {
                reason: "per-CPU region too small for the CPU count",
                value: self.cpu_region.size,
            });
        }
        if self.distributor.size < self.version.distributor_size() {
            return Err(Error::InvalidGic {
                reason: "distributor region smaller than the version's (GICv2 4 KiB, v3 64 KiB)",
                value: self.distributor.size,
            });
        }
        for r in [&self.distributor, &self.cpu_region] {
            if r.base % PAGE_ALIGN != 0 {
                return Err(Error::InvalidGic {
                    reason: "GIC frame not 4 KiB aligned",
                    value: r.base,
                });
            }
            if r.end().is_none() {
                return Err(Error::InvalidGic {
                    reason: "GIC region wraps around the address space",
                    value: r.base,
                });
            }
        }
        if self.distributor.overlaps(&self.cpu_region) {
            return Err(Error::InvalidGic {
                reason: "distributor overlaps the per-CPU region",
                value: self.cpu_region.base,
            });
        }
        Ok(())
    }

    /// The device tree interrupt flags for a PPI routed to all CPUs: GICv2
    /// specifiers carry a CPU mask in bits 8..16, GICv3 ones do not.
    pub fn ppi_flags(&self, trigger: u32) -> u32 {
        match self.version {
            GicVersion::V2 => {
                let n = self.num_cpus.min(MAX_V2_CPUS) as u32;
                (((1u32 << n) - 1) << 8) | trigger
            }
            GicVersion::V3 => trigger,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_layout_below_top() {
        let g = GicConfig::below(GicVersion::V3, 4, 0x0900_0000, 64).unwrap();
        assert_eq!(g.distributor, MmioRegion::new(0x08ff_0000, 0x1_0000));
        assert_eq!(g.cpu_region, MmioRegion::new(0x08f7_0000, 0x8_0000));
        assert_eq!(g.nr_irqs(), 96);
        assert_eq!(g.spi_to_irq(0).unwrap(), 32);
        assert!(g.spi_to_irq(64).is_err());
        assert_eq!(g.ppi_flags(IRQ_TYPE_LEVEL_HIGH), 4);
    }

    #[test]
    fn v2_layout_and_cpu_mask() {
        let g = GicConfig::below(GicVersion::V2, 2, 0x0900_0000, 32).unwrap();
        assert_eq!(g.distributor.base, 0x08ff_0000);
        assert_eq!(
            g.cpu_region,
            MmioRegion::new(0x08fe_0000, CPU_INTERFACE_SIZE)
        );
        assert_eq!(g.ppi_flags(IRQ_TYPE_LEVEL_HIGH), 0x304);
        assert_eq!(GicVersion::V2.compatible(), "arm,cortex-a15-gic");
    }

    #[test]
    fn invalid_descriptions_are_typed_errors() {
        assert!(matches!(
            GicConfig::below(GicVersion::V2, 9, 0x0900_0000, 32),
            Err(Error::TooManyVcpus {
                count: 9,
                max: 8,
                ..
            })
        ));
        assert!(matches!(
            GicConfig::below(GicVersion::V3, 0, 0x0900_0000, 32),
            Err(Error::NoVcpus { .. })
        ));
        assert!(matches!(
            GicConfig::below(GicVersion::V3, 1, 0x0900_0000, 33),
            Err(Error::InvalidGic { .. })
        ));
        assert!(GicConfig::below(GicVersion::V3, 1, 0x0900_0000, 2048).is_err());
        assert!(GicConfig::below(GicVersion::V3, 1, 0x8000, 32).is_err());
        assert!(GicConfig::below(GicVersion::V3, 512, 0x100_0000, 32).is_err());
        let mut g = GicConfig::below(GicVersion::V3, 2, 0x0900_0000, 32).unwrap();
        g.cpu_region.base = g.distributor.base;
        assert!(g.validate().is_err());
        g.cpu_region.base = 0x1234;
        assert!(g.validate().is_err());
    }

    #[test]
    fn page_aligned_frames_as_xen_places_them_are_valid() {
        // Xen's guest GICv2: distributor 4 KiB at 0x0300_1000, CPU interface 8 KiB after it.
        let v2 = GicConfig {
            version: GicVersion::V2,
            num_cpus: 1,
            distributor: MmioRegion::new(0x0300_1000, 0x1000),
            cpu_region: MmioRegion::new(0x0300_2000, 0x2000),
            spi_count: 32,
        };
        assert!(v2.validate().is_ok());
        // A 4 KiB distributor is too small for a GICv3.
        let v3 = GicConfig {
            version: GicVersion::V3,
            ..v2
        };
        assert!(matches!(v3.validate(), Err(Error::InvalidGic { .. })));
        let v3 = GicConfig {
            distributor: MmioRegion::new(0x0300_1000, 0x1_0000),
            cpu_region: MmioRegion::new(0x0302_0000, 0x100_0000),
            ..v3
        };
        assert!(v3.validate().is_ok());
    }
}
