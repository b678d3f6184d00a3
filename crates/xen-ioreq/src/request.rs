// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Typed requests decoded from the raw `struct ioreq` Xen writes.
//!
//! Decoding is pure: it takes a copy of the slot (read from the shared page by
//! [`crate::page`]) and either returns a [`Request`] or says why the slot makes no sense. A
//! slot that does not decode is still completed by the server, so the vCPU never hangs.

use xen_bindings::abi::xen::ioreq::{
    Ioreq, IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_TYPE_INVALIDATE, IOREQ_TYPE_PCI_CONFIG,
    IOREQ_TYPE_PIO, IOREQ_TYPE_TIMEOFFSET,
};

use crate::error::DecodeError;

/// Upper bound on the bytes one repeated request may move (`count * size`).
///
/// Xen splits repeated string instructions so that the guest buffer of one request stays in
/// one page, so real requests stay far below this; the bound only keeps a corrupt slot from
/// making the server loop for billions of iterations.
pub const MAX_REP_BYTES: u64 = 1 << 20;

/// Direction of an access, from the guest's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The guest reads: the device model supplies data.
    Read,
    /// The guest writes: the device model consumes data.
    Write,
}

/// Where the data of an access lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Data {
    /// In the request itself (the low `size` bytes of this value).
    Value(u64),
    /// In guest memory at this guest-physical address (`data_is_ptr`): `count` elements of
    /// `size` bytes, stepping up, or down when the direction flag is set.
    GuestPtr(u64),
}

/// One (possibly repeated) access to port, MMIO or PCI configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access {
    /// Port number, guest-physical address, or configuration register offset.
    pub addr: u64,
    /// Bytes per element: 1, 2, 4 or 8.
    pub size: u8,
    /// Number of elements (1 unless the guest used a `rep` prefix); at least 1.
    pub count: u32,
    /// Read or write.
    pub dir: Dir,
    /// Direction flag: addresses step downwards between elements.
    pub df: bool,
    /// The value, or where the values are.
    pub data: Data,
}

impl Access {
    /// Signed distance between consecutive elements.
    pub fn step(&self) -> i64 {
        let s = i64::from(self.size);
        if self.df {
            -s
        } else {
            s
        }
    }

    /// Address of element `i` when the target address advances with each element (MMIO).
    ///
    /// `None` if it would leave the 64-bit address space.
    pub fn element_addr(&self, base: u64, i: u32) -> Option<u64> {
        let delta = i64::from(i).checked_mul(self.step())?;
        base.checked_add_signed(delta)
    }

    /// Mask of the low `size` bytes.
    pub fn size_mask(&self) -> u64 {
        size_mask(self.size)
    }
}

/// Mask of the low `size` bytes (`size` in 1..=8).
pub(crate) fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}

/// A decoded IOREQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Request {
    /// Port I/O (`IOREQ_TYPE_PIO`): every element targets the same port.
    Pio(Access),
    /// MMIO (`IOREQ_TYPE_COPY`): element `i` targets `addr ± i * size`.
    Mmio(Access),
    /// PCI configuration access (`IOREQ_TYPE_PCI_CONFIG`) to a device registered with
    /// [`crate::IoRange::PciConfig`]; `access.addr` is the register offset.
    PciConfig {
        /// Segment/bus/device/function as Xen encodes it (segment << 16 | bus << 8 | devfn).
        sbdf: u32,
        /// The access; its `addr` is the register offset (byte granular).
        access: Access,
    },
    /// The guest's physmap changed: drop cached foreign mappings (`IOREQ_TYPE_INVALIDATE`).
    Invalidate,
    /// The guest changed its RTC: new offset from host time in seconds
    /// (`IOREQ_TYPE_TIMEOFFSET`).
    TimeOffset(i64),
}

impl Request {
    /// The access of a PIO, MMIO or PCI configuration request.
    pub fn access(&self) -> Option<&Access> {
        match self {
            Request::Pio(a) | Request::Mmio(a) | Request::PciConfig { access: a, .. } => Some(a),
            _ => None,
        }
    }

