// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! One guest domain's virtio-mmio devices, served from vhost-user daemons.
//!
//! Per guest: one IOREQ server with every device's register window mapped before the guest
//! runs; one [`MmioTransport`] per device on a device bus, relaying to its daemon; the guest's
//! RAM shared with each daemon through a privcmd handle restricted to the guest. Queue
//! notifications are ioeventfds (in dom0's kernel when privcmd has them) that signal the
//! daemon's kick eventfds directly. The daemon's call eventfds are read by this process, which
//! sets InterruptStatus before it raises the device's interrupt through an irqfd (again in the
//! kernel when it can): the order virtio-mmio requires.
//!
//! Two threads per guest: the IOREQ event loop, and the interrupt relay, which also asks each
//! daemon twice a second whether it is still there, busy or not (a daemon that died gives its
//! device DEVICE_NEEDS_RESET and a configuration interrupt; a guest reset reconnects).
//!
//! One device can leave while the others stay ([`Guest::remove_device`], the toolstack's
//! hot-unplug): its register window is unmapped from the IOREQ server, it leaves the bus and
//! the interrupt relay, and its daemon's connection closes.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost_user_frontend::mmio::status::DRIVER_OK;
use vhost_user_frontend::{
    DeviceProfile, DeviceType, Mapping, MmioTransport, RelayConfig, SharedMemory, SharedRegion,
    VhostUserRelay,
};
use vm_device_bus::{BusError, DeviceBus, IoBus, IoSpace};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::gntdev::GntDev;
use xen_bindings::privcmd::Privcmd;
use xen_bindings::DomId;
use xen_ioreq::{BufIoreqMode, Dispatcher, EventLoop, Interrupt, IoRange, IoreqServer, NotifyPath};

use crate::device::{VirtioDevice, MMIO_WINDOW};
use crate::serve_error::ServeError;

/// How often the interrupt relay asks the daemons whether they are still there.
const BACKEND_CHECK: Duration = Duration::from_millis(500);

/// The daemon that serves a device, and what kind of device it is.
#[derive(Debug, Clone)]
pub struct DeviceBackend {
    /// The virtio device type (the guest reads its ID from the transport).
    pub device_type: DeviceType,
    /// The daemon's vhost-user socket.
    pub socket: PathBuf,
}

impl DeviceBackend {
    /// The transport's profile for this device.
    pub fn profile(&self) -> DeviceProfile {
        self.device_type.profile()
    }
}

/// How one device's notifications and interrupt travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paths {
    /// Queue notifications (QueueNotify writes) to the daemon's kick eventfds.
    pub kick: NotifyPath,
    /// The device's interrupt into the guest. With [`NotifyPath::Kernel`] the daemon's call
    /// eventfds are irqfds too, and used-buffer interrupts never pass through this process.
    pub interrupt: NotifyPath,
}

type Transport = MmioTransport<VhostUserRelay>;

/// One device being served.
struct Served {
    device: VirtioDevice,
    transport: Arc<Transport>,
    paths: Paths,
    /// Its index in the interrupt relay's table (which keeps its indexes when a device leaves).
    slot: usize,
    /// What it registered with the IOREQ server, given back when it leaves.
    registrations: Registrations,
}

/// A device's eventfd registrations with the IOREQ server.
#[derive(Debug, Default)]
struct Registrations {
    base: u64,
    /// Queues `0..queues` have an ioeventfd.
    queues: u32,
    /// Its interrupt's irqfd and, where the kernel relays them, its queues' calls.
    irqfds: Vec<Arc<EventFd>>,
}

impl Registrations {
    /// Takes every registration back from `server` (privcmd's deassigned, the event loops'
    /// unwatched), so that the server holds none of the device's eventfds; returns the first
    /// error, after trying them all.
    fn release(&mut self, server: &IoreqServer) -> Result<(), ServeError> {
        let mut first = Ok(());
        for vq in 0..std::mem::take(&mut self.queues) {
            if let Err(source) = server.remove_ioeventfd(self.base, vq) {
                first = first.and(Err(ServeError::Ioreq {
                    op: "remove a queue's ioeventfd",
                    source,
                }));
            }
        }
        for irqfd in std::mem::take(&mut self.irqfds) {
            if let Err(source) = server.remove_irqfd(&irqfd) {
                first = first.and(Err(ServeError::Ioreq {
                    op: "remove an irqfd",
                    source,
                }));
            }
        }
        first
    }
}

