// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The vhost-user relay: a [`Backend`] that serves the device through a
//! vhost-user backend daemon on a Unix socket (the `vhost` crate's frontend
//! side).
//!
//! # The conversation
//!
//! On connection: SET_OWNER, GET_FEATURES, and when the daemon offers
//! VHOST_USER_F_PROTOCOL_FEATURES (bit 30, which the guest never sees)
//! GET/SET_PROTOCOL_FEATURES for CONFIG, MQ and REPLY_ACK, GET_QUEUE_NUM
//! (with MQ), then SET_MEM_TABLE from the [`SharedMemory`]. The driver's
//! FEATURES_OK sends SET_FEATURES (with bit 30 added back when offered).
//! QueueReady sends, for that queue, SET_VRING_NUM, SET_VRING_ADDR (frontend
//! virtual addresses: the daemon translates them with the memory table's
//! frontend addresses), SET_VRING_BASE 0, SET_VRING_KICK, SET_VRING_CALL and,
//! with protocol features, SET_VRING_ENABLE 1; without REPLY_ACK a
//! GET_FEATURES round trip follows, so that the daemon has enabled the
//! queue before the guest can kick it. Status 0 sends GET_VRING_BASE
//! for every started queue, which stops it.
//!
//! # Eventfds
//!
//! Each queue has a kick and a call eventfd, made once and kept across
//! reconnections, so a VMM registers them once: [`VhostUserRelay::eventfds`]
//! hands out copies. A KVM VMM may register the kick eventfd as an
//! ioeventfd on QueueNotify (offset 0x50, data match on the queue index) so
//! that kicks bypass userspace; otherwise [`Backend::notify`] writes it. The
//! call eventfd fires when the daemon used buffers: the VMM's event loop
//! reads it and calls
//! [`MmioTransport::used_buffer_interrupt`](crate::MmioTransport::used_buffer_interrupt),
//! which sets InterruptStatus before it injects. It must not be registered
//! as an irqfd directly: the guest would take an interrupt whose status bit
//! is not set yet.
//!
//! # A daemon that dies
//!
//! Every exchange runs under a watchdog that shuts the socket down after
//! the reply timeout, so a daemon that hangs gives [`RelayError::Timeout`],
//! not a stuck vCPU; a closed socket gives [`RelayError::Disconnected`].
//! A failure drops the connection and the transport sets DEVICE_NEEDS_RESET.
//! After the driver resets the device, the next feature read or queue
//! activation connects again (waiting up to the connect timeout for the
//! daemon to listen), so a restarted daemon serves the device again.
//! The process must ignore SIGPIPE (Rust programs do by default) so that a
//! write to a closed socket is an error rather than a signal.
//!
//! # Xen
//!
//! The `vhost` crate's `xen` feature changes the memory table's layout for
//! the whole build (Cargo unifies features), so this crate does not enable
//! it. It decides per connection instead: when the [`SharedMemory`] holds
//! Xen mappings ([`Mapping::XenForeign`], [`Mapping::XenGrant`]), the
//! daemon must offer protocol feature XEN_MMAP (bit 17, which a daemon
//! built with `xen` always offers and requires), the relay acknowledges it
//! and sends SET_MEM_TABLE in the Xen layout itself (the `xen_mmap`
//! module); otherwise XEN_MMAP is never acknowledged and the table is the
//! `vhost` crate's. One process can so serve Xen daemons and ordinary ones
//! side by side. For Xen regions the frontend address is the guest
//! address, so the vring addresses the relay sends are guest addresses.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserHeaderFlag};
use vhost::vhost_user::{
    Frontend, VhostUserFrontend, VhostUserProtocolFeatures, VhostUserVirtioFeatures,
};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::backend::{Backend, BackendError, QueueConfig};
use crate::error::RelayError;
use crate::memory::{Mapping, SharedMemory};
use crate::xen_mmap::{self, SendError};

/// VIRTIO_F_ACCESS_PLATFORM: the device reaches memory through a platform translation.
const VIRTIO_F_ACCESS_PLATFORM: u64 = 1 << 33;
/// VHOST_F_LOG_ALL: dirty logging, a vhost matter the guest never sees.
const VHOST_F_LOG_ALL: u64 = 1 << 26;
/// Feature bits that belong to vhost(-user), not to the virtio device.
const VHOST_ONLY_FEATURES: u64 =
    VHOST_F_LOG_ALL | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
/// The protocol features the relay asks for when offered.
const WANTED_PROTOCOL_FEATURES: VhostUserProtocolFeatures = VhostUserProtocolFeatures::MQ
    .union(VhostUserProtocolFeatures::CONFIG)
    .union(VhostUserProtocolFeatures::REPLY_ACK);
/// How long to wait between connection attempts while the daemon is not
/// listening yet.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

/// Where the daemon listens and how long to wait for it.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    /// Queues the device has (the transport's profile).
    pub num_queues: u16,
    /// The largest queue size the transport offers (QueueNumMax).
    pub max_queue_size: u16,
    /// How long to keep trying to connect while the socket is absent or
    /// refuses (a daemon starting up).
    pub connect_timeout: Duration,
    /// How long to wait for one reply (or one send) before giving up on
    /// the daemon.
    pub reply_timeout: Duration,
}

