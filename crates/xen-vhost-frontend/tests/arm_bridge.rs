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

/// The daemon's binary, or `None` after a loud skip.
fn daemon(test: &str) -> Option<PathBuf> {
    daemon_named(test, "rng")
}

/// The box's `vhost-device-<name>` binary, or `None` after a loud skip.
fn daemon_named(test: &str, name: &str) -> Option<PathBuf> {
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
    let var = format!("XEN_BOX_VHOST_DEVICE_{}", name.to_ascii_uppercase());
    match std::env::var_os(&var) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                !in_box(),
                "{test}: the box did not provide vhost-device-{name}"
            );
            report!("SKIPPED: {test}: {var} (the daemon) is not set");
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
        Self::start_with(DeviceType::Rng, socket)
    }

    fn start_with(device_type: DeviceType, socket: &Path) -> Running {
        let config = Config {
            backends: vec![DeviceBackend {
                device_type,
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
    let logs = xen_box_testing::log_recorder();
    // The recorder is the process's: this test's lines are those from here on.
    let logged_before = logs.lines().len();
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
    let served: Vec<String> = logs.lines()[logged_before..]
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

/// Arm only: the domU and dom0 talk over AF_VSOCK through the unmodified vhost-device-vsock
/// (`xen` build) and xen-vhost-frontend: the guest sends 200 messages (1 to 6000 bytes) to a
/// dom0 listener that echoes them, and echoes 200 that dom0 sends on a connection dom0
/// opened; both sides check every byte. Then the domU is destroyed and this process holds what
/// it held before.
#[test]
fn arm_domu_and_dom0_talk_over_vsock_both_ways() {
    const TEST: &str = "arm_domu_and_dom0_talk_over_vsock_both_ways";
    const COUNT: u32 = 200;
    let Some(daemon) = daemon_named(TEST, "vsock") else {
        return;
    };
    xen_box_testing::log_recorder();
    let Some(cpio) = std::env::var_os("XEN_BOX_DOMU_VSOCK_CPIO") else {
        assert!(
            !in_box(),
            "{TEST}: the box did not provide the domU's vsock-guest"
        );
        report!("SKIPPED: {TEST}: XEN_BOX_DOMU_VSOCK_CPIO is not set");
        return;
    };
    let dir = std::env::current_dir().unwrap().join("vsock");
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("vhost3.socket");
    let uds = dir.join("vm3.vsock");
    let before = held();
    let daemon_log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let _dump = DumpOnPanic(dir.join("daemon.log"));
    let _daemon = Killed(
        Command::new(&daemon)
            .arg("--vm")
            .arg(format!(
                "guest-cid=3,socket={},uds-path={}",
                socket.display(),
                uds.display()
            ))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(daemon_log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", daemon.display())),
    );
    // Guest-initiated connections to port 1234 reach this listener (the daemon's hybrid
    // vsock: `<uds-path>_<port>`).
    let listener =
        std::os::unix::net::UnixListener::bind(format!("{}_1234", uds.display())).unwrap();
    let echo = std::thread::spawn(move || -> Result<u64, String> {
        let (mut s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(300))).ok();
        let mut total = 0;
        for i in 0..COUNT {
            let mut m = vec![0u8; xen_box_testing::vsock::message_len(i)];
            std::io::Read::read_exact(&mut s, &mut m).map_err(|e| format!("read {i}: {e}"))?;
            if m != xen_box_testing::vsock::message(i) {
                return Err(format!("guest message {i} arrived changed"));
            }
            std::io::Write::write_all(&mut s, &m).map_err(|e| format!("write {i}: {e}"))?;
            total += m.len() as u64;
        }
        Ok(total)
    });
    let running = Running::start_with(DeviceType::Vsock, &socket);

    let name = format!("xvf-vsock-{}", std::process::id());
    let out = run(Command::new("xen-box-virtio-domu")
        .arg(&name)
        .arg("vsock")
        .env("XEN_BOX_VIRTIO_STANDIN", "0")
        .env("XEN_BOX_VIRTIO_EXTRA_CPIO", &cpio));
    report!("{TEST}: {}", out.trim());
    let domid: u16 = out
        .split_whitespace()
        .find_map(|f| f.strip_prefix("domid="))
        .and_then(|d| d.parse().ok())
        .expect("xen-box-virtio-domu prints domid=");
    let domu = XlDomain::adopt(name.clone(), domid);
    wait_for(
        Duration::from_secs(60),
        || "the service to serve the guest".into(),
        || running.seen().guests == 1,
    );
    domu.unpause();
    wait_for(
        Duration::from_secs(600),
        || format!("the guest's vsock listener; console:\n{}", console(&name)),
        || {
            let c = console(&name);
            assert!(!c.contains("XEN-BOX-VSOCK: serve FAIL"), "console:\n{c}");
            c.contains("XEN-BOX-VSOCK: serve listening on port 5000") || c.contains("vsock done")
        },
    );
    // Host-initiated: the daemon's hybrid vsock protocol, then the messages.
    let host_side = || -> Result<(std::os::unix::net::UnixStream, u64), String> {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&uds)
            .map_err(|e| format!("connect {}: {e}", uds.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(300))).ok();
        s.write_all(b"CONNECT 5000\n")
            .map_err(|e| format!("CONNECT: {e}"))?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while b[0] != b'\n' {
            s.read_exact(&mut b)
                .map_err(|e| format!("the daemon's answer to CONNECT ({line:?} so far): {e}"))?;
            line.push(b[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        if !line.starts_with("OK ") {
            return Err(format!("the daemon answered {line:?}"));
        }
        let mut sent = 0u64;
        for i in 0..COUNT {
            let m = xen_box_testing::vsock::message(i);
            s.write_all(&m).map_err(|e| format!("write {i}: {e}"))?;
            let mut back = vec![0u8; m.len()];
            s.read_exact(&mut back)
                .map_err(|e| format!("read {i}: {e}"))?;
            if back != m {
                return Err(format!("dom0's message {i} came back changed"));
            }
            sent += m.len() as u64;
        }
        Ok((s, sent))
    };
    let (s, sent) = host_side()
        .unwrap_or_else(|e| panic!("{e}; {:?}; console:\n{}", running.seen(), console(&name)));
    wait_for(
        Duration::from_secs(600),
        || format!("the guest's end of the test; console:\n{}", console(&name)),
        || console(&name).contains("XEN-BOX-DOMU: vsock done"),
    );
    let console = console(&name);
    for l in console.lines().filter(|l| l.contains("XEN-BOX-")) {
        report!("{TEST}: console: {}", l.trim());
    }
    assert!(
        console.contains(&format!("XEN-BOX-VSOCK: connect ok {COUNT} messages")),
        "the guest's messages were echoed intact:\n{console}"
    );
    assert!(
        console.contains(&format!("XEN-BOX-VSOCK: serve ok {COUNT} messages")),
        "the guest echoed dom0's messages:\n{console}"
    );
    let echoed = echo.join().unwrap().unwrap();
    report!("{TEST}: COUNTS {COUNT} messages each way: guest to dom0 {echoed} bytes, dom0 to guest {sent} bytes; {:?}", running.seen());
    drop(s);
    drop(domu);
    wait_for(
        Duration::from_secs(60),
        || "the service to release the destroyed guest".into(),
        || running.seen().guests == 0,
    );
    running.stop();
    let after = held();
    report!("{TEST}: COUNTS held before {before:?}, after {after:?}");
    assert_eq!(after, before, "nothing held after the guest is gone");
}
