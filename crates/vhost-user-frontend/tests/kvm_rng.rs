// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! End to end on real `/dev/kvm`: a tiny real-mode guest drives a
//! virtio-mmio entropy device served by the unmodified `vhost-device-rng`
//! daemon through [`VhostUserRelay`], and takes the used-buffer interrupt
//! through the in-kernel PIC; a second run registers the kick eventfd as a
//! KVM ioeventfd, so that kicks never leave the kernel.
//!
//! The guest runs a small interpreter over a script of MMIO/RAM accesses
//! (its own code does every access: reset, ACKNOWLEDGE, DRIVER, features,
//! FEATURES_OK, queue set-up, DRIVER_OK, the descriptor and available ring,
//! QueueNotify), then waits with `sti; hlt` for IRQ 4. The VMM side is what a
//! real VMM does: a vCPU loop over an `IoBus`, and an event loop that reads
//! the queue's call eventfd, sets InterruptStatus and writes an irqfd.
//!
//! The daemon binary comes from `$VHOST_DEVICE_RNG`, else from the cache that
//! `cargo xtask vhost-device build rng` fills; without one the test says
//! `SKIPPED:` and why. With `$VHOST_DEVICE_RNG` set, a missing binary fails.

// The guest is x86 real-mode code and the set-up uses the x86 register and irqchip API.
#![cfg(target_arch = "x86_64")]

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost_user_frontend::{
    DeviceType, MmioTransport, RelayConfig, SharedMemory, SharedRegion, VhostUserRelay,
};
use vm_hypervisor::x86_64::{StandardRegisters, VcpuX86_64, VmX86_64};
use vm_hypervisor::{
    DataMatch, DeviceError, Hypervisor, IoBus, IoEventAddress, IoHandler, IoSpace, IrqLine,
    MemoryRegion, MemoryRegionFlags, Vcpu, VcpuExit, Vm,
};
use vm_hypervisor_kvm::Kvm;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

// Guest-physical layout (all below 1 MiB: the guest runs in real mode).
const RAM_SIZE: u64 = 0x1_0000;
const DEV_BASE: u64 = 0xd_0000;
const DEV_SEG: u16 = 0xd000;
const CODE: u64 = 0x1000;
const HANDLER: u64 = 0x1800;
const SCRIPT: u64 = 0x2000;
const DESC: u64 = 0x3000;
const AVAIL: u64 = 0x4000;
const USED: u64 = 0x5000;
const BUF_A: u64 = 0x6000;
const BUF_B: u64 = 0x6400;
const BUF_C: u64 = 0x6800;
const BUF_A2: u64 = 0x6c00;
const BUF_LEN: u32 = 256;
/// The interrupt handler stores `InterruptStatus | 0x80` here.
const FLAG: u64 = 0x7000;
/// Where the guest stores what it reads (one dword each).
const RESULTS: u64 = 0x7100;
const STACK_TOP: u16 = 0x8000;
/// PIC IRQ 4 with ICW2 = 0x20.
const GSI: u32 = 4;
const VECTOR: u64 = 0x24;
/// Ports the guest writes to mark the end of a phase.
const PORTS: u64 = 0x500;
const PHASE_A_DONE: u64 = 0x501;
const PHASE_B_DONE: u64 = 0x502;
const END: u64 = 0x5ff;

const SEED_LEN: usize = 4096;

/// A little assembler: bytes, labels and 8-bit relative jumps.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    fn b(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.extend_from_slice(bytes);
        self
    }
    fn label(&mut self, l: &'static str) -> &mut Self {
        self.labels.insert(l, self.code.len());
        self
    }
    /// A short jump (`0xeb`) or conditional jump (`0x74` je, `0x75` jne).
    fn j(&mut self, op: u8, l: &'static str) -> &mut Self {
        self.code.push(op);
        self.fixups.push((self.code.len(), l));
        self.code.push(0);
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        for &(at, l) in &self.fixups {
            let rel = self.labels[l] as i64 - (at as i64 + 1);
            self.code[at] = i8::try_from(rel).expect("short jump") as u8;
        }
        std::mem::take(&mut self.code)
    }
}

