// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the gntdev wrapper against the mocked syscall seam.

use super::*;
use crate::sys::MockSys;
use mockall::Sequence;

fn devnull() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

/// A heap region standing in for a device mapping (leaked: the mock's munmap does not free).
fn fake_region(len: usize) -> usize {
    Box::leak(vec![0u8; len].into_boxed_slice()).as_mut_ptr() as usize
}

/// Reads `len` bytes of an ioctl argument.
fn arg_bytes(p: *mut c_void, len: usize) -> Vec<u8> {
    // SAFETY: the wrapper under test passes a buffer at least `len` bytes long, alive for the
    // duration of the mocked call.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

const INDEX: u64 = 0x5000;

fn expect_map(sys: &mut MockSys, seq: &mut Sequence, refs: Vec<(u32, u32)>) {
    sys.expect_ioctl()
        .withf(move |_, req, p| {
            let b = arg_bytes(*p, 16 + 8 * refs.len());
            *req == IOCTL_GNTDEV_MAP_GRANT_REF
                && u32_at(&b, 0) as usize == refs.len()
                && refs
                    .iter()
                    .enumerate()
                    .all(|(i, &(d, r))| u32_at(&b, 16 + 8 * i) == d && u32_at(&b, 20 + 8 * i) == r)
        })
        .times(1)
        .in_sequence(seq)
        .returning(|_, _, p| {
            // SAFETY: the argument holds the 8-byte index field at offset 8.
            unsafe { p.cast::<u8>().add(8).cast::<u64>().write_unaligned(INDEX) };
            Ok(0)
        });
}

fn expect_unmap(sys: &mut MockSys, seq: &mut Sequence, count: u32) {
    sys.expect_ioctl()
        .withf(move |_, req, p| {
            let b = arg_bytes(*p, 16);
            *req == IOCTL_GNTDEV_UNMAP_GRANT_REF
                && u64::from_ne_bytes(b[0..8].try_into().unwrap()) == INDEX
                && u32_at(&b, 8) == count
        })
        .times(1)
        .in_sequence(seq)
        .returning(|_, _, _| Ok(0));
}

#[test]
fn map_mmaps_and_unmaps_in_order() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    let region = fake_region(2 * XEN_PAGE_SIZE);
    expect_map(&mut sys, &mut seq, vec![(1, 8), (1, 9)]);
    sys.expect_mmap()
        .withf(|addr, len, prot, flags, _, off| {
            addr.is_null()
                && *len == 2 * XEN_PAGE_SIZE
                && *prot == libc::PROT_READ | libc::PROT_WRITE
                && *flags == libc::MAP_SHARED
                && *off == INDEX as i64
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _, _, _, _| Ok(region as *mut c_void));
    sys.expect_munmap()
        .withf(move |addr, len| *addr as usize == region && *len == 2 * XEN_PAGE_SIZE)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    expect_unmap(&mut sys, &mut seq, 2);

    let dev = GntDev::from_parts(devnull(), sys);
    let m = dev.map_domain(DomId::new(1), &[8, 9], true).unwrap();
    assert_eq!((m.len(), m.page_count()), (2 * XEN_PAGE_SIZE, 2));
    m.write_at(XEN_PAGE_SIZE + 10, b"xyz").unwrap();
    let mut out = [0u8; 3];
    m.read_at(XEN_PAGE_SIZE + 10, &mut out).unwrap();
    assert_eq!(&out, b"xyz");
    assert!(matches!(
        m.read_at(2 * XEN_PAGE_SIZE - 1, &mut out),
        Err(Error::OutOfBounds { offset, len: 3, size })
            if offset == 2 * XEN_PAGE_SIZE - 1 && size == 2 * XEN_PAGE_SIZE
    ));
    assert!(matches!(
        m.write_at(usize::MAX, b"a"),
        Err(Error::OutOfBounds { .. })
    ));
    drop(m);
}

#[test]
fn mmap_failure_releases_the_offset() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    expect_map(&mut sys, &mut seq, vec![(3, 1)]);
    sys.expect_mmap()
        .withf(|_, _, prot, _, _, _| *prot == libc::PROT_READ)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _, _, _| Err(io::Error::from_raw_os_error(libc::ENOMEM)));
    expect_unmap(&mut sys, &mut seq, 1);
    let dev = GntDev::from_parts(devnull(), sys);
    let err = dev.map_domain(DomId::new(3), &[1], false).unwrap_err();
    assert!(matches!(err, Error::Mmap { offset: INDEX, .. }), "{err:?}");
}

#[test]
fn untrusted_counts_are_rejected_before_the_kernel() {
    // No expectations: any syscall fails the test.
    let dev = GntDev::from_parts(devnull(), MockSys::new());
    assert!(matches!(dev.map(&[], true), Err(Error::Empty { .. })));
    let many = vec![0u32; MAX_GRANTS_PER_MAPPING + 1];
    assert!(matches!(
        dev.map_domain(DomId::new(1), &many, true),
        Err(Error::TooMany { count, .. }) if count == MAX_GRANTS_PER_MAPPING + 1
    ));
}

