// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Boots Xen + the dom0 under QEMU (TCG) and follows the serial log.
//!
//! Recipe notes: KVM on these hosts cannot run Xen, so QEMU emulates
//! (`-accel tcg`), single-threaded (see [`boot`]). `-cpu max,-rdtscp` avoids
//! a TCG SVM bug with RDTSCP in HVM guests; Xen needs `smap=0` or the PV dom0 dies on its first page fault,
//! and `spec-ctrl=eager-fpu` or processes lose vector registers across
//! context switches once a domU runs (see [`boot`]).
//! `-no-reboot` turns a Xen reboot (after a dom0 crash) into a QEMU exit. A QMP socket lets
//! the harness ask a box that hangs what its CPUs are doing (`crate::qmp`); for that Xen gets
//! `nmi=fatal`, so that an NMI makes it print where it was.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::image::Artifacts;
use crate::util::{Context, Result, Stopwatch};

/// Lines that mean the box itself failed (hypervisor or dom0 kernel).
const DISASTERS: &[&str] = &["Panic on CPU", "Kernel panic", "Domain 0 crashed", "Oops:"];

/// What happened during one boot.
pub struct Outcome {
    /// Status from the nonce-tagged exit marker, if it appeared.
    pub exit_status: Option<i32>,
    /// QEMU was killed because the box exceeded a time limit.
    pub timed_out: bool,
    /// Which limit (when `timed_out`).
    pub timeout_reason: String,
    /// QEMU's own exit status (None if killed).
    pub qemu_status: Option<ExitStatus>,
    /// Host seconds since QEMU start when dom0's init started.
    pub init_at: Option<f64>,
    /// ... when the toolstack was up.
    pub toolstack_at: Option<f64>,
    /// ... when the payload started.
    pub payload_at: Option<f64>,
    /// ... when the exit marker appeared.
    pub exit_at: Option<f64>,
    /// Total wall time of the boot.
    pub wall: f64,
    /// Hypervisor/kernel failure lines seen.
    pub disasters: Vec<String>,
    /// QEMU did not power off after the exit marker and was killed.
    pub no_poweroff: bool,
    /// Serial log, `\r` removed.
    pub log: String,
    /// QEMU's stdout/stderr.
    pub qemu_output: String,
    /// Where the serial log is.
    pub log_path: PathBuf,
    /// What the emulated CPUs were doing when a time limit killed the box ([`crate::qmp`]);
    /// empty otherwise.
    pub hang_report: String,
}

/// How to boot.
pub struct Boot<'a> {
    /// Stack artifacts.
    pub art: &'a Artifacts,
    /// Full initramfs (dom0 image + payload).
    pub initrd: &'a Path,
    /// Serial log destination.
    pub log: &'a Path,
    /// Limit for the whole boot.
    pub timeout: Duration,
    /// Limit from QEMU start to the payload start.
    pub boot_limit: Duration,
    /// Limit between progress markers (payload start, test begin/end), so a
    /// dom0 that hangs is noticed long before the sum of all payload limits.
    pub step_limit: Duration,
    /// Exit marker nonce.
    pub nonce: &'a str,
    /// Print payload output live.
    pub echo: bool,
}

/// Multiboot module list: QEMU separates modules with ',', so a literal ','
/// must be doubled.
fn modules_arg(kernel: &Path, cmdline: &str, initrd: &Path) -> String {
    let esc = |s: &str| s.replace(',', ",,");
    format!(
        "{} {},{}",
        esc(&kernel.to_string_lossy()),
        esc(cmdline),
        esc(&initrd.to_string_lossy())
    )
}

