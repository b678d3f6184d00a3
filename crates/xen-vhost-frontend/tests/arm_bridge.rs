// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arm box test: an unmodified vhost-device-rng from crates.io, built with its `xen` feature
//! by the harness, serves a Linux domU's virtio-mmio entropy device through this crate's
//! [`Service`], started before the domU exists and answering the xenbus handshake itself
//! (`cargo xtask xen-box test --arch aarch64 -p xen-vhost-frontend`).
//!
//! The box's `xen-box-virtio-domu NAME rng` creates the paused domU (Xen 4.20: `virtio = [...]`;
//! Xen 4.17: a `specification=virtio` disk, 4.17's way to get a virtio-mmio node); its init
//! reads /dev/hwrng four times and prints the bytes. They must be the daemon's rng source
//! file's, in order. xl places virtio-mmio devices only on Arm: elsewhere the test says so
//! loudly and skips.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xen_bindings::xenstore::Xenstore;
use xen_box_testing::{held, in_box, in_dom0, run, XlDomain};
use xen_ioreq::NotifyPath;
use xen_vhost_frontend::{Config, DeviceBackend, DeviceType, Paths, Service};

/// Prints past the test harness's capture, so the box's report shows it.
macro_rules! report {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// The log lines of the service, printed and kept.
struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}: {}", r.level(), r.target(), r.args());
            report!("log: {line}");
            self.0.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

fn recorder() -> &'static Recorder {
    static R: std::sync::OnceLock<&'static Recorder> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let r: &'static Recorder = Box::leak(Box::new(Recorder(Mutex::new(Vec::new()))));
        if log::set_logger(r).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
        r
    })
}

/// The daemon's binary, or `None` after a loud skip.
fn daemon(test: &str) -> Option<PathBuf> {
    if !in_dom0(test) {
        return None;
    }
    if !cfg!(target_arch = "aarch64") {
        report!(
            "SKIPPED: {test}: xl places virtio-mmio devices only on Arm (this is {})",
            std::env::consts::ARCH
        );
        return None;
    }
    match std::env::var_os("XEN_BOX_VHOST_DEVICE_RNG") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                !in_box(),
                "{test}: the box did not provide vhost-device-rng"
            );
            report!("SKIPPED: {test}: XEN_BOX_VHOST_DEVICE_RNG (the daemon) is not set");
            None
        }
    }
}

/// Prints a log file if the test panics while this is alive.
struct DumpOnPanic(PathBuf);

