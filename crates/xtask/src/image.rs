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

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apt::Apt;
use crate::cpio::CpioWriter;
use crate::stack::Stack;
use crate::util::{mkdirs, output, rmrf, run, say, write, Context, Fnv, Result, Stopwatch};
use crate::{bail, err};

/// Bumped whenever the way images are built changes.
const RECIPE: &str = "xen-box image recipe 1";
const DOM0_INIT: &str = include_str!("../assets/dom0-init");
const DOMU_INIT: &str = include_str!("../assets/domu-init");
/// Kernel modules dom0 needs for the Xen userspace (loaded with their dependencies).
const MODULES: &[&str] = &[
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
];
/// Paths removed from the dom0 tree: documentation, headers, Python.
const TRIM: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/include",
    "usr/lib/x86_64-linux-gnu/gconv",
];

/// A stack's ready-to-boot files.
pub struct Artifacts {
    /// The stack.
    pub stack: Stack,
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
    hypervisor: PathBuf,
    kernel: PathBuf,
    kernel_pkg: String,
    userland: Vec<PathBuf>,
    key: String,
}

/// Resolves and downloads what `stack` needs, then builds its image unless a
/// matching one is cached.
pub fn prepare(stack: Stack, refresh: bool) -> Result<(Artifacts, PrepareReport)> {
    let sw = Stopwatch::start();
    let dir = stack.cache_dir();
    mkdirs(&dir)?;
    // Several jobs may share the cache: one prepares a stack at a time.
    let lock_path = dir.join(".lock");
    let lock =
        File::create(&lock_path).context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .context(|| format!("cannot lock {}", lock_path.display()))?;
    let mut rep = PrepareReport::default();
    let apt = Apt::new(&dir.join("apt"), stack.name())?;
    rep.lists_updated = apt.ensure_lists(refresh)?;
    let plan = match plan(stack, &apt, &dir, &mut rep) {
        Ok(p) => p,
        Err(e) if !rep.lists_updated => {
            // Old lists may name .debs the mirror no longer has.
            say(format!("{e}; refreshing the package lists and retrying"));
            rep.lists_updated = apt.ensure_lists(true)?;
            plan(stack, &apt, &dir, &mut rep)?
        }
        Err(e) => return Err(e),
    };
    let img = dir.join("images").join(&plan.key);
    if !img.join(".complete").exists() {
        say(format!("building the {} image {}", stack.name(), plan.key));
        build(stack, &plan, &dir, &img)?;
        rep.rebuilt = true;
        // Keep only the current image.
        if let Ok(rd) = std::fs::read_dir(dir.join("images")) {
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
            xen: img.join("xen"),
            vmlinuz: img.join("vmlinuz"),
            dom0: img.join("dom0.cpio.zst"),
            manifest,
        },
        rep,
    ))
}

/// Stamp of the resolution inputs: a resolved plan stays valid until the
/// package lists change.
fn plan_stamp(stack: Stack, dir: &Path) -> String {
    let lists = dir.join("apt/lists/.complete");
    let mtime = std::fs::metadata(&lists)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{RECIPE} {} lists@{mtime}", stack.name())
}

/// Reads the plan saved by the last resolution, if still valid and complete.
fn cached_plan(stack: Stack, dir: &Path) -> Option<(String, Vec<PathBuf>)> {
    let text = std::fs::read_to_string(dir.join("plan.txt")).ok()?;
    let mut lines = text.lines();
    if lines.next()? != plan_stamp(stack, dir) {
        return None;
    }
    let kernel_pkg = lines.next()?.to_string();
    let debs: Vec<PathBuf> = lines.map(|l| dir.join("debs").join(l)).collect();
    (debs.len() > 2 && debs.iter().all(|d| d.is_file())).then_some((kernel_pkg, debs))
}

