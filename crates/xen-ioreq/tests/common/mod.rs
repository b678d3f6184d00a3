// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the Xen-box tests of this crate share: knowing whether they run in a Xen dom0, running
//! the toolstack, paused domUs that are destroyed on drop, and the ELF images of the
//! purpose-built x86 guests.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One domU at a time: the box is small and `xl` serialises anyway.
pub static DOMU_LOCK: Mutex<()> = Mutex::new(());

/// Physical load address of a purpose-built guest image; its code starts 0x100 bytes in.
pub const GUEST_BASE: u32 = 0x10_0000;
/// Where a purpose-built guest is entered (32-bit flat protected mode, paging off).
pub const GUEST_ENTRY: u32 = GUEST_BASE + 0x100;

/// Whether this process runs in a Xen dom0; says loudly why `test` is skipped when not, and
/// fails when the Xen box promised one (`XEN_BOX=1`).
pub fn in_dom0(test: &str) -> bool {
    if Path::new("/dev/xen/privcmd").exists() {
        return true;
    }
    assert!(
        !in_box(),
        "{test}: XEN_BOX=1 but /dev/xen/privcmd is missing"
    );
    eprintln!("SKIPPED: {test}: not running in a Xen dom0");
    false
}

/// The box's domU kernel when running in a Xen dom0, else `None` after saying why.
pub fn xen_env(test: &str) -> Option<PathBuf> {
    if !in_dom0(test) {
        return None;
    }
    match std::env::var_os("XEN_BOX_DOMU_KERNEL") {
        Some(k) => Some(PathBuf::from(k)),
        None => {
            assert!(
                !in_box(),
                "{test}: XEN_BOX=1 but XEN_BOX_DOMU_KERNEL is unset"
            );
            eprintln!("SKIPPED: {test}: XEN_BOX_DOMU_KERNEL not set");
            None
        }
    }
}

fn in_box() -> bool {
    std::env::var_os("XEN_BOX").is_some_and(|v| v == "1")
}

/// The purpose-built guests are x86 code: on other hosts the tests that run them say so
/// loudly and skip.
pub fn x86_guests_or_skip(test: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        return true;
    }
    eprintln!(
        "SKIPPED: {test}: its purpose-built guest is x86 code, and Xen on {} runs no x86 guests",
        std::env::consts::ARCH
    );
    false
}

/// Runs `cmd`, fails the test when it fails, and returns its standard output.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A domU created paused by `xl`, destroyed on drop (also when the test panics). Tests keep
/// it after it shuts down (`on_poweroff = "preserve"`), so that the drop always finds it.
pub struct DomU {
    /// Its `xl` name.
    pub name: String,
    /// Its domain id.
    pub domid: u16,
}

impl DomU {
    /// Creates domU `name` paused from the `xl` configuration `cfg` (without its `name`
    /// line), written beside the test's other files in the current directory.
    pub fn create_paused(name: String, cfg: &str) -> DomU {
        let path = std::env::current_dir().unwrap().join(format!("{name}.cfg"));
        std::fs::write(&path, format!("name = \"{name}\"\n{cfg}")).unwrap();
        run(Command::new("xl").arg("create").arg("-p").arg(&path));
        let id = run(Command::new("xl").arg("domid").arg(&name));
        let domid = id.trim().parse().expect("xl domid prints a number");
        DomU { name, domid }
    }

    /// A paused PVH domU (on Arm, where `xl` knows no guest types, an ordinary guest) booting
    /// `kernel` with `vcpus` vCPUs and 128 MiB.
    pub fn create(tag: &str, kernel: &Path, vcpus: u32) -> DomU {
        let name = format!("xioreq-{tag}-{}", std::process::id());
        let guest_type = if cfg!(target_arch = "aarch64") {
            ""
        } else {
            "type = \"pvh\"\n"
        };
        let domu = DomU::create_paused(
            name,
            &format!(
                "{guest_type}kernel = \"{}\"\nmemory = 128\nvcpus = {vcpus}\n\
                 on_poweroff = \"preserve\"\non_crash = \"preserve\"\n",
                kernel.display(),
            ),
        );
        eprintln!(
            "created paused PVH domU {} (domid {})",
            domu.name, domu.domid
        );
        domu
    }

