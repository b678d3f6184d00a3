// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The .debs of a box image (hypervisor, dom0 kernel, userland closure),
//! resolved with the isolated apt of a stack's cache and remembered in
//! `plan.txt` until the package lists change. Both architectures resolve the
//! same packages; only the Debian architecture name differs. Extra packages
//! (`--with-pkg`, see `extras`) join the userland roots and make a separate
//! plan, `plan-<tag>.txt`.

use std::path::{Path, PathBuf};

use crate::apt::Apt;
use crate::extras;
use crate::stack::Stack;
use crate::util::{write, Result};

/// The resolved .debs of an image.
pub struct Debs {
    /// `xen-hypervisor-<v>-<arch>`.
    pub hypervisor: PathBuf,
    /// The kernel package `linux-image-<arch>` depends on.
    pub kernel: PathBuf,
    /// Name of that kernel package (`linux-image-<kernel version>`).
    pub kernel_pkg: String,
    /// The closure of the dom0 userland packages.
    pub userland: Vec<PathBuf>,
}

impl Debs {
    /// Every .deb: hypervisor, kernel, then userland.
    pub fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.hypervisor, &self.kernel]
            .into_iter()
            .chain(&self.userland)
    }

    /// The kernel version, as in `/lib/modules/<version>`.
    pub fn kernel_version(&self) -> String {
        self.kernel_pkg
            .strip_prefix("linux-image-")
            .unwrap_or(&self.kernel_pkg)
            .to_string()
    }

    /// One indented line per .deb file name, for manifests.
    pub fn manifest_lines(&self) -> String {
        self.all()
            .map(|d| {
                format!(
                    "  {}\n",
                    d.file_name().unwrap_or_default().to_string_lossy()
                )
            })
            .collect()
    }
}

/// Stamp of the resolution inputs: a resolved plan stays valid until the
/// package lists (or the image recipe, or the extra packages) change. Without
/// extra packages the stamp is the historic one.
fn plan_stamp(recipe: &str, stack: Stack, extra: &[String], dir: &Path) -> String {
    let mtime = std::fs::metadata(dir.join("apt/lists/.complete"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut stamp = format!("{recipe} {} lists@{mtime}", stack.name());
    if !extra.is_empty() {
        stamp.push_str(&format!(" with {}", extra.join(" ")));
    }
    stamp
}

/// Splits the .debs of a plan: hypervisor, kernel, then userland.
fn split(kernel_pkg: String, debs: Vec<PathBuf>) -> Debs {
    Debs {
        hypervisor: debs[0].clone(),
        kernel: debs[1].clone(),
        kernel_pkg,
        userland: debs[2..].to_vec(),
    }
}

/// Reads the plan saved by the last resolution, if still valid and complete.
fn cached_plan(recipe: &str, stack: Stack, extra: &[String], dir: &Path) -> Option<Debs> {
    let text = std::fs::read_to_string(dir.join(extras::plan_file(extra))).ok()?;
    let mut lines = text.lines();
    if lines.next()? != plan_stamp(recipe, stack, extra, dir) {
        return None;
    }
    let kernel_pkg = lines.next()?.to_string();
    let debs: Vec<PathBuf> = lines.map(|l| dir.join("debs").join(l)).collect();
    (debs.len() > 2 && debs.iter().all(|d| d.is_file())).then(|| split(kernel_pkg, debs))
}

/// The .debs of `stack` for the Debian architecture `deb_arch` (`amd64`,
/// `arm64`), with the closure of the `extra` packages in the userland,
/// downloaded into `<dir>/debs/` unless cached, and how many were downloaded.
pub fn resolve(
    recipe: &str,
    deb_arch: &str,
    stack: Stack,
    extra: &[String],
    apt: &Apt,
    dir: &Path,
) -> Result<(Debs, usize)> {
    if let Some(p) = cached_plan(recipe, stack, extra, dir) {
        return Ok((p, 0));
    }
    let v = stack.xen_version();
    let kernel_pkg =
        apt.dependency_with_prefix(&format!("linux-image-{deb_arch}"), "linux-image-")?;
    let mut pkgs = vec![format!("xen-hypervisor-{v}-{deb_arch}"), kernel_pkg.clone()];
    let mut roots: Vec<String> = [
        format!("xen-utils-{v}"),
        "xenstore-utils".into(),
        "busybox-static".into(),
        "libc6".into(),
        "libgcc-s1".into(),
    ]
    .into();
    roots.extend_from_slice(extra);
    pkgs.extend(apt.closure(&roots)?);
    let (debs, n) = apt.fetch(&pkgs, &dir.join("debs"))?;
    let mut text = format!("{}\n{kernel_pkg}\n", plan_stamp(recipe, stack, extra, dir));
    for d in &debs {
        text.push_str(&format!(
            "{}\n",
            d.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    write(&dir.join(extras::plan_file(extra)), text)?;
    Ok((split(kernel_pkg, debs), n))
}
