// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The doorbell server: a second IOREQ server of the same domain that holds only the
//! virtio-mmio QueueNotify registers whose writes privcmd's kernel ioeventfd serves.
//!
//! # Why a server of their own
//!
//! privcmd's ioeventfd handler (Linux 6.7+, `ioeventfd_interrupt` in drivers/xen/privcmd.c)
//! runs in interrupt context, on any dom0 vCPU, for every event on the ports it was given, and
//! touches the slot with plain stores, not with a compare-and-swap. Up to Linux 6.12.116 (and
//! the mainline releases of that time) it does so for *every* MMIO write: it checks the slot
//! is `READY`, stores `IN_PROCESS`, compares, and stores `READY` again when the write is not
//! one of its doorbells. If the doorbells shared a server with the other registers, a write to
//! any register would be seen by the handler and by this process at once: a take that lands
//! between the handler's check and its stores is overwritten, and the write is served twice, or
//! a stale `READY` follows a response Xen already consumed and Xen crashes the domain ("bad IO
//! state"). No protocol on our side can avoid plain stores it cannot see coming (waiting for an
//! `IN_PROCESS` slot to come back is a guess, not a synchronisation).
//!
//! So the registers are split between two servers (Xen picks the server whose ranges contain
//! an access): the handler is bound only to this server's ports, and this server's ranges are
//! exactly the QueueNotify registers with a kernel ioeventfd; the main server's ranges are the
//! caller's with those registers cut out ([`crate::IoreqServer::map_range`] does the cutting).
//! Non-doorbell writes never reach the handler, whatever kernel runs.
//!
//! # Who owns this server's slots
//!
//! While privcmd holds the registrations, this process never takes a write of type `COPY`
//! from this server's slots: one the handler matches (address, size and the low 16 bits of
//! the value as the queue) is the kernel's, and the handler completes it. Requests the handler
//! never stores to (reads, and the `INVALIDATE` requests Xen sends to every server when the
//! guest's memory map changes) are taken by this process, one thread at a time, so that none
//! can be completed and replaced by a write between a look and a take. A write the handler
//! does not complete (another size, a queue without a registration: outside the virtio-mmio
//! specification, or a queue registered too late) would wait for ever, and the handler
//! stores to it. For such a request the server gives the kernel's registrations
//! back: deassigning them unbinds the handler, which waits for a handler still running, so
//! that afterwards nothing but this process touches the slots; the doorbells become userspace
//! ioeventfds and every request is served in this process from then on (logged once). A guest
//! that misbehaves thus loses the kernel's fast path, never a request.
//!
//! # Why a doorbell the kernel serves still wakes this process
//!
//! privcmd binds its handler to the ports it is given as a shared, late-EOI interrupt
//! (`bind_evtchn_to_irqhandler_lateeoi`, `IRQF_SHARED`), and the handler (Linux 6.7 to at
//! least 6.12.118) never signals that EOI (`xen_irq_lateeoi`). Linux masks a late-EOI event
//! channel when it delivers an event and unmasks it only at the EOI, so the handler alone
//! would see the first doorbell and never another. The one EOI these ports get is
//! `/dev/xen/evtchn`'s, made when this process re-arms a port it read: the doorbell server's
//! ports are bound through it (which also gives the local ports privcmd needs), every
//! doorbell queues its port for this process (a wake-up), and the loop that reads it finds
//! the slot the kernel's or empty and re-arms the port. Leaving the port masked instead stops
//! the guest at its second doorbell (seen in the Arm box: one event, then the vCPU waited
//! until the test was killed), so this wake-up per kick stays until privcmd's handler signals
//! its own EOI. The same binding is how this process learns of the requests the handler
//! leaves alone: reads, writes it does not match, and the `INVALIDATE` that Xen on Arm
//! broadcasts to every server after a hypercall that changed the guest's memory map.
//! Interrupts cost no wake-up: privcmd's irqfd injects them without this process.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vmm_sys_util::eventfd::EventFd;
use xen_bindings::abi::xen::dm_op::IoservId;
use xen_bindings::abi::xen::ioreq::{
    Ioreq, IOREQ_TYPE_COPY, STATE_IOREQ_INPROCESS, STATE_IOREQ_READY,
};
use xen_bindings::evtchn::{BoundPort, Port};
use xen_bindings::privcmd::{self, Ioeventfd, Privcmd};
use xen_bindings::sys::Sys;
use xen_bindings::DomId;

use crate::dispatch::QueueNotify;
use crate::page::{IoreqPage, MappedPage};

