// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where everything sits in the test guests' physical address space and
//! port space. All addresses are below 1 MiB so real-mode guests reach
//! them too.

/// RAM: `[0, RAM_SIZE)`.
pub const RAM_SIZE: u64 = 0x1_0000;
/// GDT written by vm-vcpu-ref (its default address; IDT follows at 0x540).
pub const GDT_ADDR: u64 = 0x500;
/// IDT of the protected-mode interrupt guest.
pub const IDT_ADDR: u64 = 0x600;
/// Guest entry point.
pub const CODE_ADDR: u64 = 0x1000;
/// Interrupt handler of the interrupt guests.
pub const HANDLER_ADDR: u64 = 0x1100;
/// Source buffer of the string-I/O guest's `rep outsb`.
pub const STRING_SRC_ADDR: u64 = 0x1200;
/// Destination buffer of the string-I/O guest's `rep insb`.
pub const STRING_DST_ADDR: u64 = 0x1300;
/// Byte the interrupt handlers set to one.
pub const FLAG_ADDR: u64 = 0x7000;
/// Initial stack pointer.
pub const STACK_TOP: u64 = 0x8000;
/// Long-mode page tables: PML4, PDPT and PD, one page each.
pub const PML4_ADDR: u64 = 0x9000;

/// MMIO test device: `[MMIO_BASE, MMIO_BASE + MMIO_SIZE)`, no RAM behind.
pub const MMIO_BASE: u64 = 0x1_0000;
/// Size of the MMIO test device.
pub const MMIO_SIZE: u64 = 0x1000;
/// MMIO address watched by an ioeventfd (inside the MMIO device, so a
/// missed ioeventfd shows up as a device access).
pub const MMIO_IOEVENT_ADDR: u64 = MMIO_BASE + 0x800;

/// Read-only memory; guest writes arrive on the bus.
pub const ROM_BASE: u64 = 0x2_0000;
/// Size of the read-only memory.
pub const ROM_SIZE: u64 = 0x1000;
/// What the host puts at `ROM_BASE` before the guest runs.
pub const ROM_VALUE: u32 = 0xcafe_f00d;

/// Dirty-logged memory.
pub const DIRTY_BASE: u64 = 0x3_0000;
/// Size of the dirty-logged memory (four pages).
pub const DIRTY_SIZE: u64 = 0x4000;

/// PIO test device: ports `[PIO_BASE, PIO_BASE + PIO_SIZE)`.
pub const PIO_BASE: u16 = 0x500;
/// Number of ports of the PIO test device.
pub const PIO_SIZE: u16 = 8;
/// The guest writes values it wants the host to check here.
pub const REPORT_PORT: u16 = PIO_BASE;
/// Reads return the low bytes of [`READ_VALUE`].
pub const DATA_PORT: u16 = PIO_BASE + 1;
/// The guest says it is ready to take an interrupt.
pub const READY_PORT: u16 = PIO_BASE + 2;
/// The guest says it is done.
pub const DONE_PORT: u16 = PIO_BASE + 3;
/// Port watched by an ioeventfd with a one-byte data match.
pub const IOEVENT_PORT: u16 = PIO_BASE + 4;
/// Data the port ioeventfd matches.
pub const IOEVENT_MATCH: u8 = 0x42;
/// A port whose device fails every access.
pub const FAILING_PORT: u16 = 0x510;
/// A port with no device.
pub const EMPTY_PORT: u16 = 0x620;

/// What the test devices answer to reads (low bytes first).
pub const READ_VALUE: u64 = 0x0102_0304_0506_0708;

/// Vector the PIC raises for IRQ 4 once the guest set its base to 0x20.
pub const PIC_IRQ4_VECTOR: u8 = 0x24;
/// GSI of the irqfd test (PIC IRQ 4, the first serial port's line).
pub const IRQFD_GSI: u32 = 4;
/// ISA IRQ of the interrupt-line test: the same PIC input as [`IRQFD_GSI`].
pub const LINE_ISA_IRQ: u8 = 4;
/// Vector of the MSI test.
pub const MSI_VECTOR: u8 = 0x40;
