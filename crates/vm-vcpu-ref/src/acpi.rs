// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! ACPI tables for x86 guests: what a kernel needs to find its CPUs and to know that the
//! platform has no legacy hardware.
//!
//! [`AcpiTables`] lays out, from one address, a DSDT ([`Dsdt`], a header without AML unless
//! given some), a FADT ([`Fadt`], hardware-reduced by default), a MADT ([`Madt`], one local
//! APIC or x2APIC entry per processor) and an XSDT listing the FADT and the MADT, and
//! separately an ACPI 2.0+ RSDP pointing to the XSDT. The RSDP goes where the boot protocol
//! says (the PVH start info's `rsdp_paddr`, the zero page's `acpi_rsdp_addr`, or the BIOS
//! area a legacy guest scans). No RSDT is written: the RSDP's RSDT address is zero, which
//! ACPI 2.0 and later allow when an XSDT is present.
//!
//! The tables are serialised field by field in little-endian order (no packed structs, no
//! unsafe code). Sizes, offsets and revisions are those of the ACPI 6.5 specification
//! (sections 5.2.5 to 5.2.12) and are pinned in the tests; every table's checksum and the
//! RSDP's two make their ranges sum to zero.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::acpi::{AcpiTables, Madt, MadtCpu};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! // Two vCPUs with APIC IDs 0 and 2, both enabled.
//! let madt = Madt::new((0..2).map(|i| MadtCpu::enabled(i, 2 * i)).collect());
//! let image = AcpiTables::new(madt)
//!     .write(&mem, GuestAddress(0xe_0000), GuestAddress(0xf_ffc0))
//!     .unwrap();
//! assert_eq!(image.rsdp_addr, GuestAddress(0xf_ffc0)); // give this to the kernel
//! assert_eq!(image.xsdt_addr.0 % 16, 0);
//! ```

use vm_memory::{GuestAddress, GuestMemory, Permissions};

use crate::error::{Error, Result};
use crate::guest;

/// Size of the header every system description table starts with.
pub const HEADER_SIZE: usize = 36;
/// Size of an ACPI 2.0+ RSDP.
pub const RSDP_SIZE: usize = 36;
/// Bytes the RSDP's first checksum covers (the ACPI 1.0 part).
pub const RSDP_V1_SIZE: usize = 20;
/// Size of an ACPI 6.x FADT (up to the hypervisor vendor identity).
pub const FADT_SIZE: usize = 276;
/// Size of the MADT before its interrupt controller structures.
pub const MADT_HEADER_SIZE: usize = 44;
/// Size of a Processor Local APIC structure.
pub const LOCAL_APIC_SIZE: usize = 8;
/// Size of a Processor Local x2APIC structure.
pub const LOCAL_X2APIC_SIZE: usize = 16;
/// Alignment of every table (and of the RSDP): 16 bytes, as a legacy RSDP scan needs.
pub const TABLE_ALIGN: u64 = 16;
/// Most processor entries a [`Madt`] takes: Linux's largest `NR_CPUS`.
pub const MAX_MADT_CPUS: usize = 8192;
/// Highest APIC ID a Processor Local APIC structure carries; 0xff is the broadcast ID, so
/// higher IDs get a Processor Local x2APIC structure.
pub const MAX_XAPIC_ID: u32 = 0xfe;
/// Default local APIC address.
pub const LAPIC_DEFAULT_ADDR: u32 = 0xfee0_0000;

/// RSDP revision for ACPI 2.0 and later (an XSDT and the extended checksum are present).
pub const RSDP_REVISION: u8 = 2;
/// XSDT revision.
pub const XSDT_REVISION: u8 = 1;
/// FADT major revision (ACPI 6.x).
pub const FADT_REVISION: u8 = 6;
/// FADT minor revision (ACPI 6.5).
pub const FADT_MINOR_REVISION: u8 = 5;
/// MADT revision 5, ACPI 6.3's, the first to define the Online Capable flag.
pub const MADT_REVISION: u8 = 5;
/// DSDT revision 2: AML integers are 64 bits wide.
pub const DSDT_REVISION: u8 = 2;

