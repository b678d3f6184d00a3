// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arm box tests: virtio-mmio devices served to a real Arm domU by an IOREQ server in dom0
//! (`cargo xtask xen-box test --arch aarch64`).
//!
//! The box's `xen-box-virtio-domu NAME MODE` creates a paused domU whose device tree has a
//! virtio-mmio node at 0x2000000 (0x200 bytes, SPI 33); the domU's init then loads the
//! virtio-mmio and virtio-rng drivers (and, in mode `rng`, reads `/dev/hwrng`). xl places such
//! devices only on Arm: on other hosts these tests say so loudly and skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use virtio_queue::{Queue, QueueT};
use vm_hypervisor::{DeviceError, IoBus, IoHandler, IoSpace};
use vm_memory::{Bytes, GuestAddressSpace, GuestMemory};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_foreignmem::{
    CacheConfig, GrantMemory, LazyForeignMemory, XenForeignMapper, XenGrantMapper, GRANT_ADDR_FLAG,
};
use xen_ioreq::{BufIoreqMode, Dispatcher, EventLoop, Interrupt, IoRange, IoreqServer, NotifyPath};

/// Prints to stderr past the test harness's capture: the figures a run measured belong in
/// the box's report whether the test passes or not.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// One domU at a time: the box is small and `xl` serialises anyway.
static DOMU_LOCK: Mutex<()> = Mutex::new(());

/// Where xl puts the virtio-mmio device of an Arm guest, its size and its SPI.
const BASE: u64 = 0x200_0000;
const SIZE: u64 = 0x200;
const SPI: u32 = 33;
/// Arm guests' RAM starts at 1 GiB (GUEST_RAM0_BASE); the box's domUs have 128 MiB.
const GUEST_RAM_END: u64 = 0x4000_0000 + (128 << 20);

