// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device bus of a VMM: the [`DeviceBus`] a hypervisor backend calls for
//! guest port and MMIO accesses, the [`IoHandler`] a device implements, and
//! [`IoBus`], a ready-made bus that routes accesses by address range.
//!
//! A device written once against [`IoHandler`] is served by every backend: a
//! KVM vCPU loop calls the bus on each I/O exit, a Xen IOREQ server (which has
//! no vCPU loop) turns each request it takes from the shared ioreq page into
//! an [`IoRequest`] and calls [`DeviceBus::handle_request`]. The crate knows
//! no hypervisor, so a Xen device model depends on it without the
//! `Hypervisor`/`Vm`/`Vcpu` traits.
//!
//! ```
//! use std::sync::Arc;
//! use vm_device_bus::{DeviceBus, DeviceError, IoBus, IoHandler, IoRequest, IoSpace};
//!
//! /// Reads as 0x2a, counts nothing.
//! struct Answer;
//! impl IoHandler for Answer {
//!     fn read(&self, _offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
//!         data.fill(0);
//!         data[0] = 0x2a;
//!         Ok(())
//!     }
//!     fn write(&self, _offset: u64, _data: &[u8]) -> Result<(), DeviceError> {
//!         Ok(())
//!     }
//! }
//!
//! let mut bus = IoBus::new();
//! bus.insert(IoSpace::Mmio, 0xd000_0000, 0x1000, Arc::new(Answer)).unwrap();
//! let mut req = IoRequest { space: IoSpace::Mmio, addr: 0xd000_0010, size: 4, write: false, data: 0 };
//! bus.handle_request(&mut req).unwrap();
//! assert_eq!(req.data, 0x2a);
//! // Guest-controlled sizes and addresses are checked before a device sees them.
//! assert!(bus.read(IoSpace::Mmio, 0xd000_0000, &mut [0; 3]).is_err());
//! assert!(bus.read(IoSpace::Pio, 0x80, &mut [0; 1]).is_err());
//! ```
//!
//! The bus methods take `&self` and know nothing of vCPUs: several vCPU
//! threads (or several IOREQ event loops) call one bus at once, and devices
//! are `Send + Sync`. Sizes (1, 2, 4 or 8 bytes) and range bounds are checked
//! before a device is called, since on Xen those fields come from a page the
//! guest can write.

#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// The README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The address space an access targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IoSpace {
    /// x86 port I/O (`in`/`out`), 16-bit port numbers.
    Pio,
    /// Memory-mapped I/O: guest-physical addresses not backed by RAM.
    Mmio,
}

impl fmt::Display for IoSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoSpace::Pio => "port",
            IoSpace::Mmio => "MMIO",
        })
    }
}

/// Error a device reports from [`IoHandler::read`] or [`IoHandler::write`].
pub type DeviceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of guest I/O dispatch and of building an [`IoBus`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BusError {
    /// The access width is not one the bus accepts (1, 2, 4 or 8 bytes).
    #[error("{space} access at {addr:#x} has size {size}, expected 1, 2, 4 or 8 bytes")]
    InvalidAccessSize {
        /// Address space of the access.
        space: IoSpace,
        /// Guest address or port.
        addr: u64,
        /// Size that was asked for.
        size: usize,
    },
    /// No device claims the address.
    #[error("no device at {space} address {addr:#x}")]
    NoDevice {
        /// Address space of the access.
        space: IoSpace,
        /// Guest address or port.
        addr: u64,
    },
    /// The access starts inside a device but runs past its end.
    #[error("{space} access at {addr:#x} of {size} bytes runs past the device ending at {end:#x}")]
    CrossesDeviceEnd {
        /// Address space of the access.
        space: IoSpace,
        /// Guest address or port.
        addr: u64,
        /// Size of the access.
        size: usize,
        /// First address after the device.
        end: u64,
    },
    /// The device handled the access and reported an error.
    #[error("device at {space} {base:#x} failed a {op} at offset {offset:#x}")]
    Device {
        /// Address space of the device.
        space: IoSpace,
        /// Base address of the device.
        base: u64,
        /// Offset of the access inside the device.
        offset: u64,
        /// `"read"` or `"write"`.
        op: &'static str,
        /// What the device said.
        #[source]
        source: DeviceError,
    },
    /// A device range would overlap one already on the bus.
    #[error(
        "{space} range {base:#x}+{len:#x} overlaps the device at {other_base:#x}+{other_len:#x}"
    )]
    Overlap {
        /// Address space of the range.
        space: IoSpace,
        /// Base of the new range.
        base: u64,
        /// Length of the new range.
        len: u64,
        /// Base of the existing range.
        other_base: u64,
        /// Length of the existing range.
        other_len: u64,
    },
    /// A device range is empty or wraps around the address space.
    #[error("{space} range {base:#x}+{len:#x} is empty or wraps around")]
    InvalidRange {
        /// Address space of the range.
        space: IoSpace,
        /// Base of the range.
        base: u64,
        /// Length of the range.
        len: u64,
    },
}

