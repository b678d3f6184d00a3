// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! An epoll-driven loop serving one IOREQ server.
//!
//! It waits on the event channel descriptor (requests), on the eventfds of irqfds the kernel
//! cannot serve (each signal becomes a dm_op), and on a stop eventfd. A loop runs on one
//! thread; several loops, one per thread, may serve the same server.
//!
//! The loop keeps no state of the server's: the irqfds are the server's, and the server adds
//! one to (or removes one from) every loop's epoll instance itself when it is added (removed)
//! while loops run, so a loop is never woken only to learn of it (see the `user_irqfds`
//! module).

use std::os::fd::AsRawFd;
use std::sync::Arc;

use vm_device_bus::DeviceBus;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::sys::Sys;

use crate::dispatch::Dispatcher;
use crate::error::{io, Error, Result};
use crate::server::IoreqServer;

const TOKEN_EVTCHN: u64 = 0;
const TOKEN_STOP: u64 = 1;
/// The server's [`IoreqServer::backlog_wake`]: a loop gave the buffered backlog back.
const TOKEN_BACKLOG: u64 = 2;
/// Token of the server's userspace irqfd of id `i`: `TOKEN_IRQFD_BASE + i`.
const TOKEN_IRQFD_BASE: u64 = 3;

/// A loop's place among the watchers of its server's irqfds, given up when the loop goes.
struct Watch<'a, S: Sys> {
    server: &'a IoreqServer<S>,
    id: u64,
}

impl<S: Sys> Drop for Watch<'_, S> {
    fn drop(&mut self) {
        self.server.user_irqfds.unwatch(self.id);
    }
}

/// Whether a loop holds its server's buffered backlog
/// ([`IoreqServer::take_buffered_backlog`]): entries whose event was consumed wait in the
/// ring, so its next turn does not block. A loop that goes with it gives it back to the
/// server's other loops.
struct Backlog<'a, S: Sys> {
    server: &'a IoreqServer<S>,
    held: bool,
}

impl<S: Sys> Drop for Backlog<'_, S> {
    fn drop(&mut self) {
        if self.held {
            self.server.give_back_buffered_backlog();
        }
    }
}

/// Serves an [`IoreqServer`] with a [`Dispatcher`] until stopped.
pub struct EventLoop<'a, S: Sys, B: DeviceBus> {
    server: &'a IoreqServer<S>,
    dispatcher: Dispatcher<B>,
    epoll: Arc<Epoll>,
    stop: Arc<EventFd>,
    /// Keeps the server's userspace irqfds in `epoll` while the loop lives.
    watch: Watch<'a, S>,
    /// Whether this loop holds the server's buffered backlog.
    backlog: Backlog<'a, S>,
    /// What a turn's wait returns, kept here so that a turn does not clear it first.
    events: [EpollEvent; 8],
}

