// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the example's device: a driver written here sets the queue up in guest
//! memory and offers buffers, as the guest's virtio-rng driver would.

use std::sync::Arc;

use vm_device_bus::IoHandler;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::device::{stream_byte, RngDevice};

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

/// Where the driver puts its queue.
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

/// Descriptor `i` of the table at `desc`: one device-writable buffer of `len` bytes at `addr`.
fn put_buffer<M: GuestMemory>(mem: &M, desc: u64, i: u16, addr: u64, len: u32) {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&VIRTQ_DESC_F_WRITE.to_le_bytes());
    mem.write_slice(&d, GuestAddress(desc + 16 * u64::from(i)))
        .unwrap();
}

/// Offers descriptor `head` as the `n`-th available buffer (0-based) of the ring at `avail`.
fn offer<M: GuestMemory>(mem: &M, avail: u64, n: u16, head: u16) {
    let slot = avail + 4 + 2 * u64::from(n % QUEUE_SIZE);
    mem.write_obj(head, GuestAddress(slot)).unwrap();
    mem.write_obj(n.wrapping_add(1), GuestAddress(avail + 2))
        .unwrap();
}

/// The used ring's index and its entry `n`: (id, len).
fn used<M: GuestMemory>(mem: &M, used: u64, n: u16) -> (u16, (u32, u32)) {
    let idx: u16 = mem.read_obj(GuestAddress(used + 2)).unwrap();
    let at = used + 4 + 8 * u64::from(n % QUEUE_SIZE);
    let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
    let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
    (idx, (id, len))
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
    mem.write_slice(&[0; 100], GuestAddress(0x8000)).unwrap();
    offer(&mem, rings.avail, 0, 0);
    assert_eq!(dev.process(&mem), 1);
    assert_eq!(used(&mem, rings.used, 0), (1, (0, 100)));
    let mut got = [0u8; 100];
    mem.read_slice(&mut got, GuestAddress(0x8000)).unwrap();
    assert_eq!(got.to_vec(), stream(0, 100));
    assert_eq!(dev.t.lock().unwrap().produced, 100);
}