/// OEM ID in every table and the RSDP.
pub const OEM_ID: [u8; 6] = *b"XENRVM";
/// OEM table ID in every table.
pub const OEM_TABLE_ID: [u8; 8] = *b"VCPU-REF";
/// OEM revision in every table.
pub const OEM_REVISION: u32 = 1;
/// Creator ID in every table (the tool that wrote it).
pub const CREATOR_ID: [u8; 4] = *b"XRVM";
/// Creator revision in every table.
pub const CREATOR_REVISION: u32 = 1;

/// Table signatures.
pub mod signature {
    /// Root System Description Pointer.
    pub const RSDP: &[u8; 8] = b"RSD PTR ";
    /// Extended System Description Table.
    pub const XSDT: &[u8; 4] = b"XSDT";
    /// Fixed ACPI Description Table.
    pub const FADT: &[u8; 4] = b"FACP";
    /// Differentiated System Description Table.
    pub const DSDT: &[u8; 4] = b"DSDT";
    /// Multiple APIC Description Table.
    pub const MADT: &[u8; 4] = b"APIC";
}

/// FADT `Flags` bits (ACPI 6.5 table 5.10).
pub mod fadt_flags {
    /// WBINVD works as specified.
    pub const WBINVD: u32 = 1 << 0;
    /// The power button is a control method button, or absent (not a fixed feature).
    pub const PWR_BUTTON: u32 = 1 << 4;
    /// The sleep button is a control method button, or absent (not a fixed feature).
    pub const SLP_BUTTON: u32 = 1 << 5;
    /// Hardware-reduced ACPI: no fixed hardware (PM timer, PM1 blocks, GPE blocks, SCI).
    pub const HW_REDUCED_ACPI: u32 = 1 << 20;
}

/// FADT `IAPC_BOOT_ARCH` bits (ACPI 6.5 table 5.11).
pub mod iapc_boot_arch {
    /// Legacy devices (ISA) are present.
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    /// An 8042 keyboard controller is present.
    pub const I8042: u16 = 1 << 1;
    /// No VGA hardware.
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
    /// MSIs must not be enabled.
    pub const MSI_NOT_SUPPORTED: u16 = 1 << 3;
    /// OSPM must not enable PCIe ASPM.
    pub const PCIE_ASPM_CONTROLS: u16 = 1 << 4;
    /// No CMOS RTC (FADT revision 5 and later).
    pub const CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;
}

/// MADT interrupt controller structure types.
pub mod madt_entry {
    /// Processor Local APIC.
    pub const LOCAL_APIC: u8 = 0;
    /// I/O APIC.
    pub const IO_APIC: u8 = 1;
    /// Processor Local x2APIC.
    pub const LOCAL_X2APIC: u8 = 9;
}

/// Local APIC / x2APIC flag: the processor is ready for use.
pub const CPU_ENABLED: u32 = 1 << 0;
/// Local APIC / x2APIC flag: a disabled processor can be enabled at run time.
pub const CPU_ONLINE_CAPABLE: u32 = 1 << 1;
/// MADT flag: the system also has dual 8259 PICs.
pub const MADT_PCAT_COMPAT: u32 = 1 << 0;

/// The 36-byte header of a table with `signature`, `revision` and total `length`; the
/// checksum byte (offset 9) is left zero.
fn header(signature: &[u8; 4], revision: u8, length: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(length as usize);
    h.extend_from_slice(signature);
    h.extend_from_slice(&length.to_le_bytes());
    h.push(revision);
    h.push(0); // checksum, set by `finish`
    h.extend_from_slice(&OEM_ID);
    h.extend_from_slice(&OEM_TABLE_ID);
    h.extend_from_slice(&OEM_REVISION.to_le_bytes());
    h.extend_from_slice(&CREATOR_ID);
    h.extend_from_slice(&CREATOR_REVISION.to_le_bytes());
    debug_assert_eq!(h.len(), HEADER_SIZE);
    h
}

/// Sets the checksum of a complete table so that it sums to zero.
fn finish(mut table: Vec<u8>) -> Vec<u8> {
    debug_assert_eq!(
        u32::from_le_bytes([table[4], table[5], table[6], table[7]]) as usize,
        table.len()
    );
    table[9] = 0;
    table[9] = guest::checksum(&table);
    table
}

/// A table of `signature` and `revision` whose body is `body`.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = header(signature, revision, (HEADER_SIZE + body.len()) as u32);
    t.extend_from_slice(body);
    finish(t)
}

