// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds (or reuses) the `eventfd` dom0 kernel: Debian trixie's
//! `linux-source-6.12` (downloaded with an isolated apt configuration,
//! unpacked, never installed), `make tinyconfig` + our fragment +
//! `make olddefconfig`, `make bzImage`. No modules: everything is built in.
//!
//! Cache layout under `<cache>/dom0-kernel/`: `apt/` (isolated trixie apt
//! state), `debs/` (the source .deb), `src/<version>/` (unpacked tree),
//! `build/<version>/` (the `O=` build directory, kept so that a fragment
//! change rebuilds incrementally), `images/<key>/` (`bzImage`, `config`,
//! `description.txt`). The key hashes the recipe version, the .deb file name
//! (which carries the source version) and the fragment's text.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::Apt;
use crate::host::apt_install;
use crate::stack::cache_root;
use crate::util::{
    have_program, lock_dir, mkdirs, rmrf, run, say, write, Context, Fnv, Result, Stopwatch,
};
use crate::{bail, err};

/// Bumped whenever the way the kernel is built changes.
const RECIPE: &str = "xen-box dom0 kernel recipe 1";
/// The Kconfig fragment (a list of facts with the reason for each).
const FRAGMENT: &str = include_str!("../../kernel/xen-dom0-eventfd.config");
/// Debian package carrying the source as a tarball.
const SOURCE_PKG: &str = "linux-source-6.12";
/// Suite the source comes from (its 6.12 has XEN_PRIVCMD_EVENTFD).
const SUITE: &str = "trixie";

/// (what must exist, Debian package providing it): programs are looked up in
/// `$PATH`, absolute paths are files.
const BUILD_TOOLS: &[(&str, &str)] = &[
    ("gcc", "build-essential"),
    ("make", "build-essential"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("bc", "bc"),
    // objtool links against libelf.
    ("/usr/include/gelf.h", "libelf-dev"),
];

/// A built kernel.
pub struct Kernel {
    /// The bzImage to boot as dom0.
    pub bzimage: PathBuf,
    /// One line for manifests: source version, recipe, build time.
    pub description: String,
}

/// The kernel for the current fragment and source, built if not cached.
pub fn ensure() -> Result<Kernel> {
    let dir = cache_root().join("dom0-kernel");
    mkdirs(&dir)?;
    // Several jobs may share the cache: one builds at a time, the others
    // wait and then reuse the result.
    let _lock = lock_dir(&dir)?;
    let deb = source_deb(&dir)?;
    let deb_name = deb
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| err!("{} has no file name", deb.display()))?;
    let version = deb_name
        .split('_')
        .nth(1)
        .ok_or_else(|| err!("cannot read the version in `{deb_name}`"))?
        .to_string();
    let key = Fnv::default()
        .add(RECIPE.as_bytes())
        .add(deb_name.as_bytes())
        .add(FRAGMENT.as_bytes())
        .hex();
    let img = dir.join("images").join(&key);
    if !img.join(".complete").exists() {
        build(&dir, &deb, &version, &img)?;
        keep_only(&dir.join("images"), &key)?;
        keep_only(&dir.join("src"), &version)?;
        keep_only(&dir.join("build"), &version)?;
    }
    let description = std::fs::read_to_string(img.join("description.txt"))
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Kernel {
        bzimage: img.join("bzImage"),
        description,
    })
}

/// Downloads (or finds) the source .deb with the isolated trixie apt state.
fn source_deb(dir: &Path) -> Result<PathBuf> {
    let apt = Apt::new(&dir.join("apt"), SUITE)?;
    let fresh = apt.ensure_lists(false)?;
    let pkgs = [SOURCE_PKG.to_string()];
    let debs = match apt.fetch(&pkgs, &dir.join("debs")) {
        Ok((d, _)) => d,
        Err(e) if !fresh => {
            // Old lists may name a .deb the mirror no longer has.
            say(format!("{e}; refreshing the package lists and retrying"));
            apt.ensure_lists(true)?;
            apt.fetch(&pkgs, &dir.join("debs"))?.0
        }
        Err(e) => return Err(e),
    };
    match debs.into_iter().next() {
        Some(d) => Ok(d),
        None => bail!("apt gave no .deb for {SOURCE_PKG}"),
    }
}

