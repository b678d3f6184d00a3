// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux x86 boot protocol: the zero page (`boot_params`) and the 64-bit
//! entry state.
//!
//! [`LinuxBoot::write`] writes the command line and a [`boot_params`]
//! holding the E820 map, the command-line pointer, the initrd and the setup
//! header fields a boot loader owns.
//! [`boot_registers`] gives the registers of the 64-bit entry: RIP at the
//! kernel's 64-bit entry point, RSI pointing at the zero page; combine it
//! with [`long_mode::setup`](crate::long_mode::setup), whose GDT has the
//! `__BOOT_CS` (0x10) and `__BOOT_DS` (0x18) selectors the protocol wants.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vm_vcpu_ref::linux_boot::{boot_registers, LinuxBoot};
//! use vm_vcpu_ref::memmap::MemoryMapEntry;
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let map = [MemoryMapEntry::ram(0, 1 << 20)];
//! let boot = LinuxBoot::new("console=ttyS0", &map);
//! let params = boot.write(&mem).unwrap();
//! assert_eq!(params.e820_entries, 1);
//! let regs = boot_registers(GuestAddress(0x20_0200), boot.zero_page);
//! assert_eq!(regs.rsi, boot.zero_page.0);
//! ```

use crate::bootparam::{
    boot_e820_entry, boot_params, setup_header, CAN_USE_HEAP, E820_MAX_ENTRIES_ZEROPAGE,
    LOADED_HIGH,
};
use vm_hypervisor::x86_64::StandardRegisters;
use vm_memory::{ByteValued, GuestAddress, GuestMemory};

use crate::error::{Error, Result};
use crate::guest;
use crate::memmap::{self, MemoryMapEntry};

