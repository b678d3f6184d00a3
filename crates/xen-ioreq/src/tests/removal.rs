// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Removing registrations (a device hot-unplugged while its guest runs): every kernel
//! registration is deassigned, every userspace one leaves every loop, running ones included,
//! and the server keeps no handle on the eventfds.

use super::*;

/// The irq lines the fake Xen was asked to raise (`set_irq_level` with level 1), in order.
fn raised(fx: &FakeXen) -> Vec<u32> {
    fx.state()
        .ops
        .iter()
        .filter(|(op, _)| *op == XEN_DMOP_SET_IRQ_LEVEL)
        .map(|(_, b)| XenDmOpSetIrqLevel::from_bytes(b).unwrap())
        .filter(|a| a.level == 1)
        .map(|a| a.irq)
        .collect()
}

/// The MMIO ranges Xen routes to each server, in order.
fn sorted_ranges(fx: &FakeXen) -> Vec<(u16, u64, u64)> {
    let mut ranges = fx.state().ranges.clone();
    ranges.sort_unstable();
    ranges
}

/// A server of `vcpus` vCPUs, enabled, with a 0x200-byte window mapped at each of
/// `windows`; `kernel`: privcmd has irqfd and ioeventfd (else every registration is the
/// event loops').
fn enabled_server(vcpus: u32, windows: &[u64], kernel: bool) -> (FakeXen, IoreqServer<FakeXen>) {
    let (fx, privcmd, evtchn) = fake(vcpus);
    if !kernel {
        fx.state().eventfd_errno = libc::ENOTTY;
    }
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    for &base in windows {
        server
            .map_range(IoRange::mmio(base, 0x200).unwrap())
            .unwrap();
    }
    server.enable().unwrap();
    (fx, server)
}

/// Registers queues `0..queues` of the device at `base` as kernel doorbells.
fn kernel_doorbells<S: Sys>(server: &IoreqServer<S>, base: u64, queues: u32) -> Vec<Arc<EventFd>> {
    (0..queues)
        .map(|vq| {
            let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
            assert_eq!(
                server.add_ioeventfd(base, 4, vq, kick.clone()).unwrap(),
                NotifyPath::Kernel
            );
            kick
        })
        .collect()
}

/// A two-device guest on a kernel with privcmd irqfd and ioeventfd: removing the first
/// device's queues and interrupt deassigns exactly its registrations, gives its QueueNotify
/// register back, and leaves the second device's as they were.
#[test]
fn removing_a_device_deassigns_its_kernel_registrations_only() {
    let second = MMIO_BASE + 0x1000;
    let (fx, server) = enabled_server(2, &[MMIO_BASE, second], true);
    let mut first_fds = Vec::new();
    for base in [MMIO_BASE, second] {
        let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        assert_eq!(
            server.add_irqfd(irq.clone(), Interrupt::Line(40)).unwrap(),
            NotifyPath::Kernel
        );
        let kicks = kernel_doorbells(&server, base, 2);
        if base == MMIO_BASE {
            first_fds = kicks.into_iter().chain([irq]).collect();
        }
    }
    let registered_before = fx.state().registered.clone();
    assert_eq!(registered_before.len(), 6);
    let db = server.doorbell_server_id().unwrap();

    // The device leaves as `Guest::remove_device` makes it: window, then registrations.
    server
        .unmap_range(IoRange::mmio(MMIO_BASE, 0x200).unwrap())
        .unwrap();
    for vq in 0..2 {
        assert!(
            server.remove_ioeventfd(MMIO_BASE, vq).unwrap(),
            "queue {vq}"
        );
    }
    assert!(server.remove_irqfd(&first_fds[2]).unwrap());
    // Twice: nothing is registered any more.
    assert!(!server.remove_ioeventfd(MMIO_BASE, 0).unwrap());
    assert!(!server.remove_irqfd(&first_fds[2]).unwrap());

    let fds: Vec<u32> = first_fds.iter().map(|e| e.as_raw_fd() as u32).collect();
    let left = fx.state().registered.clone();
    assert_eq!(left.len(), 3, "the second device's: {left:?}");
    assert!(
        left.iter().all(|(_, fd)| !fds.contains(fd)),
        "none of the first device's: {left:?}"
    );
    for (i, e) in first_fds.iter().enumerate() {
        assert_eq!(
            Arc::strong_count(e),
            1,
            "eventfd {i}: the server keeps no handle"
        );
    }
    // The first register left the doorbell server; nothing of the first device is mapped.
    let main = server.id();
    assert_eq!(
        sorted_ranges(&fx),
        vec![
            (main, second, second + 0x4f),
            (main, second + 0x54, second + 0x1ff),
            (db, second + 0x50, second + 0x53),
        ]
    );
    // The second device's doorbells are still the kernel's.
    assert!(server.doorbells_in_kernel());
    server.shutdown().unwrap();
    assert!(fx.state().registered.is_empty());
}

/// A queue removed while its window stays mapped: the register goes back to the main server
/// once its last queue goes, so the guest's writes there reach the device again.
#[test]
fn the_last_doorbell_removed_gives_the_register_back_to_the_main_server() {
    let (fx, server) = enabled_server(1, &[MMIO_BASE], true);
    kernel_doorbells(&server, MMIO_BASE, 2);
    let db = server.doorbell_server_id().unwrap();
    let main = server.id();
    let holds = |fx: &FakeXen, id: u16| {
        fx.state()
            .ranges
            .iter()
            .any(|&(s, a, b)| s == id && a <= MMIO_BASE + 0x50 && MMIO_BASE + 0x53 <= b)
    };
    assert!(server.remove_ioeventfd(MMIO_BASE, 0).unwrap());
    assert!(holds(&fx, db), "queue 1 still rings there");
    assert!(!holds(&fx, main));
    assert!(server.remove_ioeventfd(MMIO_BASE, 1).unwrap());
    assert!(!holds(&fx, db));
    assert!(holds(&fx, main));
    assert!(fx.state().registered.is_empty());
}