/// Installs the missing kernel build tools with apt-get.
fn ensure_build_tools() -> Result<()> {
    let mut missing: Vec<&str> = BUILD_TOOLS
        .iter()
        .filter(|(what, _)| {
            if what.starts_with('/') {
                !Path::new(what).is_file()
            } else {
                !have_program(what)
            }
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install("kernel build tools", &missing)
}

/// Unpacks the kernel tarball inside `deb` into `<dir>/src/<version>/`
/// (through a temporary directory, so a half-unpacked tree is never used).
fn unpack_source(dir: &Path, deb: &Path, version: &str) -> Result<PathBuf> {
    let dest = dir.join("src").join(version);
    let tree = dest.join("linux-source-6.12");
    if tree.join("Makefile").is_file() {
        return Ok(tree);
    }
    let tmp = dir.join("src").join(format!("{version}.tmp"));
    rmrf(&tmp)?;
    mkdirs(&tmp)?;
    say(format!("unpacking {}", deb.display()));
    run(Command::new("sh")
        .arg("-c")
        .arg(
            r#"dpkg-deb --fsys-tarfile "$1" | tar -x -O ./usr/src/linux-source-6.12.tar.xz | tar -xJ -C "$2""#,
        )
        .arg("sh")
        .arg(deb)
        .arg(&tmp))?;
    if !tmp.join("linux-source-6.12/Makefile").is_file() {
        bail!(
            "{} did not contain linux-source-6.12/Makefile",
            deb.display()
        );
    }
    rmrf(&dest)?;
    std::fs::rename(&tmp, &dest).context(|| format!("cannot rename to {}", dest.display()))?;
    Ok(tree)
}

/// The `CONFIG_...=...` lines of a fragment.
fn settings(fragment: &str) -> impl Iterator<Item = &str> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_"))
}

/// Symbol name of a `.config` line (`CONFIG_X=...` or `# CONFIG_X is not set`).
fn symbol(line: &str) -> Option<&str> {
    let l = line.trim();
    let l = l.strip_prefix("# ").unwrap_or(l);
    let l = l.strip_prefix("CONFIG_")?;
    let end = l
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(l.len());
    Some(&l[..end])
}

/// `base` without the lines of symbols that `fragment` sets, then `fragment`
/// (so that Kconfig sees each symbol once and does not warn about overrides).
fn merged(base: &str, fragment: &str) -> String {
    let set: Vec<&str> = settings(fragment).filter_map(symbol).collect();
    let mut out: String = base
        .lines()
        .filter(|l| symbol(l).is_none_or(|s| !set.contains(&s)))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(fragment);
    out
}

/// The fragment's settings missing from a final `.config`.
fn missing_settings<'a>(fragment: &'a str, config: &str) -> Vec<&'a str> {
    settings(fragment)
        .filter(|s| !config.lines().any(|l| l.trim() == *s))
        .collect()
}

fn make(src: &Path, out: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("-s")
        .arg("-C")
        .arg(src)
        .arg(format!("O={}", out.display()));
    c
}

