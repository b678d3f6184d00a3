// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the running-domU tests (`domu_grant.rs`, `domu_foreign.rs`) share: building a domU
//! initramfs in which the test executable itself is the workload, booting the domU, and waiting
//! on xenstore with deadlines.
//!
//! Each of those tests is its own `main` (`harness = false`): in dom0 it builds the initramfs
//! (the box's busybox domU ramdisk followed by an appended cpio holding this very executable,
//! the shared libraries it runs with, taken from dom0, which runs the same userland files, any
//! kernel modules the domU side needs, and an init that re-executes the binary with the test's
//! domU-side argument), boots a PVH domU from it and plays the dom0 side; in the domU the same
//! binary plays the domU side.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xen_bindings::xenstore::Xenstore;
use xen_box_testing::cpio::CpioWriter;
use xen_box_testing::XlDomain;

pub use xen_box_testing::domu_env_with_ramdisk as xen_env;

/// A running domU, destroyed on drop (by its [`XlDomain`]); its console log is printed if the
/// test is failing.
pub struct DomU {
    /// The domain (`name`, `domid` through `Deref`).
    domain: XlDomain,
    /// Its xenstore directory, `/local/domain/<domid>`.
    pub dir: String,
    /// The initramfs built for it, removed on drop.
    ramdisk: PathBuf,
}

impl std::ops::Deref for DomU {
    type Target = XlDomain;

    fn deref(&self) -> &XlDomain {
        &self.domain
    }
}

impl DomU {
    fn console_log(&self) -> String {
        let path = format!("/var/log/xen/console/guest-{}.log", self.name);
        std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no console log at {path}: {e})"))
    }
}

impl Drop for DomU {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- console of {} ---\n{}\n--- end of console ---",
                self.name,
                self.console_log()
            );
        }
        let _ = std::fs::remove_file(&self.ramdisk);
    }
}

/// The shared objects mapped into this process (the dynamic loader included).
fn mapped_libraries() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("reading /proc/self/maps");
    let mut libs: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let p = PathBuf::from(path);
        let is_so = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(".so"));
        if path.starts_with('/') && is_so && !libs.contains(&p) {
            libs.push(p);
        }
    }
    libs
}

/// The box's domU ramdisk with a cpio appended that makes this binary, run with `side_arg`,
/// the domU's workload; `modules` (plain `.ko` files) are loaded first, in order.
fn build_ramdisk(box_ramdisk: &Path, dest: &Path, side_arg: &str, modules: &[PathBuf]) {
    let mut image = std::fs::read(box_ramdisk).unwrap();
    // The kernel unpacks concatenated archives, each starting on a 4-byte boundary.
    image.resize(image.len().next_multiple_of(4), 0);

    let exe = std::env::current_exe().unwrap();
    let mut cpio = CpioWriter::new(Vec::new());
    for d in ["xfm", "xfm/lib", "xfm/mod"] {
        cpio.dir(d, 0o755).unwrap();
    }
    cpio.file("xfm/helper", 0o755, &std::fs::read(&exe).unwrap())
        .unwrap();
    let mut loader = None;
    for lib in mapped_libraries() {
        let name = lib.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("ld-linux") {
            loader = Some(name.clone());
        }
        cpio.file(
            &format!("xfm/lib/{name}"),
            0o755,
            &std::fs::read(&lib).unwrap(),
        )
        .unwrap();
    }
    let loader = loader.expect("the dynamic loader is mapped into this process");
    let mut load_modules = String::new();
    for (i, m) in modules.iter().enumerate() {
        let name = format!("xfm/mod/{i:02}.ko");
        cpio.file(&name, 0o644, &std::fs::read(m).unwrap()).unwrap();
        load_modules.push_str(&format!(
            "insmod /{name} || echo \"XFM-DOMU: insmod {} failed\"\n",
            m.display()
        ));
    }
    // The helper's exit status decides: success idles (dom0 reads the result, then destroys
    // the domain), failure powers off at once so dom0 notices without waiting for a deadline.
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         echo \"XFM-DOMU: init up kernel=$(uname -r)\"\n\
         {load_modules}\
         if /xfm/lib/{loader} --library-path /xfm/lib /xfm/helper {side_arg}; then\n\
         \x20 while :; do sleep 3600; done\n\
         fi\n\
         poweroff -f\n"
    );
    cpio.file("xfm/init", 0o755, init.as_bytes()).unwrap();
    image.extend_from_slice(&cpio.finish().unwrap());
    std::fs::write(dest, image).unwrap();
}

