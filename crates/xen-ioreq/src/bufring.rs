// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Reader of the buffered IOREQ ring: posted writes Xen does not wait for.
//!
//! The page starts with `read_pointer` (ours) and `write_pointer` (Xen's), free-running
//! counters; entry `n` lives in slot `n % IOREQ_BUFFER_SLOT_NUM`. An 8-byte access (and a time
//! offset) takes two consecutive slots, the second holding the high 32 bits of the data; Xen
//! publishes both before advancing `write_pointer` by two.
//!
//! In `HVM_IOREQSRV_BUFIOREQ_ATOMIC` mode Xen may rebase both pointers at once with a 64-bit
//! compare-exchange, so the reader loads the pair with one 64-bit atomic load and moves
//! `read_pointer` on with a 64-bit compare-exchange from exactly the pair it loaded; this is
//! also correct for the legacy mode. If the pair changed in between (Xen published more
//! entries or rebased, or another reader took the entry) the exchange fails and
//! [`BufferedRing::pop`] looks again, so of several readers exactly one gets each entry.
//! (Several readers still take entries in no defined order between them: a server has one at
//! a time, see `IoreqServer::serve_buffered`.) Pointers that do not make sense are an error,
//! never a panic or an out-of-bounds access.
//!
//! A read pointer found put back over entries its one consumer already took (the Xen box shows
//! it at Xen's rebase, under emulation) is moved on again by [`BufferedRing::pop_after`], so
//! those entries are not served twice.

use std::sync::atomic::{AtomicU64, Ordering};

use xen_bindings::abi::xen::ioreq::{
    BufIoreq, IOREQ_BUFFER_SLOT_NUM, IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_TYPE_INVALIDATE,
    IOREQ_TYPE_PIO, IOREQ_TYPE_TIMEOFFSET,
};

use crate::error::{DecodeError, RingError};
use crate::page::IoPage;
use crate::request::{Access, Data, Dir, Request};

const SLOTS: u32 = IOREQ_BUFFER_SLOT_NUM as u32;
/// Offset of the first slot in the page.
const RING_OFFSET: usize = 8;

/// One entry of the buffered ring, its two slots (if any) joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufEntry {
    /// `IOREQ_TYPE_*`.
    pub io_type: u8,
    /// `IOREQ_READ` or `IOREQ_WRITE` (always a write from a sane Xen).
    pub dir: u8,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// The 20-bit address.
    pub addr: u32,
    /// The data; 64 bits for two-slot entries.
    pub data: u64,
}

impl BufEntry {
    /// Turns the entry into a request.
    pub fn decode(&self) -> Result<Request, DecodeError> {
        match self.io_type {
            IOREQ_TYPE_TIMEOFFSET => return Ok(Request::TimeOffset(self.data as i64)),
            IOREQ_TYPE_INVALIDATE => return Ok(Request::Invalidate),
            IOREQ_TYPE_PIO | IOREQ_TYPE_COPY => {}
            other => return Err(DecodeError::UnknownType(other)),
        }
        if self.dir == IOREQ_READ {
            return Err(DecodeError::BufferedRead(self.addr));
        }
        let access = Access {
            addr: u64::from(self.addr),
            size: self.size,
            count: 1,
            dir: Dir::Write,
            df: false,
            data: Data::Value(self.data),
        };
        Ok(if self.io_type == IOREQ_TYPE_PIO {
            Request::Pio(access)
        } else {
            Request::Mmio(access)
        })
    }
}

/// The buffered ring page, read by the device model.
#[derive(Debug)]
pub struct BufferedRing<P: IoPage> {
    page: P,
}

fn split(pair: u64) -> (u32, u32) {
    (pair as u32, (pair >> 32) as u32)
}

impl<P: IoPage> BufferedRing<P> {
    /// Views `page` as a buffered ring.
    pub fn new(page: P) -> Self {
        Self { page }
    }

    /// The page.
    pub fn page(&self) -> &P {
        &self.page
    }

