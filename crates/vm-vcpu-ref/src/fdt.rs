// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Flattened device tree for booting an aarch64 Linux guest.
//!
//! Generates the nodes a kernel needs to start: memory, cpus (PSCI enable
//! method), the GIC described by a [`GicConfig`], the architected timer,
//! PSCI and `/chosen` (bootargs, optional initrd). This is plain data
//! generation, so it compiles and is tested on every host architecture.
//!
//! ```
//! use vm_vcpu_ref::fdt::FdtConfig;
//! use vm_vcpu_ref::gic::{GicConfig, GicVersion, MmioRegion};
//!
//! let gic = GicConfig::below(GicVersion::V3, 2, 0x0900_0000, 64).unwrap();
//! let cfg = FdtConfig::new(vec![MmioRegion::new(0x4000_0000, 0x1000_0000)], 2, gic)
//!     .with_cmdline("console=ttyAMA0 panic=1");
//! let blob = cfg.create().unwrap();
//! assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
//! ```

use vm_fdt::FdtWriter;
use vm_memory::{GuestAddress, GuestMemory};

use crate::error::{Error, Result};
use crate::gic::{
    GicConfig, GicVersion, MmioRegion, FDT_IRQ_PPI, FDT_IRQ_SPI, IRQ_TYPE_LEVEL_HIGH,
    IRQ_TYPE_LEVEL_LOW, MAINTENANCE_PPI,
};
use crate::guest;

/// Phandle of the GIC node.
pub const GIC_PHANDLE: u32 = 1;
/// Largest device tree blob Linux accepts on arm64 (2 MiB).
pub const MAX_FDT_SIZE: usize = 2 << 20;
/// Architected timer PPIs: secure physical, non-secure physical, virtual,
/// hypervisor physical (interrupt IDs 29, 30, 27, 26).
pub const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// The architected timer PPIs Xen's toolstack describes to its guests: secure physical,
/// non-secure physical, virtual (interrupt IDs 29, 30, 27), level-sensitive active low.
pub const XEN_TIMER_PPIS: [u32; 3] = [13, 14, 11];
/// MPIDR bits that form a CPU node's `reg` (Aff3 and Aff2..Aff0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// How PSCI calls reach the firmware.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PsciMethod {
    /// `hvc`: the hypervisor implements PSCI (KVM, Xen).
    #[default]
    Hvc,
    /// `smc`: secure firmware implements it.
    Smc,
}

impl PsciMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
        }
    }
}

/// The PSCI version the `/psci` node declares: what the guest may rely on before it asks
/// (`PSCI_VERSION`) the firmware.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PsciVersion {
    /// PSCI 0.2 (`arm,psci-0.2`, `arm,psci`).
    #[default]
    V0_2,
    /// PSCI 1.0 (`arm,psci-1.0` before those): what Xen implements for its guests (1.1) and
    /// its toolstack declares.
    V1_0,
}

impl PsciVersion {
    fn compatible(self) -> Vec<String> {
        let newest_first: &[&str] = match self {
            Self::V0_2 => &["arm,psci-0.2", "arm,psci"],
            Self::V1_0 => &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"],
        };
        newest_first.iter().map(|c| c.to_string()).collect()
    }
}

/// An ARM SBSA generic UART (`arm,sbsa-uart`: the PL011 subset the Server Base System
/// Architecture defines, which Xen emulates as its vPL011): registers and interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SbsaUart {
    /// Its registers.
    pub regs: MmioRegion,
    /// Its interrupt: SPI number `spi` (interrupt ID 32 + `spi`), level high.
    pub spi: u32,
    /// The line speed the guest is told (`current-speed`, required by Linux's driver).
    pub baud: u32,
}

/// The conventional MPIDR of vCPU `index`: 16 CPUs per cluster (Aff0), the
/// cluster number in Aff1, so GICv3 SGI target lists can reach every CPU.
/// On a real aarch64 host the value a hypervisor reports for the vCPU
/// should be passed instead.
pub const fn default_mpidr(index: usize) -> u64 {
    let i = index as u64;
    ((i / 16) & 0xff) << 8 | (i % 16)
}

