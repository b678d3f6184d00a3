// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Event channels through `/dev/xen/evtchn`.
//!
//! An [`EventChannel`] is an open `/dev/xen/evtchn` descriptor. Binding a port through it
//! returns a [`BoundPort`], which unbinds the port when dropped. When an event arrives on a bound
//! port, the kernel masks the port and queues its number: [`EventChannel::pending`] (or
//! [`EventChannel::read_pending`]) reads those numbers, and [`EventChannel::unmask`] re-arms the
//! port once the event is handled.
//!
//! The descriptor works in both styles of event loop:
//!
//! - blocking: open with [`EventChannel::open`] and call [`EventChannel::pending`], which sleeps
//!   until a port fires, or [`EventChannel::wait_pending`] with a timeout;
//! - readiness-based: open with [`EventChannel::open_nonblocking`], register
//!   [`AsRawFd::as_raw_fd`] with epoll for `EPOLLIN`, and on readiness drain
//!   [`EventChannel::pending`] until it returns `Ok(None)`.
//!
//! # Example
//!
//! ```no_run
//! use xen_bindings::evtchn::EventChannel;
//! use xen_bindings::DomId;
//!
//! # fn main() -> Result<(), xen_bindings::evtchn::Error> {
//! let evtchn = EventChannel::open()?;
//! // A port domain 0 can connect to (here: ourselves, from another handle).
//! let local = evtchn.bind_unbound_port(DomId::DOM0)?;
//! let peer = EventChannel::open()?;
//! let remote = peer.bind_interdomain(DomId::DOM0, local.port())?;
//! remote.notify()?;
//! if let Some(port) = evtchn.pending()? {
//!     assert_eq!(port, local.port());
//!     evtchn.unmask(port)?;
//! }
//! # Ok(())
//! # }
//! ```

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;

use crate::abi::linux::evtchn::*;
use crate::sys::{RealSys, Sys};
use crate::DomId;

/// The device node.
pub const EVTCHN_PATH: &str = "/dev/xen/evtchn";

/// An event channel port number (`evtchn_port_t`).
pub type Port = u32;

