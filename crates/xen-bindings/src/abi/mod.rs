// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Raw ABI: the Xen public interface ([`xen`]) and the Linux Xen device ioctls ([`linux`]).
//!
//! Everything here is `#[repr(C)]` data and constants, laid out like the C headers of the
//! interface (Xen's `xen/include/public/*.h`, Linux's `include/uapi/xen/*.h`) on 64-bit
//! Linux. Each struct has a test pinning its size, alignment and field offsets to the values a C
//! compiler gives for those headers. Implicit C padding is spelled out as `_pad` fields so that
//! every byte of a value is initialised and the whole struct can be handed to the kernel.

#[cfg(not(target_pointer_width = "64"))]
compile_error!("xen-bindings supports 64-bit targets only (x86_64, aarch64)");

/// Asserts a struct's size, alignment and field offsets (used by the layout tests).
#[cfg(test)]
macro_rules! assert_layout {
    ($t:ty, size = $s:expr, align = $a:expr $(, $f:ident = $o:expr)* $(,)?) => {{
        assert_eq!(std::mem::size_of::<$t>(), $s, concat!("size of ", stringify!($t)));
        assert_eq!(std::mem::align_of::<$t>(), $a, concat!("align of ", stringify!($t)));
        $(
            assert_eq!(
                std::mem::offset_of!($t, $f),
                $o,
                concat!("offset of ", stringify!($t), ".", stringify!($f))
            );
        )*
    }};
}
#[cfg(test)]
#[allow(unused_imports)] // reachable by path for modules declared outside this file
pub(crate) use assert_layout;

pub mod linux;
pub mod xen;

/// Marker for ABI types that are plain old data.
///
/// # Safety
///
/// Implementors must be `#[repr(C)]` (or a primitive or array) made only of integer fields, with
/// no implicit padding, so that every bit pattern is a valid value and every byte of a value is
/// initialised. Then a value may be viewed as bytes and filled from bytes.
pub unsafe trait Pod: Copy + Send + Sync + 'static {
    /// The value's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Pod types have no padding, so all size_of::<Self>() bytes are initialised.
        unsafe {
            std::slice::from_raw_parts((self as *const Self).cast(), std::mem::size_of::<Self>())
        }
    }

    /// The value's bytes, writable.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and any byte pattern written is a valid value of a Pod type.
        unsafe {
            std::slice::from_raw_parts_mut((self as *mut Self).cast(), std::mem::size_of::<Self>())
        }
    }

    /// A value read from the start of `bytes`, or `None` if `bytes` is too short.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked, read_unaligned copes with any alignment and every bit
        // pattern is a valid value of a Pod type.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) })
    }

    /// The all-zero value.
    fn zeroed() -> Self {
        // SAFETY: all-zero bytes are a valid value of a Pod type.
        unsafe { std::mem::zeroed() }
    }
}

/// Implements [`Pod`] for ABI structs (each must meet the trait's safety rules).
macro_rules! impl_pod {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: the type is repr(C), made of integer fields with explicit padding; its
            // layout test pins that there are no holes.
            unsafe impl $crate::abi::Pod for $t {}
        )*
    };
}
pub(crate) use impl_pod;

// SAFETY: primitive integers have no padding and no invalid bit patterns.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: arrays of Pod values have no padding between elements.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_roundtrip() {
        let v: u32 = 0x1234_5678;
        assert_eq!(u32::from_bytes(v.as_bytes()), Some(v));
        assert_eq!(u32::from_bytes(&[1, 2]), None);
        assert_eq!(<[u16; 2]>::zeroed(), [0, 0]);
    }
}
