// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bodies of the xen-vhost-frontend fuzz targets, in a library so `tests/replay.rs` can replay
//! the regressions directory with a plain `cargo test`. Only the crate's public API is used.
//!
//! `xenstore_devices` builds a xenstore tree from the input (both layouts' directories, any
//! directory names, any keys and values, favouring ones close to what the toolstack writes
//! so that devices do get accepted), runs [`discover`] on it, checks every accepted device
//! against the tree, then drives each accepted device's [`Lifecycle`] through `state` and
//! `online` changes taken from the rest of the input.

#![deny(missing_docs)]

use fuzz_support::Input;
use std::collections::{BTreeMap, BTreeSet};

use xen_vhost_frontend::{
    discover, Action, Error, Layout, Lifecycle, Store, VirtioDevice, XenbusState, MMIO_WINDOW,
};

/// Most entries one input writes: keeps each run's tree (and so its time) small.
const MAX_RECORDS: usize = 96;
/// Most handshake steps one input drives.
const MAX_STEPS: usize = 256;
/// The keys the toolstack writes in a device's backend directory.
const KEYS: [&str; 10] = [
    "frontend-id",
    "base",
    "irq",
    "transport",
    "type",
    "grant_usage",
    "state",
    "online",
    "frontend",
    "backend-id",
];

/// An in-memory xenstore: `directory` lists distinct children in order, as xenstored does.
#[derive(Default)]
struct Tree(BTreeMap<String, String>);

impl Store for Tree {
    fn read(&mut self, path: &str) -> Option<String> {
        self.0.get(path).cloned()
    }

    fn directory(&mut self, path: &str) -> Vec<String> {
        let prefix = format!("{path}/");
        let kids: BTreeSet<&str> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or_default())
            .collect();
        kids.into_iter().map(str::to_string).collect()
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
        self.0.insert(path.to_string(), value.to_string());
        Ok(())
    }
}

/// The shapes of xenstore contents the fuzz input chooses from.
trait Choose {
    /// Up to 255 bytes of raw text (lossily UTF-8, as a xenstore value read as text is).
    fn text(&mut self) -> String;
    /// A directory name: usually a number, sometimes anything.
    fn name(&mut self) -> String;
    /// A value, in one of the shapes the toolstack writes or as raw text; `domid` is the
    /// record's domain directory name (for `frontend-id`).
    fn value(&mut self, domid: &str) -> String;
}

impl Choose for Input<'_> {
    fn text(&mut self) -> String {
        let len = usize::from(self.u8());
        String::from_utf8_lossy(self.bytes(len)).into_owned()
    }

    fn name(&mut self) -> String {
        match self.u8() % 4 {
            0 => self.uint(1).to_string(),
            1 => self.uint(2).to_string(),
            2 => self.uint(4).to_string(),
            _ => self.text(),
        }
    }

    fn value(&mut self, domid: &str) -> String {
        match self.u8() % 9 {
            0 => self.text(),
            1 => self.uint(8).to_string(),
            2 => format!("{:#x}", self.uint(8)),
            3 => (self.u8() % 10).to_string(),
            4 => match self.u8() {
                0 => "virtio,device".to_string(),
                _ => format!("virtio,device{:x}", self.uint(4)),
            },
            // An aligned register window, as libxl assigns them.
            5 => format!("{:#x}", self.uint(4) * MMIO_WINDOW),
            6 => (self.uint(4) * MMIO_WINDOW).to_string(),
            7 => domid.to_string(),
            _ => "mmio".to_string(),
        }
    }
}

/// A number the way the toolstack writes one (decimal, or `0x` hexadecimal), read without the
/// crate's code: the oracle for what an accepted device must say.
fn oracle_number(text: &str) -> Option<u64> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Discovery and the handshake on a xenstore tree built from `data`: never panics, every
/// accepted device says what the tree says and has a usable window, and the handshake only
/// sets up, serves and tears down when the protocol says.
pub fn xenstore_devices(data: &[u8]) {
    run(data);
}

/// What one input did, for the unit tests to check that inputs do reach the handshake.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    accepted: usize,
    refused: usize,
    set_up: usize,
    connected: usize,
    torn_down: usize,
}

