// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The QEMU command line of the aarch64 box.
//!
//! `virt` with `virtualization=on` gives Xen EL2 and GICv3; TCG only (the host
//! is x86_64). Xen is the `-kernel`; QEMU's guest-loader devices place dom0's
//! kernel and initramfs in RAM and describe them in the device tree as Xen
//! multiboot modules. Xen's console is the PL011 at 0x9000000, which QEMU
//! writes to the serial log file the harness follows.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::qemu::Boot;
use crate::util::{Context, Result};

/// Where guest-loader puts dom0's kernel: above Xen, with room for a 64 MB Image.
const KERNEL_ADDR: &str = "0x49000000";
/// Where guest-loader puts dom0's initramfs (grows upwards into free RAM).
const INITRD_ADDR: &str = "0x4d000000";

/// Xen's command line.
pub const XEN_CMDLINE: &str = "console=dtuart dtuart=/pl011@9000000 dom0_mem=1536M \
                               dom0_max_vcpus=1 bootscrub=0 loglvl=all guest_loglvl=all";
/// dom0's command line (`panic=-1`: a dom0 panic reboots, and QEMU, started
/// with `-no-reboot`, exits: the harness sees no exit marker). [`command`]
/// appends `XEN_BOX_DOM0_KERNEL=...` (see [`Dom0Kernel::cmdline_env`](crate::kernel::Dom0Kernel::cmdline_env)).
pub const DOM0_CMDLINE: &str = "console=hvc0 earlycon=xen rdinit=/init panic=-1 loglevel=4";

/// guest-loader splits its options on ',': a literal comma is doubled.
fn esc(s: &str) -> String {
    s.replace(',', ",,")
}

/// The qemu-system-aarch64 command for `b`, with stdout/stderr to `out`.
pub fn command(b: &Boot<'_>, out: File) -> Result<Command> {
    let err = out.try_clone().context(|| "dup qemu output file".into())?;
    let path = |p: &Path| esc(&p.to_string_lossy());
    let mut cmd = crate::host_qemu::command(crate::host_qemu::Emulator::Aarch64)?;
    cmd.args(["-machine", "virt,virtualization=on,gic-version=3"])
        .args(["-accel", "tcg,thread=multi", "-cpu", "cortex-a57"])
        // 5 GiB: dom0's 1.5 GiB, and room for a domU larger than an Arm guest's first RAM
        // bank (3 GiB), whose RAM continues in bank 1. QEMU allocates only what is touched.
        .args(["-smp", "2", "-m", "5120"])
        .args(["-display", "none", "-monitor", "none", "-net", "none"])
        .arg("-no-reboot")
        .arg("-serial")
        .arg(format!("file:{}", b.log.display()))
        .arg("-kernel")
        .arg(&b.art.xen)
        .arg("-append")
        .arg(XEN_CMDLINE)
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={KERNEL_ADDR},kernel={},bootargs={}",
            path(&b.art.vmlinuz),
            esc(&format!(
                "{DOM0_CMDLINE} {}",
                b.art.config.dom0_kernel.cmdline_env()
            ))
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={INITRD_ADDR},initrd={}",
            path(b.initrd)
        ))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Dom0Kernel;

    #[test]
    fn commas_in_guest_loader_values_are_doubled() {
        assert_eq!(esc("/a,b/c"), "/a,,b/c");
        assert!(!DOM0_CMDLINE.contains(','));
        for k in [Dom0Kernel::Debian, Dom0Kernel::Eventfd] {
            assert!(!k.cmdline_env().contains(','));
        }
    }
}
