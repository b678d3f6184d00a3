// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the gntalloc wrapper against the mocked syscall seam.

use super::*;
use crate::sys::MockSys;
use mockall::Sequence;
use std::io;

fn devnull() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

fn arg_bytes(p: *mut c_void, len: usize) -> Vec<u8> {
    // SAFETY: the wrapper under test passes a buffer at least `len` bytes long, alive for the
    // duration of the mocked call.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec()
}

const INDEX: u64 = 0x3000;

fn expect_alloc(sys: &mut MockSys, seq: &mut Sequence, domid: u16, count: u32, flags: u16) {
    sys.expect_ioctl()
        .withf(move |_, req, p| {
            let b = arg_bytes(*p, 24);
            *req == IOCTL_GNTALLOC_ALLOC_GREF
                && b[0..2] == domid.to_ne_bytes()
                && b[2..4] == flags.to_ne_bytes()
                && b[4..8] == count.to_ne_bytes()
        })
        .times(1)
        .in_sequence(seq)
        .returning(move |_, _, p| {
            // SAFETY: the buffer has the index at 8 and room for `count` refs from 16.
            unsafe {
                let b = p.cast::<u8>();
                b.add(8).cast::<u64>().write_unaligned(INDEX);
                for i in 0..count as usize {
                    b.add(16 + 4 * i)
                        .cast::<u32>()
                        .write_unaligned(100 + i as u32);
                }
            }
            Ok(0)
        });
}

fn expect_dealloc(sys: &mut MockSys, seq: &mut Sequence, count: u32) {
    sys.expect_ioctl()
        .withf(move |_, req, p| {
            let b = arg_bytes(*p, 16);
            *req == IOCTL_GNTALLOC_DEALLOC_GREF
                && b[0..8] == INDEX.to_ne_bytes()
                && b[8..12] == count.to_ne_bytes()
        })
        .times(1)
        .in_sequence(seq)
        .returning(|_, _, _| Ok(0));
}

#[test]
fn share_maps_reports_grefs_and_releases_on_drop() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    let region = Box::leak(vec![0u8; 3 * XEN_PAGE_SIZE].into_boxed_slice()).as_mut_ptr() as usize;
    expect_alloc(&mut sys, &mut seq, 4, 3, GNTALLOC_FLAG_WRITABLE);
    sys.expect_mmap()
        .withf(|_, len, prot, flags, _, off| {
            *len == 3 * XEN_PAGE_SIZE
                && *prot == libc::PROT_READ | libc::PROT_WRITE
                && *flags == libc::MAP_SHARED
                && *off == INDEX as i64
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _, _, _, _| Ok(region as *mut c_void));
    sys.expect_ioctl()
        .withf(|_, req, p| {
            let b = arg_bytes(*p, 16);
            *req == IOCTL_GNTALLOC_SET_UNMAP_NOTIFY
                && b[0..8] == (INDEX + 5).to_ne_bytes()
                && b[8..12] == UNMAP_NOTIFY_CLEAR_BYTE.to_ne_bytes()
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(0));
    sys.expect_munmap()
        .withf(move |addr, len| *addr as usize == region && *len == 3 * XEN_PAGE_SIZE)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    expect_dealloc(&mut sys, &mut seq, 3);

    let alloc = GntAlloc::from_parts(devnull(), sys);
    let pages = alloc.share(DomId::new(4), 3, true).unwrap();
    assert_eq!(pages.grefs(), &[100, 101, 102]);
    assert_eq!(pages.len(), 3 * XEN_PAGE_SIZE);
    pages.write_at(2 * XEN_PAGE_SIZE, b"end").unwrap();
    let mut out = [0u8; 3];
    pages.read_at(2 * XEN_PAGE_SIZE, &mut out).unwrap();
    assert_eq!(&out, b"end");
    assert!(matches!(
        pages.write_at(3 * XEN_PAGE_SIZE - 2, b"end"),
        Err(Error::OutOfBounds { .. })
    ));
    pages
        .set_unmap_notify(UnmapNotify {
            clear_byte: Some(5),
            event_port: None,
        })
        .unwrap();
}

#[test]
fn read_only_grant_and_mmap_failure() {
    let mut sys = MockSys::new();
    let mut seq = Sequence::new();
    expect_alloc(&mut sys, &mut seq, 0, 1, 0);
    sys.expect_mmap()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _, _, _| Err(io::Error::from_raw_os_error(libc::EINVAL)));
    expect_dealloc(&mut sys, &mut seq, 1);
    let alloc = GntAlloc::from_parts(devnull(), sys);
    assert!(matches!(
        alloc.share(DomId::DOM0, 1, false),
        Err(Error::Mmap { .. })
    ));
}

#[test]
fn bad_counts_never_reach_the_kernel() {
    let alloc = GntAlloc::from_parts(devnull(), MockSys::new());
    assert!(matches!(
        alloc.share(DomId::new(1), 0, true),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        alloc.share(DomId::new(1), MAX_GRANTS_PER_MAPPING + 1, true),
        Err(Error::TooMany { .. })
    ));
}
