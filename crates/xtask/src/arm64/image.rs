// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds (or reuses) a stack's aarch64 boot artifacts from Debian's arm64
//! packages, fetched with an isolated apt configuration and unpacked, never
//! installed: the IOREQ-enabled hypervisor (see [`super::xen_build`]), the
//! arm64 kernel `Image` (dom0 and domU), and a dom0 initramfs with busybox,
//! the Xen tools and libraries, glibc, the Xen modules, the domU kernel, a
//! domU initramfs (with the virtio-mmio modules) and the virtio domU helper.
//!
//! dom0 runs the same init as on x86_64, so markers, environment and failure
//! detection are identical. Cache: `<cache root>/<stack>-arm64/` with `apt/`,
//! `debs/`, `src/` (Xen source), `xen-ioreq/`, `images/<key>/`, `runs/`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apt::Apt;
use crate::cpio::CpioWriter;
use crate::image::{pad512, Artifacts};
use crate::stack::Stack;
use crate::util::{mkdirs, output, rmrf, run, say, write, Context, Fnv, Result, Stopwatch};
use crate::{arch, bail, err};

/// Bumped whenever the way images are built changes.
const RECIPE: &str = "xen-box arm64 image recipe 1";
/// dom0's init: the very same as on x86_64.
const DOM0_INIT: &str = include_str!("../../assets/dom0-init");
/// domU init with the virtio-mmio probe mode.
const DOMU_INIT: &str = include_str!("../../assets/arm64-domu-init");
/// dom0 helper creating a paused domU with a virtio-mmio device.
const VIRTIO_DOMU: &str = include_str!("../../assets/arm64-virtio-domu");
/// Kernel modules dom0 needs (loaded with their dependencies by the init).
const DOM0_MODULES: &[&str] = &[
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
];
/// Kernel modules the domU initramfs carries for the virtio-mmio probe.
const DOMU_MODULES: &[&str] = &["virtio_mmio", "virtio-rng"];
/// Paths removed from the dom0 tree: documentation, headers, Python.
const TRIM: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/include",
    "usr/lib/aarch64-linux-gnu/gconv",
];

struct Plan {
    hypervisor: PathBuf,
    kernel: PathBuf,
    kernel_pkg: String,
    userland: Vec<PathBuf>,
}

