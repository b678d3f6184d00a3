// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests over the in-process fake guest.

use std::sync::atomic::Ordering;

use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestAddressSpace, GuestMemory, GuestMemoryBackend,
    GuestMemoryError, GuestMemoryMmap, GuestMemoryRegion, Permissions,
};

use crate::fake::FakeGuest;
use crate::*;

const DOMID: DomId = DomId::new(7);
/// A domain the fake guest is not.
const OTHER: DomId = DomId::new(8);
const PAGE: u64 = XEN_PAGE_SIZE as u64;

/// xorshift64*: a deterministic PRNG, enough for access patterns.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

fn our_error(e: &GuestMemoryError) -> &Error {
    Error::from_guest_memory_error(e).unwrap_or_else(|| panic!("not a typed error: {e:?}"))
}

// ---- whole-guest mode ----

#[test]
fn whole_guest_reads_writes_and_aliases_a_second_mapping() {
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    guest.write_guest(0x3ffe, b"across pages").unwrap();
    let ranges = [
        (GuestAddress(0), 32 * PAGE),
        (GuestAddress(40 * PAGE), 24 * PAGE),
    ];
    let mem = map_whole_guest(&guest, DOMID, &ranges).unwrap();
    assert_eq!(mem.num_regions(), 2);
    assert_eq!(mem.last_addr(), GuestAddress(64 * PAGE - 1));

    let mut buf = [0u8; 12];
    mem.read_slice(&mut buf, GuestAddress(0x3ffe)).unwrap();
    assert_eq!(&buf, b"across pages");

    // Write through one mapping, read through a second, independent one and through the guest.
    let second = map_whole_guest(&guest, DOMID, &ranges).unwrap();
    mem.write_obj(0x1122_3344_5566_7788u64, GuestAddress(41 * PAGE + 8))
        .unwrap();
    assert_eq!(
        second.read_obj::<u64>(GuestAddress(41 * PAGE + 8)).unwrap(),
        0x1122_3344_5566_7788
    );
    let mut raw = [0u8; 8];
    guest.read_guest(41 * PAGE + 8, &mut raw).unwrap();
    assert_eq!(u64::from_le_bytes(raw), 0x1122_3344_5566_7788);
    assert_eq!(guest.live_mappings(), 4);
    drop(mem);
    drop(second);
    assert_eq!(guest.live_mappings(), 0, "regions unmap on drop");
}

