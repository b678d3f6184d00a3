// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds (or reuses) a stack's boot artifacts from Debian packages:
//! the hypervisor, the dom0 kernel and a dom0 initramfs made of busybox, the
//! Xen tools and libraries, glibc, the Xen kernel modules, the domU kernel and
//! the domU initramfs. Nothing is installed on the host: .debs are unpacked.
//!
//! Cache layout under `<cache>/<stack>/`:
//! `apt/` (isolated apt configuration and lists), `debs/` (downloaded .debs),
//! `images/<key>/` (xen, vmlinuz, dom0.cpio.zst, manifest.txt), `runs/` (logs).
//! The key hashes the init scripts, the recipe version and the .deb file names
//! (which carry the package versions), so a change of any input rebuilds.
//! An image with extra packages (`--with-pkg`) lives in `images-<tag>/` and
//! keeps its plan in `plan-<tag>.txt`: the default image is never rebuilt or
//! removed because of it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apt::Apt;
use crate::config::BoxConfig;
use crate::cpio::CpioWriter;
use crate::debs::{self, Debs};
use crate::dom0_tree::{
    depmod, finish_root, install_modules, pack, publish, unpack, userland, DOM0_INIT, DOM0_MODULES,
};
use crate::extras;
use crate::stack::Stack;
use crate::util::{lock_dir, mkdirs, rmrf, run, say, Context, Fnv, Result, Stopwatch};
use crate::{bail, err};

/// Bumped whenever the way images are built changes.
const RECIPE: &str = "xen-box image recipe 2";
const DOMU_INIT: &str = include_str!("../assets/domu-init");

/// A stack's ready-to-boot files.
pub struct Artifacts {
    /// The stack.
    pub stack: Stack,
    /// The box they were made for (architecture, dom0 kernel, extra packages).
    pub config: BoxConfig,
    /// Uncompressed multiboot hypervisor.
    pub xen: PathBuf,
    /// dom0 (and domU) kernel.
    pub vmlinuz: PathBuf,
    /// dom0 initramfs (zstd, padded to 512 bytes).
    pub dom0: PathBuf,
    /// Human-readable description (package versions).
    pub manifest: String,
}

/// What `prepare` did, for the report.
#[derive(Default)]
pub struct PrepareReport {
    /// Package lists were downloaded.
    pub lists_updated: bool,
    /// Number of .debs downloaded (the others were reused).
    pub downloaded: usize,
    /// Number of .debs used in all.
    pub debs: usize,
    /// The image was rebuilt (else reused).
    pub rebuilt: bool,
}

struct Plan {
    debs: Debs,
    key: String,
}

/// Resolves and downloads what `stack` needs, then builds its image unless a
/// matching one is cached.
pub fn prepare(cfg: &BoxConfig, stack: Stack, refresh: bool) -> Result<(Artifacts, PrepareReport)> {
    let sw = Stopwatch::start();
    let dir = stack.cache_dir();
    mkdirs(&dir)?;
    // Several jobs may share the cache: one prepares a stack at a time.
    let _lock = lock_dir(&dir)?;
    let mut rep = PrepareReport::default();
    let apt = Apt::new(&dir.join("apt"), stack.name())?;
    rep.lists_updated = apt.ensure_lists(refresh)?;
    let extra = &cfg.extra_pkgs;
    let plan = match plan(stack, extra, &apt, &dir, &mut rep) {
        Ok(p) => p,
        Err(e) if !rep.lists_updated => {
            // Old lists may name .debs the mirror no longer has.
            say(format!("{e}; refreshing the package lists and retrying"));
            rep.lists_updated = apt.ensure_lists(true)?;
            plan(stack, extra, &apt, &dir, &mut rep)?
        }
        Err(e) => return Err(e),
    };
    let images = dir.join(extras::images_dir(extra));
    let img = images.join(&plan.key);
    if !img.join(".complete").exists() {
        say(format!(
            "building the {} image {}{}",
            stack.name(),
            plan.key,
            match extras::tag(extra).as_str() {
                "" => String::new(),
                t => format!(" ({t})"),
            }
        ));
        build(stack, extra, &plan, &dir, &img)?;
        rep.rebuilt = true;
        // Keep only the current image (of this variant).
        if let Ok(rd) = std::fs::read_dir(&images) {
            for e in rd.flatten() {
                if e.file_name() != plan.key.as_str() {
                    let _ = rmrf(&e.path());
                }
            }
        }
    }
    let manifest = std::fs::read_to_string(img.join("manifest.txt")).unwrap_or_default();
    say(format!(
        "{}: {} .debs ({} downloaded, {} reused), package lists {}, image {} {} ({:.1} s)",
        stack.name(),
        rep.debs,
        rep.downloaded,
        rep.debs - rep.downloaded,
        if rep.lists_updated {
            "downloaded"
        } else {
            "reused"
        },
        plan.key,
        if rep.rebuilt { "built" } else { "reused" },
        sw.secs()
    ));
    Ok((
        Artifacts {
            stack,
            config: cfg.clone(),
            xen: img.join("xen"),
            vmlinuz: img.join("vmlinuz"),
            dom0: img.join("dom0.cpio.zst"),
            manifest,
        },
        rep,
    ))
}

