// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The IOREQ server's life through dm_op: create, map pages, register ranges, enable, bind
//! event channels, serve, destroy.
//!
//! Order matters and follows what Xen expects: the server is created (disabled), its pages are
//! mapped with `MMAP_RESOURCE`, ranges are registered, the server is enabled, and only then
//! are the per-vCPU event channels bound, because Xen writes each slot's `vp_eport` when it
//! enables the server. Dropping the server unbinds the ports, unmaps the pages and destroys
//! it in Xen.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use vm_device_bus::{BusError, DeviceBus, IoSpace};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::abi::xen::dm_op::*;
use xen_bindings::abi::xen::hvm::{
    HVM_IOREQSRV_BUFIOREQ_ATOMIC, HVM_IOREQSRV_BUFIOREQ_LEGACY, HVM_IOREQSRV_BUFIOREQ_OFF,
};
use xen_bindings::abi::xen::ioreq::{
    Ioreq, IOREQ_DATA_IS_PTR_BIT, IOREQ_DIR_BIT, IOREQ_TYPE_COPY, IOREQ_TYPE_PIO,
};
use xen_bindings::abi::xen::memory::{
    xenmem_resource_ioreq_server_frame_ioreq, XENMEM_RESOURCE_IOREQ_SERVER_FRAME_BUFIOREQ,
};
use xen_bindings::abi::Pod;
use xen_bindings::evtchn::{BoundPort, EventChannel, EventChannelOps, Port};
use xen_bindings::privcmd::{self, Privcmd, Resource};
use xen_bindings::sys::{RealSys, Sys};
use xen_bindings::DomId;

use crate::bufring::BufferedRing;
use crate::dispatch::{Dispatcher, UserIoeventfds};
use crate::doorbell::{cut, register_range, Doorbell, DoorbellServer, Owner};
use crate::error::{io, Error, Result};
use crate::page::{IoPage, IoreqPage, MappedPage, Slot};
use crate::request::Request;
use crate::user_irqfds::UserIrqfds;
use crate::vcpu_ports::VcpuPorts;

/// How the server takes buffered (posted) writes (`HVM_IOREQSRV_BUFIOREQ_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BufIoreqMode {
    /// No buffered ring: every access is synchronous.
    Off,
    /// Buffered ring with free-running 32-bit pointers.
    Legacy,
    /// Buffered ring whose pointers Xen rebases atomically (recommended when buffering).
    Atomic,
}

impl BufIoreqMode {
    /// The ABI value.
    pub fn raw(self) -> u8 {
        match self {
            BufIoreqMode::Off => HVM_IOREQSRV_BUFIOREQ_OFF,
            BufIoreqMode::Legacy => HVM_IOREQSRV_BUFIOREQ_LEGACY,
            BufIoreqMode::Atomic => HVM_IOREQSRV_BUFIOREQ_ATOMIC,
        }
    }
}

/// A range of guest I/O forwarded to this server (bounds inclusive, as in the dm_op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoRange {
    /// Ports `start..=end`.
    Port {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// Guest-physical addresses `start..=end`.
    Mmio {
        /// First address.
        start: u64,
        /// Last address.
        end: u64,
    },
    /// Configuration space of one PCI function.
    PciConfig {
        /// Segment.
        segment: u16,
        /// Bus.
        bus: u8,
        /// Device (0-31).
        device: u8,
        /// Function (0-7).
        function: u8,
    },
}

impl IoRange {
    /// `len` bytes of MMIO from `base`; `None` if empty or wrapping.
    pub fn mmio(base: u64, len: u64) -> Option<Self> {
        let end = base.checked_add(len.checked_sub(1)?)?;
        Some(IoRange::Mmio { start: base, end })
    }

    /// `len` ports from `base`; `None` if empty or past port 0xffff.
    pub fn ports(base: u16, len: u16) -> Option<Self> {
        let end = base.checked_add(len.checked_sub(1)?)?;
        Some(IoRange::Port { start: base, end })
    }

    fn to_dm_op(self, id: IoservId) -> Result<XenDmOpIoreqServerRange> {
        let (type_, start, end) = match self {
            IoRange::Port { start, end } => (XEN_DMOP_IO_RANGE_PORT, start.into(), end.into()),
            IoRange::Mmio { start, end } => (XEN_DMOP_IO_RANGE_MEMORY, start, end),
            IoRange::PciConfig {
                segment,
                bus,
                device,
                function,
            } => {
                if device > 31 || function > 7 {
                    return Err(Error::InvalidArgument {
                        op: "map_io_range",
                        what: format!("PCI device {device} function {function}"),
                    });
                }
                let sbdf = xen_dmop_pci_sbdf(segment, bus, device, function);
                (XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf)
            }
        };
        if start > end {
            return Err(Error::InvalidArgument {
                op: "map_io_range",
                what: format!("range {start:#x}..={end:#x} is empty"),
            });
        }
        Ok(XenDmOpIoreqServerRange {
            id,
            pad: 0,
            type_,
            start,
            end,
        })
    }
}

/// An interrupt the device model raises in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Interrupt {
    /// An interrupt line by number through `XEN_DMOP_set_irq_level` (Xen 4.18+): an SPI of an
    /// Arm guest. x86 guests use [`Interrupt::Isa`], [`Interrupt::PciIntx`] or
    /// [`Interrupt::Msi`].
    Line(u32),
    /// An ISA IRQ (0-15) of an x86 HVM guest.
    Isa(u8),
    /// A PCI INTx pin of an x86 HVM guest.
    PciIntx {
        /// Segment.
        segment: u16,
        /// Bus.
        bus: u8,
        /// Device.
        device: u8,
        /// Pin: 0 (INTA) to 3 (INTD).
        intx: u8,
    },
    /// A message-signalled interrupt (level is meaningless: each trigger sends one message).
    Msi {
        /// Message address.
        addr: u64,
        /// Message data.
        data: u32,
    },
}

impl Interrupt {
    /// The dm_op that sets this interrupt to `level` (MSI: sends it).
    pub fn dm_op(&self, level: bool) -> XenDmOp {
        let level = u8::from(level);
        match *self {
            Interrupt::Line(irq) => XenDmOp::new(
                XEN_DMOP_SET_IRQ_LEVEL,
                &XenDmOpSetIrqLevel {
                    irq,
                    level,
                    pad: [0; 3],
                },
            ),
            Interrupt::Isa(isa_irq) => XenDmOp::new(
                XEN_DMOP_SET_ISA_IRQ_LEVEL,
                &XenDmOpSetIsaIrqLevel { isa_irq, level },
            ),
            Interrupt::PciIntx {
                segment,
                bus,
                device,
                intx,
            } => XenDmOp::new(
                XEN_DMOP_SET_PCI_INTX_LEVEL,
                &XenDmOpSetPciIntxLevel {
                    domain: segment,
                    bus,
                    device,
                    intx,
                    level,
                },
            ),
            Interrupt::Msi { addr, data } => XenDmOp::new(
                XEN_DMOP_INJECT_MSI,
                &XenDmOpInjectMsi { data, pad: 0, addr },
            ),
        }
    }
}

/// Who delivers a notification: the kernel (privcmd irqfd/ioeventfd) or this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotifyPath {
    /// The kernel acts on the eventfd without waking this process.
    Kernel,
    /// The kernel cannot (Linux < 6.7 or compiled out): the event loop does it.
    Userspace,
}

/// The kernel irqfds this server registered with privcmd, kept so that teardown can take them
/// back (its kernel ioeventfds are the doorbell server's, which does the same for them).
///
/// Linux keeps each registration until it is deassigned explicitly; for an ioeventfd (a
/// pointer into our ioreq page and handlers on our ports) closing the eventfd or the privcmd
/// descriptor does not end it. A server re-created for the same domain would otherwise meet
/// the old record, and the kernel would write through a pointer to a page this process
/// unmapped.
#[derive(Debug, Default)]
struct KernelRegistrations {
    /// (eventfd, the dm_op it runs).
    irqfds: Vec<(Arc<EventFd>, XenDmOp)>,
}

/// The MMIO ranges the caller gave [`IoreqServer::map_range`] and the QueueNotify registers
/// the doorbell server holds: the main server holds the first without the second.
#[derive(Debug, Default)]
struct RangeBook {
    /// Caller's MMIO ranges (inclusive), as given.
    user: Vec<(u64, u64)>,
    /// Registers moved to the doorbell server (inclusive).
    holes: Vec<(u64, u64)>,
}

/// Sets `O_NONBLOCK` on `fd`'s open file description.
fn set_nonblocking(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    set_blocking_flag(fd, false)
}

/// Clears (`blocking`) or sets `O_NONBLOCK` on `fd`'s open file description.
fn set_blocking_flag(fd: std::os::fd::RawFd, blocking: bool) -> std::io::Result<()> {
    // SAFETY: F_GETFL reads the flags of a descriptor the caller keeps open; no memory is
    // passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if blocking {
        flags & !libc::O_NONBLOCK
    } else {
        flags | libc::O_NONBLOCK
    };
    // SAFETY: as above; F_SETFL takes the flags as an integer.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The most ports one read of the event channel takes in [`IoreqServer::serve_pending`]: a
/// wake-up usually finds one, and the buffer is cleared on every call (more ports pending are
/// read with another read).
pub(crate) const PORTS_PER_READ: usize = 16;

/// A taken request that will be answered: by [`Answer::send`], or, if the dispatch panics
/// (a device handler's bug), by the unwinding, which drops this and answers all ones for a
/// read. Either way the vCPU is notified: a device model thread that dies must not leave the
/// guest's vCPU waiting on a slot stuck `IN_PROCESS`.
///
/// It holds the slot, not the request (which stays apart, where the dispatch reads it), and
/// its drop is inline: after [`Answer::send`] the compiler sees `sent` set and leaves the drop
/// out, so only an unwinding dispatch runs it.
struct Answer<'s, 'a, S: Sys> {
    server: &'s IoreqServer<S>,
    vcpu: usize,
    /// The local port of the slot's server (this one's or the doorbell server's).
    port: Option<Port>,
    slot: Slot<'a>,
    /// The slot's flags byte when taken.
    flags: u8,
    /// [`Answer::send`] answered.
    sent: bool,
}

