// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `cargo xtask vhost-device build`: the unmodified vhost-user daemons
//! (`vhost-device-rng`, `vhost-device-vsock`) at pinned versions, fetched and
//! built by `cargo install --locked` from cargo's default registry, for
//! x86_64 (host toolchain) or aarch64 (Debian's rustc-web and the arm64 cross
//! linker, as in [`crate::arm64::cross`]).
//!
//! Each build is cached under
//! `<cache root>/vhost-device/<crate>-<version>/<arch>[+<feature>...]/bin/<crate>`
//! and reused; `<cache root>/vhost-device/target/<arch>/` keeps cargo's build
//! directory so that another feature set recompiles only what changed. A
//! build is made in a `.tmp` directory and renamed into place only once the
//! binary is there and is an ELF file for the right machine.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::arch::Arch;
use crate::stack::cache_root;
use crate::util::{lock_dir, mkdirs, rmrf, say, show, tail, write, Context, Result, Stopwatch};
use crate::{bail, err};

/// A daemon, pinned to one published version.
pub struct Daemon {
    /// Crate (and binary) name.
    pub name: &'static str,
    /// Pinned version; its published Cargo.lock is used (`--locked`).
    pub version: &'static str,
}

/// The daemons the harness builds. vhost-device-rng has a single published
/// version (0.1.0: vhost 0.8, vhost-user-backend 0.10, vm-memory 0.12);
/// vhost-device-vsock 0.3.0 is the newest (vhost 0.14, vhost-user-backend
/// 0.20, vm-memory 0.16). Both ship a Cargo.lock and build with the host's
/// rustc 1.95 and Debian's rustc-web 1.96.
pub const DAEMONS: &[Daemon] = &[
    Daemon {
        name: "vhost-device-rng",
        version: "0.1.0",
    },
    Daemon {
        name: "vhost-device-vsock",
        version: "0.3.0",
    },
];

const USAGE: &str = "\
usage: cargo xtask vhost-device build [--arch x86_64|aarch64] [--features LIST] [NAME]...

Builds the pinned unmodified vhost-user daemons (NAME: rng, vsock or the crate
name; default both) with `cargo install --locked`, caches them and prints each
binary's path on stdout, one a line, in the order asked. Progress and cargo's
output go to stderr.

  --arch     x86_64 (default; the host's toolchain) or aarch64 (cross-built with
             Debian's rustc-web, linked against the arm64 cross glibc 2.36)
  --features comma-separated cargo features; default `xen` for aarch64 (the Xen
             box's dom0 serves Xen guests), none for x86_64 (a host daemon for
             KVM); `--features ''` builds without any
Cache: <cache root>/vhost-device/<crate>-<version>/<arch>[+<feature>...]/bin/
(<cache root> is $XEN_BOX_CACHE, default $HOME/.cache/xen-rust-vmm/xen-box).
";

/// `cargo xtask vhost-device ...`.
pub fn main(args: &[String]) -> Result<i32> {
    let Some((sub, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Ok(2);
    };
    match sub.as_str() {
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        "build" => {
            let req = parse(rest)?;
            for d in &req.daemons {
                let bin = build(d, req.arch, &req.features)?;
                println!("{}", bin.display());
            }
            Ok(0)
        }
        _ => bail!("unknown vhost-device command `{sub}` (see `cargo xtask vhost-device help`)"),
    }
}

/// A parsed `build` command line.
struct Request {
    arch: Arch,
    features: Vec<String>,
    daemons: Vec<&'static Daemon>,
}

fn parse(args: &[String]) -> Result<Request> {
    let mut arch = Arch::X86_64;
    let mut features = None;
    let mut daemons = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| err!("`{a}` needs a value"));
        match a.as_str() {
            "--arch" => arch = Arch::parse(val()?)?,
            "--features" => features = Some(feature_list(val()?)?),
            o if o.starts_with('-') => bail!("unknown option `{o}`"),
            name => daemons.push(daemon(name)?),
        }
    }
    if daemons.is_empty() {
        daemons = DAEMONS.iter().collect();
    }
    let features = features.unwrap_or_else(|| match arch {
        Arch::Aarch64 => vec!["xen".to_string()],
        Arch::X86_64 => Vec::new(),
    });
    Ok(Request {
        arch,
        features,
        daemons,
    })
}

