// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Xen + Linux stacks the box can boot, and where their files are cached.

use std::path::PathBuf;

use crate::bail;
use crate::util::Result;

/// One Debian release's Xen hypervisor, dom0 kernel and dom0 userspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// Debian 12: Xen 4.17 + Linux 6.1.
    Bookworm,
    /// Debian 13: Xen 4.20 + Linux 6.12.
    Trixie,
}

impl Stack {
    /// Every stack, in the order `all` runs them.
    pub const ALL: [Stack; 2] = [Stack::Bookworm, Stack::Trixie];

    /// Debian suite name (also the stack's name on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Stack::Bookworm => "bookworm",
            Stack::Trixie => "trixie",
        }
    }

    /// Xen major.minor, as Debian names its packages and as
    /// `XEN_BOX_XEN_VERSION` reports it.
    pub fn xen_version(self) -> &'static str {
        match self {
            Stack::Bookworm => "4.17",
            Stack::Trixie => "4.20",
        }
    }

    /// Parses `bookworm`, `trixie`, `all` or `any` (see [`Selection`]).
    pub fn parse_list(s: &str) -> Result<Vec<Stack>> {
        match s {
            "bookworm" => Ok(vec![Stack::Bookworm]),
            "trixie" => Ok(vec![Stack::Trixie]),
            "all" => Ok(Stack::ALL.to_vec()),
            // The candidates of `any`, in the order they are tried.
            "any" => Ok(vec![Stack::Trixie, Stack::Bookworm]),
            _ => bail!("unknown stack `{s}` (expected bookworm, trixie, all or any)"),
        }
    }

    /// Cache directory of this stack.
    pub fn cache_dir(self) -> PathBuf {
        cache_root().join(self.name())
    }
}

/// How `--stack` chose its stacks, which decides what happens to a stack that
/// cannot be booted on this architecture (see [`crate::usable_stacks`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// One stack by name: it must be usable.
    #[default]
    Named,
    /// `all`: each that is usable; the others are skipped, loudly.
    All,
    /// `any`: the first that is usable.
    Any,
}

impl Selection {
    /// The selection a `--stack` value makes.
    pub fn of(value: &str) -> Selection {
        match value {
            "all" => Selection::All,
            "any" => Selection::Any,
            _ => Selection::Named,
        }
    }
}

/// `$XEN_BOX_CACHE`, else `$HOME/.cache/xen-rust-vmm/xen-box`.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("XEN_BOX_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/xen-rust-vmm/xen-box")
}
