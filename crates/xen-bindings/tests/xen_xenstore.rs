// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The xenstore client against the real xenstored of a Xen dom0, cross-checked with the C
//! tools (`xenstore-read`, `xenstore-write`).

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use xen_bindings::xenstore::{
    Access, Permission, Transport, XenbusTransport, Xenstore, XENSTORE_PAYLOAD_MAX,
};
use xen_bindings::DomId;
use xen_box_testing::in_dom0;

/// The scratch subtree private to this test process.
fn scratch_root() -> String {
    format!("/local/domain/0/xen-bindings-test-{}", std::process::id())
}

/// A node in the scratch subtree.
fn scratch(name: &str) -> String {
    format!("{}/{name}", scratch_root())
}

fn tool(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// Waits (bounded) for an event on `path`, skipping others.
fn expect_event<T: Transport>(xs: &mut Xenstore<T>, path: &str, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = xs
            .wait_event(Some(left))
            .unwrap()
            .unwrap_or_else(|| panic!("no watch event for {path} within 30 s"));
        if ev.path == path && ev.token == token {
            return;
        }
    }
}

#[test]
fn reads_the_dom0_subtree() {
    if !in_dom0("reads_the_dom0_subtree") {
        return;
    }
    let mut xs = Xenstore::open().unwrap();
    assert_eq!(xs.read_string("/local/domain/0/name").unwrap(), "Domain-0");
    assert_eq!(xs.get_domain_path(DomId::DOM0).unwrap(), "/local/domain/0");
    let children = xs.directory("/local/domain/0").unwrap();
    assert!(children.iter().any(|c| c == "name"), "{children:?}");
    assert!(xs
        .read("/local/domain/0/does-not-exist")
        .unwrap_err()
        .is_not_found());
}

#[test]
fn write_is_seen_by_xenstore_read_and_back() {
    if !in_dom0("write_is_seen_by_xenstore_read_and_back") {
        return;
    }
    let mut xs = Xenstore::open().unwrap();
    let path = scratch("rw");
    let value = format!("from-rust-{}", std::process::id());
    xs.write(&path, &value).unwrap();
    assert_eq!(tool(&["xenstore-read", &path]), value);

    tool(&["xenstore-write", &path, "from-c"]);
    assert_eq!(xs.read_string(&path).unwrap(), "from-c");

    xs.mkdir(&scratch("dir/a")).unwrap();
    xs.write(&scratch("dir/b"), "").unwrap();
    let mut names = xs.directory(&scratch("dir")).unwrap();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    xs.rm(&scratch_root()).unwrap();
    assert!(xs.read(&path).unwrap_err().is_not_found());
}

#[test]
fn watch_fires_on_external_write() {
    if !in_dom0("watch_fires_on_external_write") {
        return;
    }
    let mut xs = Xenstore::open().unwrap();
    let dir = scratch("watched");
    xs.mkdir(&dir).unwrap();
    xs.watch(&dir, "tok").unwrap();
    // xenstored fires a new watch once.
    expect_event(&mut xs, &dir, "tok");
    let child = format!("{dir}/child");
    tool(&["xenstore-write", &child, "x"]);
    expect_event(&mut xs, &child, "tok");
    // Events and replies share the connection: a request in between still works.
    assert_eq!(xs.read_string(&child).unwrap(), "x");
    xs.unwatch(&dir, "tok").unwrap();
    xs.rm(&scratch_root()).unwrap();
}

#[test]
fn transactions_commit_conflict_and_retry() {
    if !in_dom0("transactions_commit_conflict_and_retry") {
        return;
    }
    let mut a = Xenstore::open().unwrap();
    let mut b = Xenstore::open().unwrap();
    let counter = scratch("tx/counter");
    a.write(&counter, "0").unwrap();

    // A commit after someone else changed what the transaction read conflicts.
    let tx = a.transaction_start().unwrap();
    assert_eq!(a.in_transaction(tx).read_string(&counter).unwrap(), "0");
    b.write(&counter, "10").unwrap();
    a.in_transaction(tx).write(&counter, "1").unwrap();
    let err = a.transaction_end(tx, true).unwrap_err();
    assert!(err.is_again(), "{err}");
    assert_eq!(a.read_string(&counter).unwrap(), "10");

    // The retry helper reruns the closure after such a conflict.
    let mut runs = 0;
    a.transaction(5, |tx| {
        runs += 1;
        let n: u32 = tx.read_string(&counter)?.parse().unwrap();
        if runs == 1 {
            b.write(&counter, (n + 100).to_string())?;
        }
        tx.write(&counter, (n + 1).to_string())
    })
    .unwrap();
    assert_eq!(runs, 2);
    assert_eq!(tool(&["xenstore-read", &counter]), "111");

    // An aborted transaction leaves no trace.
    let tx = a.transaction_start().unwrap();
    a.in_transaction(tx).write(&counter, "999").unwrap();
    a.transaction_end(tx, false).unwrap();
    assert_eq!(a.read_string(&counter).unwrap(), "111");
    a.rm(&scratch_root()).unwrap();
}