/// Something a guest reads from and writes to: one device, written once and
/// reachable from every backend through an [`IoBus`].
///
/// `offset` is relative to the base the device was inserted at; `data` is
/// 1, 2, 4 or 8 bytes long, little endian, which the bus checks before it
/// calls the device.
pub trait IoHandler: Send + Sync {
    /// The guest reads `data.len()` bytes at `offset`; fill `data`.
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError>;
    /// The guest writes `data` at `offset`.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError>;
}

/// The guest I/O sink a backend calls: for each PIO or MMIO access that the
/// hypervisor does not handle itself.
///
/// Implemented by [`IoBus`]; a VMM with its own device model implements it
/// directly. Methods take `&self` so one bus can serve several vCPU threads
/// and a Xen IOREQ thread at once.
pub trait DeviceBus {
    /// The guest reads `data.len()` bytes at `addr` in `space`.
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError>;
    /// The guest writes `data` at `addr` in `space`.
    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError>;

    /// Serve one request in the shape hypervisors without a vCPU exit (Xen
    /// IOREQ) hand them over: an address, a size and a 64-bit data word.
    ///
    /// For a read, `req.data` receives the value (zero-extended); for a
    /// write, its low `req.size` bytes are written.
    fn handle_request(&self, req: &mut IoRequest) -> Result<(), BusError> {
        let size = usize::from(req.size);
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(BusError::InvalidAccessSize {
                space: req.space,
                addr: req.addr,
                size,
            });
        }
        let mut bytes = req.data.to_le_bytes();
        if req.write {
            self.write(req.space, req.addr, &bytes[..size])
        } else {
            bytes = [0; 8];
            self.read(req.space, req.addr, &mut bytes[..size])?;
            req.data = u64::from_le_bytes(bytes);
            Ok(())
        }
    }
}

impl<B: DeviceBus + ?Sized> DeviceBus for &B {
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        (**self).read(space, addr, data)
    }
    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        (**self).write(space, addr, data)
    }
}

impl<B: DeviceBus + ?Sized> DeviceBus for Arc<B> {
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        (**self).read(space, addr, data)
    }
    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        (**self).write(space, addr, data)
    }
}

/// One guest I/O request in a register-sized form (see
/// [`DeviceBus::handle_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoRequest {
    /// Address space.
    pub space: IoSpace,
    /// Guest address or port.
    pub addr: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// `true` for a guest write.
    pub write: bool,
    /// Value written, or value read once handled.
    pub data: u64,
}

struct Slot {
    len: u64,
    handler: Arc<dyn IoHandler>,
}

/// A [`DeviceBus`] that routes accesses by address range to
/// [`IoHandler`]s.
///
/// Devices are inserted while the VM is set up (`&mut self`); dispatch is a
/// lock-free ordered-map lookup, so the exit path takes no lock and touches
/// no shared counter.
#[derive(Default)]
pub struct IoBus {
    pio: BTreeMap<u64, Slot>,
    mmio: BTreeMap<u64, Slot>,
}

impl fmt::Debug for IoBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges = |m: &BTreeMap<u64, Slot>| -> Vec<(u64, u64)> {
            m.iter().map(|(b, s)| (*b, s.len)).collect()
        };
        f.debug_struct("IoBus")
            .field("pio", &ranges(&self.pio))
            .field("mmio", &ranges(&self.mmio))
            .finish()
    }
}

