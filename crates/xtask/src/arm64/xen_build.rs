// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Rebuilds Debian's arm64 Xen hypervisor with the IOREQ server.
//!
//! Debian builds its arm64 hypervisor without `CONFIG_IOREQ_SERVER` (on Arm
//! the option needs `CONFIG_EXPERT`), so device models in dom0 cannot serve
//! guest MMIO. We take Debian's own source package and Debian's own config
//! (shipped next to the binary), switch on `EXPERT` + `IOREQ_SERVER` and build
//! only the hypervisor with the host's `aarch64-linux-gnu-gcc` (about 30 s).
//!
//! The newest listed source version whose tarballs the archive serves is used
//! (the lists sometimes name a version whose files are not served yet, or no
//! longer name one whose files still are: then a known version is fetched by
//! file name, its checksums pinned here); the result is cached under
//! `<cache>/xen-ioreq/<source version>-<config hash>/xen`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{mkdirs, output, rmrf, run, say, write, Context, Fnv, Result, Stopwatch};
use crate::{bail, err};

/// Bumped whenever the rebuild recipe changes.
const RECIPE: &str = "xen-box arm64 hypervisor rebuild 1";

/// An apt configuration holding only the suite's source lists.
struct SrcApt {
    dir: PathBuf,
}

impl SrcApt {
    fn new(dir: &Path, suite: &str) -> Result<SrcApt> {
        for d in ["lists/partial", "cache/archives/partial"] {
            mkdirs(&dir.join(d))?;
        }
        if !dir.join("status").exists() {
            write(&dir.join("status"), "")?;
        }
        let text = crate::apt::host_mirrors()?.lines("deb-src", suite);
        let path = dir.join("sources.list");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            write(&path, text)?;
            let _ = std::fs::remove_file(dir.join("lists/.complete"));
        }
        Ok(SrcApt {
            dir: dir.to_path_buf(),
        })
    }

    fn cmd(&self, prog: &str) -> Command {
        let d = self.dir.display();
        let mut c = Command::new(prog);
        for o in [
            format!("Dir::Etc::SourceList={d}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".into(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            format!("Dir::State::status={d}/status"),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
            "Acquire::Languages=none".into(),
            "Acquire::Retries=3".into(),
        ] {
            c.arg("-o").arg(o);
        }
        c
    }

    fn ensure_lists(&self) -> Result<()> {
        let marker = self.dir.join("lists/.complete");
        if !marker.exists() {
            say("apt-get update (source lists)");
            run(self.cmd("apt-get").args(["update", "-q"]))?;
            write(&marker, "")?;
        }
        Ok(())
    }

    /// Versions of source package `xen`, newest first.
    fn versions(&self) -> Result<Vec<String>> {
        let out = output(self.cmd("apt-cache").args(["showsrc", "xen"]))?;
        Ok(newest_first(parse_versions(&out)))
    }
}

/// The distinct `Version:` fields of `apt-cache showsrc` output.
fn parse_versions(showsrc: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for x in showsrc
        .lines()
        .filter_map(|l| l.strip_prefix("Version: "))
        .map(|s| s.trim().to_string())
    {
        if !v.contains(&x) {
            v.push(x);
        }
    }
    v
}

/// Sorts Debian versions newest first (insertion sort with dpkg's comparison).
fn newest_first(v: Vec<String>) -> Vec<String> {
    let mut sorted: Vec<String> = Vec::new();
    for x in v {
        let pos = sorted
            .iter()
            .position(|y| version_gt(&x, y))
            .unwrap_or(sorted.len());
        sorted.insert(pos, x);
    }
    sorted
}

fn version_gt(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .is_ok_and(|s| s.success())
}

fn find_file(dir: &Path, pred: impl Fn(&str) -> bool) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| pred(&n.to_string_lossy())))
}

/// A source version whose two tarballs are fetched by file name from the
/// archive's pool when the source lists no longer name it: the archive keeps
/// serving a version's files for a while after a newer one replaced it in the
/// lists, sometimes before the newer one's files are served. The SHA-256 of
/// each file is pinned here, since no signed list vouches for it any more.
struct KnownSource {
    suite: &'static str,
    version: &'static str,
    /// (file name, SHA-256) of the orig tarball.
    orig: (&'static str, &'static str),
    /// (file name, SHA-256) of the debian tarball.
    debian: (&'static str, &'static str),
}

