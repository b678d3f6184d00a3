// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Carrying out requests on a device bus.
//!
//! [`Dispatcher`] turns a [`Request`] into calls of the `vm-device-bus` [`DeviceBus`] (the same
//! bus and devices a KVM vCPU loop serves), reads and writes guest memory for `data_is_ptr`
//! requests through a [`GuestRam`], and answers PCI configuration, map-cache invalidation
//! and time-offset requests through optional hooks. Whatever goes wrong, it produces the value
//! to complete the request with, so the guest is never left waiting; errors are logged.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_device_bus::{BusError, DeviceBus, DeviceError, IoRequest, IoSpace};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use vmm_sys_util::eventfd::EventFd;
use xen_bindings::abi::xen::ioreq::{Ioreq, IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_TYPE_PIO};

use crate::error::DecodeError;
use crate::request::{size_mask, Access, Data, Dir, Request};

/// Whether a request's `size` is one a [`DeviceBus`] serves: 1, 2, 4 or 8, with one shift.
#[inline(always)]
pub(crate) fn valid_size(size: u32) -> bool {
    const SIZES: u32 = 1 << 1 | 1 << 2 | 1 << 4 | 1 << 8;
    size <= 8 && SIZES >> size & 1 != 0
}

/// Offset of the virtio-mmio QueueNotify register, which ioeventfds watch.
pub const VIRTIO_MMIO_QUEUE_NOTIFY: u64 = 0x50;

/// Guest RAM as the dispatcher needs it for `data_is_ptr` requests.
///
/// A narrow, object-safe seam: implement it directly, or wrap any vm-memory
/// [`GuestAddressSpace`] (for example `xen-foreignmem`'s lazy foreign memory) in
/// [`GuestMemoryRam`].
pub trait GuestRam: Send + Sync {
    /// Reads `buf.len()` bytes at guest-physical `gpa`.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes `buf` at guest-physical `gpa`.
    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), DeviceError>;
    /// Xen says the guest's physmap changed: drop cached mappings. Default: nothing cached.
    fn invalidate(&self) {}
}

/// No guest RAM: `data_is_ptr` requests fail (and are completed) with an error.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGuestRam;

impl GuestRam for NoGuestRam {
    fn read(&self, gpa: u64, _: &mut [u8]) -> Result<(), DeviceError> {
        Err(format!("no guest RAM configured to read gpa {gpa:#x}").into())
    }
    fn write(&self, gpa: u64, _: &[u8]) -> Result<(), DeviceError> {
        Err(format!("no guest RAM configured to write gpa {gpa:#x}").into())
    }
}

/// Callback run on `IOREQ_TYPE_INVALIDATE`.
pub type InvalidateFn = Box<dyn Fn() + Send + Sync>;

/// [`GuestRam`] over a vm-memory address space; takes one memory snapshot per access.
pub struct GuestMemoryRam<A: GuestAddressSpace> {
    space: A,
    on_invalidate: Option<InvalidateFn>,
}

impl<A: GuestAddressSpace> std::fmt::Debug for GuestMemoryRam<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemoryRam")
            .field("on_invalidate", &self.on_invalidate.is_some())
            .finish_non_exhaustive()
    }
}

impl<A: GuestAddressSpace> GuestMemoryRam<A> {
    /// Wraps `space`.
    pub fn new(space: A) -> Self {
        Self {
            space,
            on_invalidate: None,
        }
    }

    /// Runs `f` when Xen asks to invalidate cached mappings (e.g. the cache's `invalidate`).
    pub fn on_invalidate(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_invalidate = Some(Box::new(f));
        self
    }
}

impl<A> GuestRam for GuestMemoryRam<A>
where
    A: GuestAddressSpace + Send + Sync,
{
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let mem = self.space.memory();
        mem.read_slice(buf, GuestAddress(gpa))
            .map_err(|e| format!("reading {} bytes at gpa {gpa:#x}: {e}", buf.len()).into())
    }
    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let mem = self.space.memory();
        mem.write_slice(buf, GuestAddress(gpa))
            .map_err(|e| format!("writing {} bytes at gpa {gpa:#x}: {e}", buf.len()).into())
    }
    fn invalidate(&self) {
        if let Some(f) = &self.on_invalidate {
            f()
        }
    }
}

