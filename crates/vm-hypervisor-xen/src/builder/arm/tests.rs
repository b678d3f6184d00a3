// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The whole Arm build against the fake Xen: what it asks for and writes where, and that a
//! failure at any step leaves no domain (and no xenstore entry) behind.

use std::path::PathBuf;
use std::sync::Arc;

use xen_bindings::abi::xen::hvm::*;
use xen_bindings::DomId;

use super::image::{tests::image, ArmImage};
use super::layout::{MagicPage, DTB_SLOT, RAM_BASE};
use crate::builder::fake::FakeXen;
use crate::builder::memory::PAGE;
use crate::builder::{build, PvhConfig};
use crate::error::Error;

/// The image's file: 8 KiB, its header asking for 2 MiB at RAM base.
const IMAGE_BYTES: usize = 0x2000;
/// The initrd: 8 KiB of 7s.
const INITRD_BYTES: usize = 0x2000;

struct Files {
    dir: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn files(test: &str, kernel: &[u8]) -> Files {
    let dir = std::env::temp_dir().join(format!("vmhx-arm-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let k = dir.join("Image");
    std::fs::write(&k, kernel).unwrap();
    let i = dir.join("initrd");
    std::fs::write(&i, vec![7u8; INITRD_BYTES]).unwrap();
    Files {
        dir,
        kernel: k,
        initrd: i,
    }
}

fn kernel() -> Vec<u8> {
    let mut k = image(0, 0x20_0000, IMAGE_BYTES);
    k[IMAGE_BYTES - 1] = 0x5a;
    k
}

fn config(f: &Files) -> PvhConfig {
    let mut c = PvhConfig::new("arm-unit", &f.kernel);
    c.memory_mib = 32;
    c.ramdisk = Some(f.initrd.clone());
    c
}

fn page(xen: &FakeXen, addr: u64) -> Vec<u8> {
    let contents = xen.state.lock().unwrap().contents.clone();
    let contents = contents.lock().unwrap();
    contents
        .get(&(addr / PAGE))
        .unwrap_or_else(|| panic!("page {addr:#x} never written"))
        .clone()
}

#[test]
fn an_arm_build_creates_loads_and_starts_the_guest_as_libxc_lays_it_out() {
    let f = files("order", &kernel());
    let xen = Arc::new(FakeXen::default());
    let dom = build(xen.clone(), &config(&f)).unwrap();
    let calls = xen.calls();
    let pos = |n: &str| calls.iter().position(|c| c == n).unwrap();
    assert_eq!(pos("create_domain"), 0);
    assert!(
        pos("set_max_vcpus") < pos("set_address_size"),
        "vCPUs first"
    );
    assert!(pos("set_address_size") < pos("set_arm_vcpu_context"));
    assert!(pos("populate_physmap") < pos("map_guest"));
    assert!(pos("set_arm_vcpu_context") < pos("xs_introduce"));
    assert_eq!(calls.last().unwrap(), "unpause");

    let state = xen.state.lock().unwrap();
    assert_eq!(state.address_size, Some(64));
    // The data cache is cleaned over the magic pages and everything loaded.
    assert!(state.flushed.contains(&(0x39000, 4)), "{:?}", state.flushed);
    assert!(
        state
            .flushed
            .iter()
            .any(|&(gfn, n)| gfn == RAM_BASE / PAGE && n == 2),
        "the kernel's pages: {:?}",
        state.flushed
    );
    let param = |i: u32| state.params.iter().find(|p| p.0 == i).map(|p| p.1);
    assert_eq!(param(HVM_PARAM_CONSOLE_PFN), Some(0x39000));
    assert_eq!(param(HVM_PARAM_STORE_PFN), Some(0x39001));
    assert_eq!(param(HVM_PARAM_MONITOR_RING_PFN), Some(0x39002));
    assert_eq!(param(HVM_PARAM_CALLBACK_IRQ), Some(0x0200_0000_0000_021f));
    assert!(param(HVM_PARAM_CONSOLE_EVTCHN).is_some() && param(HVM_PARAM_STORE_EVTCHN).is_some());
    // 32 MiB: the initrd and the device tree at the end of RAM.
    let ram_end = RAM_BASE + (32 << 20);
    let dtb = ram_end - DTB_SLOT;
    let [(vcpu, ctx)] = state.arm_contexts[..] else {
        panic!("{:?}", state.arm_contexts)
    };
    assert_eq!(vcpu, 0);
    assert_eq!((ctx.user_regs.pc64, ctx.user_regs.x[0]), (RAM_BASE, dtb));
    assert_eq!(ctx.user_regs.cpsr, 0x3c5);
    drop(state);

    // What the guest finds: the kernel at RAM base, the initrd, the device tree, zeroed rings.
    let k = page(&xen, RAM_BASE);
    assert_eq!(&k[56..60], b"ARM\x64");
    assert_eq!(
        page(&xen, RAM_BASE + 0x1000)[0xfff],
        0x5a,
        "the image's last byte"
    );
    let initrd = dtb - INITRD_BYTES as u64;
    assert!(page(&xen, initrd).iter().all(|b| *b == 7));
    assert_eq!(&page(&xen, dtb)[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
    for p in [
        MagicPage::Console,
        MagicPage::Xenstore,
        MagicPage::MemAccess,
    ] {
        assert!(page(&xen, p.gfn() * PAGE).iter().all(|b| *b == 0), "{p:?}");
    }
    // Only what was written was mapped: the kernel's 2 pages, 2 of initrd, the device tree's,
    // the 4 magic pages.
    let mapped = xen.state.lock().unwrap().mapped.len();
    assert!(mapped <= 2 + 2 + (DTB_SLOT / PAGE) as usize + 4, "{mapped}");

    assert_eq!(dom.rings().console_gfn, 0x39000);
    drop(dom);
    assert_eq!(xen.live(), 0, "dropping the domain destroys it");
    assert_eq!(xen.xs_entries(), 0);
}

#[test]
fn a_failure_at_any_step_after_createdomain_leaves_no_domain_and_no_entries() {
    for step in [
        "set_max_vcpus",
        "set_address_size",
        "set_max_mem",
        "set_paging_mempool_size",
        "populate_physmap",
        "map_guest",
        "set_hvm_param",
        "xen_version",
        "cache_flush",
        "evtchn_alloc_unbound",
        "seed_grant_table",
        "set_arm_vcpu_context",
        "xs_write",
        "xs_introduce",
        "unpause",
    ] {
        let f = files(step, &kernel());
        let xen = Arc::new(FakeXen::failing_at(step));
        let err = build(xen.clone(), &config(&f)).unwrap_err();
        assert!(matches!(err, Error::Xen { .. }), "{step}: {err}");
        assert_eq!(xen.live(), 0, "{step}: domain left behind");
        assert_eq!(xen.xs_entries(), 0, "{step}: xenstore entries left behind");
    }
}

#[test]
fn a_gic_the_builder_cannot_describe_is_a_typed_error_and_the_domain_goes() {
    let f = files("gic", &kernel());
    for version in [0, 3] {
        let xen = Arc::new(FakeXen {
            gic_written_back: version,
            ..Default::default()
        });
        let err = build(xen.clone(), &config(&f)).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedGic { domid, version: v } if domid == DomId::new(5) && v == version),
            "{err}"
        );
        assert_eq!(xen.live(), 0);
    }
}

#[test]
fn what_does_not_fit_or_is_no_image_is_refused_before_any_domain_exists() {
    // A kernel taking more than all of RAM.
    let f = files("big", &image(0, 33 << 20, 0x1000));
    let xen = Arc::new(FakeXen::default());
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(
        matches!(err, Error::MemoryTooSmall { what: "kernel", .. }),
        "{err}"
    );
    let f = files(
        "notimage",
        b"\x7fELF not an arm64 Image, long enough to have a header....",
    );
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(matches!(err, Error::BadKernel { .. }), "{err}");
    let mut c = config(&f);
    c.memory_mib = (super::layout::MAX_RAM >> 20) + 1;
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                what: "memory_mib",
                ..
            }
        ),
        "{err}"
    );
    let mut c = config(&f);
    c.layout = xen_bindings::layout::GuestLayout::X86 {
        below_4g_ram_end: xen_bindings::layout::X86_BELOW_4G_RAM_END,
    };
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { what: "layout", .. }),
        "{err}"
    );
    assert!(xen.calls().is_empty());
    // The image as read is what is loaded.
    assert!(ArmImage::open(&f.kernel).is_err());
}

