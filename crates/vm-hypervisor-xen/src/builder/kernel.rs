// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! From a kernel file to the ELF image a PVH guest boots.
//!
//! Distribution kernels ship as bzImages: a real-mode setup part followed by a compressed
//! `vmlinux` (the "payload"). The x86 boot protocol (2.08+) says where the payload is: its
//! offset (from the end of the setup sectors) at 0x248 and its length at 0x24c of the setup
//! header. The kernel build appends the uncompressed size as a little-endian u32 to the
//! compressed stream. Debian compresses with xz (bookworm, with the x86 BCJ filter) or zstd
//! (trixie); both are decoded here in Rust. A plain ELF `vmlinux` is used as it is. A bzImage
//! the guest is to decompress itself ([`BzImageBoot::SelfDecompressing`]) is only checked
//! ([`BzImage`]).

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use vm_memory::GuestMemoryMmap;

use super::bzimage::BzImage;
use super::elf::{self, LoadedElf};
use super::BzImageBoot;
use crate::error::{Error, Result};

const ELF_MAGIC: &[u8] = b"\x7fELF";
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";
const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
/// `HdrS` at 0x202 marks a bzImage setup header.
const HDRS_OFFSET: usize = 0x202;
const HDRS: &[u8] = b"HdrS";
const SETUP_SECTS: usize = 0x1f1;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// Largest kernel accepted after decompression (sanity bound against a corrupt size).
const MAX_VMLINUX: usize = 512 << 20;
/// Largest bzImage file read into memory (distribution kernels are 8-15 MB; anything near this
/// bound cannot be a kernel a guest boots, and is refused before it is read).
const MAX_BZIMAGE: u64 = 256 << 20;

/// A kernel read (and, unless it is a bzImage left for the guest to decompress, decoded) once,
/// ready to be loaded into any number of domains ([`super::build_with_kernel`]).
///
/// Decoding a distribution kernel's payload is nearly all of a build's time (xz is decoded one
/// byte after the other and cannot be split), so a caller that starts several guests from one
/// kernel decodes it once here instead of once per domain. An ELF `vmlinux` file is not read
/// into memory at all: its segments are read from the file straight into guest memory at each
/// build.
#[derive(Debug)]
pub struct Kernel {
    path: String,
    image: Image,
    extent: (u64, u64),
}

#[derive(Debug)]
enum Image {
    /// A decoded payload (or an ELF image handed over in memory).
    Decoded(Vec<u8>),
    /// An ELF file; one build at a time reads it (the file position is shared).
    File(Mutex<File>),
    /// A bzImage kept as it is, for the guest to decompress.
    BzImage(BzImage),
}

/// The most ELF header and program headers [`Kernel::open`] reads to find the extent.
const MAX_ELF_HEADERS: u64 = 64 << 10;