#[test]
fn whole_guest_rejects_unpopulated_frames_with_each_gfn() {
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    guest.set_populated(3, false);
    guest.set_populated(9, false);
    let err = map_whole_guest(&guest, DOMID, &[(GuestAddress(0), 16 * PAGE)]).unwrap_err();
    match err {
        Error::FramesUnavailable {
            domid,
            first,
            failed,
        } => {
            assert_eq!(domid, DOMID);
            assert_eq!(
                first,
                FrameError {
                    gfn: 3,
                    errno: libc::ENOENT
                }
            );
            assert_eq!(
                failed,
                vec![
                    FrameError {
                        gfn: 3,
                        errno: libc::ENOENT
                    },
                    FrameError {
                        gfn: 9,
                        errno: libc::ENOENT
                    }
                ]
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(guest.live_mappings(), 0, "the partial mapping is released");
}

#[test]
fn whole_guest_bad_input_gives_errors_not_panics() {
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    // Frames past the guest's end.
    let err = map_whole_guest(&guest, DOMID, &[(GuestAddress(8 * PAGE), 16 * PAGE)]).unwrap_err();
    assert!(
        matches!(err, Error::FramesUnavailable { ref failed, .. } if failed.len() == 8 && failed[0].gfn == 16 && failed[0].errno == libc::EINVAL),
        "{err}"
    );
    // Wrong domain: the call itself fails.
    let err = map_whole_guest(&guest, OTHER, &[(GuestAddress(0), PAGE)]).unwrap_err();
    assert!(matches!(err, Error::MapFrames { domid, .. } if domid == OTHER));
    // Unaligned, empty, overlapping.
    assert!(matches!(
        map_whole_guest(&guest, DOMID, &[(GuestAddress(1), PAGE)]),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        map_whole_guest(&guest, DOMID, &[]),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        map_whole_guest(
            &guest,
            DOMID,
            &[(GuestAddress(0), 2 * PAGE), (GuestAddress(PAGE), PAGE)]
        ),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        map_whole_guest(
            &guest,
            DOMID,
            &[(GuestAddress(u64::MAX - PAGE + 1), 2 * PAGE)]
        ),
        Err(Error::InvalidConfig(_) | Error::OutOfRange { .. })
    ));

    // Accesses past the end of guest memory.
    let mem = map_whole_guest(&guest, DOMID, &[(GuestAddress(0), 16 * PAGE)]).unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(
        mem.read_slice(&mut buf, GuestAddress(16 * PAGE)),
        Err(GuestMemoryError::InvalidGuestAddress(_))
    ));
    assert!(matches!(
        mem.read_slice(&mut buf, GuestAddress(16 * PAGE - 4)),
        Err(GuestMemoryError::PartialBuffer { completed: 4, .. })
    ));
    assert!(mem.read_obj::<u64>(GuestAddress(u64::MAX - 3)).is_err());
    let region = mem.find_region(GuestAddress(0)).unwrap();
    assert!(region
        .get_slice(vm_memory::MemoryRegionAddress(16 * PAGE - 4), 8)
        .is_err());
    assert!(region
        .get_slice(vm_memory::MemoryRegionAddress(u64::MAX), 8)
        .is_err());
}

#[test]
fn resources_map_and_alias() {
    let guest = FakeGuest::new(DOMID, 4).unwrap();
    guest.add_resource(Resource::IoreqServer(1), 2).unwrap();
    let a = ForeignResource::map(&guest, DOMID, Resource::IoreqServer(1), 0, 2).unwrap();
    let b = ForeignResource::map(&guest, DOMID, Resource::IoreqServer(1), 1, 1).unwrap();
    assert_eq!(a.len(), 2 * XEN_PAGE_SIZE);
    a.as_volatile_slice()
        .write_obj(0xabcdu16, XEN_PAGE_SIZE + 2)
        .unwrap();
    assert_eq!(b.as_volatile_slice().read_obj::<u16>(2).unwrap(), 0xabcd);
    assert!(matches!(
        ForeignResource::map(&guest, DOMID, Resource::IoreqServer(1), 1, 2),
        Err(Error::MapResource { nr_frames: 2, .. })
    ));
    assert!(matches!(
        ForeignResource::map(&guest, DOMID, Resource::IoreqServer(9), 0, 1),
        Err(Error::MapResource {
            resource: Resource::IoreqServer(9),
            ..
        })
    ));
    assert!(matches!(
        ForeignResource::map(&guest, DOMID, Resource::IoreqServer(1), 0, 0),
        Err(Error::MapResource { .. })
    ));
    drop((a, b));
    assert_eq!(guest.live_mappings(), 0);
}

// ---- lazy mode ----

fn lazy(
    guest: &FakeGuest,
    pages: u64,
    bucket_pages: usize,
    max: usize,
) -> LazyForeignMemory<FakeGuest> {
    LazyForeignMemory::new(
        guest.clone(),
        DOMID,
        pages * PAGE,
        CacheConfig {
            bucket_size: bucket_pages * XEN_PAGE_SIZE,
            max_buckets: max,
        },
    )
    .unwrap()
}

#[test]
fn lazy_cache_never_exceeds_its_bound_under_random_access() {
    const PAGES: u64 = 256;
    const BOUND: usize = 5;
    let guest = FakeGuest::new(DOMID, PAGES).unwrap();
    // Each page starts with its own number, so every read can be checked.
    for p in 0..PAGES {
        guest.write_guest(p * PAGE, &p.to_le_bytes()).unwrap();
    }
    let cache = lazy(&guest, PAGES, 4, BOUND);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut view = cache.view();
    let mut max_seen = 0;
    for i in 0..20_000u64 {
        // A new view every few accesses, as a device takes one per request; a view never
        // touches more buckets than the bound.
        if i % 3 == 0 {
            view = cache.view();
        }
        let page = rng.below(PAGES);
        match rng.below(4) {
            0 => {
                // A write straddling a page (and sometimes a bucket) boundary.
                let addr = page * PAGE + PAGE - 4;
                if addr + 8 <= PAGES * PAGE {
                    view.write_obj(i, GuestAddress(addr)).unwrap();
                    let mut raw = [0u8; 8];
                    guest.read_guest(addr, &mut raw).unwrap();
                    assert_eq!(u64::from_le_bytes(raw), i);
                    // Restore the page numbers the reads below check.
                    guest
                        .write_guest(page * PAGE + PAGE, &(page + 1).to_le_bytes())
                        .ok();
                    view = cache.view();
                }
            }
            _ => {
                let got: u64 = view.read_obj(GuestAddress(page * PAGE)).unwrap();
                assert_eq!(got, page, "access {i}");
            }
        }
        let live = guest.live_mappings();
        assert!(live <= BOUND, "{live} mappings alive, bound {BOUND}");
        assert_eq!(cache.stats().live, live);
        max_seen = max_seen.max(live);
    }
    assert_eq!(max_seen, BOUND, "the stress reached the bound");
    let stats = cache.stats();
    assert!(stats.evictions > 1000, "{stats:?}");
    assert!(stats.hits > 1000, "{stats:?}");
    drop(view);
    drop(cache);
    assert_eq!(guest.live_mappings(), 0);
}

#[test]
fn concurrent_views_share_the_cache_within_its_bound() {
    const PAGES: u64 = 128;
    const BOUND: usize = 8;
    let guest = FakeGuest::new(DOMID, PAGES).unwrap();
    for p in 0..PAGES {
        guest.write_guest(p * PAGE + 8, &p.to_le_bytes()).unwrap();
    }
    let cache = lazy(&guest, PAGES, 2, BOUND);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (cache, guest) = (cache.clone(), guest.clone());
            s.spawn(move || {
                let mut rng = Rng(0x1234_5678 + t);
                for _ in 0..3000 {
                    // Each view pins at most one bucket: 4 threads never exhaust 8 buckets.
                    let page = rng.below(PAGES);
                    let view = cache.memory();
                    assert_eq!(
                        view.read_obj::<u64>(GuestAddress(page * PAGE + 8)).unwrap(),
                        page
                    );
                    let live = guest.live_mappings();
                    assert!(live <= BOUND, "{live} mappings alive, bound {BOUND}");
                }
            });
        }
    });
    assert!(cache.stats().evictions > 0);
}

