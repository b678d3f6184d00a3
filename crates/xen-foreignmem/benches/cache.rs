// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Cost of the access paths over the in-process fake guest: whole-guest reads (the floor),
//! cached reads in a long-lived view, a fresh view per request, misses with eviction, and
//! hot grant reads, and 4 KiB copies through `Bytes` next to a plain `memcpy` of the same size
//! (the fixed cost per call of the copy path). The fake maps with real `mmap` calls, so misses
//! include syscall cost similar in kind (not in size) to privcmd's.

use criterion::{black_box, criterion_main, BatchSize, Criterion};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};
use xen_foreignmem::fake::FakeGuest;
use xen_foreignmem::{
    grant_addr, map_whole_guest, CacheConfig, DomId, GrantMemory, LazyForeignMemory,
};

const PAGES: u64 = 4096; // 16 MiB of fake guest
const PAGE: u64 = 4096;

fn lazy(
    guest: &FakeGuest,
    bucket_pages: usize,
    max_buckets: usize,
) -> LazyForeignMemory<FakeGuest> {
    LazyForeignMemory::new(
        guest.clone(),
        guest.domid(),
        guest.mem_size(),
        CacheConfig {
            bucket_size: bucket_pages * 4096,
            max_buckets,
        },
    )
    .unwrap()
}

/// xorshift64: deterministic addresses without a rand dependency.
fn addrs(n: usize, pages: u64) -> Vec<GuestAddress> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            GuestAddress((x % pages) * PAGE + 64)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let guest = FakeGuest::new(DomId::new(1), PAGES).unwrap();
    let targets = addrs(1024, PAGES);

    let whole = map_whole_guest(&guest, DomId::new(1), &[(GuestAddress(0), PAGES * PAGE)]).unwrap();
    c.bench_function("whole_guest/read_u64_random", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(whole.read_obj::<u64>(targets[i]).unwrap())
        })
    });

    // Everything fits: after warm-up every access hits the view's own pins.
    let all = lazy(&guest, 512, 8);
    let view = all.view();
    c.bench_function("lazy/hit_in_view_read_u64_random", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(view.read_obj::<u64>(targets[i]).unwrap())
        })
    });
    drop(view);

    // A fresh view per access: the cache lookup path (lock, hash, LRU tick).
    c.bench_function("lazy/fresh_view_read_u64_random", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(all.view().read_obj::<u64>(targets[i]).unwrap())
        })
    });

    // A bound far below the working set: most accesses evict and map.
    let small = lazy(&guest, 16, 16);
    c.bench_function("lazy/miss_evict_map_read_u64_random", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(small.view().read_obj::<u64>(targets[i]).unwrap())
        })
    });

    // Invalidation of a full cache.
    c.bench_function("lazy/invalidate_64_buckets", |b| {
        let cache = lazy(&guest, 16, 64);
        b.iter_batched(
            || {
                let v = cache.view();
                for k in 0..64 {
                    v.read_obj::<u8>(GuestAddress(k * 16 * PAGE)).unwrap();
                }
            },
            |()| cache.invalidate(),
            BatchSize::SmallInput,
        )
    });

    // 4 KiB copies: the per-call cost of vm-memory's path and of the view's lookup, next to
    // the copy itself.
    let src = vec![0x5au8; 4096];
    let mut dst = vec![0u8; 4096];
    let at = GuestAddress(16 * PAGE);
    c.bench_function("copy_4k/memcpy", |b| {
        b.iter(|| black_box(&mut dst[..]).copy_from_slice(black_box(&src[..])))
    });
    // The same memcpy from the mapped guest page: what placement alone costs.
    let host = whole.get_host_address(at).unwrap();
    c.bench_function("copy_4k/memcpy_from_mapping", |b| {
        b.iter(|| {
            // SAFETY: `host` is the start of 4 KiB inside the whole-guest mapping, alive for the
            // benchmark; `dst` is a distinct 4 KiB buffer. Nothing writes the page meanwhile.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    black_box(host),
                    black_box(&mut dst[..]).as_mut_ptr(),
                    4096,
                )
            }
        })
    });
    c.bench_function("copy_4k/whole_guest_read_slice", |b| {
        b.iter(|| whole.read_slice(black_box(&mut dst[..]), at).unwrap())
    });
    let view = all.view();
    c.bench_function("copy_4k/lazy_view_read_slice", |b| {
        b.iter(|| view.read_slice(black_box(&mut dst[..]), at).unwrap())
    });
    c.bench_function("copy_4k/lazy_view_generic_read_slice", |b| {
        b.iter(|| Bytes::read_slice(&view, black_box(&mut dst[..]), at).unwrap())
    });
    c.bench_function("copy_4k/lazy_view_write_slice", |b| {
        b.iter(|| view.write_slice(black_box(&src[..]), at).unwrap())
    });
    drop(view);

    let first = guest.grant_range(0, 64, true);
    let grants = GrantMemory::new(guest.clone(), DomId::new(1), 64).unwrap();
    c.bench_function("grant/hot_read_u64_fresh_view", |b| {
        let mut g = 0;
        b.iter(|| {
            g = (g + 1) % 64;
            black_box(
                grants
                    .view()
                    .read_obj::<u64>(GuestAddress(grant_addr(first + g, 64)))
                    .unwrap(),
            )
        })
    });
}

/// The benchmark group (written out: criterion's group macro makes an undocumented item).
fn cache_benches() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
}

criterion_main!(cache_benches);
