// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! ELF images of purpose-built x86 guests: a few bytes of code booted as a PVH kernel or as
//! HVM firmware, for tests that need a guest doing exactly one thing.

/// Physical load address of a purpose-built guest image; its code starts 0x100 bytes in.
pub const GUEST_BASE: u32 = 0x10_0000;
/// Where a purpose-built guest is entered (32-bit flat protected mode, paging off).
pub const GUEST_ENTRY: u32 = GUEST_BASE + 0x100;

/// `XEN_ELFNOTE_PHYS32_ENTRY` (Xen public/elfnote.h): the 32-bit PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Where [`pvh_kernel_with`] puts its note.
const NOTE_OFF: u32 = 0x80;

/// A minimal ELF32 PVH kernel: one loadable segment holding the headers, a
/// `XEN_ELFNOTE_PHYS32_ENTRY` note and `code` (linked to run at `GUEST_ENTRY`).
pub fn pvh_kernel_with(code: &[u8]) -> Vec<u8> {
    let mut f = elf32_image(code, 2);
    // PT_NOTE over the note.
    let ph = 52 + 32;
    put32(&mut f, ph, 4);
    put32(&mut f, ph + 4, NOTE_OFF);
    put32(&mut f, ph + 8, GUEST_BASE + NOTE_OFF);
    put32(&mut f, ph + 12, GUEST_BASE + NOTE_OFF);
    put32(&mut f, ph + 16, 20);
    put32(&mut f, ph + 20, 20);
    put32(&mut f, ph + 24, 4);
    put32(&mut f, ph + 28, 4);
    // The note: name "Xen", 4-byte descriptor = the 32-bit entry point.
    let n = NOTE_OFF as usize;
    put32(&mut f, n, 4);
    put32(&mut f, n + 4, 4);
    put32(&mut f, n + 8, XEN_ELFNOTE_PHYS32_ENTRY);
    f[n + 12..n + 16].copy_from_slice(b"Xen\0");
    put32(&mut f, n + 16, GUEST_ENTRY);
    f
}

/// A minimal ELF32 image the toolstack loads as HVM firmware: one loadable segment holding
/// the headers and `code` (linked to run at `GUEST_ENTRY`), entered at `e_entry`. It has no
/// Xen notes: an image with them is taken for a PV/PVH kernel and refused as firmware.
pub fn hvm_firmware_with(code: &[u8]) -> Vec<u8> {
    elf32_image(code, 1)
}

/// ELF header and a PT_LOAD of the whole file at `GUEST_BASE` (program header 0) of an image
/// with `phnum` program headers, `code` at offset 0x100.
fn elf32_image(code: &[u8], phnum: u16) -> Vec<u8> {
    let mut f = vec![0u8; 0x100];
    f.extend_from_slice(code);
    let len = u32::try_from(f.len()).expect("a guest image fits in 4 GiB");
    // ELF header: 32-bit, little endian, version 1, executable, i386.
    f[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1]);
    put16(&mut f, 16, 2); // e_type ET_EXEC
    put16(&mut f, 18, 3); // e_machine EM_386
    put32(&mut f, 20, 1); // e_version
    put32(&mut f, 24, GUEST_ENTRY); // e_entry
    put32(&mut f, 28, 52); // e_phoff
    put16(&mut f, 40, 52); // e_ehsize
    put16(&mut f, 42, 32); // e_phentsize
    put16(&mut f, 44, phnum); // e_phnum
                              // PT_LOAD: the whole file at GUEST_BASE, RWX.
    let ph = 52;
    put32(&mut f, ph, 1);
    put32(&mut f, ph + 4, 0);
    put32(&mut f, ph + 8, GUEST_BASE);
    put32(&mut f, ph + 12, GUEST_BASE);
    put32(&mut f, ph + 16, len);
    put32(&mut f, ph + 20, len);
    put32(&mut f, ph + 24, 7);
    put32(&mut f, ph + 28, 0x1000);
    f
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(f: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(f[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn pvh_kernel_is_loaded_whole_and_names_its_entry_in_a_xen_note() {
        let code = [0xf4, 0xeb, 0xfd];
        let f = pvh_kernel_with(&code);
        assert_eq!(&f[..4], b"\x7fELF");
        assert_eq!(u32_at(&f, 24), GUEST_ENTRY, "e_entry");
        assert_eq!(&f[0x100..], &code, "code at the entry's offset");
        // PT_LOAD of the whole file at GUEST_BASE, then PT_NOTE over the note.
        assert_eq!((u32_at(&f, 52), u32_at(&f, 52 + 8)), (1, GUEST_BASE));
        assert_eq!(u32_at(&f, 52 + 16) as usize, f.len());
        assert_eq!((u32_at(&f, 84), u32_at(&f, 84 + 4)), (4, NOTE_OFF));
        let n = NOTE_OFF as usize;
        assert_eq!(u32_at(&f, n + 8), XEN_ELFNOTE_PHYS32_ENTRY);
        assert_eq!(&f[n + 12..n + 16], b"Xen\0");
        assert_eq!(u32_at(&f, n + 16), GUEST_ENTRY);
        // Firmware has no note (one program header).
        assert_eq!(u16::from_le_bytes([hvm_firmware_with(&code)[44], 0]), 1);
    }
}
