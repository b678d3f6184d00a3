// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In-box comparison with Xen's C library: mapping and unmapping frames of a paused PVH domU
//! through `XenForeignMapper` (pure Rust over xen-bindings) and through libxenforeignmemory
//! (loaded with dlopen, so nothing links against it at build time), plus a cached read.
//!
//! Only meaningful in a Xen dom0; elsewhere it prints `SKIPPED` and exits. Run it with
//! `cargo bench -p xen-foreignmem --bench vs_libxenforeignmemory --no-run` and then
//! `cargo xtask xen-box run --stack bookworm -- <that executable> --bench`.

use std::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use std::process::Command;
use std::time::Duration;

use criterion::{black_box, Criterion};
use vm_memory::{Bytes, GuestAddress};
use xen_foreignmem::{CacheConfig, ForeignMapper, LazyForeignMemory, XenForeignMapper};

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

    // Frames from 16 MiB up: RAM the toolstack populated (the kernel lives there).
    for pages in [1u64, 512] {
        let gfns: Vec<u64> = (4096..4096 + pages).collect();
        let c_gfns: Vec<c_ulong> = gfns.iter().map(|&g| g as c_ulong).collect();
        let mut errs = vec![0 as c_int; gfns.len()];
        c.bench_function(
            &format!("map_unmap_{pages}_frames/libxenforeignmemory"),
            |b| b.iter(|| clib.map_unmap(domid, &c_gfns, &mut errs)),
        );
        c.bench_function(&format!("map_unmap_{pages}_frames/xen_foreignmem"), |b| {
            b.iter(|| {
                let m = mapper.map_frames(domid, &gfns).expect("map");
                assert!(m.errors.iter().all(|&e| e == 0));
                black_box(m)
            })
        });
    }

    let cache = LazyForeignMemory::new(mapper.clone(), domid, 128 << 20, CacheConfig::default())
        .expect("cache");
    let view = cache.view();
    c.bench_function("cached_read_u64/xen_foreignmem", |b| {
        b.iter(|| black_box(view.read_obj::<u64>(GuestAddress(16 << 20)).unwrap()))
    });
    c.final_summary();
}