impl<S: Sys> Answer<'_, '_, S> {
    #[inline(always)]
    fn send(&mut self, data: Option<u64>) {
        self.slot.publish(self.flags, data);
        self.server.notify_vcpu(self.vcpu, self.port);
        self.sent = true;
    }
}

/// The dispatch of the request taken from `slot` (of `vcpu`, notified on `port`, its flags
/// byte `flags`) panicked: answers it as failed. Given the guard's fields, not the guard: the
/// guard's address taken on the common path would keep it in memory there.
#[cold]
#[inline(never)]
fn answer_failed<S: Sys>(
    server: &IoreqServer<S>,
    vcpu: usize,
    port: Option<Port>,
    slot: Slot<'_>,
    flags: u8,
) {
    log::error!(
        "domain {}: vCPU {vcpu}: the request's dispatch panicked; answering it as failed",
        server.domid,
    );
    let raw = slot.peek();
    let data = (raw.is_read() && !raw.data_is_ptr()).then_some(u64::MAX);
    slot.publish(flags, data);
    server.notify_vcpu(vcpu, port);
}

impl<S: Sys> Drop for Answer<'_, '_, S> {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.sent {
            answer_failed(self.server, self.vcpu, self.port, self.slot, self.flags);
        }
    }
}

/// What [`Slot::taken_kind`] tells of the common request: its type, its direction and
/// `data_is_ptr` (clear).
const KIND_MASK: u16 = 0xff00 | (IOREQ_DIR_BIT | IOREQ_DATA_IS_PTR_BIT) as u16;
/// An MMIO read with its data in the slot, as [`KIND_MASK`] leaves it.
const MMIO_READ: u16 = (IOREQ_TYPE_COPY as u16) << 8 | IOREQ_DIR_BIT as u16;
/// An MMIO write with its data in the slot.
const MMIO_WRITE: u16 = (IOREQ_TYPE_COPY as u16) << 8;
/// A port read with its data in the slot.
const PIO_READ: u16 = (IOREQ_TYPE_PIO as u16) << 8 | IOREQ_DIR_BIT as u16;
/// A port write with its data in the slot.
const PIO_WRITE: u16 = (IOREQ_TYPE_PIO as u16) << 8;

/// [`Answer`] of the single-loop path's common request ([`IoreqServer::serve_port_inline`]):
/// the slot of the vCPU of `port`, whose flags byte is read back from the slot if the
/// dispatch panics, so that only the slot and the port are kept across the device's call.
struct PortAnswer<'s, 'a, S: Sys> {
    server: &'s IoreqServer<S>,
    /// The server's event channel, as the loop looked it up.
    evtchn: EventChannelOps<'s, S>,
    port: Port,
    slot: Slot<'a>,
    /// [`PortAnswer::send`] answered.
    sent: bool,
}

impl<S: Sys> PortAnswer<'_, '_, S> {
    #[inline(always)]
    fn send(&mut self, data: Option<u64>) {
        self.slot.publish_taken(data);
        let server = self.server;
        if let Err(e) = self.evtchn.notify(self.port) {
            server.notify_failed(server.port_vcpus.vcpu(self.port), e);
        }
        self.sent = true;
    }
}

/// [`answer_failed`] of a [`PortAnswer`]'s fields (out of line, so that the guard's drop is a
/// test and a call, which the compiler inlines into the unwinding path: an out-of-line drop
/// would be given the guard's address, and keep the guard in memory on the common path).
#[cold]
#[inline(never)]
fn port_answer_failed<S: Sys>(server: &IoreqServer<S>, port: Port, slot: Slot<'_>) {
    let vcpu = server.port_vcpus.vcpu(port);
    let flags = slot.taken_copy().flags;
    answer_failed(server, vcpu, Some(port), slot, flags);
}

impl<S: Sys> Drop for PortAnswer<'_, '_, S> {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.sent {
            port_answer_failed(self.server, self.port, self.slot);
        }
    }
}

/// An IOREQ server for one domain.
///
/// Generic over the syscall seam so that every dm_op, mapping and event-channel call can be
/// checked in unit tests.
#[derive(Debug)]
pub struct IoreqServer<S: Sys = RealSys> {
    privcmd: Arc<Privcmd<S>>,
    evtchn: EventChannel<S>,
    domid: DomId,
    id: IoservId,
    mode: BufIoreqMode,
    vcpus: usize,
    ioreq: Option<IoreqPage<MappedPage<S>>>,
    bufring: Option<BufferedRing<MappedPage<S>>>,
    bufioreq_remote: Port,
    ports: Vec<BoundPort<S>>,
    local_ports: Vec<Port>,
    /// The vCPU of each of `local_ports`, looked up in one step on a request's path.
    port_vcpus: VcpuPorts,
    buf_port: Option<BoundPort<S>>,
    enabled: bool,
    destroyed: bool,
    eventfd_fallback_logged: AtomicBool,
    /// Whether privcmd's kernel ioeventfd may be asked for (see [`kernel_ioeventfd_is_safe`]).
    kernel_ioeventfd: bool,
    /// Whether this domain may use it at all (read once, at creation).
    kernel_ioeventfd_safe: bool,
    /// Set once privcmd said it has no ioeventfd: later doorbells go to userspace at once.
    kernel_ioeventfd_unsupported: AtomicBool,
    /// The doorbell server, created with the first kernel ioeventfd (see the `doorbell`
    /// module): the QueueNotify registers privcmd's handler serves, apart from the rest.
    doorbells: OnceLock<DoorbellServer<S>>,
    /// The caller's MMIO ranges and the registers cut out of them; also serialises the
    /// changes of ranges and doorbells.
    ranges: Mutex<RangeBook>,
    /// The doorbells this process serves because the kernel cannot, for every dispatcher.
    user_ioeventfds: RwLock<UserIoeventfds>,
    /// Set once the first of them is registered (until then requests are not checked).
    any_user_ioeventfd: AtomicBool,
    pub(crate) user_irqfds: UserIrqfds,
    /// Kernel irqfds to deassign on teardown.
    kernel_registrations: Mutex<KernelRegistrations>,
    /// Calls of [`IoreqServer::serve_buffered`] under way (the first one drains the ring).
    buf_drains: AtomicUsize,
    /// A drain stopped at [`IoreqServer::BUFFERED_PER_CALL`] with entries left in the ring, whose event
    /// was already consumed: set until [`IoreqServer::take_buffered_backlog`] takes it.
    buf_backlog: AtomicBool,
    /// Where the last drain stopped in the buffered ring (the position after the last entry
    /// it took), or [`NO_POSITION`]: the drainer's own record, to notice a read pointer put
    /// back ([`BufferedRing::pop_after`]). Only the drainer of the moment uses it.
    buf_next: AtomicU64,
    /// Written when an [`crate::EventLoop`] that stops or goes gives its buffered backlog
    /// back ([`IoreqServer::give_back_buffered_backlog`]); every loop watches it, so one of
    /// the others takes the backlog without waiting for an event.
    backlog_wake: EventFd,
    /// The event loops and which of them, if any, blocks in `read` of the event channel (the
    /// single-loop path of [`crate::EventLoop`]); also serialises the descriptor's blocking
    /// flag.
    lean: Mutex<LeanState>,
    /// Whether a loop owns the descriptor in blocking mode (set and cleared under `lean`; that
    /// loop reads it after every wake-up to learn it was sent back to the general path).
    lean_active: AtomicBool,
    /// The local ports of the loops' own loopback channels (their wake-ups): an event on one
    /// that another reader takes is not an unknown port's.
    wake_ports: Mutex<Vec<Port>>,
}

/// [`IoreqServer`]'s record of its event loops for the single-loop path.
#[derive(Debug, Default)]
struct LeanState {
    /// Event loops alive.
    loops: usize,
    /// The loop that blocks in `read`, by the port that wakes it (notified to send it back to
    /// the general path).
    owner: Option<Port>,
}

/// [`IoreqServer`]'s `buf_next` before any entry was taken (or after a resync).
const NO_POSITION: u64 = u64::MAX;

impl IoreqServer<RealSys> {
    /// Opens privcmd and a non-blocking event channel and creates a server for `domid`.
    pub fn open(domid: DomId, mode: BufIoreqMode) -> Result<Self> {
        let privcmd = Privcmd::open().map_err(|source| Error::Privcmd {
            op: "open privcmd",
            domid,
            source,
        })?;
        let evtchn = EventChannel::open_nonblocking().map_err(|source| Error::Evtchn {
            op: "open evtchn",
            domid,
            source,
        })?;
        Self::create(Arc::new(privcmd), evtchn, domid, mode)
    }
}

/// Whether privcmd's `IOCTL_PRIVCMD_IOEVENTFD` can be used in a domain of this
/// `/sys/hypervisor/guest_type` (`None`: unknown).
///
/// Linux (6.7 to at least 6.12) takes the ioreq page of an ioeventfd from the mapping's
/// private data, which is a page array only when the domain is auto-translated (Arm, PVH);
/// in an x86 PV domain it is a marker, and a successful assign makes the kernel dereference a
/// bogus pointer (an oops in dom0). So in a PV domain the userspace path is used instead.
pub fn kernel_ioeventfd_is_safe(guest_type: Option<&str>) -> bool {
    guest_type.map(str::trim) != Some("PV")
}

/// [`kernel_ioeventfd_is_safe`] for the domain this process runs in.
fn this_domain_may_use_kernel_ioeventfd() -> bool {
    let guest_type = std::fs::read_to_string("/sys/hypervisor/guest_type").ok();
    kernel_ioeventfd_is_safe(guest_type.as_deref())
}

