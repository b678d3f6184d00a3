// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Everything a vCPU needs to start directly in 64-bit long mode.
//!
//! [`setup`] writes a GDT, an empty IDT and identity page tables into guest
//! memory and returns the neutral [`SpecialRegisters`] that enter long mode
//! with them: paging on, PAE, EFER.LME|LMA, flat 64-bit code and data
//! segments and a busy TSS. Hand the result to the backend's `set_sregs`.
//!
//! The GDT puts code at selector `0x10` and data at `0x18` (see
//! [`selectors`]), the selectors Linux's 64-bit boot protocol asks for, so
//! the same state serves a test guest and a kernel entry.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::long_mode::{self, Layout};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let sregs = long_mode::setup(&mem, &Layout::default()).unwrap();
//! assert_eq!(sregs.cr0, 0x8000_0031);
//! assert_eq!(sregs.efer, 0x500);
//! assert_eq!(sregs.cs.selector, 0x10);
//! let regs = long_mode::entry_registers(0x10_0000, 0x8_0000);
//! assert_eq!(regs.rflags, 2);
//! ```

use vm_hypervisor::x86_64::{bits, DescriptorTable, Segment, SpecialRegisters, StandardRegisters};
use vm_memory::{GuestAddress, GuestMemory};

use crate::error::Result;
use crate::gdt::{Gdt, SegmentDescriptor, Selector};
use crate::guest;
use crate::paging::{IdentityMap, PageTables};

/// Selectors of the boot GDT written by [`setup`] and
/// [`protected_mode::setup`](crate::protected_mode::setup).
pub mod selectors {
    use crate::gdt::Selector;

    /// Code segment (GDT entry 2): 64-bit in long mode, 32-bit in
    /// protected mode.
    pub const CODE: Selector = Selector(0x10);
    /// Flat read/write data segment (GDT entry 3).
    pub const DATA: Selector = Selector(0x18);
    /// Busy TSS (GDT entry 4).
    pub const TSS: Selector = Selector(0x20);
}

/// Default GDT address.
pub const DEFAULT_GDT_ADDR: u64 = 0x500;
/// Default IDT address.
pub const DEFAULT_IDT_ADDR: u64 = 0x540;
/// Default page-table (PML4) address.
pub const DEFAULT_PAGE_TABLES_ADDR: u64 = 0x9000;
/// Size of the empty IDT written (one 16-byte long-mode gate).
pub const IDT_SIZE: usize = 16;
/// IA32_APIC_BASE for a bootstrap processor: the default base 0xfee00000,
/// global enable (bit 11) and BSP (bit 8).
pub const APIC_BASE_BSP: u64 = 0xfee0_0000 | 1 << 11 | 1 << 8;
/// IA32_APIC_BASE for an application processor (BSP bit clear).
pub const APIC_BASE_AP: u64 = 0xfee0_0000 | 1 << 11;

/// Where [`setup`] puts the boot structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// GDT address (5 entries, 40 bytes).
    pub gdt: GuestAddress,
    /// IDT address (an empty 16-byte table).
    pub idt: GuestAddress,
    /// PML4 address, 4 KiB aligned; PDPT and page directories follow.
    pub page_tables: GuestAddress,
    /// How much memory the page tables identity-map.
    pub identity_map: IdentityMap,
}

impl Default for Layout {
    /// GDT at 0x500, IDT at 0x540, page tables at 0x9000 mapping 1 GiB.
    fn default() -> Self {
        Self {
            gdt: GuestAddress(DEFAULT_GDT_ADDR),
            idt: GuestAddress(DEFAULT_IDT_ADDR),
            page_tables: GuestAddress(DEFAULT_PAGE_TABLES_ADDR),
            identity_map: IdentityMap::default(),
        }
    }
}

/// The boot GDT: null, unused, code, data, TSS.
pub(crate) fn boot_gdt(code: SegmentDescriptor, tss: SegmentDescriptor) -> Result<Gdt> {
    let mut gdt = Gdt::new();
    gdt.push_null()?;
    let cs = gdt.push(code)?;
    let ds = gdt.push(SegmentDescriptor::data())?;
    let tr = gdt.push(tss)?;
    debug_assert_eq!(
        (cs, ds, tr),
        (selectors::CODE, selectors::DATA, selectors::TSS)
    );
    Ok(gdt)
}

