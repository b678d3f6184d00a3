// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Intel MultiProcessor Specification (1.4) tables.
//!
//! Writes an MP floating pointer structure followed by an MP configuration
//! table listing one processor entry per vCPU, an ISA bus, one I/O APIC,
//! the ISA interrupt routing to the I/O APIC pins and the LINT0/LINT1
//! local interrupts. The guest finds the floating pointer by scanning for
//! `_MP_` on a 16-byte boundary in the last KiB of base memory (the default
//! address, [`MPTABLE_START`]) or in the BIOS ROM area.
//!
//! The structures are serialised field by field in little-endian order, so
//! there is no `repr(C, packed)` struct and no unsafe code; the sizes pinned
//! in the tests are those of the specification's tables 4-1 to 4-8.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::mptable::{MpTable, MPTABLE_START};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let written = MpTable::new(4).write(&mem, GuestAddress(MPTABLE_START)).unwrap();
//! assert_eq!(written.processor_entries, 4);
//! ```

use vm_memory::{GuestAddress, GuestMemory};

use crate::error::{Error, Result};
use crate::guest;

/// Conventional address of the MP tables: the last KiB below 640 KiB.
pub const MPTABLE_START: u64 = 0x9fc00;
/// Most vCPUs the table describes: APIC IDs are 8 bits, 0xff means
/// "all", and the I/O APIC takes the ID after the last processor.
pub const MAX_CPUS: usize = 254;
/// Default local APIC address.
pub const LAPIC_DEFAULT_ADDR: u32 = 0xfee0_0000;
/// Default I/O APIC address.
pub const IOAPIC_DEFAULT_ADDR: u32 = 0xfec0_0000;
/// ISA interrupts routed to I/O APIC pins of the same number.
pub const ISA_IRQS: u8 = 16;

/// Floating pointer signature.
pub const FP_SIGNATURE: &[u8; 4] = b"_MP_";
/// Configuration table signature.
pub const CONFIG_SIGNATURE: &[u8; 4] = b"PCMP";
/// Specification revision 1.4.
pub const SPEC_REV_1_4: u8 = 4;

/// Size of the floating pointer structure.
pub const FP_SIZE: usize = 16;
/// Size of the configuration table header.
pub const HEADER_SIZE: usize = 44;
/// Size of a processor entry.
pub const PROCESSOR_ENTRY_SIZE: usize = 20;
/// Size of bus, I/O APIC, I/O interrupt and local interrupt entries.
pub const SMALL_ENTRY_SIZE: usize = 8;

/// Entry type codes.
pub mod entry_type {
    /// Processor.
    pub const PROCESSOR: u8 = 0;
    /// Bus.
    pub const BUS: u8 = 1;
    /// I/O APIC.
    pub const IOAPIC: u8 = 2;
    /// I/O interrupt assignment.
    pub const IO_INTERRUPT: u8 = 3;
    /// Local interrupt assignment.
    pub const LOCAL_INTERRUPT: u8 = 4;
}

/// Interrupt type codes of interrupt assignment entries.
pub mod interrupt_type {
    /// Vectored interrupt (vector from the APIC redirection table).
    pub const INT: u8 = 0;
    /// Non-maskable interrupt.
    pub const NMI: u8 = 1;
    /// System management interrupt.
    pub const SMI: u8 = 2;
    /// External (8259-compatible) interrupt.
    pub const EXTINT: u8 = 3;
}

/// Processor entry flag: the processor is usable.
pub const CPU_ENABLED: u8 = 1 << 0;
/// Processor entry flag: the bootstrap processor.
pub const CPU_BOOTSTRAP: u8 = 1 << 1;
/// I/O APIC entry flag: usable.
pub const IOAPIC_ENABLED: u8 = 1 << 0;
/// Local APIC version reported for each processor (integrated APIC).
pub const LAPIC_VERSION: u8 = 0x14;
/// I/O APIC version reported.
pub const IOAPIC_VERSION: u8 = 0x11;
/// CPU signature reported in processor entries (family 6).
pub const CPU_SIGNATURE: u32 = 0x600;
/// Feature flags reported in processor entries (FPU and on-chip APIC).
pub const CPU_FEATURES: u32 = (1 << 0) | (1 << 9);

