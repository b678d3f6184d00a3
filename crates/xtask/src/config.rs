// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What one invocation's command line chose about the box itself: the emulated machine, the
//! dom0 kernel and the extra dom0 packages. Built once from the options and passed down (the
//! image recipes and the boot carry it in their [`Artifacts`](crate::image::Artifacts)), so a
//! function's behaviour follows from its arguments and a unit test can try any combination.

use std::path::PathBuf;

use crate::arch::Arch;
use crate::bail;
use crate::extras;
use crate::kernel::Dom0Kernel;
use crate::stack::{cache_root, Stack};
use crate::util::Result;

/// The box an invocation boots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BoxConfig {
    /// `--arch` (default x86_64).
    pub arch: Arch,
    /// `--dom0-kernel` (default debian).
    pub dom0_kernel: Dom0Kernel,
    /// `--with-pkg` values, sorted and deduplicated: the variant does not depend on the
    /// order of the options. Empty: the default image.
    pub extra_pkgs: Vec<String>,
}

impl BoxConfig {
    /// The configuration for these options; refuses extra packages outside x86_64 (the
    /// aarch64 image has no variants).
    pub fn new(arch: Arch, dom0_kernel: Dom0Kernel, with_pkgs: &[String]) -> Result<BoxConfig> {
        if !with_pkgs.is_empty() && arch != Arch::X86_64 {
            bail!("--with-pkg is for the x86_64 box only");
        }
        Ok(BoxConfig {
            arch,
            dom0_kernel,
            extra_pkgs: extras::normalise(with_pkgs),
        })
    }

    /// Whether the box is the aarch64 one.
    pub fn is_aarch64(&self) -> bool {
        self.arch == Arch::Aarch64
    }

    /// Cache directory of `stack` on this architecture: x86_64 keeps the historic
    /// `<root>/<stack>`, aarch64 uses `<root>/<stack>-arm64`.
    pub fn cache_dir(&self, stack: Stack) -> PathBuf {
        match self.arch {
            Arch::X86_64 => stack.cache_dir(),
            Arch::Aarch64 => cache_root().join(format!("{}-arm64", stack.name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_packages_are_normalised_and_x86_only() {
        let pkgs = ["qemu-system-xen".to_string(), "gdb".into(), "gdb".into()];
        let c = BoxConfig::new(Arch::X86_64, Dom0Kernel::Debian, &pkgs).unwrap();
        assert_eq!(c.extra_pkgs, ["gdb", "qemu-system-xen"]);
        assert!(BoxConfig::new(Arch::Aarch64, Dom0Kernel::Debian, &pkgs).is_err());
        assert!(BoxConfig::new(Arch::Aarch64, Dom0Kernel::Eventfd, &[]).is_ok());
    }

    #[test]
    fn each_architecture_has_its_own_cache() {
        let x86 = BoxConfig::default();
        let arm = BoxConfig {
            arch: Arch::Aarch64,
            ..BoxConfig::default()
        };
        assert_eq!(x86.cache_dir(Stack::Bookworm), Stack::Bookworm.cache_dir());
        assert!(arm
            .cache_dir(Stack::Bookworm)
            .ends_with(format!("{}-arm64", Stack::Bookworm.name())));
    }
}