/// What a doorbell server's slot holds, as far as privcmd's handler is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Nothing waits in the slot.
    Empty,
    /// A write the handler matches: the kernel's to complete.
    Kernel,
    /// A request the handler never stores to (not a write of type `COPY`: a read, or an
    /// `INVALIDATE` Xen sends to every server): this process's, taken under
    /// [`DoorbellServer::user_take`].
    Untouched,
    /// A write the handler checks and does not complete: only safe once the registrations are
    /// given back.
    Unserved,
}

/// One kernel ioeventfd: the QueueNotify write of queue `vq` of the device at `base`.
#[derive(Debug, Clone)]
pub(crate) struct Doorbell {
    pub(crate) base: u64,
    pub(crate) size: u8,
    pub(crate) vq: u32,
    pub(crate) eventfd: Arc<EventFd>,
}

impl Doorbell {
    fn notify(&self) -> QueueNotify {
        QueueNotify::new(self.base, self.size, self.vq)
    }
}

/// The doorbell server (see the module documentation).
#[derive(Debug)]
pub(crate) struct DoorbellServer<S: Sys> {
    pub(crate) id: IoservId,
    pub(crate) page: IoreqPage<MappedPage<S>>,
    /// One per vCPU, bound through the main server's event channel (whose loops serve them).
    ports: Vec<BoundPort<S>>,
    /// Whether privcmd holds the registrations (and so owns the slots' doorbell writes).
    kernel: AtomicBool,
    /// Held while this process looks at and takes a slot the kernel does not touch, while the
    /// kernel holds the registrations: as only this process completes such requests, nobody
    /// can complete one and let Xen put a write in its place between the look and the take.
    user_take: Mutex<()>,
    /// The registrations; while `kernel` is set, each is assigned in privcmd.
    doorbells: Mutex<Vec<Doorbell>>,
}

impl<S: Sys> DoorbellServer<S> {
    pub(crate) fn new(
        id: IoservId,
        page: IoreqPage<MappedPage<S>>,
        ports: Vec<BoundPort<S>>,
    ) -> Self {
        Self {
            id,
            page,
            ports,
            kernel: AtomicBool::new(true),
            user_take: Mutex::new(()),
            doorbells: Mutex::new(Vec::new()),
        }
    }

    /// The local port of `vcpu`.
    pub(crate) fn port(&self, vcpu: usize) -> Option<Port> {
        self.ports.get(vcpu).map(BoundPort::port)
    }

    /// The vCPU whose local port is `port`.
    pub(crate) fn vcpu_of(&self, port: Port) -> Option<usize> {
        self.ports.iter().position(|p| p.port() == port)
    }

