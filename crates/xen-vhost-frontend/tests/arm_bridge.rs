// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arm box test: an unmodified published vhost-device-rng, built with its `xen` feature
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
use xen_bindings::DomId;
use xen_box_testing::{console_log, held, in_box, in_dom0, XlDomain};
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

/// The cpio with the domU's vsock-guest, or `None` after a loud skip.
fn vsock_cpio(test: &str) -> Option<std::ffi::OsString> {
    let cpio = std::env::var_os("XEN_BOX_DOMU_VSOCK_CPIO");
    if cpio.is_none() {
        assert!(
            !in_box(),
            "{test}: the box did not provide the domU's vsock-guest"
        );
        report!("SKIPPED: {test}: XEN_BOX_DOMU_VSOCK_CPIO is not set");
    }
    cpio
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

/// A scratch directory `sub` with the rng daemon's source file: (the directory, the source's
/// bytes, its path).
fn scratch(sub: &str) -> (PathBuf, Vec<u8>, PathBuf) {
    let dir = std::env::current_dir().unwrap().join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    let source = source_bytes(1 << 20);
    let source_path = dir.join("rng-source");
    std::fs::write(&source_path, &source).unwrap();
    (dir, source, source_path)
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
#[derive(Debug, Default, Clone)]
struct Snapshot {
    guests: usize,
    /// The first guest's first device: its paths, its Status, the interrupts relayed.
    paths: Option<Paths>,
    status: Option<u32>,
    relayed: u64,
    /// The first guest's devices: (devid, Status).
    devices: Vec<(u32, u32)>,
}

impl Snapshot {
    /// The Status of the first guest's device `devid`.
    fn status_of(&self, devid: u32) -> Option<u32> {
        self.devices
            .iter()
            .find(|(d, _)| *d == devid)
            .map(|&(_, s)| s)
    }
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
        Self::start_backends(vec![DeviceBackend {
            device_type,
            socket: socket.to_path_buf(),
        }])
    }

    fn start_backends(backends: Vec<DeviceBackend>) -> Running {
        let config = Config {
            backends,
            domid: None,
            backend_domid: DomId::DOM0,
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
                        devices: first.map_or_else(Vec::new, |g| {
                            g.devices()
                                .enumerate()
                                .map(|(i, d)| (d.devid, g.status(i).unwrap_or(0)))
                                .collect()
                        }),
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
        self.seen.lock().unwrap().clone()
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
    let (dir, source, source_path) = scratch("bridge");
    let socket = dir.join("rng.sock");
    let before = held();
    let _dump = DumpOnPanic(dir.join("daemon.log"));

    let mut daemon_child = start_rng(daemon, &socket, &source_path, &dir.join("daemon.log"));
    // The daemon appends the socket's index; the relay waits for it to listen.
    let running = Running::start(&dir.join("rng.sock0"));

    let grants = grant_kernel.is_some();
    let name = format!(
        "xvf-rng{}-{}",
        if grants { "-g" } else { "" },
        std::process::id()
    );
    let mut env: Vec<(&str, &std::ffi::OsStr)> = Vec::new();
    if let Some(k) = &grant_kernel {
        env.push(("XEN_BOX_VIRTIO_GRANTS", "1".as_ref()));
        env.push(("XEN_BOX_VIRTIO_KERNEL", k.as_os_str()));
    }
    let (domu, domid) =
        create_domu(test, &name, "rng", 1, &env).expect("xen-box-virtio-domu creates the domU");
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
        || {
            format!(
                "the guest's last hwrng read; console:\n{}",
                console_log(&name)
            )
        },
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
                    console_log(&name)
                );
            }
            console_log(&name).contains("XEN-BOX-DOMU: hwrng done")
        },
    );
    let console = console_log(&name);
    for l in console.lines().filter(|l| l.contains("XEN-BOX-DOMU")) {
        report!("{test}: console: {}", l.trim());
    }
    let iommus = if grants { "iommus=yes" } else { "iommus=no" };
    assert!(
        console.contains(iommus),
        "the device-tree node says {iommus} (grant DMA {})",
        if grants { "on" } else { "off" }
    );
    check_reads(test, &console, &source);
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
    destroy(&running, domu, domid);
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
    let Some(cpio) = vsock_cpio(TEST) else {
        return;
    };
    let dir = std::env::current_dir().unwrap().join("vsock");
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("vhost3.socket");
    let uds = dir.join("vm3.vsock");
    let before = held();
    let _dump = DumpOnPanic(dir.join("daemon.log"));
    let _daemon = start_vsock(&daemon, &socket, &uds, &dir.join("daemon.log"));
    let (echo, _) = echo_guest(&uds, COUNT);
    let running = Running::start_with(DeviceType::Vsock, &socket);

    let name = format!("xvf-vsock-{}", std::process::id());
    let (domu, domid) = create_domu(
        TEST,
        &name,
        "vsock",
        1,
        &[("XEN_BOX_VIRTIO_EXTRA_CPIO", &cpio)],
    )
    .expect("xen-box-virtio-domu creates the domU");
    wait_for(
        Duration::from_secs(60),
        || "the service to serve the guest".into(),
        || running.seen().guests == 1,
    );
    domu.unpause();
    guest_listening(&name);
    // Host-initiated: the daemon's hybrid vsock protocol, then the messages.
    let (s, sent) = host_exchange(&uds, COUNT, |_| true).unwrap_or_else(|e| {
        panic!(
            "{e}; {:?}; console:\n{}",
            running.seen(),
            console_log(&name)
        )
    });
    guest_exchange_done(TEST, &name, COUNT);
    let echoed = echo.join().unwrap().unwrap();
    report!("{TEST}: COUNTS {COUNT} messages each way: guest to dom0 {echoed} bytes, dom0 to guest {sent} bytes; {:?}", running.seen());
    drop(s);
    destroy(&running, domu, domid);
    running.stop();
    let after = held();
    report!("{TEST}: COUNTS held before {before:?}, after {after:?}");
    assert_eq!(after, before, "nothing held after the guest is gone");
}

