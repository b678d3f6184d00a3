// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The ACPI tables of a PVH domain, where Xen's own toolstack puts them.
//!
//! A PVH Linux kernel finds its CPUs through ACPI (the start info's `rsdp_paddr`, then the
//! RSDP, XSDT and MADT); without tables it runs on vCPU 0 alone. The tables themselves come
//! from vm-vcpu-ref's [`acpi`](vm_vcpu_ref::acpi) module; this module places them as libxl
//! does for PVH guests (`libxl__dom_load_acpi`, `tools/libs/light/libxl_x86_acpi.c`):
//!
//! - in the MMIO hole below 4 GiB: libxl keeps the page at 0xfc000000 (hvmloader's
//!   `ACPI_INFO_PHYSICAL_ADDRESS`) for the information block its DSDT's AML reads, and puts
//!   the tables from the next page on ([`TABLES_ADDR`], at most [`MAX_TABLE_PAGES`] pages).
//!   The DSDT here has no AML, so that page is neither populated nor written;
//! - the RSDP at the start of the page after the tables, where libxl puts it for kernels that
//!   announce `XENFEAT_linux_rsdp_unrestricted` in their ELF notes (they take `rsdp_paddr`
//!   wherever it points; Debian's bookworm and trixie kernels do). libxl puts it at 0xfffc0,
//!   where a BIOS-style scan finds it, for Linux kernels that do not; this builder does not,
//!   so such a kernel finds no ACPI and runs on vCPU 0 alone;
//! - the pages populated like RAM, and one memory map entry of type ACPI NVS covering them
//!   (libxl marks its ACPI ranges NVS from Xen 4.21 on, ACPI data before; NVS tells the guest
//!   never to reuse them, a kexec'd kernel included).
//!
//! The MADT lists one enabled Processor Local APIC per vCPU with the APIC ID Xen's emulated
//! local APIC reports, twice the vCPU ID (`vlapic_reset` in `xen/arch/x86/hvm/vlapic.c`, and
//! libxl's `acpi_lapic_id`), and no I/O APIC: a PVH domain emulates only the local APIC. The
//! FADT is hardware-reduced (no PM timer, PM1 or GPE blocks, SCI, 8259s, VGA or CMOS RTC),
//! which is what a PVH domain has; libxl's x86 FADT instead describes fixed hardware at the
//! addresses hvmloader's HVM guests use (libxl sets hardware-reduced only for Arm guests).

use vm_memory::GuestAddress;
use vm_vcpu_ref::acpi::{AcpiImage, AcpiTables, Madt, MadtCpu};
use vm_vcpu_ref::memmap::{MemoryMapEntry, MemoryType};
use xen_bindings::layout::RamRange;
use xen_bindings::DomId;

use super::memory::{self, PAGE};
use super::ops::DomainOps;
use crate::error::{Error, Result};

/// libxl's ACPI information page (hvmloader's `ACPI_INFO_PHYSICAL_ADDRESS`): the bottom of
/// the ACPI range. RAM must end at or below it.
pub const ACPI_INFO_ADDR: u64 = 0xfc00_0000;
/// Where the tables start: the page after the information page.
pub const TABLES_ADDR: u64 = ACPI_INFO_ADDR + PAGE;
/// Most pages the tables may take (libxl's `NUM_ACPI_PAGES`).
pub const MAX_TABLE_PAGES: u64 = 16;

/// The APIC ID Xen gives vCPU `vcpu` of an HVM or PVH domain.
pub const fn apic_id(vcpu: u32) -> u32 {
    vcpu * 2
}

/// The tables of a domain with some number of vCPUs, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiLayout {
    image: AcpiImage,
    /// Pages from [`TABLES_ADDR`]: the tables', then the RSDP's.
    pages: u64,
}

impl AcpiLayout {
    /// The tables for `vcpus` vCPUs, all online, placed as libxl places them.
    pub fn new(vcpus: u32) -> Result<Self> {
        let invalid = |reason: String| Error::Load {
            what: "ACPI tables",
            reason,
        };
        let cpus = (0..vcpus)
            .map(|i| MadtCpu::enabled(i, apic_id(i)))
            .collect();
        let tables = AcpiTables::new(Madt::new(cpus));
        let table_pages = (tables.tables_size() as u64).div_ceil(PAGE);
        if table_pages > MAX_TABLE_PAGES {
            return Err(invalid(format!(
                "{vcpus} vCPUs need {table_pages} pages of tables, more than {MAX_TABLE_PAGES}"
            )));
        }
        let rsdp = TABLES_ADDR + table_pages * PAGE;
        let image = tables
            .build(GuestAddress(TABLES_ADDR), GuestAddress(rsdp))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            image,
            pages: table_pages + 1,
        })
    }

    /// The RSDP's address, for the start info.
    pub fn rsdp(&self) -> u64 {
        self.image.rsdp_addr.0
    }

    /// The guest frames the tables and the RSDP take.
    pub fn gfns(&self) -> Vec<u64> {
        let first = TABLES_ADDR / PAGE;
        (first..first + self.pages).collect()
    }

    /// The memory map entry that keeps the guest off them: ACPI NVS.
    pub fn memory_map_entry(&self) -> MemoryMapEntry {
        MemoryMapEntry {
            addr: TABLES_ADDR,
            size: self.pages * PAGE,
            kind: MemoryType::Nvs,
        }
    }

    /// The serialised tables.
    pub fn image(&self) -> &AcpiImage {
        &self.image
    }
}