    fn pointers(&self) -> &AtomicU64 {
        // SAFETY: the pointer pair is the first 8 bytes of the page, which is 8-aligned and
        // lives as long as `self`; it is only accessed atomically.
        unsafe { AtomicU64::from_ptr(self.page.page_ptr().as_ptr().cast()) }
    }

    fn slot(&self, index: u32) -> BufIoreq {
        let i = (index % SLOTS) as usize;
        // SAFETY: i < IOREQ_BUFFER_SLOT_NUM, so the slot lies inside the page (8 + 511 * 8 =
        // 4096 bytes); volatile because Xen writes it.
        unsafe {
            self.page
                .page_ptr()
                .as_ptr()
                .add(RING_OFFSET + i * std::mem::size_of::<BufIoreq>())
                .cast::<BufIoreq>()
                .read_volatile()
        }
    }

    /// `(read_pointer, write_pointer)` as of now.
    pub fn pointers_now(&self) -> (u32, u32) {
        split(self.pointers().load(Ordering::Acquire))
    }

    /// Number of published slots not yet consumed, or an error if the pointers are corrupt.
    pub fn pending_slots(&self) -> Result<u32, RingError> {
        let (read, write) = self.pointers_now();
        let avail = write.wrapping_sub(read);
        if avail > SLOTS {
            return Err(RingError::BadPointers { read, write });
        }
        Ok(avail)
    }

    /// Takes the next entry; `Ok(None)` when the ring is empty.
    ///
    /// Safe to call from several threads at once: each entry goes to exactly one caller (see
    /// the module documentation for the order).
    pub fn pop(&self) -> Result<Option<BufEntry>, RingError> {
        Ok(self.pop_after(None)?.0.map(|(entry, _)| entry))
    }

    /// [`BufferedRing::pop`] for the ring's one consumer, which says where it stopped: `next`,
    /// the position just after the last entry it took (`None` before the first). Returns the
    /// entry and the position after it, and how many slots it skipped first.
    ///
    /// Xen moves `read_pointer` only to rebase it by whole rings, which keeps its slot. A
    /// pointer found at another slot, back by fewer than half a ring and no more than is
    /// published, was put back over entries this consumer already took, by a store of the
    /// pair from before its last moves: seen in the Xen box (Xen 4.17 and 4.20 under
    /// emulation) around Xen's rebase, where those entries were then delivered twice. They
    /// are skipped, in the same compare-exchange loop as the pop, so a pointer put back at
    /// any moment is noticed before an entry is taken from it. Anything else (a pointer ahead
    /// of `next`: another consumer took entries) is left alone.
    pub fn pop_after(
        &self,
        next: Option<u32>,
    ) -> Result<(Option<(BufEntry, u32)>, u32), RingError> {
        let mut skipped = 0;
        let ptrs = self.pointers();
        let mut pair = ptrs.load(Ordering::Acquire);
        loop {
            let (read, write) = split(pair);
            let avail = write.wrapping_sub(read);
            if avail > SLOTS {
                return Err(RingError::BadPointers { read, write });
            }
            if let Some(next) = next {
                let back = (next % SLOTS + SLOTS - read % SLOTS) % SLOTS;
                if back != 0 && back < SLOTS / 2 && back <= avail {
                    let moved = u64::from(read.wrapping_add(back)) | (u64::from(write) << 32);
                    match ptrs.compare_exchange(pair, moved, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => {
                            skipped += back;
                            pair = moved;
                        }
                        Err(now) => pair = now,
                    }
                    continue;
                }
            }
            if avail == 0 {
                return Ok((None, skipped));
            }
            let first = self.slot(read);
            let size_log2 = first.size_log2();
            let (data, used) = if size_log2 == 3 {
                if avail < 2 {
                    return Err(RingError::TruncatedEntry { read });
                }
                let second = self.slot(read.wrapping_add(1));
                (u64::from(first.data) | (u64::from(second.data) << 32), 2)
            } else {
                (u64::from(first.data), 1)
            };
            // Consume exactly what was read, from exactly the pair it was read at: moving on
            // from whatever read_pointer is now would, if another reader took this entry
            // meanwhile (or the pointer was put back), deliver it twice and skip the next one.
            // Release: the slot reads happen before Xen may reuse the slots; Acquire on
            // failure, for the next look.
            let new = u64::from(read.wrapping_add(used)) | (u64::from(write) << 32);
            match ptrs.compare_exchange(pair, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let entry = BufEntry {
                        io_type: first.io_type(),
                        dir: first.dir(),
                        size: 1 << size_log2,
                        addr: first.addr(),
                        data,
                    };
                    return Ok((Some((entry, read.wrapping_add(used))), skipped));
                }
                // Taken by another reader, or Xen published more or rebased: look again.
                Err(now) => pair = now,
            }
        }
    }

    /// Drops everything published so far (after corrupt pointers: the only way to keep going
    /// with posted writes nobody waits for).
    pub fn resync(&self) {
        let ptrs = self.pointers();
        let mut cur = ptrs.load(Ordering::Acquire);
        loop {
            let (_, write) = split(cur);
            let new = u64::from(write) | (u64::from(write) << 32);
            match ptrs.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }
}

