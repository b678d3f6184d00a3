// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! An isolated apt configuration per Debian suite: its own sources.list, package
//! lists, archive cache and an empty dpkg status, so that packages of any suite
//! can be resolved and downloaded without touching (or installing anything on)
//! the host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bail;
use crate::util::{mkdirs, output, run, say, write, Result};

/// Packages whose dependencies are never followed and which are not unpacked:
/// the dom0 runs busybox as init, so maintainer-script machinery, udev and the
/// Python parts of the Xen tools are dead weight.
const PRUNE: &[&str] = &[
    "python3",
    "python3-minimal",
    "udev",
    "ucf",
    "sysvinit-utils",
    "lsb-base",
    "debconf",
    "debconf-2.0",
    "systemd",
    "perl-base",
    "dpkg",
    "init-system-helpers",
    "initramfs-tools",
    "linux-base",
    "kmod",
    "coreutils",
];

/// An apt configuration rooted in `dir` for one suite.
pub struct Apt {
    dir: PathBuf,
    suite: String,
    arch: &'static str,
}

impl Apt {
    /// Prepares `<dir>` for `suite` (writes sources.list, creates the directories).
    pub fn new(dir: &Path, suite: &str) -> Result<Apt> {
        Apt::new_arch(dir, suite, "amd64")
    }

    /// Like [`Apt::new`], for Debian architecture `arch` (amd64, arm64).
    pub fn new_arch(dir: &Path, suite: &str, arch: &'static str) -> Result<Apt> {
        let apt = Apt {
            dir: dir.to_path_buf(),
            suite: suite.to_string(),
            arch,
        };
        for d in ["lists/partial", "cache/archives/partial", "prefs.d"] {
            mkdirs(&dir.join(d))?;
        }
        let status = dir.join("status");
        if !status.exists() {
            write(&status, "")?;
        }
        let (mirror, security) = host_mirrors();
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        let sources = format!(
            "deb [signed-by={keyring}] {mirror} {suite} main\n\
             deb [signed-by={keyring}] {mirror} {suite}-updates main\n\
             deb [signed-by={keyring}] {security} {suite}-security main\n"
        );
        let path = dir.join("sources.list");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(sources.as_str()) {
            write(&path, sources)?;
            // New sources invalidate the lists.
            let _ = std::fs::remove_file(dir.join("lists/.complete"));
        }
        Ok(apt)
    }

    fn opts(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            format!("Dir::Etc::SourceList={d}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".into(),
            "Dir::Etc::Preferences=/dev/null".into(),
            format!("Dir::Etc::PreferencesParts={d}/prefs.d"),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            format!("Dir::State::status={d}/status"),
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures::={}", self.arch),
            // Our lists and status are private: the host's dpkg lock is irrelevant.
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
            "Acquire::Languages=none".into(),
            "Acquire::Retries=3".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.args(self.opts());
        c
    }

    /// Downloads the package lists if they are missing (or `force`).
    /// Returns true if it downloaded.
    pub fn ensure_lists(&self, force: bool) -> Result<bool> {
        let marker = self.dir.join("lists/.complete");
        if marker.exists() && !force {
            return Ok(false);
        }
        say(format!("apt-get update ({} package lists)", self.suite));
        run(self.cmd("apt-get").args(["update", "-q"]))?;
        write(&marker, "")?;
        Ok(true)
    }

    /// Direct dependencies (Depends + Pre-Depends, first alternative, virtual
    /// packages resolved to their first provider) of each package.
    fn depends(&self, pkgs: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
        let out = output(
            self.cmd("apt-cache")
                .args([
                    "depends",
                    "--no-recommends",
                    "--no-suggests",
                    "--no-conflicts",
                    "--no-breaks",
                    "--no-replaces",
                    "--no-enhances",
                ])
                .args(pkgs),
        )?;
        Ok(parse_depends(&out))
    }

    /// The dependency closure of `roots`, minus the pruned packages.
    pub fn closure(&self, roots: &[String]) -> Result<BTreeSet<String>> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut frontier: Vec<String> = roots.to_vec();
        while !frontier.is_empty() {
            frontier.retain(|p| !PRUNE.contains(&p.as_str()) && seen.insert(p.clone()));
            if frontier.is_empty() {
                break;
            }
            let deps = self.depends(&frontier)?;
            for p in &frontier {
                if !deps.contains_key(p) {
                    bail!("package `{p}` not found in the {} lists", self.suite);
                }
            }
            frontier = deps.into_values().flatten().collect();
        }
        Ok(seen)
    }

    /// The first dependency of `pkg` that starts with `prefix` (for example the
    /// versioned kernel package behind `linux-image-amd64`).
    pub fn dependency_with_prefix(&self, pkg: &str, prefix: &str) -> Result<String> {
        let deps = self.depends(&[pkg.to_string()])?;
        match deps
            .get(pkg)
            .and_then(|d| d.iter().find(|n| n.starts_with(prefix)))
        {
            Some(n) => Ok(n.clone()),
            None => bail!("`{pkg}` has no dependency starting with `{prefix}`"),
        }
    }

