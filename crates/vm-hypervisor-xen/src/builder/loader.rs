// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Loading a PVH kernel, its initrd and its start info into the guest.
//!
//! Only the guest frames the loader writes (the kernel's segments, the initrd, the start info
//! and command line; no other page of RAM) are mapped, as one vm-memory `GuestMemoryMmap`: the
//! builder's ELF loader puts the ELF segments at their physical addresses and finds the PVH
//! entry (`XEN_ELFNOTE_PHYS32_ENTRY`), and vm-vcpu-ref writes `hvm_start_info`, the memory
//! map, the module list (the initrd) and the command line. The initrd goes at the top of RAM,
//! away from the kernel. A bzImage the guest decompresses itself is loaded as [`bzimage`]
//! says, with a zero page instead of the start info.

use vm_memory::GuestAddress;
use vm_vcpu_ref::linux_boot::LinuxBoot;
use vm_vcpu_ref::memmap::MemoryMapEntry;
use vm_vcpu_ref::pvh::PvhBoot;
use xen_bindings::DomId;

use super::bzimage::{self, BzImage};
use super::guest_ram::map_ranges;
use super::kernel::Kernel;
use super::memory::PAGE;
use super::ops::DomainOps;
use crate::error::{Error, Result};

/// Where a loaded kernel starts and what it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// The entry point (32-bit physical, protected mode, paging off).
    pub entry: u32,
    /// How the kernel is told where its boot information is.
    pub protocol: Protocol,
    /// End of the kernel image in guest memory (of a bzImage left to decompress itself: the
    /// end of its decompression buffer).
    pub kernel_end: u64,
    /// Where the initrd was put, and its size.
    pub initrd: Option<(u64, u64)>,
}

/// How vCPU 0 hands the kernel its boot information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// PVH: EBX holds the `hvm_start_info` address.
    Pvh {
        /// The start info's address.
        start_info: u32,
    },
    /// Linux's 32-bit boot protocol: ESI holds the zero page's address, and CS, DS, ES and
    /// SS come from the GDT at `gdt` (`__BOOT_CS` 0x10, `__BOOT_DS` 0x18).
    Linux32 {
        /// The zero page's address.
        zero_page: u32,
        /// The boot GDT's address.
        gdt: u32,
        /// Its limit.
        gdt_limit: u16,
    },
}

/// The physical range `[start, end)` the PT_LOAD segments of ELF image `elf` occupy, or a
/// reason it is no 64-bit little-endian ELF.
pub fn elf_extent(elf: &[u8]) -> std::result::Result<(u64, u64), String> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF image".into());
    }
    let phoff = u64_at(0x20).ok_or("truncated ELF header")? as usize;
    let phentsize = usize::from(u16_at(0x36).ok_or("truncated ELF header")?);
    let phnum = usize::from(u16_at(0x38).ok_or("truncated ELF header")?);
    let (mut start, mut end) = (u64::MAX, 0u64);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        const PT_LOAD: u32 = 1;
        if u32_at(ph).ok_or("truncated program header")? != PT_LOAD {
            continue;
        }
        let paddr = u64_at(ph + 0x18).ok_or("truncated program header")?;
        let memsz = u64_at(ph + 0x28).ok_or("truncated program header")?;
        start = start.min(paddr);
        end = end.max(paddr.checked_add(memsz).ok_or("segment wraps around")?);
    }
    if end == 0 {
        return Err("no loadable segment".into());
    }
    Ok((start, end))
}

/// Loads `kernel`, `initrd` and the PVH start info with `cmdline`, `memory_map` and the ACPI
/// RSDP address `acpi_rsdp` into `domid`, whose RAM below 4 GiB is `[0, ram)` (everything
/// goes there); for a bzImage the guest decompresses itself, the zero page and boot GDT
/// instead of the start info.
#[allow(clippy::too_many_arguments)]
pub fn load<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    ram: u64,
    kernel: &Kernel,
    initrd: Option<&[u8]>,
    cmdline: &str,
    memory_map: &[MemoryMapEntry],
    acpi_rsdp: Option<u64>,
) -> Result<Loaded> {
    let (kernel_start, kernel_end) = kernel.extent();
    // Where everything goes is known before anything is mapped: the initrd at the top of RAM
    // (or of what the kernel can reach), above the kernel.
    let top = kernel
        .bzimage()
        .map_or(ram, |bz| ram.min(bz.initrd_end_max()));
    let initrd_at = match initrd {
        Some(data) => {
            let size = data.len() as u64;
            let addr = top.saturating_sub(size) & !(PAGE - 1);
            if addr < kernel_end || size > top {
                return Err(Error::MemoryTooSmall {
                    what: "initrd (above the kernel)",
                    start: kernel_end,
                    end: kernel_end.saturating_add(size),
                    ram_end: top,
                });
            }
            Some((addr, size))
        }
        None => None,
    };
    let initrd = initrd.zip(initrd_at);
    if let Some(bz) = kernel.bzimage() {
        return load_bzimage(ops, domid, ram, bz, initrd, cmdline, memory_map, acpi_rsdp);
    }
    let mut steps = super::steps::Steps::start();
    let mut boot = PvhBoot::new(cmdline, memory_map);
    boot.initrd = initrd_at.map(|(a, s)| (GuestAddress(a), s));
    boot.acpi_rsdp = acpi_rsdp.map(GuestAddress);
    let boot_error = |e: vm_vcpu_ref::Error| Error::Load {
        what: "PVH start info",
        reason: e.to_string(),
    };
    let (_, start_info) = boot.build().map_err(boot_error)?;
    let mut ranges = vec![
        (kernel_start, kernel_end),
        (
            boot.start_info.0,
            boot.start_info.0 + start_info.len() as u64,
        ),
        (
            boot.cmdline_addr.0,
            boot.cmdline_addr.0 + cmdline.len() as u64 + 1,
        ),
    ];
    ranges.extend(initrd_at.map(|(a, s)| (a, a + s)));
    let guest = map_ranges(ops, domid, (0, ram), &ranges)?;
    steps.lap("map");

    let loaded = kernel.load_into(&guest.mem)?;
    let entry = loaded.pvh_entry.ok_or_else(|| Error::Load {
        what: "kernel",
        reason: "no PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY)".into(),
    })?;
    steps.lap("kernel");
    write_initrd(&guest.mem, initrd)?;
    steps.lap("initrd");
    boot.write(&guest.mem).map_err(boot_error)?;
    steps.lap("start info");
    drop(guest);
    steps.lap("unmap");
    log::debug!("domain {domid} load steps: {steps}");
    Ok(Loaded {
        entry,
        protocol: Protocol::Pvh {
            start_info: boot.start_info.0 as u32,
        },
        kernel_end: loaded.end,
        initrd: initrd_at,
    })
}

