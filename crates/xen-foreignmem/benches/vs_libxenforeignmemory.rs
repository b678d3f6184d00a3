// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In-box comparison, in one run, side by side:
//!
//! - mapping throughput (pages per second): map and unmap the same frames of a paused PVH domU
//!   through Xen's C libxenforeignmemory (loaded with dlopen, so nothing links against it at
//!   build time) and through this crate, twice: `XenForeignMapper::map_frames`, given the same
//!   frame list as the C library (the identical job: one anonymous `mmap` of the privcmd
//!   device, one `MMAPBATCH_V2` ioctl over the whole batch, one `munmap`), and
//!   `ForeignRegion::map`, which also builds the frame list and checks the per-frame errors;
//! - copy throughput of mapped guest memory through `read_slice` and `write_slice` in
//!   whole-guest and lazy mode (the types' own short paths, and vm-memory's generic `Bytes`
//!   path over a lazy view), against a plain `memcpy` (`copy_from_slice`) of the same size
//!   between two local buffers; a raw `memcpy` from or to the mapped guest memory itself runs
//!   alongside, to tell the cost of where the memory is from the cost of the access path, and
//!   vm-memory's generic path over a `GuestMemoryMmap` of ordinary memory, to tell the cost of
//!   that path itself.
//!
//! Each comparison is one criterion benchmark whose iterations run the implementations side by
//! side (see [`Paired`]); at the end a summary gives each implementation's throughput and the
//! ratios crate / reference (C time / crate time for mapping, memcpy time / crate time for
//! copies: above 1.0 the crate is faster).
//!
//! Only meaningful in a Xen dom0; elsewhere it prints `SKIPPED` and exits. Run it with
//! `cargo bench -p xen-foreignmem --bench vs_libxenforeignmemory --no-run` and then
//! `cargo xtask xen-box run --stack bookworm -- <that executable> --bench`.

use std::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use xen_foreignmem::{
    map_whole_guest, CacheConfig, DomId, ForeignRegion, LazyForeignMemory, XenForeignMapper,
};

type OpenFn = unsafe extern "C" fn(*mut c_void, c_uint) -> *mut c_void;
type MapFn =
    unsafe extern "C" fn(*mut c_void, u32, c_int, usize, *const c_ulong, *mut c_int) -> *mut c_void;
type UnmapFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> c_int;

/// The few libxenforeignmemory entry points the comparison needs.
struct CLib {
    handle: *mut c_void,
    map: MapFn,
    unmap: UnmapFn,
}

impl CLib {
    fn load() -> Option<CLib> {
        // SAFETY: dlopen with a NUL-terminated name; a null result is checked.
        let lib = unsafe { libc::dlopen(c"libxenforeignmemory.so.1".as_ptr(), libc::RTLD_NOW) };
        if lib.is_null() {
            return None;
        }
        let sym = |name: &CStr| {
            // SAFETY: `lib` is a live handle and `name` NUL-terminated; null is checked.
            let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
            (!p.is_null()).then_some(p)
        };
        let (open, map, unmap) = (
            sym(c"xenforeignmemory_open")?,
            sym(c"xenforeignmemory_map")?,
            sym(c"xenforeignmemory_unmap")?,
        );
        // SAFETY: the symbols are the library's functions with these C signatures
        // (xenforeignmemory.h: open(logger, flags), map(h, dom, prot, pages, arr, err),
        // unmap(h, addr, pages)).
        let (open, map, unmap) = unsafe {
            (
                std::mem::transmute::<*mut c_void, OpenFn>(open),
                std::mem::transmute::<*mut c_void, MapFn>(map),
                std::mem::transmute::<*mut c_void, UnmapFn>(unmap),
            )
        };
        // SAFETY: a null logger selects the library's default; flags 0.
        let handle = unsafe { open(std::ptr::null_mut(), 0) };
        (!handle.is_null()).then_some(CLib { handle, map, unmap })
    }

