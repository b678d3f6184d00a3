// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A bounded cache of mapped buckets and the short-lived views through which guest memory is
//! accessed.
//!
//! # Soundness: why views
//!
//! vm-memory hands out [`VolatileSlice`]s that borrow the memory object (`&'a self`), not a
//! mapping: nothing in a slice keeps the mapping alive. A cache that could unmap a bucket from a
//! `&self` method (eviction, invalidation) while such a slice exists would leave it dangling.
//!
//! So the object implementing [`GuestMemory`] is not the cache but a [`CacheView`]. Each bucket
//! is an `Arc`; a view *pins* every bucket it hands out a slice of by keeping a clone of that
//! `Arc` until the view itself is dropped. A slice borrows the view, so it cannot outlive the pin.
//! The cache only evicts buckets nobody else holds (`Arc::strong_count == 1`, checked under the
//! cache lock, the only place new clones are made), and invalidation merely forgets the cache's
//! own references: a bucket still pinned by a live view stays mapped until that view is dropped,
//! and only views created afterwards see the new guest physmap.
//!
//! The bound counts every live bucket, pinned or not, through a counter decremented when a bucket
//! is unmapped: the cache never has more than `max_buckets` mappings alive. When it is full and
//! every bucket is pinned, a new mapping fails with [`Error::CacheExhausted`] rather than
//! exceeding the bound. Take one view per unit of work (for example per queue notification) and
//! drop it afterwards; [`vm_memory::GuestAddressSpace::memory`] does exactly that.
//!
//! A miss maps while holding the cache lock, so concurrent lookups wait for one mapping call;
//! hits within a view do not take the cache lock at all, and hits on the first few buckets a view
//! pinned take no lock whatsoever (write-once slots, see [`CacheView`]): a request's buffers
//! mostly sit in one or two buckets, and an uncontended lock pair is a large part of the fixed
//! cost of a small copy, notably on emulated CPUs where atomic instructions are slow.
//!
//! Copy-based access through the view (`Bytes::read_slice`, `read_obj`...) pins only the buckets
//! it touches, for as long as the view lives.

use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::iter::FusedIterator;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use vm_memory::bitmap::BS;
#[cfg(doc)]
use vm_memory::Bytes;
use vm_memory::{
    guest_memory::GuestMemorySliceIterator, GuestAddress, GuestAddressSpace, GuestMemory,
    GuestMemoryError, Permissions, VolatileSlice,
};

use crate::error::{Error, Result};
use crate::mapper::MappedPages;
use crate::whole::ForeignGuestMemory;
use xen_bindings::{DomId, XEN_PAGE_SIZE};

/// A freshly mapped bucket, as a [`BucketSource`] returns it.
#[derive(Debug)]
pub struct MappedBucket<M> {
    /// The mapping.
    pub mapping: M,
    /// Per 4 KiB page: 0 when mapped, else the errno of the failure; empty when all are mapped.
    pub page_errors: Vec<i32>,
    /// The domain the memory belongs to (for error messages).
    pub domid: DomId,
    /// The frame of the first page (for error messages).
    pub first_gfn: u64,
    /// The guest address of the bucket's first byte (for error messages).
    pub base_addr: u64,
}

/// Where the guest memory of a cache comes from: how addresses split into buckets, and how a
/// bucket is mapped.
///
/// Implemented by [`FrameSource`](crate::FrameSource) (foreign frames) and
/// [`GrantSource`](crate::GrantSource) (grant references).
pub trait BucketSource: Send + Sync {
    /// Identifies a bucket.
    type Key: Copy + Eq + Hash + Debug + Send + Sync;
    /// The mapping type of a bucket.
    type Mapping: MappedPages;

    /// The bucket holding `addr` and the offset of `addr` within it, for an access of `len`
    /// bytes (`len` is only used for error reports) with permissions `access`.
    fn locate(&self, addr: u64, len: usize, access: Permissions) -> Result<(Self::Key, usize)>;

