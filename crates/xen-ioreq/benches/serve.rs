// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Per-request cost of the userspace side of the IOREQ protocol: take a slot, decode,
//! dispatch onto an `IoBus`, complete; and one buffered-ring entry.

use std::sync::Arc;

use criterion::{black_box, Criterion};
use vm_device_bus::{DeviceError, IoBus, IoHandler, IoSpace};
use xen_bindings::abi::xen::ioreq::*;
use xen_bindings::abi::Pod;
use xen_ioreq::bufring::{BufferedRing, RingWriter};
use xen_ioreq::page::{IoreqPage, LocalPage};
use xen_ioreq::Dispatcher;

struct Reg;

impl IoHandler for Reg {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(offset as u8);
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        Ok(())
    }
}

fn bus() -> IoBus {
    let mut bus = IoBus::new();
    for i in 0..16u64 {
        bus.insert(
            IoSpace::Mmio,
            0x1000_0000 + i * 0x1000,
            0x200,
            Arc::new(Reg),
        )
        .unwrap();
    }
    bus
}

fn sync_slot(c: &mut Criterion) {
    let bus = bus();
    let mut d = Dispatcher::new(&bus);
    let page = IoreqPage::new(LocalPage::new(), 1).unwrap();
    let mut r = Ioreq {
        addr: 0x1000_7010,
        size: 4,
        count: 1,
        type_: IOREQ_TYPE_COPY,
        ..Default::default()
    };
    r.set_dir(IOREQ_READ);
    let mut ready = r;
    ready.set_state(STATE_IOREQ_READY);
    c.bench_function("sync slot: take, MMIO read 4 bytes, complete", |b| {
        b.iter(|| {
            page.page().write_bytes(IOREQ_FLAGS_OFFSET, &[ready.flags]);
            let taken = page.slot(0).unwrap().take().unwrap();
            let data = d.handle_raw(0, black_box(&taken.raw));
            taken.complete(data);
        })
    });
    // Same, with the slot fully rewritten each time as Xen does.
    c.bench_function("sync slot: publish + serve", |b| {
        b.iter(|| {
            page.page().write_bytes(0, r.as_bytes());
            page.page().write_bytes(IOREQ_FLAGS_OFFSET, &[ready.flags]);
            let taken = page.slot(0).unwrap().take().unwrap();
            let data = d.handle_raw(0, &taken.raw);
            taken.complete(data);
        })
    });
}

fn buffered(c: &mut Criterion) {
    let bus = bus();
    let mut d = Dispatcher::new(&bus);
    let ring = BufferedRing::new(LocalPage::new());
    let w = RingWriter::new(&ring);
    c.bench_function("buffered ring: push + pop + dispatch 8-byte write", |b| {
        b.iter(|| {
            w.push(IOREQ_TYPE_COPY, IOREQ_WRITE, 3, 0x10, 0x1122_3344_5566_7788);
            let e = ring.pop().unwrap().unwrap();
            black_box(d.handle_logged(0, &e.decode().unwrap()));
        })
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    sync_slot(&mut c);
    buffered(&mut c);
    c.final_summary();
}
