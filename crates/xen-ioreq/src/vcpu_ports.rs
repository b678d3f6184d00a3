// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Which vCPU a pending local port stands for, in one step.
//!
//! Every event a server reads names a local port; on the request's path the port must be
//! turned into its vCPU's slot. A search of the server's ports costs a comparison per vCPU
//! before the one that matched (and all of them for the other ports: the buffered ring's, the
//! doorbell server's, the loops' own). Local ports are small numbers the kernel's event
//! channel driver hands out from the lowest free one (below 2^17, the most event channels a
//! domain has), and the ports of one server's vCPUs are bound one after the other, so they
//! usually form one short run: a table indexed by the port's distance from the lowest of them
//! maps a port to its vCPU with a subtraction, a comparison and a load.

use xen_bindings::abi::xen::ioreq::IOREQS_PER_PAGE;
use xen_bindings::evtchn::Port;

/// What the table holds for a port that is not a vCPU's: more than any vCPU number of a
/// page, so that the page's own bound check of the number rejects it
/// ([`crate::page::IoreqPage::slot`]).
pub(crate) const NO_VCPU: u8 = u8::MAX;

// Every vCPU number of a page fits the table's entries, below `NO_VCPU`.
const _: () = assert!(IOREQS_PER_PAGE <= NO_VCPU as usize);

/// The largest table made: one entry per event channel a domain may have (the FIFO ABI's
/// limit). Ports further apart than this are not the kernel's; they are found by a search.
const MAX_SPAN: usize = 1 << 17;

/// The vCPU of each of a server's local vCPU ports.
#[derive(Debug, Default)]
pub(crate) struct VcpuPorts {
    /// The lowest of the ports.
    first: Port,
    /// `vcpus[i]`: the vCPU of port `first + i`, or [`NO_VCPU`].
    vcpus: Box<[u8]>,
    /// The ports by vCPU, for the search when they are too far apart for a table.
    ports: Box<[Port]>,
}

impl VcpuPorts {
    /// The table of `ports`, the local port of each vCPU in order (at most
    /// [`IOREQS_PER_PAGE`]).
    pub(crate) fn new(ports: &[Port]) -> Self {
        debug_assert!(ports.len() <= IOREQS_PER_PAGE);
        let ports: Box<[Port]> = ports.iter().copied().take(IOREQS_PER_PAGE).collect();
        let (Some(&first), Some(&last)) = (ports.iter().min(), ports.iter().max()) else {
            return Self::default();
        };
        let span = (last - first) as usize + 1;
        if span > MAX_SPAN {
            return Self {
                first,
                vcpus: Box::default(),
                ports,
            };
        }
        let mut vcpus = vec![NO_VCPU; span].into_boxed_slice();
        // Of two vCPUs with one port (not something the kernel does), the first keeps it, as
        // a search in vCPU order would find it.
        for (vcpu, &port) in ports.iter().enumerate().rev() {
            vcpus[(port - first) as usize] = vcpu as u8;
        }
        Self {
            first,
            vcpus,
            ports,
        }
    }

    /// The vCPU of `port`, or [`NO_VCPU`] if it is not a vCPU's.
    #[inline(always)]
    pub(crate) fn vcpu(&self, port: Port) -> usize {
        if let Some(&vcpu) = self.vcpus.get(port.wrapping_sub(self.first) as usize) {
            return usize::from(vcpu);
        }
        self.not_in_table(port)
    }

    /// [`VcpuPorts::vcpu`] of a port outside the table: searched for if the ports are too far
    /// apart for a table, not a vCPU's otherwise.
    #[cold]
    #[inline(never)]
    fn not_in_table(&self, port: Port) -> usize {
        let found = match self.vcpus.is_empty() {
            true => self.ports.iter().position(|&p| p == port),
            false => None,
        };
        found.unwrap_or(usize::from(NO_VCPU))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_ports_maps_each_to_its_vcpu() {
        let map = VcpuPorts::new(&[101, 102, 103]);
        assert_eq!(map.vcpus.len(), 3);
        assert_eq!(map.vcpu(101), 0);
        assert_eq!(map.vcpu(102), 1);
        assert_eq!(map.vcpu(103), 2);
        for other in [0, 100, 104, u32::MAX] {
            assert_eq!(map.vcpu(other), usize::from(NO_VCPU), "port {other}");
        }
    }

    #[test]
    fn ports_out_of_order_and_with_gaps() {
        // Another binding took port 11 meanwhile; the kernel reused a lower free port.
        let map = VcpuPorts::new(&[10, 12, 7]);
        assert_eq!(map.vcpus.len(), 6);
        assert_eq!(map.vcpu(10), 0);
        assert_eq!(map.vcpu(12), 1);
        assert_eq!(map.vcpu(7), 2);
        for other in [8, 9, 11, 6, 13] {
            assert_eq!(map.vcpu(other), usize::from(NO_VCPU), "port {other}");
        }
    }

    #[test]
    fn no_ports() {
        let map = VcpuPorts::new(&[]);
        assert_eq!(map.vcpu(0), usize::from(NO_VCPU));
        assert_eq!(map.vcpu(5), usize::from(NO_VCPU));
    }

    #[test]
    fn ports_too_far_apart_for_a_table_are_searched() {
        let map = VcpuPorts::new(&[3, u32::MAX - 1, 1 << 20]);
        assert!(map.vcpus.is_empty(), "no table of 2^32 entries");
        assert_eq!(map.vcpu(3), 0);
        assert_eq!(map.vcpu(u32::MAX - 1), 1);
        assert_eq!(map.vcpu(1 << 20), 2);
        assert_eq!(map.vcpu(4), usize::from(NO_VCPU));
        // The widest table made: the last port MAX_SPAN - 1 after the first.
        let map = VcpuPorts::new(&[1, MAX_SPAN as u32]);
        assert_eq!(map.vcpus.len(), MAX_SPAN);
        assert_eq!(map.vcpu(MAX_SPAN as u32), 1);
    }

    #[test]
    fn a_port_given_twice_is_the_first_vcpus() {
        let map = VcpuPorts::new(&[5, 5]);
        assert_eq!(map.vcpu(5), 0);
    }
}
