// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The frontend service: watches xenstore for the virtio devices the toolstack publishes for
//! this backend domain, serves each guest's devices while they exist, and answers the xenbus
//! handshake for each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use xen_bindings::privcmd::Privcmd;
use xen_bindings::xenstore::{Transport, Xenstore};
use xen_bindings::DomId;

use crate::device::{Layout, VirtioDevice};
use crate::discovery::discover;
use crate::guest::{DeviceBackend, Guest};
use crate::guest_ram::{arm_ram_ranges, ram_bytes};
use crate::lifecycle::{Action, Lifecycle};
use crate::serve_error::ServeError;
use crate::state::XenbusState;
use crate::store::Store;

/// The watch token.
const TOKEN: &str = "xen-vhost-frontend";

/// What the service serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The daemons, by position: a guest's devices, in the order of their xenstore index
    /// (`devid`, which follows the xl configuration's order), are served by `backends[0]`,
    /// `backends[1]`, ...
    pub backends: Vec<DeviceBackend>,
    /// Serve only this guest (all guests when `None`).
    pub domid: Option<DomId>,
    /// The domain this service runs in (0: dom0), whose `backend/` directory it watches.
    pub backend_domid: DomId,
}

/// One device the service knows of.
struct Tracked {
    domid: DomId,
    devid: u32,
    life: Lifecycle,
}

/// Serves the guests' virtio devices as they come and go. Drive it with
/// [`Service::run_once`].
pub struct Service<T: Transport> {
    config: Config,
    xs: Xenstore<T>,
    privcmd: Privcmd,
    dom_path: String,
    tracked: BTreeMap<String, Tracked>,
    guests: BTreeMap<DomId, Guest>,
    /// Paths whose refusal was logged (so it is logged once).
    refused: BTreeSet<String>,
}

