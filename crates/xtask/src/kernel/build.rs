// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds (or reuses) the `eventfd` dom0 kernel for either architecture:
//! Debian trixie's `linux-source-6.12` (downloaded with an isolated apt
//! configuration, unpacked, never installed), `make tinyconfig` + the
//! architecture's fragment + `make olddefconfig`, then `make bzImage` on
//! x86_64 or `make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- Image` on
//! aarch64 (cross-built with Debian's gcc-aarch64-linux-gnu). No modules:
//! everything is built in.
//!
//! Cache layout under `<cache>/dom0-kernel/`: `apt/` (isolated trixie apt
//! state), `debs/` (the source .deb), `src/<version>/` (unpacked tree, shared
//! by both architectures), then per architecture (x86_64 directly in
//! `dom0-kernel/`, where it always was; aarch64 in `dom0-kernel/arm64/`):
//! `build/<version>/` (the `O=` build directory, kept so that a fragment
//! change rebuilds incrementally) and `images/<key>/` (`bzImage` or `Image`,
//! `config`, `description.txt`). The key hashes the recipe version, the .deb
//! file name (which carries the source version), the fragment's text and, for
//! aarch64, the architecture (x86_64 keeps its historic key, so its cached
//! kernel stays valid).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::Apt;
use crate::arch::Arch;
use crate::host::apt_install;
use crate::stack::cache_root;
use crate::util::{
    have_program, lock_dir, mkdirs, rmrf, run, say, write, Context, Fnv, Result, Stopwatch,
};
use crate::{bail, err};

/// Bumped whenever the way the kernel is built changes.
const RECIPE: &str = "xen-box dom0 kernel recipe 1";
/// The x86_64 Kconfig fragment (a list of facts with the reason for each).
const FRAGMENT_X86_64: &str = include_str!("../../kernel/xen-dom0-eventfd.config");
/// The arm64 Kconfig fragment, same form.
const FRAGMENT_ARM64: &str = include_str!("../../kernel/xen-dom0-eventfd-arm64.config");
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

/// Tools the arm64 cross-build needs on top of [`BUILD_TOOLS`].
const CROSS_TOOLS: &[(&str, &str)] = &[("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")];

/// What differs between the architectures' builds; everything else is shared.
struct Target {
    /// `Arch::name()`, for messages.
    arch: &'static str,
    /// Kconfig fragment text and its file name (for descriptions).
    fragment: &'static str,
    fragment_name: &'static str,
    /// Extra `make` arguments (cross compilation).
    make_args: &'static [&'static str],
    /// Make target and where it leaves the kernel inside the build directory.
    make_target: &'static str,
    built: &'static str,
    /// File name of the kernel in the image directory.
    file: &'static str,
    /// Sub-directory of `dom0-kernel/` holding `build/` and `images/` ("" = itself).
    subdir: &'static str,
    /// Extra word hashed into the cache key (None: the historic x86_64 key).
    key_tag: Option<&'static str>,
    /// Host tools on top of [`BUILD_TOOLS`].
    tools: &'static [(&'static str, &'static str)],
}

fn target(arch: Arch) -> Target {
    match arch {
        Arch::X86_64 => Target {
            arch: arch.name(),
            fragment: FRAGMENT_X86_64,
            fragment_name: "xen-dom0-eventfd.config",
            make_args: &[],
            make_target: "bzImage",
            built: "arch/x86/boot/bzImage",
            file: "bzImage",
            subdir: "",
            key_tag: None,
            tools: &[],
        },
        Arch::Aarch64 => Target {
            arch: arch.name(),
            fragment: FRAGMENT_ARM64,
            fragment_name: "xen-dom0-eventfd-arm64.config",
            make_args: &["ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"],
            make_target: "Image",
            built: "arch/arm64/boot/Image",
            file: "Image",
            subdir: "arm64",
            key_tag: Some("arm64"),
            tools: CROSS_TOOLS,
        },
    }
}

/// A built kernel.
pub struct Kernel {
    /// The kernel to boot as dom0 (`bzImage` on x86_64, `Image` on aarch64).
    pub image: PathBuf,
    /// One line for manifests: source version, recipe, build time.
    pub description: String,
}

/// The kernel of `arch` for its current fragment and source, built if not cached.
pub fn ensure(arch: Arch) -> Result<Kernel> {
    let t = target(arch);
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
    let key = cache_key(&t, &deb_name);
    let own = dir.join(t.subdir);
    let img = own.join("images").join(&key);
    if !img.join(".complete").exists() {
        build(&t, &dir, &deb, &version, &img)?;
        keep_only(&own.join("images"), &key)?;
        keep_only(&dir.join("src"), &version)?;
        keep_only(&own.join("build"), &version)?;
    }
    let description = std::fs::read_to_string(img.join("description.txt"))
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Kernel {
        image: img.join(t.file),
        description,
    })
}

