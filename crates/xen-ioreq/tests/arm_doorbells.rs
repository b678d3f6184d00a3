// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arm box test: one process creates, serves, destroys and re-creates an IOREQ server with
//! kernel ioeventfds for the same running domU, 20 times, and leaks nothing
//! (`cargo xtask xen-box test --arch aarch64 --dom0-kernel eventfd -p xen-ioreq`).
//!
//! privcmd keeps an ioeventfd registration (a pointer into the server's ioreq page, handlers
//! on its ports) until it is deassigned; a registration left behind would meet the next
//! server of the same domain. The guest (`tests/guests/arm_doorbells.S`) rings doorbells in
//! every round, each followed by a write to another register of the same device; a control
//! server that lives for the whole test tells it when a round's server is ready.

mod common;

use common::{DomU, DOMU_LOCK};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xen_box_testing::held;

use vm_hypervisor::{DeviceError, IoBus, IoHandler, IoSpace};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_ioreq::{
    BufIoreqMode, Dispatcher, DomId, EventLoop, Interrupt, IoRange, IoreqServer, NotifyPath,
};

/// What `tests/guests/arm_doorbells.S` assembles to (an arm64 Image, header included).
const ARM_DOORBELLS_CODE: [u8; 128] = [
    0x10, 0x00, 0x00, 0x14, 0x1f, 0x20, 0x03, 0xd5, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, 0x52, 0x4d, 0x64, 0x00, 0x00, 0x00, 0x00,
    0x21, 0x40, 0xa0, 0xd2, 0x02, 0x40, 0xa0, 0xd2, 0x07, 0x00, 0x80, 0x52, 0xe6, 0x01, 0x80, 0x52,
    0x24, 0x00, 0x40, 0xb9, 0x24, 0x01, 0x00, 0x34, 0x25, 0x04, 0x40, 0xb9, 0xa5, 0x00, 0x00, 0x34,
    0x47, 0x50, 0x00, 0xb9, 0x46, 0x70, 0x00, 0xb9, 0xa5, 0x04, 0x00, 0x71, 0xa1, 0xff, 0xff, 0x54,
    0x24, 0x08, 0x00, 0xb9, 0xf7, 0xff, 0xff, 0x17, 0x7f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17,
];

/// The device's window (the guest's `BASE`) and the control window (`CTRL`).
const BASE: u64 = 0x0200_0000;
const SIZE: u64 = 0x200;
const CTRL: u64 = 0x0201_0000;
const ROUNDS: u32 = 20;
const DOORBELLS: u32 = 16;
/// The longest a round may take (the box is emulated; a round takes well under a second).
const ROUND_LIMIT: Duration = Duration::from_secs(120);

use xen_box_testing::report;

/// The control registers: +0 the next round (read blocks until the test starts it; 0 ends),
/// +4 doorbells per round, +8 written with the round number when the guest is done with it.
struct Control {
    rounds: Mutex<Receiver<u32>>,
    done: Mutex<Sender<u32>>,
}

impl IoHandler for Control {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let v = match offset {
            // The guest waits in this read until the round's server exists: it must not touch
            // the device while no server holds its window (an Arm guest's access nobody
            // serves is a data abort). A test that gave up drops the sender: 0 ends the guest.
            0 => self
                .rounds
                .lock()
                .unwrap()
                .recv_timeout(ROUND_LIMIT)
                .unwrap_or(0),
            4 => DOORBELLS,
            _ => 0,
        };
        data.fill(0);
        let n = data.len().min(4);
        data[..n].copy_from_slice(&v.to_le_bytes()[..n]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        if offset == 8 {
            let mut b = [0u8; 4];
            let n = data.len().min(4);
            b[..n].copy_from_slice(&data[..n]);
            let _ = self.done.lock().unwrap().send(u32::from_le_bytes(b));
        }
        Ok(())
    }
}

/// The device: counts Status writes and QueueNotify writes that reach the bus.
#[derive(Default)]
struct Device {
    status_writes: AtomicUsize,
    bus_notifies: AtomicUsize,
}