fn run(data: &[u8]) -> Summary {
    let mut summary = Summary::default();
    let mut input = Input::new(data);
    let backend_domid: u16 = match input.u8() % 3 {
        0 => 0,
        1 => 5,
        _ => u16::try_from(input.uint(2)).unwrap_or(0),
    };
    let backend = format!("/local/domain/{backend_domid}");
    let mut tree = Tree::default();
    let records = usize::from(input.u8()) % MAX_RECORDS;
    for _ in 0..records {
        let dir = match input.u8() % 5 {
            0 | 1 => Layout::Virtio.dir().to_string(),
            2 | 3 => Layout::VirtioDisk.dir().to_string(),
            _ => input.text(),
        };
        let dom = input.name();
        let dev = input.name();
        let k = usize::from(input.u8());
        let key = match KEYS.get(k % 12) {
            Some(key) => key.to_string(),
            None => input.text(),
        };
        if input.u8() % 8 == 7 {
            // A key left out: the others are written, this one is not.
            continue;
        }
        let value = input.value(&dom);
        tree.0
            .insert(format!("{backend}/{dir}/{dom}/{dev}/{key}"), value);
    }

    let found = discover(&mut tree, &backend);
    assert!(
        found.len() <= tree.0.len(),
        "{} results from {} entries",
        found.len(),
        tree.0.len()
    );
    let mut seen = BTreeSet::new();
    let mut devices = Vec::new();
    for result in &found {
        match result {
            Ok(dev) => {
                check_device(&mut tree, &backend, backend_domid, dev);
                assert!(seen.insert(dev.backend_path.clone()), "{dev:?} found twice");
                devices.push(dev.clone());
                summary.accepted += 1;
            }
            Err(e) => {
                check_error(&backend, e);
                summary.refused += 1;
            }
        }
    }

    for dev in devices.iter().take(4) {
        handshake(&mut input, &mut tree, dev, &mut summary);
        if input.is_empty() {
            break;
        }
    }
    summary
}

/// An accepted device matches the tree it was read from.
fn check_device(tree: &mut Tree, backend: &str, backend_domid: u16, dev: &VirtioDevice) {
    let prefix = format!("{backend}/{}/", dev.layout.dir());
    let rest = dev
        .backend_path
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{dev:?} is not under {prefix}"));
    let (dom, devid) = rest
        .split_once('/')
        .unwrap_or_else(|| panic!("{dev:?}: no <domid>/<devid> in its path"));
    assert_eq!(
        dom.parse::<u64>().ok(),
        Some(u64::from(dev.domid.get())),
        "{dev:?}"
    );
    assert_eq!(
        devid.parse::<u64>().ok(),
        Some(u64::from(dev.devid)),
        "{dev:?}"
    );

    let mut key = |k: &str| tree.read(&format!("{}/{k}", dev.backend_path));
    assert_eq!(
        key("frontend-id").as_deref().and_then(oracle_number),
        Some(u64::from(dev.domid.get())),
        "{dev:?}: frontend-id"
    );
    assert_eq!(
        key("base").as_deref().and_then(oracle_number),
        Some(dev.base),
        "{dev:?}: base"
    );
    assert!(
        dev.base != 0 && dev.base.is_multiple_of(MMIO_WINDOW),
        "{dev:?}: window"
    );
    assert!(
        dev.base.checked_add(MMIO_WINDOW).is_some(),
        "{dev:?}: wraps"
    );
    assert_eq!(
        key("irq").as_deref().and_then(oracle_number),
        Some(u64::from(dev.irq)),
        "{dev:?}: irq"
    );
    assert_ne!(dev.irq, 0, "{dev:?}: irq");
    assert!(
        matches!(key("transport").as_deref(), None | Some("mmio")),
        "{dev:?}: transport"
    );
    match dev.layout {
        Layout::VirtioDisk => assert_eq!(dev.device_id, None, "{dev:?}"),
        _ => {
            let ty = key("type").unwrap_or_else(|| panic!("{dev:?}: no type"));
            let id = ty
                .strip_prefix("virtio,device")
                .unwrap_or_else(|| panic!("{dev:?}: type {ty:?}"));
            let expect = (!id.is_empty()).then(|| u32::from_str_radix(id, 16).ok());
            assert_eq!(expect, dev.device_id.map(Some), "{dev:?}: type {ty:?}");
        }
    }
    let grants = match key("grant_usage").as_deref() {
        None => backend_domid != 0,
        Some("0") => false,
        Some("1") => true,
        Some(other) => panic!("{dev:?}: grant_usage {other:?} accepted"),
    };
    assert_eq!(dev.grants, grants, "{dev:?}: grants");
}

/// A refused device names a key of this backend domain, and quotes at most 64 characters.
fn check_error(backend: &str, e: &Error) {
    let _ = e.to_string();
    match e {
        Error::Missing { path } => assert!(path.starts_with(backend), "{e:?}"),
        Error::Invalid { path, value, .. } => {
            assert!(path.starts_with(backend), "{e:?}");
            assert!(value.chars().count() <= 64, "{e:?}");
        }
        _ => {}
    }
}

/// Whether the backend directory says the device is going away, read without the crate's
/// code: `state` missing, unknown, Closing or Closed, or `online` = 0.
fn oracle_leaving(tree: &mut Tree, path: &str) -> (bool, bool) {
    let state = tree.read(&format!("{path}/state"));
    let online = tree.read(&format!("{path}/online"));
    let state = state.as_deref().map(str::trim);
    let initialising = state == Some("1");
    let leaving = !matches!(state, Some("0" | "1" | "2" | "3" | "4" | "7" | "8"))
        || online.is_some_and(|o| o.trim() == "0");
    (leaving, initialising)
}