    /// How many local ports there are (one per vCPU).
    pub(crate) fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// The local ports, one per vCPU.
    pub(crate) fn local_ports(&self) -> impl Iterator<Item = Port> + '_ {
        self.ports.iter().map(BoundPort::port)
    }

    /// The registrations, locked (also serialises assigning and giving back).
    pub(crate) fn doorbells(&self) -> MutexGuard<'_, Vec<Doorbell>> {
        self.doorbells.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether privcmd holds the registrations.
    pub(crate) fn kernel_owned(&self) -> bool {
        self.kernel.load(Ordering::SeqCst)
    }

    /// Registers `d` with privcmd (with the registrations locked as `held`).
    pub(crate) fn assign(
        &self,
        privcmd: &Privcmd<S>,
        domid: DomId,
        held: &mut Vec<Doorbell>,
        d: Doorbell,
    ) -> Result<(), privcmd::Error> {
        self.ioctl(privcmd, domid, &d, false)?;
        held.push(d);
        Ok(())
    }

    fn ioctl(
        &self,
        privcmd: &Privcmd<S>,
        domid: DomId,
        d: &Doorbell,
        deassign: bool,
    ) -> Result<(), privcmd::Error> {
        let ports: Vec<Port> = self.local_ports().collect();
        // SAFETY: `d.eventfd` keeps the descriptor open for the duration of the call.
        let fd = unsafe { BorrowedFd::borrow_raw(d.eventfd.as_raw_fd()) };
        // SAFETY: the page is this doorbell server's ioreq page, which it keeps mapped until
        // it drops; every registration is deassigned before that (`give_back`, called by
        // `IoreqServer::destroy_doorbell_server` and by the server's teardown first), and
        // the server makes none in an x86 PV dom0 (`kernel_ioeventfd`).
        unsafe {
            privcmd.ioeventfd(
                domid,
                &Ioeventfd {
                    ioreq_page: self.page.page().mapping(),
                    ports: &ports,
                    addr: d.base,
                    addr_len: d.size.into(),
                    vq: d.vq,
                    eventfd: fd,
                },
                deassign,
            )
        }
    }

    /// Deassigns `d` in privcmd.
    pub(crate) fn deassign(
        &self,
        privcmd: &Privcmd<S>,
        domid: DomId,
        d: &Doorbell,
    ) -> Result<(), privcmd::Error> {
        self.ioctl(privcmd, domid, d, true)
    }

    /// Takes every registration back from privcmd, if it still holds them: afterwards no
    /// handler runs on this server's slots (the deassign waits for one still running).
    /// `before_release` gets the doorbells before other threads may take the slots (to make
    /// them userspace ioeventfds). Returns the doorbells and the failures, each with its
    /// doorbell; `None` if they were given back already.
    #[allow(clippy::type_complexity)]
    pub(crate) fn give_back(
        &self,
        privcmd: &Privcmd<S>,
        domid: DomId,
        before_release: impl FnOnce(&[Doorbell]),
    ) -> Option<(Vec<Doorbell>, Vec<(Doorbell, privcmd::Error)>)> {
        let mut held = self.doorbells();
        if !self.kernel_owned() {
            return None;
        }
        let mut failed = Vec::new();
        for d in held.iter() {
            if let Err(e) = self.deassign(privcmd, domid, d) {
                failed.push((d.clone(), e));
            }
        }
        before_release(&held);
        // Only now: a loop that still sees the kernel as owner leaves a doorbell write to
        // it, and the one that gives back sweeps the slots afterwards.
        self.kernel.store(false, Ordering::SeqCst);
        Some((std::mem::take(&mut *held), failed))
    }

    /// Serialises this process's looks and takes of slots the kernel does not touch.
    pub(crate) fn user_take(&self) -> MutexGuard<'_, ()> {
        self.user_take.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who may complete the request in `vcpu`'s slot (`READY`, or held `IN_PROCESS` by the
    /// handler or by this process), judged as the handler does.
    pub(crate) fn owner(&self, vcpu: usize) -> Owner {
        let Some(slot) = self.page.slot(vcpu) else {
            return Owner::Empty;
        };
        if !matches!(slot.state(), STATE_IOREQ_READY | STATE_IOREQ_INPROCESS) {
            return Owner::Empty;
        }
        self.owner_of(&slot.peek())
    }

    /// The handler's own test: it stores to a write of type `COPY` only, and completes one
    /// that matches a registration (address, size, the value's low 16 bits as the queue;
    /// count, `data_is_ptr` and direction flag are not looked at).
    fn owner_of(&self, r: &Ioreq) -> Owner {
        if r.type_ != IOREQ_TYPE_COPY || r.is_read() {
            return Owner::Untouched;
        }
        let hit = self
            .doorbells()
            .iter()
            .any(|d| d.notify().matches(r.addr, r.size, r.data));
        if hit {
            Owner::Kernel
        } else {
            Owner::Unserved
        }
    }
}

/// The range a doorbell server takes for the QueueNotify register of the device at `base`:
/// the 32-bit register, inclusive bounds.
pub(crate) fn register_range(base: u64) -> Option<(u64, u64)> {
    let start = base.checked_add(crate::dispatch::VIRTIO_MMIO_QUEUE_NOTIFY)?;
    Some((start, start.checked_add(3)?))
}

/// `start..=end` without the `holes` (disjoint, inclusive), as disjoint pieces in order.
pub(crate) fn cut(start: u64, end: u64, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut holes: Vec<(u64, u64)> = holes
        .iter()
        .copied()
        .filter(|&(s, e)| s <= end && e >= start)
        .collect();
    holes.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = start;
    for (s, e) in holes {
        if s > from {
            pieces.push((from, s - 1));
        }
        match e.checked_add(1) {
            Some(next) => from = from.max(next),
            None => return pieces,
        }
        if from > end {
            return pieces;
        }
    }
    pieces.push((from, end));
    pieces
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_leaves_the_pieces_around_the_holes() {
        assert_eq!(cut(0, 0x1ff, &[]), vec![(0, 0x1ff)]);
        assert_eq!(
            cut(0, 0x1ff, &[(0x50, 0x53)]),
            vec![(0, 0x4f), (0x54, 0x1ff)]
        );
        assert_eq!(
            cut(0, 0x1ff, &[(0x250, 0x253), (0x50, 0x53), (0x1f0, 0x1ff)]),
            vec![(0, 0x4f), (0x54, 0x1ef)]
        );
        assert_eq!(cut(0x50, 0x53, &[(0x50, 0x53)]), vec![]);
        assert_eq!(cut(0, 0x51, &[(0x50, 0x53)]), vec![(0, 0x4f)]);
        assert_eq!(cut(0x52, 0x60, &[(0x50, 0x53)]), vec![(0x54, 0x60)]);
        assert_eq!(
            cut(0, u64::MAX, &[(u64::MAX - 3, u64::MAX)]),
            vec![(0, u64::MAX - 4)]
        );
        assert_eq!(cut(0, u64::MAX, &[(0, 3)]), vec![(4, u64::MAX)]);
    }
}