/// The guest: PIC set-up, then the script interpreter (16-bit real mode).
fn guest_code() -> Vec<u8> {
    let mut a = Asm::default();
    a.b(&[0x31, 0xc0]) //                    xor ax, ax
        .b(&[0x8e, 0xd8]) //                 mov ds, ax
        .b(&[0x8e, 0xd0]) //                 mov ss, ax
        .b(&[0xbc])
        .b(&STACK_TOP.to_le_bytes()) //      mov sp, STACK_TOP
        .b(&[0xbe])
        .b(&(SCRIPT as u16).to_le_bytes()) // mov si, SCRIPT
        // PIC: ICW1 init, ICW2 vectors 0x20.., ICW3, ICW4 8086, only IRQ 4 unmasked.
        .b(&[0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20, 0xe6, 0x21])
        .b(&[0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21])
        .b(&[0xb0, 0xef, 0xe6, 0x21])
        .label("loop")
        .b(&[0x8b, 0x04]) //                 mov ax, [si]        ; op
        .b(&[0x8e, 0x44, 0x02]) //           mov es, [si+2]      ; segment
        .b(&[0x8b, 0x7c, 0x04]) //           mov di, [si+4]      ; offset
        .b(&[0x8b, 0x5c, 0x06]) //           mov bx, [si+6]      ; aux
        .b(&[0x66, 0x8b, 0x4c, 0x08]) //     mov ecx, [si+8]     ; value
        .b(&[0x83, 0xc6, 0x0c]) //           add si, 12
        .b(&[0x83, 0xf8, 0x01])
        .j(0x74, "write") //                 cmp ax, 1 / je
        .b(&[0x83, 0xf8, 0x02])
        .j(0x74, "read")
        .b(&[0x83, 0xf8, 0x03])
        .j(0x74, "wait")
        .b(&[0x83, 0xf8, 0x04])
        .j(0x74, "out")
        .b(&[0xba])
        .b(&(END as u16).to_le_bytes()) //   mov dx, END
        .b(&[0xee]) //                       out dx, al
        .label("stop")
        .b(&[0xf4]) //                       hlt
        .j(0xeb, "stop")
        .label("write")
        .b(&[0x26, 0x66, 0x89, 0x0d]) //     mov es:[di], ecx
        .j(0xeb, "loop")
        .label("read")
        .b(&[0x26, 0x66, 0x8b, 0x05]) //     mov eax, es:[di]
        .b(&[0x66, 0x89, 0x07]) //           mov [bx], eax
        .j(0xeb, "loop")
        .label("wait")
        .b(&[0xfa]) //                       cli
        .b(&[0x80, 0x3e])
        .b(&(FLAG as u16).to_le_bytes())
        .b(&[0x00]) //                       cmp byte [FLAG], 0
        .j(0x75, "loop") //                  jne loop
        .b(&[0xfb, 0xf4]) //                 sti; hlt (no interrupt slips between)
        .j(0xeb, "wait")
        .label("out")
        .b(&[0x89, 0xda, 0xee]) //           mov dx, bx; out dx, al
        .j(0xeb, "loop");
    a.finish()
}

