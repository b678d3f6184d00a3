// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arm box tests: virtio-mmio devices served to a real Arm domU by an IOREQ server in dom0
//! (`cargo xtask xen-box test --arch aarch64`).
//!
//! The box's `xen-box-virtio-domu NAME MODE` creates a paused domU whose device tree has a
//! virtio-mmio node at 0x2000000 (0x200 bytes, SPI 33); the domU's init then loads the
//! virtio-mmio and virtio-rng drivers (and, in mode `rng`, reads `/dev/hwrng`). xl places such
//! devices only on Arm: on other hosts these tests say so loudly and skip.

mod common;

use common::{run, DomU, DOMU_LOCK};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm_hypervisor::{DeviceError, IoBus, IoHandler, IoSpace};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_ioreq::{
    BufIoreqMode, Dispatcher, DomId, EventLoop, Interrupt, IoRange, IoreqServer, NotifyPath,
};

#[path = "../examples/virtio_rng/device.rs"]
mod device;

use device::{
    stream_byte, worker, QueueMemory, RngDevice, BASE, SIZE, SPI, STATUS_FAILED, VIRTIO_F_VERSION_1,
};

use xen_box_testing::report;

/// Whether this is an Arm dom0; `None` after a loud SKIPPED.
fn xen_env(test: &str) -> Option<()> {
    xen_box_testing::in_dom0_on(test, "aarch64", "xl places virtio-mmio devices only on Arm")
        .then_some(())
}

/// A paused domU with one virtio-mmio device, destroyed on drop (also when the test panics).
fn create_virtio_domu(tag: &str, mode: &str) -> DomU {
    let name = format!("xioreq-{tag}-{}", std::process::id());
    let out = run(Command::new("xen-box-virtio-domu").arg(&name).arg(mode));
    eprintln!("{}", out.trim());
    let domid = out
        .split_whitespace()
        .find_map(|f| f.strip_prefix("domid="))
        .and_then(|d| d.parse().ok())
        .expect("xen-box-virtio-domu prints domid=");
    DomU::adopt(name, domid)
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
    domu: &DomU,
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
        let console = domu.console_log();
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
    let domu = create_virtio_domu("virtio", "virtio");

    let regs = Arc::new(VirtioMmioRegs::default());
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, BASE, SIZE, regs.clone()).unwrap();
    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
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
// A complete virtio-mmio entropy device: examples/virtio_rng/device.rs
// -------------------------------------------------------------------------------------------

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
    let logs = xen_box_testing::log_recorder();
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let domu = create_virtio_domu("rng", "rng");

    let kick = Arc::new(EventFd::new(0).unwrap());
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let mem = QueueMemory::open(DomId::new(domu.domid)).unwrap();
    let dev = Arc::new(RngDevice::new(kick.clone(), irq.clone()).on_reset({
        let mem = mem.clone();
        move || mem.release_grants()
    }));
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, BASE, SIZE, dev.clone()).unwrap();
    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(BASE, SIZE).unwrap())
        .unwrap();
    server.enable().unwrap();
    let logged_before = logs.lines().len();
    let irq_path = server.add_irqfd(irq.clone(), Interrupt::Line(SPI)).unwrap();
    let dispatcher = Dispatcher::new(&bus).with_guest_ram(mem.guest_ram());
    let notify_path = server.add_ioeventfd(BASE, 4, 0, kick.clone()).unwrap();
    let notices: Vec<String> = logs.lines()[logged_before..]
        .iter()
        .filter(|l| l.contains("unavailable"))
        .cloned()
        .collect();
    report!("{TEST}: irqfd {irq_path:?}, ioeventfd {notify_path:?}, notices {notices:?}");
    let mut ev = EventLoop::new(&server, dispatcher).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (dev, stop) = (dev.clone(), stop.clone());
        std::thread::spawn(move || worker(dev, mem, stop))
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
    let report = worker.join().unwrap().unwrap();
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
    let reads = xen_box_testing::hwrng_reads(&console);
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
        // Each userspace QueueNotify signals the eventfd once, and nothing else does. The
        // worker counts what it reads before it sees the stop flag, so kicks that land while
        // the test stops it (the guest's driver may kick again after its last read) can go
        // uncounted: hence at most, not exactly (and at least one per read, checked above).
        assert!(
            report.kicks <= user_notifies,
            "{} kicks counted for {} QueueNotify writes served",
            report.kicks,
            user_notifies
        );
        assert!(user_interrupts >= 1, "interrupts injected by this process");
    }
}
