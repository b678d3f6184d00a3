// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the aarch64 Xen box: the pure-Rust builder boots the box's Debian arm64 kernel and
//! initramfs as an Arm domU, reads the init's marker from the console ring, sees the domain in
//! `xl list`, destroys it and finds everything released.

// The builder makes Arm guests on aarch64 hosts; x86_64 has `pvh_boot.rs`.
#![cfg(target_arch = "aarch64")]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_hypervisor_xen::builder::{self, PvhConfig, XenOps};
use vm_hypervisor_xen::console::Console;

/// What the box's domU init prints once user space runs.
const MARKER: &str = "XEN-BOX-DOMU: up";

fn xl_list() -> String {
    xen_box_testing::run(Command::new("xl").arg("list"))
}

#[test]
fn the_builder_boots_the_box_kernel_as_an_arm_guest_and_destroy_releases_everything() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("arm_boot::the_builder_boots_the_box_kernel")
    else {
        return;
    };
    let before = xen_box_testing::held();
    let name = format!("rust-arm-{}", std::process::id());
    let mut config = PvhConfig::new(&name, &kernel);
    config.ramdisk = Some(ramdisk);
    config.memory_mib = 256;
    config.vcpus = 1;
    config.cmdline = "console=hvc0 xbdomu=sleep".into();
    {
        let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
        let started = Instant::now();
        let domain = builder::build(ops, &config).expect("building the Arm domain");
        let domid = domain.domid();
        eprintln!("built domain {domid} in {:?}", started.elapsed());
        let mut console = Console::attach(&domain).expect("attaching to the console ring");
        // The box emulates the CPU: a guest boot takes minutes.
        let out = console
            .wait_for(MARKER, Duration::from_secs(900))
            .unwrap_or_else(|e| panic!("{e}"));
        let marker = out
            .lines()
            .find(|l| l.contains(MARKER))
            .expect("the marker line");
        eprintln!("console after {:?}: {marker}", started.elapsed());
        // The kernel found Xen through the device tree: an auto-translated Xen guest.
        assert!(
            marker.contains("guest_type=HVM") || marker.contains("guest_type=PVH"),
            "the guest does not see Xen:\n{out}"
        );
        let list = xl_list();
        eprintln!("{list}");
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "xl list does not show {name}:\n{list}"
        );
        drop(console);
        domain.destroy().expect("destroying the domain");
        // The domain is gone from Xen (it may linger as dying for a moment: wait on
        // getdomaininfo, bounded).
        let privcmd = xen_bindings::privcmd::Privcmd::open().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while privcmd.domain_info(domid).is_ok() {
            assert!(Instant::now() < deadline, "domain {domid} still exists");
            std::thread::yield_now();
        }
    }
    let list = xl_list();
    assert!(!list.contains(&name), "xl list still shows {name}:\n{list}");
    let after = xen_box_testing::held();
    assert_eq!(
        before, after,
        "fds, privcmd mappings or event channels leaked"
    );
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
