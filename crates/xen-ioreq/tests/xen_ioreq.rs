// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Integration tests against a real Xen: run as root in dom0 (`cargo xtask xen-box test`).
//!
//! Each test creates a paused PVH domU with `xl create -p`, serves it with an IOREQ server and
//! destroys both afterwards.

mod common;

use common::{
    assembled_guest, pvh_domu, pvh_kernel_with, run, u32_of, x86_guests_or_skip, xen_env, DomU,
    DOMU_LOCK, GUEST_BASE, GUEST_ENTRY,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm_hypervisor::{DeviceError, IoBus, IoHandler, IoSpace};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::abi::xen::ioreq::{IOREQS_PER_PAGE, STATE_IOREQ_NONE};
use xen_foreignmem::{CacheConfig, LazyForeignMemory, XenForeignMapper};
use xen_ioreq::{
    BufIoreqMode, DispatchStats, Dispatcher, DomId, GuestMemoryRam, Interrupt, IoRange,
    IoreqServer, NotifyPath, PciConfigHandler,
};

/// Counts the heap allocations each thread makes, so that the round-trip benchmark can report
/// how many its serving thread made per request (the system allocator does the work).
struct CountingAlloc;

thread_local! {
    /// Allocations (including reallocations) made by this thread so far.
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: a thread's allocations while its locals are torn down are not counted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// This thread's allocations so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(std::cell::Cell::get)
}

// SAFETY: every call is passed on unchanged to the system allocator; the bookkeeping is a
// const-initialised thread-local cell, which allocates nothing.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract is passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract is passed on.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract is passed on; `ptr` came from this allocator, which
        // is the system allocator's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as for `realloc`.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

struct Nothing;

impl IoHandler for Nothing {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        Ok(())
    }
}

#[test]
fn server_lifecycle_on_a_paused_pvh_domu() {
    let Some(kernel) = xen_env("server_lifecycle_on_a_paused_pvh_domu") else {
        return;
    };
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let domu = pvh_domu("life", &kernel, 2);
    if cfg!(target_arch = "aarch64") {
        arm_server_lifecycle(&domu);
        return;
    }

    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Atomic)
        .unwrap_or_else(|e| panic!("creating the IOREQ server: {e}"));
    eprintln!(
        "server id {} for domain {}: {} vCPUs",
        server.id(),
        server.domid(),
        server.vcpus()
    );
    assert_eq!(server.vcpus(), 2, "nr_vcpus reports the domain's vCPUs");
    assert!(server.vcpus() <= IOREQS_PER_PAGE);
    assert!(server.buffered_ring().is_some());
    for v in 0..server.vcpus() {
        assert_eq!(
            server.ioreq_page().slot(v).unwrap().state(),
            STATE_IOREQ_NONE
        );
    }
    let ring = server.buffered_ring().unwrap();
    assert_eq!(ring.pending_slots(), Ok(0), "fresh buffered ring is empty");

    let mmio = IoRange::mmio(0xfe00_0000, 0x1000).unwrap();
    server.map_range(mmio).unwrap();
    server.map_range(IoRange::ports(0x5e0, 8).unwrap()).unwrap();
    // A range twice is refused by Xen (overlap), and that is an error, not a panic.
    let dup = server.map_range(mmio);
    eprintln!("mapping the MMIO range twice: {dup:?}");
    assert!(dup.is_err());

    server.enable().unwrap();
    let ports = server.vcpu_ports().to_vec();
    eprintln!(
        "vCPU ports {ports:?}, buffered port {:?}",
        server.buffered_port()
    );
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1]);
    assert!(server.buffered_port().is_some());
    let remote: Vec<u32> = (0..2)
        .map(|v| server.ioreq_page().slot(v).unwrap().vp_eport())
        .collect();
    eprintln!("Xen's per-vCPU ports (vp_eport) {remote:?}");
    assert!(remote.iter().all(|&p| p != 0));
    assert_ne!(remote[0], remote[1]);

    // Kernel notifications: used when the dom0 kernel has them, else the userspace path.
    let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
    match server.add_irqfd(efd.clone(), Interrupt::Line(5)) {
        Ok(path) => eprintln!("irqfd path: {path:?}"),
        Err(e) => panic!("irqfd: {e}"),
    }
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, 0xfe00_0000, 0x1000, Arc::new(Nothing))
        .unwrap();
    let mut d = Dispatcher::new(&bus);
    let path = server
        .add_ioeventfd(0xfe00_0000, 4, 0, efd)
        .unwrap_or_else(|e| panic!("ioeventfd: {e}"));
    eprintln!("ioeventfd path: {path:?}");
    assert!(matches!(path, NotifyPath::Kernel | NotifyPath::Userspace));

    // Interrupt injection through dm_op: an MSI to vector 0x30 of APIC 0 is accepted on x86;
    // `set_irq_level` is Arm's (x86 Xen refuses it), and the refusal is a typed error.
    server
        .inject_msi(0xfee0_0000, 0x30)
        .unwrap_or_else(|e| panic!("inject_msi: {e}"));
    let line = server.set_irq(Interrupt::Line(5), true);
    eprintln!("set_irq_level on x86: {line:?}");
    assert!(line.is_err());
    let isa = server.set_irq(Interrupt::Isa(5), false);
    eprintln!("set_isa_irq_level on PVH: {isa:?}");

    // The guest is paused: nothing to serve.
    assert_eq!(server.serve_pending(&mut d).unwrap(), 0);
    assert_eq!(server.serve_all(&mut d), 0);

    // A second server on the same domain, without a buffered ring.
    let mut second = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
    assert_ne!(second.id(), server.id());
    assert!(second.buffered_ring().is_none());
    second.enable().unwrap();
    assert_eq!(second.vcpu_ports().len(), 2);
    assert_eq!(second.buffered_port(), None);
    second.shutdown().unwrap();

    server.unmap_range(mmio).unwrap();
    server.disable().unwrap();
    server.enable().unwrap();
    assert_eq!(
        server.vcpu_ports(),
        ports,
        "ports stay bound across disable"
    );
    server.shutdown().unwrap();

    // The domain still takes a new server after the old ones are gone.
    let third = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Legacy).unwrap();
    eprintln!("third server id {}", third.id());
    drop(third);
}