/// Whether this is a Xen dom0 with the box's environment; `None` after a loud SKIPPED (past
/// the harness's capture, so the box's report shows it).
fn xen_env(test: &str) -> Option<()> {
    let in_box = std::env::var_os("XEN_BOX").is_some_and(|v| v == "1");
    if !Path::new("/dev/xen/privcmd").exists() {
        assert!(!in_box, "{test}: XEN_BOX=1 but /dev/xen/privcmd is missing");
        report!("SKIPPED: {test}: not running in a Xen dom0");
        return None;
    }
    if !cfg!(target_arch = "aarch64") {
        report!(
            "SKIPPED: {test}: xl places virtio-mmio devices only on Arm (this is {})",
            std::env::consts::ARCH
        );
        return None;
    }
    Some(())
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

/// A paused domU with one virtio-mmio device, destroyed on drop (also when the test panics).
struct VirtioDomU {
    name: String,
    domid: u16,
}

impl VirtioDomU {
    fn create(tag: &str, mode: &str) -> VirtioDomU {
        let name = format!("xioreq-{tag}-{}", std::process::id());
        let out = run(Command::new("xen-box-virtio-domu").arg(&name).arg(mode));
        eprintln!("{}", out.trim());
        let domid = out
            .split_whitespace()
            .find_map(|f| f.strip_prefix("domid="))
            .and_then(|d| d.parse().ok())
            .expect("xen-box-virtio-domu prints domid=");
        VirtioDomU { name, domid }
    }

    fn console(&self) -> String {
        std::fs::read_to_string(PathBuf::from(format!(
            "/var/log/xen/console/guest-{}.log",
            self.name
        )))
        .unwrap_or_default()
    }

    fn unpause(&self) {
        run(Command::new("xl").arg("unpause").arg(&self.name));
    }
}

impl Drop for VirtioDomU {
    fn drop(&mut self) {
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

/// What [`serve_until`] saw.
struct Served {
    console: String,
    /// Interrupts the loop injected for userspace irqfds.
    interrupts: usize,
    /// Turns that woke up before their timeout and did nothing: an event-channel event whose
    /// slot held no request (the kernel had completed it), as far as this loop can tell.
    empty_wakeups: usize,
}

/// Serves `ev` until the domU's console shows `marker` (panics after `limit`, with the
/// console and `what()` in the message).
fn serve_until<S: xen_bindings::sys::Sys, B: xen_ioreq::DeviceBus>(
    ev: &mut EventLoop<'_, S, B>,
    domu: &VirtioDomU,
    marker: &str,
    limit: Duration,
    what: impl Fn() -> String,
) -> Served {
    let deadline = Instant::now() + limit;
    let (mut interrupts, mut empty_wakeups) = (0, 0);
    loop {
        let t0 = Instant::now();
        let turn = ev.run_once(1000).unwrap();
        interrupts += turn.interrupts;
        if turn.requests == 0 && turn.interrupts == 0 && t0.elapsed() < Duration::from_millis(900) {
            empty_wakeups += 1;
        }
        let console = domu.console();
        if console.contains(marker) {
            return Served {
                console,
                interrupts,
                empty_wakeups,
            };
        }
        assert!(
            Instant::now() < deadline,
            "no {marker:?} on the domU's console within {limit:?}; {}; console:\n{console}",
            what()
        );
    }
}

// -------------------------------------------------------------------------------------------
// Probing only: the registers Linux's virtio-mmio probe reads
// -------------------------------------------------------------------------------------------

/// Registers of a virtio-mmio transport (version 2) for an entropy device, as far as Linux's
/// probe reads them; records every access.
#[derive(Default)]
struct VirtioMmioRegs {
    seen: Mutex<Vec<(u64, bool)>>,
    status: Mutex<u32>,
}

impl IoHandler for VirtioMmioRegs {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        self.seen.lock().unwrap().push((offset, false));
        let value: u32 = match offset {
            0x000 => 0x7472_6976, // "virt"
            0x004 => 2,           // version: modern transport
            0x008 => 4,           // device id: entropy source
            0x00c => 0x554d_4551, // vendor id
            0x070 => *self.status.lock().unwrap(),
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        let n = data.len().min(4);
        data.fill(0);
        data[..n].copy_from_slice(&bytes[..n]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.seen.lock().unwrap().push((offset, true));
        if offset == 0x070 && data.len() == 4 {
            *self.status.lock().unwrap() = u32::from_le_bytes(data.try_into().unwrap());
        }
        Ok(())
    }
}

/// Arm only: a domU whose device tree has a virtio-mmio node at 0x2000000 (made by the box's
/// `xen-box-virtio-domu`), served by an IOREQ server; the domU's Linux probes the device and
/// finds an entropy device there.
#[test]
fn arm_domu_linux_probes_a_virtio_mmio_device_we_serve() {
    let Some(()) = xen_env("arm_domu_linux_probes_a_virtio_mmio_device_we_serve") else {
        return;
    };
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let domu = VirtioDomU::create("virtio", "virtio");

    let regs = Arc::new(VirtioMmioRegs::default());
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, BASE, SIZE, regs.clone()).unwrap();
    let mut server = IoreqServer::open(domu.domid, BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(BASE, SIZE).unwrap())
        .unwrap();
    server.enable().unwrap();
    let mut ev = EventLoop::new(&server, Dispatcher::new(&bus)).unwrap();

    domu.unpause();
    let Served { console, .. } = serve_until(
        &mut ev,
        &domu,
        "virtio probe done",
        Duration::from_secs(600),
        || format!("accesses {:?}", regs.seen.lock().unwrap()),
    );
    let seen = regs.seen.lock().unwrap().clone();
    eprintln!("served {:?}; accesses {seen:?}", ev.dispatcher().stats());
    let device_lines: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("XEN-BOX-DOMU: virtio-device"))
        .collect();
    eprintln!("{device_lines:?}");
    assert!(
        device_lines.iter().any(|l| l.contains("device=0x0004")),
        "the domU's Linux found no entropy device; console:\n{console}"
    );
    for reg in [0x000, 0x004, 0x008] {
        assert!(
            seen.contains(&(reg, false)),
            "register {reg:#x} was not read"
        );
    }
}

// -------------------------------------------------------------------------------------------
// A complete virtio-mmio entropy device
// -------------------------------------------------------------------------------------------

/// virtio-mmio (version 2) register offsets.
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
}

/// Feature bits: the modern interface, and "the device sees addresses the platform translates"
/// (what a driver using Xen grant DMA requires).
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_F_ACCESS_PLATFORM: u64 = 1 << 33;
const OFFERED: u64 = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM;
/// Device status bits.
const STATUS_FEATURES_OK: u32 = 8;
const STATUS_FAILED: u32 = 0x80;
/// Interrupt status: the device used buffers.
const INT_VRING: u32 = 1;
const QUEUE_MAX: u16 = 64;

/// The entropy the device hands out: byte `i` of a fixed, non-trivial stream (splitmix64 of
/// the word index), so the test can tell which bytes the guest got.
fn stream_byte(i: u64) -> u8 {
    let mut z = (i / 8)
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.to_le_bytes()[(i % 8) as usize]
}

/// The transport's state as the driver sets it.
struct Transport {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queue: Queue,
    interrupt_status: u32,
    /// Bytes of the stream handed out so far.
    produced: u64,
    /// Buffers used.
    used: u64,
}

impl Transport {
    fn new() -> Self {
        Transport {
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queue: Queue::new(QUEUE_MAX).unwrap(),
            interrupt_status: 0,
            produced: 0,
            used: 0,
        }
    }

    fn reset(&mut self) {
        let produced = self.produced;
        let used = self.used;
        *self = Transport::new();
        // What was handed out stays handed out: the test checks the guest's bytes against it.
        self.produced = produced;
        self.used = used;
    }
}

/// A virtio-mmio entropy device with one request queue. Register accesses arrive through the
/// IOREQ server's dispatcher; queue notifications arrive on `kick` (from privcmd's kernel
/// ioeventfd, the dispatcher's userspace one, or a QueueNotify write that reached the bus), a
/// worker thread fills the buffers and signals `irq` (an irqfd for SPI 33).
struct RngDevice {
    t: Mutex<Transport>,
    kick: Arc<EventFd>,
    irq: Arc<EventFd>,
    /// QueueNotify writes that reached the bus (no ioeventfd took them).
    bus_notifies: AtomicU64,
    /// Register accesses that reached the bus, by offset.
    accesses: Mutex<HashMap<u64, u64>>,
    /// Feature bits offered or status values the driver wrote, for the report.
    status_log: Mutex<Vec<u32>>,
}

impl RngDevice {
    fn new(kick: Arc<EventFd>, irq: Arc<EventFd>) -> Self {
        RngDevice {
            t: Mutex::new(Transport::new()),
            kick,
            irq,
            bus_notifies: AtomicU64::new(0),
            accesses: Mutex::new(HashMap::new()),
            status_log: Mutex::new(Vec::new()),
        }
    }

    fn reg_read(&self, offset: u64) -> u32 {
        let t = self.t.lock().unwrap();
        match offset {
            reg::MAGIC => 0x7472_6976, // "virt"
            reg::VERSION => 2,
            reg::DEVICE_ID => 4, // entropy source
            reg::VENDOR_ID => 0x554d_4551,
            reg::DEVICE_FEATURES => match t.device_features_sel {
                0 => OFFERED as u32,
                1 => (OFFERED >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX if t.queue_sel == 0 => u32::from(QUEUE_MAX),
            reg::QUEUE_READY => u32::from(t.queue_sel == 0 && t.queue.ready()),
            reg::INTERRUPT_STATUS => t.interrupt_status,
            reg::STATUS => t.status,
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn reg_write(&self, offset: u64, v: u32) {
        let mut t = self.t.lock().unwrap();
        let sel0 = t.queue_sel == 0;
        match offset {
            reg::DEVICE_FEATURES_SEL => t.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => t.driver_features_sel = v,
            reg::DRIVER_FEATURES => match t.driver_features_sel {
                0 => t.driver_features = (t.driver_features & !0xffff_ffff) | u64::from(v),
                1 => t.driver_features = (t.driver_features & 0xffff_ffff) | (u64::from(v) << 32),
                _ => {}
            },
            reg::QUEUE_SEL => t.queue_sel = v,
            reg::QUEUE_NUM if sel0 => t.queue.set_size(v as u16),
            reg::QUEUE_READY if sel0 => t.queue.set_ready(v == 1),
            reg::QUEUE_DESC_LOW if sel0 => t.queue.set_desc_table_address(Some(v), None),
            reg::QUEUE_DESC_HIGH if sel0 => t.queue.set_desc_table_address(None, Some(v)),
            reg::QUEUE_DRIVER_LOW if sel0 => t.queue.set_avail_ring_address(Some(v), None),
            reg::QUEUE_DRIVER_HIGH if sel0 => t.queue.set_avail_ring_address(None, Some(v)),
            reg::QUEUE_DEVICE_LOW if sel0 => t.queue.set_used_ring_address(Some(v), None),
            reg::QUEUE_DEVICE_HIGH if sel0 => t.queue.set_used_ring_address(None, Some(v)),
            reg::QUEUE_NOTIFY => {
                self.bus_notifies.fetch_add(1, Ordering::Relaxed);
                drop(t);
                self.kick.write(1).unwrap();
            }
            reg::INTERRUPT_ACK => t.interrupt_status &= !v,
            reg::STATUS => {
                self.status_log.lock().unwrap().push(v);
                if v == 0 {
                    t.reset();
                } else {
                    // FEATURES_OK only sticks for features we offered.
                    let ok = t.driver_features & !OFFERED == 0;
                    t.status = if ok { v } else { v & !STATUS_FEATURES_OK };
                }
            }
            _ => {}
        }
    }

    /// Fills every available buffer of the queue in `mem` with the next bytes of the stream;
    /// returns the number of buffers used.
    fn process<M: GuestMemory>(&self, mem: &M) -> usize {
        let mut t = self.t.lock().unwrap();
        if !t.queue.ready() {
            return 0;
        }
        let mut used = 0;
        while let Some(chain) = t.queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let mut len = 0u32;
            for desc in chain.writable() {
                let n = desc.len();
                let bytes: Vec<u8> = (t.produced..t.produced + u64::from(n))
                    .map(stream_byte)
                    .collect();
                if let Err(e) = mem.write_slice(&bytes, desc.addr()) {
                    eprintln!("rng device: writing {n} bytes at {:#x}: {e}", desc.addr().0);
                    break;
                }
                t.produced += u64::from(n);
                len += n;
            }
            t.queue.add_used(mem, head, len).unwrap();
            t.used += 1;
            used += 1;
        }
        if used > 0 {
            t.interrupt_status |= INT_VRING;
            drop(t);
            self.irq.write(1).unwrap();
        }
        used
    }
}

impl IoHandler for RngDevice {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        *self.accesses.lock().unwrap().entry(offset).or_default() += 1;
        let bytes = self.reg_read(offset).to_le_bytes();
        let n = data.len().min(4);
        data.fill(0);
        data[..n].copy_from_slice(&bytes[..n]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        *self.accesses.lock().unwrap().entry(offset).or_default() += 1;
        let mut v = [0u8; 4];
        let n = data.len().min(4);
        v[..n].copy_from_slice(&data[..n]);
        self.reg_write(offset, u32::from_le_bytes(v));
        Ok(())
    }
}

/// What the worker thread saw.
#[derive(Debug, Default)]
struct WorkerReport {
    /// Signals counted on the kick eventfd (each QueueNotify write adds one).
    kicks: u64,
    /// Buffers used.
    buffers: usize,
    /// Whether the queue lived in grant addresses (Xen grant DMA).
    grants: bool,
}

/// Waits on the kick eventfd and processes the queue until `stop` is set (and the eventfd
/// written to wake it).
fn worker(dev: Arc<RngDevice>, domid: u16, stop: Arc<AtomicBool>) -> WorkerReport {
    let foreign = LazyForeignMemory::new(
        XenForeignMapper::open().unwrap(),
        domid,
        GUEST_RAM_END,
        CacheConfig::default(),
    )
    .unwrap();
    let mut grants = None;
    let mut report = WorkerReport::default();
    loop {
        let n = dev.kick.read().unwrap();
        if stop.load(Ordering::Acquire) {
            return report;
        }
        report.kicks += n;
        let desc = dev.t.lock().unwrap().queue.desc_table();
        if desc & GRANT_ADDR_FLAG != 0 {
            report.grants = true;
            let g = grants.get_or_insert_with(|| {
                GrantMemory::new(XenGrantMapper::open().unwrap(), domid, 64).unwrap()
            });
            report.buffers += dev.process(&*g.memory());
        } else {
            report.buffers += dev.process(&*foreign.memory());
        }
    }
}

/// Records the crate's log messages (and prints them) so the test can count the fallback
/// notice.
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
    static R: OnceLock<&'static Recorder> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static Recorder = Box::leak(Box::new(Recorder(Mutex::new(Vec::new()))));
        if log::set_logger(r).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
        r
    })
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

/// Arm only: a complete virtio-mmio entropy device. The domU's Linux negotiates features, sets
/// up the request queue and reads `/dev/hwrng`; the device fills the buffers from a known
/// stream and interrupts the guest on SPI 33. Queue notifications go through
/// `add_ioeventfd` and the interrupt through `add_irqfd`: with a dom0 kernel that has
/// privcmd irqfd/ioeventfd (`XEN_BOX_DOM0_KERNEL=eventfd`) no QueueNotify write and no
/// interrupt passes through this process; with Debian's kernels the server says once that the
/// kernel cannot, and serves the same guest through userspace.
#[test]
fn arm_domu_reads_entropy_from_a_virtio_rng_we_serve() {
    const TEST: &str = "arm_domu_reads_entropy_from_a_virtio_rng_we_serve";
    let Some(()) = xen_env(TEST) else {
        return;
    };
    let kernel = std::env::var("XEN_BOX_DOM0_KERNEL").unwrap_or_default();
    let eventfd_kernel = kernel == "eventfd";
    eprintln!("{TEST}: dom0 kernel {kernel:?}");
    let logs = recorder();
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let domu = VirtioDomU::create("rng", "rng");

    let kick = Arc::new(EventFd::new(0).unwrap());
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let dev = Arc::new(RngDevice::new(kick.clone(), irq.clone()));
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, BASE, SIZE, dev.clone()).unwrap();
    let mut server = IoreqServer::open(domu.domid, BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(BASE, SIZE).unwrap())
        .unwrap();
    server.enable().unwrap();
    let logged_before = logs.0.lock().unwrap().len();
    let irq_path = server.add_irqfd(irq.clone(), Interrupt::Line(SPI)).unwrap();
    let mut dispatcher = Dispatcher::new(&bus);
    let notify_path = server
        .add_ioeventfd(&mut dispatcher, BASE, 4, 0, kick.clone())
        .unwrap();
    let notices: Vec<String> = logs.0.lock().unwrap()[logged_before..]
        .iter()
        .filter(|l| l.contains("unavailable"))
        .cloned()
        .collect();
    report!("{TEST}: irqfd {irq_path:?}, ioeventfd {notify_path:?}, notices {notices:?}");
    let mut ev = EventLoop::new(&server, dispatcher).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (dev, stop) = (dev.clone(), stop.clone());
        let domid = domu.domid;
        std::thread::spawn(move || worker(dev, domid, stop))
    };

    domu.unpause();
    let Served {
        console,
        interrupts: user_interrupts,
        empty_wakeups,
    } = serve_until(
        &mut ev,
        &domu,
        "XEN-BOX-DOMU: hwrng done",
        Duration::from_secs(600),
        || {
            format!(
                "status writes {:?}, accesses {:?}",
                dev.status_log.lock().unwrap(),
                dev.accesses.lock().unwrap()
            )
        },
    );
    stop.store(true, Ordering::Release);
    kick.write(1).unwrap();
    let report = worker.join().unwrap();
    let stats = ev.dispatcher().stats();
    let bus_notifies = dev.bus_notifies.load(Ordering::Relaxed);
    let user_notifies = stats.ioeventfd_hits + bus_notifies;
    let (produced, negotiated) = {
        let t = dev.t.lock().unwrap();
        (t.produced, t.driver_features)
    };
    report!(
        "{TEST}: COUNTS kernel={kernel} irqfd={irq_path:?} ioeventfd={notify_path:?} \
         kicks={} buffers={} grants={} bytes={produced} negotiated={negotiated:#x} \
         userspace_queue_notifies={user_notifies} (ioeventfd_hits={}, bus={bus_notifies}) \
         userspace_interrupts={user_interrupts} empty_evtchn_wakeups={empty_wakeups} \
         ioreqs_completed={} invalidations={}",
        report.kicks,
        report.buffers,
        report.grants,
        stats.ioeventfd_hits,
        stats.completed,
        stats.invalidations
    );
    report!("{TEST}: status writes {:?}", dev.status_log.lock().unwrap());
    for l in console.lines().filter(|l| l.contains("XEN-BOX-DOMU")) {
        report!("{TEST}: console: {}", l.trim());
    }

    // The guest got its bytes, and they are the device's, in the order handed out.
    let reads = hwrng_reads(&console);
    assert_eq!(
        reads.len(),
        4,
        "four hwrng reads on the console:\n{console}"
    );
    let stream: Vec<u8> = (0..produced).map(stream_byte).collect();
    let mut next = 0usize;
    for (i, r) in reads.iter().enumerate() {
        assert_eq!(r.len(), 64, "read {i} has 64 bytes: {r:02x?}");
        let at = stream[next..]
            .windows(r.len())
            .position(|w| w == r.as_slice())
            .map(|p| p + next)
            .unwrap_or_else(|| {
                panic!("read {i} {r:02x?} is not in what the device handed out after byte {next}")
            });
        report!("{TEST}: read {i} = stream bytes {at}..{}", at + r.len());
        next = at + r.len();
    }
    assert!(report.buffers >= reads.len(), "{report:?}");
    assert_eq!(negotiated & VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);
    assert!(
        !dev.status_log.lock().unwrap().contains(&STATUS_FAILED),
        "the driver gave up on the device"
    );
    // Every QueueNotify write reached the device: one kick each, at least one per read.
    assert!(
        report.kicks >= reads.len() as u64,
        "{} kicks for {} reads",
        report.kicks,
        reads.len()
    );

    if eventfd_kernel {
        assert_eq!(
            notify_path,
            NotifyPath::Kernel,
            "privcmd ioeventfd on this kernel"
        );
        assert_eq!(irq_path, NotifyPath::Kernel, "privcmd irqfd on this kernel");
        assert!(notices.is_empty(), "no fallback notice: {notices:?}");
        assert_eq!(
            user_notifies, 0,
            "no QueueNotify write passes through this process"
        );
        assert_eq!(
            user_interrupts, 0,
            "no interrupt passes through this process"
        );
    } else {
        assert_eq!(notify_path, NotifyPath::Userspace, "{kernel:?} kernel");
        assert_eq!(irq_path, NotifyPath::Userspace, "{kernel:?} kernel");
        assert_eq!(notices.len(), 1, "one fallback notice: {notices:?}");
        assert!(user_notifies >= 1, "QueueNotify served in userspace");
        assert_eq!(
            report.kicks, user_notifies,
            "each userspace QueueNotify signals the eventfd once"
        );
        assert!(user_interrupts >= 1, "interrupts injected by this process");
    }
}