/// A Generic Address Structure (12 bytes) of a register that is not there.
const GAS_NONE: [u8; 12] = [0; 12];

/// The ACPI 2.0+ RSDP pointing to the XSDT at `xsdt`, with both checksums set.
pub fn rsdp(xsdt: GuestAddress) -> [u8; RSDP_SIZE] {
    let mut r = [0u8; RSDP_SIZE];
    r[0..8].copy_from_slice(signature::RSDP);
    r[9..15].copy_from_slice(&OEM_ID);
    r[15] = RSDP_REVISION;
    // 16..20: RSDT address, none.
    r[20..24].copy_from_slice(&(RSDP_SIZE as u32).to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.0.to_le_bytes());
    // 33..36: reserved.
    r[8] = guest::checksum(&r[..RSDP_V1_SIZE]);
    r[32] = guest::checksum(&r);
    r
}

/// The XSDT listing the tables at `entries`.
pub fn xsdt(entries: &[GuestAddress]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|a| a.0.to_le_bytes()).collect();
    table(signature::XSDT, XSDT_REVISION, &body)
}

/// The Differentiated System Description Table: a header and AML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsdt {
    /// The AML definition blocks after the header; empty is a valid DSDT with no objects.
    pub aml: Vec<u8>,
}

impl Dsdt {
    /// The table.
    pub fn to_bytes(&self) -> Vec<u8> {
        table(signature::DSDT, DSDT_REVISION, &self.aml)
    }
}

/// The Fixed ACPI Description Table, as far as a guest without fixed ACPI hardware needs it.
///
/// Every PM register block, the SCI, SMI command port and FACS are absent (zero); the table
/// points to the DSDT (both the 32-bit `DSDT` field, when the address fits, and `X_DSDT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    /// `Flags` ([`fadt_flags`]).
    pub flags: u32,
    /// `IAPC_BOOT_ARCH` ([`iapc_boot_arch`]).
    pub iapc_boot_arch: u16,
    /// `Hypervisor Vendor Identity`: who the guest runs on, or zero.
    pub hypervisor_vendor: [u8; 8],
}

impl Default for Fadt {
    fn default() -> Self {
        Self::hardware_reduced()
    }
}

impl Fadt {
    /// A hardware-reduced FADT: no fixed hardware, no fixed-feature buttons, no legacy
    /// devices, no 8042, VGA or CMOS RTC.
    pub const fn hardware_reduced() -> Self {
        Self {
            flags: fadt_flags::HW_REDUCED_ACPI | fadt_flags::PWR_BUTTON | fadt_flags::SLP_BUTTON,
            iapc_boot_arch: iapc_boot_arch::VGA_NOT_PRESENT | iapc_boot_arch::CMOS_RTC_NOT_PRESENT,
            hypervisor_vendor: [0; 8],
        }
    }

    /// The table, pointing to the DSDT at `dsdt`.
    pub fn to_bytes(&self, dsdt: GuestAddress) -> Vec<u8> {
        let mut t = header(signature::FADT, FADT_REVISION, FADT_SIZE as u32);
        t.resize(FADT_SIZE, 0);
        // 36: FIRMWARE_CTRL (no FACS, allowed when hardware-reduced).
        let dsdt32 = u32::try_from(dsdt.0).unwrap_or(0);
        t[40..44].copy_from_slice(&dsdt32.to_le_bytes());
        // 44..109: interrupt model, PM profile, SCI, SMI, PM blocks and C-state latencies:
        // all zero, nothing there.
        t[109..111].copy_from_slice(&self.iapc_boot_arch.to_le_bytes());
        t[112..116].copy_from_slice(&self.flags.to_le_bytes());
        // 116..128: RESET_REG, 128: RESET_VALUE, 129..131: ARM_BOOT_ARCH: none.
        t[116..128].copy_from_slice(&GAS_NONE);
        t[131] = FADT_MINOR_REVISION;
        // 132: X_FIRMWARE_CTRL, none.
        t[140..148].copy_from_slice(&dsdt.0.to_le_bytes());
        // 148..268: the extended PM, GPE and sleep register blocks: none.
        t[268..276].copy_from_slice(&self.hypervisor_vendor);
        finish(t)
    }
}