/// The IOREQ servers Xen has for `domid`, counted by asking Xen about each possible server id
/// (get_ioreq_server_info answers for a server that exists; Xen has at most 8 per domain).
fn ioreq_servers(domid: DomId) -> usize {
    use xen_bindings::abi::xen::dm_op::{
        XenDmOpGetIoreqServerInfo, XEN_DMOP_GET_IOREQ_SERVER_INFO, XEN_DMOP_NO_GFNS,
    };
    let p = xen_bindings::privcmd::Privcmd::open().unwrap();
    (0..8u16)
        .filter(|&id| {
            let arg = XenDmOpGetIoreqServerInfo {
                id,
                flags: XEN_DMOP_NO_GFNS,
                ..Default::default()
            };
            p.dm_op_struct(domid, XEN_DMOP_GET_IOREQ_SERVER_INFO, &arg, &mut [])
                .is_ok()
        })
        .count()
}

/// Whether Xen still has domain `domid`, dying or not (a dom0 process that still maps one of
/// its pages keeps a destroyed domain around).
fn domain_exists(domid: DomId) -> bool {
    let p = xen_bindings::privcmd::Privcmd::open().unwrap();
    p.domain_info(domid).is_ok()
}

/// Destroys `domu` (domain `domid`) and waits until it is released (see [`destroyed`]).
fn destroy(running: &Running, domu: XlDomain, domid: DomId) {
    drop(domu);
    destroyed(running, domid);
}

/// Waits for the service to release the destroyed domain `domid`, and for Xen to let it go,
/// which it does only once no page of it is mapped in dom0 any more.
fn destroyed(running: &Running, domid: DomId) {
    wait_for(
        Duration::from_secs(60),
        || {
            format!(
                "the service to release the destroyed guest: {:?}",
                running.seen()
            )
        },
        || running.seen().guests == 0,
    );
    wait_for(
        Duration::from_secs(60),
        || format!("domain {domid} to be gone from Xen"),
        || !domain_exists(domid),
    );
}