fn plan(stack: Stack, apt: &Apt, dir: &Path, rep: &mut PrepareReport) -> Result<Plan> {
    let (kernel_pkg, debs) = match cached_plan(stack, dir) {
        Some(p) => p,
        None => {
            let v = stack.xen_version();
            let kernel_pkg = apt.dependency_with_prefix("linux-image-amd64", "linux-image-")?;
            let mut pkgs = vec![format!("xen-hypervisor-{v}-amd64"), kernel_pkg.clone()];
            let roots: Vec<String> = [
                format!("xen-utils-{v}"),
                "xenstore-utils".into(),
                "busybox-static".into(),
                "libc6".into(),
                "libgcc-s1".into(),
            ]
            .into();
            pkgs.extend(apt.closure(&roots)?);
            let (debs, n) = apt.fetch(&pkgs, &dir.join("debs"))?;
            rep.downloaded = n;
            let mut text = format!("{}\n{kernel_pkg}\n", plan_stamp(stack, dir));
            for d in &debs {
                text.push_str(&format!(
                    "{}\n",
                    d.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
            write(&dir.join("plan.txt"), text)?;
            (kernel_pkg, debs)
        }
    };
    rep.debs = debs.len();
    let mut h = Fnv::default();
    h.add(RECIPE.as_bytes())
        .add(DOM0_INIT.as_bytes())
        .add(DOMU_INIT.as_bytes());
    for d in &debs {
        h.add(d.file_name().unwrap_or_default().as_encoded_bytes());
    }
    Ok(Plan {
        hypervisor: debs[0].clone(),
        kernel: debs[1].clone(),
        kernel_pkg,
        userland: debs[2..].to_vec(),
        key: h.hex(),
    })
}

fn unpack(deb: &Path, into: &Path) -> Result<()> {
    // --keep-directory-symlink: bookworm packages ship /lib, /bin..., which
    // must land in the merged /usr through the symlinks we create.
    run(Command::new("sh")
        .arg("-c")
        .arg(r#"dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2""#)
        .arg("sh")
        .arg(deb)
        .arg(into))
}

fn build(stack: Stack, plan: &Plan, dir: &Path, img: &Path) -> Result<()> {
    let sw = Stopwatch::start();
    let work = dir.join("work");
    rmrf(&work)?;
    let tmp = img.with_extension("tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;

    // Hypervisor and kernel.
    let boot = work.join("boot");
    mkdirs(&boot)?;
    unpack(&plan.hypervisor, &boot)?;
    unpack(&plan.kernel, &boot)?;
    let kver = plan
        .kernel_pkg
        .strip_prefix("linux-image-")
        .unwrap_or(&plan.kernel_pkg)
        .to_string();
    let xen_gz = boot.join(format!("boot/xen-{}-amd64.gz", stack.xen_version()));
    // QEMU's multiboot loader wants the raw ELF.
    let out = File::create(tmp.join("xen")).context(|| "cannot create xen".into())?;
    run(Command::new("gzip").arg("-dc").arg(&xen_gz).stdout(out))?;
    std::fs::copy(
        boot.join(format!("boot/vmlinuz-{kver}")),
        tmp.join("vmlinuz"),
    )
    .context(|| format!("cannot copy vmlinuz-{kver}"))?;
    // kmod looks in <base>/lib/modules; trixie ships /usr/lib/modules.
    if !boot.join("lib").exists() {
        std::os::unix::fs::symlink("usr/lib", boot.join("lib"))
            .context(|| "cannot link lib -> usr/lib".into())?;
    }
    run(Command::new("depmod").arg("-b").arg(&boot).arg(&kver))?;

    // dom0 userland: merged-/usr layout, then every .deb unpacked into it.
    let root = work.join("root");
    for d in ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64"] {
        mkdirs(&root.join(d))?;
    }
    for d in ["bin", "sbin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{d}"), root.join(d))
            .context(|| format!("cannot link {d}"))?;
    }
    for deb in &plan.userland {
        unpack(deb, &root)?;
    }
    for t in TRIM {
        rmrf(&root.join(t))?;
    }
    let xen_lib = root.join(format!("usr/lib/xen-{}/lib", stack.xen_version()));
    if let Ok(rd) = std::fs::read_dir(&xen_lib) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("python") {
                rmrf(&e.path())?;
            }
        }
    }
    if !root.join("usr/bin/busybox").is_file() {
        bail!("busybox-static did not provide usr/bin/busybox");
    }

    // Kernel modules, decompressed (busybox modprobe cannot read .ko.xz).
    let mods = modules(&boot, &kver)?;
    let mdir = root.join(format!("usr/lib/modules/{kver}"));
    let src_mdir = boot.join(format!("lib/modules/{kver}"));
    for m in &mods {
        let rel = m
            .strip_prefix(&src_mdir)
            .map_err(|_| err!("module {} outside {}", m.display(), src_mdir.display()))?;
        let rel_s = rel.to_string_lossy();
        let dest = mdir.join(rel_s.trim_end_matches(".xz").trim_end_matches(".zst"));
        mkdirs(dest.parent().unwrap_or(&mdir))?;
        let out = File::create(&dest).context(|| format!("cannot create {}", dest.display()))?;
        if rel_s.ends_with(".xz") {
            run(Command::new("xz").arg("-dc").arg(m).stdout(out))?;
        } else if rel_s.ends_with(".zst") {
            run(Command::new("zstd").args(["-dcq"]).arg(m).stdout(out))?;
        } else {
            std::fs::copy(m, &dest).context(|| format!("cannot copy {}", m.display()))?;
        }
    }
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let s = src_mdir.join(f);
        if s.exists() {
            std::fs::copy(&s, mdir.join(f)).context(|| format!("cannot copy {f}"))?;
        }
    }
    run(Command::new("depmod").arg("-b").arg(&root).arg(&kver))?;

    // Init, stack description, domU kernel and initramfs.
    write(&root.join("init"), DOM0_INIT)?;
    set_mode(&root.join("init"), 0o755)?;
    write(
        &root.join("etc/xen-box/stack.env"),
        format!(
            "XEN_BOX_STACK={}\nXEN_BOX_XEN_VERSION={}\n",
            stack.name(),
            stack.xen_version()
        ),
    )?;
    for d in [
        "proc", "sys", "dev", "run", "tmp", "root", "var/log", "var/lib", "etc/xen",
    ] {
        mkdirs(&root.join(d))?;
    }
    mkdirs(&root.join("srv/xen-box"))?;
    std::fs::copy(tmp.join("vmlinuz"), root.join("srv/xen-box/vmlinuz"))
        .context(|| "cannot copy the domU kernel".into())?;
    domu_initramfs(
        &root.join("usr/bin/busybox"),
        &root.join("srv/xen-box/domu.cpio.gz"),
    )?;

    // The dom0 initramfs: newc through zstd.
    let out =
        File::create(tmp.join("dom0.cpio.zst")).context(|| "cannot create dom0.cpio.zst".into())?;
    let mut z = Command::new("zstd")
        .args(["-q", "-T0", "-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .context(|| "cannot start zstd".into())?;
    {
        let stdin = z.stdin.take().ok_or_else(|| err!("zstd has no stdin"))?;
        let mut w = CpioWriter::new(BufWriter::new(stdin));
        w.chardev("dev/console", 0o600, 5, 1)
            .context(|| "cannot write cpio".into())?;
        w.tree(&root, "")?;
        w.finish()
            .context(|| "cannot finish the dom0 cpio".into())?;
    }
    let st = z.wait().context(|| "zstd".into())?;
    if !st.success() {
        bail!("zstd failed with {st}");
    }
    pad512(&tmp.join("dom0.cpio.zst"))?;

    let mut manifest = format!(
        "stack {}\nXen {}\nkernel {kver}\nmodules {}\n.debs:\n",
        stack.name(),
        stack.xen_version(),
        MODULES.join(" ")
    );
    for d in [&plan.hypervisor, &plan.kernel]
        .into_iter()
        .chain(&plan.userland)
    {
        manifest.push_str(&format!(
            "  {}\n",
            d.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    write(&tmp.join("manifest.txt"), &manifest)?;
    write(&tmp.join(".complete"), "")?;
    rmrf(img)?;
    std::fs::rename(&tmp, img).context(|| format!("cannot rename to {}", img.display()))?;
    rmrf(&work)?;
    let size = std::fs::metadata(img.join("dom0.cpio.zst"))
        .map(|m| m.len())
        .unwrap_or(0);
    say(format!(
        "built {} image in {:.1} s (dom0 initramfs {:.1} MB)",
        stack.name(),
        sw.secs(),
        size as f64 / 1e6
    ));
    Ok(())
}

/// Module files (with dependencies) for `MODULES`, per kmod.
fn modules(base: &Path, kver: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for m in MODULES {
        let out = output(Command::new("modprobe").arg("-d").arg(base).args([
            "-S",
            kver,
            "--show-depends",
            m,
        ]))?;
        for l in out.lines() {
            if let Some(p) = l.strip_prefix("insmod ") {
                let p = PathBuf::from(p.trim());
                if !files.contains(&p) {
                    files.push(p);
                }
            }
        }
    }
    Ok(files)
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

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context(|| format!("cannot chmod {}", path.display()))
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
