// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests through the syscall seam: a fake Xen behind `xen_bindings::sys::Sys` answers
//! privcmd and evtchn ioctls, so the whole server (dm_ops, mappings, ports, dispatch, event
//! loop) runs without a hypervisor.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use vm_device_bus::{DeviceError, IoBus, IoHandler, IoSpace};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::abi::xen::dm_op::*;
use xen_bindings::abi::xen::ioreq::*;
use xen_bindings::abi::Pod;
use xen_bindings::evtchn::EventChannel;
use xen_bindings::fake::{vp_eport, FakeXen, BUF_REMOTE_PORT};
use xen_bindings::privcmd::Privcmd;
use xen_bindings::sys::Sys;
use xen_bindings::DomId;

use crate::bufring::RingWriter;
use crate::page::IoPage;
use crate::*;
use std::result::Result;

// ---------------------------------------------------------------------------------------------
// Devices and guest memory
// ---------------------------------------------------------------------------------------------

/// 256 bytes of registers that read back what was written; counts accesses.
#[derive(Default)]
struct Regs {
    mem: Mutex<Vec<u8>>,
    accesses: AtomicUsize,
}

impl Regs {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            mem: Mutex::new((0..=255u8).collect()),
            accesses: AtomicUsize::new(0),
        })
    }
    fn bytes(&self, off: usize, len: usize) -> Vec<u8> {
        self.mem.lock().unwrap()[off..off + len].to_vec()
    }
}

impl IoHandler for Regs {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        self.accesses.fetch_add(1, Ordering::Relaxed);
        let off = offset as usize;
        data.copy_from_slice(&self.mem.lock().unwrap()[off..off + data.len()]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.accesses.fetch_add(1, Ordering::Relaxed);
        let off = offset as usize;
        self.mem.lock().unwrap()[off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// A FIFO port: reads pop, writes push (to check rep ordering on a fixed port).
#[derive(Default)]
struct Fifo(Mutex<VecDeque<u8>>);

impl IoHandler for Fifo {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let mut q = self.0.lock().unwrap();
        for b in data.iter_mut() {
            *b = q.pop_front().ok_or("fifo empty")?;
        }
        Ok(())
    }
    fn write(&self, _: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0.lock().unwrap().extend(data);
        Ok(())
    }
}

const MMIO_BASE: u64 = 0x1000_0000;
const PIO_BASE: u64 = 0x3f8;
const FIFO_PORT: u64 = 0x80;

struct Rig {
    bus: Arc<IoBus>,
    regs: Arc<Regs>,
    pio: Arc<Regs>,
    fifo: Arc<Fifo>,
    ram: Arc<GuestMemoryMmap<()>>,
}

fn rig() -> Rig {
    let regs = Regs::new();
    let pio = Regs::new();
    let fifo = Arc::new(Fifo::default());
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO_BASE, 0x100, regs.clone())
        .unwrap();
    bus.insert(IoSpace::Pio, PIO_BASE, 8, pio.clone()).unwrap();
    bus.insert(IoSpace::Pio, FIFO_PORT, 1, fifo.clone())
        .unwrap();
    // Guest RAM: 64 KiB at 0, nothing above.
    let ram = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap());
    Rig {
        bus: Arc::new(bus),
        regs,
        pio,
        fifo,
        ram,
    }
}

fn dispatcher(r: &Rig) -> Dispatcher<Arc<IoBus>> {
    Dispatcher::new(r.bus.clone()).with_guest_ram(GuestMemoryRam::new(r.ram.clone()))
}

fn ioreq(type_: u8, addr: u64, size: u32, count: u32, dir: u8, data: u64) -> Ioreq {
    let mut r = Ioreq {
        addr,
        data,
        count,
        size,
        type_,
        ..Default::default()
    };
    r.set_dir(dir);
    r
}

fn ptr_ioreq(type_: u8, addr: u64, size: u32, count: u32, dir: u8, gpa: u64, df: bool) -> Ioreq {
    let mut r = ioreq(type_, addr, size, count, dir, gpa);
    r.set_data_is_ptr(true);
    r.set_df(df);
    r
}

// ---------------------------------------------------------------------------------------------
// Dispatch of every request kind
// ---------------------------------------------------------------------------------------------

/// Writes and reads back every access size through MMIO (vCPU 0; the write carries garbage
/// above its size, which must not reach the device) and port I/O (vCPU 1). `handle` serves one
/// request on a vCPU and returns the data of a read's answer, `None` for a write.
fn every_size_both_ways(r: &Rig, mut handle: impl FnMut(usize, &Ioreq) -> Option<u64>) {
    for (size, value) in [
        (1u32, 0xa1u64),
        (2, 0xb2b1),
        (4, 0xc4c3_c2c1),
        (8, 0xd8d7_d6d5_d4d3_d2d1),
    ] {
        let noisy = value | !crate::request::size_mask(size as u8);
        let w = ioreq(
            IOREQ_TYPE_COPY,
            MMIO_BASE + 0x10,
            size,
            1,
            IOREQ_WRITE,
            noisy,
        );
        assert_eq!(handle(0, &w), None, "writes leave data alone");
        assert_eq!(
            r.regs.bytes(0x10, 8)[..size as usize],
            value.to_le_bytes()[..size as usize]
        );
        let rd = ioreq(
            IOREQ_TYPE_COPY,
            MMIO_BASE + 0x10,
            size,
            1,
            IOREQ_READ,
            u64::MAX,
        );
        assert_eq!(handle(0, &rd), Some(value), "MMIO read of {size} bytes");

        let port = PIO_BASE + (8 - u64::from(size)); // stays within the 8 ports
        let w = ioreq(IOREQ_TYPE_PIO, port, size, 1, IOREQ_WRITE, value);
        assert_eq!(handle(1, &w), None);
        let rd = ioreq(IOREQ_TYPE_PIO, port, size, 1, IOREQ_READ, 0);
        assert_eq!(handle(1, &rd), Some(value), "PIO read of {size} bytes");
    }
}

#[test]
fn mmio_and_pio_of_every_size_both_ways() {
    let r = rig();
    let mut d = dispatcher(&r);
    every_size_both_ways(&r, |vcpu, req| d.handle_raw(vcpu, req));
    assert_eq!(d.stats().errors, 0);
    assert_eq!(d.stats().completed, 16);
}

#[test]
fn rep_mmio_value_writes_step_up_and_down() {
    let r = rig();
    let mut d = dispatcher(&r);
    // rep stos of 4 dwords upwards from +0x20.
    let w = ioreq(
        IOREQ_TYPE_COPY,
        MMIO_BASE + 0x20,
        4,
        4,
        IOREQ_WRITE,
        0x1111_1111,
    );
    d.handle_raw(0, &w);
    assert_eq!(r.regs.bytes(0x20, 16), vec![0x11; 16]);
    // And downwards from +0x4c (direction flag): 0x4c, 0x48, 0x44, 0x40.
    let mut w = ioreq(
        IOREQ_TYPE_COPY,
        MMIO_BASE + 0x4c,
        4,
        4,
        IOREQ_WRITE,
        0x2222_2222,
    );
    w.set_df(true);
    d.handle_raw(0, &w);
    assert_eq!(r.regs.bytes(0x40, 16), vec![0x22; 16]);
    assert_eq!(
        r.regs.bytes(0x3c, 4),
        vec![0x3c, 0x3d, 0x3e, 0x3f],
        "nothing below"
    );
}

