// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A payload for dom0: files and a driver script, packed as an uncompressed
//! newc cpio appended to the dom0 initramfs (the kernel unpacks both into the
//! same root). The driver script is `/xen-box/run.sh`, the files are under
//! `/xen-box/files/`; dom0's init runs the script and reports its status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cpio::CpioWriter;
use crate::image::Artifacts;
use crate::qemu::{self, Boot, Outcome};
use crate::util::{mkdirs, say, Context, Result};

/// Time allowed for Xen + dom0 to boot and power off, on top of the payload's
/// own limit. TCG on a busy 2-core host needs 20-60 s; leave ample room.
pub fn boot_allowance() -> Duration {
    let s = std::env::var("XEN_BOX_BOOT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    Duration::from_secs(s)
}

/// Files and the script that drives them.
pub struct Payload {
    /// (name under /xen-box/files, host path)
    pub files: Vec<(String, PathBuf)>,
    /// Body of /xen-box/run.sh (a POSIX sh script).
    pub script: String,
    /// Payload time limit; the boot gets `boot_allowance()` more.
    pub timeout: Duration,
    /// Longest single step (one program under `timed`); the host kills the
    /// box if dom0 shows no progress for this long plus a margin.
    pub step: Duration,
    /// Print payload output live.
    pub echo: bool,
}

impl Payload {
    /// `files` and `script` under one limit of `secs` seconds, for the whole payload and for
    /// each of its steps, with the output printed live.
    pub fn one_step(files: Vec<(String, PathBuf)>, script: String, secs: u64) -> Payload {
        Payload {
            files,
            script,
            timeout: Duration::from_secs(secs),
            step: Duration::from_secs(secs),
            echo: true,
        }
    }
}

/// A fresh nonce for the exit marker.
fn nonce() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", t, std::process::id())
}

/// Boots `art` with `p` and returns what happened.
pub fn boot_with(art: &Artifacts, p: &Payload, label: &str) -> Result<Outcome> {
    let runs = art.config.cache_dir(art.stack).join("runs");
    mkdirs(&runs)?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = runs.join(format!("{stamp}-{}-{label}", std::process::id()));
    let initrd = base.with_extension("initrd");
    let log = base.with_extension("serial.log");
    let nonce = nonce();

    // dom0 image (already padded to 512) followed by the payload cpio.
    std::fs::copy(&art.dom0, &initrd).context(|| format!("cannot copy {}", art.dom0.display()))?;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&initrd)
        .context(|| format!("cannot open {}", initrd.display()))?;
    let mut w = CpioWriter::new(std::io::BufWriter::new(f));
    let io = (|| -> std::io::Result<()> {
        w.dir("xen-box", 0o755)?;
        w.dir("xen-box/files", 0o755)?;
        w.file("xen-box/nonce", 0o644, nonce.as_bytes())?;
        w.file("xen-box/run.sh", 0o755, p.script.as_bytes())?;
        Ok(())
    })();
    io.context(|| "cannot write the payload cpio".into())?;
    for (name, path) in &p.files {
        let data = std::fs::read(path).context(|| format!("cannot read {}", path.display()))?;
        w.file(&format!("xen-box/files/{name}"), 0o755, &data)
            .context(|| "cannot write the payload cpio".into())?;
    }
    w.finish()
        .and_then(|mut b| b.flush())
        .context(|| "cannot finish the payload cpio".into())?;

    let timeout = boot_allowance() + p.timeout;
    say(format!(
        "booting {} (Xen {}), limit {} s, serial log {}",
        art.stack.name(),
        art.stack.xen_version(),
        timeout.as_secs(),
        log.display()
    ));
    let out = qemu::boot(&Boot {
        art,
        initrd: &initrd,
        log: &log,
        timeout,
        boot_limit: boot_allowance(),
        step_limit: p.step + Duration::from_secs(90),
        nonce: &nonce,
        echo: p.echo,
    });
    let _ = std::fs::remove_file(&initrd);
    prune_runs(&runs);
    out
}

/// Boots once running the shell script `body`, saved in dom0 as `/tmp/<file>`
/// and run under a `secs` limit (also the step limit), with its output echoed.
pub fn boot_script(
    art: &Artifacts,
    file: &str,
    body: &str,
    secs: u64,
    label: &str,
) -> Result<Outcome> {
    let script = format!(
        "#!/bin/sh\ncat > /tmp/{file} <<'XEN_BOX_EOF'\n{body}\nXEN_BOX_EOF\n{}exit $rc\n",
        timed(&format!("sh /tmp/{file}"), secs, "payload")
    );
    let p = Payload::one_step(Vec::new(), script, secs);
    boot_with(art, &p, label)
}

/// Keeps the newest 40 files of the runs directory.
fn prune_runs(runs: &Path) {
    if let Ok(rd) = std::fs::read_dir(runs) {
        let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        v.sort();
        let n = v.len().saturating_sub(40);
        for p in &v[..n] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Script line running `cmd` under busybox `timeout`, printing a marker the
/// host recognises if the limit hit (busybox kills with SIGKILL: status 137).
pub fn timed(cmd: &str, secs: u64, what: &str) -> String {
    format!(
        "t0=$(cut -d. -f1 /proc/uptime)\n\
         timeout -s KILL {secs} {cmd}\n\
         rc=$?\n\
         t1=$(cut -d. -f1 /proc/uptime)\n\
         if [ $rc = 137 ] && [ $((t1 - t0)) -ge $(({secs} - 1)) ]; then echo; echo \"XEN-BOX-TIMEOUT {what} after {secs} s\"; fi\n"
    )
}
