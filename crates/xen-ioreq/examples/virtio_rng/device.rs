// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A virtio-mmio (version 2) entropy device for a Xen guest, served through an IOREQ server.
//!
//! Register accesses arrive through the server's [`Dispatcher`](xen_ioreq::Dispatcher) on an
//! `IoBus`; queue notifications arrive on an eventfd (`IoreqServer::add_ioeventfd`: privcmd's
//! kernel ioeventfd, the server's userspace one, or a QueueNotify write that reached the
//! bus), and [`worker`] fills the guest's buffers, updates the used ring and signals the
//! interrupt eventfd (`IoreqServer::add_irqfd`). The queue lives in guest memory reached with
//! `xen-foreignmem` ([`QueueMemory`]): foreign mappings of guest-physical addresses, or grant
//! mappings when the guest uses Xen grant DMA (addresses with bit 63 set).
//!
//! Mappings are caches, and the guest decides when they go stale:
//!
//! - Foreign mappings show the frames the guest had when they were made. When its physmap
//!   changes (ballooning, `XENMEM_exchange`), Xen sends every IOREQ server an `INVALIDATE`;
//!   the dispatcher's guest RAM ([`QueueMemory::guest_ram`]) then drops the cache, so the next
//!   pass maps the new frames instead of writing into pages the guest gave away.
//! - A guest cannot end a grant the backend still maps (Linux retries and warns, and the page
//!   stays allocated). So after each pass, every grant mapping except the rings' is released
//!   (the buffers are back in the used ring, the driver ends their grants), and when the
//!   driver resets the device ([`RngDevice::on_reset`]) the rings' go too.
//!
//! The bytes are a fixed splitmix64 stream, not entropy: a demonstration, and what lets the
//! box test check that the guest got exactly what the device handed out. Shared by
//! `examples/virtio_rng` and `tests/arm_virtio.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use virtio_queue::{Queue, QueueT};
use vm_device_bus::{DeviceError, IoHandler};
use vm_memory::{Address, Bytes, GuestAddressSpace, GuestMemory};
use vmm_sys_util::eventfd::EventFd;
use xen_bindings::DomId;
use xen_foreignmem::{
    CacheConfig, ForeignMapper, GrantMapper, GrantMemory, LazyForeignMemory, XenForeignMapper,
    XenGrantMapper, GRANT_ADDR_FLAG,
};
use xen_ioreq::GuestMemoryRam;

/// The worker's errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where xl puts the virtio-mmio device of an Arm guest, its size and its SPI.
pub const BASE: u64 = 0x200_0000;
/// Size of the register window.
pub const SIZE: u64 = 0x200;
/// The device's interrupt (an SPI of the guest's GIC).
pub const SPI: u32 = 33;
/// Arm guests' RAM starts at 1 GiB (GUEST_RAM0_BASE); the box's domUs have 128 MiB.
pub const GUEST_RAM_END: u64 = 0x4000_0000 + (128 << 20);

/// virtio-mmio (version 2) register offsets.
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
}

/// Feature bit: the modern interface.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// Feature bit: the device sees addresses the platform translates (what a driver using Xen
/// grant DMA requires; harmless otherwise, the addresses are then guest-physical).
const VIRTIO_F_ACCESS_PLATFORM: u64 = 1 << 33;
const OFFERED: u64 = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM;
/// Device status bits.
const STATUS_FEATURES_OK: u32 = 8;
/// Device status bit: the driver gave up on the device.
pub const STATUS_FAILED: u32 = 0x80;
/// How many status writes [`RngDevice::status_log`] keeps (a guest may write forever).
const STATUS_LOG_MAX: usize = 64;
/// Interrupt status: the device used buffers.
const INT_VRING: u32 = 1;
const QUEUE_MAX: u16 = 64;
/// The most bytes one buffer (descriptor chain) gets, whatever length the guest offers.
pub const MAX_BYTES_PER_BUFFER: u32 = 64 << 10;
/// Bytes produced and written at a time.
const BLOCK: usize = 256;

/// Locks `m`, also after a panic elsewhere (the state stays usable: every update is a
/// plain assignment).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entropy the device hands out: byte `i` of a fixed, non-trivial stream (splitmix64 of
/// the word index), so the test can tell which bytes the guest got.
pub fn stream_byte(i: u64) -> u8 {
    let mut z = (i / 8)
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.to_le_bytes()[(i % 8) as usize]
}