    /// Maps `gfns` of `domid` read-write and unmaps them again; panics if any frame failed.
    fn map_unmap(&self, domid: DomId, gfns: &[c_ulong], errs: &mut [c_int]) {
        // SAFETY: `gfns` and `errs` hold `gfns.len()` entries each, as the call reads/writes.
        let addr = unsafe {
            (self.map)(
                self.handle,
                domid.get().into(),
                libc::PROT_READ | libc::PROT_WRITE,
                gfns.len(),
                gfns.as_ptr(),
                errs.as_mut_ptr(),
            )
        };
        assert!(
            !addr.is_null() && errs.iter().all(|&e| e == 0),
            "C map failed"
        );
        // SAFETY: `addr` is the mapping of `gfns.len()` pages just made and used no more.
        black_box(unsafe { (self.unmap)(self.handle, addr, gfns.len()) });
    }
}

/// A paused PVH domU, destroyed on drop.
struct DomU(String);

impl Drop for DomU {
    fn drop(&mut self) {
        let _ = Command::new("xl").arg("destroy").arg(&self.0).status();
    }
}

fn create_domu() -> Option<(DomU, DomId)> {
    let kernel = std::env::var("XEN_BOX_DOMU_KERNEL").ok()?;
    let ramdisk = std::env::var("XEN_BOX_DOMU_RAMDISK").ok()?;
    let name = format!("xfm-bench-{}", std::process::id());
    let cfg = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"{kernel}\"\nramdisk = \"{ramdisk}\"\n\
         memory = 128\nvcpus = 1\n"
    );
    let path = std::env::temp_dir().join(format!("{name}.cfg"));
    std::fs::write(&path, cfg).ok()?;
    let ok = Command::new("xl")
        .arg("create")
        .arg("-p")
        .arg(&path)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let domu = DomU(name);
    let out = Command::new("xl").arg("domid").arg(&domu.0).output().ok()?;
    let domid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((domu, domid))
}

/// Guest address of the frames and bytes used: from 16 MiB up, RAM the toolstack populated.
const BASE: u64 = 16 << 20;
/// Frame counts of the mapping benchmarks, with how many map-unmap cycles one timed batch
/// makes.
const MAP_SIZES: [(u64, u32); 3] = [(1, 16), (64, 2), (512, 1)];
/// Byte counts of the copy benchmarks, with how many copies one timed batch makes.
///
/// Batches last milliseconds: the emulated dom0's clock can be coarse (the summary prints its
/// clocksource), so a timed batch must be long against its steps.
const COPY_SIZES: [(usize, u32); 2] = [(4 << 10, 4096), (2 << 20, 8)];

/// Side-by-side measurement of several implementations of one operation.
///
/// One criterion benchmark per comparison: each of its iterations is a *round* that runs a
/// batch of every implementation once, timing each batch, in an order rotated from round to
/// round (no side is always the warm or the cold one). Both sides of a ratio therefore run
/// under the same conditions, which matters because the box is emulated and shares the host
/// with other work: two benchmarks measured seconds apart can see very different loads.
/// Criterion reports the time of a whole round; the per-implementation figures and ratios are
/// printed from the rounds.
struct Paired {
    group: String,
    names: &'static [&'static str],
    /// Units (pages or bytes) one batch of one implementation handles.
    units: f64,
    /// Total time per implementation.
    sums: Vec<Duration>,
    /// Batches run per implementation.
    batches: u64,
    /// Per round: the first implementation's time over each other one's.
    ratios: Vec<Vec<f64>>,
}