impl RelayConfig {
    /// Settings for the daemon at `socket` serving a device of `profile`:
    /// 5 s to connect, 5 s per reply.
    pub fn new(socket: impl AsRef<Path>, profile: crate::DeviceProfile) -> Self {
        RelayConfig {
            socket: socket.as_ref().to_path_buf(),
            num_queues: profile.num_queues,
            max_queue_size: profile.max_queue_size,
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(5),
        }
    }
}

/// Copies of one queue's eventfds, for a VMM to register or poll.
#[derive(Debug)]
pub struct QueueEventFds {
    /// Written to kick the daemon (an ioeventfd candidate).
    pub kick: EventFd,
    /// Written by the daemon when it used buffers.
    pub call: EventFd,
}

/// One live connection and what was negotiated on it.
struct Connection {
    frontend: Frontend,
    /// A second handle on the socket, to see whether the daemon hung up
    /// and to shut it down when the daemon stops answering.
    probe: Arc<UnixStream>,
    /// The daemon's features, vhost-only bits included.
    features: u64,
    protocol: VhostUserProtocolFeatures,
    started: Vec<bool>,
    /// With grant memory: each started queue's vring areas (start, end), mapped up front.
    rings: Vec<Vec<(u64, u64)>>,
}

/// A [`Backend`] that relays the device to a vhost-user daemon.
///
/// ```no_run
/// use std::os::fd::OwnedFd;
/// use vhost_user_frontend::{
///     DeviceType, Mapping, MmioTransport, RelayConfig, SharedMemory, SharedRegion, VhostUserRelay,
/// };
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Guest RAM: a memfd this process mapped at `host` and gave the VM at 0.
/// # let (memfd, host): (OwnedFd, u64) = (std::fs::File::open("/dev/null")?.into(), 0);
/// let memory = SharedMemory::new(vec![SharedRegion {
///     guest_addr: 0,
///     size: 1 << 20,
///     frontend_addr: host,
///     fd: memfd,
///     mapping: Mapping::File { offset: 0 },
/// }])?;
/// let profile = DeviceType::Rng.profile();
/// let relay = VhostUserRelay::connect(RelayConfig::new("/run/rng.sock0", profile), memory)?;
/// let fds = relay.eventfds()?; // poll fds[0].call, or register fds[0].kick as an ioeventfd
/// let device = MmioTransport::new(profile, relay);
/// # let _ = (fds, device);
/// # Ok(())
/// # }
/// ```
pub struct VhostUserRelay {
    config: RelayConfig,
    memory: SharedMemory,
    kicks: Vec<EventFd>,
    calls: Vec<EventFd>,
    conn: Option<Connection>,
    /// A connection failed: stay disconnected until the driver resets.
    broken: bool,
}

impl std::fmt::Debug for VhostUserRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostUserRelay")
            .field("socket", &self.config.socket)
            .field("connected", &self.conn.is_some())
            .field("broken", &self.broken)
            .finish()
    }
}

fn protocol(op: &'static str) -> impl FnOnce(vhost::Error) -> RelayError {
    move |source| match source {
        vhost::Error::VhostUserProtocol(
            vhost::vhost_user::Error::Disconnected | vhost::vhost_user::Error::PartialMessage,
        ) => RelayError::Disconnected { op },
        source => RelayError::Protocol { op, source },
    }
}

impl VhostUserRelay {
    /// Connect to the daemon and negotiate (see the module docs); the
    /// eventfds are made here.
    pub fn connect(config: RelayConfig, memory: SharedMemory) -> Result<Self, RelayError> {
        let mut relay = Self::new(config, memory)?;
        relay.connection()?;
        Ok(relay)
    }

    /// A relay that connects on first use (a feature read or a queue
    /// activation).
    pub fn new(config: RelayConfig, memory: SharedMemory) -> Result<Self, RelayError> {
        let eventfd = |what| {
            EventFd::new(EFD_NONBLOCK).map_err(|source| RelayError::Eventfd { op: what, source })
        };
        let n = usize::from(config.num_queues);
        let kicks = (0..n)
            .map(|_| eventfd("create a kick eventfd"))
            .collect::<Result<_, _>>()?;
        let calls = (0..n)
            .map(|_| eventfd("create a call eventfd"))
            .collect::<Result<_, _>>()?;
        Ok(VhostUserRelay {
            config,
            memory,
            kicks,
            calls,
            conn: None,
            broken: false,
        })
    }

    /// Copies of every queue's kick and call eventfds, by queue index.
    pub fn eventfds(&self) -> Result<Vec<QueueEventFds>, RelayError> {
        let dup = |e: &EventFd| {
            e.try_clone().map_err(|source| RelayError::Eventfd {
                op: "duplicate an eventfd",
                source,
            })
        };
        self.kicks
            .iter()
            .zip(&self.calls)
            .map(|(k, c)| {
                Ok(QueueEventFds {
                    kick: dup(k)?,
                    call: dup(c)?,
                })
            })
            .collect()
    }

    /// Features the memory adds to the daemon's: with grant mappings the device reaches guest
    /// memory through a translation (grant references), which the guest's driver must know
    /// (VIRTIO_F_ACCESS_PLATFORM; Linux refuses a grant-DMA device without it). The daemon
    /// never sees the bit.
    fn platform_features(&self) -> u64 {
        if self.memory.has_grants() {
            VIRTIO_F_ACCESS_PLATFORM
        } else {
            0
        }
    }