impl IoBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self, space: IoSpace) -> &BTreeMap<u64, Slot> {
        match space {
            IoSpace::Pio => &self.pio,
            IoSpace::Mmio => &self.mmio,
        }
    }

    /// Put `handler` at `[base, base + len)` of `space`.
    ///
    /// Fails with [`BusError::Overlap`] if the range touches a device already
    /// there and with [`BusError::InvalidRange`] if it is empty, wraps, or
    /// (for PIO) goes past port 0xffff.
    pub fn insert(
        &mut self,
        space: IoSpace,
        base: u64,
        len: u64,
        handler: Arc<dyn IoHandler>,
    ) -> Result<(), BusError> {
        let invalid = BusError::InvalidRange { space, base, len };
        let end = base.checked_add(len).ok_or(invalid)?;
        if len == 0 || (space == IoSpace::Pio && end > 0x1_0000) {
            return Err(BusError::InvalidRange { space, base, len });
        }
        let map = self.map(space);
        // The device starting at or below `base`, and the first one above it,
        // are the only ones that can overlap.
        let below = map.range(..=base).next_back();
        let above = map.range(base..).next();
        for (&other_base, slot) in below.into_iter().chain(above) {
            let other_end = other_base + slot.len;
            if other_base < end && base < other_end {
                return Err(BusError::Overlap {
                    space,
                    base,
                    len,
                    other_base,
                    other_len: slot.len,
                });
            }
        }
        let slot = Slot { len, handler };
        match space {
            IoSpace::Pio => self.pio.insert(base, slot),
            IoSpace::Mmio => self.mmio.insert(base, slot),
        };
        Ok(())
    }

    /// Take the device at exactly `base` off the bus, returning it.
    pub fn remove(&mut self, space: IoSpace, base: u64) -> Option<Arc<dyn IoHandler>> {
        match space {
            IoSpace::Pio => self.pio.remove(&base),
            IoSpace::Mmio => self.mmio.remove(&base),
        }
        .map(|s| s.handler)
    }

    /// Find the device for an access and the offset inside it.
    fn resolve(
        &self,
        space: IoSpace,
        addr: u64,
        size: usize,
    ) -> Result<(u64, u64, &dyn IoHandler), BusError> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(BusError::InvalidAccessSize { space, addr, size });
        }
        let (&base, slot) = self
            .map(space)
            .range(..=addr)
            .next_back()
            .ok_or(BusError::NoDevice { space, addr })?;
        let offset = addr - base;
        if offset >= slot.len {
            return Err(BusError::NoDevice { space, addr });
        }
        // size <= 8 so the cast is lossless.
        if offset + size as u64 > slot.len {
            return Err(BusError::CrossesDeviceEnd {
                space,
                addr,
                size,
                end: base + slot.len,
            });
        }
        Ok((base, offset, slot.handler.as_ref()))
    }
}