    /// Unpauses it.
    pub fn unpause(&self) {
        run(Command::new("xl").arg("unpause").arg(&self.name));
    }
}

impl Drop for DomU {
    fn drop(&mut self) {
        let ok = Command::new("xl")
            .arg("destroy")
            .arg(&self.name)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("warning: xl destroy {} failed", self.name);
        }
    }
}

/// `XEN_ELFNOTE_PHYS32_ENTRY` (Xen public/elfnote.h): the 32-bit PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Where [`pvh_kernel_with`] puts its note.
const NOTE_OFF: u32 = 0x80;

/// A minimal ELF32 PVH kernel: one loadable segment holding the headers, a
/// `XEN_ELFNOTE_PHYS32_ENTRY` note and `code` (linked to run at `GUEST_ENTRY`).
pub fn pvh_kernel_with(code: &[u8]) -> Vec<u8> {
    let mut f = elf32_image(code, 2);
    // PT_NOTE over the note.
    let ph = 52 + 32;
    put32(&mut f, ph, 4);
    put32(&mut f, ph + 4, NOTE_OFF);
    put32(&mut f, ph + 8, GUEST_BASE + NOTE_OFF);
    put32(&mut f, ph + 12, GUEST_BASE + NOTE_OFF);
    put32(&mut f, ph + 16, 20);
    put32(&mut f, ph + 20, 20);
    put32(&mut f, ph + 24, 4);
    put32(&mut f, ph + 28, 4);
    // The note: name "Xen", 4-byte descriptor = the 32-bit entry point.
    let n = NOTE_OFF as usize;
    put32(&mut f, n, 4);
    put32(&mut f, n + 4, 4);
    put32(&mut f, n + 8, XEN_ELFNOTE_PHYS32_ENTRY);
    f[n + 12..n + 16].copy_from_slice(b"Xen\0");
    put32(&mut f, n + 16, GUEST_ENTRY);
    f
}

/// A minimal ELF32 image the toolstack loads as HVM firmware: one loadable segment holding
/// the headers and `code` (linked to run at `GUEST_ENTRY`), entered at `e_entry`. It has no
/// Xen notes: an image with them is taken for a PV/PVH kernel and refused as firmware.
pub fn hvm_firmware_with(code: &[u8]) -> Vec<u8> {
    elf32_image(code, 1)
}

/// ELF header and a PT_LOAD of the whole file at `GUEST_BASE` (program header 0) of an image
/// with `phnum` program headers, `code` at offset 0x100.
fn elf32_image(code: &[u8], phnum: u16) -> Vec<u8> {
    let mut f = vec![0u8; 0x100];
    f.extend_from_slice(code);
    let len = u32::try_from(f.len()).expect("a guest image fits in 4 GiB");
    // ELF header: 32-bit, little endian, version 1, executable, i386.
    f[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1]);
    put16(&mut f, 16, 2); // e_type ET_EXEC
    put16(&mut f, 18, 3); // e_machine EM_386
    put32(&mut f, 20, 1); // e_version
    put32(&mut f, 24, GUEST_ENTRY); // e_entry
    put32(&mut f, 28, 52); // e_phoff
    put16(&mut f, 40, 52); // e_ehsize
    put16(&mut f, 42, 32); // e_phentsize
    put16(&mut f, 44, phnum); // e_phnum
                              // PT_LOAD: the whole file at GUEST_BASE, RWX.
    let ph = 52;
    put32(&mut f, ph, 1);
    put32(&mut f, ph + 4, 0);
    put32(&mut f, ph + 8, GUEST_BASE);
    put32(&mut f, ph + 12, GUEST_BASE);
    put32(&mut f, ph + 16, len);
    put32(&mut f, ph + 20, len);
    put32(&mut f, ph + 24, 7);
    put32(&mut f, ph + 28, 0x1000);
    f
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
