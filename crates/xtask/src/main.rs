// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Project automation. Run `cargo xtask help`.
//!
//! The main job is the Xen box: real Xen with a Linux PV dom0 booted under
//! QEMU (software emulation), running payloads and the Xen crates'
//! integration tests as root in dom0.

mod apt;
mod arch;
mod arm64;
mod cargo_json;
mod cmd_demo;
mod cmd_domu;
mod cmd_msrv;
mod cmd_run;
mod cmd_selftest;
mod cmd_test;
mod config;
mod cpio;
mod debs;
mod dom0_tree;
mod extras;
mod host;
mod host_qemu;
mod image;
mod kernel;
mod payload;
mod qemu;
mod qmp;
mod report;
mod stack;
mod util;
mod vhost_device;

use std::process::ExitCode;

use config::BoxConfig;
use stack::Stack;
use util::{say, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  help                        this text
  xen-box setup --stack S [--refresh]
        install missing host tools (apt-get), download the stack's .debs with
        an isolated apt configuration and build its boot image (cached)
  xen-box run --stack S [--timeout SECS] [--add FILE]... -- PROGRAM [ARGS]...
        boot the box and run a host file (binary or script) as root in dom0;
        PROGRAM and each --add FILE are copied to /xen-box/files/ under their
        file names, and PROGRAM runs from there (so it finds its files beside it);
        exit status = the program's (124: timed out, 125: no exit marker,
        i.e. dom0/Xen crashed, 126: box did not power off)
  xen-box test --stack S [-p CRATE]... [--timeout SECS] [-- TEST ARGS]
        build the integration tests (tests/*.rs) of the Xen crates (default:
        xen-bindings, xen-foreignmem, xen-ioreq, xen-vhost-frontend,
        vm-hypervisor-xen, xen-box-testing; on aarch64 the vhost-device daemons their tests use are built
        and put in dom0, and vm-hypervisor-xen's unit tests are built too) and run
        each test binary in dom0 (--test-threads=1, per-binary time limit,
        default 600 s); fails if anything failed or if no test binary ran
  xen-box selftest --stack S
        prove failure detection: exit 3, hang, dom0 crash, exit 0
  xen-box domu-check --stack S
        start and stop a PV and a PVH domU from dom0
  xen-box demo --stack S
        run the xen-bindings example `xen-info` in dom0, next to `xl info`/`xl list`
  xen-box demo --arch aarch64 --stack S
        the bridge: a domU reads /dev/hwrng, served by the unmodified published
        vhost-device-rng (built with `xen`) through xen-vhost-frontend

  xen-box bridge-bench --arch aarch64 --stack S [--dom0-kernel eventfd]
        guest /dev/hwrng throughput and vsock echo round-trip latency through
        xen-vhost-frontend and, when XEN_BOX_POC_FRONTEND names its aarch64
        binary, through the proof-of-concept frontend, with the same daemons
        and guests (docs/benchmarks.md)
  xen-box virtio-domu --arch aarch64 --stack S
        check the dom0 helper xen-box-virtio-domu (paused domU with a
        virtio-mmio device at 0x2000000, for IOREQ-server tests)
  xen-box cross-unit [-p CRATE]... [-- TEST ARGS]
        unit tests built for aarch64, run on the host under qemu-aarch64-static

  vhost-device build [--arch A] [--features LIST] [rng|vsock]...
        build the pinned, unmodified vhost-device-rng and vhost-device-vsock
        daemons with `cargo install --locked` (aarch64: cross-built, feature
        xen by default; x86_64: no feature by default), cached under
        <cache>/vhost-device/; prints each binary's path
        (`cargo xtask vhost-device help`)

  msrv [--target-dir DIR] [-- CARGO BUILD ARGS]
        build each crate (but xtask) with the compiler its rust-version names:
        the rustc and cargo of the Debian suite that ships it, unpacked in
        <cache>/msrv/, else an installed rustup toolchain, else SKIPPED
        (`cargo xtask msrv help`)

--arch x86_64|aarch64 (default x86_64) selects the emulated machine for
setup, run, test, selftest and virtio-domu; aarch64 tests are cross-built
with Debian's rustc-web; its cache is <cache>/<stack>-arm64/.
S is bookworm (Xen 4.17 + Linux 6.1), trixie (Xen 4.20 + Linux 6.12), all or
any (the first of trixie, bookworm that can be built). The aarch64 hypervisor
is rebuilt from Debian's Xen source: with `all`, a stack whose source cannot be
had is skipped with the reason (at least one must run); a named one fails.
--with-pkg NAME (x86_64; setup and every booting command; repeatable) adds the
Debian package NAME and its dependencies to the dom0 image, for example
qemu-system-xen (QEMU as an HVM device model: /usr/libexec/xen-qemu-system-i386,
where xl looks for it). Such an image is a separate variant (plan-with-<names>.txt,
images-with-<names>/ in the cache): the default image is neither rebuilt nor removed.
--dom0-kernel debian|eventfd (default debian; setup and every booting command):
eventfd boots a Linux 6.12 built with privcmd IRQFD/IOEVENTFD (x86_64 bzImage or,
with --arch aarch64, a cross-built arm64 Image; built once per architecture,
cached in <cache>/dom0-kernel/[arm64/]). IOEVENTFD can bind only on aarch64
(the x86 PV dom0 cannot). dom0 sees XEN_BOX_DOM0_KERNEL=debian|eventfd.
Cache: $XEN_BOX_CACHE, default $HOME/.cache/xen-rust-vmm/xen-box/<stack>/.
Boot time limit on top of the payload's: $XEN_BOX_BOOT_TIMEOUT (default 240 s).
In dom0: XEN_BOX=1, XEN_BOX_STACK, XEN_BOX_XEN_VERSION, XEN_BOX_DOMU_KERNEL,
XEN_BOX_DOMU_RAMDISK (a kernel and a busybox initramfs for domUs: its init prints
`XEN-BOX-DOMU: up` on the console and powers off, or idles with `xbdomu=sleep` on
the domU's command line; crates/xtask/README.md says how to run your own program
in a domU); xl, xenstore-* in PATH; xenstored and xenconsoled running.
";

/// Parsed options common to the xen-box subcommands.
#[derive(Default)]
pub struct Opts {
    /// --stack value (default bookworm).
    pub stacks: Vec<Stack>,
    /// How --stack chose them.
    pub selection: stack::Selection,
    /// --timeout value in seconds.
    pub timeout: Option<u64>,
    /// --add files.
    pub add: Vec<String>,
    /// -p crates.
    pub packages: Vec<String>,
    /// --refresh.
    pub refresh: bool,
    /// --arch, --dom0-kernel and --with-pkg: the box itself.
    pub config: BoxConfig,
    /// Words after `--`, or the remaining positional words.
    pub rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut arch = arch::Arch::default();
    let mut dom0_kernel = kernel::Dom0Kernel::default();
    let mut with_pkgs = Vec::new();
    let mut i = 0;
    let val = |i: &mut usize| -> Result<String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| err!("`{}` needs a value", args[*i - 1]))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--stack" | "-s" => {
                let v = val(&mut i)?;
                o.stacks = Stack::parse_list(&v)?;
                o.selection = stack::Selection::of(&v);
            }
            "--timeout" => {
                let v = val(&mut i)?;
                o.timeout = Some(v.parse().map_err(|_| err!("bad --timeout `{v}`"))?);
            }
            "--add" => o.add.push(val(&mut i)?),
            "-p" | "--package" => o.packages.push(val(&mut i)?),
            "--refresh" => o.refresh = true,
            "--arch" => arch = arch::Arch::parse(&val(&mut i)?)?,
            "--dom0-kernel" => dom0_kernel = kernel::Dom0Kernel::parse(&val(&mut i)?)?,
            "--with-pkg" => {
                let v = val(&mut i)?;
                extras::check_name(&v)?;
                with_pkgs.push(v);
            }
            "--" => {
                o.rest.extend_from_slice(&args[i + 1..]);
                break;
            }
            a if a.starts_with('-') && o.rest.is_empty() => bail!("unknown option `{a}`"),
            _ => {
                o.rest.extend_from_slice(&args[i..]);
                break;
            }
        }
        i += 1;
    }
    if o.stacks.is_empty() {
        o.stacks = vec![Stack::Bookworm];
    }
    o.config = BoxConfig::new(arch, dom0_kernel, &with_pkgs)?;
    Ok(o)
}

fn one_stack(o: &Opts) -> Result<Stack> {
    match o.stacks.as_slice() {
        [s] => Ok(*s),
        _ => bail!("this command takes one stack (bookworm or trixie), not `all`"),
    }
}

fn xen_box(args: &[String]) -> Result<i32> {
    let Some(sub) = args.first() else {
        print!("{USAGE}");
        return Ok(2);
    };
    let mut o = parse(&args[1..])?;
    if sub != "cross-unit" {
        o.stacks = usable_stacks(&o.config, &o.stacks, o.selection)?;
    }
    let cfg = &o.config;
    match sub.as_str() {
        "setup" => cmd_run::setup(&o),
        "run" => cmd_run::run(one_stack(&o)?, &o),
        "test" => cmd_test::test(&o),
        "selftest" => cmd_selftest::selftest(one_stack(&o)?, cfg),
        "domu-check" => cmd_domu::domu_check(one_stack(&o)?, cfg),
        "demo" => cmd_demo::demo(one_stack(&o)?, cfg),
        "bridge-bench" => arm64::cmd_bridge::bridge_bench(
            one_stack(&o)?,
            cfg,
            std::env::var_os("XEN_BOX_POC_FRONTEND").map(std::path::PathBuf::from),
        ),
        "virtio-domu" => arm64::cmd_virtio::virtio_domu(one_stack(&o)?, cfg),
        "cross-unit" => arm64::cross::unit_tests(&o.packages, &o.rest),
        _ => bail!("unknown xen-box command `{sub}` (see `cargo xtask help`)"),
    }
}

/// The stacks of `stacks` that can be booted on `cfg`'s architecture. On
/// x86_64 every stack can (its packages are binary ones); on aarch64 a stack
/// needs its Xen source. A named stack that cannot be had is an error; of
/// `all`, each that cannot is skipped with the reason; of `any`, the first
/// that can is taken. At least one stack always remains, or this fails.
pub fn usable_stacks(
    cfg: &BoxConfig,
    stacks: &[Stack],
    selection: stack::Selection,
) -> Result<Vec<Stack>> {
    if !cfg.is_aarch64() {
        return Ok(match selection {
            stack::Selection::Any => stacks[..1].to_vec(),
            _ => stacks.to_vec(),
        });
    }
    let mut usable = Vec::new();
    let mut why_not = Vec::new();
    for &s in stacks {
        match arm64::stack_available(cfg, s)? {
            Ok(version) => {
                usable.push(s);
                if selection == stack::Selection::Any {
                    say(format!("--stack any: {} (Xen source {version})", s.name()));
                    break;
                }
            }
            Err(why) => {
                if selection == stack::Selection::Named {
                    bail!("the aarch64 {} box cannot be built: {why}", s.name());
                }
                say(format!(
                    "SKIPPED: the aarch64 {} box (Xen {}), because its Xen source cannot be had: {why}",
                    s.name(),
                    s.xen_version()
                ));
                why_not.push(s.name());
            }
        }
    }
    if usable.is_empty() {
        bail!(
            "no aarch64 stack can be built (no Xen source for {}): nothing would run",
            why_not.join(", ")
        );
    }
    Ok(usable)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(0)
        }
        Some("xen-box") => xen_box(&args[1..]),
        Some("vhost-device") => vhost_device::main(&args[1..]),
        Some("msrv") => cmd_msrv::main(&args[1..]),
        Some(c) => Err(err!("unknown command `{c}` (see `cargo xtask help`)")),
    };
    match res {
        Ok(c) => ExitCode::from(u8::try_from(c.clamp(0, 255)).unwrap_or(1)),
        Err(e) => {
            say(format!("error: {e}"));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_box_options_make_the_config_passed_down() {
        let o = parse(&args(&[
            "--arch",
            "arm64",
            "--dom0-kernel",
            "eventfd",
            "-p",
            "x",
        ]))
        .unwrap();
        assert_eq!(
            o.config,
            BoxConfig {
                arch: arch::Arch::Aarch64,
                dom0_kernel: kernel::Dom0Kernel::Eventfd,
                extra_pkgs: Vec::new(),
            }
        );
        assert_eq!(parse(&[]).unwrap().config, BoxConfig::default());
        assert!(parse(&args(&["--dom0-kernel", "vanilla"])).is_err());
    }

    #[test]
    fn with_pkg_is_repeatable_and_checked() {
        let o = parse(&args(&[
            "--stack",
            "trixie",
            "--with-pkg",
            "qemu-system-xen",
            "--with-pkg",
            "gdb",
            "--",
            "prog",
        ]))
        .unwrap();
        assert_eq!(o.config.extra_pkgs, args(&["gdb", "qemu-system-xen"]));
        assert_eq!(o.rest, args(&["prog"]));
        assert!(parse(&args(&["--with-pkg", "../etc"])).is_err());
        assert!(parse(&args(&["--with-pkg"])).is_err());
        assert!(parse(&args(&["--stack", "bookworm"]))
            .unwrap()
            .config
            .extra_pkgs
            .is_empty());
        assert!(parse(&args(&["--arch", "aarch64", "--with-pkg", "gdb"])).is_err());
    }
}