impl DeviceBus for IoBus {
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        let (base, offset, dev) = self.resolve(space, addr, data.len())?;
        dev.read(offset, data).map_err(|source| BusError::Device {
            space,
            base,
            offset,
            op: "read",
            source,
        })
    }

    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        let (base, offset, dev) = self.resolve(space, addr, data.len())?;
        dev.write(offset, data).map_err(|source| BusError::Device {
            space,
            base,
            offset,
            op: "write",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Remembers writes, answers reads with the offset repeated.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, Vec<u8>)>>);

    impl IoHandler for Recorder {
        fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
            data.fill(offset as u8);
            Ok(())
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
            self.0.lock().unwrap().push((offset, data.to_vec()));
            Ok(())
        }
    }

    struct Failing;

    impl IoHandler for Failing {
        fn read(&self, _: u64, _: &mut [u8]) -> Result<(), DeviceError> {
            Err("register is write-only".into())
        }
        fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
            Err("device is wedged".into())
        }
    }

    fn bus_with_recorder() -> (IoBus, Arc<Recorder>) {
        let mut bus = IoBus::new();
        let rec = Arc::new(Recorder::default());
        bus.insert(IoSpace::Mmio, 0x1000, 0x100, rec.clone())
            .unwrap();
        bus.insert(IoSpace::Pio, 0x3f8, 8, rec.clone()).unwrap();
        (bus, rec)
    }

    #[test]
    fn routes_by_space_and_offset() {
        let (bus, rec) = bus_with_recorder();
        bus.write(IoSpace::Mmio, 0x1010, &[1, 2, 3, 4]).unwrap();
        bus.write(IoSpace::Pio, 0x3f9, &[9]).unwrap();
        let mut buf = [0u8; 2];
        bus.read(IoSpace::Mmio, 0x1020, &mut buf).unwrap();
        assert_eq!(buf, [0x20, 0x20]);
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![(0x10, vec![1, 2, 3, 4]), (1, vec![9])]
        );
        // Port 0x1010 is not MMIO address 0x1010.
        assert!(matches!(
            bus.write(IoSpace::Pio, 0x1010, &[0]),
            Err(BusError::NoDevice {
                space: IoSpace::Pio,
                addr: 0x1010
            })
        ));
    }

    #[test]
    fn odd_sizes_are_rejected_before_the_device_sees_them() {
        let (bus, rec) = bus_with_recorder();
        for size in [0usize, 3, 5, 16] {
            let mut buf = vec![0u8; size];
            let err = bus.read(IoSpace::Mmio, 0x1000, &mut buf).unwrap_err();
            assert!(
                matches!(err, BusError::InvalidAccessSize { size: s, .. } if s == size),
                "{err}"
            );
            assert!(bus.write(IoSpace::Mmio, 0x1000, &buf).is_err());
        }
        assert!(rec.0.lock().unwrap().is_empty());
    }

    #[test]
    fn accesses_outside_or_across_devices_fail() {
        let (bus, _) = bus_with_recorder();
        let mut b4 = [0u8; 4];
        assert!(matches!(
            bus.read(IoSpace::Mmio, 0x0fff, &mut b4[..1]),
            Err(BusError::NoDevice { .. })
        ));
        assert!(matches!(
            bus.read(IoSpace::Mmio, 0x1100, &mut b4[..1]),
            Err(BusError::NoDevice { .. })
        ));
        let err = bus.read(IoSpace::Mmio, 0x10fe, &mut b4).unwrap_err();
        assert!(matches!(
            err,
            BusError::CrossesDeviceEnd { end: 0x1100, .. }
        ));
        assert!(err.to_string().contains("0x10fe"), "{err}");
    }

    #[test]
    fn overlapping_and_invalid_ranges_are_refused() {
        let (mut bus, _) = bus_with_recorder();
        let dev: Arc<dyn IoHandler> = Arc::new(Recorder::default());
        for (base, len) in [(0xfff, 2), (0x10ff, 1), (0x1080, 0x10), (0x0, 0x2000)] {
            let err = bus
                .insert(IoSpace::Mmio, base, len, dev.clone())
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    BusError::Overlap {
                        other_base: 0x1000,
                        ..
                    }
                ),
                "{base:#x}: {err}"
            );
        }
        // Touching ends do not overlap.
        bus.insert(IoSpace::Mmio, 0xf00, 0x100, dev.clone())
            .unwrap();
        bus.insert(IoSpace::Mmio, 0x1100, 0x100, dev.clone())
            .unwrap();
        assert!(matches!(
            bus.insert(IoSpace::Mmio, 0x5000, 0, dev.clone()),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(matches!(
            bus.insert(IoSpace::Mmio, u64::MAX, 2, dev.clone()),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(matches!(
            bus.insert(IoSpace::Pio, 0xfffe, 4, dev.clone()),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(bus.remove(IoSpace::Mmio, 0x1000).is_some());
        assert!(bus.remove(IoSpace::Mmio, 0x1000).is_none());
        bus.insert(IoSpace::Mmio, 0x1080, 0x10, dev).unwrap();
    }

    #[test]
    fn device_errors_are_typed_and_keep_the_source() {
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Pio, 0x80, 1, Arc::new(Failing))
            .unwrap();
        let err = bus.write(IoSpace::Pio, 0x80, &[1]).unwrap_err();
        match &err {
            BusError::Device {
                base: 0x80,
                offset: 0,
                op: "write",
                source,
                ..
            } => assert_eq!(source.to_string(), "device is wedged"),
            other => panic!("unexpected {other:?}"),
        }
        let mut b = [0u8];
        assert!(matches!(
            bus.read(IoSpace::Pio, 0x80, &mut b),
            Err(BusError::Device { op: "read", .. })
        ));
    }

    #[test]
    fn handle_request_reads_and_writes_words() {
        let (bus, rec) = bus_with_recorder();
        let mut req = IoRequest {
            space: IoSpace::Mmio,
            addr: 0x1004,
            size: 4,
            write: false,
            data: u64::MAX,
        };
        bus.handle_request(&mut req).unwrap();
        assert_eq!(req.data, 0x0404_0404);
        let mut req = IoRequest {
            write: true,
            size: 2,
            data: 0xdead_beef,
            ..req
        };
        bus.handle_request(&mut req).unwrap();
        assert_eq!(rec.0.lock().unwrap()[0], (4, vec![0xef, 0xbe]));
        for size in [0u8, 3, 16] {
            let mut bad = IoRequest { size, ..req };
            assert!(matches!(
                bus.handle_request(&mut bad),
                Err(BusError::InvalidAccessSize { .. })
            ));
        }
    }

    #[test]
    fn bus_is_usable_as_a_trait_object_and_through_references() {
        let (bus, _) = bus_with_recorder();
        let mut b = [0u8; 1];
        let dynbus: &dyn DeviceBus = &bus;
        dynbus.read(IoSpace::Pio, 0x3fa, &mut b).unwrap();
        assert_eq!(b, [2]);
        let arc = Arc::new(bus);
        DeviceBus::read(&&*arc, IoSpace::Pio, 0x3fb, &mut b).unwrap();
        let mut c = [0u8; 1];
        DeviceBus::read(&arc, IoSpace::Pio, 0x3fc, &mut c).unwrap();
        assert_eq!(c, [4]);
        assert_eq!(b, [3]);
    }
}