    /// Whether a connection to the daemon is up.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The daemon's socket, connected with bounded retries.
    fn dial(&self) -> Result<UnixStream, RelayError> {
        let deadline = Instant::now() + self.config.connect_timeout;
        loop {
            match UnixStream::connect(&self.config.socket) {
                Ok(s) => return Ok(s),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) && Instant::now() < deadline =>
                {
                    // The daemon is starting: its socket is not there or not listening yet.
                    std::thread::sleep(CONNECT_RETRY);
                }
                Err(source) => {
                    return Err(RelayError::Connect {
                        socket: self.config.socket.clone(),
                        source,
                    })
                }
            }
        }
    }

    fn open(&self) -> Result<Connection, RelayError> {
        let sock = self.dial()?;
        let probe = sock.try_clone().map_err(|source| RelayError::Connect {
            socket: self.config.socket.clone(),
            source,
        })?;
        let probe = Arc::new(probe);
        within(&probe.clone(), self.config.reply_timeout, || {
            self.handshake(sock, probe)
        })
    }

    /// The conversation of a new connection (see the module docs).
    fn handshake(
        &self,
        sock: UnixStream,
        probe: Arc<UnixStream>,
    ) -> Result<Connection, RelayError> {
        let mut frontend = Frontend::from_stream(sock, u64::from(self.config.num_queues));
        frontend.set_owner().map_err(protocol("SET_OWNER"))?;
        let features = frontend.get_features().map_err(protocol("GET_FEATURES"))?;
        let mut acked = VhostUserProtocolFeatures::empty();
        if features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() == 0 && self.memory.is_xen()
        {
            return Err(RelayError::NoXenMmap);
        }
        if features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0 {
            let offered = frontend
                .get_protocol_features()
                .map_err(protocol("GET_PROTOCOL_FEATURES"))?;
            acked = offered & WANTED_PROTOCOL_FEATURES;
            if self.memory.is_xen() {
                // A Xen daemon offers XEN_MMAP and refuses a table without it.
                if !offered.contains(VhostUserProtocolFeatures::XEN_MMAP) {
                    return Err(RelayError::NoXenMmap);
                }
                acked |= VhostUserProtocolFeatures::XEN_MMAP;
            }
            frontend
                .set_protocol_features(acked)
                .map_err(protocol("SET_PROTOCOL_FEATURES"))?;
            if acked.contains(VhostUserProtocolFeatures::REPLY_ACK) {
                // Every request is acknowledged, so a refusal is seen at once.
                frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
            }
        }
        if acked.contains(VhostUserProtocolFeatures::MQ) {
            let queues = frontend
                .get_queue_num()
                .map_err(protocol("GET_QUEUE_NUM"))?;
            if queues < u64::from(self.config.num_queues) {
                return Err(RelayError::TooFewQueues {
                    offered: queues,
                    needed: self.config.num_queues,
                });
            }
        }
        if self.memory.is_xen() {
            // Our own encoding of the one message whose layout XEN_MMAP changes (see the
            // `xen_mmap` module); the vhost crate's frontend never sees the table.
            let need_reply = acked.contains(VhostUserProtocolFeatures::REPLY_ACK);
            let table = xen_mmap::entries_with_rings(&self.memory, &[]);
            send_xen_table(&probe, &self.memory, &table, need_reply)?;
        } else {
            // Fields other builds add (the `xen` feature's) keep their defaults.
            #[allow(clippy::needless_update)]
            let regions: Vec<VhostUserMemoryRegionInfo> = self
                .memory
                .regions()
                .iter()
                .zip(self.memory.raw_fds())
                .map(|(r, fd)| VhostUserMemoryRegionInfo {
                    guest_phys_addr: r.guest_addr,
                    memory_size: r.size,
                    userspace_addr: r.frontend_addr,
                    mmap_offset: match r.mapping {
                        Mapping::File { offset } => offset,
                        _ => 0,
                    },
                    mmap_handle: fd,
                    ..Default::default()
                })
                .collect();
            frontend
                .set_mem_table(&regions)
                .map_err(protocol("SET_MEM_TABLE"))?;
        }
        log::debug!(
            "vhost-user: connected to {} (features {features:#x}, protocol {acked:?})",
            self.config.socket.display()
        );
        Ok(Connection {
            frontend,
            probe,
            features,
            protocol: acked,
            started: vec![false; usize::from(self.config.num_queues)],
            rings: vec![Vec::new(); usize::from(self.config.num_queues)],
        })
    }

    /// The connection, made now if there is none (unless a failure left
    /// the device waiting for a reset).
    fn connection(&mut self) -> Result<&mut Connection, RelayError> {
        if self.broken {
            return Err(RelayError::NeedsReset);
        }
        if self.conn.is_none() {
            match self.open() {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    log::warn!(
                        "vhost-user: {}: {}",
                        self.config.socket.display(),
                        crate::error::chain(&e)
                    );
                    self.broken = true;
                    return Err(e);
                }
            }
        }
        // Set just above when it was empty.
        self.conn.as_mut().ok_or(RelayError::NeedsReset)
    }

    /// The live connection, without connecting.
    fn live(&mut self) -> Result<&mut Connection, RelayError> {
        match self.conn.as_mut() {
            Some(c) if !self.broken => Ok(c),
            _ => Err(RelayError::NeedsReset),
        }
    }

    /// Runs `f` on the connection; a failure drops it until the next reset.
    fn with_conn<T>(
        &mut self,
        connect: bool,
        f: impl FnOnce(&mut Connection, &SharedMemory, &[EventFd], &[EventFd]) -> Result<T, RelayError>,
    ) -> Result<T, RelayError> {
        if connect {
            self.connection()?;
        } else {
            self.live()?;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RelayError::NeedsReset);
        };
        let probe = conn.probe.clone();
        let (memory, kicks, calls) = (&self.memory, &self.kicks, &self.calls);
        let r = within(&probe, self.config.reply_timeout, || {
            f(conn, memory, kicks, calls)
        });
        if r.is_err() {
            self.conn = None;
            self.broken = true;
        }
        r
    }

    fn queue(&self, index: u16) -> Result<usize, RelayError> {
        if index < self.config.num_queues {
            Ok(usize::from(index))
        } else {
            Err(RelayError::NoQueue {
                index,
                num_queues: self.config.num_queues,
            })
        }
    }
}

