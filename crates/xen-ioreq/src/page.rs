// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The synchronous IOREQ page and the slot state machine.
//!
//! Xen and the device model share the page: Xen fills a vCPU's slot, sets its state to
//! `STATE_IOREQ_READY` and signals the vCPU's event channel; the device model takes the request
//! (`STATE_IOREQ_INPROCESS`), handles it, writes the result and sets `STATE_IORESP_READY`.
//!
//! Ordering: the state lives in the low four bits of byte 30 of the slot and is only ever
//! accessed with atomics on that byte. After seeing `READY` the reader issues an *Acquire*
//! load, so the fields Xen wrote before publishing are visible; the response's `data` is
//! written before the state is published with a *Release* store. All other fields are read
//! and written with volatile accesses, since another party writes them behind the compiler's
//! back. The memory is never turned into a Rust reference.

#[cfg(any(test, feature = "test-utils"))]
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use xen_bindings::abi::xen::ioreq::{
    Ioreq, IOREQS_PER_PAGE, IOREQ_FLAGS_OFFSET, IOREQ_STATE_MASK, STATE_IOREQ_INPROCESS,
    STATE_IOREQ_READY, STATE_IORESP_READY,
};
use xen_bindings::abi::xen::XEN_PAGE_SIZE;
use xen_bindings::privcmd::ResourceMapping;
use xen_bindings::sys::Sys;

/// A page of memory shared with Xen (or a stand-in for tests).
///
/// # Safety
///
/// Implementors promise that [`IoPage::page_ptr`] points at [`XEN_PAGE_SIZE`] bytes, aligned to
/// 8, readable and writable, valid as long as the implementor lives, and that the bytes are
/// only ever accessed through raw pointers (no Rust reference to them exists), so concurrent
/// access from another party is allowed.
pub unsafe trait IoPage: Send + Sync {
    /// Start of the page.
    fn page_ptr(&self) -> NonNull<u8>;
}

/// A page-sized, page-aligned heap buffer: the synchronous or buffered page of a fake Xen in
/// unit tests, fuzz targets and benchmarks.
#[cfg(any(test, feature = "test-utils"))]
#[derive(Debug)]
pub struct LocalPage {
    mem: Box<UnsafeCell<AlignedPage>>,
}

#[cfg(any(test, feature = "test-utils"))]
#[repr(C, align(4096))]
#[derive(Debug)]
struct AlignedPage([u8; XEN_PAGE_SIZE]);

#[cfg(any(test, feature = "test-utils"))]
impl Default for LocalPage {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(test, feature = "test-utils"))]
impl LocalPage {
    /// A zeroed page.
    pub fn new() -> Self {
        Self {
            mem: Box::new(UnsafeCell::new(AlignedPage([0; XEN_PAGE_SIZE]))),
        }
    }

    /// Copies `bytes` into the page at `offset` (volatile, like the other party would).
    ///
    /// # Panics
    ///
    /// If the range is outside the page: this is a test helper.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= XEN_PAGE_SIZE, "outside the page");
        let base = self.page_ptr().as_ptr();
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds (checked above) of the page this value owns.
            unsafe { base.add(offset + i).write_volatile(*b) };
        }
    }

    /// Copies `len` bytes out of the page at `offset`.
    ///
    /// # Panics
    ///
    /// If the range is outside the page.
    pub fn read_bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= XEN_PAGE_SIZE, "outside the page");
        let base = self.page_ptr().as_ptr();
        // SAFETY: in bounds (checked above) of the page this value owns.
        (0..len)
            .map(|i| unsafe { base.add(offset + i).read_volatile() })
            .collect()
    }
}

// SAFETY: the buffer is a heap allocation of one aligned page owned by `self`; it is only
// reached through the raw pointer.
#[cfg(any(test, feature = "test-utils"))]
unsafe impl IoPage for LocalPage {
    fn page_ptr(&self) -> NonNull<u8> {
        // SAFETY: UnsafeCell::get of a live box is never null.
        unsafe { NonNull::new_unchecked(self.mem.get().cast()) }
    }
}

// SAFETY: all access goes through raw pointers with atomics/volatile, as for Xen's pages.
#[cfg(any(test, feature = "test-utils"))]
unsafe impl Sync for LocalPage {}

// SAFETY: forwards to the inner page, which meets the contract.
unsafe impl<P: IoPage + ?Sized> IoPage for Arc<P> {
    fn page_ptr(&self) -> NonNull<u8> {
        (**self).page_ptr()
    }
}

// SAFETY: forwards to the inner page, which meets the contract.
unsafe impl<P: IoPage + ?Sized> IoPage for Box<P> {
    fn page_ptr(&self) -> NonNull<u8> {
        (**self).page_ptr()
    }
}