/// One processor of a [`Madt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MadtCpu {
    /// ACPI processor UID (matches processor objects in the DSDT, if any).
    pub uid: u32,
    /// Its local APIC ID (x2APIC ID).
    pub apic_id: u32,
    /// `Flags` ([`CPU_ENABLED`], [`CPU_ONLINE_CAPABLE`]).
    pub flags: u32,
}

impl MadtCpu {
    /// A processor that is ready for use.
    pub const fn enabled(uid: u32, apic_id: u32) -> Self {
        Self {
            uid,
            apic_id,
            flags: CPU_ENABLED,
        }
    }

    /// Whether it fits a Processor Local APIC structure (else it needs an x2APIC one).
    pub const fn is_xapic(&self) -> bool {
        self.apic_id <= MAX_XAPIC_ID && self.uid <= 0xff
    }

    fn entry_size(&self) -> usize {
        if self.is_xapic() {
            LOCAL_APIC_SIZE
        } else {
            LOCAL_X2APIC_SIZE
        }
    }
}

/// The Multiple APIC Description Table: the local APIC address and one Processor Local APIC
/// structure per processor (a Processor Local x2APIC structure for APIC IDs above
/// [`MAX_XAPIC_ID`] or UIDs above 255). No I/O APIC is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Madt {
    /// Local APIC address.
    pub lapic_addr: u32,
    /// `Flags` ([`MADT_PCAT_COMPAT`] if the guest has 8259 PICs).
    pub flags: u32,
    /// The processors, the boot processor first.
    pub cpus: Vec<MadtCpu>,
}

impl Madt {
    /// A MADT for `cpus` at the default local APIC address, without 8259 PICs.
    pub fn new(cpus: Vec<MadtCpu>) -> Self {
        Self {
            lapic_addr: LAPIC_DEFAULT_ADDR,
            flags: 0,
            cpus,
        }
    }

    /// Bytes the table takes.
    pub fn size(&self) -> usize {
        MADT_HEADER_SIZE + self.cpus.iter().map(MadtCpu::entry_size).sum::<usize>()
    }

    fn check(&self) -> Result<()> {
        if self.cpus.is_empty() {
            return Err(Error::NoVcpus { what: "MADT" });
        }
        if self.cpus.len() > MAX_MADT_CPUS {
            return Err(Error::TooManyVcpus {
                what: "MADT",
                count: self.cpus.len(),
                max: MAX_MADT_CPUS,
            });
        }
        for (i, cpu) in self.cpus.iter().enumerate() {
            let invalid = |reason| Error::InvalidApicId {
                uid: cpu.uid,
                apic_id: cpu.apic_id,
                reason,
            };
            if cpu.apic_id == u32::MAX {
                return Err(invalid("0xffffffff is the x2APIC broadcast ID"));
            }
            if self.cpus[..i].iter().any(|c| c.apic_id == cpu.apic_id) {
                return Err(invalid("another processor has this APIC ID"));
            }
            if self.cpus[..i].iter().any(|c| c.uid == cpu.uid) {
                return Err(invalid("another processor has this UID"));
            }
        }
        Ok(())
    }

    /// The table.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let size = self.size();
        let mut t = header(signature::MADT, MADT_REVISION, size as u32);
        t.extend_from_slice(&self.lapic_addr.to_le_bytes());
        t.extend_from_slice(&self.flags.to_le_bytes());
        for cpu in &self.cpus {
            if cpu.is_xapic() {
                t.extend_from_slice(&[
                    madt_entry::LOCAL_APIC,
                    LOCAL_APIC_SIZE as u8,
                    cpu.uid as u8,
                    cpu.apic_id as u8,
                ]);
            } else {
                t.extend_from_slice(&[madt_entry::LOCAL_X2APIC, LOCAL_X2APIC_SIZE as u8, 0, 0]);
                t.extend_from_slice(&cpu.apic_id.to_le_bytes());
            }
            t.extend_from_slice(&cpu.flags.to_le_bytes());
            if !cpu.is_xapic() {
                t.extend_from_slice(&cpu.uid.to_le_bytes());
            }
        }
        debug_assert_eq!(t.len(), size);
        Ok(finish(t))
    }
}

/// The tables a guest needs to find its processors: DSDT, FADT and MADT, and the XSDT
/// listing the FADT and MADT, placed in that order from one address (each 16-byte aligned),
/// and the RSDP, placed on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTables {
    /// The DSDT.
    pub dsdt: Dsdt,
    /// The FADT.
    pub fadt: Fadt,
    /// The MADT.
    pub madt: Madt,
}