    /// The .deb file names apt would download for `pkgs` (candidate versions).
    pub fn deb_names(&self, pkgs: &[String]) -> Result<Vec<String>> {
        let out = output(
            self.cmd("apt-get")
                .args(["download", "--print-uris"])
                .args(pkgs),
        )?;
        // apt does not keep the argument order: match files to packages.
        let files: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        let mut names = Vec::new();
        for p in pkgs {
            let prefix = format!("{p}_");
            match files.iter().find(|f| f.starts_with(&prefix)) {
                Some(f) => names.push(f.to_string()),
                None => bail!("apt-get download --print-uris gave no file for `{p}`"),
            }
        }
        Ok(names)
    }

    /// Makes sure the candidate .debs of `pkgs` are in `dest`; downloads only
    /// the missing ones. Returns their paths and how many were downloaded.
    pub fn fetch(&self, pkgs: &[String], dest: &Path) -> Result<(Vec<PathBuf>, usize)> {
        mkdirs(dest)?;
        let names = self.deb_names(pkgs)?;
        let missing: Vec<String> = pkgs
            .iter()
            .zip(&names)
            .filter(|(_, n)| !dest.join(n).is_file())
            .map(|(p, _)| p.clone())
            .collect();
        if !missing.is_empty() {
            say(format!(
                "downloading {} .debs ({})",
                missing.len(),
                self.suite
            ));
            run(self
                .cmd("apt-get")
                .current_dir(dest)
                .args(["download", "-q"])
                .args(&missing))?;
        }
        let paths: Vec<PathBuf> = names.iter().map(|n| dest.join(n)).collect();
        for p in &paths {
            if !p.is_file() {
                bail!("{} missing after apt-get download", p.display());
            }
        }
        Ok((paths, missing.len()))
    }
}

/// Parses `apt-cache depends` output.
fn parse_depends(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    let mut in_alt = false;
    let mut want_provider = false;
    for line in out.lines() {
        if !line.starts_with(' ') {
            let name = line.trim().to_string();
            map.entry(name.clone()).or_default();
            cur = Some(name);
            in_alt = false;
            want_provider = false;
            continue;
        }
        let Some(cur) = cur.as_ref() else { continue };
        let t = line.trim_start();
        let (alt, t) = match t.strip_prefix('|') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let dep = t
            .strip_prefix("Depends: ")
            .or_else(|| t.strip_prefix("PreDepends: "));
        match dep {
            Some(d) => {
                let skip = in_alt;
                in_alt = alt;
                want_provider = false;
                if skip {
                    continue;
                }
                if d.starts_with('<') {
                    want_provider = true;
                } else {
                    let n = d.split(':').next().unwrap_or(d).to_string();
                    map.entry(cur.clone()).or_default().push(n);
                }
            }
            None if want_provider && !t.contains(':') => {
                // First provider of a virtual package.
                want_provider = false;
                map.entry(cur.clone())
                    .or_default()
                    .push(t.trim().to_string());
            }
            None => {}
        }
    }
    map
}

/// The host's Debian mirror and security mirror, from its apt sources
/// (deb822 `URIs:` lines or one-line `deb` entries).
pub fn host_mirrors() -> (String, String) {
    let mut uris = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "sources") {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                for l in text.lines() {
                    if let Some(u) = l.strip_prefix("URIs:") {
                        uris.extend(u.split_whitespace().map(str::to_string));
                    }
                }
            }
        }
    }
    let text = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for l in text.lines() {
        let mut w = l.split_whitespace().filter(|w| !w.starts_with('['));
        if w.next() == Some("deb") {
            if let Some(u) = w.next() {
                uris.push(u.to_string());
            }
        }
    }
    let debian = |u: &&String| u.contains("debian") || u.contains("/deb");
    let security = uris
        .iter()
        .filter(debian)
        .find(|u| u.contains("security"))
        .cloned()
        .unwrap_or_else(|| "http://deb.debian.org/debian-security".into());
    let mirror = uris
        .iter()
        .filter(debian)
        .find(|u| !u.contains("security"))
        .cloned()
        .unwrap_or_else(|| "http://deb.debian.org/debian".into());
    (
        mirror.trim_end_matches('/').into(),
        security.trim_end_matches('/').into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_parsing_takes_first_alternative_and_provider() {
        let out = "xen-utils-common\n  Depends: udev\n |Depends: sysvinit-utils\n  Depends: lsb-base\n  Depends: <python3:any>\n    python3\n  Depends: libc6:any\nlibc6\n  PreDepends: libgcc-s1\n";
        let m = parse_depends(out);
        assert_eq!(
            m["xen-utils-common"],
            vec!["udev", "sysvinit-utils", "python3", "libc6"]
        );
        assert_eq!(m["libc6"], vec!["libgcc-s1"]);
    }
}