/// The memory map of a guest whose RAM is `ram`, with the ACPI tables of `acpi`, by address.
pub fn memory_map(ram: &[RamRange], acpi: &AcpiLayout) -> Vec<MemoryMapEntry> {
    let mut map = memory::memory_map(ram);
    map.push(acpi.memory_map_entry());
    map.sort_unstable_by_key(|e| e.addr);
    map
}

/// Populates the pages of `acpi` in `domid` and writes the tables and the RSDP there (the
/// rest of the pages zeroed: Xen does not promise scrubbed memory).
pub fn write<O: DomainOps + ?Sized>(ops: &O, domid: DomId, acpi: &AcpiLayout) -> Result<()> {
    let gfns = acpi.gfns();
    super::populate::populate_exact(ops, domid, 0, &gfns, "ACPI tables")?;
    let pages = ops.map_guest(domid, &gfns)?;
    let mut bytes = vec![0u8; pages.len()];
    let image = &acpi.image;
    let at = |addr: GuestAddress| (addr.0 - TABLES_ADDR) as usize;
    let tables = at(image.tables_addr);
    bytes[tables..tables + image.tables.len()].copy_from_slice(&image.tables);
    let rsdp = at(image.rsdp_addr);
    bytes[rsdp..rsdp + image.rsdp.len()].copy_from_slice(&image.rsdp);
    // SAFETY: `pages` maps `pages.len()` bytes writable for this scope, and `bytes` is as
    // long; the domain is paused and nothing else uses these pages yet.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), pages.as_ptr(), bytes.len()) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_sit_where_libxl_puts_them_and_the_rsdp_follows() {
        let one = AcpiLayout::new(1).unwrap();
        assert_eq!(one.image().dsdt_addr.0, 0xfc00_1000);
        assert_eq!(one.rsdp(), 0xfc00_2000, "the page after one page of tables");
        assert_eq!(one.gfns(), [0xfc001, 0xfc002]);
        let e = one.memory_map_entry();
        assert_eq!((e.addr, e.size, e.kind.code()), (0xfc00_1000, 0x2000, 4));
        // 128 vCPUs: 1068 bytes of MADT, still one page of tables.
        let most = AcpiLayout::new(super::super::MAX_VCPUS).unwrap();
        assert_eq!(most.rsdp(), 0xfc00_2000);
    }

    #[test]
    fn the_madt_gives_each_vcpu_the_apic_id_xen_gives_it() {
        let acpi = AcpiLayout::new(4).unwrap();
        let image = acpi.image();
        let madt = &image.tables[(image.madt_addr.0 - TABLES_ADDR) as usize..];
        let len = u32::from_le_bytes(madt[4..8].try_into().unwrap()) as usize;
        assert_eq!(len, 44 + 4 * 8);
        let ids: Vec<(u8, u8, u8)> = madt[44..len]
            .chunks(8)
            .map(|e| (e[0], e[3], e[4]))
            .collect();
        // Type 0 (local APIC), APIC ID 2 x vCPU, enabled.
        assert_eq!(ids, [(0, 0, 1), (0, 2, 1), (0, 4, 1), (0, 6, 1)]);
        assert_eq!(
            apic_id(127),
            254,
            "the last vCPU still fits a local APIC entry"
        );
    }

    #[test]
    fn the_memory_map_lists_ram_acpi_and_special_pages_by_address() {
        let acpi = AcpiLayout::new(2).unwrap();
        let map = memory_map(
            &[RamRange {
                start: 0,
                len: 128 << 20,
            }],
            &acpi,
        );
        let kinds: Vec<(u64, u32)> = map.iter().map(|e| (e.addr, e.kind.code())).collect();
        assert_eq!(kinds, [(0, 1), (0xfc00_1000, 4), (0xfeff_8000, 2)]);
    }
}