/// The guest's device bus, shared with the IOREQ thread; a device leaving (hot-unplug) is
/// taken off it while that thread serves the others.
#[derive(Default)]
struct SharedBus(RwLock<IoBus>);

impl DeviceBus for SharedBus {
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        // A panic elsewhere under the lock leaves a bus that can still be served.
        let bus = self.0.read().unwrap_or_else(|e| e.into_inner());
        bus.read(space, addr, data)
    }

    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        let bus = self.0.read().unwrap_or_else(|e| e.into_inner());
        bus.write(space, addr, data)
    }
}

/// A guest domain whose devices are being served. Stop it with [`Guest::stop`]; dropping it
/// stops it too (errors are then only logged).
pub struct Guest {
    domid: DomId,
    devices: Vec<Served>,
    server: Option<Arc<IoreqServer>>,
    loop_stop: Option<Arc<EventFd>>,
    loop_thread: Option<JoinHandle<Result<(), xen_ioreq::Error>>>,
    irq_stop: Arc<EventFd>,
    irq_thread: Option<JoinHandle<()>>,
    relayed: Arc<AtomicU64>,
    bus: Arc<SharedBus>,
    /// What the interrupt relay serves, and its epoll (a leaving device's calls leave both).
    relay: Arc<Mutex<RelayTable>>,
    relay_epoll: Option<Arc<Epoll>>,
    /// What a device added later shares the guest's memory through.
    privcmd: OwnedFd,
    grants: Option<GrantSpace>,
    ram: Vec<(u64, u64)>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("domid", &self.domid)
            .field("devices", &self.devices.len())
            .finish()
    }
}

/// A fresh privcmd handle that can only act on `domid`: what the daemons map the guest's
/// memory through (they get no power over any other domain, nor this process's IOREQ server).
fn restricted_privcmd(domid: DomId) -> Result<OwnedFd, ServeError> {
    let p = Privcmd::open().map_err(|source| ServeError::Xen {
        op: "open /dev/xen/privcmd",
        source,
    })?;
    p.restrict(domid).map_err(|source| ServeError::Xen {
        op: "restrict privcmd to the guest",
        source,
    })?;
    p.as_fd()
        .try_clone_to_owned()
        .map_err(|source| ServeError::Io {
            op: "duplicate the privcmd handle",
            source,
        })
}

/// The guest's RAM as a memory table of foreign mappings through `privcmd`.
fn foreign_memory(
    domid: DomId,
    privcmd: &OwnedFd,
    ram: &[(u64, u64)],
) -> Result<SharedMemory, ServeError> {
    let regions = ram
        .iter()
        .map(|&(start, len)| {
            Ok(SharedRegion {
                guest_addr: start,
                size: len,
                // The daemon translates vring addresses through this: with the guest
                // address here, the vrings go by guest address.
                frontend_addr: start,
                fd: privcmd.try_clone().map_err(|source| ServeError::Io {
                    op: "duplicate the privcmd handle",
                    source,
                })?,
                mapping: Mapping::XenForeign { domid: domid.get() },
            })
        })
        .collect::<Result<Vec<_>, ServeError>>()?;
    SharedMemory::new(regions).map_err(ServeError::Memory)
}

/// Bit 63 of an address a grant-DMA guest gives its device: the rest is a grant reference
/// (in the frame number) and an offset (Linux's `XEN_GRANT_DMA_ADDR_OFF`).
pub const GRANT_ADDR: u64 = 1 << 63;

/// Grant-table entries per 4 KiB frame (version 1 entries, 8 bytes each).
const GRANTS_PER_FRAME: u64 = 512;

/// What a guest that uses grants (`grant_usage=1`) shares: its grant references, as the
/// addresses its devices see.
struct GrantSpace {
    gntdev: OwnedFd,
    /// Grant references the guest's table can hold.
    refs: u64,
}

