// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bodies of the xen-bindings fuzz targets, in a library so `tests/replay.rs` can replay the
//! regressions directory with a plain `cargo test`.

use fuzz_support::Input;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::time::Duration;

use xen_bindings::xenstore::wire::{self, Header, HEADER_LEN};
use xen_bindings::xenstore::{
    Access, Error, MsgType, Permission, Transport, Xenstore, XENSTORE_PAYLOAD_MAX,
};
use xen_bindings::DomId;

/// A xenstored whose every reply is read from the fuzz input: when the client sends a
/// request, the input says what comes back (a well-formed reply with a fuzzed payload, an error
/// reply, watch events, arbitrary headers or raw bytes) and how it is split across `recv`s.
struct FuzzDaemon<'a> {
    input: Rc<RefCell<Input<'a>>>,
    inbox: VecDeque<u8>,
    max_chunk: usize,
    sends: Rc<Cell<usize>>,
}

fn message(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Header {
        ty,
        req_id,
        tx_id,
        len: payload.len() as u32,
    }
    .to_bytes()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

impl FuzzDaemon<'_> {
    /// Appends what the input says the daemon answers to `req`.
    fn answer(&mut self, req: &Header) {
        let mut input = self.input.borrow_mut();
        // Up to four messages per request; the last byte's top bits end the answer.
        for _ in 0..4 {
            if input.is_empty() {
                return;
            }
            let mode = input.u8();
            let len = usize::from(input.u16()) % (XENSTORE_PAYLOAD_MAX + 1);
            let payload = input.bytes(len).to_vec();
            let bytes = match mode & 7 {
                // The reply the client waits for.
                0 | 1 => message(req.ty, req.req_id, req.tx_id, &payload),
                // An error reply.
                2 => message(MsgType::Error as u32, req.req_id, req.tx_id, &payload),
                // A watch event (possibly malformed), before the reply.
                3 | 4 => message(MsgType::WatchEvent as u32, 0, 0, &payload),
                // Any header (wrong id, unknown type, oversized length) and payload.
                5 => {
                    let h = Header {
                        ty: input.u32() % 32,
                        req_id: req.req_id.wrapping_add(u32::from(input.u8() & 3)),
                        tx_id: input.u32(),
                        len: input.u32() % (2 * XENSTORE_PAYLOAD_MAX as u32),
                    };
                    let mut v = h.to_bytes().to_vec();
                    v.extend_from_slice(&payload);
                    v
                }
                // Raw bytes.
                _ => payload,
            };
            self.inbox.extend(bytes);
            if mode & 0x80 != 0 {
                return;
            }
        }
    }
}

impl Transport for FuzzDaemon<'_> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.sends.set(self.sends.get() + 1);
        // The client sends one whole, valid message per call.
        let mut buf = msg.to_vec();
        let m = match wire::take_message(&mut buf) {
            Ok(Some(m)) => m,
            other => panic!("client sent a malformed message: {other:?}"),
        };
        assert!(buf.is_empty(), "one message per send");
        assert_eq!(m.payload.len(), m.header.len as usize);
        assert!(msg.len() <= HEADER_LEN + XENSTORE_PAYLOAD_MAX);
        if self.input.borrow().is_empty() {
            return Err(io::Error::other("daemon gone"));
        }
        self.answer(&m.header);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max_chunk).min(self.inbox.len());
        for (b, v) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *b = v;
        }
        Ok(n)
    }

    fn wait_readable(&mut self, _timeout: Option<Duration>) -> io::Result<bool> {
        // An empty inbox is a daemon with nothing more to say: the request times out at once.
        Ok(!self.inbox.is_empty())
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

const PATHS: [&str; 6] = [
    "/local/domain/1/device/vif/0/state",
    "data/x",
    "",
    "/",
    "relative//bad",
    "/local/domain/0/backend/virtio/1/0",
];

fn path(input: &mut Input<'_>) -> &'static str {
    PATHS[usize::from(input.u8()) % PATHS.len()]
}

/// Replays the fuzz input as a sequence of client calls answered by the input's daemon.
/// The client must never panic, hang or allocate without bound, and must refuse every call
/// after it said the connection is unusable.
pub fn xenstore_client(data: &[u8]) {
    let input = Rc::new(RefCell::new(Input::new(data)));
    let max_chunk = 1 + usize::from(input.borrow_mut().u16());
    let sends = Rc::new(Cell::new(0));
    let daemon = FuzzDaemon {
        input: Rc::clone(&input),
        inbox: VecDeque::new(),
        max_chunk,
        sends: Rc::clone(&sends),
    };
    let mut xs = Xenstore::new(daemon);
    xs.set_reply_timeout(Some(Duration::ZERO));
    let mut desynced = false;
    for _ in 0..64 {
        if input.borrow().is_empty() {
            break;
        }
        let op = input.borrow_mut().u8();
        let p = path(&mut input.borrow_mut());
        let result: Result<(), Error> = match op % 16 {
            0 => xs.read(p).map(drop),
            1 => xs.read_string(p).map(drop),
            2 => xs.write(p, b"value").map(drop),
            3 => xs.mkdir(p),
            4 => xs.rm(p),
            5 => xs.directory(p).map(|d| {
                assert!(d.iter().all(|n| !n.contains('\0')));
            }),
            6 => xs.get_perms(p).map(drop),
            7 => xs.set_perms(p, &[Permission::new(DomId::DOM0, Access::ReadWrite)]),
            8 => xs.get_domain_path(DomId::new(u16::from(op >> 4))).map(drop),
            9 => xs.watch(p, "tok"),
            10 => xs.unwatch(p, "tok"),
            11 => xs.transaction_start().map(drop),
            12 => {
                let tx = xs.transaction_start();
                match tx {
                    Ok(tx) => xs.transaction_end(tx, op & 0x10 != 0),
                    Err(e) => Err(e),
                }
            }
            13 => xs.transaction(3, |t| {
                let v = t.read(p)?;
                t.write(p, &v)?;
                t.directory(p).map(drop)
            }),
            _ => xs
                .wait_event(Some(Duration::ZERO))
                .map(|ev| assert!(ev.is_none_or(|e| !e.path.contains('\0')))),
        };
        match result {
            Err(Error::Desynchronized { .. }) | Err(Error::Closed { .. }) => desynced = true,
            Err(Error::Timeout { .. }) => desynced = true,
            Err(Error::Io { .. }) => desynced = true,
            _ => {}
        }
        if desynced && op % 16 != 15 {
            // Once unusable, every further request fails without reaching the daemon.
            let before = sends.get();
            assert!(xs.read("/x").is_err());
            assert_eq!(before, sends.get());
        }
    }
    // Drain what is still queued: bounded by the queue's limit.
    let mut drained = 0;
    while let Ok(Some(_)) = xs.wait_event(Some(Duration::ZERO)) {
        drained += 1;
        assert!(drained <= 1 << 16, "event queue unbounded");
    }
}
