// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the Xen-box tests of this crate share, on top of `xen-box-testing`: the box's domU
//! kernel, paused PVH domUs, HVM domUs running purpose-built firmware, and the ELF images of
//! the purpose-built x86 guests.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One domU at a time: the box is small and `xl` serialises anyway.
pub static DOMU_LOCK: Mutex<()> = Mutex::new(());

pub use xen_box_testing::guest_image::{
    hvm_firmware_with, pvh_kernel_with, GUEST_BASE, GUEST_ENTRY,
};

pub use xen_box_testing::{in_dom0, run, XlDomain as DomU};

/// The box's domU kernel when running in a Xen dom0, else `None` after saying why.
pub fn xen_env(test: &str) -> Option<PathBuf> {
    xen_box_testing::domu_env(test).map(|env| env.kernel)
}

/// The purpose-built guests are x86 code: on other hosts the tests that run them say so
/// loudly and skip.
pub fn x86_guests_or_skip(test: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        return true;
    }
    xen_box_testing::skip(
        test,
        format_args!(
            "its purpose-built guest is x86 code, and Xen on {} runs no x86 guests",
            std::env::consts::ARCH
        ),
    );
    false
}

/// A paused PVH domU (on Arm, where `xl` knows no guest types, an ordinary guest) booting
/// `kernel` with `vcpus` vCPUs and 128 MiB, destroyed on drop.
pub fn pvh_domu(tag: &str, kernel: &Path, vcpus: u32) -> DomU {
    let name = format!("xioreq-{tag}-{}", std::process::id());
    let guest_type = xen_box_testing::pvh_type_line();
    let domu = DomU::create(
        name,
        &format!(
            "{guest_type}kernel = \"{}\"\nmemory = 128\nvcpus = {vcpus}\n\
             on_poweroff = \"preserve\"\non_crash = \"preserve\"\n",
            kernel.display(),
        ),
        true,
    );
    eprintln!(
        "created paused PVH domU {} (domid {})",
        domu.name, domu.domid
    );
    domu
}

// HVM domUs whose firmware is a purpose-built guest (`hvm_firmware_with`), with a stand-in
// device model (the "traditional" protocol is a xenstore state key; the script emulates
// nothing), for tests of what Xen's HVM emulation sends.

/// `prog` found in `PATH` (the toolstack runs the device model with a path of its own).
pub fn in_path(prog: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(prog))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| panic!("{prog} not found in PATH"))
}

/// The stand-in device model: takes the domid from `-d <domid>`, reports the state the
/// toolstack waits for, and stays alive until the toolstack kills it when the domain goes.
pub fn dm_script(xenstore_write: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Stand-in device model for tests/xen_ioreq_hvm.rs: emulates nothing.\n\
         domid=\n\
         while [ $# -gt 0 ]; do\n\
         \x20 if [ \"$1\" = -d ]; then domid=$2; fi\n\
         \x20 shift\n\
         done\n\
         echo \"stand-in device model for domain $domid\"\n\
         {} /local/domain/0/device-model/$domid/state running || exit 1\n\
         exec sleep 86400\n",
        xenstore_write.display()
    )
}

/// A paused HVM domU running `firmware` with the stand-in device model, destroyed on drop
/// (also when the test panics).
pub fn create_hvm_domu(tag: &str, firmware: &[u8]) -> DomU {
    let dir = std::env::current_dir().unwrap();
    let name = format!("xioreq-{tag}-{}", std::process::id());
    let fw = dir.join(format!("{name}.elf"));
    std::fs::write(&fw, firmware).unwrap();
    let dm = dir.join(format!("{name}-dm.sh"));
    std::fs::write(&dm, dm_script(&in_path("xenstore-write"))).unwrap();
    run(std::process::Command::new("chmod").arg("755").arg(&dm));
    // The toolstack writes the device model's output there.
    std::fs::create_dir_all("/var/log/xen").unwrap();
    let domu = DomU::create(
        name,
        &format!(
            "type = \"hvm\"\nfirmware_override = \"{}\"\n\
             device_model_version = \"qemu-xen-traditional\"\n\
             device_model_override = \"{}\"\n\
             memory = 64\nvcpus = 1\nvga = \"none\"\nvnc = 0\nsdl = 0\nnographic = 1\n\
             serial = \"none\"\nusb = 0\nxen_platform_pci = 0\n\
             on_poweroff = \"preserve\"\non_crash = \"preserve\"\n",
            fw.display(),
            dm.display(),
        ),
        true,
    );
    eprintln!(
        "created paused HVM domU {} (domid {})",
        domu.name, domu.domid
    );
    domu
}

/// What the toolstack and Xen said about `domu`, for failure reports.
pub fn diagnostics(domu: &DomU) -> String {
    let dm_log = std::fs::read_to_string(format!("/var/log/xen/qemu-dm-{}.log", domu.name))
        .unwrap_or_else(|e| format!("(no device-model log: {e})"));
    let output = |args: &[&str]| {
        std::process::Command::new("xl")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let dmesg = output(&["dmesg"]);
    let tail: Vec<&str> = dmesg.lines().rev().take(30).collect();
    format!(
        "device model: {dm_log}\nxl list:\n{}\nxl dmesg (last lines, newest first):\n{}",
        output(&["list"]),
        tail.join("\n")
    )
}

/// The flat binary that GNU `as --32` and `ld` make of `tests/guests/<name>.S` linked at
/// [`GUEST_ENTRY`]: what a test's embedded copy of that guest must equal. `None`, after a loud
/// `SKIPPED`, where x86 guests or the tools are missing.
pub fn assembled_guest(test: &str, name: &str) -> Option<Vec<u8>> {
    if !x86_guests_or_skip(test) {
        return None;
    }
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok()
    };
    if !have("as") || !have("ld") {
        eprintln!("SKIPPED: {test}: GNU as/ld not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("xioreq-guest-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = guest_source(name);
    let (obj, bin) = (
        dir.join(format!("{name}.o")),
        dir.join(format!("{name}.bin")),
    );
    run(std::process::Command::new("as")
        .arg("--32")
        .arg(&src)
        .arg("-o")
        .arg(&obj));
    run(std::process::Command::new("ld")
        .args(["-m", "elf_i386", &format!("-Ttext={GUEST_ENTRY:#x}")])
        .args(["--oformat", "binary"])
        .arg(&obj)
        .arg("-o")
        .arg(&bin));
    let bytes = std::fs::read(&bin).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Some(bytes)
}

/// The value of a device access of up to 4 bytes (little endian; longer accesses keep their
/// low 4 bytes).
pub fn u32_of(data: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(b)
}

/// The assembly source of test guest `name` (`tests/guests/NAME.S`). The crate's directory
/// comes from cargo at run time, so that a test binary built from a checkout elsewhere (a
/// target directory shared between checkouts) still finds the sources of this one; the
/// directory it was built in is the fallback outside cargo.
pub fn guest_source(name: &str) -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join(format!("tests/guests/{name}.S"))
}
