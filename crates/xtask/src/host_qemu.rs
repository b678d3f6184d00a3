// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The QEMU that boots the boxes: Debian's `qemu-system-*` package of the
//! host's release, unpacked in the cache with its whole dependency closure and
//! started through that closure's own dynamic loader.
//!
//! Nothing is installed on the host. A host may carry a QEMU of its own that
//! Debian's packages cannot sit beside: a Debian 12 machine with a backported
//! `qemu-utils` (10.x) refuses bookworm's `qemu-system-x86` (its `Breaks:
//! qemu-system-common (<< 8.0)`), and apt would resolve that by removing the
//! machine's `qemu-utils`. Unpacked, the emulator is the same on every host of
//! a release, whatever else the host has.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::Apt;
use crate::stack::cache_root;
use crate::util::{lock_dir, mkdirs, rmrf, run, say, write, Context, Result};
use crate::{bail, err};

/// Where Debian's QEMU looks for firmware (its configured firmware path).
const FIRMWARE_DIRS: &[&str] = &["usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu"];

/// Bumped whenever the unpacking recipe changes.
const RECIPE: &str = "host qemu 1";

/// A system emulator the boxes boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulator {
    /// `qemu-system-x86_64` (package `qemu-system-x86`).
    X86_64,
    /// `qemu-system-aarch64` (package `qemu-system-arm`).
    Aarch64,
}

impl Emulator {
    fn package(self) -> &'static str {
        match self {
            Emulator::X86_64 => "qemu-system-x86",
            Emulator::Aarch64 => "qemu-system-arm",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Emulator::X86_64 => "qemu-system-x86_64",
            Emulator::Aarch64 => "qemu-system-aarch64",
        }
    }
}

/// The host's Debian release codename (`VERSION_CODENAME` of /etc/os-release).
fn host_codename() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release")
        .context(|| "cannot read /etc/os-release".into())?;
    codename_of(&text).ok_or_else(|| {
        err!("/etc/os-release names no VERSION_CODENAME: the box needs a Debian host")
    })
}

fn codename_of(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .filter_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .find(|v| !v.is_empty())
}

/// The unpacked tree of `emu`'s package and its closure, made once per
/// release and recipe (a warm run reads only the marker).
fn unpacked(emu: Emulator) -> Result<PathBuf> {
    let codename = host_codename()?;
    let base = cache_root().join("host-qemu").join(&codename);
    mkdirs(&base)?;
    let _lock = lock_dir(&base)?;
    let root = base.join(emu.package());
    let marker = root.join(".complete");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(RECIPE) {
        return Ok(root);
    }
    say(format!(
        "unpacking Debian {codename}'s {} into {} (not installed on the host)",
        emu.package(),
        root.display()
    ));
    let apt = Apt::new(&base.join("apt"), &codename)?;
    let debs = apt.fetch_closure(&[emu.package().to_string()], &[], &base.join("debs"))?;
    let tmp = base.join(format!("{}.tmp", emu.package()));
    rmrf(&tmp)?;
    mkdirs(&tmp)?;
    for deb in &debs {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp))?;
    }
    if !tmp.join("usr/bin").join(emu.binary()).is_file() {
        bail!("{} did not provide usr/bin/{}", emu.package(), emu.binary());
    }
    rmrf(&root)?;
    std::fs::rename(&tmp, &root).context(|| format!("cannot rename {}", tmp.display()))?;
    write(&marker, RECIPE)?;
    Ok(root)
}

/// The first of `candidates` (relative to `root`) that is a regular file.
fn first_file(root: &Path, candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(|c| root.join(c))
        .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

/// The dynamic loader of a tree of unpacked x86_64 Debian packages, and the library path
/// (`--library-path`) that makes it load the tree's libraries rather than the host's: a
/// program of another release runs as `<loader> --library-path <libs> <program>`.
pub fn tree_loader(root: &Path) -> Result<(PathBuf, String)> {
    let triple = "x86_64-linux-gnu";
    let loader = first_file(
        root,
        &[
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ],
    )
    .ok_or_else(|| err!("no dynamic loader in {}", root.display()))?;
    let libs = [
        root.join("lib").join(triple),
        root.join("usr/lib").join(triple),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    Ok((loader, libs))
}

/// A command that runs `emu` from its unpacked tree, with its firmware
/// directory (`-L`) already given; the caller adds the machine's arguments.
pub fn command(emu: Emulator) -> Result<Command> {
    let root = unpacked(emu)?;
    let triple = "x86_64-linux-gnu";
    let (loader, libs) = tree_loader(&root)?;
    let mut cmd = Command::new(loader);
    // Debian builds the accelerators and devices as modules, looked up in a
    // fixed directory unless QEMU_MODULE_DIR says otherwise.
    cmd.env(
        "QEMU_MODULE_DIR",
        root.join("usr/lib").join(triple).join("qemu"),
    )
    .arg("--library-path")
    .arg(libs)
    .arg(root.join("usr/bin").join(emu.binary()));
    // Debian's firmware path, inside the tree (SeaBIOS is a package of its own).
    for dir in FIRMWARE_DIRS {
        if root.join(dir).is_dir() {
            cmd.arg("-L").arg(root.join(dir));
        }
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codename_comes_from_version_codename() {
        let bookworm = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n\
                        VERSION_CODENAME=bookworm\nID=debian\n";
        assert_eq!(codename_of(bookworm).as_deref(), Some("bookworm"));
        assert_eq!(
            codename_of("VERSION_CODENAME=\"trixie\"\n").as_deref(),
            Some("trixie")
        );
        assert_eq!(codename_of("ID=debian\nVERSION_CODENAME=\n"), None);
    }

    #[test]
    fn emulators_name_their_package_and_binary() {
        assert_eq!(Emulator::X86_64.package(), "qemu-system-x86");
        assert_eq!(Emulator::Aarch64.binary(), "qemu-system-aarch64");
    }
}
