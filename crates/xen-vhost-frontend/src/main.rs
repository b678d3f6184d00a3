// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-vhost-frontend`: serves Xen guests' virtio-mmio devices from vhost-user daemons.
//!
//! ```text
//! xen-vhost-frontend [--domid D] --device TYPE:SOCKET [--device TYPE:SOCKET ...]
//! ```
//!
//! Run as root in the backend domain (dom0) before creating the guests. A guest's virtio
//! devices, in the order of its xl configuration, are served by the `--device`s in order: TYPE is the virtio device type (rng, vsock, i2c, gpio, console, sound, scsi,
//! fs, block, net) and SOCKET the daemon's vhost-user socket, for example
//! `vhost-device-rng --socket-path /run/rng.sock -c 1` and `--device rng:/run/rng.sock0`.
//! The daemons must be built with their `xen` feature. Stops on SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xen_bindings::xenstore::Xenstore;
use xen_bindings::DomId;
use xen_vhost_frontend::{Config, DeviceBackend, DeviceType, Service};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn device_type(name: &str) -> Option<DeviceType> {
    Some(match name {
        "net" => DeviceType::Net,
        "block" => DeviceType::Block,
        "console" => DeviceType::Console,
        "rng" => DeviceType::Rng,
        "scsi" => DeviceType::Scsi,
        "fs" => DeviceType::Fs,
        "vsock" => DeviceType::Vsock,
        "sound" => DeviceType::Sound,
        "i2c" => DeviceType::I2c,
        "gpio" => DeviceType::Gpio,
        _ => return None,
    })
}

fn parse(args: &[String]) -> Result<Config, String> {
    let mut config = Config {
        backends: Vec::new(),
        domid: None,
        backend_domid: DomId::DOM0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or(format!("{a} needs {what}"));
        match a.as_str() {
            "--domid" => {
                let v = value("a domain id")?;
                config.domid = Some(v.parse().map_err(|e| format!("bad domain id {v:?}: {e}"))?);
            }
            "--device" => {
                let v = value("TYPE:SOCKET")?;
                let (ty, socket) = v
                    .split_once(':')
                    .ok_or(format!("--device {v:?}: want TYPE:SOCKET"))?;
                let device_type =
                    device_type(ty).ok_or(format!("--device {v:?}: unknown type {ty:?}"))?;
                config.backends.push(DeviceBackend {
                    device_type,
                    socket: PathBuf::from(socket),
                });
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if config.backends.is_empty() {
        return Err("at least one --device TYPE:SOCKET is needed".into());
    }
    Ok(config)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("xen-vhost-frontend: {e}");
            }
            eprintln!("usage: xen-vhost-frontend [--domid D] --device TYPE:SOCKET [--device ...]");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let _ = log::set_logger(&Stderr);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let mut service = Service::new(config, Xenstore::open()?)?;
        while !STOP.load(Ordering::SeqCst) {
            service.run_once(Duration::from_millis(200))?;
        }
        service.shutdown();
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = e.source();
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("xen-vhost-frontend: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines to stderr.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn devices_in_order_and_a_domain() {
        let c = parse(&args(&[
            "--domid",
            "7",
            "--device",
            "rng:/run/rng.sock0",
            "--device",
            "vsock:/run/v.sock",
        ]))
        .unwrap();
        assert_eq!(c.domid, Some(DomId::new(7)));
        assert_eq!(c.backend_domid, DomId::DOM0);
        let got: Vec<(DeviceType, PathBuf)> = c
            .backends
            .iter()
            .map(|b| (b.device_type, b.socket.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (DeviceType::Rng, PathBuf::from("/run/rng.sock0")),
                (DeviceType::Vsock, PathBuf::from("/run/v.sock")),
            ]
        );
    }

    #[test]
    fn every_type_name_is_known() {
        for name in [
            "net", "block", "console", "rng", "scsi", "fs", "vsock", "sound", "i2c", "gpio",
        ] {
            assert!(device_type(name).is_some(), "{name}");
        }
        assert!(device_type("balloon").is_none());
    }

    #[test]
    fn mistakes_are_errors() {
        for bad in [
            &["--device"][..],
            &["--device", "rng"],
            &["--device", "nosuch:/s"],
            &["--domid", "x", "--device", "rng:/s"],
            &["--domid", "65536", "--device", "rng:/s"],
            // DOMID_SELF: a pseudo-domain, never a guest to serve.
            &["--domid", "32752", "--device", "rng:/s"],
            &["--domid"],
            &["--what"],
            &[],
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
        assert_eq!(parse(&args(&["--help"])).unwrap_err(), "");
    }
}
