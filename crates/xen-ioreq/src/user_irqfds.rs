// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The irqfds a server's event loops serve because privcmd cannot, and the loops that watch
//! them.
//!
//! Loops and irqfds come and go independently, while other loops serve. So the list keeps
//! the epoll instance of every loop alive, and whoever adds or removes an irqfd changes every
//! loop's watch list itself, under the list's lock, before it returns: a loop never has to be
//! woken to learn of a change, and an irqfd removed is watched by no loop once
//! [`UserIrqfds::remove`] returns, so its eventfd can be closed at once.
//!
//! Each irqfd has an id that is never used again, and a loop's epoll token for it is made
//! from that id, not from a position in the list: an event a loop took from epoll before the
//! irqfd was removed names an id that is no longer in the list, and the loop drops it instead
//! of injecting another irqfd's interrupt.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;
use xen_bindings::abi::xen::dm_op::XenDmOp;

/// An irqfd the event loops serve because the kernel cannot.
#[derive(Debug)]
pub(crate) struct UserIrqfd {
    pub(crate) id: u64,
    pub(crate) eventfd: Arc<EventFd>,
    pub(crate) op: XenDmOp,
}

/// An event loop's epoll instance, as the list knows it.
#[derive(Debug)]
struct Watcher {
    id: u64,
    epoll: Arc<Epoll>,
    /// The epoll token of irqfd id 0 (an irqfd `i` is `token_base + i`).
    token_base: u64,
}

#[derive(Debug, Default)]
struct Inner {
    irqfds: Vec<UserIrqfd>,
    watchers: Vec<Watcher>,
    /// The next id of an irqfd and of a watcher (one sequence: ids are never reused).
    next_id: u64,
}

/// The irqfds served in userspace, owned by the server and shared by all its event loops.
#[derive(Debug, Default)]
pub(crate) struct UserIrqfds(Mutex<Inner>);

fn ctl(epoll: &Epoll, op: ControlOperation, fd: &EventFd, token: u64) -> std::io::Result<()> {
    epoll.ctl(op, fd.as_raw_fd(), EpollEvent::new(EventSet::IN, token))
}

impl UserIrqfds {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an irqfd running `op` and makes every watching loop watch it; on an error, no
    /// loop watches it and it is not added.
    pub(crate) fn add(&self, eventfd: Arc<EventFd>, op: XenDmOp) -> std::io::Result<()> {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        for (i, w) in inner.watchers.iter().enumerate() {
            if let Err(e) = ctl(&w.epoll, ControlOperation::Add, &eventfd, w.token_base + id) {
                for w in &inner.watchers[..i] {
                    let _ = ctl(&w.epoll, ControlOperation::Delete, &eventfd, 0);
                }
                return Err(e);
            }
        }
        inner.irqfds.push(UserIrqfd { id, eventfd, op });
        Ok(())
    }

    /// Removes the irqfd of `eventfd` (the same `Arc`): no loop watches it when this returns.
    /// Returns whether it was there.
    pub(crate) fn remove(&self, eventfd: &Arc<EventFd>) -> bool {
        let removed = {
            let mut inner = self.lock();
            let Some(i) = inner
                .irqfds
                .iter()
                .position(|u| Arc::ptr_eq(&u.eventfd, eventfd))
            else {
                return false;
            };
            let u = inner.irqfds.remove(i);
            for w in &inner.watchers {
                // The descriptor is open (`u` holds it): the deletion can only fail if the
                // loop never watched it, which `add` and `watch` rule out.
                if let Err(e) = ctl(&w.epoll, ControlOperation::Delete, &u.eventfd, 0) {
                    log::error!("event loop {}: stop watching an irqfd: {e}", w.id);
                }
            }
            u
        };
        // Closed (if this was the last handle) after no loop watches it any more.
        drop(removed);
        true
    }

    /// Makes `epoll` watch every irqfd, now and as they are added, with tokens from
    /// `token_base` on; returns the watcher's id for [`UserIrqfds::unwatch`].
    pub(crate) fn watch(&self, epoll: Arc<Epoll>, token_base: u64) -> std::io::Result<u64> {
        let mut inner = self.lock();
        for u in &inner.irqfds {
            ctl(&epoll, ControlOperation::Add, &u.eventfd, token_base + u.id)?;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.watchers.push(Watcher {
            id,
            epoll,
            token_base,
        });
        Ok(id)
    }

    /// Forgets watcher `id` (its loop is going away).
    pub(crate) fn unwatch(&self, id: u64) {
        self.lock().watchers.retain(|w| w.id != id);
    }

    /// The eventfd and operation of irqfd `id`, if it was not removed.
    pub(crate) fn get(&self, id: u64) -> Option<(Arc<EventFd>, XenDmOp)> {
        self.lock()
            .irqfds
            .iter()
            .find(|u| u.id == id)
            .map(|u| (u.eventfd.clone(), u.op))
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().irqfds.is_empty()
    }

    /// How many irqfds there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().irqfds.len()
    }

    /// How many loops watch them.
    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        self.lock().watchers.len()
    }
}
