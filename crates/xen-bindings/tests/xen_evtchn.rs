// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Event channels through the real `/dev/xen/evtchn` of a Xen dom0: a dom0-to-dom0
//! interdomain channel between two descriptors, notified both ways.
//!
//! The bounded waits below detect failures (an event that never comes); they are not used to
//! order anything.

use std::time::Duration;

use xen_bindings::evtchn::{Error, EventChannel};
use xen_bindings::DomId;
use xen_box_testing::in_dom0;

/// Long enough for a loaded TCG machine; only reached when an event is lost.
const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn interdomain_channel_delivers_both_ways() {
    if !in_dom0("interdomain_channel_delivers_both_ways") {
        return;
    }
    let a = EventChannel::open().unwrap();
    let b = EventChannel::open_nonblocking().unwrap();
    let pa = a.bind_unbound_port(DomId::DOM0).unwrap();
    let pb = b.bind_interdomain(DomId::DOM0, pa.port()).unwrap();
    assert_ne!(pa.port(), pb.port());
    // Xen marks a freshly bound interdomain port pending once, in case the remote end
    // notified before the binding existed; after that, nothing is pending.
    assert_eq!(b.wait_pending(Some(TIMEOUT)).unwrap(), Some(pb.port()));
    pb.unmask().unwrap();
    assert_eq!(b.pending().unwrap(), None);
    assert_eq!(a.wait_pending(Some(Duration::ZERO)).unwrap(), None);

    for round in 0..3 {
        pb.notify().unwrap();
        assert_eq!(
            a.wait_pending(Some(TIMEOUT)).unwrap(),
            Some(pa.port()),
            "round {round} b->a"
        );
        pa.unmask().unwrap();

        pa.notify().unwrap();
        assert_eq!(
            b.wait_pending(Some(TIMEOUT)).unwrap(),
            Some(pb.port()),
            "round {round} a->b"
        );
        // Unmasked through the handle this time.
        b.unmask(pb.port()).unwrap();
    }
    // Each notification was delivered once.
    assert_eq!(b.pending().unwrap(), None);
}

#[test]
fn dropping_a_port_unbinds_it() {
    if !in_dom0("dropping_a_port_unbinds_it") {
        return;
    }
    let a = EventChannel::open().unwrap();
    let b = EventChannel::open().unwrap();
    let pa = a.bind_unbound_port(DomId::DOM0).unwrap();
    let pb = b.bind_interdomain(DomId::DOM0, pa.port()).unwrap();
    // While connected, a second connection to the same remote port is refused.
    assert!(b.bind_interdomain(DomId::DOM0, pa.port()).is_err());
    drop(pb);
    // Unbinding the near end makes the remote port connectable again.
    let pb = b.bind_interdomain(DomId::DOM0, pa.port()).unwrap();
    pb.notify().unwrap();
    assert_eq!(a.wait_pending(Some(TIMEOUT)).unwrap(), Some(pa.port()));
    // A raw port is unbound explicitly.
    let raw = pb.into_raw();
    b.unbind(raw).unwrap();
    assert!(
        b.notify(raw).is_err(),
        "notify on an unbound port must fail"
    );
}

#[test]
fn restrict_and_reset() {
    if !in_dom0("restrict_and_reset") {
        return;
    }
    let a = EventChannel::open().unwrap();
    let b = EventChannel::open().unwrap();
    let pa = a.bind_unbound_port(DomId::DOM0).unwrap();
    let pb = b.bind_interdomain(DomId::DOM0, pa.port()).unwrap();
    // dom0 itself is not a valid restriction target.
    let err = b.restrict_domid(DomId::DOM0).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Ioctl { op: "restrict_domid", source, .. }
                if source.raw_os_error() == Some(libc::EINVAL)
        ),
        "{err:?}"
    );
    b.restrict_domid(DomId::new(1)).unwrap();
    // New bindings to anything but domain 1 are refused...
    let pa2 = a.bind_unbound_port(DomId::DOM0).unwrap();
    let err = b.bind_interdomain(DomId::DOM0, pa2.port()).unwrap_err();
    assert!(
        matches!(&err, Error::Ioctl { source, .. } if source.raw_os_error() == Some(libc::EACCES)),
        "{err:?}"
    );
    assert!(b.bind_unbound_port(DomId::DOM0).is_err());
    // ...while ports bound before the restriction keep working.
    pb.notify().unwrap();
    assert_eq!(a.wait_pending(Some(TIMEOUT)).unwrap(), Some(pa.port()));
    a.unmask(pa.port()).unwrap();

    // A reset drops queued events.
    let c = EventChannel::open_nonblocking().unwrap();
    let pc = c.bind_unbound_port(DomId::DOM0).unwrap();
    let pd = a.bind_interdomain(DomId::DOM0, pc.port()).unwrap();
    pd.notify().unwrap();
    assert_eq!(c.wait_pending(Some(TIMEOUT)).unwrap(), Some(pc.port()));
    c.unmask(pc.port()).unwrap();
    pd.notify().unwrap();
    // Wait until the event is queued before resetting (readiness, not time).
    assert!(wait_readable(&c));
    c.reset().unwrap();
    assert_eq!(c.pending().unwrap(), None);
}