/// Boots, follows the log until QEMU exits or the time limit, and reports.
pub fn boot(b: &Boot<'_>) -> Result<Outcome> {
    // bootscrub=0: scrubbing 3 GiB in emulation only burns host CPU that the
    // (shared, 2-core) host needs for dom0.
    //
    // spec-ctrl=eager-fpu: the emulated CPU is an AMD one, for which Xen
    // defaults to lazy FPU switching (it leaves a vCPU's vector registers in
    // place, sets CR0.TS and loads the next vCPU's on its first #NM). In this
    // emulated machine that chain loses state: while a domU's vCPU ran next to
    // dom0, dom0 processes read other contexts' XMM/YMM values (a domU's
    // included) and died of the same heap corruption `xl` died of, crashed or
    // hung. With eager switching (every switch saves and loads the whole
    // state) it did not happen once; xen-box-testing's cpu_state test checks
    // it.
    let xen_cmd = "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 \
                   loglvl=all guest_loglvl=all smap=0 bootscrub=0 spec-ctrl=eager-fpu nmi=fatal";
    let dom0_cmd = format!(
        "console=hvc0 earlyprintk=xen panic=-1 loglevel=4 {}",
        b.art.config.dom0_kernel.cmdline_env()
    );
    let _ = std::fs::remove_file(b.log);
    File::create(b.log).context(|| format!("cannot create {}", b.log.display()))?;
    let qemu_out_path = b.log.with_extension("qemu.txt");
    let qemu_out =
        File::create(&qemu_out_path).context(|| "cannot create qemu output file".into())?;
    let qemu_err = qemu_out.try_clone().context(|| "dup".into())?;
    let mut cmd = if b.art.config.is_aarch64() {
        // The aarch64 machine; the log is followed exactly as below.
        crate::arm64::qemu::command(b, qemu_out)?
    } else {
        let mut cmd = crate::host_qemu::command(crate::host_qemu::Emulator::X86_64)?;
        // thread=single: with multi-threaded TCG the emulated CPU now and then
        // saved Xen's own registers (the RIP just past its VMRUN, CS 0xe008,
        // its GDT, IDT and stack) as a busy domU's vCPU state at a VM exit; the
        // domU then triple-faulted and Xen shut it down. Busy HVM/PVH domUs of
        // every test could die of it, more often on a loaded host: 5 of 8 of
        // xen-box-testing cpu_state's spinning domUs on trixie, against 0 of 8
        // run single-threaded. The race is between QEMU's vCPU threads, not in
        // Xen or the guest. One thread for both vCPUs is also faster here: the
        // x86 test run took 473 s for both stacks, against 745 to 1127 s.
        cmd.args([
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max,-rdtscp",
            "-m",
            "4096",
        ])
        // One emulated CPU: with two, Linux domUs (ours and xl's alike, on both Xen
        // releases and with QEMU 7.2 and 10.0) now and then ran user code with the
        // kernel's GS base pairing and oopsed at their first user processes, about 1 in 20
        // boots. It needs QEMU's second vCPU, not Xen's use of it: it still happened with
        // that CPU taken offline in Xen (1 in 11 boots), never with `-smp 1` (0 in 100).
        // Under single-threaded TCG the second vCPU adds no host parallelism; dom0 is
        // offered two vCPUs, which Xen time-slices (trixie's kernel brings up one). The
        // xtask README has the whole record.
        .args(["-smp", "1", "-machine", "pc", "-nographic", "-no-reboot"])
        .args(["-monitor", "none", "-net", "none"])
        .arg("-serial")
        .arg(format!("file:{}", b.log.display()))
        .arg("-kernel")
        .arg(&b.art.xen)
        .arg("-append")
        .arg(xen_cmd)
        .arg("-initrd")
        .arg(modules_arg(&b.art.vmlinuz, &dom0_cmd, b.initrd))
        .stdin(Stdio::null())
        .stdout(qemu_out)
        .stderr(qemu_err);
        cmd
    };
    // Asked only if the box stops making progress (see `crate::qmp`). A short path: a unix
    // socket's must fit in 108 bytes, and the cache directory may be deep.
    let qmp_socket = std::env::temp_dir().join(format!("xen-box-{}.qmp", b.nonce));
    let _ = std::fs::remove_file(&qmp_socket);
    cmd.arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_socket.display()));
    let sw = Stopwatch::start();
    let mut child = cmd
        .spawn()
        .context(|| format!("cannot start {}", crate::util::show(&cmd)))?;
    let mut o = Outcome {
        exit_status: None,
        timed_out: false,
        timeout_reason: String::new(),
        qemu_status: None,
        init_at: None,
        toolstack_at: None,
        payload_at: None,
        exit_at: None,
        wall: 0.0,
        disasters: Vec::new(),
        no_poweroff: false,
        log: String::new(),
        qemu_output: String::new(),
        log_path: b.log.to_path_buf(),
        hang_report: String::new(),
    };
    let mut f = File::open(b.log).context(|| format!("cannot open {}", b.log.display()))?;
    let mut pos = 0u64;
    let mut partial = String::new();
    let exit_marker = format!("XEN-BOX-EXIT {} status=", b.nonce);
    let mut in_payload = false;
    let mut last_progress: Option<f64> = None;
    loop {
        let status = child.try_wait().context(|| "waiting for qemu".into())?;
        // Read whatever QEMU appended since the last look.
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(pos))
            .context(|| "seek serial log".into())?;
        f.read_to_end(&mut buf)
            .context(|| "read serial log".into())?;
        pos += buf.len() as u64;
        partial.push_str(&String::from_utf8_lossy(&buf).replace('\r', ""));
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            let line = line.trim_end_matches('\n');
            let t = sw.secs();
            if line.contains("XEN-BOX: dom0 init reached") && o.init_at.is_none() {
                o.init_at = Some(t);
            } else if line.contains("XEN-BOX: toolstack ") && o.toolstack_at.is_none() {
                o.toolstack_at = Some(t);
            } else if line.contains("XEN-BOX: payload start") && o.payload_at.is_none() {
                o.payload_at = Some(t);
                last_progress = Some(t);
                in_payload = true;
                continue;
            }
            if in_payload
                && (line.contains("XEN-BOX-TEST-BEGIN ") || line.contains("XEN-BOX-TEST-END "))
            {
                last_progress = Some(t);
            }
            if let Some(i) = line.find(&exit_marker) {
                let rest = &line[i + exit_marker.len()..];
                let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                o.exit_status = n.parse().ok();
                o.exit_at = Some(t);
                in_payload = false;
            }
            if DISASTERS.iter().any(|d| line.contains(d)) && o.disasters.len() < 20 {
                o.disasters.push(line.to_string());
            }
            if b.echo && in_payload {
                // Xen's own messages share the serial line and can land in
                // the middle of a payload line: show only the payload part.
                let shown = line.find("(XEN) ").map_or(line, |i| &line[..i]);
                if !shown.is_empty() || !line.starts_with("(XEN) ") {
                    println!("{shown}");
                }
            }
            o.log.push_str(line);
            o.log.push('\n');
        }
        if let Some(st) = status {
            o.qemu_status = Some(st);
            break;
        }
        let t = sw.secs();
        if o.exit_at.is_some_and(|e| t - e > 60.0) {
            o.no_poweroff = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        let reason = if t > b.timeout.as_secs_f64() {
            Some(format!("the whole run exceeded {} s", b.timeout.as_secs()))
        } else if o.payload_at.is_none() && t > b.boot_limit.as_secs_f64() {
            Some(format!(
                "dom0 did not start the payload within {} s of QEMU start",
                b.boot_limit.as_secs()
            ))
        } else if o.exit_at.is_none()
            && last_progress.is_some_and(|p| t - p > b.step_limit.as_secs_f64())
        {
            Some(format!(
                "no progress from dom0 for {} s (payload step limit + margin)",
                b.step_limit.as_secs()
            ))
        } else {
            None
        };
        if let Some(r) = reason {
            o.timed_out = true;
            o.timeout_reason = r;
            let nmi = !b.art.config.is_aarch64();
            o.hang_report = crate::qmp::hang_report(&qmp_socket, nmi);
            if nmi {
                // Xen prints its answer to the NMI, then reboots: QEMU exits.
                for _ in 0..50 {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // What QEMU wrote between the last look and its end (context for reports).
    let mut rest = Vec::new();
    if f.seek(SeekFrom::Start(pos)).is_ok() && f.read_to_end(&mut rest).is_ok() {
        partial.push_str(&String::from_utf8_lossy(&rest).replace('\r', ""));
    }
    o.log.push_str(&partial);
    o.wall = sw.secs();
    o.qemu_output = std::fs::read_to_string(&qemu_out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&qmp_socket);
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_commas_are_doubled() {
        let a = modules_arg(Path::new("/k"), "console=hvc0 a=1,2", Path::new("/i,x"));
        assert_eq!(a, "/k console=hvc0 a=1,,2,/i,,x");
    }
}