/// Producer side of the ring, as Xen writes it: for tests, fuzzing and benchmarks.
#[cfg(any(test, feature = "test-utils"))]
#[derive(Debug)]
pub struct RingWriter<'a, P: IoPage> {
    ring: &'a BufferedRing<P>,
}

#[cfg(any(test, feature = "test-utils"))]
impl<'a, P: IoPage> RingWriter<'a, P> {
    /// A producer for `ring`.
    pub fn new(ring: &'a BufferedRing<P>) -> Self {
        Self { ring }
    }

    fn put_slot(&self, index: u32, slot: BufIoreq) {
        let i = (index % SLOTS) as usize;
        // SAFETY: i < IOREQ_BUFFER_SLOT_NUM keeps the slot inside the page.
        unsafe {
            self.ring
                .page
                .page_ptr()
                .as_ptr()
                .add(RING_OFFSET + i * std::mem::size_of::<BufIoreq>())
                .cast::<BufIoreq>()
                .write_volatile(slot)
        }
    }

    /// Sets both pointers (to start at an arbitrary point, e.g. near wraparound).
    pub fn set_pointers(&self, read: u32, write: u32) {
        self.ring.pointers().store(
            u64::from(read) | (u64::from(write) << 32),
            Ordering::Release,
        );
    }

