// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A xenstore client speaking the wire protocol directly, over xenstored's unix socket or the
//! kernel's `/dev/xen/xenbus` device.
//!
//! [`Xenstore`] offers the node operations (read, write, mkdir, rm, directory, permissions,
//! domain paths), transactions with a retry helper ([`Xenstore::transaction`]) and watches.
//! Listings too large for one message are fetched in parts (`XS_DIRECTORY_PART`)
//! transparently.
//!
//! # Watches
//!
//! Watch events arrive on the same connection as replies, in any order relative to them. The
//! client sorts them out: events read while waiting for a reply are queued, and
//! [`Xenstore::next_event`] / [`Xenstore::wait_event`] / [`Xenstore::events`] hand them out.
//! xenstored fires every new watch once right away, so a watcher can read the initial state
//! when that first event arrives.
//!
//! - From a thread: move a dedicated connection there and iterate [`Xenstore::events`].
//! - From epoll: register [`Xenstore::fd`] for `EPOLLIN`; on readiness, and before going
//!   back to sleep if requests were made on the same connection (they may have queued events),
//!   drain with `wait_event(Some(Duration::ZERO))` until it returns `Ok(None)`.
//!
//! # Trust
//!
//! Everything xenstored sends is checked: payloads are capped at [`XENSTORE_PAYLOAD_MAX`],
//! replies must match the request, strings must be well-formed; anything else is a typed
//! [`Error`], never a panic. A framing error makes the connection unusable
//! ([`Error::Desynchronized`]) rather than misreading the following messages.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use xen_bindings::xenstore::Xenstore;
//!
//! # fn main() -> Result<(), xen_bindings::xenstore::Error> {
//! let mut xs = Xenstore::open()?;
//! let name = xs.read_string("/local/domain/0/name")?;
//! xs.write("/local/domain/0/data/greeting", b"hello")?;
//!
//! // Update two nodes atomically, retrying if another writer got in between.
//! xs.transaction(10, |tx| {
//!     let n: u32 = match tx.read_string("/local/domain/0/data/counter") {
//!         Ok(text) => text.parse().unwrap_or(0),
//!         Err(e) if e.is_not_found() => 0,
//!         Err(e) => return Err(e),
//!     };
//!     tx.write("/local/domain/0/data/counter", (n + 1).to_string())?;
//!     tx.write("/local/domain/0/data/last-writer", name.as_bytes())
//! })?;
//!
//! xs.watch("/local/domain/0/data", "data-changed")?;
//! while let Some(event) = xs.wait_event(Some(Duration::from_secs(1)))? {
//!     println!("{} changed ({})", event.path, event.token);
//! }
//! # Ok(())
//! # }
//! ```

mod domain;
mod error;
pub mod perms;
pub mod transport;
pub mod wire;

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::DomId;

pub use error::{Error, Result};
pub use perms::{Access, Permission};
pub use transport::{SocketTransport, Transport, XenbusTransport};
pub use wire::{MsgType, XsErrno, XENSTORE_PAYLOAD_MAX};

use transport::{XENBUS_DEVICE, XENSTORED_SOCKET, XENSTORED_SOCKET_LEGACY};
use wire::{FrameError, Message, HEADER_LEN, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX};

/// The most watch events queued while the application is not reading them; more are dropped
/// (and counted in [`Xenstore::lost_events`]) so a flood cannot exhaust memory.
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// A fired watch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchEvent {
    /// The node that changed (or the watched path, for the initial event).
    pub path: String,
    /// The token given to [`Xenstore::watch`].
    pub token: String,
}

impl WatchEvent {
    /// Parses an event payload: `path\0token\0`.
    fn parse(payload: &[u8]) -> std::result::Result<Self, &'static str> {
        let mut parts = payload.split(|&b| b == 0);
        let path = parts.next().filter(|p| !p.is_empty()).ok_or("no path")?;
        let token = parts.next().ok_or("no token")?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "not UTF-8");
        Ok(Self {
            path: text(path)?,
            token: text(token)?,
        })
    }
}

/// A transaction id from [`Xenstore::transaction_start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId(u32);