impl Kernel {
    /// Opens the kernel at `path`: an ELF `vmlinux` (only its headers are read now), or a
    /// bzImage with an xz or zstd payload (read and decoded now). Either way it is checked to
    /// be a 64-bit ELF image with loadable segments.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, BzImageBoot::Decoded)
    }

    /// Opens the kernel at `path` for starting as `bzimage` says: [`Kernel::open`], or for
    /// [`BzImageBoot::SelfDecompressing`] a bzImage read and checked but not decoded (an ELF
    /// `vmlinux` is opened as [`Kernel::open`] opens it either way).
    pub fn open_with(path: &Path, bzimage: BzImageBoot) -> Result<Self> {
        let name = path.display().to_string();
        let io = |source| Error::Read {
            path: name.clone(),
            source,
        };
        let started = Instant::now();
        let file = File::open(path).map_err(io)?;
        let mut magic = [0u8; 4];
        let len = file.metadata().map_err(io)?.len();
        if len >= 4 {
            file.read_exact_at(&mut magic, 0).map_err(io)?;
        }
        if magic == ELF_MAGIC {
            let headers = elf_headers(&file, len).map_err(io)?;
            let extent =
                super::loader::elf_extent(&headers).map_err(|reason| Error::BadKernel {
                    path: name.clone(),
                    reason,
                })?;
            return Ok(Self {
                path: name,
                image: Image::File(Mutex::new(file)),
                extent,
            });
        }
        if len > MAX_BZIMAGE {
            return Err(Error::BadKernel {
                path: name,
                reason: format!("{len} bytes: no ELF image, and too large for a bzImage"),
            });
        }
        let mut image = Vec::with_capacity(len as usize);
        (&file)
            .take(MAX_BZIMAGE)
            .read_to_end(&mut image)
            .map_err(io)?;
        if bzimage == BzImageBoot::SelfDecompressing {
            let bz = BzImage::parse(image, &name)?;
            return Ok(Self {
                path: name,
                extent: bz.extent(),
                image: Image::BzImage(bz),
            });
        }
        let read = started.elapsed();
        let kernel = Self::from_image(image, &name)?;
        log::debug!(
            "kernel {name}: read {} ms, decoded {} ms",
            read.as_millis(),
            (started.elapsed() - read).as_millis(),
        );
        Ok(kernel)
    }

    /// The kernel in `image` (a bzImage or an ELF image, as in a file); `path` names it in
    /// errors. An ELF image is kept as it is, not copied.
    pub fn from_image(image: Vec<u8>, path: &str) -> Result<Self> {
        let vmlinux = if image.starts_with(ELF_MAGIC) {
            image
        } else {
            vmlinux(&image, path)?
        };
        let extent = super::loader::elf_extent(&vmlinux).map_err(|reason| Error::BadKernel {
            path: path.to_string(),
            reason,
        })?;
        Ok(Self {
            path: path.to_string(),
            image: Image::Decoded(vmlinux),
            extent,
        })
    }

    /// Where it came from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The guest-physical range `[start, end)` its loadable segments occupy (of a bzImage
    /// left for the guest to decompress: from where it is loaded to the end of its
    /// decompression buffer).
    pub fn extent(&self) -> (u64, u64) {
        self.extent
    }

    /// The bzImage, if this kernel is one left for the guest to decompress.
    pub(crate) fn bzimage(&self) -> Option<&BzImage> {
        match &self.image {
            Image::BzImage(bz) => Some(bz),
            _ => None,
        }
    }

    /// Loads its segments into `mem` at their physical addresses ([`elf::load`]), from memory
    /// or straight from the file.
    pub(crate) fn load_into(&self, mem: &GuestMemoryMmap) -> Result<LoadedElf> {
        let load = |reason: String| Error::Load {
            what: "kernel",
            reason,
        };
        match &self.image {
            Image::Decoded(bytes) => {
                elf::load(mem, &mut Cursor::new(bytes.as_slice())).map_err(load)
            }
            Image::File(file) => {
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                file.seek(SeekFrom::Start(0))
                    .map_err(|source| Error::Read {
                        path: self.path.clone(),
                        source,
                    })?;
                elf::load(mem, &mut *file).map_err(load)
            }
            Image::BzImage(_) => Err(load("a bzImage has no ELF segments".into())),
        }
    }
}

