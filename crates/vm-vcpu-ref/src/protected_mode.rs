// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Flat 32-bit protected mode without paging.
//!
//! The state the PVH boot protocol prescribes (CR0.PE only, flat 4 GiB
//! 32-bit code and data, a busy 32-bit TSS with limit 0x67), also handy for
//! 32-bit test guests. Paging stays off: the nested KVM this project is
//! tested on cannot run 32-bit paging.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::protected_mode::{self, Layout};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let sregs = protected_mode::setup(&mem, &Layout::default()).unwrap();
//! assert_eq!(sregs.cr0 & 1, 1);
//! assert!(sregs.cs.db && !sregs.cs.l);
//! ```

use vm_hypervisor::x86_64::{bits, SpecialRegisters};
use vm_memory::{GuestAddress, GuestMemory};

use crate::error::Result;
use crate::gdt::SegmentDescriptor;
use crate::guest;
use crate::long_mode::{
    boot_gdt, load_segments, write_tables, APIC_BASE_BSP, DEFAULT_GDT_ADDR, DEFAULT_IDT_ADDR,
};

/// Limit of the minimal 32-bit TSS the task register points at.
pub const TSS32_LIMIT: u32 = 0x67;
/// Size of the empty IDT written (one 8-byte protected-mode gate).
pub const IDT_SIZE: usize = 8;

/// Where [`setup`] puts the boot structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// GDT address (5 entries, 40 bytes).
    pub gdt: GuestAddress,
    /// IDT address (an empty 8-byte table).
    pub idt: GuestAddress,
}

impl Default for Layout {
    /// GDT at 0x500, IDT at 0x540.
    fn default() -> Self {
        Self {
            gdt: GuestAddress(DEFAULT_GDT_ADDR),
            idt: GuestAddress(DEFAULT_IDT_ADDR),
        }
    }
}

/// Writes a GDT (code at 0x10, data at 0x18, TSS at 0x20) and an empty IDT
/// and returns special registers for flat 32-bit protected mode on a
/// bootstrap vCPU: CR0 = PE | ET, CR4 = 0, EFER = 0.
pub fn setup<M: GuestMemory + ?Sized>(mem: &M, layout: &Layout) -> Result<SpecialRegisters> {
    let base = SpecialRegisters {
        apic_base: APIC_BASE_BSP,
        ..SpecialRegisters::default()
    };
    setup_from(mem, layout, &base)
}

/// Like [`setup`], keeping `base`'s values of the fields boot does not
/// decide (APIC base, CR8, CR2).
pub fn setup_from<M: GuestMemory + ?Sized>(
    mem: &M,
    layout: &Layout,
    base: &SpecialRegisters,
) -> Result<SpecialRegisters> {
    guest::check_disjoint(&[
        ("GDT", layout.gdt.0, 40),
        ("IDT", layout.idt.0, IDT_SIZE as u64),
    ])?;
    let gdt = boot_gdt(
        SegmentDescriptor::code32(),
        SegmentDescriptor::tss_busy(TSS32_LIMIT),
    )?;
    let (gdtr, idtr) = write_tables(mem, &gdt, layout.gdt, layout.idt, IDT_SIZE)?;
    let mut sregs = *base;
    load_segments(&mut sregs, &gdt)?;
    sregs.gdt = gdtr;
    sregs.idt = idtr;
    sregs.cr0 = bits::CR0_PE | bits::CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    Ok(sregs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gdt::Gdt;
    use crate::guest::test_util;
    use crate::long_mode::selectors;

    #[test]
    fn flat_protected_mode_state() {
        let mem = test_util::mem(0x10000);
        let s = setup(&mem, &Layout::default()).unwrap();
        assert_eq!((s.cr0, s.cr3, s.cr4, s.efer), (0x11, 0, 0, 0));
        assert_eq!(
            (s.cs.selector, s.cs.type_, s.cs.limit),
            (0x10, 11, 0xffff_ffff)
        );
        assert!(s.cs.db && !s.cs.l && s.cs.g && s.cs.s);
        assert_eq!((s.ds.selector, s.ds.type_), (0x18, 3));
        assert_eq!((s.tr.selector, s.tr.type_, s.tr.limit), (0x20, 11, 0x67));
        assert!(!s.tr.g && !s.tr.s && s.tr.present);
        let gdt = Gdt::read_from(&mem, s.gdt).unwrap();
        assert_eq!(gdt.entries()[2], 0x00cf_9b00_0000_ffff);
        assert_eq!(
            gdt.get(selectors::TSS).unwrap().to_segment(selectors::TSS),
            s.tr
        );
        assert_eq!(s.idt.limit, 7);
    }

    #[test]
    fn overlapping_layout_is_rejected() {
        let mem = test_util::mem(0x10000);
        let l = Layout {
            gdt: GuestAddress(0x500),
            idt: GuestAddress(0x520),
        };
        assert!(setup(&mem, &l).is_err());
    }
}
