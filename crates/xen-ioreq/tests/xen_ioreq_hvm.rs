// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Buffered IOREQs from a real Xen (x86_64): run as root in dom0 (`cargo xtask xen-box test`).
//!
//! Xen posts requests to a server's buffered ring only from its own emulation of HVM guests:
//! the stdvga intercept sends single writes to the VGA window (0xa0000-0xbffff) buffered to
//! the server whose MMIO range covers them, and the emulated RTC broadcasts a time-offset
//! request when the guest sets the clock. PVH guests have neither, so these tests create an
//! HVM domU with `xl`, whose firmware is a purpose-built guest (`tests/guests/hvm_vga.S`) and
//! whose device model is a stand-in script that only tells the toolstack it runs (the
//! "traditional" device-model protocol is a xenstore state key; the script emulates nothing).

mod common;

use common::{
    assembled_guest, create_hvm_domu, diagnostics, hvm_firmware_with, in_dom0, run, DOMU_LOCK,
    GUEST_BASE, GUEST_ENTRY,
};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vm_hypervisor::{DeviceError, IoBus, IoHandler, IoSpace};
use xen_ioreq::{BufIoreqMode, Dispatcher, DomId, IoRange, IoreqServer};

/// The legacy VGA window, where Xen's stdvga intercept buffers single writes.
const VGA: u64 = 0xa_0000;
const VGA_LEN: u64 = 0x2_0000;
/// Ports served by the test; the guest writes 0xdd to `PORTS + 7` when done.
const PORTS: u16 = 0x5e0;
/// What the VGA device answers to reads.
const VGA_PATTERN: u64 = 0xc4c3_c2c1;
/// The value the guest writes with `movq`.
const QUAD: u64 = 0xfedc_ba98_7654_3210;
/// The year (BCD 0x99 = 2099) the guest sets the emulated RTC to.
const RTC_YEAR: i64 = 2099;

/// `tests/guests/hvm_vga.S` linked at `GUEST_ENTRY`: a synchronous 4-byte read of VGA + 0,
/// then single writes of 4 (the value read), 1, 2, 4 and 8 bytes at VGA + 0x10, 0x20, 0x22,
/// 0x24, 0x28 and 4 bytes at the last dword of the window, sets the RTC year to 2099, writes
/// one byte at VGA + 0x30 and finally 0xdd to port `PORTS + 7`.
const VGA_CODE: [u8; 104] = [
    0xfa, 0xbe, 0x00, 0x00, 0x0a, 0x00, 0x8b, 0x06, 0x89, 0x46, 0x10, 0xc6, 0x46, 0x20, 0x11, 0x66,
    0xc7, 0x46, 0x22, 0x22, 0x33, 0xc7, 0x46, 0x24, 0x44, 0x55, 0x66, 0x77, 0x0f, 0x20, 0xe0, 0x0d,
    0x00, 0x06, 0x00, 0x00, 0x0f, 0x22, 0xe0, 0x0f, 0x20, 0xc0, 0x83, 0xe0, 0xfb, 0x83, 0xc8, 0x02,
    0x0f, 0x22, 0xc0, 0xf3, 0x0f, 0x7e, 0x05, 0x60, 0x01, 0x10, 0x00, 0x66, 0x0f, 0xd6, 0x46, 0x28,
    0xc7, 0x05, 0xfc, 0xff, 0x0b, 0x00, 0xa5, 0xa5, 0xa5, 0xa5, 0xb0, 0x09, 0xe6, 0x70, 0xb0, 0x99,
    0xe6, 0x71, 0xc6, 0x46, 0x30, 0xee, 0xb0, 0xdd, 0x66, 0xba, 0xe7, 0x05, 0xee, 0xf4, 0xeb, 0xfd,
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
];

/// Whether the Xen tests can run here; says why loudly when they cannot.
fn xen_dom0(test: &str) -> bool {
    if !cfg!(target_arch = "x86_64") {
        eprintln!(
            "SKIPPED: {test}: buffered IOREQs come from Xen's x86 HVM emulation (stdvga, RTC), \
             which Xen on {} does not have",
            std::env::consts::ARCH
        );
        return false;
    }
    in_dom0(test)
}

/// What the devices saw, in the order the dispatcher handed it to them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    VgaRead(u64, usize),
    VgaWrite(u64, Vec<u8>),
    PortWrite(u64, Vec<u8>),
    TimeOffset(i64),
}

type Log = Arc<Mutex<Vec<Event>>>;

/// The VGA window: answers reads with `VGA_PATTERN`, records every access.
struct Vga(Log);