    /// Maps bucket `key`.
    fn map(&self, key: Self::Key) -> Result<MappedBucket<Self::Mapping>>;
}

/// Decrements the live-bucket count when a bucket is unmapped.
#[derive(Debug)]
struct LiveToken(Arc<AtomicUsize>);

impl Drop for LiveToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A mapped bucket, shared by the cache and the views pinning it.
#[derive(Debug)]
pub struct Bucket<M> {
    // Field order matters: the mapping is unmapped before the live count drops.
    inner: MappedBucket<M>,
    _live: LiveToken,
}

impl<M: MappedPages> Bucket<M> {
    /// The longest run of mapped bytes from `offset`, at most `max`; an error when the page at
    /// `offset` failed to map.
    fn run(&self, offset: usize, max: usize) -> Result<usize> {
        let len = self.inner.mapping.len();
        if offset >= len {
            // A source bug, reported rather than trusted.
            return Err(Error::InvalidConfig(
                "bucket source returned an offset past its bucket",
            ));
        }
        let mut end = len.min(offset.saturating_add(max));
        if !self.inner.page_errors.is_empty() {
            let first = offset / XEN_PAGE_SIZE;
            if let Some(&errno) = self.inner.page_errors.get(first).filter(|&&e| e != 0) {
                return Err(Error::FrameNotMapped {
                    domid: self.inner.domid,
                    addr: self.inner.base_addr + offset as u64,
                    gfn: self.inner.first_gfn + first as u64,
                    errno,
                });
            }
            let pages = self.inner.page_errors.len();
            let bad = (first..pages)
                .find(|&p| self.inner.page_errors[p] != 0)
                .unwrap_or(pages);
            end = end.min(bad * XEN_PAGE_SIZE);
        }
        Ok(end - offset)
    }
}

/// Sizing of a [`MappingCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes per bucket: a multiple of 4 KiB (ignored by grant mode, whose buckets are one grant).
    pub bucket_size: usize,
    /// The most buckets mapped at once.
    pub max_buckets: usize,
}

impl Default for CacheConfig {
    /// 2 MiB buckets, at most 256 of them (512 MiB of address space).
    fn default() -> Self {
        CacheConfig {
            bucket_size: 2 << 20,
            max_buckets: 256,
        }
    }
}

/// Counters of a [`MappingCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served by a bucket the cache had mapped.
    pub hits: u64,
    /// Lookups that mapped a bucket.
    pub misses: u64,
    /// Buckets evicted to stay within the bound.
    pub evictions: u64,
    /// Invalidations.
    pub invalidations: u64,
    /// Buckets mapped now (cached or pinned by views).
    pub live: usize,
}

struct Entry<M> {
    bucket: Arc<Bucket<M>>,
    last_use: u64,
}

struct State<K, M> {
    entries: HashMap<K, Entry<M>>,
    tick: u64,
}

struct Shared<S: BucketSource> {
    source: S,
    max_buckets: usize,
    live: Arc<AtomicUsize>,
    state: Mutex<State<S::Key, S::Mapping>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

impl<S: BucketSource> Shared<S> {
    fn state(&self) -> MutexGuard<'_, State<S::Key, S::Mapping>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bucket for `key`, mapping it (and evicting to stay in bounds) if needed.
    fn get(&self, key: S::Key) -> Result<Arc<Bucket<S::Mapping>>> {
        let mut state = self.state();
        state.tick += 1;
        let tick = state.tick;
        if let Some(entry) = state.entries.get_mut(&key) {
            entry.last_use = tick;
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(entry.bucket.clone());
        }
        // New clones of bucket Arcs are only made under this lock, so a count of 1 here means no
        // view pins the bucket and none can start to before it is gone.
        while self.live.load(Ordering::SeqCst) >= self.max_buckets {
            let victim = state
                .entries
                .iter()
                .filter(|(_, e)| Arc::strong_count(&e.bucket) == 1)
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    state.entries.remove(&k);
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    return Err(Error::CacheExhausted {
                        bound: self.max_buckets,
                    })
                }
            }
        }
        let mapped = self.source.map(key)?;
        self.live.fetch_add(1, Ordering::SeqCst);
        let bucket = Arc::new(Bucket {
            inner: mapped,
            _live: LiveToken(self.live.clone()),
        });
        self.misses.fetch_add(1, Ordering::Relaxed);
        state.entries.insert(
            key,
            Entry {
                bucket: bucket.clone(),
                last_use: tick,
            },
        );
        Ok(bucket)
    }
}