/// The lifecycle on Xen on Arm, whose IOREQ servers have no buffered ring: Xen refuses to
/// create one that asks for it (EINVAL), so servers use `BufIoreqMode::Off`.
fn arm_server_lifecycle(domu: &DomU) {
    let refused = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Atomic);
    eprintln!(
        "a buffered server on Arm: {:?}",
        refused.as_ref().map(|s| s.id())
    );
    assert!(refused.is_err(), "Xen on Arm has no buffered ioreqs");

    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off)
        .unwrap_or_else(|e| panic!("creating the IOREQ server: {e}"));
    eprintln!(
        "server id {} for domain {}: {} vCPUs",
        server.id(),
        server.domid(),
        server.vcpus()
    );
    assert_eq!(server.vcpus(), 2, "nr_vcpus reports the domain's vCPUs");
    assert!(server.buffered_ring().is_none());
    for v in 0..server.vcpus() {
        assert_eq!(
            server.ioreq_page().slot(v).unwrap().state(),
            STATE_IOREQ_NONE
        );
    }
    // Where the toolstack puts a virtio-mmio device on Arm.
    let mmio = IoRange::mmio(0x200_0000, 0x200).unwrap();
    server.map_range(mmio).unwrap();
    let dup = server.map_range(mmio);
    eprintln!("mapping the MMIO range twice: {dup:?}");
    assert!(dup.is_err());

    server.enable().unwrap();
    let ports = server.vcpu_ports().to_vec();
    eprintln!("vCPU ports {ports:?}");
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1]);
    assert_eq!(server.buffered_port(), None);
    let remote: Vec<u32> = (0..2)
        .map(|v| server.ioreq_page().slot(v).unwrap().vp_eport())
        .collect();
    eprintln!("Xen's per-vCPU ports (vp_eport) {remote:?}");
    assert!(remote.iter().all(|&p| p != 0));
    assert_ne!(remote[0], remote[1]);

    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, 0x200_0000, 0x200, Arc::new(Nothing))
        .unwrap();
    let mut d = Dispatcher::new(&bus);
    // The guest is paused: nothing to serve.
    assert_eq!(server.serve_pending(&mut d).unwrap(), 0);
    assert_eq!(server.serve_all(&mut d), 0);
    // Arm's interrupt dm_op; whether SPI 5 is acceptable is Xen's call, a panic is not.
    eprintln!(
        "set_irq_level on Arm: {:?}",
        server.set_irq(Interrupt::Line(5), true)
    );

    let mut second = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
    assert_ne!(second.id(), server.id());
    second.enable().unwrap();
    assert_eq!(second.vcpu_ports().len(), 2);
    second.shutdown().unwrap();

    server.unmap_range(mmio).unwrap();
    server.disable().unwrap();
    server.enable().unwrap();
    assert_eq!(
        server.vcpu_ports(),
        ports,
        "ports stay bound across disable"
    );
    server.shutdown().unwrap();
}

// -------------------------------------------------------------------------------------------
// A purpose-built PVH guest doing port and MMIO accesses of every size
// -------------------------------------------------------------------------------------------

/// MMIO window served by the test (far above the domU's 128 MiB of RAM).
const MMIO: u64 = 0xe000_0000;
/// Ports served by the test.
const PORTS: u16 = 0x5e0;
/// What the devices answer to reads (low bytes for narrower reads).
const MMIO_PATTERN: u64 = 0x8887_8685_8483_8281;
const PIO_PATTERN: u64 = 0x4443_4241;
const PCI_PATTERN: u64 = 0x1af4_1041;
/// The PCI function served by the test: 00:03.0 (Xen's encoding: bus << 8 | dev << 3 | fn).
const PCI_SBDF: u32 = 3 << 3;

