// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In-box comparison, in one run, side by side:
//!
//! - mapping throughput (pages per second): map and unmap the same frames of a paused PVH domU
//!   through this crate (`ForeignRegion::map`, privcmd `MMAPBATCH_V2` through xen-bindings) and
//!   through Xen's C libxenforeignmemory (loaded with dlopen, so nothing links against it at
//!   build time);
//! - copy throughput of mapped guest memory through vm-memory's `Bytes` (`read_slice` and
//!   `write_slice`, i.e. the `VolatileSlice` copy path) in whole-guest and lazy mode, against a
//!   plain `memcpy` (`copy_from_slice`) of the same size between two local buffers.
//!
//! At the end it prints a summary with the ratios (C time / crate time for mapping, memcpy time
//! / crate time for copies: above 1.0 the crate is faster), read back from criterion's
//! estimates.
//!
//! Only meaningful in a Xen dom0; elsewhere it prints `SKIPPED` and exits. Run it with
//! `cargo bench -p xen-foreignmem --bench vs_libxenforeignmemory --no-run` and then
//! `cargo xtask xen-box run --stack bookworm -- <that executable> --bench`.

use std::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion, Throughput};
use vm_memory::{Bytes, GuestAddress};
use xen_foreignmem::{
    map_whole_guest, CacheConfig, ForeignRegion, LazyForeignMemory, XenForeignMapper,
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
    fn map_unmap(&self, domid: u16, gfns: &[c_ulong], errs: &mut [c_int]) {
        // SAFETY: `gfns` and `errs` hold `gfns.len()` entries each, as the call reads/writes.
        let addr = unsafe {
            (self.map)(
                self.handle,
                domid.into(),
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

fn create_domu() -> Option<(DomU, u16)> {
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
/// Frame counts of the mapping benchmarks.
const MAP_SIZES: [u64; 3] = [1, 64, 512];
/// Byte counts of the copy benchmarks.
const COPY_SIZES: [usize; 2] = [4 << 10, 2 << 20];

fn bench_mapping(c: &mut Criterion, clib: &CLib, mapper: &XenForeignMapper, domid: u16) {
    for pages in MAP_SIZES {
        let gfns: Vec<c_ulong> = (BASE / 4096..BASE / 4096 + pages)
            .map(|g| g as c_ulong)
            .collect();
        let mut errs = vec![0 as c_int; gfns.len()];
        let mut g = c.benchmark_group(format!("map_unmap_{pages}_pages"));
        g.throughput(Throughput::Elements(pages));
        g.bench_function("libxenforeignmemory", |b| {
            b.iter(|| clib.map_unmap(domid, &gfns, &mut errs))
        });
        let ours = || {
            let region =
                ForeignRegion::map(mapper, domid, GuestAddress(BASE), pages * 4096).expect("map");
            black_box(region);
        };
        g.bench_function("xen_foreignmem", |b| b.iter(ours));
        let mut sums = [Duration::ZERO; 2];
        g.bench_function("paired", |b| {
            b.iter_custom(|iters| {
                paired(
                    iters,
                    &mut [&mut || clib.map_unmap(domid, &gfns, &mut errs), &mut || {
                        ours()
                    }],
                    &mut sums,
                )
            })
        });
        g.finish();
        paired_ratios(
            &format!("map_unmap_{pages}_pages"),
            &["libxenforeignmemory", "xen_foreignmem"],
            &sums,
        );
    }
}

/// Runs `ops` alternately, `iters` times each (rotating which goes first, so no side is always
/// the warm or the cold one), adds each op's time to `sums` and returns the total.
///
/// Both sides of a ratio then run under the same conditions: the box is emulated and shares the
/// host with other work, so two benchmarks measured seconds apart can see different loads.
fn paired(iters: u64, ops: &mut [&mut dyn FnMut()], sums: &mut [Duration]) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        for k in 0..ops.len() {
            let j = (k + i as usize) % ops.len();
            let t = Instant::now();
            (ops[j])();
            let d = t.elapsed();
            sums[j] += d;
            total += d;
        }
    }
    total
}

/// Prints the ratios of paired sums: first op's time over each other op's time.
fn paired_ratios(group: &str, names: &[&str], sums: &[Duration]) {
    let base = sums[0].as_secs_f64();
    for (name, sum) in names.iter().zip(sums).skip(1) {
        let line = format!(
            "PAIRED {group}: {name} vs {}: ratio {:.3} ({:.3} s vs {:.3} s in total)",
            names[0],
            base / sum.as_secs_f64(),
            sum.as_secs_f64(),
            base
        );
        println!("{line}");
        PAIRED.with(|p| p.borrow_mut().push(line));
    }
}

thread_local! {
    /// The paired ratios, repeated in the final summary.
    static PAIRED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn bench_copies(c: &mut Criterion, mapper: &XenForeignMapper, domid: u16) {
    let whole = map_whole_guest(mapper, domid, &[(GuestAddress(BASE), 4 << 20)]).expect("map");
    let lazy = LazyForeignMemory::new(mapper.clone(), domid, 128 << 20, CacheConfig::default())
        .expect("cache");
    // One view for the whole run: its buckets stay mapped (the steady state of a device).
    let view = lazy.view();
    let at = GuestAddress(BASE);
    for size in COPY_SIZES {
        let src = vec![0x5au8; size];
        let mut dst = vec![0u8; size];
        let mut g = c.benchmark_group(format!("copy_read_{}k", size >> 10));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("memcpy", |b| {
            b.iter(|| black_box(&mut dst[..]).copy_from_slice(black_box(&src[..])))
        });
        g.bench_function("whole_guest", |b| {
            b.iter(|| whole.read_slice(black_box(&mut dst[..]), at).unwrap())
        });
        g.bench_function("lazy_view", |b| {
            b.iter(|| view.read_slice(black_box(&mut dst[..]), at).unwrap())
        });
        let mut sums = [Duration::ZERO; 3];
        g.bench_function("paired", |b| {
            b.iter_custom(|iters| {
                let mut bufs = [vec![0u8; size], vec![0u8; size], vec![0u8; size]];
                let [b0, b1, b2] = &mut bufs;
                paired(
                    iters,
                    &mut [
                        &mut || black_box(&mut b0[..]).copy_from_slice(black_box(&src[..])),
                        &mut || whole.read_slice(black_box(&mut b1[..]), at).unwrap(),
                        &mut || view.read_slice(black_box(&mut b2[..]), at).unwrap(),
                    ],
                    &mut sums,
                )
            })
        });
        g.finish();
        paired_ratios(
            &format!("copy_read_{}k", size >> 10),
            &["memcpy", "whole_guest", "lazy_view"],
            &sums,
        );

        let mut g = c.benchmark_group(format!("copy_write_{}k", size >> 10));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("memcpy", |b| {
            b.iter(|| black_box(&mut dst[..]).copy_from_slice(black_box(&src[..])))
        });
        g.bench_function("whole_guest", |b| {
            b.iter(|| whole.write_slice(black_box(&src[..]), at).unwrap())
        });
        g.bench_function("lazy_view", |b| {
            b.iter(|| view.write_slice(black_box(&src[..]), at).unwrap())
        });
        let mut sums = [Duration::ZERO; 3];
        g.bench_function("paired", |b| {
            b.iter_custom(|iters| {
                let mut buf = vec![0u8; size];
                paired(
                    iters,
                    &mut [
                        &mut || black_box(&mut buf[..]).copy_from_slice(black_box(&src[..])),
                        &mut || whole.write_slice(black_box(&src[..]), at).unwrap(),
                        &mut || view.write_slice(black_box(&src[..]), at).unwrap(),
                    ],
                    &mut sums,
                )
            })
        });
        g.finish();
        paired_ratios(
            &format!("copy_write_{}k", size >> 10),
            &["memcpy", "whole_guest", "lazy_view"],
            &sums,
        );
    }
}

/// Where criterion keeps its estimates (the order criterion itself resolves it in, minus
/// `cargo metadata`, which dom0 does not have).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("criterion"),
        None => PathBuf::from("target/criterion"),
    }
}

/// The mean (point estimate, lower and upper bound, in ns) of a benchmark, from criterion's
/// `estimates.json`.
fn mean_ns(group: &str, function: &str) -> Option<(f64, f64, f64)> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\":")?..];
    let num = |key: &str| -> Option<f64> {
        let at = mean.find(key)? + key.len();
        let rest = &mean[at..];
        let end = rest.find([',', '}'])?;
        rest[..end].trim().parse().ok()
    };
    Some((
        num("\"point_estimate\":")?,
        num("\"lower_bound\":")?,
        num("\"upper_bound\":")?,
    ))
}

