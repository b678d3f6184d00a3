// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The single-loop path's own serving of a request (`IoreqServer::serve_port_inline`): each
//! field of the slot read once, the common request carried to the bus inline, everything else
//! the long way. Whatever the guest puts in the slot, the answer is the general path's.
//!
//! Each test publishes a request and its event before a turn without a timeout of a lone loop
//! whose stop handle was taken, so the turn blocks in `read` of the event channel (checked),
//! finds the event there at once, serves it and returns.

use super::*;

/// The local port of vCPU 0 of the first server (the fake numbers local ports from 101).
const VCPU0_PORT: u32 = 101;

/// A lone loop on `server` that takes the single-loop path (its stop handle taken).
fn lone_loop<'a, B: DeviceBus>(
    server: &'a IoreqServer<FakeXen>,
    dispatcher: Dispatcher<B>,
) -> (EventLoop<'a, FakeXen, B>, Stopper<FakeXen>) {
    let mut ev = EventLoop::new(server, dispatcher).unwrap();
    let stop = ev.stop_handle();
    (ev, stop)
}

/// Publishes `req` in vCPU 0's slot with its event, runs one turn of `ev` without a timeout
/// (on the single-loop path) and returns the slot as answered.
fn serve<B: DeviceBus>(
    fx: &FakeXen,
    server: &IoreqServer<FakeXen>,
    ev: &mut EventLoop<'_, FakeXen, B>,
    req: Ioreq,
) -> Ioreq {
    publish(server, 0, req);
    let notified = fx.state().notified.len();
    fx.notify(VCPU0_PORT);
    let turn = ev.run_once(-1).unwrap();
    assert_eq!(turn.requests, 1, "{req:?}");
    assert!(!turn.stopped);
    let fd = server.event_channel().as_raw_fd();
    // SAFETY: F_GETFL on a descriptor the server keeps open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0, "the turn blocked in read");
    let s = fx.state();
    assert_eq!(
        s.notified[notified..],
        [VCPU0_PORT],
        "{req:?}: the vCPU is told"
    );
    assert!(
        !s.masked.contains(&VCPU0_PORT),
        "{req:?}: the port is re-armed"
    );
    drop(s);
    let answered = slot_of(server, 0);
    assert_eq!(answered.state(), STATE_IORESP_READY, "{req:?}");
    answered
}

#[test]
fn mmio_and_pio_of_every_size_both_ways() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let (mut ev, _stop) = lone_loop(&server, dispatcher(&r));
    // The server has one vCPU: every request goes through vCPU 0's slot.
    every_size_both_ways(&r, |_, req| {
        let answered = serve(&fx, &server, &mut ev, *req);
        match req.dir() {
            IOREQ_READ => Some(answered.data),
            _ => {
                assert_eq!(answered.data, req.data, "a write leaves the data alone");
                None
            }
        }
    });
    assert_eq!(r.pio.accesses.load(Ordering::Relaxed), 8);
    let stats = ev.dispatcher().stats();
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.completed, 16);
}

#[test]
fn hostile_slots_complete_with_all_ones_and_touch_no_device() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let (mut ev, _stop) = lone_loop(&server, dispatcher(&r));
    let mut ptr_read = ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 5, 1, IOREQ_READ, 0x77);
    ptr_read.set_data_is_ptr(true);
    let cases = [
        // Sizes and counts the common request does not have, and that no request has.
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 0, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 16, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 3, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 1 << 31, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 0, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 1 << 31, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 8, u32::MAX, IOREQ_READ, 0),
        // A type nobody serves, a port above 0xffff.
        ioreq(0x42, MMIO_BASE, 4, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_PIO, 0x1_0000, 1, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_PIO, u64::MAX, 4, 1, IOREQ_READ, 0),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        assert_eq!(serve(&fx, &server, &mut ev, c).data, u64::MAX, "case {i}");
    }
    // Writes and pointer requests get no data back.
    let w = ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 5, 1, IOREQ_WRITE, 0x66);
    assert_eq!(serve(&fx, &server, &mut ev, w).data, 0x66);
    assert_eq!(serve(&fx, &server, &mut ev, ptr_read).data, 0x77);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 0);
    assert_eq!(r.pio.accesses.load(Ordering::Relaxed), 0);
    let stats = ev.dispatcher().stats();
    assert_eq!(stats.errors, cases.len() as u64 + 2);
    assert_eq!(stats.completed, cases.len() as u64 + 2);
}