impl<S: Sys, B: DeviceBus> std::fmt::Debug for EventLoop<'_, S, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("domid", &self.server.domid())
            .field("watch", &self.watch.id)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Sys, B: DeviceBus> EventLoop<'a, S, B> {
    /// Builds the loop: registers the event channel, the userspace irqfds of `server` (those
    /// added later too) and a stop eventfd with a new epoll instance.
    pub fn new(server: &'a IoreqServer<S>, dispatcher: Dispatcher<B>) -> Result<Self> {
        let epoll = Arc::new(Epoll::new().map_err(io("epoll_create"))?);
        let stop = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(io("eventfd"))?);
        epoll
            .ctl(
                ControlOperation::Add,
                server.event_channel().as_raw_fd(),
                EpollEvent::new(EventSet::IN, TOKEN_EVTCHN),
            )
            .map_err(io("epoll_ctl(evtchn)"))?;
        epoll
            .ctl(
                ControlOperation::Add,
                stop.as_raw_fd(),
                EpollEvent::new(EventSet::IN, TOKEN_STOP),
            )
            .map_err(io("epoll_ctl(stop)"))?;
        epoll
            .ctl(
                ControlOperation::Add,
                server.backlog_wake().as_raw_fd(),
                EpollEvent::new(EventSet::IN, TOKEN_BACKLOG),
            )
            .map_err(io("epoll_ctl(backlog)"))?;
        let id = server
            .user_irqfds
            .watch(epoll.clone(), TOKEN_IRQFD_BASE)
            .map_err(io("epoll_ctl(irqfd)"))?;
        Ok(Self {
            server,
            dispatcher,
            epoll,
            stop,
            watch: Watch { server, id },
            backlog: Backlog {
                server,
                held: false,
            },
            events: [EpollEvent::default(); 8],
        })
    }

    /// The descriptors this loop's epoll instance watches, as the kernel lists them.
    #[cfg(test)]
    pub(crate) fn watched_fds(&self) -> Vec<i32> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.epoll.as_raw_fd()))
            .unwrap_or_default();
        info.lines()
            .filter_map(|l| l.strip_prefix("tfd:"))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// An eventfd that stops [`EventLoop::run`] when written (from any thread).
    pub fn stopper(&self) -> Arc<EventFd> {
        self.stop.clone()
    }

    /// The dispatcher (e.g. to read its stats).
    pub fn dispatcher(&self) -> &Dispatcher<B> {
        &self.dispatcher
    }

    /// The dispatcher, mutably (e.g. to add ioeventfds).
    pub fn dispatcher_mut(&mut self) -> &mut Dispatcher<B> {
        &mut self.dispatcher
    }

    /// Takes the dispatcher back.
    pub fn into_dispatcher(self) -> Dispatcher<B> {
        self.dispatcher
    }

    /// Serves until the stopper is signalled. Serves whatever is already pending first.
    pub fn run(&mut self) -> Result<()> {
        self.server.serve_all(&mut self.dispatcher);
        self.backlog.held |= self.server.take_buffered_backlog();
        while !self.run_once(-1)?.stopped {}
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1: forever) for events once and handles them.
    ///
    /// A turn serves at most [`IoreqServer::BUFFERED_PER_CALL`] buffered entries per look at
    /// the ring, so a guest that keeps the ring full cannot hold it: the vCPUs' slots and the
    /// stopper are looked at every turn. When entries are left behind ([`Turn::backlog`]),
    /// the next turn does not wait: it polls its events and serves the ring again. A turn
    /// that sees the stopper gives such entries to the server's other loops (they are woken
    /// for them), as does a loop dropped with them.
    ///
    /// The stopper is read when the turn ends: a turn that fails leaves it signalled, and the
    /// next turn is stopped.
    pub fn run_once(&mut self, timeout_ms: i32) -> Result<Turn> {
        // Kept until the turn ends: a turn that fails leaves it to the next one.
        let backlog = self.backlog.held;
        let timeout_ms = if backlog { 0 } else { timeout_ms };
        let n = loop {
            match epoll_wait(&self.epoll, timeout_ms, &mut self.events) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Io {
                        op: "epoll_wait",
                        source: e,
                    })
                }
            }
        };
        let mut turn = Turn::default();
        let (mut ring_served, mut woken) = (false, false);
        for i in 0..n.min(self.events.len()) {
            let ev = self.events[i];
            match ev.data() {
                TOKEN_EVTCHN => {
                    ring_served = true;
                    turn.requests += self.server.serve_pending(&mut self.dispatcher)?;
                }
                // Both read once the turn has not failed (below).
                TOKEN_STOP => turn.stopped = true,
                TOKEN_BACKLOG => woken = true,
                t => {
                    // Removed since epoll reported it: no other irqfd has its id.
                    let Some((fd, op)) = self.server.user_irqfds.get(t - TOKEN_IRQFD_BASE) else {
                        continue;
                    };
                    // Every loop watches every irqfd; the one whose read takes the count injects.
                    if fd.read().is_ok() {
                        turn.interrupts += 1;
                        if let Err(e) = self.server.run_op("irqfd (userspace)", op) {
                            log::error!("{e}");
                        }
                    }
                }
            }
        }
        if woken {
            let _ = self.server.backlog_wake().read();
        }
        // A backlog another loop gave back is taken here unless this turn looked at the ring
        // (then the take below gets it, for the next turn): one taken after that look may be
        // what the look left behind.
        let held = backlog || (woken && !ring_served && self.server.take_buffered_backlog());
        if held && !ring_served {
            turn.requests += self.server.serve_buffered(&mut self.dispatcher);
        }
        self.backlog.held = self.server.take_buffered_backlog();
        if turn.stopped {
            let _ = self.stop.read();
            // A loop that stops does not come back for the backlog: another one does.
            if std::mem::take(&mut self.backlog.held) {
                self.server.give_back_buffered_backlog();
            }
        }
        turn.backlog = self.backlog.held;
        Ok(turn)
    }
}

/// `Epoll::wait` through syscall(2): glibc's `epoll_wait` is a pthread cancellation point, and
/// in a process with more than one thread each call switches asynchronous cancellation on and
/// off around the system call (more instructions than the rest of the wrapper, once per turn).
/// Inline: out of line, the turn reached it through the dynamic symbol table and took its
/// answer back through memory.
#[inline]
fn epoll_wait(epoll: &Epoll, timeout_ms: i32, events: &mut [EpollEvent]) -> std::io::Result<usize> {
    let len = libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX);
    // The kernel's signal set, which epoll_pwait checks only when it is given a mask.
    const SIGSET_SIZE: libc::c_long = 8;
    // SAFETY: `events` is an exclusively borrowed array of at least `len` `EpollEvent`s, each a
    // transparent wrapper of `libc::epoll_event`, which the kernel fills; a null signal mask
    // leaves the thread's mask as it is. Arguments are passed as the longs the call reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait,
            libc::c_long::from(epoll.as_raw_fd()),
            events.as_mut_ptr(),
            libc::c_long::from(len),
            libc::c_long::from(timeout_ms),
            std::ptr::null::<libc::sigset_t>(),
            SIGSET_SIZE,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// What one [`EventLoop::run_once`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// Requests served.
    pub requests: usize,
    /// Interrupts injected for userspace irqfds.
    pub interrupts: usize,
    /// The stopper was signalled.
    pub stopped: bool,
    /// Buffered requests whose event was consumed wait in the ring (a guest filled it faster
    /// than one turn serves): the loop's next turn serves them without waiting.
    pub backlog: bool,
}