/// A bounded cache of lazily mapped buckets of guest memory; cheap to clone (clones share it).
///
/// Access goes through [`MappingCache::view`] (or [`GuestAddressSpace::memory`]), see the
/// [module documentation](self) for why.
pub struct MappingCache<S: BucketSource> {
    shared: Arc<Shared<S>>,
}

impl<S: BucketSource> Clone for MappingCache<S> {
    fn clone(&self) -> Self {
        MappingCache {
            shared: self.shared.clone(),
        }
    }
}

impl<S: BucketSource> Debug for MappingCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappingCache")
            .field("max_buckets", &self.shared.max_buckets)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S: BucketSource> MappingCache<S> {
    /// A cache over `source` holding at most `max_buckets` mappings.
    pub fn with_source(source: S, max_buckets: usize) -> Result<Self> {
        if max_buckets == 0 {
            return Err(Error::InvalidConfig("max_buckets must be at least 1"));
        }
        Ok(MappingCache {
            shared: Arc::new(Shared {
                source,
                max_buckets,
                live: Arc::new(AtomicUsize::new(0)),
                state: Mutex::new(State {
                    entries: HashMap::new(),
                    tick: 0,
                }),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
            }),
        })
    }

    /// A new view: the [`GuestMemory`] through which memory is accessed. Buckets it touches stay
    /// mapped until it is dropped.
    pub fn view(&self) -> CacheView<S> {
        CacheView {
            shared: self.shared.clone(),
            fast: std::array::from_fn(|_| OnceLock::new()),
            pins: Mutex::new(Pins {
                map: HashMap::new(),
                last: None,
            }),
        }
    }

    /// Forgets every cached mapping (Xen's `IOREQ_TYPE_INVALIDATE`: the guest's physmap changed).
    ///
    /// Buckets not pinned are unmapped now; pinned ones when their views are dropped. Views made
    /// after this call map afresh.
    pub fn invalidate(&self) {
        // Drop the entries outside the lock (munmap can be slow).
        let old = std::mem::take(&mut self.shared.state().entries);
        drop(old);
        self.shared.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets the cached buckets `pred` selects (same pinning rules as [`Self::invalidate`]).
    pub fn forget(&self, mut pred: impl FnMut(&S::Key) -> bool) {
        let mut removed = Vec::new();
        {
            let mut state = self.shared.state();
            let keys: Vec<S::Key> = state.entries.keys().filter(|k| pred(k)).copied().collect();
            for k in keys {
                removed.extend(state.entries.remove(&k));
            }
        }
        drop(removed);
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// The bound, in buckets.
    pub fn max_buckets(&self) -> usize {
        self.shared.max_buckets
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
            evictions: self.shared.evictions.load(Ordering::Relaxed),
            invalidations: self.shared.invalidations.load(Ordering::Relaxed),
            live: self.shared.live.load(Ordering::SeqCst),
        }
    }
}

impl<S: BucketSource> GuestAddressSpace for MappingCache<S> {
    type M = CacheView<S>;
    type T = Arc<CacheView<S>>;

    /// A fresh view per call: memory pinned through it is released when the last clone of the
    /// returned `Arc` is dropped.
    fn memory(&self) -> Self::T {
        Arc::new(self.view())
    }
}

/// How many of the buckets a view pins it can find without taking its lock.
const FAST_SLOTS: usize = 4;

/// The buckets a view pins, with the last one used checked first: a copy walks a bucket slice
/// by slice, and a request's buffers mostly sit in one bucket, so most lookups skip hashing.
struct Pins<S: BucketSource> {
    map: HashMap<S::Key, PinnedBucket<S>>,
    last: Option<(S::Key, PinnedBucket<S>)>,
}

/// A bucket as a view holds it.
type PinnedBucket<S> = Arc<Bucket<<S as BucketSource>::Mapping>>;

/// A view of a [`MappingCache`]: implements [`GuestMemory`] (and so [`vm_memory::Bytes`]) and
/// pins what it hands out until dropped.
pub struct CacheView<S: BucketSource> {
    shared: Arc<Shared<S>>,
    /// The first [`FAST_SLOTS`] buckets the view pinned, each set once and never changed, so a
    /// lookup among them is a few atomic loads: no lock, no hashing, no reference counting.
    /// They are in `pins.map` too; both clones go when the view is dropped.
    fast: [OnceLock<(S::Key, PinnedBucket<S>)>; FAST_SLOTS],
    pins: Mutex<Pins<S>>,
}

impl<S: BucketSource> Debug for CacheView<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheView")
            .field("pinned", &self.pinned())
            .finish()
    }
}