/// IRQ 4: read InterruptStatus, acknowledge it, store it (| 0x80) at FLAG,
/// EOI, return.
fn guest_handler() -> Vec<u8> {
    let mut h = vec![0x66, 0x50, 0x06]; //   push eax; push es
    h.extend([0xb8]);
    h.extend(DEV_SEG.to_le_bytes()); //      mov ax, DEV_SEG
    h.extend([0x8e, 0xc0]); //               mov es, ax
    h.extend([0x26, 0x66, 0xa1, 0x60, 0x00]); // mov eax, es:[0x60]  InterruptStatus
    h.extend([0x26, 0x66, 0xa3, 0x64, 0x00]); // mov es:[0x64], eax  InterruptACK
    h.extend([0x66, 0x0d, 0x80, 0, 0, 0]); // or eax, 0x80
    h.extend([0x66, 0xa3]);
    h.extend((FLAG as u16).to_le_bytes()); // mov [FLAG], eax
    h.extend([0xb0, 0x20, 0xe6, 0x20]); //   EOI
    h.extend([0x07, 0x66, 0x58, 0xcf]); //   pop es; pop eax; iret
    h
}

/// One step of the guest's script.
#[derive(Clone, Copy)]
enum Op {
    /// Write a dword of the device's registers.
    Dev(u16, u32),
    /// Read a device register into result slot `n`.
    DevRead(u16, u16),
    /// Write a dword of RAM.
    Ram(u64, u32),
    /// Read a dword of RAM into result slot `n`.
    RamRead(u64, u16),
    /// Wait for the interrupt handler to set FLAG.
    Wait,
    /// Write to a port (the VMM acts on it).
    Out(u64),
}

fn encode(ops: &[Op]) -> Vec<u8> {
    let mut v = Vec::new();
    let slot = |n: u16| (RESULTS as u16) + 4 * n;
    for op in ops {
        let (op, seg, off, aux, val): (u16, u16, u16, u16, u32) = match *op {
            Op::Dev(r, x) => (1, DEV_SEG, r, 0, x),
            Op::DevRead(r, n) => (2, DEV_SEG, r, slot(n), 0),
            Op::Ram(a, x) => (1, 0, a as u16, 0, x),
            Op::RamRead(a, n) => (2, 0, a as u16, slot(n), 0),
            Op::Wait => (3, 0, 0, 0, 0),
            Op::Out(p) => (4, 0, 0, p as u16, 0),
        };
        for x in [op, seg, off, aux] {
            v.extend(x.to_le_bytes());
        }
        v.extend(val.to_le_bytes());
    }
    v.extend([0u8; 12]); // op 0: the end
    v
}

/// Driver initialisation up to DRIVER_OK (virtio 1.2, 3.1.1 and 4.2.3),
/// storing DeviceFeatures (both halves), Status after FEATURES_OK and
/// QueueNumMax in result slots `first..first + 4`.
fn init(first: u16) -> Vec<Op> {
    vec![
        Op::Dev(0x70, 0),
        Op::Dev(0x70, 1),
        Op::Dev(0x70, 3),
        Op::Dev(0x14, 0),
        Op::DevRead(0x10, first),
        Op::Dev(0x14, 1),
        Op::DevRead(0x10, first + 1),
        Op::Dev(0x24, 1),
        Op::Dev(0x20, 1), // VIRTIO_F_VERSION_1 only
        Op::Dev(0x24, 0),
        Op::Dev(0x20, 0),
        Op::Dev(0x70, 0xb),
        Op::DevRead(0x70, first + 2),
        Op::Dev(0x30, 0),
        Op::DevRead(0x34, first + 3),
        Op::Dev(0x38, 16),
        Op::Dev(0x80, DESC as u32),
        Op::Dev(0x84, 0),
        Op::Dev(0x90, AVAIL as u32),
        Op::Dev(0x94, 0),
        Op::Dev(0xa0, USED as u32),
        Op::Dev(0xa4, 0),
        Op::Dev(0x44, 1),
        Op::Dev(0x70, 0xf),
    ]
}

/// Reset and [`init`] again, with clean rings before QueueReady.
fn reinit(first: u16) -> Vec<Op> {
    let mut s = init(first);
    let tail = s.split_off(s.len() - 2); // QueueReady, DRIVER_OK
    s.extend([Op::Ram(AVAIL, 0), Op::Ram(USED, 0)]);
    s.extend(tail);
    s
}

