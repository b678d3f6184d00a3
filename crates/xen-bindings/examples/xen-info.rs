// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Prints what `xl info` and `xl list` print, through privcmd hypercalls made in pure Rust,
//! followed by a xenstore subtree.
//!
//! Usage (as root in a Xen dom0): `xen-info [XENSTORE_PATH]` (default `/local/domain/0`).
//! Domain names and the subtree come from xenstore, through this crate's own client.

use std::process::ExitCode;

use xen_bindings::privcmd::Privcmd;
use xen_bindings::xenstore::Xenstore;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

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

fn report(p: &Privcmd, subtree: &str) -> AnyResult<()> {
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

    let mut xs = Xenstore::open()?;
    println!(
        "{:<40} {:>5} {:>5} {:>5} {:>10} {:>9}",
        "Name", "ID", "Mem", "VCPUs", "State", "Time(s)"
    );
    for d in p.domains()? {
        let name = xs
            .read_string(&format!("/local/domain/{}/name", d.domid))
            .unwrap_or_else(|_| "(null)".into());
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
    // Bounded, so a huge tree does not flood the terminal.
    let mut budget = 500;
    print_subtree(&mut xs, subtree, &mut budget)
}

/// Prints `path = "value"` for `path` and everything below it, like `xenstore-ls -f`.
fn print_subtree(xs: &mut Xenstore, path: &str, budget: &mut usize) -> AnyResult<()> {
    if *budget == 0 {
        return Ok(());
    }
    *budget -= 1;
    let value = xs.read(path)?;
    println!("{path} = {:?}", String::from_utf8_lossy(&value));
    for child in xs.directory(path)? {
        let child_path = if path == "/" {
            format!("/{child}")
        } else {
            format!("{path}/{child}")
        };
        print_subtree(xs, &child_path, budget)?;
    }
    Ok(())
}