/// Splits a comma- or space-separated feature list, sorted and deduplicated
/// (it is part of the cache key); names are cargo feature names.
fn feature_list(s: &str) -> Result<Vec<String>> {
    let mut v: Vec<String> = s
        .split([',', ' '])
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    for f in &v {
        if !f
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("bad feature name `{f}`");
        }
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// The pinned daemon called `name` (`rng`, `vsock` or the crate name).
pub fn daemon(name: &str) -> Result<&'static Daemon> {
    DAEMONS
        .iter()
        .find(|d| d.name == name || d.name.strip_prefix("vhost-device-") == Some(name))
        .ok_or_else(|| {
            let known: Vec<&str> = DAEMONS.iter().map(|d| d.name).collect();
            err!("unknown daemon `{name}` (known: {})", known.join(", "))
        })
}

/// Cache directory of one build: crate, version, arch and features.
fn build_dir(root: &Path, d: &Daemon, arch: Arch, features: &[String]) -> PathBuf {
    let mut key = arch.name().to_string();
    for f in features {
        key.push('+');
        key.push_str(f);
    }
    root.join(format!("{}-{}", d.name, d.version)).join(key)
}

/// ELF `e_machine` of each architecture.
fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => 0x3e,
        Arch::Aarch64 => 0xb7,
    }
}

/// Fails unless `bin` is a 64-bit little-endian ELF file for `arch`.
fn check_elf(bin: &Path, arch: Arch) -> Result<()> {
    let mut head = [0u8; 20];
    let mut f = std::fs::File::open(bin).context(|| format!("cannot open {}", bin.display()))?;
    std::io::Read::read_exact(&mut f, &mut head)
        .context(|| format!("cannot read {}", bin.display()))?;
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 || machine != elf_machine(arch) {
        bail!(
            "{} is not a 64-bit little-endian ELF file for {} (e_machine {machine:#x})",
            bin.display(),
            arch.name()
        );
    }
    Ok(())
}