fn plan(
    stack: Stack,
    extra: &[String],
    apt: &Apt,
    dir: &Path,
    rep: &mut PrepareReport,
) -> Result<Plan> {
    let (debs, downloaded) = debs::resolve(RECIPE, "amd64", stack, extra, apt, dir)?;
    rep.downloaded = downloaded;
    rep.debs = debs.userland.len() + 2;
    let mut h = Fnv::default();
    h.add(RECIPE.as_bytes())
        .add(DOM0_INIT.as_bytes())
        .add(DOMU_INIT.as_bytes());
    for d in debs.all() {
        h.add(d.file_name().unwrap_or_default().as_encoded_bytes());
    }
    // Only variants hash their tag: the default key stays what it was.
    if !extra.is_empty() {
        h.add(extras::tag(extra).as_bytes());
    }
    Ok(Plan { debs, key: h.hex() })
}

fn build(stack: Stack, extra: &[String], plan: &Plan, dir: &Path, img: &Path) -> Result<()> {
    let sw = Stopwatch::start();
    let work = dir.join("work");
    rmrf(&work)?;
    let tmp = img.with_extension("tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;

    // Hypervisor and kernel.
    let boot = work.join("boot");
    mkdirs(&boot)?;
    unpack(&plan.debs.hypervisor, &boot)?;
    unpack(&plan.debs.kernel, &boot)?;
    let kver = plan.debs.kernel_version();
    let xen_gz = boot.join(format!("boot/xen-{}-amd64.gz", stack.xen_version()));
    // QEMU's multiboot loader wants the raw ELF.
    let out = File::create(tmp.join("xen")).context(|| "cannot create xen".into())?;
    run(Command::new("gzip").arg("-dc").arg(&xen_gz).stdout(out))?;
    std::fs::copy(
        boot.join(format!("boot/vmlinuz-{kver}")),
        tmp.join("vmlinuz"),
    )
    .context(|| format!("cannot copy vmlinuz-{kver}"))?;
    depmod(&boot, &kver)?;

    // dom0 tree, domU kernel and initramfs.
    let root = work.join("root");
    let busybox = userland(
        &root,
        &plan.debs.userland,
        "x86_64-linux-gnu",
        stack.xen_version(),
    )?;
    install_modules(&boot, &root, &kver, DOM0_MODULES)?;
    finish_root(&root, stack, &tmp.join("vmlinuz"))?;
    domu_initramfs(&busybox, &root.join("srv/xen-box/domu.cpio.gz"))?;

    pack(
        &root,
        &tmp.join("dom0.cpio.zst"),
        &["zstd", "-q", "-T0", "-6", "-c"],
    )?;
    pad512(&tmp.join("dom0.cpio.zst"))?;

    let mut manifest = format!(
        "stack {}\nXen {}\nkernel {kver}\nmodules {}\n",
        stack.name(),
        stack.xen_version(),
        DOM0_MODULES.join(" "),
    );
    if !extra.is_empty() {
        manifest.push_str(&format!("extra packages {}\n", extra.join(" ")));
    }
    manifest.push_str(&format!(".debs:\n{}", plan.debs.manifest_lines()));
    let size = publish(&tmp, img, &work, &manifest)?;
    say(format!(
        "built {} image in {:.1} s (dom0 initramfs {:.1} MB)",
        stack.name(),
        sw.secs(),
        size as f64 / 1e6
    ));
    Ok(())
}

fn domu_initramfs(busybox: &Path, dest: &Path) -> Result<()> {
    let bb = std::fs::read(busybox).context(|| format!("cannot read {}", busybox.display()))?;
    let mut buf = Vec::new();
    {
        let mut w = CpioWriter::new(&mut buf);
        let io = (|| -> std::io::Result<()> {
            for d in ["bin", "dev", "proc", "sys", "tmp"] {
                w.dir(d, 0o755)?;
            }
            w.chardev("dev/console", 0o600, 5, 1)?;
            w.file("bin/busybox", 0o755, &bb)?;
            w.file("init", 0o755, DOMU_INIT.as_bytes())?;
            Ok(())
        })();
        io.context(|| "cannot write the domU cpio".into())?;
        w.finish().context(|| "cannot write the domU cpio".into())?;
    }
    let out = File::create(dest).context(|| format!("cannot create {}", dest.display()))?;
    let mut gz = Command::new("gzip")
        .args(["-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .context(|| "cannot start gzip".into())?;
    gz.stdin
        .take()
        .ok_or_else(|| err!("gzip has no stdin"))?
        .write_all(&buf)
        .context(|| "cannot write to gzip".into())?;
    let st = gz.wait().context(|| "gzip".into())?;
    if !st.success() {
        bail!("gzip failed with {st}");
    }
    Ok(())
}

/// Zero-pads a file to a multiple of 512 bytes.
pub fn pad512(path: &Path) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata().context(|| "stat".into())?.len();
    f.set_len(len.div_ceil(512) * 512)
        .context(|| format!("cannot pad {}", path.display()))
}
