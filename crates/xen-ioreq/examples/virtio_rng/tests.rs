// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the example's device: a driver written here sets the queue up in guest
//! memory and offers buffers, as the guest's virtio-rng driver would.

use std::sync::Arc;

use vm_device_bus::{IoBus, IoHandler};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::DomId;
use xen_foreignmem::fake::FakeGuest;
use xen_foreignmem::grant_addr;
use xen_ioreq::{Dispatcher, Request};

use crate::device::{stream_byte, QueueMemory, RngDevice};

/// Descriptor flag: the device writes the buffer.
const VIRTQ_DESC_F_WRITE: u16 = 2;
const QUEUE_SIZE: u16 = 8;

fn device() -> RngDevice {
    let fd = || Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    RngDevice::new(fd(), fd())
}

fn reg(dev: &RngDevice, offset: u64, v: u32) {
    dev.write(offset, &v.to_le_bytes()).unwrap();
}

/// Guest memory as the guest itself sees it (not through the device's mappings).
trait Guest {
    fn put(&self, gpa: u64, data: &[u8]);
    fn get(&self, gpa: u64, len: usize) -> Vec<u8>;
}

impl Guest for GuestMemoryMmap<()> {
    fn put(&self, gpa: u64, data: &[u8]) {
        self.write_slice(data, GuestAddress(gpa)).unwrap();
    }
    fn get(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.read_slice(&mut v, GuestAddress(gpa)).unwrap();
        v
    }
}

impl Guest for FakeGuest {
    fn put(&self, gpa: u64, data: &[u8]) {
        self.write_guest(gpa, data).unwrap();
    }
    fn get(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.read_guest(gpa, &mut v).unwrap();
        v
    }
}

/// Where the driver puts its queue, as the device is told (guest-physical or grant addresses).
#[derive(Clone, Copy)]
struct Rings {
    desc: u64,
    avail: u64,
    used: u64,
}

/// The driver's part of the device initialisation: reset, features, queue 0 at `rings`.
fn set_up(dev: &RngDevice, rings: Rings) {
    reg(dev, 0x070, 0); // reset
    reg(dev, 0x070, 1 | 2); // ACKNOWLEDGE, DRIVER
    reg(dev, 0x024, 1);
    reg(dev, 0x020, 1); // VERSION_1
    reg(dev, 0x070, 1 | 2 | 8); // FEATURES_OK
    reg(dev, 0x030, 0);
    reg(dev, 0x038, u32::from(QUEUE_SIZE));
    for (low, addr) in [
        (0x080, rings.desc),
        (0x090, rings.avail),
        (0x0a0, rings.used),
    ] {
        reg(dev, low, addr as u32);
        reg(dev, low + 4, (addr >> 32) as u32);
    }
    reg(dev, 0x044, 1);
    reg(dev, 0x070, 1 | 2 | 8 | 4); // DRIVER_OK
}

/// Descriptor `i` of the table at guest address `desc`: one device-writable buffer of `len`
/// bytes at `addr` (as the device is told).
fn put_buffer(guest: &impl Guest, desc: u64, i: u16, addr: u64, len: u32) {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&VIRTQ_DESC_F_WRITE.to_le_bytes());
    guest.put(desc + 16 * u64::from(i), &d);
}

/// Offers descriptor `head` as the `n`-th available buffer (0-based) of the ring at guest
/// address `avail`.
fn offer(guest: &impl Guest, avail: u64, n: u16, head: u16) {
    guest.put(
        avail + 4 + 2 * u64::from(n % QUEUE_SIZE),
        &head.to_le_bytes(),
    );
    guest.put(avail + 2, &n.wrapping_add(1).to_le_bytes());
}

/// The used ring's index and its entry `n`: (id, len).
fn used(guest: &impl Guest, used: u64, n: u16) -> (u16, (u32, u32)) {
    let word = |at: u64| u32::from_le_bytes(guest.get(at, 4).try_into().unwrap());
    let idx = u16::from_le_bytes(guest.get(used + 2, 2).try_into().unwrap());
    let at = used + 4 + 8 * u64::from(n % QUEUE_SIZE);
    (idx, (word(at), word(at + 4)))
}

fn stream(from: u64, len: u64) -> Vec<u8> {
    (from..from + len).map(stream_byte).collect()
}

