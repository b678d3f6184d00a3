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

use std::path::Path;

use crate::apt::Apt;
use crate::config::BoxConfig;
use crate::debs::{self, Debs};
use crate::dom0_tree::{
    depmod, finish_root, install_modules, pack, publish, set_exec, unpack, userland, DOM0_INIT,
    DOM0_MODULES,
};
use crate::image::{pad512, Artifacts};
use crate::stack::Stack;
use crate::util::{lock_dir, mkdirs, rmrf, say, write, Context, Fnv, Result, Stopwatch};

/// Bumped whenever the way images are built changes.
const RECIPE: &str = "xen-box arm64 image recipe 2";
/// domU init with the virtio-mmio probe mode.
const DOMU_INIT: &str = include_str!("../../assets/arm64-domu-init");
/// dom0 helper creating a paused domU with a virtio-mmio device.
const VIRTIO_DOMU: &str = include_str!("../../assets/arm64-virtio-domu");
/// Kernel modules the domU initramfs carries: the virtio-mmio transport, the entropy device,
/// and AF_VSOCK over virtio (with what they depend on).
const DOMU_MODULES: &[&str] = &["virtio_mmio", "virtio-rng", "vmw_vsock_virtio_transport"];

/// Resolves, downloads and builds what the aarch64 box of `stack` needs,
/// reusing everything cached.
pub fn prepare(config: &BoxConfig, stack: Stack, refresh: bool) -> Result<Artifacts> {
    let sw = Stopwatch::start();
    let dir = config.cache_dir(stack);
    mkdirs(&dir)?;
    // Several jobs may share the cache: one prepares a stack at a time.
    let _lock = lock_dir(&dir)?;
    let apt = Apt::new_arch(&dir.join("apt"), stack.name(), "arm64")?;
    let mut lists = apt.ensure_lists(refresh)?;
    let (plan, downloaded) = match debs::resolve(RECIPE, "arm64", stack, &[], &apt, &dir) {
        Ok(p) => p,
        Err(e) if !lists => {
            say(format!("{e}; refreshing the package lists and retrying"));
            lists = apt.ensure_lists(true)?;
            debs::resolve(RECIPE, "arm64", stack, &[], &apt, &dir)?
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
    for d in plan.all() {
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
        config: config.clone(),
        xen: img.join("xen"),
        vmlinuz: img.join("Image"),
        dom0: img.join("dom0.cpio.zst"),
        manifest: std::fs::read_to_string(img.join("manifest.txt")).unwrap_or_default(),
    })
}

fn build(
    stack: Stack,
    plan: &Debs,
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
    let kver = plan.kernel_version();
    std::fs::copy(xen, tmp.join("xen")).context(|| "cannot copy the hypervisor".into())?;
    std::fs::copy(boot.join(format!("boot/vmlinuz-{kver}")), tmp.join("Image"))
        .context(|| format!("cannot copy vmlinuz-{kver}"))?;
    depmod(&boot, &kver)?;

    // dom0 tree and the virtio domU helper.
    let root = work.join("root");
    let busybox = userland(
        &root,
        &plan.userland,
        "aarch64-linux-gnu",
        stack.xen_version(),
    )?;
    install_modules(&boot, &root, &kver, DOM0_MODULES)?;
    finish_root(&root, stack, &tmp.join("Image"))?;
    let helper = root.join("usr/local/bin/xen-box-virtio-domu");
    write(&helper, VIRTIO_DOMU)?;
    set_exec(&helper)?;

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

    let manifest = format!(
        "stack {} (aarch64)\nXen {} (hypervisor rebuilt from Debian source {src_version} with CONFIG_IOREQ_SERVER)\nkernel {kver}\n.debs:\n{}",
        stack.name(),
        stack.xen_version(),
        plan.manifest_lines()
    );
    let size = publish(&tmp, img, &work, &manifest)?;
    say(format!(
        "built {}-arm64 image in {:.1} s (dom0 initramfs {:.1} MB)",
        stack.name(),
        sw.secs(),
        size as f64 / 1e6
    ));
    Ok(())
}
