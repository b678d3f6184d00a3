// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The single-loop path: a server's only loop blocks in `read` of the event channel, and
//! whatever must wake it (its `Stopper`, a second loop, a userspace irqfd) does so through the
//! loop's own event channel.
//!
//! Each test runs the blocking turn on a thread of its own and acts once the fake's read is
//! waiting. Were the wake-up missing, the read would wait for good: so after acting, each test
//! looks at whether the wake-up was queued, and if not, fires a vCPU port itself (`rescue`) so
//! that the turn returns and the test's assertions fail instead of hanging.

use std::sync::atomic::AtomicBool;
use std::thread;

use super::*;

/// The local port of vCPU 0 of the first server (the fake numbers local ports from 101).
const VCPU0_PORT: u32 = 101;

/// Whether the event channel's descriptor is in non-blocking mode.
fn nonblocking(server: &IoreqServer<FakeXen>) -> bool {
    // SAFETY: F_GETFL on a descriptor the server keeps open.
    let flags = unsafe { libc::fcntl(server.event_channel().as_raw_fd(), libc::F_GETFL) };
    flags & libc::O_NONBLOCK != 0
}

/// Waits until the fake's read has waited `n` times in all; then the number of reads done
/// (the waiting one not among them), for [`rescue`].
fn until_blocked(fx: &FakeXen, n: usize) -> usize {
    loop {
        let s = fx.state();
        if s.blocked_reads >= n {
            return s.evtchn_reads;
        }
        drop(s);
        thread::yield_now();
    }
}

/// Makes vCPU 0 read a register (its request and event), so that a turn blocked in read
/// returns, having served it.
fn unblock(fx: &FakeXen) {
    fx.publish_to(1, 0, ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 1, IOREQ_READ, 0));
    fx.fire(VCPU0_PORT);
}

/// After acting on a loop blocked in read (`reads` done before, from [`until_blocked`]): if
/// nothing was queued for the read to return, [`unblock`]s it instead of letting it wait for
/// good. Whether it had to.
fn rescue(fx: &FakeXen, reads: usize) -> bool {
    let s = fx.state();
    let woken = !s.pending.is_empty() || s.evtchn_reads > reads;
    drop(s);
    if !woken {
        unblock(fx);
    }
    !woken
}

/// For a turn that must not block in read: waits until `done` (the turn returned) or until the
/// fake's read waits, and then [`unblock`]s it. Whether it had to.
fn rescue_if_blocked(fx: &FakeXen, done: &AtomicBool) -> bool {
    loop {
        if done.load(Ordering::SeqCst) {
            return false;
        }
        if fx.state().blocked_reads > 0 {
            unblock(fx);
            return true;
        }
        thread::yield_now();
    }
}

#[test]
fn a_lone_loop_blocks_in_read_serves_and_its_stop_handle_wakes_it() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let stop = ev.stop_handle();
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 4, 4, 1, IOREQ_READ, 0),
    );
    fx.notify(VCPU0_PORT);

    // A turn without a timeout serves the request through a read of the event channel, which
    // it made blocking, and re-arms the port.
    let turn = ev.run_once(-1).unwrap();
    assert_eq!(turn.requests, 1);
    assert!(!turn.stopped);
    assert_eq!(slot_of(&server, 0).state(), STATE_IORESP_READY);
    assert!(!nonblocking(&server), "the loop blocks in read");
    assert!(!fx.state().masked.contains(&VCPU0_PORT), "re-armed");
    assert!(
        fx.state().notified.contains(&VCPU0_PORT),
        "the vCPU is told"
    );

    // Nothing pending: the next turn waits in read until the stopper writes its eventfd and
    // notifies the loop's own port.
    let rescued = thread::scope(|s| {
        let waker = s.spawn(|| {
            let reads = until_blocked(&fx, 1);
            stop.stop().unwrap();
            rescue(&fx, reads)
        });
        let turn = ev.run_once(-1).unwrap();
        (turn, waker.join().unwrap())
    });
    assert!(!rescued.1, "the stop woke the blocked read");
    assert!(rescued.0.stopped, "{:?}", rescued.0);
    // Stopped: the eventfd was read, the next turn waits again (a second stop ends it).
    drop(ev);
    assert!(
        nonblocking(&server),
        "a loop that goes leaves the descriptor as it was"
    );
}