impl Connection {
    /// Has the daemon closed its end? (Nothing else is ever sent to us
    /// unasked, so a readable socket means end of file or an error.)
    fn hung_up(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.probe.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, owned by this frame; timeout 0 never blocks.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents != 0
    }
}

/// Sends a Xen memory table (see the `xen_mmap` module).
fn send_xen_table(
    sock: &UnixStream,
    memory: &SharedMemory,
    table: &[xen_mmap::XenRegion],
    need_reply: bool,
) -> Result<(), RelayError> {
    xen_mmap::send(sock, memory, table, need_reply).map_err(|e| match e {
        SendError::Io(source) if is_hangup(&source) => RelayError::Disconnected {
            op: "SET_MEM_TABLE",
        },
        SendError::Io(source) => RelayError::XenMemTable {
            reason: source.to_string(),
        },
        SendError::BadReply => RelayError::XenMemTable {
            reason: "the reply is not an acknowledgement of SET_MEM_TABLE".into(),
        },
        SendError::Refused(status) => RelayError::XenMemTable {
            reason: format!("the daemon refused it (status {status})"),
        },
        SendError::TooMany(n) => RelayError::XenMemTable {
            reason: format!("{n} regions, more than one message carries"),
        },
    })
}

/// Whether an I/O error means the daemon closed its end.
fn is_hangup(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Runs `f`, shutting `socket` down if `f` takes longer than `timeout`.
///
/// The vhost crate retries a read that timed out for ever, so a socket
/// timeout alone would leave a daemon that stops answering holding the
/// caller (a vCPU) for good; shutting the socket down ends the read with
/// end of file. Once the watchdog fired the connection is gone, so the
/// result is [`RelayError::Timeout`] whatever `f` returned.
fn within<T>(
    socket: &UnixStream,
    timeout: Duration,
    f: impl FnOnce() -> Result<T, RelayError>,
) -> Result<T, RelayError> {
    let done = (Mutex::new(false), Condvar::new());
    let fired = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watchdog = std::thread::Builder::new()
            .name("vhost-user-watchdog".into())
            .spawn_scoped(s, || {
                let (lock, cv) = &done;
                let g = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let (g, _) = cv
                    .wait_timeout_while(g, timeout, |done| !*done)
                    .unwrap_or_else(PoisonError::into_inner);
                if !*g {
                    fired.store(true, Ordering::SeqCst);
                    let _ = socket.shutdown(Shutdown::Both);
                }
            });
        if let Err(e) = &watchdog {
            log::warn!("vhost-user: no watchdog thread ({e}); a silent daemon can block");
        }
        let r = f();
        *done.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        done.1.notify_one();
        if let Ok(w) = watchdog {
            let _ = w.join();
        }
        if fired.load(Ordering::SeqCst) {
            return Err(RelayError::Timeout { timeout });
        }
        r
    })
}

/// Frontend virtual address of one queue area, checked to lie in memory.
fn area(
    memory: &SharedMemory,
    index: u16,
    name: &'static str,
    addr: u64,
    len: u64,
) -> Result<u64, RelayError> {
    memory
        .frontend_address(addr, len)
        .ok_or(RelayError::QueueOutsideMemory {
            index,
            area: name,
            addr,
            len,
        })
}

impl Backend for VhostUserRelay {
    fn device_features(&mut self) -> Result<u64, BackendError> {
        let platform = self.platform_features();
        // Read at connection time: no message, so no watchdog either.
        Ok(self.connection()?.features & !VHOST_ONLY_FEATURES | platform)
    }

    fn set_features(&mut self, features: u64) -> Result<(), BackendError> {
        let platform = self.platform_features();
        Ok(self.with_conn(true, |c, _, _, _| {
            let extra = c.features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
            // What the transport adds is the frontend's, not the daemon's to acknowledge.
            let ours = platform & !c.features;
            c.frontend
                .set_features(features & !ours | extra)
                .map_err(protocol("SET_FEATURES"))
        })?)
    }