impl IoHandler for Vga {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let p = VGA_PATTERN.to_le_bytes();
        let n = data.len().min(p.len());
        data[..n].copy_from_slice(&p[..n]);
        self.0
            .lock()
            .unwrap()
            .push(Event::VgaRead(offset, data.len()));
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0
            .lock()
            .unwrap()
            .push(Event::VgaWrite(offset, data.to_vec()));
        Ok(())
    }
}

/// The test's ports: records writes; the guest's 0xdd at `PORTS + 7` raises `done`.
struct Ports(Log, Arc<AtomicBool>);

impl IoHandler for Ports {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0
            .lock()
            .unwrap()
            .push(Event::PortWrite(offset, data.to_vec()));
        if offset == 7 && data == [0xdd] {
            self.1.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the usual civil-days formula).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The offsets (seconds) Xen may report when the guest moves the RTC's year to `RTC_YEAR`:
/// the same date and time in that year minus now, for today's date or yesterday's (the test
/// may straddle midnight UTC).
fn expected_time_offsets() -> Vec<i64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now.div_euclid(86_400);
    [today, today - 1]
        .into_iter()
        .map(|days| {
            let (y, m, d) = civil_from_days(days);
            (days_from_civil(RTC_YEAR, m, d) - days_from_civil(y, m, d)) * 86_400
        })
        .collect()
}

/// Runs the guest against a server with buffered mode `mode`: serves the vCPU's synchronous
/// requests (never the buffered ring's port) while the guest runs. Only the read and the final
/// port write are synchronous; everything else goes through the buffered ring and, since it
/// precedes the port write in the guest's order, is applied before it, in order.
fn buffered_writes_from_an_hvm_guest(test: &str, mode: BufIoreqMode) {
    if !xen_dom0(test) {
        return;
    }
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tag = if mode == BufIoreqMode::Legacy {
        "hvm-legacy"
    } else {
        "hvm-atomic"
    };
    let domu = create_hvm_domu(tag, &hvm_firmware_with(&VGA_CODE));

    let log: Log = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Mmio, VGA, VGA_LEN, Arc::new(Vga(log.clone())))
        .unwrap();
    bus.insert(
        IoSpace::Pio,
        PORTS.into(),
        8,
        Arc::new(Ports(log.clone(), done.clone())),
    )
    .unwrap();
    let offsets = log.clone();
    let mut dispatcher = Dispatcher::new(&bus).with_time_offset(move |off| {
        offsets.lock().unwrap().push(Event::TimeOffset(off));
    });

    let mut server = IoreqServer::open(DomId::new(domu.domid), mode)
        .unwrap_or_else(|e| panic!("creating the IOREQ server: {e}"));
    server
        .map_range(IoRange::mmio(VGA, VGA_LEN).unwrap())
        .unwrap();
    server.map_range(IoRange::ports(PORTS, 8).unwrap()).unwrap();
    server.enable().unwrap();
    let ring = server
        .buffered_ring()
        .expect("a buffered ring was asked for");
    let buffered_port = server.buffered_port().expect("a buffered port");
    assert_eq!(ring.pending_slots(), Ok(0));

    run(Command::new("xl").arg("unpause").arg(&domu.name));
    // Serve the vCPU's synchronous requests; only count the buffered ring's notifications.
    let evtchn = server.event_channel();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut buffered_events = 0;
    // Synchronous requests taken, and everything served with them (the posted writes that
    // preceded each).
    let (mut taken, mut served) = (0, 0);
    while !done.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "{test}: the guest did not finish within 120 s; saw {:?}; ring {:?}\n{}",
            log.lock().unwrap(),
            ring.pending_slots(),
            diagnostics(&domu)
        );
        let Some(port) = evtchn.wait_pending(Some(Duration::from_secs(1))).unwrap() else {
            continue;
        };
        evtchn.unmask(port).unwrap();
        if port == buffered_port {
            buffered_events += 1;
        } else {
            let n = server.serve_port(port, &mut dispatcher);
            taken += usize::from(n > 0);
            served += n;
        }
    }
    let seen = log.lock().unwrap().clone();
    eprintln!("{test}: {taken} synchronous requests, {served} served with them: {seen:?}; {buffered_events} buffered notifications");
    assert_eq!(taken, 2, "only the read and the port write are synchronous");
    assert_eq!(
        served, 10,
        "the 8 buffered entries (single writes and the time offset) went with them"
    );
    assert!(buffered_events > 0, "Xen signals the buffered port");
    assert_eq!(ring.pending_slots(), Ok(0), "nothing left in the ring");

    let pattern = VGA_PATTERN.to_le_bytes();
    let mut want = vec![
        Event::VgaRead(0, 4),
        Event::VgaWrite(0x10, pattern[..4].to_vec()),
        Event::VgaWrite(0x20, vec![0x11]),
        Event::VgaWrite(0x22, vec![0x22, 0x33]),
        Event::VgaWrite(0x24, vec![0x44, 0x55, 0x66, 0x77]),
        Event::VgaWrite(0x28, QUAD.to_le_bytes().to_vec()),
        Event::VgaWrite(VGA_LEN - 4, vec![0xa5; 4]),
    ];
    let Some(&Event::TimeOffset(off)) = seen.get(want.len()) else {
        panic!("{test}: no time offset after the VGA writes: {seen:?}");
    };
    let expected = expected_time_offsets();
    assert!(
        expected.contains(&off),
        "{test}: time offset {off} s is not the way to {RTC_YEAR} ({expected:?})"
    );
    want.push(Event::TimeOffset(off));
    want.push(Event::VgaWrite(0x30, vec![0xee]));
    want.push(Event::PortWrite(7, vec![0xdd]));
    assert_eq!(
        seen, want,
        "every access, in the order the guest made them (posted writes before the port write)"
    );

    let stats = dispatcher.stats();
    eprintln!("{test}: {stats:?}");
    assert_eq!(stats.completed, 10, "2 synchronous and 8 buffered requests");
    assert_eq!(stats.errors, 0);
    server.shutdown().unwrap();
}