/// The serialised tables and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiImage {
    /// Where [`Self::tables`] goes.
    pub tables_addr: GuestAddress,
    /// DSDT, FADT, MADT and XSDT, with zero padding between them.
    pub tables: Vec<u8>,
    /// Where [`Self::rsdp`] goes: the address to give the kernel.
    pub rsdp_addr: GuestAddress,
    /// The RSDP.
    pub rsdp: [u8; RSDP_SIZE],
    /// The DSDT's address.
    pub dsdt_addr: GuestAddress,
    /// The FADT's address.
    pub fadt_addr: GuestAddress,
    /// The MADT's address.
    pub madt_addr: GuestAddress,
    /// The XSDT's address.
    pub xsdt_addr: GuestAddress,
}

/// `n` rounded up to the table alignment.
const fn align(n: u64) -> u64 {
    n.div_ceil(TABLE_ALIGN) * TABLE_ALIGN
}

impl AcpiTables {
    /// An empty DSDT, a hardware-reduced FADT and `madt`.
    pub fn new(madt: Madt) -> Self {
        Self {
            dsdt: Dsdt::default(),
            fadt: Fadt::hardware_reduced(),
            madt,
        }
    }

    /// Bytes the tables (without the RSDP) take, padding included.
    pub fn tables_size(&self) -> usize {
        let xsdt = HEADER_SIZE + 2 * 8;
        let sizes = [
            HEADER_SIZE + self.dsdt.aml.len(),
            FADT_SIZE,
            self.madt.size(),
        ];
        (sizes.iter().map(|&s| align(s as u64)).sum::<u64>() as usize) + xsdt
    }

    /// Serialises the tables for placement at `tables_addr` and the RSDP for `rsdp_addr`
    /// (both 16-byte aligned, not overlapping, not wrapping around).
    pub fn build(&self, tables_addr: GuestAddress, rsdp_addr: GuestAddress) -> Result<AcpiImage> {
        for (what, addr) in [("ACPI tables", tables_addr), ("ACPI RSDP", rsdp_addr)] {
            if addr.0 % TABLE_ALIGN != 0 {
                return Err(Error::Misaligned {
                    what,
                    addr: addr.0,
                    align: TABLE_ALIGN,
                });
            }
        }
        let size = self.tables_size();
        for (what, addr, len) in [
            ("ACPI tables", tables_addr, size),
            ("ACPI RSDP", rsdp_addr, RSDP_SIZE),
        ] {
            if addr.0.checked_add(len as u64).is_none() {
                return Err(Error::AddressOverflow {
                    what,
                    addr: addr.0,
                    len,
                });
            }
        }
        guest::check_disjoint(&[
            ("ACPI tables", tables_addr.0, size as u64),
            ("ACPI RSDP", rsdp_addr.0, RSDP_SIZE as u64),
        ])?;

        let mut tables = Vec::with_capacity(size);
        let mut place = |table: &[u8]| {
            let at = GuestAddress(tables_addr.0 + tables.len() as u64);
            tables.extend_from_slice(table);
            tables.resize(align(tables.len() as u64) as usize, 0);
            at
        };
        let dsdt_addr = place(&self.dsdt.to_bytes());
        let fadt_addr = place(&self.fadt.to_bytes(dsdt_addr));
        let madt_addr = place(&self.madt.to_bytes()?);
        let xsdt_addr = place(&xsdt(&[fadt_addr, madt_addr]));
        tables.truncate(size);
        debug_assert_eq!(tables.len(), size);
        Ok(AcpiImage {
            tables_addr,
            tables,
            rsdp_addr,
            rsdp: rsdp(xsdt_addr),
            dsdt_addr,
            fadt_addr,
            madt_addr,
            xsdt_addr,
        })
    }

