// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`XenVcpu`]: a VMM's per-vCPU loop over an IOREQ server.
//!
//! Xen runs the domain's vCPUs itself; what a device model sees of one is its IOREQ slot.
//! [`Vcpu::run`] therefore runs an `xen-ioreq` event loop on the caller's bus: it serves
//! every request as it comes (and the userspace irqfds and doorbells, where the kernel has
//! none) and returns only when the caller must act: the domain shut down, crashed or went
//! away, or a stop was asked for. A VMM's loop `while !done(vcpu.run(&bus)?) {}` is the same
//! as on KVM.
//!
//! The domain's vCPUs share one event channel descriptor, so the loop of any vCPU may serve
//! any vCPU's request (which `xen-ioreq` makes safe: a request is taken by exactly one loop).
//! Give every vCPU the same bus.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vm_hypervisor::{DeviceBus, EventFd, Result, SystemEventKind, Vcpu, VcpuExit};
use xen_bindings::privcmd::DomainInfo;
use xen_ioreq::{Dispatcher, EventLoop, GuestMemoryRam};

use super::vm::Shared;
use super::xen_error;

/// How long a loop waits for requests before it looks at the domain's state again: Xen
/// tells a device model of a shutdown through xenstore and the toolstack, not through the
/// IOREQ server, so the loop asks (one getdomaininfo) this often while the guest is quiet.
const DOMAIN_CHECK: Duration = Duration::from_millis(200);

/// Shutdown codes of `XEN_DOMINF_SHUTDOWN` (Xen's `sched.h`): poweroff, reboot, crash.
const SHUTDOWN_POWEROFF: u32 = 0;
const SHUTDOWN_REBOOT: u32 = 1;

/// A stop asked for from any thread, and the loop to wake if one runs.
#[derive(Debug, Default)]
struct StopState {
    requested: bool,
    running: Option<Arc<EventFd>>,
}

#[derive(Debug, Default)]
struct Stop(Mutex<StopState>);

impl Stop {
    fn state(&self) -> MutexGuard<'_, StopState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the running or next [`Vcpu::run`] to return [`VcpuExit::Interrupted`].
    fn request(&self) {
        let mut s = self.state();
        s.requested = true;
        if let Some(fd) = &s.running {
            // A full counter still wakes the loop: the write can only fail with the
            // counter at its maximum, which is signalled already.
            let _ = fd.write(1);
        }
    }
}

/// Stops a [`XenVcpu`]'s [`run`](Vcpu::run) from another thread: the run under way, or the
/// next one, returns [`VcpuExit::Interrupted`] (what a signal with `immediate_exit` does on
/// KVM).
#[derive(Debug, Clone)]
pub struct VcpuStopper(Arc<Stop>);

impl VcpuStopper {
    /// Ask for the stop.
    pub fn stop(&self) {
        self.0.request();
    }
}

/// One vCPU of an attached domain: its [`run`](Vcpu::run) serves the domain's I/O requests
/// on the caller's bus (see the [`attach`](super) module).
#[derive(Debug)]
pub struct XenVcpu {
    shared: Arc<Shared>,
    id: u32,
    stop: Arc<Stop>,
    immediate_exit: bool,
}

impl XenVcpu {
    pub(crate) fn new(shared: Arc<Shared>, id: u32) -> Self {
        Self {
            shared,
            id,
            stop: Arc::default(),
            immediate_exit: false,
        }
    }

    /// A handle that stops [`run`](Vcpu::run) from another thread.
    pub fn stopper(&self) -> VcpuStopper {
        VcpuStopper(self.stop.clone())
    }

    /// The exit the domain's state calls for, if any.
    fn domain_exit(&self) -> Option<VcpuExit> {
        let info = self.shared.privcmd.domain_info(self.shared.domid);
        if let Err(e) = &info {
            log::info!("domain {}: getdomaininfo: {e}", self.shared.domid);
        }
        exit_for(info.ok().as_ref())
    }
}

/// The exit a domain in state `info` calls for (`None`: gone, or no longer to be asked), if
/// any.
fn exit_for(info: Option<&DomainInfo>) -> Option<VcpuExit> {
    let Some(info) = info else {
        return Some(VcpuExit::Shutdown);
    };
    if info.dying() {
        Some(VcpuExit::Shutdown)
    } else if info.crashed() {
        Some(VcpuExit::SystemEvent(SystemEventKind::Crash))
    } else if info.shutdown() {
        Some(VcpuExit::SystemEvent(match info.shutdown_code {
            SHUTDOWN_POWEROFF => SystemEventKind::Shutdown,
            SHUTDOWN_REBOOT => SystemEventKind::Reset,
            other => SystemEventKind::Other(other),
        }))
    } else {
        None
    }
}

