// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The virtio_rng example's device against hostile descriptors, on the host (no Xen): what a
//! guest's lengths and addresses may cost the device model.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vm_device_bus::IoHandler;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

#[allow(dead_code)]
#[path = "../examples/virtio_rng/device.rs"]
mod device;

use device::{stream_byte, RngDevice, MAX_BYTES_PER_BUFFER, VIRTIO_F_VERSION_1};

/// Counts the largest allocation a tracking thread makes (and refuses absurd ones, which
/// aborts the test instead of letting it eat the machine).
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: delegates to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACK.try_with(Cell::get).unwrap_or(false) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            if layout.size() > 1 << 30 {
                return std::ptr::null_mut();
            }
        }
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

const RAM: u64 = 0x20_0000;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const QSIZE: u16 = 8;
const VIRTQ_DESC_F_WRITE: u16 = 2;

fn reg(dev: &RngDevice, offset: u64, v: u32) {
    dev.write(offset, &v.to_le_bytes()).unwrap();
}

/// A device whose queue 0 the "driver" has set up at DESC/AVAIL/USED, and its memory.
fn ready_device() -> (RngDevice, GuestMemoryMmap) {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
    let kick = Arc::new(EventFd::new(0).unwrap());
    let irq = Arc::new(EventFd::new(0).unwrap());
    let dev = RngDevice::new(kick, irq);
    reg(&dev, 0x070, 1 | 2); // ACKNOWLEDGE | DRIVER
    reg(&dev, 0x024, 1);
    reg(&dev, 0x020, (VIRTIO_F_VERSION_1 >> 32) as u32);
    reg(&dev, 0x070, 1 | 2 | 8); // FEATURES_OK
    reg(&dev, 0x030, 0);
    reg(&dev, 0x038, u32::from(QSIZE));
    for (low, addr) in [(0x080, DESC), (0x090, AVAIL), (0x0a0, USED)] {
        reg(&dev, low, addr as u32);
        reg(&dev, low + 4, (addr >> 32) as u32);
    }
    reg(&dev, 0x044, 1);
    reg(&dev, 0x070, 1 | 2 | 8 | 4); // DRIVER_OK
    (dev, mem)
}

/// Posts one single-descriptor writable buffer per (addr, len), as the driver would.
fn post(mem: &GuestMemoryMmap, bufs: &[(u64, u32)]) {
    for (i, &(addr, len)) in bufs.iter().enumerate() {
        let d = GuestAddress(DESC + 16 * i as u64);
        mem.write_obj(addr, d).unwrap();
        mem.write_obj(len, GuestAddress(d.0 + 8)).unwrap();
        mem.write_obj(VIRTQ_DESC_F_WRITE, GuestAddress(d.0 + 12))
            .unwrap();
        mem.write_obj(0u16, GuestAddress(d.0 + 14)).unwrap();
        mem.write_obj(i as u16, GuestAddress(AVAIL + 4 + 2 * i as u64))
            .unwrap();
    }
    mem.write_obj(bufs.len() as u16, GuestAddress(AVAIL + 2))
        .unwrap();
}

/// The used lengths of the first `n` used-ring entries.
fn used_lens(mem: &GuestMemoryMmap, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            mem.read_obj(GuestAddress(USED + 4 + 8 * i as u64 + 4))
                .unwrap()
        })
        .collect()
}

#[test]
fn hostile_lengths_cost_a_bounded_allocation_and_fill_only_ram() {
    let (dev, mem) = ready_device();
    post(
        &mem,
        &[
            (RAM - 0x1000, 64 << 20),  // 64 MiB offered, 4 KiB of RAM left
            (0x10_0000, u32::MAX),     // 4 GiB offered inside RAM
            (RAM + 0x1000, u32::MAX),  // outside RAM altogether
            (u64::MAX - 0x10, 0x1000), // wraps the address space
        ],
    );
    LARGEST.store(0, Ordering::Relaxed);
    TRACK.with(|t| t.set(true));
    let used = dev.process(&mem);
    TRACK.with(|t| t.set(false));
    assert_eq!(used, 4, "every buffer is completed, whatever it held");
    assert_eq!(
        used_lens(&mem, 4),
        [0x1000, MAX_BYTES_PER_BUFFER, 0, 0],
        "a buffer gets what fits in RAM, at most MAX_BYTES_PER_BUFFER"
    );
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= 64 << 10,
        "process() allocated {largest} bytes at once for guest-chosen lengths"
    );
}