/// 32-bit code entered in flat protected mode without paging (the PVH entry state), loaded at
/// `GUEST_ENTRY`. Assembled from (Intel syntax):
///
/// ```text
///     cli
///     mov esi, 0xe0000000            ; MMIO window
///     mov al, [esi]                  ; read 1 byte ...
///     mov [esi+0x100], al            ; ... write it back at +0x100
///     mov ax, [esi]
///     mov [esi+0x108], ax            ; 2 bytes at +0x108
///     mov eax, [esi]
///     mov [esi+0x110], eax           ; 4 bytes at +0x110
///     mov eax, cr4 / or eax, 0x600 / mov cr4, eax          ; OSFXSR|OSXMMEXCPT
///     mov eax, cr0 / and eax, ~4 / or eax, 2 / mov cr0, eax ; clear EM, set MP
///     movq xmm0, [esi]
///     movq [esi+0x118], xmm0         ; 8 bytes at +0x118
///     mov dx, 0x5e0 / in al, dx  / mov dx, 0x5e4 / out dx, al
///     mov dx, 0x5e0 / in ax, dx  / mov dx, 0x5e4 / out dx, ax
///     mov dx, 0x5e0 / in eax, dx / mov dx, 0x5e4 / out dx, eax
///     cld
///     mov esi, msg / mov ecx, 4 / mov dx, 0x5e6 / rep outsb      ; "REP!" from guest RAM
///     mov edi, 0xe0000200 / mov eax, 0x5a5a5a5a / mov ecx, 4 / rep stosd  ; 4 dwords
///     mov dx, 0xcf8 / mov eax, 0x80001800 / out dx, eax          ; PCI 00:03.0 reg 0
///     mov dx, 0xcfc / in eax, dx / mov dx, 0x5e4 / out dx, eax   ; config read, echoed
///     mov dx, 0xcf8 / mov eax, 0x8000183c / out dx, eax          ; reg 0x3c
///     mov dx, 0xcfd / mov al, 0x77 / out dx, al                  ; config write at 0x3d
///     mov al, 0xdd / mov dx, 0x5e7 / out dx, al                  ; done
/// 1:  hlt / jmp 1b
/// msg: .ascii "REP!"
/// ```
const GUEST_CODE: [u8; 184] = [
    0xfa, 0xbe, 0x00, 0x00, 0x00, 0xe0, 0x8a, 0x06, 0x88, 0x86, 0x00, 0x01, 0x00, 0x00, 0x66, 0x8b,
    0x06, 0x66, 0x89, 0x86, 0x08, 0x01, 0x00, 0x00, 0x8b, 0x06, 0x89, 0x86, 0x10, 0x01, 0x00, 0x00,
    0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x06, 0x00, 0x00, 0x0f, 0x22, 0xe0, 0x0f, 0x20, 0xc0, 0x83, 0xe0,
    0xfb, 0x83, 0xc8, 0x02, 0x0f, 0x22, 0xc0, 0xf3, 0x0f, 0x7e, 0x06, 0x66, 0x0f, 0xd6, 0x86, 0x18,
    0x01, 0x00, 0x00, 0x66, 0xba, 0xe0, 0x05, 0xec, 0x66, 0xba, 0xe4, 0x05, 0xee, 0x66, 0xba, 0xe0,
    0x05, 0x66, 0xed, 0x66, 0xba, 0xe4, 0x05, 0x66, 0xef, 0x66, 0xba, 0xe0, 0x05, 0xed, 0x66, 0xba,
    0xe4, 0x05, 0xef, 0xfc, 0xbe, 0xb4, 0x01, 0x10, 0x00, 0xb9, 0x04, 0x00, 0x00, 0x00, 0x66, 0xba,
    0xe6, 0x05, 0xf3, 0x6e, 0xbf, 0x00, 0x02, 0x00, 0xe0, 0xb8, 0x5a, 0x5a, 0x5a, 0x5a, 0xb9, 0x04,
    0x00, 0x00, 0x00, 0xf3, 0xab, 0x66, 0xba, 0xf8, 0x0c, 0xb8, 0x00, 0x18, 0x00, 0x80, 0xef, 0x66,
    0xba, 0xfc, 0x0c, 0xed, 0x66, 0xba, 0xe4, 0x05, 0xef, 0x66, 0xba, 0xf8, 0x0c, 0xb8, 0x3c, 0x18,
    0x00, 0x80, 0xef, 0x66, 0xba, 0xfd, 0x0c, 0xb0, 0x77, 0xee, 0xb0, 0xdd, 0x66, 0xba, 0xe7, 0x05,
    0xee, 0xf4, 0xeb, 0xfd, 0x52, 0x45, 0x50, 0x21,
];

/// The guest of `guest_accesses_of_every_size_reach_the_devices` as a PVH kernel.
fn pvh_kernel() -> Vec<u8> {
    pvh_kernel_with(&GUEST_CODE)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Read(u64, usize),
    Write(u64, Vec<u8>),
}

/// Answers reads with a pattern and records every access; a write of 0xdd to `done_at`
/// stops the event loop.
struct Recorder {
    pattern: u64,
    seen: Mutex<Vec<Seen>>,
    done_at: Option<u64>,
    stop: Mutex<Option<Arc<EventFd>>>,
}

impl Recorder {
    fn new(pattern: u64, done_at: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            pattern,
            seen: Mutex::new(Vec::new()),
            done_at,
            stop: Mutex::new(None),
        })
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl IoHandler for Recorder {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.copy_from_slice(&self.pattern.to_le_bytes()[..data.len()]);
        self.seen
            .lock()
            .unwrap()
            .push(Seen::Read(offset, data.len()));
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.seen
            .lock()
            .unwrap()
            .push(Seen::Write(offset, data.to_vec()));
        if Some(offset) == self.done_at && data == [0xdd] {
            if let Some(stop) = self.stop.lock().unwrap().as_ref() {
                stop.write(1)?;
            }
        }
        Ok(())
    }
}

/// Configuration space of one PCI function: answers reads with a pattern, records accesses.
#[derive(Default)]
struct PciRecorder(Mutex<Vec<(u32, u32, Seen)>>);

impl PciConfigHandler for PciRecorder {
    fn read(&self, sbdf: u32, reg: u32, data: &mut [u8]) -> Result<(), DeviceError> {
        data.copy_from_slice(&PCI_PATTERN.to_le_bytes()[..data.len()]);
        self.0
            .lock()
            .unwrap()
            .push((sbdf, reg, Seen::Read(0, data.len())));
        Ok(())
    }
    fn write(&self, sbdf: u32, reg: u32, data: &[u8]) -> Result<(), DeviceError> {
        self.0
            .lock()
            .unwrap()
            .push((sbdf, reg, Seen::Write(0, data.to_vec())));
        Ok(())
    }
}