#[test]
fn rep_with_guest_pointer_both_directions() {
    let r = rig();
    let mut d = dispatcher(&r);
    // outsb x 4 from guest 0x2000 to the FIFO port: the port stays, the buffer steps up.
    r.ram.write_slice(b"wxyz", GuestAddress(0x2000)).unwrap();
    let w = ptr_ioreq(IOREQ_TYPE_PIO, FIFO_PORT, 1, 4, IOREQ_WRITE, 0x2000, false);
    assert_eq!(d.handle_raw(0, &w), None);
    assert_eq!(
        r.fifo.0.lock().unwrap().iter().copied().collect::<Vec<_>>(),
        b"wxyz"
    );
    // insb x 4 with the direction flag: the buffer steps down from 0x3003.
    let rd = ptr_ioreq(IOREQ_TYPE_PIO, FIFO_PORT, 1, 4, IOREQ_READ, 0x3003, true);
    assert_eq!(
        d.handle_raw(0, &rd),
        None,
        "data_is_ptr reads keep the pointer"
    );
    let mut got = [0u8; 4];
    r.ram.read_slice(&mut got, GuestAddress(0x3000)).unwrap();
    assert_eq!(&got, b"zyxw");

    // rep movsw MMIO -> RAM upwards: device +0x00.. to guest 0x4000..
    let rd = ptr_ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 2, 8, IOREQ_READ, 0x4000, false);
    d.handle_raw(0, &rd);
    let mut got = [0u8; 16];
    r.ram.read_slice(&mut got, GuestAddress(0x4000)).unwrap();
    assert_eq!(got.to_vec(), r.regs.bytes(0, 16));
    // rep movsq RAM -> MMIO downwards: guest 0x5008, 0x5000 to device +0x88, +0x80.
    r.ram
        .write_obj(0x0102_0304_0506_0708u64, GuestAddress(0x5000))
        .unwrap();
    r.ram
        .write_obj(0x1112_1314_1516_1718u64, GuestAddress(0x5008))
        .unwrap();
    let w = ptr_ioreq(
        IOREQ_TYPE_COPY,
        MMIO_BASE + 0x88,
        8,
        2,
        IOREQ_WRITE,
        0x5008,
        true,
    );
    d.handle_raw(0, &w);
    assert_eq!(
        r.regs.bytes(0x88, 8),
        0x1112_1314_1516_1718u64.to_le_bytes()
    );
    assert_eq!(
        r.regs.bytes(0x80, 8),
        0x0102_0304_0506_0708u64.to_le_bytes()
    );
    assert_eq!(d.stats().errors, 0);
}

#[test]
fn pointer_into_unmapped_memory_is_completed_and_serving_continues() {
    let r = rig();
    let mut d = dispatcher(&r);
    let before = r.regs.accesses.load(Ordering::Relaxed);
    let w = ptr_ioreq(
        IOREQ_TYPE_COPY,
        MMIO_BASE,
        4,
        2,
        IOREQ_WRITE,
        0x8000_0000,
        false,
    );
    assert_eq!(d.handle_raw(0, &w), None);
    assert_eq!(
        r.regs.accesses.load(Ordering::Relaxed),
        before,
        "no device access"
    );
    // A read whose buffer runs off the end of RAM: the first element lands, then it stops.
    let rd = ptr_ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 2, IOREQ_READ, 0xfffc, false);
    d.handle_raw(0, &rd);
    assert_eq!(d.stats().errors, 2);
    // Without any guest RAM configured, data_is_ptr fails the same way.
    let mut bare = Dispatcher::new(r.bus.clone());
    assert_eq!(bare.handle_raw(0, &w), None);
    assert_eq!(bare.stats().errors, 1);
    // The next ordinary request works.
    let rd = ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 4, 1, 1, IOREQ_READ, 0);
    assert_eq!(d.handle_raw(0, &rd), Some(4));
}

#[test]
fn hostile_slots_complete_with_all_ones_and_touch_no_device() {
    let r = rig();
    let mut d = dispatcher(&r);
    let cases = [
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 0, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 16, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 3, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 0, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 8, u32::MAX, IOREQ_READ, 0),
        ioreq(0x42, MMIO_BASE, 4, 1, IOREQ_READ, 0),
        ioreq(IOREQ_TYPE_PIO, 0x1_0000, 1, 1, IOREQ_READ, 0),
    ];
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(d.handle_raw(0, c), Some(u64::MAX), "case {i}");
    }
    // Writes and pointer requests get no data back.
    let mut w = ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 5, 1, IOREQ_WRITE, 0);
    assert_eq!(d.handle_raw(0, &w), None);
    w.set_dir(IOREQ_READ);
    w.set_data_is_ptr(true);
    assert_eq!(d.handle_raw(0, &w), None);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 0);
    assert_eq!(d.stats().errors, cases.len() as u64 + 2);
    // MMIO rep that wraps the address space stops at the wrap.
    let mut wrap = ioreq(IOREQ_TYPE_COPY, 2, 4, 4, IOREQ_READ, 0);
    wrap.set_df(true);
    assert_eq!(d.handle_raw(0, &wrap), Some(0xffff_ffff));
}

#[test]
fn accesses_nobody_claims_read_all_ones() {
    let r = rig();
    let mut d = dispatcher(&r);
    for size in [1u32, 2, 4, 8] {
        let rd = ioreq(IOREQ_TYPE_COPY, 0xdead_0000, size, 1, IOREQ_READ, 0);
        assert_eq!(
            d.handle_raw(0, &rd),
            Some(crate::request::size_mask(size as u8))
        );
    }
    // Crossing the device end is refused by the bus, also completed.
    let rd = ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0xfe, 4, 1, IOREQ_READ, 0);
    assert_eq!(d.handle_raw(0, &rd), Some(0xffff_ffff));
    assert_eq!(d.stats().errors, 5);
}

struct PciRegs(Mutex<Vec<(u32, u32, Vec<u8>)>>);

impl PciConfigHandler for PciRegs {
    fn read(&self, sbdf: u32, reg: u32, data: &mut [u8]) -> Result<(), DeviceError> {
        if sbdf != 0x18 {
            return Err("no such function".into());
        }
        for (i, b) in data.iter_mut().enumerate() {
            *b = reg as u8 + i as u8;
        }
        Ok(())
    }
    fn write(&self, sbdf: u32, reg: u32, data: &[u8]) -> Result<(), DeviceError> {
        self.0.lock().unwrap().push((sbdf, reg, data.to_vec()));
        Ok(())
    }
}

#[test]
fn pci_config_invalidate_and_time_offset() {
    let r = rig();
    let invalidated = Arc::new(AtomicUsize::new(0));
    let offset = Arc::new(AtomicU64::new(0));
    let pci = Arc::new(PciRegs(Mutex::new(Vec::new())));
    let inv = invalidated.clone();
    let off = offset.clone();
    let mut d = Dispatcher::new(r.bus.clone())
        .with_guest_ram(GuestMemoryRam::new(r.ram.clone()).on_invalidate(move || {
            inv.fetch_add(1, Ordering::Relaxed);
        }))
        .with_pci_config(pci.clone())
        .with_time_offset(move |o| off.store(o as u64, Ordering::Relaxed));

    // Without a handler: all ones.
    let mut plain = Dispatcher::new(r.bus.clone());
    let rd = ioreq(
        IOREQ_TYPE_PCI_CONFIG,
        (0x18u64 << 32) | 0x10,
        4,
        1,
        IOREQ_READ,
        0,
    );
    assert_eq!(plain.handle_raw(0, &rd), Some(0xffff_ffff));
    // Data in guest memory is not a config-space shape: completed, the pointer left alone
    // (found by the decode_request fuzz target).
    let mut by_ptr = rd;
    by_ptr.set_data_is_ptr(true);
    assert_eq!(plain.handle_raw(0, &by_ptr), None);

    assert_eq!(d.handle_raw(0, &rd), Some(0x1312_1110));
    let rd2 = ioreq(
        IOREQ_TYPE_PCI_CONFIG,
        (0x18u64 << 32) | 0x3e,
        2,
        1,
        IOREQ_READ,
        0,
    );
    assert_eq!(d.handle_raw(0, &rd2), Some(0x3f3e));
    let other = ioreq(IOREQ_TYPE_PCI_CONFIG, 0x20u64 << 32, 1, 1, IOREQ_READ, 0);
    assert_eq!(d.handle_raw(0, &other), Some(0xff));
    let w = ioreq(
        IOREQ_TYPE_PCI_CONFIG,
        (0x18u64 << 32) | 0x4,
        2,
        1,
        IOREQ_WRITE,
        0x0107,
    );
    assert_eq!(d.handle_raw(0, &w), None);
    assert_eq!(*pci.0.lock().unwrap(), vec![(0x18, 4, vec![0x07, 0x01])]);

    let inv_req = ioreq(IOREQ_TYPE_INVALIDATE, 0, 4, 1, IOREQ_WRITE, u64::MAX);
    assert_eq!(d.handle_raw(0, &inv_req), None);
    assert_eq!(invalidated.load(Ordering::Relaxed), 1);
    assert_eq!(d.stats().invalidations, 1);
    let t = ioreq(IOREQ_TYPE_TIMEOFFSET, 0, 8, 1, IOREQ_WRITE, (-42i64) as u64);
    d.handle_raw(0, &t);
    assert_eq!(offset.load(Ordering::Relaxed) as i64, -42);
    assert_eq!(d.stats().errors, 1, "only the unknown PCI function failed");
}

