// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the aarch64 Xen box: the pure-Rust builder boots the box's Debian arm64 kernel and
//! initramfs as an Arm domU, reads the init's marker from the console ring, sees the domain in
//! `xl list`, sees the console wait end when the guest powers off, destroys the domain and
//! finds everything released.

// The builder makes Arm guests on aarch64 hosts; x86_64 has `pvh_boot.rs`.
#![cfg(target_arch = "aarch64")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use vm_hypervisor_xen::builder::arm::layout::extended_regions;
use vm_hypervisor_xen::builder::{self, BzImageBoot, PvhConfig, XenOps};
use xen_bindings::abi::xen::arch_arm::{GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE};
use xen_bindings::layout::GuestLayout;
use xen_bindings::privcmd::Privcmd;
use xen_bindings::DomId;

/// How long a boot may take: seconds in the box, whose test binaries get 600 s in all. A
/// wait that ends before the box's limit fails with what the guest wrote so far.
const BOOT_WITHIN: Duration = Duration::from_secs(150);

/// What the box's domU init prints once user space runs.
const MARKER: &str = "XEN-BOX-DOMU: up";
/// What it prints with `xbdomu=poweroff` (its default) before it powers off.
const POWERING_OFF: &str = "XEN-BOX-DOMU: powering off";

#[test]
fn the_builder_boots_the_box_kernel_as_an_arm_guest_and_destroy_releases_everything() {
    // Powering off also shows that the console wait ends when the guest stops.
    arm_guest("rust-arm", 256, false, Duration::from_secs(60)).run(
        "arm_boot::the_builder_boots_the_box_kernel",
        |out| {
            let marker = marker_line(out);
            // The kernel found Xen through the device tree: an auto-translated Xen guest.
            assert!(
                marker.contains("guest_type=HVM") || marker.contains("guest_type=PVH"),
                "the guest does not see Xen:\n{out}"
            );
            // The /hypervisor node's reg the guest read: the grant-table space, then the
            // extended regions for its address width (Xen gives every Arm domain the same
            // stage-2 size, so dom0's is the guest's).
            let bits = Privcmd::open()
                .and_then(|p| p.domain_info(DomId::DOM0))
                .expect("getdomaininfo")
                .gpaddr_bits;
            let mut want = vec![(GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE)];
            want.extend(extended_regions(256 << 20, bits));
            assert!(
                want.len() > 1,
                "{bits}-bit guest addresses leave no extended region"
            );
            let reg = hypervisor_reg(out);
            eprintln!("/hypervisor reg the guest read ({bits}-bit addresses): {reg:x?}");
            assert_eq!(reg, want, "{bits}-bit guest addresses:\n{out}");
            for line in out.lines().filter(|l| l.contains("XEN-BOX-DOMU: iomem")) {
                eprintln!("{line}");
            }
            // The RAM the kernel found: all of it, from bank 0's base.
            let ram = common::guest_ram(out);
            eprintln!("System RAM the guest found: {ram:x?}");
            assert_eq!(ram, [(0x4000_0000, 0x4000_0000 + (256 << 20) - 1)], "{out}");
        },
    );
}

/// 3 GiB and 64 MiB of RAM fill bank 0 and continue in bank 1 (at 8 GiB): the guest's kernel
/// finds both (the System RAM ranges of its /proc/iomem), and the domain goes like any other.
#[test]
fn ram_beyond_bank_0_continues_in_bank_1_and_the_guest_finds_it() {
    arm_guest(
        "rust-arm-bank1",
        (3 << 10) + 64,
        false,
        Duration::from_secs(120),
    )
    .run("arm_boot::ram_beyond_bank_0_continues_in_bank_1", |out| {
        let ram = common::guest_ram(out);
        eprintln!("System RAM the guest found: {ram:x?}");
        assert_eq!(
            ram,
            [
                (0x4000_0000, 0xffff_ffff),
                (0x2_0000_0000, 0x2_0000_0000 + (64 << 20) - 1)
            ],
            "{out}"
        );
    });
}

/// A guest given Xen's virtual SBSA UART (vPL011) and `console=ttyAMA0`: its kernel and init
/// write there, and the builder's reader gets it all from the UART's ring.
#[test]
fn a_guest_with_a_vuart_writes_its_console_there() {
    arm_guest("rust-arm-vuart", 256, true, Duration::from_secs(60)).run(
        "arm_boot::a_guest_with_a_vuart_writes_its_console_there",
        |out| {
            marker_line(out);
            // The kernel's own lines came the same way: its console is the UART.
            assert!(
                out.lines().any(|l| l.contains("ttyAMA0")),
                "no kernel line names ttyAMA0:\n{out}"
            );
        },
    );
}

/// A one-vCPU Arm guest of `memory_mib` (named `prefix`, this process's id appended), with a
/// vuart or not, that powers off after its marker; its destroyed domain may linger as dying
/// for `gone_within`.
fn arm_guest(
    prefix: &str,
    memory_mib: u64,
    vuart: bool,
    gone_within: Duration,
) -> common::Boot<'static> {
    common::Boot {
        name: format!("{prefix}-{}", std::process::id()),
        memory_mib,
        layout: GuestLayout::Arm,
        vuart,
        vcpus: 1,
        // An x86 setting, which Arm builds ignore.
        bzimage: BzImageBoot::default(),
        then: common::Then::PowerOff,
        until: POWERING_OFF,
        boot_within: BOOT_WITHIN,
        gone_within,
    }
}

/// The init's marker line in `out`, printed for the log.
fn marker_line(out: &str) -> &str {
    let marker = out
        .lines()
        .find(|l| l.contains(MARKER))
        .expect("the marker line");
    eprintln!("{marker}");
    marker
}

/// The `(base, size)` pairs of the `XEN-BOX-DOMU: hypervisor-reg` line in `out` (two
/// big-endian cells each).
fn hypervisor_reg(out: &str) -> Vec<(u64, u64)> {
    let hex = out
        .lines()
        .find_map(|l| l.split("XEN-BOX-DOMU: hypervisor-reg ").nth(1))
        .expect("the hypervisor-reg line")
        .trim();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let cells: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect();
    cells.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

#[test]
fn a_kernel_that_is_no_image_leaves_no_domain_behind() {
    if !xen_box_testing::in_dom0("arm_boot::a_kernel_that_is_no_image") {
        return;
    }
    let bogus = std::env::temp_dir().join("not-an-image");
    std::fs::write(&bogus, b"definitely not a kernel").unwrap();
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let before = ops.privcmd().domains().unwrap().len();
    let err = builder::build(ops.clone(), &PvhConfig::new("rust-arm-bogus", &bogus)).unwrap_err();
    assert!(
        matches!(err, vm_hypervisor_xen::Error::BadKernel { .. }),
        "{err}"
    );
    assert_eq!(ops.privcmd().domains().unwrap().len(), before);
}