impl TxId {
    /// The id on the wire.
    pub fn raw(self) -> u32 {
        self.0
    }
}

/// How long a request waits for xenstored's reply unless [`Xenstore::set_reply_timeout`] says
/// otherwise: far longer than a healthy daemon takes, short enough that a wedged one cannot
/// hang its caller (a device model's xenstore thread, say) for good.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to xenstored.
#[derive(Debug)]
pub struct Xenstore<T: Transport = Box<dyn Transport + Send>> {
    transport: T,
    rx: Vec<u8>,
    events: VecDeque<WatchEvent>,
    lost_events: u64,
    next_req_id: u32,
    broken: Option<String>,
    reply_timeout: Option<Duration>,
}

impl Xenstore<Box<dyn Transport + Send>> {
    /// Connects to xenstored: its unix socket ([`XENSTORED_SOCKET`], then
    /// [`XENSTORED_SOCKET_LEGACY`]), else the kernel's [`XENBUS_DEVICE`].
    pub fn open() -> Result<Self> {
        let mut tried = Vec::new();
        for path in [XENSTORED_SOCKET, XENSTORED_SOCKET_LEGACY] {
            match SocketTransport::connect(path) {
                Ok(t) => return Ok(Self::new(Box::new(t))),
                Err(e) => tried.push(format!("{path}: {e}")),
            }
        }
        match XenbusTransport::open(XENBUS_DEVICE) {
            Ok(t) => Ok(Self::new(Box::new(t))),
            Err(e) => {
                tried.push(format!("{XENBUS_DEVICE}: {e}"));
                Err(Error::Unreachable {
                    tried: tried.join("; "),
                })
            }
        }
    }
}

/// Checks a path argument before it goes on the wire.
fn check_path(op: &'static str, path: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidArgument {
        op,
        value: path.chars().take(64).collect(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("empty path"));
    }
    if path.contains('\0') {
        return Err(invalid("NUL byte in path"));
    }
    let max = if path.starts_with('/') {
        XENSTORE_ABS_PATH_MAX
    } else {
        XENSTORE_REL_PATH_MAX
    };
    if path.len() > max {
        return Err(invalid("path longer than xenstored accepts"));
    }
    Ok(())
}

