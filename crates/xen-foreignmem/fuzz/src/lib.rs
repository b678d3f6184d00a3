// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bodies of the xen-foreignmem fuzz targets, in a library so `tests/replay.rs` can replay
//! the regressions directory with a plain `cargo test`.

use fuzz_support::Input;
use std::sync::OnceLock;

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryError};
use xen_foreignmem::fake::FakeGuest;
use xen_foreignmem::{
    grant_addr, split_grant_addr, CacheConfig, DomId, GrantMemory, LazyForeignMemory,
    GRANT_ADDR_FLAG,
};

const PAGE: u64 = 4096;
const DOMID: DomId = DomId::new(1);
/// Guest frames of the fake domain.
const PAGES: u64 = 16;

/// The fake domain, made once (a memfd and its grant table), and what each grant reference
/// maps to: `(gfn, writable)`, `None` for references that are not granted or whose frame is
/// not in the guest.
struct World {
    guest: FakeGuest,
    grants: Vec<Option<(u64, bool)>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let guest = FakeGuest::new(DOMID, PAGES).expect("a fake guest");
        let mut grants = vec![None; 32];
        for gfn in 0..PAGES {
            // Frames 0-11 read-write, 12-15 read-only.
            let gref = guest.grant(gfn, gfn < 12);
            grants[gref as usize] = Some((gfn, gfn < 12));
        }
        // A grant of a frame outside the guest: mapping it fails.
        let bad = guest.grant(1000, true);
        assert!((bad as usize) < grants.len());
        for gfn in 0..PAGES {
            let pattern: Vec<u8> = (0..PAGE).map(|i| (gfn * 31 + i * 7) as u8).collect();
            guest.write_guest(gfn * PAGE, &pattern).unwrap();
        }
        World { guest, grants }
    })
}

/// The guest-physical pieces of a grant-address range, as the grant table says they are;
/// `None` if some page of it cannot be accessed (`write`: for writing).
fn grant_pieces(w: &World, addr: u64, len: usize, write: bool) -> Option<Vec<(u64, usize)>> {
    let mut out = Vec::new();
    let mut done = 0usize;
    while done < len {
        let a = addr.checked_add(done as u64)?;
        let (gref, off) = split_grant_addr(a).ok()?;
        let n = (PAGE as usize - off).min(len - done);
        let (gfn, writable) = w.grants.get(gref as usize).copied().flatten()?;
        if gfn >= PAGES || (write && !writable) {
            return None;
        }
        out.push((gfn * PAGE + off as u64, n));
        done += n;
    }
    Some(out)
}

fn completed(e: &GuestMemoryError) -> Option<usize> {
    match e {
        GuestMemoryError::PartialBuffer { completed, .. } => Some(*completed),
        _ => None,
    }
}

