// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The machine architecture the box emulates (and its tests are built for).
//!
//! Chosen with `--arch`; part of the invocation's [`BoxConfig`](crate::config::BoxConfig).

use crate::bail;
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