/// Cache key of `t`'s kernel built from the .deb named `deb_name`.
fn cache_key(t: &Target, deb_name: &str) -> String {
    let mut h = Fnv::default();
    h.add(RECIPE.as_bytes())
        .add(deb_name.as_bytes())
        .add(t.fragment.as_bytes());
    if let Some(tag) = t.key_tag {
        h.add(tag.as_bytes());
    }
    h.hex()
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

/// Installs the missing kernel build tools (common and `extra`) with apt-get.
fn ensure_build_tools(extra: &[(&str, &str)]) -> Result<()> {
    let mut missing: Vec<&str> = BUILD_TOOLS
        .iter()
        .chain(extra)
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

fn make(t: &Target, src: &Path, out: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("-s")
        .arg("-C")
        .arg(src)
        .arg(format!("O={}", out.display()))
        .args(t.make_args);
    c
}

fn build(t: &Target, dir: &Path, deb: &Path, version: &str, img: &Path) -> Result<()> {
    let sw = Stopwatch::start();
    ensure_build_tools(t.tools)?;
    let src = unpack_source(dir, deb, version)?;
    let out = dir.join(t.subdir).join("build").join(version);
    mkdirs(&out)?;
    // tinyconfig, minus the symbols the fragment sets, plus the fragment;
    // then olddefconfig resolves everything else to defaults.
    run(make(t, &src, &out).arg("tinyconfig"))?;
    let config_path = out.join(".config");
    let base = std::fs::read_to_string(&config_path)
        .context(|| format!("cannot read {}", config_path.display()))?;
    write(&config_path, merged(&base, t.fragment))?;
    run(make(t, &src, &out).arg("olddefconfig"))?;
    let config = std::fs::read_to_string(&config_path)
        .context(|| format!("cannot read {}", config_path.display()))?;
    let missing = missing_settings(t.fragment, &config);
    if !missing.is_empty() {
        bail!(
            "{}: olddefconfig dropped fragment settings of {} (unmet dependencies?): {}",
            t.arch,
            t.fragment_name,
            missing.join(" ")
        );
    }
    // A build directory left by an earlier fragment or recipe only recompiles what changed.
    let built = out.join(t.built);
    let incremental = built.is_file();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    say(format!(
        "building the {} eventfd dom0 kernel (Linux {version}, make -j{jobs} {}; minutes)",
        t.arch, t.make_target
    ));
    run(make(t, &src, &out)
        .arg(format!("-j{jobs}"))
        .arg(t.make_target))?;
    let tmp = img.with_extension("tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;
    std::fs::copy(&built, tmp.join(t.file))
        .context(|| format!("cannot copy {}", built.display()))?;
    write(&tmp.join("config"), &config)?;
    let secs = sw.secs();
    write(
        &tmp.join("description.txt"),
        format!(
            "{} Linux {version} from Debian {SUITE} {SOURCE_PKG}, tinyconfig + {}, \
             built in {secs:.0} s{}\n",
            t.arch,
            t.fragment_name,
            if incremental { " (incremental)" } else { "" }
        ),
    )?;
    write(&tmp.join(".complete"), "")?;
    rmrf(img)?;
    std::fs::rename(&tmp, img).context(|| format!("cannot rename to {}", img.display()))?;
    say(format!(
        "built the {} eventfd dom0 kernel in {secs:.1} s",
        t.arch
    ));
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
    fn fragments_hold_the_point_of_the_kernel_and_only_settings_lines() {
        for (arch, transport) in [
            (Arch::X86_64, "CONFIG_VIRTIO_PCI=y"),
            (Arch::Aarch64, "CONFIG_VIRTIO_MMIO=y"),
        ] {
            let t = target(arch);
            let s: Vec<&str> = settings(t.fragment).collect();
            for want in [
                "CONFIG_XEN_PRIVCMD_EVENTFD=y",
                "CONFIG_XEN_VIRTIO=y",
                transport,
                "CONFIG_EVENTFD=y",
                "CONFIG_XEN_DOM0=y",
                "CONFIG_XEN_BACKEND=y",
                "CONFIG_XENFS=y",
                "CONFIG_HVC_XEN=y",
                "CONFIG_BLK_DEV_INITRD=y",
                "CONFIG_RD_ZSTD=y",
                "CONFIG_DEVTMPFS=y",
                "CONFIG_UNIX=y",
            ] {
                assert!(s.contains(&want), "{want} missing from {}", t.fragment_name);
            }
            // Every non-comment, non-blank line is a setting: a typo cannot hide.
            for l in t.fragment.lines().map(str::trim) {
                assert!(
                    l.is_empty() || l.starts_with('#') || l.starts_with("CONFIG_"),
                    "{}: {l}",
                    t.fragment_name
                );
            }
            // Each symbol is set once, so the merge cannot hide a contradiction.
            let mut syms: Vec<&str> = s.iter().filter_map(|l| symbol(l)).collect();
            let n = syms.len();
            syms.sort_unstable();
            syms.dedup();
            assert_eq!(syms.len(), n, "{} sets a symbol twice", t.fragment_name);
        }
    }

    #[test]
    fn cache_keys_differ_by_arch_and_x86_keeps_its_historic_key() {
        let deb = "linux-source-6.12_6.12.117-1_all.deb";
        let x86 = target(Arch::X86_64);
        let arm = target(Arch::Aarch64);
        let historic = Fnv::default()
            .add(RECIPE.as_bytes())
            .add(deb.as_bytes())
            .add(FRAGMENT_X86_64.as_bytes())
            .hex();
        assert_eq!(cache_key(&x86, deb), historic);
        assert_ne!(cache_key(&arm, deb), cache_key(&x86, deb));
        // The architectures never share a build or image directory.
        assert_ne!(x86.subdir, arm.subdir);
        assert!(arm.make_args.contains(&"ARCH=arm64"));
        assert!(arm.built.ends_with(arm.file) && x86.built.ends_with(x86.file));
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