/// This process's file descriptors by kind: (sockets, eventfds, privcmd, others).
fn fd_kinds() -> (usize, usize, usize, usize) {
    let mut k = (0, 0, 0, 0);
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        let t = target.to_string_lossy();
        if t.starts_with("socket:") {
            k.0 += 1;
        } else if t.contains("eventfd") {
            k.1 += 1;
        } else if t.contains("privcmd") {
            k.2 += 1;
        } else {
            k.3 += 1;
        }
    }
    k
}

/// The descriptors one served device of `queues` virtqueues holds, by kind as [`fd_kinds`]
/// counts them: its daemon's connection (the socket and the copy that watches it for a
/// hang-up), each queue's kick and call (the relay's and the copies registered with the IOREQ
/// server or the interrupt relay), its interrupt's eventfd, and the privcmd handle of the
/// guest memory it shares with its daemon.
fn device_fds(queues: usize) -> (usize, usize, usize, usize) {
    (2, 4 * queues + 1, 1, 0)
}

/// Voluntary context switches (wake-ups after a wait) of guest `domid`'s serving threads so
/// far: (the IOREQ event loop's, the interrupt relay's).
fn guest_thread_wakeups(domid: DomId) -> (u64, u64) {
    let mut w = (0, 0);
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let n: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        match comm.trim() {
            c if c == format!("ioreq-dom{domid}") => w.0 += n,
            c if c == format!("virtio-irq-dom{domid}") => w.1 += n,
            _ => {}
        }
    }
    w
}

/// What happens halfway through the vsock exchange of a two-device guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Midway {
    /// Nothing: both devices serve to the end.
    Nothing,
    /// The rng daemon is killed (SIGKILL).
    KillRng,
    /// The domU is destroyed (`xl destroy`).
    Destroy,
    /// The rng device is unplugged as the toolstack removes a device.
    UnplugRng,
}

/// Arm only: a domU with two virtio-mmio devices, entropy (devid 0) and vsock (devid 1), both
/// served by one [`Service`] (one IOREQ server) from the unmodified vhost-device-rng and
/// vhost-device-vsock: the guest reads the daemon's rng bytes, then the 200-message vsock
/// exchange runs both ways with every byte checked. Then the domU is destroyed and this
/// process holds what it held before.
#[test]
fn arm_domu_with_rng_and_vsock_served_by_one_service() {
    two_devices(
        "arm_domu_with_rng_and_vsock_served_by_one_service",
        Midway::Nothing,
    );
}

/// The same, but the rng daemon is killed halfway through the vsock exchange: the rng device
/// reports DEVICE_NEEDS_RESET, the vsock exchange completes with every byte checked, the
/// service says so in its log and goes on, and after the domU is destroyed nothing is held.
#[test]
fn arm_rng_daemon_killed_while_vsock_traffic_flows() {
    two_devices(
        "arm_rng_daemon_killed_while_vsock_traffic_flows",
        Midway::KillRng,
    );
}

/// The same, but the domU is destroyed halfway through the vsock exchange: the service
/// releases the guest (nothing held, the domain gone from Xen), then serves a new domU.
#[test]
fn arm_domu_destroyed_while_vsock_traffic_flows() {
    two_devices(
        "arm_domu_destroyed_while_vsock_traffic_flows",
        Midway::Destroy,
    );
}

/// The same, but halfway through the vsock exchange the rng device is unplugged as libxl
/// removes a device (xl has no virtio detach): backend `online` = 0 and `state` = Closing in
/// one transaction, wait for the backend's Closed, remove the frontend and backend
/// directories. The service releases that device alone (its daemon connection and its window
/// in the IOREQ server) and the vsock exchange completes.
#[test]
fn arm_rng_device_unplugged_while_vsock_traffic_flows() {
    two_devices(
        "arm_rng_device_unplugged_while_vsock_traffic_flows",
        Midway::UnplugRng,
    );
}

