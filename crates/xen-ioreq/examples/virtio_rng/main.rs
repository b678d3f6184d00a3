// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Serves a virtio-mmio entropy device to a Xen on Arm guest.
//!
//! As root in dom0, for a domU whose device tree has a `virtio,mmio` node at 0x2000000 with
//! SPI 33 (xl.cfg `virtio = [ "type=virtio,device,transport=mmio,backend=0" ]`, domain
//! created paused):
//!
//! ```text
//! virtio_rng DOMID     # then: xl unpause DOMID; in the guest: head -c 64 /dev/hwrng | od -x
//! ```
//!
//! Queue notifications reach the device through `IoreqServer::add_ioeventfd` and its
//! interrupt goes out through `IoreqServer::add_irqfd`: in the kernel when dom0's privcmd
//! has irqfd/ioeventfd (Linux 6.7+ with `CONFIG_XEN_PRIVCMD_EVENTFD`), else through this
//! process (logged once). The device itself is `device.rs`, shared with `tests/arm_virtio.rs`.

// The box test reads counters this example does not.
#[allow(dead_code)]
mod device;
#[cfg(test)]
mod tests;

use std::error::Error;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use vm_device_bus::{IoBus, IoSpace};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::DomId;
use xen_ioreq::{BufIoreqMode, Dispatcher, EventLoop, Interrupt, IoRange, IoreqServer};

use device::{worker, QueueMemory, RngDevice, BASE, SIZE, SPI};

/// Writes the device's and the server's log lines (what a guest did wrong, notices) to
/// stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let domid: DomId = std::env::args()
        .nth(1)
        .ok_or("usage: virtio_rng DOMID")?
        .parse()?;
    let kick = Arc::new(EventFd::new(0)?);
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK)?);
    // The guest's memory: the worker fills buffers through it, a device reset releases its
    // grant mappings, and Xen's INVALIDATE (below, through the dispatcher) its foreign ones.
    let mem = QueueMemory::open(domid)?;
    let dev = Arc::new(RngDevice::new(kick.clone(), irq.clone()).on_reset({
        let mem = mem.clone();
        move || mem.release_grants()
    }));
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, BASE, SIZE, dev.clone())?;

    let mut server = IoreqServer::open(domid, BufIoreqMode::Off)?;
    server.map_range(IoRange::mmio(BASE, SIZE).ok_or("register window")?)?;
    server.enable()?;
    let irq_path = server.add_irqfd(irq, Interrupt::Line(SPI))?;
    let dispatcher = Dispatcher::new(&bus).with_guest_ram(mem.guest_ram());
    let notify_path = server.add_ioeventfd(BASE, 4, 0, kick)?;
    println!(
        "domain {domid}: virtio-rng at {BASE:#x}, SPI {SPI}; interrupt {irq_path:?}, \
         notifications {notify_path:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        if let Err(e) = worker(dev, mem, stop) {
            eprintln!("virtio-rng worker: {e}");
        }
    });
    EventLoop::new(&server, dispatcher)?.run()?;
    Ok(())
}
