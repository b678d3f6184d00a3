// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Opt-in extra Debian packages in the x86_64 dom0 image (`--with-pkg NAME`),
//! for payloads that need more than the default userland (QEMU as a device
//! model, for instance).
//!
//! An image with extra packages is a variant kept apart from the default one:
//! its own resolved plan (`plan-<tag>.txt`) and its own images directory
//! (`images-<tag>/`), so that building or cleaning one never touches the
//! other, and the default image (the one CI boots) stays exactly as it is.

use crate::bail;
use crate::util::Result;

/// Checks a Debian package name (policy: lower case letters, digits and
/// `+ - .`, starting with a letter or digit, at least two characters): the
/// name ends up in file names and apt command lines.
pub fn check_name(name: &str) -> Result<()> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if name.len() < 2 || !ok_first || !ok_rest {
        bail!("`{name}` is not a Debian package name");
    }
    Ok(())
}

/// Sorted, deduplicated copy of `names`: the variant does not depend on the
/// order of the options.
pub fn normalise(names: &[String]) -> Vec<String> {
    let mut v = names.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Name of the variant holding `names`: "" for none, else `with-a+b`.
pub fn tag(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("with-{}", names.join("+"))
    }
}

/// File name of the resolved plan of the variant holding `names`.
pub fn plan_file(names: &[String]) -> String {
    match tag(names).as_str() {
        "" => "plan.txt".into(),
        t => format!("plan-{t}.txt"),
    }
}

/// Name of the images directory of the variant holding `names`.
pub fn images_dir(names: &[String]) -> String {
    match tag(names).as_str() {
        "" => "images".into(),
        t => format!("images-{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_variant_keeps_the_historic_names() {
        assert_eq!(tag(&[]), "");
        assert_eq!(plan_file(&[]), "plan.txt");
        assert_eq!(images_dir(&[]), "images");
    }

    #[test]
    fn variants_are_named_by_their_sorted_packages() {
        let n = normalise(&v(&["qemu-system-xen", "gdb", "qemu-system-xen"]));
        assert_eq!(n, v(&["gdb", "qemu-system-xen"]));
        assert_eq!(tag(&n), "with-gdb+qemu-system-xen");
        assert_eq!(plan_file(&n), "plan-with-gdb+qemu-system-xen.txt");
        assert_eq!(images_dir(&n), "images-with-gdb+qemu-system-xen");
    }

    #[test]
    fn package_names_are_checked() {
        for ok in ["qemu-system-xen", "libstdc++6", "g++", "xen-utils-4.17"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-x", "Qemu", "a/b", "../x", "a b", "x_y"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
