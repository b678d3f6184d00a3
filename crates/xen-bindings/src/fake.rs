// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A fake Xen at the [`Sys`] seam, for tests of code built on privcmd and evtchn (feature
//! `test-utils`).
//!
//! [`FakeXen`] answers the ioctls, mmaps and reads that [`Privcmd`] and [`EventChannel`] make
//! as Xen and Linux would for a device model: the IOREQ-server dm_ops (create, ranges, info,
//! state, vCPU count), `MMAP_RESOURCE` of an IOREQ server's pages (anonymous memory stands in
//! for them), irqfd and ioeventfd registrations with privcmd's in-kernel handler, and the
//! evtchn driver's binding, notification, pending-port reads, masking and unmasking. Tests then
//! play Xen and the guest: [`FakeXen::guest_access`] publishes a request in a vCPU's slot,
//! [`FakeXen::event`] fires its port, [`FakeXen::consume`] takes the answer, and
//! [`FakeXen::state`] shows what was asked.
//!
//! It is test scaffolding: methods panic when a test uses them out of order (documented on
//! each), and it does nothing a real Xen does beyond what is listed.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use libc::c_void;

use crate::abi::linux::evtchn::*;
use crate::abi::linux::privcmd::*;
use crate::abi::xen::dm_op::*;
use crate::abi::xen::ioreq::*;
use crate::abi::Pod;
use crate::evtchn::EventChannel;
use crate::privcmd::Privcmd;
use crate::sys::Sys;
use crate::DomId;