#[test]
fn pinned_buckets_are_not_evicted_and_full_pins_give_a_typed_error() {
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    guest.write_guest(0, b"first").unwrap();
    let cache = lazy(&guest, 64, 4, 2);
    let view = cache.view();
    let slice = view
        .slice_at(GuestAddress(0), 5, Permissions::Read)
        .unwrap();
    view.read_obj::<u8>(GuestAddress(4 * PAGE)).unwrap();
    assert_eq!(view.pinned(), 2);

    // Both buckets are pinned: a third cannot be mapped without exceeding the bound.
    let other = cache.view();
    let err = other.read_obj::<u8>(GuestAddress(8 * PAGE)).unwrap_err();
    assert!(
        matches!(our_error(&err), Error::CacheExhausted { bound: 2 }),
        "{err}"
    );
    assert!(!other.check_range(GuestAddress(8 * PAGE), 1, Permissions::Read));

    // The slice stays valid: nothing was unmapped under it, even across an invalidation.
    cache.invalidate();
    let mut buf = [0u8; 5];
    slice.copy_to(&mut buf[..]);
    assert_eq!(&buf, b"first");
    assert_eq!(
        guest.live_mappings(),
        2,
        "pinned buckets outlive invalidation"
    );

    drop(view);
    assert_eq!(guest.live_mappings(), 0);
    assert_eq!(other.read_obj::<u8>(GuestAddress(8 * PAGE)).unwrap(), 0);
}

#[test]
fn invalidation_remaps_the_new_physmap() {
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    guest.write_guest(2 * PAGE, b"two").unwrap();
    guest.write_guest(9 * PAGE, b"nine").unwrap();
    let cache = lazy(&guest, 16, 4, 4);
    let mut buf = [0u8; 3];
    cache
        .view()
        .read_slice(&mut buf, GuestAddress(2 * PAGE))
        .unwrap();
    assert_eq!(&buf, b"two");

    // The guest's physmap changes: gfn 2 is now backed by what was gfn 9's page.
    guest.exchange_frames(2, 9);
    cache
        .view()
        .read_slice(&mut buf, GuestAddress(2 * PAGE))
        .unwrap();
    assert_eq!(&buf, b"two", "stale until invalidated, as with Xen");
    let calls = guest.map_calls();
    cache.invalidate();
    assert_eq!(
        guest.live_mappings(),
        0,
        "unpinned buckets unmapped at once"
    );
    let mut buf = [0u8; 4];
    cache
        .view()
        .read_slice(&mut buf, GuestAddress(2 * PAGE))
        .unwrap();
    assert_eq!(&buf, b"nine");
    assert_eq!(guest.map_calls(), calls + 1);
    assert_eq!(cache.stats().invalidations, 1);
}

