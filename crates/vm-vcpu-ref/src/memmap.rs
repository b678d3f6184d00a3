// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest physical memory maps as boot protocols hand them to a kernel.
//!
//! The E820 types of the Linux zero page and the memory map types of the
//! PVH start info share their numbering, so one entry type serves both.

use crate::error::{Error, Result};

/// Kind of a memory map range (E820 / PVH memmap type codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryType {
    /// Usable RAM (1).
    Ram,
    /// Reserved (2).
    Reserved,
    /// ACPI tables, reclaimable after reading (3).
    Acpi,
    /// ACPI non-volatile storage (4).
    Nvs,
    /// Memory with errors (5).
    Unusable,
    /// Disabled (6).
    Disabled,
    /// Persistent memory (7).
    Pmem,
}

impl MemoryType {
    /// The numeric type code.
    pub const fn code(self) -> u32 {
        match self {
            Self::Ram => 1,
            Self::Reserved => 2,
            Self::Acpi => 3,
            Self::Nvs => 4,
            Self::Unusable => 5,
            Self::Disabled => 6,
            Self::Pmem => 7,
        }
    }
}

/// One range of a guest memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryMapEntry {
    /// First guest physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Kind of memory.
    pub kind: MemoryType,
}

impl MemoryMapEntry {
    /// A RAM range.
    pub const fn ram(addr: u64, size: u64) -> Self {
        Self {
            addr,
            size,
            kind: MemoryType::Ram,
        }
    }

    /// A reserved range.
    pub const fn reserved(addr: u64, size: u64) -> Self {
        Self {
            addr,
            size,
            kind: MemoryType::Reserved,
        }
    }
}

/// Checks entry count and that no entry is empty or wraps around.
///
/// Only the x86 boot protocols (E820 in the zero page, the PVH memory map)
/// carry a typed memory map; arm64 describes RAM in the device tree, whose
/// builder checks its own regions.
pub(crate) fn validate(entries: &[MemoryMapEntry], max: usize, what: &'static str) -> Result<()> {
    if entries.len() > max {
        return Err(Error::TooManyMemoryRegions {
            what,
            count: entries.len(),
            max,
        });
    }
    for e in entries {
        if e.size == 0 || e.addr.checked_add(e.size).is_none() {
            return Err(Error::InvalidSize {
                what,
                value: e.addr,
                reason: "memory map entry is empty or wraps around",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_are_the_e820_ones() {
        let codes: Vec<u32> = [
            MemoryType::Ram,
            MemoryType::Reserved,
            MemoryType::Acpi,
            MemoryType::Nvs,
            MemoryType::Unusable,
            MemoryType::Disabled,
            MemoryType::Pmem,
        ]
        .iter()
        .map(|t| t.code())
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn validation() {
        let ok = [
            MemoryMapEntry::ram(0, 0x9fc00),
            MemoryMapEntry::reserved(0x9fc00, 0x400),
        ];
        validate(&ok, 2, "m").unwrap();
        assert!(matches!(
            validate(&ok, 1, "m"),
            Err(Error::TooManyMemoryRegions {
                count: 2,
                max: 1,
                ..
            })
        ));
        assert!(validate(&[MemoryMapEntry::ram(0, 0)], 4, "m").is_err());
        assert!(validate(&[MemoryMapEntry::ram(u64::MAX, 2)], 4, "m").is_err());
    }
}
