// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A writer of the "newc" cpio format, which the Linux kernel unpacks as an initramfs: what
//! the box's dom0 image, its payloads and the domU ramdisks the tests build are made of.
//!
//! Every entry is owned by root with mtime 0, so the same input gives the same bytes. Archives
//! may be appended to one another (the kernel unpacks concatenated archives into one root):
//! [`CpioWriter::finish`] pads to 512 bytes so a following archive starts on a block boundary.
//! Regular files are written with one link, so the kernel never takes two entries of
//! different archives with the same inode number for hard links of each other.
//!
//! ```
//! use xen_box_testing::cpio::CpioWriter;
//!
//! let mut w = CpioWriter::new(Vec::new());
//! w.dir("etc", 0o755)?;
//! w.file("etc/hostname", 0o644, b"box\n")?;
//! let archive = w.finish()?;
//! assert!(archive.starts_with(b"070701"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};

/// `S_IFMT` and the file types of `mode` (Linux's `stat.h`).
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes newc entries to an inner writer.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

/// A size or name length that does not fit the format's 32-bit fields.
fn too_large(what: &str, name: &str, len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("cpio entry {name:?}: {what} of {len} bytes does not fit newc's 32-bit field"),
    )
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

    /// Zeros up to the next multiple of `align` (at most 512) bytes of the archive.
    fn pad(&mut self, align: u64) -> io::Result<()> {
        let pad = (align - self.written % align) % align;
        self.raw(&[0; 512][..pad as usize])
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| too_large("data", name, data.len()))?;
        let namesize =
            u32::try_from(name.len() + 1).map_err(|_| too_large("name", name, name.len()))?;
        // A directory's "." and its entry in the parent.
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        let fields = [
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.ino += 1;
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.raw(header.as_bytes())?;
        self.raw(name.as_bytes())?;
        self.raw(&[0])?;
        self.pad(4)?;
        self.raw(data)?;
        self.pad(4)
    }

    /// Adds a directory with permissions `perm`.
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | perm, &[], (0, 0))
    }

    /// Adds a regular file with permissions `perm` and content `data`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | perm, data, (0, 0))
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes(), (0, 0))
    }

    /// Adds a character device node.
    pub fn chardev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, S_IFCHR | perm, &[], (major, minor))
    }

    /// Writes the trailer, pads the archive to a multiple of 512 bytes, flushes and returns
    /// the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, &[], (0, 0))?;
        self.pad(512)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 13 header fields of the entry at `at`, and where its name starts.
    fn fields(v: &[u8], at: usize) -> [u32; 13] {
        assert_eq!(&v[at..at + 6], b"070701", "magic at {at}");
        std::array::from_fn(|i| {
            let f = &v[at + 6 + 8 * i..at + 14 + 8 * i];
            u32::from_str_radix(std::str::from_utf8(f).unwrap(), 16).unwrap()
        })
    }

    #[test]
    fn entries_are_aligned_and_the_archive_padded_to_a_block() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("a", 0o755).unwrap();
        w.file("a/b", 0o644, b"hello").unwrap();
        w.symlink("a/c", "b").unwrap();
        w.chardev("a/console", 0o600, 5, 1).unwrap();
        let v = w.finish().unwrap();
        assert_eq!(v.len() % 512, 0);
        // Header 110 bytes + "a\0" padded to 112: the file's header starts there.
        let dir = fields(&v, 0);
        assert_eq!(
            (dir[1], dir[4], dir[6]),
            (0o040755, 2, 0),
            "mode, nlink, size"
        );
        let file = fields(&v, 112);
        assert_eq!((file[1], file[4], file[6]), (0o100644, 1, 5));
        assert_eq!(file[11], 4, "namesize counts the NUL");
        // 112 + 110 + "a/b\0" = 226, padded to 228; "hello" then to 236.
        assert_eq!(&v[228..233], b"hello");
        let link = fields(&v, 236);
        assert_eq!((link[1], link[6]), (0o120777, 1));
        // 236 + 110 + "a/c\0" = 350 -> 352, "b" -> 356.
        let dev = fields(&v, 356);
        assert_eq!((dev[1], dev[9], dev[10]), (0o020600, 5, 1));
        // 356 + 110 + "a/console\0" = 476 -> 476.
        let trailer = fields(&v, 476);
        assert_eq!(&v[476 + 110..476 + 120], b"TRAILER!!!");
        assert_eq!(trailer[1], 0);
        assert!(v[476 + 124..].iter().all(|&b| b == 0), "zero padding");
    }

    #[test]
    fn entries_are_owned_by_root_at_mtime_zero_with_distinct_inodes() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("x", 0o755, b"1").unwrap();
        w.file("y", 0o755, b"2").unwrap();
        let v = w.finish().unwrap();
        let (x, y) = (fields(&v, 0), fields(&v, 116));
        assert_eq!((x[2], x[3], x[5]), (0, 0, 0), "uid, gid, mtime");
        assert_ne!(x[0], y[0]);
        assert_eq!(
            v,
            {
                let mut w = CpioWriter::new(Vec::new());
                w.file("x", 0o755, b"1").unwrap();
                w.file("y", 0o755, b"2").unwrap();
                w.finish().unwrap()
            },
            "reproducible"
        );
    }
}