#[test]
fn hvm_guest_vga_writes_and_rtc_offset_arrive_buffered_atomic() {
    buffered_writes_from_an_hvm_guest(
        "hvm_guest_vga_writes_and_rtc_offset_arrive_buffered_atomic",
        BufIoreqMode::Atomic,
    );
}

#[test]
fn hvm_guest_vga_writes_and_rtc_offset_arrive_buffered_legacy() {
    buffered_writes_from_an_hvm_guest(
        "hvm_guest_vga_writes_and_rtc_offset_arrive_buffered_legacy",
        BufIoreqMode::Legacy,
    );
}

/// Runs anywhere with GNU `as` and `ld` for x86: the embedded guest is what its source
/// assembles to.
#[test]
fn embedded_hvm_guest_matches_its_source() {
    if let Some(bin) = assembled_guest("embedded_hvm_guest_matches_its_source", "hvm_vga") {
        assert_eq!(bin, VGA_CODE, "hvm_vga.S and its bytes");
    }
}

/// Runs anywhere: the firmware image is an ELF the HVM loader takes (32-bit, one segment at
/// `GUEST_BASE` covering the file, entry at the code, no notes) and the code's absolute
/// reference to its 8-byte constant matches where the image puts it.
#[test]
fn hvm_firmware_image_is_well_formed() {
    let k = hvm_firmware_with(&VGA_CODE);
    let u16_at = |at: usize| u16::from_le_bytes(k[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(k[at..at + 4].try_into().unwrap());
    assert_eq!(&k[..4], b"\x7fELF");
    assert_eq!((k[4], k[5]), (1, 1), "ELF32, little endian");
    assert_eq!((u16_at(16), u16_at(18)), (2, 3), "ET_EXEC, EM_386");
    assert_eq!(u32_at(24), GUEST_ENTRY, "e_entry");
    assert_eq!(u16_at(44), 1, "a single program header, no PT_NOTE");
    assert_eq!((u32_at(52), u32_at(52 + 12)), (1, GUEST_BASE));
    assert_eq!(u32_at(52 + 16) as usize, k.len());
    assert_eq!(&k[0x100..], VGA_CODE);
    let quad = k.windows(8).position(|w| w == QUAD.to_le_bytes()).unwrap() as u32;
    // movq xmm0, [quad]
    let load = [0xf3, 0x0f, 0x7e, 0x05];
    let at = k.windows(4).position(|w| w == load).unwrap();
    assert_eq!(u32_at(at + 4), GUEST_BASE + quad);
}

/// Runs anywhere: the date arithmetic behind the expected time offset.
#[test]
fn civil_dates_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    for days in [0, 59, 60, 365, 10_957, 20_000, 47_481] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
    // 2026-11-22 to 2099-11-22: 73 years, 18 of them leap (2028 ... 2096).
    assert_eq!(
        days_from_civil(2099, 11, 22) - days_from_civil(2026, 11, 22),
        73 * 365 + 18
    );
}