/// One page of a privcmd resource mapping (Xen's IOREQ server pages).
#[derive(Debug)]
pub struct MappedPage<S: Sys> {
    mapping: ResourceMapping<S>,
}

impl<S: Sys> MappedPage<S> {
    /// Wraps a mapping of exactly one page; `None` otherwise.
    pub fn new(mapping: ResourceMapping<S>) -> Option<Self> {
        (mapping.len() == XEN_PAGE_SIZE && !mapping.as_ptr().is_null()).then_some(Self { mapping })
    }

    /// The underlying mapping (for `Privcmd::ioeventfd`).
    pub fn mapping(&self) -> &ResourceMapping<S> {
        &self.mapping
    }
}

// SAFETY: a one-page shared mapping (checked in `new`), mmap'd so page aligned, owned by the
// `ResourceMapping` and unmapped only when it drops; it is only reached through raw pointers.
unsafe impl<S: Sys> IoPage for MappedPage<S> {
    fn page_ptr(&self) -> NonNull<u8> {
        // SAFETY: `new` checked the pointer is not null.
        unsafe { NonNull::new_unchecked(self.mapping.as_ptr()) }
    }
}

/// The synchronous IOREQ page: one slot per vCPU.
#[derive(Debug)]
pub struct IoreqPage<P: IoPage> {
    page: P,
    vcpus: usize,
}

impl<P: IoPage> IoreqPage<P> {
    /// Views `page` as the synchronous page of a domain with `vcpus` vCPUs; `None` if the page
    /// cannot hold that many slots.
    pub fn new(page: P, vcpus: usize) -> Option<Self> {
        (vcpus <= IOREQS_PER_PAGE).then_some(Self { page, vcpus })
    }

    /// Number of vCPU slots in use.
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// The page.
    pub fn page(&self) -> &P {
        &self.page
    }

    /// The slot of `vcpu`, if it exists.
    pub fn slot(&self, vcpu: usize) -> Option<Slot<'_>> {
        if vcpu >= self.vcpus {
            return None;
        }
        // SAFETY: vcpu < vcpus <= IOREQS_PER_PAGE, so the slot lies inside the page.
        let ptr = unsafe {
            self.page
                .page_ptr()
                .as_ptr()
                .add(vcpu * std::mem::size_of::<Ioreq>())
        };
        Some(Slot {
            ptr: ptr.cast(),
            _page: std::marker::PhantomData,
        })
    }
}

/// One vCPU's slot of the synchronous page.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    ptr: *mut Ioreq,
    _page: std::marker::PhantomData<&'a ()>,
}

/// A request taken from a slot: the raw copy plus the slot to complete it in.
#[derive(Debug)]
pub struct Taken<'a> {
    slot: Slot<'a>,
    /// The slot's contents when it was taken.
    pub raw: Ioreq,
}

