// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! From a kernel file to the ELF image a PVH guest boots.
//!
//! Distribution kernels ship as bzImages: a real-mode setup part followed by a compressed
//! `vmlinux` (the "payload"). The x86 boot protocol (2.08+) says where the payload is: its
//! offset (from the end of the setup sectors) at 0x248 and its length at 0x24c of the setup
//! header. The kernel build appends the uncompressed size as a little-endian u32 to the
//! compressed stream. Debian compresses with xz (bookworm, with the x86 BCJ filter) or zstd
//! (trixie); both are decoded here in Rust. A plain ELF `vmlinux` is used as it is.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

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

/// A kernel read and decoded once, ready to be loaded into any number of domains
/// ([`super::build_with_kernel`]).
///
/// Decoding a distribution kernel's payload is nearly all of a build's time (xz is decoded one
/// byte after the other and cannot be split), so a caller that starts several guests from one
/// kernel decodes it once here instead of once per domain.
#[derive(Debug)]
pub struct Kernel {
    path: String,
    vmlinux: Vec<u8>,
    extent: (u64, u64),
}

impl Kernel {
    /// Reads the kernel at `path` (a bzImage with an xz or zstd payload, or an ELF `vmlinux`),
    /// decodes it and checks that it is a 64-bit ELF image with loadable segments.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let started = Instant::now();
        let image = std::fs::read(path).map_err(|source| Error::Read {
            path: name.clone(),
            source,
        })?;
        let read = started.elapsed();
        let kernel = Self::from_image(image, &name)?;
        log::debug!(
            "kernel {name}: read {} ms, decoded {} ms ({} bytes)",
            read.as_millis(),
            (started.elapsed() - read).as_millis(),
            kernel.vmlinux.len()
        );
        Ok(kernel)
    }

    /// The kernel in `image` (as [`Self::open`] reads it); `path` names it in errors. An ELF
    /// image is kept as it is, not copied.
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
            vmlinux,
            extent,
        })
    }

    /// Where it came from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The decoded ELF image.
    pub fn vmlinux(&self) -> &[u8] {
        &self.vmlinux
    }

    /// The guest-physical range `[start, end)` its loadable segments occupy.
    pub fn extent(&self) -> (u64, u64) {
        self.extent
    }
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