fn plan_stamp(stack: Stack, dir: &Path) -> String {
    let mtime = std::fs::metadata(dir.join("apt/lists/.complete"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{RECIPE} {} lists@{mtime}", stack.name())
}

fn cached_plan(stack: Stack, dir: &Path) -> Option<Plan> {
    let text = std::fs::read_to_string(dir.join("plan.txt")).ok()?;
    let mut lines = text.lines();
    if lines.next()? != plan_stamp(stack, dir) {
        return None;
    }
    let kernel_pkg = lines.next()?.to_string();
    let debs: Vec<PathBuf> = lines.map(|l| dir.join("debs").join(l)).collect();
    if debs.len() <= 2 || !debs.iter().all(|d| d.is_file()) {
        return None;
    }
    Some(Plan {
        hypervisor: debs[0].clone(),
        kernel: debs[1].clone(),
        kernel_pkg,
        userland: debs[2..].to_vec(),
    })
}

fn resolve(stack: Stack, apt: &Apt, dir: &Path) -> Result<(Plan, usize)> {
    if let Some(p) = cached_plan(stack, dir) {
        return Ok((p, 0));
    }
    let v = stack.xen_version();
    let kernel_pkg = apt.dependency_with_prefix("linux-image-arm64", "linux-image-")?;
    let mut pkgs = vec![format!("xen-hypervisor-{v}-arm64"), kernel_pkg.clone()];
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
    let mut text = format!("{}\n{kernel_pkg}\n", plan_stamp(stack, dir));
    for d in &debs {
        text.push_str(&format!(
            "{}\n",
            d.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    write(&dir.join("plan.txt"), text)?;
    Ok((
        Plan {
            hypervisor: debs[0].clone(),
            kernel: debs[1].clone(),
            kernel_pkg,
            userland: debs[2..].to_vec(),
        },
        n,
    ))
}

/// Resolves, downloads and builds what the aarch64 box of `stack` needs,
/// reusing everything cached.
pub fn prepare(stack: Stack, refresh: bool) -> Result<Artifacts> {
    let sw = Stopwatch::start();
    let dir = arch::cache_dir(stack);
    mkdirs(&dir)?;
    // Several jobs may share the cache: one prepares a stack at a time.
    let lock_path = dir.join(".lock");
    let lock =
        File::create(&lock_path).context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .context(|| format!("cannot lock {}", lock_path.display()))?;
    let apt = Apt::new_arch(&dir.join("apt"), stack.name(), "arm64")?;
    let mut lists = apt.ensure_lists(refresh)?;
    let (plan, downloaded) = match resolve(stack, &apt, &dir) {
        Ok(p) => p,
        Err(e) if !lists => {
            say(format!("{e}; refreshing the package lists and retrying"));
            lists = apt.ensure_lists(true)?;
            resolve(stack, &apt, &dir)?
        }
        Err(e) => return Err(e),
    };
    // The hypervisor: Debian's config, rebuilt with the IOREQ server.
    let hv_root = dir.join("hv-deb");
    let cfg = hv_root.join(format!("boot/xen-{}-arm64.config", stack.xen_version()));
    let stamp = hv_root.join(".deb");
    let hv_name = plan.hypervisor.file_name().unwrap_or_default();
    if std::fs::read(&stamp).ok().as_deref() != Some(hv_name.as_encoded_bytes()) || !cfg.is_file() {
        rmrf(&hv_root)?;
        mkdirs(&hv_root)?;
        unpack(&plan.hypervisor, &hv_root)?;
        write(&stamp, hv_name.as_encoded_bytes())?;
    }
    let (xen, src_version) =
        super::xen_build::hypervisor(&dir, stack.name(), stack.xen_version(), &hv_root)?;

    let mut h = Fnv::default();
    h.add(RECIPE.as_bytes())
        .add(DOM0_INIT.as_bytes())
        .add(DOMU_INIT.as_bytes())
        .add(VIRTIO_DOMU.as_bytes())
        .add(xen.as_os_str().as_encoded_bytes());
    for d in [&plan.hypervisor, &plan.kernel]
        .into_iter()
        .chain(&plan.userland)
    {
        h.add(d.file_name().unwrap_or_default().as_encoded_bytes());
    }
    let key = h.hex();
    let img = dir.join("images").join(&key);
    let rebuilt = !img.join(".complete").exists();
    if rebuilt {
        say(format!("building the {}-arm64 image {key}", stack.name()));
        build(stack, &plan, &xen, &src_version, &dir, &img)?;
        if let Ok(rd) = std::fs::read_dir(dir.join("images")) {
            for e in rd.flatten() {
                if e.file_name() != key.as_str() {
                    let _ = rmrf(&e.path());
                }
            }
        }
    }
    say(format!(
        "{}-arm64: {} .debs ({downloaded} downloaded), package lists {}, hypervisor from source {src_version}, image {key} {} ({:.1} s)",
        stack.name(),
        plan.userland.len() + 2,
        if lists { "downloaded" } else { "reused" },
        if rebuilt { "built" } else { "reused" },
        sw.secs()
    ));
    Ok(Artifacts {
        stack,
        xen: img.join("xen"),
        vmlinuz: img.join("Image"),
        dom0: img.join("dom0.cpio.zst"),
        manifest: std::fs::read_to_string(img.join("manifest.txt")).unwrap_or_default(),
    })
}

fn unpack(deb: &Path, into: &Path) -> Result<()> {
    run(Command::new("sh")
        .arg("-c")
        .arg(r#"dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2""#)
        .arg("sh")
        .arg(deb)
        .arg(into))
}

/// Module files (with their dependencies) of `names`, per kmod.
fn module_files(base: &Path, kver: &str, names: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for m in names {
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

/// Copies modules (decompressed: busybox modprobe reads only plain .ko) from
/// the kernel tree in `boot` into `root`, then runs depmod there.
fn install_modules(boot: &Path, root: &Path, kver: &str, names: &[&str]) -> Result<()> {
    let src_mdir = boot.join(format!("lib/modules/{kver}"));
    let mdir = root.join(format!("usr/lib/modules/{kver}"));
    mkdirs(&mdir)?;
    for m in module_files(boot, kver, names)? {
        let rel = m
            .strip_prefix(&src_mdir)
            .map_err(|_| err!("module {} outside {}", m.display(), src_mdir.display()))?;
        let rel_s = rel.to_string_lossy();
        let dest = mdir.join(rel_s.trim_end_matches(".xz").trim_end_matches(".zst"));
        mkdirs(dest.parent().unwrap_or(&mdir))?;
        let out = File::create(&dest).context(|| format!("cannot create {}", dest.display()))?;
        if rel_s.ends_with(".xz") {
            run(Command::new("xz").arg("-dc").arg(&m).stdout(out))?;
        } else if rel_s.ends_with(".zst") {
            run(Command::new("zstd").arg("-dcq").arg(&m).stdout(out))?;
        } else {
            std::fs::copy(&m, &dest).context(|| format!("cannot copy {}", m.display()))?;
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
    // depmod -b wants <base>/lib/modules: make sure `lib` leads to usr/lib.
    if !root.join("lib").exists() {
        std::os::unix::fs::symlink("usr/lib", root.join("lib"))
            .context(|| "cannot link lib -> usr/lib".into())?;
    }
    run(Command::new("depmod").arg("-b").arg(root).arg(kver))
}

fn set_exec(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .context(|| format!("cannot chmod {}", path.display()))
}

/// Writes `root` as a newc cpio through `compressor` into `dest`.
fn pack(root: &Path, dest: &Path, compressor: &[&str]) -> Result<()> {
    let out = File::create(dest).context(|| format!("cannot create {}", dest.display()))?;
    let mut z = Command::new(compressor[0])
        .args(&compressor[1..])
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .context(|| format!("cannot start {}", compressor[0]))?;
    {
        let stdin = z
            .stdin
            .take()
            .ok_or_else(|| err!("compressor has no stdin"))?;
        let mut w = CpioWriter::new(BufWriter::new(stdin));
        w.chardev("dev/console", 0o600, 5, 1)
            .context(|| "cannot write cpio".into())?;
        w.tree(root, "")?;
        w.finish()
            .and_then(|mut b| b.flush())
            .context(|| format!("cannot finish {}", dest.display()))?;
    }
    let st = z.wait().context(|| compressor[0].to_string())?;
    if !st.success() {
        bail!("{} failed with {st}", compressor[0]);
    }
    Ok(())
}

fn build(
    stack: Stack,
    plan: &Plan,
    xen: &Path,
    src_version: &str,
    dir: &Path,
    img: &Path,
) -> Result<()> {
    let sw = Stopwatch::start();
    let work = dir.join("work");
    rmrf(&work)?;
    let tmp = img.with_extension("tmp");
    rmrf(&tmp)?;
    mkdirs(&tmp)?;

    // Kernel: Debian's arm64 vmlinuz is an uncompressed Image.
    let boot = work.join("boot");
    mkdirs(&boot)?;
    unpack(&plan.kernel, &boot)?;
    let kver = plan
        .kernel_pkg
        .strip_prefix("linux-image-")
        .unwrap_or(&plan.kernel_pkg)
        .to_string();
    std::fs::copy(xen, tmp.join("xen")).context(|| "cannot copy the hypervisor".into())?;
    std::fs::copy(boot.join(format!("boot/vmlinuz-{kver}")), tmp.join("Image"))
        .context(|| format!("cannot copy vmlinuz-{kver}"))?;
    if !boot.join("lib").exists() {
        std::os::unix::fs::symlink("usr/lib", boot.join("lib"))
            .context(|| "cannot link lib -> usr/lib".into())?;
    }
    run(Command::new("depmod").arg("-b").arg(&boot).arg(&kver))?;

    // dom0 userland: merged /usr, every .deb unpacked into it.
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
    if let Ok(rd) = std::fs::read_dir(root.join(format!("usr/lib/xen-{}/lib", stack.xen_version())))
    {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("python") {
                rmrf(&e.path())?;
            }
        }
    }
    let busybox = root.join("usr/bin/busybox");
    if !busybox.is_file() {
        bail!("busybox-static did not provide usr/bin/busybox");
    }
    install_modules(&boot, &root, &kver, DOM0_MODULES)?;

    write(&root.join("init"), DOM0_INIT)?;
    set_exec(&root.join("init"))?;
    write(
        &root.join("etc/xen-box/stack.env"),
        format!(
            "XEN_BOX_STACK={}\nXEN_BOX_XEN_VERSION={}\n",
            stack.name(),
            stack.xen_version()
        ),
    )?;
    let helper = root.join("usr/local/bin/xen-box-virtio-domu");
    write(&helper, VIRTIO_DOMU)?;
    set_exec(&helper)?;
    for d in [
        "proc", "sys", "dev", "run", "tmp", "root", "var/log", "var/lib", "etc/xen",
    ] {
        mkdirs(&root.join(d))?;
    }
    mkdirs(&root.join("srv/xen-box"))?;
    std::fs::copy(tmp.join("Image"), root.join("srv/xen-box/vmlinuz"))
        .context(|| "cannot copy the domU kernel".into())?;

    // domU initramfs: busybox, the virtio-mmio modules, the domU init.
    let domu = work.join("domu");
    for d in ["usr/bin", "dev", "proc", "sys", "tmp"] {
        mkdirs(&domu.join(d))?;
    }
    std::os::unix::fs::symlink("usr/bin", domu.join("bin"))
        .context(|| "cannot link domU bin".into())?;
    std::fs::copy(&busybox, domu.join("usr/bin/busybox"))
        .context(|| "cannot copy busybox".into())?;
    install_modules(&boot, &domu, &kver, DOMU_MODULES)?;
    write(&domu.join("init"), DOMU_INIT)?;
    set_exec(&domu.join("init"))?;
    pack(
        &domu,
        &root.join("srv/xen-box/domu.cpio.gz"),
        &["gzip", "-6", "-c"],
    )?;

    pack(
        &root,
        &tmp.join("dom0.cpio.zst"),
        &["zstd", "-q", "-T0", "-6", "-c"],
    )?;
    pad512(&tmp.join("dom0.cpio.zst"))?;

    let mut manifest = format!(
        "stack {} (aarch64)\nXen {} (hypervisor rebuilt from Debian source {src_version} with CONFIG_IOREQ_SERVER)\nkernel {kver}\n.debs:\n",
        stack.name(),
        stack.xen_version()
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
    let size = std::fs::metadata(img.join("dom0.cpio.zst")).map_or(0, |m| m.len());
    say(format!(
        "built {}-arm64 image in {:.1} s (dom0 initramfs {:.1} MB)",
        stack.name(),
        sw.secs(),
        size as f64 / 1e6
    ));
    Ok(())
}
