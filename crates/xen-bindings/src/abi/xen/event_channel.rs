// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `event_channel_op` hypercall (`event_channel.h`).

use crate::abi::impl_pod;

/// An event-channel port (`evtchn_port_t`).
pub type EvtchnPort = u32;

/// `EVTCHNOP_bind_interdomain`.
pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
/// `EVTCHNOP_bind_virq`.
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// `EVTCHNOP_bind_pirq`.
pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
/// `EVTCHNOP_close`.
pub const EVTCHNOP_CLOSE: u64 = 3;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: u64 = 4;
/// `EVTCHNOP_status`.
pub const EVTCHNOP_STATUS: u64 = 5;
/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
/// `EVTCHNOP_bind_ipi`.
pub const EVTCHNOP_BIND_IPI: u64 = 7;
/// `EVTCHNOP_bind_vcpu`.
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
/// `EVTCHNOP_unmask`.
pub const EVTCHNOP_UNMASK: u64 = 9;
/// `EVTCHNOP_reset`.
pub const EVTCHNOP_RESET: u64 = 10;

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// IN: the domain allocating the port.
    pub dom: u16,
    /// IN: the domain allowed to bind to it.
    pub remote_dom: u16,
    /// OUT: the port.
    pub port: EvtchnPort,
}

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// IN: the remote domain.
    pub remote_dom: u16,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// IN: the remote domain's unbound port.
    pub remote_port: EvtchnPort,
    /// OUT: the local port.
    pub local_port: EvtchnPort,
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// IN: the virtual IRQ.
    pub virq: u32,
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: the port.
    pub port: EvtchnPort,
}

/// `struct evtchn_close`, `struct evtchn_send` and `struct evtchn_unmask`: one port.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvtchnPortOp {
    /// IN: the port.
    pub port: EvtchnPort,
}

/// `struct evtchn_bind_vcpu`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    /// IN: the port.
    pub port: EvtchnPort,
    /// IN: the vCPU to notify.
    pub vcpu: u32,
}

impl_pod!(
    EvtchnAllocUnbound,
    EvtchnBindInterdomain,
    EvtchnBindVirq,
    EvtchnPortOp,
    EvtchnBindVcpu
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            EvtchnAllocUnbound,
            size = 8,
            align = 4,
            dom = 0,
            remote_dom = 2,
            port = 4
        );
        assert_layout!(
            EvtchnBindInterdomain,
            size = 12,
            align = 4,
            remote_dom = 0,
            remote_port = 4,
            local_port = 8
        );
        assert_layout!(
            EvtchnBindVirq,
            size = 12,
            align = 4,
            virq = 0,
            vcpu = 4,
            port = 8
        );
        assert_layout!(EvtchnPortOp, size = 4, align = 4, port = 0);
        assert_layout!(EvtchnBindVcpu, size = 8, align = 4, port = 0, vcpu = 4);
    }
}
