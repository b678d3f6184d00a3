// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the box tests that boot a Linux domU with the pure-Rust builder share (`pvh_boot.rs` on
//! x86_64, `arm_boot.rs` on aarch64): the boot itself and the check that destroying the domain
//! releases everything. Each of those test files is compiled only on its architecture, so this
//! module is compiled into one test binary per architecture, which uses all of it.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_hypervisor_xen::builder::{self, BzImageBoot, DomainState, PvhConfig, XenOps};
use vm_hypervisor_xen::console::Console;
use vm_hypervisor_xen::Error;
use xen_bindings::layout::GuestLayout;

/// What the box's domU init does after its marker (its `xbdomu=` mode).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Idles (`sleep`).
    // arm_boot, the only user of this module on aarch64, powers its guest off.
    #[cfg_attr(target_arch = "aarch64", allow(dead_code))]
    Sleep,
    /// Powers off (`poweroff`): the test then also sees its console wait end with the
    /// shutdown.
    PowerOff,
}

/// A domU the builder makes from the box's kernel and initramfs. Whether its init idles or
/// powers off after its marker, the domain is still there to be listed and destroyed: nobody
/// destroys a shut-down domain but its builder.
pub struct Boot<'a> {
    /// The domain's name, unique to this process (`xl list` is searched for it).
    pub name: String,
    /// The guest's RAM.
    pub memory_mib: u64,
    /// Where it lies.
    pub layout: GuestLayout,
    /// Whether the guest's console is its virtual UART (`ttyAMA0`, read through
    /// `Console::attach_vuart`) instead of `hvc0`.
    pub vuart: bool,
    /// The guest's vCPUs.
    pub vcpus: u32,
    /// How an x86 bzImage kernel is started.
    pub bzimage: BzImageBoot,
    /// What the init does after its marker.
    pub then: Then,
    /// The console text that ends the wait for the boot.
    pub until: &'a str,
    /// How long the boot may take: the box emulates the CPU, so minutes.
    pub boot_within: Duration,
    /// How long the destroyed domain may linger as dying in Xen.
    pub gone_within: Duration,
}

impl Boot<'_> {
    /// For test `test` (named in its skip line): builds and boots the domain, waits for `until`
    /// on its console and hands the console's text to `check`; sees the domain in `xl list`;
    /// with [`Then::PowerOff`], sees a wait for text the guest never prints end with
    /// `Error::DomainStopped` (a poweroff), not with the wait's deadline; then checks the
    /// release: destroying the domain succeeds, it is gone from Xen and from `xl list`, and
    /// this process holds the same file descriptors, privcmd mappings and event channels as
    /// before the build.
    ///
    /// Outside a Xen dom0, or without the box's domU kernel and initramfs, it prints why the
    /// test is skipped and returns (inside the box that is a failure).
    ///
    /// The comparison of what the process holds assumes no other test of the binary runs
    /// meanwhile: the box runs test binaries with `--test-threads=1`.
    pub fn run(self, test: &str, check: impl FnOnce(&str)) {
        let Some((kernel, ramdisk)) = xen_box_testing::domu_env_with_ramdisk(test) else {
            return;
        };
        let before = xen_box_testing::held();
        let mut config = PvhConfig::new(&self.name, &kernel);
        config.ramdisk = Some(ramdisk);
        config.memory_mib = self.memory_mib;
        config.layout = self.layout;
        config.vcpus = self.vcpus;
        config.bzimage = self.bzimage;
        let mode = match self.then {
            Then::Sleep => "sleep",
            Then::PowerOff => "poweroff",
        };
        config.vuart = self.vuart;
        let tty = if self.vuart { "ttyAMA0" } else { "hvc0" };
        config.cmdline = format!("console={tty} xbdomu={mode}");
        // Everything the build opened is dropped at the end of this block, before `after`.
        {
            let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
            let started = Instant::now();
            let domain = builder::build(ops, &config).expect("building the domain");
            let domid = domain.domid();
            eprintln!("built domain {domid} in {:?}", started.elapsed());
            let mut console = if self.vuart {
                Console::attach_vuart(&domain)
            } else {
                Console::attach(&domain)
            }
            .expect("attaching to the console ring");
            // A guest with a virtual UART writes its kernel log to its PV console as well, and
            // stalls once that ring is full: a second reader drains it until the guest stops
            // (a poweroff, which ends its wait).
            let pv_console = self.vuart.then(|| {
                assert!(
                    self.then == Then::PowerOff,
                    "the PV console reader ends at poweroff"
                );
                let mut pv = Console::attach(&domain).expect("attaching to the PV console");
                let within = self.boot_within;
                std::thread::spawn(move || {
                    let end = pv.wait_for("printed by nobody", within);
                    (pv, end)
                })
            });
            let out = console
                .wait_for(self.until, self.boot_within)
                .unwrap_or_else(|e| panic!("{e}"));
            eprintln!("console after {:?}", started.elapsed());
            check(&out);
            let list = xl_list();
            eprintln!("{list}");
            assert!(
                list.lines()
                    .any(|l| l.split_whitespace().next() == Some(self.name.as_str())),
                "xl list does not show {}:\n{list}",
                self.name
            );
            if self.then == Then::PowerOff {
                match console.wait_for("printed by nobody", self.boot_within) {
                    Err(Error::DomainStopped { state, tail, .. }) => {
                        assert_eq!(state, DomainState::Shutdown(0), "poweroff; console: {tail}");
                        eprintln!("the console wait ended with the poweroff ({state})");
                    }
                    other => panic!("expected the wait to end with the poweroff, got {other:?}"),
                }
            }
            drop(console);
            if let Some(reader) = pv_console {
                let (pv, end) = reader.join().expect("the PV console reader");
                assert!(
                    matches!(end, Err(Error::DomainStopped { .. })),
                    "the PV console's wait ends with the poweroff: {end:?}"
                );
                eprintln!("the PV console carried {} bytes", pv.output().len());
            }
            domain.destroy().expect("destroying the domain");
            // The domain is gone from Xen (it may linger as dying for a moment: wait on
            // getdomaininfo, bounded).
            let privcmd = xen_bindings::privcmd::Privcmd::open().unwrap();
            let deadline = Instant::now() + self.gone_within;
            while privcmd.domain_info(domid).is_ok() {
                assert!(Instant::now() < deadline, "domain {domid} still exists");
                std::thread::yield_now();
            }
        }
        let list = xl_list();
        assert!(
            !list.contains(&self.name),
            "xl list still shows {}:\n{list}",
            self.name
        );
        let after = xen_box_testing::held();
        assert_eq!(
            before, after,
            "fds, privcmd mappings or event channels leaked"
        );
    }
}

/// The System RAM ranges the guest's kernel found, as its init printed them
/// (`XEN-BOX-DOMU: ram START-END`, inclusive ends, in hex), with ranges that touch joined (a
/// kernel may list one bank in pieces).
pub fn guest_ram(console: &str) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = console
        .lines()
        .filter_map(|l| l.split("XEN-BOX-DOMU: ram ").nth(1))
        .filter_map(|r| {
            let (start, end) = r.trim().split_once('-')?;
            Some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect();
    ranges.sort_unstable();
    let mut joined: Vec<(u64, u64)> = Vec::new();
    for (start, end) in ranges {
        match joined.last_mut() {
            Some(last) if start == last.1 + 1 => last.1 = end,
            _ => joined.push((start, end)),
        }
    }
    joined
}

fn xl_list() -> String {
    xen_box_testing::run(Command::new("xl").arg("list"))
}