#[test]
fn lazy_unpopulated_frames_and_out_of_range_give_typed_errors() {
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    guest.set_populated(5, false);
    guest
        .write_guest(4 * PAGE + PAGE - 2, &[0xaa, 0xbb])
        .unwrap();
    guest.write_guest(6 * PAGE, &[0xcc]).unwrap();
    let cache = lazy(&guest, 16, 4, 4);
    let view = cache.view();

    // The bucket maps; its other pages work.
    assert_eq!(view.read_obj::<u8>(GuestAddress(6 * PAGE)).unwrap(), 0xcc);
    assert_eq!(
        view.read_obj::<u16>(GuestAddress(5 * PAGE - 2)).unwrap(),
        0xbbaa
    );
    // The hole itself: a typed error naming the frame.
    let err = view
        .read_obj::<u32>(GuestAddress(5 * PAGE + 16))
        .unwrap_err();
    match our_error(&err) {
        Error::FrameNotMapped {
            domid,
            addr,
            gfn,
            errno,
        } => {
            assert_eq!(
                (*domid, *addr, *gfn, *errno),
                (DOMID, 5 * PAGE + 16, 5, libc::ENOENT)
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    // A read running into the hole stops before it.
    let mut buf = [0u8; 8];
    let err = view
        .read_slice(&mut buf, GuestAddress(5 * PAGE - 4))
        .unwrap_err();
    assert!(
        matches!(err, GuestMemoryError::PartialBuffer { completed: 4, .. }),
        "{err}"
    );
    assert!(!view.check_range(GuestAddress(4 * PAGE), 2 * XEN_PAGE_SIZE, Permissions::Read));
    assert!(view.check_range(GuestAddress(6 * PAGE), 2 * XEN_PAGE_SIZE, Permissions::Read));

    // Past the end of guest memory.
    assert!(matches!(
        view.read_obj::<u8>(GuestAddress(16 * PAGE)),
        Err(GuestMemoryError::InvalidGuestAddress(GuestAddress(a))) if a == 16 * PAGE
    ));
    assert!(matches!(
        view.slice_at(GuestAddress(u64::MAX), 1, Permissions::Read),
        Err(Error::OutOfRange { .. })
    ));
    let err = view
        .read_slice(&mut buf, GuestAddress(16 * PAGE - 4))
        .unwrap_err();
    assert!(
        matches!(err, GuestMemoryError::PartialBuffer { completed: 4, .. }),
        "{err}"
    );
    // Zero-length accesses touch nothing.
    assert_eq!(view.read(&mut [], GuestAddress(u64::MAX)).unwrap(), 0);

    // Bad configuration.
    let bad = |bucket_size, max_buckets, size| {
        LazyForeignMemory::new(
            guest.clone(),
            DOMID,
            size,
            CacheConfig {
                bucket_size,
                max_buckets,
            },
        )
    };
    assert!(matches!(bad(0, 4, PAGE), Err(Error::InvalidConfig(_))));
    assert!(matches!(bad(100, 4, PAGE), Err(Error::InvalidConfig(_))));
    assert!(matches!(
        bad(XEN_PAGE_SIZE, 0, PAGE),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        bad(XEN_PAGE_SIZE, 4, 0),
        Err(Error::InvalidConfig(_))
    ));

    // A mapping call that fails entirely (wrong domain).
    let wrong = LazyForeignMemory::new(guest.clone(), OTHER, PAGE, CacheConfig::default()).unwrap();
    let err = wrong.view().read_obj::<u8>(GuestAddress(0)).unwrap_err();
    assert!(matches!(our_error(&err), Error::MapFrames { .. }), "{err}");
}

#[test]
fn lazy_last_bucket_is_cut_at_the_end_of_memory() {
    let guest = FakeGuest::new(DOMID, 6).unwrap();
    let cache = lazy(&guest, 6, 4, 2);
    let view = cache.view();
    view.write_obj(0x55u8, GuestAddress(6 * PAGE - 1)).unwrap();
    assert_eq!(
        view.read_obj::<u8>(GuestAddress(6 * PAGE - 1)).unwrap(),
        0x55
    );
    assert!(view.read_obj::<u16>(GuestAddress(6 * PAGE - 1)).is_err());
}

#[test]
fn lazy_bucket_at_the_top_of_the_address_space_does_not_overflow() {
    // A caller may declare guest memory reaching the top of the 64-bit space; the last
    // bucket's end must be cut there, not computed past 2^64 (a panic, or in release builds
    // a wrapped end and an empty frame list).
    let guest = FakeGuest::new(DOMID, 8).unwrap();
    let top = u64::MAX - (PAGE - 1);
    let cache = LazyForeignMemory::new(
        guest.clone(),
        DOMID,
        top,
        CacheConfig {
            bucket_size: 4 * PAGE as usize,
            max_buckets: 2,
        },
    )
    .unwrap();
    let view = cache.view();
    let err = view.read_obj::<u32>(GuestAddress(top - PAGE)).unwrap_err();
    match our_error(&err) {
        Error::FrameNotMapped { gfn, .. } => assert_eq!(*gfn, (top - PAGE) / PAGE),
        e => panic!("unexpected error {e}"),
    }
    // Memory that exists still works through the same cache.
    view.write_obj(7u8, GuestAddress(PAGE)).unwrap();
    let mut b = [0u8];
    guest.read_guest(PAGE, &mut b).unwrap();
    assert_eq!(b[0], 7);
}

#[test]
fn address_space_gives_fresh_views() {
    let guest = FakeGuest::new(DOMID, 8).unwrap();
    let cache = lazy(&guest, 8, 1, 1);
    {
        let mem = cache.memory();
        mem.write_obj(1u8, GuestAddress(0)).unwrap();
        assert_eq!(guest.live_mappings(), 1);
    }
    // The previous view is gone, so its bucket can be evicted for this one.
    let mem = cache.memory();
    mem.write_obj(2u8, GuestAddress(5 * PAGE)).unwrap();
    assert_eq!(guest.live_mappings(), 1);
    assert_eq!(cache.stats().evictions, 1);
}

// ---- grant mode ----

#[test]
fn grant_addresses_round_trip() {
    assert_eq!(grant_addr(5, 0x10), 0x8000_0000_0000_5010);
    assert_eq!(split_grant_addr(0x8000_0000_0000_5010).unwrap(), (5, 0x10));
    assert_eq!(
        split_grant_addr(grant_addr(u32::MAX, 0xfff)).unwrap(),
        (u32::MAX, 0xfff)
    );
    assert!(matches!(
        split_grant_addr(0x5010),
        Err(Error::NotAGrantAddress { addr: 0x5010 })
    ));
    assert!(matches!(
        split_grant_addr(GRANT_ADDR_FLAG | (1 << 44)),
        Err(Error::NotAGrantAddress { .. })
    ));
}

#[test]
fn grants_map_once_span_consecutive_refs_and_release() {
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    let gref = guest.grant_range(3, 2, true);
    guest.write_guest(4 * PAGE - 3, b"split").unwrap();
    let grants = GrantMemory::new(guest.clone(), DOMID, 8).unwrap();
    let view = grants.view();
    let mut buf = [0u8; 5];
    view.read_slice(&mut buf, GuestAddress(grant_addr(gref, 0xffd)))
        .unwrap();
    assert_eq!(&buf, b"split");
    let calls = guest.map_calls();
    for _ in 0..100 {
        view.read_slice(&mut buf, GuestAddress(grant_addr(gref, 0xffd)))
            .unwrap();
    }
    drop(view);
    for _ in 0..100 {
        grants
            .view()
            .read_slice(&mut buf, GuestAddress(grant_addr(gref, 0xffd)))
            .unwrap();
    }
    assert_eq!(guest.map_calls(), calls, "hot grants are not remapped");

    let view = grants.view();
    view.write_obj(0x77u8, GuestAddress(grant_addr(gref + 1, 9)))
        .unwrap();
    let mut b = [0u8];
    guest.read_guest(4 * PAGE + 9, &mut b).unwrap();
    assert_eq!(b[0], 0x77);
    drop(view);

    assert_eq!(
        guest.live_mappings(),
        3,
        "two read-only mappings and one writable"
    );
    grants.release(gref);
    assert_eq!(guest.live_mappings(), 2);
    grants.release(gref + 1);
    assert_eq!(guest.live_mappings(), 0);
}

#[test]
fn revoked_readonly_and_bogus_grants_give_typed_errors() {
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    let ro = guest.grant(2, false);
    let rw = guest.grant(3, true);
    let grants = GrantMemory::new(guest.clone(), DOMID, 8).unwrap();
    let view = grants.view();

    // A read-only grant reads, but cannot be mapped for writing.
    view.read_obj::<u32>(GuestAddress(grant_addr(ro, 0)))
        .unwrap();
    let err = view
        .write_obj(1u32, GuestAddress(grant_addr(ro, 0)))
        .unwrap_err();
    match our_error(&err) {
        Error::MapGrant { gref, source, .. } => {
            assert_eq!(*gref, ro);
            assert_eq!(source.raw_os_error(), Some(libc::EPERM));
        }
        e => panic!("unexpected {e:?}"),
    }

    // A revoked grant.
    guest.revoke(rw);
    let err = view
        .read_obj::<u32>(GuestAddress(grant_addr(rw, 0)))
        .unwrap_err();
    assert!(
        matches!(our_error(&err), Error::MapGrant { gref, .. } if *gref == rw),
        "{err}"
    );
    // A reference never granted, and an address that is no grant address at all.
    let err = view
        .read_obj::<u32>(GuestAddress(grant_addr(9999, 0)))
        .unwrap_err();
    assert!(matches!(
        our_error(&err),
        Error::MapGrant { gref: 9999, .. }
    ));
    let err = view.read_obj::<u32>(GuestAddress(0x1000)).unwrap_err();
    assert!(matches!(
        our_error(&err),
        Error::NotAGrantAddress { addr: 0x1000 }
    ));
    // A buffer running past its last granted page.
    let err = view
        .read_obj::<u64>(GuestAddress(grant_addr(ro, 0xffc)))
        .unwrap_err();
    assert!(
        matches!(err, GuestMemoryError::PartialBuffer { completed: 4, .. }),
        "{err}"
    );
    // The mapping of a grant revoked after mapping stays usable while cached (Xen keeps the
    // page granted until it is unmapped).
    let rw2 = guest.grant(4, true);
    view.write_obj(5u8, GuestAddress(grant_addr(rw2, 0)))
        .unwrap();
    guest.revoke(rw2);
    assert_eq!(
        view.read_obj::<u8>(GuestAddress(grant_addr(rw2, 0)))
            .unwrap_or(5),
        5
    );
}

#[test]
fn grant_cache_is_bounded() {
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    let first = guest.grant_range(0, 64, true);
    let grants = GrantMemory::new(guest.clone(), DOMID, 3).unwrap();
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let g = first + rng.below(64) as u32;
        let view = grants.view();
        view.write_obj(g, GuestAddress(grant_addr(g, 8))).unwrap();
        assert_eq!(
            view.read_obj::<u32>(GuestAddress(grant_addr(g, 8)))
                .unwrap(),
            g
        );
        assert!(guest.live_mappings() <= 3);
    }
}

// ---- virtio-queue ----

/// Where the parts of a split virtqueue are, and the buffers of one chain.
struct Layout {
    desc: u64,
    avail: u64,
    used: u64,
    /// (address, length, device-writable) of each descriptor of the chain.
    bufs: Vec<(u64, u32, bool)>,
}

const QSIZE: u16 = 8;
const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;

/// Lays a one-chain virtqueue out through `mem` (as a guest driver would), walks it with
/// virtio-queue, checks the chain, reads the readable bytes, fills the writable ones, completes
/// the chain and returns what was read.
fn walk_chain<M: GuestMemory>(mem: &M, l: &Layout, request: &[u8]) -> Vec<u8> {
    let mut off = 0;
    for (i, &(addr, len, write)) in l.bufs.iter().enumerate() {
        let last = i + 1 == l.bufs.len();
        let flags =
            if last { 0 } else { VIRTQ_DESC_F_NEXT } | if write { VIRTQ_DESC_F_WRITE } else { 0 };
        // Descriptors in reverse table order, to exercise `next`.
        let slot = (QSIZE as usize - 1 - i) as u64;
        let next = if last { 0 } else { QSIZE - 2 - i as u16 };
        let desc = Descriptor::new(addr, len, flags, next);
        mem.write_obj(desc, GuestAddress(l.desc + slot * 16))
            .unwrap();
        if !write {
            let n = (len as usize).min(request.len() - off);
            mem.write_slice(&request[off..off + n], GuestAddress(addr))
                .unwrap();
            off += n;
        }
    }
    // avail: flags, idx = 1, ring[0] = head.
    mem.write_obj(0u16, GuestAddress(l.avail)).unwrap();
    mem.write_obj(QSIZE - 1, GuestAddress(l.avail + 4)).unwrap();
    mem.store(1u16, GuestAddress(l.avail + 2), Ordering::Release)
        .unwrap();
    mem.write_obj(0u16, GuestAddress(l.used + 2)).unwrap();

    let mut q = Queue::new(QSIZE).unwrap();
    q.set_size(QSIZE);
    q.try_set_desc_table_address(GuestAddress(l.desc)).unwrap();
    q.try_set_avail_ring_address(GuestAddress(l.avail)).unwrap();
    q.try_set_used_ring_address(GuestAddress(l.used)).unwrap();
    q.set_ready(true);
    assert!(q.is_valid(mem));

    let chain = q.iter(mem).unwrap().next().expect("one chain");
    assert_eq!(chain.head_index(), QSIZE - 1);
    let descs: Vec<_> = chain.clone().collect();
    assert_eq!(descs.len(), l.bufs.len());
    for (d, &(addr, len, write)) in descs.iter().zip(&l.bufs) {
        assert_eq!(
            (d.addr().raw_value(), d.len(), d.is_write_only()),
            (addr, len, write)
        );
    }
    let mut reader = chain.clone().reader(mem).unwrap();
    let mut got = vec![0u8; reader.available_bytes()];
    std::io::Read::read_exact(&mut reader, &mut got).unwrap();
    let mut writer = chain.clone().writer(mem).unwrap();
    let reply: Vec<u8> = got.iter().rev().copied().collect();
    let n = std::io::Write::write(&mut writer, &reply).unwrap();
    q.add_used(mem, chain.head_index(), n as u32).unwrap();
    assert_eq!(q.used_idx(mem, Ordering::Acquire).unwrap().0, 1);
    assert!(q.iter(mem).unwrap().next().is_none());
    got
}

fn two_page_layout(base: u64) -> Layout {
    Layout {
        desc: base,
        avail: base + 0x100,
        used: base + 0x200,
        // Readable header straddling a page (and bucket) boundary, a readable body, a
        // writable reply.
        bufs: vec![
            (base + PAGE - 6, 12, false),
            (base + 3 * PAGE, 100, false),
            (base + 5 * PAGE + 8, 112, true),
        ],
    }
}

#[test]
fn virtio_queue_walks_a_chain_over_lazy_foreign_memory() {
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    let cache = lazy(&guest, 64, 2, 4);
    let request = pattern(1, 112);
    let l = two_page_layout(16 * PAGE);
    let got = walk_chain(&*cache.memory(), &l, &request);
    assert_eq!(got, request);
    let mut reply = vec![0u8; 112];
    guest
        .read_guest(16 * PAGE + 5 * PAGE + 8, &mut reply)
        .unwrap();
    assert_eq!(reply, request.iter().rev().copied().collect::<Vec<_>>());
    let mut used_len = [0u8; 4];
    guest
        .read_guest(16 * PAGE + 0x200 + 8, &mut used_len)
        .unwrap();
    assert_eq!(u32::from_le_bytes(used_len), 112);
    assert!(guest.live_mappings() <= 4);
}

#[test]
fn virtio_queue_walks_a_chain_over_whole_guest_memory() {
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    let mem = map_whole_guest(&guest, DOMID, &[(GuestAddress(0), 64 * PAGE)]).unwrap();
    let request = pattern(2, 112);
    assert_eq!(
        walk_chain(&mem, &two_page_layout(8 * PAGE), &request),
        request
    );
}

#[test]
fn virtio_queue_walks_a_chain_over_grants() {
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    // The rings and buffers as grant addresses: each page granted, multi-page buffers with
    // consecutive references.
    let ring = guest.grant(10, true);
    let hdr = guest.grant_range(20, 2, false);
    let body = guest.grant(22, false);
    let reply = guest.grant(30, true);
    let l = Layout {
        desc: grant_addr(ring, 0),
        avail: grant_addr(ring, 0x100),
        used: grant_addr(ring, 0x200),
        bufs: vec![
            (grant_addr(hdr, 0xffa), 12, false),
            (grant_addr(body, 0), 100, false),
            (grant_addr(reply, 8), 112, true),
        ],
    };
    let request = pattern(3, 112);
    // The guest driver writes its requests itself (its grants to us are read-only).
    guest.write_guest(21 * PAGE - 6, &request[..12]).unwrap();
    guest.write_guest(22 * PAGE, &request[12..]).unwrap();
    let grants = GrantMemory::new(guest.clone(), DOMID, 16).unwrap();
    let mem = grants.memory();
    // The readable buffers are read-only grants the guest filled: pass no request bytes.
    let got = walk_chain(&*mem, &l, &[]);
    assert_eq!(got, request);
    let mut out = vec![0u8; 112];
    guest.read_guest(30 * PAGE + 8, &mut out).unwrap();
    assert_eq!(out, request.iter().rev().copied().collect::<Vec<_>>());
    drop(mem);
    grants.invalidate();
    assert_eq!(guest.live_mappings(), 0);
}

#[test]
fn foreign_and_mmap_memory_live_side_by_side() {
    // An ordinary anonymous-mmap guest memory (vm-memory's backend-mmap, no xen feature) and a
    // foreign one in the same program, driven by the same generic code, and data moved
    // between them.
    let plain: GuestMemoryMmap<()> =
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 * XEN_PAGE_SIZE)]).unwrap();
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    let whole = map_whole_guest(&guest, DOMID, &[(GuestAddress(0), 64 * PAGE)]).unwrap();
    let cache = lazy(&guest, 64, 4, 4);

    let request = pattern(4, 112);
    assert_eq!(
        walk_chain(&plain, &two_page_layout(8 * PAGE), &request),
        request
    );
    assert_eq!(
        walk_chain(&whole, &two_page_layout(8 * PAGE), &request),
        request
    );
    assert_eq!(
        walk_chain(&*cache.memory(), &two_page_layout(24 * PAGE), &request),
        request
    );

    // Copy a page from the plain memory into the foreign guest and back.
    let mut page = vec![0u8; XEN_PAGE_SIZE];
    plain.read_slice(&mut page, GuestAddress(8 * PAGE)).unwrap();
    let view = cache.view();
    view.write_slice(&page, GuestAddress(40 * PAGE)).unwrap();
    let mut back = vec![0u8; XEN_PAGE_SIZE];
    whole
        .read_slice(&mut back, GuestAddress(40 * PAGE))
        .unwrap();
    assert_eq!(back, page);
    let region = whole.find_region(GuestAddress(0)).unwrap();
    assert_eq!(region.len(), 64 * PAGE);
}