impl<S: Sys> IoreqServer<S> {
    /// Creates a server for `domid`, learns its vCPU count and buffered port and maps its
    /// pages. The server starts disabled: register ranges, then [`IoreqServer::enable`].
    ///
    /// `evtchn` is made non-blocking (its open file description, shared with its clones):
    /// several [`crate::EventLoop`]s wake for one event and all but one find the ports read,
    /// and a blocking read would keep those waiting for the guest's next event, deaf to
    /// their stoppers.
    pub fn create(
        privcmd: Arc<Privcmd<S>>,
        evtchn: EventChannel<S>,
        domid: DomId,
        mode: BufIoreqMode,
    ) -> Result<Self> {
        // Before the server exists in Xen: a failure here has nothing to undo.
        set_nonblocking(evtchn.as_raw_fd()).map_err(io("make the event channel non-blocking"))?;
        let backlog_wake = EventFd::new(EFD_NONBLOCK).map_err(io("eventfd"))?;
        let kernel_ioeventfd_safe = this_domain_may_use_kernel_ioeventfd();
        let created = privcmd
            .dm_op_struct(
                domid,
                XEN_DMOP_CREATE_IOREQ_SERVER,
                &XenDmOpCreateIoreqServer {
                    handle_bufioreq: mode.raw(),
                    pad: [0; 3],
                    id: 0,
                },
                &mut [],
            )
            .map_err(|source| Error::Privcmd {
                op: "create_ioreq_server",
                domid,
                source,
            })?;
        // From here the server exists in Xen: `server` destroys it if anything below fails.
        let mut server = IoreqServer {
            privcmd,
            evtchn,
            domid,
            id: created.id,
            mode,
            vcpus: 0,
            ioreq: None,
            bufring: None,
            bufioreq_remote: 0,
            ports: Vec::new(),
            local_ports: Vec::new(),
            port_vcpus: VcpuPorts::default(),
            buf_port: None,
            enabled: false,
            destroyed: false,
            eventfd_fallback_logged: AtomicBool::new(false),
            kernel_ioeventfd: kernel_ioeventfd_safe,
            kernel_ioeventfd_safe,
            kernel_ioeventfd_unsupported: AtomicBool::new(false),
            doorbells: OnceLock::new(),
            ranges: Mutex::default(),
            user_ioeventfds: RwLock::default(),
            any_user_ioeventfd: AtomicBool::new(false),
            user_irqfds: UserIrqfds::default(),
            kernel_registrations: Mutex::default(),
            buf_drains: AtomicUsize::new(0),
            buf_backlog: AtomicBool::new(false),
            buf_next: AtomicU64::new(NO_POSITION),
            backlog_wake,
            lean: Mutex::default(),
            lean_active: AtomicBool::new(false),
            wake_ports: Mutex::default(),
        };
        log::info!("domain {domid}: created IOREQ server {}", created.id);
        server.vcpus = server.nr_vcpus()?;
        let info = server.dm_op(
            "get_ioreq_server_info",
            XEN_DMOP_GET_IOREQ_SERVER_INFO,
            &XenDmOpGetIoreqServerInfo {
                id: server.id,
                flags: XEN_DMOP_NO_GFNS,
                ..Default::default()
            },
        )?;
        server.bufioreq_remote = info.bufioreq_port;
        let page = server.map_frame(server.id, xenmem_resource_ioreq_server_frame_ioreq(0))?;
        server.ioreq =
            Some(
                IoreqPage::new(page, server.vcpus).ok_or_else(|| Error::BadAnswer {
                    op: "nr_vcpus",
                    domid,
                    what: format!("{} vCPUs do not fit one ioreq page", server.vcpus),
                })?,
            );
        if mode != BufIoreqMode::Off {
            let page = server.map_frame(server.id, XENMEM_RESOURCE_IOREQ_SERVER_FRAME_BUFIOREQ)?;
            server.bufring = Some(BufferedRing::new(page));
        }
        Ok(server)
    }

    fn map_frame(&self, id: IoservId, frame: u64) -> Result<MappedPage<S>> {
        let mapping = self
            .privcmd
            .map_resource(self.domid, Resource::IoreqServer(id), frame, 1, true)
            .map_err(|source| Error::Privcmd {
                op: "map ioreq server page",
                domid: self.domid,
                source,
            })?;
        MappedPage::new(mapping).ok_or_else(|| Error::BadAnswer {
            op: "map ioreq server page",
            domid: self.domid,
            what: "mapping is not one page".into(),
        })
    }

    fn dm_op<T: Pod>(&self, op: &'static str, nr: u32, arg: &T) -> Result<T> {
        self.privcmd
            .dm_op_struct(self.domid, nr, arg, &mut [])
            .map_err(|source| Error::Privcmd {
                op,
                domid: self.domid,
                source,
            })
    }

    fn nr_vcpus(&self) -> Result<usize> {
        let n = self.dm_op("nr_vcpus", XEN_DMOP_NR_VCPUS, &XenDmOpNrVcpus::default())?;
        if n.vcpus == 0 {
            return Err(Error::BadAnswer {
                op: "nr_vcpus",
                domid: self.domid,
                what: "0 vCPUs".into(),
            });
        }
        Ok(n.vcpus as usize)
    }

    /// The guest.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The server id Xen gave.
    pub fn id(&self) -> IoservId {
        self.id
    }

    /// Number of vCPUs of the guest (one synchronous slot and event channel each).
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// The buffered mode the server was created with.
    pub fn buf_mode(&self) -> BufIoreqMode {
        self.mode
    }

    /// Whether the server is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The privcmd handle.
    pub fn privcmd(&self) -> &Arc<Privcmd<S>> {
        &self.privcmd
    }

    /// The event channel descriptor the ports are bound through (poll it for `EPOLLIN`).
    pub fn event_channel(&self) -> &EventChannel<S> {
        &self.evtchn
    }

    /// Local event-channel ports, one per vCPU (empty before [`IoreqServer::enable`]).
    pub fn vcpu_ports(&self) -> &[Port] {
        &self.local_ports
    }

    /// The local port of the buffered ring, once enabled.
    pub fn buffered_port(&self) -> Option<Port> {
        self.buf_port.as_ref().map(BoundPort::port)
    }

    /// The synchronous page.
    pub fn ioreq_page(&self) -> &IoreqPage<MappedPage<S>> {
        self.ioreq.as_ref().expect("pages stay mapped until drop")
    }

    /// The buffered ring, if the server has one: to look at. The server's `serve_*` methods
    /// are its consumer; popping entries past them breaks their record of where the ring's
    /// reader is (see [`BufferedRing::pop_after`]).
    pub fn buffered_ring(&self) -> Option<&BufferedRing<MappedPage<S>>> {
        self.bufring.as_ref()
    }

    /// Forwards the guest's accesses in `range` to this server.
    ///
    /// The QueueNotify registers of kernel ioeventfds are left out: they belong to the
    /// doorbell server (see [`IoreqServer::add_ioeventfd`]).
    pub fn map_range(&self, range: IoRange) -> Result<()> {
        let arg = range.to_dm_op(self.id)?;
        let IoRange::Mmio { start, end } = range else {
            return self.range_op(arg, true);
        };
        let mut book = self.book();
        let mut done = Vec::new();
        for (s, e) in cut(start, end, &book.holes) {
            if let Err(err) = self.mmio_op(self.id, s, e, true) {
                for (s, e) in done {
                    if let Err(undo) = self.mmio_op(self.id, s, e, false) {
                        log::error!("domain {}: {undo}", self.domid);
                    }
                }
                return Err(err);
            }
            done.push((s, e));
        }
        book.user.push((start, end));
        Ok(())
    }

    /// Stops forwarding `range` (exactly as registered).
    pub fn unmap_range(&self, range: IoRange) -> Result<()> {
        let arg = range.to_dm_op(self.id)?;
        let IoRange::Mmio { start, end } = range else {
            return self.range_op(arg, false);
        };
        let mut book = self.book();
        let mut res = Ok(());
        for (s, e) in cut(start, end, &book.holes) {
            if let Err(err) = self.mmio_op(self.id, s, e, false) {
                res = res.and(Err(err));
            }
        }
        if let Some(i) = book.user.iter().position(|&r| r == (start, end)) {
            book.user.remove(i);
        }
        res
    }

    fn book(&self) -> std::sync::MutexGuard<'_, RangeBook> {
        self.ranges.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn range_op(&self, arg: XenDmOpIoreqServerRange, map: bool) -> Result<()> {
        let (op, nr) = if map {
            (
                "map_io_range_to_ioreq_server",
                XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER,
            )
        } else {
            (
                "unmap_io_range_from_ioreq_server",
                XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER,
            )
        };
        self.dm_op(op, nr, &arg).map(drop)
    }

    /// Maps (or unmaps) the MMIO range `start..=end` to server `id`.
    fn mmio_op(&self, id: IoservId, start: u64, end: u64, map: bool) -> Result<()> {
        let arg = IoRange::Mmio { start, end }.to_dm_op(id)?;
        self.range_op(arg, map)
    }

    fn set_state(&self, enabled: bool) -> Result<()> {
        self.set_state_of(self.id, enabled)
    }

    fn set_state_of(&self, id: IoservId, enabled: bool) -> Result<()> {
        self.dm_op(
            "set_ioreq_server_state",
            XEN_DMOP_SET_IOREQ_SERVER_STATE,
            &XenDmOpSetIoreqServerState {
                id,
                enabled: u8::from(enabled),
                pad: 0,
            },
        )
        .map(drop)
    }

