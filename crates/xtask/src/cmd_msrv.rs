// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `cargo xtask msrv`: builds the workspace with the compiler its `rust-version` names, so that
//! the declared minimum is a fact and not a hope.
//!
//! The compiler is Debian's: the `rustc` and `cargo` packages of the suite that ships that
//! version, with their library closure, unpacked in the cache (nothing is installed) from the
//! Debian archive this machine's apt sources name. They were built against that suite's glibc,
//! which may be newer than the host's, so they run through the unpacked tree's own dynamic
//! loader; linking still uses the host's `cc` (rustc's default linker), which is why the C
//! toolchain packages are left out of the closure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::Apt;
use crate::host_qemu::tree_loader;
use crate::stack::cache_root;
use crate::util::{
    lock_dir, mkdirs, rmrf, run, say, shell_quote, workspace_root, write, Context, Result,
    Stopwatch,
};
use crate::{bail, err};

/// The Debian suite whose `rustc` is the workspace's declared minimum, per `rust-version`.
const SUITES: &[(&str, &str)] = &[("1.85", "trixie")];

/// Left out of the closure: the linker is the host's `cc`, and these would pull in a whole C
/// toolchain that the host's loader could not run anyway.
const NOT_NEEDED: &[&str] = &[
    "gcc",
    "binutils",
    "libc6-dev",
    "libc-dev",
    "clang",
    "rust-llvm",
];

/// Bumped whenever the unpacking recipe changes.
const RECIPE: &str = "msrv 1";

const USAGE: &str = "\
usage: cargo xtask msrv [--target-dir DIR] [-- CARGO BUILD ARGS]

Builds each crate of the workspace (all but xtask, a development tool) with
the compiler its rust-version names: the rustc and cargo of the Debian suite
that ships it (1.85: trixie), unpacked into <cache>/msrv/ from the Debian
archive of this machine's apt sources (nothing is installed), or else an
installed rustup toolchain of that version (never downloaded: a version with
neither is reported as SKIPPED), with all features.
The target directory defaults to <cache>/msrv/target (it must not be shared with
a newer compiler's builds). <cache> is $XEN_BOX_CACHE, default
$HOME/.cache/xen-rust-vmm/xen-box.
";

/// The `rust-version` a manifest's `[section]` declares itself (`None` for
/// `rust-version.workspace = true` or none at all).
fn rust_version_in(manifest: &str, section: &str) -> Option<String> {
    let mut in_section = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "rust-version" {
                return Some(value.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// The `rust-version` of `[workspace.package]` in the workspace's Cargo.toml.
fn workspace_rust_version(manifest: &str) -> Option<String> {
    rust_version_in(manifest, "[workspace.package]")
}

/// The `rust-version` a package manifest declares: its own, or `None` when it takes the
/// workspace's (`rust-version.workspace = true`) or declares none.
fn package_rust_version(manifest: &str) -> Option<String> {
    rust_version_in(manifest, "[package]")
}

/// Whether a Debian package version (`1.85.1+dfsg1-1+deb13u1`) is of Rust `release` (`1.85`).
fn is_release(deb_version: &str, release: &str) -> bool {
    deb_version
        .strip_prefix(release)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '+', '-', '~']))
}

/// The version part of a .deb file name (`rustc_1.85.1+dfsg1-1+deb13u1_amd64.deb`); apt writes
/// an epoch's colon as `%3a`.
fn deb_file_version(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    let version = name.split('_').nth(1)?;
    let version = version.replace("%3a", ":");
    Some(match version.split_once(':') {
        Some((_, v)) => v.to_string(),
        None => version,
    })
}

/// The unpacked tree of `suite`'s rustc and cargo, made once per recipe and set of .debs.
fn unpacked(suite: &str, release: &str) -> Result<PathBuf> {
    let base = cache_root().join("msrv");
    mkdirs(&base)?;
    let _lock = lock_dir(&base)?;
    let apt = Apt::new(&base.join("apt"), suite)?;
    let roots = ["rustc".to_string(), "cargo".to_string()];
    let debs = apt.fetch_closure(&roots, NOT_NEEDED, &base.join("debs"))?;
    let rustc_deb = debs
        .iter()
        .find(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rustc_"))
        })
        .ok_or_else(|| err!("the closure of rustc has no rustc .deb"))?;
    let rustc_version = deb_file_version(rustc_deb).unwrap_or_default();
    if !is_release(&rustc_version, release) {
        bail!(
            "Debian {suite} ships rustc {rustc_version}, not the workspace's rust-version \
             {release}: update the suite table in crates/xtask/src/cmd_msrv.rs"
        );
    }
    let mut names: Vec<String> = debs
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let stamp = format!("{RECIPE}\n{}\n", names.join("\n"));
    let root = base.join("root");
    let marker = root.join(".complete");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(root);
    }
    say(format!(
        "unpacking Debian {suite}'s rustc {rustc_version} and cargo ({} .debs) into {}",
        debs.len(),
        root.display()
    ));
    let tmp = base.join("root.tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;
    for deb in &debs {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp))?;
    }
    rmrf(&root)?;
    std::fs::rename(&tmp, &root).context(|| format!("cannot rename {}", tmp.display()))?;
    write(&marker, stamp)?;
    Ok(root)
}