#[test]
fn userspace_ioeventfd_short_circuits_queue_notify() {
    let r = rig();
    let mut d = dispatcher(&r);
    let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    d.add_ioeventfd(MMIO_BASE, 4, 1, efd.clone());
    let hit = ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 1);
    d.handle_raw(0, &hit);
    assert_eq!(efd.read().unwrap(), 1);
    assert_eq!(
        r.regs.accesses.load(Ordering::Relaxed),
        0,
        "bus not reached"
    );
    // Another queue, or a read, goes to the device.
    d.handle_raw(
        0,
        &ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 2),
    );
    d.handle_raw(
        0,
        &ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_READ, 0),
    );
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 2);
    assert!(efd.read().is_err(), "not signalled again");
    assert_eq!(d.stats().ioeventfd_hits, 1);
    assert!(d.remove_ioeventfd(MMIO_BASE, 1));
    d.handle_raw(0, &hit);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 3);
}

// ---------------------------------------------------------------------------------------------
// The fake Xen behind the syscall seam (xen-bindings' test utility)
// ---------------------------------------------------------------------------------------------

fn fake(vcpus: u32) -> (FakeXen, Arc<Privcmd<FakeXen>>, EventChannel<FakeXen>) {
    let fx = FakeXen::new(vcpus);
    let (privcmd, evtchn) = fx.handles();
    (fx, privcmd, evtchn)
}

/// A fake Xen of `vcpus` vCPUs and an enabled server for its domain 7 in buffered mode `mode`.
fn enabled_server(vcpus: u32, mode: BufIoreqMode) -> (FakeXen, IoreqServer<FakeXen>) {
    let (fx, privcmd, evtchn) = fake(vcpus);
    let mut server = IoreqServer::create(privcmd, evtchn, DomId::new(7), mode).unwrap();
    server.enable().unwrap();
    (fx, server)
}

/// New privcmd and event-channel handles on the same fake Xen (a process opening them again).
fn handles(fx: &FakeXen) -> (Arc<Privcmd<FakeXen>>, EventChannel<FakeXen>) {
    fx.handles()
}

/// Writes a request into `vcpu`'s slot of the server's page and publishes it, like Xen.
fn publish<S: Sys>(server: &IoreqServer<S>, vcpu: usize, mut r: Ioreq) {
    let base = server.ioreq_page().page().page_ptr().as_ptr();
    r.vp_eport = vp_eport(vcpu);
    r.set_state(STATE_IOREQ_NONE);
    // SAFETY: slot `vcpu` is inside the server's page; no one else touches it during the test.
    unsafe {
        let slot = base.add(vcpu * 32);
        slot.cast::<Ioreq>().write_volatile(r);
        std::sync::atomic::fence(Ordering::Release);
        slot.add(IOREQ_FLAGS_OFFSET)
            .write_volatile(r.flags | STATE_IOREQ_READY);
    }
}

fn slot_of<S: Sys>(server: &IoreqServer<S>, vcpu: usize) -> Ioreq {
    let base = server.ioreq_page().page().page_ptr().as_ptr();
    // SAFETY: slot `vcpu` is inside the server's page.
    unsafe { base.add(vcpu * 32).cast::<Ioreq>().read_volatile() }
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle and serving
// ---------------------------------------------------------------------------------------------

#[test]
fn lifecycle_issues_the_right_dm_ops_in_order() {
    let (fx, privcmd, evtchn) = fake(2);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Atomic).unwrap();
    assert_eq!(server.id(), 1);
    assert_eq!(server.vcpus(), 2);
    assert_eq!(
        fx.ops(),
        [
            XEN_DMOP_CREATE_IOREQ_SERVER,
            XEN_DMOP_NR_VCPUS,
            XEN_DMOP_GET_IOREQ_SERVER_INFO
        ]
    );
    let created: XenDmOpCreateIoreqServer = fx.last_op(XEN_DMOP_CREATE_IOREQ_SERVER);
    assert_eq!(created.handle_bufioreq, 2, "atomic");
    let info: XenDmOpGetIoreqServerInfo = fx.last_op(XEN_DMOP_GET_IOREQ_SERVER_INFO);
    assert_eq!((info.id, info.flags), (1, XEN_DMOP_NO_GFNS));
    // The synchronous page (frame 1) and the buffered page (frame 0), one page each.
    assert_eq!(
        fx.state().resources,
        vec![(DomId::new(7), 0, 1, 1, 1), (DomId::new(7), 0, 1, 0, 1)]
    );

    server
        .map_range(IoRange::mmio(0x2000_0000, 0x200).unwrap())
        .unwrap();
    server.map_range(IoRange::ports(0x3f8, 8).unwrap()).unwrap();
    server
        .map_range(IoRange::PciConfig {
            segment: 0,
            bus: 0,
            device: 3,
            function: 0,
        })
        .unwrap();
    let r: XenDmOpIoreqServerRange = fx.last_op(XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER);
    assert_eq!(
        (r.id, r.type_, r.start, r.end),
        (1, XEN_DMOP_IO_RANGE_PCI, 0x18, 0x18)
    );
    let ops = fx.state().ops.clone();
    let ranges: Vec<XenDmOpIoreqServerRange> = ops
        .iter()
        .filter(|(o, _)| *o == XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER)
        .map(|(_, b)| XenDmOpIoreqServerRange::from_bytes(b).unwrap())
        .collect();
    assert_eq!(
        (ranges[0].type_, ranges[0].start, ranges[0].end),
        (XEN_DMOP_IO_RANGE_MEMORY, 0x2000_0000, 0x2000_01ff)
    );
    assert_eq!(
        (ranges[1].type_, ranges[1].start, ranges[1].end),
        (XEN_DMOP_IO_RANGE_PORT, 0x3f8, 0x3ff)
    );
    assert!(server.vcpu_ports().is_empty(), "ports wait for enable");

    server.enable().unwrap();
    let st: XenDmOpSetIoreqServerState = fx.last_op(XEN_DMOP_SET_IOREQ_SERVER_STATE);
    assert_eq!((st.id, st.enabled), (1, 1));
    assert_eq!(
        fx.state().bound,
        vec![
            (vp_eport(0), 101),
            (vp_eport(1), 102),
            (BUF_REMOTE_PORT, 103)
        ]
    );
    assert_eq!(server.vcpu_ports(), [101, 102]);
    assert_eq!(server.buffered_port(), Some(103));

    server
        .unmap_range(IoRange::ports(0x3f8, 8).unwrap())
        .unwrap();
    let r: XenDmOpIoreqServerRange = fx.last_op(XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER);
    assert_eq!((r.start, r.end), (0x3f8, 0x3ff));
    server.disable().unwrap();
    let st: XenDmOpSetIoreqServerState = fx.last_op(XEN_DMOP_SET_IOREQ_SERVER_STATE);
    assert_eq!(st.enabled, 0);
    drop(server);
    let mut unbound = fx.state().unbound.clone();
    unbound.sort();
    assert_eq!(unbound, vec![101, 102, 103]);
    let d: XenDmOpDestroyIoreqServer = fx.last_op(XEN_DMOP_DESTROY_IOREQ_SERVER);
    assert_eq!(d.id, 1);
    assert_eq!(*fx.ops().last().unwrap(), XEN_DMOP_DESTROY_IOREQ_SERVER);
}

#[test]
fn failures_after_create_destroy_the_server() {
    let (fx, privcmd, evtchn) = fake(1);
    fx.state().fail_map = true;
    let err = IoreqServer::create(privcmd, evtchn, DomId::new(3), BufIoreqMode::Off).unwrap_err();
    assert!(err.to_string().contains("domain 3"), "{err}");
    assert_eq!(*fx.ops().last().unwrap(), XEN_DMOP_DESTROY_IOREQ_SERVER);

    let (fx, privcmd, evtchn) = fake(1);
    fx.state().fail_op = Some(XEN_DMOP_CREATE_IOREQ_SERVER);
    assert!(IoreqServer::create(privcmd, evtchn, DomId::new(3), BufIoreqMode::Off).is_err());
    assert_eq!(
        fx.ops(),
        [XEN_DMOP_CREATE_IOREQ_SERVER],
        "nothing to destroy"
    );

    let (fx, privcmd, evtchn) = fake(0);
    let err = IoreqServer::create(privcmd, evtchn, DomId::new(3), BufIoreqMode::Off).unwrap_err();
    assert!(
        matches!(err, Error::BadAnswer { op: "nr_vcpus", .. }),
        "{err}"
    );
    assert_eq!(*fx.ops().last().unwrap(), XEN_DMOP_DESTROY_IOREQ_SERVER);

    let (fx, privcmd, evtchn) = fake(129);
    assert!(IoreqServer::create(privcmd, evtchn, DomId::new(3), BufIoreqMode::Off).is_err());
    assert_eq!(*fx.ops().last().unwrap(), XEN_DMOP_DESTROY_IOREQ_SERVER);
    // Invalid ranges never reach Xen.
    assert!(IoRange::mmio(5, 0).is_none());
    assert!(IoRange::mmio(u64::MAX, 2).is_none());
    assert!(IoRange::ports(0xfff0, 0x20).is_none());
}

