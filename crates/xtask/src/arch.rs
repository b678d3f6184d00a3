// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The machine architecture the box emulates (and its tests are built for).
//!
//! Chosen once per invocation with `--arch`; kept process-wide so that the
//! commands shared by both architectures (`run`, `test`, `selftest`) need no
//! extra parameter threaded through them.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::bail;
use crate::stack::{cache_root, Stack};
use crate::util::Result;

/// Architecture of the emulated machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arch {
    /// x86_64: PV dom0 under `qemu-system-x86_64`.
    #[default]
    X86_64,
    /// aarch64: dom0 under `qemu-system-aarch64` (virt machine, EL2).
    Aarch64,
}

static CURRENT: OnceLock<Arch> = OnceLock::new();

impl Arch {
    /// Parses `x86_64` or `aarch64` (also Debian's `amd64` / `arm64`).
    pub fn parse(s: &str) -> Result<Arch> {
        match s {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => bail!("unknown architecture `{s}` (expected x86_64 or aarch64)"),
        }
    }

    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// Sets the architecture of this invocation (first call wins).
pub fn set(a: Arch) {
    let _ = CURRENT.set(a);
}

/// The architecture of this invocation (x86_64 unless `--arch` said otherwise).
pub fn current() -> Arch {
    CURRENT.get().copied().unwrap_or_default()
}

/// Cache directory of `stack` on the current architecture: x86_64 keeps the
/// historic `<root>/<stack>`, aarch64 uses `<root>/<stack>-arm64`.
pub fn cache_dir(stack: Stack) -> PathBuf {
    match current() {
        Arch::X86_64 => stack.cache_dir(),
        Arch::Aarch64 => cache_root().join(format!("{}-arm64", stack.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings_and_rejects_others() {
        assert_eq!(Arch::parse("aarch64").unwrap(), Arch::Aarch64);
        assert_eq!(Arch::parse("arm64").unwrap(), Arch::Aarch64);
        assert_eq!(Arch::parse("x86_64").unwrap(), Arch::X86_64);
        assert!(Arch::parse("riscv64").is_err());
        assert_eq!(Arch::default(), Arch::X86_64);
    }
}