/// Drives one device's handshake as the service does (writing back the state it is told to),
/// with xenstore changing under it.
fn handshake(input: &mut Input<'_>, tree: &mut Tree, dev: &VirtioDevice, summary: &mut Summary) {
    let path = &dev.backend_path;
    let mut life = Lifecycle::new();
    let mut closed = false;
    let mut connected = false;
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            return;
        }
        match input.u8() % 6 {
            0 => {
                let state = match input.u8() % 3 {
                    0 => input.text(),
                    _ => (input.u8() % 10).to_string(),
                };
                if let Some(s) = XenbusState::parse(&state) {
                    assert_eq!(s.to_string(), state.trim(), "state {state:?}");
                    assert_eq!(s.number().to_string(), state.trim());
                }
                tree.0.insert(format!("{path}/state"), state);
            }
            1 => {
                let online = match input.u8() % 4 {
                    0 => input.text(),
                    1 => "0".to_string(),
                    _ => "1".to_string(),
                };
                tree.0.insert(format!("{path}/online"), online);
            }
            2 => {
                let key = if input.u8().is_multiple_of(2) {
                    "state"
                } else {
                    "online"
                };
                tree.0.remove(&format!("{path}/{key}"));
            }
            3 | 4 => {
                let serving = life.is_serving();
                let (leaving, initialising) = oracle_leaving(tree, path);
                let action = life.poll(tree, path);
                match action {
                    Action::SetUp => {
                        assert!(!serving && !closed, "set up twice");
                        assert!(initialising && !leaving, "set up outside Initialising");
                        assert_eq!(life.set_up(), XenbusState::InitWait);
                        assert!(life.is_serving());
                        summary.set_up += 1;
                        tree.0.insert(format!("{path}/state"), "2".into());
                    }
                    Action::TearDown => {
                        assert!(leaving, "torn down while the device stays");
                        assert_eq!(life.torn_down(), XenbusState::Closed);
                        assert!(!life.is_serving());
                        closed = true;
                        summary.torn_down += 1;
                        tree.0.insert(format!("{path}/state"), "6".into());
                    }
                    _ => {
                        assert!(!(serving && leaving), "served after the device went");
                    }
                }
            }
            _ => {
                let serving = life.is_serving();
                match life.driver_ready() {
                    Some(s) => {
                        assert_eq!(s, XenbusState::Connected);
                        assert!(serving && !connected, "Connected twice or unserved");
                        connected = true;
                        summary.connected += 1;
                        tree.0.insert(format!("{path}/state"), "4".into());
                    }
                    None => assert!(!serving || connected, "DRIVER_OK lost"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that write one complete Xen 4.20 device (domid 1, devid 0) and then run its
    /// handshake: Initialising, poll (set up), DRIVER_OK, Closing, poll (torn down).
    fn good_device() -> Vec<u8> {
        let mut d = vec![0, 8];
        let entry = |key: u8, value: &[u8]| {
            // dir Virtio, dom "1" (kind 0, 1 byte), dev "0", key, written, value.
            let mut r = vec![0, 0, 1, 0, 0, key, 0];
            r.extend_from_slice(value);
            r
        };
        d.extend(entry(0, &[7])); // frontend-id = the dom name
        d.extend(entry(1, &[5, 0, 0, 0x01, 0])); // base = 0x10000 * 0x200
        d.extend(entry(2, &[3, 33])); // irq 3 (33 % 10)
        d.extend(entry(3, &[8])); // transport mmio
        d.extend(entry(4, &[4, 0])); // type virtio,device
        d.extend(entry(5, &[3, 0])); // grant_usage 0
        d.extend(entry(6, &[3, 1])); // state 1
        d.extend(entry(7, &[3, 1])); // online 1
        d.extend([3, 5, 0, 1, 5, 3]); // poll, DRIVER_OK, state = 5, poll
        d
    }

    #[test]
    fn a_good_device_is_found_and_served() {
        let summary = run(&good_device());
        assert_eq!(
            summary,
            Summary {
                accepted: 1,
                refused: 0,
                set_up: 1,
                connected: 1,
                torn_down: 1
            }
        );
    }

    #[test]
    fn a_frontend_id_not_naming_the_domain_is_refused() {
        let mut data = good_device();
        // The frontend-id entry's value is raw text "x" instead of the domain's name.
        data[2 + 7] = 0;
        data.insert(2 + 8, 1);
        data.insert(2 + 9, b'x');
        assert_eq!(run(&data).refused, 1);
    }

    #[test]
    fn empty_and_short_inputs_are_harmless() {
        for data in [&[][..], &[1], &[2, 255], &[0, 95, 4, 3, 255]] {
            xenstore_devices(data);
        }
    }
}