fn summary() {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "?".into());
    println!(
        "\nSUMMARY {date}, stack {}, Xen {}",
        env("XEN_BOX_STACK"),
        env("XEN_BOX_XEN_VERSION")
    );
    let show = |group: &str, base: &str, other: &str, unit: f64, what: &str| match (
        mean_ns(group, base),
        mean_ns(group, other),
    ) {
        (Some((b, bl, bu)), Some((o, ol, ou))) => println!(
            "SUMMARY {group}: {base} {:.1} {what} [{:.1}, {:.1}], {other} {:.1} {what} \
                 [{:.1}, {:.1}], ratio {:.3} (target: crate/{base} throughput)",
            unit / b,
            unit / bu,
            unit / bl,
            unit / o,
            unit / ou,
            unit / ol,
            b / o
        ),
        _ => println!("SUMMARY {group}: no estimates for {base}/{other}"),
    };
    for pages in MAP_SIZES {
        // Pages per second.
        show(
            &format!("map_unmap_{pages}_pages"),
            "libxenforeignmemory",
            "xen_foreignmem",
            pages as f64 * 1e9,
            "pages/s",
        );
    }
    for size in COPY_SIZES {
        for dir in ["read", "write"] {
            let group = format!("copy_{dir}_{}k", size >> 10);
            // MiB per second.
            let unit = size as f64 * 1e9 / (1u64 << 20) as f64;
            show(&group, "memcpy", "whole_guest", unit, "MiB/s");
            show(&group, "memcpy", "lazy_view", unit, "MiB/s");
        }
    }
    PAIRED.with(|p| {
        for line in p.borrow().iter() {
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
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_mapping(&mut c, &clib, &mapper, domid);
    bench_copies(&mut c, &mapper, domid);
    c.final_summary();
    summary();
}
