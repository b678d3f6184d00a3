// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Round trips of this crate's server next to QEMU's, in one HVM domain (x86_64): run as root
//! in a dom0 that has QEMU (`benches/xen-box-qemu.sh`, which boots the box with
//! `--with-pkg qemu-system-xen`).
//!
//! `xl` creates an HVM domU whose device model is Debian's QEMU (`qemu-xen`, with a standard
//! VGA) and whose firmware is a purpose-built guest (`tests/guests/qemu_bench.S`). This test
//! adds a second IOREQ server for a window QEMU does not claim. The guest alternates blocks of
//! 4-byte reads of that window (served here) with blocks of 4-byte reads of the legacy VGA
//! window (Xen forwards them to QEMU's server, whose VGA device answers), times each block
//! with `rdtsc` and reports the ticks to us: both device models serve the same guest, on the
//! same vCPU, in the same run.

mod common;

use common::{assembled_guest, hvm_firmware_with, in_dom0, u32_of, DomU, DOMU_LOCK};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm_hypervisor::{DeviceError, IoBus, IoHandler, IoSpace};
use xen_ioreq::{BufIoreqMode, Dispatcher, DomId, EventLoop, IoRange, IoreqServer};

/// Where Debian's `qemu-system-xen` puts QEMU, and where `xl` looks for it.
const QEMU: &str = "/usr/libexec/xen-qemu-system-i386";
/// The window served by this test (free in the memory map of a firmware-less HVM domain).
const MMIO: u64 = 0xe000_0000;
/// What our window answers to the guest's timed reads.
const OURS_PATTERN: u32 = 0x1234_5678;
/// What Xen answers to reads no server claims: a VGA value like this means QEMU did not serve.
const UNCLAIMED: u32 = 0xffff_ffff;

/// `tests/guests/qemu_bench.S` linked at `GUEST_ENTRY`: reads N (MMIO + 0x40) and B (MMIO +
/// 0x44), then B times N reads of MMIO + 0 (ticks to MMIO + 0x48/0x4c) and N reads of VGA
/// 0xa0000 (ticks to MMIO + 0x58/0x5c, last value read to MMIO + 0x60); 0xdd to MMIO + 0x50.
const QEMU_BENCH_CODE: [u8; 90] = [
    0xfa, 0xbe, 0x00, 0x00, 0x00, 0xe0, 0x8b, 0x5e, 0x44, 0x8b, 0x4e, 0x40, 0x0f, 0x31, 0x89, 0xc7,
    0x89, 0xd5, 0x8b, 0x06, 0x49, 0x75, 0xfb, 0x0f, 0x31, 0x29, 0xf8, 0x19, 0xea, 0x89, 0x46, 0x48,
    0x89, 0x56, 0x4c, 0x8b, 0x4e, 0x40, 0x0f, 0x31, 0x89, 0xc7, 0x89, 0xd5, 0xa1, 0x00, 0x00, 0x0a,
    0x00, 0x49, 0x75, 0xf8, 0xa3, 0x00, 0x00, 0x18, 0x00, 0x0f, 0x31, 0x29, 0xf8, 0x19, 0xea, 0x89,
    0x46, 0x58, 0x89, 0x56, 0x5c, 0xa1, 0x00, 0x00, 0x18, 0x00, 0x89, 0x46, 0x60, 0x4b, 0x75, 0xb9,
    0xc7, 0x46, 0x50, 0xdd, 0x00, 0x00, 0x00, 0xf4, 0xeb, 0xfd,
];

/// Reads per block, unless `XIOREQ_QEMU_READS` says otherwise.
const READS: u32 = 300;
/// Blocks per domain, unless `XIOREQ_QEMU_BLOCKS` says otherwise.
const BLOCKS: u32 = 10;

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// What the guest told us in one domain.
#[derive(Default)]
struct Seen {
    /// Timed reads of our window.
    reads: u64,
    /// Ticks of each block of reads of our window.
    ours: Vec<u64>,
    /// Ticks of each block of reads of the VGA window.
    qemu: Vec<u64>,
    /// The last value each VGA block read.
    vga_values: Vec<u32>,
    /// Low halves waiting for their high halves.
    lo_ours: u32,
    lo_qemu: u32,
    /// The first timed read of our window and the guest's "done" write, on our clock.
    first: Option<Instant>,
    done: Option<Instant>,
}

