// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Grant mode against pages a running domU grants (run as root in dom0: `cargo xtask xen-box
//! test`).
//!
//! This binary plays both sides. In dom0 it builds a domU initramfs at run time in which this
//! very executable, run with [`DOMU_SIDE`], is the workload (see the `common` module), with the
//! `xen-gntalloc` module of the running kernel (dom0 and domU boot the same kernel) loaded
//! first, and boots a PVH domU from it.
//!
//! In the domU the binary shares two writable pages and one read-only page with domain 0
//! through gntalloc, fills them with a known pattern and publishes the grant references under its
//! own xenstore directory (`data/xfm-grefs`). Dom0 reads the pattern through [`GrantMemory`]
//! (grant addresses), writes its answer, unmaps and sets `data/xfm-dom0-done`; the domU checks
//! the answer in its pages and reports `data/xfm-result`. Every wait is a xenstore watch with a
//! deadline.
//!
//! `harness = false`: the binary is its own main, so the domU side needs no test harness.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use xen_bindings::gntalloc::GntAlloc;
use xen_bindings::xenstore::Xenstore;
use xen_foreignmem::{grant_addr, DomId, Error, GrantMemory, XenGrantMapper, XEN_PAGE_SIZE};

/// The argument that selects the domU side.
const DOMU_SIDE: &str = "--xfm-domu-side";
/// Marks the start of the domU's first page.
const DOMU_MAGIC: &[u8] = b"xfm domU grant page";
/// What dom0 writes at offset 8 of the first page.
const DOM0_WORD: u64 = 0x0d0_f00d_cafe_d00d;
/// How long the domU may take to boot and publish its grants (software-emulated box).
const BOOT_DEADLINE: Duration = Duration::from_secs(300);
/// How long the domU may take to check dom0's answer.
const RESULT_DEADLINE: Duration = Duration::from_secs(120);

/// Byte `i` of granted page `page` as the domU fills it (after the magic on page 0).
fn domu_byte(page: usize, i: usize) -> u8 {
    (i * 7 + page * 31 + 1) as u8
}

/// Byte `i` of the second page as dom0 rewrites it.
fn dom0_byte(i: usize) -> u8 {
    (i * 11 + 5) as u8
}

fn main() {
    common::run_side(DOMU_SIDE, domu_side, dom0_side);
}

// ---------------------------------------------------------------------------------------------
// The domU side.

/// Writes `data/xfm-result` (best effort: the console carries the error too).
fn report(xs: &mut Xenstore, result: &str) {
    if let Err(e) = xs.write("data/xfm-result", result) {
        println!("XFM-DOMU: cannot write data/xfm-result: {e}");
    }
}

fn domu_side() -> Result<(), String> {
    let mut xs = Xenstore::open().map_err(|e| format!("opening xenstore: {e}"))?;
    let res = domu_grant(&mut xs);
    match &res {
        Ok(()) => report(&mut xs, "ok"),
        Err(e) => report(&mut xs, &format!("fail: {e}")),
    }
    res
}

fn domu_grant(xs: &mut Xenstore) -> Result<(), String> {
    let alloc = GntAlloc::open().map_err(|e| format!("opening gntalloc: {e}"))?;
    let rw = alloc
        .share(DomId::DOM0, 2, true)
        .map_err(|e| format!("granting two pages to dom0: {e}"))?;
    let ro = alloc
        .share(DomId::DOM0, 1, false)
        .map_err(|e| format!("granting a read-only page to dom0: {e}"))?;
    let page0: Vec<u8> = (0..XEN_PAGE_SIZE).map(|i| domu_byte(0, i)).collect();
    let page1: Vec<u8> = (0..XEN_PAGE_SIZE).map(|i| domu_byte(1, i)).collect();
    let page2: Vec<u8> = (0..XEN_PAGE_SIZE).map(|i| domu_byte(2, i)).collect();
    let io = |e| format!("filling granted pages: {e}");
    rw.write_at(0, &page0).map_err(io)?;
    rw.write_at(0, DOMU_MAGIC).map_err(io)?;
    rw.write_at(XEN_PAGE_SIZE, &page1).map_err(io)?;
    ro.write_at(0, &page2).map_err(io)?;
    let grefs = format!("{} {} {}", rw.grefs()[0], rw.grefs()[1], ro.grefs()[0]);
    println!("XFM-DOMU: granted {grefs}");

    xs.write("data/xfm-grefs", &grefs)
        .map_err(|e| format!("writing data/xfm-grefs: {e}"))?;
    let deadline = Instant::now() + BOOT_DEADLINE + RESULT_DEADLINE;
    common::domu_wait(xs, "data/xfm-dom0-done", deadline)?;

    // Dom0's answer, seen in the domU's own pages.
    let mut word = [0u8; 8];
    rw.read_at(8, &mut word).map_err(io)?;
    if u64::from_le_bytes(word) != DOM0_WORD {
        return Err(format!(
            "page 0 offset 8 holds {:#x}, not dom0's {DOM0_WORD:#x}",
            u64::from_le_bytes(word)
        ));
    }
    let mut back = vec![0u8; XEN_PAGE_SIZE];
    rw.read_at(XEN_PAGE_SIZE, &mut back).map_err(io)?;
    if let Some(i) = (0..XEN_PAGE_SIZE).find(|&i| back[i] != dom0_byte(i)) {
        return Err(format!(
            "page 1 byte {i} is {:#x}, dom0 wrote {:#x}",
            back[i],
            dom0_byte(i)
        ));
    }
    ro.read_at(0, &mut back).map_err(io)?;
    if back != page2 {
        return Err("the read-only page changed".into());
    }
    println!("XFM-DOMU: dom0's writes are in the granted pages");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dom0 side.

/// The `xen-gntalloc` module file of the running kernel and the modules it needs, in load
/// order; empty when the kernel has the driver built in.
fn gntalloc_modules() -> Vec<PathBuf> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim();
    let base = ["/lib/modules", "/usr/lib/modules"]
        .iter()
        .map(|b| Path::new(b).join(release))
        .find(|p| p.join("modules.dep").exists())
        .unwrap_or_else(|| panic!("no modules.dep for kernel {release} in dom0"));
    let dep = std::fs::read_to_string(base.join("modules.dep")).unwrap();
    let Some(line) = dep.lines().find(|l| {
        l.split(':')
            .next()
            .is_some_and(|m| m.rsplit('/').next() == Some("xen-gntalloc.ko"))
    }) else {
        eprintln!("xen-gntalloc is not a module of {release}: assuming it is built in");
        return Vec::new();
    };
    let (module, deps) = line.split_once(':').unwrap();
    // modules.dep lists dependencies so that the last one is loaded first.
    let mut order: Vec<PathBuf> = deps
        .split_whitespace()
        .rev()
        .map(|d| base.join(d))
        .collect();
    order.push(base.join(module));
    for m in &order {
        assert!(
            m.extension().is_some_and(|e| e == "ko"),
            "{} is compressed: this test loads plain .ko files",
            m.display()
        );
    }
    order
}

