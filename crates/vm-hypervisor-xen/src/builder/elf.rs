// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Loading a 64-bit little-endian ELF kernel: its `PT_LOAD` segments go to their physical
//! addresses, and its PVH entry point is read from the `XEN_ELFNOTE_PHYS32_ENTRY` note of a
//! `PT_NOTE` segment (the note Linux emits with `CONFIG_PVH`).
//!
//! It does what linux-loader's `Elf` loader did here before: linux-loader 0.14, the release for
//! vm-memory 0.18, needs Rust 1.87, and its 0.13 is built for vm-memory 0.17, whose
//! `GuestMemory` is not the one of this crate's mappings.

use std::io::{Read, Seek, SeekFrom};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, ReadVolatile};

const ELF_MAGIC: &[u8] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
/// `sizeof(Elf64_Ehdr)`.
const EHDR_SIZE: usize = 64;
/// `sizeof(Elf64_Phdr)`.
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// The note whose descriptor is the 32-bit physical PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The name of Xen's notes, with its NUL.
const XEN_NOTE_NAME: &[u8] = b"Xen\0";
/// Largest `PT_NOTE` segment read (a kernel's notes take a few hundred bytes).
const MAX_NOTE_SEGMENT: u64 = 1 << 20;

/// What loading put where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadedElf {
    /// The PVH entry point, if the image has the note.
    pub pvh_entry: Option<u32>,
    /// The end of the highest `PT_LOAD` segment in memory (file part and bss).
    pub end: u64,
}

/// One program header: the fields the loader uses.
#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Loads the ELF image `image` into `mem`: the file part of each `PT_LOAD` segment at its
/// physical address (the rest of a segment, its bss, is left as it is: a kernel clears its own
/// bss). Fails on an image that is no 64-bit little-endian ELF, on a truncated one, and when
/// a segment is not in `mem`.
pub(crate) fn load<F>(mem: &GuestMemoryMmap, image: &mut F) -> Result<LoadedElf, String>
where
    F: Read + Seek + ReadVolatile,
{
    let mut ehdr = [0u8; EHDR_SIZE];
    image
        .seek(SeekFrom::Start(0))
        .and_then(|_| image.read_exact(&mut ehdr))
        .map_err(|e| format!("cannot read the ELF header: {e}"))?;
    if !ehdr.starts_with(ELF_MAGIC) {
        return Err("not an ELF image".into());
    }
    if ehdr[4] != ELFCLASS64 || ehdr[5] != ELFDATA2LSB {
        return Err("not a 64-bit little-endian ELF image".into());
    }
    let phoff = u64_at(&ehdr, 0x20);
    let phentsize = usize::from(u16_at(&ehdr, 0x36));
    let phnum = usize::from(u16_at(&ehdr, 0x38));
    if phentsize != PHDR_SIZE {
        return Err(format!("program header size {phentsize}, not {PHDR_SIZE}"));
    }
    if phoff < EHDR_SIZE as u64 {
        return Err(format!(
            "program headers at {phoff:#x}, inside the ELF header"
        ));
    }
    let mut phdrs = vec![0u8; phnum * PHDR_SIZE];
    image
        .seek(SeekFrom::Start(phoff))
        .and_then(|_| image.read_exact(&mut phdrs))
        .map_err(|e| format!("cannot read {phnum} program headers at {phoff:#x}: {e}"))?;
    let segments: Vec<Segment> = phdrs
        .chunks_exact(PHDR_SIZE)
        .map(|p| Segment {
            kind: u32_at(p, 0),
            offset: u64_at(p, 0x08),
            paddr: u64_at(p, 0x18),
            filesz: u64_at(p, 0x20),
            memsz: u64_at(p, 0x28),
        })
        .collect();

    let mut loaded = LoadedElf {
        pvh_entry: None,
        end: 0,
    };
    for s in segments {
        match s.kind {
            PT_NOTE if loaded.pvh_entry.is_none() => {
                loaded.pvh_entry = pvh_entry(image, &s)?;
            }
            PT_LOAD => {
                let end = s.paddr.checked_add(s.memsz).ok_or_else(|| {
                    format!("segment at {:#x} (+{:#x}) wraps around", s.paddr, s.memsz)
                })?;
                if s.filesz > s.memsz {
                    return Err(format!(
                        "segment at {:#x}: {:#x} bytes in the file, more than its {:#x} in memory",
                        s.paddr, s.filesz, s.memsz
                    ));
                }
                loaded.end = loaded.end.max(end);
                if s.filesz == 0 {
                    continue;
                }
                let len = usize::try_from(s.filesz)
                    .map_err(|_| format!("segment at {:#x} too large", s.paddr))?;
                image
                    .seek(SeekFrom::Start(s.offset))
                    .map_err(|e| format!("cannot seek to {:#x}: {e}", s.offset))?;
                mem.read_exact_volatile_from(GuestAddress(s.paddr), image, len)
                    .map_err(|e| {
                        format!(
                            "segment at {:#x} (+{:#x}, from file offset {:#x}): {e}",
                            s.paddr, s.filesz, s.offset
                        )
                    })?;
            }
            _ => {}
        }
    }
    Ok(loaded)
}