/// The ELF header and program headers of the ELF file `file` (`len` bytes): enough for
/// [`super::loader::elf_extent`].
fn elf_headers(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut header = vec![0u8; 64.min(len as usize)];
    file.read_exact_at(&mut header, 0)?;
    let field = |at: usize, n: usize| {
        header
            .get(at..at + n)
            .map(|b| b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    // A header too short or headers past the file or the bound: read what there is, and let
    // the extent's parser say what is missing.
    let end = match (field(0x20, 8), field(0x36, 2), field(0x38, 2)) {
        (Some(phoff), Some(size), Some(num)) => phoff
            .saturating_add(size.saturating_mul(num))
            .min(len)
            .min(MAX_ELF_HEADERS),
        _ => header.len() as u64,
    };
    let mut headers = vec![0u8; end.max(header.len() as u64) as usize];
    file.read_exact_at(&mut headers, 0)?;
    Ok(headers)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The ELF image inside `image` (a bzImage or an ELF `vmlinux`); `path` names it in errors.
pub fn vmlinux(image: &[u8], path: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::BadKernel {
        path: path.to_string(),
        reason,
    };
    if image.starts_with(ELF_MAGIC) {
        return Ok(image.to_vec());
    }
    if image.get(HDRS_OFFSET..HDRS_OFFSET + 4) != Some(HDRS) {
        return Err(bad("neither an ELF vmlinux nor a bzImage".into()));
    }
    let setup_sects = match image[SETUP_SECTS] {
        0 => 4,
        n => usize::from(n),
    };
    let (off, len) = match (u32_at(image, PAYLOAD_OFFSET), u32_at(image, PAYLOAD_LENGTH)) {
        (Some(o), Some(l)) => (o as usize, l as usize),
        _ => return Err(bad("setup header truncated".into())),
    };
    let start = (setup_sects + 1) * 512 + off;
    let payload = start
        .checked_add(len)
        .and_then(|end| image.get(start..end))
        .ok_or_else(|| bad(format!("payload [{start:#x}, +{len:#x}) beyond the file")))?;
    if payload.len() < 8 {
        return Err(bad("payload too short".into()));
    }
    // The uncompressed size the build appended.
    let (stream, size) = payload.split_at(payload.len() - 4);
    let size = u32::from_le_bytes(size.try_into().expect("4 bytes")) as usize;
    if size > MAX_VMLINUX {
        return Err(bad(format!("payload claims {size} bytes uncompressed")));
    }
    let mut out = Vec::with_capacity(size);
    let decoded = if stream.starts_with(XZ_MAGIC) {
        lzma_rust2::XzReader::new(stream, true)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("xz payload: {e}")))
    } else if stream.starts_with(ZSTD_MAGIC) {
        ruzstd::decoding::StreamingDecoder::new(stream)
            .map_err(|e| bad(format!("zstd payload: {e}")))?
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("zstd payload: {e}")))
    } else if stream.starts_with(GZIP_MAGIC) {
        return Err(bad(
            "gzip-compressed payload: not supported (xz and zstd are)".into(),
        ));
    } else {
        return Err(bad(format!(
            "payload compression not recognised (magic {:02x?})",
            &stream[..4]
        )));
    };
    decoded?;
    if !out.starts_with(ELF_MAGIC) {
        return Err(bad("decompressed payload is not an ELF image".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage(payload: &[u8]) -> Vec<u8> {
        // One setup sector plus the boot sector; payload right after.
        let mut img = vec![0u8; 1024];
        img[SETUP_SECTS] = 1;
        img[HDRS_OFFSET..HDRS_OFFSET + 4].copy_from_slice(HDRS);
        img[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&0u32.to_le_bytes());
        img[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(payload);
        img
    }

    #[test]
    fn an_elf_image_is_taken_as_it_is() {
        let elf = b"\x7fELF\x02\x01\x01rest".to_vec();
        assert_eq!(vmlinux(&elf, "k").unwrap(), elf);
    }

    #[test]
    fn a_file_that_is_no_kernel_is_a_bad_kernel() {
        let err = vmlinux(b"not a kernel at all", "/tmp/k").unwrap_err();
        assert!(matches!(err, Error::BadKernel { .. }), "{err}");
        assert!(err.to_string().contains("/tmp/k"), "{err}");
    }

    #[test]
    fn a_payload_beyond_the_file_is_a_bad_kernel() {
        let mut img = bzimage(b"\xfd7zXZ\x00....");
        img.truncate(1030);
        let err = vmlinux(&img, "k").unwrap_err();
        assert!(err.to_string().contains("beyond the file"), "{err}");
    }

    #[test]
    fn an_unknown_compression_is_named() {
        let err = vmlinux(&bzimage(b"BZh91AY&SY\x00\x00\x00\x00"), "k").unwrap_err();
        assert!(err.to_string().contains("not recognised"), "{err}");
        let err = vmlinux(&bzimage(b"\x1f\x8b\x08\x00\x00\x00\x00\x00"), "k").unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn an_xz_payload_is_decompressed() {
        // An xz stream of "\x7fELF" + 60 zero bytes, made with the encoder of the same crate.
        let mut plain = b"\x7fELF".to_vec();
        plain.extend_from_slice(&[0u8; 60]);
        let mut xz = Vec::new();
        {
            use std::io::Write;
            let mut w = lzma_rust2::XzWriter::new(&mut xz, lzma_rust2::XzOptions::default())
                .expect("xz writer");
            w.write_all(&plain).unwrap();
            w.finish().unwrap();
        }
        let mut payload = xz;
        payload.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        assert_eq!(vmlinux(&bzimage(&payload), "k").unwrap(), plain);
    }

    #[test]
    fn a_corrupt_xz_payload_is_a_bad_kernel() {
        let mut payload = b"\xfd7zXZ\x00garbage garbage".to_vec();
        payload.extend_from_slice(&64u32.to_le_bytes());
        let err = vmlinux(&bzimage(&payload), "k").unwrap_err();
        assert!(err.to_string().contains("xz payload"), "{err}");
    }
}
