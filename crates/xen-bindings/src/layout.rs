// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where a domain's RAM lies in guest-physical space.
//!
//! A device model that maps a guest's memory, or must place a device outside it, needs the
//! guest's RAM ranges. Xen does not report them; the toolstack lays RAM out by a fixed scheme
//! that Xen's public headers document, so the ranges follow from the RAM size:
//!
//! - x86 HVM and PVH (`public/hvm/e820.h`): RAM from 0 up to the MMIO hole that ends the low
//!   4 GiB (it starts at `HVM_BELOW_4G_RAM_END`, 0xf000_0000, unless the guest's configuration
//!   moved it), the rest from 4 GiB. `xl` starts the hole of a PVH guest without a device
//!   model at the local APIC (0xfee0_0000) instead: such a guest has more RAM below 4 GiB and
//!   less above it than these ranges say, and its RAM still ends below the last range's end.
//! - Arm (`public/arch-arm.h`): bank `GUEST_RAM0` (3 GiB at 1 GiB), then bank `GUEST_RAM1`
//!   (at 8 GiB).
//!
//! The RAM size is the toolstack's figure, [`Xenstore::domain_ram_bytes`] (`memory/static-max`
//! in xenstore). `DomainInfo::memory` is not: it counts every page the domain owns, the
//! special pages (console, xenstore, IOREQ, ...) beyond its RAM included.
//!
//! The ranges say where RAM may be. Frames inside them that the guest gave back (ballooning)
//! or that the toolstack left out (an HVM guest's VGA hole at 0xa_0000) fail to map like any
//! frame without memory.
//!
//! ```
//! use xen_bindings::layout::{GuestLayout, RamRange};
//!
//! let ranges = GuestLayout::Arm.ram_ranges(128 << 20);
//! assert_eq!(ranges, [RamRange { start: 0x4000_0000, len: 128 << 20 }]);
//! ```
//!
//! [`Xenstore::domain_ram_bytes`]: crate::xenstore::Xenstore::domain_ram_bytes

use crate::abi::xen::XEN_PAGE_SIZE;

/// `HVM_BELOW_4G_RAM_END` (`public/hvm/e820.h`): where an x86 HVM or PVH guest's low RAM ends
/// and the MMIO hole below 4 GiB begins, unless the guest's configuration moved it.
pub const X86_BELOW_4G_RAM_END: u64 = 0xf000_0000;
/// Where an x86 guest's RAM above the MMIO hole starts.
pub const X86_HIGH_RAM_START: u64 = 1 << 32;
/// `GUEST_RAM0_BASE` (`public/arch-arm.h`): an Arm guest's first RAM bank.
pub const ARM_GUEST_RAM0_BASE: u64 = 0x4000_0000;
/// `GUEST_RAM0_SIZE`: 3 GiB.
pub const ARM_GUEST_RAM0_SIZE: u64 = 0xc000_0000;
/// `GUEST_RAM1_BASE`: an Arm guest's second RAM bank.
pub const ARM_GUEST_RAM1_BASE: u64 = 0x02_0000_0000;
/// `GUEST_RAM1_SIZE`: 1016 GiB.
pub const ARM_GUEST_RAM1_SIZE: u64 = 0xfe_0000_0000;

/// A range of guest-physical addresses that holds RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamRange {
    /// The first address.
    pub start: u64,
    /// The length in bytes, a multiple of [`XEN_PAGE_SIZE`].
    pub len: u64,
}

impl RamRange {
    /// The first address past the range.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// How the toolstack lays a guest's RAM out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestLayout {
    /// An x86 HVM or PVH guest.
    X86 {
        /// Where low RAM ends and the MMIO hole begins ([`X86_BELOW_4G_RAM_END`] by default).
        below_4g_ram_end: u64,
    },
    /// An Arm guest.
    Arm,
}

impl GuestLayout {
    /// The layout of guests on the architecture this code runs on, with the default MMIO hole.
    pub const fn native() -> Self {
        if cfg!(target_arch = "aarch64") {
            GuestLayout::Arm
        } else {
            GuestLayout::X86 {
                below_4g_ram_end: X86_BELOW_4G_RAM_END,
            }
        }
    }