/// The PVH entry point in the notes of `PT_NOTE` segment `s`, if it has one.
fn pvh_entry<F: Read + Seek>(image: &mut F, s: &Segment) -> Result<Option<u32>, String> {
    if s.filesz > MAX_NOTE_SEGMENT {
        return Err(format!("note segment of {:#x} bytes", s.filesz));
    }
    let mut notes = vec![0u8; s.filesz as usize];
    image
        .seek(SeekFrom::Start(s.offset))
        .and_then(|_| image.read_exact(&mut notes))
        .map_err(|e| format!("cannot read the notes at {:#x}: {e}", s.offset))?;
    // Each note: namesz, descsz, type (u32 each), then the name and the descriptor, each
    // padded to 4 bytes.
    let pad4 = |n: u32| (n as usize).div_ceil(4) * 4;
    let mut at = 0;
    while notes.len() - at >= 12 {
        let namesz = u32_at(&notes, at);
        let descsz = u32_at(&notes, at + 4);
        let kind = u32_at(&notes, at + 8);
        let name_at = at + 12;
        let desc_at = name_at + pad4(namesz);
        let next = desc_at + pad4(descsz);
        if next > notes.len() {
            return Err(format!(
                "note at {:#x} runs past its segment",
                s.offset + at as u64
            ));
        }
        if kind == XEN_ELFNOTE_PHYS32_ENTRY
            && &notes[name_at..name_at + namesz as usize] == XEN_NOTE_NAME
        {
            if descsz < 4 {
                return Err(format!("PVH entry note of {descsz} bytes"));
            }
            return Ok(Some(u32_at(&notes, desc_at)));
        }
        at = next;
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use super::*;

    /// An ELF image: one PT_LOAD of `data` at `paddr` (`memsz` in memory), then a PT_NOTE with
    /// `notes`.
    pub(crate) fn image(paddr: u64, data: &[u8], memsz: u64, notes: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; 0x40 + 2 * PHDR_SIZE];
        e[..4].copy_from_slice(ELF_MAGIC);
        e[4] = ELFCLASS64;
        e[5] = ELFDATA2LSB;
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        let data_at = e.len() as u64;
        let notes_at = data_at + data.len() as u64;
        let mut ph = |at: usize, kind: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
            e[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            e[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            e[at + 0x18..at + 0x20].copy_from_slice(&paddr.to_le_bytes());
            e[at + 0x20..at + 0x28].copy_from_slice(&filesz.to_le_bytes());
            e[at + 0x28..at + 0x30].copy_from_slice(&memsz.to_le_bytes());
        };
        ph(0x40, PT_LOAD, data_at, paddr, data.len() as u64, memsz);
        let n = notes.len() as u64;
        ph(0x40 + PHDR_SIZE, PT_NOTE, notes_at, 0, n, n);
        e.extend_from_slice(data);
        e.extend_from_slice(notes);
        e
    }

    /// One ELF note: `name` (with its NUL), type `kind`, descriptor `desc`, each padded.
    pub(crate) fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = [
            (name.len() as u32).to_le_bytes(),
            (desc.len() as u32).to_le_bytes(),
            kind.to_le_bytes(),
        ]
        .concat();
        n.extend_from_slice(name);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n.extend_from_slice(desc);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n
    }

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    #[test]
    fn segments_go_to_their_physical_address_and_the_pvh_note_is_found() {
        let notes = [
            note(b"GNU\0", 3, &[1, 2, 3, 4, 5]),
            note(b"Xen\0", 6, b"linux"),
            note(
                b"Xen\0",
                XEN_ELFNOTE_PHYS32_ENTRY,
                &0x1_2345u32.to_le_bytes(),
            ),
        ]
        .concat();
        let e = image(0x1_0000, b"kernel text", 0x3000, &notes);
        let mem = memory();
        let loaded = load(&mem, &mut Cursor::new(e.as_slice())).unwrap();
        assert_eq!(
            loaded,
            LoadedElf {
                pvh_entry: Some(0x1_2345),
                end: 0x1_3000
            }
        );
        let mut text = [0u8; 11];
        mem.read_slice(&mut text, GuestAddress(0x1_0000)).unwrap();
        assert_eq!(&text, b"kernel text");
    }

    #[test]
    fn an_image_without_the_note_has_no_pvh_entry() {
        let notes = note(b"Xen\0", 17, &[0; 4]);
        let e = image(0x1000, b"x", 1, &notes);
        let loaded = load(&memory(), &mut Cursor::new(e.as_slice())).unwrap();
        assert_eq!(loaded.pvh_entry, None);
    }

    #[test]
    fn bad_images_are_errors_not_panics() {
        let mem = memory();
        let good = image(0x1000, b"x", 1, &note(b"Xen\0", 18, &[0; 4]));
        // (what the error says, the image)
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        cases.push(("ELF header", Vec::new()));
        cases.push(("ELF header", good[..0x30].to_vec()));
        let mut big_endian = good.clone();
        big_endian[5] = 2;
        cases.push(("little-endian", big_endian));
        let mut phentsize = good.clone();
        phentsize[0x36] = 32;
        cases.push(("program header size", phentsize));
        cases.push(("program headers at", good[..0x50].to_vec()));
        let mut outside = good.clone();
        outside[0x40 + 0x18..0x40 + 0x20].copy_from_slice(&(2u64 << 20).to_le_bytes());
        cases.push(("invalid guest address", outside));
        let mut filesz = good.clone();
        filesz[0x40 + 0x28..0x40 + 0x30].copy_from_slice(&0u64.to_le_bytes());
        cases.push(("more than its", filesz));
        let short_desc = image(0x1000, b"x", 1, &note(b"Xen\0", 18, &[0; 2]));
        cases.push(("PVH entry note of 2 bytes", short_desc));
        let mut past = image(0x1000, b"x", 1, &note(b"Xen\0", 18, &[0; 4]));
        let len = past.len();
        past[len - 16..len - 12].copy_from_slice(&64u32.to_le_bytes()); // descsz
        cases.push(("runs past its segment", past));
        for (reason, e) in cases {
            let err = load(&mem, &mut Cursor::new(e.as_slice())).unwrap_err();
            assert!(err.contains(reason), "{reason}: {err}");
        }
    }
}