impl Drop for DumpOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            report!("{}:\n{log}", self.0.display());
        }
    }
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `len` bytes that are not a repeating pattern (xorshift64*), as the rng source file.
fn source_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// The reads the guest printed: `XEN-BOX-DOMU: hwrng I HEX`.
fn hwrng_reads(console: &str) -> Vec<Vec<u8>> {
    console
        .lines()
        .filter_map(|l| l.trim().strip_prefix("XEN-BOX-DOMU: hwrng "))
        .filter_map(|rest| {
            let mut f = rest.split_whitespace();
            f.next()?.parse::<u32>().ok()?;
            let hex = f.next().unwrap_or("");
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .collect()
}

fn console(name: &str) -> String {
    std::fs::read_to_string(format!("/var/log/xen/console/guest-{name}.log")).unwrap_or_default()
}

/// Waits for `cond`, checking every `step`, for at most `limit`; panics with `what()`.
fn wait_for(limit: Duration, what: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{} not within {limit:?}", what());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the service thread saw on its last turn.
#[derive(Debug, Default, Clone, Copy)]
struct Snapshot {
    guests: usize,
    /// The first guest's first device: its paths, its Status, the interrupts relayed.
    paths: Option<Paths>,
    status: Option<u32>,
    relayed: u64,
}

/// The running service, on a thread, with what it serves.
struct Running {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Snapshot>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(socket: &Path) -> Running {
        let config = Config {
            backends: vec![DeviceBackend {
                device_type: DeviceType::Rng,
                socket: socket.to_path_buf(),
            }],
            domid: None,
            backend_domid: 0,
        };
        let mut service = Service::new(config, Xenstore::open().unwrap()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Snapshot::default()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    service.run_once(Duration::from_millis(100)).unwrap();
                    let first = service.guests().next();
                    *seen.lock().unwrap() = Snapshot {
                        guests: service.guests().count(),
                        paths: first.and_then(|g| g.paths(0)),
                        status: first.and_then(|g| g.status(0)),
                        relayed: first.map_or(0, |g| g.relayed_interrupts()),
                    };
                }
                service.shutdown();
            })
        };
        Running {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Snapshot {
        *self.seen.lock().unwrap()
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("the service thread panicked");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Arm only: the domU reads /dev/hwrng, served by the unmodified vhost-device-rng (`xen`
/// build) through xen-vhost-frontend, its memory shared as foreign mappings; the bytes are the
/// daemon's source file's. The daemon is killed (the device needs a reset, the service goes
/// on), then the domU is destroyed: the service tears the guest down, and this process holds
/// what it held before.
#[test]
fn arm_domu_reads_entropy_from_unmodified_vhost_device_rng() {
    const TEST: &str = "arm_domu_reads_entropy_from_unmodified_vhost_device_rng";
    let Some(daemon) = daemon(TEST) else {
        return;
    };
    bridge(TEST, &daemon, None);
}

/// The same in grant mode (`grant_usage=1`): the guest's kernel hands its device grant
/// addresses, and the daemon maps the grants through gntdev as it needs them. Debian's kernels
/// have no Xen grant DMA; the box's eventfd kernel has, and the box provides it as the domU
/// kernel when dom0 runs it (`--dom0-kernel eventfd`).
#[test]
fn arm_domu_reads_entropy_in_grant_mode() {
    const TEST: &str = "arm_domu_reads_entropy_in_grant_mode";
    let Some(daemon) = daemon(TEST) else {
        return;
    };
    let Some(kernel) = std::env::var_os("XEN_BOX_DOMU_GRANT_KERNEL") else {
        report!(
            "SKIPPED: {TEST}: no domU kernel with Xen grant DMA here (Debian's have none; the \
             box provides one with --dom0-kernel eventfd)"
        );
        return;
    };
    if std::env::var("XEN_BOX_XEN_VERSION").as_deref() == Ok("4.17") {
        report!("SKIPPED: {TEST}: Xen 4.17's xl has no grant_usage for virtio devices");
        return;
    }
    bridge(TEST, &daemon, Some(PathBuf::from(kernel)));
}

/// The bridge test; with `grant_kernel`, in grant mode with that domU kernel.
fn bridge(test: &str, daemon: &Path, grant_kernel: Option<PathBuf>) {
    let logs = recorder();
    // The recorder is the process's: this test's lines are those from here on.
    let logged_before = logs.0.lock().unwrap().len();
    let dir = std::env::current_dir().unwrap().join("bridge");
    std::fs::create_dir_all(&dir).unwrap();
    let source = source_bytes(1 << 20);
    let source_path = dir.join("rng-source");
    std::fs::write(&source_path, &source).unwrap();
    let socket = dir.join("rng.sock");
    let before = held();
    let daemon_log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let _dump = DumpOnPanic(dir.join("daemon.log"));

    let mut daemon_child = Killed(
        Command::new(daemon)
            .arg("--socket-path")
            .arg(&socket)
            .args(["-c", "1", "-f"])
            .arg(&source_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(daemon_log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", daemon.display())),
    );
    // The daemon appends the socket's index; the relay waits for it to listen.
    let running = Running::start(&dir.join("rng.sock0"));

    let grants = grant_kernel.is_some();
    let name = format!(
        "xvf-rng{}-{}",
        if grants { "-g" } else { "" },
        std::process::id()
    );
    let mut helper = Command::new("xen-box-virtio-domu");
    helper
        .arg(&name)
        .arg("rng")
        .env("XEN_BOX_VIRTIO_STANDIN", "0");
    if let Some(k) = &grant_kernel {
        helper
            .env("XEN_BOX_VIRTIO_GRANTS", "1")
            .env("XEN_BOX_VIRTIO_KERNEL", k);
    }
    let out = run(&mut helper);
    report!("{test}: {}", out.trim());
    let domid: u16 = out
        .split_whitespace()
        .find_map(|f| f.strip_prefix("domid="))
        .and_then(|d| d.parse().ok())
        .expect("xen-box-virtio-domu prints domid=");
    let domu = XlDomain::adopt(name.clone(), domid);
    let layout = if std::env::var("XEN_BOX_XEN_VERSION").as_deref() == Ok("4.17") {
        "virtio_disk"
    } else {
        "virtio"
    };
    let mut xs = Xenstore::open().unwrap();
    let be_dir = format!("/local/domain/0/backend/{layout}/{domid}");
    let devs = xs.directory(&be_dir).unwrap();
    assert_eq!(devs.len(), 1, "one device under {be_dir}: {devs:?}");
    let state_path = format!("{be_dir}/{}/state", devs[0]);
    let state = |xs: &mut Xenstore<_>| xs.read_string(&state_path).unwrap_or_default();
    wait_for(
        Duration::from_secs(60),
        || format!("InitWait (2) at {state_path}"),
        || state(&mut xs) == "2",
    );
    assert_eq!(running.seen().guests, 1);

    domu.unpause();
    wait_for(
        Duration::from_secs(600),
        || format!("the guest's last hwrng read; console:\n{}", console(&name)),
        || {
            let status = running.seen().status.unwrap_or(0);
            if status & 64 != 0 {
                let dmesg = Command::new("dmesg")
                    .output()
                    .map(|o| o.stdout)
                    .unwrap_or_default();
                let dmesg = String::from_utf8_lossy(&dmesg);
                let tail: Vec<&str> = dmesg.lines().rev().take(30).collect();
                panic!(
                    "the device needs a reset (status {status:#x}) before the guest read; the \
                     daemon: {:?}; dom0's last kernel messages:\n{}\nconsole:\n{}",
                    daemon_child.0.try_wait(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                    console(&name)
                );
            }
            console(&name).contains("XEN-BOX-DOMU: hwrng done")
        },
    );
    let console = console(&name);
    for l in console.lines().filter(|l| l.contains("XEN-BOX-DOMU")) {
        report!("{test}: console: {}", l.trim());
    }
    let iommus = if grants { "iommus=yes" } else { "iommus=no" };
    assert!(
        console.contains(iommus),
        "the device-tree node says {iommus} (grant DMA {})",
        if grants { "on" } else { "off" }
    );
    let reads = hwrng_reads(&console);
    assert_eq!(
        reads.len(),
        4,
        "four hwrng reads on the console:\n{console}"
    );
    let mut next = 0usize;
    for (i, r) in reads.iter().enumerate() {
        assert_eq!(r.len(), 64, "read {i} has 64 bytes: {r:02x?}");
        let at = source[next..]
            .windows(r.len())
            .position(|w| w == r.as_slice())
            .map(|p| p + next)
            .unwrap_or_else(|| {
                panic!("read {i} {r:02x?} is not in the daemon's source after byte {next}")
            });
        report!("{test}: read {i} = source bytes {at}..{}", at + r.len());
        next = at + r.len();
    }
    wait_for(
        Duration::from_secs(30),
        || format!("Connected (4) at {state_path}"),
        || state(&mut xs) == "4",
    );

    let kernel = std::env::var("XEN_BOX_DOM0_KERNEL").unwrap_or_default();
    let seen = running.seen();
    report!("{test}: COUNTS dom0 kernel {kernel:?}: {seen:?}");
    let paths = seen.paths.expect("the device's paths");
    if kernel == "eventfd" {
        assert_eq!(
            paths,
            Paths {
                kick: NotifyPath::Kernel,
                interrupt: NotifyPath::Kernel
            },
            "privcmd ioeventfd and irqfd on this kernel"
        );
        assert_eq!(seen.relayed, 0, "no interrupt passed through this process");
    } else {
        assert_eq!(paths.interrupt, NotifyPath::Userspace, "{kernel:?} kernel");
        assert!(seen.relayed >= 1, "interrupts relayed by this process");
    }

    // The daemon dies: the device needs a reset; the service goes on.
    let _ = daemon_child.0.kill();
    let _ = daemon_child.0.wait();
    wait_for(
        Duration::from_secs(30),
        || {
            format!(
                "DEVICE_NEEDS_RESET after the daemon died: {:?}",
                running.seen()
            )
        },
        || running.seen().status.is_some_and(|s| s & 64 != 0),
    );
    report!("{test}: daemon killed: {:?}", running.seen());

    // Destroy the domU: the toolstack removes the device; the service releases the guest.
    drop(domu);
    wait_for(
        Duration::from_secs(60),
        || "the service to release the destroyed guest".into(),
        || running.seen().guests == 0,
    );
    running.stop();
    drop(xs);
    let after = held();
    report!("{test}: COUNTS held before {before:?}, after {after:?}");
    let served: Vec<String> = logs.0.lock().unwrap()[logged_before..]
        .iter()
        .filter(|l| l.contains("served; kicks"))
        .cloned()
        .collect();
    report!("{test}: {served:?}");
    assert_eq!(served.len(), 1, "one device served");
    assert_eq!(after, before, "nothing held after the guest is gone");
    let daemon_log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    report!("{test}: daemon log:\n{daemon_log}");
}
