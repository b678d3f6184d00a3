// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Xen IOREQ server for device emulation in Rust.
//!
//! On Xen, a guest's port I/O, MMIO and PCI configuration accesses that the hypervisor does not
//! emulate itself are forwarded to an *IOREQ server* in a device-model domain (usually dom0):
//! Xen writes the request into a page shared with the server and signals an event channel;
//! the server carries it out and publishes the response. This crate is that server:
//!
//! - [`Request`]: a typed request decoded from a raw `struct ioreq` (PIO, MMIO, PCI config,
//!   invalidate, time offset; sizes 1/2/4/8; rep counts with the direction flag;
//!   `data_is_ptr`). Decoding is pure and hostile-input safe.
//! - [`page`]: the synchronous page and its slot state machine (`READY` → `IN_PROCESS` →
//!   `IORESP_READY`, Acquire/Release on the state byte); [`bufring`]: the buffered ring
//!   reader (two-slot 8-byte writes, wraparound, corrupt pointers as errors).
//! - [`Dispatcher`]: carries requests out on a `vm-device-bus` [`DeviceBus`], the same bus
//!   and devices a KVM vCPU loop serves, with guest memory for `data_is_ptr` requests.
//! - [`IoreqServer`]: the lifecycle through dm_op (create, map pages with `MMAP_RESOURCE`,
//!   register ranges, enable, bind per-vCPU event channels, destroy on drop), interrupt
//!   injection, and kernel irqfd/ioeventfd with a userspace fallback.
//! - [`EventLoop`]: an epoll loop serving one server; several loops on as many threads may
//!   serve the same server (see below). On a wake-up a loop answers the waiting requests
//!   before it reads and re-arms the event channel, two system calls sooner than the usual
//!   read-unmask-serve order. A server's only loop, waiting without a timeout, blocks in
//!   `read` of the event channel instead (one system call fewer per wake-up; see
//!   [`EventLoop`]'s single-loop path), stopped by its [`Stopper`].
//!
//! # Which guests, which addresses
//!
//! Xen forwards accesses to IOREQ servers from x86 HVM and PVH domains (port I/O, MMIO, PCI
//! configuration through 0xcf8/0xcfc) and from Arm domains (MMIO that Xen can decode from the
//! data abort); an x86 PV guest has no emulated devices. Create the domain paused, open the
//! server, register its ranges and [`enable`](IoreqServer::enable) it, then unpause: an access
//! made before its range is registered goes to another server or is dropped. A range must lie
//! where the guest has no RAM, or Xen never forwards the access: on x86 in the hole below
//! 4 GiB above the guest's RAM (0x2000_0000 is RAM in any guest of more than 512 MiB), on Arm
//! in the virtio-mmio window xl reserves from 0x0200_0000.
//!
//! # Several event loops on one server
//!
//! The loops share the server's one event-channel descriptor, each with its own epoll, and
//! the server's state; nothing is handed to one loop in particular, so nothing waits for a
//! loop that is busy or gone:
//!
//! - A request is taken with one compare-and-swap (`READY` → `IN_PROCESS`): any loop may
//!   serve any slot, exactly one does. The kernel masks a port when it queues its event; the
//!   loop that reads the port re-arms it after serving, and an event Xen sends meanwhile
//!   waits in Xen until then, so every request is followed by a wake-up.
//! - The descriptor is watched level-triggered, because the kernel wakes its waiters only
//!   when its queue of ports goes from empty to not empty, and can queue a port while a
//!   reader copies the queue without waking anyone: a loop finds such a port on its next
//!   wait ([`IoreqServer::serve_pending`]). After the queue overflows, every port is re-armed
//!   (the kernel's reset leaves masked the ports it dropped). The descriptor is non-blocking
//!   ([`IoreqServer::create`] makes it so): the loops that wake with the one that reads the
//!   ports find nothing and wait again, where a blocking read would keep them from their
//!   stoppers. A wake-up reads at most as many ports as the server has, and one read more,
//!   so a guest that keeps its vCPUs' ports busy holds no loop from its stopper and irqfds;
//!   the ports left stay queued for the next turn.
//! - The buffered ring is drained by one loop at a time, since posted writes must reach the
//!   devices in order; a loop that finds it being drained leaves it to the drainer, which
//!   looks again before it stops ([`IoreqServer::serve_buffered`]). A look serves at most one
//!   ring's worth, so a guest that keeps the ring full holds no loop from its vCPUs' slots and
//!   its stopper; what it leaves behind is a backlog one loop takes, and that loop's next
//!   turn serves it without waiting for an event ([`Turn::backlog`]). A loop that stops, or
//!   is dropped, with the backlog gives it to the others, which are woken for it.
//! - The userspace irqfds and ioeventfds are the server's alone: every loop watches the
//!   irqfds, those added while it runs included, and the server rings its ioeventfds
//!   whichever loop serves the write. Either kind can be removed while loops run
//!   ([`IoreqServer::remove_irqfd`], [`IoreqServer::remove_ioeventfd`]): when the call
//!   returns no loop watches or rings it any more.
//!
//! # Kernel ioeventfds: the doorbell server
//!
//! privcmd's kernel ioeventfd (Linux 6.7+) serves virtio-mmio QueueNotify writes in the
//! kernel: its handler runs in interrupt context for every event of the ports it is given and
//! writes the slot's state with plain stores, and up to Linux 6.12.116 it does so for every
//! MMIO write (`IN_PROCESS`, then `READY` again when the write is not its own). Sharing slots
//! with it, a compare-and-swap of ours can land between its check and its stores: a write is
//! served twice, or a stale `READY` follows an answer Xen took and Xen crashes the domain.
//! [`IoreqServer::add_ioeventfd`] therefore serves the kernel's doorbells through a second
//! IOREQ server of the domain that holds only their QueueNotify registers (cut out of the
//! ranges of [`IoreqServer::map_range`]): the handler never sees another register's access,
//! and this process takes from that server's slots only what the handler never stores to
//! (reads, Xen's `INVALIDATE`). A write there the kernel does not serve (another size, a
//! queue without an ioeventfd) makes the server deassign the kernel's ioeventfds, which waits
//! for a running handler, and serve the register itself from then on. Teardown deassigns
//! every kernel ioeventfd and irqfd before it unmaps the pages and unbinds the ports they
//! point at: privcmd keeps them until deassigned, also across a server re-created for the
//! same domain.
//!
//! `examples/virtio_rng` is a complete virtio-mmio entropy device on top of these: feature
//! negotiation, a request queue walked with `virtio-queue` over `xen-foreignmem` guest memory,
//! notifications through [`IoreqServer::add_ioeventfd`] and its interrupt through
//! [`IoreqServer::add_irqfd`]; `tests/arm_virtio.rs` serves it to a real Arm guest.
//!
//! Whatever a request holds, the server completes it (reads of broken requests return all
//! ones), logs what was wrong and keeps serving: a guest is never left hanging.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use vm_device_bus::{DeviceError, IoBus, IoHandler, IoSpace};
//! use xen_ioreq::{BufIoreqMode, Dispatcher, DomId, EventLoop, IoRange, IoreqServer};
//!
//! /// A 32-bit register that reads back what was last written.
//! #[derive(Default)]
//! struct Latch(AtomicU32);
//!
//! impl IoHandler for Latch {
//!     fn read(&self, _offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
//!         let v = self.0.load(Ordering::Relaxed).to_le_bytes();
//!         data.copy_from_slice(&v[..data.len()]);
//!         Ok(())
//!     }
//!     fn write(&self, _offset: u64, data: &[u8]) -> Result<(), DeviceError> {
//!         let mut v = [0u8; 4];
//!         v[..data.len()].copy_from_slice(data);
//!         self.0.store(u32::from_le_bytes(v), Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! // Above the guest's RAM, in the hole below 4 GiB.
//! const BASE: u64 = 0xe000_0000;
//! let latch = Arc::new(Latch::default());
//! let mut bus = IoBus::new();
//! bus.insert(IoSpace::Mmio, BASE, 4, latch.clone())?;
//!
//! // Domain 1 was created paused: register and enable, then unpause it.
//! let mut server = IoreqServer::open(DomId::new(1), BufIoreqMode::Off)?;
//! server.map_range(IoRange::mmio(BASE, 4).expect("a non-empty range"))?;
//! server.enable()?;
//! let mut event_loop = EventLoop::new(&server, Dispatcher::new(&bus))?;
//! // Serve until the guest writes 0xdead to the register.
//! while latch.0.load(Ordering::Relaxed) != 0xdead {
//!     event_loop.run_once(-1)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`EventLoop::run`] serves until [`Stopper::stop`] of [`EventLoop::stop_handle`] (or a write
//! of [`EventLoop::stopper`]'s eventfd), for a loop on a thread of its own.

pub mod bufring;
pub mod dispatch;
mod doorbell;
mod error;
mod event_loop;
pub mod page;
pub mod request;
mod server;
mod user_irqfds;
mod vcpu_ports;

pub use dispatch::{
    DispatchStats, Dispatcher, GuestMemoryRam, GuestRam, HandleError, NoGuestRam, PciConfigHandler,
};
pub use error::{DecodeError, Error, Result, RingError};
pub use event_loop::{EventLoop, Stopper, Turn};
pub use request::{Access, Data, Dir, Request};
pub use server::{
    kernel_ioeventfd_is_safe, BufIoreqMode, Interrupt, IoRange, IoreqServer, NotifyPath,
};

// Re-exported so users need not depend on vm-device-bus for the basic types.
pub use vm_device_bus::{DeviceBus, IoSpace};
// Re-exported so users need not depend on xen-bindings to name the domain they serve.
pub use xen_bindings::DomId;

#[cfg(test)]
mod tests;

// Compiles the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
