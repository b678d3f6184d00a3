// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Foreign mappings of a running domU's memory, checked by the domU itself (run as root in dom0:
//! `cargo xtask xen-box test`).
//!
//! This binary plays both sides (see the `common` module for how the domU is built and booted).
//! In the domU, run with [`DOMU_SIDE`], it maps one anonymous page, locks it (`mlock`), fills it
//! with [`BEFORE`], looks up its frame number in `/proc/self/pagemap` and publishes it under its
//! own xenstore directory (`data/xfm-foreign-gfn`). The domU is PVH on x86 and auto-translated
//! on Arm, so that frame number is the guest frame number Xen maps foreign frames by (for an x86
//! PV domU it would be a pseudo-physical number privcmd cannot map by, which is why the domU is
//! not PV).
//!
//! Dom0 maps that frame through this crate's foreign guest memory, checks it sees [`BEFORE`],
//! writes a pattern with `Bytes::write_slice` (the first half through a [`LazyForeignMemory`]
//! view, the second through [`map_whole_guest`]) and sets `data/xfm-foreign-written`. The domU
//! then reads its page and reports what it holds (`data/xfm-foreign-seen`: a checksum and the
//! first and last bytes); dom0 asserts that the report is the pattern's. Every wait is a xenstore
//! watch with a deadline.
//!
//! `harness = false`: the binary is its own main, so the domU side needs no test harness.

mod common;

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use vm_memory::{GuestAddress, GuestAddressSpace};
use xen_bindings::xenstore::Xenstore;
use xen_foreignmem::{map_whole_guest, CacheConfig, DomId, LazyForeignMemory, XenForeignMapper};

/// The argument that selects the domU side.
const DOMU_SIDE: &str = "--xfm-domu-foreign-side";
/// The test's name in reports.
const TEST: &str = "foreign_mapping_of_a_running_domu";
/// Xen's page size: the unit of foreign mappings.
const PAGE: usize = xen_foreignmem::XEN_PAGE_SIZE;
/// What the domU fills its page with before dom0 writes.
const BEFORE: u8 = 0x5a;
/// The domU's memory, in MiB.
const DOMU_MIB: u64 = 256;
/// Where the domU's RAM starts: guest-physical 0 on x86, GUEST_RAM0_BASE (1 GiB) on Arm.
const RAM_BASE: u64 = if cfg!(target_arch = "aarch64") {
    0x4000_0000
} else {
    0
};
/// How long the domU may take to boot and publish its frame (software-emulated box).
const BOOT_DEADLINE: Duration = Duration::from_secs(300);
/// How long the domU may take to report what it sees.
const RESULT_DEADLINE: Duration = Duration::from_secs(120);

/// The pattern dom0 writes: every byte depends on its offset, so a shifted, partial or
/// misplaced copy changes the report.
fn pattern() -> Vec<u8> {
    (0..PAGE).map(|i| ((i * 29 + 3) ^ (i >> 8)) as u8).collect()
}

/// What the domU reports about its page: a 64-bit FNV-1a checksum and the first and last 16
/// bytes in hex.
fn summary(page: &[u8]) -> String {
    let fnv = page.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "fnv1a={fnv:016x} head={} tail={}",
        hex(&page[..16]),
        hex(&page[page.len() - 16..])
    )
}

fn main() {
    common::run_side(DOMU_SIDE, domu_side, dom0_side);
}

// ---------------------------------------------------------------------------------------------
// The domU side.

fn domu_side() -> Result<(), String> {
    let mut xs = Xenstore::open().map_err(|e| format!("opening xenstore: {e}"))?;
    let res = domu_foreign(&mut xs);
    if let Err(e) = &res {
        // Best effort: the console carries the error too.
        if let Err(w) = xs.write("data/xfm-foreign-fail", e) {
            println!("XFM-DOMU: cannot write data/xfm-foreign-fail: {w}");
        }
    }
    res
}

/// One locked anonymous page of this process, unmapped on drop.
struct LockedPage {
    ptr: *mut u8,
    len: usize,
}

impl LockedPage {
    fn new() -> Result<Self, String> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let len = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let len = usize::try_from(len).map_err(|_| "sysconf(_SC_PAGESIZE) failed".to_string())?;
        // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing: it
        // cannot overlap anything this program uses.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let page = LockedPage {
            ptr: ptr.cast(),
            len,
        };
        // The lock faults the page in and keeps it resident, so its frame stays the one
        // published (the domU is tiny and idle: nothing compacts or migrates its memory).
        // SAFETY: `ptr..ptr + len` is the mapping just made.
        if unsafe { libc::mlock(ptr, len) } != 0 {
            return Err(format!("mlock: {}", std::io::Error::last_os_error()));
        }
        Ok(page)
    }

    /// Fills the page with `byte`.
    fn fill(&self, byte: u8) {
        for i in 0..self.len {
            // SAFETY: `i < len`, inside the mapping this value owns; volatile because dom0
            // writes the same memory through its foreign mapping.
            unsafe { self.ptr.add(i).write_volatile(byte) };
        }
    }

    /// The first `n` bytes of the page.
    fn read(&self, n: usize) -> Vec<u8> {
        (0..n.min(self.len))
            // SAFETY: `i < len`, inside the mapping; volatile as in `fill`.
            .map(|i| unsafe { self.ptr.add(i).read_volatile() })
            .collect()
    }

    /// The guest frame number of the page's first 4 KiB, from `/proc/self/pagemap` (entry per
    /// page: bit 63 = present, bits 0-54 = page frame number, shown to root only).
    fn gfn(&self) -> Result<u64, String> {
        let pagemap = std::fs::File::open("/proc/self/pagemap")
            .map_err(|e| format!("opening /proc/self/pagemap: {e}"))?;
        let index = (self.ptr as usize / self.len) as u64;
        let mut entry = [0u8; 8];
        pagemap
            .read_exact_at(&mut entry, index * 8)
            .map_err(|e| format!("reading /proc/self/pagemap: {e}"))?;
        let entry = u64::from_le_bytes(entry);
        if entry & (1 << 63) == 0 {
            return Err(format!(
                "locked page not present (pagemap entry {entry:#x})"
            ));
        }
        let pfn = entry & ((1 << 55) - 1);
        if pfn == 0 {
            return Err("pagemap hides frame numbers (not root?)".into());
        }
        Ok(pfn * (self.len / PAGE) as u64)
    }
}

