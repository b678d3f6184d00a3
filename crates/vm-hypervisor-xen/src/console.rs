// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The console of a built domain, read from its ring.
//!
//! The builder gives the guest a console page (`struct xencons_interface`) and an event
//! channel. [`Console`] maps the page, binds the channel from dom0, and consumes what the guest
//! writes: it reads `out[out_cons..out_prod]`, publishes the new `out_cons` and notifies the
//! guest that there is room again. It waits on the event channel, with a deadline, never by
//! sleeping.
//!
//! A guest that crashes or shuts down writes nothing more, so a wait for its output would
//! last until its deadline. The reader also watches xenstore's `@releaseDomain`, which
//! xenstored fires whenever a domain shuts down, crashes or goes away, and then asks Xen
//! whether this domain still runs: [`Console::wait_for`] fails at once with
//! [`Error::DomainStopped`] when it does not.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xen_bindings::abi::xen::console::{XenconsInterface, XENCONS_OUT_SIZE};
use xen_bindings::evtchn::{BoundPort, EventChannel};
use xen_bindings::xenstore::Xenstore;
use xen_bindings::DomId;

use crate::builder::ops::{DomainOps, DomainState, MappedPages};
use crate::builder::{Domain, RingRef};
use crate::error::{Error, Result};

/// The token of the console reader's `@releaseDomain` watch.
const RELEASE_TOKEN: &str = "console-release";

/// A domain's console ring, mapped and bound.
pub struct Console {
    domid: DomId,
    page: Box<dyn MappedPages>,
    // Declared before the channel it was bound through, so that it unbinds first.
    port: BoundPort,
    evtchn: EventChannel,
    // Watches `@releaseDomain`, to notice that the domain stopped (see the module docs).
    xs: Xenstore,
    ops: Arc<dyn DomainOps>,
    output: Vec<u8>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("domid", &self.domid)
            .field("port", &self.port)
            .field("output_len", &self.output.len())
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Attaches to the console of `dom` (which must have been built with
    /// [`crate::builder::ConsoleBackend::Builder`], or two readers would share the ring).
    pub fn attach<O: DomainOps + 'static>(dom: &Domain<O>) -> Result<Self> {
        let rings = dom.rings();
        Self::attach_ring(
            dom,
            RingRef {
                gfn: rings.console_gfn,
                port: rings.console_port,
            },
        )
    }