#[test]
fn guest_accesses_of_every_size_reach_the_devices() {
    let Some(_) = xen_env("guest_accesses_of_every_size_reach_the_devices") else {
        return;
    };
    if !x86_guests_or_skip("guest_accesses_of_every_size_reach_the_devices") {
        return;
    }
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = std::env::current_dir().unwrap().join("xioreq-guest.elf");
    std::fs::write(&kernel, pvh_kernel()).unwrap();
    let domu = pvh_domu("guest", &kernel, 1);

    let mmio = Recorder::new(MMIO_PATTERN, None);
    let pio = Recorder::new(PIO_PATTERN, Some(7));
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO, 0x1000, mmio.clone())
        .unwrap();
    bus.insert(IoSpace::Pio, PORTS.into(), 8, pio.clone())
        .unwrap();

    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Atomic).unwrap();
    server
        .map_range(IoRange::mmio(MMIO, 0x1000).unwrap())
        .unwrap();
    server.map_range(IoRange::ports(PORTS, 8).unwrap()).unwrap();
    server
        .map_range(IoRange::PciConfig {
            segment: 0,
            bus: 0,
            device: 3,
            function: 0,
        })
        .unwrap();
    server.enable().unwrap();
    // `rep outsb` reads its bytes from guest RAM (data_is_ptr): map it lazily.
    let cache = LazyForeignMemory::new(
        XenForeignMapper::open().unwrap(),
        DomId::new(domu.domid),
        128 << 20,
        CacheConfig::default(),
    )
    .unwrap();
    let inv = cache.clone();
    let ram = GuestMemoryRam::new(cache).on_invalidate(move || inv.invalidate());
    let pci = Arc::new(PciRecorder::default());
    let dispatcher = Dispatcher::new(&bus)
        .with_guest_ram(ram)
        .with_pci_config(pci.clone());
    let mut ev = xen_ioreq::EventLoop::new(&server, dispatcher).unwrap();
    *pio.stop.lock().unwrap() = Some(ev.stopper());

    run(Command::new("xl").arg("unpause").arg(&domu.name));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut requests = 0;
    loop {
        let turn = ev.run_once(1000).unwrap();
        requests += turn.requests;
        if turn.stopped {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = Command::new("xl").arg("dmesg").status();
            panic!(
                "guest did not finish within 120 s; {requests} requests; MMIO {:?}; PIO {:?}; \
                 PCI {:?}",
                mmio.seen(),
                pio.seen(),
                pci.0.lock().unwrap()
            );
        }
    }
    let stats = ev.dispatcher().stats();
    eprintln!("served {requests} requests: {stats:?}");
    eprintln!("MMIO accesses: {:?}", mmio.seen());
    eprintln!("PIO accesses: {:?}", pio.seen());
    assert_eq!(stats.errors, 0);

    let p = MMIO_PATTERN.to_le_bytes();
    let mut want = Vec::new();
    for (k, size) in [1usize, 2, 4, 8].into_iter().enumerate() {
        want.push(Seen::Read(0, size));
        want.push(Seen::Write(0x100 + 8 * k as u64, p[..size].to_vec()));
    }
    for i in 0..4 {
        want.push(Seen::Write(0x200 + 4 * i, vec![0x5a; 4]));
    }
    assert_eq!(mmio.seen(), want, "MMIO both ways, every size, rep stosd");

    let p = PIO_PATTERN.to_le_bytes();
    let mut want = Vec::new();
    for size in [1usize, 2, 4] {
        want.push(Seen::Read(0, size));
        want.push(Seen::Write(4, p[..size].to_vec()));
    }
    for b in b"REP!" {
        want.push(Seen::Write(6, vec![*b]));
    }
    want.push(Seen::Write(4, PCI_PATTERN.to_le_bytes()[..4].to_vec()));
    want.push(Seen::Write(7, vec![0xdd]));
    assert_eq!(
        pio.seen(),
        want,
        "PIO both ways, every size, rep outsb from guest RAM"
    );
    let pci_seen = pci.0.lock().unwrap().clone();
    eprintln!("PCI config accesses: {pci_seen:?}");
    assert_eq!(
        pci_seen,
        vec![
            (PCI_SBDF, 0, Seen::Read(0, 4)),
            (PCI_SBDF, 0x3d, Seen::Write(0, vec![0x77])),
        ],
        "PCI config read and byte write through CF8/CFC"
    );
    drop(ev);
    server.shutdown().unwrap();
}

// -------------------------------------------------------------------------------------------
// Two vCPUs hammering the server at once
// -------------------------------------------------------------------------------------------

/// Writes per vCPU in the two-vCPU test.
const SMP_WRITES: u32 = 1000;

