// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The virtio_rng example's device, driven by a hostile driver.
//!
//! The device lives in an example (`examples/virtio_rng/device.rs`), which no other crate can
//! depend on, so it is compiled in here with `#[path]`: the code fuzzed is the example's own.

use fuzz_support::Input;
use std::sync::{Arc, OnceLock};

use vm_device_bus::IoHandler;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

#[allow(dead_code)]
#[path = "../../examples/virtio_rng/device.rs"]
mod device;

use device::{stream_byte, RngDevice, MAX_BYTES_PER_BUFFER};

/// RAM: two regions with a hole between them, and a region ending at the top of the address
/// space would need 2^64 bytes, so the top is reached through addresses instead.
const RAM: [(u64, usize); 2] = [(0, 0x1_0000), (0x2_0000, 0x1000)];

/// The offsets a driver uses, so the fuzzer reaches them often.
const REGS: [u64; 22] = [
    0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034, 0x038, 0x044, 0x050,
    0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4,
];

/// A guest address: mostly inside the first region, sometimes anywhere.
fn addr(input: &mut Input<'_>) -> u64 {
    match input.u8() {
        0..=223 => u64::from(input.u16()),
        224..=239 => 0x2_0000 + u64::from(input.u16() & 0xfff),
        _ => u64::from(input.u32()) << 32 | u64::from(input.u32()),
    }
}

fn eventfd() -> Arc<EventFd> {
    Arc::new(EventFd::new(EFD_NONBLOCK).expect("an eventfd"))
}

/// Register accesses of any offset and size, queue set-ups pointing anywhere, descriptor
/// tables and available rings of any contents written into RAM, then `process()`: never a
/// panic, never more buffers than the queue holds, never more than
/// [`MAX_BYTES_PER_BUFFER`] per buffer, and the bytes written are the stream's.
pub fn virtio_rng(data: &[u8]) {
    // Eventfds are made once: the device only writes them (non-blocking), and a counter
    // cannot overflow in a fuzzing run.
    static FDS: OnceLock<(Arc<EventFd>, Arc<EventFd>)> = OnceLock::new();
    let (kick, irq) = FDS.get_or_init(|| (eventfd(), eventfd()));
    let dev = RngDevice::new(kick.clone(), irq.clone());
    let mem = GuestMemoryMmap::<()>::from_ranges(
        &RAM.iter()
            .map(|&(a, l)| (GuestAddress(a), l))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut input = Input::new(data);
    for _ in 0..128 {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        match op % 8 {
            // A register write of any size at any offset.
            0 => {
                let off = if op & 0x80 != 0 {
                    u64::from(input.u16())
                } else {
                    REGS[usize::from(input.u8()) % REGS.len()]
                };
                let size = usize::from(input.u8() % 9);
                let v = input.u32().to_le_bytes();
                let mut buf = [0u8; 8];
                buf[..4].copy_from_slice(&v);
                dev.write(off, &buf[..size]).unwrap();
            }
            // A register read.
            1 => {
                let off = REGS[usize::from(input.u8()) % REGS.len()];
                let size = usize::from(input.u8() % 9);
                let mut buf = [0xa5u8; 8];
                dev.read(off, &mut buf[..size]).unwrap();
            }
            // A whole queue set-up: size, areas, ready.
            2 => {
                let size = u32::from(input.u16());
                let (desc, avail, used) = (addr(&mut input), addr(&mut input), addr(&mut input));
                let w = |off: u64, v: u32| dev.write(off, &v.to_le_bytes()).unwrap();
                w(0x030, 0);
                w(0x038, size);
                w(0x080, desc as u32);
                w(0x084, (desc >> 32) as u32);
                w(0x090, avail as u32);
                w(0x094, (avail >> 32) as u32);
                w(0x0a0, used as u32);
                w(0x0a4, (used >> 32) as u32);
                w(0x044, 1);
            }
            // A descriptor: addr, len, flags, next, at any address.
            3 => {
                let at = addr(&mut input);
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&addr(&mut input).to_le_bytes());
                d[8..12].copy_from_slice(&input.u32().to_le_bytes());
                d[12..14].copy_from_slice(&u16::from(input.u8() & 7).to_le_bytes());
                d[14..16].copy_from_slice(&u16::from(input.u8()).to_le_bytes());
                let _ = mem.write_slice(&d, GuestAddress(at));
            }
            // Raw bytes (available ring entries and index, anything).
            4 => {
                let at = addr(&mut input);
                let v = input.u32();
                let n = usize::from(input.u8() % 5);
                let _ = mem.write_slice(&v.to_le_bytes()[..n], GuestAddress(at));
            }
            // The device works through the queue.
            _ => {
                let before = dev.t.lock().unwrap().produced;
                let used = dev.process(&mem);
                let after = dev.t.lock().unwrap().produced;
                assert!(used <= 64, "{used} buffers from a queue of at most 64");
                // Only buffers in the used ring count: a chain whose used-ring entry cannot be
                // written was never handed out (regressions/virtio_rng-bytes-counted-for-unused-chain.bin).
                assert!(
                    after - before <= used as u64 * u64::from(MAX_BYTES_PER_BUFFER),
                    "{} bytes for {used} buffers",
                    after - before
                );
            }
        }
    }
    // The stream's first byte is what a buffer at its start gets: a cheap check that the
    // example's generator is the one compiled here.
    let _ = stream_byte(0);
}