impl<T: Transport> std::fmt::Debug for Service<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config)
            .field("guests", &self.guests.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<T: Transport> Service<T> {
    /// A service on xenstore connection `xs`; watches both xenstore layouts' directories.
    pub fn new(config: Config, mut xs: Xenstore<T>) -> Result<Self, ServeError> {
        let dom_path = format!("/local/domain/{}", config.backend_domid);
        for layout in [Layout::Virtio, Layout::VirtioDisk] {
            let dir = format!("{dom_path}/{}", layout.dir());
            xs.watch(&dir, TOKEN)
                .map_err(|source| ServeError::Xenstore {
                    op: "watch the backend directories",
                    source,
                })?;
        }
        let privcmd = Privcmd::open().map_err(|source| ServeError::Xen {
            op: "open /dev/xen/privcmd",
            source,
        })?;
        Ok(Self {
            config,
            xs,
            privcmd,
            dom_path,
            tracked: BTreeMap::new(),
            guests: BTreeMap::new(),
            refused: BTreeSet::new(),
        })
    }

    /// The guests being served.
    pub fn guests(&self) -> impl Iterator<Item = &Guest> {
        self.guests.values()
    }

    /// Waits up to `timeout` for a change in xenstore, then brings every device's serving and
    /// handshake up to date. Errors of one device or guest are logged and answered (its state
    /// goes to Closed); only a broken xenstore connection is an error.
    pub fn run_once(&mut self, timeout: Duration) -> Result<(), ServeError> {
        let waited = self.xs.wait_event(Some(timeout));
        let event = waited.map_err(|source| ServeError::Xenstore {
            op: "wait for a watch event",
            source,
        })?;
        if event.is_some() {
            // Several changes arrive together: take them all, then look once.
            while self.xs.has_buffered_event() {
                let _ = self.xs.wait_event(Some(Duration::ZERO));
            }
        }
        self.reconcile();
        Ok(())
    }

    /// Stops serving every guest (their devices' states go to Closed where they still exist).
    pub fn shutdown(mut self) {
        let domids: Vec<DomId> = self.guests.keys().copied().collect();
        for d in domids {
            self.stop_guest(d);
        }
    }

    fn reconcile(&mut self) {
        let mut seen = BTreeSet::new();
        let mut set_up: BTreeMap<DomId, Vec<VirtioDevice>> = BTreeMap::new();
        // Devices leaving, by guest: their backend paths.
        let mut tear_down: BTreeMap<DomId, Vec<String>> = BTreeMap::new();
        for found in discover(&mut self.xs, &self.dom_path) {
            let dev = match found {
                Ok(dev) => dev,
                Err(e) => {
                    if self.refused.insert(e.to_string()) {
                        log::warn!("cannot serve a device: {e}");
                    }
                    continue;
                }
            };
            if self.config.domid.is_some_and(|d| d != dev.domid) {
                continue;
            }
            seen.insert(dev.backend_path.clone());
            let t = self
                .tracked
                .entry(dev.backend_path.clone())
                .or_insert_with(|| Tracked {
                    domid: dev.domid,
                    devid: dev.devid,
                    life: Lifecycle::new(),
                });
            match t.life.poll(&mut self.xs, &dev.backend_path) {
                Action::SetUp => set_up.entry(dev.domid).or_default().push(dev),
                Action::TearDown => tear_down
                    .entry(dev.domid)
                    .or_default()
                    .push(dev.backend_path),
                _ => {}
            }
        }
        // Devices whose entries went away (the domain was destroyed, or the toolstack removed
        // them without asking).
        for (path, t) in &mut self.tracked {
            if !seen.contains(path) && t.life.on_xenstore(None, false) == Action::TearDown {
                tear_down.entry(t.domid).or_default().push(path.clone());
            }
        }
        for (domid, paths) in tear_down {
            self.tear_down(domid, &paths);
        }
        self.tracked.retain(|path, _| seen.contains(path));
        for (domid, devices) in set_up {
            self.start_guest(domid, devices);
        }
        self.connected();
    }

    /// Releases the devices at `paths` of guest `domid` and answers Closed for each: the whole
    /// guest when no other device of it is served (destroy), else only those (hot-unplug: the
    /// toolstack's `online` = 0 and Closing on one device), the others going on.
    fn tear_down(&mut self, domid: DomId, paths: &[String]) {
        let leaving: BTreeSet<u32> = paths
            .iter()
            .filter_map(|p| self.tracked.get(p))
            .map(|t| t.devid)
            .collect();
        let Some(guest) = self.guests.get_mut(&domid) else {
            // Never served (or already released): nothing to release, but the toolstack waits
            // for Closed.
            self.closed(paths);
            return;
        };
        if guest.devices().all(|d| leaving.contains(&d.devid)) {
            self.stop_guest(domid);
            return;
        }
        for devid in &leaving {
            match guest.remove_device(*devid) {
                Ok(_) => log::info!("domain {domid}: device {devid} released (unplugged)"),
                Err(e) => log::warn!("domain {domid}: device {devid}: teardown: {e}"),
            }
        }
        self.closed(paths);
    }

    /// Marks the devices at `paths` torn down and writes Closed for each still there.
    fn closed(&mut self, paths: &[String]) {
        for p in paths {
            if let Some(t) = self.tracked.get_mut(p) {
                let s = t.life.torn_down();
                self.write_state(p, s);
            }
        }
    }

    /// Writes `state` for the device at `path`, unless its directory is gone (writing would
    /// make it again).
    fn write_state(&mut self, path: &str, state: XenbusState) {
        if Store::read(&mut self.xs, &format!("{path}/state")).is_none() {
            return;
        }
        let value = state.number().to_string();
        if let Err(e) = Store::write(&mut self.xs, &format!("{path}/state"), &value) {
            log::warn!("{path}/state: cannot write {state:?}: {e}");
        }
    }

    fn start_guest(&mut self, domid: DomId, devices: Vec<VirtioDevice>) {
        if self.guests.contains_key(&domid) {
            // The toolstack adds a guest's devices one at a time: the later ones join the
            // guest being served.
            for dev in devices {
                self.add_device(domid, dev);
            }
            return;
        }
        let paths: Vec<String> = devices.iter().map(|d| d.backend_path.clone()).collect();
        match self.guest(domid, devices) {
            Ok(guest) => {
                self.guests.insert(domid, guest);
                for p in &paths {
                    if let Some(t) = self.tracked.get_mut(p) {
                        let s = t.life.set_up();
                        self.write_state(p, s);
                    }
                }
            }
            Err(e) => {
                log::error!("domain {domid}: cannot serve its devices: {e}");
                self.closed(&paths);
            }
        }
    }

    /// Serves device `dev` of guest `domid`, already served for its other devices.
    fn add_device(&mut self, domid: DomId, dev: VirtioDevice) {
        let path = dev.backend_path.clone();
        let added =
            self.backend(domid, &dev)
                .and_then(|backend| match self.guests.get_mut(&domid) {
                    Some(g) => g.add_device(dev, &backend),
                    None => Err(ServeError::Thread("the guest is gone")),
                });
        match added {
            Ok(()) => {
                if let Some(t) = self.tracked.get_mut(&path) {
                    let s = t.life.set_up();
                    self.write_state(&path, s);
                }
            }
            Err(e) => {
                log::error!("domain {domid}: cannot serve a device: {e}");
                self.closed(&[path]);
            }
        }
    }

    /// The daemon of device `dev`: the configured backend at the device's position among its
    /// guest's devices known now, in devid order (the toolstack's numbering follows the
    /// configuration's order).
    fn backend(&self, domid: DomId, dev: &VirtioDevice) -> Result<DeviceBackend, ServeError> {
        let mut devids: Vec<u32> = self
            .tracked
            .values()
            .filter(|t| t.domid == domid)
            .map(|t| t.devid)
            .collect();
        devids.sort_unstable();
        devids.dedup();
        let i = devids.iter().position(|&d| d == dev.devid).unwrap_or(0);
        self.config
            .backends
            .get(i)
            .cloned()
            .ok_or_else(|| ServeError::Device {
                path: dev.backend_path.clone(),
                reason: format!(
                    "the guest's device {} has no backend daemon ({} given)",
                    i + 1,
                    self.config.backends.len()
                ),
            })
    }

    fn guest(&mut self, domid: DomId, mut devices: Vec<VirtioDevice>) -> Result<Guest, ServeError> {
        devices.sort_by_key(|d| d.devid);
        let mut with_backends = Vec::new();
        for dev in devices {
            let backend = self.backend(domid, &dev)?;
            with_backends.push((dev, backend));
        }
        let info = self
            .privcmd
            .domain_info(domid)
            .map_err(|source| ServeError::Xen {
                op: "read the guest's domain info",
                source,
            })?;
        let ram = arm_ram_ranges(ram_bytes(&mut self.xs, domid, info.max_memory));
        if !cfg!(target_arch = "aarch64") {
            log::warn!("domain {domid}: guest RAM laid out as on Arm, which is where xl places virtio-mmio devices");
        }
        Guest::start(domid, with_backends, &ram)
    }

    fn stop_guest(&mut self, domid: DomId) {
        if let Some(guest) = self.guests.remove(&domid) {
            if let Err(e) = guest.stop() {
                log::warn!("domain {domid}: teardown: {e}");
            } else {
                log::info!("domain {domid}: devices released");
            }
        }
        let paths: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.domid == domid)
            .map(|(p, _)| p.clone())
            .collect();
        for p in paths {
            if let Some(t) = self.tracked.get_mut(&p) {
                let s = t.life.torn_down();
                self.write_state(&p, s);
            }
        }
    }

    /// Writes Connected for each device whose driver set DRIVER_OK.
    fn connected(&mut self) {
        let mut ready = Vec::new();
        for (path, t) in &self.tracked {
            let Some(g) = self.guests.get(&t.domid) else {
                continue;
            };
            let i = g.devices().position(|d| d.devid == t.devid);
            if i.is_some_and(|i| g.driver_ok(i)) {
                ready.push(path.clone());
            }
        }
        for p in ready {
            if let Some(s) = self.tracked.get_mut(&p).and_then(|t| t.life.driver_ready()) {
                self.write_state(&p, s);
            }
        }
    }
}