#[test]
fn accesses_nobody_claims_read_all_ones_of_their_size() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let (mut ev, _stop) = lone_loop(&server, dispatcher(&r));
    for size in [1u32, 2, 4, 8] {
        let rd = ioreq(IOREQ_TYPE_COPY, 0xdead_0000, size, 1, IOREQ_READ, 0);
        assert_eq!(
            serve(&fx, &server, &mut ev, rd).data,
            crate::request::size_mask(size as u8)
        );
    }
    // Crossing the device's end is refused by the bus, the port nobody claims too.
    let rd = ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0xfe, 4, 1, IOREQ_READ, 0);
    assert_eq!(serve(&fx, &server, &mut ev, rd).data, 0xffff_ffff);
    let rd = ioreq(IOREQ_TYPE_PIO, 0x60, 2, 1, IOREQ_READ, 0);
    assert_eq!(serve(&fx, &server, &mut ev, rd).data, 0xffff);
    let w = ioreq(IOREQ_TYPE_PIO, 0x60, 2, 1, IOREQ_WRITE, 0x1234);
    assert_eq!(serve(&fx, &server, &mut ev, w).data, 0x1234);
    assert_eq!(ev.dispatcher().stats().errors, 7);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 0);
}

#[test]
fn rep_and_pointer_requests_are_served_the_long_way() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let (mut ev, _stop) = lone_loop(&server, dispatcher(&r));
    // outsb x 4 from guest 0x2000 to the FIFO port.
    r.ram.write_slice(b"wxyz", GuestAddress(0x2000)).unwrap();
    let w = ptr_ioreq(IOREQ_TYPE_PIO, FIFO_PORT, 1, 4, IOREQ_WRITE, 0x2000, false);
    serve(&fx, &server, &mut ev, w);
    assert_eq!(
        r.fifo.0.lock().unwrap().iter().copied().collect::<Vec<_>>(),
        b"wxyz"
    );
    // rep stosd of a value, 2 elements upwards.
    let w = ioreq(
        IOREQ_TYPE_COPY,
        MMIO_BASE + 0x20,
        4,
        2,
        IOREQ_WRITE,
        0x0403_0201,
    );
    serve(&fx, &server, &mut ev, w);
    assert_eq!(r.regs.bytes(0x20, 8), [1, 2, 3, 4, 1, 2, 3, 4]);
    assert_eq!(ev.dispatcher().stats().errors, 0);
}

#[test]
fn posted_writes_take_effect_before_the_request_that_follows_them() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Legacy);
    let (mut ev, _stop) = lone_loop(&server, dispatcher(&r));
    let w = RingWriter::new(server.buffered_ring().unwrap());
    assert!(w.push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, PIO_BASE as u32, 0x42));
    // The ring's event is not sent: the synchronous request finds the write in the ring.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_PIO, PIO_BASE, 1, 1, IOREQ_READ, 0),
    );
    fx.notify(VCPU0_PORT);
    let turn = ev.run_once(-1).unwrap();
    assert_eq!(turn.requests, 2, "the posted write and the read");
    assert_eq!(
        slot_of(&server, 0).data,
        0x42,
        "the read saw the write posted before it"
    );
    assert_eq!(server.buffered_ring().unwrap().pending_slots(), Ok(0));
}