impl<S: BucketSource> CacheView<S> {
    /// How many buckets this view pins.
    pub fn pinned(&self) -> usize {
        self.pins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// A slice from `addr`, up to `max` bytes long, within one bucket.
    ///
    /// The same as the slices of [`GuestMemory::get_slices`], with this crate's typed errors.
    pub fn slice_at(
        &self,
        addr: GuestAddress,
        max: usize,
        access: Permissions,
    ) -> Result<VolatileSlice<'_>> {
        let (key, offset) = self.shared.source.locate(addr.0, max, access)?;
        let (ptr, len) = match self.fast_slot(key) {
            Some(bucket) => Self::span(bucket, offset, max)?,
            None => self.span_slow(key, offset, max)?,
        };
        // SAFETY: `ptr..ptr + len` lies in a bucket's mapping and covers only mapped pages
        // (`span` checks both via `Bucket::run`). The mapping stays valid while the bucket lives
        // (`MappedPages`), and this view pins the bucket: it holds a clone of its Arc in
        // `pins.map` (never removed from) and maybe in a fast slot (set once) until the view is
        // dropped. The slice borrows `self`, so it cannot outlive the pin. Guest memory is
        // shared with the guest, hence a VolatileSlice.
        Ok(unsafe { VolatileSlice::new(ptr, len) })
    }

    /// Reads `buf.len()` bytes from `addr`: the same result and errors as
    /// [`Bytes::read_slice`] through this view's [`GuestMemory`] implementation (an error at
    /// `addr` itself is that error; one further on is [`GuestMemoryError::PartialBuffer`]), by
    /// a shorter path: vm-memory's generic one (fallible slice iterator adapters, per-slice
    /// bounds re-checks and re-slicing) is a large part of the cost of a small copy. Being an
    /// inherent method it is what `view.read_slice(..)` calls on a concrete view (or an `Arc`
    /// of one); code generic over `GuestMemory` takes vm-memory's path, with the same results.
    pub fn read_slice(
        &self,
        buf: &mut [u8],
        addr: GuestAddress,
    ) -> vm_memory::GuestMemoryResult<()> {
        // Checked here as well as in the slice iterator: straight to the one copy, without the
        // loop, is worth 0.05-0.07 of a 4 KiB copy's time in the Xen box.
        if let Some(s) = self.pinned_span(addr.0, buf.len(), Permissions::Read) {
            s.copy_to(buf);
            return Ok(());
        }
        let mut done = 0;
        for slice in self.slices(addr, buf.len(), Permissions::Read) {
            match slice {
                Ok(s) => {
                    // `s.len()` <= the bytes left, so this copies all of `s` (one memcpy).
                    done += s.copy_to(&mut buf[done..]);
                }
                Err(e) => return Err(Self::short(e, done, buf.len())),
            }
        }
        Ok(())
    }

