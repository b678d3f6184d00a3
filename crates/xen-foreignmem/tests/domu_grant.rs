// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Grant mode against pages a running domU grants (run as root in dom0: `cargo xtask xen-box
//! test`).
//!
//! This binary plays both sides. In dom0 it builds a domU initramfs at run time: the box's
//! busybox domU ramdisk (`XEN_BOX_DOMU_RAMDISK`) followed by an appended cpio holding this very
//! executable, the shared libraries it runs with (taken from dom0, which runs the same userland
//! files), the `xen-gntalloc` module of the running kernel (dom0 and domU boot the same kernel)
//! and an init that loads the module and re-executes this binary with [`DOMU_SIDE`]. It then
//! boots a PVH domU from it.
//!
//! In the domU the binary shares two writable pages and one read-only page with domain 0
//! through gntalloc, fills them with a known pattern and publishes the grant references under its
//! own xenstore directory (`data/xfm-grefs`). Dom0 reads the pattern through [`GrantMemory`]
//! (grant addresses), writes its answer, unmaps and sets `data/xfm-dom0-done`; the domU checks
//! the answer in its pages and reports `data/xfm-result`. Every wait is a xenstore watch with a
//! deadline.
//!
//! `harness = false`: the binary is its own main, so the domU side needs no test harness.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use xen_bindings::gntalloc::GntAlloc;
use xen_bindings::xenstore::Xenstore;
use xen_foreignmem::{grant_addr, Error, GrantMemory, XenGrantMapper, XEN_PAGE_SIZE};

/// The argument that selects the domU side.
const DOMU_SIDE: &str = "--xfm-domu-side";
/// Marks the start of the domU's first page.
const DOMU_MAGIC: &[u8] = b"xfm domU grant page";
/// What dom0 writes at offset 8 of the first page.
const DOM0_WORD: u64 = 0x0d0_f00d_cafe_d00d;
/// How long the domU may take to boot and publish its grants (software-emulated box).
const BOOT_DEADLINE: Duration = Duration::from_secs(300);
/// How long the domU may take to check dom0's answer.
const RESULT_DEADLINE: Duration = Duration::from_secs(120);

/// Byte `i` of granted page `page` as the domU fills it (after the magic on page 0).
fn domu_byte(page: usize, i: usize) -> u8 {
    (i * 7 + page * 31 + 1) as u8
}

/// Byte `i` of the second page as dom0 rewrites it.
fn dom0_byte(i: usize) -> u8 {
    (i * 11 + 5) as u8
}