    /// Enables the server and (the first time) binds one event channel per vCPU and the
    /// buffered ring's.
    pub fn enable(&mut self) -> Result<()> {
        self.set_state(true)?;
        self.enabled = true;
        if let Some(db) = self.doorbells.get() {
            self.set_state_of(db.id, true)?;
        }
        if self.ports.is_empty() {
            if let Err(e) = self.bind_ports() {
                // Not half-way: a server Xen routes requests to but that cannot hear them
                // would leave the guest's vCPUs waiting. The ports bound so far were released
                // with the error; the server goes back to disabled.
                if let Err(undo) = self.set_state(false) {
                    log::error!("domain {}: {undo}", self.domid);
                }
                self.enabled = false;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Binds one local port to each vCPU's event channel of `page` (a server's ioreq page).
    /// On an error the ports bound so far are released with the returned vector's drop.
    fn bind_vcpu_ports<P: IoPage>(
        &self,
        page: &IoreqPage<P>,
        op: &'static str,
    ) -> Result<Vec<BoundPort<S>>> {
        let mut ports = Vec::with_capacity(self.vcpus);
        for vcpu in 0..self.vcpus {
            let remote = page.slot(vcpu).expect("vcpu < vcpus").vp_eport();
            let port = self
                .evtchn
                .bind_interdomain(self.domid, remote)
                .map_err(|source| Error::Evtchn {
                    op,
                    domid: self.domid,
                    source,
                })?;
            log::debug!(
                "domain {}: vCPU {vcpu} port {remote} bound to local {} ({op})",
                self.domid,
                port.port()
            );
            ports.push(port);
        }
        Ok(ports)
    }

    fn bind_ports(&mut self) -> Result<()> {
        let page = self.ioreq.as_ref().expect("pages stay mapped until drop");
        let ports = self.bind_vcpu_ports(page, "bind vCPU ioreq event channel")?;
        if self.bufring.is_some() {
            let port = self
                .evtchn
                .bind_interdomain(self.domid, self.bufioreq_remote)
                .map_err(|source| Error::Evtchn {
                    op: "bind buffered ioreq event channel",
                    domid: self.domid,
                    source,
                })?;
            self.buf_port = Some(port);
        }
        self.local_ports = ports.iter().map(BoundPort::port).collect();
        self.port_vcpus = VcpuPorts::new(&self.local_ports);
        self.ports = ports;
        Ok(())
    }

    /// Disables the server (Xen stops forwarding; the ports stay bound).
    pub fn disable(&mut self) -> Result<()> {
        self.set_state(false)?;
        self.enabled = false;
        if let Some(db) = self.doorbells.get() {
            self.set_state_of(db.id, false)?;
        }
        Ok(())
    }

    /// Sets `irq` to `level` (MSI: sends the message when `level` is true).
    pub fn set_irq(&self, irq: Interrupt, level: bool) -> Result<()> {
        if matches!(irq, Interrupt::Msi { .. }) && !level {
            return Ok(());
        }
        self.run_op("interrupt", irq.dm_op(level))
    }

    /// Sends an MSI.
    pub fn inject_msi(&self, addr: u64, data: u32) -> Result<()> {
        self.set_irq(Interrupt::Msi { addr, data }, true)
    }

    pub(crate) fn run_op(&self, op: &'static str, mut dm: XenDmOp) -> Result<()> {
        self.privcmd
            .dm_op(self.domid, &mut [dm.as_bytes_mut()])
            .map_err(|source| Error::Privcmd {
                op,
                domid: self.domid,
                source,
            })
    }

    fn log_fallback(&self, what: &str, reason: &str) {
        if !self.eventfd_fallback_logged.swap(true, Ordering::Relaxed) {
            log::info!(
                "domain {}: privcmd {what} unavailable ({reason}); notifications go through this process",
                self.domid
            );
        }
    }

    /// Makes each signal of `eventfd` assert `irq` (send it, for MSI): in the kernel through
    /// privcmd irqfd when available, else through the server's [`crate::EventLoop`]s, the
    /// running ones included.
    pub fn add_irqfd(&self, eventfd: Arc<EventFd>, irq: Interrupt) -> Result<NotifyPath> {
        let op = irq.dm_op(true);
        // SAFETY: `eventfd` keeps the descriptor open for the duration of the call.
        let fd = unsafe { BorrowedFd::borrow_raw(eventfd.as_raw_fd()) };
        match self.privcmd.irqfd(self.domid, fd, op.as_bytes(), false) {
            Ok(()) => {
                self.registrations().irqfds.push((eventfd, op));
                Ok(NotifyPath::Kernel)
            }
            Err(privcmd::Error::Unsupported { reason, .. }) => {
                self.log_fallback("irqfd", reason);
                // Every loop reads the eventfd when it wakes for it and only one gets the
                // count: on a blocking descriptor the others would wait in read() for good.
                set_nonblocking(eventfd.as_raw_fd()).map_err(io("make the irqfd non-blocking"))?;
                // Every loop of the server watches it before this returns.
                self.user_irqfds
                    .add(eventfd, op)
                    .map_err(io("watch the irqfd in the event loops"))?;
                // A loop blocked in read watches no irqfd: back to epoll, which does.
                self.demote_lean();
                Ok(NotifyPath::Userspace)
            }
            Err(source) => Err(Error::Privcmd {
                op: "irqfd",
                domid: self.domid,
                source,
            }),
        }
    }

    /// Undoes [`IoreqServer::add_irqfd`] of `eventfd` (the same `Arc`): privcmd deassigns a
    /// kernel irqfd; a userspace one leaves every event loop's watch list, the running loops'
    /// included, before this returns. The server keeps no handle on `eventfd` afterwards.
    /// Returns whether it was registered.
    pub fn remove_irqfd(&self, eventfd: &Arc<EventFd>) -> Result<bool> {
        let kernel = {
            let mut regs = self.registrations();
            let i = regs
                .irqfds
                .iter()
                .position(|(e, _)| Arc::ptr_eq(e, eventfd));
            i.map(|i| regs.irqfds.remove(i))
        };
        let Some((eventfd, op)) = kernel else {
            return Ok(self.user_irqfds.remove(eventfd));
        };
        // SAFETY: `eventfd` keeps the descriptor open for the duration of the call.
        let fd = unsafe { BorrowedFd::borrow_raw(eventfd.as_raw_fd()) };
        self.privcmd
            .irqfd(self.domid, fd, op.as_bytes(), true)
            .map_err(|source| Error::Privcmd {
                op: "deassign irqfd",
                domid: self.domid,
                source,
            })?;
        Ok(true)
    }

    /// Undoes [`IoreqServer::add_ioeventfd`] for queue `vq` of the device at `base`, whichever
    /// path serves it: privcmd deassigns a kernel doorbell, a userspace one is no longer rung
    /// (by any loop, once this returns). When no queue of the device is left, its QueueNotify
    /// register leaves the doorbell server first, so that no write of the guest's can reach a
    /// doorbell server slot that nobody would then serve, and goes back to this server where
    /// one of its ranges ([`IoreqServer::map_range`]) still holds it. The server keeps no
    /// handle on the queue's eventfd afterwards. Returns whether the queue was registered.
    pub fn remove_ioeventfd(&self, base: u64, vq: u32) -> Result<bool> {
        let mut book = self.book();
        let user = self
            .user_ioeventfds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(base, vq);
        let Some(db) = self.doorbells.get() else {
            return Ok(user);
        };
        let mut held = db.doorbells();
        let kernel = held.iter().position(|d| d.base == base && d.vq == vq);
        let others = held.iter().any(|d| d.base == base && d.vq != vq)
            || self
                .user_ioeventfds
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .serves(base);
        let mut res = Ok(());
        if let Some(register) = register_range(base).filter(|r| !others && book.holes.contains(r)) {
            res = self.release_register(&mut book, db, register);
        }
        if let Some(i) = kernel {
            let d = held.remove(i);
            if db.kernel_owned() {
                if let Err(source) = db.deassign(&self.privcmd, self.domid, &d) {
                    res = res.and(Err(Error::Privcmd {
                        op: "deassign ioeventfd",
                        domid: self.domid,
                        source,
                    }));
                }
            }
        }
        res.map(|()| user || kernel.is_some())
    }

    /// Moves the QueueNotify register `register` (inclusive) back from the doorbell server to
    /// this server's ranges that hold it (undoing [`IoreqServer::move_register`]).
    fn release_register(
        &self,
        book: &mut RangeBook,
        db: &DoorbellServer<S>,
        register: (u64, u64),
    ) -> Result<()> {
        // Into this server first, as in `move_register`: while both hold it, a doorbell write
        // sent to the doorbell server is still the kernel's (deassigned only after this).
        let mut res = Ok(());
        for &(s, e) in &book.user {
            let (from, to) = (s.max(register.0), e.min(register.1));
            if from <= to {
                res = res.and(self.mmio_op(self.id, from, to, true));
            }
        }
        res = res.and(self.mmio_op(db.id, register.0, register.1, false));
        book.holes.retain(|&h| h != register);
        res
    }

    /// Allows or forbids privcmd's kernel ioeventfd for [`IoreqServer::add_ioeventfd`]. It is
    /// allowed from the start except in an x86 PV domain (see [`kernel_ioeventfd_is_safe`]),
    /// where allowing it has no effect: privcmd would oops there.
    pub fn set_kernel_ioeventfd(&mut self, allowed: bool) {
        self.kernel_ioeventfd = allowed && self.kernel_ioeventfd_safe;
    }

    /// Makes `size`-byte writes of `vq` to the virtio-mmio QueueNotify register of the device
    /// at `base` signal `eventfd` without reaching the bus: in the kernel through privcmd
    /// ioeventfd when available and safe (see [`IoreqServer::set_kernel_ioeventfd`]), else in
    /// this process, whichever of the server's event loops (or other callers of its `serve_*`
    /// methods) serves the write. Needs the server enabled (ports bound).
    ///
    /// The kernel's doorbells are served by a second IOREQ server of the domain, the
    /// *doorbell server*, created with the first of them and holding only their QueueNotify
    /// registers (this server's MMIO ranges lose those registers, now and in later
    /// [`IoreqServer::map_range`] calls): privcmd's handler then never sees another
    /// register's write, which it would race with this process (the `doorbell` module says
    /// how). A write to the register that the kernel does not serve (another size, a queue
    /// without an ioeventfd) makes the server take the kernel's registrations
    /// back and serve that register in this process from then on (logged once). Register the
    /// doorbells before the guest uses the device (as virtio devices do, at `DRIVER_OK`).
    /// The kernel path is used for 4-byte doorbells, the register's size; other sizes are
    /// served in this process.
    pub fn add_ioeventfd(
        &self,
        base: u64,
        size: u8,
        vq: u32,
        eventfd: Arc<EventFd>,
    ) -> Result<NotifyPath> {
        if self.local_ports.is_empty() {
            return Err(Error::InvalidArgument {
                op: "ioeventfd",
                what: "the server is not enabled yet (no ports bound)".into(),
            });
        }
        let Some(register) = register_range(base) else {
            return Err(Error::InvalidArgument {
                op: "ioeventfd",
                what: format!("a virtio-mmio device at {base:#x}"),
            });
        };
        if !self.kernel_ioeventfd {
            self.log_fallback("ioeventfd", "unsafe in an x86 PV domain");
            self.add_user_ioeventfd(base, size, vq, eventfd);
            return Ok(NotifyPath::Userspace);
        }
        if size != 4 || self.kernel_ioeventfd_unsupported.load(Ordering::Relaxed) {
            self.add_user_ioeventfd(base, size, vq, eventfd);
            return Ok(NotifyPath::Userspace);
        }
        let doorbell = Doorbell {
            base,
            size,
            vq,
            eventfd,
        };
        let mut book = self.book();
        let db = match self.doorbells.get() {
            Some(db) => db,
            None => {
                // Asked first, without side effects: on a kernel without privcmd ioeventfd,
                // a doorbell server would be created only to be destroyed again (and its
                // vCPU ports' first events would arrive for ports already gone).
                let supported = self
                    .privcmd
                    .ioeventfd_supported(self.domid)
                    .map_err(|source| Error::Privcmd {
                        op: "ioeventfd (probe)",
                        domid: self.domid,
                        source,
                    })?;
                if !supported {
                    let reason = "privcmd has no IOCTL_PRIVCMD_IOEVENTFD";
                    return Ok(self.user_doorbells_from_now_on(reason, doorbell));
                }
                let db = self.create_doorbell_server()?;
                let assigned = db.assign(
                    &self.privcmd,
                    self.domid,
                    &mut db.doorbells(),
                    doorbell.clone(),
                );
                match assigned {
                    Ok(()) => {}
                    Err(privcmd::Error::Unsupported { reason, .. }) => {
                        if let Err(e) = self.destroy_doorbell_server(db) {
                            log::error!("{e}");
                        }
                        return Ok(self.user_doorbells_from_now_on(reason, doorbell));
                    }
                    Err(source) => {
                        if let Err(e) = self.destroy_doorbell_server(db) {
                            log::error!("{e}");
                        }
                        return Err(Error::Privcmd {
                            op: "ioeventfd",
                            domid: self.domid,
                            source,
                        });
                    }
                }
                // Only this thread sets it: the book's lock is held.
                let _ = self.doorbells.set(db);
                let db = self.doorbells.get().expect("set above");
                self.move_register(&mut book, db, register, &doorbell)?;
                return Ok(NotifyPath::Kernel);
            }
        };
        {
            let mut held = db.doorbells();
            if !db.kernel_owned() {
                // Given back after a request the kernel did not serve: userspace's for good.
                drop(held);
                let d = doorbell;
                self.add_user_ioeventfd(d.base, d.size, d.vq, d.eventfd);
                return Ok(NotifyPath::Userspace);
            }
            db.assign(&self.privcmd, self.domid, &mut held, doorbell.clone())
                .map_err(|source| Error::Privcmd {
                    op: "ioeventfd",
                    domid: self.domid,
                    source,
                })?;
        }
        self.move_register(&mut book, db, register, &doorbell)?;
        Ok(NotifyPath::Kernel)
    }

    /// privcmd has no ioeventfd (`reason`): `doorbell` and every later one go through this
    /// process.
    fn user_doorbells_from_now_on(&self, reason: &str, doorbell: Doorbell) -> NotifyPath {
        self.kernel_ioeventfd_unsupported
            .store(true, Ordering::Relaxed);
        self.log_fallback("ioeventfd", reason);
        let d = doorbell;
        self.add_user_ioeventfd(d.base, d.size, d.vq, d.eventfd);
        NotifyPath::Userspace
    }

    /// Moves the QueueNotify register `register` (inclusive) from this server's ranges to the
    /// doorbell server's, unless it is there already; undoes the registration of `doorbell`
    /// if it cannot.
    fn move_register(
        &self,
        book: &mut RangeBook,
        db: &DoorbellServer<S>,
        register: (u64, u64),
        doorbell: &Doorbell,
    ) -> Result<()> {
        if book.holes.contains(&register) {
            return Ok(());
        }
        // Into the doorbell server first: while both hold it, Xen sends the write to either,
        // and this server's device still sees a doorbell write it gets (no gap in between).
        let mut res = self.mmio_op(db.id, register.0, register.1, true);
        let mut cut_from = Vec::new();
        if res.is_ok() {
            for &(s, e) in &book.user {
                let (from, to) = (s.max(register.0), e.min(register.1));
                if from > to {
                    continue;
                }
                if let Err(err) = self.mmio_op(self.id, from, to, false) {
                    res = Err(err);
                    break;
                }
                cut_from.push((from, to));
            }
        }
        if let Err(err) = res {
            for (from, to) in cut_from {
                if let Err(undo) = self.mmio_op(self.id, from, to, true) {
                    log::error!("domain {}: {undo}", self.domid);
                }
            }
            let _ = self.mmio_op(db.id, register.0, register.1, false);
            let mut held = db.doorbells();
            if let Some(i) = held
                .iter()
                .position(|d| Arc::ptr_eq(&d.eventfd, &doorbell.eventfd))
            {
                let d = held.remove(i);
                if let Err(e) = db.deassign(&self.privcmd, self.domid, &d) {
                    log::error!("domain {}: deassign ioeventfd: {e}", self.domid);
                }
            }
            return Err(err);
        }
        book.holes.push(register);
        Ok(())
    }

    /// Creates, maps, enables and binds the doorbell server; destroys it again on failure.
    fn create_doorbell_server(&self) -> Result<DoorbellServer<S>> {
        let created = self.dm_op(
            "create_ioreq_server (doorbells)",
            XEN_DMOP_CREATE_IOREQ_SERVER,
            &XenDmOpCreateIoreqServer {
                handle_bufioreq: HVM_IOREQSRV_BUFIOREQ_OFF,
                pad: [0; 3],
                id: 0,
            },
        )?;
        let id = created.id;
        let built = (|| {
            let page = self.map_frame(id, xenmem_resource_ioreq_server_frame_ioreq(0))?;
            let page = IoreqPage::new(page, self.vcpus).ok_or_else(|| Error::BadAnswer {
                op: "nr_vcpus",
                domid: self.domid,
                what: format!("{} vCPUs do not fit one ioreq page", self.vcpus),
            })?;
            self.set_state_of(id, true)?;
            let ports = self.bind_vcpu_ports(&page, "bind doorbell server event channel")?;
            Ok(DoorbellServer::new(id, page, ports))
        })();
        if built.is_err() {
            self.destroy_server(id, "destroy_ioreq_server (doorbells)");
        } else {
            log::info!("domain {}: created doorbell IOREQ server {id}", self.domid);
        }
        built
    }

    /// Takes the doorbell server's registrations back from privcmd (while its page and ports
    /// are still mapped and bound), then unbinds, unmaps and destroys it.
    fn destroy_doorbell_server(&self, db: DoorbellServer<S>) -> Result<()> {
        let mut first = Ok(());
        if let Some((_, failed)) = db.give_back(&self.privcmd, self.domid, |_| {}) {
            for (d, source) in failed {
                let e = Error::Privcmd {
                    op: "deassign ioeventfd",
                    domid: self.domid,
                    source,
                };
                log::error!("{e} (queue {} of the device at {:#x})", d.vq, d.base);
                first = first.and(Err(e));
            }
        }
        let id = db.id;
        drop(db);
        let destroyed = self.dm_op(
            "destroy_ioreq_server (doorbells)",
            XEN_DMOP_DESTROY_IOREQ_SERVER,
            &XenDmOpDestroyIoreqServer { id, pad: 0 },
        );
        first.and(destroyed.map(drop))
    }

    fn destroy_server(&self, id: IoservId, op: &'static str) {
        if let Err(e) = self.dm_op(
            op,
            XEN_DMOP_DESTROY_IOREQ_SERVER,
            &XenDmOpDestroyIoreqServer { id, pad: 0 },
        ) {
            log::error!("{e}");
        }
    }

    /// The doorbell server's id, once a kernel ioeventfd created it.
    pub fn doorbell_server_id(&self) -> Option<IoservId> {
        self.doorbells.get().map(|db| db.id)
    }

    /// Whether privcmd serves the doorbell server's doorbells (`false` before the first kernel
    /// ioeventfd and after a request the kernel did not serve made the server take them
    /// back).
    pub fn doorbells_in_kernel(&self) -> bool {
        self.doorbells
            .get()
            .is_some_and(DoorbellServer::kernel_owned)
    }

    fn add_user_ioeventfd(&self, base: u64, size: u8, vq: u32, eventfd: Arc<EventFd>) {
        self.user_ioeventfds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(base, size, vq, eventfd);
        self.any_user_ioeventfd.store(true, Ordering::Release);
    }

    /// [`IoreqServer::ring_user_ioeventfd`] of a raw slot (out of line, and given a copy: the
    /// common request's path keeps its request in registers).
    #[inline(never)]
    fn ring_user_ioeventfd_raw<B: DeviceBus>(
        &self,
        raw: Ioreq,
        dispatcher: &mut Dispatcher<B>,
    ) -> bool {
        Request::decode(&raw).is_ok_and(|r| self.ring_user_ioeventfd(&r, dispatcher))
    }

    /// If `req` is a notification of one of the userspace ioeventfds, signals it and counts it
    /// in `dispatcher`; whether it was one.
    fn ring_user_ioeventfd<B: DeviceBus>(
        &self,
        req: &Request,
        dispatcher: &mut Dispatcher<B>,
    ) -> bool {
        if !self.any_user_ioeventfd.load(Ordering::Acquire) {
            return false;
        }
        let rung = self
            .user_ioeventfds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ring(req);
        if rung {
            dispatcher.count_ioeventfd_hit();
        }
        rung
    }

    /// Serves the slot of `vcpu` if it holds a request: takes it, dispatches it, completes it
    /// and notifies Xen. Returns whether there was one.
    pub fn serve_vcpu<B: DeviceBus>(&self, vcpu: usize, dispatcher: &mut Dispatcher<B>) -> bool {
        self.serve_vcpu_counted(vcpu, dispatcher) > 0
    }

    /// [`IoreqServer::serve_vcpu`], returning the requests served: the slot's and the posted
    /// writes that went before it.
    #[inline]
    fn serve_vcpu_counted<B: DeviceBus>(
        &self,
        vcpu: usize,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        let Some(slot) = self.ioreq_page().slot(vcpu) else {
            return 0;
        };
        self.serve_slot(slot, vcpu, self.local_ports.get(vcpu).copied(), dispatcher)
    }

    /// Serves the doorbell server's slot of `vcpu` if it holds a request this process may
    /// take (see the `doorbell` module); returns the requests served (after taking the
    /// registrations back from the kernel, in any slot).
    fn serve_doorbell<B: DeviceBus>(
        &self,
        db: &DoorbellServer<S>,
        vcpu: usize,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        if db.kernel_owned() {
            let guard = db.user_take();
            match db.owner(vcpu) {
                Owner::Empty | Owner::Kernel => return 0,
                Owner::Untouched => {
                    let Some(slot) = db.page.slot(vcpu) else {
                        return 0;
                    };
                    let served = self.serve_slot(slot, vcpu, db.port(vcpu), dispatcher);
                    drop(guard);
                    return served;
                }
                Owner::Unserved => {
                    drop(guard);
                    self.give_back_doorbells(db);
                    // A doorbell write another loop left to the kernel may have missed the
                    // handler, now gone: look at every slot.
                    let mut served = 0;
                    for v in 0..self.vcpus {
                        if let Some(slot) = db.page.slot(v) {
                            served += self.serve_slot(slot, v, db.port(v), dispatcher);
                        }
                    }
                    return served;
                }
            }
        }
        let Some(slot) = db.page.slot(vcpu) else {
            return 0;
        };
        self.serve_slot(slot, vcpu, db.port(vcpu), dispatcher)
    }

    /// Takes the doorbell server's registrations back from privcmd and serves its doorbells
    /// in this process from then on.
    fn give_back_doorbells(&self, db: &DoorbellServer<S>) {
        let given = db.give_back(&self.privcmd, self.domid, |doorbells| {
            for d in doorbells {
                self.add_user_ioeventfd(d.base, d.size, d.vq, d.eventfd.clone());
            }
        });
        let Some((doorbells, failed)) = given else {
            return;
        };
        for (d, e) in failed {
            log::error!(
                "domain {}: deassign ioeventfd (queue {} of the device at {:#x}): {e}",
                self.domid,
                d.vq,
                d.base
            );
        }
        log::warn!(
            "domain {}: a request privcmd's ioeventfd does not serve reached doorbell server {}; \
             its {} doorbells go through this process from now on",
            self.domid,
            db.id,
            doorbells.len()
        );
    }

    /// Takes the request in `slot` (of `vcpu`, whose local port is `port`), dispatches it,
    /// completes it and notifies the port. Returns whether there was one.
    #[inline]
    fn serve_slot<B: DeviceBus>(
        &self,
        slot: Slot<'_>,
        vcpu: usize,
        port: Option<Port>,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        // Inline up to the take: a look that finds the slot empty (every turn has some) costs
        // a load and a compare, not a call.
        let Some(taken) = slot.take() else {
            return 0;
        };
        let (slot, raw) = taken.into_parts();
        // From here the request is answered whatever happens, a panicking device included.
        let answer = Answer {
            server: self,
            vcpu,
            port,
            slot,
            flags: raw.flags,
            sent: false,
        };
        self.serve_taken(answer, &raw, dispatcher)
    }

    /// The slot of the vCPU whose local port is `port` (`page` is the server's synchronous
    /// page), or `None` if `port` is not a vCPU's: one subtraction, two comparisons and a load.
    #[inline(always)]
    pub(crate) fn port_slot<'p>(
        &self,
        port: Port,
        page: &'p IoreqPage<MappedPage<S>>,
    ) -> Option<Slot<'p>> {
        // A port that is not a vCPU's maps to a number above every vCPU's, which the page's
        // bound check turns away.
        page.slot(self.port_vcpus.vcpu(port))
    }