fn build(dir: &Path, deb: &Path, version: &str, img: &Path) -> Result<()> {
    let sw = Stopwatch::start();
    ensure_build_tools()?;
    let src = unpack_source(dir, deb, version)?;
    let out = dir.join("build").join(version);
    mkdirs(&out)?;
    // tinyconfig, minus the symbols the fragment sets, plus the fragment;
    // then olddefconfig resolves everything else to defaults.
    run(make(&src, &out).arg("tinyconfig"))?;
    let config_path = out.join(".config");
    let base = std::fs::read_to_string(&config_path)
        .context(|| format!("cannot read {}", config_path.display()))?;
    write(&config_path, merged(&base, FRAGMENT))?;
    run(make(&src, &out).arg("olddefconfig"))?;
    let config = std::fs::read_to_string(&config_path)
        .context(|| format!("cannot read {}", config_path.display()))?;
    let missing = missing_settings(FRAGMENT, &config);
    if !missing.is_empty() {
        bail!(
            "olddefconfig dropped fragment settings (unmet dependencies?): {}",
            missing.join(" ")
        );
    }
    // A build directory left by an earlier fragment or recipe only recompiles what changed.
    let incremental = out.join("arch/x86/boot/bzImage").is_file();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    say(format!(
        "building the eventfd dom0 kernel (Linux {version}, make -j{jobs} bzImage; minutes)"
    ));
    run(make(&src, &out).arg(format!("-j{jobs}")).arg("bzImage"))?;
    let tmp = img.with_extension("tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;
    let bz = out.join("arch/x86/boot/bzImage");
    std::fs::copy(&bz, tmp.join("bzImage")).context(|| format!("cannot copy {}", bz.display()))?;
    write(&tmp.join("config"), &config)?;
    let secs = sw.secs();
    write(
        &tmp.join("description.txt"),
        format!(
            "Linux {version} from Debian {SUITE} {SOURCE_PKG}, tinyconfig + xen-dom0-eventfd.config, \
             built in {secs:.0} s{}\n",
            if incremental { " (incremental)" } else { "" }
        ),
    )?;
    write(&tmp.join(".complete"), "")?;
    rmrf(img)?;
    std::fs::rename(&tmp, img).context(|| format!("cannot rename to {}", img.display()))?;
    say(format!("built the eventfd dom0 kernel in {secs:.1} s"));
    Ok(())
}

/// Removes every entry of `dir` except `keep` (old versions and keys).
fn keep_only(dir: &Path, keep: &str) -> Result<()> {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name() != keep {
                rmrf(&e.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_holds_the_point_of_the_kernel_and_only_settings_lines() {
        let s: Vec<&str> = settings(FRAGMENT).collect();
        for want in [
            "CONFIG_XEN_PRIVCMD_EVENTFD=y",
            "CONFIG_XEN_VIRTIO=y",
            "CONFIG_VIRTIO_PCI=y",
            "CONFIG_EVENTFD=y",
            "CONFIG_XEN_DOM0=y",
            "CONFIG_HVC_XEN=y",
        ] {
            assert!(s.contains(&want), "{want} missing from the fragment");
        }
        // Every non-comment, non-blank line is a setting: a typo cannot hide.
        for l in FRAGMENT.lines().map(str::trim) {
            assert!(
                l.is_empty() || l.starts_with('#') || l.starts_with("CONFIG_"),
                "{l}"
            );
        }
    }

    #[test]
    fn merge_replaces_the_base_lines_of_fragment_symbols() {
        let base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_BB=y\n# comment\n";
        let m = merged(base, "# why\nCONFIG_B=y\n");
        assert_eq!(m, "CONFIG_A=y\nCONFIG_BB=y\n# comment\n# why\nCONFIG_B=y\n");
        assert_eq!(symbol("# CONFIG_X_1 is not set"), Some("X_1"));
        assert_eq!(symbol("CONFIG_Y=\"s\""), Some("Y"));
        assert_eq!(symbol("# plain comment"), None);
    }

    #[test]
    fn missing_settings_are_reported() {
        let frag = "# why\nCONFIG_A=y\nCONFIG_B=y\n";
        assert!(missing_settings(frag, "CONFIG_A=y\nCONFIG_B=y\n").is_empty());
        assert_eq!(
            missing_settings(frag, "CONFIG_A=y\n# CONFIG_B is not set\n"),
            vec!["CONFIG_B=y"]
        );
    }
}