/// A `/hypervisor` node: how a guest finds the hypervisor it runs on (Xen's binding:
/// `compatible` `"xen,xen-<major>.<minor>"` and `"xen,xen"`, `reg` the grant-table space first, the
/// event-channel upcall as a level-low PPI on every CPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HypervisorNode {
    /// `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// `reg` regions.
    pub reg: Vec<MmioRegion>,
    /// The upcall interrupt's PPI number (interrupt ID minus 16).
    pub ppi: u32,
}

impl HypervisorNode {
    /// The node of Xen `major.minor` with grant-table space `grant_table` and the event-channel
    /// upcall on interrupt ID `evtchn_irq` (a PPI, 16 to 31).
    pub fn xen(major: u16, minor: u16, grant_table: MmioRegion, evtchn_irq: u32) -> Result<Self> {
        if !(16..32).contains(&evtchn_irq) {
            return Err(Error::InvalidGic {
                reason: "the hypervisor upcall must be a PPI (interrupt ID 16 to 31)",
                value: u64::from(evtchn_irq),
            });
        }
        Ok(Self {
            compatible: vec![format!("xen,xen-{major}.{minor}"), "xen,xen".to_owned()],
            reg: vec![grant_table],
            ppi: evtchn_irq - 16,
        })
    }
}

/// Everything the generated device tree describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdtConfig {
    /// RAM regions, one `memory@` node each.
    pub memory: Vec<MmioRegion>,
    /// MPIDR of each vCPU, in vCPU order.
    pub mpidrs: Vec<u64>,
    /// The interrupt controller.
    pub gic: GicConfig,
    /// Kernel command line (`/chosen/bootargs`).
    pub cmdline: String,
    /// Initial ramdisk location, if any.
    pub initrd: Option<MmioRegion>,
    /// PSCI conduit.
    pub psci: PsciMethod,
    /// The PSCI version declared.
    pub psci_version: PsciVersion,
    /// A `/hypervisor` node, if any.
    pub hypervisor: Option<HypervisorNode>,
    /// An SBSA UART node, if any.
    pub sbsa_uart: Option<SbsaUart>,
    /// The timer's `clock-frequency` in Hz, for a hypervisor that cannot let the guest read it
    /// from `CNTFRQ_EL0` (none: the property is left out).
    pub timer_frequency: Option<u32>,
    /// The timer's PPI numbers ([`TIMER_PPIS`] by default, [`XEN_TIMER_PPIS`] for Xen).
    pub timer_ppis: Vec<u32>,
    /// Their trigger: `IRQ_TYPE_LEVEL_HIGH` by default, `IRQ_TYPE_LEVEL_LOW` for Xen.
    pub timer_trigger: u32,
}

impl FdtConfig {
    /// A description of `num_cpus` vCPUs with [`default_mpidr`] values,
    /// the given RAM and GIC, an empty command line and no initrd.
    pub fn new(memory: Vec<MmioRegion>, num_cpus: usize, gic: GicConfig) -> Self {
        Self {
            memory,
            mpidrs: (0..num_cpus).map(default_mpidr).collect(),
            gic,
            cmdline: String::new(),
            initrd: None,
            psci: PsciMethod::Hvc,
            psci_version: PsciVersion::default(),
            hypervisor: None,
            sbsa_uart: None,
            timer_frequency: None,
            timer_ppis: TIMER_PPIS.to_vec(),
            timer_trigger: IRQ_TYPE_LEVEL_HIGH,
        }
    }

    /// Adds a `/hypervisor` node.
    pub fn with_hypervisor(mut self, node: HypervisorNode) -> Self {
        self.hypervisor = Some(node);
        self
    }