    fn read_config(&mut self, offset: u32, data: &mut [u8]) -> Result<(), BackendError> {
        let config = VhostUserProtocolFeatures::CONFIG;
        if !self.connection()?.protocol.contains(config) {
            // No CONFIG: a device without config space as far as we can tell.
            data.fill(0);
            return Ok(());
        }
        Ok(self.with_conn(false, |c, _, _, _| {
            let len = data.len() as u32;
            let zeros = vec![0u8; data.len()];
            let (_, payload) = c
                .frontend
                .get_config(offset, len, VhostUserConfigFlags::empty(), &zeros)
                .map_err(protocol("GET_CONFIG"))?;
            if payload.len() != data.len() {
                return Err(RelayError::ConfigSize {
                    asked: data.len(),
                    got: payload.len(),
                });
            }
            data.copy_from_slice(&payload);
            Ok(())
        })?)
    }

    fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<(), BackendError> {
        let config = VhostUserProtocolFeatures::CONFIG;
        if !self.connection()?.protocol.contains(config) {
            return Ok(());
        }
        Ok(self.with_conn(false, |c, _, _, _| {
            c.frontend
                .set_config(offset, VhostUserConfigFlags::WRITABLE, data)
                .map_err(protocol("SET_CONFIG"))
        })?)
    }

    fn activate_queue(&mut self, index: u16, q: QueueConfig) -> Result<(), BackendError> {
        let i = self.queue(index)?;
        let max = self.config.max_queue_size;
        Ok(self.with_conn(true, |c, memory, kicks, calls| {
            let n = u64::from(q.size);
            let vring = VringConfigData {
                queue_max_size: max,
                queue_size: q.size,
                flags: 0,
                desc_table_addr: area(memory, index, "descriptor table", q.desc, 16 * n)?,
                avail_ring_addr: area(memory, index, "driver area", q.driver, 6 + 2 * n)?,
                used_ring_addr: area(memory, index, "device area", q.device, 6 + 8 * n)?,
                log_addr: None,
            };
            if memory.has_grants() {
                // The vrings are mapped up front, so the table changes with them.
                let areas = [
                    (q.desc, 16 * n),
                    (q.driver, 6 + 2 * n),
                    (q.device, 6 + 8 * n),
                ];
                c.rings[i] = areas
                    .iter()
                    .map(|&(a, l)| (a, a.saturating_add(l)))
                    .collect();
                let rings: Vec<(u64, u64)> = c.rings.iter().flatten().copied().collect();
                let table = xen_mmap::entries_with_rings(memory, &rings);
                let need_reply = c.protocol.contains(VhostUserProtocolFeatures::REPLY_ACK);
                send_xen_table(&c.probe, memory, &table, need_reply)?;
            }
            let f = &mut c.frontend;
            f.set_vring_num(i, q.size)
                .map_err(protocol("SET_VRING_NUM"))?;
            f.set_vring_addr(i, &vring)
                .map_err(protocol("SET_VRING_ADDR"))?;
            f.set_vring_base(i, 0).map_err(protocol("SET_VRING_BASE"))?;
            f.set_vring_kick(i, &kicks[i])
                .map_err(protocol("SET_VRING_KICK"))?;
            f.set_vring_call(i, &calls[i])
                .map_err(protocol("SET_VRING_CALL"))?;
            if c.features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0 {
                f.set_vring_enable(i, true)
                    .map_err(protocol("SET_VRING_ENABLE"))?;
            }
            if !c.protocol.contains(VhostUserProtocolFeatures::REPLY_ACK) {
                // Without acknowledgements nothing says the daemon handled the
                // set-up before the guest kicks, and a daemon may consume and
                // drop a kick for a queue it has not enabled yet. It handles
                // messages in order, so a reply to GET_FEATURES says it has.
                f.get_features()
                    .map_err(protocol("GET_FEATURES (set-up barrier)"))?;
            }
            c.started[i] = true;
            Ok(())
        })?)
    }

