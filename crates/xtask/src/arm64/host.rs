// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Host packages the aarch64 box and the aarch64 cross-build need, installed
//! with apt-get when missing.

use std::path::Path;
use std::process::Command;

use crate::host::apt_install;
use crate::util::{have_program, output, run, say, Result};

/// (file that proves the package is there, Debian package) for booting and
/// building the box: QEMU for Arm, the cross compiler for the hypervisor
/// rebuild and Xen's build prerequisites.
const BOX: &[(&str, &str)] = &[
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("make", "make"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("python3", "python3"),
    ("zstd", "zstd"),
    ("xz", "xz-utils"),
    ("gzip", "gzip"),
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
    ("dpkg-deb", "dpkg"),
    ("tar", "tar"),
    ("patch", "patch"),
];

/// Files of Debian's Rust for cross-building: rustc-web's compiler, the arm64
/// standard library (a foreign-architecture package) and the cross linker
/// with its C library.
const RUST: &[(&str, &str)] = &[
    ("/usr/bin/rustc", "rustc-web"),
    ("/usr/bin/aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    // The arm64 C library to link against: only a Recommends of the cross
    // compiler, so a --no-install-recommends install leaves it out.
    ("/usr/aarch64-linux-gnu/lib/crt1.o", "libc6-dev-arm64-cross"),
    (
        "/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib",
        "libstd-rust-web-dev:arm64",
    ),
];

/// Qemu user-mode emulation, for running aarch64 unit tests on the host.
const USER: &[(&str, &str)] = &[("qemu-aarch64-static", "qemu-user-static")];

fn present(what: &str) -> bool {
    if what.starts_with('/') {
        Path::new(what).exists()
    } else {
        have_program(what)
    }
}

fn install(list: &[(&str, &str)], foreign_arm64: bool) -> Result<()> {
    let mut missing: Vec<&str> = list
        .iter()
        .filter(|(f, _)| !present(f))
        .map(|(_, p)| *p)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if foreign_arm64 {
        let archs = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
        if !archs.lines().any(|l| l.trim() == "arm64") {
            say("dpkg --add-architecture arm64 (for libstd-rust-web-dev:arm64)");
            run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        }
    }
    apt_install("host packages", &missing)
}

/// Tools to build and boot the aarch64 box.
pub fn ensure_box_tools() -> Result<()> {
    install(BOX, false)
}

/// Debian's Rust for aarch64 cross-builds (`rustc-web`, arm64 std, linker).
pub fn ensure_rust_cross() -> Result<()> {
    install(RUST, true)
}

/// `qemu-aarch64-static` for host-side aarch64 unit tests.
pub fn ensure_qemu_user() -> Result<()> {
    install(USER, false)
}