#[test]
fn a_view_past_its_fast_slots_pins_and_reads_every_bucket() {
    // More buckets than a view finds without its lock, and a bucket size that is not a power
    // of two (the division path of `locate`).
    let guest = FakeGuest::new(DOMID, 64).unwrap();
    for b in 0..8u64 {
        guest
            .write_guest(b * 3 * PAGE + 5, &pattern(b, 40))
            .unwrap();
    }
    let cache = lazy(&guest, 64, 3, 8);
    let view = cache.view();
    for round in 0..2 {
        for b in (0..8u64).rev() {
            let mut buf = [0u8; 40];
            view.read_slice(&mut buf, GuestAddress(b * 3 * PAGE + 5))
                .unwrap();
            assert_eq!(buf[..], pattern(b, 40)[..], "bucket {b}, round {round}");
        }
    }
    assert_eq!(view.pinned(), 8);
    assert_eq!(cache.stats().misses, 8, "each bucket mapped once per view");
    // Every bucket is pinned, the fast ones included: none can be evicted.
    let other = cache.view();
    let err = other.read_obj::<u8>(GuestAddress(30 * PAGE)).unwrap_err();
    assert!(
        matches!(our_error(&err), Error::CacheExhausted { bound: 8 }),
        "{err}"
    );
    // A write through a fast-slot bucket reaches the guest.
    view.write_obj(0xfeed_u16, GuestAddress(21 * PAGE)).unwrap();
    let mut back = [0u8; 2];
    guest.read_guest(21 * PAGE, &mut back).unwrap();
    assert_eq!(u16::from_le_bytes(back), 0xfeed);
    drop(view);
    assert_eq!(guest.live_mappings(), 8, "cached, no longer pinned");
    assert_eq!(other.read_obj::<u8>(GuestAddress(30 * PAGE)).unwrap(), 0);
    assert_eq!(cache.stats().live, 8, "the bound holds");
}