#[test]
fn serve_pending_reads_the_event_channel_once_per_short_batch() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut d = dispatcher(&r);

    // One request: one read of the descriptor, not a second one that finds it empty.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
    );
    fx.fire(101);
    assert_eq!(server.serve_pending(&mut d).unwrap(), 1);
    assert_eq!(fx.state().evtchn_reads, 1);

    // More ports than one read takes: read on until a short read.
    let per_read = crate::server::PORTS_PER_READ;
    for _ in 0..per_read + 6 {
        fx.fire(101);
    }
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
    );
    assert_eq!(server.serve_pending(&mut d).unwrap(), 1);
    assert_eq!(fx.state().evtchn_reads, 3, "a full read, then the last 6");
    assert!(fx.state().pending.is_empty());

    // Exactly a read's worth: the full read is followed by one that finds nothing.
    for _ in 0..per_read {
        fx.fire(101);
    }
    assert_eq!(server.serve_pending(&mut d).unwrap(), 0);
    assert_eq!(fx.state().evtchn_reads, 5);
}

#[test]
fn serves_synchronous_requests_of_each_vcpu() {
    let r = rig();
    let (fx, privcmd, evtchn) = fake(2);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    assert_eq!(fx.state().resources.len(), 1, "no buffered page when off");
    server.enable().unwrap();
    let mut d = dispatcher(&r);

    publish(
        &server,
        1,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
    );
    fx.fire(102);
    assert_eq!(server.serve_pending(&mut d).unwrap(), 1);
    let done = slot_of(&server, 1);
    assert_eq!(done.state(), STATE_IORESP_READY);
    assert_eq!(done.data, 0x0b0a_0908);
    assert_eq!(
        fx.state().notified,
        vec![102],
        "Xen is told on the vCPU's port"
    );
    assert_eq!(fx.state().unmasked, vec![102], "the port is re-armed");
    assert_eq!(
        fx.state().port_calls,
        vec![("notify", 102), ("read", 1), ("unmask", 102)],
        "the guest is answered before the port is read and re-armed"
    );

    // A spurious event finds nothing to do; an event on a port we do not know is ignored.
    fx.fire(102);
    fx.fire(999);
    assert_eq!(server.serve_pending(&mut d).unwrap(), 0);
    assert_eq!(fx.state().notified.len(), 1);

    // A hostile slot on vCPU 0 is completed all the same.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 0, 1, IOREQ_READ, 0),
    );
    fx.fire(101);
    assert_eq!(server.serve_pending(&mut d).unwrap(), 1);
    assert_eq!(slot_of(&server, 0).state(), STATE_IORESP_READY);
    assert_eq!(slot_of(&server, 0).data, u64::MAX);
    // Requests that arrived before anyone listened are found by serve_all.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_PIO, PIO_BASE, 1, 1, IOREQ_WRITE, 0x5a),
    );
    assert_eq!(server.serve_all(&mut d), 1);
    assert_eq!(r.pio.bytes(0, 1), [0x5a]);
}

#[test]
fn serves_the_buffered_ring() {
    let r = rig();
    let (fx, server) = enabled_server(1, BufIoreqMode::Legacy);
    let mut d = dispatcher(&r);
    let ring = server.buffered_ring().unwrap();
    let w = RingWriter::new(ring);
    w.set_pointers(SLOT_NUM_MINUS_ONE, SLOT_NUM_MINUS_ONE);
    // Straddles the end of the ring: 8-byte MMIO write, then 1-byte PIO write.
    assert!(w.push(
        IOREQ_TYPE_COPY,
        IOREQ_WRITE,
        3,
        (MMIO_BASE & 0xfffff) as u32,
        0x8877_6655_4433_2211
    ));
    assert!(w.push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, PIO_BASE as u32 + 1, 0xee));
    // The 20-bit address cannot carry MMIO_BASE: put a device where it lands instead.
    let low = Regs::new();
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO_BASE & 0xfffff, 8, low.clone())
        .unwrap();
    bus.insert(IoSpace::Pio, PIO_BASE, 8, r.pio.clone())
        .unwrap();
    let mut d2 = Dispatcher::new(Arc::new(bus));
    fx.fire(server.buffered_port().unwrap());
    assert_eq!(server.serve_pending(&mut d2).unwrap(), 2);
    assert_eq!(low.bytes(0, 8), 0x8877_6655_4433_2211u64.to_le_bytes());
    assert_eq!(r.pio.bytes(1, 1), [0xee]);
    assert!(
        fx.state().notified.is_empty(),
        "posted writes are not acknowledged"
    );
    // Corrupt pointers: logged, ring resynchronised, serving continues.
    w.set_pointers(0, 5000);
    fx.fire(server.buffered_port().unwrap());
    assert_eq!(server.serve_pending(&mut d).unwrap(), 0);
    assert_eq!(ring.pending_slots(), Ok(0));
    assert!(w.push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, PIO_BASE as u32, 0x77));
    assert_eq!(server.serve_buffered(&mut d), 1);
    assert_eq!(r.pio.bytes(0, 1), [0x77]);
}

/// A synchronous request is served after the posted writes that precede it in the ring, even
/// when both are found at once (found in the box: a flood of posted VGA writes followed by a
/// port access was applied partly after it).
#[test]
fn posted_writes_take_effect_before_the_synchronous_request_that_follows_them() {
    let r = rig();
    let (_fx, server) = enabled_server(1, BufIoreqMode::Legacy);
    let mut d = dispatcher(&r);
    let w = RingWriter::new(server.buffered_ring().unwrap());
    assert!(w.push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, PIO_BASE as u32, 0x42));
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_PIO, PIO_BASE, 1, 1, IOREQ_READ, 0),
    );
    assert!(server.serve_vcpu(0, &mut d));
    assert_eq!(
        slot_of(&server, 0).data,
        0x42,
        "the read saw the write posted before it"
    );
    assert_eq!(server.buffered_ring().unwrap().pending_slots(), Ok(0));
}

/// Records the posted port writes it gets; when it gets write `at`, it stores the ring's
/// pointer pair as it was `back` entries earlier, as the box saw Xen do while it published.
struct PutsPointerBack {
    server: Mutex<Weak<IoreqServer<FakeXen>>>,
    seen: Mutex<Vec<u64>>,
    at: u64,
    back: u32,
}

impl IoHandler for PutsPointerBack {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }
    fn write(&self, _: u64, data: &[u8]) -> Result<(), DeviceError> {
        let v = u64::from(data[0]);
        self.seen.lock().unwrap().push(v);
        if v == self.at {
            let server = self.server.lock().unwrap().upgrade().unwrap();
            let ring = server.buffered_ring().unwrap();
            let (read, write) = ring.pointers_now();
            RingWriter::new(ring).set_pointers(read - self.back, write);
        }
        Ok(())
    }
}

/// A read pointer put back over entries already served (the Xen box showed it at Xen's
/// rebase, under emulation, on 4.17 and 4.20: three VGA writes of a flood applied twice) does
/// not make the server serve them again; whether it happens inside one drain or between two.
#[test]
fn a_read_pointer_put_back_does_not_serve_entries_twice() {
    for (at, budget_split) in [(3, false), (3, true)] {
        let (_fx, server) = enabled_server(1, BufIoreqMode::Atomic);
        let server = Arc::new(server);
        let dev = Arc::new(PutsPointerBack {
            server: Mutex::new(Arc::downgrade(&server)),
            seen: Mutex::default(),
            at,
            back: 2,
        });
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Pio, 0x80, 1, dev.clone()).unwrap();
        let mut d = Dispatcher::new(&bus);
        let ring = server.buffered_ring().unwrap();
        for v in 1..=6 {
            assert!(RingWriter::new(ring).push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x80, v));
        }
        if budget_split {
            // Write 3 puts the pointer back as the first drain ends; the next drain finds it.
            assert_eq!(server.serve_buffered_at_most(&mut d, 3), 3);
        }
        server.serve_buffered(&mut d);
        assert_eq!(
            *dev.seen.lock().unwrap(),
            [1, 2, 3, 4, 5, 6],
            "once each, in order (drain split: {budget_split})"
        );
        assert_eq!(ring.pending_slots(), Ok(0));
    }
}