    /// Sets the command line.
    pub fn with_cmdline(mut self, cmdline: &str) -> Self {
        self.cmdline = cmdline.to_owned();
        self
    }

    /// Sets the initrd location.
    pub fn with_initrd(mut self, initrd: MmioRegion) -> Self {
        self.initrd = Some(initrd);
        self
    }

    fn validate(&self) -> Result<()> {
        self.gic.validate()?;
        if self.mpidrs.is_empty() {
            return Err(Error::NoVcpus {
                what: "device tree",
            });
        }
        if self.mpidrs.len() != self.gic.num_cpus {
            return Err(Error::InvalidGic {
                reason: "GIC CPU count differs from the device tree's vCPU count",
                value: self.mpidrs.len() as u64,
            });
        }
        if self.timer_ppis.is_empty() || self.timer_ppis.len() > 4 {
            return Err(Error::InvalidGic {
                reason: "the timer needs 1 to 4 PPIs",
                value: self.timer_ppis.len() as u64,
            });
        }
        if let Some(&ppi) = self.timer_ppis.iter().find(|&&p| p >= 16) {
            return Err(Error::InvalidGic {
                reason: "a timer PPI number must be below 16",
                value: u64::from(ppi),
            });
        }
        if let Some(offset) = self.cmdline.bytes().position(|b| b == 0) {
            return Err(Error::CmdlineHasNul { offset });
        }
        let hypervisor_reg = self.hypervisor.iter().flat_map(|h| h.reg.iter());
        for r in self
            .memory
            .iter()
            .chain(self.initrd.iter())
            .chain(hypervisor_reg)
        {
            if r.end().is_none() || r.size == 0 {
                return Err(Error::InvalidSize {
                    what: "device tree memory region",
                    value: r.base,
                    reason: "must be non-empty and not wrap around",
                });
            }
        }
        if self.memory.is_empty() {
            return Err(Error::InvalidSize {
                what: "device tree memory",
                value: 0,
                reason: "at least one RAM region is required",
            });
        }
        Ok(())
    }

    /// Generates the device tree blob.
    pub fn create(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut fdt = FdtWriter::new()?;
        let root = fdt.begin_node("")?;
        fdt.property_string("compatible", "linux,dummy-virt")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

        for r in &self.memory {
            let node = fdt.begin_node(&format!("memory@{:x}", r.base))?;
            fdt.property_string("device_type", "memory")?;
            fdt.property_array_u64("reg", &[r.base, r.size])?;
            fdt.end_node(node)?;
        }

        self.write_cpus(&mut fdt)?;
        self.write_gic(&mut fdt)?;
        self.write_timer(&mut fdt)?;
        self.write_hypervisor(&mut fdt)?;
        self.write_sbsa_uart(&mut fdt)?;

        let psci = fdt.begin_node("psci")?;
        fdt.property_string_list("compatible", self.psci_version.compatible())?;
        fdt.property_string("method", self.psci.as_str())?;
        fdt.end_node(psci)?;

        let chosen = fdt.begin_node("chosen")?;
        fdt.property_string("bootargs", &self.cmdline)?;
        if let Some(initrd) = self.initrd {
            fdt.property_u64("linux,initrd-start", initrd.base)?;
            // end() was checked in validate().
            fdt.property_u64("linux,initrd-end", initrd.base + initrd.size)?;
        }
        fdt.end_node(chosen)?;

        fdt.end_node(root)?;
        let blob = fdt.finish()?;
        if blob.len() > MAX_FDT_SIZE {
            return Err(Error::InvalidSize {
                what: "device tree",
                value: blob.len() as u64,
                reason: "larger than the 2 MiB a kernel accepts",
            });
        }
        Ok(blob)
    }

