// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Byte streams to xenstored.
//!
//! Two transports reach it from a Linux domain: the daemon's unix socket (only in the domain
//! running xenstored, normally dom0) and the kernel's `/dev/xen/xenbus` device (any domain; the
//! kernel relays to xenstored over the shared ring). Both carry the same framed messages, so the
//! client only needs a byte stream: [`Transport`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::poll::readable;

/// Where xenstored listens.
pub const XENSTORED_SOCKET: &str = "/run/xenstored/socket";
/// Where older installations put the socket.
pub const XENSTORED_SOCKET_LEGACY: &str = "/var/run/xenstored/socket";
/// The kernel's xenbus device.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";

/// A byte stream to xenstored.
pub trait Transport {
    /// Writes one whole message (header and payload).
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// Reads what is available (blocking until at least one byte); `Ok(0)` means the other end
    /// closed the connection.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Waits up to `timeout` (forever with `None`) until [`Transport::recv`] would not block.
    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool>;

    /// The descriptor to wait on (epoll, [`crate::poll::readable`]), if the transport has one.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        (**self).send(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).recv(buf)
    }

    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        (**self).wait_readable(timeout)
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        (**self).fd()
    }
}

/// Reads, retrying on `EINTR`.
fn read_retry(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// xenstored's unix socket.
#[derive(Debug)]
pub struct SocketTransport {
    stream: UnixStream,
}

impl SocketTransport {
    /// Connects to the socket at `path`.
    pub fn connect(path: &str) -> io::Result<Self> {
        Ok(Self {
            stream: UnixStream::connect(path)?,
        })
    }
}

impl Transport for SocketTransport {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.stream.write_all(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_retry(&mut self.stream, buf)
    }

    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        readable([Some(self.stream.as_fd())], timeout).map(|[r]| r)
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }
}

/// The kernel's `/dev/xen/xenbus` device.
#[derive(Debug)]
pub struct XenbusTransport {
    file: File,
}

impl XenbusTransport {
    /// Opens the device at `path` (normally [`XENBUS_DEVICE`]).
    pub fn open(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        Ok(Self { file })
    }
}

impl Transport for XenbusTransport {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        // The driver gathers partial writes until the header's length is complete, so a plain
        // write_all is a valid way to hand over one message.
        self.file.write_all(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_retry(&mut self.file, buf)
    }

    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        readable([Some(self.file.as_fd())], timeout).map(|[r]| r)
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.file.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_transport_moves_bytes() {
        let dir = std::env::temp_dir().join(format!("xs-transport-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = std::os::unix::net::UnixListener::bind(&dir).unwrap();
        let mut t = SocketTransport::connect(dir.to_str().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        t.send(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        assert!(!t.wait_readable(Some(Duration::ZERO)).unwrap());
        server.write_all(b"pong").unwrap();
        assert!(t.wait_readable(Some(Duration::from_secs(10))).unwrap());
        assert_eq!(t.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"pong");
        assert!(t.fd().is_some());
        drop(server);
        assert_eq!(t.recv(&mut buf).unwrap(), 0);
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn missing_endpoints_fail_cleanly() {
        assert!(SocketTransport::connect("/nonexistent/xenstored/socket").is_err());
        assert!(XenbusTransport::open("/nonexistent/xenbus").is_err());
    }
}
