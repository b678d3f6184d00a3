// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Cost of the access paths over the in-process fake guest: whole-guest reads (the floor),
//! cached reads in a long-lived view, a fresh view per request, misses with eviction, and
//! hot grant reads. The fake maps with real `mmap` calls, so misses include syscall cost
//! similar in kind (not in size) to privcmd's.

use criterion::{black_box, criterion_main, BatchSize, Criterion};
use vm_memory::{Bytes, GuestAddress};
use xen_foreignmem::fake::FakeGuest;
use xen_foreignmem::{grant_addr, map_whole_guest, CacheConfig, GrantMemory, LazyForeignMemory};

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
    let guest = FakeGuest::new(1, PAGES).unwrap();
    let targets = addrs(1024, PAGES);

    let whole = map_whole_guest(&guest, 1, &[(GuestAddress(0), PAGES * PAGE)]).unwrap();
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

    let first = guest.grant_range(0, 64, true);
    let grants = GrantMemory::new(guest.clone(), 1, 64).unwrap();
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
