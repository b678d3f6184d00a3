// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bodies of the xen-ioreq fuzz targets, in a library so `tests/replay.rs` can replay the
//! regressions directory with a plain `cargo test`.

use std::sync::{Arc, Mutex, OnceLock};

use vm_device_bus::{DeviceError, IoBus, IoHandler, IoSpace};
use vm_memory::{GuestAddress, GuestMemoryMmap};
use xen_bindings::abi::xen::ioreq::Ioreq;
use xen_bindings::abi::Pod;
use xen_ioreq::bufring::BufferedRing;
use xen_ioreq::page::LocalPage;
use xen_ioreq::{Dispatcher, GuestMemoryRam, Request};

mod concurrent;
mod virtio_rng;

pub use concurrent::buffered_ring_concurrent;
pub use virtio_rng::virtio_rng;

struct Regs(Mutex<[u8; 64]>);

impl IoHandler for Regs {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let off = offset as usize;
        data.copy_from_slice(&self.0.lock().unwrap()[off..off + data.len()]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let off = offset as usize;
        self.0.lock().unwrap()[off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Request decoding and dispatch.
///
/// Fuzzes request decoding and dispatch: any 32 bytes in a synchronous slot must decode to a
/// request or a typed error, and dispatching must complete without panicking, touching only
/// the device's range and the guest RAM it has.
pub fn decode_request(data: &[u8]) {
    let Some(raw) = Ioreq::from_bytes(data) else {
        return;
    };
    if let Ok(req) = Request::decode(&raw) {
        if let Some(a) = req.access() {
            assert!(matches!(a.size, 1 | 2 | 4 | 8));
            assert!(a.count >= 1);
            assert!(u64::from(a.count) * u64::from(a.size) <= xen_ioreq::request::MAX_REP_BYTES);
        }
    }
    let mut bus = IoBus::new();
    let regs = Arc::new(Regs(Mutex::new([0; 64])));
    // Small address values so the fuzzer reaches the devices often.
    bus.insert(IoSpace::Mmio, 0x100, 64, regs.clone()).unwrap();
    bus.insert(IoSpace::Pio, 0x10, 8, regs).unwrap();
    // Made once: mapping and unmapping RAM per input was most of the time of a run. What the
    // requests write into it stays for the next inputs, which only changes the data read.
    static RAM: OnceLock<Arc<GuestMemoryMmap>> = OnceLock::new();
    let ram = RAM
        .get_or_init(|| {
            Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x2000)]).unwrap())
        })
        .clone();
    let mut d = Dispatcher::new(&bus).with_guest_ram(GuestMemoryRam::new(ram));
    let out = d.handle_raw(0, &raw);
    if !raw.is_read() || raw.data_is_ptr() {
        assert!(out.is_none(), "only value reads return data");
    }
    assert_eq!(d.stats().completed, 1);
}

/// The buffered ring reader.
///
/// Fuzzes the buffered ring reader: any page contents (pointers and slots) must give entries
/// or a typed error, never a panic, and never more slots than were published.
pub fn buffered_ring(data: &[u8]) {
    let page = LocalPage::new();
    page.write_bytes(0, &data[..data.len().min(4096)]);
    let ring = BufferedRing::new(page);
    let mut consumed = 0u32;
    let start = ring.pointers_now();
    // A ring holds at most 511 slots: more pops than that means the reader went wrong.
    for _ in 0..600 {
        match ring.pop() {
            Ok(Some(entry)) => {
                consumed += if entry.size == 8 { 2 } else { 1 };
                assert!(matches!(entry.size, 1 | 2 | 4 | 8));
                assert!(entry.addr < 1 << 20);
                let _ = entry.decode();
            }
            Ok(None) => break,
            Err(_) => {
                ring.resync();
                assert_eq!(ring.pop(), Ok(None));
                return;
            }
        }
    }
    let avail = start.1.wrapping_sub(start.0);
    assert_eq!(consumed, avail, "consumed exactly what was published");
    assert_eq!(ring.pointers_now().0, start.1);
}