/// The transport's state as the driver sets it.
pub struct Transport {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    /// Features the driver accepted.
    pub driver_features: u64,
    queue_sel: u32,
    queue: Queue,
    interrupt_status: u32,
    /// Bytes of the stream handed out so far.
    pub produced: u64,
    /// Buffers used.
    used: u64,
}

impl Transport {
    fn new() -> Self {
        Transport {
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            // A power of two no larger than the virtio maximum: cannot fail.
            queue: Queue::new(QUEUE_MAX).expect("a valid queue size"),
            interrupt_status: 0,
            produced: 0,
            used: 0,
        }
    }

    fn reset(&mut self) {
        let produced = self.produced;
        let used = self.used;
        *self = Transport::new();
        // What was handed out stays handed out: the test checks the guest's bytes against it.
        self.produced = produced;
        self.used = used;
    }
}

/// A virtio-mmio entropy device with one request queue. Register accesses arrive through the
/// IOREQ server's dispatcher; queue notifications arrive on `kick` (from privcmd's kernel
/// ioeventfd, the server's userspace one, or a QueueNotify write that reached the bus), a
/// worker thread fills the buffers and signals `irq` (an irqfd for SPI 33).
pub struct RngDevice {
    /// The transport's state.
    pub t: Mutex<Transport>,
    kick: Arc<EventFd>,
    irq: Arc<EventFd>,
    /// QueueNotify writes that reached the bus (no ioeventfd took them).
    pub bus_notifies: AtomicU64,
    /// Register accesses that reached the bus, by offset.
    pub accesses: Mutex<HashMap<u64, u64>>,
    /// The first [`STATUS_LOG_MAX`] status values the driver wrote, for reports.
    pub status_log: Mutex<Vec<u32>>,
    /// Run when the driver resets the device (see [`RngDevice::on_reset`]).
    on_reset: Option<Box<dyn Fn() + Send + Sync>>,
}

impl RngDevice {
    /// A reset device: notifications wake [`worker`] through `kick`, interrupts go out
    /// through `irq`.
    pub fn new(kick: Arc<EventFd>, irq: Arc<EventFd>) -> Self {
        RngDevice {
            t: Mutex::new(Transport::new()),
            kick,
            irq,
            bus_notifies: AtomicU64::new(0),
            accesses: Mutex::new(HashMap::new()),
            status_log: Mutex::new(Vec::new()),
            on_reset: None,
        }
    }

    /// Runs `f` when the driver resets the device, after the reset and before any later
    /// pass: e.g. [`QueueMemory::release_grants`], since the driver ends the grants of the
    /// rings it had once the reset returns.
    pub fn on_reset(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_reset = Some(Box::new(f));
        self
    }

