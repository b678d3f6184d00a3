// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Archiving a host directory tree into a dom0 initramfs with the box tests' newc writer
//! ([`xen_box_testing::cpio`]), which the tests use for the domU ramdisks they build.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub use xen_box_testing::cpio::CpioWriter;

use crate::util::{Context, Result};

/// Adds the tree under `root` to `w`, sorted by name (so the archive is reproducible), with
/// `prefix` prepended to the names. Device nodes, sockets and FIFOs are left out: dom0 makes
/// its device nodes at boot (devtmpfs).
pub fn append_tree<W: Write>(w: &mut CpioWriter<W>, root: &Path, prefix: &str) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root)
        .context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        let md =
            fs::symlink_metadata(&path).context(|| format!("cannot stat {}", path.display()))?;
        let perm = md.permissions().mode() & 0o7777;
        let ft = md.file_type();
        let archived = if ft.is_symlink() {
            let t =
                fs::read_link(&path).context(|| format!("cannot read link {}", path.display()))?;
            w.symlink(&name, &t.to_string_lossy())
        } else if ft.is_dir() {
            w.dir(&name, perm)
        } else if ft.is_file() {
            let data = fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
            w.file(&name, perm, &data)
        } else {
            Ok(())
        };
        archived.context(|| format!("cannot archive {}", path.display()))?;
        if ft.is_dir() {
            append_tree(w, &path, &format!("{name}/"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_archived_sorted_with_its_prefix() {
        let root = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"hello").unwrap();
        fs::write(root.join("a"), b"").unwrap();
        std::os::unix::fs::symlink("d/f", root.join("l")).unwrap();
        let mut w = CpioWriter::new(Vec::new());
        append_tree(&mut w, &root, "p/").unwrap();
        let v = w.finish().unwrap();
        fs::remove_dir_all(&root).unwrap();
        let s = String::from_utf8_lossy(&v);
        let at = |n: &str| {
            s.find(&format!("{n}\0"))
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert!(at("p/a") < at("p/d") && at("p/d") < at("p/d/f") && at("p/d/f") < at("p/l"));
        assert!(s.contains("hello"));
        assert_eq!(v.len() % 512, 0);
    }
}