#[test]
fn a_stop_asked_before_the_loop_blocks_is_not_lost() {
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let r = rig();
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let stop = ev.stop_handle();
    // Asked while the loop is not on the blocking path: only the eventfd is written.
    stop.stop().unwrap();
    let done = AtomicBool::new(false);
    let (turn, rescued) = thread::scope(|s| {
        let waker = s.spawn(|| rescue_if_blocked(&fx, &done));
        let turn = ev.run_once(-1).unwrap();
        done.store(true, Ordering::SeqCst);
        (turn, waker.join().unwrap())
    });
    assert!(!rescued, "the loop blocked with its stop asked");
    assert!(turn.stopped, "{turn:?}");
    assert_eq!(fx.state().blocked_reads, 0);
}

#[test]
fn a_second_loop_sends_the_blocked_one_back_to_epoll() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut a = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let _stop = a.stop_handle();
    let (turn, b, rescued) = thread::scope(|s| {
        let maker = s.spawn(|| {
            let reads = until_blocked(&fx, 1);
            let b = EventLoop::new(&server, dispatcher(&r)).unwrap();
            (b, rescue(&fx, reads))
        });
        let turn = a.run_once(-1).unwrap();
        let (b, rescued) = maker.join().unwrap();
        (turn, b, rescued)
    });
    assert!(!rescued, "the new loop woke the blocked one");
    assert_eq!(turn, Turn::default(), "a wake-up, not a stop");
    assert!(
        nonblocking(&server),
        "two loops: the descriptor is non-blocking"
    );

    // Both loops now serve through epoll: a request goes to one of them, and a turn without a
    // timeout of either does not block in read.
    let mut loops = [a, b];
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 4, 4, 1, IOREQ_READ, 0),
    );
    fx.notify(VCPU0_PORT);
    let served: usize = loops
        .iter_mut()
        .map(|ev| ev.run_once(0).unwrap().requests)
        .sum();
    assert_eq!(served, 1);
    assert_eq!(fx.state().blocked_reads, 1, "no read waited since");

    // The second loop gone, the first may block again.
    let [mut a, b] = loops;
    drop(b);
    let stop = a.stop_handle();
    let (turn, rescued) = thread::scope(|s| {
        let waker = s.spawn(|| {
            let reads = until_blocked(&fx, 2);
            stop.stop().unwrap();
            rescue(&fx, reads)
        });
        (a.run_once(-1).unwrap(), waker.join().unwrap())
    });
    assert!(!rescued);
    assert!(turn.stopped);
}

#[test]
fn a_userspace_irqfd_sends_the_blocked_loop_back_to_epoll() {
    let (fx, privcmd, evtchn) = fake(1);
    fx.state().eventfd_errno = libc::ENOTTY;
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.enable().unwrap();
    let r = rig();
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let (turn, rescued) = thread::scope(|s| {
        let adder = s.spawn(|| {
            let reads = until_blocked(&fx, 1);
            let path = server.add_irqfd(irq.clone(), Interrupt::Line(48)).unwrap();
            assert_eq!(path, NotifyPath::Userspace);
            rescue(&fx, reads)
        });
        (ev.run_once(-1).unwrap(), adder.join().unwrap())
    });
    assert!(!rescued, "adding the irqfd woke the blocked loop");
    assert_eq!(turn, Turn::default());
    assert!(nonblocking(&server));

    // The next turn without a timeout waits in epoll, which watches the irqfd.
    irq.write(1).unwrap();
    let turn = ev.run_once(-1).unwrap();
    assert_eq!(turn.interrupts, 1);
    assert_eq!(fx.state().blocked_reads, 1);
    let a: XenDmOpSetIrqLevel = fx.last_op(XEN_DMOP_SET_IRQ_LEVEL);
    assert_eq!((a.irq, a.level), (48, 1));
}

#[test]
fn a_loop_whose_eventfd_stopper_is_held_waits_in_epoll() {
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let r = rig();
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let stop = ev.stopper();
    let done = AtomicBool::new(false);
    let (turn, rescued) = thread::scope(|s| {
        let waker = s.spawn(|| {
            stop.write(1).unwrap();
            // A loop blocked in read would not see the write: wake it to fail, not hang.
            rescue_if_blocked(&fx, &done)
        });
        let turn = ev.run_once(-1).unwrap();
        done.store(true, Ordering::SeqCst);
        (turn, waker.join().unwrap())
    });
    assert!(!rescued, "the loop blocked in read");
    assert!(turn.stopped);
    assert_eq!(fx.state().blocked_reads, 0);
    assert!(nonblocking(&server));
}