const SLOT_NUM_MINUS_ONE: u32 = IOREQ_BUFFER_SLOT_NUM as u32 - 1;

#[test]
fn interrupts_become_the_right_dm_ops() {
    let (fx, privcmd, evtchn) = fake(1);
    let server = IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.set_irq(Interrupt::Line(33), true).unwrap();
    let a: XenDmOpSetIrqLevel = fx.last_op(XEN_DMOP_SET_IRQ_LEVEL);
    assert_eq!((a.irq, a.level), (33, 1));
    server.set_irq(Interrupt::Isa(4), false).unwrap();
    let a: XenDmOpSetIsaIrqLevel = fx.last_op(XEN_DMOP_SET_ISA_IRQ_LEVEL);
    assert_eq!((a.isa_irq, a.level), (4, 0));
    server
        .set_irq(
            Interrupt::PciIntx {
                segment: 0,
                bus: 1,
                device: 2,
                intx: 3,
            },
            true,
        )
        .unwrap();
    let a: XenDmOpSetPciIntxLevel = fx.last_op(XEN_DMOP_SET_PCI_INTX_LEVEL);
    assert_eq!(
        (a.domain, a.bus, a.device, a.intx, a.level),
        (0, 1, 2, 3, 1)
    );
    server.inject_msi(0xfee0_0000, 0x4041).unwrap();
    let a: XenDmOpInjectMsi = fx.last_op(XEN_DMOP_INJECT_MSI);
    assert_eq!((a.addr, a.data), (0xfee0_0000, 0x4041));
    let n = fx.ops().len();
    server
        .set_irq(Interrupt::Msi { addr: 0, data: 0 }, false)
        .unwrap();
    assert_eq!(fx.ops().len(), n, "deasserting an MSI sends nothing");
    fx.state().fail_op = Some(XEN_DMOP_SET_IRQ_LEVEL);
    let err = server.set_irq(Interrupt::Line(1), true).unwrap_err();
    assert!(err.to_string().contains("domain 7"), "{err}");
}

#[test]
fn kernel_irqfd_and_ioeventfd_when_available() {
    let (fx, privcmd, evtchn) = fake(2);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert!(
        server.add_ioeventfd(MMIO_BASE, 4, 0, efd.clone()).is_err(),
        "needs bound ports"
    );
    server.enable().unwrap();
    assert_eq!(
        server.add_irqfd(efd.clone(), Interrupt::Line(40)).unwrap(),
        NotifyPath::Kernel
    );
    let op = XenDmOp::from_bytes(&fx.state().irqfds[0]).unwrap();
    assert_eq!(op.op, XEN_DMOP_SET_IRQ_LEVEL);
    assert_eq!(op.payload::<XenDmOpSetIrqLevel>().irq, 40);
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 0, efd).unwrap(),
        NotifyPath::Kernel
    );
    assert_eq!(fx.state().ioeventfds, vec![(MMIO_BASE, 4, 0)]);
    // Another error than "unsupported" is an error.
    fx.state().eventfd_errno = libc::EBADF;
    let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert!(server.add_irqfd(efd, Interrupt::Line(1)).is_err());
}

/// privcmd keeps kernel registrations until they are deassigned (closing descriptors does not
/// end them): teardown deassigns each, before the page and ports they point at go away, and a
/// server re-created for the domain starts from nothing.
#[test]
fn teardown_deassigns_kernel_eventfds_before_unmapping() {
    let (fx, _, _) = fake(2);
    for round in 0..3 {
        let (privcmd, evtchn) = handles(&fx);
        let mut server =
            IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
        server.enable().unwrap();
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let call = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        assert_eq!(
            server.add_ioeventfd(MMIO_BASE, 4, 0, kick).unwrap(),
            NotifyPath::Kernel
        );
        assert_eq!(
            server.add_irqfd(call, Interrupt::Line(40)).unwrap(),
            NotifyPath::Kernel
        );
        assert_eq!(fx.state().registered.len(), 2, "round {round}");
        fx.state().lifecycle.clear();
        server.shutdown().unwrap();
        let s = fx.state();
        assert!(
            s.registered.is_empty(),
            "round {round}: left {:?}",
            s.registered
        );
        let at = |what: &str| {
            s.lifecycle
                .iter()
                .position(|l| l.starts_with(what))
                .unwrap_or_else(|| panic!("round {round}: no {what} in {:?}", s.lifecycle))
        };
        let last_deassign = at("deassign ioeventfd").max(at("deassign irqfd"));
        assert!(last_deassign < at("unmap ioreq page"), "{:?}", s.lifecycle);
        assert!(last_deassign < at("unbind"), "{:?}", s.lifecycle);
    }
}

/// Issue 13, finding 4, replayed deterministically: privcmd's handler (Linux 6.7 to 6.12.116)
/// runs on every event of the ports it was given, checks the slot is a `READY` write, and
/// stores `IN_PROCESS` and then `READY` (no match) or `IORESP_READY` (a doorbell) with plain
/// stores. Here each event starts the handler, this process serves the same event in between,
/// and only then does the handler store. A non-doorbell write that shared the handler's server
/// would be answered and then put back to `READY` (served twice, or a stale `READY` after Xen
/// consumed the answer: "bad IO state"). With the doorbells in a server of their own, every
/// access is answered exactly once, by one party.
#[test]
fn privcmd_handler_never_stores_over_an_answer_of_ours() {
    let (fx, privcmd, evtchn) = fake(1);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(MMIO_BASE, 0x100).unwrap())
        .unwrap();
    server.enable().unwrap();
    let r = rig();
    let mut d = dispatcher(&r);
    let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 0, kick.clone()).unwrap(),
        NotifyPath::Kernel
    );
    let accesses = [
        ("Status write", MMIO_BASE + 0x70, IOREQ_WRITE, 0xf),
        ("doorbell of queue 0", MMIO_BASE + 0x50, IOREQ_WRITE, 0),
        ("QueueSel write", MMIO_BASE + 0x30, IOREQ_WRITE, 1),
        ("Status read", MMIO_BASE + 0x70, IOREQ_READ, 0),
        ("doorbell again", MMIO_BASE + 0x50, IOREQ_WRITE, 0x1_0000),
    ];
    for round in 0..3 {
        for (what, addr, dir, data) in accesses {
            let device_before = r.regs.accesses.load(Ordering::Relaxed);
            let id = fx.guest_access(0, ioreq(IOREQ_TYPE_COPY, addr, 4, 1, dir, data));
            let handler = fx.event(id, 0);
            server.serve_pending(&mut d).unwrap();
            fx.handler_finish(id, 0);
            assert_eq!(
                fx.slot_state(id, 0),
                STATE_IORESP_READY,
                "round {round}, {what}: answered once and left answered (handler ran: {handler})"
            );
            let doorbell = addr == MMIO_BASE + 0x50;
            let device = r.regs.accesses.load(Ordering::Relaxed) - device_before;
            assert_eq!(
                device,
                usize::from(!doorbell),
                "round {round}, {what}: device accesses"
            );
            if doorbell {
                assert_eq!(
                    kick.read().unwrap(),
                    1,
                    "round {round}, {what}: the kernel signalled"
                );
            }
            fx.consume(id, 0);
            assert_eq!(
                fx.slot_state(id, 0),
                STATE_IOREQ_NONE,
                "round {round}, {what}"
            );
        }
    }
    // Xen sends INVALIDATE to every server, the doorbell server included: the handler never
    // stores to it (not a write), so this process serves it and the kernel keeps the doorbells.
    let db = server.doorbell_server_id().unwrap();
    fx.publish_to(db, 0, ioreq(IOREQ_TYPE_INVALIDATE, 0, 4, 1, IOREQ_WRITE, 0));
    assert!(!fx.event(db, 0), "the handler leaves it");
    server.serve_pending(&mut d).unwrap();
    assert_eq!(fx.slot_state(db, 0), STATE_IORESP_READY);
    assert_eq!(d.stats().invalidations, 1);
    fx.consume(db, 0);
    assert!(server.doorbells_in_kernel());
    assert_eq!(
        d.stats().ioeventfd_hits,
        0,
        "no doorbell went through this process"
    );
}