#[test]
fn view_copies_match_vm_memory_generic_path_results_and_errors() {
    // The view's own read_slice/write_slice against vm-memory's Bytes path over the same view:
    // same bytes, same errors (at the start, partial further on, out of range).
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    guest.set_populated(9, false);
    let data = pattern(3, 3 * XEN_PAGE_SIZE);
    guest.write_guest(PAGE + 100, &data).unwrap();
    let cache = lazy(&guest, 16, 2, 8);
    let view = cache.view();
    assert_copy_paths_agree(
        &guest,
        &[
            (PAGE + 100, 3 * XEN_PAGE_SIZE), // across buckets
            (9 * PAGE + 8, 16),              // starts in an unpopulated frame
            (8 * PAGE + 4000, 200),          // runs into it
            (16 * PAGE - 4, 8),              // runs past the end of memory
            (16 * PAGE, 1),                  // starts past it
            (5 * PAGE, 0),                   // nothing
        ],
        (
            &|b, a| Bytes::read_slice(&view, b, GuestAddress(a)),
            &|b, a| Bytes::write_slice(&view, b, GuestAddress(a)),
        ),
        (&|b, a| view.read_slice(b, GuestAddress(a)), &|b, a| {
            view.write_slice(b, GuestAddress(a))
        }),
    );
    let mut buf = vec![0u8; 3 * XEN_PAGE_SIZE];
    view.read_slice(&mut buf, GuestAddress(PAGE + 100)).unwrap();
    let partial = view.read_slice(&mut [0u8; 200], GuestAddress(8 * PAGE + 4000));
    assert!(
        matches!(
            partial,
            Err(GuestMemoryError::PartialBuffer {
                expected: 200,
                completed: 96
            })
        ),
        "{partial:?}"
    );
}