/// Loads `gdt`'s code, data and TSS entries into the segment registers of
/// `sregs` (LDT unusable).
pub(crate) fn load_segments(sregs: &mut SpecialRegisters, gdt: &Gdt) -> Result<()> {
    let seg = |sel: Selector| -> Result<Segment> { Ok(gdt.get(sel)?.to_segment(sel)) };
    sregs.cs = seg(selectors::CODE)?;
    let data = seg(selectors::DATA)?;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = seg(selectors::TSS)?;
    sregs.ldt = Segment {
        unusable: true,
        ..Segment::default()
    };
    Ok(())
}

/// Writes the GDT at `gdt_addr` and `idt_size` zero bytes at `idt_addr`.
pub(crate) fn write_tables<M: GuestMemory + ?Sized>(
    mem: &M,
    gdt: &Gdt,
    gdt_addr: GuestAddress,
    idt_addr: GuestAddress,
    idt_size: usize,
) -> Result<(DescriptorTable, DescriptorTable)> {
    let gdtr = gdt.write_to(mem, gdt_addr)?;
    guest::write(mem, idt_addr, &vec![0u8; idt_size], "IDT")?;
    let idtr = DescriptorTable {
        base: idt_addr.0,
        limit: (idt_size - 1) as u16,
    };
    Ok((gdtr, idtr))
}

/// Writes the long-mode boot structures described by `layout` and returns
/// special registers for a bootstrap vCPU that enter long mode with them.
///
/// `apic_base` is set to [`APIC_BASE_BSP`]; use [`setup_from`] to keep a
/// vCPU's own values of the registers boot does not decide.
pub fn setup<M: GuestMemory + ?Sized>(mem: &M, layout: &Layout) -> Result<SpecialRegisters> {
    let base = SpecialRegisters {
        apic_base: APIC_BASE_BSP,
        ..SpecialRegisters::default()
    };
    setup_from(mem, layout, &base)
}

/// Like [`setup`], but starts from `base` (typically the vCPU's current
/// special registers), so fields boot does not decide (APIC base, CR8,
/// CR2) keep their values.
pub fn setup_from<M: GuestMemory + ?Sized>(
    mem: &M,
    layout: &Layout,
    base: &SpecialRegisters,
) -> Result<SpecialRegisters> {
    let tables_len = layout.identity_map.footprint();
    guest::check_disjoint(&[
        ("GDT", layout.gdt.0, 40),
        ("IDT", layout.idt.0, IDT_SIZE as u64),
        ("page tables", layout.page_tables.0, tables_len),
    ])?;
    let gdt = boot_gdt(
        SegmentDescriptor::code64(),
        SegmentDescriptor::tss_busy_flat(),
    )?;
    // Build (and so validate) the page tables before writing anything.
    layout.identity_map.build(layout.page_tables)?;
    guest::check(
        mem,
        layout.page_tables,
        tables_len as usize,
        vm_memory::Permissions::Write,
        "page tables",
    )?;
    let (gdtr, idtr) = write_tables(mem, &gdt, layout.gdt, layout.idt, IDT_SIZE)?;
    let tables: PageTables = layout.identity_map.write(mem, layout.page_tables)?;

    let mut sregs = *base;
    load_segments(&mut sregs, &gdt)?;
    sregs.gdt = gdtr;
    sregs.idt = idtr;
    sregs.cr0 = bits::CR0_PE | bits::CR0_ET | bits::CR0_NE | bits::CR0_PG;
    sregs.cr3 = tables.cr3;
    sregs.cr4 = bits::CR4_PAE;
    sregs.efer = bits::EFER_LME | bits::EFER_LMA;
    Ok(sregs)
}