/// Polls the descriptor for readability with the bounded timeout.
fn wait_readable(evtchn: &EventChannel) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: evtchn.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd whose descriptor `evtchn` keeps open during the call.
    let n = unsafe { libc::poll(&mut pfd, 1, TIMEOUT.as_millis() as i32) };
    n == 1
}

#[test]
fn virq_binding_is_released_on_drop() {
    if !in_dom0("virq_binding_is_released_on_drop") {
        return;
    }
    // VIRQ_ENOMEM (12) is a global VIRQ: only one port may be bound to it at a time, so a
    // second binding succeeds only if dropping the first one unbound it.
    const VIRQ_ENOMEM: u32 = 12;
    let a = EventChannel::open().unwrap();
    let first = a.bind_virq(VIRQ_ENOMEM).unwrap();
    assert!(
        a.bind_virq(VIRQ_ENOMEM).is_err(),
        "a global VIRQ binds once"
    );
    drop(first);
    let again = a.bind_virq(VIRQ_ENOMEM).unwrap();
    drop(again);
}

#[test]
fn epoll_driven_nonblocking_loop() {
    if !in_dom0("epoll_driven_nonblocking_loop") {
        return;
    }
    use std::os::fd::AsRawFd;
    let rx = EventChannel::open_nonblocking().unwrap();
    let tx = EventChannel::open().unwrap();
    let rx_port = rx.bind_unbound_port(DomId::DOM0).unwrap();
    let tx_port = tx.bind_interdomain(DomId::DOM0, rx_port.port()).unwrap();
    // SAFETY: plain syscall creating a new descriptor, closed below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0);
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    // SAFETY: `ep` and the evtchn descriptor are open and `ev` is a valid event.
    let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, rx.as_raw_fd(), &mut ev) };
    assert_eq!(rc, 0);
    for _ in 0..3 {
        tx_port.notify().unwrap();
        let mut out = [libc::epoll_event { events: 0, u64: 0 }];
        // SAFETY: `out` has room for the one event requested.
        let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 1, TIMEOUT.as_millis() as i32) };
        assert_eq!(n, 1, "no readiness within {TIMEOUT:?}");
        assert_eq!({ out[0].u64 }, 7);
        // Drain until the non-blocking descriptor runs dry.
        let mut got = Vec::new();
        while let Some(p) = rx.pending().unwrap() {
            got.push(p);
        }
        assert_eq!(got, [rx_port.port()]);
        rx_port.unmask().unwrap();
    }
    // SAFETY: `ep` is ours and not used afterwards.
    unsafe { libc::close(ep) };
}

/// Environment variable that turns `child_process_peer` into the peer of
/// `channel_between_two_processes`.
const PEER_PORT_ENV: &str = "XEN_BINDINGS_EVTCHN_PEER_PORT";

#[test]
fn channel_between_two_processes() {
    if !in_dom0("channel_between_two_processes") {
        return;
    }
    let evtchn = EventChannel::open().unwrap();
    let port = evtchn.bind_unbound_port(DomId::DOM0).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_peer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PEER_PORT_ENV, port.port().to_string())
        .spawn()
        .unwrap();
    // The child notifies first, then waits for our answer.
    let got = evtchn.wait_pending(Some(TIMEOUT)).unwrap();
    if got.is_none() {
        let _ = child.kill();
    }
    assert_eq!(got, Some(port.port()), "no event from the child process");
    port.unmask().unwrap();
    port.notify().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child process failed: {status}");
}

/// The child half of `channel_between_two_processes`; does nothing when run on its own.
#[test]
fn child_process_peer() {
    let Ok(port) = std::env::var(PEER_PORT_ENV) else {
        return;
    };
    let remote: u32 = port.parse().unwrap();
    let evtchn = EventChannel::open().unwrap();
    let local = evtchn.bind_interdomain(DomId::DOM0, remote).unwrap();
    // Xen's initial event on a fresh interdomain binding.
    assert_eq!(
        evtchn.wait_pending(Some(TIMEOUT)).unwrap(),
        Some(local.port())
    );
    local.unmask().unwrap();
    local.notify().unwrap();
    assert_eq!(
        evtchn.wait_pending(Some(TIMEOUT)).unwrap(),
        Some(local.port()),
        "no answer from the parent process"
    );
}
