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
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use vm_device_bus::DeviceBus;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use xen_bindings::evtchn::{BoundPort, Port};
use xen_bindings::sys::{RealSys, Sys};
use xen_bindings::DomId;

use crate::dispatch::Dispatcher;
use crate::error::{io, Error, Result};
use crate::server::{IoreqServer, PORTS_PER_READ};

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

/// A loop's own event channel: a loopback channel between two local ports, on the server's
/// descriptor, so that what must wake a loop blocked in `read` of it can.
#[derive(Debug)]
struct Wake<S: Sys> {
    /// The loop's end: an event on it wakes the loop.
    listen: BoundPort<S>,
    /// The other end, which the stoppers and the server notify.
    kick: BoundPort<S>,
}

/// What a loop shares with its [`Stopper`]s.
#[derive(Debug)]
struct StopShared<S: Sys> {
    /// Written to stop the loop (the epoll path watches it; the blocking path reads it when
    /// woken through its port).
    eventfd: Arc<EventFd>,
    /// The loop's own event channel, made when first needed.
    wake: OnceLock<Wake<S>>,
    /// Whether the loop is on the blocking path, where only an event wakes it.
    blocking: AtomicBool,
    /// Set by every stop: ends the loop's polling (see [`EventLoop::set_polling`]) at its next
    /// look, without consuming the stop, which the event and the eventfd still carry.
    requested: AtomicBool,
}

impl<S: Sys> StopShared<S> {
    /// The wake-up's ports, `[listen, kick]`, if made.
    fn ports(&self) -> Option<[Port; 2]> {
        self.wake.get().map(|w| [w.listen.port(), w.kick.port()])
    }
}

/// Stops an [`EventLoop`] from any thread, whichever way it waits ([`EventLoop::stop_handle`]).
///
/// Cheap to clone. A stop asked before the loop runs stops its first turn; one asked after the
/// loop is gone does nothing.
#[derive(Debug)]
pub struct Stopper<S: Sys = RealSys> {
    shared: Arc<StopShared<S>>,
}

impl<S: Sys> Clone for Stopper<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Sys> Stopper<S> {
    /// Stops the loop: its turn under way, or its next one, returns [`Turn::stopped`] (and
    /// [`EventLoop::run`] returns).
    pub fn stop(&self) -> Result<()> {
        self.shared.requested.store(true, Ordering::Relaxed);
        self.shared
            .eventfd
            .write(1)
            .map_err(io("write the stop eventfd"))?;
        // Paired with the fence in `EventLoop::enter_blocking`: either the loop, entering the
        // blocking path, finds the eventfd written, or this finds the loop on it and wakes it.
        fence(Ordering::SeqCst);
        if self.shared.blocking.load(Ordering::Relaxed) {
            if let Some(w) = self.shared.wake.get() {
                w.kick.notify().map_err(|source| Error::Evtchn {
                    op: "wake the event loop",
                    domid: DomId::SELF,
                    source,
                })?;
            }
        }
        Ok(())
    }
}

/// Counts the loop among its server's while it lives; takes it off the blocking path and
/// forgets its wake-up ports when it goes.
struct Registration<'a, S: Sys> {
    server: &'a IoreqServer<S>,
    shared: Arc<StopShared<S>>,
}

impl<S: Sys> Drop for Registration<'_, S> {
    fn drop(&mut self) {
        self.shared.blocking.store(false, Ordering::SeqCst);
        let ports = self.shared.ports();
        self.server.unregister_loop(ports.map(|p| p[1]));
        if let Some(ports) = ports {
            self.server.remove_wake_ports(ports);
        }
    }
}

