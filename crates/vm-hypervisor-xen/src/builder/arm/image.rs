// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! An arm64 Linux `Image`: the kernel file an Arm guest boots.
//!
//! The arm64 boot protocol puts a 64-byte header at the start of the image: `text_offset` at
//! byte 8 (where the image goes above a 2 MiB-aligned base of RAM), `image_size` at 16 (the
//! memory it takes from there, its bss included), flags at 24 (bit 0: big-endian) and the
//! magic "ARM\x64" at 56. Kernels older than 3.17 leave `image_size` zero; their
//! `text_offset` is then 0x80000 whatever the field says. Debian ships the arm64 kernel as an
//! uncompressed `Image` (with an EFI stub, which does not matter here: the image is entered at
//! its first byte). Compressed images (gzip, or EFI "zboot") are refused by name.

use std::path::Path;

use crate::error::{Error, Result};

/// Where the magic is.
const MAGIC_OFFSET: usize = 56;
/// The magic.
const MAGIC: &[u8] = b"ARM\x64";
/// The header's size.
const HEADER_SIZE: usize = 64;
/// `text_offset` of a kernel without `image_size` (before Linux 3.17).
const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// Flags bit 0: the kernel is big-endian.
const FLAG_BIG_ENDIAN: u64 = 1;
/// Largest `text_offset` or `image_size` believed (sanity bound against a corrupt header).
const MAX_IMAGE: u64 = 1 << 30;
const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
/// EFI zboot images: "MZ", then "zimg" at byte 4.
const ZBOOT_MAGIC: &[u8] = b"zimg";

/// An arm64 `Image`, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmImage {
    path: String,
    data: Vec<u8>,
    text_offset: u64,
    image_size: u64,
}

impl ArmImage {
    /// Reads and checks the image at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| Error::Read {
            path: name.clone(),
            source,
        })?;
        Self::from_bytes(data, &name)
    }

    /// The image in `data`; `path` names it in errors.
    pub fn from_bytes(data: Vec<u8>, path: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadKernel {
            path: path.to_string(),
            reason,
        };
        if data.starts_with(GZIP_MAGIC) {
            return Err(bad(
                "a gzip-compressed Image: not supported (decompress it first)".into(),
            ));
        }
        if data.get(4..8) == Some(ZBOOT_MAGIC) {
            return Err(bad(
                "an EFI zboot (compressed) image: not supported (use the plain Image)".into(),
            ));
        }
        if data.len() < HEADER_SIZE || &data[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
            return Err(bad("not an arm64 Image (no \"ARM\\x64\" magic)".into()));
        }
        let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let (mut text_offset, mut image_size) = (u64_at(8), u64_at(16));
        let flags = u64_at(24);
        if image_size == 0 {
            text_offset = LEGACY_TEXT_OFFSET;
            image_size = data.len() as u64;
        } else if flags & FLAG_BIG_ENDIAN != 0 {
            return Err(bad("a big-endian kernel: not supported".into()));
        }
        if text_offset > MAX_IMAGE || image_size > MAX_IMAGE {
            return Err(bad(format!(
                "header claims text_offset {text_offset:#x}, image_size {image_size:#x}"
            )));
        }
        Ok(Self {
            path: path.to_string(),
            data,
            text_offset,
            image_size,
        })
    }

    /// Where it came from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How far above a 2 MiB-aligned RAM base it is loaded (and entered).
    pub fn text_offset(&self) -> u64 {
        self.text_offset
    }

    /// The memory it takes from where it is loaded: `image_size`, or the file if that is
    /// longer.
    pub fn load_size(&self) -> u64 {
        self.image_size.max(self.data.len() as u64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Image of `len` bytes whose header says `text_offset` and `image_size`.
    pub(crate) fn image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len.max(HEADER_SIZE)];
        d[0..4].copy_from_slice(b"MZ@\xfa");
        d[8..16].copy_from_slice(&text_offset.to_le_bytes());
        d[16..24].copy_from_slice(&image_size.to_le_bytes());
        d[24..32].copy_from_slice(&0xau64.to_le_bytes());
        d[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(MAGIC);
        d
    }

    #[test]
    fn the_header_gives_offset_and_size() {
        let i = ArmImage::from_bytes(image(0, 0x201_0000, 0x1000), "k").unwrap();
        assert_eq!((i.text_offset(), i.load_size()), (0, 0x201_0000));
        // The file longer than image_size: the file counts.
        let i = ArmImage::from_bytes(image(0x8_0000, 0x800, 0x1000), "k").unwrap();
        assert_eq!((i.text_offset(), i.load_size()), (0x8_0000, 0x1000));
    }

    #[test]
    fn a_kernel_without_image_size_is_loaded_at_the_legacy_offset() {
        let i = ArmImage::from_bytes(image(0x1234, 0, 0x2000), "k").unwrap();
        assert_eq!((i.text_offset(), i.load_size()), (0x8_0000, 0x2000));
    }

    #[test]
    fn what_is_no_plain_little_endian_image_is_a_bad_kernel_named() {
        let cases: [(Vec<u8>, &str); 5] = [
            (b"\x1f\x8b\x08\x00rest".to_vec(), "gzip"),
            (b"MZ\x00\x00zimg\x00\x00".to_vec(), "zboot"),
            (b"\x7fELF short".to_vec(), "magic"),
            (
                {
                    let mut d = image(0, 0x1000, 64);
                    d[24] = 1;
                    d
                },
                "big-endian",
            ),
            (image(0, u64::MAX, 64), "image_size"),
        ];
        for (data, says) in cases {
            let err = ArmImage::from_bytes(data, "/boot/k").unwrap_err();
            assert!(
                matches!(err, Error::BadKernel { ref reason, .. } if reason.contains(says)),
                "{says}: {err}"
            );
            assert!(err.to_string().contains("/boot/k"), "{err}");
        }
    }
}
