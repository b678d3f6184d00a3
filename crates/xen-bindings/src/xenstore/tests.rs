// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the xenstore client over an in-memory fake transport.

use super::*;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

type Handler = Box<dyn FnMut(&Message) -> Vec<Vec<u8>>>;

/// A scripted xenstored: every request is recorded and answered by `handler` with raw byte
/// chunks, delivered at most `max_chunk` bytes per `recv`. An empty inbox is a daemon with
/// nothing to say (not readable), or with `closed` a closed connection (readable, end of file).
struct Fake {
    handler: Handler,
    inbox: VecDeque<u8>,
    sent: Rc<RefCell<Vec<Message>>>,
    max_chunk: usize,
    closed: bool,
}

impl Transport for Fake {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut buf = msg.to_vec();
        let m = wire::take_message(&mut buf)
            .unwrap()
            .expect("a whole message per send");
        assert!(buf.is_empty(), "one message per send");
        self.sent.borrow_mut().push(m.clone());
        for chunk in (self.handler)(&m) {
            self.inbox.extend(chunk);
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max_chunk).min(self.inbox.len());
        for b in buf.iter_mut().take(n) {
            *b = self.inbox.pop_front().unwrap();
        }
        Ok(n)
    }

    fn wait_readable(&mut self, _timeout: Option<Duration>) -> io::Result<bool> {
        // A closed connection is readable (end of file); a silent daemon is not.
        Ok(!self.inbox.is_empty() || self.closed)
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

fn client(
    handler: impl FnMut(&Message) -> Vec<Vec<u8>> + 'static,
) -> (Xenstore<Fake>, Rc<RefCell<Vec<Message>>>) {
    client_chunked(usize::MAX, handler)
}

fn client_chunked(
    max_chunk: usize,
    handler: impl FnMut(&Message) -> Vec<Vec<u8>> + 'static,
) -> (Xenstore<Fake>, Rc<RefCell<Vec<Message>>>) {
    let sent = Rc::new(RefCell::new(Vec::new()));
    let fake = Fake {
        handler: Box::new(handler),
        inbox: VecDeque::new(),
        sent: Rc::clone(&sent),
        max_chunk,
        closed: false,
    };
    (Xenstore::new(fake), sent)
}

fn raw(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = wire::Header {
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

fn reply(req: &Message, payload: &[u8]) -> Vec<u8> {
    raw(req.header.ty, req.header.req_id, req.header.tx_id, payload)
}

fn error_reply(req: &Message, name: &str) -> Vec<u8> {
    let mut p = name.as_bytes().to_vec();
    p.push(0);
    raw(
        MsgType::Error as u32,
        req.header.req_id,
        req.header.tx_id,
        &p,
    )
}

fn event(path: &str, token: &str) -> Vec<u8> {
    let p = format!("{path}\0{token}\0");
    raw(MsgType::WatchEvent as u32, 0, 0, p.as_bytes())
}

#[test]
fn read_write_mkdir_rm_marshal() {
    let (mut xs, sent) = client(|req| {
        let ok = reply(req, b"OK\0");
        match MsgType::from_raw(req.header.ty).unwrap() {
            MsgType::Read => vec![reply(req, b"value")],
            _ => vec![ok],
        }
    });
    assert_eq!(xs.read("/local/domain/0/name").unwrap(), b"value");
    assert_eq!(xs.read_string("/x").unwrap(), "value");
    xs.write("/a/b", b"v\0bin").unwrap();
    xs.mkdir("/a/c").unwrap();
    xs.rm("/a").unwrap();
    let sent = sent.borrow();
    assert_eq!(sent[0].header.ty, MsgType::Read as u32);
    assert_eq!(sent[0].header.tx_id, 0);
    assert_eq!(sent[0].payload, b"/local/domain/0/name\0");
    assert_eq!(sent[2].header.ty, MsgType::Write as u32);
    assert_eq!(sent[2].payload, b"/a/b\0v\0bin");
    assert_eq!(sent[3].payload, b"/a/c\0");
    assert_eq!(sent[4].header.ty, MsgType::Rm as u32);
    // Request ids are distinct.
    assert_ne!(sent[0].header.req_id, sent[1].header.req_id);
}

#[test]
fn directory_and_domain_path_parse() {
    let (mut xs, sent) = client(|req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::Directory if req.payload == b"/empty\0" => vec![reply(req, b"")],
        MsgType::Directory => vec![reply(req, b"a\0bb\0c\0")],
        MsgType::GetDomainPath => vec![reply(req, b"/local/domain/3\0")],
        _ => unreachable!(),
    });
    assert_eq!(xs.directory("/local").unwrap(), ["a", "bb", "c"]);
    assert!(xs.directory("/empty").unwrap().is_empty());
    assert_eq!(
        xs.get_domain_path(DomId::new(3)).unwrap(),
        "/local/domain/3"
    );
    assert_eq!(sent.borrow()[2].payload, b"3\0");
}

#[test]
fn error_replies_map_to_typed_errors() {
    let names = ["ENOENT", "EACCES", "EAGAIN", "EINVAL", "E2BIG", "EQUOTA"];
    let mut i = 0;
    let (mut xs, _) = client(move |req| {
        let r = error_reply(req, names[i]);
        i += 1;
        vec![r]
    });
    let e = xs.read("/missing").unwrap_err();
    assert!(e.is_not_found());
    assert!(
        e.to_string().contains("ENOENT") && e.to_string().contains("/missing"),
        "{e}"
    );
    assert_eq!(
        xs.write("/ro", b"x").unwrap_err().xs_errno(),
        Some(&XsErrno::Acces)
    );
    assert!(xs.mkdir("/busy").unwrap_err().is_again());
    assert_eq!(xs.rm("/bad").unwrap_err().xs_errno(), Some(&XsErrno::Inval));
    assert_eq!(
        xs.read("/big").unwrap_err().xs_errno(),
        Some(&XsErrno::TooBig)
    );
    assert_eq!(
        xs.read("/odd").unwrap_err().xs_errno(),
        Some(&XsErrno::Other("EQUOTA".into()))
    );
    // Error replies do not break the connection.
    assert!(xs.check_usable().is_ok());
}

#[test]
fn watch_events_interleaved_with_replies_are_demultiplexed() {
    let (mut xs, sent) = client(|req| match MsgType::from_raw(req.header.ty).unwrap() {
        // xenstored acks the watch and fires it once at once.
        MsgType::Watch => vec![reply(req, b"OK\0"), event("/data", "tok")],
        // An event before and after the reply.
        MsgType::Read => vec![
            event("/data/a", "tok"),
            reply(req, b"1"),
            event("/data/b", "tok"),
        ],
        _ => vec![reply(req, b"OK\0")],
    });
    xs.watch("/data", "tok").unwrap();
    assert_eq!(sent.borrow()[0].payload, b"/data\0tok\0");
    assert_eq!(xs.read("/data/a").unwrap(), b"1");
    assert!(xs.has_buffered_event());
    let got: Vec<String> = (0..3)
        .map(|_| xs.wait_event(Some(Duration::ZERO)).unwrap().unwrap().path)
        .collect();
    assert_eq!(got, ["/data", "/data/a", "/data/b"]);
    assert_eq!(xs.wait_event(Some(Duration::ZERO)).unwrap(), None);
    xs.unwatch("/data", "tok").unwrap();
    assert_eq!(sent.borrow()[2].header.ty, MsgType::Unwatch as u32);
}

#[test]
fn events_iterator_ends_after_close() {
    let (mut xs, _) = client(|req| vec![reply(req, b"OK\0"), event("/p", "t1"), event("/q", "t2")]);
    xs.watch("/p", "t1").unwrap();
    let mut it = xs.events();
    assert_eq!(
        it.next().unwrap().unwrap(),
        WatchEvent {
            path: "/p".into(),
            token: "t1".into()
        }
    );
    assert_eq!(it.next().unwrap().unwrap().token, "t2");
    assert!(matches!(it.next(), Some(Err(Error::Closed { .. }))));
    assert!(it.next().is_none());
}

#[test]
fn fragmented_delivery_is_reassembled() {
    let (mut xs, _) = client_chunked(1, |req| vec![event("/w", "t"), reply(req, b"abc")]);
    assert_eq!(xs.read("/r").unwrap(), b"abc");
    assert_eq!(xs.next_event().unwrap().path, "/w");
}

#[test]
fn oversized_reply_desynchronizes_and_stops_further_requests() {
    let (mut xs, sent) = client(|req| {
        let mut r = reply(req, b"");
        r[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_ne_bytes());
        vec![r]
    });
    assert!(matches!(xs.read("/a"), Err(Error::Desynchronized { .. })));
    assert!(matches!(xs.read("/a"), Err(Error::Desynchronized { .. })));
    assert!(matches!(
        xs.wait_event(Some(Duration::ZERO)),
        Err(Error::Desynchronized { .. })
    ));
    assert_eq!(
        sent.borrow().len(),
        1,
        "nothing sent on a broken connection"
    );
}

#[test]
fn reply_to_another_request_desynchronizes() {
    let (mut xs, _) = client(|req| vec![raw(req.header.ty, req.header.req_id + 7, 0, b"x")]);
    assert!(matches!(xs.read("/a"), Err(Error::Desynchronized { .. })));
}

#[test]
fn unsolicited_reply_while_waiting_for_events_desynchronizes() {
    let (mut xs, _) =
        client(|req| vec![reply(req, b"OK\0"), raw(MsgType::Read as u32, 99, 0, b"")]);
    xs.watch("/a", "t").unwrap();
    assert!(matches!(
        xs.wait_event(Some(Duration::ZERO)),
        Err(Error::Desynchronized { .. })
    ));
}

#[test]
fn wrong_reply_type_or_shape_is_malformed_but_not_fatal() {
    let mut n = 0;
    let (mut xs, _) = client(move |req| {
        n += 1;
        match n {
            1 => vec![raw(MsgType::Write as u32, req.header.req_id, 0, b"OK\0")],
            2 => vec![reply(req, b"a\0\xff\xfe\0")],
            3 => vec![reply(req, b"zz\0")],
            4 => vec![reply(req, b"not-a-number\0")],
            5 => vec![reply(req, b"0\0")],
            6 => vec![reply(req, b"/local/\0domain\0")],
            _ => vec![reply(req, b"fine")],
        }
    });
    assert!(matches!(xs.read("/a"), Err(Error::Malformed { .. })));
    assert!(matches!(xs.directory("/a"), Err(Error::Malformed { .. })));
    assert!(matches!(xs.get_perms("/a"), Err(Error::Malformed { .. })));
    assert!(matches!(
        xs.transaction_start(),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        xs.transaction_start(),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        xs.get_domain_path(DomId::new(1)),
        Err(Error::Malformed { .. })
    ));
    assert_eq!(xs.read("/a").unwrap(), b"fine");
}

#[test]
fn malformed_watch_events() {
    let (mut xs, _) = client(|req| {
        vec![
            raw(MsgType::WatchEvent as u32, 0, 0, b"no-token"),
            reply(req, b"v"),
            raw(MsgType::WatchEvent as u32, 0, 0, b"\xff\0t\0"),
        ]
    });
    // Dropped while waiting for a reply...
    assert_eq!(xs.read("/a").unwrap(), b"v");
    // ...reported when read directly.
    assert!(matches!(
        xs.wait_event(Some(Duration::ZERO)),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn event_flood_is_bounded() {
    let (mut xs, _) = client(|req| {
        let mut v: Vec<Vec<u8>> = (0..MAX_QUEUED_EVENTS + 5)
            .map(|_| event("/f", "t"))
            .collect();
        v.push(reply(req, b"v"));
        v
    });
    assert_eq!(xs.read("/a").unwrap(), b"v");
    assert_eq!(xs.lost_events(), 5);
    assert_eq!(xs.events.len(), MAX_QUEUED_EVENTS);
}

#[test]
fn closed_connection_is_reported() {
    let (mut xs, _) = client(|_| Vec::new());
    xs.transport.closed = true;
    assert!(matches!(xs.read("/a"), Err(Error::Closed { op: "read" })));
}

#[test]
fn invalid_arguments_never_reach_the_wire() {
    let (mut xs, sent) = client(|_| unreachable!());
    assert!(matches!(xs.read(""), Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        xs.read("/a\0b"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        xs.read(&format!("/{}", "a".repeat(XENSTORE_ABS_PATH_MAX))),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        xs.read(&"a".repeat(XENSTORE_REL_PATH_MAX + 1)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        xs.write("/a", vec![b'x'; XENSTORE_PAYLOAD_MAX]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        xs.watch("/a", "t\0"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        xs.set_perms("/a", &[]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(sent.borrow().is_empty());
}

#[test]
fn permissions_roundtrip() {
    let (mut xs, sent) = client(|req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::GetPerms => vec![reply(req, b"b0\0r5\0")],
        _ => vec![reply(req, b"OK\0")],
    });
    assert_eq!(
        xs.get_perms("/a").unwrap(),
        [
            Permission::new(DomId::DOM0, Access::ReadWrite),
            Permission::new(DomId::new(5), Access::Read)
        ]
    );
    xs.set_perms(
        "/a",
        &[
            Permission::new(DomId::DOM0, Access::None),
            Permission::new(DomId::new(7), Access::Write),
        ],
    )
    .unwrap();
    let sent = sent.borrow();
    assert_eq!(sent[1].header.ty, MsgType::SetPerms as u32);
    assert_eq!(sent[1].payload, b"/a\0n0\0w7\0");
}

#[test]
fn transaction_retries_on_eagain_and_uses_the_tx_id() {
    let mut commits = 0;
    let (mut xs, sent) = client(move |req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::TransactionStart => vec![reply(req, b"41\0")],
        MsgType::TransactionEnd => {
            commits += 1;
            if commits == 1 {
                vec![error_reply(req, "EAGAIN")]
            } else {
                vec![reply(req, b"OK\0")]
            }
        }
        MsgType::Read => vec![reply(req, b"5")],
        _ => vec![reply(req, b"OK\0")],
    });
    let mut runs = 0;
    let v = xs
        .transaction(3, |tx| {
            runs += 1;
            assert_eq!(tx.id().raw(), 41);
            let n: u32 = tx.read_string("/c")?.parse().unwrap();
            tx.write("/c", (n + 1).to_string())?;
            Ok(n)
        })
        .unwrap();
    assert_eq!((v, runs), (5, 2));
    let sent = sent.borrow();
    assert_eq!(sent[0].payload, b"\0");
    assert_eq!(sent[1].header.tx_id, 41);
    assert_eq!(sent[2].header.tx_id, 41);
    assert_eq!(sent[2].payload, b"/c\x006");
    assert_eq!(sent[3].header.ty, MsgType::TransactionEnd as u32);
    assert_eq!(sent[3].header.tx_id, 41);
    assert_eq!(sent[3].payload, b"T\0");
}

#[test]
fn transaction_gives_up_and_aborts_on_closure_error() {
    let (mut xs, sent) = client(|req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::TransactionStart => vec![reply(req, b"9\0")],
        MsgType::TransactionEnd if req.payload == b"T\0" => vec![error_reply(req, "EAGAIN")],
        MsgType::Read => vec![error_reply(req, "ENOENT")],
        _ => vec![reply(req, b"OK\0")],
    });
    assert!(matches!(
        xs.transaction(2, |_| Ok(())),
        Err(Error::Conflict { attempts: 2 })
    ));
    let before = sent.borrow().len();
    let err = xs.transaction(5, |tx| tx.read("/none")).unwrap_err();
    assert!(err.is_not_found());
    let sent = sent.borrow();
    // start, read, abort: no retry for errors other than EAGAIN.
    assert_eq!(sent.len() - before, 3);
    assert_eq!(sent.last().unwrap().payload, b"F\0");
}

#[test]
fn manual_transaction() {
    let (mut xs, sent) = client(|req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::TransactionStart => vec![reply(req, b"12\0")],
        _ => vec![reply(req, b"OK\0")],
    });
    let tx = xs.transaction_start().unwrap();
    xs.in_transaction(tx).mkdir("/m").unwrap();
    xs.transaction_end(tx, false).unwrap();
    let sent = sent.borrow();
    assert_eq!(sent[1].header.tx_id, 12);
    assert_eq!(sent[2].payload, b"F\0");
}

/// Serves a child list through `XS_DIRECTORY_PART` in parts of `per_part` names with
/// generation count `gen`, the way xenstored does: the part reaching the end of the list ends
/// with an extra NUL (an empty name).
fn directory_part_reply(req: &Message, names: &[&str], per_part: usize, gen: u64) -> Vec<u8> {
    let mut args = req.payload.split(|&b| b == 0);
    let _path = args.next().unwrap();
    let offset: usize = std::str::from_utf8(args.next().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let list: Vec<u8> = names
        .iter()
        .flat_map(|n| format!("{n}\0").into_bytes())
        .collect();
    let mut payload = format!("{gen}\0").into_bytes();
    let rest = &list[offset.min(list.len())..];
    let mut end = 0;
    for _ in 0..per_part {
        match rest[end..].iter().position(|&b| b == 0) {
            Some(n) => end += n + 1,
            None => break,
        }
    }
    payload.extend_from_slice(&rest[..end]);
    if end == rest.len() {
        payload.push(0);
    }
    reply(req, &payload)
}

#[test]
fn large_directories_are_listed_in_parts() {
    let names = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let (mut xs, sent) = client(move |req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::Directory => vec![error_reply(req, "E2BIG")],
        MsgType::DirectoryPart => vec![directory_part_reply(req, &names, 2, 7)],
        _ => unreachable!(),
    });
    assert_eq!(xs.directory("/big").unwrap(), names);
    let sent = sent.borrow();
    assert_eq!(sent[1].payload, b"/big\x000\0");
    assert_eq!(sent[2].payload, b"/big\x0011\0");
}

#[test]
fn directory_parts_restart_when_the_node_changes() {
    let names = ["a", "b", "c"];
    let mut calls = 0;
    let (mut xs, _) = client(move |req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::Directory => vec![error_reply(req, "E2BIG")],
        MsgType::DirectoryPart => {
            calls += 1;
            // The generation moves between the first and second part.
            let gen = if calls == 1 { 1 } else { 2 };
            vec![directory_part_reply(req, &names, 1, gen)]
        }
        _ => unreachable!(),
    });
    assert_eq!(xs.directory("/d").unwrap(), names);
}

#[test]
fn malformed_directory_parts() {
    let mut n = 0;
    let (mut xs, _) = client(move |req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::Directory => vec![error_reply(req, "E2BIG")],
        _ => {
            n += 1;
            match n {
                1 => vec![reply(req, b"no-nul")],
                2 => vec![reply(req, b"x1\0a\0\0")],
                3 => vec![reply(req, b"1\0a")],
                4 => vec![reply(req, b"1\0")],
                // Always another 4000-byte name and never the end: the listing never ends.
                _ => {
                    let mut p = b"1\0".to_vec();
                    p.extend_from_slice(&[b'n'; 4000]);
                    p.push(0);
                    vec![reply(req, &p)]
                }
            }
        }
    });
    for _ in 0..5 {
        assert!(matches!(xs.directory("/d"), Err(Error::Malformed { .. })));
    }
}

/// A small deterministic generator (xorshift64*) for the garbage test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn garbage_from_xenstored_never_panics() {
    for seed in 1..1500u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let reply_seed = rng.next();
        let (mut xs, _) = client(move |req| {
            let mut r = Rng(reply_seed ^ u64::from(req.header.req_id));
            let mut out = Vec::new();
            for _ in 0..r.below(4) {
                // A plausible header (sometimes echoing the request) with random content.
                let ty = match r.below(4) {
                    0 => req.header.ty,
                    1 => MsgType::WatchEvent as u32,
                    2 => MsgType::Error as u32,
                    _ => r.below(30) as u32,
                };
                let id = if r.below(4) == 0 {
                    r.next() as u32
                } else {
                    req.header.req_id
                };
                let len = r.below(48) as usize;
                let payload: Vec<u8> = (0..len)
                    .map(|_| match r.below(4) {
                        0 => 0,
                        1 => b"0123456789"[r.below(10) as usize],
                        _ => r.next() as u8,
                    })
                    .collect();
                let mut m = raw(ty, id, req.header.tx_id, &payload);
                if r.below(8) == 0 {
                    // A lying length field.
                    m[12..16].copy_from_slice(&(r.next() as u32).to_ne_bytes());
                }
                if r.below(8) == 0 {
                    m.truncate(r.below(m.len() as u64 + 1) as usize);
                }
                out.push(m);
            }
            out
        });
        for _ in 0..4 {
            let _ = match rng.below(9) {
                0 => xs.read("/a").map(drop),
                1 => xs.directory("/a").map(drop),
                2 => xs.get_perms("/a").map(drop),
                3 => xs.get_domain_path(DomId::new(1)).map(drop),
                4 => xs.transaction_start().map(drop),
                5 => xs.watch("/a", "t").map(drop),
                6 => xs.wait_event(Some(Duration::ZERO)).map(drop),
                7 => xs.transaction(2, |tx| tx.read("/a")).map(drop),
                _ => xs.write("/a", b"v").map(drop),
            };
        }
    }
}

#[test]
fn a_daemon_that_never_replies_times_out_and_the_connection_is_retired() {
    let (mut xs, sent) = client(|_| Vec::new());
    xs.set_reply_timeout(Some(Duration::from_millis(10)));
    let e = xs.read("/local/domain/0/name").unwrap_err();
    assert!(matches!(e, Error::Timeout { op: "read", .. }), "got {e:?}");
    // A late reply could be taken for the next request's: nothing more is sent.
    let e = xs.read("/local/domain/0/name").unwrap_err();
    assert!(matches!(e, Error::Desynchronized { .. }), "got {e:?}");
    assert_eq!(sent.borrow().len(), 1);
}

#[test]
fn a_silent_socket_peer_cannot_hang_a_request() {
    let path = std::env::temp_dir().join(format!("xs-silent-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let transport = SocketTransport::connect(path.to_str().unwrap()).unwrap();
    // Accepted and kept open, never answered: the daemon is wedged, not gone.
    let (_peer, _) = listener.accept().unwrap();
    let mut xs = Xenstore::new(transport);
    xs.set_reply_timeout(Some(Duration::from_millis(50)));
    let e = xs.read("/local/domain/0/name").unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "got {e:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn introduce_release_and_is_introduced_marshal() {
    let (mut xs, sent) = client(|req| match MsgType::from_raw(req.header.ty).unwrap() {
        MsgType::IsDomainIntroduced => vec![reply(req, b"T\0")],
        _ => vec![reply(req, b"OK\0")],
    });
    xs.introduce_domain(DomId::new(7), 0xfeffc, 3).unwrap();
    xs.release_domain(DomId::new(7)).unwrap();
    assert!(xs.is_domain_introduced(DomId::new(7)).unwrap());
    let sent = sent.borrow();
    assert_eq!(sent[0].header.ty, MsgType::Introduce as u32);
    assert_eq!(sent[0].payload, b"7\x001044476\x003\x00");
    assert_eq!(sent[1].header.ty, MsgType::Release as u32);
    assert_eq!(sent[1].payload, b"7\0");
    assert_eq!(sent[2].header.ty, MsgType::IsDomainIntroduced as u32);
}

#[test]
fn a_refused_introduce_names_the_domain() {
    let (mut xs, _) = client(|req| vec![error_reply(req, "EACCES")]);
    let err = xs.introduce_domain(DomId::new(9), 1, 2).unwrap_err();
    assert!(err.to_string().contains('9'), "{err}");
}

#[test]
fn a_domains_ram_is_its_static_max_in_bytes() {
    let (mut xs, sent) = client(|req| match req.payload.as_slice() {
        b"/local/domain/3/memory/static-max\0" => vec![reply(req, b"131072")],
        b"/local/domain/4/memory/static-max\0" => vec![reply(req, b"lots")],
        b"/local/domain/5/memory/static-max\0" => vec![reply(req, b"99999999999999999999")],
        _ => vec![error_reply(req, "ENOENT")],
    });
    assert_eq!(xs.domain_ram_bytes(DomId::new(3)).unwrap(), 128 << 20);
    assert_eq!(sent.borrow()[0].header.ty, MsgType::Read as u32);
    let e = xs.domain_ram_bytes(DomId::new(4)).unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
    assert!(
        e.to_string().contains("domain 4") && e.to_string().contains("lots"),
        "{e}"
    );
    // Too many KiB for 64 bits of bytes is refused, not wrapped.
    assert!(matches!(
        xs.domain_ram_bytes(DomId::new(5)),
        Err(Error::Malformed { .. })
    ));
    assert!(xs.domain_ram_bytes(DomId::new(6)).is_err(), "no such node");
}
