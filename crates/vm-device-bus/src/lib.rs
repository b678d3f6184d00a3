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

use std::fmt;
use std::ptr::NonNull;
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
    /// A device range is empty, wraps around the address space, or (for
    /// ports) runs past port 0xffff.
    #[error("{space} range {base:#x}+{len:#x} {reason}")]
    InvalidRange {
        /// Address space of the range.
        space: IoSpace,
        /// Base of the range.
        base: u64,
        /// Length of the range.
        len: u64,
        /// Which of the three it is.
        reason: &'static str,
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

    /// The guest reads `size` bytes (1, 2, 4 or 8) at `offset`: the value, little endian
    /// as [`IoHandler::read`] would fill it; bits above `size` bytes are ignored.
    ///
    /// [`IoBus::handle_request`] (the path of Xen IOREQs, which carry a value, not bytes)
    /// calls this. The provided method reads through [`IoHandler::read`]; a device whose
    /// registers are words implements it to skip the packing into bytes and back.
    #[inline]
    fn read_value(&self, offset: u64, size: u8) -> Result<u64, DeviceError> {
        let mut bytes = [0; 8];
        let data = bytes
            .get_mut(..usize::from(size))
            .ok_or("an access of more than 8 bytes")?;
        self.read(offset, data)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The guest writes the low `size` bytes (1, 2, 4 or 8) of `value` at `offset`.
    ///
    /// The counterpart of [`IoHandler::read_value`]; the provided method writes through
    /// [`IoHandler::write`].
    #[inline]
    fn write_value(&self, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
        let bytes = value.to_le_bytes();
        let data = bytes
            .get(..usize::from(size))
            .ok_or("an access of more than 8 bytes")?;
        self.write(offset, data)
    }
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
    #[inline]
    fn handle_request(&self, req: &mut IoRequest) -> Result<(), BusError> {
        let size = usize::from(req.size);
        if !valid_size(size) {
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

// The forwarding impls forward every method, `handle_request` too: a bus that serves it its
// own way must not fall back to the default through a reference.
impl<B: DeviceBus + ?Sized> DeviceBus for &B {
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        (**self).read(space, addr, data)
    }
    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        (**self).write(space, addr, data)
    }
    #[inline(always)]
    fn handle_request(&self, req: &mut IoRequest) -> Result<(), BusError> {
        (**self).handle_request(req)
    }
}

impl<B: DeviceBus + ?Sized> DeviceBus for Arc<B> {
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        (**self).read(space, addr, data)
    }
    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        (**self).write(space, addr, data)
    }
    #[inline(always)]
    fn handle_request(&self, req: &mut IoRequest) -> Result<(), BusError> {
        (**self).handle_request(req)
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

/// One device on the bus.
struct Slot {
    base: u64,
    len: u64,
    /// What `device` points into; the slot owns it, so the pointee lives as long as the slot.
    handler: Arc<dyn IoHandler>,
    /// The device itself, `Arc::as_ptr(&handler)`: taken once at insertion, because going
    /// through the `Arc` on every access works out the value's offset in the Arc's allocation
    /// from the alignment in its vtable (four to five instructions per guest access).
    device: NonNull<dyn IoHandler>,
}

// SAFETY: `device` is a shared borrow of the value `handler` keeps alive, and the slot never
// writes through it. Sending or sharing a slot hands on an `Arc<dyn IoHandler>` and a `&dyn
// IoHandler`, both of which are `Send + Sync` since `IoHandler: Send + Sync`.
unsafe impl Send for Slot {}
// SAFETY: see `Send` above.
unsafe impl Sync for Slot {}

impl Slot {
    fn new(base: u64, len: u64, handler: Arc<dyn IoHandler>) -> Self {
        let device = NonNull::from(&*handler);
        Self {
            base,
            len,
            handler,
            device,
        }
    }

    /// The device.
    #[inline]
    fn device(&self) -> &dyn IoHandler {
        // SAFETY: `device` points at the value in `handler`'s allocation, which `self` owns
        // (the `Arc` is never replaced), so it is alive and unmoved for as long as `self` is
        // borrowed; `IoHandler` methods take `&self`, and nothing gets a `&mut` to it.
        unsafe { self.device.as_ref() }
    }
}

/// The devices of one address space, sorted by base, non-overlapping.
///
/// A sorted vector rather than a tree: a VM has a handful of devices per
/// space, so the binary search below is two or three comparisons over one
/// cache line, where a tree walk chases pointers on every guest access.
#[derive(Default)]
struct Ranges(Vec<Slot>);

impl Ranges {
    /// Index of the last device whose base is at or below `addr`.
    #[inline]
    fn at_or_below(&self, addr: u64) -> Option<usize> {
        self.0.partition_point(|s| s.base <= addr).checked_sub(1)
    }

    /// The device whose range holds `addr`, and the offset of `addr` in it.
    ///
    /// The exit path's lookup: a binary search (its halving step is a conditional move, not a
    /// branch) that narrows the table to one
    /// candidate, the last device whose base is at or below `addr` (or the first device, when
    /// every base is above `addr`), then one unsigned comparison of `addr - base` (wrapping)
    /// with the length. Below the base that difference wraps to at least `2^64 - base`, which
    /// is more than any length `insert` accepts (`base + len` does not overflow), so the one
    /// comparison rejects addresses on either side of the range. With one device in a space
    /// (the common case for MMIO, and a short PIO table) this is a load, a subtraction and a
    /// comparison, against `partition_point`'s extra step and `checked_sub`.
    #[inline]
    fn find(&self, addr: u64) -> Option<(&Slot, u64)> {
        // The candidate stays in `s`, which halves until one device (or none) is left.
        let mut s = self.0.as_slice();
        while let [_, _, ..] = s {
            let (below, from) = s.split_at(s.len() / 2);
            s = if from[0].base <= addr { from } else { below };
        }
        let slot = s.first()?;
        let offset = addr.wrapping_sub(slot.base);
        (offset < slot.len).then_some((slot, offset))
    }
}

/// A [`DeviceBus`] that routes accesses by address range to
/// [`IoHandler`]s.
///
/// Devices are inserted while the VM is set up (`&mut self`); dispatch is a
/// binary search over a short sorted table, so the exit path takes no lock,
/// touches no shared counter and allocates nothing.
#[derive(Default)]
pub struct IoBus {
    pio: Ranges,
    mmio: Ranges,
}

impl fmt::Debug for IoBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges =
            |m: &Ranges| -> Vec<(u64, u64)> { m.0.iter().map(|s| (s.base, s.len)).collect() };
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

    #[inline]
    fn ranges(&self, space: IoSpace) -> &Ranges {
        match space {
            IoSpace::Pio => &self.pio,
            IoSpace::Mmio => &self.mmio,
        }
    }

    fn ranges_mut(&mut self, space: IoSpace) -> &mut Ranges {
        match space {
            IoSpace::Pio => &mut self.pio,
            IoSpace::Mmio => &mut self.mmio,
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
        let invalid = |reason| BusError::InvalidRange {
            space,
            base,
            len,
            reason,
        };
        let end = base
            .checked_add(len)
            .ok_or_else(|| invalid("wraps around the address space"))?;
        if len == 0 {
            return Err(invalid("is empty"));
        }
        if space == IoSpace::Pio && end > 0x1_0000 {
            return Err(invalid("runs past port 0xffff"));
        }
        let ranges = self.ranges(space);
        // The device starting at or below `base`, and the first one above it,
        // are the only ones that can overlap.
        let pos = ranges.0.partition_point(|s| s.base <= base);
        let below = pos.checked_sub(1).map(|i| &ranges.0[i]);
        for other in below.into_iter().chain(ranges.0.get(pos)) {
            let other_end = other.base + other.len;
            if other.base < end && base < other_end {
                return Err(BusError::Overlap {
                    space,
                    base,
                    len,
                    other_base: other.base,
                    other_len: other.len,
                });
            }
        }
        self.ranges_mut(space)
            .0
            .insert(pos, Slot::new(base, len, handler));
        Ok(())
    }

    /// Take the device at exactly `base` off the bus, returning it.
    pub fn remove(&mut self, space: IoSpace, base: u64) -> Option<Arc<dyn IoHandler>> {
        let ranges = self.ranges_mut(space);
        let i = ranges
            .at_or_below(base)
            .filter(|&i| ranges.0[i].base == base)?;
        Some(ranges.0.remove(i).handler)
    }

    /// The device an access of `size` bytes at `addr` lies in, and the
    /// offset inside it; `None` for every failure, which [`IoBus::miss`]
    /// then names. Kept apart from the error so that the hit path returns
    /// two words rather than a `Result` as large as the error.
    #[inline]
    fn find(&self, space: IoSpace, addr: u64, size: usize) -> Option<(&Slot, u64)> {
        if !valid_size(size) {
            return None;
        }
        let (slot, offset) = self.ranges(space).find(addr)?;
        // offset < len, so the difference does not wrap; size <= 8, so the cast is exact.
        (size as u64 <= slot.len - offset).then_some((slot, offset))
    }

    /// Why [`IoBus::find`] found nothing for this access.
    #[cold]
    fn miss(&self, space: IoSpace, addr: u64, size: usize) -> BusError {
        if !valid_size(size) {
            return BusError::InvalidAccessSize { space, addr, size };
        }
        let ranges = self.ranges(space);
        match ranges.at_or_below(addr).map(|i| &ranges.0[i]) {
            Some(slot) if addr - slot.base < slot.len => BusError::CrossesDeviceEnd {
                space,
                addr,
                size,
                end: slot.base + slot.len,
            },
            _ => BusError::NoDevice { space, addr },
        }
    }
}

/// Whether an access of `size` bytes is one the bus serves: 1, 2, 4 or 8, tested with one
/// shift (a `matches!` of the four costs about twice the instructions on every exit).
#[inline]
fn valid_size(size: usize) -> bool {
    const SIZES: u32 = 1 << 1 | 1 << 2 | 1 << 4 | 1 << 8;
    size <= 8 && SIZES >> size & 1 != 0
}

/// A device's failure as a [`BusError`].
#[cold]
fn device_error(
    space: IoSpace,
    slot: &Slot,
    offset: u64,
    op: &'static str,
    source: DeviceError,
) -> BusError {
    BusError::Device {
        space,
        base: slot.base,
        offset,
        op,
        source,
    }
}

impl DeviceBus for IoBus {
    #[inline]
    fn read(&self, space: IoSpace, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        match self.find(space, addr, data.len()) {
            Some((slot, offset)) => slot
                .device()
                .read(offset, data)
                .map_err(|e| device_error(space, slot, offset, "read", e)),
            None => Err(self.miss(space, addr, data.len())),
        }
    }

    #[inline]
    fn write(&self, space: IoSpace, addr: u64, data: &[u8]) -> Result<(), BusError> {
        match self.find(space, addr, data.len()) {
            Some((slot, offset)) => slot
                .device()
                .write(offset, data)
                .map_err(|e| device_error(space, slot, offset, "write", e)),
            None => Err(self.miss(space, addr, data.len())),
        }
    }

    /// Hands the value to the device as a value ([`IoHandler::read_value`],
    /// [`IoHandler::write_value`]): a device with word registers answers without the value
    /// being packed into bytes and back on either side of the call.
    // Always inline: in a caller's serving loop (a Xen IOREQ server's) the request stays in
    // registers, with no call and no `Result` through memory.
    #[inline(always)]
    fn handle_request(&self, req: &mut IoRequest) -> Result<(), BusError> {
        let (space, size) = (req.space, req.size);
        let Some((slot, offset)) = self.find(space, req.addr, usize::from(size)) else {
            return Err(self.miss(space, req.addr, usize::from(size)));
        };
        if req.write {
            slot.device()
                .write_value(offset, size, req.data)
                .map_err(|e| device_error(space, slot, offset, "write", e))
        } else {
            let value = slot
                .device()
                .read_value(offset, size)
                .map_err(|e| device_error(space, slot, offset, "read", e))?;
            // Zero-extended, as the trait promises: `find` let through 1, 2, 4 or 8 only.
            req.data = value & (u64::MAX >> (64 - 8 * u32::from(size)));
            Ok(())
        }
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
    fn valid_sizes_are_one_two_four_and_eight() {
        let valid: Vec<usize> = (0..=64).filter(|&s| valid_size(s)).collect();
        assert_eq!(valid, [1, 2, 4, 8]);
        assert!(!valid_size(usize::MAX));
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

    /// Answers every read with its own tag, so a test sees which device served.
    struct Tagged(u8);

    impl IoHandler for Tagged {
        fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
            data.fill(self.0);
            Ok(())
        }
        fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
            Ok(())
        }
    }

    fn tag_at(bus: &IoBus, addr: u64) -> Option<u8> {
        let mut b = [0u8; 1];
        bus.read(IoSpace::Mmio, addr, &mut b).ok().map(|()| b[0])
    }

    #[test]
    fn devices_inserted_in_any_order_are_found_at_their_edges_only() {
        let mut bus = IoBus::new();
        // (base, len, tag), inserted out of order, with gaps and touching neighbours.
        let devs = [
            (0x5000, 0x10, 5),
            (0x1000, 0x100, 1),
            (0x1100, 0x8, 2),
            (0x9000, 1, 9),
        ];
        for (base, len, tag) in devs {
            bus.insert(IoSpace::Mmio, base, len, Arc::new(Tagged(tag)))
                .unwrap();
        }
        for (base, len, tag) in devs {
            assert_eq!(tag_at(&bus, base), Some(tag), "first byte of {base:#x}");
            assert_eq!(
                tag_at(&bus, base + len - 1),
                Some(tag),
                "last byte of {base:#x}"
            );
        }
        for gap in [0, 0xfff, 0x1108, 0x4fff, 0x5010, 0x8fff, 0x9001, u64::MAX] {
            assert_eq!(tag_at(&bus, gap), None, "gap at {gap:#x}");
        }
        assert!(bus.remove(IoSpace::Mmio, 0x1001).is_none(), "not a base");
        assert!(bus.remove(IoSpace::Pio, 0x1000).is_none(), "other space");
        assert!(bus.remove(IoSpace::Mmio, 0x1000).is_some());
        assert_eq!(tag_at(&bus, 0x1000), None);
        assert_eq!(tag_at(&bus, 0x1100), Some(2), "the neighbour stays");
        bus.insert(IoSpace::Mmio, 0x1000, 0x100, Arc::new(Tagged(7)))
            .unwrap();
        assert_eq!(tag_at(&bus, 0x10ff), Some(7), "a freed range can be reused");
    }

    #[test]
    fn one_bus_serves_several_threads() {
        let mut bus = IoBus::new();
        for i in 0..8u8 {
            bus.insert(
                IoSpace::Mmio,
                u64::from(i) * 0x1000,
                0x1000,
                Arc::new(Tagged(i)),
            )
            .unwrap();
        }
        let bus = &bus;
        std::thread::scope(|s| {
            for t in 0..4u64 {
                s.spawn(move || {
                    for n in 0..10_000u64 {
                        let dev = (n + t) % 8;
                        assert_eq!(tag_at(bus, dev * 0x1000 + n % 0x1000), Some(dev as u8));
                    }
                });
            }
        });
    }

    /// The device a linear scan of `devs` finds at `addr`, for checking `find`.
    fn scan(devs: &[(u64, u64, u8)], addr: u64) -> Option<u8> {
        devs.iter()
            .find(|&&(base, len, _)| addr >= base && addr - base < len)
            .map(|&(_, _, tag)| tag)
    }

    #[test]
    fn lookup_agrees_with_a_linear_scan_as_devices_come_and_go() {
        // A fixed xorshift sequence: the same tables every run, of 0 to 40 devices.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut bus = IoBus::new();
        let mut devs: Vec<(u64, u64, u8)> = Vec::new();
        let mut most = 0;
        for round in 0..2000u32 {
            most = most.max(devs.len());
            // Mostly inserts early on, then as many removes as inserts.
            if devs.is_empty() || next() % 8 < if round < 400 { 6 } else { 4 } {
                // Small bases and lengths, so that devices touch, leave gaps and collide.
                let base = next() % 0x400;
                let len = 1 + next() % 0x40;
                let tag = (round % 251) as u8;
                let fits = scan(&devs, base).is_none()
                    && devs
                        .iter()
                        .all(|&(b, l, _)| base + len <= b || b + l <= base);
                let r = bus.insert(IoSpace::Mmio, base, len, Arc::new(Tagged(tag)));
                assert_eq!(r.is_ok(), fits, "insert {base:#x}+{len:#x} into {devs:x?}");
                if fits {
                    devs.push((base, len, tag));
                }
            } else {
                let (base, _, _) = devs.swap_remove((next() % devs.len() as u64) as usize);
                assert!(bus.remove(IoSpace::Mmio, base).is_some());
            }
            for _ in 0..8 {
                let addr = next() % 0x480;
                assert_eq!(
                    tag_at(&bus, addr),
                    scan(&devs, addr),
                    "{addr:#x} in {devs:x?}"
                );
            }
            for &(base, len, tag) in &devs {
                assert_eq!(tag_at(&bus, base), Some(tag));
                assert_eq!(tag_at(&bus, base + len - 1), Some(tag));
                assert_eq!(tag_at(&bus, base + len), scan(&devs, base + len));
                if let Some(below) = base.checked_sub(1) {
                    assert_eq!(tag_at(&bus, below), scan(&devs, below));
                }
            }
        }
        // Deep enough for several rounds of the binary search.
        assert!(most >= 12, "the table only grew to {most} devices");
    }

    #[test]
    fn lookup_holds_at_both_ends_of_the_address_space() {
        let mut bus = IoBus::new();
        assert_eq!(tag_at(&bus, 0), None, "empty bus");
        assert_eq!(tag_at(&bus, u64::MAX), None, "empty bus");
        // The highest range insert accepts ends at u64::MAX (base + len must not overflow).
        bus.insert(IoSpace::Mmio, u64::MAX - 0xf, 0xf, Arc::new(Tagged(2)))
            .unwrap();
        assert_eq!(tag_at(&bus, u64::MAX - 1), Some(2));
        assert_eq!(tag_at(&bus, u64::MAX), None, "one past the top device");
        // Below the only device's base: `addr - base` wraps, and must still miss.
        for addr in [0, 1, 0x8000_0000, u64::MAX - 0x10] {
            assert_eq!(tag_at(&bus, addr), None, "{addr:#x}");
        }
        bus.insert(IoSpace::Mmio, 0, 0x10, Arc::new(Tagged(1)))
            .unwrap();
        assert_eq!(tag_at(&bus, 0), Some(1));
        assert_eq!(tag_at(&bus, 0xf), Some(1));
        assert_eq!(tag_at(&bus, 0x10), None);
        assert_eq!(tag_at(&bus, u64::MAX - 0xf), Some(2));
        // An 8-byte access at the top device's last bytes: inside, then one byte past.
        let mut b8 = [0u8; 8];
        bus.read(IoSpace::Mmio, u64::MAX - 8, &mut b8).unwrap();
        assert!(matches!(
            bus.read(IoSpace::Mmio, u64::MAX - 7, &mut b8),
            Err(BusError::CrossesDeviceEnd { end: u64::MAX, .. })
        ));
    }

    #[test]
    fn bus_is_send_and_sync_and_drops_devices_it_no_longer_holds() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<IoBus>();
        let dev = Arc::new(Tagged(3));
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Pio, 0x60, 1, dev.clone()).unwrap();
        bus.insert(IoSpace::Pio, 0x64, 1, dev.clone()).unwrap();
        assert_eq!(Arc::strong_count(&dev), 3);
        drop(bus.remove(IoSpace::Pio, 0x60));
        assert_eq!(Arc::strong_count(&dev), 2);
        let mut b = [0u8];
        bus.read(IoSpace::Pio, 0x64, &mut b).unwrap();
        assert_eq!(b, [3], "the other slot still reaches the device");
        drop(bus);
        assert_eq!(Arc::strong_count(&dev), 1);
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
        let e = bus
            .insert(IoSpace::Pio, 0xfffe, 4, dev.clone())
            .unwrap_err();
        assert_eq!(e.to_string(), "port range 0xfffe+0x4 runs past port 0xffff");
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

    /// Serves words only: its byte methods fail, so a request that reaches them shows the bus
    /// packed the value into bytes.
    #[derive(Default)]
    struct WordRegister(Mutex<Vec<(u64, u8, u64)>>);

    impl IoHandler for WordRegister {
        fn read(&self, _: u64, _: &mut [u8]) -> Result<(), DeviceError> {
            Err("read as bytes".into())
        }
        fn write(&self, _: u64, _: &[u8]) -> Result<(), DeviceError> {
            Err("written as bytes".into())
        }
        fn read_value(&self, offset: u64, _: u8) -> Result<u64, DeviceError> {
            match offset {
                0x10 => Err("register is write-only".into()),
                // More bits than any access: the bus keeps the access's bytes only.
                _ => Ok(0x1122_3344_5566_7788),
            }
        }
        fn write_value(&self, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
            self.0.lock().unwrap().push((offset, size, value));
            Ok(())
        }
    }

    #[test]
    fn handle_request_hands_a_device_values_not_bytes() {
        let mut bus = IoBus::new();
        let dev = Arc::new(WordRegister::default());
        bus.insert(IoSpace::Mmio, 0x2000, 0x100, dev.clone())
            .unwrap();
        for (size, value) in [
            (1, 0x88),
            (2, 0x7788),
            (4, 0x5566_7788),
            (8, 0x1122_3344_5566_7788),
        ] {
            let mut req = IoRequest {
                space: IoSpace::Mmio,
                addr: 0x2008,
                size,
                write: false,
                data: u64::MAX,
            };
            bus.handle_request(&mut req).unwrap();
            assert_eq!(req.data, value, "a read of {size} bytes");
        }
        let mut req = IoRequest {
            space: IoSpace::Mmio,
            addr: 0x2004,
            size: 2,
            write: true,
            data: 0xbeef,
        };
        bus.handle_request(&mut req).unwrap();
        assert_eq!(*dev.0.lock().unwrap(), [(4, 2, 0xbeef)]);
        let mut req = IoRequest {
            addr: 0x2010,
            write: false,
            ..req
        };
        let err = bus.handle_request(&mut req).unwrap_err();
        assert!(
            matches!(
                err,
                BusError::Device {
                    base: 0x2000,
                    offset: 0x10,
                    op: "read",
                    ..
                }
            ),
            "{err:?}"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("register is write-only"));
        // The byte methods stay the KVM exit's path.
        assert!(bus.read(IoSpace::Mmio, 0x2008, &mut [0; 4]).is_err());
    }

    #[test]
    fn the_provided_value_methods_refuse_more_than_eight_bytes() {
        let (_, rec) = bus_with_recorder();
        assert_eq!(rec.read_value(2, 2).unwrap(), 0x0202);
        rec.write_value(3, 1, 0x1234).unwrap();
        assert_eq!(rec.0.lock().unwrap()[0], (3, vec![0x34]));
        assert!(rec.read_value(0, 9).is_err());
        assert!(rec.write_value(0, 9, 0).is_err());
        assert_eq!(rec.0.lock().unwrap().len(), 1);
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