    fn reg_read(&self, offset: u64) -> u32 {
        let t = lock(&self.t);
        match offset {
            reg::MAGIC => 0x7472_6976, // "virt"
            reg::VERSION => 2,
            reg::DEVICE_ID => 4, // entropy source
            reg::VENDOR_ID => 0x554d_4551,
            reg::DEVICE_FEATURES => match t.device_features_sel {
                0 => OFFERED as u32,
                1 => (OFFERED >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX if t.queue_sel == 0 => u32::from(QUEUE_MAX),
            reg::QUEUE_READY => u32::from(t.queue_sel == 0 && t.queue.ready()),
            reg::INTERRUPT_STATUS => t.interrupt_status,
            reg::STATUS => t.status,
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn reg_write(&self, offset: u64, v: u32) {
        let mut t = lock(&self.t);
        let sel0 = t.queue_sel == 0;
        match offset {
            reg::DEVICE_FEATURES_SEL => t.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => t.driver_features_sel = v,
            reg::DRIVER_FEATURES => match t.driver_features_sel {
                0 => t.driver_features = (t.driver_features & !0xffff_ffff) | u64::from(v),
                1 => t.driver_features = (t.driver_features & 0xffff_ffff) | (u64::from(v) << 32),
                _ => {}
            },
            reg::QUEUE_SEL => t.queue_sel = v,
            reg::QUEUE_NUM if sel0 => t.queue.set_size(v as u16),
            reg::QUEUE_READY if sel0 => t.queue.set_ready(v == 1),
            reg::QUEUE_DESC_LOW if sel0 => t.queue.set_desc_table_address(Some(v), None),
            reg::QUEUE_DESC_HIGH if sel0 => t.queue.set_desc_table_address(None, Some(v)),
            reg::QUEUE_DRIVER_LOW if sel0 => t.queue.set_avail_ring_address(Some(v), None),
            reg::QUEUE_DRIVER_HIGH if sel0 => t.queue.set_avail_ring_address(None, Some(v)),
            reg::QUEUE_DEVICE_LOW if sel0 => t.queue.set_used_ring_address(Some(v), None),
            reg::QUEUE_DEVICE_HIGH if sel0 => t.queue.set_used_ring_address(None, Some(v)),
            reg::QUEUE_NOTIFY => {
                self.bus_notifies.fetch_add(1, Ordering::Relaxed);
                drop(t);
                if let Err(e) = self.kick.write(1) {
                    log::error!("rng device: signalling the queue: {e}");
                }
            }
            reg::INTERRUPT_ACK => t.interrupt_status &= !v,
            reg::STATUS => {
                let mut log = lock(&self.status_log);
                if log.len() < STATUS_LOG_MAX {
                    log.push(v);
                }
                drop(log);
                if v == 0 {
                    t.reset();
                    // Under the lock: no pass maps the old rings again in between.
                    if let Some(f) = &self.on_reset {
                        f();
                    }
                } else {
                    // FEATURES_OK only sticks for features we offered.
                    let ok = t.driver_features & !OFFERED == 0;
                    t.status = if ok { v } else { v & !STATUS_FEATURES_OK };
                }
            }
            _ => {}
        }
    }

    /// Fills every available buffer of the queue in `mem` with the next bytes of the stream;
    /// returns the number of buffers used.
    ///
    /// The descriptors are the guest's: a length is any u32 and an address may lie outside
    /// RAM. So bytes are produced a small block at a time straight into guest memory (no
    /// buffer sized by the guest), a chain gets at most [`MAX_BYTES_PER_BUFFER`] (an entropy
    /// device may hand out fewer bytes than offered; the used length says how many), and a
    /// chain ends at the first block that cannot be written. The lock is held for a bounded
    /// time: at most the queue size times that many bytes. A chain that loops, runs past the
    /// queue size or 4 GiB, or has no descriptor the device can read is completed empty. Each
    /// of these is logged (`log`), as is a chain offering more than a buffer gets.
    ///
    /// Bytes count as handed out ([`Transport::produced`]) once their chain is in the used
    /// ring: a chain whose used entry cannot be written (a used ring the guest placed outside
    /// its memory) was never given back to the driver, and the next chain gets the same bytes.
    pub fn process<M: GuestMemory>(&self, mem: &M) -> usize {
        let mut t = lock(&self.t);
        if !t.queue.ready() {
            return 0;
        }
        let mut used = 0;
        while let Some(chain) = t.queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            // The chain as the driver linked it: the walk stops after as many descriptors as
            // the queue holds, at a total past 4 GiB and at a descriptor it cannot read, so a
            // last descriptor that still says NEXT means a loop or a broken chain (and none at
            // all, a head past the table or outside memory). Such a chain is completed empty:
            // the driver gets its head back and the queue goes on.
            let (descs, cut, offered) = chain.clone().fold((0u16, false, 0u64), |(n, _, o), d| {
                let o = if d.is_write_only() {
                    o + u64::from(d.len())
                } else {
                    o
                };
                (n + 1, d.has_next(), o)
            });
            if descs == 0 || cut {
                log::warn!(
                    "queue 0: chain at head {head} is broken ({descs} descriptors read, the last \
                     {}): completed empty",
                    if cut {
                        "still linked to another (a loop, or past the queue or 4 GiB)"
                    } else {
                        "missing"
                    }
                );
                if let Err(e) = t.queue.add_used(mem, head, 0) {
                    log::warn!("rng device: used ring: {e}");
                    break;
                }
                t.used += 1;
                used += 1;
                continue;
            }
            if offered > u64::from(MAX_BYTES_PER_BUFFER) {
                log::warn!(
                    "queue 0: chain at head {head} offers {offered} bytes: it gets at most \
                     {MAX_BYTES_PER_BUFFER}"
                );
            }
            // Stream offset of the chain's first byte.
            let base = t.produced;
            let mut len = 0u32;
            'chain: for desc in chain.writable() {
                let room = MAX_BYTES_PER_BUFFER - len;
                let want = desc.len().min(room);
                let mut done = 0u32;
                while done < want {
                    let mut block = [0u8; BLOCK];
                    let n = (want - done).min(BLOCK as u32);
                    let start = base + u64::from(len + done);
                    for (i, b) in block[..n as usize].iter_mut().enumerate() {
                        *b = stream_byte(start + i as u64);
                    }
                    let at = desc.addr().checked_add(u64::from(done));
                    let res = at.map(|a| mem.write_slice(&block[..n as usize], a));
                    if !matches!(res, Some(Ok(()))) {
                        log::warn!(
                            "queue 0: chain at head {head}: buffer at {:#x} + {done:#x} is not \
                             writable guest memory",
                            desc.addr().0
                        );
                        len += done;
                        break 'chain;
                    }
                    done += n;
                }
                len += done;
                if len == MAX_BYTES_PER_BUFFER {
                    break;
                }
            }
            if let Err(e) = t.queue.add_used(mem, head, len) {
                // A used ring the guest placed where we cannot write: nothing to complete, and
                // the driver never learns of these bytes.
                log::warn!("rng device: used ring: {e}");
                break;
            }
            t.produced += u64::from(len);
            t.used += 1;
            used += 1;
        }
        if used > 0 {
            t.interrupt_status |= INT_VRING;
            drop(t);
            if let Err(e) = self.irq.write(1) {
                log::error!("rng device: raising the interrupt: {e}");
            }
        }
        used
    }
}

impl IoHandler for RngDevice {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        *lock(&self.accesses).entry(offset).or_default() += 1;
        let bytes = self.reg_read(offset).to_le_bytes();
        let n = data.len().min(4);
        data.fill(0);
        data[..n].copy_from_slice(&bytes[..n]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        *lock(&self.accesses).entry(offset).or_default() += 1;
        let mut v = [0u8; 4];
        let n = data.len().min(4);
        v[..n].copy_from_slice(&data[..n]);
        self.reg_write(offset, u32::from_le_bytes(v));
        Ok(())
    }
}

/// What the worker thread saw.
#[derive(Debug, Default)]
pub struct WorkerReport {
    /// Signals counted on the kick eventfd (each QueueNotify write adds one).
    pub kicks: u64,
    /// Buffers used.
    pub buffers: usize,
    /// Whether the queue lived in grant addresses (Xen grant DMA).
    pub grants: bool,
}

/// What one [`QueueMemory::process`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Buffers used.
    pub buffers: usize,
    /// Whether the queue lives in grant addresses (Xen grant DMA).
    pub grants: bool,
}

/// Opens the grant mapper, the first time the guest's queue uses grant addresses.
type OpenGrants<G> = Arc<dyn Fn() -> std::io::Result<G> + Send + Sync>;

/// The guest memory the device's queue lives in: foreign mappings of guest-physical addresses
/// (a bounded cache), or grant mappings when the guest uses Xen grant DMA.
///
/// The worker fills buffers through it ([`QueueMemory::process`]); the dispatcher drops the
/// foreign mappings on Xen's `INVALIDATE` ([`QueueMemory::guest_ram`]); the device drops the
/// grant mappings on reset ([`RngDevice::on_reset`] with [`QueueMemory::release_grants`]).
/// Cheap to clone: clones share the mappings.
pub struct QueueMemory<F: ForeignMapper, G: GrantMapper> {
    domid: DomId,
    foreign: LazyForeignMemory<F>,
    grants: Arc<Mutex<Option<GrantMemory<G>>>>,
    open_grants: OpenGrants<G>,
}

impl<F: ForeignMapper, G: GrantMapper> Clone for QueueMemory<F, G> {
    fn clone(&self) -> Self {
        QueueMemory {
            domid: self.domid,
            foreign: self.foreign.clone(),
            grants: self.grants.clone(),
            open_grants: self.open_grants.clone(),
        }
    }
}

impl QueueMemory<XenForeignMapper, XenGrantMapper> {
    /// The memory of `domid` (RAM up to [`GUEST_RAM_END`]) through privcmd, and through
    /// gntdev once the queue uses grant addresses.
    pub fn open(domid: DomId) -> Result<Self, BoxError> {
        let mapper = XenForeignMapper::open()?;
        Ok(Self::new(
            mapper,
            domid,
            GUEST_RAM_END,
            XenGrantMapper::open,
        )?)
    }
}

impl<F: ForeignMapper + 'static, G: GrantMapper + 'static> QueueMemory<F, G> {
    /// Guest addresses `[0, mem_size)` of `domid` through `foreign`; `open_grants` makes the
    /// grant mapper when the queue first uses grant addresses.
    pub fn new(
        foreign: F,
        domid: DomId,
        mem_size: u64,
        open_grants: impl Fn() -> std::io::Result<G> + Send + Sync + 'static,
    ) -> Result<Self, xen_foreignmem::Error> {
        Ok(QueueMemory {
            domid,
            foreign: LazyForeignMemory::new(foreign, domid, mem_size, CacheConfig::default())?,
            grants: Arc::new(Mutex::new(None)),
            open_grants: Arc::new(open_grants),
        })
    }