    /// Writes the tables at `tables_addr` and the RSDP at `rsdp_addr`; nothing is written
    /// unless both fit guest memory.
    pub fn write<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        tables_addr: GuestAddress,
        rsdp_addr: GuestAddress,
    ) -> Result<AcpiImage> {
        let image = self.build(tables_addr, rsdp_addr)?;
        let perm = Permissions::Write;
        guest::check(mem, tables_addr, image.tables.len(), perm, "ACPI tables")?;
        guest::check(mem, rsdp_addr, RSDP_SIZE, perm, "ACPI RSDP")?;
        guest::write(mem, tables_addr, &image.tables, "ACPI tables")?;
        guest::write(mem, rsdp_addr, &image.rsdp, "ACPI RSDP")?;
        Ok(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::test_util;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes([b[off], b[off + 1]])
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn two_cpus() -> Madt {
        Madt::new(vec![MadtCpu::enabled(0, 0), MadtCpu::enabled(1, 2)])
    }

    /// Reads the table at `addr` whole, checking its length field and checksum.
    fn read_table(mem: &vm_memory::GuestMemoryMmap<()>, addr: u64, sig: &[u8; 4]) -> Vec<u8> {
        let mut hdr = [0u8; HEADER_SIZE];
        guest::read(mem, GuestAddress(addr), &mut hdr, "hdr").unwrap();
        assert_eq!(&hdr[0..4], sig);
        let mut t = vec![0u8; u32_at(&hdr, 4) as usize];
        guest::read(mem, GuestAddress(addr), &mut t, "table").unwrap();
        assert_eq!(sum(&t), 0, "{} checksum", String::from_utf8_lossy(sig));
        assert_eq!(&t[10..16], &OEM_ID);
        assert_eq!(&t[16..24], &OEM_TABLE_ID);
        assert_eq!(&t[28..32], &CREATOR_ID);
        t
    }

    #[test]
    fn sizes_and_revisions_are_the_specifications() {
        // ACPI 6.5: 5.2.5.3 (RSDP, 36 bytes, revision 2), 5.2.6 (header, 36 bytes), 5.2.9
        // (FADT, 276 bytes, revision 6, minor 5), 5.2.12 (MADT: 44 bytes, then local APIC
        // structures of 8 and x2APIC structures of 16 bytes).
        assert_eq!(rsdp(GuestAddress(0)).len(), 36);
        assert_eq!(Dsdt::default().to_bytes().len(), 36);
        assert_eq!(xsdt(&[GuestAddress(1), GuestAddress(2)]).len(), 36 + 16);
        let fadt = Fadt::default().to_bytes(GuestAddress(0x1000));
        assert_eq!(fadt.len(), 276);
        assert_eq!(
            (fadt[8], fadt[131]),
            (6, 5),
            "FADT major and minor revision"
        );
        let madt = two_cpus().to_bytes().unwrap();
        assert_eq!(madt.len(), 44 + 2 * 8);
        assert_eq!(madt[8], 5);
        let x2 = Madt::new(vec![MadtCpu::enabled(0, 0x100)]);
        assert_eq!(x2.to_bytes().unwrap().len(), 44 + 16);
    }

    #[test]
    fn rsdp_fields_and_both_checksums() {
        let r = rsdp(GuestAddress(0x1_2345_6780));
        assert_eq!(&r[0..8], b"RSD PTR ");
        assert_eq!(sum(&r[..20]), 0, "ACPI 1.0 checksum over 20 bytes");
        assert_eq!(sum(&r), 0, "extended checksum over 36 bytes");
        assert_eq!(&r[9..15], &OEM_ID);
        assert_eq!(r[15], 2, "revision");
        assert_eq!(u32_at(&r, 16), 0, "no RSDT");
        assert_eq!(u32_at(&r, 20), 36, "length");
        assert_eq!(u64_at(&r, 24), 0x1_2345_6780, "XSDT address");
        assert_eq!(&r[33..36], &[0, 0, 0]);
        // The first checksum alone covers 20 bytes: corrupting byte 20 breaks only the second.
        let mut bad = r;
        bad[20] ^= 1;
        assert_eq!(sum(&bad[..20]), 0);
        assert_ne!(sum(&bad), 0);
    }

    #[test]
    fn fadt_is_hardware_reduced_and_points_to_the_dsdt() {
        let f = Fadt::hardware_reduced().to_bytes(GuestAddress(0xfc00_1000));
        assert_eq!(&f[0..4], b"FACP");
        assert_eq!(u32_at(&f, 4), 276);
        assert_eq!(sum(&f), 0);
        assert_eq!(u32_at(&f, 36), 0, "no FACS");
        assert_eq!(u32_at(&f, 40), 0xfc00_1000, "DSDT");
        assert_eq!(u64_at(&f, 140), 0xfc00_1000, "X_DSDT");
        assert_eq!(u16_at(&f, 46), 0, "no SCI");
        assert_eq!(u32_at(&f, 56), 0, "no PM1a event block");
        assert_eq!(u32_at(&f, 76), 0, "no PM timer");
        assert_eq!(u32_at(&f, 112), (1 << 20) | (1 << 4) | (1 << 5), "flags");
        assert_eq!(u16_at(&f, 109), (1 << 2) | (1 << 5), "no VGA, no CMOS RTC");
        assert_eq!(f[116..128], [0; 12], "no reset register");
        // A DSDT above 4 GiB only goes in X_DSDT.
        let high = Fadt::default().to_bytes(GuestAddress(1 << 32));
        assert_eq!((u32_at(&high, 40), u64_at(&high, 140)), (0, 1 << 32));
        let named = Fadt {
            hypervisor_vendor: *b"XenVMM\0\0",
            ..Fadt::default()
        };
        assert_eq!(&named.to_bytes(GuestAddress(0))[268..276], b"XenVMM\0\0");
    }

    #[test]
    fn madt_lists_each_processor_with_its_apic_id_and_flags() {
        let mut madt = Madt::new(vec![
            MadtCpu::enabled(0, 0),
            MadtCpu::enabled(1, 2),
            MadtCpu {
                uid: 2,
                apic_id: 4,
                flags: CPU_ONLINE_CAPABLE,
            },
            MadtCpu::enabled(3, 0x1_0000),
        ]);
        madt.flags = MADT_PCAT_COMPAT;
        let t = madt.to_bytes().unwrap();
        assert_eq!(&t[0..4], b"APIC");
        assert_eq!(u32_at(&t, 4) as usize, t.len());
        assert_eq!(t.len(), 44 + 3 * 8 + 16);
        assert_eq!(sum(&t), 0);
        assert_eq!(u32_at(&t, 36), 0xfee0_0000);
        assert_eq!(u32_at(&t, 40), 1);
        // Processor Local APIC: type, length, UID, APIC ID, flags.
        assert_eq!(t[44..52], [0, 8, 0, 0, 1, 0, 0, 0]);
        assert_eq!(t[52..60], [0, 8, 1, 2, 1, 0, 0, 0]);
        assert_eq!(t[60..68], [0, 8, 2, 4, 2, 0, 0, 0]);
        // Processor Local x2APIC: type, length, reserved, x2APIC ID, flags, UID.
        assert_eq!(t[68..72], [9, 16, 0, 0]);
        assert_eq!(u32_at(&t, 72), 0x1_0000);
        assert_eq!(u32_at(&t, 76), 1);
        assert_eq!(u32_at(&t, 80), 3);
    }

    #[test]
    fn apic_ids_from_255_and_uids_from_256_take_x2apic_entries() {
        assert!(MadtCpu::enabled(0, 0xfe).is_xapic());
        assert!(!MadtCpu::enabled(0, 0xff).is_xapic());
        assert!(MadtCpu::enabled(0xff, 0).is_xapic());
        assert!(!MadtCpu::enabled(0x100, 0).is_xapic());
        let cpus = (0..128).map(|i| MadtCpu::enabled(i, 2 * i)).collect();
        assert_eq!(Madt::new(cpus).size(), 44 + 128 * 8, "ids up to 254");
        let cpus = (0..129).map(|i| MadtCpu::enabled(i, 2 * i)).collect();
        assert_eq!(Madt::new(cpus).size(), 44 + 128 * 8 + 16, "id 256");
    }

    #[test]
    fn bad_processor_lists_are_typed_errors() {
        assert!(matches!(
            Madt::new(vec![]).to_bytes(),
            Err(Error::NoVcpus { what: "MADT" })
        ));
        let many = (0..=MAX_MADT_CPUS as u32)
            .map(|i| MadtCpu::enabled(i, i))
            .collect();
        assert!(matches!(
            Madt::new(many).to_bytes(),
            Err(Error::TooManyVcpus {
                count: 8193,
                max: 8192,
                ..
            })
        ));
        let dup_id = Madt::new(vec![MadtCpu::enabled(0, 2), MadtCpu::enabled(1, 2)]);
        assert!(matches!(
            dup_id.to_bytes(),
            Err(Error::InvalidApicId {
                uid: 1,
                apic_id: 2,
                ..
            })
        ));
        let dup_uid = Madt::new(vec![MadtCpu::enabled(0, 0), MadtCpu::enabled(0, 2)]);
        assert!(matches!(
            dup_uid.to_bytes(),
            Err(Error::InvalidApicId { .. })
        ));
        let broadcast = Madt::new(vec![MadtCpu::enabled(0, u32::MAX)]);
        assert!(matches!(
            broadcast.to_bytes(),
            Err(Error::InvalidApicId { .. })
        ));
    }

    #[test]
    fn written_tables_link_up_from_the_rsdp_with_valid_checksums() {
        let mem = test_util::mem(1 << 20);
        let tables = AcpiTables::new(two_cpus());
        let image = tables
            .write(&mem, GuestAddress(0xe_0000), GuestAddress(0xf_ffc0))
            .unwrap();
        assert_eq!(image.tables.len(), tables.tables_size());

        // As a guest finds them: RSDP, XSDT, then each table it lists.
        let mut r = [0u8; RSDP_SIZE];
        guest::read(&mem, GuestAddress(0xf_ffc0), &mut r, "rsdp").unwrap();
        assert_eq!((sum(&r[..20]), sum(&r)), (0, 0));
        let xsdt_addr = u64_at(&r, 24);
        assert_eq!(xsdt_addr, image.xsdt_addr.0);
        let x = read_table(&mem, xsdt_addr, b"XSDT");
        assert_eq!(x.len(), 36 + 16);
        let (fadt_addr, madt_addr) = (u64_at(&x, 36), u64_at(&x, 44));
        let f = read_table(&mem, fadt_addr, b"FACP");
        let d = read_table(&mem, u64_at(&f, 140), b"DSDT");
        assert_eq!(d.len(), 36);
        assert_eq!(d[8], 2, "DSDT revision");
        let m = read_table(&mem, madt_addr, b"APIC");
        assert_eq!((m[44 + 3], m[52 + 3]), (0, 2), "APIC IDs");

        // Placement: in order, 16-byte aligned, from the tables' address.
        assert_eq!(image.dsdt_addr, GuestAddress(0xe_0000));
        assert_eq!(image.fadt_addr, GuestAddress(0xe_0030));
        assert_eq!(image.fadt_addr.0, fadt_addr);
        assert_eq!(image.madt_addr, GuestAddress(0xe_0030 + 0x120));
        assert_eq!(image.madt_addr.0, madt_addr);
        assert_eq!(image.xsdt_addr, GuestAddress(0xe_0150 + 0x40));
    }

    #[test]
    fn bad_placement_is_a_typed_error_and_writes_nothing() {
        let mem = test_util::mem(0x2000);
        let t = AcpiTables::new(two_cpus());
        assert!(matches!(
            t.write(&mem, GuestAddress(0x1008), GuestAddress(0)),
            Err(Error::Misaligned {
                what: "ACPI tables",
                ..
            })
        ));
        assert!(matches!(
            t.write(&mem, GuestAddress(0), GuestAddress(0x1004)),
            Err(Error::Misaligned {
                what: "ACPI RSDP",
                ..
            })
        ));
        assert!(matches!(
            t.write(&mem, GuestAddress(0), GuestAddress(0x100)),
            Err(Error::Overlap { .. })
        ));
        // The tables fit, the RSDP does not: neither is written.
        assert!(matches!(
            t.write(&mem, GuestAddress(0), GuestAddress(0x2000)),
            Err(Error::OutsideGuestMemory {
                what: "ACPI RSDP",
                ..
            })
        ));
        let mut back = [0u8; 4];
        guest::read(&mem, GuestAddress(0), &mut back, "x").unwrap();
        assert_eq!(back, [0; 4], "nothing written");
        assert!(matches!(
            t.build(GuestAddress(u64::MAX - 15), GuestAddress(0)),
            Err(Error::AddressOverflow { .. })
        ));
        assert!(matches!(
            AcpiTables::new(Madt::new(vec![])).write(&mem, GuestAddress(0), GuestAddress(0x1000)),
            Err(Error::NoVcpus { .. })
        ));
    }
}