impl<'a> Slot<'a> {
    fn state_byte(&self) -> &'a AtomicU8 {
        // SAFETY: the flags byte is inside the slot, which is inside a live page for 'a; the
        // byte is only ever accessed atomically by us (Xen uses plain byte stores, which are
        // single-copy atomic), and AtomicU8 has alignment 1.
        unsafe { AtomicU8::from_ptr((self.ptr as *mut u8).add(IOREQ_FLAGS_OFFSET)) }
    }

    /// The current `STATE_*` of the slot.
    pub fn state(&self) -> u8 {
        self.state_byte().load(Ordering::Acquire) & IOREQ_STATE_MASK
    }

    /// The `vp_eport` field (the vCPU's event channel in Xen's domain).
    pub fn vp_eport(&self) -> u32 {
        // SAFETY: the field is inside the slot; volatile because Xen writes it.
        unsafe { std::ptr::addr_of!((*self.ptr).vp_eport).read_volatile() }
    }

    /// A copy of the slot as it is now, without taking it (to look at a `READY` request that
    /// may be someone else's to serve). Xen does not write a `READY` slot, but another reader
    /// may take it meanwhile: decide with [`Slot::take`], not with the copy.
    pub fn peek(&self) -> Ioreq {
        // SAFETY: the slot is inside a live page; a volatile copy of plain integers is valid
        // whatever the other parties are doing.
        unsafe { self.ptr.read_volatile() }
    }

    /// Takes the request if the slot is `STATE_IOREQ_READY`, moving it to `IN_PROCESS`.
    ///
    /// The move is one compare-and-swap, so of several threads looking at the slot (say, one
    /// woken by the port and one sweeping every slot) exactly one takes the request.
    #[inline]
    pub fn take(self) -> Option<Taken<'a>> {
        let flags = self.take_flags()?;
        let mut raw = self.taken_copy();
        raw.flags = flags;
        Some(Taken { slot: self, raw })
    }

    /// [`Slot::take`] without the copy: moves a `STATE_IOREQ_READY` slot to `IN_PROCESS` and
    /// returns its flags byte as it was (state READY). The caller reads the fields it needs
    /// with the `taken_*` methods, each once.
    #[inline(always)]
    pub(crate) fn take_flags(self) -> Option<u8> {
        let state = self.state_byte();
        // Relaxed: the compare-exchange below is the acquire that orders the request's reads
        // after Xen's publication of READY; this load only chooses the value to swap.
        let flags = state.load(Ordering::Relaxed);
        if flags & IOREQ_STATE_MASK != STATE_IOREQ_READY {
            return None;
        }
        // The state bits are READY: adding the difference makes them IN_PROCESS and leaves the
        // others as they are.
        let taken = flags + (STATE_IOREQ_INPROCESS - STATE_IOREQ_READY);
        state
            .compare_exchange(flags, taken, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(flags)
    }

    /// A copy of a slot this thread took ([`Slot::take_flags`]), its flags byte as it is now
    /// (`IN_PROCESS`).
    #[inline]
    pub(crate) fn taken_copy(&self) -> Ioreq {
        // SAFETY: the slot is inside a live page and 8-aligned (32-byte slots of an aligned
        // page); Xen does not write it while it is IN_PROCESS, and the swap that took it made
        // this thread its only reader. Read as four words: a volatile read of the struct is
        // made field by field.
        let words = unsafe { self.ptr.cast::<[u64; 4]>().read_volatile() };
        // SAFETY: `Ioreq` is a 32-byte plain-old-data struct of integers (its layout test in
        // xen-bindings says so), for which every bit pattern is a value.
        unsafe { std::mem::transmute::<[u64; 4], Ioreq>(words) }
    }

    /// The `addr` field of a slot this thread took.
    #[inline(always)]
    pub(crate) fn taken_addr(&self) -> u64 {
        // SAFETY: the field is inside the slot, which the caller owns while it is IN_PROCESS
        // (Xen does not write it then); volatile, so it is read once, where written.
        unsafe { std::ptr::addr_of!((*self.ptr).addr).read_volatile() }
    }

    /// The `data` field of a slot this thread took.
    #[inline(always)]
    pub(crate) fn taken_data(&self) -> u64 {
        // SAFETY: as in `taken_addr`.
        unsafe { std::ptr::addr_of!((*self.ptr).data).read_volatile() }
    }

    /// The `size` field of a slot this thread took if its `count` is 1 and its `size` one a
    /// [`vm_device_bus::DeviceBus`] serves (1, 2, 4 or 8): the one-element request of the
    /// common path.
    #[inline(always)]
    pub(crate) fn taken_single_size(&self) -> Option<u8> {
        // SAFETY: as in `taken_addr`: `count` is at offset 16 of the 8-aligned slot, followed
        // by `size`, so the word they make is inside the slot and aligned.
        let word = unsafe {
            std::ptr::addr_of!((*self.ptr).count)
                .cast::<u64>()
                .read_volatile()
        };
        // Both tested at once: with `count`'s 1 cleared and the halves swapped, the word is
        // the size when `count` was 1, and more than 8 otherwise.
        let shape = if cfg!(target_endian = "little") {
            (word ^ 1).rotate_left(32)
        } else {
            word ^ (1 << 32)
        };
        // The test `vm_device_bus::IoBus` makes, written as it is there so that the compiler
        // leaves out the bus's once this one passed.
        const SIZES: u32 = 1 << 1 | 1 << 2 | 1 << 4 | 1 << 8;
        let size = shape as usize;
        (shape <= 8 && SIZES >> size & 1 != 0).then_some(size as u8)
    }

    /// The flags byte and the `type_` field of a slot this thread took, as one number:
    /// `flags | type_ << 8` (one load: `type_` is the byte after the flags).
    #[inline(always)]
    pub(crate) fn taken_kind(&self) -> u16 {
        // SAFETY: as in `taken_addr`: the flags byte is at offset 30 of the 8-aligned slot,
        // followed by `type_`, so the two bytes are inside the slot and 2-aligned.
        let word = unsafe {
            (self.ptr as *const u8)
                .add(IOREQ_FLAGS_OFFSET)
                .cast::<u16>()
                .read_volatile()
        };
        u16::from_le(word)
    }
}

impl<'a> Taken<'a> {
    /// Publishes the response: writes `data` (if any) and sets `STATE_IORESP_READY` with
    /// Release ordering, so Xen sees the data once it sees the state.
    pub fn complete(self, data: Option<u64>) {
        self.publish(data);
    }