/// Errors of event channel operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device could not be opened.
    #[error("opening {path} failed: {source}")]
    Open {
        /// The device path.
        path: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// An ioctl failed.
    #[error("evtchn {op} ({value}) failed: {source}")]
    Ioctl {
        /// The operation.
        op: &'static str,
        /// The port, domain or VIRQ the operation was about.
        value: u32,
        /// The errno.
        source: io::Error,
    },
    /// The kernel returned a port number that cannot be one.
    #[error("evtchn {op} returned an invalid port {value}")]
    InvalidPort {
        /// The operation.
        op: &'static str,
        /// The returned value.
        value: i64,
    },
    /// Reading pending ports failed.
    #[error("reading pending evtchn ports failed: {0}")]
    Read(#[source] io::Error),
    /// More events arrived than the kernel's ring holds; call [`EventChannel::reset`] and
    /// re-check every port.
    #[error("evtchn pending-port ring overflowed; reset needed")]
    Overflow,
    /// Unmasking a port failed.
    #[error("unmasking evtchn port {port} failed: {source}")]
    Unmask {
        /// The port.
        port: Port,
        /// The cause.
        source: io::Error,
    },
    /// A read or write moved a number of bytes that is not whole ports.
    #[error("evtchn {op} transferred {len} bytes, not a whole number of ports")]
    PartialTransfer {
        /// The operation.
        op: &'static str,
        /// The byte count.
        len: usize,
    },
    /// Waiting for readiness failed.
    #[error("polling the evtchn descriptor failed: {0}")]
    Poll(#[source] io::Error),
}

/// Result of event channel operations.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug)]
struct Inner<S: Sys> {
    fd: OwnedFd,
    sys: S,
}

/// An open `/dev/xen/evtchn` descriptor.
///
/// Cheap to clone: clones share the descriptor, which closes (unbinding any port still bound)
/// when the last clone and the last [`BoundPort`] made from it are gone.
#[derive(Debug)]
pub struct EventChannel<S: Sys = RealSys> {
    inner: Arc<Inner<S>>,
}

impl<S: Sys> Clone for EventChannel<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl EventChannel<RealSys> {
    /// Opens `/dev/xen/evtchn` in blocking mode: [`EventChannel::pending`] sleeps until an event.
    pub fn open() -> Result<Self> {
        Self::open_with(false)
    }

    /// Opens `/dev/xen/evtchn` in non-blocking mode, for epoll-driven loops:
    /// [`EventChannel::pending`] returns `Ok(None)` when nothing is pending.
    pub fn open_nonblocking() -> Result<Self> {
        Self::open_with(true)
    }

    fn open_with(nonblocking: bool) -> Result<Self> {
        let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(EVTCHN_PATH)
            .map_err(|source| Error::Open {
                path: EVTCHN_PATH,
                source,
            })?;
        Ok(Self::from_parts(file.into(), RealSys))
    }
}

impl<S: Sys> EventChannel<S> {
    /// Wraps an already open evtchn descriptor, reaching the kernel through `sys`.
    pub fn from_parts(fd: OwnedFd, sys: S) -> Self {
        Self {
            inner: Arc::new(Inner { fd, sys }),
        }
    }

    /// Runs an ioctl on the descriptor with `arg` as argument.
    ///
    /// # Safety
    ///
    /// `T` must be the argument struct that `request` encodes: the kernel reads (and for some
    /// requests writes) that many bytes at `arg`.
    // Inline: notify, read and unmask are on every IOREQ's path, and their result is
    // matched at once by the caller.
    #[inline]
    unsafe fn ioctl<T>(
        &self,
        op: &'static str,
        value: u32,
        request: u32,
        arg: &mut T,
    ) -> Result<i32> {
        // SAFETY: `arg` is a live, exclusively borrowed `T`, the struct `request` encodes (this
        // function's contract).
        unsafe {
            self.inner
                .sys
                .ioctl(self.inner.fd.as_raw_fd(), request, (arg as *mut T).cast())
        }
        .map_err(|source| Error::Ioctl { op, value, source })
    }

    /// Runs a binding `request` and guards the port it returns.
    ///
    /// # Safety
    ///
    /// As [`EventChannel::ioctl`]: `arg` must be the struct `request` encodes.
    unsafe fn bind(
        &self,
        op: &'static str,
        value: u32,
        request: u32,
        arg: &mut impl Sized,
    ) -> Result<BoundPort<S>> {
        // SAFETY: this function's contract is the same.
        let ret = unsafe { self.ioctl(op, value, request, arg) }?;
        let port = Port::try_from(ret).map_err(|_| Error::InvalidPort {
            op,
            value: ret.into(),
        })?;
        Ok(BoundPort {
            evtchn: self.clone(),
            port,
        })
    }

    /// Connects a fresh local port to `remote_port` of domain `remote_domain`, which must
    /// have been allocated for us as an unbound port.
    ///
    /// Xen marks the new local port pending once right away (notifications the remote end sent
    /// before the binding existed would otherwise be lost), so expect one event on it.
    pub fn bind_interdomain(
        &self,
        remote_domain: DomId,
        remote_port: Port,
    ) -> Result<BoundPort<S>> {
        let mut arg = IoctlEvtchnBindInterdomain {
            remote_domain: remote_domain.get().into(),
            remote_port,
        };
        // SAFETY: an IoctlEvtchnBindInterdomain for IOCTL_EVTCHN_BIND_INTERDOMAIN.
        unsafe {
            self.bind(
                "bind_interdomain",
                remote_port,
                IOCTL_EVTCHN_BIND_INTERDOMAIN,
                &mut arg,
            )
        }
    }

    /// Allocates a fresh port that domain `remote_domain` may connect to.
    pub fn bind_unbound_port(&self, remote_domain: DomId) -> Result<BoundPort<S>> {
        let mut arg = IoctlEvtchnBindUnboundPort {
            remote_domain: remote_domain.get().into(),
        };
        // SAFETY: an IoctlEvtchnBindUnboundPort for IOCTL_EVTCHN_BIND_UNBOUND_PORT.
        unsafe {
            self.bind(
                "bind_unbound_port",
                remote_domain.get().into(),
                IOCTL_EVTCHN_BIND_UNBOUND_PORT,
                &mut arg,
            )
        }
    }

    /// Binds a fresh port to virtual IRQ `virq`.
    pub fn bind_virq(&self, virq: u32) -> Result<BoundPort<S>> {
        let mut arg = IoctlEvtchnBindVirq { virq };
        // SAFETY: an IoctlEvtchnBindVirq for IOCTL_EVTCHN_BIND_VIRQ.
        unsafe { self.bind("bind_virq", virq, IOCTL_EVTCHN_BIND_VIRQ, &mut arg) }
    }

    /// Unbinds `port` (for ports taken out of their guard with [`BoundPort::into_raw`]).
    pub fn unbind(&self, port: Port) -> Result<()> {
        let mut arg = IoctlEvtchnUnbind { port };
        // SAFETY: an IoctlEvtchnUnbind for IOCTL_EVTCHN_UNBIND.
        unsafe { self.ioctl("unbind", port, IOCTL_EVTCHN_UNBIND, &mut arg) }.map(drop)
    }

    /// Sends an event on a port bound through this descriptor.
    #[inline]
    pub fn notify(&self, port: Port) -> Result<()> {
        self.ops().notify(port)
    }

    /// The operations an event loop makes for every event, on this descriptor looked up once
    /// (see [`EventChannelOps`]).
    #[inline]
    pub fn ops(&self) -> EventChannelOps<'_, S> {
        EventChannelOps {
            sys: &self.inner.sys,
            fd: self.inner.fd.as_raw_fd(),
        }
    }

    /// Empties the pending-port ring and clears its overflow condition.
    ///
    /// Ports stay masked as they were: every port whose event was in the ring, or was
    /// dropped when it overflowed, is still masked, and nobody will read it now to unmask it.
    /// After an [`Error::Overflow`], [`EventChannel::unmask`] every bound port (unmasking one
    /// that is not masked does nothing) and look at whatever its events stand for; otherwise
    /// those ports' next events stay pending in Xen for good.
    pub fn reset(&self) -> Result<()> {
        // SAFETY: IOCTL_EVTCHN_RESET takes no argument; the kernel ignores the pointer.
        unsafe {
            self.inner.sys.ioctl(
                self.inner.fd.as_raw_fd(),
                IOCTL_EVTCHN_RESET,
                std::ptr::null_mut(),
            )
        }
        .map(drop)
        .map_err(|source| Error::Ioctl {
            op: "reset",
            value: 0,
            source,
        })
    }

    /// Restricts new interdomain bindings of this descriptor to domain `domid`. Irrevocable;
    /// ports bound before stay bound.
    pub fn restrict_domid(&self, domid: DomId) -> Result<()> {
        let mut arg = IoctlEvtchnRestrictDomid { domid: domid.get() };
        // SAFETY: an IoctlEvtchnRestrictDomid for IOCTL_EVTCHN_RESTRICT_DOMID.
        unsafe {
            self.ioctl(
                "restrict_domid",
                domid.get().into(),
                IOCTL_EVTCHN_RESTRICT_DOMID,
                &mut arg,
            )
        }
        .map(drop)
    }

    /// Reads pending ports into `ports` and returns how many were read.
    ///
    /// Each returned port is masked until [`EventChannel::unmask`]. Blocks on a blocking
    /// descriptor while nothing is pending; returns `Ok(0)` on a non-blocking one.
    #[inline]
    pub fn read_pending(&self, ports: &mut [Port]) -> Result<usize> {
        if ports.is_empty() {
            return Ok(0);
        }
        let len = std::mem::size_of_val(ports);
        // SAFETY: `ports` is an exclusively borrowed buffer of exactly `len` bytes, and any bit
        // pattern the kernel writes is a valid `u32`.
        let ret = unsafe {
            self.inner
                .sys
                .read(self.inner.fd.as_raw_fd(), ports.as_mut_ptr().cast(), len)
        };
        match ret {
            Ok(n) if n % 4 != 0 || n > len => Err(Error::PartialTransfer { op: "read", len: n }),
            Ok(n) => Ok(n / 4),
            Err(e) => read_failed(e).map(|()| 0),
        }
    }

    /// [`EventChannel::read_pending`] into an array, for a loop that serves the ports it reads:
    /// the ports read, the start of `ports` (empty when a non-blocking descriptor has none).
    /// See [`EventChannelOps::read_pending_into`].
    #[inline]
    pub fn read_pending_into<'p, const N: usize>(
        &self,
        ports: &'p mut [Port; N],
    ) -> Result<&'p [Port]> {
        self.ops().read_pending_into(ports)
    }

    /// Reads one pending port: `Ok(None)` when a non-blocking descriptor has none.
    pub fn pending(&self) -> Result<Option<Port>> {
        let mut port = [0];
        Ok((self.read_pending(&mut port)? == 1).then_some(port[0]))
    }

    /// Waits up to `timeout` (forever with `None`) for a pending port and reads it.
    ///
    /// `Ok(None)` means the time ran out. Meant for bounded waits (failure detection in tests,
    /// watchdogs); an event loop with several sources should use epoll on the descriptor.
    pub fn wait_pending(&self, timeout: Option<Duration>) -> Result<Option<Port>> {
        let [ready] =
            crate::poll::readable([Some(self.inner.fd.as_fd())], timeout).map_err(Error::Poll)?;
        if !ready {
            return Ok(None);
        }
        self.pending()
    }

    /// Re-arms `port` after its event was handled.
    #[inline]
    pub fn unmask(&self, port: Port) -> Result<()> {
        self.ops().unmask(port)
    }
}