/// Versions known to build, newest first per suite.
const KNOWN: &[KnownSource] = &[
    KnownSource {
        suite: "trixie",
        version: "4.20.3+127-gc42374a105-0+deb13u1",
        orig: (
            "xen_4.20.3+127-gc42374a105.orig.tar.xz",
            "df0831854a55a8f31cb3cb85036f2edc928e2ef098d77f815f5714bfafac68f3",
        ),
        debian: (
            "xen_4.20.3+127-gc42374a105-0+deb13u1.debian.tar.xz",
            "b1f909d626f3d4ba6965ba291dd97b0dfbbe48bb8e2510913cbc1760c5e8cb3e",
        ),
    },
    KnownSource {
        suite: "bookworm",
        version: "4.17.5+72-g01140da4e8-1",
        orig: (
            "xen_4.17.5+72-g01140da4e8.orig.tar.xz",
            "53922f4d0a02c577f2ea9d63f65989cd88715779eebeed879ca1d314103ee06e",
        ),
        debian: (
            "xen_4.17.5+72-g01140da4e8-1.debian.tar.xz",
            "5bcf3812c64585e270e0b3fa6ee8fd16dff7b9bc0f61375d648c64672484c4d9",
        ),
    },
];

/// Where the pool keeps source package `xen` in the main and the security archive.
const POOLS: &[(bool, &str)] = &[
    (false, "pool/main/x/xen"),
    (true, "pool/updates/main/x/xen"),
];

/// Downloads `name` from the pools of the host's archives into `dir`, checked
/// against `sha256` by apt's own downloader. Returns the reasons of the failures.
fn fetch_by_name(dir: &Path, name: &str, sha256: &str) -> std::result::Result<PathBuf, String> {
    let mirrors = crate::apt::host_mirrors().map_err(|e| e.to_string())?;
    let dest = dir.join(name);
    let mut tried = Vec::new();
    for (security, pool) in POOLS {
        let base = if *security {
            match &mirrors.security {
                Some(s) => s,
                None => continue,
            }
        } else {
            &mirrors.main
        };
        let uri = format!("{base}/{pool}/{name}");
        let out = Command::new("/usr/lib/apt/apt-helper")
            .args(["download-file", &uri])
            .arg(&dest)
            .arg(format!("SHA256:{sha256}"))
            .output();
        match out {
            Ok(o) if o.status.success() && dest.is_file() => return Ok(dest),
            Ok(o) => tried.push(format!(
                "{uri}: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("failed")
                    .trim()
            )),
            Err(e) => tried.push(format!("{uri}: cannot run apt-helper: {e}")),
        }
        let _ = std::fs::remove_file(&dest);
    }
    Err(tried.join("; "))
}

