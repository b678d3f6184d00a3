// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The backend's half of one device's xenbus handshake.

use crate::state::XenbusState;
use crate::store::Store;

/// What the caller must do next for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Nothing.
    None,
    /// Set the device up (IOREQ server with its window mapped, guest memory shared with the
    /// backend daemon), then call [`Lifecycle::set_up`].
    SetUp,
    /// Tear the device down (release everything it holds), then call
    /// [`Lifecycle::torn_down`].
    TearDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Serving,
    Connected,
    Closed,
}

/// Where one device is in its handshake, fed with what xenstore says and what the serving
/// side did. It only decides; the caller acts and writes the state it returns.
///
/// ```
/// use xen_vhost_frontend::{Action, Lifecycle, XenbusState};
///
/// let mut dev = Lifecycle::new();
/// assert_eq!(dev.on_xenstore(Some(XenbusState::Initialising), true), Action::SetUp);
/// assert_eq!(dev.set_up(), XenbusState::InitWait);
/// assert_eq!(dev.driver_ready(), Some(XenbusState::Connected));
/// // `xl destroy` or hot-unplug.
/// assert_eq!(dev.on_xenstore(Some(XenbusState::Closing), false), Action::TearDown);
/// assert_eq!(dev.torn_down(), XenbusState::Closed);
/// ```
#[derive(Debug, Clone)]
pub struct Lifecycle {
    phase: Phase,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// A device just found.
    pub fn new() -> Self {
        Self { phase: Phase::New }
    }

    /// What to do given the backend directory's `state` (`None`: gone or unreadable) and
    /// `online`.
    pub fn on_xenstore(&mut self, state: Option<XenbusState>, online: bool) -> Action {
        let leaving = !online
            || matches!(
                state,
                None | Some(XenbusState::Closing | XenbusState::Closed)
            );
        match self.phase {
            Phase::Serving | Phase::Connected if leaving => Action::TearDown,
            Phase::New if leaving => {
                // Never set up: nothing to release, but the toolstack waits for Closed.
                self.phase = Phase::Closed;
                Action::TearDown
            }
            Phase::New if state == Some(XenbusState::Initialising) => Action::SetUp,
            _ => Action::None,
        }
    }

    /// The device is being served: the state to write (InitWait, which libxl waits for).
    pub fn set_up(&mut self) -> XenbusState {
        self.phase = Phase::Serving;
        XenbusState::InitWait
    }

    /// The guest's driver set DRIVER_OK: the state to write, once.
    pub fn driver_ready(&mut self) -> Option<XenbusState> {
        (self.phase == Phase::Serving).then(|| {
            self.phase = Phase::Connected;
            XenbusState::Connected
        })
    }

    /// Everything is released: the state to write (Closed, which the toolstack waits for).
    pub fn torn_down(&mut self) -> XenbusState {
        self.phase = Phase::Closed;
        XenbusState::Closed
    }

    /// Whether the device is being served.
    pub fn is_serving(&self) -> bool {
        matches!(self.phase, Phase::Serving | Phase::Connected)
    }

    /// Reads `state` and `online` from `backend_path` and decides, as [`Lifecycle::on_xenstore`].
    /// An unreadable or unknown `state` counts as gone; a missing `online` as online.
    pub fn poll(&mut self, store: &mut dyn Store, backend_path: &str) -> Action {
        let state = store
            .read(&format!("{backend_path}/state"))
            .and_then(|s| XenbusState::parse(&s));
        let online = store
            .read(&format!("{backend_path}/online"))
            .is_none_or(|s| s.trim() != "0");
        self.on_xenstore(state, online)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_life() {
        let mut d = Lifecycle::new();
        assert_eq!(
            d.on_xenstore(Some(XenbusState::Initialising), true),
            Action::SetUp
        );
        assert_eq!(d.set_up(), XenbusState::InitWait);
        assert!(d.is_serving());
        // Our own InitWait coming back through the watch changes nothing.
        assert_eq!(
            d.on_xenstore(Some(XenbusState::InitWait), true),
            Action::None
        );
        assert_eq!(d.driver_ready(), Some(XenbusState::Connected));
        assert_eq!(d.driver_ready(), None, "Connected is written once");
        assert_eq!(
            d.on_xenstore(Some(XenbusState::Connected), false),
            Action::TearDown
        );
        assert_eq!(d.torn_down(), XenbusState::Closed);
        assert!(!d.is_serving());
        assert_eq!(
            d.on_xenstore(Some(XenbusState::Closed), false),
            Action::None
        );
    }

    #[test]
    fn closing_before_set_up_still_answers_closed() {
        let mut d = Lifecycle::new();
        assert_eq!(
            d.on_xenstore(Some(XenbusState::Closing), true),
            Action::TearDown
        );
        assert_eq!(d.torn_down(), XenbusState::Closed);
        assert_eq!(
            d.on_xenstore(Some(XenbusState::Initialising), true),
            Action::None
        );
    }

    #[test]
    fn entries_vanishing_tear_down() {
        let mut d = Lifecycle::new();
        d.on_xenstore(Some(XenbusState::Initialising), true);
        d.set_up();
        assert_eq!(d.on_xenstore(None, true), Action::TearDown);
    }

    #[test]
    fn driver_ready_before_set_up_is_ignored() {
        let mut d = Lifecycle::new();
        assert_eq!(d.driver_ready(), None);
    }
}
