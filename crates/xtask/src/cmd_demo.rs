// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box demo`: runs the xen-bindings example `xen-info` in dom0 next to
//! the toolstack's own `xl info` / `xl list` / `xenstore-ls`, for comparison.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::bail;
use crate::cmd_run::ready;
use crate::config::BoxConfig;
use crate::payload::{boot_with, timed, Payload};
use crate::report::{self, Verdict};
use crate::stack::Stack;
use crate::util::{say, workspace_root, Context, Result};

fn build_example(name: &str) -> Result<PathBuf> {
    let root = workspace_root();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--example", name, "-p", "xen-bindings"])
        .arg("--message-format=json")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context(|| "cannot run cargo build --example".into())?;
    if !out.status.success() {
        bail!(
            "cargo build --example {name} -p xen-bindings failed with {}",
            out.status
        );
    }
    if let Some(exe) = crate::cargo_json::executable_named(&out.stdout, name) {
        return Ok(exe);
    }
    bail!("cargo reported no executable for example {name}")
}

/// Boots once and shows `xl` and `xen-info` output; on aarch64, the bridge instead (a domU
/// reading entropy from the unmodified vhost-device-rng through xen-vhost-frontend).
pub fn demo(stack: Stack, cfg: &BoxConfig) -> Result<i32> {
    if cfg.is_aarch64() {
        return crate::arm64::cmd_bridge::bridge_demo(stack, cfg);
    }
    let src = workspace_root().join("crates/xen-bindings/examples/xen-info.rs");
    if !src.is_file() {
        say(format!(
            "FAILED: the example {} does not exist yet: nothing to demonstrate",
            src.display()
        ));
        return Ok(1);
    }
    let exe = build_example("xen-info")?;
    let art = ready(cfg, stack)?;
    let secs = 300;
    let script = format!(
        "#!/bin/sh\ncd /xen-box/files\n\
         echo '===== xl info (toolstack) ====='; xl info\n\
         echo '===== xl list (toolstack) ====='; xl list\n\
         echo '===== xenstore-ls -f /local/domain/0 (toolstack) ====='\n\
         xenstore-ls -f /local/domain/0 | head -40\n\
         echo '===== xen-info (xen-bindings example) ====='\n{}exit $rc\n",
        timed("./xen-info", secs, "xen-info")
    );
    let p = Payload::one_step(vec![("xen-info".into(), exe)], script, secs);
    let out = boot_with(&art, &p, "demo")?;
    let v = report::verdict(&out);
    say(format!("{}: {}", stack.name(), report::timings(&out)));
    match v {
        Verdict::Exited(0) => Ok(0),
        _ => {
            report::print_failure(&out, &v);
            Ok(v.code().max(1))
        }
    }
}