    /// Writes `buf` at `addr`: [`Self::read_slice`]'s counterpart for [`Bytes::write_slice`].
    pub fn write_slice(&self, buf: &[u8], addr: GuestAddress) -> vm_memory::GuestMemoryResult<()> {
        // As in `read_slice`.
        if let Some(s) = self.pinned_span(addr.0, buf.len(), Permissions::Write) {
            s.copy_from(buf);
            return Ok(());
        }
        let mut done = 0;
        for slice in self.slices(addr, buf.len(), Permissions::Write) {
            match slice {
                Ok(s) => {
                    // `s.len()` <= the bytes left, so this copies all of `s` (one memcpy).
                    s.copy_from(&buf[done..]);
                    done += s.len();
                }
                Err(e) => return Err(Self::short(e, done, buf.len())),
            }
        }
        Ok(())
    }

    /// `addr..addr + len` as one slice when all of it lies in a fully mapped bucket of the
    /// fast slots: the common case of a copy, with no lock, no page-by-page check and no error
    /// to build. `None` sends the caller (a copy, the slice iterator) down the general path,
    /// which also reports any error.
    #[inline]
    fn pinned_span(&self, addr: u64, len: usize, access: Permissions) -> Option<VolatileSlice<'_>> {
        let (key, offset) = self.shared.source.locate(addr, len, access).ok()?;
        let inner = &self.fast_slot(key)?.inner;
        if !inner.page_errors.is_empty() || offset.checked_add(len)? > inner.mapping.len() {
            return None;
        }
        // SAFETY: `offset..offset + len` lies within the bucket's mapping (checked just above)
        // and every page of it is mapped (no page errors). The bucket sits in a fast slot, set
        // once and kept until the view is dropped, so it stays mapped while the slice, which
        // borrows `self`, lives. Guest memory is shared with the guest, hence a VolatileSlice.
        Some(unsafe { VolatileSlice::new(inner.mapping.as_ptr().add(offset), len) })
    }

    /// The bucket `key` if it sits in one of the fast slots: a few atomic loads, no lock.
    #[inline]
    fn fast_slot(&self, key: S::Key) -> Option<&PinnedBucket<S>> {
        self.fast
            .iter()
            .map_while(OnceLock::get)
            .find(|(k, _)| *k == key)
            .map(|(_, bucket)| bucket)
    }

    /// The slices covering `count` bytes from `addr`, as [`GuestMemory::get_slices`] yields.
    fn slices(
        &self,
        addr: GuestAddress,
        count: usize,
        access: Permissions,
    ) -> CacheSliceIter<'_, S> {
        CacheSliceIter {
            view: self,
            addr: addr.0,
            count,
            access,
        }
    }

    /// The error of a copy that failed after `done` of `expected` bytes, as vm-memory reports
    /// it: the slice error itself at the start, a partial buffer further on.
    fn short(e: GuestMemoryError, done: usize, expected: usize) -> GuestMemoryError {
        if done == 0 {
            e
        } else {
            GuestMemoryError::PartialBuffer {
                expected,
                completed: done,
            }
        }
    }

    /// [`Self::span`] for a bucket not among the fast slots: through the pin map, mapping the
    /// bucket (and pinning it) if this view has not pinned it yet.
    fn span_slow(&self, key: S::Key, offset: usize, max: usize) -> Result<(*mut u8, usize)> {
        let mut pins = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        let pins = &mut *pins;
        let bucket = match &pins.last {
            Some((k, b)) if *k == key => b,
            _ => {
                let bucket = match pins.map.get(&key) {
                    Some(b) => b.clone(),
                    None => {
                        let b = self.shared.get(key)?;
                        pins.map.insert(key, b.clone());
                        // Filled under the lock and in order; a slot is set at most once.
                        if let Some(slot) = self.fast.iter().find(|s| s.get().is_none()) {
                            let _ = slot.set((key, b.clone()));
                        }
                        b
                    }
                };
                &pins.last.insert((key, bucket)).1
            }
        };
        Self::span(bucket, offset, max)
    }

    /// Where the run of mapped bytes of `bucket` from `offset` (at most `max`) is.
    fn span(bucket: &Bucket<S::Mapping>, offset: usize, max: usize) -> Result<(*mut u8, usize)> {
        let len = bucket.run(offset, max)?;
        Ok((bucket.inner.mapping.as_ptr().wrapping_add(offset), len))
    }
}