#[test]
fn read_only_mapping_refuses_writes_and_map_errors_are_typed() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    let region = fake_region(XEN_PAGE_SIZE);
    expect_map(&mut sys, &mut seq, vec![(2, 5)]);
    sys.expect_mmap()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _, _, _, _| Ok(region as *mut c_void));
    sys.expect_munmap()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    expect_unmap(&mut sys, &mut seq, 1);
    sys.expect_ioctl()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EINVAL)));
    let dev = GntDev::from_parts(devnull(), sys);
    let m = dev.map_domain(DomId::new(2), &[5], false).unwrap();
    assert!(matches!(m.write_at(0, b"a"), Err(Error::ReadOnly)));
    drop(m);
    let err = dev.map_domain(DomId::new(2), &[6], true).unwrap_err();
    assert!(matches!(
        &err,
        Error::Ioctl {
            op: "gntdev map_grant_ref",
            value: 1,
            ..
        }
    ));
}

#[test]
fn unmap_notify_and_max_grants_marshal() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    let region = fake_region(XEN_PAGE_SIZE);
    sys.expect_ioctl()
        .withf(|_, req, p| {
            *req == IOCTL_GNTDEV_SET_MAX_GRANTS && u32_at(&arg_bytes(*p, 4), 0) == 64
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(0));
    expect_map(&mut sys, &mut seq, vec![(1, 2)]);
    sys.expect_mmap()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _, _, _, _| Ok(region as *mut c_void));
    sys.expect_ioctl()
        .withf(|_, req, p| {
            let b = arg_bytes(*p, 16);
            *req == IOCTL_GNTDEV_SET_UNMAP_NOTIFY
                && u64::from_ne_bytes(b[0..8].try_into().unwrap()) == INDEX + 100
                && u32_at(&b, 8) == UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT
                && u32_at(&b, 12) == 7
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(0));
    sys.expect_munmap()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    expect_unmap(&mut sys, &mut seq, 1);
    let dev = GntDev::from_parts(devnull(), sys);
    dev.set_max_grants(64).unwrap();
    let m = dev.map_domain(DomId::new(1), &[2], true).unwrap();
    m.set_unmap_notify(UnmapNotify {
        clear_byte: Some(100),
        event_port: Some(7),
    })
    .unwrap();
    assert!(matches!(
        m.set_unmap_notify(UnmapNotify {
            clear_byte: Some(XEN_PAGE_SIZE),
            event_port: None,
        }),
        Err(Error::OutOfBounds { .. })
    ));
}

#[test]
fn grant_copy_marshals_segments_and_returns_statuses() {
    let mut sys = MockSys::new();
    sys.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_GNTDEV_GRANT_COPY)
        .times(1)
        .returning(|_, _, p| {
            // SAFETY: the argument is a live IoctlGntdevGrantCopy whose segments pointer covers
            // `count` segments for the duration of the call.
            unsafe {
                let arg = &*(p as *const IoctlGntdevGrantCopy);
                assert_eq!(arg.count, 3);
                let segs = std::slice::from_raw_parts_mut(arg.segments, 3);
                assert_eq!(segs[0].flags, GNTCOPY_DEST_GREF);
                assert_eq!(segs[0].len, 4);
                assert_eq!(
                    segs[0].dest.foreign,
                    GntdevCopyForeign {
                        ref_: 10,
                        offset: 8,
                        domid: 1
                    }
                );
                assert_eq!(segs[1].flags, GNTCOPY_SOURCE_GREF);
                assert_eq!(segs[1].len, 2);
                // Play the hypervisor for the local destination of segment 1.
                segs[1].dest.virt.cast::<u8>().write_bytes(0xab, 2);
                assert_eq!(segs[2].flags, GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF);
                segs[0].status = 0;
                segs[1].status = -3;
                segs[2].status = -99;
            }
            Ok(0)
        });
    let dev = GntDev::from_parts(devnull(), sys);
    let mut dest = [0u8; 2];
    let f = |gref, offset| ForeignPtr {
        domid: DomId::new(1),
        gref,
        offset,
    };
    let statuses = dev
        .grant_copy(&mut [
            CopySegment::ToForeign {
                src: b"data",
                dest: f(10, 8),
            },
            CopySegment::FromForeign {
                src: f(11, 0),
                dest: &mut dest,
            },
            CopySegment::ForeignToForeign {
                src: f(12, 0),
                dest: f(13, 0),
                len: 16,
            },
        ])
        .unwrap();
    assert_eq!(
        statuses,
        vec![
            GrantStatus::Okay,
            GrantStatus::BadGntref,
            GrantStatus::Other(-99)
        ]
    );
    assert_eq!(dest, [0xab, 0xab]);
}

#[test]
fn grant_copy_rejects_segments_crossing_the_page() {
    let dev = GntDev::from_parts(devnull(), MockSys::new());
    let src = [0u8; 8];
    let err = dev
        .grant_copy(&mut [CopySegment::ToForeign {
            src: &src,
            dest: ForeignPtr {
                domid: DomId::new(1),
                gref: 1,
                offset: (XEN_PAGE_SIZE - 4) as u16,
            },
        }])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSegment { index: 0, .. }));
    let big = vec![0u8; XEN_PAGE_SIZE + 1];
    let err = dev
        .grant_copy(&mut [CopySegment::ToForeign {
            src: &big,
            dest: ForeignPtr {
                domid: DomId::new(1),
                gref: 1,
                offset: 0,
            },
        }])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSegment { index: 0, .. }));
    assert!(dev.grant_copy(&mut []).unwrap().is_empty());
}

#[test]
fn grant_status_decoding() {
    assert!(GrantStatus::from_raw(0).is_ok());
    assert_eq!(GrantStatus::from_raw(-12), GrantStatus::Eagain);
    assert_eq!(GrantStatus::from_raw(-8), GrantStatus::PermissionDenied);
    assert_eq!(GrantStatus::from_raw(5), GrantStatus::Other(5));
}