/// Downloads (or finds cached) the orig and debian tarballs of a source
/// version: the newest that the lists name and the archive serves, else a
/// [`KNOWN`] version fetched by name. Returns (version, orig, debian); the
/// error names every version tried and why it failed.
fn source(cache: &Path, suite: &str) -> Result<(String, PathBuf, PathBuf)> {
    let dl = cache.join("src");
    // A previous success is recorded, so a warm run needs no lists at all.
    if let Ok(v) = std::fs::read_to_string(dl.join("chosen")) {
        let v = v.trim().to_string();
        let d = dl.join(&v);
        if let (Some(o), Some(db)) = (
            find_file(&d, |n| n.contains(".orig.tar.")),
            find_file(&d, |n| n.contains(".debian.tar.")),
        ) {
            return Ok((v, o, db));
        }
    }
    let mut tried: Vec<String> = Vec::new();
    let listed = SrcApt::new(&cache.join("src-apt"), suite).and_then(|apt| {
        apt.ensure_lists()?;
        Ok((apt.versions()?, apt))
    });
    match listed {
        Err(e) => tried.push(format!("the {suite} source lists: {e}")),
        Ok((versions, _)) if versions.is_empty() => tried.push(format!(
            "the {suite} source lists name no source package `xen`"
        )),
        Ok((versions, apt)) => {
            for v in &versions {
                let d = dl.join(v);
                mkdirs(&d)?;
                say(format!("downloading Xen source {v} (listed)"));
                // The .dsc may be missing on the mirror while the tarballs are there:
                // judge by the tarballs, not by apt's exit status.
                let _ = apt
                    .cmd("apt-get")
                    .current_dir(&d)
                    .args(["source", "--download-only", "-q"])
                    .arg(format!("xen={v}"))
                    .status();
                if let (Some(o), Some(db)) = (
                    find_file(&d, |n| n.contains(".orig.tar.") && !n.ends_with(".asc")),
                    find_file(&d, |n| n.contains(".debian.tar.")),
                ) {
                    write(&dl.join("chosen"), v)?;
                    return Ok((v.clone(), o, db));
                }
                say(format!(
                    "Xen source {v} is listed but its files are not served"
                ));
                tried.push(format!("{v} (listed): its files are not served"));
                rmrf(&d)?;
            }
        }
    }
    for k in KNOWN.iter().filter(|k| k.suite == suite) {
        if tried
            .iter()
            .any(|t| t.starts_with(&format!("{} ", k.version)))
        {
            continue;
        }
        let d = dl.join(k.version);
        mkdirs(&d)?;
        say(format!(
            "downloading Xen source {} (known, by file name)",
            k.version
        ));
        let got = fetch_by_name(&d, k.orig.0, k.orig.1)
            .and_then(|o| Ok((o, fetch_by_name(&d, k.debian.0, k.debian.1)?)));
        match got {
            Ok((o, db)) => {
                write(&dl.join("chosen"), k.version)?;
                return Ok((k.version.to_string(), o, db));
            }
            Err(why) => {
                say(format!(
                    "Xen source {} could not be fetched: {why}",
                    k.version
                ));
                tried.push(format!("{} (known): {why}", k.version));
                rmrf(&d)?;
            }
        }
    }
    bail!(
        "no Xen source for {suite} could be had; tried:\n  {}",
        tried.join("\n  ")
    )
}

/// Whether the Xen source the aarch64 box of `suite` is rebuilt from can be
/// had (it is downloaded and cached if so): `Err` carries why not.
pub fn source_available(cache: &Path, suite: &str) -> std::result::Result<String, String> {
    source(cache, suite)
        .map(|(v, _, _)| v)
        .map_err(|e| e.to_string())
}