/// Writes `<root>/wrap/{rustc,cargo}`: each runs the unpacked program through the tree's own
/// loader. rustc is told its sysroot, as it would otherwise derive it from its executable's
/// path, which is the loader's.
fn write_wrappers(root: &Path) -> Result<PathBuf> {
    let (loader, libs) = tree_loader(root)?;
    let wrap = root.join("wrap");
    mkdirs(&wrap)?;
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let rustc = format!(
        "#!/bin/sh\nexec {} --library-path {} {} --sysroot {} \"$@\"\n",
        q(&loader),
        shell_quote(&libs),
        q(&root.join("usr/bin/rustc")),
        q(&root.join("usr")),
    );
    let cargo = format!(
        "#!/bin/sh\nexec {} --library-path {} {} \"$@\"\n",
        q(&loader),
        shell_quote(&libs),
        q(&root.join("usr/bin/cargo")),
    );
    for (name, text) in [("rustc", rustc), ("cargo", cargo)] {
        let path = wrap.join(name);
        write(&path, text)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(wrap)
}

/// The workspace's crates (but xtask) grouped by the rust-version they declare, lowest first.
fn crates_by_rust_version(
    ws: &Path,
    workspace_version: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let dir = ws.join("crates");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "xtask")
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name).join("Cargo.toml");
        let manifest =
            std::fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
        let version =
            package_rust_version(&manifest).unwrap_or_else(|| workspace_version.to_string());
        match groups.iter_mut().find(|(v, _)| *v == version) {
            Some((_, crates)) => crates.push(name),
            None => groups.push((version, vec![name])),
        }
    }
    groups.sort_by_key(|(v, _)| {
        v.split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    Ok(groups)
}

/// A cargo command of Rust `release`: Debian's (unpacked) when a suite ships it, else a rustup
/// toolchain of that release that is already installed, else `None`. Nothing is ever
/// downloaded outside Debian's archive: a toolchain rustup would fetch is not one of the
/// project's download sources, so a release Debian does not ship is checked only where a
/// contributor has its toolchain.
fn cargo_of(release: &str) -> Result<Option<(Command, String)>> {
    if let Some(&(_, suite)) = SUITES.iter().find(|(r, _)| *r == release) {
        let root = unpacked(suite, release)?;
        let wrap = write_wrappers(&root)?;
        let mut cargo = Command::new(wrap.join("cargo"));
        cargo.env("RUSTC", wrap.join("rustc"));
        return Ok(Some((cargo, format!("Debian {suite}'s rustc {release}"))));
    }
    let installed = Command::new("rustup")
        .args(["run", release, "rustc", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return Ok(None);
    }
    let mut cargo = Command::new("rustup");
    cargo.args(["run", release, "cargo"]);
    Ok(Some((cargo, format!("rustup's installed rustc {release}"))))
}

/// `cargo xtask msrv [--target-dir DIR] [-- ARGS]`.
pub fn main(args: &[String]) -> Result<i32> {
    let mut target_dir = cache_root().join("msrv/target");
    let mut extra: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "help" | "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            "--target-dir" => {
                i += 1;
                let Some(dir) = args.get(i) else {
                    bail!("--target-dir needs a value");
                };
                target_dir = PathBuf::from(dir);
            }
            "--" => {
                extra = args[i + 1..].to_vec();
                break;
            }
            a => bail!("unknown msrv argument `{a}` (see `cargo xtask msrv help`)"),
        }
        i += 1;
    }
    let ws = workspace_root();
    let manifest = std::fs::read_to_string(ws.join("Cargo.toml"))
        .context(|| format!("cannot read {}/Cargo.toml", ws.display()))?;
    let workspace_version = workspace_rust_version(&manifest).ok_or_else(|| {
        err!("the workspace's Cargo.toml has no [workspace.package] rust-version")
    })?;
    let timer = Stopwatch::start();
    let mut skipped = Vec::new();
    for (release, crates) in crates_by_rust_version(&ws, &workspace_version)? {
        let Some((mut build, which)) = cargo_of(&release)? else {
            say(format!(
                "SKIPPED: msrv {release} ({}): no Debian suite ships rustc {release} and no \
                 rustup toolchain of it is installed (the check fetches compilers from Debian's \
                 archive only); `rustup toolchain install {release}` makes it run here",
                crates.join(" ")
            ));
            skipped.push(release);
            continue;
        };
        say(format!("msrv: {which}: {}", crates.join(" ")));
        build
            .current_dir(&ws)
            .env("CARGO_TARGET_DIR", &target_dir)
            // The toolchain `cargo xtask` runs under must not leak in.
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO")
            // Whether the code compiles is the question; warnings differ between compilers
            // (lints come and go), and the checks hold the current compiler to -D warnings.
            .env_remove("RUSTFLAGS")
            // Features (test-utils) are part of what a crate promises to build.
            .args(["build", "--locked", "--all-features"]);
        if !build.get_envs().any(|(k, _)| k == "RUSTC") {
            build.env_remove("RUSTC");
        }
        for c in &crates {
            build.args(["-p", c]);
        }
        build.args(&extra);
        run(&mut build)?;
        say(format!("msrv: built with {which}"));
    }
    if skipped.is_empty() {
        say(format!(
            "msrv: every crate builds with the rustc its rust-version names ({:.0} s)",
            timer.secs()
        ));
    } else {
        say(format!(
            "msrv: the other crates build with the rustc their rust-version names; not checked \
             here: {} ({:.0} s)",
            skipped.join(", "),
            timer.secs()
        ));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_version_is_read_from_workspace_package_only() {
        let manifest = "[package]\nrust-version = \"1.99\"\n\n[workspace.package]\n\
                        edition = \"2021\"\nrust-version = \"1.85\"\n\n[workspace.dependencies]\n";
        assert_eq!(workspace_rust_version(manifest).as_deref(), Some("1.85"));
        assert_eq!(
            workspace_rust_version("[package]\nrust-version = \"1.85\"\n"),
            None
        );
    }

    #[test]
    fn a_package_declares_its_own_rust_version_or_none() {
        let own = "[package]\nname = \"a\"\nrust-version = \"1.87\"\n[dependencies]\n";
        assert_eq!(package_rust_version(own).as_deref(), Some("1.87"));
        let inherited = "[package]\nrust-version.workspace = true\n";
        assert_eq!(package_rust_version(inherited), None);
    }

    #[test]
    fn debian_versions_match_their_rust_release_only() {
        assert!(is_release("1.85.1+dfsg1-1+deb13u1", "1.85"));
        assert!(is_release("1.85.0+dfsg1-1", "1.85"));
        assert!(!is_release("1.850.0", "1.85"));
        assert!(!is_release("1.86.0+dfsg1-1", "1.85"));
    }

    #[test]
    fn deb_file_names_give_their_version_without_epoch() {
        let v = |n: &str| deb_file_version(Path::new(n));
        assert_eq!(
            v("/c/rustc_1.85.1+dfsg1-1+deb13u1_amd64.deb").as_deref(),
            Some("1.85.1+dfsg1-1+deb13u1")
        );
        assert_eq!(v("x_1%3a2.0-1_all.deb").as_deref(), Some("2.0-1"));
    }
}