type ReadFn<'a> = &'a dyn Fn(&mut [u8], u64) -> vm_memory::GuestMemoryResult<()>;
type WriteFn<'a> = &'a dyn Fn(&[u8], u64) -> vm_memory::GuestMemoryResult<()>;

/// Checks that a type's own copy paths (`own`: read, write) give the bytes and errors of
/// vm-memory's generic `Bytes` path (`generic`) over the same memory, at each (address,
/// length) of `cases`; writes land in `guest`.
fn assert_copy_paths_agree(
    guest: &FakeGuest,
    cases: &[(u64, usize)],
    generic: (ReadFn, WriteFn),
    own: (ReadFn, WriteFn),
) {
    for &(addr, len) in cases {
        let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
        let ra = format!("{:?}", generic.0(&mut a, addr));
        let rb = format!("{:?}", own.0(&mut b, addr));
        assert_eq!(ra, rb, "read at {addr:#x}+{len}");
        assert_eq!(a, b, "bytes read at {addr:#x}+{len}");
    }
    for &(addr, len) in cases {
        let src = pattern(addr, len);
        let ra = format!("{:?}", generic.1(&src, addr));
        let src2: Vec<u8> = src.iter().map(|x| x ^ 0xff).collect();
        let rb = format!("{:?}", own.1(&src2, addr));
        assert_eq!(ra, rb, "write at {addr:#x}+{len}");
        if ra.starts_with("Ok") {
            let mut back = vec![0u8; len];
            guest.read_guest(addr, &mut back).unwrap();
            assert_eq!(back, src2, "bytes written at {addr:#x}+{len}");
        }
    }
}

