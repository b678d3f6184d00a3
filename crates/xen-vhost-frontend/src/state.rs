// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The xenbus device states (Xen's `public/io/xenbus.h`).

use std::fmt;

/// A device end's `state` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum XenbusState {
    /// 0: not yet known.
    Unknown,
    /// 1: being set up (the toolstack writes this when it creates the device).
    Initialising,
    /// 2: the backend is ready and waits for the frontend (libxl waits for this).
    InitWait,
    /// 3: the frontend has set up its side.
    Initialised,
    /// 4: both ends are working.
    Connected,
    /// 5: going away (the toolstack writes this on destroy and hot-unplug).
    Closing,
    /// 6: gone (the toolstack waits for this before removing the entries).
    Closed,
    /// 7: reconfiguring.
    Reconfiguring,
    /// 8: reconfigured.
    Reconfigured,
}

impl XenbusState {
    /// The state a `state` key's text names; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "0" => Self::Unknown,
            "1" => Self::Initialising,
            "2" => Self::InitWait,
            "3" => Self::Initialised,
            "4" => Self::Connected,
            "5" => Self::Closing,
            "6" => Self::Closed,
            "7" => Self::Reconfiguring,
            "8" => Self::Reconfigured,
            _ => return None,
        })
    }

    /// The number written to a `state` key.
    pub fn number(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Initialising => 1,
            Self::InitWait => 2,
            Self::Initialised => 3,
            Self::Connected => 4,
            Self::Closing => 5,
            Self::Closed => 6,
            Self::Reconfiguring => 7,
            Self::Reconfigured => 8,
        }
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_xenbus_h() {
        // enum xenbus_state in xen/include/public/io/xenbus.h.
        for (n, s) in [
            (0, XenbusState::Unknown),
            (1, XenbusState::Initialising),
            (2, XenbusState::InitWait),
            (3, XenbusState::Initialised),
            (4, XenbusState::Connected),
            (5, XenbusState::Closing),
            (6, XenbusState::Closed),
            (7, XenbusState::Reconfiguring),
            (8, XenbusState::Reconfigured),
        ] {
            assert_eq!(s.number(), n);
            assert_eq!(XenbusState::parse(&n.to_string()), Some(s));
            assert_eq!(s.to_string(), n.to_string());
        }
        for bad in ["", "9", "-1", "4x", "0x4", "99999999999999999999"] {
            assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
        }
    }
}