/// What an event loop does with an [`EventChannel`] for every event — read the pending ports,
/// notify, unmask — on the descriptor looked up once ([`EventChannel::ops`]).
///
/// The channel's descriptor is behind its shared state: each call through the channel
/// follows a pointer to it first. A loop that takes this handle before it starts keeps the
/// descriptor in a register (or its stack) instead. It borrows the channel, which keeps the
/// descriptor open.
#[derive(Debug)]
pub struct EventChannelOps<'a, S: Sys = RealSys> {
    sys: &'a S,
    fd: RawFd,
}

impl<S: Sys> Clone for EventChannelOps<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Sys> Copy for EventChannelOps<'_, S> {}

impl<S: Sys> EventChannelOps<'_, S> {
    /// [`EventChannel::notify`].
    #[inline]
    pub fn notify(self, port: Port) -> Result<()> {
        let mut arg = IoctlEvtchnNotify { port };
        // SAFETY: `arg` is a live, exclusively borrowed IoctlEvtchnNotify, the struct
        // IOCTL_EVTCHN_NOTIFY takes, and `fd` is the borrowed channel's open descriptor.
        let ret = unsafe {
            self.sys.ioctl(
                self.fd,
                IOCTL_EVTCHN_NOTIFY,
                (&mut arg as *mut IoctlEvtchnNotify).cast(),
            )
        };
        match ret {
            Ok(_) => Ok(()),
            Err(source) => Err(Error::Ioctl {
                op: "notify",
                value: port,
                source,
            }),
        }
    }

    /// [`EventChannel::read_pending`] into an array, for a loop that serves the ports it reads:
    /// the ports read, the start of `ports` (empty when a non-blocking descriptor has none).
    ///
    /// The same read and the same errors, with the answer checked in fewer instructions: the
    /// byte count is a whole number of ports no more than `N` in one comparison, and the
    /// caller's loop over the ports needs no bound of its own.
    #[inline(always)]
    pub fn read_pending_into<const N: usize>(self, ports: &mut [Port; N]) -> Result<&[Port]> {
        let len = std::mem::size_of_val(ports);
        // SAFETY: `ports` is an exclusively borrowed buffer of exactly `len` bytes, and any bit
        // pattern the kernel writes is a valid `u32`; `fd` is the borrowed channel's.
        let ret = unsafe { self.sys.read(self.fd, ports.as_mut_ptr().cast(), len) };
        match ret {
            // Rotated, a count that is not a multiple of 4 has its remainder in the top bits,
            // and is more than `N`: `get` takes whole ports that fit, and nothing else.
            Ok(n) => match ports.get(..n.rotate_right(2)) {
                Some(read) => Ok(read),
                None => Err(Error::PartialTransfer { op: "read", len: n }),
            },
            Err(e) => read_failed(e).map(|()| &ports[..0]),
        }
    }

    /// [`EventChannel::unmask`].
    #[inline]
    pub fn unmask(self, port: Port) -> Result<()> {
        let bytes = port.to_ne_bytes();
        // SAFETY: `bytes` is a live 4-byte buffer the kernel only reads; `fd` is the borrowed
        // channel's.
        let ret = unsafe { self.sys.write(self.fd, bytes.as_ptr(), bytes.len()) };
        match ret {
            Ok(4) => Ok(()),
            other => Err(unmask_failed(port, other)),
        }
    }
}