/// PCI configuration space of devices registered with [`crate::IoRange::PciConfig`].
pub trait PciConfigHandler: Send + Sync {
    /// The guest reads `data.len()` bytes at register `reg` of device `sbdf`.
    fn read(&self, sbdf: u32, reg: u32, data: &mut [u8]) -> Result<(), DeviceError>;
    /// The guest writes `data` at register `reg` of device `sbdf`.
    fn write(&self, sbdf: u32, reg: u32, data: &[u8]) -> Result<(), DeviceError>;
}

/// Why a request could not be carried out (it is completed anyway).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The slot did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The device bus refused or the device failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Guest memory of a `data_is_ptr` request was not accessible.
    #[error("guest memory of element {index} of a {kind} request: {source}")]
    GuestMemory {
        /// Request kind.
        kind: &'static str,
        /// Element index.
        index: u32,
        /// The cause.
        #[source]
        source: DeviceError,
    },
    /// An element address left the 64-bit address space.
    #[error("element {index} of a request at {addr:#x} wraps the address space")]
    AddressWrap {
        /// Start address.
        addr: u64,
        /// Element index.
        index: u32,
    },
    /// A PCI configuration request arrived but no handler is set.
    #[error("PCI config access to {sbdf:#x} register {reg:#x} with no PCI config handler")]
    NoPciHandler {
        /// Device.
        sbdf: u32,
        /// Register.
        reg: u64,
    },
    /// A request shape this server does not carry out.
    #[error("unsupported request: {0}")]
    Unsupported(&'static str),
    /// The PCI configuration handler failed.
    #[error("PCI config {op} of {sbdf:#x} register {reg:#x}: {source}")]
    Pci {
        /// Device.
        sbdf: u32,
        /// Register.
        reg: u64,
        /// `"read"` or `"write"`.
        op: &'static str,
        /// The cause.
        #[source]
        source: DeviceError,
    },
}

/// Counters of a dispatcher.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchStats {
    /// Requests completed (successfully or not).
    pub completed: u64,
    /// Requests that failed (logged, completed with all-ones reads).
    pub errors: u64,
    /// Queue notifications delivered through userspace ioeventfds.
    pub ioeventfd_hits: u64,
    /// Invalidate requests.
    pub invalidations: u64,
    /// Failed requests the log's rate limit kept out of the log
    /// ([`Dispatcher::set_failure_log_limit`]).
    pub errors_not_logged: u64,
}

/// A virtio-mmio queue notification: `size`-byte writes of queue index `vq` to the
/// QueueNotify register of a device. Whoever serves it, privcmd's kernel ioeventfd or this
/// crate in userspace, recognises a write the same way: address, size, and the written
/// value's low 16 bits as the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueNotify {
    addr: u64,
    size: u8,
    vq: u32,
}

impl QueueNotify {
    /// The notification of queue `vq` of the virtio-mmio device at `base`.
    pub(crate) fn new(base: u64, size: u8, vq: u32) -> Self {
        Self {
            addr: base.wrapping_add(VIRTIO_MMIO_QUEUE_NOTIFY),
            size,
            vq,
        }
    }

    /// Whether a `size`-byte write of `value` at `addr` is this notification.
    pub(crate) fn matches(&self, addr: u64, size: u32, value: u64) -> bool {
        self.addr == addr && u32::from(self.size) == size && value & 0xffff == u64::from(self.vq)
    }
}

/// A virtio-mmio queue notification served in userspace (when the kernel cannot).
#[derive(Debug)]
struct UserIoeventfd {
    notify: QueueNotify,
    eventfd: Arc<EventFd>,
}

