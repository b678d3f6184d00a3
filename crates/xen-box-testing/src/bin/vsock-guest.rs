// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `vsock-guest`: the AF_VSOCK end of the bridge's vsock test, run inside a domU (the box puts
//! it in the domU's initramfs as /xen-box-test/vsock-guest; busybox has no vsock client).
//!
//! ```text
//! vsock-guest connect PORT COUNT   # to the host (CID 2): COUNT messages, each echoed back
//! vsock-guest serve PORT COUNT     # accept one host connection and echo COUNT messages
//! vsock-guest rtt PORT COUNT SIZE  # to the host: COUNT/10 untimed, then COUNT timed round trips
//! vsock-guest unix-echo PATH       # in dom0: echo one connection on UNIX socket PATH until EOF
//! ```
//!
//! Message `i` is `xen_box_testing::vsock::message(i)` (1 to 6000 bytes); each side checks every
//! byte it reads back. Prints `XEN-BOX-VSOCK: <mode> ok <count> messages <bytes> bytes` or
//! `XEN-BOX-VSOCK: <mode> FAIL <why>` on stdout.
//!
//! `rtt` is the bridge benchmark's latency probe: one SIZE-byte message at a time, each read
//! back whole and checked before the next is sent, so each round trip crosses the device both
//! ways with nothing else queued. It prints `XEN-BOX-VSOCK: rtt ok count=N size=S
//! median_us=.. p99_us=.. min_us=.. max_us=..` (nearest-rank percentiles). `unix-echo` is its
//! dom0 peer: the daemon's hybrid vsock connects a guest's connection to port P to the UNIX
//! socket `<uds-path>_P`.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use xen_box_testing::vsock::{message, message_len, percentile};

fn vsock_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn addr(cid: u32, port: u32) -> libc::sockaddr_vm {
    // SAFETY: sockaddr_vm is plain data; all zeroes is a valid value.
    let mut a: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    a.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    a.svm_cid = cid;
    a.svm_port = port;
    a
}