/// Writes the initrd `data` at its address, if there is one.
fn write_initrd(
    mem: &vm_memory::GuestMemoryMmap,
    initrd: Option<(&[u8], (u64, u64))>,
) -> Result<()> {
    if let Some((data, (addr, _))) = initrd {
        vm_memory::Bytes::write_slice(mem, data, GuestAddress(addr)).map_err(|e| Error::Load {
            what: "initrd",
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// [`load`] for a bzImage the guest decompresses: the protected-mode part at
/// [`bzimage::LOAD_ADDR`], the initrd where [`load`] placed it, the boot GDT, zero page and
/// command line.
#[allow(clippy::too_many_arguments)]
fn load_bzimage<O: DomainOps + ?Sized>(
    ops: &O,
    domid: DomId,
    ram: u64,
    bz: &BzImage,
    initrd: Option<(&[u8], (u64, u64))>,
    cmdline: &str,
    memory_map: &[MemoryMapEntry],
    acpi_rsdp: Option<u64>,
) -> Result<Loaded> {
    let mut steps = super::steps::Steps::start();
    let mut boot = LinuxBoot::new(cmdline, memory_map);
    boot.setup_header = Some(bz.header());
    boot.initrd = initrd.map(|(_, (a, s))| (GuestAddress(a), s));
    boot.acpi_rsdp = acpi_rsdp.map(GuestAddress);
    // Checked before anything is mapped: the command line's length, the memory map.
    boot.build().map_err(|e| Error::Load {
        what: "zero page",
        reason: e.to_string(),
    })?;
    let gdt = bzimage::boot_gdt();
    let mut ranges = vec![bz.loaded()];
    ranges.extend(bzimage::boot_ranges(&boot, &gdt));
    ranges.extend(initrd.map(|(_, (a, s))| (a, a + s)));
    let guest = map_ranges(ops, domid, (0, ram), &ranges)?;
    steps.lap("map");
    bz.write(&guest.mem, &boot, &gdt)?;
    steps.lap("kernel, zero page");
    write_initrd(&guest.mem, initrd)?;
    steps.lap("initrd");
    drop(guest);
    steps.lap("unmap");
    log::debug!("domain {domid} load steps: {steps}");
    Ok(Loaded {
        entry: bzimage::LOAD_ADDR as u32,
        protocol: Protocol::Linux32 {
            zero_page: boot.zero_page.0 as u32,
            gdt: bzimage::GDT_ADDR as u32,
            gdt_limit: (gdt.size() - 1) as u16,
        },
        kernel_end: bz.extent().1,
        initrd: initrd.map(|(_, at)| at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with one PT_LOAD segment at `paddr` of `memsz` bytes.
    pub(crate) fn elf_with_segment(paddr: u64, memsz: u64) -> Vec<u8> {
        let mut e = vec![0u8; 0x40 + 0x38];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[5] = 1;
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let ph = 0x40;
        e[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        e[ph + 0x18..ph + 0x20].copy_from_slice(&paddr.to_le_bytes());
        e[ph + 0x28..ph + 0x30].copy_from_slice(&memsz.to_le_bytes());
        e
    }

    #[test]
    fn the_extent_covers_the_loadable_segments() {
        let e = elf_with_segment(0x100_0000, 0x20_0000);
        assert_eq!(elf_extent(&e).unwrap(), (0x100_0000, 0x120_0000));
        assert!(elf_extent(b"\x7fELF\x01\x01").is_err());
        assert!(elf_extent(&e[..0x30]).is_err());
    }
}