/// Everything the fake Xen and kernel hold; tests read it to check what was asked of them and
/// set its knobs (`fail_*`, `eventfd_errno`, `overflow`) to make calls fail.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct FakeState {
    /// The id of the last IOREQ server made (ids count from 1).
    pub next_id: u16,
    /// The vCPUs of the domain (`XEN_DMOP_nr_vcpus`).
    pub vcpus: u32,
    /// dm_ops seen: (op, the 24-byte union).
    pub ops: Vec<(u32, Vec<u8>)>,
    /// MMAP_RESOURCE calls: (domid, type, id, idx, num).
    pub resources: Vec<(DomId, u32, u32, u32, u64)>,
    /// Synchronous pages by server id (where the fake's Xen writes requests).
    pub pages: Vec<(u16, usize)>,
    /// MMIO ranges by server id, inclusive (Xen's rangesets).
    pub ranges: Vec<(u16, u64, u64)>,
    /// privcmd's kernel ioeventfd records (`struct privcmd_kernel_ioreq`).
    pub kioreqs: Vec<Kioreq>,
    /// Interdomain bindings: (remote port, local port).
    pub bound: Vec<(u32, u32)>,
    /// Local ports unbound.
    pub unbound: Vec<u32>,
    /// Local ports notified.
    pub notified: Vec<u32>,
    /// Local ports unmasked.
    pub unmasked: Vec<u32>,
    /// Notifications, reads of pending ports (how many) and unmasks, in order.
    pub port_calls: Vec<(&'static str, u32)>,
    /// Ports queued for reading from the evtchn descriptor.
    pub pending: VecDeque<u32>,
    /// The number of the last local port handed out (local ports are `100 + n`).
    pub next_port: u32,
    /// errno for irqfd/ioeventfd (0: the kernel supports them).
    pub eventfd_errno: i32,
    /// The dm_op buffers of irqfd assignments.
    pub irqfds: Vec<Vec<u8>>,
    /// ioeventfd assignments: (address, length, virtqueue).
    pub ioeventfds: Vec<(u64, u32, u32)>,
    /// Kernel registrations alive: (kind, eventfd number); privcmd keeps them until deassigned.
    pub registered: Vec<(&'static str, u32)>,
    /// Registrations, deassignments, the ioreq page's unmapping and port unbinds, in order.
    pub lifecycle: Vec<String>,
    /// dm_op number that fails with EINVAL.
    pub fail_op: Option<u32>,
    /// Whether `MMAP_RESOURCE` fails (EPERM).
    pub fail_map: bool,
    /// Binding fails once this many interdomain ports are bound (EBUSY); so does allocating a
    /// loopback channel's first end.
    pub fail_bind_after: Option<usize>,
    /// The next read of pending ports reports a ring overflow (EFBIG).
    pub overflow: bool,
    /// The next read of pending ports fails with this errno (and takes nothing).
    pub fail_read: Option<i32>,
    /// `IOCTL_EVTCHN_RESET` calls.
    pub resets: usize,
    /// read() calls on the event channel.
    pub evtchn_reads: usize,
    /// The eventfd standing in for the evtchn descriptor (readable while ports are pending).
    pub evtchn_efd: RawFd,
    /// Ports the kernel masked when it queued their event, until userspace unmasks them (the
    /// evtchn driver's per-port `enabled` flag, cleared); only [`FakeXen::notify`] masks.
    pub masked: BTreeSet<u32>,
    /// Masked ports Xen notified again: Xen keeps the event pending and delivers it (queues
    /// the port again) when the port is unmasked.
    pub held: BTreeSet<u32>,
    /// Local ports allocated with `IOCTL_EVTCHN_BIND_UNBOUND_PORT` for `DOMID_SELF` (a
    /// loopback channel's first end), not yet connected.
    pub unbound_self: Vec<u32>,
    /// Loopback channels, both ends local: (the unbound end, the end bound to it). A
    /// notification of either end is an event on the other.
    pub loopback: Vec<(u32, u32)>,
    /// Reads of pending ports that waited for one (the descriptor was blocking and nothing
    /// was pending).
    pub blocked_reads: usize,
}

impl FakeState {
    /// An event on `port`: see [`FakeXen::notify`].
    fn deliver(&mut self, port: u32) {
        if self.masked.contains(&port) {
            self.held.insert(port);
        } else {
            self.masked.insert(port);
            self.queue(port);
        }
    }

    fn queue(&mut self, port: u32) {
        self.pending.push_back(port);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes from a live buffer to our eventfd.
        unsafe { libc::write(self.evtchn_efd, one.as_ptr().cast(), 8) };
    }

    /// The address of `vcpu`'s slot in the synchronous page of server `id`.
    ///
    /// # Panics
    ///
    /// If the server has not mapped its page, or the page has no slot `vcpu`: the callers
    /// touch the slot through a raw pointer, which must stay inside the mapping.
    fn slot(&self, id: u16, vcpu: usize) -> usize {
        assert!(
            vcpu < IOREQS_PER_PAGE,
            "vCPU {vcpu} has no slot in the page"
        );
        let page = self.pages.iter().find(|p| p.0 == id).expect("mapped").1;
        page + vcpu * std::mem::size_of::<Ioreq>()
    }
}

/// privcmd's record of the ioeventfds of one ioreq page: keyed by the page's user address,
/// with handlers on `ports` (one per vCPU) and the registrations.
#[derive(Debug)]
#[non_exhaustive]
pub struct Kioreq {
    /// The user address of the ioreq page.
    pub uioreq: usize,
    /// The local ports of the vCPUs.
    pub ports: Vec<u32>,
    /// (device base, access size, virtqueue, eventfd).
    pub entries: Vec<(u64, u32, u32, RawFd)>,
    /// The vCPUs whose slot the handler has checked and not yet stored to (see
    /// [`FakeXen::event`]).
    pub running: Vec<usize>,
}

/// Empties the eventfd standing in for the evtchn descriptor without waiting: the code under
/// test may have made the descriptor blocking (the eventfd's flag is the descriptor's).
fn drain(efd: RawFd) {
    let mut pfd = libc::pollfd {
        fd: efd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    if unsafe { libc::poll(&mut pfd, 1, 0) } == 1 {
        let mut v = [0u8; 8];
        // SAFETY: reading a readable eventfd into a live 8-byte buffer (it does not block).
        unsafe { libc::read(efd, v.as_mut_ptr().cast(), 8) };
    }
}

/// A fake Xen hypervisor and Linux privcmd/evtchn drivers behind the [`Sys`] seam; clones
/// share one [`FakeState`].
#[derive(Debug, Clone, Default)]
pub struct FakeXen(Arc<Mutex<FakeState>>);

/// The remote port Xen gives every IOREQ server's buffered ring.
pub const BUF_REMOTE_PORT: u32 = 77;

/// The event channel Xen gives `vcpu` for the first IOREQ server (id 1).
pub fn vp_eport(vcpu: usize) -> u32 {
    40 + vcpu as u32
}

/// The event channel Xen gives `vcpu` for server `id` (server 1's are [`vp_eport`]'s).
pub fn remote_port(id: u16, vcpu: usize) -> u32 {
    vp_eport(vcpu) + 1000 * u32::from(id - 1)
}

/// Old privcmd's handler (Linux 6.7 to 6.12.116), second half, for `vcpu` of `k`: it stores
/// `IN_PROCESS`, compares, and stores `IORESP_READY` (and signals the eventfd) on a match,
/// `READY` otherwise; plain stores, as the kernel's.
fn finish_handler(s: &mut FakeState, k: &Kioreq, vcpu: usize) {
    let slot = k.uioreq + vcpu * std::mem::size_of::<Ioreq>();
    // SAFETY: the page of a kioreq is a live fake mapping; the slot is inside it.
    let r = unsafe { (slot as *const Ioreq).read_volatile() };
    let state = (slot + IOREQ_FLAGS_OFFSET) as *mut u8;
    let store = |st: u8| {
        // SAFETY: as above; a byte store to the flags byte, like the kernel's bitfield store.
        unsafe { state.write_volatile((state.read_volatile() & !0xf) | st) }
    };
    store(STATE_IOREQ_INPROCESS);
    let hit = k
        .entries
        .iter()
        .find(|e| r.addr == e.0 + 0x50 && r.size == e.1 && (r.data & 0xffff) as u32 == e.2);
    match hit {
        Some(e) => {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writing 8 bytes from a live buffer to the registered eventfd.
            unsafe { libc::write(e.3, one.as_ptr().cast(), 8) };
            store(STATE_IORESP_READY);
            s.port_calls.push(("kernel notify", k.ports[vcpu]));
        }
        None => store(STATE_IOREQ_READY),
    }
}

impl FakeXen {
    /// A fake Xen whose domain has `vcpus` vCPUs.
    pub fn new(vcpus: u32) -> Self {
        let fx = Self::default();
        fx.state().vcpus = vcpus;
        fx
    }

    /// New privcmd and event-channel handles on this fake Xen (a process opening the devices;
    /// call it again for another process's). The event channel's descriptor is an eventfd
    /// that is readable while ports are pending, so it works with epoll.
    ///
    /// # Panics
    ///
    /// If `/dev/null` cannot be opened or no eventfd can be made.
    pub fn handles(&self) -> (Arc<Privcmd<FakeXen>>, EventChannel<FakeXen>) {
        let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
        let privcmd = Privcmd::from_parts(devnull.into(), None, self.clone());
        // SAFETY: eventfd() returns a fresh descriptor we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(efd >= 0, "eventfd: {}", io::Error::last_os_error());
        self.state().evtchn_efd = efd;
        // SAFETY: `efd` is a fresh descriptor owned from here on by the OwnedFd.
        let evtchn = EventChannel::from_parts(unsafe { OwnedFd::from_raw_fd(efd) }, self.clone());
        (Arc::new(privcmd), evtchn)
    }

    /// The state, locked.
    ///
    /// # Panics
    ///
    /// If a thread panicked holding it.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0.lock().expect("fake Xen state poisoned")
    }

    /// Queues `port` as pending and makes the evtchn descriptor readable (what the kernel does
    /// with an event, without the masking of [`FakeXen::notify`]).
    pub fn fire(&self, port: u32) {
        self.state().queue(port);
    }

    /// The other end of the loopback channel `port` is one end of, if any.
    fn loopback_peer(s: &FakeState, port: u32) -> Option<u32> {
        s.loopback.iter().find_map(|&(a, b)| {
            if a == port {
                Some(b)
            } else if b == port {
                Some(a)
            } else {
                None
            }
        })
    }

    /// Xen sends an event on `port`, as the kernel's evtchn driver sees it: an unmasked port
    /// is masked and queued (the descriptor becomes readable); on a masked port the event
    /// stays pending until userspace unmasks the port, which queues it then.
    pub fn notify(&self, port: u32) {
        self.state().deliver(port);
    }

    /// Xen forwards the guest access `r` of `vcpu` like `ioreq_server_select`: to the server
    /// (highest id first) whose MMIO ranges contain it, whose slot it fills and publishes.
    /// Returns that server's id.
    ///
    /// # Panics
    ///
    /// If no server holds the access.
    pub fn guest_access(&self, vcpu: usize, r: Ioreq) -> u16 {
        let last = r.addr + u64::from(r.size) - 1;
        let id = self
            .state()
            .ranges
            .iter()
            .filter(|g| g.1 <= r.addr && g.2 >= last)
            .map(|g| g.0)
            .max()
            .expect("an access some server holds");
        self.publish_to(id, vcpu, r);
        id
    }

    /// Xen fills and publishes `vcpu`'s slot of server `id` with `r`.
    ///
    /// # Panics
    ///
    /// If server `id` has not mapped its page or the page has no slot `vcpu`.
    pub fn publish_to(&self, id: u16, vcpu: usize, mut r: Ioreq) {
        let slot = self.state().slot(id, vcpu);
        r.vp_eport = remote_port(id, vcpu);
        r.set_state(STATE_IOREQ_NONE);
        // SAFETY: slot `vcpu` of a live fake mapping.
        unsafe {
            let slot = slot as *mut u8;
            slot.cast::<Ioreq>().write_volatile(r);
            std::sync::atomic::fence(Ordering::Release);
            slot.add(IOREQ_FLAGS_OFFSET)
                .write_volatile(r.flags | STATE_IOREQ_READY);
        }
    }

    /// The state of `vcpu`'s slot of server `id`.
    ///
    /// # Panics
    ///
    /// If server `id` has not mapped its page or the page has no slot `vcpu`.
    pub fn slot_state(&self, id: u16, vcpu: usize) -> u8 {
        let slot = self.state().slot(id, vcpu);
        // SAFETY: the flags byte of slot `vcpu` of a live fake mapping.
        unsafe { ((slot + IOREQ_FLAGS_OFFSET) as *const u8).read_volatile() & 0xf }
    }

    /// Xen takes the answer of `vcpu`'s slot of server `id` (`IORESP_READY` → `NONE`).
    ///
    /// # Panics
    ///
    /// If the slot holds no answer, server `id` has not mapped its page or it has no slot
    /// `vcpu`.
    pub fn consume(&self, id: u16, vcpu: usize) {
        assert_eq!(self.slot_state(id, vcpu), STATE_IORESP_READY);
        let flags = (self.state().slot(id, vcpu) + IOREQ_FLAGS_OFFSET) as *mut u8;
        // SAFETY: as in `slot_state`.
        unsafe { flags.write_volatile(flags.read_volatile() & !0xf) };
    }

    /// The event of `vcpu`'s port of server `id`: the evtchn driver queues it for userspace
    /// ([`FakeXen::notify`] of the local port) and privcmd's handler, if one is bound to the
    /// port, runs its first half: the slot is `READY` and holds a write of type `COPY`. What
    /// it stores comes later, in [`FakeXen::handler_finish`] (or when a deassign waits for
    /// it). Returns whether the handler went on to its stores.
    ///
    /// # Panics
    ///
    /// If the port is not bound, server `id` has not mapped its page or it has no slot `vcpu`.
    pub fn event(&self, id: u16, vcpu: usize) -> bool {
        let local = {
            let s = self.state();
            let remote = remote_port(id, vcpu);
            s.bound
                .iter()
                .rev()
                .find(|b| b.0 == remote)
                .expect("bound")
                .1
        };
        self.notify(local);
        let mut s = self.state();
        let slot = s.slot(id, vcpu);
        let page = s.slot(id, 0);
        let Some(k) = s.kioreqs.iter_mut().find(|k| k.uioreq == page) else {
            return false;
        };
        // SAFETY: slot `vcpu` of a live fake mapping.
        let r = unsafe { (slot as *const Ioreq).read_volatile() };
        if r.state() != STATE_IOREQ_READY || r.type_ != IOREQ_TYPE_COPY || r.is_read() {
            return false;
        }
        k.running.push(vcpu);
        true
    }

    /// The handler started by [`FakeXen::event`] makes its stores, if it is still running.
    ///
    /// # Panics
    ///
    /// If server `id` has not mapped its page or the page has no slot `vcpu`.
    pub fn handler_finish(&self, id: u16, vcpu: usize) {
        let mut s = self.state();
        let page = s.slot(id, 0);
        let Some(i) = s.kioreqs.iter().position(|k| k.uioreq == page) else {
            return;
        };
        let Some(at) = s.kioreqs[i].running.iter().position(|&v| v == vcpu) else {
            return;
        };
        s.kioreqs[i].running.remove(at);
        let k = s.kioreqs.remove(i);
        finish_handler(&mut s, &k, vcpu);
        s.kioreqs.insert(i, k);
    }

    /// Whether the evtchn descriptor is readable now (what epoll would report).
    pub fn readable(&self) -> bool {
        let fd = self.state().evtchn_efd;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    /// The dm_op numbers seen, in order.
    pub fn ops(&self) -> Vec<u32> {
        self.state().ops.iter().map(|(op, _)| *op).collect()
    }

    /// The arguments of the last dm_op `op`.
    ///
    /// # Panics
    ///
    /// If there was none or `T` is larger than the dm_op union.
    pub fn last_op<T: Pod>(&self, op: u32) -> T {
        let s = self.state();
        let (_, bytes) = s.ops.iter().rev().find(|(o, _)| *o == op).expect("op seen");
        T::from_bytes(bytes).expect("a dm_op argument")
    }

    fn dm_op(&self, arg: *mut c_void) -> io::Result<i32> {
        // SAFETY: privcmd passes a PrivcmdDmOp whose buffers are live for the call.
        let head = unsafe {
            let dm = &*(arg as *const PrivcmdDmOp);
            let bufs =
                std::slice::from_raw_parts(dm.ubufs as *const PrivcmdDmOpBuf, dm.num as usize);
            &mut *(bufs[0].uptr as *mut XenDmOp)
        };
        let mut s = self.state();
        let op = head.op;
        s.ops.push((op, head.u.as_bytes().to_vec()));
        if s.fail_op == Some(op) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        match op {
            XEN_DMOP_CREATE_IOREQ_SERVER => {
                let mut a: XenDmOpCreateIoreqServer = head.payload();
                s.next_id += 1;
                a.id = s.next_id;
                *head = XenDmOp::new(op, &a);
            }
            XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER | XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER => {
                let a: XenDmOpIoreqServerRange = head.payload();
                if a.type_ == XEN_DMOP_IO_RANGE_MEMORY {
                    let same = |r: &&(u16, u64, u64)| r.0 == a.id;
                    if op == XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER {
                        // Xen refuses an overlap within one server (not across servers).
                        if s.ranges
                            .iter()
                            .filter(same)
                            .any(|r| r.1 <= a.end && r.2 >= a.start)
                        {
                            return Err(io::Error::from_raw_os_error(libc::EEXIST));
                        }
                        s.ranges.push((a.id, a.start, a.end));
                    } else {
                        // A contained range is removed, splitting the one holding it.
                        let Some(i) = s
                            .ranges
                            .iter()
                            .position(|r| r.0 == a.id && r.1 <= a.start && r.2 >= a.end)
                        else {
                            return Err(io::Error::from_raw_os_error(libc::ENOENT));
                        };
                        let (id, start, end) = s.ranges.remove(i);
                        if start < a.start {
                            s.ranges.push((id, start, a.start - 1));
                        }
                        if a.end < end {
                            s.ranges.push((id, a.end + 1, end));
                        }
                    }
                }
            }
            XEN_DMOP_NR_VCPUS => *head = XenDmOp::new(op, &XenDmOpNrVcpus { vcpus: s.vcpus }),
            XEN_DMOP_GET_IOREQ_SERVER_INFO => {
                let mut a: XenDmOpGetIoreqServerInfo = head.payload();
                a.bufioreq_port = BUF_REMOTE_PORT;
                *head = XenDmOp::new(op, &a);
            }
            XEN_DMOP_SET_IOREQ_SERVER_STATE => {
                let a: XenDmOpSetIoreqServerState = head.payload();
                let page = s.pages.iter().find(|p| p.0 == a.id).map(|p| p.1);
                if let (1, Some(page)) = (a.enabled, page) {
                    // Xen writes each vCPU's event channel into its slot on enable.
                    for v in 0..(s.vcpus as usize).min(IOREQS_PER_PAGE) {
                        let p = (page + v * std::mem::size_of::<Ioreq>() + 24) as *mut u32;
                        // SAFETY: the fake's own mapping of the ioreq page, slot v of the
                        // page's IOREQS_PER_PAGE.
                        unsafe { p.write_volatile(remote_port(a.id, v)) };
                    }
                }
            }
            _ => {}
        }
        Ok(0)
    }
}

impl Sys for FakeXen {
    unsafe fn ioctl(&self, _fd: RawFd, request: u32, arg: *mut c_void) -> io::Result<i32> {
        match request {
            IOCTL_PRIVCMD_DM_OP => self.dm_op(arg),
            IOCTL_PRIVCMD_MMAP_RESOURCE => {
                // SAFETY: privcmd passes a live PrivcmdMmapResource.
                let r = unsafe { &*(arg as *const PrivcmdMmapResource) };
                let mut s = self.state();
                if s.fail_map {
                    return Err(io::Error::from_raw_os_error(libc::EPERM));
                }
                s.resources
                    .push((DomId::new(r.dom), r.type_, r.id, r.idx, r.num));
                if r.idx == 1 {
                    s.pages.push((r.id as u16, r.addr as usize));
                }
                Ok(0)
            }
            IOCTL_PRIVCMD_IRQFD | IOCTL_PRIVCMD_IOEVENTFD => {
                let mut s = self.state();
                if s.eventfd_errno != 0 {
                    return Err(io::Error::from_raw_os_error(s.eventfd_errno));
                }
                let (kind, fd, deassign) = if request == IOCTL_PRIVCMD_IRQFD {
                    // SAFETY: a live PrivcmdIrqfd.
                    let a = unsafe { &*(arg as *const PrivcmdIrqfd) };
                    ("irqfd", a.fd, a.flags & PRIVCMD_IRQFD_FLAG_DEASSIGN != 0)
                } else {
                    // SAFETY: a live PrivcmdIoeventfd.
                    let a = unsafe { &*(arg as *const PrivcmdIoeventfd) };
                    (
                        "ioeventfd",
                        a.event_fd,
                        a.flags & PRIVCMD_IOEVENTFD_FLAG_DEASSIGN != 0,
                    )
                };
                if deassign {
                    // Linux finds the registration by domain and eventfd; none: ENODEV.
                    let Some(i) = s.registered.iter().position(|r| *r == (kind, fd)) else {
                        return Err(io::Error::from_raw_os_error(libc::ENODEV));
                    };
                    s.registered.remove(i);
                    s.lifecycle.push(format!("deassign {kind}"));
                    if kind == "ioeventfd" {
                        // SAFETY: a live PrivcmdIoeventfd.
                        let a = unsafe { &*(arg as *const PrivcmdIoeventfd) };
                        if let Some(k) = s.kioreqs.iter().position(|k| k.uioreq == a.ioreq as usize)
                        {
                            s.kioreqs[k].entries.retain(|e| e.3 != fd as RawFd);
                            if s.kioreqs[k].entries.is_empty() {
                                // Unbinding the handlers waits for a running one to finish.
                                let k = s.kioreqs.remove(k);
                                for v in k.running.clone() {
                                    finish_handler(&mut s, &k, v);
                                }
                            }
                        }
                    }
                    return Ok(0);
                }
                s.registered.push((kind, fd));
                s.lifecycle.push(format!("assign {kind}"));
                if request == IOCTL_PRIVCMD_IRQFD {
                    // SAFETY: a live PrivcmdIrqfd whose dm_op buffer is live for the call.
                    let a = unsafe { &*(arg as *const PrivcmdIrqfd) };
                    // SAFETY: as above.
                    let op = unsafe {
                        std::slice::from_raw_parts(a.dm_op as *const u8, a.size as usize)
                    };
                    s.irqfds.push(op.to_vec());
                } else {
                    // SAFETY: a live PrivcmdIoeventfd.
                    let a = unsafe { &*(arg as *const PrivcmdIoeventfd) };
                    s.ioeventfds.push((a.addr, a.addr_len, a.vq));
                    let entry = (a.addr, a.addr_len, a.vq, a.event_fd as RawFd);
                    // privcmd keys its record by the page's user address.
                    match s.kioreqs.iter_mut().find(|k| k.uioreq == a.ioreq as usize) {
                        Some(k) => k.entries.push(entry),
                        None => {
                            // SAFETY: privcmd passes `vcpus` live ports.
                            let ports = unsafe {
                                std::slice::from_raw_parts(a.ports as *const u32, a.vcpus as usize)
                            };
                            s.kioreqs.push(Kioreq {
                                uioreq: a.ioreq as usize,
                                ports: ports.to_vec(),
                                entries: vec![entry],
                                running: Vec::new(),
                            });
                        }
                    }
                }
                Ok(0)
            }
            IOCTL_EVTCHN_BIND_UNBOUND_PORT => {
                // SAFETY: evtchn passes a live IoctlEvtchnBindUnboundPort.
                let a = unsafe { &*(arg as *const IoctlEvtchnBindUnboundPort) };
                if a.remote_domain != u32::from(crate::abi::xen::DOMID_SELF) {
                    // Only loopback channels: no other domain binds here.
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
                let mut s = self.state();
                if s.fail_bind_after
                    .is_some_and(|n| s.bound.len() - s.unbound.len() >= n)
                {
                    return Err(io::Error::from_raw_os_error(libc::EBUSY));
                }
                s.next_port += 1;
                let local = 100 + s.next_port;
                s.unbound_self.push(local);
                Ok(local as i32)
            }
            IOCTL_EVTCHN_BIND_INTERDOMAIN
                // SAFETY: evtchn passes a live IoctlEvtchnBindInterdomain.
                if unsafe { &*(arg as *const IoctlEvtchnBindInterdomain) }.remote_domain
                    == u32::from(crate::abi::xen::DOMID_SELF) =>
            {
                // SAFETY: as in the guard.
                let a = unsafe { &*(arg as *const IoctlEvtchnBindInterdomain) };
                let mut s = self.state();
                let Some(i) = s.unbound_self.iter().position(|&p| p == a.remote_port) else {
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                };
                s.unbound_self.remove(i);
                s.next_port += 1;
                let local = 100 + s.next_port;
                s.loopback.push((a.remote_port, local));
                // As Xen: the new local end is made pending once, for events sent before.
                s.deliver(local);
                Ok(local as i32)
            }
            IOCTL_EVTCHN_BIND_INTERDOMAIN => {
                // SAFETY: evtchn passes a live IoctlEvtchnBindInterdomain.
                let a = unsafe { &*(arg as *const IoctlEvtchnBindInterdomain) };
                let mut s = self.state();
                if s.fail_bind_after
                    .is_some_and(|n| s.bound.len() - s.unbound.len() >= n)
                {
                    return Err(io::Error::from_raw_os_error(libc::EBUSY));
                }
                s.next_port += 1;
                let local = 100 + s.next_port;
                s.bound.push((a.remote_port, local));
                Ok(local as i32)
            }
            IOCTL_EVTCHN_UNBIND => {
                // SAFETY: evtchn passes a live IoctlEvtchnUnbind.
                let a = unsafe { &*(arg as *const IoctlEvtchnUnbind) };
                let mut s = self.state();
                s.unbound.push(a.port);
                s.lifecycle.push(format!("unbind {}", a.port));
                Ok(0)
            }
            IOCTL_EVTCHN_NOTIFY => {
                // SAFETY: evtchn passes a live IoctlEvtchnNotify.
                let a = unsafe { &*(arg as *const IoctlEvtchnNotify) };
                let mut s = self.state();
                s.notified.push(a.port);
                s.port_calls.push(("notify", a.port));
                if let Some(peer) = Self::loopback_peer(&s, a.port) {
                    s.deliver(peer);
                }
                Ok(0)
            }
            IOCTL_EVTCHN_RESET => {
                // The ring empties; ports stay masked as they were (as in the kernel).
                let mut s = self.state();
                s.pending.clear();
                s.resets += 1;
                drain(s.evtchn_efd);
                Ok(0)
            }
            _ => Err(io::Error::from_raw_os_error(libc::ENOTTY)),
        }
    }

    unsafe fn mmap(
        &self,
        _addr: *mut c_void,
        len: usize,
        _prot: i32,
        _flags: i32,
        _fd: RawFd,
        _offset: i64,
    ) -> io::Result<*mut c_void> {
        // SAFETY: a fresh anonymous mapping stands in for the privcmd one.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(io::Error::last_os_error())
        } else {
            Ok(p)
        }
    }

    unsafe fn munmap(&self, addr: *mut c_void, len: usize) -> io::Result<()> {
        {
            let mut s = self.state();
            if s.pages.iter().any(|p| p.1 == addr as usize) {
                s.lifecycle.push("unmap ioreq page".into());
            }
        }
        // SAFETY: the caller gives back a mapping made by `mmap` above.
        unsafe { libc::munmap(addr, len) };
        Ok(())
    }

    unsafe fn mlock(&self, _: *const c_void, _: usize) -> io::Result<()> {
        Ok(())
    }

    unsafe fn read(&self, fd: RawFd, buf: *mut u8, len: usize) -> io::Result<usize> {
        let mut s = self.state();
        // A blocking descriptor waits for a port, as the kernel's read does: until the queue
        // is not empty (the eventfd standing in for it is readable), its non-blocking flag
        // looked at again after each wake-up.
        loop {
            let ready = !s.pending.is_empty() || s.overflow || s.fail_read.is_some();
            // SAFETY: F_GETFL reads the flags of the caller's open descriptor.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            if ready || flags < 0 || flags & libc::O_NONBLOCK != 0 {
                break;
            }
            s.blocked_reads += 1;
            drop(s);
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut pfd, 1, -1) };
            s = self.state();
        }
        s.evtchn_reads += 1;
        if std::mem::take(&mut s.overflow) {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        if let Some(errno) = s.fail_read.take() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let mut n = 0;
        while n + 4 <= len {
            let Some(p) = s.pending.pop_front() else {
                break;
            };
            // SAFETY: the caller's buffer holds `len` bytes.
            unsafe { buf.add(n).cast::<u32>().write_unaligned(p) };
            n += 4;
        }
        if s.pending.is_empty() {
            drain(s.evtchn_efd);
        }
        s.port_calls.push(("read", (n / 4) as u32));
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        Ok(n)
    }

    unsafe fn write(&self, _fd: RawFd, buf: *const u8, len: usize) -> io::Result<usize> {
        // SAFETY: unmask writes one port from a live 4-byte buffer.
        let port = unsafe { buf.cast::<u32>().read_unaligned() };
        let mut s = self.state();
        s.unmasked.push(port);
        s.port_calls.push(("unmask", port));
        if s.masked.remove(&port) && s.held.remove(&port) {
            s.masked.insert(port);
            s.queue(port);
        }
        Ok(len)
    }
}
