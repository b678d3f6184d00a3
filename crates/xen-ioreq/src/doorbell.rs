// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The doorbells privcmd's kernel ioeventfd serves, and how this process keeps its hands off
//! them.
//!
//! Once a kernel ioeventfd is registered, privcmd's handler and this process both listen on
//! the vCPUs' event channels, and the handler runs in interrupt context on any dom0 vCPU,
//! concurrently with us. For a request it:
//!
//! - checks the slot is `READY` and the request a write (`IOREQ_TYPE_COPY`), then marks it
//!   `IN_PROCESS` with a plain store;
//! - compares address, size and queue index with its doorbells (the written value's low 16
//!   bits are the queue);
//! - on a match signals the eventfd, sets `IORESP_READY` and notifies Xen; otherwise it puts
//!   the slot back to `READY` for userspace.
//!
//! So this process must not take a `READY` doorbell write (it would serve it in userspace,
//! and race the handler's plain stores), and must not give up on a slot it finds `IN_PROCESS`
//! while the handler looks at it: that request may come back `READY`, with its event already
//! consumed. [`KernelDoorbells::take`] does both. (With several event-loop threads, the
//! holder of an `IN_PROCESS` slot may also be another thread of ours; waiting for it costs that
//! thread's dispatch time and ends with nothing to take, as it should.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xen_bindings::abi::xen::ioreq::{
    Ioreq, IOREQ_TYPE_COPY, STATE_IOREQ_INPROCESS, STATE_IOREQ_READY,
};

use crate::dispatch::QueueNotify;
use crate::page::{Slot, Taken};

/// How long to wait for the kernel's handler to let go of a slot. It holds one for a few
/// comparisons under a spinlock in interrupt context; only a dom0 vCPU descheduled by Xen in
/// the middle can make that long. (Unit tests stand a thread in for the handler, which an
/// emulated or busy CPU may not run for a while: they wait longer.)
const HANDLER_WAIT: Duration = if cfg!(test) {
    Duration::from_secs(60)
} else {
    Duration::from_millis(100)
};

/// The doorbells registered with privcmd's kernel ioeventfd for one server.
#[derive(Debug, Default)]
pub(crate) struct KernelDoorbells {
    /// Set once the first doorbell is registered: until then [`Self::take`] is a plain
    /// [`Slot::take`].
    any: AtomicBool,
    list: Mutex<Vec<QueueNotify>>,
}

impl KernelDoorbells {
    /// Records that the kernel now serves `size`-byte writes of `vq` to the QueueNotify
    /// register of the virtio-mmio device at `base`.
    pub(crate) fn add(&self, base: u64, size: u8, vq: u32) {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(QueueNotify::new(base, size, vq));
        self.any.store(true, Ordering::Release);
    }

    /// Takes the request in `slot` for userspace, unless it is the kernel's (see the module
    /// documentation).
    pub(crate) fn take<'a>(&self, slot: Slot<'a>) -> Option<Taken<'a>> {
        if !self.any.load(Ordering::Acquire) {
            return slot.take();
        }
        let start = Instant::now();
        loop {
            match slot.state() {
                STATE_IOREQ_INPROCESS if start.elapsed() < HANDLER_WAIT => {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
                STATE_IOREQ_INPROCESS => {
                    log::error!("an ioreq slot stayed IN_PROCESS for {HANDLER_WAIT:?}; leaving it");
                    return None;
                }
                STATE_IOREQ_READY if self.claims(&slot.peek()) => return None,
                _ => return slot.take(),
            }
        }
    }

    /// Whether the kernel's handler completes `r`.
    fn claims(&self, r: &Ioreq) -> bool {
        if r.type_ != IOREQ_TYPE_COPY || r.is_read() {
            return false;
        }
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|d| d.matches(r.addr, r.size, r.data))
    }
}
