// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The aarch64 Xen box: Debian's arm64 Xen and Linux under
//! `qemu-system-aarch64` (TCG, `virt` machine with EL2), dom0 loaded by QEMU's
//! guest-loader, the hypervisor rebuilt from Debian's source with the IOREQ
//! server enabled, and test binaries cross-built with Debian's Rust.
//!
//! It produces the same [`Artifacts`] as the x86_64 box, so `run`, `test` and
//! `selftest` and their failure detection are shared; only the image recipe,
//! the QEMU command line and the cargo configuration differ.

pub mod cmd_bridge;
pub mod cmd_virtio;
pub mod cross;
pub mod host;
pub mod image;
pub mod qemu;
pub mod xen_build;

use crate::config::BoxConfig;
use crate::image::Artifacts;
use crate::stack::Stack;
use crate::util::{lock_dir, mkdirs, Result};

/// Host tools + the aarch64 image of `stack` (built or reused), with the
/// dom0 kernel of `cfg`.
pub fn ready(cfg: &BoxConfig, stack: Stack, refresh: bool) -> Result<Artifacts> {
    host::ensure_box_tools()?;
    // Tests are cross-built: have Debian's Rust ready too (cheap when present).
    host::ensure_rust_cross()?;
    crate::kernel::apply(image::prepare(cfg, stack, refresh)?)
}

/// Whether the aarch64 box of `stack` can be built here: its hypervisor is
/// rebuilt from Debian's Xen source, which the archive may not serve (the
/// source is downloaded and cached when it can be had). `Ok(Err(why))`: it
/// cannot, and why.
pub fn stack_available(
    cfg: &BoxConfig,
    stack: Stack,
) -> Result<std::result::Result<String, String>> {
    let dir = cfg.cache_dir(stack);
    mkdirs(&dir)?;
    let _lock = lock_dir(&dir)?;
    Ok(xen_build::source_available(&dir, stack.name()))
}