/// An MP table description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpTable {
    /// Number of vCPUs; vCPU `i` gets local APIC ID `i`, vCPU 0 boots.
    pub num_cpus: usize,
    /// Local APIC address.
    pub lapic_addr: u32,
    /// I/O APIC address.
    pub ioapic_addr: u32,
}

/// What [`MpTable::write`] put into guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpTableInfo {
    /// Address of the floating pointer structure.
    pub floating_pointer: GuestAddress,
    /// Address of the configuration table.
    pub config_table: GuestAddress,
    /// Total bytes written (floating pointer plus configuration table).
    pub size: usize,
    /// Number of processor entries.
    pub processor_entries: usize,
    /// Number of entries in the configuration table.
    pub entry_count: u16,
    /// ID given to the I/O APIC.
    pub ioapic_id: u8,
}

impl MpTable {
    /// A table for `num_cpus` vCPUs with the default APIC addresses.
    pub fn new(num_cpus: usize) -> Self {
        Self {
            num_cpus,
            lapic_addr: LAPIC_DEFAULT_ADDR,
            ioapic_addr: IOAPIC_DEFAULT_ADDR,
        }
    }

    /// Bytes the floating pointer and configuration table take.
    pub fn size(&self) -> usize {
        FP_SIZE + HEADER_SIZE + self.num_cpus * PROCESSOR_ENTRY_SIZE + self.small_entries() * 8
    }

    fn small_entries(&self) -> usize {
        // Bus, I/O APIC, ISA IRQs, LINT0 and LINT1.
        1 + 1 + usize::from(ISA_IRQS) + 2
    }

    /// Serialises the structures for placement at `addr`.
    pub fn build(&self, addr: GuestAddress) -> Result<Vec<u8>> {
        if self.num_cpus == 0 {
            return Err(Error::NoVcpus { what: "MP table" });
        }
        if self.num_cpus > MAX_CPUS {
            return Err(Error::TooManyVcpus {
                what: "MP table",
                count: self.num_cpus,
                max: MAX_CPUS,
            });
        }
        if addr.0 % 16 != 0 {
            return Err(Error::Misaligned {
                what: "MP floating pointer",
                addr: addr.0,
                align: 16,
            });
        }
        let size = self.size();
        let config_addr = guest::addr32(addr, size, "MP table")? + FP_SIZE as u32;
        let ioapic_id = self.num_cpus as u8;

        let mut body = Vec::with_capacity(size - FP_SIZE - HEADER_SIZE);
        for cpu in 0..self.num_cpus {
            let flags = CPU_ENABLED | if cpu == 0 { CPU_BOOTSTRAP } else { 0 };
            body.extend_from_slice(&[entry_type::PROCESSOR, cpu as u8, LAPIC_VERSION, flags]);
            body.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
            body.extend_from_slice(&CPU_FEATURES.to_le_bytes());
            body.extend_from_slice(&[0u8; 8]);
        }
        body.extend_from_slice(&[entry_type::BUS, 0]);
        body.extend_from_slice(b"ISA   ");
        body.extend_from_slice(&[
            entry_type::IOAPIC,
            ioapic_id,
            IOAPIC_VERSION,
            IOAPIC_ENABLED,
        ]);
        body.extend_from_slice(&self.ioapic_addr.to_le_bytes());
        for irq in 0..ISA_IRQS {
            // Flags 0: polarity and trigger conform to the ISA bus.
            body.extend_from_slice(&[entry_type::IO_INTERRUPT, interrupt_type::INT, 0, 0]);
            body.extend_from_slice(&[0, irq, ioapic_id, irq]);
        }
        // LINT0 carries the 8259's ExtINT and LINT1 the NMI, to every local
        // APIC (ID 0xff), as in the specification's default configurations.
        for (kind, lint) in [(interrupt_type::EXTINT, 0u8), (interrupt_type::NMI, 1)] {
            body.extend_from_slice(&[entry_type::LOCAL_INTERRUPT, kind, 0, 0]);
            body.extend_from_slice(&[0, 0, 0xff, lint]);
        }
        let entry_count = (self.num_cpus + self.small_entries()) as u16;

        let table_len = (HEADER_SIZE + body.len()) as u16;
        let mut table = Vec::with_capacity(usize::from(table_len));
        table.extend_from_slice(CONFIG_SIGNATURE);
        table.extend_from_slice(&table_len.to_le_bytes());
        table.push(SPEC_REV_1_4);
        table.push(0); // checksum, patched below
        table.extend_from_slice(b"XENRVMM ");
        table.extend_from_slice(b"VM-VCPU-REF ");
        table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
        table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
        table.extend_from_slice(&entry_count.to_le_bytes());
        table.extend_from_slice(&self.lapic_addr.to_le_bytes());
        table.extend_from_slice(&0u16.to_le_bytes()); // extended table length
        table.push(0); // extended table checksum
        table.push(0); // reserved
        debug_assert_eq!(table.len(), HEADER_SIZE);
        table.extend_from_slice(&body);
        table[7] = guest::checksum(&table);

        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(FP_SIGNATURE);
        out.extend_from_slice(&config_addr.to_le_bytes());
        out.push(1); // length in 16-byte units
        out.push(SPEC_REV_1_4);
        out.push(0); // checksum, patched below
                     // Feature byte 1 = 0: a configuration table is present. Feature
                     // byte 2 bit 7 clear: virtual wire mode, no IMCR.
        out.extend_from_slice(&[0u8; 5]);
        out[10] = guest::checksum(&out);
        out.extend_from_slice(&table);
        debug_assert_eq!(out.len(), size);
        Ok(out)
    }

