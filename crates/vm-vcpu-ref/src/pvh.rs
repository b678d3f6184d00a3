// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PVH boot: `hvm_start_info` with its memory map and module list, and the
//! 32-bit entry state.
//!
//! The PVH protocol starts the kernel at the address of its
//! `XEN_ELFNOTE_PHYS32_ENTRY` note in flat 32-bit protected mode, paging
//! off, with EBX holding the physical address of the start info (magic
//! `0x336ec578`). [`PvhBoot::setup`] writes everything and returns both
//! register sets.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::memmap::MemoryMapEntry;
//! use vm_vcpu_ref::pvh::PvhBoot;
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let map = [MemoryMapEntry::ram(0, 1 << 20)];
//! let boot = PvhBoot::new("console=hvc0", &map);
//! let (sregs, regs) = boot.setup(&mem, GuestAddress(0x10_0000)).unwrap();
//! assert_eq!(regs.rbx, boot.start_info.0);
//! assert_eq!(sregs.cr0 & 1, 1);
//! ```

use crate::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info, XEN_HVM_START_MAGIC_VALUE,
};
use vm_hypervisor::x86_64::{SpecialRegisters, StandardRegisters};
use vm_memory::{ByteValued, GuestAddress, GuestMemory};

use crate::error::{Error, Result};
use crate::guest;
use crate::linux_boot::{CMDLINE_START, DEFAULT_CMDLINE_MAX};
use crate::memmap::{self, MemoryMapEntry};
use crate::protected_mode;

/// Conventional start info address.
pub const START_INFO_START: u64 = 0x6000;
/// Start info version written (1: memory map fields present).
pub const START_INFO_VERSION: u32 = 1;
/// Most memory map entries written (they must fit below the command line
/// in the conventional layout; the protocol itself has no limit).
pub const MAX_MEMMAP_ENTRIES: usize = 128;

/// What to tell a kernel entered through PVH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvhBoot<'a> {
    /// Where `hvm_start_info` goes; the memory map and module list follow
    /// it directly.
    pub start_info: GuestAddress,
    /// Where the NUL-terminated command line goes.
    pub cmdline_addr: GuestAddress,
    /// The command line.
    pub cmdline: &'a str,
    /// The memory map.
    pub memory_map: &'a [MemoryMapEntry],
    /// Initial ramdisk, passed as the first module.
    pub initrd: Option<(GuestAddress, u64)>,
    /// ACPI RSDP address, if the VMM provides ACPI tables.
    pub acpi_rsdp: Option<GuestAddress>,
    /// Where the protected-mode GDT and IDT go.
    pub tables: protected_mode::Layout,
}

/// Where [`PvhBoot::write`] put the start info and its lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PvhInfo {
    /// The start info as written.
    pub start_info: hvm_start_info,
    /// Total bytes of start info, memory map and module list.
    pub size: usize,
}