    fn write_cpus(&self, fdt: &mut FdtWriter) -> Result<()> {
        let cpus = fdt.begin_node("cpus")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 0)?;
        for mpidr in &self.mpidrs {
            let reg = mpidr & MPIDR_AFFINITY_MASK;
            let cpu = fdt.begin_node(&format!("cpu@{reg:x}"))?;
            fdt.property_string("device_type", "cpu")?;
            fdt.property_string("compatible", "arm,armv8")?;
            // Secondary vCPUs wait for PSCI CPU_ON; the boot vCPU carries
            // the same method so a kernel can also stop and restart it.
            fdt.property_string("enable-method", "psci")?;
            fdt.property_u64("reg", reg)?;
            fdt.end_node(cpu)?;
        }
        fdt.end_node(cpus)?;
        Ok(())
    }

    fn write_gic(&self, fdt: &mut FdtWriter) -> Result<()> {
        let g = &self.gic;
        let node = fdt.begin_node(&format!("intc@{:x}", g.distributor.base))?;
        fdt.property_string("compatible", g.version.compatible())?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_u32("#interrupt-cells", 3)?;
        fdt.property_array_u64(
            "reg",
            &[
                g.distributor.base,
                g.distributor.size,
                g.cpu_region.base,
                g.cpu_region.size,
            ],
        )?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_null("ranges")?;
        if g.version == GicVersion::V3 {
            fdt.property_u32("#redistributor-regions", 1)?;
        }
        fdt.property_array_u32(
            "interrupts",
            &[
                FDT_IRQ_PPI,
                MAINTENANCE_PPI,
                g.ppi_flags(IRQ_TYPE_LEVEL_HIGH),
            ],
        )?;
        fdt.property_phandle(GIC_PHANDLE)?;
        fdt.end_node(node)?;
        Ok(())
    }

    fn write_timer(&self, fdt: &mut FdtWriter) -> Result<()> {
        let node = fdt.begin_node("timer")?;
        fdt.property_string("compatible", "arm,armv8-timer")?;
        fdt.property_null("always-on")?;
        let flags = self.gic.ppi_flags(self.timer_trigger);
        let cells: Vec<u32> = self
            .timer_ppis
            .iter()
            .flat_map(|ppi| [FDT_IRQ_PPI, *ppi, flags])
            .collect();
        fdt.property_array_u32("interrupts", &cells)?;
        if let Some(hz) = self.timer_frequency {
            fdt.property_u32("clock-frequency", hz)?;
        }
        fdt.end_node(node)?;
        Ok(())
    }

    fn write_sbsa_uart(&self, fdt: &mut FdtWriter) -> Result<()> {
        let Some(uart) = &self.sbsa_uart else {
            return Ok(());
        };
        // Checked here: an SPI the GIC does not have would leave the guest without its UART.
        let irq = self.gic.spi_to_irq(uart.spi)?;
        let node = fdt.begin_node(&format!("sbsa-uart@{:x}", uart.regs.base))?;
        fdt.property_string("compatible", "arm,sbsa-uart")?;
        fdt.property_array_u64("reg", &[uart.regs.base, uart.regs.size])?;
        fdt.property_array_u32("interrupts", &[FDT_IRQ_SPI, irq - 32, IRQ_TYPE_LEVEL_HIGH])?;
        fdt.property_u32("current-speed", uart.baud)?;
        fdt.end_node(node)?;
        Ok(())
    }

    fn write_hypervisor(&self, fdt: &mut FdtWriter) -> Result<()> {
        let Some(h) = &self.hypervisor else {
            return Ok(());
        };
        let node = fdt.begin_node("hypervisor")?;
        fdt.property_string_list("compatible", h.compatible.clone())?;
        let reg: Vec<u64> = h.reg.iter().flat_map(|r| [r.base, r.size]).collect();
        fdt.property_array_u64("reg", &reg)?;
        fdt.property_array_u32(
            "interrupts",
            &[FDT_IRQ_PPI, h.ppi, self.gic.ppi_flags(IRQ_TYPE_LEVEL_LOW)],
        )?;
        fdt.end_node(node)?;
        Ok(())
    }
}