/// Userspace doorbells (no privcmd ioeventfd): a removed queue is not rung any more; its
/// notification reaches the device instead.
#[test]
fn a_removed_userspace_doorbell_is_not_rung() {
    let r = rig();
    let (fx, server) = enabled_server(1, &[], false);
    let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 2, kick.clone()).unwrap(),
        NotifyPath::Userspace
    );
    let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
    assert!(server.remove_ioeventfd(MMIO_BASE, 2).unwrap());
    assert_eq!(Arc::strong_count(&kick), 1, "the server keeps no handle");
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 2),
    );
    fx.notify(101);
    assert_eq!(ev.run_once(0).unwrap().requests, 1);
    assert!(kick.read().is_err(), "not rung");
    assert_eq!(
        r.regs.accesses.load(Ordering::Relaxed),
        1,
        "the device got it"
    );
}

/// Userspace irqfds: one removed is watched by no loop (its eventfd is closed with the
/// caller's handle), and the loops go on serving the others by their own ids, not by their
/// place in the list (which removal changes).
#[test]
fn a_removed_userspace_irqfd_leaves_every_loop() {
    let r = rig();
    let (fx, server) = enabled_server(1, &[], false);
    let mut loops = [
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
    ];
    let a = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    let b = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    server.add_irqfd(a.clone(), Interrupt::Line(40)).unwrap();
    server.add_irqfd(b.clone(), Interrupt::Line(41)).unwrap();
    // Signalled, then removed before any loop turns: nobody injects it.
    a.write(1).unwrap();
    assert!(server.remove_irqfd(&a).unwrap());
    assert_eq!(
        Arc::strong_count(&a),
        1,
        "no loop and not the server holds it"
    );
    for (i, ev) in loops.iter().enumerate() {
        let watched = ev.watched_fds();
        assert!(!watched.contains(&a.as_raw_fd()), "loop {i}: {watched:?}");
        assert!(watched.contains(&b.as_raw_fd()), "loop {i}: {watched:?}");
    }
    assert_eq!(server.user_irqfds.len(), 1);
    for ev in loops.iter_mut() {
        assert_eq!(ev.run_once(0).unwrap().interrupts, 0);
    }
    // `b` was second in the list and is now first: still line 41.
    b.write(1).unwrap();
    let n: usize = loops
        .iter_mut()
        .map(|ev| ev.run_once(0).unwrap().interrupts)
        .sum();
    assert_eq!(n, 1);
    assert_eq!(raised(&fx), vec![41]);
    drop(loops);
    assert_eq!(
        server.user_irqfds.watchers(),
        0,
        "a loop that goes stops watching"
    );
}

/// Irqfds added and removed by one thread while two loops serve on their own threads: no
/// loop fails, injects a line that was never added or holds on to an eventfd, and the irqfd
/// that stays is served by every loop afterwards.
#[test]
fn irqfds_come_and_go_while_loops_serve() {
    const ROUNDS: u32 = 300;
    let r = rig();
    let (fx, server) = enabled_server(1, &[], false);
    let stays = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    server
        .add_irqfd(stays.clone(), Interrupt::Line(99))
        .unwrap();
    let removed = std::thread::scope(|sc| {
        let mut stoppers = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..2 {
            let mut ev = EventLoop::new(&server, dispatcher(&r)).unwrap();
            stoppers.push(ev.stopper());
            threads.push(sc.spawn(move || ev.run()));
        }
        let mut removed = Vec::new();
        for i in 0..ROUNDS {
            let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
            server
                .add_irqfd(irq.clone(), Interrupt::Line(40 + i % 8))
                .unwrap();
            irq.write(1).unwrap();
            assert!(server.remove_irqfd(&irq).unwrap());
            removed.push(irq);
        }
        for s in stoppers {
            s.write(1).unwrap();
        }
        for t in threads {
            t.join().unwrap().unwrap();
        }
        removed
    });
    for (i, e) in removed.iter().enumerate() {
        assert_eq!(Arc::strong_count(e), 1, "irqfd {i} is held by nobody else");
    }
    let lines = raised(&fx);
    assert!(lines.len() <= ROUNDS as usize);
    assert!(lines.iter().all(|l| (40..48).contains(l)), "{lines:?}");
    assert_eq!(server.user_irqfds.len(), 1);
    assert_eq!(server.user_irqfds.watchers(), 0);
    let before = lines.len();
    let mut loops = [
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
    ];
    for ev in loops.iter_mut() {
        assert!(ev.watched_fds().contains(&stays.as_raw_fd()));
        stays.write(1).unwrap();
        assert_eq!(ev.run_once(0).unwrap().interrupts, 1);
    }
    assert_eq!(raised(&fx)[before..], [99, 99]);
}

/// A kernel irqfd removed is deassigned in privcmd (which otherwise keeps it until the
/// server goes), and the server keeps no handle on it.
#[test]
fn a_removed_kernel_irqfd_is_deassigned() {
    let (fx, server) = enabled_server(1, &[], true);
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_irqfd(irq.clone(), Interrupt::Line(40)).unwrap(),
        NotifyPath::Kernel
    );
    assert!(server.remove_irqfd(&irq).unwrap());
    assert!(fx.state().registered.is_empty());
    assert_eq!(
        fx.state().lifecycle,
        vec!["assign irqfd".to_string(), "deassign irqfd".into()]
    );
    assert_eq!(Arc::strong_count(&irq), 1);
}