/// A request for the doorbell register that privcmd's handler does not serve (here a 2-byte
/// write, which it still checks and stores over) is not taken while the kernel may hold it:
/// the server deassigns the kernel's ioeventfds (which waits for a handler still running),
/// serves the request in this process, and rings the doorbells itself from then on.
#[test]
fn a_request_the_kernel_does_not_serve_takes_the_doorbells_back_first() {
    let (fx, privcmd, evtchn) = fake(1);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(MMIO_BASE, 0x100).unwrap())
        .unwrap();
    server.enable().unwrap();
    let r = rig();
    let mut d = dispatcher(&r);
    let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 0, kick.clone()).unwrap(),
        NotifyPath::Kernel
    );
    let id = fx.guest_access(
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 2, 1, IOREQ_WRITE, 0),
    );
    assert_eq!(Some(id), server.doorbell_server_id());
    assert!(
        fx.event(id, 0),
        "the handler checks the write and will store"
    );
    server.serve_pending(&mut d).unwrap();
    fx.handler_finish(id, 0);
    assert_eq!(fx.slot_state(id, 0), STATE_IORESP_READY);
    assert_eq!(
        r.regs.accesses.load(Ordering::Relaxed),
        1,
        "served once, by the device"
    );
    assert!(kick.read().is_err(), "not a doorbell");
    assert!(!server.doorbells_in_kernel());
    assert!(fx.state().kioreqs.is_empty(), "privcmd's record is gone");
    fx.consume(id, 0);

    // The doorbell now goes through this process.
    let id = fx.guest_access(
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 0),
    );
    assert!(!fx.event(id, 0), "no handler any more");
    server.serve_pending(&mut d).unwrap();
    assert_eq!(fx.slot_state(id, 0), STATE_IORESP_READY);
    assert_eq!(kick.read().unwrap(), 1);
    assert_eq!(
        r.regs.accesses.load(Ordering::Relaxed),
        1,
        "the device is not reached"
    );
    assert_eq!(d.stats().ioeventfd_hits, 1);
}

/// The main server's ranges lose the doorbell registers, now and later: Xen has one server
/// for each byte.
#[test]
fn doorbell_registers_move_to_a_server_of_their_own() {
    let (fx, privcmd, evtchn) = fake(2);
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(MMIO_BASE, 0x200).unwrap())
        .unwrap();
    server.enable().unwrap();
    for vq in 0..2 {
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        assert_eq!(
            server.add_ioeventfd(MMIO_BASE, 4, vq, kick).unwrap(),
            NotifyPath::Kernel
        );
    }
    let db = server.doorbell_server_id().unwrap();
    assert_ne!(db, server.id());
    let second = MMIO_BASE + 0x1000;
    server
        .map_range(IoRange::mmio(second, 0x200).unwrap())
        .unwrap();
    let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    server.add_ioeventfd(second, 4, 0, kick).unwrap();
    let mut ranges = fx.state().ranges.clone();
    ranges.sort_unstable();
    let main = server.id();
    assert_eq!(
        ranges,
        vec![
            (main, MMIO_BASE, MMIO_BASE + 0x4f),
            (main, MMIO_BASE + 0x54, MMIO_BASE + 0x1ff),
            (main, second, second + 0x4f),
            (main, second + 0x54, second + 0x1ff),
            (db, MMIO_BASE + 0x50, MMIO_BASE + 0x53),
            (db, second + 0x50, second + 0x53),
        ]
    );
    // Unmapping as mapped works; mapping again keeps the register out.
    server
        .unmap_range(IoRange::mmio(MMIO_BASE, 0x200).unwrap())
        .unwrap();
    server
        .map_range(IoRange::mmio(MMIO_BASE, 0x200).unwrap())
        .unwrap();
    assert_eq!(fx.state().ranges.iter().filter(|r| r.0 == main).count(), 4);
    // Teardown destroys both servers.
    let destroyed_before = fx
        .ops()
        .iter()
        .filter(|&&o| o == XEN_DMOP_DESTROY_IOREQ_SERVER)
        .count();
    server.shutdown().unwrap();
    let destroyed: Vec<u16> = fx
        .state()
        .ops
        .iter()
        .filter(|(o, _)| *o == XEN_DMOP_DESTROY_IOREQ_SERVER)
        .skip(destroyed_before)
        .map(|(_, b)| XenDmOpDestroyIoreqServer::from_bytes(b).unwrap().id)
        .collect();
    assert_eq!(destroyed, vec![db, main]);
}

/// `enable` that fails to bind a port leaves nothing half done: the server is disabled again
/// in Xen and every port bound on the way is released.
#[test]
fn enable_failing_half_way_is_undone() {
    for (bufring, fail_after) in [(BufIoreqMode::Off, 1), (BufIoreqMode::Atomic, 2)] {
        let (fx, privcmd, evtchn) = fake(2);
        let mut server = IoreqServer::create(privcmd, evtchn, DomId::new(7), bufring).unwrap();
        fx.state().fail_bind_after = Some(fail_after);
        assert!(server.enable().is_err());
        assert!(!server.is_enabled());
        let st: XenDmOpSetIoreqServerState = fx.last_op(XEN_DMOP_SET_IOREQ_SERVER_STATE);
        assert_eq!(st.enabled, 0, "{bufring:?}: disabled again in Xen");
        let s = fx.state();
        let mut unbound = s.unbound.clone();
        unbound.sort_unstable();
        let mut bound: Vec<u32> = s.bound.iter().map(|b| b.1).collect();
        bound.sort_unstable();
        assert_eq!(bound.len(), fail_after, "{bufring:?}");
        assert_eq!(unbound, bound, "{bufring:?}: every port bound was released");
        drop(s);
        // It can be enabled once the cause is gone.
        fx.state().fail_bind_after = None;
        server.enable().unwrap();
        assert!(server.is_enabled());
    }
}

/// On a kernel without privcmd ioeventfd (Linux < 6.7, or built without it), doorbells go
/// through this process and no doorbell server is created for them: one made and destroyed
/// again would cost a server per start, and its ports' first events would arrive for ports
/// already gone.
#[test]
fn no_doorbell_server_is_made_where_privcmd_has_no_ioeventfd() {
    for errno in [libc::ENOTTY, libc::EOPNOTSUPP] {
        let (fx, privcmd, evtchn) = fake(1);
        fx.state().eventfd_errno = errno;
        let mut server =
            IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
        server.enable().unwrap();
        let created = |fx: &FakeXen| {
            fx.ops()
                .iter()
                .filter(|&&op| op == XEN_DMOP_CREATE_IOREQ_SERVER)
                .count()
        };
        assert_eq!(created(&fx), 1, "the server itself");
        for vq in 0..2 {
            let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
            assert_eq!(
                server.add_ioeventfd(MMIO_BASE, 4, vq, kick).unwrap(),
                NotifyPath::Userspace
            );
        }
        assert_eq!(created(&fx), 1, "errno {errno}: no doorbell server");
        assert_eq!(server.doorbell_server_id(), None);
        assert!(fx.state().registered.is_empty());
    }
}

/// A userspace irqfd is read by every loop that wakes for it, and only one gets the count: a
/// blocking eventfd is made non-blocking, or the others would wait in read() for good.
#[test]
fn userspace_irqfds_are_made_non_blocking() {
    let (fx, privcmd, evtchn) = fake(1);
    fx.state().eventfd_errno = libc::ENOTTY;
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.enable().unwrap();
    let blocking = Arc::new(EventFd::new(0).unwrap());
    let flags = || {
        // SAFETY: F_GETFL on a descriptor `blocking` keeps open.
        unsafe { libc::fcntl(blocking.as_raw_fd(), libc::F_GETFL) }
    };
    assert_eq!(flags() & libc::O_NONBLOCK, 0);
    assert_eq!(
        server
            .add_irqfd(blocking.clone(), Interrupt::Line(5))
            .unwrap(),
        NotifyPath::Userspace
    );
    assert_ne!(flags() & libc::O_NONBLOCK, 0);
    // A loop that finds the count taken returns instead of blocking.
    assert!(blocking.read().is_err());
}

/// Panics on every access, like a device handler with a bug.
struct Panicking;

impl IoHandler for Panicking {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), DeviceError> {
        panic!("device bug (read)")
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        panic!("device bug (write)")
    }
}

