// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the evtchn wrapper against the mocked syscall seam.

use super::*;
use crate::sys::MockSys;
use mockall::Sequence;

fn devnull() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

fn handle(sys: MockSys) -> EventChannel<MockSys> {
    EventChannel::from_parts(devnull(), sys)
}

/// Reads the `T` an ioctl argument points to.
fn arg<T: Copy>(p: *mut libc::c_void) -> T {
    // SAFETY: the wrapper under test passes a pointer to a live `T` for this request, and the
    // mock reads it during the call.
    unsafe { *(p as *const T) }
}

fn expect_unbind(sys: &mut MockSys, port: u32, seq: &mut Sequence) {
    sys.expect_ioctl()
        .withf(move |_, req, p| {
            *req == IOCTL_EVTCHN_UNBIND && arg::<IoctlEvtchnUnbind>(*p).port == port
        })
        .times(1)
        .in_sequence(seq)
        .returning(|_, _, _| Ok(0));
}

#[test]
fn bind_interdomain_marshals_and_unbinds_on_drop() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    sys.expect_ioctl()
        .withf(|_, req, p| {
            let a = arg::<IoctlEvtchnBindInterdomain>(*p);
            *req == IOCTL_EVTCHN_BIND_INTERDOMAIN && a.remote_domain == 3 && a.remote_port == 17
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(42));
    sys.expect_ioctl()
        .withf(|_, req, p| *req == IOCTL_EVTCHN_NOTIFY && arg::<IoctlEvtchnNotify>(*p).port == 42)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(0));
    expect_unbind(&mut sys, 42, &mut seq);
    let h = handle(sys);
    let port = h.bind_interdomain(DomId::new(3), 17).unwrap();
    assert_eq!(port.port(), 42);
    port.notify().unwrap();
    drop(port);
}

#[test]
fn bind_unbound_and_virq_marshal() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    sys.expect_ioctl()
        .withf(|_, req, p| {
            *req == IOCTL_EVTCHN_BIND_UNBOUND_PORT
                && arg::<IoctlEvtchnBindUnboundPort>(*p).remote_domain == 0x7ff0
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(5));
    sys.expect_ioctl()
        .withf(|_, req, p| {
            *req == IOCTL_EVTCHN_BIND_VIRQ && arg::<IoctlEvtchnBindVirq>(*p).virq == 9
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(6));
    // Ports are dropped in reverse declaration order.
    expect_unbind(&mut sys, 6, &mut seq);
    expect_unbind(&mut sys, 5, &mut seq);
    let h = handle(sys);
    let a = h.bind_unbound_port(DomId::SELF).unwrap();
    let b = h.bind_virq(9).unwrap();
    assert_eq!((a.port(), b.port()), (5, 6));
}

#[test]
fn into_raw_skips_unbind() {
    let mut sys = MockSys::new();
    sys.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_EVTCHN_BIND_VIRQ)
        .times(1)
        .returning(|_, _, _| Ok(8));
    // No unbind expectation: an unbind call would fail the test.
    let h = handle(sys);
    assert_eq!(h.bind_virq(1).unwrap().into_raw(), 8);
}

#[test]
fn bind_error_names_operation_and_errno() {
    let mut sys = MockSys::new();
    sys.expect_ioctl()
        .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EINVAL)));
    let err = handle(sys).bind_interdomain(DomId::new(1), 99).unwrap_err();
    match &err {
        Error::Ioctl { op, value, source } => {
            assert_eq!(*op, "bind_interdomain");
            assert_eq!(*value, 99);
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("bind_interdomain (99)"));
}

#[test]
fn reset_and_restrict() {
    let mut sys = MockSys::new();
    sys.expect_ioctl()
        .withf(|_, req, p| *req == IOCTL_EVTCHN_RESET && p.is_null())
        .times(1)
        .returning(|_, _, _| Ok(0));
    sys.expect_ioctl()
        .withf(|_, req, p| {
            *req == IOCTL_EVTCHN_RESTRICT_DOMID && arg::<IoctlEvtchnRestrictDomid>(*p).domid == 4
        })
        .times(1)
        .returning(|_, _, _| Ok(0));
    let h = handle(sys);
    h.reset().unwrap();
    h.restrict_domid(DomId::new(4)).unwrap();
}