#[test]
fn an_overflow_while_blocked_rearms_the_wake_up_port_and_rescans() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    let stop = ev.stop_handle();
    // Enter the blocking path with one request.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 4, 4, 1, IOREQ_READ, 0),
    );
    fx.notify(VCPU0_PORT);
    assert_eq!(ev.run_once(-1).unwrap().requests, 1);
    fx.consume(1, 0);
    // The kernel's queue overflows: a request's event and the stopper's are lost, and their
    // ports stay masked.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 4, 4, 1, IOREQ_READ, 0),
    );
    stop.stop().unwrap();
    {
        let mut s = fx.state();
        s.pending.clear();
        s.overflow = true;
    }
    fx.fire(VCPU0_PORT);
    let turn = ev.run_once(-1).unwrap();
    assert_eq!(turn.requests, 1, "the rescan served the request");
    assert!(turn.stopped, "the stop whose event was lost is seen");
    assert_eq!(fx.state().resets, 1);
    assert!(fx.state().masked.is_empty(), "{:?}", fx.state().masked);
}

#[test]
fn a_loop_that_cannot_make_its_wake_up_channel_is_stopped_in_epoll() {
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let r = rig();
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    // No more ports: the loopback channel cannot be made.
    fx.state().fail_bind_after = Some(0);
    let stop = ev.stop_handle();
    let lb = fx.state().loopback.clone();
    let fba = fx.state().fail_bind_after;
    assert!(lb.is_empty(), "no loopback channel: {lb:?} {fba:?}");
    let done = AtomicBool::new(false);
    let (turn, rescued) = thread::scope(|s| {
        let waker = s.spawn(|| {
            stop.stop().unwrap();
            rescue_if_blocked(&fx, &done)
        });
        let turn = ev.run_once(-1).unwrap();
        done.store(true, Ordering::SeqCst);
        (turn, waker.join().unwrap())
    });
    assert!(
        !rescued,
        "the loop blocked in read without a way to be woken"
    );
    assert!(turn.stopped);
    assert_eq!(fx.state().blocked_reads, 0);
    assert!(nonblocking(&server));
}

/// A device whose reads answer a constant, with nothing else to count.
struct Constant;

impl IoHandler for Constant {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0x5a);
        Ok(())
    }
    fn read_value(&self, _: u64, _: u8) -> Result<u64, DeviceError> {
        Ok(0x1234_5678)
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// The serving loop the stand-in below counts, out of line for callgrind's
/// `--toggle-collect='*callgrind_serve*'`.
#[inline(never)]
fn callgrind_serve<S: Sys, B: DeviceBus>(ev: &mut EventLoop<'_, S, B>) {
    ev.run().unwrap()
}

/// A local stand-in for the box's instruction count (docs/benchmarks.md): the single-loop path
/// serving 2 000 4-byte MMIO reads of one vCPU on the fake Xen, whose guest is another thread.
/// Not a check (ignored); run the release test binary under
/// `valgrind --tool=callgrind --separate-threads=yes --toggle-collect='*callgrind_serve*'`
/// with `--ignored --exact tests::blocking::single_loop_serving_for_callgrind`, and read the
/// self cost of `EventLoop::run` (the fake's system calls are functions of their own).
#[test]
#[ignore = "an instruction-count stand-in, run under callgrind"]
fn single_loop_serving_for_callgrind() {
    const READS: usize = 2000;
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO_BASE, 0x1000, Arc::new(Constant))
        .unwrap();
    let mut ev = EventLoop::new(&server, Dispatcher::new(&bus)).unwrap();
    let stop = ev.stop_handle();
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..READS {
                fx.publish_to(
                    1,
                    0,
                    ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
                );
                fx.notify(VCPU0_PORT);
                while fx.slot_state(1, 0) != STATE_IORESP_READY {
                    thread::yield_now();
                }
                fx.consume(1, 0);
            }
            stop.stop().unwrap();
        });
        callgrind_serve(&mut ev);
    });
    assert_eq!(ev.dispatcher().stats().completed, READS as u64);
}
