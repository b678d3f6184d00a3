// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Interrupt and I/O-event descriptions shared by all backends.

use vm_device_bus::IoSpace;

use crate::caps::Capability;

/// An interrupt line of the guest's interrupt controller, named the way the
/// guest's platform names it, so that each backend can take the path it has:
/// KVM drives GSIs and GIC interrupt ids (`KVM_IRQ_LINE`, irqfd), Xen has one
/// device-model operation per kind (ISA IRQ, PCI INTx, Arm SPI).
///
/// [`Capability`] says which kinds a backend drives ([`IrqLine::capability`]);
/// the others fail with [`Error::Unsupported`](crate::Error::Unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IrqLine {
    /// A global system interrupt: an input of the x86 IOAPIC (GSIs 0-15 are also the PIC's
    /// ISA IRQs).
    Gsi(u32),
    /// An x86 ISA IRQ, 0 to 15.
    Isa(u8),
    /// An x86 PCI INTx pin; the hypervisor's PCI interrupt routing picks the IOAPIC input.
    PciIntx {
        /// PCI segment.
        segment: u16,
        /// Bus.
        bus: u8,
        /// Device (slot), 0 to 31.
        device: u8,
        /// Pin: 0 (INTA) to 3 (INTD).
        pin: u8,
    },
    /// An Arm shared peripheral interrupt by its GIC interrupt id (32 to 1019: the device
    /// tree's SPI number plus 32).
    Spi(u32),
}

impl IrqLine {
    /// The capability a backend needs to drive this kind of line.
    pub fn capability(self) -> Capability {
        match self {
            IrqLine::Gsi(_) => Capability::IrqLineGsi,
            IrqLine::Isa(_) => Capability::IrqLineIsa,
            IrqLine::PciIntx { .. } => Capability::IrqLinePciIntx,
            IrqLine::Spi(_) => Capability::IrqLineSpi,
        }
    }
}

/// Where a guest write triggers an ioeventfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoEventAddress {
    /// A port.
    Pio(u16),
    /// A guest-physical address.
    Mmio(u64),
}

impl IoEventAddress {
    /// The address space and address.
    pub fn split(self) -> (IoSpace, u64) {
        match self {
            IoEventAddress::Pio(p) => (IoSpace::Pio, u64::from(p)),
            IoEventAddress::Mmio(a) => (IoSpace::Mmio, a),
        }
    }
}

/// Which writes to an ioeventfd address signal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataMatch {
    /// Every write, whatever its width and value.
    Any,
    /// One-byte writes of this value.
    U8(u8),
    /// Two-byte writes of this value.
    U16(u16),
    /// Four-byte writes of this value.
    U32(u32),
    /// Eight-byte writes of this value.
    U64(u64),
}

impl DataMatch {
    /// Width in bytes the write must have, `None` for [`DataMatch::Any`].
    pub fn size(self) -> Option<usize> {
        match self {
            DataMatch::Any => None,
            DataMatch::U8(_) => Some(1),
            DataMatch::U16(_) => Some(2),
            DataMatch::U32(_) => Some(4),
            DataMatch::U64(_) => Some(8),
        }
    }

    /// Whether a guest write of `data` would signal the event.
    pub fn matches(self, data: &[u8]) -> bool {
        let mut word = [0u8; 8];
        let n = data.len().min(8);
        word[..n].copy_from_slice(&data[..n]);
        let v = u64::from_le_bytes(word);
        match self {
            DataMatch::Any => true,
            DataMatch::U8(m) => n == 1 && v == u64::from(m),
            DataMatch::U16(m) => n == 2 && v == u64::from(m),
            DataMatch::U32(m) => n == 4 && v == u64::from(m),
            DataMatch::U64(m) => n == 8 && v == m,
        }
    }
}

/// A message-signalled interrupt: the write a device would make.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsiMessage {
    /// Address (x86: 0xfee0_0000 | destination APIC id << 12 | mode bits).
    pub address: u64,
    /// Data (x86: vector in bits 0-7, delivery mode in bits 8-10).
    pub data: u32,
    /// Requester id, for interrupt controllers that need it (GICv3 ITS).
    pub devid: Option<u32>,
}

impl MsiMessage {
    /// An x86 fixed-delivery, edge-triggered MSI of `vector` to the LAPIC
    /// with id `apic_id` in physical destination mode.
    pub fn x86_fixed(apic_id: u8, vector: u8) -> Self {
        Self {
            address: 0xfee0_0000 | (u64::from(apic_id) << 12),
            data: u32::from(vector),
            devid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datamatch_checks_width_and_value() {
        assert!(DataMatch::Any.matches(&[1, 2, 3]));
        assert!(DataMatch::U8(0x42).matches(&[0x42]));
        assert!(!DataMatch::U8(0x42).matches(&[0x42, 0]));
        assert!(DataMatch::U16(0x1234).matches(&[0x34, 0x12]));
        assert!(!DataMatch::U32(1).matches(&[2, 0, 0, 0]));
        assert!(DataMatch::U64(u64::MAX).matches(&[0xff; 8]));
        assert_eq!(DataMatch::U32(0).size(), Some(4));
        assert_eq!(DataMatch::Any.size(), None);
    }

    #[test]
    fn x86_msi_encodes_destination_and_vector() {
        let m = MsiMessage::x86_fixed(3, 0x40);
        assert_eq!(m.address, 0xfee0_3000);
        assert_eq!(m.data, 0x40);
        assert_eq!(IoEventAddress::Pio(0x504).split(), (IoSpace::Pio, 0x504));
    }

    #[test]
    fn each_line_kind_names_its_own_capability() {
        let intx = |pin| IrqLine::PciIntx {
            segment: 1,
            bus: 2,
            device: 31,
            pin,
        };
        let lines = [
            IrqLine::Spi(1019),
            intx(3),
            IrqLine::Isa(15),
            IrqLine::Gsi(23),
        ];
        let mut caps: Vec<_> = lines.iter().map(|l| l.capability()).collect();
        caps.sort();
        caps.dedup();
        assert_eq!(caps.len(), lines.len());
    }
}
