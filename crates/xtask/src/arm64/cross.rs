// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Cross-building for aarch64-unknown-linux-gnu with Debian's Rust.
//!
//! The host toolchain has only the x86_64 target, so aarch64 artifacts are
//! compiled by Debian's `rustc-web` (`/usr/bin/rustc`, which ships the arm64
//! standard library as `libstd-rust-web-dev:arm64`) driven by the usual cargo,
//! and linked by `aarch64-linux-gnu-gcc` against the host's arm64 cross glibc
//! (bookworm's 2.36, which both stacks' dom0 glibc satisfy). Binaries are
//! dynamically linked, as on x86_64 (tests that ship themselves into a domU
//! copy their loader and libraries). A separate target directory keeps the
//! two compilers from invalidating each other's builds.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{say, workspace_root, Context, Result};

/// The Rust target triple.
pub const TARGET: &str = "aarch64-unknown-linux-gnu";
/// Debian's compiler (rustc-web), which has the aarch64 standard library.
pub const RUSTC: &str = "/usr/bin/rustc";
const LINKER: &str = "aarch64-linux-gnu-gcc";
/// qemu user-mode runner for host-side unit tests; -L points the emulated
/// loader at the arm64 cross glibc.
const RUNNER: &str = "qemu-aarch64-static -L /usr/aarch64-linux-gnu";

/// Target directory for aarch64 cross-builds: `<target dir>/aarch64-cross`
/// (`aarch64-cross-static` for statically linked builds, so the two link
/// modes do not rebuild each other's artifacts).
pub fn target_dir(static_link: bool) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    base.join(if static_link {
        "aarch64-cross-static"
    } else {
        "aarch64-cross"
    })
}

/// Makes a `cargo build`/`cargo test` command (subcommand already added)
/// build for aarch64: installs Debian's Rust if missing, sets the compiler,
/// linker and target directory, and adds `--target`. RUSTFLAGS (for example
/// CI's `-D warnings`) pass through; with `--target` they reach only target
/// artifacts, not build scripts or proc macros.
pub fn configure(cmd: &mut Command) -> Result<()> {
    configure_linking(cmd, false)
}

/// Makes `cmd` (a cargo command) compile with Debian's Rust and link with the
/// arm64 cross linker, installing them if missing. Neither the target
/// directory nor `--target` is set: see [`configure`] for the workspace's
/// builds; [`crate::vhost_device`] uses it for its `cargo install`.
pub fn toolchain(cmd: &mut Command) -> Result<()> {
    super::host::ensure_rust_cross()?;
    cmd.env("RUSTC", RUSTC)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", LINKER)
        .env_remove("RUSTC_WRAPPER");
    Ok(())
}

/// [`configure`], optionally linking statically (`+crt-static`).
fn configure_linking(cmd: &mut Command, static_link: bool) -> Result<()> {
    toolchain(cmd)?;
    if static_link {
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        if !flags.is_empty() {
            flags.push(' ');
        }
        flags.push_str("-C target-feature=+crt-static");
        cmd.env("RUSTFLAGS", flags);
    }
    cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", RUNNER)
        .env("CARGO_TARGET_DIR", target_dir(static_link))
        // Line tables keep backtraces useful at a fraction of full
        // debuginfo's size: every test binary travels in dom0's initramfs.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env("CARGO_PROFILE_TEST_DEBUG", "line-tables-only")
        .args(["--target", TARGET]);
    Ok(())
}

/// Builds binary `bin` of `package` for aarch64, linked statically (it runs where there is no
/// glibc: a domU's busybox initramfs), and returns its path.
pub fn static_binary(package: &str, bin: &str) -> Result<PathBuf> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root())
        .args(["build", "--release", "-p", package, "--bin", bin]);
    configure_linking(&mut cmd, true)?;
    let st = cmd
        .stdin(Stdio::null())
        .status()
        .context(|| format!("cannot run cargo build --bin {bin}"))?;
    if !st.success() {
        crate::bail!("cargo build -p {package} --bin {bin} (aarch64, static) failed with {st}");
    }
    let exe = target_dir(true)
        .join("aarch64-unknown-linux-gnu/release")
        .join(bin);
    if !exe.is_file() {
        crate::bail!("{} was not built", exe.display());
    }
    Ok(exe)
}

/// Builds `vsock-guest` (xen-box-testing's AF_VSOCK end) for aarch64 and packs it as
/// `xen-box-test/vsock-guest` in a cpio archive a domU appends to its initramfs (a directory of
/// its own: the initramfs it joins has its own /bin, a symlink, usr-merged). Returns the
/// binary and the archive, which is called `cpio_name`, beside it.
pub fn vsock_guest_cpio(cpio_name: &str) -> Result<(PathBuf, PathBuf)> {
    let guest = static_binary("xen-box-testing", "vsock-guest")?;
    let cpio = guest.with_file_name(cpio_name);
    let data = std::fs::read(&guest).context(|| format!("cannot read {}", guest.display()))?;
    let mut w = crate::cpio::CpioWriter::new(Vec::new());
    w.dir("xen-box-test", 0o755)
        .and_then(|()| w.file("xen-box-test/vsock-guest", 0o755, &data))
        .context(|| "cannot write the vsock cpio".into())?;
    let bytes = w
        .finish()
        .context(|| "cannot finish the vsock cpio".into())?;
    crate::util::write(&cpio, &bytes)?;
    Ok((guest, cpio))
}

/// `cargo xtask xen-box cross-unit -p CRATE...`: runs the crates' unit tests
/// built for aarch64 on the host under qemu user-mode emulation. They are
/// linked statically: qemu-user 7.2 was seen to hang in multithreaded,
/// dynamically linked test harnesses. Exit status is cargo's.
pub fn unit_tests(packages: &[String], rest: &[String]) -> Result<i32> {
    super::host::ensure_qemu_user()?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root())
        .args(["test", "--lib", "--no-fail-fast"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    configure_linking(&mut cmd, true)?;
    if !rest.is_empty() {
        cmd.arg("--").args(rest);
    }
    say(format!(
        "aarch64 unit tests under qemu-aarch64-static: {}",
        packages.join(", ")
    ));
    let st = cmd
        .stdin(Stdio::null())
        .status()
        .context(|| "cannot run cargo test for aarch64".into())?;
    Ok(st.code().unwrap_or(1))
}