/// Starts vhost-device-rng on `socket` (it listens at `<socket>0`) with `source` as its
/// entropy source.
fn start_rng(daemon: &Path, socket: &Path, source: &Path, log: &Path) -> Killed {
    let log = std::fs::File::create(log).unwrap();
    Killed(
        Command::new(daemon)
            .arg("--socket-path")
            .arg(socket)
            .args(["-c", "1", "-f"])
            .arg(source)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", daemon.display())),
    )
}

/// Starts vhost-device-vsock for guest CID 3 on `socket`, its host side at `uds`.
fn start_vsock(daemon: &Path, socket: &Path, uds: &Path, log: &Path) -> Killed {
    let log = std::fs::File::create(log).unwrap();
    Killed(
        Command::new(daemon)
            .arg("--vm")
            .arg(format!(
                "guest-cid=3,socket={},uds-path={}",
                socket.display(),
                uds.display()
            ))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", daemon.display())),
    )
}

/// dom0's end of the guest-initiated connection: guest connections to port 1234 reach a
/// listener at `<uds>_1234` (the daemon's hybrid vsock); the first is echoed for `count`
/// messages, each checked. Returns the echo's thread (the bytes echoed) and, once accepted,
/// a handle on the connection (to end the echo early).
fn echo_guest(
    uds: &Path,
    count: u32,
) -> (
    std::thread::JoinHandle<Result<u64, String>>,
    std::sync::mpsc::Receiver<std::os::unix::net::UnixStream>,
) {
    let path = format!("{}_1234", uds.display());
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let (tx, accepted) = std::sync::mpsc::channel();
    let echo = std::thread::spawn(move || -> Result<u64, String> {
        let (mut s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(300))).ok();
        if let Ok(c) = s.try_clone() {
            let _ = tx.send(c);
        }
        let mut total = 0;
        for i in 0..count {
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
    (echo, accepted)
}

/// Waits for guest `name`'s vsock listener (port 5000) to be up.
fn guest_listening(name: &str) {
    wait_for(
        Duration::from_secs(600),
        || {
            format!(
                "the guest's vsock listener; console:\n{}",
                console_log(name)
            )
        },
        || {
            let c = console_log(name);
            assert!(!c.contains("XEN-BOX-VSOCK: serve FAIL"), "console:\n{c}");
            c.contains("XEN-BOX-VSOCK: serve listening on port 5000") || c.contains("vsock done")
        },
    );
}

/// Waits for guest `name`'s end of the vsock exchange and checks that both its sides
/// completed `count` messages.
fn guest_exchange_done(test: &str, name: &str, count: u32) {
    wait_for(
        Duration::from_secs(600),
        || {
            format!(
                "the guest's end of the test; console:\n{}",
                console_log(name)
            )
        },
        || console_log(name).contains("XEN-BOX-DOMU: vsock done"),
    );
    let c = console_log(name);
    for l in c.lines().filter(|l| l.contains("XEN-BOX-")) {
        report!("{test}: console: {}", l.trim());
    }
    assert!(
        c.contains(&format!("XEN-BOX-VSOCK: connect ok {count} messages")),
        "the guest's messages were echoed intact:\n{c}"
    );
    assert!(
        c.contains(&format!("XEN-BOX-VSOCK: serve ok {count} messages")),
        "the guest echoed dom0's messages:\n{c}"
    );
}

/// Creates the paused domU `name` (`xen-box-virtio-domu`, real backend) and adopts it;
/// `None` (after saying why) when the toolstack refuses the configuration.
fn create_domu(
    test: &str,
    name: &str,
    mode: &str,
    devices: u32,
    env: &[(&str, &std::ffi::OsStr)],
) -> Option<(XlDomain, DomId)> {
    let mut cmd = Command::new("xen-box-virtio-domu");
    cmd.arg(name)
        .arg(mode)
        .env("XEN_BOX_VIRTIO_STANDIN", "0")
        .env("XEN_BOX_VIRTIO_DEVICES", devices.to_string());
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("running xen-box-virtio-domu");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let _ = Command::new("xl").arg("destroy").arg(name).output();
        report!(
            "{test}: xen-box-virtio-domu {name} {mode} ({devices} devices) failed: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    report!("{test}: {}", stdout.trim());
    let domid: DomId = stdout
        .split_whitespace()
        .find_map(|f| f.strip_prefix("domid="))
        .and_then(|d| d.parse().ok())
        .expect("xen-box-virtio-domu prints domid=");
    Some((XlDomain::adopt(name.to_string(), domid.get()), domid))
}

/// The backend directory layout of this Xen.
fn layout() -> &'static str {
    if std::env::var("XEN_BOX_XEN_VERSION").as_deref() == Ok("4.17") {
        "virtio_disk"
    } else {
        "virtio"
    }
}

/// Checks the guest's hwrng reads against the daemon's source: four reads of 64 bytes, in the
/// source's order.
fn check_reads(test: &str, console: &str, source: &[u8]) {
    let reads = xen_box_testing::hwrng_reads(console);
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
}

/// dom0's end of the host-initiated vsock connection: CONNECT to the guest's port 5000, then
/// `count` messages, each checked as it comes back. Before message `i`, `midway(i)` runs; when
/// it says stop, the exchange ends there.
fn host_exchange(
    uds: &Path,
    count: u32,
    mut midway: impl FnMut(u32) -> bool,
) -> Result<(std::os::unix::net::UnixStream, u64), String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(uds)
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
    for i in 0..count {
        if !midway(i) {
            break;
        }
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
}

/// The two-device test, with `midway` happening halfway through the vsock exchange.
fn two_devices(test: &str, midway: Midway) {
    const COUNT: u32 = 200;
    let Some(rng_daemon) = daemon_named(test, "rng") else {
        return;
    };
    let Some(vsock_daemon) = daemon_named(test, "vsock") else {
        return;
    };
    let Some(cpio) = vsock_cpio(test) else {
        return;
    };
    let logs = xen_box_testing::log_recorder();
    let logged_before = logs.lines().len();
    let (dir, source, source_path) = scratch("two");
    let rng_socket = dir.join("rng.sock");
    let vsock_socket = dir.join("vhost3.socket");
    let uds = dir.join("vm3.vsock");
    let before = held();
    let _dump_rng = DumpOnPanic(dir.join("rng.log"));
    let _dump_vsock = DumpOnPanic(dir.join("vsock.log"));
    let mut rng = start_rng(&rng_daemon, &rng_socket, &source_path, &dir.join("rng.log"));
    let vsock = start_vsock(&vsock_daemon, &vsock_socket, &uds, &dir.join("vsock.log"));
    let (echo, accepted) = echo_guest(&uds, COUNT);
    let running = Running::start_backends(vec![
        DeviceBackend {
            device_type: DeviceType::Rng,
            socket: dir.join("rng.sock0"),
        },
        DeviceBackend {
            device_type: DeviceType::Vsock,
            socket: vsock_socket.clone(),
        },
    ]);

    // A name of its own per test: the console log of a domU of the same name would be read.
    let tag = match midway {
        Midway::Nothing => "both",
        Midway::KillRng => "kill",
        Midway::Destroy => "destroy",
        Midway::UnplugRng => "unplug",
    };
    let name = format!("xvf-{tag}-{}", std::process::id());
    let Some((domu, domid)) = create_domu(
        test,
        &name,
        "rngvsock",
        2,
        &[("XEN_BOX_VIRTIO_EXTRA_CPIO", &cpio)],
    ) else {
        assert_eq!(
            std::env::var("XEN_BOX_XEN_VERSION").as_deref(),
            Ok("4.17"),
            "{test}: xl refused a two-device domU"
        );
        report!(
            "SKIPPED: {test}: Xen 4.17's xl cannot give a domU two virtio-mmio devices: its only \
             way to one is a specification=virtio disk, and it refused two (above)"
        );
        return;
    };
    let mut domu = Some(domu);
    let mut xs = Xenstore::open().unwrap();
    let be_dir = format!("/local/domain/0/backend/{}/{domid}", layout());
    let mut devs: Vec<u32> = xs
        .directory(&be_dir)
        .unwrap()
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    devs.sort_unstable();
    assert_eq!(devs.len(), 2, "two devices under {be_dir}: {devs:?}");
    // The service serves them in devid order: rng first, vsock second.
    let (rng_dev, vsock_dev) = (devs[0], devs[1]);
    let state = |xs: &mut Xenstore<_>, devid: u32| {
        xs.read_string(&format!("{be_dir}/{devid}/state"))
            .unwrap_or_default()
    };
    for d in devs.iter().copied() {
        wait_for(
            Duration::from_secs(60),
            || format!("InitWait (2) at {be_dir}/{d}/state"),
            || state(&mut xs, d) == "2",
        );
    }
    let seen = running.seen();
    assert_eq!(seen.guests, 1, "one guest: {seen:?}");
    assert_eq!(seen.devices.len(), 2, "both devices served: {seen:?}");
    let servers = ioreq_servers(domid);
    report!("{test}: COUNTS IOREQ servers of domain {domid}: {servers}");

    domu.as_ref().unwrap().unpause();
    let needs_reset = |s: &Snapshot| s.devices.iter().any(|&(_, st)| st & 64 != 0);
    wait_for(
        Duration::from_secs(600),
        || {
            format!(
                "the guest's last hwrng read; console:\n{}",
                console_log(&name)
            )
        },
        || {
            let s = running.seen();
            assert!(
                !needs_reset(&s),
                "a device needs a reset: {s:?}; console:\n{}",
                console_log(&name)
            );
            console_log(&name).contains("XEN-BOX-DOMU: hwrng done")
        },
    );
    check_reads(test, &console_log(&name), &source);
    guest_listening(&name);
    // The IOREQ servers once both devices' doorbells are registered (the kernel's ioeventfds
    // add a doorbell server).
    let servers = ioreq_servers(domid);
    let kernel = std::env::var("XEN_BOX_DOM0_KERNEL").unwrap_or_default();
    let expected = if seen.paths.is_some_and(|p| p.kick == NotifyPath::Kernel) {
        2
    } else {
        1
    };
    report!(
        "{test}: COUNTS dom0 kernel {kernel:?}: IOREQ servers {servers}; {:?}",
        running.seen()
    );
    assert_eq!(
        servers, expected,
        "one IOREQ server (and its doorbell server) for both devices"
    );

    let mut unplugged = None;
    // The serving threads' wake-ups over each half of the exchange (the same number of
    // messages, so of kicks and interrupts, each).
    let woken_at_start = guest_thread_wakeups(domid);
    let mut woken_midway = woken_at_start;
    let exchange = host_exchange(&uds, COUNT, |i| {
        if i != COUNT / 2 {
            return true;
        }
        match midway {
            Midway::Nothing => {
                woken_midway = guest_thread_wakeups(domid);
                true
            }
            Midway::KillRng => {
                let _ = rng.0.kill();
                let _ = rng.0.wait();
                wait_for(
                    Duration::from_secs(30),
                    || format!("DEVICE_NEEDS_RESET on rng: {:?}", running.seen()),
                    || {
                        running
                            .seen()
                            .status_of(rng_dev)
                            .is_some_and(|s| s & 64 != 0)
                    },
                );
                report!(
                    "{test}: rng daemon killed at message {i}: {:?}",
                    running.seen()
                );
                true
            }
            Midway::Destroy => {
                report!("{test}: destroying the domU at message {i}");
                drop(domu.take());
                false
            }
            Midway::UnplugRng => {
                let held_before = (held(), fd_kinds(), ioreq_servers(domid));
                let be = format!("{be_dir}/{rng_dev}");
                // The frontend directory, as the backend names it (device/virtio/N, or
                // device/vbd/N for 4.17's disk); libxl keeps its own record under the same kind.
                let fe = xs.read_string(&format!("{be}/frontend")).unwrap();
                let kind = fe.rsplit('/').nth(1).unwrap_or("virtio").to_string();
                xs.transaction(4, |t| {
                    t.write(&format!("{be}/online"), "0")?;
                    t.write(&format!("{be}/state"), "5")
                })
                .unwrap();
                wait_for(
                    Duration::from_secs(30),
                    || format!("Closed (6) at {be}/state"),
                    || state(&mut xs, rng_dev) == "6",
                );
                for p in [
                    fe.clone(),
                    be.clone(),
                    format!("/libxl/{domid}/device/{kind}/{rng_dev}"),
                ] {
                    match xs.rm(&p) {
                        Ok(()) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => panic!("removing {p}: {e}"),
                    }
                }
                wait_for(
                    Duration::from_secs(30),
                    || {
                        format!(
                            "the service to drop the unplugged device: {:?}",
                            running.seen()
                        )
                    },
                    || running.seen().devices.len() == 1,
                );
                let held_after = (held(), fd_kinds(), ioreq_servers(domid));
                report!(
                    "{test}: COUNTS unplug at message {i}: (held, fds (sockets, eventfds, \
                     privcmd, others), IOREQ servers) before {held_before:?}, after {held_after:?}"
                );
                unplugged = Some((held_before, held_after));
                true
            }
        }
    });
    let (stream, sent) = exchange.unwrap_or_else(|e| {
        panic!(
            "{e}; {:?}; console:\n{}",
            running.seen(),
            console_log(&name)
        )
    });
    if midway == Midway::Destroy {
        drop(stream);
        // The guest's side of its own connection is gone with it: end the echo (or its
        // accept, had the guest not connected yet).
        match accepted.recv_timeout(Duration::from_secs(5)) {
            Ok(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Err(_) => {
                let _ = std::os::unix::net::UnixStream::connect(format!("{}_1234", uds.display()));
            }
        }
        let echoed = echo.join().unwrap();
        report!("{test}: COUNTS dom0 to guest {sent} bytes before the destroy; guest's echo: {echoed:?}");
    } else {
        guest_exchange_done(test, &name, COUNT);
        let echoed = echo.join().unwrap().unwrap();
        // The echo's connection, handed back for a destroy, is not needed.
        drop(accepted);
        let seen = running.seen();
        report!(
            "{test}: COUNTS {COUNT} messages each way: guest to dom0 {echoed} bytes, dom0 to \
             guest {sent} bytes; {seen:?}"
        );
        if midway == Midway::Nothing {
            let end = guest_thread_wakeups(domid);
            let half = COUNT / 2;
            report!(
                "{test}: COUNTS dom0 kernel {kernel:?}: wake-ups of the guest's threads \
                 (IOREQ loop, interrupt relay): {:?} over the first {half} messages each way, \
                 {:?} over the next {half}",
                (
                    woken_midway.0 - woken_at_start.0,
                    woken_midway.1 - woken_at_start.1
                ),
                (end.0 - woken_midway.0, end.1 - woken_midway.1)
            );
        }
        let vsock_status = seen
            .status_of(vsock_dev)
            .expect("the vsock device is served");
        assert_eq!(vsock_status & 64, 0, "the vsock device is fine: {seen:?}");
        assert_ne!(vsock_status & 4, 0, "the vsock driver is running: {seen:?}");
        assert_eq!(
            state(&mut xs, vsock_dev),
            "4",
            "vsock's backend is Connected"
        );
        drop(stream);
    }
    let lines: Vec<String> = logs.lines()[logged_before..].to_vec();
    match midway {
        Midway::KillRng => {
            let said: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains("virtio device:"))
                .collect();
            report!("{test}: the service said: {said:?}");
            assert!(!said.is_empty(), "the service logged the daemon's death");
            let seen = running.seen();
            assert_ne!(
                seen.status_of(rng_dev).unwrap_or(0) & 64,
                0,
                "rng still needs a reset"
            );
        }
        Midway::UnplugRng => {
            let ((h0, k0, s0), (h1, k1, s1)) = unplugged.expect("the unplug ran");
            let removed: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains(&format!("device {rng_dev} at ")) && l.contains("removed"))
                .collect();
            report!("{test}: the service said: {removed:?}");
            assert!(
                removed.len() == 1
                    && removed[0].contains("window unmapped")
                    && !removed[0].contains("error"),
                "the service unmapped the unplugged device's window: {lines:?}"
            );
            // Afterwards the process holds exactly what it holds for a domU with the vsock
            // device alone: what it held with both, less the rng device's own descriptors.
            let rng = device_fds(1);
            let expected = (k0.0 - rng.0, k0.1 - rng.1, k0.2 - rng.2, k0.3 - rng.3);
            assert_eq!(
                k1, expected,
                "descriptors (sockets, eventfds, privcmd, others) after the unplug: {k0:?} less                  the rng device's {rng:?}"
            );
            assert_eq!(h1.fds, h0.fds - (rng.0 + rng.1 + rng.2 + rng.3));
            // Guest-wide: the IOREQ server(s), their ports and mappings, and the kernel's
            // doorbell handlers (the vsock device's doorbells keep them).
            assert_eq!(s1, s0, "the guest keeps its IOREQ server(s)");
            assert_eq!(h1.privcmd_maps, h0.privcmd_maps, "privcmd mappings");
            assert_eq!(h1.evtchn_irqs, h0.evtchn_irqs, "event channels bound");
            assert_eq!(
                h1.ioeventfd_irqs, h0.ioeventfd_irqs,
                "privcmd doorbell handlers"
            );
            assert!(
                xs.directory(&be_dir).unwrap() == [vsock_dev.to_string()],
                "only vsock's backend directory is left"
            );
        }
        _ => {}
    }

    // Destroy (unless done): the service releases the guest; Xen lets the domain go only
    // when no page of it is mapped here any more.
    if let Some(domu) = domu.take() {
        destroy(&running, domu, domid);
    } else {
        destroyed(&running, domid);
    }
    let held_now = held();
    report!("{test}: COUNTS after the destroy: {held_now:?} (before {before:?}); domain {domid} gone from Xen (its IOREQ servers with it)");

    if midway == Midway::Destroy {
        // The service goes on: a new domU's entropy device is served (the rng daemon
        // restarted, as its old connection died with the guest).
        drop(rng);
        rng = start_rng(&rng_daemon, &rng_socket, &source_path, &dir.join("rng.log"));
        let name2 = format!("xvf-after-{}", std::process::id());
        let (domu2, domid2) =
            create_domu(test, &name2, "rng", 1, &[]).expect("a new domU after the destroy");
        wait_for(
            Duration::from_secs(60),
            || format!("the service to serve domain {domid2}"),
            || running.seen().guests == 1,
        );
        domu2.unpause();
        wait_for(
            Duration::from_secs(600),
            || {
                format!(
                    "the new guest's last hwrng read; console:\n{}",
                    console_log(&name2)
                )
            },
            || console_log(&name2).contains("XEN-BOX-DOMU: hwrng done"),
        );
        check_reads(test, &console_log(&name2), &source);
        report!("{test}: a new domU {domid2} was served after the destroy");
        destroy(&running, domu2, domid2);
    }
    running.stop();
    drop(xs);
    drop((rng, vsock));
    let after = held();
    report!("{test}: COUNTS held before {before:?}, after {after:?}");
    assert_eq!(after, before, "nothing held after the guest is gone");
}