impl Paired {
    fn new(group: String, names: &'static [&'static str], units: f64) -> Self {
        Paired {
            group,
            names,
            units,
            sums: vec![Duration::ZERO; names.len()],
            batches: 0,
            ratios: vec![Vec::new(); names.len() - 1],
        }
    }

    /// Runs `iters` rounds of `batch` calls of each op; returns the total time.
    fn rounds(&mut self, iters: u64, batch: u32, ops: &mut [&mut dyn FnMut()]) -> Duration {
        let mut total = Duration::ZERO;
        let mut times = vec![Duration::ZERO; ops.len()];
        for i in 0..iters {
            for k in 0..ops.len() {
                let j = (k + i as usize) % ops.len();
                let t = Instant::now();
                for _ in 0..batch {
                    (ops[j])();
                }
                times[j] = t.elapsed();
            }
            for (j, t) in times.iter().enumerate() {
                self.sums[j] += *t;
                total += *t;
                // A batch inside one step of a coarse clock reads as zero: no ratio for it.
                if j > 0 && !t.is_zero() && !times[0].is_zero() {
                    self.ratios[j - 1].push(times[0].as_secs_f64() / t.as_secs_f64());
                }
            }
            self.batches += 1;
        }
        total
    }

    /// Prints per-implementation throughput and the ratios (median of the rounds' ratios, and
    /// ratio of total times), and keeps the lines for the final summary.
    fn report(&mut self, unit: &str) {
        let batches = self.batches as f64;
        let rate = |d: &Duration| self.units * batches / d.as_secs_f64();
        let mut line = format!("{}: {} rounds;", self.group, self.batches);
        for (name, sum) in self.names.iter().zip(&self.sums) {
            line.push_str(&format!(" {name} {:.1} {unit}", rate(sum)));
            line.push(';');
        }
        for (j, ratios) in self.ratios.iter_mut().enumerate() {
            ratios.sort_by(f64::total_cmp);
            let at = |q: usize| {
                ratios
                    .get(ratios.len() * q / 100)
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            line.push_str(&format!(
                " {} / {} = {:.3} (total times), median of rounds {:.3}, 10th-90th percentile {:.3}-{:.3}",
                self.names[j + 1],
                self.names[0],
                self.sums[0].as_secs_f64() / self.sums[j + 1].as_secs_f64(),
                at(50),
                at(10),
                at(90),
            ));
            line.push(';');
        }
        println!("{line}");
        SUMMARY.with(|s| s.borrow_mut().push(line));
    }
}