/// Queue notifications that signal an eventfd instead of reaching the bus: a [`Dispatcher`]'s
/// own, and those of an `IoreqServer`, which checks them for every request it serves
/// whichever dispatcher serves it.
#[derive(Debug, Default)]
pub(crate) struct UserIoeventfds(Vec<UserIoeventfd>);

impl UserIoeventfds {
    pub(crate) fn add(&mut self, base: u64, size: u8, vq: u32, eventfd: Arc<EventFd>) {
        self.0.push(UserIoeventfd {
            notify: QueueNotify::new(base, size, vq),
            eventfd,
        });
    }

    pub(crate) fn remove(&mut self, base: u64, vq: u32) -> bool {
        let addr = base.wrapping_add(VIRTIO_MMIO_QUEUE_NOTIFY);
        let before = self.0.len();
        self.0
            .retain(|e| !(e.notify.addr == addr && e.notify.vq == vq));
        before != self.0.len()
    }

    /// Whether one of these is a queue of the device at `base`.
    pub(crate) fn serves(&self, base: u64) -> bool {
        let addr = base.wrapping_add(VIRTIO_MMIO_QUEUE_NOTIFY);
        self.0.iter().any(|e| e.notify.addr == addr)
    }

    /// If `req` is one of these notifications, signals its eventfd and says so.
    pub(crate) fn ring(&self, req: &Request) -> bool {
        let Request::Mmio(a) = req else {
            return false;
        };
        if self.0.is_empty() || a.dir != Dir::Write || a.count != 1 {
            return false;
        }
        let Data::Value(v) = a.data else {
            return false;
        };
        let Some(e) = self
            .0
            .iter()
            .find(|e| e.notify.matches(a.addr, a.size.into(), v))
        else {
            return false;
        };
        if let Err(err) = e.eventfd.write(1) {
            log::error!(
                "signalling ioeventfd {} for vq {}: {err}",
                e.eventfd.as_raw_fd(),
                e.notify.vq
            );
        }
        true
    }
}

/// Failed requests one dispatcher logs per second by default: a guest that loops on a bad
/// access must not flood dom0's log. The rest are counted ([`DispatchStats::errors_not_logged`])
/// and summarised in one line with the next failure that is logged.
pub const FAILURES_LOGGED_PER_SECOND: u32 = 10;

/// Rate limit of the failure log: at most `per_second` lines in any one-second window.
#[derive(Debug)]
struct FailureLog {
    per_second: u32,
    window: Option<Instant>,
    logged: u32,
    /// Failures not logged since the last summary line.
    suppressed: u64,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            per_second: FAILURES_LOGGED_PER_SECOND,
            window: None,
            logged: 0,
            suppressed: 0,
        }
    }
}