/// Iterates over the slices covering a range of a [`CacheView`].
pub struct CacheSliceIter<'a, S: BucketSource> {
    view: &'a CacheView<S>,
    addr: u64,
    count: usize,
    access: Permissions,
}

impl<S: BucketSource> Debug for CacheSliceIter<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheSliceIter")
            .field("addr", &self.addr)
            .field("count", &self.count)
            .finish()
    }
}

impl<'a, S: BucketSource> Iterator for CacheSliceIter<'a, S> {
    type Item = vm_memory::GuestMemoryResult<VolatileSlice<'a>>;

    // Small and inlined, with the general case out of line: vm-memory's generic `Bytes` path
    // calls `next` twice per copy, and on emulated CPUs a call and return cost about as much as
    // the bookkeeping.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.count == 0 {
            return None;
        }
        // The common case, the rest of the range in one fast-slot bucket: one slice, and done.
        if let Some(slice) = self.view.pinned_span(self.addr, self.count, self.access) {
            self.count = 0;
            return Some(Ok(slice));
        }
        Some(self.next_general())
    }
}

impl<'a, S: BucketSource> CacheSliceIter<'a, S> {
    /// The next slice through the view's general lookup (maps and pins as needed).
    #[inline(never)]
    fn next_general(&mut self) -> vm_memory::GuestMemoryResult<VolatileSlice<'a>> {
        let res = self
            .view
            .slice_at(GuestAddress(self.addr), self.count, self.access)
            .and_then(|s| {
                let next = self.addr.checked_add(s.len() as u64);
                match next {
                    Some(next) => Ok((s, next)),
                    // The range wraps around the address space: only if this was its end.
                    None if s.len() == self.count => Ok((s, 0)),
                    None => Err(Error::OutOfRange {
                        addr: self.addr,
                        len: self.count as u64,
                        end: u64::MAX,
                    }),
                }
            });
        match res {
            Ok((slice, next)) => {
                self.count -= slice.len();
                self.addr = next;
                Ok(slice)
            }
            Err(e) => {
                // No items after the first error.
                self.count = 0;
                Err(e.into_guest_memory_error())
            }
        }
    }
}

impl<S: BucketSource> FusedIterator for CacheSliceIter<'_, S> {}

impl<'a, S: BucketSource> GuestMemorySliceIterator<'a, BS<'a, ()>> for CacheSliceIter<'a, S> {}

impl<S: BucketSource> GuestMemory for CacheView<S> {
    /// Never returned (a view has no plain physical memory underneath); any
    /// `GuestMemoryBackend` type would do.
    type PhysicalMemory = ForeignGuestMemory<S::Mapping>;
    type Bitmap = ();

    fn check_range(&self, addr: GuestAddress, count: usize, access: Permissions) -> bool {
        match self.get_slices(addr, count, access) {
            Ok(mut it) => it.all(|s| s.is_ok()),
            Err(_) => false,
        }
    }

    fn get_slices<'a>(
        &'a self,
        addr: GuestAddress,
        count: usize,
        access: Permissions,
    ) -> vm_memory::GuestMemoryResult<impl GuestMemorySliceIterator<'a, BS<'a, ()>>> {
        Ok(self.slices(addr, count, access))
    }
}
