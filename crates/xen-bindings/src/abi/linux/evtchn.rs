// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `/dev/xen/evtchn` ioctl ABI (Linux `include/uapi/xen/evtchn.h`).
//!
//! Besides the ioctls, the device speaks through `read()` and `write()`: reading returns the
//! native-endian `u32` numbers of ports that fired (and masks them), writing `u32` port numbers
//! unmasks them.

use crate::sys::{io, ioc_none};

/// Argument of [`IOCTL_EVTCHN_BIND_VIRQ`]: binds a fresh port to a virtual IRQ.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlEvtchnBindVirq {
    /// The VIRQ number (`VIRQ_*` of Xen's `event_channel.h`).
    pub virq: u32,
}

/// Argument of [`IOCTL_EVTCHN_BIND_INTERDOMAIN`]: binds a fresh port to a remote domain's port.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlEvtchnBindInterdomain {
    /// The remote domain.
    pub remote_domain: u32,
    /// The remote domain's unbound port to connect to.
    pub remote_port: u32,
}

/// Argument of [`IOCTL_EVTCHN_BIND_UNBOUND_PORT`]: allocates a port a remote domain may bind to.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlEvtchnBindUnboundPort {
    /// The domain allowed to connect to the new port.
    pub remote_domain: u32,
}

/// Argument of [`IOCTL_EVTCHN_UNBIND`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlEvtchnUnbind {
    /// A port bound through this file descriptor.
    pub port: u32,
}

/// Argument of [`IOCTL_EVTCHN_NOTIFY`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlEvtchnNotify {
    /// A port bound through this file descriptor.
    pub port: u32,
}

/// Argument of [`IOCTL_EVTCHN_RESTRICT_DOMID`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoctlEvtchnRestrictDomid {
    /// The only domain new interdomain bindings of this descriptor may target.
    pub domid: u16,
}

crate::abi::impl_pod!(
    IoctlEvtchnBindVirq,
    IoctlEvtchnBindInterdomain,
    IoctlEvtchnBindUnboundPort,
    IoctlEvtchnUnbind,
    IoctlEvtchnNotify,
    IoctlEvtchnRestrictDomid,
);

/// Binds a fresh port to a VIRQ; the ioctl returns the port.
pub const IOCTL_EVTCHN_BIND_VIRQ: u32 = ioc_none::<IoctlEvtchnBindVirq>(b'E', 0);
/// Binds a fresh port to a remote port; the ioctl returns the local port.
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 = ioc_none::<IoctlEvtchnBindInterdomain>(b'E', 1);
/// Allocates an unbound port for a remote domain; the ioctl returns the port.
pub const IOCTL_EVTCHN_BIND_UNBOUND_PORT: u32 = ioc_none::<IoctlEvtchnBindUnboundPort>(b'E', 2);
/// Unbinds a port.
pub const IOCTL_EVTCHN_UNBIND: u32 = ioc_none::<IoctlEvtchnUnbind>(b'E', 3);
/// Sends an event on a port.
pub const IOCTL_EVTCHN_NOTIFY: u32 = ioc_none::<IoctlEvtchnNotify>(b'E', 4);
/// Clears the pending-event ring and its overflow condition.
pub const IOCTL_EVTCHN_RESET: u32 = io(b'E', 5);
/// Restricts new interdomain bindings of the descriptor to one domain, irrevocably.
pub const IOCTL_EVTCHN_RESTRICT_DOMID: u32 = ioc_none::<IoctlEvtchnRestrictDomid>(b'E', 6);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_match_header() {
        assert_eq!(size_of::<IoctlEvtchnBindVirq>(), 4);
        assert_eq!(align_of::<IoctlEvtchnBindVirq>(), 4);
        assert_eq!(offset_of!(IoctlEvtchnBindVirq, virq), 0);

        assert_eq!(size_of::<IoctlEvtchnBindInterdomain>(), 8);
        assert_eq!(align_of::<IoctlEvtchnBindInterdomain>(), 4);
        assert_eq!(offset_of!(IoctlEvtchnBindInterdomain, remote_domain), 0);
        assert_eq!(offset_of!(IoctlEvtchnBindInterdomain, remote_port), 4);

        assert_eq!(size_of::<IoctlEvtchnBindUnboundPort>(), 4);
        assert_eq!(align_of::<IoctlEvtchnBindUnboundPort>(), 4);
        assert_eq!(offset_of!(IoctlEvtchnBindUnboundPort, remote_domain), 0);

        assert_eq!(size_of::<IoctlEvtchnUnbind>(), 4);
        assert_eq!(align_of::<IoctlEvtchnUnbind>(), 4);
        assert_eq!(offset_of!(IoctlEvtchnUnbind, port), 0);

        assert_eq!(size_of::<IoctlEvtchnNotify>(), 4);
        assert_eq!(align_of::<IoctlEvtchnNotify>(), 4);
        assert_eq!(offset_of!(IoctlEvtchnNotify, port), 0);

        assert_eq!(size_of::<IoctlEvtchnRestrictDomid>(), 2);
        assert_eq!(align_of::<IoctlEvtchnRestrictDomid>(), 2);
        assert_eq!(offset_of!(IoctlEvtchnRestrictDomid, domid), 0);
    }

    #[test]
    fn ioctl_numbers_match_header() {
        assert_eq!(IOCTL_EVTCHN_BIND_VIRQ, 0x0004_4500);
        assert_eq!(IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x0008_4501);
        assert_eq!(IOCTL_EVTCHN_BIND_UNBOUND_PORT, 0x0004_4502);
        assert_eq!(IOCTL_EVTCHN_UNBIND, 0x0004_4503);
        assert_eq!(IOCTL_EVTCHN_NOTIFY, 0x0004_4504);
        assert_eq!(IOCTL_EVTCHN_RESET, 0x0000_4505);
        assert_eq!(IOCTL_EVTCHN_RESTRICT_DOMID, 0x0002_4506);
    }
}