    /// [`Taken::complete`] without giving the request up.
    #[inline]
    pub(crate) fn publish(&self, data: Option<u64>) {
        self.slot.publish(self.raw.flags, data);
    }

    /// The slot and the copy of the request (the server's answer guard keeps the slot, and
    /// the request apart from it).
    #[inline]
    pub(crate) fn into_parts(self) -> (Slot<'a>, Ioreq) {
        (self.slot, self.raw)
    }
}

impl Slot<'_> {
    /// [`Slot::publish`] for the taker of the slot's request ([`Slot::take_flags`]), with the
    /// flags byte read back from the slot: only the taker writes it while it is `IN_PROCESS`.
    #[inline(always)]
    pub(crate) fn publish_taken(&self, data: Option<u64>) {
        let ptr = self.ptr;
        if let Some(d) = data {
            // SAFETY: the field is inside the slot, which the caller owns while it is
            // IN_PROCESS.
            unsafe { std::ptr::addr_of_mut!((*ptr).data).write_volatile(d) };
        }
        let state = self.state_byte();
        // The state bits are IN_PROCESS, set by the taker: adding the difference makes them
        // IORESP_READY and leaves the others as they are.
        let flags = state
            .load(Ordering::Relaxed)
            .wrapping_add(STATE_IORESP_READY - STATE_IOREQ_INPROCESS);
        // Release: Xen sees the data once it sees the state.
        state.store(flags, Ordering::Release);
    }

    /// Publishes the response of the request taken from this slot, whose flags byte was
    /// `flags` when taken: writes `data` (if any) and sets `STATE_IORESP_READY` with Release
    /// ordering, so Xen sees the data once it sees the state. Only for the taker of the
    /// slot's request, once.
    #[inline]
    pub(crate) fn publish(&self, flags: u8, data: Option<u64>) {
        let ptr = self.ptr;
        if let Some(d) = data {
            // SAFETY: the field is inside the slot, which the caller owns while it is
            // IN_PROCESS.
            unsafe { std::ptr::addr_of_mut!((*ptr).data).write_volatile(d) };
        }
        self.state_byte().store(
            (flags & !IOREQ_STATE_MASK) | STATE_IORESP_READY,
            Ordering::Release,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_bindings::abi::xen::ioreq::{IOREQ_READ, IOREQ_TYPE_COPY, STATE_IOREQ_NONE};
    use xen_bindings::abi::Pod;

    pub(crate) fn publish(page: &LocalPage, vcpu: usize, mut r: Ioreq) {
        r.set_state(STATE_IOREQ_NONE);
        let off = vcpu * 32;
        page.write_bytes(off, r.as_bytes());
        r.set_state(STATE_IOREQ_READY);
        page.write_bytes(off + IOREQ_FLAGS_OFFSET, &[r.flags]);
    }

    #[test]
    fn state_machine_ready_inprocess_respready() {
        let page = IoreqPage::new(LocalPage::new(), 2).unwrap();
        let slot = page.slot(1).unwrap();
        assert_eq!(slot.state(), STATE_IOREQ_NONE);
        assert!(slot.take().is_none(), "nothing to take in NONE");
        let mut r = Ioreq {
            addr: 0x1000,
            size: 4,
            count: 1,
            type_: IOREQ_TYPE_COPY,
            vp_eport: 9,
            ..Default::default()
        };
        r.set_dir(IOREQ_READ);
        publish(page.page(), 1, r);
        assert_eq!(slot.vp_eport(), 9);
        let taken = slot.take().unwrap();
        assert_eq!(taken.raw.addr, 0x1000);
        assert!(taken.raw.is_read());
        assert_eq!(slot.state(), STATE_IOREQ_INPROCESS);
        assert!(slot.take().is_none(), "IN_PROCESS is not taken twice");
        taken.complete(Some(0xabcd));
        assert_eq!(slot.state(), STATE_IORESP_READY);
        let back = Ioreq::from_bytes(&page.page().read_bytes(32, 32)).unwrap();
        assert_eq!(back.data, 0xabcd);
        assert!(back.is_read(), "other flag bits are kept");
        assert_eq!(page.slot(0).unwrap().state(), STATE_IOREQ_NONE);
        assert!(page.slot(2).is_none());
    }

    #[test]
    fn page_bounds() {
        assert!(IoreqPage::new(LocalPage::new(), IOREQS_PER_PAGE).is_some());
        assert!(IoreqPage::new(LocalPage::new(), IOREQS_PER_PAGE + 1).is_none());
        let page = IoreqPage::new(LocalPage::new(), IOREQS_PER_PAGE).unwrap();
        let last = page.slot(IOREQS_PER_PAGE - 1).unwrap();
        assert!(last.take().is_none());
    }
}