impl<'a> PvhBoot<'a> {
    /// Boot data at the conventional addresses, without initrd or ACPI.
    pub fn new(cmdline: &'a str, memory_map: &'a [MemoryMapEntry]) -> Self {
        Self {
            start_info: GuestAddress(START_INFO_START),
            cmdline_addr: GuestAddress(CMDLINE_START),
            cmdline,
            memory_map,
            initrd: None,
            acpi_rsdp: None,
            tables: protected_mode::Layout::default(),
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(offset) = self.cmdline.bytes().position(|b| b == 0) {
            return Err(Error::CmdlineHasNul { offset });
        }
        if self.cmdline.len() > DEFAULT_CMDLINE_MAX {
            return Err(Error::CmdlineTooLong {
                len: self.cmdline.len(),
                max: DEFAULT_CMDLINE_MAX,
            });
        }
        memmap::validate(self.memory_map, MAX_MEMMAP_ENTRIES, "PVH memory map")?;
        if let Some((addr, size)) = self.initrd {
            if addr.0.checked_add(size).is_none() {
                return Err(Error::InvalidSize {
                    what: "initrd",
                    value: size,
                    reason: "must not wrap around",
                });
            }
        }
        if self.start_info.0 % 8 != 0 {
            return Err(Error::Misaligned {
                what: "PVH start info",
                addr: self.start_info.0,
                align: 8,
            });
        }
        Ok(())
    }

    /// Serialises start info, memory map and module list, in that order.
    pub fn build(&self) -> Result<(hvm_start_info, Vec<u8>)> {
        self.check()?;
        let base = self.start_info.0;
        let info_size = std::mem::size_of::<hvm_start_info>() as u64;
        let map_size =
            (std::mem::size_of::<hvm_memmap_table_entry>() * self.memory_map.len()) as u64;
        let memmap_paddr = base + info_size;
        let modlist_paddr = memmap_paddr + map_size;
        let nr_modules = u32::from(self.initrd.is_some());

        let info = hvm_start_info {
            magic: XEN_HVM_START_MAGIC_VALUE,
            version: START_INFO_VERSION,
            flags: 0,
            nr_modules,
            modlist_paddr: if nr_modules > 0 { modlist_paddr } else { 0 },
            cmdline_paddr: self.cmdline_addr.0,
            rsdp_paddr: self.acpi_rsdp.map_or(0, |a| a.0),
            memmap_paddr,
            memmap_entries: self.memory_map.len() as u32,
            reserved: 0,
        };
        let mut bytes = info.as_slice().to_vec();
        for e in self.memory_map {
            let entry = hvm_memmap_table_entry {
                addr: e.addr,
                size: e.size,
                type_: e.kind.code(),
                reserved: 0,
            };
            bytes.extend_from_slice(entry.as_slice());
        }
        if let Some((addr, size)) = self.initrd {
            let module = hvm_modlist_entry {
                paddr: addr.0,
                size,
                cmdline_paddr: 0,
                reserved: 0,
            };
            bytes.extend_from_slice(module.as_slice());
        }
        Ok((info, bytes))
    }

    /// Writes the command line, start info, memory map and module list.
    pub fn write<M: GuestMemory + ?Sized>(&self, mem: &M) -> Result<PvhInfo> {
        let (info, bytes) = self.build()?;
        let cmdline_len = self.cmdline.len() + 1;
        guest::check_disjoint(&[
            ("PVH start info", self.start_info.0, bytes.len() as u64),
            ("command line", self.cmdline_addr.0, cmdline_len as u64),
            ("GDT", self.tables.gdt.0, 40),
            ("IDT", self.tables.idt.0, protected_mode::IDT_SIZE as u64),
        ])?;
        let perm = vm_memory::Permissions::Write;
        guest::check(mem, self.start_info, bytes.len(), perm, "PVH start info")?;
        guest::check(mem, self.cmdline_addr, cmdline_len, perm, "command line")?;
        let mut cmdline = Vec::with_capacity(cmdline_len);
        cmdline.extend_from_slice(self.cmdline.as_bytes());
        cmdline.push(0);
        guest::write(mem, self.cmdline_addr, &cmdline, "command line")?;
        guest::write(mem, self.start_info, &bytes, "PVH start info")?;
        Ok(PvhInfo {
            start_info: info,
            size: bytes.len(),
        })
    }

    /// Writes everything and returns the entry state: flat 32-bit protected
    /// mode (see [`protected_mode::setup`]) and EIP = `entry` (below 4 GiB),
    /// EBX = start info address, EFLAGS with interrupts off.
    pub fn setup<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        entry: GuestAddress,
    ) -> Result<(SpecialRegisters, StandardRegisters)> {
        let eip = guest::addr32(entry, 1, "PVH entry point")?;
        let ebx = guest::addr32(self.start_info, 1, "PVH start info")?;
        // Validate before any write.
        self.build()?;
        let perm = vm_memory::Permissions::Write;
        guest::check(mem, self.tables.gdt, 40, perm, "GDT")?;
        guest::check(mem, self.tables.idt, protected_mode::IDT_SIZE, perm, "IDT")?;
        self.write(mem)?;
        let sregs = protected_mode::setup(mem, &self.tables)?;
        let regs = StandardRegisters {
            rip: u64::from(eip),
            rbx: u64::from(ebx),
            rflags: StandardRegisters::RFLAGS_RESERVED,
            ..StandardRegisters::default()
        };
        Ok((sregs, regs))
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;
    use crate::guest::test_util;
    use vm_memory::Bytes;

    fn at<T: ByteValued>(mem: &vm_memory::GuestMemoryMmap<()>, addr: u64) -> T {
        mem.read_obj(GuestAddress(addr)).unwrap()
    }

    #[test]
    fn layout_matches_xen_start_info_header() {
        // xen/include/public/arch-x86/hvm/start_info.h
        assert_eq!(size_of::<hvm_start_info>(), 56);
        assert_eq!(std::mem::align_of::<hvm_start_info>(), 8);
        assert_eq!(std::mem::align_of::<hvm_memmap_table_entry>(), 8);
        assert_eq!(std::mem::align_of::<hvm_modlist_entry>(), 8);
        assert_eq!(offset_of!(hvm_start_info, magic), 0);
        assert_eq!(offset_of!(hvm_start_info, version), 4);
        assert_eq!(offset_of!(hvm_start_info, flags), 8);
        assert_eq!(offset_of!(hvm_start_info, nr_modules), 12);
        assert_eq!(offset_of!(hvm_start_info, modlist_paddr), 16);
        assert_eq!(offset_of!(hvm_start_info, cmdline_paddr), 24);
        assert_eq!(offset_of!(hvm_start_info, rsdp_paddr), 32);
        assert_eq!(offset_of!(hvm_start_info, memmap_paddr), 40);
        assert_eq!(offset_of!(hvm_start_info, memmap_entries), 48);
        assert_eq!(size_of::<hvm_memmap_table_entry>(), 24);
        assert_eq!(offset_of!(hvm_memmap_table_entry, type_), 16);
        assert_eq!(size_of::<hvm_modlist_entry>(), 32);
        assert_eq!(offset_of!(hvm_modlist_entry, cmdline_paddr), 16);
    }

    #[test]
    fn start_info_reads_back_at_documented_offsets() {
        let mem = test_util::mem(1 << 20);
        let map = [
            MemoryMapEntry::ram(0, 0x9fc00),
            MemoryMapEntry::reserved(0xf0000, 0x10000),
        ];
        let mut boot = PvhBoot::new("console=hvc0", &map);
        boot.initrd = Some((GuestAddress(0x8_0000), 0x4000));
        boot.acpi_rsdp = Some(GuestAddress(0xe0000));
        let (sregs, regs) = boot.setup(&mem, GuestAddress(0x10_0000)).unwrap();

        let s = START_INFO_START;
        assert_eq!(at::<u32>(&mem, s), 0x336e_c578);
        assert_eq!(at::<u32>(&mem, s + 4), 1);
        assert_eq!(at::<u32>(&mem, s + 12), 1, "nr_modules");
        assert_eq!(at::<u64>(&mem, s + 24), CMDLINE_START);
        assert_eq!(at::<u64>(&mem, s + 32), 0xe0000);
        let memmap = at::<u64>(&mem, s + 40);
        assert_eq!(memmap, s + 56);
        assert_eq!(at::<u32>(&mem, s + 48), 2);
        assert_eq!(at::<u64>(&mem, memmap), 0);
        assert_eq!(at::<u64>(&mem, memmap + 8), 0x9fc00);
        assert_eq!(at::<u32>(&mem, memmap + 16), 1);
        assert_eq!(at::<u64>(&mem, memmap + 24), 0xf0000);
        assert_eq!(at::<u32>(&mem, memmap + 40), 2);
        let modlist = at::<u64>(&mem, s + 16);
        assert_eq!(modlist, memmap + 48);
        assert_eq!(at::<u64>(&mem, modlist), 0x8_0000);
        assert_eq!(at::<u64>(&mem, modlist + 8), 0x4000);
        let mut line = [0u8; 13];
        mem.read_slice(&mut line, GuestAddress(CMDLINE_START))
            .unwrap();
        assert_eq!(&line, b"console=hvc0\0");

        assert_eq!((regs.rip, regs.rbx, regs.rflags), (0x10_0000, s, 2));
        assert_eq!(sregs.cr0, 0x11);
        assert_eq!((sregs.tr.type_, sregs.tr.limit), (11, 0x67));
        assert!(sregs.cs.db && !sregs.cs.l && sregs.cs.limit == 0xffff_ffff);
    }

    #[test]
    fn no_initrd_means_no_module_list() {
        let map = [MemoryMapEntry::ram(0, 1 << 20)];
        let (info, bytes) = PvhBoot::new("", &map).build().unwrap();
        assert_eq!((info.nr_modules, info.modlist_paddr), (0, 0));
        assert_eq!(bytes.len(), 56 + 24);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mem = test_util::mem(0x10000);
        let map = [MemoryMapEntry::ram(0, 0x10000)];
        let mut boot = PvhBoot::new("x", &map);
        boot.cmdline_addr = GuestAddress(0x8000);
        assert!(matches!(
            boot.setup(&mem, GuestAddress(1 << 32)),
            Err(Error::AddressOverflow {
                what: "PVH entry point",
                ..
            })
        ));
        let mut b = boot.clone();
        b.start_info = GuestAddress(0x6004);
        assert!(matches!(b.write(&mem), Err(Error::Misaligned { .. })));
        let mut b = boot.clone();
        b.start_info = GuestAddress(0xfff8);
        assert!(matches!(
            b.write(&mem),
            Err(Error::OutsideGuestMemory {
                what: "PVH start info",
                ..
            })
        ));
        let mut b = boot.clone();
        b.cmdline_addr = GuestAddress(0x6010);
        assert!(matches!(b.write(&mem), Err(Error::Overlap { .. })));
        let long = "y".repeat(4000);
        let mut b = boot.clone();
        b.cmdline = &long;
        assert!(matches!(b.write(&mem), Err(Error::CmdlineTooLong { .. })));
        assert_eq!(at::<u32>(&mem, START_INFO_START), 0, "nothing written");
    }
}