    /// Attaches to the virtual UART of `dom` (an Arm guest built with
    /// [`PvhConfig::vuart`](crate::builder::PvhConfig::vuart) and
    /// [`crate::builder::ConsoleBackend::Builder`]): what the guest writes to its `ttyAMA0`.
    /// A domain without one is an [`Error::InvalidConfig`].
    ///
    /// Linux writes its kernel log to the PV console too, whatever `console=` says: read that
    /// ring as well ([`Console::attach`]), or the guest stalls once it is full.
    pub fn attach_vuart<O: DomainOps + 'static>(dom: &Domain<O>) -> Result<Self> {
        let ring = dom.rings().vuart.ok_or(Error::InvalidConfig {
            what: "vuart",
            value: "false".into(),
            reason: "the domain was built without a virtual UART",
        })?;
        Self::attach_ring(dom, ring)
    }

    /// Maps `ring` (a `xencons_interface` page) of `dom` and binds its event channel.
    fn attach_ring<O: DomainOps + 'static>(dom: &Domain<O>, ring: RingRef) -> Result<Self> {
        let page = dom.ops().map_guest(dom.domid(), &[ring.gfn])?;
        assert!(page.len() >= std::mem::size_of::<XenconsInterface>());
        let evtchn = EventChannel::open().map_err(|source| Error::Evtchn {
            step: "opening /dev/xen/evtchn for the console",
            source,
        })?;
        let port = evtchn
            .bind_interdomain(dom.domid(), ring.port)
            .map_err(|source| Error::Evtchn {
                step: "binding the console event channel",
                source,
            })?;
        let xs = Xenstore::open()
            .and_then(|mut xs| xs.watch("@releaseDomain", RELEASE_TOKEN).map(|()| xs))
            .map_err(|source| Error::Xenstore {
                step: "watching @releaseDomain for the console",
                source,
            })?;
        let ops: Arc<dyn DomainOps> = dom.ops().clone();
        Ok(Self {
            domid: dom.domid(),
            page,
            port,
            evtchn,
            xs,
            ops,
            output: Vec::new(),
        })
    }

    /// Everything read so far.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Moves what the guest wrote into [`Self::output`]; returns how many bytes were new.
    pub fn drain(&mut self) -> Result<usize> {
        let ring = self.page.as_ptr().cast::<XenconsInterface>();
        // SAFETY: the page is mapped for the life of `self` and holds a xencons_interface
        // (checked size). The guest writes it concurrently, so every access is volatile and
        // bytes are copied out, never referenced; the fences order index and data accesses as
        // the ring protocol requires (read prod, then data; data read before cons is published).
        let n = unsafe {
            let cons = std::ptr::addr_of!((*ring).out_cons).read_volatile();
            let prod = std::ptr::addr_of!((*ring).out_prod).read_volatile();
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let n = prod.wrapping_sub(cons) as usize;
            // A guest cannot have more than a ring's worth outstanding; more is a corrupt index.
            let n = n.min(XENCONS_OUT_SIZE);
            let out = std::ptr::addr_of!((*ring).out).cast::<u8>();
            for i in 0..n {
                let idx = (cons.wrapping_add(i as u32) as usize) % XENCONS_OUT_SIZE;
                self.output.push(out.add(idx).read_volatile());
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            std::ptr::addr_of_mut!((*ring).out_cons).write_volatile(cons.wrapping_add(n as u32));
            n
        };
        if n > 0 {
            self.port.notify().map_err(|source| Error::Evtchn {
                step: "notifying the console",
                source,
            })?;
        }
        Ok(n)
    }

    /// Reads the console until `marker` appears or `timeout` passes; returns the output read
    /// so far (all of it, not just the marker). Fails early with [`Error::DomainStopped`]
    /// when the domain crashes, shuts down or is destroyed first.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain()?;
            if contains(&self.output, marker.as_bytes()) {
                return Ok(String::from_utf8_lossy(&self.output).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::ConsoleTimeout {
                    domid: self.domid,
                    marker: marker.into(),
                    after: timeout,
                    tail: self.tail(),
                });
            }
            let (console, release) = self.wait_readable(left)?;
            if console {
                self.rearm()?;
            }
            if release && self.release_fired()? {
                let state = self.ops.domain_state(self.domid)?;
                if state != DomainState::Alive {
                    // What the guest wrote before it stopped says why (a crash's oops).
                    self.drain()?;
                    return Err(Error::DomainStopped {
                        domid: self.domid,
                        state,
                        marker: marker.into(),
                        tail: self.tail(),
                    });
                }
            }
        }
    }

    /// The last 400 characters of the output.
    fn tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.output);
        let skip = text.chars().count().saturating_sub(400);
        text.chars().skip(skip).collect()
    }

    /// Re-arms the console port if its event is pending.
    fn rearm(&mut self) -> Result<()> {
        let fired = self.evtchn.pending().map_err(|source| Error::Evtchn {
            step: "reading the console event channel",
            source,
        })?;
        if let Some(port) = fired {
            self.evtchn.unmask(port).map_err(|source| Error::Evtchn {
                step: "re-arming the console event channel",
                source,
            })?;
        }
        Ok(())
    }

    /// Takes the watch events that arrived; whether `@releaseDomain` was among them.
    fn release_fired(&mut self) -> Result<bool> {
        let mut fired = false;
        while let Some(ev) =
            self.xs
                .wait_event(Some(Duration::ZERO))
                .map_err(|source| Error::Xenstore {
                    step: "reading the console's @releaseDomain watch",
                    source,
                })?
        {
            fired |= ev.token == RELEASE_TOKEN;
        }
        Ok(fired)
    }

    /// Waits at most `left` until the console port or the xenstore watch has something:
    /// `(console, watch)`.
    fn wait_readable(&mut self, left: Duration) -> Result<(bool, bool)> {
        if self.xs.has_buffered_event() {
            return Ok((false, true));
        }
        // A transport without a descriptor (none of xen-bindings' own) is not watched.
        let [console, watch] =
            xen_bindings::poll::readable([Some(self.evtchn.as_fd()), self.xs.fd()], Some(left))
                .map_err(|source| Error::Evtchn {
                    step: "waiting for console output",
                    source: xen_bindings::evtchn::Error::Poll(source),
                })?;
        Ok((console, watch))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #[test]
    fn contains_finds_the_marker_anywhere() {
        assert!(super::contains(
            b"abc XEN-BOX-DOMU: up def",
            b"XEN-BOX-DOMU: up"
        ));
        assert!(!super::contains(b"XEN-BOX", b"XEN-BOX-DOMU"));
    }
}