    /// Publishes one entry like Xen does; `false` if the ring is full.
    pub fn push(&self, io_type: u8, dir: u8, size_log2: u8, addr: u32, data: u64) -> bool {
        let (read, write) = self.ring.pointers_now();
        let qw = u32::from(size_log2 == 3);
        if write.wrapping_sub(read) >= SLOTS - qw {
            return false;
        }
        self.put_slot(
            write,
            BufIoreq::new(io_type, dir, size_log2, addr, data as u32),
        );
        if qw == 1 {
            self.put_slot(
                write.wrapping_add(1),
                BufIoreq::new(io_type, dir, size_log2, addr, (data >> 32) as u32),
            );
        }
        // Only write_pointer moves: a 32-bit store into the upper half, as Xen does.
        let ptrs = self.ring.pointers();
        let mut cur = ptrs.load(Ordering::Relaxed);
        loop {
            let (r, w) = split(cur);
            let new = u64::from(r) | (u64::from(w.wrapping_add(1 + qw)) << 32);
            match ptrs.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::LocalPage;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use xen_bindings::abi::xen::ioreq::IOREQ_WRITE;

    fn ring() -> BufferedRing<LocalPage> {
        BufferedRing::new(LocalPage::new())
    }

    #[test]
    fn a_read_pointer_put_back_is_moved_on_over_what_was_served() {
        let r = ring();
        let w = RingWriter::new(&r);
        for i in 0..8 {
            assert!(w.push(IOREQ_TYPE_COPY, IOREQ_WRITE, 0, 0xa0000 + i, 0));
        }
        let mut next = None;
        for i in 0..3 {
            let (popped, skipped) = r.pop_after(next).unwrap();
            let (e, after) = popped.unwrap();
            assert_eq!((e.addr, after, skipped), (0xa0000 + i, i + 1, 0));
            next = Some(after);
        }
        // What the box showed: a store of the pointer pair from before the last pops.
        w.set_pointers(1, 8);
        let (popped, skipped) = r.pop_after(next).unwrap();
        let (e, after) = popped.unwrap();
        assert_eq!((e.addr, after, skipped), (0xa0003, 4, 2));
        // Xen's rebase by whole rings keeps the slot: nothing to skip.
        w.set_pointers(4 + SLOTS, 8 + SLOTS);
        let (popped, skipped) = r.pop_after(Some(4)).unwrap();
        assert_eq!((popped.unwrap().0.addr, skipped), (0xa0004, 0));
        // Ahead of the record (another consumer took entries), or back by more than is
        // published: left alone.
        w.set_pointers(7, 8);
        let (popped, skipped) = r.pop_after(Some(5)).unwrap();
        assert_eq!((popped.unwrap().0.addr, skipped), (0xa0007, 0));
        w.set_pointers(1, 2);
        let (popped, skipped) = r.pop_after(Some(4)).unwrap();
        assert_eq!((popped.unwrap().0.addr, skipped), (0xa0001, 0));
    }

    #[test]
    fn empty_ring_pops_nothing() {
        let r = ring();
        assert_eq!(r.pop(), Ok(None));
        assert_eq!(r.pending_slots(), Ok(0));
    }

    #[test]
    fn entries_of_every_size_in_order() {
        let r = ring();
        let w = RingWriter::new(&r);
        for (i, log2) in [0u8, 1, 2, 3].into_iter().enumerate() {
            assert!(w.push(
                IOREQ_TYPE_COPY,
                IOREQ_WRITE,
                log2,
                0xa0000 + i as u32,
                0x1122_3344_5566_7788
            ));
        }
        assert_eq!(r.pending_slots(), Ok(5), "the 8-byte write takes two slots");
        for (i, size) in [1u8, 2, 4, 8].into_iter().enumerate() {
            let e = r.pop().unwrap().unwrap();
            assert_eq!(e.size, size);
            assert_eq!(e.addr, 0xa0000 + i as u32);
            let want = if size == 8 {
                0x1122_3344_5566_7788
            } else {
                0x5566_7788
            };
            assert_eq!(e.data, want);
            assert_eq!(
                e.decode().unwrap(),
                Request::Mmio(Access {
                    addr: u64::from(e.addr),
                    size,
                    count: 1,
                    dir: Dir::Write,
                    df: false,
                    data: Data::Value(want),
                })
            );
        }
        assert_eq!(r.pop(), Ok(None));
        assert_eq!(r.pointers_now(), (5, 5));
    }

    #[test]
    fn wraparound_of_slots_and_of_the_counters() {
        // Two-slot entries straddling the end of the ring, with counters about to wrap u32.
        for start in [SLOTS - 1, u32::MAX - 2, u32::MAX] {
            let r = ring();
            let w = RingWriter::new(&r);
            w.set_pointers(start, start);
            for k in 0..600u64 {
                assert!(w.push(IOREQ_TYPE_PIO, IOREQ_WRITE, 3, 0x3c0, k << 33 | k));
                let e = r.pop().unwrap().unwrap();
                assert_eq!(e.data, k << 33 | k, "entry {k} from {start:#x}");
                assert_eq!(e.io_type, IOREQ_TYPE_PIO);
            }
            assert_eq!(r.pop(), Ok(None));
        }
    }

    #[test]
    fn full_ring_refuses_like_xen() {
        let r = ring();
        let w = RingWriter::new(&r);
        for _ in 0..SLOTS {
            assert!(w.push(IOREQ_TYPE_COPY, IOREQ_WRITE, 0, 0, 1));
        }
        assert!(!w.push(IOREQ_TYPE_COPY, IOREQ_WRITE, 0, 0, 1));
        assert_eq!(r.pending_slots(), Ok(SLOTS));
        for _ in 0..SLOTS {
            r.pop().unwrap().unwrap();
        }
        assert_eq!(r.pop(), Ok(None));
    }

    #[test]
    fn hostile_pointers_are_errors_and_resync_recovers() {
        let r = ring();
        let w = RingWriter::new(&r);
        w.set_pointers(10, 10 + SLOTS + 1);
        assert_eq!(
            r.pop(),
            Err(RingError::BadPointers {
                read: 10,
                write: 10 + SLOTS + 1
            })
        );
        w.set_pointers(100, 5);
        assert!(r.pop().is_err(), "consumer ahead of producer");
        r.resync();
        assert_eq!(r.pop(), Ok(None));
        // A two-slot entry with only one slot published.
        w.set_pointers(0, 0);
        assert!(w.push(IOREQ_TYPE_COPY, IOREQ_WRITE, 3, 0, u64::MAX));
        w.set_pointers(0, 1);
        assert_eq!(r.pop(), Err(RingError::TruncatedEntry { read: 0 }));
    }

    /// A page that runs a hook once, when a reader asks for its address for the `at`-th time
    /// after [`HookPage::arm`]: [`BufferedRing::pop`] asks once per access (pointer pair,
    /// each slot, the exchange), so a test can stop one reader at a chosen point of `pop` and
    /// run another reader there.
    #[derive(Default)]
    struct HookPage {
        mem: LocalPage,
        calls: AtomicUsize,
        at: AtomicUsize,
        hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl HookPage {
        fn arm(&self, at: usize, hook: impl FnOnce() + Send + 'static) {
            *self.hook.lock().unwrap() = Some(Box::new(hook));
            self.calls.store(0, Ordering::SeqCst);
            self.at.store(at, Ordering::SeqCst);
        }
    }

    // SAFETY: forwards to a `LocalPage`, which meets the contract.
    unsafe impl IoPage for HookPage {
        fn page_ptr(&self) -> std::ptr::NonNull<u8> {
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at.load(Ordering::SeqCst) {
                let hook = self.hook.lock().unwrap().take();
                if let Some(hook) = hook {
                    hook();
                }
            }
            self.mem.page_ptr()
        }
    }

    #[test]
    fn two_readers_get_each_entry_once() {
        let page = Arc::new(HookPage::default());
        let a = BufferedRing::new(page.clone());
        let w = RingWriter::new(&a);
        for v in 1..=3 {
            assert!(w.push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x3c0, v));
        }
        // Reader A has loaded the pointers and is about to read the first slot (the page's
        // second access) when reader B takes that entry.
        let b = BufferedRing::new(page.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        page.arm(2, move || tx.send(b.pop().unwrap().unwrap().data).unwrap());
        let mut got = vec![a.pop().unwrap().unwrap().data];
        got.push(rx.try_recv().expect("reader B ran inside A's pop"));
        while let Some(e) = a.pop().unwrap() {
            got.push(e.data);
        }
        got.sort();
        assert_eq!(got, [1, 2, 3], "each entry once, none lost");
        assert_eq!(a.pointers_now(), (3, 3));
    }

    #[test]
    fn buffered_decode_of_other_kinds() {
        let e = BufEntry {
            io_type: IOREQ_TYPE_TIMEOFFSET,
            dir: IOREQ_WRITE,
            size: 8,
            addr: 0,
            data: (-7i64) as u64,
        };
        assert_eq!(e.decode(), Ok(Request::TimeOffset(-7)));
        let e = BufEntry {
            io_type: IOREQ_TYPE_COPY,
            dir: IOREQ_READ,
            ..e
        };
        assert_eq!(e.decode(), Err(DecodeError::BufferedRead(0)));
        let e = BufEntry { io_type: 42, ..e };
        assert_eq!(e.decode(), Err(DecodeError::UnknownType(42)));
        let e = BufEntry {
            io_type: IOREQ_TYPE_INVALIDATE,
            ..e
        };
        assert_eq!(e.decode(), Ok(Request::Invalidate));
    }
}
