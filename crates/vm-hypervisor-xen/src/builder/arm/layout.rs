// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The guest-physical layout of an Arm domain, as Xen's toolstack makes it
//! (`public/arch-arm.h`):
//!
//! - RAM in bank 0, from `GUEST_RAM0_BASE` (1 GiB; up to 3 GiB of it), the rest in bank 1
//!   from `GUEST_RAM1_BASE` (8 GiB; [`GuestLayout::Arm`]);
//! - four magic pages from `GUEST_MAGIC_BASE`: console ring, xenstore ring, memory-access
//!   ring, and the ring of the virtual PL011 (when the guest has one), in that order;
//! - the extended regions: what the RAM banks hold beyond the guest's RAM, for its foreign
//!   and grant mappings ([`extended_regions`]);
//! - the kernel at RAM base plus its `text_offset`; the initrd, then the device tree, right
//!   after 128 MiB of RAM when RAM reaches that far past the kernel, else at the end of RAM,
//!   else below the kernel (where libxc puts them, and so where guests expect them).

use xen_bindings::abi::xen::arch_arm::{GUEST_MAGIC_BASE, GUEST_RAM0_BASE, GUEST_RAM0_SIZE};
use xen_bindings::layout::{GuestLayout, ARM_GUEST_RAM1_BASE, ARM_GUEST_RAM1_SIZE};

use crate::builder::memory::PAGE;
use crate::error::{Error, Result};

/// Where RAM starts.
pub const RAM_BASE: u64 = GUEST_RAM0_BASE;
/// Most RAM an Arm guest takes: both banks (1019 GiB).
pub const MAX_RAM: u64 = GUEST_RAM0_SIZE + ARM_GUEST_RAM1_SIZE;
/// Room kept for the device tree (the builder's is a few KiB; Linux takes up to 2 MiB).
pub const DTB_SLOT: u64 = 64 << 10;
/// The kernel's end is rounded up to this before placing the modules.
const KERNEL_END_ALIGN: u64 = 2 << 20;
/// Modules go right after this much RAM when they can.
const MODULES_AT: u64 = 128 << 20;

/// Smallest extended region offered: what Xen's toolstack leaves out as not worth a guest's
/// bookkeeping.
const EXT_REGION_MIN: u64 = 64 << 20;
/// Extended regions start 2 MiB-aligned.
const EXT_REGION_ALIGN: u64 = 2 << 20;

/// The extended regions of a guest with `ram` bytes of RAM (filling bank 0, then bank 1) and
/// `gpaddr_bits`-bit guest-physical addresses, as `(base, size)`: the unused rest of each RAM
/// bank below the address limit, from the 2 MiB boundary after the bank's RAM, where at least
/// 64 MiB (what Xen's toolstack offers since 4.17). The guest maps foreign and grant pages there
/// (Linux's unpopulated-alloc) instead of ballooning out RAM for them. Nothing else lives in
/// those ranges: the grant-table space, magic pages and GIC are below bank 0.
pub fn extended_regions(ram: u64, gpaddr_bits: u8) -> Vec<(u64, u64)> {
    // The last guest-physical address, inclusive (64 bits or more: all of them).
    let last = u64::MAX
        .checked_shr(64u32.saturating_sub(gpaddr_bits.into()))
        .unwrap_or(0);
    let ranges = GuestLayout::Arm.ram_ranges(ram);
    let used = |bank| ranges.iter().find(|r| r.start == bank).map_or(0, |r| r.len);
    [
        (RAM_BASE, GUEST_RAM0_SIZE, used(RAM_BASE)),
        (
            ARM_GUEST_RAM1_BASE,
            ARM_GUEST_RAM1_SIZE,
            used(ARM_GUEST_RAM1_BASE),
        ),
    ]
    .into_iter()
    .filter_map(|(bank, bank_size, used)| {
        let base = bank + used.div_ceil(EXT_REGION_ALIGN) * EXT_REGION_ALIGN;
        let end = last.min(bank + bank_size - 1);
        let size = end.checked_sub(base)? + 1;
        (size >= EXT_REGION_MIN).then_some((base, size))
    })
    .collect()
}

/// The magic pages, by index from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MagicPage {
    /// Console ring.
    Console = 0,
    /// Xenstore ring.
    Xenstore = 1,
    /// Memory-access (monitor) ring.
    MemAccess = 2,
    /// Virtual PL011 UART ring.
    Vuart = 3,
}

/// Number of magic pages.
pub const NR_MAGIC_PAGES: u64 = 4;

impl MagicPage {
    /// Its guest frame.
    pub const fn gfn(self) -> u64 {
        GUEST_MAGIC_BASE / PAGE + self as u64
    }
}

/// The guest frames of all magic pages.
pub fn magic_gfns() -> Vec<u64> {
    (0..NR_MAGIC_PAGES)
        .map(|i| GUEST_MAGIC_BASE / PAGE + i)
        .collect()
}

/// Where the kernel, the initrd and the device tree go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The kernel's load address, also its entry.
    pub kernel: u64,
    /// The end of the memory the kernel takes.
    pub kernel_end: u64,
    /// The initrd's address and size.
    pub initrd: Option<(u64, u64)>,
    /// The device tree's address ([`DTB_SLOT`] bytes reserved).
    pub dtb: u64,
}