    fn notify(&mut self, index: u16) -> Result<(), BackendError> {
        let i = self.queue(index)?;
        // The hot path: no message, so no watchdog; one poll and one write.
        if self.live()?.hung_up() {
            // A kick to a dead daemon would vanish; say so now instead.
            self.conn = None;
            self.broken = true;
            return Err(RelayError::Disconnected { op: "kick" }.into());
        }
        self.kicks[i].write(1).map_err(|source| {
            Box::new(RelayError::Eventfd {
                op: "kick a queue",
                source,
            }) as BackendError
        })
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        self.broken = false;
        // Stale notifications of the old queues must not reach the new ones.
        for e in self.kicks.iter().chain(&self.calls) {
            let _ = e.read();
        }
        let Some(mut c) = self.conn.take() else {
            return Ok(());
        };
        let probe = c.probe.clone();
        // The old vrings' pages stay mapped until the next activation sends a new table.
        c.rings.iter_mut().for_each(Vec::clear);
        let stopped = within(&probe, self.config.reply_timeout, || {
            for (i, started) in c.started.iter_mut().enumerate() {
                if std::mem::take(started) {
                    c.frontend
                        .get_vring_base(i)
                        .map_err(protocol("GET_VRING_BASE"))?;
                }
            }
            Ok(())
        });
        match stopped {
            Ok(()) => self.conn = Some(c),
            // The daemon is gone or confused: drop it; the next use connects again.
            Err(e) => log::info!("vhost-user: reset: {e}; reconnecting on next use"),
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), BackendError> {
        let hung_up = self.conn.as_ref().is_some_and(Connection::hung_up);
        if hung_up || self.broken {
            self.conn = None;
            self.broken = true;
            return Err(RelayError::Disconnected { op: "check" }.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::memory::SharedRegion;
    use crate::DeviceType;

    fn memory() -> SharedMemory {
        SharedMemory::new(vec![SharedRegion {
            guest_addr: 0,
            size: 0x1_0000,
            frontend_addr: 0x7f00_0000_0000,
            fd: std::fs::File::open("/dev/null").unwrap().into(),
            mapping: Mapping::File { offset: 0 },
        }])
        .unwrap()
    }

    fn config(socket: &Path) -> RelayConfig {
        let mut c = RelayConfig::new(socket, DeviceType::Rng.profile());
        c.connect_timeout = Duration::from_millis(100);
        c.reply_timeout = Duration::from_millis(100);
        c
    }

    fn temp_socket(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vhost-user-frontend-unit-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("sock")
    }

    /// A "daemon" that accepts connections and does `serve` with each one;
    /// returns how many it accepted so far.
    fn fake_daemon(socket: &Path, serve: impl Fn(UnixStream) + Send + 'static) -> Arc<AtomicUsize> {
        let listener = UnixListener::bind(socket).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { return };
                count.fetch_add(1, Ordering::SeqCst);
                serve(s);
            }
        });
        accepted
    }

    #[test]
    fn a_socket_nobody_listens_on_is_a_connect_error_after_the_timeout() {
        let socket = temp_socket("absent");
        let start = Instant::now();
        let err = VhostUserRelay::connect(config(&socket), memory()).unwrap_err();
        assert!(
            matches!(&err, RelayError::Connect { socket: s, .. } if *s == socket),
            "{err}"
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_daemon_that_never_answers_times_out_instead_of_hanging() {
        let socket = temp_socket("silent");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps each connection open, says nothing.
        fake_daemon(&socket, move |s| tx.send(s).unwrap());
        let start = Instant::now();
        let err = VhostUserRelay::connect(config(&socket), memory()).unwrap_err();
        assert!(
            matches!(err, RelayError::Timeout { timeout } if timeout == Duration::from_millis(100)),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(rx);
    }

    #[test]
    fn a_daemon_that_hangs_up_breaks_the_relay_until_a_reset_reconnects() {
        let socket = temp_socket("hangup");
        let accepted = fake_daemon(&socket, drop);
        let mut relay = VhostUserRelay::new(config(&socket), memory()).unwrap();
        assert!(!relay.is_connected(), "connects on first use");
        let err = relay.device_features().unwrap_err();
        let err = err.downcast::<RelayError>().unwrap();
        assert!(
            matches!(
                *err,
                RelayError::Disconnected { .. } | RelayError::Protocol { .. }
            ),
            "{err}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Broken until the driver resets: no new connection meanwhile.
        for e in [
            relay.device_features().unwrap_err(),
            relay.activate_queue(0, QueueConfig::default()).unwrap_err(),
            relay.notify(0).unwrap_err(),
            relay.check().unwrap_err(),
        ] {
            assert!(
                matches!(
                    e.downcast_ref::<RelayError>(),
                    Some(RelayError::NeedsReset | RelayError::Disconnected { .. })
                ),
                "{e}"
            );
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        relay.reset().unwrap();
        relay.check().unwrap();
        assert!(relay.device_features().is_err());
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "the reset reconnects");
    }

    /// A daemon speaking just enough vhost-user (no protocol features
    /// offered): answers GET_FEATURES, GET_PROTOCOL_FEATURES and
    /// GET_VRING_BASE, records every request and its body.
    fn speaking_daemon(socket: &Path, features: u64) -> std::sync::mpsc::Receiver<(u32, Vec<u8>)> {
        speaking_daemon_with(socket, features, 0)
    }

    /// [`speaking_daemon`] offering protocol features `protocol` (never REPLY_ACK: it
    /// answers only the requests that always have a reply).
    fn speaking_daemon_with(
        socket: &Path,
        features: u64,
        protocol: u64,
    ) -> std::sync::mpsc::Receiver<(u32, Vec<u8>)> {
        use std::io::{Read, Write};
        let (tx, rx) = std::sync::mpsc::channel();
        fake_daemon(socket, move |mut s| loop {
            let mut hdr = [0u8; 12];
            if s.read_exact(&mut hdr).is_err() {
                return;
            }
            let word = |i: usize| u32::from_le_bytes(hdr[i..i + 4].try_into().unwrap());
            let (req, size) = (word(0), word(8));
            let mut body = vec![0; size as usize];
            s.read_exact(&mut body).unwrap();
            let reply: Option<Vec<u8>> = match req {
                1 => Some(features.to_le_bytes().to_vec()),
                15 => Some(protocol.to_le_bytes().to_vec()),
                11 => Some([&body[..4], &7u32.to_le_bytes()[..]].concat()),
                _ => None,
            };
            if let Some(r) = reply {
                let mut msg = req.to_le_bytes().to_vec();
                msg.extend(5u32.to_le_bytes()); // version 1, reply
                msg.extend((r.len() as u32).to_le_bytes());
                msg.extend(r);
                s.write_all(&msg).unwrap();
            }
            let _ = tx.send((req, body));
        });
        rx
    }

    #[test]
    fn the_conversation_hides_vhost_bits_and_gives_vrings_by_frontend_address() {
        let socket = temp_socket("speaking");
        let offered = 1 << 32 | 1 << 30 | 1 << 26 | 1 << 3;
        let rx = speaking_daemon(&socket, offered);
        let mut relay = VhostUserRelay::connect(config(&socket), memory()).unwrap();
        assert_eq!(relay.device_features().unwrap(), 1 << 32 | 1 << 3);
        let mut cfg = [0xff; 4];
        relay.read_config(0, &mut cfg).unwrap();
        assert_eq!(cfg, [0; 4], "no CONFIG: zeros");
        relay.write_config(0, &[1]).unwrap();
        relay.set_features(1 << 32).unwrap();
        let q = QueueConfig {
            size: 16,
            desc: 0x1000,
            driver: 0x2000,
            device: 0x3000,
        };
        relay.activate_queue(0, q).unwrap();
        relay.notify(0).unwrap();
        assert_eq!(relay.eventfds().unwrap()[0].kick.read().unwrap(), 1);
        relay.reset().unwrap();
        assert!(relay.is_connected(), "a reset keeps a healthy connection");
        let msgs: Vec<(u32, Vec<u8>)> = rx.try_iter().collect();
        let reqs: Vec<u32> = msgs.iter().map(|m| m.0).collect();
        // SET_OWNER, GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_MEM_TABLE,
        // SET_FEATURES, SET_VRING_NUM/ADDR/BASE/KICK/CALL/ENABLE, GET_FEATURES
        // (the set-up barrier without REPLY_ACK), GET_VRING_BASE.
        assert_eq!(reqs, [3, 1, 15, 16, 5, 2, 8, 9, 10, 12, 13, 18, 1, 11]);
        let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        assert_eq!(
            u64_at(&msgs[5].1, 0),
            1 << 32 | 1 << 30,
            "bit 30 added back"
        );
        // Memory table: count, padding, then gpa, size, frontend address, offset.
        let table = &msgs[4].1;
        assert_eq!(u64_at(table, 8), 0);
        assert_eq!(u64_at(table, 16), 0x1_0000);
        assert_eq!(u64_at(table, 24), 0x7f00_0000_0000);
        // SET_VRING_ADDR: index, flags, then desc, used, avail, log.
        let addr = &msgs[7].1;
        assert_eq!(u64_at(addr, 8), 0x7f00_0000_1000, "descriptor table");
        assert_eq!(u64_at(addr, 16), 0x7f00_0000_3000, "used ring");
        assert_eq!(u64_at(addr, 24), 0x7f00_0000_2000, "available ring");
    }

    /// Acknowledges `features`, sets queue 0 up with its areas at `base` + 0x1000, 0x2000 and
    /// 0x3000, and returns every message the daemon got: the set-up ends with a GET_FEATURES
    /// round trip, so every earlier message has reached `rx`.
    fn set_up_queue(
        relay: &mut VhostUserRelay,
        rx: &std::sync::mpsc::Receiver<(u32, Vec<u8>)>,
        features: u64,
        base: u64,
    ) -> Vec<(u32, Vec<u8>)> {
        relay.set_features(features).unwrap();
        let q = QueueConfig {
            size: 16,
            desc: base | 0x1000,
            driver: base | 0x2000,
            device: base | 0x3000,
        };
        relay.activate_queue(0, q).unwrap();
        rx.try_iter().collect()
    }

    fn xen_memory() -> SharedMemory {
        SharedMemory::new(vec![SharedRegion {
            guest_addr: 0x4000_0000,
            size: 0x10_0000,
            frontend_addr: 0x4000_0000,
            fd: std::fs::File::open("/dev/null").unwrap().into(),
            mapping: Mapping::XenForeign { domid: 9 },
        }])
        .unwrap()
    }

    #[test]
    fn xen_memory_is_sent_in_the_xen_layout_once_xen_mmap_is_acknowledged() {
        let socket = temp_socket("xen");
        let xen_mmap = VhostUserProtocolFeatures::XEN_MMAP.bits();
        let rx = speaking_daemon_with(&socket, 1 << 32 | 1 << 30, xen_mmap);
        let mut relay = VhostUserRelay::connect(config(&socket), xen_memory()).unwrap();
        let msgs = set_up_queue(&mut relay, &rx, 1 << 32, 0x4000_0000);
        let reqs: Vec<u32> = msgs.iter().map(|m| m.0).collect();
        assert_eq!(&reqs[..5], [3, 1, 15, 16, 5]);
        let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        assert_eq!(u64_at(&msgs[3].1, 0), xen_mmap, "XEN_MMAP acknowledged");
        let table = &msgs[4].1;
        assert_eq!(table.len(), 8 + 40, "one 40-byte Xen entry");
        assert_eq!(u64_at(table, 8), 0x4000_0000);
        assert_eq!(
            u64_at(table, 24),
            0x4000_0000,
            "frontend address = guest address"
        );
        assert_eq!(u64_at(table, 32), 0, "mmap offset");
        assert_eq!(
            &table[40..48],
            &[1, 0, 0, 0, 9, 0, 0, 0],
            "FOREIGN, domid 9"
        );
        let addr = &msgs.iter().find(|m| m.0 == 9).unwrap().1;
        assert_eq!(u64_at(addr, 8), 0x4000_1000, "vrings by guest address");
    }

    #[test]
    fn grant_memory_shows_access_platform_and_hides_it_from_the_daemon() {
        let socket = temp_socket("grants");
        let xen_mmap = VhostUserProtocolFeatures::XEN_MMAP.bits();
        let rx = speaking_daemon_with(&socket, 1 << 32 | 1 << 30, xen_mmap);
        let memory = SharedMemory::new(vec![SharedRegion {
            guest_addr: 1 << 63,
            size: 0x800_0000,
            frontend_addr: 1 << 63,
            fd: std::fs::File::open("/dev/null").unwrap().into(),
            mapping: Mapping::XenGrant { domid: 9 },
        }])
        .unwrap();
        let mut relay = VhostUserRelay::connect(config(&socket), memory).unwrap();
        let offered = relay.device_features().unwrap();
        assert_eq!(offered, 1 << 32 | VIRTIO_F_ACCESS_PLATFORM);
        let msgs = set_up_queue(&mut relay, &rx, offered, 1 << 63);
        let set = &msgs.iter().find(|m| m.0 == 2).unwrap().1;
        assert_eq!(
            u64::from_le_bytes(set[..8].try_into().unwrap()),
            1 << 32 | 1 << 30,
            "the daemon acknowledges only what it offered"
        );
        let tables: Vec<&Vec<u8>> = msgs.iter().filter(|m| m.0 == 5).map(|m| &m.1).collect();
        assert_eq!(tables.len(), 2, "at connection, and with the queue");
        assert_eq!(
            &tables[0][40..48],
            &[0xa, 0, 0, 0, 9, 0, 0, 0],
            "GRANT | NO_ADVANCE_MAP"
        );
        // With the queue: its three areas' pages (0x1000..0x4000) mapped up front.
        let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let t = tables[1];
        assert_eq!(u64_at(t, 0), 3, "three entries");
        let entry = |k: usize| {
            let e = 8 + 40 * k;
            (u64_at(t, e), u64_at(t, e + 8), t[e + 32])
        };
        assert_eq!(entry(0), (1 << 63, 0x1000, 0xa));
        assert_eq!(entry(1), (1 << 63 | 0x1000, 0x3000, 0x2));
        assert_eq!(entry(2), (1 << 63 | 0x4000, 0x800_0000 - 0x4000, 0xa));
    }

    #[test]
    fn xen_memory_needs_a_daemon_built_for_xen() {
        let socket = temp_socket("notxen");
        let _rx = speaking_daemon_with(&socket, 1 << 32 | 1 << 30, 0);
        let err = VhostUserRelay::connect(config(&socket), xen_memory()).unwrap_err();
        assert!(matches!(err, RelayError::NoXenMmap), "{err}");
    }

    #[test]
    fn ordinary_memory_never_acknowledges_xen_mmap() {
        let socket = temp_socket("unixmem");
        let xen_mmap = VhostUserProtocolFeatures::XEN_MMAP.bits();
        let rx = speaking_daemon_with(&socket, 1 << 32 | 1 << 30, xen_mmap);
        let mut relay = VhostUserRelay::connect(config(&socket), memory()).unwrap();
        let msgs = set_up_queue(&mut relay, &rx, 1 << 32, 0);
        let set = msgs.iter().find(|m| m.0 == 16).unwrap();
        assert_eq!(
            set.1,
            0u64.to_le_bytes(),
            "nothing wanted, XEN_MMAP not acked"
        );
        let table = &msgs.iter().find(|m| m.0 == 5).unwrap().1;
        assert_eq!(table.len(), 8 + 32, "the usual 32-byte entry");
    }

    #[test]
    fn queues_past_the_device_are_refused_and_a_missing_daemon_breaks_config() {
        let socket = temp_socket("noconn");
        let mut relay = VhostUserRelay::new(config(&socket), memory()).unwrap();
        let e = relay.notify(1).unwrap_err();
        assert!(
            matches!(
                e.downcast_ref::<RelayError>(),
                Some(RelayError::NoQueue {
                    index: 1,
                    num_queues: 1
                })
            ),
            "{e}"
        );
        let e = relay.read_config(0, &mut [0; 4]).unwrap_err();
        assert!(
            matches!(
                e.downcast_ref::<RelayError>(),
                Some(RelayError::Connect { .. })
            ),
            "{e}"
        );
        assert_eq!(relay.eventfds().unwrap().len(), 1);
    }

    #[test]
    fn vring_areas_outside_shared_memory_are_refused() {
        let m = memory();
        assert_eq!(
            area(&m, 0, "descriptor table", 0x100, 0x100).unwrap(),
            0x7f00_0000_0100
        );
        assert!(matches!(
            area(&m, 0, "device area", 0xff00, 0x200),
            Err(RelayError::QueueOutsideMemory {
                area: "device area",
                addr: 0xff00,
                ..
            })
        ));
    }
}