#[test]
fn permissions_roundtrip() {
    if !in_dom0("permissions_roundtrip") {
        return;
    }
    let mut xs = Xenstore::open().unwrap();
    let node = scratch("perms");
    xs.write(&node, "p").unwrap();
    let perms = [
        Permission::new(DomId::DOM0, Access::None),
        Permission::new(DomId::new(5), Access::Read),
        Permission::new(DomId::new(7), Access::ReadWrite),
    ];
    xs.set_perms(&node, &perms).unwrap();
    assert_eq!(xs.get_perms(&node).unwrap(), perms);
    // xenstored validates the list too: an unknown domain as owner is fine, an empty list is
    // refused before it is sent.
    assert!(xs.set_perms(&node, &[]).is_err());
    xs.rm(&scratch_root()).unwrap();
}

#[test]
fn xenbus_device_transport() {
    if !in_dom0("xenbus_device_transport") {
        return;
    }
    let mut xs = Xenstore::new(XenbusTransport::open("/dev/xen/xenbus").unwrap());
    assert_eq!(xs.read_string("/local/domain/0/name").unwrap(), "Domain-0");
    let node = scratch("xenbus");
    xs.write(&node, "via-xenbus").unwrap();
    assert_eq!(tool(&["xenstore-read", &node]), "via-xenbus");
    xs.watch(&node, "xb").unwrap();
    expect_event(&mut xs, &node, "xb");
    tool(&["xenstore-write", &node, "changed"]);
    expect_event(&mut xs, &node, "xb");
    let tx = xs.transaction_start().unwrap();
    xs.in_transaction(tx).write(&node, "in-tx").unwrap();
    xs.transaction_end(tx, true).unwrap();
    assert_eq!(xs.read_string(&node).unwrap(), "in-tx");
    xs.unwatch(&node, "xb").unwrap();
    xs.rm(&scratch_root()).unwrap();
}

#[test]
fn large_directory_is_listed_completely() {
    if !in_dom0("large_directory_is_listed_completely") {
        return;
    }
    let mut xs = Xenstore::open().unwrap();
    let dir = scratch("large");
    // About 7 KiB of names: more than one message can carry.
    let names: Vec<String> = (0..160)
        .map(|i| format!("a-child-with-a-fairly-long-name-{i:04}"))
        .collect();
    let listing: usize = names.iter().map(|n| n.len() + 1).sum();
    assert!(
        listing > XENSTORE_PAYLOAD_MAX,
        "must need XS_DIRECTORY_PART"
    );
    xs.transaction(5, |tx| {
        for n in &names {
            tx.write(&format!("{dir}/{n}"), "")?;
        }
        Ok(())
    })
    .unwrap();
    let mut listed = xs.directory(&dir).unwrap();
    listed.sort();
    assert_eq!(listed, names);
    xs.rm(&scratch_root()).unwrap();
}

#[test]
fn watch_events_through_epoll() {
    if !in_dom0("watch_events_through_epoll") {
        return;
    }
    let mut xs = Xenstore::open().unwrap();
    let node = scratch("epoll");
    xs.write(&node, "0").unwrap();
    xs.watch(&node, "ep").unwrap();
    let fd = xs
        .fd()
        .expect("the socket transport has a descriptor")
        .as_raw_fd();
    // SAFETY: plain syscall creating a new descriptor, closed below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0);
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 1,
    };
    // SAFETY: `ep` and `fd` are open descriptors and `ev` a valid event for the call.
    let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    assert_eq!(rc, 0);

    // Collects events the way an epoll loop does: drain what is buffered, then sleep.
    let wait_for = |xs: &mut Xenstore, value_written: bool| {
        for _ in 0..100 {
            while let Some(e) = xs.wait_event(Some(Duration::ZERO)).unwrap() {
                if e.path == node
                    && e.token == "ep"
                    && (!value_written || xs_value(xs, &node) == "1")
                {
                    return;
                }
            }
            let mut out = [libc::epoll_event { events: 0, u64: 0 }];
            // SAFETY: `out` has room for the one event requested.
            let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 1, 30_000) };
            assert_eq!(n, 1, "no readiness on the xenstore socket within 30 s");
        }
        panic!("no watch event for {node}");
    };
    // The initial event of the new watch.
    wait_for(&mut xs, false);
    tool(&["xenstore-write", &node, "1"]);
    wait_for(&mut xs, true);
    // SAFETY: `ep` is ours and not used afterwards.
    unsafe { libc::close(ep) };
    xs.rm(&scratch_root()).unwrap();
}

fn xs_value(xs: &mut Xenstore, path: &str) -> String {
    xs.read_string(path).unwrap()
}
