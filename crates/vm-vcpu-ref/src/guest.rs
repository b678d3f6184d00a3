// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Checked guest memory accesses shared by the builders.
//!
//! Every structure is range-checked as a whole before the first byte is
//! written, so a structure that does not fit leaves guest memory untouched
//! and the caller gets [`Error::OutsideGuestMemory`] naming it.

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use crate::error::{Error, Result};

/// Checks that `[addr, addr + len)` is backed by guest memory for `access`.
pub(crate) fn check<M: GuestMemory + ?Sized>(
    mem: &M,
    addr: GuestAddress,
    len: usize,
    access: Permissions,
    what: &'static str,
) -> Result<()> {
    let overflow = Error::AddressOverflow {
        what,
        addr: addr.0,
        len,
    };
    let len64 = u64::try_from(len).map_err(|_| overflow)?;
    if addr.0.checked_add(len64).is_none() {
        return Err(Error::AddressOverflow {
            what,
            addr: addr.0,
            len,
        });
    }
    if len != 0 && !mem.check_range(addr, len, access) {
        return Err(Error::OutsideGuestMemory {
            what,
            addr: addr.0,
            len,
        });
    }
    Ok(())
}

/// Writes `bytes` at `addr` after checking the whole range.
pub(crate) fn write<M: GuestMemory + ?Sized>(
    mem: &M,
    addr: GuestAddress,
    bytes: &[u8],
    what: &'static str,
) -> Result<()> {
    check(mem, addr, bytes.len(), Permissions::Write, what)?;
    mem.write_slice(bytes, addr)
        .map_err(|source| Error::GuestMemory {
            what,
            addr: addr.0,
            source,
        })
}

/// Reads `buf.len()` bytes at `addr` after checking the whole range.
pub(crate) fn read<M: GuestMemory + ?Sized>(
    mem: &M,
    addr: GuestAddress,
    buf: &mut [u8],
    what: &'static str,
) -> Result<()> {
    check(mem, addr, buf.len(), Permissions::Read, what)?;
    mem.read_slice(buf, addr)
        .map_err(|source| Error::GuestMemory {
            what,
            addr: addr.0,
            source,
        })
}

/// Returns `addr` as a 32-bit protocol pointer if `[addr, addr + len)` lies
/// below 4 GiB.
pub(crate) fn addr32(addr: GuestAddress, len: usize, what: &'static str) -> Result<u32> {
    let end = addr.0.checked_add(len as u64);
    match end {
        Some(end) if end <= 1 << 32 => Ok(addr.0 as u32),
        _ => Err(Error::AddressOverflow {
            what,
            addr: addr.0,
            len,
        }),
    }
}

/// Checks that the named ranges `(what, addr, len)` do not overlap.
pub(crate) fn check_disjoint(ranges: &[(&'static str, u64, u64)]) -> Result<()> {
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            let a_end = a.1.saturating_add(a.2);
            let b_end = b.1.saturating_add(b.2);
            if a.1 < b_end && b.1 < a_end {
                return Err(Error::Overlap {
                    what: b.0,
                    addr: b.1,
                    other: a.0,
                });
            }
        }
    }
    Ok(())
}

/// The 8-bit two's-complement checksum that makes `bytes` sum to zero.
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    let sum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    0u8.wrapping_sub(sum)
}

#[cfg(test)]
pub(crate) mod test_util {
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    /// A single-region guest memory of `size` bytes at address zero.
    pub(crate) fn mem(size: usize) -> GuestMemoryMmap<()> {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_outside_memory_is_a_typed_error_and_writes_nothing() {
        let mem = test_util::mem(0x1000);
        let err = write(&mem, GuestAddress(0xff0), &[1u8; 32], "thing").unwrap_err();
        assert!(matches!(
            err,
            Error::OutsideGuestMemory {
                what: "thing",
                addr: 0xff0,
                len: 32
            }
        ));
        let mut back = [0xaau8; 16];
        read(&mem, GuestAddress(0xff0), &mut back, "thing").unwrap();
        assert_eq!(back, [0u8; 16]);
    }

    #[test]
    fn wrapping_range_is_rejected() {
        let mem = test_util::mem(0x1000);
        let err = write(&mem, GuestAddress(u64::MAX - 1), &[0u8; 4], "x").unwrap_err();
        assert!(matches!(err, Error::AddressOverflow { .. }));
    }

    #[test]
    fn addr32_accepts_up_to_4g_exactly() {
        assert_eq!(
            addr32(GuestAddress(0xffff_fff0), 16, "x").unwrap(),
            0xffff_fff0
        );
        assert!(addr32(GuestAddress(0xffff_fff0), 17, "x").is_err());
    }

    #[test]
    fn checksum_makes_sum_zero() {
        let mut v = vec![1u8, 2, 3, 250, 77];
        let c = checksum(&v);
        v.push(c);
        assert_eq!(v.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    }
}
