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
        let sources = host_mirrors()?.lines("deb", suite);
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
        self.closure_pruning(roots, &[])
    }

    /// The dependency closure of `roots`, minus the pruned packages and `also_prune` (whose
    /// dependencies are not followed either).
    pub fn closure_pruning(
        &self,
        roots: &[String],
        also_prune: &[&str],
    ) -> Result<BTreeSet<String>> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut frontier: Vec<String> = roots.to_vec();
        while !frontier.is_empty() {
            frontier.retain(|p| {
                !PRUNE.contains(&p.as_str())
                    && !also_prune.contains(&p.as_str())
                    && seen.insert(p.clone())
            });
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

    /// The .debs of the closure of `roots` (minus `also_prune`, see [`Apt::closure_pruning`])
    /// in `dest`, downloading the missing ones. Lists that were not fetched just now are
    /// refreshed once if that fails: old lists may name .debs the archive no longer serves.
    pub fn fetch_closure(
        &self,
        roots: &[String],
        also_prune: &[&str],
        dest: &Path,
    ) -> Result<Vec<PathBuf>> {
        let fresh = self.ensure_lists(false)?;
        let attempt = || -> Result<Vec<PathBuf>> {
            let pkgs: Vec<String> = self
                .closure_pruning(roots, also_prune)?
                .into_iter()
                .collect();
            Ok(self.fetch(&pkgs, dest)?.0)
        };
        match attempt() {
            Ok(debs) => Ok(debs),
            Err(e) if !fresh => {
                say(format!("{e}; refreshing the package lists and retrying"));
                self.ensure_lists(true)?;
                attempt()
            }
            Err(e) => Err(e),
        }
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

/// Debian's archive as this machine's apt sources name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    /// The archive of the releases and their `-updates` suites.
    pub main: String,
    /// The security archive, when the sources name one.
    pub security: Option<String>,
}

impl Mirrors {
    /// The `sources.list` lines of `kind` (`deb`, `deb-src`) for `suite`: the suite and its
    /// `-updates` from the main archive, `-security` when the machine has a security archive.
    pub fn lines(&self, kind: &str, suite: &str) -> String {
        let k = "signed-by=/usr/share/keyrings/debian-archive-keyring.gpg";
        let m = &self.main;
        let mut text =
            format!("{kind} [{k}] {m} {suite} main\n{kind} [{k}] {m} {suite}-updates main\n");
        if let Some(sec) = &self.security {
            text.push_str(&format!("{kind} [{k}] {sec} {suite}-security main\n"));
        }
        text
    }
}

/// Releases and aliases of Debian's archive, to tell its entries from other vendors'.
const DEBIAN_SUITES: &[&str] = &[
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "oldstable",
    "stable",
    "testing",
    "unstable",
    "experimental",
];

/// Whether `suite` (`bookworm`, `bookworm-updates`, `trixie-security`, ...) is Debian's.
fn is_debian_suite(suite: &str) -> bool {
    let base = suite.split(['-', '/']).next().unwrap_or(suite);
    DEBIAN_SUITES.contains(&base)
}

/// (URI, suites) of every enabled binary or source entry in apt sources: deb822 `.sources`
/// paragraphs and one-line `.list` entries.
fn source_entries(deb822: &[String], one_line: &[String]) -> Vec<(String, Vec<String>)> {
    let mut entries = Vec::new();
    for text in deb822 {
        for para in text.split("\n\n") {
            let field = |name: &str| {
                para.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            if field("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
                continue;
            }
            let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
                continue;
            };
            if let Some(uri) = uris.split_whitespace().next() {
                let suites = suites.split_whitespace().map(str::to_string).collect();
                entries.push((uri.to_string(), suites));
            }
        }
    }
    for text in one_line {
        for l in text.lines() {
            let l = l.split('#').next().unwrap_or("");
            // `deb [options] URI suite components...`; options may hold spaces inside [].
            let rest = match l.trim_start().split_once(char::is_whitespace) {
                Some(("deb" | "deb-src", rest)) => rest.trim_start(),
                _ => continue,
            };
            let rest = match rest.strip_prefix('[') {
                Some(r) => r.split_once(']').map_or("", |(_, after)| after),
                None => rest,
            };
            let mut w = rest.split_whitespace();
            if let (Some(uri), Some(suite)) = (w.next(), w.next()) {
                entries.push((uri.to_string(), vec![suite.to_string()]));
            }
        }
    }
    entries
}

/// Picks Debian's main and security archives from apt source entries.
fn mirrors_of(entries: &[(String, Vec<String>)]) -> Option<Mirrors> {
    let debian = |want_security: bool| {
        entries.iter().find_map(|(uri, suites)| {
            suites
                .iter()
                .any(|s| is_debian_suite(s) && s.contains("security") == want_security)
                .then(|| uri.trim_end_matches('/').to_string())
        })
    };
    Some(Mirrors {
        main: debian(false)?,
        security: debian(true),
    })
}

/// Debian's archive from this machine's apt sources (`/etc/apt/sources.list`,
/// `/etc/apt/sources.list.d/*.sources` and `*.list`): the box downloads every package from
/// there, and from nowhere else.
pub fn host_mirrors() -> Result<Mirrors> {
    let mut deb822 = Vec::new();
    let mut one_line = vec![std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let text = || std::fs::read_to_string(&f).unwrap_or_default();
            match f.extension().and_then(|e| e.to_str()) {
                Some("sources") => deb822.push(text()),
                Some("list") => one_line.push(text()),
                _ => {}
            }
        }
    }
    match mirrors_of(&source_entries(&deb822, &one_line)) {
        Some(m) => Ok(m),
        None => bail!(
            "this machine's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/) name \
             no Debian archive; the box takes every package from it: add Debian's archive to \
             the apt sources"
        ),
    }
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

    #[test]
    fn mirrors_come_from_debian_entries_only() {
        let deb822 = vec![
            "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\n\
             Suites: bookworm bookworm-updates\nComponents: main\n\n\
             Types: deb\nURIs: http://mirror.example/debian-security\n\
             Suites: bookworm-security\nComponents: main\n"
                .to_string(),
            "Types: deb\nURIs: https://vendor.example/deb/node\nSuites: nodistro\n".into(),
        ];
        let m = mirrors_of(&source_entries(&deb822, &[])).unwrap();
        assert_eq!(m.main, "http://mirror.example/debian");
        assert_eq!(
            m.security.as_deref(),
            Some("http://mirror.example/debian-security")
        );
        let lines = m.lines("deb-src", "trixie");
        assert!(lines.contains("http://mirror.example/debian trixie-updates main"));
        assert!(lines.contains("http://mirror.example/debian-security trixie-security main"));
    }

    #[test]
    fn one_line_sources_and_missing_archives() {
        let list = vec!["# deb http://old.example/debian bullseye main\n\
             deb https://vendor.example/apt cloud-sdk-bookworm main\n\
             deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main\n"
            .to_string()];
        let m = mirrors_of(&source_entries(&[], &list)).unwrap();
        assert_eq!(m.main, "http://m.example/debian");
        assert_eq!(m.security, None);
        assert!(!m.lines("deb", "trixie").contains("security"));
        let disabled = vec![
            "Enabled: no\nTypes: deb\nURIs: http://m.example/debian\nSuites: bookworm\n"
                .to_string(),
        ];
        assert_eq!(mirrors_of(&source_entries(&disabled, &[])), None);
        assert_eq!(mirrors_of(&[]), None);
    }
}
