// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes request decoding and dispatch: any 32 bytes in a synchronous slot must decode to a
//! request or a typed error, and dispatching must complete without panicking, touching only
//! the device's range and the guest RAM it has.

#![no_main]

use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use vm_device_bus::{DeviceError, IoBus, IoHandler, IoSpace};
use vm_memory::{GuestAddress, GuestMemoryMmap};
use xen_bindings::abi::xen::ioreq::Ioreq;
use xen_bindings::abi::Pod;
use xen_ioreq::{Dispatcher, GuestMemoryRam, Request};

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

fuzz_target!(|data: &[u8]| {
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
    let ram = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x2000)]).unwrap());
    let mut d = Dispatcher::new(&bus).with_guest_ram(GuestMemoryRam::new(ram));
    let out = d.handle_raw(0, &raw);
    if !raw.is_read() || raw.data_is_ptr() {
        assert!(out.is_none(), "only value reads return data");
    }
    assert_eq!(d.stats().completed, 1);
});