/// Post descriptor `d` (a device-writable buffer at `buf`) as available
/// entry `idx`, notify, and wait for the interrupt.
fn post(d: u32, buf: u64, idx: u16) -> Vec<Op> {
    let desc = DESC + 16 * u64::from(d);
    let ring = AVAIL + 4 + 2 * u64::from(idx & !1);
    // The ring entries in the dword that holds entry `idx`: the earlier one
    // (if any) was descriptor d - 1.
    let pair = if idx % 2 == 0 { d } else { (d << 16) | (d - 1) };
    vec![
        Op::Ram(desc, buf as u32),
        Op::Ram(desc + 4, 0),
        Op::Ram(desc + 8, BUF_LEN),
        Op::Ram(desc + 12, 2), // VIRTQ_DESC_F_WRITE, next 0
        Op::Ram(ring, pair),
        Op::Ram(AVAIL, u32::from(idx + 1) << 16), // flags 0, idx
        Op::Ram(FLAG, 0),
        Op::Dev(0x50, 0),
    ]
}

/// How the guest's QueueNotify write reaches the daemon.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kick {
    /// An MMIO exit to the transport, whose relay writes the kick eventfd
    /// (and finds a dead daemon on the way).
    Exit,
    /// A KVM ioeventfd on QueueNotify: the kernel writes the kick eventfd,
    /// the VMM never sees the write; its event loop watches the daemon
    /// (`check_backend`) and raises the config-change interrupt.
    Ioeventfd,
}

/// The whole guest script. Result slots: 0-3 init A, 4 flag A, 5 Status A,
/// 6 Status after the kick to the dead daemon, 7-10 init C, 11 flag C,
/// 12 Status C, 13 flag of the config-change interrupt (ioeventfd kicks),
/// 14-17 init A2, 18 flag A2.
fn script(kick: Kick) -> Vec<Op> {
    let mut s = init(0);
    s.extend(post(0, BUF_A, 0));
    s.extend([Op::Wait, Op::RamRead(FLAG, 4), Op::DevRead(0x70, 5)]);
    // Phase A2: reset with the daemon alive (GET_VRING_BASE stops the
    // queue), set up again on the same connection, read on.
    s.extend(reinit(14));
    s.extend(post(0, BUF_A2, 0));
    s.extend([Op::Wait, Op::RamRead(FLAG, 18), Op::Out(PHASE_A_DONE)]);
    // Phase B: the VMM killed the daemon; the next kick finds it gone.
    let mut b = post(1, BUF_B, 1);
    match kick {
        // The kick's exit finds the daemon gone; Status says so at once.
        Kick::Exit => b.retain(|op| !matches!(op, Op::Ram(FLAG, _))),
        // Nothing sees the kick; the VMM's check raises an interrupt.
        Kick::Ioeventfd => b.extend([Op::Wait, Op::RamRead(FLAG, 13)]),
    }
    s.extend(b);
    s.extend([Op::DevRead(0x70, 6), Op::Out(PHASE_B_DONE)]);
    // Phase C: the VMM restarted the daemon; reset, set up from scratch.
    s.extend(reinit(7));
    s.extend(post(0, BUF_C, 0));
    s.extend([Op::Wait, Op::RamRead(FLAG, 11), Op::DevRead(0x70, 12)]);
    s
}