    /// Decodes a copy of a synchronous slot.
    pub fn decode(raw: &Ioreq) -> Result<Request, DecodeError> {
        match raw.type_ {
            IOREQ_TYPE_INVALIDATE => return Ok(Request::Invalidate),
            IOREQ_TYPE_TIMEOFFSET => return Ok(Request::TimeOffset(raw.data as i64)),
            IOREQ_TYPE_PIO | IOREQ_TYPE_COPY | IOREQ_TYPE_PCI_CONFIG => {}
            other => return Err(DecodeError::UnknownType(other)),
        }
        let size = match raw.size {
            s @ (1 | 2 | 4 | 8) => s as u8,
            s => return Err(DecodeError::BadSize(s)),
        };
        if raw.count == 0 {
            return Err(DecodeError::ZeroCount);
        }
        if u64::from(raw.count) * u64::from(size) > MAX_REP_BYTES {
            return Err(DecodeError::TooManyReps {
                count: raw.count,
                size,
            });
        }
        let access = Access {
            addr: raw.addr,
            size,
            count: raw.count,
            dir: if raw.dir() == IOREQ_READ {
                Dir::Read
            } else {
                Dir::Write
            },
            df: raw.df(),
            data: if raw.data_is_ptr() {
                Data::GuestPtr(raw.data)
            } else {
                Data::Value(raw.data)
            },
        };
        Ok(match raw.type_ {
            IOREQ_TYPE_PIO => {
                if raw.addr > 0xffff {
                    return Err(DecodeError::BadPort(raw.addr));
                }
                Request::Pio(access)
            }
            IOREQ_TYPE_COPY => Request::Mmio(access),
            _ => Request::PciConfig {
                sbdf: (raw.addr >> 32) as u32,
                access: Access {
                    addr: raw.addr & 0xffff_ffff,
                    ..access
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_bindings::abi::xen::ioreq::{IOREQ_WRITE, STATE_IOREQ_READY};

    fn raw(type_: u8, addr: u64, size: u32, count: u32, dir: u8, data: u64) -> Ioreq {
        let mut r = Ioreq {
            addr,
            data,
            count,
            size,
            type_,
            ..Default::default()
        };
        r.set_dir(dir);
        r.set_state(STATE_IOREQ_READY);
        r
    }

    #[test]
    fn pio_of_every_size() {
        for size in [1u32, 2, 4, 8] {
            let r = raw(
                IOREQ_TYPE_PIO,
                0x3f8,
                size,
                1,
                IOREQ_WRITE,
                0x1122_3344_5566_7788,
            );
            let req = Request::decode(&r).unwrap();
            let Request::Pio(a) = req else {
                panic!("{req:?}")
            };
            assert_eq!(a.size as u32, size);
            assert_eq!(a.dir, Dir::Write);
            assert_eq!(a.data, Data::Value(0x1122_3344_5566_7788));
            assert_eq!(a.count, 1);
        }
    }

    #[test]
    fn mmio_rep_with_pointer_and_direction_flag() {
        let mut r = raw(IOREQ_TYPE_COPY, 0x1000, 4, 16, IOREQ_READ, 0x8000);
        r.set_data_is_ptr(true);
        r.set_df(true);
        let req = Request::decode(&r).unwrap();
        let a = *req.access().unwrap();
        assert!(matches!(req, Request::Mmio(_)));
        assert_eq!(a.data, Data::GuestPtr(0x8000));
        assert_eq!(a.dir, Dir::Read);
        assert_eq!(a.step(), -4);
        assert_eq!(a.element_addr(0x1000, 3), Some(0x1000 - 12));
        assert_eq!(a.element_addr(4, 2), None);
    }

    #[test]
    fn pci_config_splits_sbdf_and_register() {
        let r = raw(
            IOREQ_TYPE_PCI_CONFIG,
            (0x0001_0810u64 << 32) | 0x3e,
            2,
            1,
            IOREQ_READ,
            0,
        );
        match Request::decode(&r).unwrap() {
            Request::PciConfig { sbdf, access } => {
                assert_eq!(sbdf, 0x0001_0810);
                assert_eq!(access.addr, 0x3e);
                assert_eq!(access.size, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalidate_and_timeoffset() {
        let r = raw(IOREQ_TYPE_INVALIDATE, 0, 4, 1, IOREQ_WRITE, !0);
        assert_eq!(Request::decode(&r).unwrap(), Request::Invalidate);
        let r = raw(
            IOREQ_TYPE_TIMEOFFSET,
            0,
            8,
            1,
            IOREQ_WRITE,
            (-3600i64) as u64,
        );
        assert_eq!(Request::decode(&r).unwrap(), Request::TimeOffset(-3600));
    }

    #[test]
    fn hostile_slots_are_errors() {
        for size in [0u32, 3, 5, 9, 16, u32::MAX] {
            let r = raw(IOREQ_TYPE_COPY, 0, size, 1, IOREQ_READ, 0);
            assert_eq!(Request::decode(&r), Err(DecodeError::BadSize(size)));
        }
        let r = raw(IOREQ_TYPE_COPY, 0, 4, 0, IOREQ_READ, 0);
        assert_eq!(Request::decode(&r), Err(DecodeError::ZeroCount));
        let r = raw(IOREQ_TYPE_COPY, 0, 8, u32::MAX, IOREQ_READ, 0);
        assert!(matches!(
            Request::decode(&r),
            Err(DecodeError::TooManyReps {
                count: u32::MAX,
                size: 8
            })
        ));
        for t in [3u8, 4, 5, 6, 9, 0xff] {
            let r = raw(t, 0, 4, 1, IOREQ_READ, 0);
            assert_eq!(Request::decode(&r), Err(DecodeError::UnknownType(t)));
        }
        let r = raw(IOREQ_TYPE_PIO, 0x1_0000, 1, 1, IOREQ_READ, 0);
        assert_eq!(Request::decode(&r), Err(DecodeError::BadPort(0x1_0000)));
    }

    #[test]
    fn size_masks() {
        assert_eq!(size_mask(1), 0xff);
        assert_eq!(size_mask(2), 0xffff);
        assert_eq!(size_mask(4), 0xffff_ffff);
        assert_eq!(size_mask(8), u64::MAX);
    }
}
