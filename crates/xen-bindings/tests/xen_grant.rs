// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Grants through the real `/dev/xen/gntalloc` and `/dev/xen/gntdev` of a Xen dom0: pages
//! dom0 grants to itself are mapped and copied back, and dropping releases them.

use std::time::Duration;

use xen_bindings::evtchn::EventChannel;
use xen_bindings::gntalloc::GntAlloc;
use xen_bindings::gntdev::{CopySegment, Error, ForeignPtr, GntDev, GrantStatus, UnmapNotify};
use xen_bindings::{DomId, XEN_PAGE_SIZE};
use xen_box_testing::in_dom0;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

#[test]
fn granted_pages_map_and_match_both_ways() {
    if !in_dom0("granted_pages_map_and_match_both_ways") {
        return;
    }
    let alloc = GntAlloc::open().unwrap();
    let pages = alloc.share(DomId::DOM0, 2, true).unwrap();
    assert_eq!(pages.grefs().len(), 2);
    let data = pattern(7, 2 * XEN_PAGE_SIZE);
    pages.write_at(0, &data).unwrap();

    let gntdev = GntDev::open().unwrap();
    let mapping = gntdev.map_domain(DomId::DOM0, pages.grefs(), true).unwrap();
    let mut seen = vec![0u8; 2 * XEN_PAGE_SIZE];
    mapping.read_at(0, &mut seen).unwrap();
    assert!(
        seen == data,
        "the mapping shows what the granting side wrote"
    );

    mapping
        .write_at(XEN_PAGE_SIZE + 100, b"written through gntdev")
        .unwrap();
    let mut back = [0u8; 22];
    pages.read_at(XEN_PAGE_SIZE + 100, &mut back).unwrap();
    assert_eq!(&back, b"written through gntdev");

    // A read-only mapping of the same grants reads the same bytes and refuses writes.
    let ro = gntdev
        .map_domain(DomId::DOM0, &pages.grefs()[1..], false)
        .unwrap();
    let mut first = [0u8; 22];
    ro.read_at(100, &mut first).unwrap();
    assert_eq!(&first, b"written through gntdev");
    assert!(matches!(ro.write_at(0, b"x"), Err(Error::ReadOnly)));
    assert!(matches!(
        mapping.read_at(2 * XEN_PAGE_SIZE - 1, &mut [0u8; 2]),
        Err(Error::OutOfBounds { .. })
    ));
}

#[test]
fn dropping_releases_grants_and_mappings() {
    if !in_dom0("dropping_releases_grants_and_mappings") {
        return;
    }
    // gntalloc refuses more than `limit` outstanding grants (1024 by default): going past it
    // one page at a time only works if every drop really releases.
    let limit: usize = std::fs::read_to_string("/sys/module/xen_gntalloc/parameters/limit")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    let rounds = limit.min(4096) + 16;
    let alloc = GntAlloc::open().unwrap();
    let gntdev = GntDev::open().unwrap();
    for i in 0..rounds {
        let pages = alloc
            .share(DomId::DOM0, 1, true)
            .unwrap_or_else(|e| panic!("round {i} of {rounds} (limit {limit}): {e}"));
        let mapping = gntdev.map_domain(DomId::DOM0, pages.grefs(), true).unwrap();
        mapping.write_at(0, &[i as u8]).unwrap();
        drop(mapping);
        drop(pages);
    }
}

#[test]
fn untrusted_arguments_get_typed_errors() {
    if !in_dom0("untrusted_arguments_get_typed_errors") {
        return;
    }
    let gntdev = GntDev::open().unwrap();
    assert!(matches!(
        gntdev.map_domain(DomId::DOM0, &[], true),
        Err(Error::Empty { .. })
    ));
    // A grant reference nobody issued: refused by the kernel or Xen, as an error, not a crash.
    let bogus = gntdev.map_domain(DomId::DOM0, &[0x00ff_fff0], true);
    assert!(bogus.is_err(), "mapping a bogus grant must fail");
    let alloc = GntAlloc::open().unwrap();
    assert!(matches!(
        alloc.share(DomId::DOM0, 0, true),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn grant_copy_reports_per_segment_status() {
    if !in_dom0("grant_copy_reports_per_segment_status") {
        return;
    }
    let alloc = GntAlloc::open().unwrap();
    let pages = alloc.share(DomId::DOM0, 1, true).unwrap();
    let gref = pages.grefs()[0];
    let gntdev = GntDev::open().unwrap();
    let at = |offset| ForeignPtr {
        domid: DomId::DOM0,
        gref,
        offset,
    };
    let mut readback = [0u8; 5];
    let statuses = gntdev
        .grant_copy(&mut [
            CopySegment::ToForeign {
                src: b"copy!",
                dest: at(64),
            },
            CopySegment::FromForeign {
                src: ForeignPtr {
                    domid: DomId::DOM0,
                    gref: 0x00ff_fff0,
                    offset: 0,
                },
                dest: &mut [0u8; 4],
            },
        ])
        .unwrap();
    assert_eq!(statuses[0], GrantStatus::Okay);
    assert!(
        !statuses[1].is_ok(),
        "bogus grant copied: {:?}",
        statuses[1]
    );
    let mut seen = [0u8; 5];
    pages.read_at(64, &mut seen).unwrap();
    assert_eq!(&seen, b"copy!");

    let statuses = gntdev
        .grant_copy(&mut [CopySegment::FromForeign {
            src: at(64),
            dest: &mut readback,
        }])
        .unwrap();
    assert_eq!(statuses, [GrantStatus::Okay]);
    assert_eq!(&readback, b"copy!");

    // A segment crossing the end of the page never reaches the kernel.
    assert!(matches!(
        gntdev.grant_copy(&mut [CopySegment::ToForeign {
            src: &[0u8; 8],
            dest: at((XEN_PAGE_SIZE - 4) as u16),
        }]),
        Err(Error::InvalidSegment { index: 0, .. })
    ));
}

#[test]
fn unmap_notify_clears_byte_and_signals() {
    if !in_dom0("unmap_notify_clears_byte_and_signals") {
        return;
    }
    let alloc = GntAlloc::open().unwrap();
    let pages = alloc.share(DomId::DOM0, 1, true).unwrap();
    pages.write_at(10, &[0xaa]).unwrap();

    // The mapping side's notification: an event on a port of ours.
    let rx = EventChannel::open().unwrap();
    let tx = EventChannel::open().unwrap();
    let rx_port = rx.bind_unbound_port(DomId::DOM0).unwrap();
    let tx_port = tx.bind_interdomain(DomId::DOM0, rx_port.port()).unwrap();

    let gntdev = GntDev::open().unwrap();
    let mapping = gntdev.map_domain(DomId::DOM0, pages.grefs(), true).unwrap();
    mapping
        .set_unmap_notify(UnmapNotify {
            clear_byte: Some(10),
            event_port: Some(tx_port.port()),
        })
        .unwrap();
    let mut b = [0u8; 1];
    pages.read_at(10, &mut b).unwrap();
    assert_eq!(b[0], 0xaa);
    drop(mapping);
    pages.read_at(10, &mut b).unwrap();
    assert_eq!(b[0], 0, "unmapping clears the notification byte");
    assert_eq!(
        rx.wait_pending(Some(Duration::from_secs(20))).unwrap(),
        Some(rx_port.port()),
        "unmapping signals the notification port"
    );
}