impl IoHandler for Device {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }
    fn write(&self, offset: u64, _: &[u8]) -> Result<(), DeviceError> {
        match offset {
            0x70 => self.status_writes.fetch_add(1, Ordering::Relaxed),
            0x50 => self.bus_notifies.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        Ok(())
    }
}

/// An arm64 Image xl boots: the guest code (its header is the Image header).
fn image() -> Vec<u8> {
    ARM_DOORBELLS_CODE.to_vec()
}

/// Whether this is an Arm dom0; says why not loudly.
fn xen_arm_env(test: &str) -> bool {
    xen_box_testing::in_dom0_on(test, "aarch64", "its guest is arm64 code")
}

/// Arm only: 20 times, one process creates a server for the same running domU, registers a
/// kernel ioeventfd (and an irqfd), serves the guest's doorbells and the writes between them,
/// and destroys the server. Every doorbell is signalled each time, none reaches the bus, and
/// the descriptors, privcmd mappings, bound event channels and ioeventfd handlers are the same
/// after the 20 rounds as before (on Debian's kernels, the doorbells go through userspace).
#[test]
fn arm_server_recreated_twenty_times_serves_every_doorbell_and_leaks_nothing() {
    const TEST: &str = "arm_server_recreated_twenty_times_serves_every_doorbell_and_leaks_nothing";
    if !xen_arm_env(TEST) {
        return;
    }
    let eventfd_kernel = std::env::var("XEN_BOX_DOM0_KERNEL").is_ok_and(|k| k == "eventfd");
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = std::env::current_dir().unwrap().join("arm_doorbells.Image");
    std::fs::write(&kernel, image()).unwrap();
    let domu = DomU::create(
        format!("xioreq-doorbells-{}", std::process::id()),
        &format!(
            "kernel = \"{}\"\nmemory = 16\nvcpus = 1\non_crash = \"preserve\"\n",
            kernel.display()
        ),
        true,
    );
    report!("{TEST}: domU {} (domid {})", domu.name, domu.domid);

    let (round_tx, round_rx) = channel();
    let (done_tx, done_rx) = channel();
    let control = Arc::new(Control {
        rounds: Mutex::new(round_rx),
        done: Mutex::new(done_tx),
    });
    let mut control_bus = IoBus::new();
    control_bus
        .insert(IoSpace::Mmio, CTRL, 0x10, control.clone())
        .unwrap();
    let mut control_server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
    control_server
        .map_range(IoRange::mmio(CTRL, 0x10).unwrap())
        .unwrap();
    control_server.enable().unwrap();
    let device = Arc::new(Device::default());
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, BASE, SIZE, device.clone())
        .unwrap();

    std::thread::scope(|scope| {
        let mut control_loop =
            EventLoop::new(&control_server, Dispatcher::new(&control_bus)).unwrap();
        let control_stop = control_loop.stopper();
        let control_thread = scope.spawn(move || control_loop.run());
        domu.unpause();
        let before = held();
        report!("{TEST}: before: {before:?}");
        let mut during = Vec::new();
        for round in 1..=ROUNDS {
            let status_before = device.status_writes.load(Ordering::Relaxed);
            let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
            server
                .map_range(IoRange::mmio(BASE, SIZE).unwrap())
                .unwrap();
            server.enable().unwrap();
            let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
            let call = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
            let notify_path = server.add_ioeventfd(BASE, 4, 0, kick.clone()).unwrap();
            let irq_path = server.add_irqfd(call, Interrupt::Line(33)).unwrap();
            let want = if eventfd_kernel {
                NotifyPath::Kernel
            } else {
                NotifyPath::Userspace
            };
            assert_eq!((notify_path, irq_path), (want, want), "round {round}");
            during.push(held());
            let stats = std::thread::scope(|round_scope| {
                let mut ev = EventLoop::new(&server, Dispatcher::new(&bus)).unwrap();
                let stop = ev.stopper();
                let serving = round_scope.spawn(move || ev.run().map(|()| ev.dispatcher().stats()));
                round_tx.send(round).unwrap();
                let finished = done_rx.recv_timeout(ROUND_LIMIT);
                stop.write(1).unwrap();
                let stats = serving.join().unwrap().unwrap();
                match finished {
                    Ok(r) => assert_eq!(r, round),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                        "round {round}: the guest did not finish within {ROUND_LIMIT:?}: \
                         doorbells signalled {:?}, status writes {}, stats {stats:?}, \
                         slot {:?}, doorbell server {:?}",
                        kick.read(),
                        device.status_writes.load(Ordering::Relaxed) - status_before,
                        server.ioreq_page().slot(0).unwrap().state(),
                        server.doorbell_server_id()
                    ),
                }
                stats
            });
            let rung = kick.read().unwrap_or(0);
            let status = device.status_writes.load(Ordering::Relaxed) - status_before;
            report!(
                "{TEST}: round {round}: server {} doorbell server {:?} in kernel {} \
                 doorbells signalled {rung} status writes {status} userspace doorbells {} \
                 requests {}",
                server.id(),
                server.doorbell_server_id(),
                server.doorbells_in_kernel(),
                stats.ioeventfd_hits,
                stats.completed
            );
            assert_eq!(
                rung,
                u64::from(DOORBELLS),
                "round {round}: every doorbell served"
            );
            assert_eq!(
                status, DOORBELLS as usize,
                "round {round}: every Status write"
            );
            assert_eq!(
                device.bus_notifies.load(Ordering::Relaxed),
                0,
                "no doorbell on the bus"
            );
            if eventfd_kernel {
                assert!(server.doorbells_in_kernel(), "round {round}");
                assert_eq!(stats.ioeventfd_hits, 0, "round {round}: all in the kernel");
            } else {
                assert_eq!(stats.ioeventfd_hits, u64::from(DOORBELLS), "round {round}");
            }
            server.shutdown().unwrap();
        }
        let after = held();
        report!("{TEST}: after {ROUNDS} rounds: {after:?}");
        report!("{TEST}: during the rounds: {during:?}");
        if eventfd_kernel {
            assert!(
                during
                    .iter()
                    .all(|h| h.ioeventfd_irqs > before.ioeventfd_irqs),
                "the kernel's handler was bound in every round: {during:?}"
            );
        }
        assert_eq!(after, before, "nothing grew over {ROUNDS} rounds");
        drop(round_tx);
        control_stop.write(1).unwrap();
        control_thread.join().unwrap().unwrap();
    });
    drop(control_server);
}