/// Writes a device tree blob into guest memory at `addr` (8-byte aligned,
/// as the arm64 boot protocol requires).
pub fn write_fdt<M: GuestMemory + ?Sized>(mem: &M, addr: GuestAddress, blob: &[u8]) -> Result<()> {
    if addr.0 % 8 != 0 {
        return Err(Error::Misaligned {
            what: "device tree",
            addr: addr.0,
            align: 8,
        });
    }
    guest::write(mem, addr, blob, "device tree")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::guest::test_util;

    /// Node path to its properties, parsed from a blob the way a kernel
    /// walks the structure block (header fields per the devicetree
    /// specification, chapter 5).
    pub(crate) fn parse(blob: &[u8]) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
        let be32 = |off: usize| u32::from_be_bytes(blob[off..off + 4].try_into().unwrap());
        assert_eq!(be32(0), 0xd00d_feed, "magic");
        assert_eq!(be32(4) as usize, blob.len(), "totalsize");
        let structs = be32(8) as usize;
        let strings = be32(12) as usize;
        assert_eq!(be32(20), 17, "version");
        let mut nodes = BTreeMap::new();
        let mut path: Vec<String> = Vec::new();
        let mut off = structs;
        loop {
            let token = be32(off);
            off += 4;
            match token {
                1 => {
                    let end = off + blob[off..].iter().position(|b| *b == 0).unwrap();
                    let name = String::from_utf8(blob[off..end].to_vec()).unwrap();
                    off = (end + 1 + 3) & !3;
                    path.push(name);
                    nodes.insert(path.join("/"), BTreeMap::new());
                }
                2 => {
                    path.pop();
                }
                3 => {
                    let len = be32(off) as usize;
                    let nameoff = be32(off + 4) as usize;
                    off += 8;
                    let s = strings + nameoff;
                    let e = s + blob[s..].iter().position(|b| *b == 0).unwrap();
                    let name = String::from_utf8(blob[s..e].to_vec()).unwrap();
                    let value = blob[off..off + len].to_vec();
                    off = (off + len + 3) & !3;
                    nodes.get_mut(&path.join("/")).unwrap().insert(name, value);
                }
                4 => {}
                9 => break,
                t => panic!("bad token {t}"),
            }
        }
        nodes
    }

    fn u32s(v: &[u8]) -> Vec<u32> {
        v.chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn u64s(v: &[u8]) -> Vec<u64> {
        v.chunks(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn config(version: GicVersion, cpus: usize) -> FdtConfig {
        let gic = GicConfig::below(version, cpus, 0x0900_0000, 64).unwrap();
        FdtConfig::new(
            vec![
                MmioRegion::new(0x4000_0000, 0x2000_0000),
                MmioRegion::new(0x1_0000_0000, 0x4000_0000),
            ],
            cpus,
            gic,
        )
        .with_cmdline("console=ttyAMA0 root=/dev/vda")
        .with_initrd(MmioRegion::new(0x4800_0000, 0x10_0000))
    }

    #[test]
    fn v3_tree_has_the_nodes_a_kernel_needs() {
        let blob = config(GicVersion::V3, 3).create().unwrap();
        let nodes = parse(&blob);
        let root = &nodes[""];
        assert_eq!(root["compatible"], b"linux,dummy-virt\0");
        assert_eq!(u32s(&root["interrupt-parent"]), [GIC_PHANDLE]);

        let mem = &nodes["/memory@40000000"];
        assert_eq!(mem["device_type"], b"memory\0");
        assert_eq!(u64s(&mem["reg"]), [0x4000_0000, 0x2000_0000]);
        assert_eq!(
            u64s(&nodes["/memory@100000000"]["reg"]),
            [1 << 32, 0x4000_0000]
        );

        for i in 0..3u64 {
            let cpu = &nodes[&format!("/cpus/cpu@{i:x}")];
            assert_eq!(u64s(&cpu["reg"]), [i]);
            assert_eq!(cpu["enable-method"], b"psci\0");
        }
        assert!(!nodes.contains_key("/cpus/cpu@3"));

        let gic = &nodes["/intc@8ff0000"];
        assert_eq!(gic["compatible"], b"arm,gic-v3\0");
        assert!(gic.contains_key("interrupt-controller"));
        assert_eq!(
            u64s(&gic["reg"]),
            [0x08ff_0000, 0x1_0000, 0x08f9_0000, 3 * 0x2_0000]
        );
        assert_eq!(u32s(&gic["#interrupt-cells"]), [3]);
        assert_eq!(u32s(&gic["phandle"]), [GIC_PHANDLE]);
        assert_eq!(u32s(&gic["interrupts"]), [1, 9, 4]);

        let timer = &nodes["/timer"];
        assert_eq!(timer["compatible"], b"arm,armv8-timer\0");
        assert_eq!(
            u32s(&timer["interrupts"]),
            [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
        );
        assert_eq!(nodes["/psci"]["method"], b"hvc\0");
        assert_eq!(nodes["/psci"]["compatible"], b"arm,psci-0.2\0arm,psci\0");

        let chosen = &nodes["/chosen"];
        assert_eq!(chosen["bootargs"], b"console=ttyAMA0 root=/dev/vda\0");
        assert_eq!(u64s(&chosen["linux,initrd-start"]), [0x4800_0000]);
        assert_eq!(u64s(&chosen["linux,initrd-end"]), [0x4810_0000]);
    }

    #[test]
    fn an_sbsa_uart_gets_its_registers_spi_and_speed() {
        let mut c = config(GicVersion::V3, 1);
        c.sbsa_uart = Some(SbsaUart {
            regs: MmioRegion::new(0x2200_0000, 0x1000),
            spi: 0,
            baud: 115_200,
        });
        let nodes = parse(&c.create().unwrap());
        let uart = &nodes["/sbsa-uart@22000000"];
        assert_eq!(uart["compatible"], b"arm,sbsa-uart\0");
        assert_eq!(u64s(&uart["reg"]), [0x2200_0000, 0x1000]);
        assert_eq!(u32s(&uart["interrupts"]), [0, 0, 4]);
        assert_eq!(u32s(&uart["current-speed"]), [115_200]);
        // An SPI the GIC lacks is refused, not described.
        c.sbsa_uart.as_mut().unwrap().spi = c.gic.spi_count;
        assert!(c.create().is_err());
    }

    #[test]
    fn psci_1_0_is_declared_before_the_versions_it_extends() {
        let mut c = config(GicVersion::V3, 1);
        c.psci_version = PsciVersion::V1_0;
        let nodes = parse(&c.create().unwrap());
        assert_eq!(
            nodes["/psci"]["compatible"],
            b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0"
        );
    }

    #[test]
    fn v2_tree_uses_cpu_interface_and_cpu_masks() {
        let blob = config(GicVersion::V2, 2).create().unwrap();
        let nodes = parse(&blob);
        let gic = &nodes["/intc@8ff0000"];
        assert_eq!(gic["compatible"], b"arm,cortex-a15-gic\0");
        assert_eq!(
            u64s(&gic["reg"]),
            [0x08ff_0000, 0x1_0000, 0x08fe_0000, 0x2000]
        );
        assert!(!gic.contains_key("#redistributor-regions"));
        assert_eq!(u32s(&nodes["/timer"]["interrupts"])[2], 0x304);
    }

    #[test]
    fn a_xen_guest_tree_has_the_hypervisor_node_and_the_timer_frequency() {
        let gic = GicConfig {
            version: GicVersion::V2,
            num_cpus: 1,
            distributor: MmioRegion::new(0x0300_1000, 0x1000),
            cpu_region: MmioRegion::new(0x0300_2000, 0x2000),
            spi_count: 32,
        };
        let xen = HypervisorNode::xen(4, 17, MmioRegion::new(0x3800_0000, 0x100_0000), 31).unwrap();
        let mut cfg = FdtConfig::new(vec![MmioRegion::new(0x4000_0000, 0x800_0000)], 1, gic)
            .with_hypervisor(xen);
        cfg.timer_frequency = Some(62_500_000);
        cfg.timer_ppis = XEN_TIMER_PPIS.to_vec();
        cfg.timer_trigger = IRQ_TYPE_LEVEL_LOW;
        let nodes = parse(&cfg.create().unwrap());
        // Xen's three timer PPIs, level low, CPU mask of one CPU.
        assert_eq!(
            u32s(&nodes["/timer"]["interrupts"]),
            [1, 13, 0x108, 1, 14, 0x108, 1, 11, 0x108]
        );
        let h = &nodes["/hypervisor"];
        assert_eq!(h["compatible"], b"xen,xen-4.17\0xen,xen\0");
        assert_eq!(u64s(&h["reg"]), [0x3800_0000, 0x100_0000]);
        // PPI 15 (interrupt 31), level low, CPU mask of one CPU (GICv2).
        assert_eq!(u32s(&h["interrupts"]), [1, 15, 0x108]);
        assert_eq!(u32s(&nodes["/timer"]["clock-frequency"]), [62_500_000]);
        assert!(nodes.contains_key("/intc@3001000"));
        // Without them, neither is written.
        let plain = parse(&config(GicVersion::V3, 1).create().unwrap());
        assert!(!plain.contains_key("/hypervisor"));
        assert!(!plain["/timer"].contains_key("clock-frequency"));
        // Timer PPIs must be PPI numbers, one to four of them.
        for ppis in [vec![], vec![16], vec![13, 14, 11, 10, 12]] {
            let mut bad = cfg.clone();
            bad.timer_ppis = ppis;
            assert!(matches!(bad.create(), Err(Error::InvalidGic { .. })));
        }
        // The upcall must be a PPI.
        let gnt = MmioRegion::new(0x3800_0000, 0x100_0000);
        assert!(HypervisorNode::xen(4, 17, gnt, 32).is_err());
        assert!(HypervisorNode::xen(4, 17, gnt, 15).is_err());
    }

    #[test]
    fn mpidrs_beyond_sixteen_use_aff1() {
        assert_eq!(default_mpidr(15), 15);
        assert_eq!(default_mpidr(16), 0x100);
        assert_eq!(default_mpidr(33), 0x201);
        let blob = config(GicVersion::V3, 17).create().unwrap();
        let nodes = parse(&blob);
        assert_eq!(u64s(&nodes["/cpus/cpu@100"]["reg"]), [0x100]);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let mut c = config(GicVersion::V3, 2);
        c.mpidrs.pop();
        assert!(matches!(c.create(), Err(Error::InvalidGic { .. })));
        let c = config(GicVersion::V3, 2).with_cmdline("a\0b");
        assert!(matches!(
            c.create(),
            Err(Error::CmdlineHasNul { offset: 1 })
        ));
        let mut c = config(GicVersion::V3, 2);
        c.memory.clear();
        assert!(c.create().is_err());
        let c = config(GicVersion::V3, 2).with_initrd(MmioRegion::new(u64::MAX, 2));
        assert!(c.create().is_err());
    }

    #[test]
    fn blob_is_written_to_guest_memory() {
        let mem = test_util::mem(0x10000);
        let blob = config(GicVersion::V3, 1).create().unwrap();
        write_fdt(&mem, GuestAddress(0x1000), &blob).unwrap();
        let mut back = vec![0u8; blob.len()];
        guest::read(&mem, GuestAddress(0x1000), &mut back, "t").unwrap();
        assert_eq!(back, blob);
        assert!(matches!(
            write_fdt(&mem, GuestAddress(0x1004), &blob),
            Err(Error::Misaligned { .. })
        ));
        assert!(matches!(
            write_fdt(&mem, GuestAddress(0xff00), &blob),
            Err(Error::OutsideGuestMemory { .. })
        ));
    }
}