/// Serves an [`IoreqServer`] with a [`Dispatcher`] until stopped.
///
/// # The single-loop path
///
/// A loop that is its server's only one, waits without a timeout (`run`, `run_once(-1)`),
/// has no irqfd to watch (all of them in the kernel) and no buffered backlog, and whose
/// eventfd stopper ([`EventLoop::stopper`]) nobody holds, does not wait in `epoll_pwait`: it
/// blocks in `read` of the event channel itself (made blocking for the purpose), serves the
/// ports it returns and re-arms them, one system call fewer per wake-up. What would have come
/// through epoll comes through the event channel instead: the loop has an event channel of its
/// own, a loopback channel between two local ports of this domain, and whatever must wake it
/// notifies that: its [`Stopper`], a second loop of the server and a userspace irqfd (both
/// send it back to the general path, making the descriptor non-blocking before they wake it).
/// Every other configuration waits in `epoll_pwait` as before. Meanwhile the descriptor is
/// blocking: nothing else of the process should read it (an [`IoreqServer::serve_pending`]
/// of another thread would wait there).
pub struct EventLoop<'a, S: Sys, B: DeviceBus> {
    server: &'a IoreqServer<S>,
    dispatcher: Dispatcher<B>,
    epoll: Arc<Epoll>,
    stop: Arc<EventFd>,
    /// Keeps the server's userspace irqfds in `epoll` while the loop lives.
    watch: Watch<'a, S>,
    /// Whether this loop holds the server's buffered backlog.
    backlog: Backlog<'a, S>,
    /// Counts the loop in its server's (after `backlog`: a backlog given back when the loop
    /// goes is there before the last loop left may block).
    registration: Registration<'a, S>,
    /// Whether this loop is on the blocking path (the server's `lean_active` says whether it
    /// still may be).
    blocking: bool,
    /// The blocking path failed to set up (logged once): this loop stays on epoll.
    no_blocking: bool,
    /// The wake-up's ports, `[listen, kick]`, once made.
    wake_ports: Option<[Port; 2]>,
    /// How long the single-loop path polls the slots after serving (`None`: it does not).
    poll: Option<Duration>,
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
        let watch = Watch { server, id };
        // A loop already blocking in read goes back to epoll: two loops share the descriptor.
        server.register_loop();
        let shared = Arc::new(StopShared {
            eventfd: stop.clone(),
            wake: OnceLock::new(),
            blocking: AtomicBool::new(false),
            requested: AtomicBool::new(false),
        });
        Ok(Self {
            server,
            dispatcher,
            epoll,
            stop,
            watch,
            backlog: Backlog {
                server,
                held: false,
            },
            registration: Registration { server, shared },
            blocking: false,
            no_blocking: false,
            wake_ports: None,
            poll: None,
            events: [EpollEvent::default(); 8],
        })
    }

    /// Makes the loop's own event channel if it has none yet; its ports, `[listen, kick]`.
    fn wake(&mut self) -> Result<[Port; 2]> {
        if let Some(ports) = self.wake_ports {
            return Ok(ports);
        }
        let evtchn = self.server.evtchn();
        let evtchn_err = |op| {
            move |source| Error::Evtchn {
                op,
                domid: DomId::SELF,
                source,
            }
        };
        let listen = evtchn
            .bind_unbound_port(DomId::SELF)
            .map_err(evtchn_err("allocate the event loop's wake-up port"))?;
        let kick = evtchn
            .bind_interdomain(DomId::SELF, listen.port())
            .map_err(evtchn_err("bind the event loop's wake-up port"))?;
        let ports = [listen.port(), kick.port()];
        self.server.add_wake_ports(ports);
        let shared = &self.registration.shared;
        if shared.wake.set(Wake { listen, kick }).is_err() {
            unreachable!("only this loop sets it, once");
        }
        self.wake_ports = Some(ports);
        Ok(ports)
    }

    /// A handle that stops the loop from any thread, whether it waits in epoll or blocks in
    /// `read` of the event channel (the single-loop path, see [`EventLoop`]).
    ///
    /// Makes the loop's own event channel (a loopback channel) the first time. Where the event
    /// channel cannot make one (a descriptor restricted to one domain with `restrict_domid`
    /// binds no loopback channel), the loop stays on epoll, logged once, and the handle stops
    /// it there.
    pub fn stop_handle(&mut self) -> Stopper<S> {
        if !self.no_blocking {
            if let Err(e) = self.wake() {
                self.no_wake(e);
            }
        }
        Stopper {
            shared: self.registration.shared.clone(),
        }
    }

    /// The loop's own event channel could not be made (`e`): it waits in epoll from now on.
    #[cold]
    fn no_wake(&mut self, e: Error) {
        self.no_blocking = true;
        log::warn!(
            "domain {}: {e}; the event loop waits in epoll",
            self.server.domid()
        );
    }

    /// Whether the next turn, waiting `timeout_ms`, may block in `read` (entering the blocking
    /// path if it is not on it); `Some(turn)` when entering it found the loop stopped.
    #[inline]
    fn may_block(&mut self, timeout_ms: i32) -> Option<bool> {
        // Whoever holds the eventfd stopper could write it while the loop blocks in read, which
        // does not watch it.
        let may = timeout_ms < 0
            && !self.backlog.held
            && !self.no_blocking
            && Arc::strong_count(&self.stop) == 2;
        if self.blocking {
            if may && self.server.lean_active() {
                return Some(true);
            }
            self.leave_blocking();
            return Some(false);
        }
        if !may {
            return Some(false);
        }
        self.enter_blocking()
    }

    /// Enters the blocking path if the server allows it: `Some(whether it did)`, or `None`
    /// when the loop's stopper was found written on the way in.
    #[cold]
    #[inline(never)]
    fn enter_blocking(&mut self) -> Option<bool> {
        if !self.server.lean_possible() {
            return Some(false);
        }
        let [listen, kick] = match self.wake() {
            Ok(ports) => ports,
            Err(e) => {
                self.no_wake(e);
                return Some(false);
            }
        };
        if !self.server.try_enter_lean(kick) {
            return Some(false);
        }
        // An event on it taken by another reader before may have left it masked (one held
        // meanwhile comes now, a spurious wake-up).
        if let Err(e) = self.server.evtchn().unmask(listen) {
            self.server.unmask_failed(e);
        }
        self.blocking = true;
        let shared = &self.registration.shared;
        shared.blocking.store(true, Ordering::Relaxed);
        // Paired with the fence in `Stopper::stop`.
        fence(Ordering::SeqCst);
        if self.stop.read().is_ok() {
            return None;
        }
        Some(true)
    }

    /// Leaves the blocking path (the descriptor is non-blocking again).
    #[cold]
    #[inline(never)]
    fn leave_blocking(&mut self) {
        self.blocking = false;
        self.registration
            .shared
            .blocking
            .store(false, Ordering::SeqCst);
        if let Some([_, kick]) = self.wake_ports {
            self.server.leave_lean(kick);
        }
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
    ///
    /// While a handle of it is held, the loop waits in epoll, which watches it: a write could
    /// not wake the loop blocked in `read` of the single-loop path. [`EventLoop::stop_handle`]
    /// stops a loop either way.
    pub fn stopper(&self) -> Arc<EventFd> {
        self.stop.clone()
    }

    /// Polling on the single-loop path (see [`EventLoop`]): after the requests of a wake-up
    /// are served, the loop looks at the vCPUs' slots again instead of blocking, and between
    /// looks gives its physical CPU to Xen (`SCHEDOP_yield`, [`Privcmd::yield_vcpu`]), so
    /// that the guest vCPU that makes the next request runs in the meantime. A request that
    /// comes within `window` of the last one is served without the event's wake-up: no
    /// interrupt handling, scheduling or `read` return in dom0 on its way, which under
    /// emulation roughly halves a round trip. After `window` without a request the loop
    /// blocks in `read` as before. `None` (the default) turns it off.
    ///
    /// The price is CPU time: while it polls the loop's thread never sleeps. Where nothing
    /// else waits for its physical CPU, a yield returns at once and the loop spins for up to
    /// `window` after every burst of requests. A stop ends the polling at the next look; a
    /// second loop of the server or a userspace irqfd ends it too (they take the loop off
    /// the single-loop path). The yield needs a privcmd descriptor that is not restricted
    /// to one domain: on one that is, Xen's refusal turns polling off (logged once).
    ///
    /// [`Privcmd::yield_vcpu`]: xen_bindings::privcmd::Privcmd::yield_vcpu
    pub fn set_polling(&mut self, window: Option<Duration>) {
        self.poll = window;
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
    ///
    /// On the single-loop path (see [`EventLoop`]) it stays in its read, serve
    /// and re-arm cycle without returning from a turn between wake-ups.
    pub fn run(&mut self) -> Result<()> {
        self.server.serve_all(&mut self.dispatcher);
        self.backlog.held |= self.server.take_buffered_backlog();
        loop {
            let turn = match self.may_block(-1) {
                Some(true) => self.blocking_turns(false)?,
                Some(false) => self.run_once(-1)?,
                None => return Ok(()),
            };
            if turn.stopped {
                return Ok(());
            }
        }
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
    ///
    /// A turn without a timeout (`timeout_ms < 0`) of a loop that may take the single-loop path
    /// (see [`EventLoop`]) blocks in `read` of the event channel instead of
    /// `epoll_pwait`.
    pub fn run_once(&mut self, timeout_ms: i32) -> Result<Turn> {
        match self.may_block(timeout_ms) {
            Some(true) => return self.blocking_turns(true),
            Some(false) => {}
            None => {
                return Ok(Turn {
                    stopped: true,
                    ..Turn::default()
                })
            }
        }
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

    /// Turns of the single-loop path: blocks in `read` of the event channel until ports are
    /// pending, serves each port's slot (the vCPU's answer notified before its port is
    /// re-armed) and re-arms it. Its own wake-up port, when read, means a stop to look at (the
    /// eventfd) or a call back to the general path (looked at next turn): the turn ends then.
    /// With `once`, it also ends after the first read that served a request ([`Self::run_once`]);
    /// without, it reads again ([`Self::run`]), the requests not counted.
    #[inline(always)]
    fn blocking_turns(&mut self, once: bool) -> Result<Turn> {
        let server = self.server;
        // Looked up once: the server, borrowed for the loop's life, keeps its descriptor open
        // and its page mapped.
        let evtchn = server.evtchn().ops();
        let page = server.ioreq_page();
        let listen = self.wake_ports.map_or(0, |p| p[0]);
        let mut buf = [0 as Port; PORTS_PER_READ];
        let mut turn = Turn::default();
        'turns: loop {
            let ports = match evtchn.read_pending_into(&mut buf) {
                Ok(ports) => ports,
                Err(e) => return self.blocking_read_failed(e),
            };
            // A descriptor made non-blocking meanwhile reads nothing: the turn ends, and the
            // next one looks at why.
            if ports.is_empty() {
                self.backlog.held = server.take_buffered_backlog();
                break;
            }
            let mut served = 0;
            let mut left = ports.iter();
            while let Some(&port) = left.next() {
                // A vCPU's port first: the loop's own is the rare one.
                if let Some(slot) = server.port_slot(port, page) {
                    served += server.serve_port_inline(evtchn, port, slot, &mut self.dispatcher);
                } else if port == listen {
                    // The rest of the read is served out of line, and the turn ends: nothing
                    // about the loop's own port is carried through the common path.
                    served += self.woken(port, left.as_slice(), &mut turn);
                    if once {
                        turn.requests += served;
                    }
                    break 'turns;
                } else {
                    served += server.serve_other_port(port, &mut self.dispatcher);
                }
                if let Err(e) = evtchn.unmask(port) {
                    server.unmask_failed(e);
                }
            }
            if served != 0 {
                if let Some(window) = self.poll {
                    served += self.poll_slots(window);
                }
            }
            if once {
                turn.requests += served;
            }
            // The loop entered the blocking path without a backlog (`may_block`): one taken
            // now ends the turn, for the general path's next one to serve.
            if server.take_buffered_backlog() {
                self.backlog.held = true;
                break;
            }
            // A read that served nothing (the other end of the loop's own channel, made
            // pending once when bound, or a slot another reader answered) reads again rather
            // than ending a turn that did nothing.
            if once && served != 0 {
                break;
            }
        }
        if self.backlog.held {
            self.blocking_backlog(&mut turn);
        }
        Ok(turn)
    }

    /// Polls the vCPUs' slots, serving what it finds and yielding the CPU to Xen between
    /// looks, until `window` passes without a request, a stop is asked for or the loop may
    /// no longer block (see [`EventLoop::set_polling`]). The requests served. The ports read
    /// before are re-armed already: an event of a request served here waits in the
    /// descriptor and is read (finding its slot answered) when the loop blocks again.
    #[inline(never)]
    fn poll_slots(&mut self, window: Duration) -> usize {
        // Empty looks taken before the clock is read: a guest that keeps making requests
        // finds the loop back after a yield or two, and reading the clock costs a system
        // call where the vDSO cannot serve it (a PV dom0 without a pvclock page).
        const LOOKS_BEFORE_CLOCK: u32 = 8;
        let server = self.server;
        // As `blocking_turns` does: looked up once, and the slots served inline.
        let evtchn = server.evtchn().ops();
        let page = server.ioreq_page();
        let requested = &self.registration.shared.requested;
        let mut served = 0;
        let mut empty = 0u32;
        let mut idle_since = None;
        loop {
            let mut found = 0;
            for (vcpu, &port) in server.vcpu_ports().iter().enumerate() {
                if let Some(slot) = page.slot(vcpu) {
                    found += server.serve_port_inline(evtchn, port, slot, &mut self.dispatcher);
                }
            }
            if found != 0 {
                served += found;
                empty = 0;
                idle_since = None;
            } else {
                empty += 1;
                if empty >= LOOKS_BEFORE_CLOCK {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= window {
                        break;
                    }
                }
            }
            if requested.swap(false, Ordering::Relaxed) || !server.lean_active() {
                break;
            }
            if let Err(e) = server.privcmd().yield_vcpu() {
                log::warn!(
                    "domain {}: cannot yield the CPU while polling ({e}); polling is off",
                    server.domid()
                );
                self.poll = None;
                break;
            }
        }
        served
    }

    /// The loop's own port `listen` was read, with the ports `rest` after it: re-arms it,
    /// serves and re-arms the rest, takes a buffered backlog as the turn's end does, and reads
    /// the stopper (the port means a stop, or a call back to the general path, looked at by
    /// the next turn). The requests served.
    #[cold]
    #[inline(never)]
    fn woken(&mut self, listen: Port, rest: &[Port], turn: &mut Turn) -> usize {
        let server = self.server;
        let evtchn = server.evtchn();
        if let Err(e) = evtchn.unmask(listen) {
            server.unmask_failed(e);
        }
        let mut served = 0;
        for &port in rest {
            served += server.serve_port(port, &mut self.dispatcher);
            if let Err(e) = evtchn.unmask(port) {
                server.unmask_failed(e);
            }
        }
        if server.take_buffered_backlog() {
            self.backlog.held = true;
        }
        turn.stopped = self.stop.read().is_ok();
        served
    }

    /// A buffered backlog after a blocking turn: the next turn serves it (on the general path,
    /// which does not wait while it is held) unless this one stopped (then it goes to the
    /// server's other loops, as on the general path).
    #[cold]
    #[inline(never)]
    fn blocking_backlog(&mut self, turn: &mut Turn) {
        if turn.stopped {
            self.backlog.held = false;
            self.server.give_back_buffered_backlog();
        }
        turn.backlog = self.backlog.held;
    }

    /// The blocking read failed: an overflow of the kernel's queue is recovered from (the
    /// stopper looked at, as its event may be among those dropped), an interrupted read is an
    /// empty turn, anything else an error.
    #[cold]
    #[inline(never)]
    fn blocking_read_failed(&mut self, e: xen_bindings::evtchn::Error) -> Result<Turn> {
        match e {
            xen_bindings::evtchn::Error::Overflow => {
                let requests = self.server.recover_from_overflow(&mut self.dispatcher)?;
                Ok(Turn {
                    requests,
                    stopped: self.stop.read().is_ok(),
                    ..Turn::default()
                })
            }
            xen_bindings::evtchn::Error::Read(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                Ok(Turn::default())
            }
            e => Err(self.server.read_pending_failed(e)),
        }
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
