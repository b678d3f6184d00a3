// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Prints what `xl info` and `xl list` print, through privcmd hypercalls made in pure Rust,
//! followed by a xenstore subtree.
//!
//! Usage (as root in a Xen dom0): `xen-info [XENSTORE_PATH]` (default `/local/domain/0`).
//!
//! Domain names and the subtree come from xenstore. This crate's own xenstore client is not
//! wired in yet, so this example reads them with the `xenstore-read`/`xenstore-ls` commands
//! for now and says so in its output.

use std::process::{Command, ExitCode};

use xen_bindings::privcmd::Privcmd;

fn xenstore_read(path: &str) -> Option<String> {
    let out = Command::new("xenstore-read").arg(path).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() -> ExitCode {
    let subtree = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/local/domain/0".into());
    let privcmd = match Privcmd::open() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xen-info: {e} (run as root in a Xen dom0)");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = report(&privcmd, &subtree) {
        eprintln!("xen-info: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn report(p: &Privcmd, subtree: &str) -> Result<(), xen_bindings::privcmd::Error> {
    let v = p.xen_version()?;
    let phys = p.physinfo()?;
    println!("{:<23}: {}", "xen_version", v);
    println!("{:<23}: {}.{}", "xen_major", v.major, v.minor);
    println!("{:<23}: {}", "xen_caps", p.xen_capabilities()?);
    println!("{:<23}: {}", "nr_cpus", phys.nr_cpus);
    println!("{:<23}: {}", "nr_nodes", phys.nr_nodes);
    println!("{:<23}: {}", "cores_per_socket", phys.cores_per_socket);
    println!("{:<23}: {}", "threads_per_core", phys.threads_per_core);
    println!("{:<23}: {}", "cpu_mhz", phys.cpu_khz / 1000);
    println!("{:<23}: {}", "virt_caps", phys.virt_caps().join(" "));
    println!("{:<23}: {}", "total_memory", phys.total_memory >> 20);
    println!("{:<23}: {}", "free_memory", phys.free_memory >> 20);
    println!(
        "{:<23}: domctl {:#x}, sysctl {:#x}",
        "interface_versions",
        p.domctl_version()?,
        p.sysctl_version()?
    );
    println!();

    println!(
        "(domain names and the subtree below are read with the xenstore-read/xenstore-ls commands"
    );
    println!(" until this crate's xenstore client is used here)");
    println!(
        "{:<40} {:>5} {:>5} {:>5} {:>10} {:>9}",
        "Name", "ID", "Mem", "VCPUs", "State", "Time(s)"
    );
    for d in p.domains()? {
        let name = xenstore_read(&format!("/local/domain/{}/name", d.domid))
            .unwrap_or_else(|| "(null)".into());
        println!(
            "{:<40} {:>5} {:>5} {:>5} {:>10} {:>9.1}",
            name,
            d.domid,
            d.memory >> 20,
            d.online_vcpus,
            d.state_string(),
            d.cpu_time_ns as f64 / 1e9
        );
    }
    println!();

    println!("xenstore {subtree}:");
    match Command::new("xenstore-ls").args(["-f", subtree]).output() {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => println!(
            "  (xenstore-ls failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("  (cannot run xenstore-ls: {e})"),
    }
    Ok(())
}