    /// Guest RAM for the server's dispatcher (`Dispatcher::with_guest_ram`): `data_is_ptr`
    /// requests go through the foreign mappings, and Xen's `INVALIDATE` (the guest's physmap
    /// changed) drops them ([`QueueMemory::invalidate`]).
    pub fn guest_ram(&self) -> GuestMemoryRam<LazyForeignMemory<F>> {
        let mem = self.clone();
        GuestMemoryRam::new(self.foreign.clone()).on_invalidate(move || mem.invalidate())
    }

    /// Drops every foreign mapping: the guest's physmap changed. A pass under way keeps what
    /// it mapped until it ends; the next one maps afresh.
    pub fn invalidate(&self) {
        self.foreign.invalidate();
    }

    /// Drops every grant mapping (the device was reset: the driver ends its grants).
    pub fn release_grants(&self) {
        if let Some(g) = &*lock(&self.grants) {
            g.invalidate();
        }
    }

    /// The grant memory, made on first use.
    fn grant_memory(&self) -> Result<GrantMemory<G>, BoxError> {
        let mut grants = lock(&self.grants);
        if let Some(g) = &*grants {
            return Ok(g.clone());
        }
        let g = GrantMemory::new((self.open_grants)()?, self.domid, 64)?;
        *grants = Some(g.clone());
        Ok(g)
    }

