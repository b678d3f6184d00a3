// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Event loops sharing one server: no wake-up is lost when a loop stops, goes or fails, a
//! guest keeping many ports busy holds no loop from its stopper, and no loop can block where
//! it should look.

use super::*;

/// A guest whose vCPUs each make their next access as soon as the last is answered: every
/// access the device serves, Xen takes another vCPU's answer and publishes that vCPU's next
/// read, with its event (`left` more in all).
struct Busy {
    fx: FakeXen,
    vcpus: usize,
    left: AtomicUsize,
    served: AtomicUsize,
}

impl IoHandler for Busy {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        self.served.fetch_add(1, Ordering::SeqCst);
        data.fill(0);
        if self.left.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        // The vCPU being served is IN_PROCESS: another one's answer.
        let answered = (0..self.vcpus).find(|&v| self.fx.slot_state(1, v) == STATE_IORESP_READY);
        if let Some(v) = answered {
            self.left.fetch_sub(1, Ordering::SeqCst);
            self.fx.consume(1, v);
            self.fx
                .publish_to(1, v, ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 1, IOREQ_READ, 0));
            self.fx.event(1, v);
        }
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        Err("read-only".into())
    }
}

/// More vCPU ports than one read of the event channel takes, each queued again as soon as it
/// is re-armed: a loop's turn still ends (it sees its stopper and its irqfds), and what it
/// leaves in the kernel's queue keeps the descriptor readable for the next turn.
#[test]
fn a_guest_keeping_many_ports_busy_starves_neither_the_stopper_nor_the_next_turn() {
    const VCPUS: usize = 20;
    const MORE: usize = 2000;
    const { assert!(VCPUS > crate::server::PORTS_PER_READ) };
    let (fx, privcmd, evtchn) = fake(VCPUS as u32);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.enable().unwrap();
    let busy = Arc::new(Busy {
        fx: fx.clone(),
        vcpus: VCPUS,
        left: AtomicUsize::new(MORE),
        served: AtomicUsize::new(0),
    });
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO_BASE, 4, busy.clone())
        .unwrap();
    let mut ev = EventLoop::new(&server, Dispatcher::new(Arc::new(bus))).unwrap();
    for v in 0..VCPUS {
        fx.publish_to(1, v, ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 1, IOREQ_READ, 0));
        fx.event(1, v);
    }
    ev.stopper().write(1).unwrap();

    let turn = ev.run_once(0).unwrap();
    assert!(turn.stopped);
    assert!(
        turn.requests <= 4 * VCPUS,
        "one turn served {} requests",
        turn.requests
    );
    assert!(
        fx.readable(),
        "the ports left queued keep the descriptor readable"
    );

    // Turn after turn, each bounded, until the guest is done: none finds nothing to do while
    // requests wait (a lost wake-up).
    let mut served = turn.requests;
    let mut turns = 0;
    while served < VCPUS + MORE {
        turns += 1;
        assert!(turns <= MORE, "{served} served so far");
        let turn = ev.run_once(0).unwrap();
        assert!(
            turn.requests > 0 && turn.requests <= 4 * VCPUS,
            "{served} served so far, then {turn:?}"
        );
        served += turn.requests;
    }
    assert_eq!(served, VCPUS + MORE);
    assert_eq!(busy.served.load(Ordering::SeqCst), VCPUS + MORE);
    for v in 0..VCPUS {
        assert_eq!(fx.slot_state(1, v), STATE_IORESP_READY, "vCPU {v}");
    }
    assert_eq!(ev.run_once(0).unwrap(), Turn::default());
}