fn connect(port: u32) -> std::io::Result<std::fs::File> {
    let s = vsock_socket()?;
    let a = addr(libc::VMADDR_CID_HOST, port);
    // SAFETY: `a` is a valid sockaddr_vm of the size passed; `s` is an open socket.
    let r = unsafe {
        libc::connect(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            (&a as *const libc::sockaddr_vm).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(std::fs::File::from(s))
}

fn accept_one(port: u32) -> std::io::Result<std::fs::File> {
    let s = vsock_socket()?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&s);
    let a = addr(libc::VMADDR_CID_ANY, port);
    // SAFETY: `a` is a valid sockaddr_vm of the size passed; `s` is an open socket.
    let r = unsafe {
        libc::bind(
            raw,
            (&a as *const libc::sockaddr_vm).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    // SAFETY: `raw` is an open, bound socket.
    if r != 0 || unsafe { libc::listen(raw, 1) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    println!("XEN-BOX-VSOCK: serve listening on port {port}");
    // SAFETY: `raw` listens; null address arguments are allowed.
    let c = unsafe {
        libc::accept4(
            raw,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if c < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `c` was just returned by accept4 and is owned by nobody else.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(c) }))
}

/// Sends each message and reads it back.
fn ping(s: &mut std::fs::File, count: u32) -> Result<u64, String> {
    let mut total = 0;
    for i in 0..count {
        let m = message(i);
        s.write_all(&m).map_err(|e| format!("write {i}: {e}"))?;
        let mut back = vec![0u8; m.len()];
        s.read_exact(&mut back)
            .map_err(|e| format!("read {i}: {e}"))?;
        if back != m {
            return Err(format!("message {i} came back changed"));
        }
        total += m.len() as u64;
    }
    Ok(total)
}

/// Reads each message, checks it, and echoes it.
fn echo(s: &mut std::fs::File, count: u32) -> Result<u64, String> {
    let mut total = 0;
    for i in 0..count {
        let mut m = vec![0u8; message_len(i)];
        s.read_exact(&mut m).map_err(|e| format!("read {i}: {e}"))?;
        if m != message(i) {
            return Err(format!("message {i} arrived changed"));
        }
        s.write_all(&m).map_err(|e| format!("write {i}: {e}"))?;
        total += m.len() as u64;
    }
    Ok(total)
}

/// Times `count` round trips of `size` bytes after `count / 10` untimed ones (the first trips
/// fault in the daemon's and frontend's paths); returns the summary line's fields.
fn rtt(s: &mut std::fs::File, count: u32, size: usize) -> Result<String, String> {
    if count == 0 || size == 0 {
        return Err("COUNT and SIZE must be at least 1".into());
    }
    let mut back = vec![0u8; size];
    let mut times = Vec::with_capacity(count as usize);
    for i in 0..count / 10 + count {
        let m: Vec<u8> = (0..size).map(|k| (i as usize + k) as u8).collect();
        let t0 = std::time::Instant::now();
        s.write_all(&m).map_err(|e| format!("write {i}: {e}"))?;
        s.read_exact(&mut back)
            .map_err(|e| format!("read {i}: {e}"))?;
        let ns = t0.elapsed().as_nanos() as u64;
        if back != m {
            return Err(format!("round trip {i} came back changed"));
        }
        if i >= count / 10 {
            times.push(ns);
        }
    }
    times.sort_unstable();
    let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
    Ok(format!(
        "count={count} size={size} median_us={} p99_us={} min_us={} max_us={}",
        us(percentile(&times, 50)),
        us(percentile(&times, 99)),
        us(times[0]),
        us(times[times.len() - 1]),
    ))
}

/// Accepts one connection on UNIX socket `path` and echoes what arrives until EOF.
fn unix_echo(path: &str) -> Result<u64, String> {
    let listener =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| format!("bind {path}: {e}"))?;
    println!("XEN-BOX-VSOCK: unix-echo listening on {path}");
    let (mut s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Ok(total);
        }
        s.write_all(&buf[..n]).map_err(|e| format!("write: {e}"))?;
        total += n as u64;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("rtt") => {
            let (Some(port), Some(count), Some(size)) = (
                args.get(2).and_then(|p| p.parse::<u32>().ok()),
                args.get(3).and_then(|c| c.parse::<u32>().ok()),
                args.get(4).and_then(|c| c.parse::<usize>().ok()),
            ) else {
                eprintln!("usage: vsock-guest rtt PORT COUNT SIZE");
                std::process::exit(2);
            };
            let result = connect(port)
                .map_err(|e| format!("connect to port {port}: {e}"))
                .and_then(|mut s| rtt(&mut s, count, size));
            finish("rtt", result);
        }
        Some("unix-echo") => {
            let Some(path) = args.get(2) else {
                eprintln!("usage: vsock-guest unix-echo PATH");
                std::process::exit(2);
            };
            finish("unix-echo", unix_echo(path).map(|n| format!("{n} bytes")));
        }
        _ => messages(&args),
    }
}

/// Prints the result line and exits 1 on failure.
fn finish(mode: &str, result: Result<String, String>) {
    match result {
        Ok(line) => println!("XEN-BOX-VSOCK: {mode} ok {line}"),
        Err(e) => {
            println!("XEN-BOX-VSOCK: {mode} FAIL {e}");
            std::process::exit(1);
        }
    }
}

/// `connect` and `serve`: the correctness exchange.
fn messages(args: &[String]) {
    let (Some(mode), Some(port), Some(count)) = (
        args.get(1),
        args.get(2).and_then(|p| p.parse::<u32>().ok()),
        args.get(3).and_then(|c| c.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: vsock-guest connect|serve PORT COUNT");
        std::process::exit(2);
    };
    let result = match mode.as_str() {
        "connect" => connect(port)
            .map_err(|e| format!("connect to port {port}: {e}"))
            .and_then(|mut s| ping(&mut s, count)),
        "serve" => accept_one(port)
            .map_err(|e| format!("accept on port {port}: {e}"))
            .and_then(|mut s| echo(&mut s, count)),
        other => Err(format!("unknown mode {other}")),
    };
    finish(
        mode,
        result.map(|bytes| format!("{count} messages {bytes} bytes")),
    );
}