#[test]
fn a_buffer_gets_the_stream_in_order() {
    let (dev, mem) = ready_device();
    post(&mem, &[(0x10_0000, 1000), (0x11_0000, 24)]);
    assert_eq!(dev.process(&mem), 2);
    assert_eq!(used_lens(&mem, 2), [1000, 24]);
    let mut got = vec![0u8; 1000];
    mem.read_slice(&mut got, GuestAddress(0x10_0000)).unwrap();
    let want: Vec<u8> = (0..1000).map(stream_byte).collect();
    assert_eq!(got, want);
    let mut tail = [0u8; 24];
    mem.read_slice(&mut tail, GuestAddress(0x11_0000)).unwrap();
    let want: Vec<u8> = (1000..1024).map(stream_byte).collect();
    assert_eq!(&tail[..], &want[..]);
}

/// Writes descriptor `i`: `addr`, `len`, WRITE (and NEXT to `next`, if any).
fn put_desc(mem: &GuestMemoryMmap, i: u16, addr: u64, len: u32, next: Option<u16>) {
    let d = GuestAddress(DESC + 16 * u64::from(i));
    mem.write_obj(addr, d).unwrap();
    mem.write_obj(len, GuestAddress(d.0 + 8)).unwrap();
    let flags = VIRTQ_DESC_F_WRITE | u16::from(next.is_some());
    mem.write_obj(flags, GuestAddress(d.0 + 12)).unwrap();
    mem.write_obj(next.unwrap_or(0), GuestAddress(d.0 + 14))
        .unwrap();
}

#[test]
fn broken_chains_are_completed_empty_and_the_queue_goes_on() {
    let (dev, mem) = ready_device();
    // Head 0: 0 -> 1 -> 0, a loop. Head 2: two 0xffffffff descriptors (past 4 GiB). Head 4:
    // linked to a descriptor past the queue. Head 5: a good one, after them.
    put_desc(&mem, 0, 0x10_0000, 16, Some(1));
    put_desc(&mem, 1, 0x10_1000, 16, Some(0));
    put_desc(&mem, 2, 0x10_2000, u32::MAX, Some(3));
    put_desc(&mem, 3, 0x10_2000, u32::MAX, None);
    put_desc(&mem, 4, 0x10_3000, 16, Some(QSIZE + 5));
    put_desc(&mem, 5, 0x10_4000, 32, None);
    for (slot, head) in [0u16, 2, 4, 5].into_iter().enumerate() {
        mem.write_obj(head, GuestAddress(AVAIL + 4 + 2 * slot as u64))
            .unwrap();
    }
    mem.write_obj(4u16, GuestAddress(AVAIL + 2)).unwrap();
    let untouched = [0u8; 16];
    assert_eq!(dev.process(&mem), 4, "every chain is completed");
    assert_eq!(used_lens(&mem, 4), [0, 0, 0, 32]);
    let mut buf = [0u8; 16];
    mem.read_slice(&mut buf, GuestAddress(0x10_0000)).unwrap();
    assert_eq!(buf, untouched, "nothing written through the loop");
    let mut good = [0u8; 32];
    mem.read_slice(&mut good, GuestAddress(0x10_4000)).unwrap();
    let want: Vec<u8> = (0..32).map(stream_byte).collect();
    assert_eq!(
        &good[..],
        &want[..],
        "the good chain gets the stream from its start"
    );
}