impl GrantSpace {
    fn open(domid: DomId) -> Result<Self, ServeError> {
        let p = Privcmd::open().map_err(|source| ServeError::Xen {
            op: "open /dev/xen/privcmd",
            source,
        })?;
        let size = p
            .grant_table_size(domid)
            .map_err(|source| ServeError::Xen {
                op: "read the guest's grant-table size",
                source,
            })?;
        let g = GntDev::open().map_err(|source| ServeError::Grant {
            op: "open /dev/xen/gntdev",
            source,
        })?;
        let gntdev = g
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| ServeError::Io {
                op: "duplicate the gntdev handle",
                source,
            })?;
        Ok(Self {
            gntdev,
            refs: u64::from(size.max_nr_frames.max(1)) * GRANTS_PER_FRAME,
        })
    }

    /// One region covering every grant address of the guest, mapped by the daemon through
    /// the gntdev handle when it needs a page.
    fn memory(&self, domid: DomId) -> Result<SharedMemory, ServeError> {
        let fd = self.gntdev.try_clone().map_err(|source| ServeError::Io {
            op: "duplicate the gntdev handle",
            source,
        })?;
        SharedMemory::new(vec![SharedRegion {
            guest_addr: GRANT_ADDR,
            size: self.refs * xen_bindings::XEN_PAGE_SIZE as u64,
            frontend_addr: GRANT_ADDR,
            fd,
            mapping: Mapping::XenGrant { domid: domid.get() },
        }])
        .map_err(ServeError::Memory)
    }
}

/// Checks that `dev` is guest `domid`'s and of the type `backend` serves (when named).
fn check_device(
    domid: DomId,
    dev: &VirtioDevice,
    backend: &DeviceBackend,
) -> Result<(), ServeError> {
    if dev.domid != domid {
        return Err(ServeError::Device {
            path: dev.backend_path.clone(),
            reason: format!("belongs to domain {}, not {domid}", dev.domid),
        });
    }
    if let Some(id) = dev.device_id {
        if id != backend.device_type.id() {
            return Err(ServeError::Device {
                path: dev.backend_path.clone(),
                reason: format!(
                    "the toolstack names device ID {id}, the backend serves {:?}",
                    backend.device_type
                ),
            });
        }
    }
    Ok(())
}

/// The register window of `dev`, as an IOREQ server range.
fn window(dev: &VirtioDevice) -> Result<IoRange, ServeError> {
    IoRange::mmio(dev.base, MMIO_WINDOW).ok_or(ServeError::Device {
        path: dev.backend_path.clone(),
        reason: "register window does not fit".into(),
    })
}

/// Wires device `dev` (its window already mapped to `server`, which is enabled) to its
/// daemon: the transport on `bus`, its interrupt and queue notifications registered with
/// `server`. Returns it as served (at relay index `slot`), as the interrupt relay sees it,
/// and the call eventfds that this process must relay.
fn attach(
    server: &IoreqServer,
    bus: &mut IoBus,
    dev: VirtioDevice,
    backend: &DeviceBackend,
    memory: SharedMemory,
    slot: usize,
) -> Result<(Served, RelayDevice, Vec<EventFd>), ServeError> {
    let xen = |op: &'static str| move |source| ServeError::Ioreq { op, source };
    let profile = backend.profile();
    let relay = VhostUserRelay::new(RelayConfig::new(&backend.socket, profile), memory)
        .map_err(ServeError::Relay)?;
    let fds = relay.eventfds().map_err(ServeError::Relay)?;
    let transport = Arc::new(MmioTransport::new(profile, relay));
    bus.insert(IoSpace::Mmio, dev.base, MMIO_WINDOW, transport.clone())
        .map_err(|e| ServeError::Device {
            path: dev.backend_path.clone(),
            reason: format!("register window: {e}"),
        })?;
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(|source| ServeError::Io {
        op: "create an interrupt eventfd",
        source,
    })?);
    let mut registrations = Registrations {
        base: dev.base,
        ..Registrations::default()
    };
    let registered = (|| {
        let interrupt = server
            .add_irqfd(irq.clone(), Interrupt::Line(dev.irq))
            .map_err(xen("add the interrupt's irqfd"))?;
        registrations.irqfds.push(irq.clone());
        let mut kick = NotifyPath::Kernel;
        let mut direct = interrupt == NotifyPath::Kernel;
        let mut calls = Vec::new();
        for (q, f) in fds.into_iter().enumerate() {
            // Queue indexes fit: the profile has at most u16::MAX queues.
            let path = server
                .add_ioeventfd(dev.base, 4, q as u32, Arc::new(f.kick))
                .map_err(xen("add a queue's ioeventfd"))?;
            registrations.queues = q as u32 + 1;
            if path == NotifyPath::Userspace {
                kick = path;
            }
            if interrupt == NotifyPath::Kernel {
                // The kernel has irqfds: the daemon's call raises the line itself, and the
                // transport shows the used-buffer bit (see `set_direct_used_buffer_interrupts`).
                // Only then: a userspace irqfd would inject without setting InterruptStatus
                // first.
                let call = Arc::new(f.call);
                let path = server
                    .add_irqfd(call.clone(), Interrupt::Line(dev.irq))
                    .map_err(xen("add a queue's call as an irqfd"))?;
                registrations.irqfds.push(call);
                direct &= path == NotifyPath::Kernel;
            } else {
                calls.push(f.call);
            }
        }
        Ok((interrupt, kick, direct, calls))
    })();
    let (interrupt, kick, direct, calls) = match registered {
        Ok(r) => r,
        Err(e) => {
            // Half a device registers nothing: what was registered goes again.
            if let Err(undo) = registrations.release(server) {
                log::warn!("{undo}");
            }
            return Err(e);
        }
    };
    transport.set_direct_used_buffer_interrupts(direct);
    let relay_device = RelayDevice {
        transport: transport.clone(),
        irq,
        gone: false,
    };
    let served = Served {
        slot,
        device: dev,
        transport,
        paths: Paths { kick, interrupt },
        registrations,
    };
    Ok((served, relay_device, calls))
}