#[test]
fn queue_notifications_of_userspace_ioeventfds_signal_them() {
    let r = rig();
    let (fx, server, kick) = server_with_userspace_kick();
    // One of the dispatcher's own too.
    let own = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let mut d = dispatcher(&r);
    d.add_ioeventfd(MMIO_BASE, 4, 5, own.clone());
    let (mut ev, _stop) = lone_loop(&server, d);
    let notify = |vq| ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, vq);
    serve(&fx, &server, &mut ev, notify(2));
    assert_eq!(kick.read().unwrap(), 1, "the server's eventfd is signalled");
    serve(&fx, &server, &mut ev, notify(5));
    assert_eq!(
        own.read().unwrap(),
        1,
        "the dispatcher's eventfd is signalled"
    );
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 0);
    // Another queue, and a read of the register, are the device's.
    serve(&fx, &server, &mut ev, notify(3));
    let rd = ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_READ, 0);
    serve(&fx, &server, &mut ev, rd);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 2);
    assert!(
        kick.read().is_err() && own.read().is_err(),
        "not signalled again"
    );
    assert_eq!(ev.dispatcher().stats().ioeventfd_hits, 2);
}

/// A device handler that panics on the single-loop path does not leave the vCPU waiting: the
/// request is answered (all ones for a read) and the vCPU notified while the panic unwinds.
#[test]
fn a_panicking_device_still_answers_the_vcpu() {
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO_BASE, 0x100, Arc::new(Panicking))
        .unwrap();
    bus.insert(IoSpace::Pio, PIO_BASE, 8, Arc::new(Panicking))
        .unwrap();
    for (type_, addr) in [(IOREQ_TYPE_COPY, MMIO_BASE), (IOREQ_TYPE_PIO, PIO_BASE)] {
        for dir in [IOREQ_READ, IOREQ_WRITE] {
            let (mut ev, _stop) = lone_loop(&server, Dispatcher::new(&bus));
            publish(&server, 0, ioreq(type_, addr, 4, 1, dir, 0x55));
            let notified = fx.state().notified.len();
            fx.notify(VCPU0_PORT);
            let unwound =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run_once(-1)));
            assert!(unwound.is_err(), "the device's panic goes on unwinding");
            let slot = slot_of(&server, 0);
            assert_eq!(slot.state(), STATE_IORESP_READY, "{type_}/{dir}: answered");
            let want = if dir == IOREQ_READ { u64::MAX } else { 0x55 };
            assert_eq!(
                slot.data, want,
                "{type_}/{dir}: a failed read reads all ones"
            );
            assert_eq!(
                fx.state().notified[notified..],
                [VCPU0_PORT],
                "{type_}/{dir}: the vCPU was notified"
            );
            // The unwinding left the port masked: the loop's thread would be gone with it.
            drop(ev);
            server.event_channel().unmask(VCPU0_PORT).unwrap();
        }
    }
}

/// A spurious event (the slot not READY: answered already, or never published) serves
/// nothing, and the port is re-armed; a slot taken by someone else is not served twice.
#[test]
fn an_event_without_a_ready_slot_serves_nothing_and_rearms_the_port() {
    let r = rig();
    let (fx, server) = enabled_server(2, BufIoreqMode::Off);
    let (mut ev, _stop) = lone_loop(&server, dispatcher(&r));
    let notified = fx.state().notified.len();
    fx.notify(VCPU0_PORT);
    // vCPU 1's request and event come after vCPU 0's spurious one, in the same read.
    publish(
        &server,
        1,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 4, 1, 1, IOREQ_READ, 0),
    );
    fx.notify(VCPU0_PORT + 1);
    let turn = ev.run_once(-1).unwrap();
    assert_eq!(turn.requests, 1);
    assert_eq!(slot_of(&server, 1).data, 4);
    assert_eq!(slot_of(&server, 0).state(), STATE_IOREQ_NONE);
    let s = fx.state();
    assert_eq!(
        s.notified[notified..],
        [VCPU0_PORT + 1],
        "only the served vCPU is told"
    );
    assert!(!s.masked.contains(&VCPU0_PORT) && !s.masked.contains(&(VCPU0_PORT + 1)));
    drop(s);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 1);
}