/// The error of an unmask of `port` whose write returned `ret`, not 4 bytes. Out of line: the
/// common path tests for the 4 bytes alone.
#[cold]
#[inline(never)]
fn unmask_failed(port: Port, ret: io::Result<usize>) -> Error {
    match ret {
        Ok(n) => Error::PartialTransfer {
            op: "write",
            len: n,
        },
        Err(source) => Error::Unmask { port, source },
    }
}

impl<S: Sys> AsRawFd for EventChannel<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd.as_raw_fd()
    }
}

impl<S: Sys> AsFd for EventChannel<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }
}

/// A read of pending ports failed with `e`: `Ok` (nothing read) when a non-blocking descriptor
/// has nothing pending, [`Error::Overflow`] when the kernel's queue overflowed, the error
/// otherwise. Out of line: a read's common path does not build errors.
#[cold]
#[inline(never)]
fn read_failed(e: io::Error) -> Result<()> {
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(())
    } else if e.raw_os_error() == Some(libc::EFBIG) {
        Err(Error::Overflow)
    } else {
        Err(Error::Read(e))
    }
}

/// A port bound through an [`EventChannel`]; unbound when dropped.
#[derive(Debug)]
pub struct BoundPort<S: Sys = RealSys> {
    evtchn: EventChannel<S>,
    port: Port,
}

impl<S: Sys> BoundPort<S> {
    /// The local port number.
    pub fn port(&self) -> Port {
        self.port
    }

    /// Sends an event on this port.
    pub fn notify(&self) -> Result<()> {
        self.evtchn.notify(self.port)
    }

    /// Re-arms this port after its event was handled.
    pub fn unmask(&self) -> Result<()> {
        self.evtchn.unmask(self.port)
    }

    /// The descriptor the port is bound through.
    pub fn event_channel(&self) -> &EventChannel<S> {
        &self.evtchn
    }

    /// Gives up the guard without unbinding; the port stays bound until
    /// [`EventChannel::unbind`] or until the descriptor closes.
    pub fn into_raw(self) -> Port {
        let port = self.port;
        // Dropping the handle clone is fine; only the unbind in `Drop` must be skipped.
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so moving the handle out of it
        // leaves no double drop.
        drop(unsafe { std::ptr::read(&this.evtchn) });
        port
    }
}

impl<S: Sys> Drop for BoundPort<S> {
    fn drop(&mut self) {
        if let Err(e) = self.evtchn.unbind(self.port) {
            log::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests;