impl Guest {
    /// Serves `devices` of guest `domid`, whose RAM is `ram` (guest-physical `(start, len)`
    /// ranges). The register windows are mapped and the interrupts and notifications wired
    /// before this returns; daemons are connected when the guest's driver first reads the
    /// device's features.
    pub fn start(
        domid: DomId,
        devices: Vec<(VirtioDevice, DeviceBackend)>,
        ram: &[(u64, u64)],
    ) -> Result<Self, ServeError> {
        for (dev, backend) in &devices {
            check_device(domid, dev, backend)?;
        }
        let privcmd = restricted_privcmd(domid)?;
        let grants = devices.iter().any(|(d, _)| d.grants);
        let gntdev = if grants {
            Some(GrantSpace::open(domid)?)
        } else {
            None
        };
        let xen = |op: &'static str| move |source| ServeError::Ioreq { op, source };
        let mut server = IoreqServer::open(domid, BufIoreqMode::Off).map_err(xen("create"))?;
        for (dev, _) in &devices {
            server
                .map_range(window(dev)?)
                .map_err(xen("map a register window"))?;
        }
        server.enable().map_err(xen("enable"))?;

        let mut bus = IoBus::new();
        let mut served = Vec::new();
        let mut calls = Vec::new();
        let mut relay_devices = Vec::new();
        for (dev, backend) in devices {
            let memory = match &gntdev {
                Some(g) if dev.grants => g.memory(domid)?,
                _ => foreign_memory(domid, &privcmd, ram)?,
            };
            let slot = served.len();
            let (s, relay_device, device_calls) =
                attach(&server, &mut bus, dev, &backend, memory, slot)?;
            calls.extend(device_calls.into_iter().map(|c| Some((slot, c))));
            relay_devices.push(Some(relay_device));
            served.push(s);
        }
        let server = Arc::new(server);
        let bus = Arc::new(SharedBus(RwLock::new(bus)));

        // The IOREQ event loop, on a thread of its own; it borrows the server it serves.
        let (tx, rx) = std::sync::mpsc::channel();
        let loop_server = server.clone();
        let loop_bus = bus.clone();
        let loop_thread = std::thread::Builder::new()
            .name(format!("ioreq-dom{domid}"))
            .spawn(move || {
                let ev = EventLoop::new(&loop_server, Dispatcher::new(loop_bus));
                let mut ev = match ev {
                    Ok(ev) => {
                        let _ = tx.send(Ok(ev.stopper()));
                        ev
                    }
                    Err(e) => {
                        let _ = tx.send(Err(()));
                        return Err(e);
                    }
                };
                ev.run()
            })
            .map_err(|source| ServeError::Io {
                op: "start the IOREQ thread",
                source,
            })?;
        let loop_stop = match rx.recv() {
            Ok(Ok(stop)) => stop,
            _ => {
                let err = match loop_thread.join() {
                    Ok(Err(source)) => ServeError::Ioreq {
                        op: "start the event loop",
                        source,
                    },
                    _ => ServeError::Thread("the IOREQ thread died starting"),
                };
                return Err(err);
            }
        };

        let irq_stop = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(|source| ServeError::Io {
            op: "create an eventfd",
            source,
        })?);
        let table = Arc::new(Mutex::new(RelayTable {
            devices: relay_devices,
            calls,
        }));
        let mut guest = Guest {
            domid,
            devices: served,
            server: Some(server),
            loop_stop: Some(loop_stop),
            loop_thread: Some(loop_thread),
            irq_stop: irq_stop.clone(),
            irq_thread: None,
            relayed: Arc::new(AtomicU64::new(0)),
            bus,
            relay: table.clone(),
            relay_epoll: None,
            privcmd,
            grants: gntdev,
            ram: ram.to_vec(),
        };
        let relay = InterruptRelay {
            table,
            stop: irq_stop,
            relayed: guest.relayed.clone(),
        };
        let epoll = Arc::new(relay.epoll()?);
        guest.relay_epoll = Some(epoll.clone());
        guest.irq_thread = Some(
            std::thread::Builder::new()
                .name(format!("virtio-irq-dom{domid}"))
                .spawn(move || relay.run(&epoll))
                .map_err(|source| ServeError::Io {
                    op: "start the interrupt thread",
                    source,
                })?,
        );
        for s in &guest.devices {
            log::info!(
                "domain {domid}: device {} at {:#x} (irq {}) served; kicks {:?}, interrupt {:?}",
                s.device.devid,
                s.device.base,
                s.device.irq,
                s.paths.kick,
                s.paths.interrupt
            );
        }
        Ok(guest)
    }

    /// The guest's domain id.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The devices served, in the order given.
    pub fn devices(&self) -> impl Iterator<Item = &VirtioDevice> {
        self.devices.iter().map(|s| &s.device)
    }

    /// How device `i`'s notifications and interrupt travel.
    pub fn paths(&self, i: usize) -> Option<Paths> {
        self.devices.get(i).map(|s| s.paths)
    }

    /// The virtio Status the guest's driver last wrote to device `i`.
    pub fn status(&self, i: usize) -> Option<u32> {
        self.devices.get(i).map(|s| s.transport.status())
    }

    /// Used-buffer interrupts this process has passed on (the daemons' calls it read): none
    /// when the kernel's irqfds carry them.
    pub fn relayed_interrupts(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }

    /// Whether the guest's driver has set DRIVER_OK on device `i`.
    pub fn driver_ok(&self, i: usize) -> bool {
        self.status(i).is_some_and(|s| s & DRIVER_OK != 0)
    }

    /// Serves one more device of the guest (the toolstack adds a guest's devices one at a
    /// time, each once the one before has its backend): its window is mapped to the guest's
    /// IOREQ server and it is wired as [`Guest::start`] does. On an error the window is
    /// unmapped again and the device is not served.
    pub fn add_device(
        &mut self,
        dev: VirtioDevice,
        backend: &DeviceBackend,
    ) -> Result<(), ServeError> {
        check_device(self.domid, &dev, backend)?;
        if self.devices.iter().any(|s| s.device.devid == dev.devid) {
            return Err(ServeError::Device {
                path: dev.backend_path.clone(),
                reason: "already served".into(),
            });
        }
        let Some(server) = self.server.clone() else {
            return Err(ServeError::Thread("the guest is stopping"));
        };
        let memory = if dev.grants {
            if self.grants.is_none() {
                self.grants = Some(GrantSpace::open(self.domid)?);
            }
            match &self.grants {
                Some(g) => g.memory(self.domid)?,
                None => return Err(ServeError::Thread("the grant space is gone")),
            }
        } else {
            foreign_memory(self.domid, &self.privcmd, &self.ram)?
        };
        let range = window(&dev)?;
        server
            .map_range(range)
            .map_err(|source| ServeError::Ioreq {
                op: "map a register window",
                source,
            })?;
        let base = dev.base;
        let slot = lock(&self.relay).devices.len();
        let attached = {
            let mut bus = self.bus.0.write().unwrap_or_else(|e| e.into_inner());
            let attached = attach(&server, &mut bus, dev, backend, memory, slot);
            if attached.is_err() {
                bus.remove(IoSpace::Mmio, base);
            }
            attached
        };
        let (served, relay_device, calls) = match attached {
            Ok(a) => a,
            Err(e) => {
                if let Err(undo) = server.unmap_range(range) {
                    log::warn!("domain {}: {undo}", self.domid);
                }
                return Err(e);
            }
        };
        {
            let mut table = lock(&self.relay);
            table.devices.push(Some(relay_device));
            for call in calls {
                let token = table.calls.len() as u64;
                if let Some(epoll) = &self.relay_epoll {
                    if let Err(e) = epoll.ctl(
                        ControlOperation::Add,
                        call.as_raw_fd(),
                        EpollEvent::new(EventSet::IN, token),
                    ) {
                        log::warn!("domain {}: cannot watch a call eventfd: {e}", self.domid);
                    }
                }
                table.calls.push(Some((slot, call)));
            }
        }
        log::info!(
            "domain {}: device {} at {:#x} (irq {}) served; kicks {:?}, interrupt {:?}",
            self.domid,
            served.device.devid,
            served.device.base,
            served.device.irq,
            served.paths.kick,
            served.paths.interrupt
        );
        self.devices.push(served);
        Ok(())
    }

    /// Stops serving device `devid` while the others go on (the toolstack unplugged it): its
    /// register window is unmapped from the IOREQ server (the guest's accesses there reach no
    /// one), its eventfd registrations leave the IOREQ server (privcmd deassigns the kernel's
    /// ioeventfds and irqfds, the event loop stops watching the others), it leaves the bus
    /// and the interrupt relay, and its daemon's connection and the guest-memory handles
    /// given to the daemon close: the process then holds what it holds for a guest without
    /// the device. Returns whether the device was served; on an error the device is gone all
    /// the same.
    pub fn remove_device(&mut self, devid: u32) -> Result<bool, ServeError> {
        let Some(i) = self.devices.iter().position(|s| s.device.devid == devid) else {
            return Ok(false);
        };
        let mut served = self.devices.remove(i);
        let base = served.device.base;
        let mut first = None;
        if let Some(server) = &self.server {
            // The window was mapped whole in `start`; the same range unmaps it.
            if let Some(range) = IoRange::mmio(base, MMIO_WINDOW) {
                if let Err(source) = server.unmap_range(range) {
                    first = Some(ServeError::Ioreq {
                        op: "unmap a register window",
                        source,
                    });
                }
            }
            // After the window: the guest's accesses reach no one before the doorbells go.
            if let Err(e) = served.registrations.release(server) {
                first.get_or_insert(e);
            }
        }
        // An access the IOREQ thread took before the unmap is served before the device leaves
        // the bus (the write lock waits for it).
        let taken = self
            .bus
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(IoSpace::Mmio, base);
        let (relay_device, calls) = {
            let mut table = lock(&self.relay);
            let device = table.devices.get_mut(served.slot).and_then(Option::take);
            let mut calls = Vec::new();
            for c in table.calls.iter_mut() {
                if c.as_ref().is_some_and(|(slot, _)| *slot == served.slot) {
                    calls.extend(c.take());
                }
            }
            (device, calls)
        };
        if let Some(epoll) = &self.relay_epoll {
            for (_, call) in &calls {
                let _ = epoll.ctl(
                    ControlOperation::Delete,
                    call.as_raw_fd(),
                    EpollEvent::default(),
                );
            }
        }
        // The last handles on the transport: its relay, and with it the daemon's connection,
        // the eventfds it made and the memory handles, close here.
        drop((calls, relay_device, taken));
        let held_elsewhere = Arc::strong_count(&served.transport) - 1;
        drop(served);
        if held_elsewhere != 0 {
            log::warn!(
                "domain {}: device {devid}'s transport is still held {held_elsewhere} times",
                self.domid
            );
        }
        log::info!(
            "domain {}: device {devid} at {base:#x} removed; window unmapped, registrations released{}",
            self.domid,
            match &first {
                Some(e) => format!(" with an error: {e}"),
                None => String::new(),
            }
        );
        match first {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    /// Stops serving: both threads end, the daemons' connections close, and the IOREQ server
    /// is torn down (kernel registrations first). Returns the first error.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), ServeError> {
        let mut first = None;
        if let Some(stop) = self.loop_stop.take() {
            let _ = stop.write(1);
        }
        if let Some(t) = self.loop_thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    first.get_or_insert(ServeError::Ioreq {
                        op: "serve",
                        source,
                    });
                }
                Err(_) => {
                    first.get_or_insert(ServeError::Thread("the IOREQ thread panicked"));
                }
            }
        }
        let _ = self.irq_stop.write(1);
        if let Some(t) = self.irq_thread.take() {
            if t.join().is_err() {
                first.get_or_insert(ServeError::Thread("the interrupt thread panicked"));
            }
        }
        // The transports (and with them the daemons' connections) go before the server.
        self.devices.clear();
        *lock(&self.relay) = RelayTable::default();
        self.relay_epoll = None;
        *self.bus.0.write().unwrap_or_else(|e| e.into_inner()) = IoBus::new();
        if let Some(server) = self.server.take() {
            match Arc::try_unwrap(server) {
                Ok(server) => {
                    if let Err(source) = server.shutdown() {
                        first.get_or_insert(ServeError::Ioreq {
                            op: "shut down",
                            source,
                        });
                    }
                }
                Err(_) => {
                    first.get_or_insert(ServeError::Thread("the IOREQ server is still shared"));
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            log::warn!("domain {}: teardown: {e}", self.domid);
        }
    }
}

