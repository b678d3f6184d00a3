// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box setup` and `xen-box run`.

use std::path::{Path, PathBuf};

use crate::config::BoxConfig;
use crate::image::{self, Artifacts};
use crate::payload::{boot_with, timed, Payload};
use crate::report::{self, Verdict};
use crate::stack::Stack;
use crate::util::{say, shell_quote, Result, Stopwatch};
use crate::{bail, host, Opts};

/// Installs host tools and prepares the stacks' images.
pub fn setup(o: &Opts) -> Result<i32> {
    let sw = Stopwatch::start();
    let installed = host::ensure_tools()?;
    if installed.is_empty() {
        say("host tools: all present");
    }
    for s in &o.stacks {
        let art = if o.config.is_aarch64() {
            crate::arm64::ready(&o.config, *s, o.refresh)?
        } else {
            crate::kernel::apply(image::prepare(&o.config, *s, o.refresh)?.0)?
        };
        print!("{}", art.manifest);
        say(format!(
            "{} ready: {}, {}, {}",
            s.name(),
            art.xen.display(),
            art.vmlinuz.display(),
            art.dom0.display()
        ));
    }
    say(format!("setup done in {:.1} s", sw.secs()));
    Ok(0)
}

/// Host tools + image for one stack of the box `cfg` (what every booting command needs
/// first).
pub fn ready(cfg: &BoxConfig, stack: Stack) -> Result<Artifacts> {
    if cfg.is_aarch64() {
        return crate::arm64::ready(cfg, stack, false);
    }
    host::ensure_tools()?;
    crate::kernel::apply(image::prepare(cfg, stack, false)?.0)
}

fn file_name(p: &Path) -> Result<String> {
    match p.file_name() {
        Some(n) => Ok(n.to_string_lossy().into_owned()),
        None => bail!("`{}` has no file name", p.display()),
    }
}

/// Runs a host program in dom0; the exit status is the program's.
pub fn run(stack: Stack, o: &Opts) -> Result<i32> {
    let Some((prog, args)) = o.rest.split_first() else {
        bail!("xen-box run needs a PROGRAM (see `cargo xtask help`)");
    };
    let prog = PathBuf::from(prog);
    if !prog.is_file() {
        bail!("`{}` is not a file", prog.display());
    }
    let art = ready(&o.config, stack)?;
    let mut files = vec![(file_name(&prog)?, prog.clone())];
    for a in &o.add {
        let p = PathBuf::from(a);
        if !p.is_file() {
            bail!("--add `{a}` is not a file");
        }
        files.push((file_name(&p)?, p));
    }
    let secs = o.timeout.unwrap_or(600);
    let mut cmd = shell_quote(&format!("./{}", files[0].0));
    for a in args {
        cmd.push(' ');
        cmd.push_str(&shell_quote(a));
    }
    let script = format!(
        "#!/bin/sh\ncd /xen-box/files || exit 253\n{}exit $rc\n",
        timed(&cmd, secs, "payload")
    );
    let p = Payload::one_step(files, script, secs);
    let out = boot_with(&art, &p, "run")?;
    let v = report::verdict(&out);
    say(format!("{}: {}", stack.name(), report::timings(&out)));
    match v {
        Verdict::Exited(c) => {
            say(format!("payload exit status {c}"));
            Ok(c)
        }
        _ => {
            report::print_failure(&out, &v);
            Ok(v.code())
        }
    }
}