/// Returns the IOREQ-enabled hypervisor for the unpacked Debian hypervisor
/// package in `deb_root` (which holds `boot/xen-<v>-arm64.config`).
pub fn hypervisor(
    cache: &Path,
    suite: &str,
    xen_version: &str,
    deb_root: &Path,
) -> Result<(PathBuf, String)> {
    let cfg_path = deb_root.join(format!("boot/xen-{xen_version}-arm64.config"));
    let config = std::fs::read_to_string(&cfg_path)
        .context(|| format!("cannot read Debian's Xen config {}", cfg_path.display()))?;
    let (version, orig, debian) = source(cache, suite)?;
    let mut h = Fnv::default();
    h.add(RECIPE.as_bytes()).add(config.as_bytes());
    let key = format!("{version}-{}", h.hex());
    let out_dir = cache.join("xen-ioreq").join(&key);
    let xen = out_dir.join("xen");
    if xen.is_file() {
        return Ok((xen, version));
    }
    let sw = Stopwatch::start();
    say(format!(
        "rebuilding the arm64 hypervisor from Debian's Xen {version} with CONFIG_IOREQ_SERVER"
    ));
    let work = cache.join("xen-build");
    rmrf(&work)?;
    mkdirs(&work)?;
    run(Command::new("tar")
        .arg("xf")
        .arg(&orig)
        .arg("-C")
        .arg(&work))?;
    let top = std::fs::read_dir(&work)
        .context(|| format!("cannot list {}", work.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or_else(|| err!("{} unpacked to nothing", orig.display()))?;
    run(Command::new("tar")
        .arg("xf")
        .arg(&debian)
        .arg("-C")
        .arg(&top))?;
    // Debian's patches, in series order (as Debian builds it).
    let series = std::fs::read_to_string(top.join("debian/patches/series")).unwrap_or_default();
    for p in series.lines().map(str::trim) {
        if p.is_empty() || p.starts_with('#') {
            continue;
        }
        let patch = top.join("debian/patches").join(p);
        let f = std::fs::File::open(&patch)
            .context(|| format!("cannot open Debian patch {}", patch.display()))?;
        run(Command::new("patch")
            .args(["-p1", "-s", "-f"])
            .current_dir(&top)
            .stdin(f))
        .map_err(|e| err!("Debian patch {p} does not apply: {e}"))?;
    }
    let src = top.join("xen");
    let mut cfg = config.replace("# CONFIG_EXPERT is not set", "CONFIG_EXPERT=y");
    cfg.push_str("CONFIG_IOREQ_SERVER=y\n");
    write(&src.join(".config"), cfg)?;
    let make = |target: Option<&str>| {
        let mut c = Command::new("make");
        c.current_dir(&src)
            .args(["XEN_TARGET_ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"]);
        if let Some(t) = target {
            c.arg(t);
        }
        c
    };
    run(&mut make(Some("olddefconfig")))?;
    let final_cfg = std::fs::read_to_string(src.join(".config")).unwrap_or_default();
    for opt in ["CONFIG_EXPERT=y", "CONFIG_IOREQ_SERVER=y"] {
        if !final_cfg.lines().any(|l| l == opt) {
            bail!("Xen {version}: {opt} did not survive olddefconfig");
        }
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let log = work.join("build.log");
    let logf =
        std::fs::File::create(&log).context(|| format!("cannot create {}", log.display()))?;
    let logf2 = logf.try_clone().context(|| "dup build log".into())?;
    let st = make(None)
        .arg(format!("-j{jobs}"))
        .stdout(logf)
        .stderr(logf2)
        .status()
        .context(|| "cannot start make for Xen".into())?;
    if !st.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!(
            "building Xen {version} for arm64 failed with {st}; last lines of {}:\n{}",
            log.display(),
            crate::util::tail(&text, 30)
        );
    }
    mkdirs(&out_dir)?;
    let tmp = out_dir.join("xen.tmp");
    std::fs::copy(src.join("xen"), &tmp).context(|| "cannot copy the built hypervisor".into())?;
    std::fs::rename(&tmp, &xen).context(|| "cannot rename the built hypervisor".into())?;
    rmrf(&work)?;
    // Keep only the current build.
    if let Ok(rd) = std::fs::read_dir(cache.join("xen-ioreq")) {
        for e in rd.flatten() {
            if e.file_name() != key.as_str() {
                let _ = rmrf(&e.path());
            }
        }
    }
    say(format!(
        "arm64 hypervisor {version} with IOREQ built in {:.1} s",
        sw.secs()
    ));
    Ok((xen, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showsrc_versions_are_distinct_and_sorted_newest_first() {
        let out = "Package: xen\nVersion: 4.17.5+72-g01140da4e8-1\nDirectory: pool/main/x/xen\n\n\
                   Package: xen\nVersion: 4.17.7+13-g2445b30a44-0+deb12u1\n\n\
                   Package: xen\nVersion: 4.17.5+72-g01140da4e8-1\n";
        let v = parse_versions(out);
        assert_eq!(
            v,
            ["4.17.5+72-g01140da4e8-1", "4.17.7+13-g2445b30a44-0+deb12u1"]
        );
        if Command::new("dpkg").arg("--version").output().is_err() {
            eprintln!("SKIPPED: version ordering: dpkg is not installed");
            return;
        }
        let sorted = newest_first(vec![
            "4.20.3+127-gc42374a105-0+deb13u1".into(),
            "4.20.4+63-g7abfd2bce2-0+deb13u1".into(),
            "4.20.0-1".into(),
        ]);
        assert_eq!(
            sorted,
            [
                "4.20.4+63-g7abfd2bce2-0+deb13u1",
                "4.20.3+127-gc42374a105-0+deb13u1",
                "4.20.0-1"
            ]
        );
    }
}