#[test]
fn ram_beyond_bank_0_is_populated_in_bank_1_and_nothing_is_loaded_there() {
    let f = files("bank1", &kernel());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.memory_mib = (3 << 10) + 64;
    let _dom = build(xen.clone(), &c).unwrap();
    let state = xen.state.lock().unwrap();
    let bank1 = xen_bindings::layout::ARM_GUEST_RAM1_BASE / PAGE;
    let in_bank1: usize = state
        .populated
        .iter()
        .filter(|p| p.1 >= bank1)
        .map(|p| p.2 << p.0)
        .sum();
    assert_eq!(in_bank1 as u64, (64 << 20) / PAGE, "64 MiB in bank 1");
    assert!(state.mapped.iter().all(|&g| g < bank1), "loaded in bank 0");
}

#[test]
fn a_guest_asked_a_vuart_gets_its_ring_event_channel_and_xenstore_entries() {
    let f = files("vuart", &kernel());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    let plain = build(xen.clone(), &c).unwrap();
    assert_eq!(plain.rings().vuart, None);
    assert!(!xen.calls().contains(&"vuart_init".to_string()));
    drop(plain);
    c.vuart = true;
    let xen = Arc::new(FakeXen::default());
    let dom = build(xen.clone(), &c).unwrap();
    assert_eq!(
        dom.rings().vuart,
        Some(crate::builder::RingRef {
            gfn: MagicPage::Vuart.gfn(),
            port: 77
        })
    );
    let calls = xen.calls();
    let pos = |n: &str| calls.iter().position(|c| c == n).unwrap();
    assert!(pos("populate_physmap") < pos("vuart_init"));
    assert!(pos("vuart_init") < pos("unpause"));
    let xs = xen.state.lock().unwrap().xs.clone();
    let domid = dom.domid();
    for key in ["ring-ref", "port", "type", "limit"] {
        let path = format!("/local/domain/{domid}/vuart/0/{key}");
        assert!(xs.contains(&path), "{path}");
    }
}