/// Runs anywhere with the aarch64 GNU binutils: the embedded guest is what its source
/// assembles to.
#[test]
fn arm_doorbells_guest_matches_its_source() {
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok()
    };
    let tools = [
        "aarch64-linux-gnu-as",
        "aarch64-linux-gnu-ld",
        "aarch64-linux-gnu-objcopy",
    ];
    if !tools.iter().all(|t| have(t)) {
        report!("SKIPPED: arm_doorbells_guest_matches_its_source: aarch64 binutils not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("xioreq-arm-guest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = common::guest_source("arm_doorbells");
    let (obj, elf, bin) = (dir.join("a.o"), dir.join("a.elf"), dir.join("a.bin"));
    common::run(
        std::process::Command::new(tools[0])
            .arg(&src)
            .arg("-o")
            .arg(&obj),
    );
    common::run(
        std::process::Command::new(tools[1])
            .arg("-Ttext=0")
            .arg(&obj)
            .arg("-o")
            .arg(&elf),
    );
    common::run(
        std::process::Command::new(tools[2])
            .args(["-O", "binary"])
            .arg(&elf)
            .arg(&bin),
    );
    let bytes = std::fs::read(&bin).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bytes, ARM_DOORBELLS_CODE, "arm_doorbells.S and its bytes");
    // The Image header xl's loader checks: "ARM\x64" at 0x38, text_offset, image_size.
    assert_eq!(&bytes[0x38..0x3c], b"ARM\x64");
    assert_eq!(
        u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
        0x80000
    );
    assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 128);
}