/// Accepts the guest's port writes (phase markers).
struct Ports;
impl IoHandler for Ports {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// The daemon process; killed and reaped on drop.
struct Daemon {
    child: Child,
    stderr: PathBuf,
}

impl Daemon {
    fn start(bin: &Path, dir: &Path, source: &Path, n: u32) -> Daemon {
        let stderr = dir.join(format!("daemon{n}.stderr"));
        let log = File::create(&stderr).unwrap();
        let child = Command::new(bin)
            .arg("--socket-path")
            .arg(dir.join("rng.sock"))
            .arg("--rng-source")
            .arg(source)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Daemon { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The daemon binary, or `None` after saying why the test is skipped.
fn daemon_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VHOST_DEVICE_RNG") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "$VHOST_DEVICE_RNG={} is not a file",
            p.display()
        );
        return Some(p);
    }
    let cache = std::env::var_os("XEN_BOX_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/xen-rust-vmm/xen-box"))
        })?;
    let p = cache.join("vhost-device/vhost-device-rng-0.1.0/x86_64/bin/vhost-device-rng");
    if p.is_file() {
        return Some(p);
    }
    eprintln!(
        "SKIPPED: vhost-user rng on KVM: no vhost-device-rng ($VHOST_DEVICE_RNG unset, {} \
         absent; `cargo xtask vhost-device build rng` builds it)",
        p.display()
    );
    None
}

fn open_kvm() -> Option<Kvm> {
    if !Kvm::is_present() {
        eprintln!("SKIPPED: vhost-user rng on KVM: /dev/kvm is absent");
        return None;
    }
    match Kvm::new() {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("SKIPPED: vhost-user rng on KVM: /dev/kvm cannot be opened: {e}");
            None
        }
    }
}

/// Deterministic "random" bytes for the daemon's source file (xorshift).
fn seed_bytes() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..SEED_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn memfd(size: u64) -> File {
    // SAFETY: a NUL-terminated name; the returned fd, if valid, is ours alone.
    let fd = unsafe { libc::memfd_create(c"guest-ram".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh, valid fd owned by nobody else.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size).unwrap();
    f
}

/// Reads the call eventfd and turns each signal into the guest's interrupt;
/// after `deadline` it injects anyway (the guest then reports no
/// used-buffer bit) so that a lost interrupt fails the test instead of
/// hanging it.
fn event_loop(
    device: Arc<MmioTransport<VhostUserRelay>>,
    call: EventFd,
    irq: EventFd,
    stop: Arc<AtomicBool>,
    deadline: Instant,
    watch_backend: bool,
) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut calls = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd: call.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd on this frame; bounded timeout.
            let n = unsafe { libc::poll(&mut pfd, 1, 50) };
            if n > 0 && call.read().is_ok() {
                calls += 1;
                device.used_buffer_interrupt(&irq).unwrap();
            } else {
                if watch_backend && device.status() & 0x40 == 0 {
                    // Sets DEVICE_NEEDS_RESET and injects when the daemon is gone.
                    let _ = device.check_backend(&irq);
                }
                if Instant::now() > deadline {
                    irq.write(1).unwrap();
                }
            }
        }
        calls
    })
}

#[test]
fn a_real_mode_guest_reads_the_rng_file_through_vhost_device_rng_and_survives_its_death() {
    run(Kick::Exit);
}

#[test]
fn the_same_with_the_kick_eventfd_as_a_kvm_ioeventfd() {
    run(Kick::Ioeventfd);
}