    /// Writes the floating pointer at `addr` (16-byte aligned, below 4 GiB)
    /// with the configuration table right after it.
    pub fn write<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        addr: GuestAddress,
    ) -> Result<MpTableInfo> {
        let bytes = self.build(addr)?;
        guest::write(mem, addr, &bytes, "MP table")?;
        Ok(MpTableInfo {
            floating_pointer: addr,
            config_table: GuestAddress(addr.0 + FP_SIZE as u64),
            size: bytes.len(),
            processor_entries: self.num_cpus,
            entry_count: (self.num_cpus + self.small_entries()) as u16,
            ioapic_id: self.num_cpus as u8,
        })
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
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    /// Parses the tables back from guest memory the way a guest would.
    fn parse(mem: &vm_memory::GuestMemoryMmap<()>, fp_addr: u64) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut fp = [0u8; FP_SIZE];
        guest::read(mem, GuestAddress(fp_addr), &mut fp, "fp").unwrap();
        assert_eq!(&fp[0..4], FP_SIGNATURE);
        assert_eq!(fp[8], 1);
        assert_eq!(fp[9], SPEC_REV_1_4);
        assert_eq!(sum(&fp), 0, "floating pointer checksum");
        assert_eq!(fp[11], 0, "feature byte 1: table present");
        let cfg = u64::from(u32_at(&fp, 4));
        let mut hdr = [0u8; HEADER_SIZE];
        guest::read(mem, GuestAddress(cfg), &mut hdr, "hdr").unwrap();
        assert_eq!(&hdr[0..4], CONFIG_SIGNATURE);
        let len = usize::from(u16_at(&hdr, 4));
        let mut table = vec![0u8; len];
        guest::read(mem, GuestAddress(cfg), &mut table, "table").unwrap();
        assert_eq!(sum(&table), 0, "configuration table checksum");
        let count = u16_at(&table, 34);
        let mut entries = Vec::new();
        let mut off = HEADER_SIZE;
        for _ in 0..count {
            let size = if table[off] == entry_type::PROCESSOR {
                PROCESSOR_ENTRY_SIZE
            } else {
                SMALL_ENTRY_SIZE
            };
            entries.push(table[off..off + size].to_vec());
            off += size;
        }
        assert_eq!(off, len, "entries fill the table exactly");
        (table, entries)
    }

    #[test]
    fn structure_sizes_match_the_specification() {
        let t = MpTable::new(1);
        assert_eq!(t.size(), FP_SIZE + HEADER_SIZE + 20 + 20 * 8);
        assert_eq!((FP_SIZE, HEADER_SIZE, PROCESSOR_ENTRY_SIZE), (16, 44, 20));
    }

    #[test]
    fn tables_parse_back_with_valid_checksums_and_counts() {
        let mem = test_util::mem(1 << 20);
        let info = MpTable::new(4)
            .write(&mem, GuestAddress(MPTABLE_START))
            .unwrap();
        assert_eq!(info.config_table.0, MPTABLE_START + 16);
        let (table, entries) = parse(&mem, MPTABLE_START);
        assert_eq!(table[6], SPEC_REV_1_4);
        assert_eq!(u32_at(&table, 36), LAPIC_DEFAULT_ADDR);
        assert_eq!(entries.len(), usize::from(info.entry_count));
        let cpus: Vec<_> = entries
            .iter()
            .filter(|e| e[0] == entry_type::PROCESSOR)
            .collect();
        assert_eq!(cpus.len(), 4);
        for (i, e) in cpus.iter().enumerate() {
            assert_eq!(usize::from(e[1]), i, "APIC id");
            assert_eq!(e[3] & CPU_ENABLED, CPU_ENABLED);
            assert_eq!(e[3] & CPU_BOOTSTRAP != 0, i == 0);
        }
        let bus: Vec<_> = entries.iter().filter(|e| e[0] == entry_type::BUS).collect();
        assert_eq!(bus.len(), 1);
        assert_eq!(&bus[0][2..8], b"ISA   ");
        let ioapic: Vec<_> = entries
            .iter()
            .filter(|e| e[0] == entry_type::IOAPIC)
            .collect();
        assert_eq!(ioapic.len(), 1);
        assert_eq!(ioapic[0][1], 4);
        assert_eq!(u32_at(ioapic[0], 4), IOAPIC_DEFAULT_ADDR);
        let irqs: Vec<_> = entries
            .iter()
            .filter(|e| e[0] == entry_type::IO_INTERRUPT)
            .collect();
        assert_eq!(irqs.len(), 16);
        for (i, e) in irqs.iter().enumerate() {
            assert_eq!((e[5], e[6], e[7]), (i as u8, 4, i as u8));
        }
        let lints: Vec<_> = entries
            .iter()
            .filter(|e| e[0] == entry_type::LOCAL_INTERRUPT)
            .collect();
        assert_eq!(lints.len(), 2);
        assert_eq!((lints[0][1], lints[0][7]), (interrupt_type::EXTINT, 0));
        assert_eq!((lints[1][1], lints[1][7]), (interrupt_type::NMI, 1));
    }

    #[test]
    fn max_cpus_fit_and_one_more_is_rejected() {
        let mem = test_util::mem(1 << 20);
        let info = MpTable::new(MAX_CPUS)
            .write(&mem, GuestAddress(0x10000))
            .unwrap();
        assert_eq!(info.ioapic_id, 254);
        let (_, entries) = parse(&mem, 0x10000);
        assert_eq!(entries.len(), MAX_CPUS + 20);
        assert!(matches!(
            MpTable::new(MAX_CPUS + 1).write(&mem, GuestAddress(0x10000)),
            Err(Error::TooManyVcpus {
                count: 255,
                max: 254,
                ..
            })
        ));
        assert!(matches!(
            MpTable::new(0).write(&mem, GuestAddress(0x10000)),
            Err(Error::NoVcpus { .. })
        ));
    }

    #[test]
    fn not_enough_memory_or_bad_address_is_a_typed_error() {
        let mem = test_util::mem(0x1000);
        assert!(matches!(
            MpTable::new(2).write(&mem, GuestAddress(0xf00)),
            Err(Error::OutsideGuestMemory {
                what: "MP table",
                ..
            })
        ));
        assert!(matches!(
            MpTable::new(2).write(&mem, GuestAddress(0x8)),
            Err(Error::Misaligned { .. })
        ));
        assert!(matches!(
            MpTable::new(2).write(&mem, GuestAddress(0xffff_ff00)),
            Err(Error::AddressOverflow { .. })
        ));
    }
}