#[test]
fn whole_guest_copies_match_vm_memory_generic_path_results_and_errors() {
    // The short path of ForeignGuestMemory's own read_slice/write_slice against vm-memory's
    // Bytes path over the same regions: same bytes, same errors.
    let guest = FakeGuest::new(DOMID, 16).unwrap();
    let data = pattern(5, 16 * XEN_PAGE_SIZE);
    guest.write_guest(0, &data).unwrap();
    let ranges = [
        (GuestAddress(0), 4 * PAGE),
        (GuestAddress(8 * PAGE), 4 * PAGE),
    ];
    let mem = map_whole_guest(&guest, DOMID, &ranges).unwrap();
    let mut buf = vec![0u8; 2 * XEN_PAGE_SIZE];
    mem.read_slice(&mut buf, GuestAddress(PAGE + 100)).unwrap();
    assert_eq!(buf, data[PAGE as usize + 100..][..buf.len()]);
    assert_copy_paths_agree(
        &guest,
        &[
            (PAGE + 100, 2 * XEN_PAGE_SIZE), // inside one region
            (2, 4),                          // small
            (4 * PAGE - 4, 8),               // runs into the hole
            (6 * PAGE, 8),                   // starts in it
            (12 * PAGE - 4, 8),              // runs past the end of memory
            (12 * PAGE, 1),                  // starts past it
            (9 * PAGE, 0),                   // nothing
            (u64::MAX - 2, 8),               // wraps around
        ],
        (
            &|b, a| Bytes::read_slice(mem.regions(), b, GuestAddress(a)),
            &|b, a| Bytes::write_slice(mem.regions(), b, GuestAddress(a)),
        ),
        (&|b, a| mem.read_slice(b, GuestAddress(a)), &|b, a| {
            mem.write_slice(b, GuestAddress(a))
        }),
    );
}
