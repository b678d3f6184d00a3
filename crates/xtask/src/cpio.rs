// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A writer for the "newc" cpio format the Linux kernel unpacks as initramfs.
//! Every entry is owned by root with mtime 0, so archives are reproducible.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::util::{Context, Result};

/// Writes newc entries to an inner writer.
pub struct CpioWriter<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn pad4(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.raw(&[0u8; 3][..pad])
    }

    fn header(&mut self, name: &str, mode: u32, size: u32, rdev: (u32, u32)) -> io::Result<()> {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            size,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        let mut h = String::from("070701");
        for f in fields {
            h.push_str(&format!("{f:08x}"));
        }
        self.raw(h.as_bytes())?;
        self.raw(name.as_bytes())?;
        self.raw(&[0])?;
        self.pad4()
    }

    /// Adds a directory.
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.header(name, 0o040000 | perm, 0, (0, 0))
    }

    /// Adds a regular file with the given content.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.header(name, 0o100000 | perm, data.len() as u32, (0, 0))?;
        self.raw(data)?;
        self.pad4()
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.header(name, 0o120777, target.len() as u32, (0, 0))?;
        self.raw(target.as_bytes())?;
        self.pad4()
    }

    /// Adds a character device node.
    pub fn chardev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.header(name, 0o020000 | perm, 0, (major, minor))
    }

    /// Adds the tree under `root` (sorted, with `prefix` prepended to names).
    pub fn tree(&mut self, root: &Path, prefix: &str) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(root)
            .context(|| format!("cannot list {}", root.display()))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            let md = fs::symlink_metadata(&path)
                .context(|| format!("cannot stat {}", path.display()))?;
            let perm = md.permissions().mode() & 0o7777;
            let ft = md.file_type();
            let res = if ft.is_symlink() {
                let t = fs::read_link(&path)
                    .context(|| format!("cannot read link {}", path.display()))?;
                self.symlink(&name, &t.to_string_lossy())
            } else if ft.is_dir() {
                self.dir(&name, perm)
                    .context(|| format!("cannot archive {}", path.display()))?;
                self.tree(&path, &format!("{name}/"))?;
                Ok(())
            } else if ft.is_file() {
                let data = fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
                self.file(&name, perm, &data)
            } else {
                // Device nodes etc. are created at boot (devtmpfs); skip them.
                let _ = md.rdev();
                Ok(())
            };
            res.context(|| format!("cannot archive {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes the trailer, pads to 512 bytes (so a following archive starts
    /// on a block boundary) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 0, (0, 0))?;
        let pad = (512 - (self.written % 512) as usize) % 512;
        self.raw(&vec![0u8; pad])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_padded() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("a", 0o755).unwrap();
        w.file("a/b", 0o644, b"hello").unwrap();
        let v = w.finish().unwrap();
        assert_eq!(v.len() % 512, 0);
        assert!(v.starts_with(b"070701"));
        // header 110 + "a\0" padded to 112; the file header starts there.
        assert_eq!(&v[112..118], b"070701");
        let s = String::from_utf8_lossy(&v);
        assert!(s.contains("hello"));
        assert!(s.contains("TRAILER!!!"));
    }
}
