// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Host tools the box needs, installed with apt-get when missing (QEMU is not
//! one of them: see [`crate::host_qemu`]).

use std::process::Command;

use crate::util::{have_program, run, say, Result};

/// (program, Debian package providing it)
const TOOLS: &[(&str, &str)] = &[
    ("zstd", "zstd"),
    ("xz", "xz-utils"),
    ("gzip", "gzip"),
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
    ("dpkg-deb", "dpkg"),
    ("tar", "tar"),
    ("cpio", "cpio"),
];

/// Installs the Debian packages of missing host tools. Returns the packages installed.
pub fn ensure_tools() -> Result<Vec<&'static str>> {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(prog, _)| !have_program(prog))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(missing);
    }
    apt_install("host packages", &missing)?;
    Ok(missing)
}

/// `apt-get update`, then installs `packages` (announced as `what`) without
/// recommends.
pub fn apt_install(what: &str, packages: &[&str]) -> Result<()> {
    say(format!("installing {what}: {}", packages.join(" ")));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive")
            // Other jobs on the machine may hold the dpkg lock for a while.
            .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
            .args(args);
        c
    };
    run(&mut apt(&["update"]))?;
    run(apt(&["install", "-y", "--no-install-recommends"]).args(packages))
}