/// The buffered backlog (entries whose event was consumed) belongs to the loop that took it;
/// one that stops, or is dropped, with it gives it to the server's other loops, which serve
/// it without an event of their own. (Seen as: posted writes of a flood stayed in the ring
/// until the guest's next access, when a vCPU thread's loop stopped.)
#[test]
fn a_loop_that_stops_or_goes_leaves_the_buffered_backlog_to_the_others() {
    const PER_CALL: usize = IoreqServer::<FakeXen>::BUFFERED_PER_CALL;
    const INITIAL: usize = 64;
    for dropped in [false, true] {
        let (fx, server) = enabled_server(1, BufIoreqMode::Legacy);
        let server = Arc::new(server);
        let flood = Arc::new(Flood::default());
        *flood.server.lock().unwrap() = Arc::downgrade(&server);
        flood.left.store(2 * PER_CALL, Ordering::SeqCst);
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Pio, 0x80, 1, flood.clone()).unwrap();
        let bus = Arc::new(bus);
        let mut a = EventLoop::new(&*server, Dispatcher::new(bus.clone())).unwrap();
        let mut b = EventLoop::new(&*server, Dispatcher::new(bus)).unwrap();
        let ring = server.buffered_ring().unwrap();
        for _ in 0..INITIAL {
            assert!(RingWriter::new(ring).push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x80, 1));
        }
        fx.notify(server.buffered_port().unwrap());
        if !dropped {
            a.stopper().write(1).unwrap();
        }
        // Loop A serves two rings' worth; the guest refilled the ring meanwhile.
        let turn = a.run_once(0).unwrap();
        assert_eq!(turn.stopped, !dropped);
        assert_ne!(ring.pending_slots(), Ok(0), "entries left behind");
        if dropped {
            assert!(turn.backlog, "loop A took the backlog");
            drop(a);
        }
        let (a_backlog, mut served) = (turn.backlog, turn.requests);
        assert!(!fx.readable(), "no event is pending for the rest");

        // Loop B serves the rest at once (a lost wake-up would serve nothing).
        for _ in 0..3 {
            served += b.run_once(0).unwrap().requests;
        }
        assert_eq!(served, INITIAL + 2 * PER_CALL, "dropped: {dropped}");
        assert_eq!(ring.pending_slots(), Ok(0));
        assert!(dropped || !a_backlog, "a loop that stops keeps no backlog");
        assert!(!server.take_buffered_backlog());
    }
}

/// An event channel opened blocking (`EventChannel::open`) is made non-blocking by the server:
/// a loop that wakes with another and finds the ports read would otherwise sleep in read(),
/// deaf to its stopper until the guest's next event.
#[test]
fn the_event_channel_is_made_non_blocking() {
    let (_fx, privcmd, evtchn) = fake(1);
    let fd = evtchn.as_raw_fd();
    let flags = || {
        // SAFETY: F_GETFL on a descriptor the event channel keeps open.
        unsafe { libc::fcntl(fd, libc::F_GETFL) }
    };
    // SAFETY: F_SETFL on a descriptor the event channel keeps open; flags as an integer.
    let set = unsafe { libc::fcntl(fd, libc::F_SETFL, flags() & !libc::O_NONBLOCK) };
    assert_eq!(set, 0);
    assert_eq!(
        flags() & libc::O_NONBLOCK,
        0,
        "what EventChannel::open gives"
    );
    let server = IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    assert_eq!(server.event_channel().as_raw_fd(), fd);
    assert_ne!(flags() & libc::O_NONBLOCK, 0);
}

/// A turn that fails after it saw the stopper leaves the stop to the next turn: a caller that
/// logs the error and turns again is still stopped.
#[test]
fn a_stop_seen_in_a_turn_that_fails_is_not_lost() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    // The stop first, then an event whose port cannot be read.
    ev.stopper().write(1).unwrap();
    fx.notify(101);
    fx.state().fail_read = Some(libc::EIO);
    assert!(ev.run_once(0).is_err());
    let turn = ev.run_once(0).unwrap();
    assert!(turn.stopped, "{turn:?}");
    assert!(
        !ev.run_once(0).unwrap().stopped,
        "one stop, one stopped turn"
    );
}

/// Loop B's sweep takes the request whose event loop A reads: A finds the slot empty and
/// still re-arms the port, so the vCPU's next request wakes a loop.
#[test]
fn an_event_whose_request_another_loop_took_still_rearms_its_port() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut a = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let mut b = dispatcher(&r);
    fx.publish_to(
        1,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
    );
    fx.event(1, 0);
    assert_eq!(server.serve_all(&mut b), 1, "loop B's sweep");
    assert_eq!(
        a.run_once(0).unwrap().requests,
        0,
        "loop A: the slot is empty"
    );
    assert_eq!(fx.state().unmasked, vec![101], "and the port re-armed");
    fx.consume(1, 0);
    fx.publish_to(
        1,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
    );
    fx.event(1, 0);
    assert!(fx.readable(), "the next request's event reaches the loops");
    assert_eq!(a.run_once(0).unwrap().requests, 1);
    assert_eq!(fx.slot_state(1, 0), STATE_IORESP_READY);
}
