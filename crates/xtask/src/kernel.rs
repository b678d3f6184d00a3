// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Which Linux kernel the box boots as dom0 (`--dom0-kernel`).
//!
//! `debian` (default) is the stack's own Debian kernel. `eventfd` is a small
//! kernel built from Debian trixie's Linux 6.12 source with
//! `CONFIG_XEN_PRIVCMD_EVENTFD`, so that privcmd IRQFD/IOEVENTFD can be
//! exercised for real: Debian's 6.1 does not know those ioctls and Debian's
//! 6.12 compiles them out. The same kernel boots under both stacks'
//! userspace. Chosen with `--dom0-kernel`, part of the invocation's
//! [`BoxConfig`](crate::config::BoxConfig); built for its architecture (x86_64: bzImage for the PV dom0; aarch64:
//! arm64 `Image`, cross-built, where dom0 is auto-translated and so privcmd
//! IOEVENTFD works, which it cannot on the x86 PV dom0).
//!
//! Every process in dom0 sees `XEN_BOX_DOM0_KERNEL=debian|eventfd`: it is put
//! on the dom0 kernel command line, and Linux hands unrecognised `name=value`
//! boot parameters to init as environment variables.

pub mod build;

use crate::bail;
use crate::image::Artifacts;
use crate::util::{say, Result};

/// The dom0 kernel of this invocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dom0Kernel {
    /// The stack's Debian kernel (6.1 on bookworm, 6.12 on trixie).
    #[default]
    Debian,
    /// The purpose-built 6.12 kernel with privcmd IRQFD/IOEVENTFD.
    Eventfd,
}

impl Dom0Kernel {
    /// Parses `debian` or `eventfd`.
    pub fn parse(s: &str) -> Result<Dom0Kernel> {
        match s {
            "debian" => Ok(Dom0Kernel::Debian),
            "eventfd" => Ok(Dom0Kernel::Eventfd),
            _ => bail!("unknown dom0 kernel `{s}` (expected debian or eventfd)"),
        }
    }

    /// Name as on the command line and in `XEN_BOX_DOM0_KERNEL`.
    pub fn name(self) -> &'static str {
        match self {
            Dom0Kernel::Debian => "debian",
            Dom0Kernel::Eventfd => "eventfd",
        }
    }

    /// The dom0 kernel command-line word that becomes init's
    /// `XEN_BOX_DOM0_KERNEL` environment variable.
    pub fn cmdline_env(self) -> &'static str {
        match self {
            Dom0Kernel::Debian => "XEN_BOX_DOM0_KERNEL=debian",
            Dom0Kernel::Eventfd => "XEN_BOX_DOM0_KERNEL=eventfd",
        }
    }
}

/// Applies the dom0 kernel of `art.config` to a stack's artifacts: for `eventfd`,
/// builds (or reuses) the kernel and boots it instead of Debian's. The domUs
/// keep Debian's kernel (`XEN_BOX_DOMU_KERNEL` is inside the image).
pub fn apply(mut art: Artifacts) -> Result<Artifacts> {
    if art.config.dom0_kernel == Dom0Kernel::Debian {
        return Ok(art);
    }
    let k = build::ensure(art.config.arch)?;
    say(format!(
        "{}: dom0 kernel {} ({})",
        art.stack.name(),
        k.image.display(),
        k.description
    ));
    art.manifest
        .push_str(&format!("dom0 kernel: eventfd, {}\n", k.description));
    art.vmlinuz = k.image;
    Ok(art)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BoxConfig;

    #[test]
    fn parses_names_and_rejects_others() {
        assert_eq!(Dom0Kernel::parse("debian").unwrap(), Dom0Kernel::Debian);
        assert_eq!(Dom0Kernel::parse("eventfd").unwrap(), Dom0Kernel::Eventfd);
        assert!(Dom0Kernel::parse("vanilla").is_err());
        assert_eq!(Dom0Kernel::default(), Dom0Kernel::Debian);
        for k in [Dom0Kernel::Debian, Dom0Kernel::Eventfd] {
            assert_eq!(Dom0Kernel::parse(k.name()).unwrap(), k);
        }
    }

    #[test]
    fn the_command_line_word_names_the_kernel() {
        assert_eq!(
            BoxConfig::default().dom0_kernel.cmdline_env(),
            "XEN_BOX_DOM0_KERNEL=debian"
        );
        assert_eq!(
            Dom0Kernel::Eventfd.cmdline_env(),
            "XEN_BOX_DOM0_KERNEL=eventfd"
        );
    }
}