/// Grant addresses round-trip; reads and writes through a [`GrantMemory`] and a
/// [`LazyForeignMemory`] of a fake domain, at fuzzed addresses and lengths, match the guest's
/// memory or fail exactly where the grant table says; the cache stays within its bound and
/// unmaps everything when dropped.
pub fn grant_cache(data: &[u8]) {
    let w = world();
    let mut input = Input::new(data);
    let max = 1 + usize::from(input.u8() % 4);
    let grants = GrantMemory::new(w.guest.clone(), DOMID, max).unwrap();
    let bucket_pages = [1usize, 2, 4][usize::from(input.u8() % 3)];
    let lazy = LazyForeignMemory::new(
        w.guest.clone(),
        DOMID,
        PAGES * PAGE,
        CacheConfig {
            bucket_size: bucket_pages * PAGE as usize,
            max_buckets: max,
        },
    )
    .unwrap();
    let mut gview = grants.memory();
    let mut lview = lazy.memory();
    let mut buf = vec![0u8; 3 * PAGE as usize];
    let mut expect = vec![0u8; 3 * PAGE as usize];
    for _ in 0..32 {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        match op % 10 {
            // Parsing any address.
            0 => {
                let addr = input.u64();
                match split_grant_addr(addr) {
                    Ok((gref, off)) => {
                        assert!(addr & GRANT_ADDR_FLAG != 0);
                        assert!(off < PAGE as usize);
                        assert_eq!(grant_addr(gref, off as u16), addr);
                    }
                    Err(_) => {
                        assert!(addr & GRANT_ADDR_FLAG == 0 || (addr << 1) >> 45 != 0);
                    }
                }
            }
            // A read or write through the grant cache.
            1..=4 => {
                let gref = u32::from(input.u8() % 34);
                let off = input.u16() & 0xfff;
                // Mostly small, now and then across pages or the whole buffer.
                let len = usize::from(input.u16()) % (buf.len() + 1);
                let addr = if op & 0x80 != 0 {
                    input.u64()
                } else {
                    grant_addr(gref, off)
                };
                let write = op % 10 >= 3;
                let pieces = grant_pieces(w, addr, len, write);
                let generic = op & 0x40 != 0;
                let result = if write {
                    buf[..len].fill(op);
                    if generic {
                        Bytes::write_slice(&*gview, &buf[..len], GuestAddress(addr))
                    } else {
                        gview.write_slice(&buf[..len], GuestAddress(addr))
                    }
                } else if generic {
                    Bytes::read_slice(&*gview, &mut buf[..len], GuestAddress(addr))
                } else {
                    gview.read_slice(&mut buf[..len], GuestAddress(addr))
                };
                if len == 0 {
                    // Nothing to access: both paths must agree, whatever the address.
                    let other = if write {
                        if generic {
                            gview.write_slice(&[], GuestAddress(addr))
                        } else {
                            Bytes::write_slice(&*gview, &[], GuestAddress(addr))
                        }
                    } else if generic {
                        gview.read_slice(&mut [], GuestAddress(addr))
                    } else {
                        Bytes::read_slice(&*gview, &mut [], GuestAddress(addr))
                    };
                    assert_eq!(result.is_ok(), other.is_ok(), "empty access at {addr:#x}");
                    continue;
                }
                match (&result, &pieces) {
                    (Ok(()), Some(p)) => {
                        let mut at = 0;
                        for &(gpa, n) in p {
                            w.guest.read_guest(gpa, &mut expect[at..at + n]).unwrap();
                            at += n;
                        }
                        assert_eq!(buf[..len], expect[..len], "grant {addr:#x}+{len}");
                    }
                    (Err(e), None) => {
                        if let Some(done) = completed(e) {
                            assert!(done < len);
                        }
                    }
                    // A view pins every bucket it touched until dropped: once it pins as many
                    // as the bound, a new one cannot be mapped (`Error::CacheExhausted`).
                    (Err(_), Some(_)) if gview.pinned() >= max => {}
                    (r, p) => panic!("grant {addr:#x}+{len} write {write}: {r:?}, expected {p:?}"),
                }
                if write {
                    if let Some(p) = pieces {
                        // Put the pattern back so the next iteration sees the same guest.
                        for (gpa, n) in p {
                            let gfn = gpa / PAGE;
                            let pattern: Vec<u8> = (gpa % PAGE..gpa % PAGE + n as u64)
                                .map(|i| (gfn * 31 + i * 7) as u8)
                                .collect();
                            w.guest.write_guest(gpa, &pattern).unwrap();
                        }
                    }
                }
            }
            // A read or write through the lazy foreign cache.
            5 | 6 => {
                let gpa = u64::from(input.u16()) * 8 % ((PAGES + 2) * PAGE);
                let len = usize::from(input.u16()) % (buf.len() + 1);
                let end_ok = gpa + len as u64 <= PAGES * PAGE;
                if op % 10 == 6 {
                    let mut pat = vec![0u8; len];
                    let in_guest = end_ok && w.guest.read_guest(gpa, &mut pat).is_ok();
                    let r = lview.write_slice(&pat, GuestAddress(gpa));
                    let exhausted = r.is_err() && lview.pinned() >= max;
                    if len > 0 && !exhausted {
                        assert_eq!(r.is_ok(), in_guest, "lazy write {gpa:#x}+{len}");
                    }
                } else {
                    let r = lview.read_slice(&mut buf[..len], GuestAddress(gpa));
                    if len == 0 {
                        // Nothing read: any result.
                    } else if r.is_err() && lview.pinned() >= max {
                        // Exhausted, as above.
                    } else if end_ok {
                        r.unwrap();
                        w.guest.read_guest(gpa, &mut expect[..len]).unwrap();
                        assert_eq!(buf[..len], expect[..len], "lazy {gpa:#x}+{len}");
                    } else {
                        assert!(r.is_err() || len == 0, "lazy {gpa:#x}+{len}");
                    }
                }
            }
            7 => grants.release(u32::from(input.u8() % 34)),
            8 => {
                grants.invalidate();
                lazy.invalidate();
            }
            _ => {
                // New views: what the old ones pinned may go.
                gview = grants.memory();
                lview = lazy.memory();
            }
        }
        let s = grants.stats();
        assert!(
            s.live <= max + gview.pinned(),
            "grant cache over its bound: {s:?}"
        );
        let s = lazy.stats();
        assert!(
            s.live <= max + lview.pinned(),
            "lazy cache over its bound: {s:?}"
        );
    }
    drop((gview, lview, grants, lazy));
    assert_eq!(w.guest.live_mappings(), 0, "mappings leaked");
}