/// Builds `d` for `arch` with `features`, or reuses the cached build, and
/// returns the binary's path.
pub fn build(d: &Daemon, arch: Arch, features: &[String]) -> Result<PathBuf> {
    let root = cache_root().join("vhost-device");
    mkdirs(&root)?;
    let dir = build_dir(&root, d, arch, features);
    let bin = dir.join("bin").join(d.name);
    let what = format!(
        "{} {} for {} (features: {})",
        d.name,
        d.version,
        arch.name(),
        if features.is_empty() {
            "none".to_string()
        } else {
            features.join(",")
        }
    );
    if bin.is_file() {
        say(format!("{what}: cached, {}", bin.display()));
        return Ok(bin);
    }
    // One build at a time per cache (they share cargo's build directory).
    let _lock = lock_dir(&root)?;
    if bin.is_file() {
        say(format!("{what}: built meanwhile, {}", bin.display()));
        return Ok(bin);
    }
    let tmp = dir.with_extension("tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Outside the workspace: its .cargo/config.toml must not apply.
    cmd.current_dir(&root)
        .args(["install", "--locked", "--version", d.version])
        .arg("--root")
        .arg(&tmp)
        .arg("--target-dir")
        .arg(root.join("target").join(arch.name()));
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    // Flags meant for the workspace (CI's -D warnings) are not this build's.
    cmd.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let compiler = match arch {
        Arch::Aarch64 => {
            crate::arm64::cross::toolchain(&mut cmd)?;
            cmd.args(["--target", crate::arm64::cross::TARGET]);
            crate::arm64::cross::RUSTC.to_string()
        }
        Arch::X86_64 => "rustc".to_string(),
    };
    cmd.arg(d.name);
    let rustc_version = crate::util::output(Command::new(&compiler).arg("--version"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    say(format!(
        "building {what} with {rustc_version}: {}",
        show(&cmd)
    ));
    let sw = Stopwatch::start();
    let log = tmp.join("build.log");
    run_logged(&mut cmd, &log).map_err(|e| err!("building {what} failed: {e}"))?;
    let tmp_bin = tmp.join("bin").join(d.name);
    if !tmp_bin.is_file() {
        bail!(
            "building {what}: `{}` succeeded but left no {}",
            show(&cmd),
            tmp_bin.display()
        );
    }
    check_elf(&tmp_bin, arch).map_err(|e| err!("building {what}: {e}"))?;
    write(
        &tmp.join("info.txt"),
        format!(
            "{what}\ncompiler: {rustc_version}\ncommand: {}\nbuilt in {:.0} s\n",
            show(&cmd),
            sw.secs()
        ),
    )?;
    rmrf(&dir)?;
    std::fs::rename(&tmp, &dir)
        .context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()))?;
    say(format!(
        "built {what} in {:.0} s: {}",
        sw.secs(),
        bin.display()
    ));
    Ok(bin)
}

/// Runs `cmd`, echoing its stderr (cargo's progress) to ours and into `log`;
/// on failure the error names the command, its status and its stderr's tail.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("cannot start `{}`", show(cmd)))?;
    let mut file =
        std::fs::File::create(log).context(|| format!("cannot create {}", log.display()))?;
    let mut text = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context(|| format!("cannot read the stderr of `{}`", show(cmd)))?;
            eprintln!("  {line}");
            let _ = writeln!(file, "{line}");
            text.push_str(&line);
            text.push('\n');
        }
    }
    let st = child
        .wait()
        .context(|| format!("cannot wait for `{}`", show(cmd)))?;
    if !st.success() {
        bail!(
            "`{}` failed with {st}; last lines of its stderr (all of it: {}):\n{}",
            show(cmd),
            log.display(),
            tail(&text, 30)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_follow_the_arch() {
        let r = parse(&args(&["--arch", "aarch64"])).unwrap();
        assert_eq!(r.features, args(&["xen"]));
        assert_eq!(r.daemons.len(), DAEMONS.len());
        let r = parse(&args(&["rng"])).unwrap();
        assert_eq!(r.arch, Arch::X86_64);
        assert!(r.features.is_empty());
        assert_eq!(r.daemons[0].name, "vhost-device-rng");
    }

    #[test]
    fn features_are_a_sorted_key_and_checked() {
        let r = parse(&args(&["--features", "xen,backend_vsock,xen", "vsock"])).unwrap();
        assert_eq!(r.features, args(&["backend_vsock", "xen"]));
        assert!(parse(&args(&["--arch", "aarch64", "--features", ""]))
            .unwrap()
            .features
            .is_empty());
        assert!(parse(&args(&["--features", "a/../b"])).is_err());
        assert!(parse(&args(&["--features"])).is_err());
        assert!(parse(&args(&["blk"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
    }

    #[test]
    fn cache_key_names_crate_version_arch_and_features() {
        let d = daemon("vhost-device-vsock").unwrap();
        let root = Path::new("/c");
        assert_eq!(
            build_dir(root, d, Arch::Aarch64, &args(&["xen"])),
            Path::new("/c/vhost-device-vsock-0.3.0/aarch64+xen")
        );
        assert_eq!(
            build_dir(root, d, Arch::X86_64, &[]),
            Path::new("/c/vhost-device-vsock-0.3.0/x86_64")
        );
    }

    #[test]
    fn elf_check_wants_the_right_machine() {
        let dir = std::env::temp_dir().join(format!("xtask-elf-{}", std::process::id()));
        mkdirs(&dir).unwrap();
        let f = dir.join("bin");
        let mut h = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
        h.extend_from_slice(&0xb7u16.to_le_bytes());
        write(&f, &h).unwrap();
        assert!(check_elf(&f, Arch::Aarch64).is_ok());
        assert!(check_elf(&f, Arch::X86_64).is_err());
        write(&f, b"#!/bin/sh\n exit 0 padding....").unwrap();
        assert!(check_elf(&f, Arch::Aarch64).is_err());
        rmrf(&dir).unwrap();
    }
}
