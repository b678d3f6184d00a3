// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Assembly of a dom0 root tree from unpacked .debs, shared by both
//! architectures: merged /usr, userland, trimming, kernel modules (with
//! depmod), the init and stack description, and newc cpio packing. What
//! differs per architecture (hypervisor, kernel file, domU initramfs) stays
//! with each image builder.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cpio::CpioWriter;
use crate::stack::Stack;
use crate::util::{mkdirs, output, rmrf, run, write, Context, Result};
use crate::{bail, err};

/// dom0's init, the same on every architecture (markers, environment and
/// failure detection are identical).
pub const DOM0_INIT: &str = include_str!("../assets/dom0-init");
/// Kernel modules dom0 needs for the Xen userspace (loaded with their
/// dependencies by the init).
pub const DOM0_MODULES: &[&str] = &[
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
];

/// Unpacks `deb` into `into`.
pub fn unpack(deb: &Path, into: &Path) -> Result<()> {
    // --keep-directory-symlink: bookworm packages ship /lib, /bin..., which
    // must land in the merged /usr through the symlinks we create.
    run(Command::new("sh")
        .arg("-c")
        .arg(r#"dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2""#)
        .arg("sh")
        .arg(deb)
        .arg(into))
}

/// Runs depmod for kernel `kver` on the tree at `base`.
pub fn depmod(base: &Path, kver: &str) -> Result<()> {
    // kmod looks in <base>/lib/modules; trixie ships /usr/lib/modules.
    if !base.join("lib").exists() {
        std::os::unix::fs::symlink("usr/lib", base.join("lib"))
            .context(|| "cannot link lib -> usr/lib".into())?;
    }
    run(Command::new("depmod").arg("-b").arg(base).arg(kver))
}

/// Builds the dom0 userland in `root`: a merged-/usr layout, every .deb of
/// `debs` unpacked into it, then documentation, headers, the gconv modules of
/// `multiarch` (`x86_64-linux-gnu`...) and Xen's Python removed. Returns the
/// path of busybox in it.
pub fn userland(
    root: &Path,
    debs: &[PathBuf],
    multiarch: &str,
    xen_version: &str,
) -> Result<PathBuf> {
    for d in ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64"] {
        mkdirs(&root.join(d))?;
    }
    for d in ["bin", "sbin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{d}"), root.join(d))
            .context(|| format!("cannot link {d}"))?;
    }
    for deb in debs {
        unpack(deb, root)?;
    }
    let gconv = format!("usr/lib/{multiarch}/gconv");
    for t in [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "usr/share/lintian",
        "usr/share/bug",
        "usr/include",
        &gconv,
    ] {
        rmrf(&root.join(t))?;
    }
    if let Ok(rd) = std::fs::read_dir(root.join(format!("usr/lib/xen-{xen_version}/lib"))) {
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
    Ok(busybox)
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

/// Copies modules `names` (decompressed: busybox modprobe reads only plain
/// .ko) from the kernel tree in `boot` into `root`, then runs depmod there.
pub fn install_modules(boot: &Path, root: &Path, kver: &str, names: &[&str]) -> Result<()> {
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
    depmod(root, kver)
}

/// Makes `path` executable (mode 0755).
pub fn set_exec(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .context(|| format!("cannot chmod {}", path.display()))
}

/// Adds the init, the stack description, the mount points and the domU
/// kernel `domu_kernel` (as `srv/xen-box/vmlinuz`) to `root`.
pub fn finish_root(root: &Path, stack: Stack, domu_kernel: &Path) -> Result<()> {
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
    for d in [
        "proc", "sys", "dev", "run", "tmp", "root", "var/log", "var/lib", "etc/xen",
    ] {
        mkdirs(&root.join(d))?;
    }
    mkdirs(&root.join("srv/xen-box"))?;
    std::fs::copy(domu_kernel, root.join("srv/xen-box/vmlinuz"))
        .context(|| "cannot copy the domU kernel".into())?;
    Ok(())
}

/// Writes `root` as a newc cpio (with `dev/console`) through `compressor`
/// into `dest`.
pub fn pack(root: &Path, dest: &Path, compressor: &[&str]) -> Result<()> {
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
            .ok_or_else(|| err!("{} has no stdin", compressor[0]))?;
        let mut w = CpioWriter::new(BufWriter::new(stdin));
        w.chardev("dev/console", 0o600, 5, 1)
            .context(|| "cannot write cpio".into())?;
        crate::cpio::append_tree(&mut w, root, "")?;
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

/// Writes `manifest` and the completion mark into the staging directory
/// `tmp`, moves it to `img` and removes the work tree `work`. Returns the size
/// of the dom0 initramfs.
pub fn publish(tmp: &Path, img: &Path, work: &Path, manifest: &str) -> Result<u64> {
    write(&tmp.join("manifest.txt"), manifest)?;
    write(&tmp.join(".complete"), "")?;
    rmrf(img)?;
    std::fs::rename(tmp, img).context(|| format!("cannot rename to {}", img.display()))?;
    rmrf(work)?;
    Ok(std::fs::metadata(img.join("dom0.cpio.zst")).map_or(0, |m| m.len()))
}