/// Locks `m`; a panic elsewhere under the lock leaves state that can still be used.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One device as the interrupt relay sees it.
struct RelayDevice {
    transport: Arc<Transport>,
    /// Its irqfd (registered with the IOREQ server).
    irq: Arc<EventFd>,
    /// Its daemon was found gone (said once, until the guest resets the device).
    gone: bool,
}

/// What the interrupt relay serves, by index: a device that left leaves `None` behind, so
/// the others keep their indexes (and the calls their epoll tokens).
#[derive(Default)]
struct RelayTable {
    devices: Vec<Option<RelayDevice>>,
    /// Every queue's call eventfd that this process relays, with its device's index.
    calls: Vec<Option<(usize, EventFd)>>,
}

/// The interrupt relay's state, moved into its thread.
struct InterruptRelay {
    table: Arc<Mutex<RelayTable>>,
    stop: Arc<EventFd>,
    relayed: Arc<AtomicU64>,
}

/// The epoll token of the stop eventfd (the calls use their index).
const STOP: u64 = u64::MAX;

impl InterruptRelay {
    fn epoll(&self) -> Result<Epoll, ServeError> {
        let io = |op| move |source| ServeError::Io { op, source };
        let epoll = Epoll::new().map_err(io("create an epoll"))?;
        let add = |fd: RawFd, token: u64| {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )
        };
        add(self.stop.as_raw_fd(), STOP).map_err(io("watch the stop eventfd"))?;
        for (i, call) in lock(&self.table).calls.iter().enumerate() {
            if let Some((_, call)) = call {
                add(call.as_raw_fd(), i as u64).map_err(io("watch a call eventfd"))?;
            }
        }
        Ok(epoll)
    }

    /// Asks each device's daemon whether it is still there.
    fn check_backends(&self) {
        for d in lock(&self.table).devices.iter_mut().flatten() {
            match d.transport.check_backend(&*d.irq) {
                // Said once: a device stays broken until the guest resets it.
                Err(e) if !d.gone => {
                    log::warn!("virtio device: {}", vhost_user_frontend::error::chain(&e));
                    d.gone = true;
                }
                Err(_) => {}
                Ok(()) => d.gone = false,
            }
        }
    }

    fn run(self, epoll: &Epoll) {
        let calls = lock(&self.table).calls.len();
        let mut events = vec![EpollEvent::default(); calls + 1];
        let mut next_check = Instant::now() + BACKEND_CHECK;
        loop {
            // The check is due by the clock, not only when idle: a busy device's interrupts
            // must not hide another device's dead daemon.
            let wait = next_check.saturating_duration_since(Instant::now());
            let n = match epoll.wait(wait.as_millis() as i32, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("virtio interrupt relay: epoll: {e}; stopping");
                    return;
                }
            };
            if Instant::now() >= next_check {
                self.check_backends();
                next_check = Instant::now() + BACKEND_CHECK;
            }
            for ev in &events[..n] {
                let token = ev.data();
                if token == STOP {
                    return;
                }
                let table = lock(&self.table);
                // A call of a device that just left: nothing to relay.
                let Some(Some((dev, call))) = table.calls.get(token as usize) else {
                    continue;
                };
                // Nonblocking: a stale readiness reads nothing and injects nothing.
                if call.read().is_err() {
                    continue;
                }
                let Some(Some(d)) = table.devices.get(*dev) else {
                    continue;
                };
                self.relayed.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = d.transport.used_buffer_interrupt(&*d.irq) {
                    log::warn!("virtio device: cannot raise its interrupt: {e}");
                }
            }
        }
    }
}