/// `tests/guests/smp.S` linked at `GUEST_ENTRY`: vCPU 0 installs the hypercall page, starts
/// vCPU 1 with `VCPUOP_initialise`/`VCPUOP_up`, and both write 1..=N to their own register
/// (MMIO + 0 and + 0x10), reading back after each write how many writes the server has seen
/// there (+ 4 / + 0x14), then report the final index (+ 8 / + 0x18). N is read from MMIO +
/// 0x30; a failed hypercall's return value is written to MMIO + 0x20.
const SMP_CODE: [u8; SMP_LEN] = [
    0xfa, 0xbc, 0x00, 0x40, 0x10, 0x00, 0xb8, 0x02, 0x00, 0x00, 0x40, 0x0f, 0xa2, 0x89, 0xd9, 0xb8,
    0x00, 0x10, 0x10, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0xc7, 0x05, 0x00, 0x20, 0x10, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x31, 0xdb, 0xb9, 0x01, 0x00, 0x00, 0x00, 0xba, 0x98, 0x01, 0x10, 0x00, 0xe8, 0xcd,
    0x11, 0x00, 0x00, 0x85, 0xc0, 0x75, 0x56, 0xbb, 0x01, 0x00, 0x00, 0x00, 0xb9, 0x01, 0x00, 0x00,
    0x00, 0x31, 0xd2, 0xe8, 0xb8, 0x11, 0x00, 0x00, 0x85, 0xc0, 0x75, 0x41, 0xf3, 0x90, 0x83, 0x3d,
    0x00, 0x20, 0x10, 0x00, 0x01, 0x75, 0xf5, 0xbe, 0x00, 0x00, 0x00, 0xe0, 0xeb, 0x0f, 0xc7, 0x05,
    0x00, 0x20, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0xbe, 0x10, 0x00, 0x00, 0xe0, 0x8b, 0x1d, 0x30,
    0x00, 0x00, 0xe0, 0x43, 0xb9, 0x01, 0x00, 0x00, 0x00, 0x89, 0x0e, 0x8b, 0x46, 0x04, 0x39, 0xc8,
    0x75, 0x05, 0x41, 0x39, 0xd9, 0x75, 0xf2, 0x89, 0x4e, 0x08, 0xf4, 0xeb, 0xfd, 0xa3, 0x20, 0x00,
    0x00, 0xe0, 0xeb, 0xf6, 0x8d, 0x74, 0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x5e, 0x01, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x67, 0x00, 0x00, 0x00, 0x9b, 0x0c, 0x93, 0x0c, 0x93, 0x0c, 0x93, 0x0c,
    0x8b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
const SMP_LEN: usize = 280;

/// What the two vCPUs did, as the server saw it.
#[derive(Default)]
struct SmpState {
    /// Values written to each vCPU's sequence register, in arrival order.
    seqs: [Vec<u32>; 2],
    /// Which vCPU's block each sequence write came from, in global arrival order.
    order: Vec<u8>,
    /// Final index reported by each vCPU.
    done: [Option<u32>; 2],
    /// Return value of a failed hypercall.
    hypercall_error: Option<u32>,
    /// Requests served (reads and writes of both vCPUs).
    requests: usize,
}

impl SmpState {
    /// Both vCPUs reported, or the guest could not start its second vCPU.
    fn finished(&self) -> bool {
        self.hypercall_error.is_some() || self.done.iter().all(Option::is_some)
    }
}

/// The two vCPUs' MMIO blocks; stops the loops when both reported (or a hypercall failed).
struct SmpDevice {
    state: Mutex<SmpState>,
    stop: Mutex<Vec<Arc<EventFd>>>,
}

impl SmpDevice {
    /// Stops every loop.
    fn stop_all(&self) {
        for stop in self.stop.lock().unwrap().iter() {
            stop.write(1).unwrap();
        }
    }

    /// Requests served so far (both vCPUs, reads and writes): what progress is measured by.
    fn progress(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

impl IoHandler for SmpDevice {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let mut st = self.state.lock().unwrap();
        st.requests += 1;
        let v = match offset {
            0x4 => st.seqs[0].len() as u32,
            0x14 => st.seqs[1].len() as u32,
            0x30 => SMP_WRITES,
            _ => 0,
        };
        let b = u64::from(v).to_le_bytes();
        data.copy_from_slice(&b[..data.len()]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let v = u32_of(data);
        let mut st = self.state.lock().unwrap();
        st.requests += 1;
        match offset {
            0x0 | 0x10 => {
                let cpu = usize::from(offset == 0x10);
                st.seqs[cpu].push(v);
                st.order.push(cpu as u8);
            }
            0x8 | 0x18 => st.done[usize::from(offset == 0x18)] = Some(v),
            0x20 => st.hypercall_error = Some(v),
            _ => {}
        }
        let finished = st.finished();
        drop(st);
        if finished {
            self.stop_all();
        }
        Ok(())
    }
}

#[test]
fn two_vcpus_hammer_the_server_concurrently() {
    hammer("two_vcpus_hammer_the_server_concurrently", 1);
}

#[test]
fn two_vcpus_hammer_a_server_served_by_two_threads() {
    hammer("two_vcpus_hammer_a_server_served_by_two_threads", 2);
}

/// How long the guest may take as a whole. The box gives each test binary 600 s (xtask's
/// `xen-box test` limit, which is also its step limit) and this binary runs two of these
/// tests among others, so each must give up well within half of that to report what it saw.
/// An idle host needs a few seconds; 1,564 of the 2,000 writes took 300 s at host load 10.
const SMP_LIMIT: Duration = Duration::from_secs(200);
/// How long the guest may make no progress at all: one round trip takes well under a second
/// even at host load 10, so this long without one is a request nobody serves (or a guest that
/// died), not a slow host.
const SMP_STALL: Duration = Duration::from_secs(45);

/// What one event loop of `hammer` did.
#[derive(Debug, Default)]
struct LoopReport {
    /// Requests it served.
    requests: usize,
    /// Times it woke (an event or its 250 ms timeout).
    turns: usize,
    /// Turns that served nothing: timeouts, and events whose request another loop took.
    idle_turns: usize,
    /// Its dispatcher's counters.
    stats: DispatchStats,
    /// Why it gave up, if it did.
    gave_up: Option<String>,
}

/// Runs the two-vCPU guest (`tests/guests/smp.S`) against one server served by `threads`
/// event loops, each on its own thread and all on the server's one event channel descriptor:
/// every request must be served exactly once whichever loop wakes for it. A guest that makes
/// no progress for `SMP_STALL`, or does not finish within `SMP_LIMIT`, fails the test with
/// what each side saw: the counts, each vCPU's slot (a `READY` slot is a request the server
/// was not woken for), the domain's state and Xen's messages.
fn hammer(test: &str, threads: usize) {
    let Some(_) = xen_env(test) else {
        return;
    };
    if !x86_guests_or_skip(test) {
        return;
    }
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = std::env::current_dir().unwrap().join("xioreq-smp.elf");
    std::fs::write(&kernel, pvh_kernel_with(&SMP_CODE)).unwrap();
    let domu = pvh_domu("smp", &kernel, 2);

    let dev = Arc::new(SmpDevice {
        state: Mutex::new(SmpState::default()),
        stop: Mutex::new(Vec::new()),
    });
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO, 0x1000, dev.clone())
        .unwrap();
    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
    assert_eq!(server.vcpus(), 2);
    server
        .map_range(IoRange::mmio(MMIO, 0x1000).unwrap())
        .unwrap();
    server.enable().unwrap();
    let loops: Vec<_> = (0..threads)
        .map(|_| xen_ioreq::EventLoop::new(&server, Dispatcher::new(&bus)).unwrap())
        .collect();
    dev.stop
        .lock()
        .unwrap()
        .extend(loops.iter().map(|ev| ev.stopper()));

    run(Command::new("xl").arg("unpause").arg(&domu.name));
    let start = Instant::now();
    let reports: Vec<LoopReport> = std::thread::scope(|s| {
        let workers: Vec<_> = loops
            .into_iter()
            .map(|mut ev| {
                let dev = &dev;
                s.spawn(move || {
                    let mut r = LoopReport::default();
                    let (mut seen, mut moved) = (dev.progress(), Instant::now());
                    loop {
                        let turn = match ev.run_once(250) {
                            Ok(t) => t,
                            Err(e) => {
                                r.gave_up = Some(format!("run_once failed: {e}"));
                                dev.stop_all();
                                break;
                            }
                        };
                        r.turns += 1;
                        r.requests += turn.requests;
                        r.idle_turns += usize::from(turn.requests == 0);
                        if turn.stopped {
                            break;
                        }
                        let now = dev.progress();
                        if now != seen {
                            (seen, moved) = (now, Instant::now());
                        }
                        let why = if moved.elapsed() > SMP_STALL {
                            format!("no request for {SMP_STALL:?}")
                        } else if start.elapsed() > SMP_LIMIT {
                            format!("not finished within {SMP_LIMIT:?}")
                        } else {
                            continue;
                        };
                        r.gave_up = Some(why);
                        dev.stop_all();
                        break;
                    }
                    r.stats = ev.dispatcher().stats();
                    r
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    let st = dev.state.lock().unwrap();
    let summary = format!(
        "{threads} loop(s) in {elapsed:.1?}: {:?}; writes {} + {}; done {:?}; {} requests",
        reports,
        st.seqs[0].len(),
        st.seqs[1].len(),
        st.done,
        st.requests
    );
    eprintln!("{summary}");
    if !st.finished() {
        let slots: Vec<String> = (0..2)
            .map(|v| {
                let slot = server.ioreq_page().slot(v).unwrap();
                let r = slot.peek();
                format!(
                    "vCPU {v}: state {} (0 none, 1 ready, 2 in process, 3 response ready), \
                     addr {:#x}, size {}, dir {}",
                    slot.state(),
                    r.addr,
                    r.size,
                    if r.is_read() { "read" } else { "write" }
                )
            })
            .collect();
        let xl = |args: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("xl {args} 2>&1"))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| e.to_string())
        };
        // Xen's lines lose their "(XEN) " prefix: the box shows the host only the payload's
        // part of a serial line, and would show none of them.
        panic!(
            "the guest did not finish: {summary}\nslots: {slots:?}\nxl list: {}\nxl dmesg \
             (tail): {}",
            xl(&format!("list {}", domu.name)),
            xl("dmesg | grep -v -e ' save: ' -e 'HVM restore' | tail -n 30 | sed 's/^(XEN) /xen: /'")
        );
    }
    let switches = st.order.windows(2).filter(|w| w[0] != w[1]).count();
    eprintln!("vCPU switches in the arrival order: {switches}");
    assert_eq!(
        st.hypercall_error, None,
        "VCPUOP_initialise/VCPUOP_up failed in the guest"
    );
    assert!(reports.iter().all(|r| r.stats.errors == 0));
    let want: Vec<u32> = (1..=SMP_WRITES).collect();
    for cpu in 0..2 {
        assert_eq!(
            st.seqs[cpu], want,
            "vCPU {cpu}: every write arrives once, in order"
        );
        assert_eq!(
            st.done[cpu],
            Some(SMP_WRITES + 1),
            "vCPU {cpu}: every read-back matched"
        );
    }
    // Both vCPUs were in flight at the same time, not one after the other.
    assert!(
        switches > 1,
        "the two vCPUs' writes never interleaved ({switches} switches)"
    );
    drop(st);
    server.shutdown().unwrap();
}

// -------------------------------------------------------------------------------------------
// Round trips per second against a C server on libxendevicemodel (run by benches/xen-box.sh)
// -------------------------------------------------------------------------------------------

/// `tests/guests/bench.S` linked at `GUEST_ENTRY`: reads N from MMIO + 0x40, does N 4-byte
/// reads of MMIO + 0, writes the elapsed TSC ticks to MMIO + 0x48/0x4c and 0xdd to MMIO + 0x50.
const BENCH_CODE: [u8; BENCH_LEN] = [
    0xfa, 0xbe, 0x00, 0x00, 0x00, 0xe0, 0x8b, 0x4e, 0x40, 0x0f, 0x31, 0x89, 0xc7, 0x89, 0xd5, 0x8b,
    0x06, 0x49, 0x75, 0xfb, 0x0f, 0x31, 0x29, 0xf8, 0x19, 0xea, 0x89, 0x46, 0x48, 0x89, 0x56, 0x4c,
    0xc7, 0x46, 0x50, 0xdd, 0x00, 0x00, 0x00, 0xf4, 0xeb, 0xfd,
];
const BENCH_LEN: usize = 42;

/// Reads per benchmark run.
const BENCH_READS: u32 = 2_000;

/// Answers the benchmark guest and times it from the server side.
/// Its read path takes no lock, as the C server's device (three comparisons inline) takes none:
/// the instruction counts compare the servers, not the test devices.
struct BenchDevice {
    reads: std::sync::atomic::AtomicU64,
    first_read: std::sync::OnceLock<std::time::Instant>,
    /// The serving thread's heap allocations so far, taken with the first read's time: the
    /// steady state's count starts there (the loop set itself up before).
    allocations_at_first_read: std::sync::OnceLock<u64>,
    tsc: Mutex<(u32, u32)>,
    done: Mutex<Option<std::time::Instant>>,
    stop: Mutex<Option<xen_ioreq::Stopper>>,
}

impl IoHandler for BenchDevice {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let v = self.read_value(offset, 8)?;
        data.copy_from_slice(&v.to_le_bytes()[..data.len()]);
        Ok(())
    }
    /// The path the IOREQ server takes: a value, as the C server's device stores one.
    fn read_value(&self, offset: u64, _size: u8) -> Result<u64, DeviceError> {
        // What the C server's device does: the first read takes the time, each one counts.
        Ok(match offset {
            0x40 => BENCH_READS.into(),
            _ => {
                let before = self
                    .reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if before == 0 {
                    self.first_read_now();
                }
                0x1234_5678
            }
        })
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let v = u32_of(data);
        match offset {
            0x48 => self.tsc.lock().unwrap().0 = v,
            0x4c => self.tsc.lock().unwrap().1 = v,
            0x50 => {
                *self.done.lock().unwrap() = Some(std::time::Instant::now());
                if let Some(stop) = self.stop.lock().unwrap().as_ref() {
                    stop.stop().map_err(|e| e.to_string())?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl BenchDevice {
    /// Takes the time of the first read, out of line as the C server's `now_ns()` call is: the
    /// reads after it pay nothing for it.
    #[cold]
    #[inline(never)]
    fn first_read_now(&self) {
        let _ = self.allocations_at_first_read.set(allocations());
        let _ = self.first_read.set(std::time::Instant::now());
    }
}

/// One benchmark run's figures.
#[derive(Debug, Clone, Copy)]
struct BenchRun {
    /// Nanoseconds per round trip, server side (first read to the done write).
    ns: f64,
    /// Guest TSC ticks per round trip.
    ticks: f64,
}

/// The benchmark's serving loop, out of line so that an instruction count can be limited to
/// it (`valgrind --tool=callgrind --toggle-collect='*bench_serve*'`, `benches/xen-box.sh` in
/// instructions mode), as the C server's `serve` is: `EventLoop::run` until the device stops
/// it through its `Stopper`. The server's only loop, it blocks in `read` of the event channel
/// (a lost event shows as a box run that hits its timeout).
#[inline(never)]
fn bench_serve<S: xen_bindings::sys::Sys, B: xen_ioreq::DeviceBus>(
    ev: &mut xen_ioreq::EventLoop<'_, S, B>,
) {
    ev.run().unwrap()
}

/// The bench guest served by one xen-ioreq loop, polling for `poll` after each request when
/// given (`EventLoop::set_polling`).
fn bench_rust(kernel: &Path, poll: Option<Duration>) -> BenchRun {
    let domu = pvh_domu("bench-rs", kernel, 1);
    let dev = Arc::new(BenchDevice {
        reads: std::sync::atomic::AtomicU64::new(0),
        first_read: std::sync::OnceLock::new(),
        allocations_at_first_read: std::sync::OnceLock::new(),
        tsc: Mutex::new((0, 0)),
        done: Mutex::new(None),
        stop: Mutex::new(None),
    });
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO, 0x1000, dev.clone())
        .unwrap();
    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off).unwrap();
    server
        .map_range(IoRange::mmio(MMIO, 0x1000).unwrap())
        .unwrap();
    server.enable().unwrap();
    let mut ev = xen_ioreq::EventLoop::new(&server, Dispatcher::new(&bus)).unwrap();
    ev.set_polling(poll);
    *dev.stop.lock().unwrap() = Some(ev.stop_handle());
    run(Command::new("xl").arg("unpause").arg(&domu.name));
    bench_serve(&mut ev);
    let served = ev.dispatcher().stats().completed;
    let before = *dev
        .allocations_at_first_read
        .get()
        .expect("the guest reads the register");
    let allocated = allocations() - before;
    eprintln!(
        "BENCH xen-ioreq heap allocations in steady state: {allocated} in {served} requests \
         from the first read on ({:.3} per request)",
        allocated as f64 / served.max(1) as f64
    );
    drop(ev);
    server.shutdown().unwrap();
    let reads = dev.reads.load(std::sync::atomic::Ordering::Relaxed);
    let first = dev.first_read.get().copied();
    assert_eq!(reads, u64::from(BENCH_READS), "every read served once");
    let done = dev.done.lock().unwrap().unwrap();
    let (lo, hi) = *dev.tsc.lock().unwrap();
    BenchRun {
        ns: (done - first.unwrap()).as_nanos() as f64 / f64::from(BENCH_READS),
        ticks: (u64::from(hi) << 32 | u64::from(lo)) as f64 / f64::from(BENCH_READS),
    }
}

fn bench_c(server: &Path, kernel: &Path) -> BenchRun {
    let domu = pvh_domu("bench-c", kernel, 1);
    let mut child = Command::new(server)
        .arg(domu.domid.to_string())
        .arg(format!("{MMIO:#x}"))
        .arg(BENCH_READS.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", server.display()));
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "READY", "C server's first line");
    run(Command::new("xl").arg("unpause").arg(&domu.name));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "C server failed: {status}; {rest}");
    // "reads=N ns=X ticks=Y"
    let field = |k: &str| -> f64 {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or_else(|| panic!("C server output lacks {k}: {rest}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        field("reads=") as u32,
        BENCH_READS,
        "every read served once"
    );
    BenchRun {
        ns: field("ns="),
        ticks: field("ticks="),
    }
}

/// A measurement, not a check: run by `benches/xen-box.sh` with `--ignored`, which also builds
/// the C server (`benches/c/ioreq-bench-server.c`) and passes it in `XIOREQ_C_SERVER`.
/// Alternates the two servers on identical guests and prints the figures.
#[test]
#[ignore = "benchmark; run by benches/xen-box.sh in the Xen box"]
fn round_trips_versus_libxendevicemodel() {
    let Some(_) = xen_env("round_trips_versus_libxendevicemodel") else {
        return;
    };
    if !x86_guests_or_skip("round_trips_versus_libxendevicemodel") {
        return;
    }
    let c_server = PathBuf::from(
        std::env::var_os("XIOREQ_C_SERVER").expect("XIOREQ_C_SERVER names the C server"),
    );
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = std::env::current_dir().unwrap().join("xioreq-bench.elf");
    std::fs::write(&kernel, pvh_kernel_with(&BENCH_CODE)).unwrap();
    let rounds: usize = std::env::var("XIOREQ_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let micros = |name| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros)
    };
    // With XIOREQ_BENCH_POLL_US, each round also serves the guest with a polling loop; with
    // XIOREQ_BENCH_MAIN_POLL_US the main xen-ioreq run polls too (benches/xen-box.sh counts
    // the polling path's instructions that way).
    let poll = micros("XIOREQ_BENCH_POLL_US");
    let main_poll = micros("XIOREQ_BENCH_MAIN_POLL_US");
    let (mut rs, mut ps, mut cs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Who goes first alternates: the host's load drifts within a round.
        let polling = |ps: &mut Vec<BenchRun>| {
            if let Some(window) = poll {
                ps.push(bench_rust(&kernel, Some(window)));
            }
        };
        let (r, c) = if round % 2 == 0 {
            let r = bench_rust(&kernel, main_poll);
            polling(&mut ps);
            (r, bench_c(&c_server, &kernel))
        } else {
            let c = bench_c(&c_server, &kernel);
            polling(&mut ps);
            (bench_rust(&kernel, main_poll), c)
        };
        eprintln!(
            "BENCH round {round}: xen-ioreq {:.0} ns/rt ({:.0} ticks), libxendevicemodel C \
             {:.0} ns/rt ({:.0} ticks){}",
            r.ns,
            r.ticks,
            c.ns,
            c.ticks,
            ps.get(round).map_or(String::new(), |p| format!(
                ", xen-ioreq polling {:.0} ns/rt ({:.0} ticks)",
                p.ns, p.ticks
            ))
        );
        rs.push(r);
        cs.push(c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let r_ns = median(&mut rs.iter().map(|r| r.ns).collect());
    let c_ns = median(&mut cs.iter().map(|r| r.ns).collect());
    let r_t = median(&mut rs.iter().map(|r| r.ticks).collect());
    let c_t = median(&mut cs.iter().map(|r| r.ticks).collect());
    eprintln!(
        "BENCH {} (Xen {}), {BENCH_READS} MMIO reads x {rounds} rounds, medians: xen-ioreq \
         {r_ns:.0} ns/rt = {:.0} rt/s, guest {r_t:.0} ticks/rt; C {c_ns:.0} ns/rt = {:.0} rt/s, \
         guest {c_t:.0} ticks/rt; latency ratio xen-ioreq/C: {:.3} (server clock), {:.3} (guest \
         TSC)",
        std::env::var("XEN_BOX_STACK").unwrap_or_default(),
        std::env::var("XEN_BOX_XEN_VERSION").unwrap_or_default(),
        1e9 / r_ns,
        1e9 / c_ns,
        r_ns / c_ns,
        r_t / c_t
    );
    if let Some(window) = poll {
        let p_ns = median(&mut ps.iter().map(|r| r.ns).collect());
        let p_t = median(&mut ps.iter().map(|r| r.ticks).collect());
        eprintln!(
            "BENCH polling ({} us window), medians: xen-ioreq {p_ns:.0} ns/rt = {:.0} rt/s, \
             guest {p_t:.0} ticks/rt; latency ratio polling/C: {:.3} (server clock), {:.3} \
             (guest TSC)",
            window.as_micros(),
            1e9 / p_ns,
            p_ns / c_ns,
            p_t / c_t
        );
    }
}

/// In the Xen box: a loop that polls between requests (`EventLoop::set_polling`) serves
/// every read of the bench guest exactly once, in order, and stops when the device asks it
/// to at the end (a stop that polling missed would hang the run until the box's limit).
#[test]
fn a_polling_loop_serves_every_read_once_and_stops() {
    let Some(_) = xen_env("a_polling_loop_serves_every_read_once_and_stops") else {
        return;
    };
    if !x86_guests_or_skip("a_polling_loop_serves_every_read_once_and_stops") {
        return;
    }
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = std::env::current_dir()
        .unwrap()
        .join("xioreq-poll-test.elf");
    std::fs::write(&kernel, pvh_kernel_with(&BENCH_CODE)).unwrap();
    let run = bench_rust(&kernel, Some(Duration::from_millis(2)));
    let _ = std::fs::remove_file(&kernel);
    eprintln!("polling: {:.0} ns per round trip", run.ns);
}

/// Runs anywhere with GNU `as` and `ld`: the embedded guest code is what its source in
/// `tests/guests/` assembles to.
#[test]
fn embedded_guests_match_their_sources() {
    for (name, code) in [("smp", &SMP_CODE[..]), ("bench", &BENCH_CODE[..])] {
        if let Some(bin) = assembled_guest("embedded_guests_match_their_sources", name) {
            assert_eq!(bin, code, "{name}.S and its bytes");
        }
    }
}

/// Runs anywhere: the guest image is an ELF a PVH loader accepts (checked field by field).
#[test]
fn pvh_kernel_image_is_well_formed() {
    let k = pvh_kernel();
    let u32_at = |at: usize| u32::from_le_bytes(k[at..at + 4].try_into().unwrap());
    assert_eq!(&k[..4], b"\x7fELF");
    assert_eq!((k[4], k[5]), (1, 1), "ELF32, little endian");
    assert_eq!(u32_at(24), GUEST_ENTRY, "e_entry");
    // PT_LOAD covers the whole file at GUEST_BASE; the entry is inside it.
    assert_eq!((u32_at(52), u32_at(52 + 12)), (1, GUEST_BASE));
    assert_eq!(u32_at(52 + 16) as usize, k.len());
    // The PHYS32_ENTRY note names the entry.
    let note = u32_at(84 + 4) as usize;
    assert_eq!(
        (u32_at(note), u32_at(note + 4), u32_at(note + 8)),
        (4, 4, 18)
    );
    assert_eq!(&k[note + 12..note + 16], b"Xen\0");
    assert_eq!(u32_at(note + 16), GUEST_ENTRY);
    // The code's absolute reference to `msg` matches where the image puts it.
    let msg = k.windows(4).position(|w| w == b"REP!").unwrap() as u32;
    let mov_esi_msg = [0xbe, 0xb4, 0x01, 0x10, 0x00];
    assert!(k.windows(5).any(|w| w == mov_esi_msg));
    assert_eq!(GUEST_BASE + msg, 0x0010_01b4);
}
