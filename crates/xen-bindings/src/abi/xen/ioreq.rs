// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! IOREQ pages (`hvm/ioreq.h`): how Xen hands guest I/O to a device model.
//!
//! The synchronous page ([`SharedIopage`]) holds one [`Ioreq`] slot per vCPU; the buffered
//! page ([`BufferedIopage`]) is a ring of compact [`BufIoreq`] writes. The C structs use
//! bitfields; here the bitfield bytes are plain integers with typed accessors, with bit
//! positions as a C compiler lays them out on x86_64 and aarch64 (checked against the header).
//!
//! The pages are shared with the hypervisor: the IOREQ server must access `state` with the
//! right ordering (see the `xen-ioreq` crate); the accessors here work on a local copy or
//! through a reference the caller synchronises.

use crate::abi::impl_pod;

/// `IOREQ_READ`: the guest reads (`dir` = 1).
pub const IOREQ_READ: u8 = 1;
/// `IOREQ_WRITE`: the guest writes (`dir` = 0).
pub const IOREQ_WRITE: u8 = 0;

/// Slot state: no request.
pub const STATE_IOREQ_NONE: u8 = 0;
/// Slot state: request ready for the device model.
pub const STATE_IOREQ_READY: u8 = 1;
/// Slot state: the device model is handling it.
pub const STATE_IOREQ_INPROCESS: u8 = 2;
/// Slot state: response ready for Xen.
pub const STATE_IORESP_READY: u8 = 3;

/// Request type: port I/O.
pub const IOREQ_TYPE_PIO: u8 = 0;
/// Request type: MMIO (copy).
pub const IOREQ_TYPE_COPY: u8 = 1;
/// Request type: PCI config space.
pub const IOREQ_TYPE_PCI_CONFIG: u8 = 2;
/// Request type: time offset.
pub const IOREQ_TYPE_TIMEOFFSET: u8 = 7;
/// Request type: invalidate the map cache.
pub const IOREQ_TYPE_INVALIDATE: u8 = 8;

/// Byte offset of the bitfield byte (state, data_is_ptr, dir, df) in [`Ioreq`].
pub const IOREQ_FLAGS_OFFSET: usize = 30;
/// Mask of `state` in the bitfield byte (bits 0-3).
pub const IOREQ_STATE_MASK: u8 = 0x0f;
/// Bit of `data_is_ptr` in the bitfield byte.
pub const IOREQ_DATA_IS_PTR_BIT: u8 = 1 << 4;
/// Bit of `dir` in the bitfield byte.
pub const IOREQ_DIR_BIT: u8 = 1 << 5;
/// Bit of `df` in the bitfield byte.
pub const IOREQ_DF_BIT: u8 = 1 << 6;

/// `struct ioreq`: one synchronous I/O request, 32 bytes.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ioreq {
    /// Guest physical address or port.
    pub addr: u64,
    /// Data, or the guest physical address of the data when `data_is_ptr` is set.
    pub data: u64,
    /// Repeat count (rep prefixes).
    pub count: u32,
    /// Access size in bytes.
    pub size: u32,
    /// Event channel used to notify the device model and Xen.
    pub vp_eport: u32,
    /// Padding.
    pub _pad0: u16,
    /// The C bitfields: state:4, data_is_ptr:1, dir:1, df:1, pad:1 (from bit 0).
    pub flags: u8,
    /// `IOREQ_TYPE_*`.
    pub type_: u8,
}

impl Ioreq {
    /// `STATE_*` of the slot.
    pub const fn state(&self) -> u8 {
        self.flags & IOREQ_STATE_MASK
    }
    /// Sets `STATE_*` (only the low 4 bits are kept).
    pub fn set_state(&mut self, state: u8) {
        self.flags = (self.flags & !IOREQ_STATE_MASK) | (state & IOREQ_STATE_MASK);
    }
    /// Whether `data` is a guest physical address.
    pub const fn data_is_ptr(&self) -> bool {
        self.flags & IOREQ_DATA_IS_PTR_BIT != 0
    }
    /// Sets `data_is_ptr`.
    pub fn set_data_is_ptr(&mut self, v: bool) {
        self.set_bit(IOREQ_DATA_IS_PTR_BIT, v)
    }
    /// `IOREQ_READ` or `IOREQ_WRITE`.
    pub const fn dir(&self) -> u8 {
        (self.flags & IOREQ_DIR_BIT != 0) as u8
    }
    /// Whether the guest reads.
    pub const fn is_read(&self) -> bool {
        self.dir() == IOREQ_READ
    }
    /// Sets `dir` (`IOREQ_READ` or `IOREQ_WRITE`).
    pub fn set_dir(&mut self, dir: u8) {
        self.set_bit(IOREQ_DIR_BIT, dir != 0)
    }
    /// Direction flag: rep accesses go downwards.
    pub const fn df(&self) -> bool {
        self.flags & IOREQ_DF_BIT != 0
    }
    /// Sets `df`.
    pub fn set_df(&mut self, v: bool) {
        self.set_bit(IOREQ_DF_BIT, v)
    }
    /// `IOREQ_TYPE_*`.
    pub const fn io_type(&self) -> u8 {
        self.type_
    }
    fn set_bit(&mut self, bit: u8, v: bool) {
        if v {
            self.flags |= bit
        } else {
            self.flags &= !bit
        }
    }
}

/// `struct shared_iopage`: the synchronous page, one [`Ioreq`] per vCPU (indexed by vCPU id).
///
/// C declares a one-element array; the page really holds [`IOREQS_PER_PAGE`] slots.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SharedIopage {
    /// The first vCPU's slot; the others follow.
    pub vcpu_ioreq: [Ioreq; 1],
}