    /// The RAM ranges of a guest with `bytes` of RAM (rounded down to whole pages), in address
    /// order; empty for less than a page. RAM beyond what the layout can hold is left out.
    pub fn ram_ranges(&self, bytes: u64) -> Vec<RamRange> {
        let page = XEN_PAGE_SIZE as u64;
        let banks = match *self {
            GuestLayout::X86 { below_4g_ram_end } => [
                (0, below_4g_ram_end.min(X86_HIGH_RAM_START) & !(page - 1)),
                (X86_HIGH_RAM_START, u64::MAX - X86_HIGH_RAM_START + 1 - page),
            ],
            GuestLayout::Arm => [
                (ARM_GUEST_RAM0_BASE, ARM_GUEST_RAM0_SIZE),
                (ARM_GUEST_RAM1_BASE, ARM_GUEST_RAM1_SIZE),
            ],
        };
        let mut left = bytes & !(page - 1);
        let mut ranges = Vec::new();
        for (start, size) in banks {
            let len = left.min(size);
            if len > 0 {
                ranges.push(RamRange { start, len });
            }
            left -= len;
        }
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(ranges: Vec<RamRange>) -> Vec<(u64, u64)> {
        ranges.into_iter().map(|r| (r.start, r.len)).collect()
    }

    #[test]
    fn arm_banks_fill_in_order() {
        let arm = GuestLayout::Arm;
        assert_eq!(pairs(arm.ram_ranges(128 << 20)), [(0x4000_0000, 128 << 20)]);
        assert_eq!(pairs(arm.ram_ranges(0)), []);
        assert_eq!(pairs(arm.ram_ranges(4095)), [], "less than a page");
        assert_eq!(
            pairs(arm.ram_ranges(4 << 30)),
            [(0x4000_0000, 3 << 30), (0x2_0000_0000, 1 << 30)]
        );
        assert_eq!(
            pairs(arm.ram_ranges(u64::MAX)),
            [(0x4000_0000, 0xc000_0000), (0x2_0000_0000, 0xfe_0000_0000)],
            "capped at the banks"
        );
    }

    #[test]
    fn x86_ram_skips_the_mmio_hole_below_4g() {
        let x86 = GuestLayout::X86 {
            below_4g_ram_end: X86_BELOW_4G_RAM_END,
        };
        assert_eq!(pairs(x86.ram_ranges(128 << 20)), [(0, 128 << 20)]);
        assert_eq!(pairs(x86.ram_ranges(0xf000_0000)), [(0, 0xf000_0000)]);
        assert_eq!(
            pairs(x86.ram_ranges(4 << 30)),
            [(0, 0xf000_0000), (1 << 32, 0x1000_0000)]
        );
        // A larger hole (the guest's configuration) moves RAM above 4 GiB.
        let big_hole = GuestLayout::X86 {
            below_4g_ram_end: 0xc000_0000,
        };
        assert_eq!(
            pairs(big_hole.ram_ranges(4 << 30)),
            [(0, 0xc000_0000), (1 << 32, 0x4000_0000)]
        );
        // Whatever the size, the ranges stay inside the address space.
        let all = x86.ram_ranges(u64::MAX);
        assert!(
            all.iter().all(|r| r.start.checked_add(r.len).is_some()),
            "{all:?}"
        );
        // An end past 4 GiB cannot make low RAM overlap the high range.
        let odd = GuestLayout::X86 {
            below_4g_ram_end: u64::MAX,
        };
        assert_eq!(
            pairs(odd.ram_ranges(5 << 30)),
            [(0, 1 << 32), (1 << 32, 1 << 30)]
        );
    }

    #[test]
    fn native_is_the_targets_layout() {
        let expected = if cfg!(target_arch = "aarch64") {
            GuestLayout::Arm
        } else {
            GuestLayout::X86 {
                below_4g_ram_end: X86_BELOW_4G_RAM_END,
            }
        };
        assert_eq!(GuestLayout::native(), expected);
    }
}