/// Places a kernel loaded `text_offset` above the RAM base that takes `load_size` bytes, an
/// initrd of `initrd` bytes and the device tree in `ram` bytes of RAM (all of them in bank
/// 0); a [`Error::MemoryTooSmall`] when they do not fit.
pub fn place(ram: u64, text_offset: u64, load_size: u64, initrd: Option<u64>) -> Result<Placement> {
    let ram_end = RAM_BASE + ram.min(GUEST_RAM0_SIZE);
    let kernel = RAM_BASE + text_offset;
    let kernel_end = kernel + load_size;
    if kernel_end > ram_end {
        return Err(Error::MemoryTooSmall {
            what: "kernel",
            start: kernel,
            end: kernel_end,
            ram_end,
        });
    }
    let rounded_end = kernel_end.next_multiple_of(KERNEL_END_ALIGN);
    let initrd_size = initrd.map(|s| s.next_multiple_of(PAGE));
    let modules = DTB_SLOT + initrd_size.unwrap_or(0);
    let at_128m = RAM_BASE + MODULES_AT;
    let base = if ram_end >= at_128m + modules && rounded_end < at_128m {
        at_128m
    } else if ram_end
        .checked_sub(modules)
        .is_some_and(|b| b > rounded_end)
    {
        ram_end - modules
    } else if kernel - RAM_BASE > modules {
        kernel - modules
    } else {
        return Err(Error::MemoryTooSmall {
            what: "initrd and device tree (beside the kernel)",
            start: rounded_end,
            end: rounded_end + modules,
            ram_end,
        });
    };
    Ok(Placement {
        kernel,
        kernel_end,
        initrd: initrd.map(|size| (base, size)),
        dtb: base + initrd_size.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_regions_are_the_rest_of_each_bank_below_the_address_limit() {
        let mib = 1 << 20;
        // 256 MiB of RAM, 40-bit addresses: the rest of bank 0, and all of bank 1.
        assert_eq!(
            extended_regions(256 * mib, 40),
            [(0x5000_0000, 0xb000_0000), (0x2_0000_0000, 0xfe_0000_0000)]
        );
        // 32-bit addresses reach no further than bank 0.
        assert_eq!(
            extended_regions(256 * mib, 32),
            [(0x5000_0000, 0xb000_0000)]
        );
        // 36-bit: bank 1 up to 64 GiB.
        assert_eq!(
            extended_regions(256 * mib, 36)[1],
            (0x2_0000_0000, 0xe_0000_0000)
        );
        // The region starts at the 2 MiB boundary after RAM.
        assert_eq!(
            extended_regions(100 * mib + 4096, 32),
            [(0x4000_0000 + 102 * mib, 0xc000_0000 - 102 * mib)]
        );
        // Under 64 MiB left in bank 0 is not offered; a full bank leaves nothing.
        let bank0 = GUEST_RAM0_SIZE;
        assert_eq!(extended_regions(bank0 - 32 * mib, 32), []);
        assert_eq!(extended_regions(bank0, 40).len(), 1);
        assert_eq!(
            extended_regions(bank0 - 64 * mib, 32),
            [(0x1_0000_0000 - 64 * mib, 64 * mib)]
        );
        // RAM beyond bank 0 fills bank 1 from its base: the region starts after it.
        assert_eq!(
            extended_regions(bank0 + 512 * mib, 40),
            [(0x2_2000_0000, 0xfe_0000_0000 - 512 * mib)]
        );
        // Both banks full: nothing left.
        assert_eq!(extended_regions(MAX_RAM, 64), []);
        // No address width reported (Xen before 4.16): nothing is offered.
        assert_eq!(extended_regions(256 * mib, 0), []);
        assert_eq!(extended_regions(256 * mib, 64).len(), 2);
    }

    #[test]
    fn magic_pages_are_at_guest_magic_base_in_libxcs_order() {
        assert_eq!(MagicPage::Console.gfn(), 0x39000);
        assert_eq!(MagicPage::Xenstore.gfn(), 0x39001);
        assert_eq!(MagicPage::MemAccess.gfn(), 0x39002);
        assert_eq!(magic_gfns(), [0x39000, 0x39001, 0x39002, 0x39003]);
    }

    #[test]
    fn modules_go_after_128_mib_when_ram_reaches_past_them() {
        let p = place(256 << 20, 0, 0x201_0000, Some(0x30_0001)).unwrap();
        assert_eq!(p.kernel, 0x4000_0000);
        assert_eq!(p.initrd, Some((0x4800_0000, 0x30_0001)));
        assert_eq!(p.dtb, 0x4830_1000);
    }

    #[test]
    fn with_less_ram_they_go_at_its_end_then_below_the_kernel() {
        // 128 MiB: no room after 128 MiB, so at the end of RAM.
        let p = place(128 << 20, 0, 0x201_0000, Some(0x10_0000)).unwrap();
        assert_eq!(p.initrd, Some((0x4800_0000 - 0x11_0000, 0x10_0000)));
        assert_eq!(p.dtb, 0x4800_0000 - DTB_SLOT);
        // A kernel filling RAM but loaded high: below it.
        let p = place(16 << 20, 0x80_0000, 0x80_0000, None).unwrap();
        assert_eq!((p.initrd, p.dtb), (None, 0x4080_0000 - DTB_SLOT));
    }

    #[test]
    fn what_does_not_fit_is_memory_too_small() {
        let e = place(16 << 20, 0, 0x200_0000, None).unwrap_err();
        assert!(
            matches!(e, Error::MemoryTooSmall { what: "kernel", .. }),
            "{e}"
        );
        let e = place(32 << 20, 0, 0x100_0000, Some(0x100_0000)).unwrap_err();
        assert!(matches!(e, Error::MemoryTooSmall { .. }), "{e}");
    }
}