/// Number of [`Ioreq`] slots in a 4 KiB synchronous page.
pub const IOREQS_PER_PAGE: usize = 4096 / std::mem::size_of::<Ioreq>();

/// `struct buf_ioreq`: one buffered (posted, write-only) request, 8 bytes.
///
/// Word 0 packs type:8, pad:1, dir:1, size:2 (log2 of bytes), addr:20.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BufIoreq {
    /// The packed first word.
    pub word0: u32,
    /// The data (low 32 bits; an 8-byte access uses two slots).
    pub data: u32,
}

impl BufIoreq {
    /// `IOREQ_TYPE_*`.
    pub const fn io_type(&self) -> u8 {
        self.word0 as u8
    }
    /// The `pad` bit: in the second slot of an 8-byte access, Xen leaves it; kept for fidelity.
    pub const fn pad(&self) -> bool {
        self.word0 & (1 << 8) != 0
    }
    /// `IOREQ_READ` or `IOREQ_WRITE`.
    pub const fn dir(&self) -> u8 {
        ((self.word0 >> 9) & 1) as u8
    }
    /// The encoded size: 0 => 1 byte, 1 => 2, 2 => 4, 3 => 8 (two slots).
    pub const fn size_log2(&self) -> u8 {
        ((self.word0 >> 10) & 3) as u8
    }
    /// The access size in bytes.
    pub const fn size_bytes(&self) -> u32 {
        1 << self.size_log2()
    }
    /// The 20-bit address.
    pub const fn addr(&self) -> u32 {
        self.word0 >> 12
    }
    /// Packs the fields (extra bits of `size_log2` and `addr` are dropped).
    pub const fn new(io_type: u8, dir: u8, size_log2: u8, addr: u32, data: u32) -> Self {
        Self {
            word0: io_type as u32
                | (((dir & 1) as u32) << 9)
                | (((size_log2 & 3) as u32) << 10)
                | ((addr & 0xf_ffff) << 12),
            data,
        }
    }
}

/// `IOREQ_BUFFER_SLOT_NUM`: slots in the buffered ring.
pub const IOREQ_BUFFER_SLOT_NUM: usize = 511;

/// `struct buffered_iopage`: the buffered ring page.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferedIopage {
    /// Consumer index (the device model advances it).
    pub read_pointer: u32,
    /// Producer index (Xen advances it).
    pub write_pointer: u32,
    /// The ring, indexed modulo [`IOREQ_BUFFER_SLOT_NUM`].
    pub buf_ioreq: [BufIoreq; IOREQ_BUFFER_SLOT_NUM],
}

impl Default for BufferedIopage {
    fn default() -> Self {
        Self {
            read_pointer: 0,
            write_pointer: 0,
            buf_ioreq: [BufIoreq::default(); IOREQ_BUFFER_SLOT_NUM],
        }
    }
}

impl_pod!(Ioreq, SharedIopage, BufIoreq, BufferedIopage);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Pod;

    #[test]
    fn layouts() {
        assert_layout!(
            Ioreq,
            size = 32,
            align = 8,
            addr = 0,
            data = 8,
            count = 16,
            size = 20,
            vp_eport = 24,
            _pad0 = 28,
            flags = IOREQ_FLAGS_OFFSET,
            type_ = 31
        );
        assert_layout!(SharedIopage, size = 32, align = 8, vcpu_ioreq = 0);
        assert_layout!(BufIoreq, size = 8, align = 4, word0 = 0, data = 4);
        assert_layout!(
            BufferedIopage,
            size = 4096,
            align = 4,
            read_pointer = 0,
            write_pointer = 4,
            buf_ioreq = 8
        );
        assert_eq!(IOREQS_PER_PAGE, 128);
    }

    // Bit positions as gcc places the C bitfields: state=0xf -> byte 0x0f, data_is_ptr -> 0x10,
    // dir -> 0x20, df -> 0x40.
    #[test]
    fn ioreq_bitfields() {
        let mut r = Ioreq::default();
        r.set_state(STATE_IORESP_READY);
        assert_eq!(r.flags, 0x03);
        r.set_state(0xff);
        assert_eq!(r.flags, 0x0f);
        r.set_state(STATE_IOREQ_NONE);
        r.set_data_is_ptr(true);
        assert_eq!(r.flags, 0x10);
        r.set_data_is_ptr(false);
        r.set_dir(IOREQ_READ);
        assert_eq!(r.flags, 0x20);
        assert!(r.is_read());
        r.set_dir(IOREQ_WRITE);
        r.set_df(true);
        assert_eq!(r.flags, 0x40);
        assert!(r.df() && !r.data_is_ptr() && r.state() == 0);
        r.type_ = IOREQ_TYPE_COPY;
        assert_eq!(r.as_bytes()[31], IOREQ_TYPE_COPY);
        assert_eq!(r.as_bytes()[30], 0x40);
    }

    // gcc: dir -> word0 0x200, size=3 -> 0xc00, addr=0xfffff -> 0xfffff000, pad -> 0x100.
    #[test]
    fn buf_ioreq_bitfields() {
        assert_eq!(BufIoreq::new(0, 1, 0, 0, 0).word0, 0x200);
        assert_eq!(BufIoreq::new(0, 0, 3, 0, 0).word0, 0xc00);
        assert_eq!(BufIoreq::new(0, 0, 0, 0xfffff, 0).word0, 0xffff_f000);
        let b = BufIoreq {
            word0: 0x100 | 0x0123_4000 | 0x800 | 1,
            data: 7,
        };
        assert!(b.pad());
        assert_eq!(b.io_type(), IOREQ_TYPE_COPY);
        assert_eq!(b.size_bytes(), 4);
        assert_eq!(b.addr(), 0x01234);
        assert_eq!(b.dir(), IOREQ_WRITE);
    }
}