/// `s` followed by a NUL.
fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// Parses a reply made of one NUL-terminated string.
fn single_string(op: &'static str, payload: Vec<u8>) -> Result<String> {
    let body = payload.strip_suffix(b"\0").unwrap_or(&payload);
    if body.contains(&0) {
        return Err(malformed(op, "embedded NUL in a string reply"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| malformed(op, "reply is not UTF-8"))
}

/// Parses NUL-separated child names.
fn child_names(op: &'static str, list: &[u8]) -> Result<Vec<String>> {
    list.split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| {
            String::from_utf8(name.to_vec()).map_err(|_| malformed(op, "child name is not UTF-8"))
        })
        .collect()
}

fn malformed(op: &'static str, reason: impl Into<String>) -> Error {
    Error::Malformed {
        op,
        reason: reason.into(),
    }
}

impl<T: Transport> Xenstore<T> {
    /// A client over `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            rx: Vec::new(),
            events: VecDeque::new(),
            lost_events: 0,
            next_req_id: 1,
            broken: None,
            reply_timeout: Some(DEFAULT_REPLY_TIMEOUT),
        }
    }

    /// How long a request waits for its reply ([`DEFAULT_REPLY_TIMEOUT`] unless set; `None`:
    /// forever). A daemon that does not answer in time fails the request with
    /// [`Error::Timeout`], and the connection is unusable from then on: a late reply would
    /// otherwise be taken for the answer to a later request.
    pub fn set_reply_timeout(&mut self, timeout: Option<Duration>) {
        self.reply_timeout = timeout;
    }

    /// The transport's descriptor, for epoll (see the module documentation) or
    /// [`crate::poll::readable`].
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.transport.fd()
    }

    /// How many watch events were dropped because [`MAX_QUEUED_EVENTS`] were already queued.
    pub fn lost_events(&self) -> u64 {
        self.lost_events
    }

    /// Whether an event can be returned without reading the transport.
    pub fn has_buffered_event(&self) -> bool {
        !self.events.is_empty() || self.rx.len() >= HEADER_LEN
    }

    /// Marks the connection unusable and returns the error saying so.
    fn desync(&mut self, reason: String) -> Error {
        log::warn!("xenstore connection unusable: {reason}");
        self.broken.get_or_insert(reason.clone());
        Error::Desynchronized { reason }
    }

    fn check_usable(&self) -> Result<()> {
        match &self.broken {
            Some(reason) => Err(Error::Desynchronized {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The next complete message; `Ok(None)` if none arrived before `deadline`.
    fn next_message(
        &mut self,
        op: &'static str,
        deadline: Option<Instant>,
    ) -> Result<Option<Message>> {
        loop {
            match wire::take_message(&mut self.rx) {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(FrameError::TooLong(len)) => {
                    return Err(self.desync(format!(
                        "message of {len} bytes exceeds XENSTORE_PAYLOAD_MAX"
                    )))
                }
            }
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.transport.wait_readable(Some(left)) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(source) => return Err(Error::Io { op, source }),
                }
            }
            let mut chunk = [0u8; HEADER_LEN + XENSTORE_PAYLOAD_MAX];
            match self.transport.recv(&mut chunk) {
                Ok(0) => {
                    self.broken
                        .get_or_insert_with(|| "connection closed".into());
                    return Err(Error::Closed { op });
                }
                Ok(n) => self.rx.extend_from_slice(&chunk[..n.min(chunk.len())]),
                Err(source) => {
                    self.broken
                        .get_or_insert_with(|| format!("read failed: {source}"));
                    return Err(Error::Io { op, source });
                }
            }
        }
    }

    fn queue_event(&mut self, ev: WatchEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.lost_events += 1;
            log::warn!("xenstore watch event for {:?} dropped: queue full", ev.path);
        } else {
            self.events.push_back(ev);
        }
    }

    /// Sends a request and returns the payload of its reply, queueing watch events that
    /// arrive meanwhile.
    fn request(
        &mut self,
        op: &'static str,
        ty: MsgType,
        tx: u32,
        payload: Vec<u8>,
        arg: &str,
    ) -> Result<Vec<u8>> {
        self.check_usable()?;
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1);
        let msg = Message::new(ty, req_id, tx, payload).ok_or_else(|| Error::InvalidArgument {
            op,
            value: arg.chars().take(64).collect(),
            reason: "request larger than XENSTORE_PAYLOAD_MAX",
        })?;
        if let Err(source) = self.transport.send(&msg.to_bytes()) {
            // A partial write leaves the daemon mid-message.
            self.broken
                .get_or_insert_with(|| format!("write failed: {source}"));
            return Err(Error::Io { op, source });
        }
        // A timeout too large to represent means no deadline.
        let deadline = self
            .reply_timeout
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            let Some(reply) = self.next_message(op, deadline)? else {
                let after = self.reply_timeout.unwrap_or_default();
                self.desync(format!("no reply to {op} within {after:?}"));
                return Err(Error::Timeout { op, after });
            };
            let h = reply.header;
            if h.ty == MsgType::WatchEvent as u32 {
                match WatchEvent::parse(&reply.payload) {
                    Ok(ev) => self.queue_event(ev),
                    Err(why) => log::warn!("xenstore: malformed watch event dropped: {why}"),
                }
                continue;
            }
            if h.req_id != req_id {
                return Err(self.desync(format!(
                    "reply with request id {} while waiting for {req_id}",
                    h.req_id
                )));
            }
            if h.ty == MsgType::Error as u32 {
                return Err(Error::Xenstored {
                    op,
                    path: arg.to_string(),
                    errno: XsErrno::from_payload(&reply.payload),
                });
            }
            if h.ty != ty as u32 {
                return Err(malformed(
                    op,
                    format!("reply of type {} to a request of type {}", h.ty, ty as u32),
                ));
            }
            return Ok(reply.payload);
        }
    }

    fn do_read(&mut self, tx: u32, path: &str) -> Result<Vec<u8>> {
        check_path("read", path)?;
        self.request("read", MsgType::Read, tx, nul_terminated(path), path)
    }

    fn do_read_string(&mut self, tx: u32, path: &str) -> Result<String> {
        let v = self.do_read(tx, path)?;
        String::from_utf8(v).map_err(|_| malformed("read", format!("value of {path} is not UTF-8")))
    }

    fn do_write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<()> {
        check_path("write", path)?;
        let mut p = nul_terminated(path);
        p.extend_from_slice(value);
        self.request("write", MsgType::Write, tx, p, path).map(drop)
    }

    fn do_mkdir(&mut self, tx: u32, path: &str) -> Result<()> {
        check_path("mkdir", path)?;
        self.request("mkdir", MsgType::Mkdir, tx, nul_terminated(path), path)
            .map(drop)
    }

    fn do_rm(&mut self, tx: u32, path: &str) -> Result<()> {
        check_path("rm", path)?;
        self.request("rm", MsgType::Rm, tx, nul_terminated(path), path)
            .map(drop)
    }

    fn do_directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        check_path("directory", path)?;
        let reply = self.request(
            "directory",
            MsgType::Directory,
            tx,
            nul_terminated(path),
            path,
        );
        match reply {
            Ok(reply) => child_names("directory", &reply),
            // The listing does not fit one message: fetch it in parts.
            Err(e) if e.xs_errno() == Some(&XsErrno::TooBig) => self.directory_parts(tx, path),
            Err(e) => Err(e),
        }
    }

    /// Lists children with `XS_DIRECTORY_PART`, restarting if the node changes meanwhile.
    ///
    /// Each reply is the node's generation count, then the names from the requested byte
    /// offset of the child list; the part that reaches the end of the list adds an empty name.
    fn directory_parts(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        const OP: &str = "directory_part";
        // Bounds against a daemon that never finishes or keeps changing the node.
        const MAX_RESTARTS: usize = 8;
        const MAX_LISTING: usize = 1 << 20;
        'restart: for _ in 0..MAX_RESTARTS {
            let mut names = Vec::new();
            let mut generation: Option<Vec<u8>> = None;
            let mut offset = 0usize;
            loop {
                let mut req = nul_terminated(path);
                req.extend_from_slice(&nul_terminated(&offset.to_string()));
                let reply = self.request(OP, MsgType::DirectoryPart, tx, req, path)?;
                let (gen, rest) = match reply.iter().position(|&b| b == 0) {
                    Some(n) => (&reply[..n], &reply[n + 1..]),
                    None => return Err(malformed(OP, "no generation count")),
                };
                if gen.is_empty() || !gen.iter().all(u8::is_ascii_digit) {
                    return Err(malformed(OP, "invalid generation count"));
                }
                match &generation {
                    None => generation = Some(gen.to_vec()),
                    Some(g) if g.as_slice() != gen => continue 'restart,
                    Some(_) => {}
                }
                // The names, each NUL-terminated; the last part adds an empty name.
                if !rest.ends_with(b"\0") {
                    return Err(malformed(OP, "name not terminated"));
                }
                if rest == b"\0" || rest.ends_with(b"\0\0") {
                    names.extend(child_names(OP, &rest[..rest.len() - 1])?);
                    return Ok(names);
                }
                names.extend(child_names(OP, rest)?);
                offset += rest.len();
                if offset > MAX_LISTING {
                    return Err(malformed(OP, "listing longer than 1 MiB"));
                }
            }
        }
        Err(malformed(OP, "the node kept changing while being listed"))
    }

    fn do_get_perms(&mut self, tx: u32, path: &str) -> Result<Vec<Permission>> {
        check_path("get_perms", path)?;
        let reply = self.request(
            "get_perms",
            MsgType::GetPerms,
            tx,
            nul_terminated(path),
            path,
        )?;
        Permission::parse_list(&reply)
            .ok_or_else(|| malformed("get_perms", "invalid permission list"))
    }

    fn do_set_perms(&mut self, tx: u32, path: &str, perms: &[Permission]) -> Result<()> {
        check_path("set_perms", path)?;
        if perms.is_empty() {
            return Err(Error::InvalidArgument {
                op: "set_perms",
                value: path.into(),
                reason: "a permission list needs at least the owner entry",
            });
        }
        let mut p = nul_terminated(path);
        for perm in perms {
            p.extend_from_slice(&nul_terminated(&perm.to_string()));
        }
        self.request("set_perms", MsgType::SetPerms, tx, p, path)
            .map(drop)
    }

    /// Reads a node's value.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.do_read(0, path)
    }

    /// Reads a node's value as text.
    pub fn read_string(&mut self, path: &str) -> Result<String> {
        self.do_read_string(0, path)
    }

    /// Writes a node, creating it (and missing parents) if needed.
    pub fn write(&mut self, path: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.do_write(0, path, value.as_ref())
    }

    /// Creates a node with an empty value (no error if it exists).
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.do_mkdir(0, path)
    }

    /// Removes a node and everything below it.
    pub fn rm(&mut self, path: &str) -> Result<()> {
        self.do_rm(0, path)
    }

    /// Lists the names of a node's children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.do_directory(0, path)
    }

    /// Reads a node's permissions; the first entry is the owner's.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Permission>> {
        self.do_get_perms(0, path)
    }

    /// Sets a node's permissions; the first entry names the owner and the default access.
    pub fn set_perms(&mut self, path: &str, perms: &[Permission]) -> Result<()> {
        self.do_set_perms(0, path, perms)
    }

    /// The home path of domain `domid` (`/local/domain/<domid>`).
    pub fn get_domain_path(&mut self, domid: DomId) -> Result<String> {
        let arg = domid.to_string();
        let reply = self.request(
            "get_domain_path",
            MsgType::GetDomainPath,
            0,
            nul_terminated(&arg),
            &arg,
        )?;
        let path = single_string("get_domain_path", reply)?;
        if path.is_empty() {
            return Err(malformed("get_domain_path", "empty path"));
        }
        Ok(path)
    }

    /// Registers a watch on `path` and everything below it; events carry `token`.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.watch_op("watch", MsgType::Watch, path, token)
    }

    /// Removes a watch registered with the same path and token.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        self.watch_op("unwatch", MsgType::Unwatch, path, token)
    }

    fn watch_op(&mut self, op: &'static str, ty: MsgType, path: &str, token: &str) -> Result<()> {
        check_path(op, path)?;
        if token.contains('\0') {
            return Err(Error::InvalidArgument {
                op,
                value: token.chars().take(64).collect(),
                reason: "NUL byte in token",
            });
        }
        let mut p = nul_terminated(path);
        p.extend_from_slice(&nul_terminated(token));
        self.request(op, ty, 0, p, path).map(drop)
    }

    /// Waits up to `timeout` (forever with `None`) for a watch event; `Ok(None)` when the time
    /// ran out. `Some(Duration::ZERO)` only returns what already arrived.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<Option<WatchEvent>> {
        const OP: &str = "wait_event";
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        self.check_usable()?;
        // A timeout too large to represent means no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let Some(msg) = self.next_message(OP, deadline)? else {
            return Ok(None);
        };
        if msg.header.ty != MsgType::WatchEvent as u32 {
            // Nothing is outstanding here, so any reply is a reply to nobody.
            return Err(self.desync(format!(
                "unsolicited message of type {} (request id {})",
                msg.header.ty, msg.header.req_id
            )));
        }
        match WatchEvent::parse(&msg.payload) {
            Ok(ev) => Ok(Some(ev)),
            Err(why) => Err(malformed(OP, format!("watch event: {why}"))),
        }
    }

    /// Blocks until a watch event arrives.
    pub fn next_event(&mut self) -> Result<WatchEvent> {
        loop {
            if let Some(ev) = self.wait_event(None)? {
                return Ok(ev);
            }
        }
    }

    /// A blocking iterator over watch events. It ends after an error that makes the connection
    /// unusable (closed, I/O error, protocol error), which it yields first.
    pub fn events(&mut self) -> Events<'_, T> {
        Events {
            xs: self,
            done: false,
        }
    }

    /// Starts a transaction.
    pub fn transaction_start(&mut self) -> Result<TxId> {
        let reply = self.request(
            "transaction_start",
            MsgType::TransactionStart,
            0,
            vec![0],
            "",
        )?;
        let text = single_string("transaction_start", reply)?;
        match text.parse::<u32>() {
            Ok(id) if id != 0 => Ok(TxId(id)),
            _ => Err(malformed(
                "transaction_start",
                format!(
                    "invalid transaction id {:?}",
                    text.chars().take(16).collect::<String>()
                ),
            )),
        }
    }

    /// Ends a transaction: commits it (`commit`), or aborts it. A commit that conflicts with
    /// another transaction fails with `EAGAIN` ([`Error::is_again`]).
    pub fn transaction_end(&mut self, tx: TxId, commit: bool) -> Result<()> {
        let payload = if commit { b"T\0" } else { b"F\0" };
        self.request(
            "transaction_end",
            MsgType::TransactionEnd,
            tx.0,
            payload.to_vec(),
            &tx.0.to_string(),
        )
        .map(drop)
    }

    /// Operations inside the started transaction `tx`.
    pub fn in_transaction(&mut self, tx: TxId) -> Transaction<'_, T> {
        Transaction { xs: self, tx }
    }

    /// Runs `f` in a transaction and commits it; reruns the whole transaction when xenstored
    /// answers `EAGAIN` (a conflicting commit), at most `max_attempts` times.
    ///
    /// If `f` fails, the transaction is aborted and `f`'s error returned.
    pub fn transaction<R>(
        &mut self,
        max_attempts: u32,
        mut f: impl FnMut(&mut Transaction<'_, T>) -> Result<R>,
    ) -> Result<R> {
        let attempts = max_attempts.max(1);
        for _ in 0..attempts {
            let tx = self.transaction_start()?;
            let result = f(&mut self.in_transaction(tx));
            match result {
                Ok(value) => match self.transaction_end(tx, true) {
                    Ok(()) => return Ok(value),
                    Err(e) if e.is_again() => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    if let Err(end) = self.transaction_end(tx, false) {
                        log::debug!("aborting xenstore transaction {}: {end}", tx.0);
                    }
                    if e.is_again() {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Err(Error::Conflict { attempts })
    }
}

/// Node operations inside a transaction (see [`Xenstore::in_transaction`] and
/// [`Xenstore::transaction`]).
#[derive(Debug)]
pub struct Transaction<'a, T: Transport> {
    xs: &'a mut Xenstore<T>,
    tx: TxId,
}

impl<T: Transport> Transaction<'_, T> {
    /// The transaction id.
    pub fn id(&self) -> TxId {
        self.tx
    }

    /// Reads a node's value.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.xs.do_read(self.tx.0, path)
    }

    /// Reads a node's value as text.
    pub fn read_string(&mut self, path: &str) -> Result<String> {
        self.xs.do_read_string(self.tx.0, path)
    }

    /// Writes a node.
    pub fn write(&mut self, path: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.xs.do_write(self.tx.0, path, value.as_ref())
    }

    /// Creates a node.
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.xs.do_mkdir(self.tx.0, path)
    }

    /// Removes a node and everything below it.
    pub fn rm(&mut self, path: &str) -> Result<()> {
        self.xs.do_rm(self.tx.0, path)
    }

    /// Lists the names of a node's children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.xs.do_directory(self.tx.0, path)
    }

    /// Reads a node's permissions.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Permission>> {
        self.xs.do_get_perms(self.tx.0, path)
    }

    /// Sets a node's permissions.
    pub fn set_perms(&mut self, path: &str, perms: &[Permission]) -> Result<()> {
        self.xs.do_set_perms(self.tx.0, path, perms)
    }
}

/// Blocking iterator over watch events, from [`Xenstore::events`].
#[derive(Debug)]
pub struct Events<'a, T: Transport> {
    xs: &'a mut Xenstore<T>,
    done: bool,
}

impl<T: Transport> Iterator for Events<'_, T> {
    type Item = Result<WatchEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.xs.next_event();
        if item.is_err() && self.xs.broken.is_some() {
            self.done = true;
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests;