fn run(kick: Kick) {
    let Some(bin) = daemon_binary() else { return };
    let Some(kvm) = open_kvm() else { return };
    let dir = std::env::temp_dir().join(format!(
        "vhost-user-frontend-kvm-{}-{kick:?}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seed = seed_bytes();
    let source = dir.join("rng-source");
    File::create(&source).unwrap().write_all(&seed).unwrap();
    let mut daemon = Daemon::start(&bin, &dir, &source, 0);

    // Guest RAM: a memfd, mapped here, given to KVM and to the daemon.
    let ram = memfd(RAM_SIZE);
    let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(
        GuestAddress(0),
        RAM_SIZE as usize,
        Some(FileOffset::new(ram.try_clone().unwrap(), 0)),
    )])
    .unwrap();
    let host = mem.get_host_address(GuestAddress(0)).unwrap() as u64;
    let shared = SharedMemory::new(vec![SharedRegion {
        guest_addr: 0,
        size: RAM_SIZE,
        frontend_addr: host,
        fd: ram.into(),
        mapping: vhost_user_frontend::Mapping::File { offset: 0 },
    }])
    .unwrap();

    let profile = DeviceType::Rng.profile();
    let mut config = RelayConfig::new(dir.join("rng.sock0"), profile);
    config.connect_timeout = Duration::from_secs(20);
    let relay = VhostUserRelay::connect(config, shared).unwrap_or_else(|e| {
        panic!(
            "connecting to the daemon: {e} ({:?}); its stderr:\n{}",
            std::error::Error::source(&e),
            daemon.stderr()
        )
    });
    let fds = relay.eventfds().unwrap();
    let device = Arc::new(MmioTransport::new(profile, relay));

    let vm = kvm.create_vm().unwrap();
    vm.create_irqchip().unwrap();
    let region = mem
        .find_region(GuestAddress(0))
        .and_then(|r| MemoryRegion::from_guest_region(r, MemoryRegionFlags::default()))
        .unwrap();
    // SAFETY: `mem` maps the whole region and outlives the VM (dropped
    // after it, at the end of this function, in reverse order).
    unsafe { vm.set_memory_region(region).unwrap() };
    let irq = EventFd::new(EFD_NONBLOCK).unwrap();
    vm.register_irqfd(&irq, IrqLine::Gsi(GSI)).unwrap();
    let notify = IoEventAddress::Mmio(DEV_BASE + 0x50);
    if kick == Kick::Ioeventfd {
        // Queue 0's kick eventfd outlives reconnections: registered once.
        vm.register_ioevent(&fds[0].kick, notify, DataMatch::U32(0))
            .unwrap();
    }
    let mut vcpu = vm.create_vcpu(0).unwrap();

    mem.write_slice(&guest_code(), GuestAddress(CODE)).unwrap();
    mem.write_slice(&guest_handler(), GuestAddress(HANDLER))
        .unwrap();
    mem.write_obj(HANDLER as u32, GuestAddress(4 * VECTOR))
        .unwrap(); // IVT: offset, segment 0
    let script = encode(&script(kick));
    assert!(script.len() < (DESC - SCRIPT) as usize);
    mem.write_slice(&script, GuestAddress(SCRIPT)).unwrap();
    let mut sregs = vcpu.get_sregs().unwrap();
    for seg in [
        &mut sregs.cs,
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.ss,
        &mut sregs.fs,
        &mut sregs.gs,
    ] {
        seg.base = 0;
        seg.selector = 0;
    }
    vcpu.set_sregs(&sregs).unwrap();
    let mut regs = vcpu.get_regs().unwrap();
    regs.rip = CODE;
    regs.rflags = StandardRegisters::RFLAGS_RESERVED;
    vcpu.set_regs(&regs).unwrap();

    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, DEV_BASE, 0x200, device.clone())
        .unwrap();
    bus.insert(IoSpace::Pio, PORTS, 0x100, Arc::new(Ports))
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(60);
    let call = fds[0].call.try_clone().unwrap();
    let events = event_loop(
        device.clone(),
        call,
        irq.try_clone().unwrap(),
        stop.clone(),
        deadline,
        kick == Kick::Ioeventfd,
    );

    let mut refused = Vec::new();
    let mut ended = false;
    for _ in 0..20_000 {
        match vcpu.run_on(&bus) {
            Ok(VcpuExit::Io(a)) if a.space == IoSpace::Pio && a.write => match a.addr {
                PHASE_A_DONE => daemon.kill(),
                PHASE_B_DONE => daemon = Daemon::start(&bin, &dir, &source, 1),
                END => {
                    ended = true;
                    break;
                }
                _ => {}
            },
            Ok(VcpuExit::Io(_)) | Ok(VcpuExit::Interrupted) => {}
            Ok(other) => panic!("unexpected exit {other:?}"),
            // The device refused an access (the kick to the dead daemon).
            Err(vm_hypervisor::Error::Io { access, source }) => refused.push(format!(
                "{access}: {source} ({:?})",
                std::error::Error::source(&source)
            )),
            Err(e) => panic!("KVM_RUN: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let calls = events.join().unwrap();
    let stderr = daemon.stderr();
    drop(daemon);
    assert!(ended, "the guest did not finish; daemon stderr:\n{stderr}");

    let slot = |n: u64| -> u32 { mem.read_obj(GuestAddress(RESULTS + 4 * n)).unwrap() };
    let buf = |a: u64| {
        let mut b = vec![0; BUF_LEN as usize];
        mem.read_slice(&mut b, GuestAddress(a)).unwrap();
        b
    };
    let expected = &seed[..BUF_LEN as usize];
    let why = format!("refused accesses: {refused:#?}; calls {calls}; daemon stderr:\n{stderr}");
    eprintln!(
        "guest results {:#x?}; {why}; buffer A starts {:02x?}",
        (0..19).map(slot).collect::<Vec<_>>(),
        &buf(BUF_A)[..8]
    );
    // Phase A: negotiation as the guest saw it.
    assert_eq!(slot(1) & 1, 1, "VIRTIO_F_VERSION_1 offered; {why}");
    assert_eq!(slot(0) & (1 << 30), 0, "vhost-user bit 30 hidden; {why}");
    assert_eq!(slot(2), 0xb, "FEATURES_OK kept; {why}");
    assert_eq!(slot(3), 256, "QueueNumMax");
    assert_eq!(slot(4), 0x81, "interrupt with the used-buffer bit; {why}");
    assert_eq!(
        slot(5),
        0xf,
        "Status DRIVER_OK, no DEVICE_NEEDS_RESET; {why}"
    );
    assert_eq!(buf(BUF_A), expected, "buffer A holds the rng file; {why}");
    // Phase A2: a reset with the daemon alive; it reads on in its file.
    assert_eq!(slot(16), 0xb, "FEATURES_OK after the live reset; {why}");
    assert_eq!(slot(18), 0x81, "interrupt after the live reset; {why}");
    let next = &seed[BUF_LEN as usize..2 * BUF_LEN as usize];
    assert_eq!(
        buf(BUF_A2),
        next,
        "buffer A2 holds the file's next bytes; {why}"
    );
    // Phase B: the kick to the dead daemon.
    assert_eq!(
        slot(6),
        0x4f,
        "DEVICE_NEEDS_RESET after the daemon died; {why}"
    );
    assert_eq!(
        buf(BUF_B),
        vec![0; BUF_LEN as usize],
        "nothing served by a dead daemon"
    );
    match kick {
        Kick::Exit => assert_eq!(refused.len(), 1, "the kick to the dead daemon; {why}"),
        Kick::Ioeventfd => {
            assert!(refused.is_empty(), "{why}");
            assert_eq!(slot(13), 0x82, "config-change interrupt; {why}");
        }
    }
    // Phase C: reset, reconnect to the new daemon, served again.
    assert_eq!(slot(9), 0xb, "FEATURES_OK after the reset; {why}");
    assert_eq!(slot(11), 0x81, "interrupt after the restart; {why}");
    assert_eq!(slot(12), 0xf, "Status after the restart; {why}");
    assert_eq!(buf(BUF_C), expected, "buffer C holds the rng file; {why}");
    let used: [u32; 3] = mem.read_obj(GuestAddress(USED)).unwrap();
    assert_eq!(used, [1 << 16, 0, BUF_LEN], "used ring: idx 1, id 0, len");
    assert!(calls >= 3, "{why}");
    vm.unregister_irqfd(&irq, IrqLine::Gsi(GSI)).unwrap();
    if kick == Kick::Ioeventfd {
        vm.unregister_ioevent(&fds[0].kick, notify, DataMatch::U32(0))
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