    /// Fills the available buffers of `dev`'s queue ([`RngDevice::process`]) in the memory its
    /// addresses name. With grants, the mappings of everything but the rings are released
    /// afterwards: every buffer of the pass is back with the driver.
    pub fn process(&self, dev: &RngDevice) -> Result<Pass, BoxError> {
        let desc = lock(&dev.t).queue.desc_table();
        if desc & GRANT_ADDR_FLAG == 0 {
            let buffers = dev.process(&*self.foreign.memory());
            return Ok(Pass {
                buffers,
                grants: false,
            });
        }
        let grants = self.grant_memory()?;
        // The view (and with it every mapping the pass pinned) goes at the end of the statement.
        let buffers = dev.process(&*grants.memory());
        let rings = lock(&dev.t).ring_grants();
        grants.forget(|k| !rings.iter().any(|r| r.contains(&u64::from(k.gref))));
        Ok(Pass {
            buffers,
            grants: true,
        })
    }
}

impl Transport {
    /// The grant references the queue's rings span, as inclusive ranges (whatever the guest
    /// wrote: an address that is no grant address just matches no mapping).
    fn ring_grants(&self) -> [std::ops::RangeInclusive<u64>; 3] {
        let n = u64::from(self.queue.size());
        let span = |addr: u64, len: u64| {
            let a = addr & !GRANT_ADDR_FLAG;
            (a >> 12)..=(a.saturating_add(len.saturating_sub(1)) >> 12)
        };
        [
            span(self.queue.desc_table(), 16 * n),
            span(self.queue.avail_ring(), 6 + 2 * n),
            span(self.queue.used_ring(), 6 + 8 * n),
        ]
    }
}

/// Waits on the kick eventfd and processes the queue in `mem` until `stop` is set (and the
/// eventfd written to wake it).
pub fn worker<F: ForeignMapper + 'static, G: GrantMapper + 'static>(
    dev: Arc<RngDevice>,
    mem: QueueMemory<F, G>,
    stop: Arc<AtomicBool>,
) -> Result<WorkerReport, BoxError> {
    let mut report = WorkerReport::default();
    loop {
        let n = dev.kick.read()?;
        if stop.load(Ordering::Acquire) {
            return Ok(report);
        }
        report.kicks += n;
        let pass = mem.process(&dev)?;
        report.buffers += pass.buffers;
        report.grants |= pass.grants;
    }
}