/// Conventional zero page address.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Conventional command line address.
pub const CMDLINE_START: u64 = 0x2_0000;
/// Size of `boot_params`.
pub const ZERO_PAGE_SIZE: usize = 4096;
/// `boot_flag` value (offset 0x1fe).
pub const BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// `header` value "HdrS" (offset 0x202).
pub const HDRS_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader` for a loader without an assigned ID.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// `heap_end_ptr`: end of the real-mode setup heap, relative to the setup
/// code (0xfe00 leaves room for the 512-byte stack below 64 KiB).
pub const HEAP_END: u16 = 0xfe00;
/// `kernel_alignment` when no kernel header supplies one (16 MiB).
pub const DEFAULT_KERNEL_ALIGNMENT: u32 = 0x100_0000;
/// Longest command line (without NUL) when the kernel header does not say:
/// Linux's x86 COMMAND_LINE_SIZE of 2048 minus the terminator.
pub const DEFAULT_CMDLINE_MAX: usize = 2047;
/// Boot protocol version from which `cmdline_size` is meaningful (2.06).
pub const PROTOCOL_CMDLINE_SIZE: u16 = 0x0206;

/// What to tell a Linux kernel entered through the 64-bit boot protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct LinuxBoot<'a> {
    /// Where `boot_params` goes (4 KiB).
    pub zero_page: GuestAddress,
    /// Where the NUL-terminated command line goes.
    pub cmdline_addr: GuestAddress,
    /// The command line.
    pub cmdline: &'a str,
    /// The E820 map (at most 128 entries).
    pub memory_map: &'a [MemoryMapEntry],
    /// The setup header read from the kernel image (a bzImage loader
    /// returns it); `None` for a kernel loaded without one (ELF vmlinux).
    pub setup_header: Option<setup_header>,
    /// Initial ramdisk address and size.
    pub initrd: Option<(GuestAddress, u64)>,
    /// ACPI RSDP address, if the VMM provides ACPI tables.
    pub acpi_rsdp: Option<GuestAddress>,
}

impl<'a> LinuxBoot<'a> {
    /// Boot data at the conventional addresses, without header, initrd or
    /// ACPI.
    pub fn new(cmdline: &'a str, memory_map: &'a [MemoryMapEntry]) -> Self {
        Self {
            zero_page: GuestAddress(ZERO_PAGE_START),
            cmdline_addr: GuestAddress(CMDLINE_START),
            cmdline,
            memory_map,
            setup_header: None,
            initrd: None,
            acpi_rsdp: None,
        }
    }

    /// The longest command line (without NUL) the kernel accepts.
    pub fn cmdline_max(&self) -> usize {
        match self.setup_header {
            Some(h) if h.version >= PROTOCOL_CMDLINE_SIZE && h.cmdline_size != 0 => {
                h.cmdline_size as usize
            }
            // Protocols before 2.06 stop at 255 bytes.
            Some(h) if h.version != 0 && h.version < PROTOCOL_CMDLINE_SIZE => 255,
            _ => DEFAULT_CMDLINE_MAX,
        }
    }

    fn check_cmdline(&self) -> Result<()> {
        if let Some(offset) = self.cmdline.bytes().position(|b| b == 0) {
            return Err(Error::CmdlineHasNul { offset });
        }
        let max = self.cmdline_max();
        if self.cmdline.len() > max {
            return Err(Error::CmdlineTooLong {
                len: self.cmdline.len(),
                max,
            });
        }
        Ok(())
    }

    /// Builds `boot_params` without touching guest memory.
    pub fn build(&self) -> Result<boot_params> {
        self.check_cmdline()?;
        memmap::validate(self.memory_map, E820_MAX_ENTRIES_ZEROPAGE, "E820 map")?;

        let mut params = boot_params::default();
        let mut hdr = self.setup_header.unwrap_or_default();
        if self.setup_header.is_none() {
            hdr.kernel_alignment = DEFAULT_KERNEL_ALIGNMENT;
        }
        hdr.boot_flag = BOOT_FLAG_MAGIC;
        hdr.header = HDRS_MAGIC;
        hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
        hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
        hdr.heap_end_ptr = HEAP_END;
        let cmdline = self.cmdline_addr.0;
        hdr.cmd_line_ptr = cmdline as u32;
        params.ext_cmd_line_ptr = (cmdline >> 32) as u32;
        if let Some((addr, size)) = self.initrd {
            if size > u64::from(u32::MAX) || addr.0.checked_add(size).is_none() {
                return Err(Error::InvalidSize {
                    what: "initrd",
                    value: size,
                    reason: "must fit 32 bits and not wrap around",
                });
            }
            hdr.ramdisk_image = addr.0 as u32;
            params.ext_ramdisk_image = (addr.0 >> 32) as u32;
            hdr.ramdisk_size = size as u32;
        }
        params.hdr = hdr;
        params.acpi_rsdp_addr = self.acpi_rsdp.map_or(0, |a| a.0);

        for (slot, e) in params.e820_table.iter_mut().zip(self.memory_map) {
            *slot = boot_e820_entry {
                addr: e.addr,
                size: e.size,
                r#type: e.kind.code(),
            };
        }
        params.e820_entries = self.memory_map.len() as u8;
        Ok(params)
    }

    /// Writes the command line and the zero page; returns what was written.
    pub fn write<M: GuestMemory + ?Sized>(&self, mem: &M) -> Result<boot_params> {
        let params = self.build()?;
        let cmdline_len = self.cmdline.len() + 1;
        guest::check_disjoint(&[
            ("zero page", self.zero_page.0, ZERO_PAGE_SIZE as u64),
            ("command line", self.cmdline_addr.0, cmdline_len as u64),
        ])?;
        let perm = vm_memory::Permissions::Write;
        guest::check(mem, self.zero_page, ZERO_PAGE_SIZE, perm, "zero page")?;
        guest::check(mem, self.cmdline_addr, cmdline_len, perm, "command line")?;
        let mut cmdline = Vec::with_capacity(cmdline_len);
        cmdline.extend_from_slice(self.cmdline.as_bytes());
        cmdline.push(0);
        guest::write(mem, self.cmdline_addr, &cmdline, "command line")?;
        guest::write(mem, self.zero_page, params.as_slice(), "zero page")?;
        Ok(params)
    }
}

/// Registers for the 64-bit boot protocol: RIP at `entry` (the kernel's
/// 64-bit entry point: the ELF entry of a vmlinux, or the protected-mode
/// code plus 0x200 of a bzImage), RSI at the zero page, interrupts off.
pub fn boot_registers(entry: GuestAddress, zero_page: GuestAddress) -> StandardRegisters {
    StandardRegisters {
        rip: entry.0,
        rsi: zero_page.0,
        rflags: StandardRegisters::RFLAGS_RESERVED,
        ..StandardRegisters::default()
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{align_of, offset_of, size_of};

    use super::*;
    use crate::guest::test_util;
    use vm_memory::Bytes;

    fn at<T: ByteValued>(mem: &vm_memory::GuestMemoryMmap<()>, off: u64) -> T {
        mem.read_obj(GuestAddress(ZERO_PAGE_START + off)).unwrap()
    }

    #[test]
    fn layout_matches_the_boot_protocol() {
        // Offsets from the kernel's Documentation/arch/x86/zero-page.rst
        // and boot.rst.
        assert_eq!(size_of::<boot_params>(), 4096);
        assert_eq!(align_of::<boot_params>(), 1);
        assert_eq!(offset_of!(boot_params, acpi_rsdp_addr), 0x070);
        assert_eq!(offset_of!(boot_params, ext_ramdisk_image), 0x0c0);
        assert_eq!(offset_of!(boot_params, ext_cmd_line_ptr), 0x0c8);
        assert_eq!(offset_of!(boot_params, e820_entries), 0x1e8);
        assert_eq!(offset_of!(boot_params, hdr), 0x1f1);
        assert_eq!(offset_of!(boot_params, e820_table), 0x2d0);
        assert_eq!(size_of::<boot_e820_entry>(), 20);
        let hdr = 0x1f1;
        assert_eq!(hdr + offset_of!(setup_header, boot_flag), 0x1fe);
        assert_eq!(hdr + offset_of!(setup_header, header), 0x202);
        assert_eq!(hdr + offset_of!(setup_header, version), 0x206);
        assert_eq!(hdr + offset_of!(setup_header, type_of_loader), 0x210);
        assert_eq!(hdr + offset_of!(setup_header, loadflags), 0x211);
        assert_eq!(hdr + offset_of!(setup_header, ramdisk_image), 0x218);
        assert_eq!(hdr + offset_of!(setup_header, ramdisk_size), 0x21c);
        assert_eq!(hdr + offset_of!(setup_header, heap_end_ptr), 0x224);
        assert_eq!(hdr + offset_of!(setup_header, cmd_line_ptr), 0x228);
        assert_eq!(hdr + offset_of!(setup_header, kernel_alignment), 0x230);
        assert_eq!(hdr + offset_of!(setup_header, cmdline_size), 0x238);
    }

    #[test]
    fn zero_page_fields_read_back_at_documented_offsets() {
        let mem = test_util::mem(4 << 20);
        let map = [
            MemoryMapEntry::ram(0, 0x9fc00),
            MemoryMapEntry::reserved(0x9fc00, 0x400),
            MemoryMapEntry::ram(0x10_0000, 0x30_0000),
        ];
        let mut boot = LinuxBoot::new("console=ttyS0 reboot=k panic=1", &map);
        boot.initrd = Some((GuestAddress(0x30_0000), 0x1234));
        boot.acpi_rsdp = Some(GuestAddress(0xe0000));
        boot.write(&mem).unwrap();

        assert_eq!(at::<u16>(&mem, 0x1fe), 0xaa55);
        assert_eq!(at::<u32>(&mem, 0x202), 0x5372_6448);
        assert_eq!(at::<u8>(&mem, 0x210), 0xff);
        assert_eq!(at::<u8>(&mem, 0x211), 0x81);
        assert_eq!(at::<u32>(&mem, 0x218), 0x30_0000);
        assert_eq!(at::<u32>(&mem, 0x21c), 0x1234);
        assert_eq!(at::<u16>(&mem, 0x224), 0xfe00);
        assert_eq!(at::<u32>(&mem, 0x228), CMDLINE_START as u32);
        assert_eq!(at::<u32>(&mem, 0x0c8), 0);
        assert_eq!(at::<u32>(&mem, 0x230), DEFAULT_KERNEL_ALIGNMENT);
        assert_eq!(at::<u64>(&mem, 0x070), 0xe0000);
        assert_eq!(at::<u8>(&mem, 0x1e8), 3);
        for (i, e) in map.iter().enumerate() {
            let off = 0x2d0 + 20 * i as u64;
            assert_eq!(at::<u64>(&mem, off), e.addr);
            assert_eq!(at::<u64>(&mem, off + 8), e.size);
            assert_eq!(at::<u32>(&mem, off + 16), e.kind.code());
        }
        assert_eq!(at::<u64>(&mem, 0x2d0 + 60), 0, "no fourth entry");

        let mut line = vec![0u8; boot.cmdline.len() + 1];
        mem.read_slice(&mut line, GuestAddress(CMDLINE_START))
            .unwrap();
        assert_eq!(&line[..line.len() - 1], boot.cmdline.as_bytes());
        assert_eq!(*line.last().unwrap(), 0);
    }

    #[test]
    fn kernel_header_is_kept_and_its_cmdline_size_enforced() {
        let map = [MemoryMapEntry::ram(0, 1 << 20)];
        let hdr = setup_header {
            version: 0x020f,
            cmdline_size: 8,
            kernel_alignment: 0x20_0000,
            loadflags: 1 << 5,
            ..Default::default()
        };
        let mut boot = LinuxBoot::new("abcdefgh", &map);
        boot.setup_header = Some(hdr);
        let p = boot.build().unwrap();
        let (align, flags, version) = (p.hdr.kernel_alignment, p.hdr.loadflags, p.hdr.version);
        assert_eq!((align, version), (0x20_0000, 0x020f));
        assert_eq!(flags, (1 << 5) | LOADED_HIGH | CAN_USE_HEAP);
        boot.cmdline = "abcdefghi";
        assert!(matches!(
            boot.build(),
            Err(Error::CmdlineTooLong { len: 9, max: 8 })
        ));
        boot.setup_header = Some(setup_header {
            version: 0x0204,
            ..Default::default()
        });
        assert_eq!(boot.cmdline_max(), 255);
    }

    #[test]
    fn high_cmdline_and_initrd_use_the_ext_fields() {
        let map = [MemoryMapEntry::ram(0, 1 << 20)];
        let mut boot = LinuxBoot::new("x", &map);
        boot.cmdline_addr = GuestAddress(0x1_2345_6000);
        boot.initrd = Some((GuestAddress(0x2_0000_1000), 0x1000));
        let p = boot.build().unwrap();
        let (cl, ecl) = (p.hdr.cmd_line_ptr, p.ext_cmd_line_ptr);
        let (rd, erd) = (p.hdr.ramdisk_image, p.ext_ramdisk_image);
        assert_eq!((cl, ecl), (0x2345_6000, 1));
        assert_eq!((rd, erd), (0x1000, 2));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mem = test_util::mem(0x10000);
        let map = [MemoryMapEntry::ram(0, 0x10000)];
        let too_long = "x".repeat(DEFAULT_CMDLINE_MAX + 1);
        assert!(matches!(
            LinuxBoot::new(&too_long, &map).build(),
            Err(Error::CmdlineTooLong {
                len: 2048,
                max: 2047
            })
        ));
        assert!(matches!(
            LinuxBoot::new("a\0b", &map).build(),
            Err(Error::CmdlineHasNul { offset: 1 })
        ));
        let many = vec![MemoryMapEntry::ram(0, 0x1000); 129];
        assert!(matches!(
            LinuxBoot::new("", &many).build(),
            Err(Error::TooManyMemoryRegions {
                count: 129,
                max: 128,
                ..
            })
        ));
        // Command line at 0x20000 lies outside 64 KiB of memory; nothing
        // is written.
        assert!(matches!(
            LinuxBoot::new("x", &map).write(&mem),
            Err(Error::OutsideGuestMemory {
                what: "command line",
                ..
            })
        ));
        assert_eq!(at::<u16>(&mem, 0x1fe), 0);
        let mut boot = LinuxBoot::new("x", &map);
        boot.cmdline_addr = GuestAddress(ZERO_PAGE_START + 0x800);
        assert!(matches!(boot.write(&mem), Err(Error::Overlap { .. })));
        boot.cmdline_addr = GuestAddress(0x1000);
        boot.initrd = Some((GuestAddress(0), 1 << 32));
        assert!(matches!(boot.write(&mem), Err(Error::InvalidSize { .. })));
    }

    #[test]
    fn entry_registers() {
        let r = boot_registers(GuestAddress(0x100_0200), GuestAddress(ZERO_PAGE_START));
        assert_eq!((r.rip, r.rsi, r.rflags), (0x100_0200, 0x7000, 2));
        assert_eq!(r.rdi, 0);
    }
}