/// General-purpose registers to start executing at `rip` with stack
/// pointer `rsp`: everything else zero, RFLAGS only its reserved bit
/// (interrupts disabled).
pub fn entry_registers(rip: u64, rsp: u64) -> StandardRegisters {
    StandardRegisters {
        rip,
        rsp,
        rbp: rsp,
        rflags: StandardRegisters::RFLAGS_RESERVED,
        ..StandardRegisters::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::guest::test_util;
    use vm_memory::Bytes;

    #[test]
    fn long_mode_state_matches_what_kvm_runs() {
        let mem = test_util::mem(1 << 20);
        let s = setup(&mem, &Layout::default()).unwrap();
        assert_eq!(
            (s.cr0, s.cr4, s.efer, s.cr3),
            (0x8000_0031, 0x20, 0x500, 0x9000)
        );
        assert_eq!(s.cs.selector, 0x10);
        assert_eq!(s.cs.type_, 11);
        assert!(s.cs.s && s.cs.l && !s.cs.db && s.cs.g && s.cs.present);
        for d in [s.ds, s.es, s.fs, s.gs, s.ss] {
            assert_eq!((d.selector, d.type_), (0x18, 3));
            assert!(d.db && d.s && d.g && d.present);
        }
        assert_eq!((s.tr.selector, s.tr.type_, s.tr.s), (0x20, 11, false));
        assert!(s.ldt.unusable);
        assert_eq!(
            s.gdt,
            DescriptorTable {
                base: 0x500,
                limit: 39
            }
        );
        assert_eq!(
            s.idt,
            DescriptorTable {
                base: 0x540,
                limit: 15
            }
        );
        assert_eq!(s.apic_base, APIC_BASE_BSP);

        // The GDT in memory decodes to the loaded segments.
        let gdt = Gdt::read_from(&mem, s.gdt).unwrap();
        assert_eq!(gdt.entries()[2], 0x00af_9b00_0000_ffff);
        assert_eq!(
            gdt.get(selectors::CODE)
                .unwrap()
                .to_segment(selectors::CODE),
            s.cs
        );
        assert_eq!(
            gdt.get(selectors::DATA)
                .unwrap()
                .to_segment(selectors::DATA),
            s.ss
        );
        // Page tables are where CR3 points.
        assert_eq!(mem.read_obj::<u64>(GuestAddress(0x9000)).unwrap(), 0xa003);
        assert_eq!(mem.read_obj::<u64>(GuestAddress(0xb000)).unwrap(), 0x83);
    }

    #[test]
    fn setup_from_keeps_fields_boot_does_not_decide() {
        let mem = test_util::mem(1 << 20);
        let base = SpecialRegisters {
            apic_base: APIC_BASE_AP,
            cr8: 3,
            ..SpecialRegisters::default()
        };
        let s = setup_from(&mem, &Layout::default(), &base).unwrap();
        assert_eq!((s.apic_base, s.cr8), (APIC_BASE_AP, 3));
        assert_eq!(s.efer, 0x500);
    }

    #[test]
    fn bad_layouts_are_typed_errors_and_write_nothing() {
        let mem = test_util::mem(0x10000);
        let overlap = Layout {
            idt: GuestAddress(0x510),
            ..Layout::default()
        };
        assert!(matches!(
            setup(&mem, &overlap),
            Err(Error::Overlap {
                what: "IDT",
                other: "GDT",
                ..
            })
        ));
        let too_big = Layout {
            identity_map: IdentityMap::new(3),
            ..Layout::default()
        };
        assert!(matches!(
            setup(&mem, &too_big),
            Err(Error::InvalidSize { .. })
        ));
        assert_eq!(mem.read_obj::<u64>(GuestAddress(0x508)).unwrap(), 0);
        let outside = Layout {
            page_tables: GuestAddress(0xf000),
            ..Layout::default()
        };
        assert!(matches!(
            setup(&mem, &outside),
            Err(Error::OutsideGuestMemory { .. })
        ));
    }

    #[test]
    fn entry_registers_disable_interrupts() {
        let r = entry_registers(0x1000, 0x2000);
        assert_eq!((r.rip, r.rsp, r.rflags), (0x1000, 0x2000, 2));
        assert_eq!(r.rflags & bits::RFLAGS_IF, 0);
    }
}