fn main() {
    if std::env::args().any(|a| a == DOMU_SIDE) {
        match domu_side() {
            Ok(()) => println!("XFM-DOMU: ok"),
            Err(e) => {
                println!("XFM-DOMU: failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    dom0_side();
}

// ---------------------------------------------------------------------------------------------
// The domU side.

/// Writes `data/xfm-result` (best effort: the console carries the error too).
fn report(xs: &mut Xenstore, result: &str) {
    if let Err(e) = xs.write("data/xfm-result", result) {
        println!("XFM-DOMU: cannot write data/xfm-result: {e}");
    }
}

fn domu_side() -> Result<(), String> {
    let mut xs = Xenstore::open().map_err(|e| format!("opening xenstore: {e}"))?;
    let res = domu_grant(&mut xs);
    match &res {
        Ok(()) => report(&mut xs, "ok"),
        Err(e) => report(&mut xs, &format!("fail: {e}")),
    }
    res
}

fn domu_grant(xs: &mut Xenstore) -> Result<(), String> {
    let alloc = GntAlloc::open().map_err(|e| format!("opening gntalloc: {e}"))?;
    let rw = alloc
        .share(0, 2, true)
        .map_err(|e| format!("granting two pages to dom0: {e}"))?;
    let ro = alloc
        .share(0, 1, false)
        .map_err(|e| format!("granting a read-only page to dom0: {e}"))?;
    let page0: Vec<u8> = (0..XEN_PAGE_SIZE).map(|i| domu_byte(0, i)).collect();
    let page1: Vec<u8> = (0..XEN_PAGE_SIZE).map(|i| domu_byte(1, i)).collect();
    let page2: Vec<u8> = (0..XEN_PAGE_SIZE).map(|i| domu_byte(2, i)).collect();
    let io = |e| format!("filling granted pages: {e}");
    rw.write_at(0, &page0).map_err(io)?;
    rw.write_at(0, DOMU_MAGIC).map_err(io)?;
    rw.write_at(XEN_PAGE_SIZE, &page1).map_err(io)?;
    ro.write_at(0, &page2).map_err(io)?;
    let grefs = format!("{} {} {}", rw.grefs()[0], rw.grefs()[1], ro.grefs()[0]);
    println!("XFM-DOMU: granted {grefs}");

    // Watch before publishing, so dom0's answer cannot slip in between.
    xs.watch("data/xfm-dom0-done", "done")
        .map_err(|e| format!("watching data/xfm-dom0-done: {e}"))?;
    xs.write("data/xfm-grefs", &grefs)
        .map_err(|e| format!("writing data/xfm-grefs: {e}"))?;
    let deadline = Instant::now() + BOOT_DEADLINE + RESULT_DEADLINE;
    loop {
        match xs.read("data/xfm-dom0-done") {
            Ok(_) => break,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(format!("reading data/xfm-dom0-done: {e}")),
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or("dom0 did not answer in time")?;
        xs.wait_event(Some(left))
            .map_err(|e| format!("waiting for dom0: {e}"))?;
    }

    // Dom0's answer, seen in the domU's own pages.
    let mut word = [0u8; 8];
    rw.read_at(8, &mut word).map_err(io)?;
    if u64::from_le_bytes(word) != DOM0_WORD {
        return Err(format!(
            "page 0 offset 8 holds {:#x}, not dom0's {DOM0_WORD:#x}",
            u64::from_le_bytes(word)
        ));
    }
    let mut back = vec![0u8; XEN_PAGE_SIZE];
    rw.read_at(XEN_PAGE_SIZE, &mut back).map_err(io)?;
    if let Some(i) = (0..XEN_PAGE_SIZE).find(|&i| back[i] != dom0_byte(i)) {
        return Err(format!(
            "page 1 byte {i} is {:#x}, dom0 wrote {:#x}",
            back[i],
            dom0_byte(i)
        ));
    }
    ro.read_at(0, &mut back).map_err(io)?;
    if back != page2 {
        return Err("the read-only page changed".into());
    }
    println!("XFM-DOMU: dom0's writes are in the granted pages");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dom0 side.

/// The box's domU kernel and ramdisk, or `None` after printing why the test is skipped.
fn xen_env() -> Option<(PathBuf, PathBuf)> {
    const TEST: &str = "grant_mode_over_a_domu_grant";
    let in_box = std::env::var_os("XEN_BOX").is_some_and(|v| v == "1");
    if !Path::new("/dev/xen/privcmd").exists() {
        assert!(!in_box, "{TEST}: XEN_BOX=1 but /dev/xen/privcmd is missing");
        eprintln!("SKIPPED: {TEST}: not running in a Xen dom0");
        return None;
    }
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    match (var("XEN_BOX_DOMU_KERNEL"), var("XEN_BOX_DOMU_RAMDISK")) {
        (Some(k), Some(r)) => Some((k, r)),
        _ => {
            assert!(
                !in_box,
                "{TEST}: XEN_BOX=1 but XEN_BOX_DOMU_KERNEL/RAMDISK are unset"
            );
            eprintln!("SKIPPED: {TEST}: XEN_BOX_DOMU_KERNEL/XEN_BOX_DOMU_RAMDISK not set");
            None
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `xl create`, retried once when xl itself dies of a signal: the box's Xen 4.20 xl
/// intermittently aborts in malloc ("corrupted double-linked list", about one create in 16, see
/// the box notes). That is the toolstack crashing, not what this test checks; a second crash,
/// or any ordinary failure, fails the test.
fn xl_create(cfg: &Path, name: &str) {
    use std::os::unix::process::ExitStatusExt;
    for attempt in 1..=2 {
        let out = Command::new("xl")
            .arg("create")
            .arg(cfg)
            .output()
            .expect("running xl create");
        if out.status.success() {
            return;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.signal().is_some() && attempt == 1 {
            eprintln!(
                "warning: xl create died ({}): {stderr}; retrying once",
                out.status
            );
            // It may have died after creating the domain.
            let _ = Command::new("xl").arg("destroy").arg(name).output();
            continue;
        }
        panic!(
            "xl create {} failed: {}\n{stderr}",
            cfg.display(),
            out.status
        );
    }
}

/// A running domU, destroyed on drop; its console log is printed if the test is failing.
struct DomU {
    name: String,
    domid: u16,
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
        let ok = Command::new("xl")
            .arg("destroy")
            .arg(&self.name)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("warning: xl destroy {} failed", self.name);
        }
    }
}

/// A `newc` cpio archive (the format the kernel unpacks as initramfs).
struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Self {
        Cpio {
            buf: Vec::new(),
            ino: 0x5000,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            u32::try_from(data.len()).expect("cpio member under 4 GiB"),
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | mode, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
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

/// The `xen-gntalloc` module file of the running kernel and the modules it needs, in load
/// order; empty when the kernel has the driver built in.
fn gntalloc_modules() -> Vec<PathBuf> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim();
    let base = ["/lib/modules", "/usr/lib/modules"]
        .iter()
        .map(|b| Path::new(b).join(release))
        .find(|p| p.join("modules.dep").exists())
        .unwrap_or_else(|| panic!("no modules.dep for kernel {release} in dom0"));
    let dep = std::fs::read_to_string(base.join("modules.dep")).unwrap();
    let Some(line) = dep.lines().find(|l| {
        l.split(':')
            .next()
            .is_some_and(|m| m.rsplit('/').next() == Some("xen-gntalloc.ko"))
    }) else {
        eprintln!("xen-gntalloc is not a module of {release}: assuming it is built in");
        return Vec::new();
    };
    let (module, deps) = line.split_once(':').unwrap();
    // modules.dep lists dependencies so that the last one is loaded first.
    let mut order: Vec<PathBuf> = deps
        .split_whitespace()
        .rev()
        .map(|d| base.join(d))
        .collect();
    order.push(base.join(module));
    for m in &order {
        assert!(
            m.extension().is_some_and(|e| e == "ko"),
            "{} is compressed: this test loads plain .ko files",
            m.display()
        );
    }
    order
}

/// The box's domU ramdisk with a cpio appended that makes this binary the domU's workload.
fn build_ramdisk(box_ramdisk: &Path, dest: &Path) {
    let mut image = std::fs::read(box_ramdisk).unwrap();
    // The kernel unpacks concatenated archives, each starting on a 4-byte boundary.
    image.resize(image.len().next_multiple_of(4), 0);

    let exe = std::env::current_exe().unwrap();
    let mut cpio = Cpio::new();
    for d in ["xfm", "xfm/lib", "xfm/mod"] {
        cpio.dir(d);
    }
    cpio.file("xfm/helper", 0o755, &std::fs::read(&exe).unwrap());
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
        );
    }
    let loader = loader.expect("the dynamic loader is mapped into this process");
    let mut load_modules = String::new();
    for (i, m) in gntalloc_modules().iter().enumerate() {
        let name = format!("xfm/mod/{i:02}.ko");
        cpio.file(&name, 0o644, &std::fs::read(m).unwrap());
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
         if /xfm/lib/{loader} --library-path /xfm/lib /xfm/helper {DOMU_SIDE}; then\n\
         \x20 while :; do sleep 3600; done\n\
         fi\n\
         poweroff -f\n"
    );
    cpio.file("xfm/init", 0o755, init.as_bytes());
    image.extend_from_slice(&cpio.finish());
    std::fs::write(dest, image).unwrap();
}

/// Waits (watch with a deadline) until `path` exists and returns its value; fails early, with
/// `fail_path`'s value, if that appears, or if the domain dies.
fn wait_for(
    xs: &mut Xenstore,
    domu: &DomU,
    path: &str,
    fail_path: Option<&str>,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    let dom = format!("/local/domain/{}", domu.domid);
    loop {
        match xs.read_string(path) {
            Ok(v) => return v,
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("reading {path}: {e}"),
        }
        if let Some(v) = fail_path.and_then(|p| xs.read_string(p).ok()) {
            panic!("the domU reported {fail_path:?} = {v:?}");
        }
        if let Err(e) = xs.read(&format!("{dom}/name")) {
            panic!("domU {} is gone ({e}) before {path} appeared", domu.name);
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("{path} did not appear within {within:?}"));
        // Any event (the domU's data directory, a domain dying) re-checks everything.
        xs.wait_event(Some(left)).expect("waiting for a watch");
    }
}

fn dom0_side() {
    let Some((kernel, box_ramdisk)) = xen_env() else {
        return;
    };
    let t0 = Instant::now();
    let work = std::env::current_dir().unwrap();
    let ramdisk = work.join(format!("xfm-domu-{}.cpio", std::process::id()));
    build_ramdisk(&box_ramdisk, &ramdisk);
    eprintln!(
        "built {} ({} KiB)",
        ramdisk.display(),
        std::fs::metadata(&ramdisk).unwrap().len() >> 10
    );

    let name = format!("xfm-grant-{}", std::process::id());
    let cfg = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"{}\"\nramdisk = \"{}\"\n\
         extra = \"console=hvc0 rdinit=/xfm/init\"\nmemory = 256\nvcpus = 1\n\
         on_poweroff = \"destroy\"\non_crash = \"destroy\"\n",
        kernel.display(),
        ramdisk.display(),
    );
    let cfg_path = work.join(format!("{name}.cfg"));
    std::fs::write(&cfg_path, cfg).unwrap();

    let mut xs = Xenstore::open().expect("connecting to xenstored");
    // Watch domain deaths before the domain exists, so an early crash is seen.
    xs.watch("@releaseDomain", "release")
        .expect("watching @releaseDomain");
    xl_create(&cfg_path, &name);
    let mut domu = DomU { name, domid: 0 };
    let id = run(Command::new("xl").arg("domid").arg(&domu.name));
    domu.domid = id.trim().parse().expect("xl domid prints a number");
    let dom = format!("/local/domain/{}", domu.domid);
    eprintln!("started PVH domU {} (domid {})", domu.name, domu.domid);
    xs.watch(&format!("{dom}/data"), "data")
        .expect("watching the domU's data directory");

    let grefs = wait_for(
        &mut xs,
        &domu,
        &format!("{dom}/data/xfm-grefs"),
        Some(&format!("{dom}/data/xfm-result")),
        BOOT_DEADLINE,
    );
    eprintln!("domU granted {grefs:?} after {:?}", t0.elapsed());
    let g: Vec<u32> = grefs
        .split_whitespace()
        .map(|s| s.parse().expect("grant references are numbers"))
        .collect();
    assert_eq!(g.len(), 3, "two writable and one read-only grant");

    let grants = GrantMemory::new(XenGrantMapper::open().unwrap(), domu.domid, 8).unwrap();
    let mem = grants.memory();
    // The domU's pattern, read through grant addresses.
    let mut page = vec![0u8; XEN_PAGE_SIZE];
    mem.read_slice(&mut page, GuestAddress(grant_addr(g[0], 0)))
        .unwrap();
    assert_eq!(&page[..DOMU_MAGIC.len()], DOMU_MAGIC);
    for (i, &b) in page.iter().enumerate().skip(DOMU_MAGIC.len()) {
        assert_eq!(b, domu_byte(0, i), "page 0 byte {i}");
    }
    let word: u32 = mem.read_obj(GuestAddress(grant_addr(g[1], 0x7fc))).unwrap();
    let expect = u32::from_le_bytes(std::array::from_fn(|k| domu_byte(1, 0x7fc + k)));
    assert_eq!(word, expect);
    mem.read_slice(&mut page, GuestAddress(grant_addr(g[2], 0)))
        .unwrap();
    assert!(page.iter().enumerate().all(|(i, &b)| b == domu_byte(2, i)));

    // Dom0's answer.
    mem.write_obj(DOM0_WORD, GuestAddress(grant_addr(g[0], 8)))
        .unwrap();
    let answer: Vec<u8> = (0..XEN_PAGE_SIZE).map(dom0_byte).collect();
    mem.write_slice(&answer, GuestAddress(grant_addr(g[1], 0)))
        .unwrap();

    // The read-only grant cannot be mapped for writing: a typed error, not a fault.
    let err = mem
        .write_obj(0u32, GuestAddress(grant_addr(g[2], 0)))
        .unwrap_err();
    match Error::from_guest_memory_error(&err) {
        Some(Error::MapGrant { gref, source, .. }) => {
            eprintln!("writable mapping of read-only grant {gref}: {source}");
            assert_eq!(*gref, g[2]);
        }
        _ => panic!("unexpected error writing a read-only grant: {err}"),
    }
    drop(mem);
    for &r in &g {
        grants.release(r);
    }
    assert_eq!(grants.stats().live, 0, "every grant unmapped");
    xs.write(&format!("{dom}/data/xfm-dom0-done"), "1")
        .expect("writing xfm-dom0-done");

    let result = wait_for(
        &mut xs,
        &domu,
        &format!("{dom}/data/xfm-result"),
        None,
        RESULT_DEADLINE,
    );
    assert_eq!(result, "ok", "the domU's verdict");
    eprintln!(
        "grant_mode_over_a_domu_grant: ok ({:?}, cache {:?})",
        t0.elapsed(),
        grants.stats()
    );
    drop(domu);
    let _ = std::fs::remove_file(&ramdisk);
}