/// Builds the initramfs (see [`build_ramdisk`]) and boots a PVH domU named `xfm-<tag>-<pid>`
/// from it (`memory_mib` of RAM), with a xenstore connection watching domain deaths and the
/// domU's `data` directory, so [`wait_for`] sees both.
pub fn boot_domu(
    tag: &str,
    kernel: &Path,
    box_ramdisk: &Path,
    side_arg: &str,
    modules: &[PathBuf],
    memory_mib: u32,
) -> (Xenstore, DomU) {
    let work = std::env::current_dir().unwrap();
    let ramdisk = work.join(format!("xfm-{tag}-{}.cpio", std::process::id()));
    build_ramdisk(box_ramdisk, &ramdisk, side_arg, modules);
    eprintln!(
        "built {} ({} KiB)",
        ramdisk.display(),
        std::fs::metadata(&ramdisk).unwrap().len() >> 10
    );

    let name = format!("xfm-{tag}-{}", std::process::id());
    // Arm guests are always auto-translated, which xl calls PVH as well.
    let cfg = format!(
        "type = \"pvh\"\nkernel = \"{}\"\nramdisk = \"{}\"\n\
         extra = \"console=hvc0 rdinit=/xfm/init\"\nmemory = {memory_mib}\nvcpus = 1\n\
         on_poweroff = \"destroy\"\non_crash = \"destroy\"\n",
        kernel.display(),
        ramdisk.display(),
    );

    let mut xs = Xenstore::open().expect("connecting to xenstored");
    // Watch domain deaths before the domain exists, so an early crash is seen.
    xs.watch("@releaseDomain", "release")
        .expect("watching @releaseDomain");
    let domain = XlDomain::create(name, &cfg, false);
    let domu = DomU {
        dir: format!("/local/domain/{}", domain.domid),
        domain,
        ramdisk,
    };
    eprintln!("started PVH domU {} (domid {})", domu.name, domu.domid);
    xs.watch(&format!("{}/data", domu.dir), "data")
        .expect("watching the domU's data directory");
    (xs, domu)
}

/// Waits (watch with a deadline) until `path` exists and returns its value; fails early, with
/// `fail_path`'s value, if that appears, or if the domain dies.
pub fn wait_for(
    xs: &mut Xenstore,
    domu: &DomU,
    path: &str,
    fail_path: Option<&str>,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        match xs.read_string(path) {
            Ok(v) => return v,
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("reading {path}: {e}"),
        }
        if let Some(v) = fail_path.and_then(|p| xs.read_string(p).ok()) {
            panic!("the domU reported {fail_path:?} = {v:?}");
        }
        if let Err(e) = xs.read(&format!("{}/name", domu.dir)) {
            panic!("domU {} is gone ({e}) before {path} appeared", domu.name);
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("{path} did not appear within {within:?}"));
        // Any event (the domU's data directory, a domain dying) re-checks everything.
        xs.wait_event(Some(left)).expect("waiting for a watch");
    }
}

/// The domU side's wait: until `path` (relative to the domU's own directory) exists, watching
/// it, at most until `deadline`.
pub fn domu_wait(xs: &mut Xenstore, path: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    xs.watch(path, "wait")
        .map_err(|e| format!("watching {path}: {e}"))?;
    loop {
        match xs.read(path) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(format!("reading {path}: {e}")),
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or_else(|| format!("{path} did not appear in time"))?;
        xs.wait_event(Some(left))
            .map_err(|e| format!("waiting for {path}: {e}"))?;
    }
}

/// The `main` of a test executable that is also its own domU workload: run with `flag`
/// (inside the domU), it runs `domu_side` and reports the outcome on the console the dom0 side
/// watches (`XFM-DOMU: ok` or `XFM-DOMU: failed: ...`, exit status 1); otherwise it runs
/// `dom0_side`, the test proper.
pub fn run_side(flag: &str, domu_side: fn() -> Result<(), String>, dom0_side: fn()) {
    if !std::env::args().any(|a| a == flag) {
        return dom0_side();
    }
    match domu_side() {
        Ok(()) => println!("XFM-DOMU: ok"),
        Err(e) => {
            println!("XFM-DOMU: failed: {e}");
            std::process::exit(1);
        }
    }
}
