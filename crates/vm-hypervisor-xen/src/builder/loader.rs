// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Loading a PVH kernel, its initrd and its start info into the guest.
//!
//! Only the guest frames the loader writes (the kernel's segments, the initrd, the start info
//! and command line; no other page of RAM) are mapped, as one vm-memory `GuestMemoryMmap`: the
//! builder's ELF loader puts the ELF segments at their physical addresses and finds the PVH
//! entry (`XEN_ELFNOTE_PHYS32_ENTRY`), and vm-vcpu-ref writes `hvm_start_info`, the memory
//! map, the module list (the initrd) and the command line. The initrd goes at the top of RAM,
//! away from the kernel.

use vm_memory::GuestAddress;
use vm_vcpu_ref::memmap::MemoryMapEntry;
use vm_vcpu_ref::pvh::PvhBoot;
use xen_bindings::DomId;

use super::guest_ram::map_ranges;
use super::kernel::Kernel;
use super::memory::PAGE;
use super::ops::DomainOps;
use crate::error::{Error, Result};

/// Where a loaded kernel starts and what it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// The PVH entry point (32-bit physical).
    pub entry: u32,
    /// The start-info address (EBX at entry).
    pub start_info: u32,
    /// End of the kernel image in guest memory.
    pub kernel_end: u64,
    /// Where the initrd was put, and its size.
    pub initrd: Option<(u64, u64)>,
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
/// goes there).
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
    let mut steps = super::steps::Steps::start();
    let (kernel_start, kernel_end) = kernel.extent();
    // Where everything goes is known before anything is mapped: the initrd at the top of RAM,
    // above the kernel.
    let initrd_at = match initrd {
        Some(data) => {
            let size = data.len() as u64;
            let addr = ram.saturating_sub(size) & !(PAGE - 1);
            if addr < kernel_end || size > ram {
                return Err(Error::MemoryTooSmall {
                    what: "initrd (above the kernel)",
                    start: kernel_end,
                    end: kernel_end.saturating_add(size),
                    ram_end: ram,
                });
            }
            Some((addr, size))
        }
        None => None,
    };
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
    if let (Some(data), Some((addr, _))) = (initrd, initrd_at) {
        vm_memory::Bytes::write_slice(&guest.mem, data, GuestAddress(addr)).map_err(|e| {
            Error::Load {
                what: "initrd",
                reason: e.to_string(),
            }
        })?;
    }
    steps.lap("initrd");
    boot.write(&guest.mem).map_err(boot_error)?;
    steps.lap("start info");
    drop(guest);
    steps.lap("unmap");
    log::debug!("domain {domid} load steps: {steps}");
    Ok(Loaded {
        entry,
        start_info: boot.start_info.0 as u32,
        kernel_end: loaded.end,
        initrd: initrd_at,
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