thread_local! {
    /// The report lines, repeated in the final summary.
    static SUMMARY: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn bench_mapping(c: &mut Criterion, clib: &CLib, mapper: &XenForeignMapper, domid: DomId) {
    for (pages, batch) in MAP_SIZES {
        let gfns: Vec<c_ulong> = (BASE / 4096..BASE / 4096 + pages)
            .map(|g| g as c_ulong)
            .collect();
        let mut errs = vec![0 as c_int; gfns.len()];
        let gfns64: Vec<u64> = (BASE / 4096..BASE / 4096 + pages).collect();
        let mut errs64 = vec![0i32; gfns64.len()];
        let group = format!("map_unmap_{pages}_pages");
        let mut p = Paired::new(
            group.clone(),
            &[
                "libxenforeignmemory",
                "xen_foreignmem_map_frames_into",
                "xen_foreignmem_region",
            ],
            (pages * u64::from(batch)) as f64,
        );
        c.bench_function(&group, |b| {
            b.iter_custom(|iters| {
                p.rounds(
                    iters,
                    batch,
                    &mut [
                        &mut || clib.map_unmap(domid, &gfns, &mut errs),
                        &mut || {
                            let mapped = mapper
                                .map_frames_into(domid, &gfns64, &mut errs64)
                                .expect("map");
                            assert!(errs64.iter().all(|&e| e == 0), "map failed");
                            black_box(mapped);
                        },
                        &mut || {
                            let region =
                                ForeignRegion::map(mapper, domid, GuestAddress(BASE), pages * 4096)
                                    .expect("map");
                            black_box(region);
                        },
                    ],
                )
            })
        });
        p.report("pages/s");
    }
}

fn bench_copies(c: &mut Criterion, mapper: &XenForeignMapper, domid: DomId) {
    let whole = map_whole_guest(mapper, domid, &[(GuestAddress(BASE), 4 << 20)]).expect("map");
    let lazy = LazyForeignMemory::new(mapper.clone(), domid, 128 << 20, CacheConfig::default())
        .expect("cache");
    // One view for the whole run: its buckets stay mapped (the steady state of a device).
    let view = lazy.view();
    let at = GuestAddress(BASE);
    // The mapped guest bytes themselves, for the raw memcpy.
    let host = whole.get_host_address(at).expect("mapped");
    // Ordinary memory through vm-memory, for reference: what its generic `Bytes` path costs
    // anyone, over a `GuestMemoryMmap` of anonymous memory.
    let plain = GuestMemoryMmap::<()>::from_ranges(&[(at, 4 << 20)]).expect("anonymous memory");
    // `whole_guest` and `lazy_view` are their types' own `read_slice`/`write_slice` (what a
    // caller holding one gets), `lazy_view_generic` vm-memory's `Bytes` path over the same view
    // (what code generic over `GuestMemory`, virtio-queue for one, gets), `mmap_generic` that
    // path over ordinary memory.
    const NAMES: &[&str] = &[
        "memcpy",
        "whole_guest",
        "lazy_view",
        "lazy_view_generic",
        "memcpy_mapped",
        "mmap_generic",
    ];
    for (size, batch) in COPY_SIZES {
        let src = vec![0x5au8; size];
        let mut bufs = [
            vec![0u8; size],
            vec![0u8; size],
            vec![0u8; size],
            vec![0u8; size],
            vec![0u8; size],
            vec![0u8; size],
        ];
        let group = format!("copy_read_{}k", size >> 10);
        let mut p = Paired::new(
            group.clone(),
            NAMES,
            (size as u64 * u64::from(batch)) as f64 / (1 << 20) as f64,
        );
        c.bench_function(&group, |b| {
            b.iter_custom(|iters| {
                let [b0, b1, b2, b3, b4, b5] = &mut bufs;
                p.rounds(
                    iters,
                    batch,
                    &mut [
                        &mut || black_box(&mut b0[..]).copy_from_slice(black_box(&src[..])),
                        &mut || whole.read_slice(black_box(&mut b1[..]), at).unwrap(),
                        &mut || view.read_slice(black_box(&mut b2[..]), at).unwrap(),
                        &mut || Bytes::read_slice(&view, black_box(&mut b4[..]), at).unwrap(),
                        // SAFETY: `host` starts 4 MiB of mapped guest memory (alive as long as
                        // `whole`), `size` is at most 2 MiB, and `b3` is a distinct local buffer.
                        &mut || unsafe {
                            std::ptr::copy_nonoverlapping(
                                black_box(host),
                                black_box(&mut b3[..]).as_mut_ptr(),
                                size,
                            )
                        },
                        &mut || Bytes::read_slice(&plain, black_box(&mut b5[..]), at).unwrap(),
                    ],
                )
            })
        });
        p.report("MiB/s");

        let group = format!("copy_write_{}k", size >> 10);
        let mut p = Paired::new(
            group.clone(),
            NAMES,
            (size as u64 * u64::from(batch)) as f64 / (1 << 20) as f64,
        );
        c.bench_function(&group, |b| {
            b.iter_custom(|iters| {
                let b0 = &mut bufs[0];
                p.rounds(
                    iters,
                    batch,
                    &mut [
                        &mut || black_box(&mut b0[..]).copy_from_slice(black_box(&src[..])),
                        &mut || whole.write_slice(black_box(&src[..]), at).unwrap(),
                        &mut || view.write_slice(black_box(&src[..]), at).unwrap(),
                        &mut || Bytes::write_slice(&view, black_box(&src[..]), at).unwrap(),
                        // SAFETY: as for reads; the domU is paused, nothing else uses the bytes.
                        &mut || unsafe {
                            std::ptr::copy_nonoverlapping(
                                black_box(src.as_ptr()),
                                black_box(host),
                                size,
                            )
                        },
                        &mut || Bytes::write_slice(&plain, black_box(&src[..]), at).unwrap(),
                    ],
                )
            })
        });
        p.report("MiB/s");
    }
}

fn summary() {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "?".into());
    println!(
        "\nSUMMARY {date}, stack {}, Xen {}, kernel {}",
        env("XEN_BOX_STACK"),
        env("XEN_BOX_XEN_VERSION"),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    let clocksource =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `res` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC, &mut res) };
    println!(
        "SUMMARY clocksource {}, CLOCK_MONOTONIC resolution {} ns (rc {rc})",
        clocksource.trim(),
        res.tv_nsec
    );
    SUMMARY.with(|s| {
        for line in s.borrow().iter() {
            println!("SUMMARY {line}");
        }
    });
}

fn main() {
    if !std::path::Path::new("/dev/xen/privcmd").exists() {
        eprintln!("SKIPPED: vs_libxenforeignmemory: not running in a Xen dom0");
        return;
    }
    let Some(clib) = CLib::load() else {
        eprintln!("SKIPPED: vs_libxenforeignmemory: libxenforeignmemory.so.1 not loadable");
        return;
    };
    let Some((_domu, domid)) = create_domu() else {
        eprintln!("SKIPPED: vs_libxenforeignmemory: cannot create a domU (XEN_BOX_DOMU_* unset?)");
        return;
    };
    let mapper = XenForeignMapper::open().expect("open privcmd");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .configure_from_args();
    bench_mapping(&mut c, &clib, &mapper, domid);
    bench_copies(&mut c, &mapper, domid);
    c.final_summary();
    summary();
}