/// Clears the running loop's stopper when the run ends, however it ends.
struct Running<'a>(&'a Stop);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.state().running = None;
    }
}

impl Vcpu for XenVcpu {
    fn id(&self) -> u32 {
        self.id
    }

    /// Serves the domain's I/O requests on `bus` until the domain shuts down
    /// ([`VcpuExit::SystemEvent`]), is destroyed ([`VcpuExit::Shutdown`]) or a stop is asked
    /// for ([`VcpuExit::Interrupted`]). Never returns [`VcpuExit::Io`]: requests are
    /// completed inside. A device's failure is logged and the guest gets all ones for a
    /// read, as `xen-ioreq` does.
    fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit> {
        if self.immediate_exit {
            return Ok(VcpuExit::Interrupted);
        }
        if let Some(exit) = self.domain_exit() {
            return Ok(exit);
        }
        let memory = self.shared.memory.clone();
        let invalidate = memory.clone();
        let ram = GuestMemoryRam::new(memory).on_invalidate(move || invalidate.invalidate());
        let dispatcher = Dispatcher::new(bus).with_guest_ram(ram);
        let mut event_loop = EventLoop::new(&self.shared.server, dispatcher)
            .map_err(|e| xen_error("start the IOREQ event loop", e))?;
        {
            let mut s = self.stop.state();
            if std::mem::take(&mut s.requested) {
                return Ok(VcpuExit::Interrupted);
            }
            s.running = Some(event_loop.stopper());
        }
        let _running = Running(&self.stop);
        let timeout_ms = i32::try_from(DOMAIN_CHECK.as_millis()).unwrap_or(i32::MAX);
        let mut checked = Instant::now();
        loop {
            let turn = event_loop
                .run_once(timeout_ms)
                .map_err(|e| xen_error("serve IOREQs", e))?;
            if turn.stopped {
                self.stop.state().requested = false;
                return Ok(VcpuExit::Interrupted);
            }
            // Looked at on a timer rather than only when idle, so that a guest that keeps
            // the server busy cannot hide its own shutdown.
            if checked.elapsed() >= DOMAIN_CHECK {
                checked = Instant::now();
                if let Some(exit) = self.domain_exit() {
                    return Ok(exit);
                }
            }
        }
    }

    fn set_immediate_exit(&mut self, exit: bool) {
        self.immediate_exit = exit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_bindings::privcmd::DomainFlags;

    fn state(flags: DomainFlags, shutdown_code: u32) -> DomainInfo {
        DomainInfo {
            domid: 3,
            flags,
            shutdown_code,
            memory: 0,
            max_memory: 0,
            online_vcpus: 1,
            max_vcpu_id: Some(0),
            cpu_time_ns: 0,
            handle: [0; 16],
            cpupool: 0,
        }
    }

    #[test]
    fn the_domains_state_decides_what_run_returns() {
        let shut = |code: u32| state(DomainFlags::SHUTDOWN, code);
        assert_eq!(
            exit_for(Some(&state(DomainFlags::empty(), 0))),
            None,
            "running: keep serving"
        );
        assert_eq!(exit_for(None), Some(VcpuExit::Shutdown), "gone");
        assert_eq!(
            exit_for(Some(&state(DomainFlags::DYING, 0))),
            Some(VcpuExit::Shutdown)
        );
        for (code, kind) in [
            (0, SystemEventKind::Shutdown),
            (1, SystemEventKind::Reset),
            (3, SystemEventKind::Crash),
            (4, SystemEventKind::Other(4)),
        ] {
            assert_eq!(
                exit_for(Some(&shut(code))),
                Some(VcpuExit::SystemEvent(kind)),
                "shutdown code {code}"
            );
        }
    }

    #[test]
    fn a_stop_before_the_run_is_kept_for_it_and_wakes_a_running_loop() {
        let stop = Stop::default();
        stop.request();
        assert!(stop.state().requested);
        let fd = Arc::new(EventFd::new(0).unwrap());
        {
            let mut s = stop.state();
            s.requested = false;
            s.running = Some(fd.clone());
        }
        stop.request();
        assert_eq!(
            fd.read().unwrap(),
            1,
            "the running loop's stopper was written"
        );
        drop(Running(&stop));
        assert!(stop.state().running.is_none());
    }
}