/// The guest's window: parameters, the timed reads and the reports.
struct Window {
    reads: u32,
    blocks: u32,
    seen: Mutex<Seen>,
    stop: Mutex<Option<Arc<vmm_sys_util::eventfd::EventFd>>>,
}

impl IoHandler for Window {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let v = match offset {
            0x40 => self.reads,
            0x44 => self.blocks,
            _ => {
                let mut s = self.seen.lock().unwrap();
                s.reads += 1;
                s.first.get_or_insert_with(Instant::now);
                OURS_PATTERN
            }
        };
        let n = data.len().min(4);
        data[..n].copy_from_slice(&v.to_le_bytes()[..n]);
        data[n..].fill(0);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let v = u32_of(data);
        let mut s = self.seen.lock().unwrap();
        match offset {
            0x48 => s.lo_ours = v,
            0x4c => {
                let t = u64::from(v) << 32 | u64::from(s.lo_ours);
                s.ours.push(t);
            }
            0x58 => s.lo_qemu = v,
            0x5c => {
                let t = u64::from(v) << 32 | u64::from(s.lo_qemu);
                s.qemu.push(t);
            }
            0x60 => s.vga_values.push(v),
            0x50 => {
                s.done = Some(Instant::now());
                if let Some(stop) = self.stop.lock().unwrap().as_ref() {
                    stop.write(1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether QEMU can be the device model here; says why loudly when not.
fn qemu_dom0(test: &str) -> bool {
    if !cfg!(target_arch = "x86_64") {
        eprintln!(
            "SKIPPED: {test}: QEMU as an HVM device model is an x86 setup; Xen on {} has no HVM \
             emulation to forward",
            std::env::consts::ARCH
        );
        return false;
    }
    if !in_dom0(test) {
        return false;
    }
    if !Path::new(QEMU).is_file() {
        eprintln!(
            "SKIPPED: {test}: no QEMU in this dom0 ({QEMU} missing; boot the box with \
             `--with-pkg qemu-system-xen`, as benches/xen-box-qemu.sh does)"
        );
        return false;
    }
    true
}

/// A paused HVM domU running `firmware`, with QEMU as its device model, destroyed on drop.
fn create_qemu_domu(tag: &str, firmware: &[u8]) -> DomU {
    let dir = std::env::current_dir().unwrap();
    let name = format!("xioreq-{tag}-{}", std::process::id());
    let fw = dir.join(format!("{name}.elf"));
    std::fs::write(&fw, firmware).unwrap();
    // The toolstack writes QEMU's output there.
    std::fs::create_dir_all("/var/log/xen").unwrap();
    let domu = DomU::create(
        name,
        &format!(
            "type = \"hvm\"\nfirmware_override = \"{}\"\n\
             device_model_version = \"qemu-xen\"\ndevice_model_override = \"{QEMU}\"\n\
             memory = 64\nvcpus = 1\nvga = \"stdvga\"\nvnc = 0\nsdl = 0\nnographic = 1\n\
             serial = \"none\"\nusb = 0\nxen_platform_pci = 0\n\
             on_poweroff = \"preserve\"\non_crash = \"preserve\"\n",
            fw.display(),
        ),
        true,
    );
    eprintln!(
        "created paused HVM domU {} (domid {}) with QEMU",
        domu.name, domu.domid
    );
    domu
}

/// The pid of the QEMU serving `domid`, found by its `-xen-domid` argument.
fn qemu_pid(domid: u16) -> Option<u32> {
    let want = format!("-xen-domid\0{domid}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains(QEMU.rsplit('/').next()?) && cmd.contains(&want)).then_some(pid)
    })
}

/// `Cpus_allowed_list` of a process (`self` or a pid).
fn cpus_allowed(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// What QEMU logged for `domu`, for failure reports.
fn qemu_log(domu: &DomU) -> String {
    std::fs::read_to_string(format!("/var/log/xen/qemu-dm-{}.log", domu.name))
        .unwrap_or_else(|e| format!("(no device-model log: {e})"))
}

/// One domain's blocks: ticks per read of ours and QEMU's, and our clock's ns per tick.
struct DomainRun {
    ours: Vec<f64>,
    qemu: Vec<f64>,
    ns_per_tick: f64,
    /// The distinct values QEMU's VGA answered.
    vga_values: Vec<u32>,
}

fn one_domain(firmware: &Path, reads: u32, blocks: u32) -> DomainRun {
    let domu = create_qemu_domu("qemu-bench", &std::fs::read(firmware).unwrap());
    match qemu_pid(domu.domid) {
        Some(pid) => eprintln!(
            "QEMU pid {pid} on dom0 vCPUs {}; this server on {}",
            cpus_allowed(&pid.to_string()),
            cpus_allowed("self")
        ),
        None => panic!("no QEMU process for domain {}", domu.domid),
    }
    let win = Arc::new(Window {
        reads,
        blocks,
        seen: Mutex::default(),
        stop: Mutex::new(None),
    });
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, MMIO, 0x1000, win.clone())
        .unwrap();
    let mut server = IoreqServer::open(DomId::new(domu.domid), BufIoreqMode::Off)
        .unwrap_or_else(|e| panic!("creating our IOREQ server next to QEMU's: {e}"));
    server
        .map_range(IoRange::mmio(MMIO, 0x1000).unwrap())
        .unwrap();
    server.enable().unwrap();
    let mut ev = EventLoop::new(&server, Dispatcher::new(&bus)).unwrap();
    *win.stop.lock().unwrap() = Some(ev.stopper());
    domu.unpause();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !ev.run_once(1000).unwrap().stopped {
        if Instant::now() >= deadline {
            let s = win.seen.lock().unwrap();
            panic!(
                "the guest did not finish within 600 s: {} reads of ours, {} + {} blocks \
                 reported\n{}",
                s.reads,
                s.ours.len(),
                s.qemu.len(),
                qemu_log(&domu)
            );
        }
    }
    drop(ev);
    server.shutdown().unwrap();
    let s = win.seen.lock().unwrap();
    assert_eq!(s.ours.len(), blocks as usize, "blocks of reads of ours");
    assert_eq!(s.qemu.len(), blocks as usize, "blocks of reads of VGA");
    assert_eq!(
        s.reads,
        u64::from(reads) * u64::from(blocks),
        "every read of ours served once"
    );
    assert!(
        s.vga_values.iter().all(|&v| v != UNCLAIMED),
        "VGA reads answered {:#x}: no device model claimed them, QEMU did not serve them\n{}",
        UNCLAIMED,
        qemu_log(&domu)
    );
    let mut vga_values = s.vga_values.clone();
    vga_values.sort_unstable();
    vga_values.dedup();
    let total: u64 = s.ours.iter().chain(&s.qemu).sum();
    let wall = (s.done.unwrap() - s.first.unwrap()).as_nanos() as f64;
    DomainRun {
        ours: s
            .ours
            .iter()
            .map(|&t| t as f64 / f64::from(reads))
            .collect(),
        qemu: s
            .qemu
            .iter()
            .map(|&t| t as f64 / f64::from(reads))
            .collect(),
        ns_per_tick: wall / total as f64,
        vga_values,
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A measurement, not a check: run by `benches/xen-box-qemu.sh` with `--ignored` in a box with
/// QEMU. Creates `XIOREQ_BENCH_ROUNDS` domains one after the other and prints per-block and
/// median figures.
#[test]
#[ignore = "benchmark; run by benches/xen-box-qemu.sh in the Xen box with QEMU"]
fn round_trips_versus_qemu() {
    if !qemu_dom0("round_trips_versus_qemu") {
        return;
    }
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let firmware: PathBuf = std::env::current_dir()
        .unwrap()
        .join("xioreq-qemu-bench.elf");
    std::fs::write(&firmware, hvm_firmware_with(&QEMU_BENCH_CODE)).unwrap();
    let rounds = env_or("XIOREQ_BENCH_ROUNDS", 5);
    let reads = env_or("XIOREQ_QEMU_READS", READS);
    let blocks = env_or("XIOREQ_QEMU_BLOCKS", BLOCKS);
    let (mut ours, mut qemu, mut ns_per_tick) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let r = one_domain(&firmware, reads, blocks);
        let ratios: Vec<String> = r
            .ours
            .iter()
            .zip(&r.qemu)
            .map(|(o, q)| format!("{:.2}", o / q))
            .collect();
        eprintln!(
            "BENCH round {round}: ticks/read medians xen-ioreq {:.0}, QEMU {:.0}; per-block \
             ratios xen-ioreq/QEMU {}; VGA read as {:x?}",
            median(&r.ours),
            median(&r.qemu),
            ratios.join(" "),
            r.vga_values
        );
        ours.extend(r.ours);
        qemu.extend(r.qemu);
        ns_per_tick.push(r.ns_per_tick);
    }
    let (o, q, k) = (median(&ours), median(&qemu), median(&ns_per_tick));
    let won = ours.iter().zip(&qemu).filter(|(o, q)| o < q).count();
    let ratios: Vec<f64> = ours.iter().zip(&qemu).map(|(o, q)| o / q).collect();
    eprintln!(
        "BENCH {} (Xen {}), {} blocks of {reads} reads each side, medians: xen-ioreq {o:.0} \
         ticks/read (~{:.0} us, ~{:.0} rt/s), QEMU {q:.0} ticks/read (~{:.0} us, ~{:.0} rt/s); \
         ratio xen-ioreq/QEMU {:.3} (of medians), {:.3} (median of per-block ratios); blocks \
         won by xen-ioreq {won} of {}",
        std::env::var("XEN_BOX_STACK").unwrap_or_default(),
        std::env::var("XEN_BOX_XEN_VERSION").unwrap_or_default(),
        ours.len(),
        o * k / 1e3,
        1e9 / (o * k),
        q * k / 1e3,
        1e9 / (q * k),
        o / q,
        median(&ratios),
        ours.len()
    );
}

/// Runs anywhere with GNU `as` and `ld` for x86: the embedded guest is what its source
/// assembles to.
#[test]
fn embedded_qemu_bench_guest_matches_its_source() {
    let test = "embedded_qemu_bench_guest_matches_its_source";
    if let Some(bin) = assembled_guest(test, "qemu_bench") {
        assert_eq!(bin, QEMU_BENCH_CODE, "qemu_bench.S and its bytes");
    }
}

/// Runs anywhere: the reports the guest writes land where the device expects them.
#[test]
fn window_collects_block_reports() {
    let w = Window {
        reads: 3,
        blocks: 2,
        seen: Mutex::default(),
        stop: Mutex::new(None),
    };
    let mut b = [0u8; 4];
    w.read(0x40, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 3);
    w.read(0x44, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 2);
    w.read(0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), OURS_PATTERN);
    w.write(0x48, &7u32.to_le_bytes()).unwrap();
    w.write(0x4c, &1u32.to_le_bytes()).unwrap();
    w.write(0x58, &9u32.to_le_bytes()).unwrap();
    w.write(0x5c, &0u32.to_le_bytes()).unwrap();
    w.write(0x60, &0u32.to_le_bytes()).unwrap();
    w.write(0x50, &0xddu32.to_le_bytes()).unwrap();
    let s = w.seen.lock().unwrap();
    assert_eq!(s.reads, 1);
    assert_eq!(s.ours, vec![(1u64 << 32) | 7]);
    assert_eq!(s.qemu, vec![9]);
    assert_eq!(s.vga_values, vec![0]);
    assert!(s.done.is_some());
}