    /// What the `port` of `slot`'s vCPU signals ([`IoreqServer::port_slot`]), on the
    /// single-loop path of [`crate::EventLoop`]: the slot's request taken and, when it is the
    /// common one ([`Dispatcher::read_single`]), carried to the bus inline, each of its fields
    /// read once and kept in registers; any other request as [`IoreqServer::serve_slot`]
    /// serves it. The requests served.
    #[inline(always)]
    pub(crate) fn serve_port_inline<B: DeviceBus>(
        &self,
        evtchn: EventChannelOps<'_, S>,
        port: Port,
        slot: Slot<'_>,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        if slot.take_flags().is_none() {
            return 0;
        }
        // The request is this thread's to answer: nothing panics before the guard in
        // `serve_single`, and every other way goes to `serve_taken_slot`, which answers it.
        let Some(size) = slot.taken_single_size() else {
            return self.serve_taken_slot(slot, port, dispatcher);
        };
        if let Some(ring) = &self.bufring {
            // Posted writes the vCPU made before this request go first (`serve_taken`).
            if ring.pending_slots() != Ok(0) {
                return self.serve_taken_slot(slot, port, dispatcher);
            }
        }
        let addr = slot.taken_addr();
        // The type, the direction and `data_is_ptr` in one test, and one copy of the rest for
        // each space and direction, so that the bus's lookup, its failure's report and the
        // answer know theirs without a register for it. An MMIO read is tested first, alone:
        // tested with the others, the four make one jump through a table. (The others read the
        // two bytes again, to test them apart from it.)
        if slot.taken_kind() & KIND_MASK == MMIO_READ {
            return self.serve_single(
                evtchn,
                IoSpace::Mmio,
                true,
                slot,
                port,
                addr,
                size,
                dispatcher,
            );
        }
        match slot.taken_kind() & KIND_MASK {
            MMIO_WRITE => self.serve_single(
                evtchn,
                IoSpace::Mmio,
                false,
                slot,
                port,
                addr,
                size,
                dispatcher,
            ),
            PIO_READ if addr <= 0xffff => self.serve_single(
                evtchn,
                IoSpace::Pio,
                true,
                slot,
                port,
                addr,
                size,
                dispatcher,
            ),
            PIO_WRITE if addr <= 0xffff => self.serve_single(
                evtchn,
                IoSpace::Pio,
                false,
                slot,
                port,
                addr,
                size,
                dispatcher,
            ),
            _ => self.serve_taken_slot(slot, port, dispatcher),
        }
    }

    /// [`IoreqServer::serve_port_inline`] of the common request, taken from `slot` (of the
    /// vCPU of `port`): one element of `size` bytes (1, 2, 4 or 8) at `addr` of `space`, read
    /// or written (`read`), its data in the slot.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn serve_single<B: DeviceBus>(
        &self,
        evtchn: EventChannelOps<'_, S>,
        space: IoSpace,
        read: bool,
        slot: Slot<'_>,
        port: Port,
        addr: u64,
        size: u8,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        // An MMIO write may be a userspace ioeventfd's doorbell (a read never is): those take
        // the long way.
        if !read
            && space == IoSpace::Mmio
            && (self.any_user_ioeventfd.load(Ordering::Acquire) || dispatcher.has_ioeventfds())
        {
            return self.serve_taken_slot(slot, port, dispatcher);
        }
        let mut answer = PortAnswer {
            server: self,
            evtchn,
            port,
            slot,
            sent: false,
        };
        if read {
            let data = match dispatcher.read_single(space, addr, size) {
                Ok(data) => data,
                Err(e) => self.single_failed(port, slot, dispatcher, e),
            };
            answer.send(Some(data));
        } else {
            if let Err(e) = dispatcher.write_single(space, addr, size, slot.taken_data()) {
                self.single_failed(port, slot, dispatcher, e);
            }
            answer.send(None);
        }
        1
    }

    /// [`IoreqServer::serve_port_inline`] of a request taken from `slot` (of the vCPU of
    /// `port`) that is not the common one: served as [`IoreqServer::serve_slot`] serves it.
    #[inline(never)]
    fn serve_taken_slot<B: DeviceBus>(
        &self,
        slot: Slot<'_>,
        port: Port,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        let raw = slot.taken_copy();
        let answer = Answer {
            server: self,
            vcpu: self.port_vcpus.vcpu(port),
            port: Some(port),
            slot,
            flags: raw.flags,
            sent: false,
        };
        self.serve_taken(answer, &raw, dispatcher)
    }

    /// The common request taken from `slot` (of the vCPU of `port`) failed on the bus: what
    /// [`Dispatcher::handle_raw`] does then (counted, logged, all ones for a read).
    #[cold]
    #[inline(never)]
    fn single_failed<B: DeviceBus>(
        &self,
        port: Port,
        slot: Slot<'_>,
        dispatcher: &mut Dispatcher<B>,
        e: BusError,
    ) -> u64 {
        let vcpu = self.port_vcpus.vcpu(port);
        dispatcher
            .single_failed(vcpu, slot.taken_copy(), e)
            .unwrap_or(u64::MAX)
    }

    /// [`IoreqServer::serve_slot`] once `raw` is taken: serves it and sends `answer`.
    #[inline(never)]
    fn serve_taken<B: DeviceBus>(
        &self,
        mut answer: Answer<'_, '_, S>,
        raw: &Ioreq,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        let vcpu = answer.vcpu;
        let mut posted = 0;
        if let Some(ring) = &self.bufring {
            // Posted writes the vCPU made before this request are in the ring by now (Xen
            // fills the ring before it publishes a request): they take effect first, as the
            // guest ordered them (a VGA write, then a port read that depends on it). Only
            // those present now: later ones cannot precede it. With several loops, one that
            // is draining already keeps them; this call then does not wait for it.
            let pending = ring.pending_slots().unwrap_or(0) as usize;
            if pending > 0 {
                posted =
                    self.serve_buffered_at_most(dispatcher, pending.min(Self::BUFFERED_PER_CALL));
            }
        }
        let doorbell = self.any_user_ioeventfd.load(Ordering::Acquire)
            && self.ring_user_ioeventfd_raw(*raw, dispatcher);
        let data = if doorbell {
            None
        } else {
            dispatcher.handle_raw(vcpu, raw)
        };
        answer.send(data);
        1 + posted
    }

    /// Tells `vcpu`'s `port` that its slot holds an answer.
    #[inline]
    fn notify_vcpu(&self, vcpu: usize, port: Option<Port>) {
        if let Some(port) = port {
            if let Err(e) = self.evtchn.notify(port) {
                self.notify_failed(vcpu, e);
            }
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn unmask_failed(&self, e: xen_bindings::evtchn::Error) {
        log::error!("domain {}: {e}", self.domid);
    }

    #[cold]
    #[inline(never)]
    fn notify_failed(&self, vcpu: usize, e: xen_bindings::evtchn::Error) {
        log::error!("domain {}: notifying vCPU {vcpu}: {e}", self.domid);
    }

    /// Serves the buffered ring, at most [`IoreqServer::BUFFERED_PER_CALL`] entries (one
    /// ring's worth); returns the number of entries handled. Corrupt pointers are logged and
    /// the ring is resynchronised (posted writes are dropped).
    ///
    /// The bound keeps a guest that refills the ring as fast as it is drained from holding
    /// the caller for ever: its vCPUs' slots and the loop's stop signal wait at most one
    /// ring's worth. Entries left behind have had their event already (it woke this call),
    /// so the call that stops at the bound records a backlog: whoever takes it with
    /// [`IoreqServer::take_buffered_backlog`] must come back to the ring without waiting for
    /// an event ([`crate::EventLoop`] does: its next turn does not block).
    ///
    /// One caller at a time drains: posted writes must reach the devices one after the other,
    /// in the order the guest made them, and several event loops may call this at once. A
    /// caller that finds another one draining leaves its entries to that one and returns 0:
    /// the drainer looks at the ring again before it stops (or, at the bound, records the
    /// backlog), so nothing published before the call is left behind unaccounted for.
    pub fn serve_buffered<B: DeviceBus>(&self, dispatcher: &mut Dispatcher<B>) -> usize {
        self.serve_buffered_at_most(dispatcher, Self::BUFFERED_PER_CALL)
    }

    /// [`IoreqServer::serve_buffered`], serving at most `limit` entries.
    pub(crate) fn serve_buffered_at_most<B: DeviceBus>(
        &self,
        dispatcher: &mut Dispatcher<B>,
        limit: usize,
    ) -> usize {
        let Some(ring) = &self.bufring else {
            return 0;
        };
        // Every call counts itself in; the one that finds the count at 0 drains, and goes on
        // draining until no call came in during its last pass. A call that counts itself in
        // after that pass's last look finds the count back at 0 and drains itself.
        if self.buf_drains.fetch_add(1, Ordering::AcqRel) != 0 {
            return 0;
        }
        let mut n = 0;
        loop {
            let calls = self.buf_drains.load(Ordering::Acquire);
            let (served, left) = self.drain_buffered(ring, dispatcher, limit - n);
            n += served;
            if left {
                // The backlog first, then the count: a call that counted itself in before
                // the count is cleared left its entries to this one, and they are in the
                // backlog; one after it drains itself.
                self.buf_backlog.store(true, Ordering::Release);
                self.buf_drains.store(0, Ordering::Release);
                return n;
            }
            if self
                .buf_drains
                .compare_exchange(calls, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return n;
            }
        }
    }

    /// The most buffered-ring entries one call of [`IoreqServer::serve_buffered`] serves:
    /// one ring's worth.
    pub const BUFFERED_PER_CALL: usize = xen_bindings::abi::xen::ioreq::IOREQ_BUFFER_SLOT_NUM;

    /// Whether a call of [`IoreqServer::serve_buffered`] (directly or through
    /// [`IoreqServer::serve_all`], [`IoreqServer::serve_port`] or
    /// [`IoreqServer::serve_pending`]) stopped at its bound with entries left in the ring since
    /// the last call of this method, which clears it. Those entries' event was consumed: the
    /// caller that takes `true` serves the ring again without waiting for one (of several
    /// loops, exactly one takes it).
    pub fn take_buffered_backlog(&self) -> bool {
        // A load first: the swap is a locked instruction, and there is seldom a backlog. A
        // backlog recorded after the load is taken by the next call, as after a swap.
        self.buf_backlog.load(Ordering::Acquire) && self.buf_backlog.swap(false, Ordering::AcqRel)
    }

    /// Gives back a backlog taken with [`IoreqServer::take_buffered_backlog`] by an
    /// [`crate::EventLoop`] that will not serve it (it stops, or goes): the backlog is the
    /// server's again, and every loop is woken through [`IoreqServer::backlog_wake`], so that
    /// one of them takes it. Its entries' event was consumed: no other event would come for
    /// them, and a guest that posts nothing more would find them unapplied.
    pub(crate) fn give_back_buffered_backlog(&self) {
        // The backlog first: a loop woken by the write finds it.
        self.buf_backlog.store(true, Ordering::Release);
        if let Err(e) = self.backlog_wake.write(1) {
            log::error!(
                "domain {}: wake the event loops for the buffered backlog: {e}",
                self.domid
            );
        }
    }

    fn lean_state(&self) -> std::sync::MutexGuard<'_, LeanState> {
        self.lean.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts in a new [`crate::EventLoop`]: a loop that blocked in `read` goes back to the
    /// general path (the descriptor is non-blocking again when this returns).
    pub(crate) fn register_loop(&self) {
        let mut st = self.lean_state();
        st.loops += 1;
        self.demote_locked(&mut st);
    }

    /// Counts out an [`crate::EventLoop`] that goes, whose wake-up port is `kick` (if it has
    /// one); if it blocked in `read`, the descriptor is non-blocking again.
    pub(crate) fn unregister_loop(&self, kick: Option<Port>) {
        let mut st = self.lean_state();
        st.loops = st.loops.saturating_sub(1);
        if kick.is_some() && st.owner == kick {
            st.owner = None;
            self.lean_active.store(false, Ordering::Release);
            self.restore_nonblocking();
        }
    }

    /// Sends the loop that blocks in `read`, if any, back to the general path: makes the
    /// descriptor non-blocking, then wakes the loop through its own port (a `read` that is
    /// waiting returns with it, or, if another reader took it, finds the descriptor
    /// non-blocking and returns with nothing).
    pub(crate) fn demote_lean(&self) {
        let mut st = self.lean_state();
        self.demote_locked(&mut st);
    }

    fn demote_locked(&self, st: &mut LeanState) {
        let Some(kick) = st.owner.take() else {
            return;
        };
        self.lean_active.store(false, Ordering::Release);
        self.restore_nonblocking();
        if let Err(e) = self.evtchn.notify(kick) {
            log::error!(
                "domain {}: wake the event loop blocked in read: {e}",
                self.domid
            );
        }
    }

    fn restore_nonblocking(&self) {
        if let Err(e) = set_nonblocking(self.evtchn.as_raw_fd()) {
            log::error!(
                "domain {}: make the event channel non-blocking again: {e}",
                self.domid
            );
        }
    }

    /// Makes the event channel's descriptor blocking for the [`crate::EventLoop`] whose
    /// wake-up port is `kick`, if it may block in `read`: it is the server's only loop, no
    /// irqfd is served in userspace (the loops watch those with epoll) and no buffered backlog
    /// waits to be taken. Whether it may.
    pub(crate) fn try_enter_lean(&self, kick: Port) -> bool {
        let mut st = self.lean_state();
        if !self.lean_allowed(&st) {
            return false;
        }
        if let Err(e) = set_blocking_flag(self.evtchn.as_raw_fd(), true) {
            log::warn!(
                "domain {}: make the event channel blocking: {e}; the loop polls",
                self.domid
            );
            return false;
        }
        st.owner = Some(kick);
        self.lean_active.store(true, Ordering::Release);
        true
    }

    /// Whether [`IoreqServer::try_enter_lean`] would let a loop in now (a look, to spare a loop
    /// that may not the setting up of its wake-up port).
    pub(crate) fn lean_possible(&self) -> bool {
        self.lean_allowed(&self.lean_state())
    }

    fn lean_allowed(&self, st: &LeanState) -> bool {
        st.loops == 1
            && st.owner.is_none()
            && self.user_irqfds.is_empty()
            && !self.buf_backlog.load(Ordering::Acquire)
    }

    /// The loop whose wake-up port is `kick` leaves the blocking path by itself (it is to wait
    /// with a timeout, or has a buffered backlog): the descriptor is non-blocking again.
    pub(crate) fn leave_lean(&self, kick: Port) {
        let mut st = self.lean_state();
        if st.owner == Some(kick) {
            st.owner = None;
            self.lean_active.store(false, Ordering::Release);
            self.restore_nonblocking();
        }
    }

    /// Whether the loop that entered the blocking path is still on it (not sent back by a new
    /// loop or a userspace irqfd).
    #[inline]
    pub(crate) fn lean_active(&self) -> bool {
        self.lean_active.load(Ordering::Acquire)
    }

    fn wake_port_list(&self) -> std::sync::MutexGuard<'_, Vec<Port>> {
        self.wake_ports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the two local ports of a loop's own loopback channel.
    pub(crate) fn add_wake_ports(&self, ports: [Port; 2]) {
        self.wake_port_list().extend(ports);
    }

    /// Forgets them (the loop goes).
    pub(crate) fn remove_wake_ports(&self, ports: [Port; 2]) {
        self.wake_port_list().retain(|p| !ports.contains(p));
    }

    /// The event channel of the loops (crate-internal: its blocking reads).
    #[inline]
    pub(crate) fn evtchn(&self) -> &EventChannel<S> {
        &self.evtchn
    }

    /// event loop watches it, and reads it when it wakes for it).
    pub(crate) fn backlog_wake(&self) -> &EventFd {
        &self.backlog_wake
    }

    /// Pops and serves at most `budget` entries; returns how many, and whether it stopped at
    /// the budget with entries still in the ring.
    fn drain_buffered<B: DeviceBus>(
        &self,
        ring: &BufferedRing<MappedPage<S>>,
        dispatcher: &mut Dispatcher<B>,
        budget: usize,
    ) -> (usize, bool) {
        // The drainer is the ring's one consumer (`serve_buffered_at_most`), so where the last
        // drain stopped is where the read pointer must be, give or take Xen's whole-ring rebases.
        let mut next = self.buf_next.load(Ordering::Relaxed);
        let mut n = 0;
        let left = loop {
            if n == budget {
                // Pointers that do not make sense are left to the next call, which resyncs.
                break ring.pending_slots() != Ok(0);
            }
            let popped = ring.pop_after(u32::try_from(next).ok());
            if let Ok((_, skipped @ 1..)) = popped {
                // Nothing failed (each entry is served once): information, not a warning.
                log::info!(
                    "domain {}: the buffered ring's read pointer was put back over {skipped} \
                     entries already served; they are not served again",
                    self.domid
                );
            }
            match popped.map(|(entry, _)| entry) {
                Ok(None) => break false,
                Ok(Some((entry, after))) => {
                    next = u64::from(after);
                    n += 1;
                    match entry.decode() {
                        Ok(req) if self.ring_user_ioeventfd(&req, dispatcher) => {}
                        Ok(req) => {
                            if let (_, Err(e)) = dispatcher.handle(&req) {
                                if dispatcher.may_log_failure() {
                                    log::error!("domain {}: buffered {req:?}: {e}", self.domid);
                                }
                            }
                        }
                        Err(e) => log::error!("domain {}: buffered ioreq: {e}", self.domid),
                    }
                }
                Err(e) => {
                    log::error!("domain {}: {e}; dropping buffered requests", self.domid);
                    ring.resync();
                    next = NO_POSITION;
                    break false;
                }
            }
        };
        self.buf_next.store(next, Ordering::Relaxed);
        (n, left)
    }

    /// Serves every vCPU slot and the buffered ring (e.g. at start, for requests that arrived
    /// before the ports were bound). Returns the number of requests served.
    #[inline]
    pub fn serve_all<B: DeviceBus>(&self, dispatcher: &mut Dispatcher<B>) -> usize {
        let mut n = match &self.bufring {
            // A look at the ring's pointers first: the drain's entry and exit are locked
            // instructions, and on most wake-ups (every request's) the ring is empty. What Xen
            // publishes after the look comes with an event on the buffered port; pointers that
            // make no sense go to the drain, which resynchronises the ring.
            Some(ring) if ring.pending_slots() != Ok(0) => self.serve_buffered(dispatcher),
            _ => 0,
        };
        for vcpu in 0..self.vcpus {
            n += self.serve_vcpu_counted(vcpu, dispatcher);
        }
        if let Some(db) = self.doorbells.get() {
            for vcpu in 0..self.vcpus {
                n += self.serve_doorbell(db, vcpu, dispatcher);
            }
        }
        n
    }

    /// Serves what the local `port` signals; returns the number of requests served.
    #[inline]
    pub fn serve_port<B: DeviceBus>(&self, port: Port, dispatcher: &mut Dispatcher<B>) -> usize {
        let vcpu = self.port_vcpus.vcpu(port);
        if vcpu < self.vcpus {
            return self.serve_vcpu_counted(vcpu, dispatcher);
        }
        self.serve_other_port(port, dispatcher)
    }

    /// [`IoreqServer::serve_port`] of a port that is not a vCPU's: out of line, off the
    /// common request's path.
    #[inline(never)]
    pub(crate) fn serve_other_port<B: DeviceBus>(
        &self,
        port: Port,
        dispatcher: &mut Dispatcher<B>,
    ) -> usize {
        if self.buffered_port() == Some(port) {
            return self.serve_buffered(dispatcher);
        }
        let db = self.doorbells.get();
        match db.and_then(|db| db.vcpu_of(port)) {
            Some(vcpu) => self.serve_doorbell(db.expect("found in it"), vcpu, dispatcher),
            // An event loop's own wake-up (see `EventLoop`), taken by another reader.
            None if self.wake_port_list().contains(&port) => 0,
            None => {
                log::warn!("domain {}: event on unknown port {port}", self.domid);
                0
            }
        }
    }

    /// Serves what woke the event channel: every request waiting in a slot or in the buffered
    /// ring, then every pending port of the (non-blocking) event channel, which it re-arms.
    /// Returns the number of requests served.
    ///
    /// The slots come first: Xen publishes a request in its slot before it signals the port,
    /// so the sweep finds what woke us without reading the port, and the guest's vCPU resumes
    /// two system calls sooner than if the port were read and re-armed first. The ports are
    /// read afterwards to empty the kernel's queue and re-arm them; a request published in
    /// between is served there, and an event whose request the sweep took finds its slot empty.
    ///
    /// Call it when the descriptor polls readable, *level-triggered* (as [`crate::EventLoop`]
    /// does): it stops after one read that returns fewer ports than it asked for, and the
    /// kernel may queue a port while that read copies its queue without waking anyone (it
    /// wakes waiters only when its queue goes from empty to not empty, judged against the
    /// reader's progress before the copy). A level-triggered waiter looks at the descriptor
    /// again and finds that port; an edge-triggered one would never be told of it.
    ///
    /// It also stops after as many reads as take each of the server's ports once, and one
    /// more: a port re-armed here is queued again at the guest's next request, so a guest
    /// that keeps more ports busy than one read takes would otherwise hold the caller here
    /// for good, away from its stopper and irqfds. The ports left stay queued, and the
    /// descriptor readable for the level-triggered waiter.
    pub fn serve_pending<B: DeviceBus>(&self, dispatcher: &mut Dispatcher<B>) -> Result<usize> {
        let mut served = self.serve_all(dispatcher);
        let mut buf = [0 as Port; PORTS_PER_READ];
        let ports = self.local_ports.len()
            + usize::from(self.buf_port.is_some())
            + self.doorbells.get().map_or(0, DoorbellServer::port_count);
        for _ in 0..=ports.div_ceil(PORTS_PER_READ) {
            let n = match self.evtchn.read_pending(&mut buf) {
                Ok(n) => n,
                Err(xen_bindings::evtchn::Error::Overflow) => {
                    served += self.recover_from_overflow(dispatcher)?;
                    continue;
                }
                Err(source) => return Err(self.read_pending_failed(source)),
            };
            for &port in &buf[..n] {
                // Serve (and notify) before re-arming: the unmask overlaps with the guest's
                // next steps. Nothing is lost: an event sent while the port is masked stays
                // pending, and unmasking delivers it (the descriptor becomes readable again); a
                // spurious one finds the slot not READY and does nothing.
                served += self.serve_port(port, dispatcher);
                if let Err(e) = self.evtchn.unmask(port) {
                    self.unmask_failed(e);
                }
            }
            // A short read took what the kernel's queue held when it looked: stop without
            // another read (a syscall per request on the hot path). A port queued since then
            // keeps the descriptor readable for the level-triggered waiter (see above).
            if n < buf.len() {
                break;
            }
        }
        Ok(served)
    }

    /// After the kernel's queue of pending ports overflowed (events were lost): resets it,
    /// re-arms every port and serves everything; the requests served. Out of line, as
    /// [`IoreqServer::read_pending_failed`]: neither is on a request's path.
    #[cold]
    #[inline(never)]
    pub(crate) fn recover_from_overflow<B: DeviceBus>(
        &self,
        dispatcher: &mut Dispatcher<B>,
    ) -> Result<usize> {
        log::warn!("domain {}: evtchn ring overflow; rescanning", self.domid);
        self.evtchn.reset().map_err(|source| Error::Evtchn {
            op: "reset evtchn",
            domid: self.domid,
            source,
        })?;
        // The reset empties the kernel's queue but leaves masked every port whose event was in
        // it (or was dropped when it was full): nobody will read those ports now, so nobody
        // would unmask them, and their next events would stay pending in Xen for ever.
        // Unmasking a port that is not masked does nothing.
        let doorbell_ports = self.doorbells.get().map(|db| db.local_ports());
        // The loops' own wake-up ports too: a stopper's event the reset dropped would leave
        // the next one held in Xen, and a loop blocked in read deaf to its stopper.
        let wake_ports = self.wake_port_list().clone();
        for port in self
            .local_ports
            .iter()
            .copied()
            .chain(self.buffered_port())
            .chain(doorbell_ports.into_iter().flatten())
            .chain(wake_ports)
        {
            if let Err(e) = self.evtchn.unmask(port) {
                log::error!("domain {}: {e}", self.domid);
            }
        }
        Ok(self.serve_all(dispatcher))
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn read_pending_failed(&self, source: xen_bindings::evtchn::Error) -> Error {
        Error::Evtchn {
            op: "read pending ports",
            domid: self.domid,
            source,
        }
    }

    fn destroy(&mut self) -> Result<()> {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        self.dm_op(
            "destroy_ioreq_server",
            XEN_DMOP_DESTROY_IOREQ_SERVER,
            &XenDmOpDestroyIoreqServer {
                id: self.id,
                pad: 0,
            },
        )
        .map(drop)
    }

    /// Tears the server down now (what dropping does), reporting a failure.
    pub fn shutdown(mut self) -> Result<()> {
        self.teardown()
    }

    fn registrations(&self) -> std::sync::MutexGuard<'_, KernelRegistrations> {
        self.kernel_registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Deassigns every kernel irqfd. Each failure is logged; the first is returned.
    fn deassign_kernel_eventfds(&mut self) -> Result<()> {
        let regs = std::mem::take(&mut *self.registrations());
        let mut first = Ok(());
        let mut keep = |res: std::result::Result<(), privcmd::Error>, op: &'static str| {
            if let Err(source) = res {
                let e = Error::Privcmd {
                    op,
                    domid: self.domid,
                    source,
                };
                log::error!("{e}");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        };
        for (eventfd, op) in &regs.irqfds {
            // SAFETY: `eventfd` keeps the descriptor open for the duration of the call.
            let fd = unsafe { BorrowedFd::borrow_raw(eventfd.as_raw_fd()) };
            keep(
                self.privcmd.irqfd(self.domid, fd, op.as_bytes(), true),
                "deassign irqfd",
            );
        }
        first
    }

    fn teardown(&mut self) -> Result<()> {
        if self.destroyed {
            // `shutdown` ran it; this is the drop that follows.
            return Ok(());
        }
        // First: the kernel's registrations point into the pages and at the ports released
        // below. The doorbell server deassigns its ioeventfds before it lets go of its own.
        let mut deassigned = self.deassign_kernel_eventfds();
        if let Some(db) = self.doorbells.take() {
            let res = self.destroy_doorbell_server(db);
            if deassigned.is_ok() {
                deassigned = res;
            }
        }
        self.buf_port = None;
        self.ports.clear();
        self.local_ports.clear();
        self.port_vcpus = VcpuPorts::default();
        self.ioreq = None;
        self.bufring = None;
        let res = self.destroy();
        if res.is_ok() {
            log::info!("domain {}: destroyed IOREQ server {}", self.domid, self.id);
        }
        deassigned.and(res)
    }
}

impl<S: Sys> Drop for IoreqServer<S> {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            log::error!("{e}");
        }
    }
}