#[test]
fn bytes_count_as_handed_out_only_for_buffers_the_driver_gets_back() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap();
    let dev = device();
    // A used ring outside guest memory: the buffer is filled, but cannot be given back.
    let lost = Rings {
        desc: 0x1000,
        avail: 0x2000,
        used: 0x1_0000_0000,
    };
    set_up(&dev, lost);
    put_buffer(&mem, lost.desc, 0, 0x8000, 100);
    offer(&mem, lost.avail, 0, 0);
    assert_eq!(dev.process(&mem), 0, "no buffer used");
    assert_eq!(dev.t.lock().unwrap().produced, 0, "the driver got nothing");

    // The driver starts over with a used ring it can read: its first buffer starts the stream.
    let rings = Rings {
        used: 0x3000,
        ..lost
    };
    set_up(&dev, rings);
    mem.put(0x8000, &[0; 100]);
    offer(&mem, rings.avail, 0, 0);
    assert_eq!(dev.process(&mem), 1);
    assert_eq!(used(&mem, rings.used, 0), (1, (0, 100)));
    assert_eq!(mem.get(0x8000, 100), stream(0, 100));
    assert_eq!(dev.t.lock().unwrap().produced, 100);
}

/// A fake guest of 16 pages and the device's memory of it.
fn fake_guest() -> (FakeGuest, QueueMemory<FakeGuest, FakeGuest>) {
    let guest = FakeGuest::new(DomId::new(3), 16).unwrap();
    let grants = guest.clone();
    let mem = QueueMemory::new(guest.clone(), DomId::new(3), guest.mem_size(), move || {
        Ok(grants.clone())
    });
    (guest, mem.unwrap())
}

#[test]
fn invalidate_makes_the_next_pass_write_where_the_guest_now_has_its_buffer() {
    let (guest, mem) = fake_guest();
    let dev = device();
    let mut dispatcher = Dispatcher::new(IoBus::new()).with_guest_ram(mem.guest_ram());
    let rings = Rings {
        desc: 0x1000,
        avail: 0x2000,
        used: 0x3000,
    };
    set_up(&dev, rings);
    put_buffer(&guest, rings.desc, 0, 0x8000, 100);
    offer(&guest, rings.avail, 0, 0);
    assert_eq!(mem.process(&dev).unwrap().buffers, 1);
    assert_eq!(guest.get(0x8000, 100), stream(0, 100));

    // The guest balloons: frame 8 is backed by another page now, and Xen tells every IOREQ
    // server to drop its mappings.
    guest.exchange_frames(8, 9);
    let (_, res) = dispatcher.handle(&Request::Invalidate);
    res.unwrap();
    offer(&guest, rings.avail, 1, 0);
    assert_eq!(mem.process(&dev).unwrap().buffers, 1);
    assert_eq!(used(&guest, rings.used, 1), (2, (0, 100)));
    assert_eq!(
        guest.get(0x8000, 100),
        stream(100, 100),
        "the bytes are in the guest's buffer, not in the page it gave away"
    );
}

#[test]
fn grant_mappings_go_when_their_buffers_are_used_and_the_rings_on_reset() {
    let (guest, mem) = fake_guest();
    let mem2 = mem.clone();
    let dev = device().on_reset(move || mem2.release_grants());
    // Linux's grant DMA: each ring in a page of its own, granted while the queue lives; each
    // buffer granted while the device holds it.
    let (desc, avail, used_ring) = (
        guest.grant(1, true),
        guest.grant(2, true),
        guest.grant(3, true),
    );
    let rings = Rings {
        desc: grant_addr(desc, 0),
        avail: grant_addr(avail, 0),
        used: grant_addr(used_ring, 0),
    };
    set_up(&dev, rings);
    for (n, gfn) in [8u64, 9].into_iter().enumerate() {
        let buffer = guest.grant(gfn, true);
        put_buffer(&guest, 0x1000, 0, grant_addr(buffer, 0), 100);
        offer(&guest, 0x2000, n as u16, 0);
        let pass = mem.process(&dev).unwrap();
        assert_eq!((pass.buffers, pass.grants), (1, true), "buffer {n}");
        assert_eq!(used(&guest, 0x3000, n as u16), (n as u16 + 1, (0, 100)));
        assert_eq!(guest.get(gfn << 12, 100), stream(100 * n as u64, 100));
        // Only the rings stay mapped (read-only the descriptors and the available ring,
        // writable the used ring): the driver may end the buffer's grant now.
        assert_eq!(guest.live_mappings(), 3, "after buffer {n}");
    }
    // The driver resets the device and ends the rings' grants.
    reg(&dev, 0x070, 0);
    assert_eq!(guest.live_mappings(), 0, "nothing mapped after a reset");
}