impl FailureLog {
    /// Whether one more failure (at `now`) may be logged. When a new window opens after
    /// failures were held back, their number is logged first.
    fn admit(&mut self, now: Instant) -> bool {
        let open = self
            .window
            .is_some_and(|start| now.duration_since(start) < Duration::from_secs(1));
        if !open {
            if self.suppressed > 0 {
                log::error!(
                    "{} more failed requests were not logged (at most {} a second)",
                    self.suppressed,
                    self.per_second
                );
                self.suppressed = 0;
            }
            self.window = Some(now);
            self.logged = 0;
        }
        if self.logged < self.per_second {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// Carries out requests on a [`DeviceBus`].
pub struct Dispatcher<B> {
    bus: B,
    failures: FailureLog,
    ram: Box<dyn GuestRam>,
    pci: Option<Arc<dyn PciConfigHandler>>,
    time_offset: Option<Box<dyn Fn(i64) + Send + Sync>>,
    ioeventfds: UserIoeventfds,
    stats: DispatchStats,
}

impl<B> std::fmt::Debug for Dispatcher<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("pci", &self.pci.is_some())
            .field("ioeventfds", &self.ioeventfds)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<B: DeviceBus> Dispatcher<B> {
    /// A dispatcher onto `bus`, without guest RAM or hooks.
    pub fn new(bus: B) -> Self {
        Self {
            bus,
            failures: FailureLog::default(),
            ram: Box::new(NoGuestRam),
            pci: None,
            time_offset: None,
            ioeventfds: UserIoeventfds::default(),
            stats: DispatchStats::default(),
        }
    }

    /// Uses `ram` for `data_is_ptr` requests and invalidations.
    pub fn with_guest_ram(mut self, ram: impl GuestRam + 'static) -> Self {
        self.ram = Box::new(ram);
        self
    }

    /// Sends PCI configuration requests to `pci`.
    pub fn with_pci_config(mut self, pci: Arc<dyn PciConfigHandler>) -> Self {
        self.pci = Some(pci);
        self
    }

    /// Calls `f` with the new RTC offset on time-offset requests.
    pub fn with_time_offset(mut self, f: impl Fn(i64) + Send + Sync + 'static) -> Self {
        self.time_offset = Some(Box::new(f));
        self
    }

    /// The bus.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// Counters so far.
    pub fn stats(&self) -> DispatchStats {
        self.stats
    }

    /// Signals `eventfd` instead of calling the bus for `size`-byte MMIO writes of `vq` to
    /// `base + VIRTIO_MMIO_QUEUE_NOTIFY` (what the kernel's privcmd ioeventfd does when it is
    /// available), for requests this dispatcher carries out. A server's event loops each have
    /// a dispatcher: register with `IoreqServer::add_ioeventfd` there, which covers them all.
    pub fn add_ioeventfd(&mut self, base: u64, size: u8, vq: u32, eventfd: Arc<EventFd>) {
        self.ioeventfds.add(base, size, vq, eventfd);
    }

    /// Removes the userspace ioeventfd of (`base`, `vq`); whether there was one.
    pub fn remove_ioeventfd(&mut self, base: u64, vq: u32) -> bool {
        self.ioeventfds.remove(base, vq)
    }

    /// Counts a request completed by signalling one of a server's userspace ioeventfds.
    pub(crate) fn count_ioeventfd_hit(&mut self) {
        self.stats.completed += 1;
        self.stats.ioeventfd_hits += 1;
    }

    /// Decodes and carries out a raw synchronous slot; returns the data to complete it with
    /// (`None`: leave `data` as it is). Never fails: errors are logged and counted.
    #[inline(always)]
    pub fn handle_raw(&mut self, vcpu: usize, raw: &Ioreq) -> Option<u64> {
        match self.single_value(vcpu, raw) {
            Some(data) => data,
            // A copy: the common path keeps the request in registers.
            None => self.handle_raw_decoded(vcpu, *raw),
        }
    }

    /// [`Dispatcher::handle_raw`] of any request but the common one, out of line: the common
    /// one's path stays short enough to be inlined into the server's.
    #[inline(never)]
    fn handle_raw_decoded(&mut self, vcpu: usize, raw: Ioreq) -> Option<u64> {
        match Request::decode(&raw) {
            Ok(req) => self.handle_logged(vcpu, &req),
            Err(e) => {
                self.stats.completed += 1;
                self.stats.errors += 1;
                if self.may_log_failure() {
                    log::error!(
                        "vCPU {vcpu}: bad ioreq (type {}, addr {:#x}, size {}, count {}): {e}",
                        raw.type_,
                        raw.addr,
                        raw.size,
                        raw.count
                    );
                }
                // Whatever the guest reads from a broken request: all ones, like a floating bus.
                (raw.is_read() && !raw.data_is_ptr()).then_some(u64::MAX)
            }
        }
    }

    /// The common request, one PIO or MMIO element of 1, 2, 4 or 8 bytes with its data in the
    /// slot, carried straight to the bus: what decoding it into a [`Request`] and
    /// [`Dispatcher::handle_logged`] would do, without building the `Request` and its
    /// `Result`s on every request. `None` for any other request (the caller decodes it).
    #[inline(always)]
    fn single_value(&mut self, vcpu: usize, raw: &Ioreq) -> Option<Option<u64>> {
        let space = match raw.type_ {
            // An MMIO write may be a userspace ioeventfd's doorbell: those go the long way.
            IOREQ_TYPE_COPY if self.ioeventfds.0.is_empty() => IoSpace::Mmio,
            IOREQ_TYPE_PIO if raw.addr <= 0xffff => IoSpace::Pio,
            _ => return None,
        };
        // `IoBus` tests the size again (three instructions: the compiler does not fold its
        // test into this one), but a `DeviceBus` of the caller's may not, and a size it was
        // not made for must not reach it.
        if !valid_size(raw.size) || raw.count != 1 || raw.data_is_ptr() {
            return None;
        }
        let size = raw.size as u8;
        let read = raw.dir() == IOREQ_READ;
        let mut req = IoRequest {
            space,
            addr: raw.addr,
            size,
            write: !read,
            data: raw.data,
        };
        self.stats.completed += 1;
        match self.bus.handle_request(&mut req) {
            // The bus zero-extends what it reads (`DeviceBus::handle_request`); Xen takes the
            // access's bytes only.
            Ok(()) => Some(read.then_some(req.data)),
            Err(e) => Some(self.single_failed(vcpu, *raw, e)),
        }
    }

    /// The common request ([`Dispatcher::single_value`]: one PIO or MMIO element of 1, 2, 4
    /// or 8 bytes, as [`valid_size`] checks it, with its data in the slot), a read, checked by
    /// the caller and carried to the bus: the value read (zero-extended), or why the bus
    /// failed it (the caller answers through [`Dispatcher::single_failed`]). Counted.
    #[inline(always)]
    pub(crate) fn read_single(
        &mut self,
        space: IoSpace,
        addr: u64,
        size: u8,
    ) -> Result<u64, BusError> {
        self.stats.completed += 1;
        let mut req = IoRequest {
            space,
            addr,
            size,
            write: false,
            data: 0,
        };
        self.bus.handle_request(&mut req)?;
        Ok(req.data)
    }

    /// [`Dispatcher::read_single`] of a write of `data` (not one of the dispatcher's userspace
    /// ioeventfds: the caller checks [`Dispatcher::has_ioeventfds`]).
    #[inline(always)]
    pub(crate) fn write_single(
        &mut self,
        space: IoSpace,
        addr: u64,
        size: u8,
        data: u64,
    ) -> Result<(), BusError> {
        self.stats.completed += 1;
        let mut req = IoRequest {
            space,
            addr,
            size,
            write: true,
            data,
        };
        self.bus.handle_request(&mut req)
    }

    /// Whether the dispatcher has userspace ioeventfds of its own ([`Dispatcher::add_ioeventfd`]).
    #[inline(always)]
    pub(crate) fn has_ioeventfds(&self) -> bool {
        !self.ioeventfds.0.is_empty()
    }

    /// The common request failed on the bus: counted, logged (rate-limited), answered with all
    /// ones for a read.
    #[cold]
    #[inline(never)]
    pub(crate) fn single_failed(&mut self, vcpu: usize, raw: Ioreq, e: BusError) -> Option<u64> {
        self.stats.errors += 1;
        if self.may_log_failure() {
            log_single_failure(vcpu, &raw, e);
        }
        (raw.dir() == IOREQ_READ).then_some(size_mask(raw.size as u8))
    }

    /// Whether a failure may be logged now (see [`Dispatcher::set_failure_log_limit`]); one
    /// that may not is counted in [`DispatchStats::errors_not_logged`].
    pub(crate) fn may_log_failure(&mut self) -> bool {
        let admitted = self.failures.admit(Instant::now());
        self.stats.errors_not_logged += u64::from(!admitted);
        admitted
    }

    /// Logs at most `per_second` failed requests in any one second (default
    /// [`FAILURES_LOGGED_PER_SECOND`]; `u32::MAX` logs every one). A guest decides how many
    /// of its requests fail, so an unlimited log lets it fill dom0's disk and slow the
    /// serving thread; the ones held back are counted in [`DispatchStats::errors_not_logged`]
    /// and their number is logged when the next second's first failure is.
    pub fn set_failure_log_limit(&mut self, per_second: u32) {
        self.failures.per_second = per_second;
    }

    /// Carries out `req`, logging a failure (rate-limited: [`Dispatcher::set_failure_log_limit`]);
    /// returns the data to complete it with.
    pub fn handle_logged(&mut self, vcpu: usize, req: &Request) -> Option<u64> {
        let (data, res) = self.handle(req);
        if let Err(e) = res {
            if self.may_log_failure() {
                log::error!("vCPU {vcpu}: {req:?}: {e}");
            }
        }
        data
    }

    /// Carries out `req`: the data to complete it with, and what went wrong if anything
    /// (counted in [`DispatchStats::errors`], not logged).
    pub fn handle(&mut self, req: &Request) -> (Option<u64>, Result<(), HandleError>) {
        let out = self.handle_inner(req);
        if out.1.is_err() {
            self.stats.errors += 1;
        }
        out
    }

    fn handle_inner(&mut self, req: &Request) -> (Option<u64>, Result<(), HandleError>) {
        self.stats.completed += 1;
        match *req {
            Request::Mmio(ref a) => {
                if self.ioeventfds.ring(req) {
                    self.stats.ioeventfd_hits += 1;
                    return (None, Ok(()));
                }
                self.access(IoSpace::Mmio, a, true)
            }
            Request::Pio(ref a) => self.access(IoSpace::Pio, a, false),
            Request::PciConfig { sbdf, ref access } => self.pci_access(sbdf, access),
            Request::Invalidate => {
                self.stats.invalidations += 1;
                self.ram.invalidate();
                (None, Ok(()))
            }
            Request::TimeOffset(off) => {
                if let Some(f) = &self.time_offset {
                    f(off)
                }
                (None, Ok(()))
            }
        }
    }

    /// One element on the bus.
    fn access(
        &mut self,
        space: IoSpace,
        a: &Access,
        addr_steps: bool,
    ) -> (Option<u64>, Result<(), HandleError>) {
        let size = usize::from(a.size);
        let mask = a.size_mask();
        match a.data {
            Data::Value(v) => {
                // The common case: one element, data in the slot. The bus packs the value into
                // bytes and back (`DeviceBus::handle_request`), as for every backend.
                let mut req = IoRequest {
                    space,
                    addr: a.addr,
                    size: a.size,
                    write: a.dir == Dir::Write,
                    data: v,
                };
                for i in 0..a.count {
                    if addr_steps {
                        match a.element_addr(a.addr, i) {
                            Some(x) => req.addr = x,
                            None => {
                                return (
                                    (a.dir == Dir::Read).then_some(mask),
                                    Err(HandleError::AddressWrap {
                                        addr: a.addr,
                                        index: i,
                                    }),
                                )
                            }
                        }
                    }
                    // Every element of a `rep` write writes the same value; a read keeps the last.
                    req.data = v;
                    if let Err(e) = self.bus.handle_request(&mut req) {
                        return ((a.dir == Dir::Read).then_some(mask), Err(e.into()));
                    }
                }
                ((a.dir == Dir::Read).then_some(req.data & mask), Ok(()))
            }
            Data::GuestPtr(ptr) => {
                let kind = if space == IoSpace::Pio { "PIO" } else { "MMIO" };
                for i in 0..a.count {
                    let (Some(gpa), Some(addr)) = (
                        a.element_addr(ptr, i),
                        if addr_steps {
                            a.element_addr(a.addr, i)
                        } else {
                            Some(a.addr)
                        },
                    ) else {
                        return (
                            None,
                            Err(HandleError::AddressWrap {
                                addr: a.addr,
                                index: i,
                            }),
                        );
                    };
                    let mut bytes = [0u8; 8];
                    let buf = &mut bytes[..size];
                    let res = match a.dir {
                        Dir::Write => self
                            .ram
                            .read(gpa, buf)
                            .map_err(|source| HandleError::GuestMemory {
                                kind,
                                index: i,
                                source,
                            })
                            .and_then(|()| Ok(self.bus.write(space, addr, buf)?)),
                        Dir::Read => self
                            .bus
                            .read(space, addr, buf)
                            .map_err(Into::into)
                            .and_then(|()| {
                                self.ram.write(gpa, buf).map_err(|source| {
                                    HandleError::GuestMemory {
                                        kind,
                                        index: i,
                                        source,
                                    }
                                })
                            }),
                    };
                    if let Err(e) = res {
                        return (None, Err(e));
                    }
                }
                (None, Ok(()))
            }
        }
    }

    fn pci_access(&mut self, sbdf: u32, a: &Access) -> (Option<u64>, Result<(), HandleError>) {
        let mask = a.size_mask();
        let Data::Value(v) = a.data else {
            // Xen only forwards single config-space accesses through CF8/CFC.
            return (
                None,
                Err(HandleError::Unsupported(
                    "PCI config access with data in guest memory",
                )),
            );
        };
        let read_fail = (a.dir == Dir::Read).then_some(mask);
        let Some(pci) = &self.pci else {
            return (
                read_fail,
                Err(HandleError::NoPciHandler { sbdf, reg: a.addr }),
            );
        };
        let size = usize::from(a.size);
        let reg = a.addr as u32;
        let mut bytes = (v & mask).to_le_bytes();
        let res = match a.dir {
            Dir::Read => {
                bytes = [0; 8];
                pci.read(sbdf, reg, &mut bytes[..size])
            }
            Dir::Write => pci.write(sbdf, reg, &bytes[..size]),
        };
        match res {
            Ok(()) => (
                (a.dir == Dir::Read).then_some(u64::from_le_bytes(bytes) & mask),
                Ok(()),
            ),
            Err(source) => (
                read_fail,
                Err(HandleError::Pci {
                    sbdf,
                    reg: a.addr,
                    op: if a.dir == Dir::Read { "read" } else { "write" },
                    source,
                }),
            ),
        }
    }
}

/// Logs a failed [`Dispatcher::single_value`] as [`Dispatcher::handle_logged`] logs it.
#[cold]
fn log_single_failure(vcpu: usize, raw: &Ioreq, e: BusError) {
    let e = HandleError::from(e);
    match Request::decode(raw) {
        Ok(req) => log::error!("vCPU {vcpu}: {req:?}: {e}"),
        Err(_) => log::error!("vCPU {vcpu}: {raw:?}: {e}"),
    }
}

#[cfg(test)]
mod failure_log_tests {
    use super::*;

    #[test]
    fn at_most_ten_failures_a_second_are_logged() {
        let mut f = FailureLog::default();
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| f.admit(t0)).count();
        assert_eq!(admitted, FAILURES_LOGGED_PER_SECOND as usize);
        assert_eq!(f.suppressed, 90);
        // A new second: the count of those not logged is said, and logging resumes.
        assert!(f.admit(t0 + Duration::from_millis(1500)));
        assert_eq!(f.suppressed, 0);
        assert!(f.admit(t0 + Duration::from_millis(1600)));
    }

    #[test]
    fn the_limit_can_be_raised_or_closed() {
        let t0 = Instant::now();
        let mut all = FailureLog {
            per_second: u32::MAX,
            ..FailureLog::default()
        };
        assert!((0..10_000).all(|_| all.admit(t0)));
        let mut none = FailureLog {
            per_second: 0,
            ..FailureLog::default()
        };
        assert!(!(0..5).any(|_| none.admit(t0)));
        assert_eq!(none.suppressed, 5);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vm_device_bus::{IoBus, IoHandler};
    use xen_bindings::abi::xen::ioreq::{
        IOREQ_TYPE_INVALIDATE, IOREQ_TYPE_PCI_CONFIG, IOREQ_WRITE,
    };

    use super::*;

    /// Answers reads with its offset in every byte, fails at offset 0x10, records accesses.
    #[derive(Default)]
    struct Echo(Mutex<Vec<(bool, u64, Vec<u8>)>>);

    impl IoHandler for Echo {
        fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
            self.0.lock().unwrap().push((false, offset, data.to_vec()));
            if offset == 0x10 {
                return Err("refused".into());
            }
            data.fill(offset as u8);
            Ok(())
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
            self.0.lock().unwrap().push((true, offset, data.to_vec()));
            if offset == 0x10 {
                return Err("refused".into());
            }
            Ok(())
        }
    }

    fn rig() -> (IoBus, Arc<Echo>) {
        let echo = Arc::new(Echo::default());
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Mmio, 0x1000, 0x100, echo.clone())
            .unwrap();
        bus.insert(IoSpace::Pio, 0xfff0, 0x10, echo.clone())
            .unwrap();
        (bus, echo)
    }

    /// The direct path for single in-slot accesses gives exactly what decoding the request
    /// and dispatching the `Request` gives: the data, the counters and the device's accesses,
    /// over sizes, counts, directions, pointer data, ports past 0xffff, bus misses, device
    /// failures and other request types.
    #[test]
    fn single_value_path_matches_the_decoded_path() {
        let mut cases = 0;
        for type_ in [
            IOREQ_TYPE_PIO,
            IOREQ_TYPE_COPY,
            IOREQ_TYPE_PCI_CONFIG,
            IOREQ_TYPE_INVALIDATE,
            9,
        ] {
            for addr in [
                0x1000, 0x1008, 0x1010, 0x10fc, 0x10ff, 0x2000, 0xfff0, 0xfffe, 0x10000,
            ] {
                for size in [0, 1, 2, 3, 4, 8, 16] {
                    for count in [0, 1, 2] {
                        for dir in [IOREQ_READ, IOREQ_WRITE] {
                            for ptr in [false, true] {
                                let mut raw = Ioreq {
                                    addr,
                                    size,
                                    count,
                                    type_,
                                    data: 0x1122_3344_5566_7788,
                                    ..Default::default()
                                };
                                raw.set_dir(dir);
                                raw.set_data_is_ptr(ptr);
                                let (bus_a, echo_a) = rig();
                                let (bus_b, echo_b) = rig();
                                let mut fast = Dispatcher::new(&bus_a);
                                let mut decoded = Dispatcher::new(&bus_b);
                                let got = fast.handle_raw(0, &raw);
                                let want = match Request::decode(&raw) {
                                    Ok(req) => decoded.handle_logged(0, &req),
                                    Err(_) => {
                                        // handle_raw's own accounting of an undecodable slot.
                                        decoded.stats.completed += 1;
                                        decoded.stats.errors += 1;
                                        (raw.is_read() && !raw.data_is_ptr()).then_some(u64::MAX)
                                    }
                                };
                                let what = format!("{raw:?}");
                                assert_eq!(got, want, "{what}");
                                assert_eq!(fast.stats(), decoded.stats(), "{what}");
                                assert_eq!(
                                    *echo_a.0.lock().unwrap(),
                                    *echo_b.0.lock().unwrap(),
                                    "{what}"
                                );
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 5 * 9 * 7 * 3 * 2 * 2);
    }

    #[test]
    fn ioeventfd_doorbells_still_take_the_decoded_path() {
        let (bus, echo) = rig();
        let mut d = Dispatcher::new(&bus);
        let efd = Arc::new(EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK).unwrap());
        d.ioeventfds.add(0x1000, 4, 0, efd.clone());
        let mut raw = Ioreq {
            addr: 0x1000 + crate::dispatch::VIRTIO_MMIO_QUEUE_NOTIFY,
            size: 4,
            count: 1,
            type_: IOREQ_TYPE_COPY,
            data: 0,
            ..Default::default()
        };
        raw.set_dir(IOREQ_WRITE);
        assert_eq!(d.handle_raw(0, &raw), None);
        assert_eq!(
            efd.read().unwrap(),
            1,
            "the doorbell's eventfd was signalled"
        );
        assert!(echo.0.lock().unwrap().is_empty(), "the device saw nothing");
        assert_eq!(d.stats().ioeventfd_hits, 1);
    }
}