impl Drop for LockedPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer referenced.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn domu_foreign(xs: &mut Xenstore) -> Result<(), String> {
    let page = LockedPage::new()?;
    page.fill(BEFORE);
    let gfn = page.gfn()?;
    println!("XFM-DOMU: locked page at gfn {gfn:#x}");
    xs.write("data/xfm-foreign-gfn", format!("{gfn:#x}"))
        .map_err(|e| format!("writing data/xfm-foreign-gfn: {e}"))?;
    let deadline = Instant::now() + BOOT_DEADLINE + RESULT_DEADLINE;
    common::domu_wait(xs, "data/xfm-foreign-written", deadline)?;
    let seen = summary(&page.read(PAGE));
    println!("XFM-DOMU: page holds {seen}");
    xs.write("data/xfm-foreign-seen", &seen)
        .map_err(|e| format!("writing data/xfm-foreign-seen: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dom0 side.

fn dom0_side() {
    let Some((kernel, box_ramdisk)) = common::xen_env(TEST) else {
        return;
    };
    let t0 = Instant::now();
    let (mut xs, domu) = common::boot_domu(
        "foreign",
        &kernel,
        &box_ramdisk,
        DOMU_SIDE,
        &[],
        DOMU_MIB as u32,
    );
    let dir = domu.dir.clone();
    let fail = format!("{dir}/data/xfm-foreign-fail");

    let gfn = common::wait_for(
        &mut xs,
        &domu,
        &format!("{dir}/data/xfm-foreign-gfn"),
        Some(&fail),
        BOOT_DEADLINE,
    );
    let gfn = u64::from_str_radix(gfn.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("the domU published gfn {gfn:?}: {e}"));
    let addr = GuestAddress(gfn * PAGE as u64);
    let ram_end = RAM_BASE + (DOMU_MIB << 20);
    eprintln!(
        "domU page at gfn {gfn:#x} (gpa {:#x}) after {:?}",
        addr.0,
        t0.elapsed()
    );
    assert!(
        (RAM_BASE..ram_end).contains(&addr.0),
        "gfn {gfn:#x} outside the domU's RAM [{RAM_BASE:#x}, {ram_end:#x})"
    );

    let mapper = XenForeignMapper::open().unwrap();
    let cache = LazyForeignMemory::new(
        mapper.clone(),
        DomId::new(domu.domid),
        ram_end,
        CacheConfig {
            bucket_size: 64 << 10,
            max_buckets: 4,
        },
    )
    .unwrap();
    let view = cache.memory();
    // The domU's fill, seen through the foreign mapping: the frame is the domU's page.
    let mut before = vec![0u8; PAGE];
    view.read_slice(&mut before, addr).unwrap();
    assert!(
        before.iter().all(|&b| b == BEFORE),
        "gfn {gfn:#x} does not hold the domU's fill: {}",
        summary(&before)
    );

    // The pattern: half through the lazy cache, half through whole-guest memory of that page.
    let pattern = pattern();
    let half = PAGE / 2;
    view.write_slice(&pattern[..half], addr).unwrap();
    let whole = map_whole_guest(&mapper, DomId::new(domu.domid), &[(addr, PAGE as u64)]).unwrap();
    whole
        .write_slice(&pattern[half..], GuestAddress(addr.0 + half as u64))
        .unwrap();
    let mut back = vec![0u8; PAGE];
    whole.read_slice(&mut back, addr).unwrap();
    assert_eq!(back, pattern, "dom0 reads back its pattern");
    drop(whole);
    drop(view);
    eprintln!("wrote the pattern, cache {:?}", cache.stats());
    xs.write(format!("{dir}/data/xfm-foreign-written").as_str(), "1")
        .expect("writing xfm-foreign-written");

    let seen = common::wait_for(
        &mut xs,
        &domu,
        &format!("{dir}/data/xfm-foreign-seen"),
        Some(&fail),
        RESULT_DEADLINE,
    );
    eprintln!("the domU reports {seen}");
    assert_eq!(seen, summary(&pattern), "what the domU sees in its page");
    eprintln!("{TEST}: ok ({:?})", t0.elapsed());
    drop(domu);
}