/// A device handler that panics does not leave the guest's vCPU waiting: the request is
/// answered (all ones for a read) and the vCPU notified while the panic unwinds.
#[test]
fn a_panicking_device_still_answers_the_vcpu() {
    let (fx, server) = enabled_server(1, BufIoreqMode::Off);
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO_BASE, 0x100, Arc::new(Panicking))
        .unwrap();
    let port = server.vcpu_ports()[0];
    for dir in [IOREQ_READ, IOREQ_WRITE] {
        publish(
            &server,
            0,
            ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 1, dir, 0x55),
        );
        let notified_before = fx.state().notified.len();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut d = Dispatcher::new(&bus);
            server.serve_vcpu(0, &mut d)
        }));
        assert!(unwound.is_err(), "the device's panic goes on unwinding");
        let slot = slot_of(&server, 0);
        assert_eq!(slot.state(), STATE_IORESP_READY, "dir {dir}: answered");
        if dir == IOREQ_READ {
            assert_eq!(slot.data, u64::MAX, "a failed read reads all ones");
        }
        assert_eq!(
            fx.state().notified[notified_before..],
            [port],
            "dir {dir}: the vCPU was notified"
        );
    }
}

#[test]
fn kernel_ioeventfd_is_never_asked_for_in_a_pv_domain() {
    assert!(!crate::server::kernel_ioeventfd_is_safe(Some("PV\n")));
    assert!(crate::server::kernel_ioeventfd_is_safe(Some("PVH\n")));
    assert!(crate::server::kernel_ioeventfd_is_safe(Some("HVM\n")));
    assert!(crate::server::kernel_ioeventfd_is_safe(None));

    // The kernel has the ioctl, but the server is told it is unsafe: the userspace path is
    // used and the ioctl is not issued (it would oops an x86 PV dom0).
    let (fx, mut server) = enabled_server(1, BufIoreqMode::Off);
    server.set_kernel_ioeventfd(false);
    let r = rig();
    let mut d = dispatcher(&r);
    let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 0, efd.clone()).unwrap(),
        NotifyPath::Userspace
    );
    assert!(fx.state().ioeventfds.is_empty(), "no ioctl issued");
    // The dispatcher now short-circuits the QueueNotify write to the eventfd.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 0),
    );
    fx.fire(101);
    assert_eq!(server.serve_pending(&mut d).unwrap(), 1);
    assert_eq!(efd.read().unwrap(), 1);
    assert_eq!(d.stats().ioeventfd_hits, 1);
}

#[test]
fn event_loop_serves_requests_and_userspace_irqfds_until_stopped() {
    let r = rig();
    let (fx, privcmd, evtchn) = fake(1);
    fx.state().eventfd_errno = libc::ENOTTY; // Linux < 6.7
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.enable().unwrap();
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_irqfd(irq.clone(), Interrupt::Line(48)).unwrap(),
        NotifyPath::Userspace
    );
    let d = dispatcher(&r);
    let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 2, kick.clone()).unwrap(),
        NotifyPath::Userspace
    );
    let mut ev = EventLoop::new(&server, d).unwrap();

    // Nothing happens within a zero timeout.
    assert_eq!(ev.run_once(0).unwrap(), Turn::default());
    // A request.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 2),
    );
    fx.fire(101);
    let turn = ev.run_once(1000).unwrap();
    assert_eq!(turn.requests, 1);
    assert_eq!(kick.read().unwrap(), 1, "userspace ioeventfd");
    assert_eq!(slot_of(&server, 0).state(), STATE_IORESP_READY);
    // A device signals its irqfd: the loop injects.
    irq.write(1).unwrap();
    let turn = ev.run_once(1000).unwrap();
    assert_eq!(turn.interrupts, 1);
    let a: XenDmOpSetIrqLevel = fx.last_op(XEN_DMOP_SET_IRQ_LEVEL);
    assert_eq!((a.irq, a.level), (48, 1));
    // Stop from another thread; run() returns.
    let stop = ev.stopper();
    let t = std::thread::spawn(move || stop.write(1).unwrap());
    ev.run().unwrap();
    t.join().unwrap();
    assert_eq!(ev.dispatcher().stats().ioeventfd_hits, 1);
}

#[test]
fn evtchn_overflow_resets_and_rescans_every_slot() {
    let r = rig();
    let (fx, server) = enabled_server(2, BufIoreqMode::Off);
    let mut d = dispatcher(&r);
    // Requests on both vCPUs whose events were lost in the overflow.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_PIO, PIO_BASE, 1, 1, IOREQ_READ, 0),
    );
    publish(
        &server,
        1,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 2, 1, IOREQ_READ, 0),
    );
    fx.state().overflow = true;
    fx.fire(101);
    assert_eq!(server.serve_pending(&mut d).unwrap(), 2);
    assert_eq!(fx.state().resets, 1);
    assert_eq!(slot_of(&server, 0).data, 0);
    assert_eq!(slot_of(&server, 1).data, 0x0100);
    assert_eq!(slot_of(&server, 1).state(), STATE_IORESP_READY);
}

#[test]
fn after_an_evtchn_overflow_every_port_is_rearmed() {
    let r = rig();
    let (fx, server) = enabled_server(2, BufIoreqMode::Off);
    let ev_loop = EventLoop::new(&server, dispatcher(&r));
    let mut ev_loop = ev_loop.unwrap();
    // Both vCPUs' events reach the kernel, which masks their ports, and then its queue
    // overflows: the next read says so, and the reset drops what was queued.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
    );
    fx.notify(101);
    publish(
        &server,
        1,
        ioreq(IOREQ_TYPE_PIO, PIO_BASE, 1, 1, IOREQ_READ, 0),
    );
    fx.notify(102);
    fx.state().overflow = true;
    assert_eq!(ev_loop.run_once(0).unwrap().requests, 2, "the rescan");
    assert_eq!(fx.state().resets, 1);
    // The guests' next requests must wake the loop: their ports were re-armed.
    for (vcpu, port) in [(0, 101), (1, 102)] {
        publish(
            &server,
            vcpu,
            ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 8, 4, 1, IOREQ_READ, 0),
        );
        fx.notify(port);
        assert!(fx.readable(), "vCPU {vcpu}'s event reaches the descriptor");
        assert_eq!(ev_loop.run_once(0).unwrap().requests, 1, "vCPU {vcpu}");
        assert_eq!(slot_of(&server, vcpu).state(), STATE_IORESP_READY);
    }
}

/// A port taking posted writes that records them, counts writes that arrive while another one
/// is still being applied, and, while it applies the first one, plays a second event loop:
/// Xen publishes one more posted write and its event wakes that loop, which serves the ring.
/// What the second loop of [`PostedPort`] serves: the server, through the device's own bus.
type SecondLoop = (Weak<IoreqServer<FakeXen>>, Weak<IoBus>);

#[derive(Default)]
struct PostedPort {
    seen: Mutex<Vec<u8>>,
    busy: std::sync::atomic::AtomicBool,
    overlaps: AtomicUsize,
    second_loop: Mutex<Option<SecondLoop>>,
    second_loop_served: Mutex<Option<usize>>,
}

impl IoHandler for PostedPort {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), DeviceError> {
        Err("write-only".into())
    }
    fn write(&self, _: u64, data: &[u8]) -> Result<(), DeviceError> {
        if self.busy.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let second = self.second_loop.lock().unwrap().take();
        if let Some((server, bus)) = second {
            let (server, bus) = (server.upgrade().unwrap(), bus.upgrade().unwrap());
            let ring = server.buffered_ring().unwrap();
            assert!(RingWriter::new(ring).push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x80, 4));
            let n = server.serve_buffered(&mut Dispatcher::new(bus));
            *self.second_loop_served.lock().unwrap() = Some(n);
        }
        self.seen.lock().unwrap().push(data[0]);
        self.busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn posted_writes_reach_the_device_one_at_a_time_in_order_with_two_loops() {
    let (_fx, server) = enabled_server(1, BufIoreqMode::Legacy);
    let server = Arc::new(server);
    let port = Arc::new(PostedPort::default());
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Pio, 0x80, 1, port.clone()).unwrap();
    let bus = Arc::new(bus);
    *port.second_loop.lock().unwrap() = Some((Arc::downgrade(&server), Arc::downgrade(&bus)));
    let ring = server.buffered_ring().unwrap();
    for v in 1..=3 {
        assert!(RingWriter::new(ring).push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x80, v));
    }
    // The first loop drains; while the device applies write 1, Xen publishes write 4 and a
    // second loop, woken for it, serves the ring (inside the device, as if on another thread).
    let n = server.serve_buffered(&mut Dispatcher::new(bus));
    assert_eq!(
        *port.seen.lock().unwrap(),
        [1, 2, 3, 4],
        "in order, once each"
    );
    assert_eq!(
        port.overlaps.load(Ordering::SeqCst),
        0,
        "one write at a time"
    );
    assert_eq!(ring.pending_slots(), Ok(0));
    assert_eq!(
        *port.second_loop_served.lock().unwrap(),
        Some(0),
        "the second loop leaves the ring to the one draining it"
    );
    assert_eq!(
        n, 4,
        "the drainer also takes what was published while it drained"
    );
}