#[test]
fn pending_reads_ports_and_handles_errors() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    sys.expect_read()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, buf, len| {
            assert_eq!(len, 12);
            let ports: [u32; 2] = [3, 11];
            // SAFETY: the wrapper passed a buffer of `len` (12) bytes; 8 are written.
            unsafe { std::ptr::copy_nonoverlapping(ports.as_ptr().cast::<u8>(), buf, 8) };
            Ok(8)
        });
    sys.expect_read()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EAGAIN)));
    sys.expect_read()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EFBIG)));
    sys.expect_read()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(3));
    let h = handle(sys);
    let mut buf = [0u32; 3];
    assert_eq!(h.read_pending(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], &[3, 11]);
    assert_eq!(h.pending().unwrap(), None);
    assert!(matches!(h.pending(), Err(Error::Overflow)));
    assert!(matches!(
        h.pending(),
        Err(Error::PartialTransfer { op: "read", len: 3 })
    ));
    // An empty buffer never reaches the kernel.
    assert_eq!(h.read_pending(&mut []).unwrap(), 0);
}

#[test]
fn pending_into_an_array_takes_whole_ports_that_fit() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    // What the kernel returns, in bytes, for a buffer of 4 ports (16 bytes).
    for ret in [4usize, 16, 0, 17, 18, 6, 20, usize::MAX] {
        sys.expect_read()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, buf, len| {
                assert_eq!(len, 16);
                let ports: [u32; 4] = [3, 11, 12, 13];
                // SAFETY: the wrapper passed a buffer of `len` (16) bytes.
                unsafe { std::ptr::copy_nonoverlapping(ports.as_ptr().cast::<u8>(), buf, 16) };
                Ok(ret)
            });
    }
    for errno in [libc::EAGAIN, libc::EFBIG, libc::EINTR] {
        sys.expect_read()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _| Err(io::Error::from_raw_os_error(errno)));
    }
    let h = handle(sys);
    let mut buf = [0u32; 4];
    assert_eq!(h.read_pending_into(&mut buf).unwrap(), [3]);
    assert_eq!(h.read_pending_into(&mut buf).unwrap(), [3, 11, 12, 13]);
    assert_eq!(h.read_pending_into(&mut buf).unwrap(), []);
    // Not whole ports, or more than the buffer holds: the kernel's answer makes no sense.
    for len in [17, 18, 6, 20, usize::MAX] {
        assert!(
            matches!(
                h.read_pending_into(&mut buf),
                Err(Error::PartialTransfer { op: "read", len: l }) if l == len
            ),
            "{len} bytes"
        );
    }
    // Nothing pending on a non-blocking descriptor, an overflow, an interrupted read.
    let ops = h.ops();
    assert_eq!(ops.read_pending_into(&mut buf).unwrap(), []);
    assert!(matches!(
        ops.read_pending_into(&mut buf),
        Err(Error::Overflow)
    ));
    assert!(matches!(
        ops.read_pending_into(&mut buf),
        Err(Error::Read(e)) if e.raw_os_error() == Some(libc::EINTR)
    ));
}

#[test]
fn notify_error_names_the_port_and_errno() {
    let mut sys = MockSys::new();
    sys.expect_ioctl()
        .times(1)
        .withf(|_, req, p| *req == IOCTL_EVTCHN_NOTIFY && arg::<IoctlEvtchnNotify>(*p).port == 9)
        .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EINVAL)));
    let h = handle(sys);
    assert!(matches!(
        h.ops().notify(9),
        Err(Error::Ioctl { op: "notify", value: 9, source }) if source.raw_os_error() == Some(libc::EINVAL)
    ));
}

#[test]
fn unmask_writes_port() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    sys.expect_write()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, buf, len| {
            assert_eq!(len, 4);
            let mut b = [0u8; 4];
            // SAFETY: the wrapper passed a readable buffer of 4 bytes.
            unsafe { std::ptr::copy_nonoverlapping(buf, b.as_mut_ptr(), 4) };
            assert_eq!(u32::from_ne_bytes(b), 77);
            Ok(4)
        });
    sys.expect_write()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EBADF)));
    sys.expect_write()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(2));
    let h = handle(sys);
    h.unmask(77).unwrap();
    assert!(matches!(h.unmask(78), Err(Error::Unmask { port: 78, .. })));
    assert!(matches!(
        h.ops().unmask(79),
        Err(Error::PartialTransfer {
            op: "write",
            len: 2
        })
    ));
}