fn dom0_side() {
    let Some((kernel, box_ramdisk)) = common::xen_env("grant_mode_over_a_domu_grant") else {
        return;
    };
    let t0 = Instant::now();
    let (mut xs, domu) = common::boot_domu(
        "grant",
        &kernel,
        &box_ramdisk,
        DOMU_SIDE,
        &gntalloc_modules(),
        256,
    );
    let dom = domu.dir.clone();

    let grefs = common::wait_for(
        &mut xs,
        &domu,
        &format!("{dom}/data/xfm-grefs"),
        Some(&format!("{dom}/data/xfm-result")),
        BOOT_DEADLINE,
    );
    eprintln!("domU granted {grefs:?} after {:?}", t0.elapsed());
    let g: Vec<u32> = grefs
        .split_whitespace()
        .map(|s| s.parse().expect("grant references are numbers"))
        .collect();
    assert_eq!(g.len(), 3, "two writable and one read-only grant");

    let grants =
        GrantMemory::new(XenGrantMapper::open().unwrap(), DomId::new(domu.domid), 8).unwrap();
    let mem = grants.memory();
    // The domU's pattern, read through grant addresses.
    let mut page = vec![0u8; XEN_PAGE_SIZE];
    mem.read_slice(&mut page, GuestAddress(grant_addr(g[0], 0)))
        .unwrap();
    assert_eq!(&page[..DOMU_MAGIC.len()], DOMU_MAGIC);
    for (i, &b) in page.iter().enumerate().skip(DOMU_MAGIC.len()) {
        assert_eq!(b, domu_byte(0, i), "page 0 byte {i}");
    }
    let word: u32 = mem.read_obj(GuestAddress(grant_addr(g[1], 0x7fc))).unwrap();
    let expect = u32::from_le_bytes(std::array::from_fn(|k| domu_byte(1, 0x7fc + k)));
    assert_eq!(word, expect);
    mem.read_slice(&mut page, GuestAddress(grant_addr(g[2], 0)))
        .unwrap();
    assert!(page.iter().enumerate().all(|(i, &b)| b == domu_byte(2, i)));

    // Dom0's answer.
    mem.write_obj(DOM0_WORD, GuestAddress(grant_addr(g[0], 8)))
        .unwrap();
    let answer: Vec<u8> = (0..XEN_PAGE_SIZE).map(dom0_byte).collect();
    mem.write_slice(&answer, GuestAddress(grant_addr(g[1], 0)))
        .unwrap();

    // The read-only grant cannot be mapped for writing: a typed error, not a fault.
    let err = mem
        .write_obj(0u32, GuestAddress(grant_addr(g[2], 0)))
        .unwrap_err();
    match Error::from_guest_memory_error(&err) {
        Some(Error::MapGrant { gref, source, .. }) => {
            eprintln!("writable mapping of read-only grant {gref}: {source}");
            assert_eq!(*gref, g[2]);
        }
        _ => panic!("unexpected error writing a read-only grant: {err}"),
    }
    drop(mem);
    for &r in &g {
        grants.release(r);
    }
    assert_eq!(grants.stats().live, 0, "every grant unmapped");
    xs.write(&format!("{dom}/data/xfm-dom0-done"), "1")
        .expect("writing xfm-dom0-done");

    let result = common::wait_for(
        &mut xs,
        &domu,
        &format!("{dom}/data/xfm-result"),
        None,
        RESULT_DEADLINE,
    );
    assert_eq!(result, "ok", "the domU's verdict");
    eprintln!(
        "grant_mode_over_a_domu_grant: ok ({:?}, cache {:?})",
        t0.elapsed(),
        grants.stats()
    );
    drop(domu);
}
