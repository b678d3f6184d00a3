// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The crate's error type.

use vm_memory::GuestMemoryError;

/// What went wrong while building boot state.
///
/// Every variant names the structure being built and the offending value, so
/// a caller can report it without more context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The range `[addr, addr + len)` is not entirely backed by guest memory.
    #[error("writing the {what} ({len} bytes at guest address {addr:#x}): range is outside guest memory")]
    OutsideGuestMemory {
        /// Structure being written.
        what: &'static str,
        /// First guest physical address of the range.
        addr: u64,
        /// Length of the range in bytes.
        len: usize,
    },
    /// The range `[addr, addr + len)` wraps around the 64-bit address space
    /// or leaves the 32-bit space a protocol pointer can express.
    #[error("placing the {what} ({len} bytes at guest address {addr:#x}): address does not fit the protocol's pointer")]
    AddressOverflow {
        /// Structure being placed.
        what: &'static str,
        /// Requested guest physical address.
        addr: u64,
        /// Length of the structure in bytes.
        len: usize,
    },
    /// A guest memory access failed for another reason.
    #[error("accessing the {what} at guest address {addr:#x}: {source}")]
    GuestMemory {
        /// Structure being accessed.
        what: &'static str,
        /// Guest physical address of the access.
        addr: u64,
        /// The guest memory error.
        #[source]
        source: GuestMemoryError,
    },
    /// An address that must be aligned is not.
    #[error("placing the {what} at guest address {addr:#x}: must be aligned to {align:#x}")]
    Misaligned {
        /// Structure being placed.
        what: &'static str,
        /// Requested guest physical address.
        addr: u64,
        /// Required alignment in bytes.
        align: u64,
    },
    /// A size argument is outside what the structure supports.
    #[error("sizing the {what}: {value:#x} is not valid ({reason})")]
    InvalidSize {
        /// Structure being sized.
        what: &'static str,
        /// The rejected value.
        value: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// More vCPUs were requested than the structure can describe.
    #[error("describing {count} vCPUs in the {what}: at most {max} are supported")]
    TooManyVcpus {
        /// Structure being built.
        what: &'static str,
        /// Requested number (or the offending vCPU index plus one).
        count: usize,
        /// Largest supported number.
        max: usize,
    },
    /// A vCPU count of zero was given.
    #[error("describing the {what}: at least one vCPU is required")]
    NoVcpus {
        /// Structure being built.
        what: &'static str,
    },
    /// The kernel command line does not fit.
    #[error("writing a kernel command line of {len} bytes: at most {max} bytes are allowed")]
    CmdlineTooLong {
        /// Length of the command line without its terminating NUL.
        len: usize,
        /// Largest accepted length without the terminating NUL.
        max: usize,
    },
    /// The kernel command line contains a NUL byte, which would cut it short.
    #[error("writing a kernel command line: byte {offset} is NUL")]
    CmdlineHasNul {
        /// Offset of the first NUL byte.
        offset: usize,
    },
    /// Too many memory map entries for the boot protocol.
    #[error("writing the {what}: {count} memory map entries given, at most {max} fit")]
    TooManyMemoryRegions {
        /// Memory map being written.
        what: &'static str,
        /// Number of entries given.
        count: usize,
        /// Largest number of entries that fit.
        max: usize,
    },
    /// A raw segment descriptor or access byte could not be decoded.
    #[error("decoding segment descriptor {raw:#018x}: {reason}")]
    InvalidDescriptor {
        /// The raw descriptor (or access byte) value.
        raw: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Two structures were placed on overlapping guest memory.
    #[error("placing the {what} at guest address {addr:#x}: overlaps the {other}")]
    Overlap {
        /// Structure being placed.
        what: &'static str,
        /// Its guest physical address.
        addr: u64,
        /// The structure it overlaps.
        other: &'static str,
    },
    /// A processor's APIC ID or ACPI UID cannot be described.
    #[error("describing the processor with ACPI UID {uid} and APIC ID {apic_id:#x}: {reason}")]
    InvalidApicId {
        /// The processor's ACPI UID.
        uid: u32,
        /// Its APIC ID.
        apic_id: u32,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A GIC description is inconsistent.
    #[error("describing the GIC: {reason} (value {value:#x})")]
    InvalidGic {
        /// What is wrong.
        reason: &'static str,
        /// The offending value.
        value: u64,
    },
    /// The device tree writer rejected the tree.
    #[error("building the device tree: {0}")]
    Fdt(#[from] vm_fdt::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