/// A guest that keeps the buffered ring full: every posted write to port 0x80 the device
/// applies, the guest publishes another (`left` more in all), with no new event (the one that
/// woke the server stands for them all). A read of its register records how many posted writes
/// had been applied when that synchronous request was served.
#[derive(Default)]
struct Flood {
    server: Mutex<Weak<IoreqServer<FakeXen>>>,
    left: AtomicUsize,
    applied: AtomicUsize,
    applied_at_read: Mutex<Option<usize>>,
}

impl IoHandler for Flood {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        *self.applied_at_read.lock().unwrap() = Some(self.applied.load(Ordering::SeqCst));
        data.fill(0);
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        if self.left.load(Ordering::SeqCst) > 0 {
            self.left.fetch_sub(1, Ordering::SeqCst);
            let server = self.server.lock().unwrap().upgrade().unwrap();
            let ring = server.buffered_ring().unwrap();
            assert!(RingWriter::new(ring).push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x80, 1));
        }
        Ok(())
    }
}

#[test]
fn a_guest_flooding_the_buffered_ring_starves_neither_the_slots_nor_the_stopper() {
    const PER_CALL: usize = IoreqServer::<FakeXen>::BUFFERED_PER_CALL;
    const INITIAL: usize = 64;
    const MORE: usize = 4 * IOREQ_BUFFER_SLOT_NUM;
    let (fx, server) = enabled_server(1, BufIoreqMode::Legacy);
    let server = Arc::new(server);
    let flood = Arc::new(Flood::default());
    *flood.server.lock().unwrap() = Arc::downgrade(&server);
    flood.left.store(MORE, Ordering::SeqCst);
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Pio, 0x80, 1, flood.clone()).unwrap();
    bus.insert(IoSpace::Mmio, MMIO_BASE, 4, flood.clone())
        .unwrap();
    let mut ev = EventLoop::new(&*server, Dispatcher::new(Arc::new(bus))).unwrap();
    let ring = server.buffered_ring().unwrap();
    for _ in 0..INITIAL {
        assert!(RingWriter::new(ring).push(IOREQ_TYPE_PIO, IOREQ_WRITE, 0, 0x80, 1));
    }
    // vCPU 0 waits for a read; its event and the ring's are queued.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE, 4, 1, IOREQ_READ, 0),
    );
    fx.notify(101);
    fx.notify(server.buffered_port().unwrap());

    // One turn returns, with vCPU 0 answered after at most two rings' worth of posted writes:
    // the turn's sweep, then those in the ring when its request was taken (they may precede
    // it in the guest's order, so they go first).
    let turn = ev.run_once(10_000).unwrap();
    assert_eq!(slot_of(&server, 0).state(), STATE_IORESP_READY);
    let waited = flood
        .applied_at_read
        .lock()
        .unwrap()
        .expect("vCPU 0 served");
    assert!(
        waited <= 2 * PER_CALL,
        "vCPU 0 waited for {waited} posted writes"
    );
    // Three looks at the ring: the sweep, before vCPU 0's request, then the ring's port.
    assert!(turn.requests <= 1 + 3 * PER_CALL, "{turn:?}");
    assert!(turn.backlog, "entries left behind: {turn:?}");
    let mut served = turn.requests;

    // The stopper is seen while the guest goes on; the ring's event was consumed, and the
    // loop comes back to the ring anyway (a lost wake-up would wait out the timeout, then
    // serve nothing).
    assert!(!fx.readable(), "no event is pending");
    ev.stopper().write(1).unwrap();
    let turn = ev.run_once(10_000).unwrap();
    assert!(turn.stopped);
    assert!(turn.requests > 0 && turn.requests <= PER_CALL, "{turn:?}");
    served += turn.requests;
    let mut turns = 0;
    while served < 1 + INITIAL + MORE {
        turns += 1;
        assert!(turns <= 4, "{served} served so far");
        let turn = ev.run_once(10_000).unwrap();
        assert!(turn.requests > 0 && turn.requests <= PER_CALL, "{turn:?}");
        served += turn.requests;
        assert_eq!(turn.backlog, served < 1 + INITIAL + MORE, "{turn:?}");
    }
    assert_eq!(served, 1 + INITIAL + MORE);
    assert_eq!(flood.applied.load(Ordering::SeqCst), INITIAL + MORE);
    assert_eq!(ring.pending_slots(), Ok(0));
    assert!(!server.take_buffered_backlog(), "nothing left behind");
}

#[test]
fn an_irqfd_added_while_loops_run_is_served() {
    let r = rig();
    let (fx, privcmd, evtchn) = fake(1);
    fx.state().eventfd_errno = libc::ENOTTY; // userspace irqfds
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.enable().unwrap();
    let mut loops = [
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
    ];
    // The loops exist before the irqfd does.
    let irq = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_irqfd(irq.clone(), Interrupt::Line(48)).unwrap(),
        NotifyPath::Userspace
    );
    let injected = |loops: &mut [EventLoop<'_, FakeXen, Arc<IoBus>>]| -> usize {
        // Two turns each: one may be spent learning of the new irqfd.
        let mut n = 0;
        for _ in 0..2 {
            for ev in loops.iter_mut() {
                n += ev.run_once(0).unwrap().interrupts;
            }
        }
        n
    };
    for signal in 1..=2 {
        irq.write(1).unwrap();
        assert_eq!(injected(&mut loops), 1, "signal {signal}: one injection");
        let a: XenDmOpSetIrqLevel = fx.last_op(XEN_DMOP_SET_IRQ_LEVEL);
        assert_eq!((a.irq, a.level), (48, 1));
    }
    // Each loop serves it alone, too.
    for (i, ev) in loops.iter_mut().enumerate() {
        irq.write(1).unwrap();
        let n: usize = (0..2).map(|_| ev.run_once(0).unwrap().interrupts).sum();
        assert_eq!(n, 1, "loop {i}");
    }
}

/// An enabled server of domain 7 (one vCPU) on a kernel without privcmd ioeventfds, with an
/// eventfd for queue 2's notification at `MMIO_BASE`, which the server signals itself.
fn server_with_userspace_kick() -> (FakeXen, IoreqServer<FakeXen>, Arc<EventFd>) {
    let (fx, privcmd, evtchn) = fake(1);
    fx.state().eventfd_errno = libc::ENOTTY;
    let mut server =
        IoreqServer::create(privcmd, evtchn, DomId::new(7), BufIoreqMode::Off).unwrap();
    server.enable().unwrap();
    let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    assert_eq!(
        server.add_ioeventfd(MMIO_BASE, 4, 2, kick.clone()).unwrap(),
        NotifyPath::Userspace
    );
    (fx, server, kick)
}

#[test]
fn a_userspace_ioeventfd_holds_for_every_loop_of_the_server() {
    let r = rig();
    let (fx, server, kick) = server_with_userspace_kick();
    // Two loops, each with its own dispatcher; whichever serves queue 2's notification
    // signals the eventfd, and the device's register is not written.
    let mut loops = [
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
        EventLoop::new(&server, dispatcher(&r)).unwrap(),
    ];
    for (i, ev) in loops.iter_mut().enumerate() {
        publish(
            &server,
            0,
            ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 2),
        );
        fx.notify(101);
        assert_eq!(ev.run_once(0).unwrap().requests, 1, "loop {i}");
        assert_eq!(
            kick.read().unwrap(),
            1,
            "loop {i}: the eventfd is signalled"
        );
        assert_eq!(slot_of(&server, 0).state(), STATE_IORESP_READY);
        assert_eq!(ev.dispatcher().stats().ioeventfd_hits, 1, "loop {i}");
    }
    assert_eq!(
        r.regs.accesses.load(Ordering::Relaxed),
        0,
        "no notification reached the device"
    );
    // Another queue is the device's.
    publish(
        &server,
        0,
        ioreq(IOREQ_TYPE_COPY, MMIO_BASE + 0x50, 4, 1, IOREQ_WRITE, 3),
    );
    fx.notify(101);
    assert_eq!(loops[1].run_once(0).unwrap().requests, 1);
    assert_eq!(r.regs.accesses.load(Ordering::Relaxed), 1);
    assert!(kick.read().is_err(), "not signalled for queue 3");
}

mod blocking;
mod loops;
mod removal;
mod single_loop;
