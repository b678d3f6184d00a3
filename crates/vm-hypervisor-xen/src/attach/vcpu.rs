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
//!
//! A domain this process created ([`Hypervisor::create_vm`](vm_hypervisor::Hypervisor)) stays
//! paused until the first `run` of any of its vCPUs unpauses it. Guests end with `HLT`: Xen
//! takes down an HVM vCPU that halts with interrupts off (there is nothing left to wake it)
//! and powers the domain off once all its vCPUs are down (`hvm_hlt` and `hvm_vcpu_down` in
//! xen/arch/x86/hvm/hvm.c). `run` reports that poweroff, with this vCPU down (it has no CPU
//! record in the domain's HVM context any more), as [`VcpuExit::Hlt`], what KVM reports for
//! the same guest; a poweroff the guest asked for (`SCHEDOP_shutdown`, vCPUs still up) stays
//! [`SystemEventKind::Shutdown`]. Registers ([`VcpuX86_64`](vm_hypervisor::x86_64::VcpuX86_64))
//! go through the HVM context; see the `regs` module.

use std::sync::atomic::Ordering;
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
    pub(super) shared: Arc<Shared>,
    pub(super) id: u32,
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
        let exit = exit_for(info.ok().as_ref());
        if exit == Some(VcpuExit::SystemEvent(SystemEventKind::Shutdown)) && self.is_down() {
            return Some(VcpuExit::Hlt);
        }
        exit
    }

    /// Whether this vCPU is down: it has no CPU record in the domain's context.
    #[cfg(target_arch = "x86_64")]
    fn is_down(&self) -> bool {
        match self.shared.privcmd.hvm_context(self.shared.domid) {
            Ok(ctx) => super::regs::cpu_of(&ctx, self.vcpu_index()).is_none(),
            Err(e) => {
                log::info!("domain {}: gethvmcontext: {e}", self.shared.domid);
                false
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn is_down(&self) -> bool {
        false
    }

    /// The id as the HVM context numbers instances (`create_vcpu` checked it against the
    /// domain's vCPU count, which Xen keeps far below 2^16).
    #[cfg(target_arch = "x86_64")]
    fn vcpu_index(&self) -> u16 {
        u16::try_from(self.id).unwrap_or(u16::MAX)
    }

    /// Unpauses a domain this process created, once.
    fn start(&self) -> Result<()> {
        if self.shared.owned.is_none() || self.shared.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.clean_ram()
            .and_then(|()| {
                self.shared
                    .privcmd
                    .unpause_domain(self.shared.domid)
                    .map_err(|e| xen_error("unpause the domain", e))
            })
            .inspect_err(|_| self.shared.started.store(false, Ordering::Release))
    }

    /// Cleans the data cache over the created domain's RAM to memory before it first runs:
    /// an Arm guest starts with its MMU, and so its data cache, off, and must find what the
    /// VMM wrote through its cacheable mappings (what KVM does for a VMM when it maps a page
    /// into a guest, and Xen's toolstack over what it loaded).
    #[cfg(target_arch = "aarch64")]
    fn clean_ram(&self) -> Result<()> {
        use crate::builder::memory::PAGE;
        // The RAM is what the banks hold below the memory's span (bank 0, then bank 1).
        let span = self.shared.memory.span();
        for bank in xen_bindings::layout::GuestLayout::Arm.ram_ranges(u64::MAX) {
            let end = span.min(bank.end());
            if end > bank.start {
                self.shared
                    .privcmd
                    .cache_flush(
                        self.shared.domid,
                        bank.start / PAGE,
                        (end - bank.start) / PAGE,
                    )
                    .map_err(|e| xen_error("clean the guest's RAM to memory", e))?;
            }
        }
        Ok(())
    }

    /// x86 keeps caches coherent with the guest's view.
    #[cfg(not(target_arch = "aarch64"))]
    fn clean_ram(&self) -> Result<()> {
        Ok(())
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
        // Unpaused with the loop ready: a request sent at once finds it listening.
        self.start()?;
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use vm_hypervisor::x86_64::{
        CpuidEntry, FpuState, MsrEntry, SpecialRegisters, StandardRegisters, VcpuX86_64,
    };
    use vm_hypervisor::{Capability, Error, Result};
    use xen_bindings::abi::xen::hvm_save::HvmHwCpu;

    use super::super::regs;
    use super::super::xen_error;
    use super::XenVcpu;

    impl XenVcpu {
        fn context(&self) -> Result<Vec<u8>> {
            self.shared
                .privcmd
                .hvm_context(self.shared.domid)
                .map_err(|e| xen_error("gethvmcontext", e))
        }

        fn down(&self, op: &'static str) -> Error {
            Error::InvalidArgument {
                op,
                reason: format!(
                    "vCPU {} of domain {} is down (not started, or halted with interrupts off)",
                    self.id, self.shared.domid
                ),
            }
        }

        /// This vCPU's CPU record, and the context it came from.
        fn cpu(&self, op: &'static str) -> Result<(HvmHwCpu, Vec<u8>)> {
            let ctx = self.context()?;
            let cpu = regs::cpu_of(&ctx, self.vcpu_index()).ok_or_else(|| self.down(op))?;
            Ok((cpu, ctx))
        }

        /// Loads `cpu` as this vCPU's record, keeping the other vCPUs that are up.
        fn load(&self, ctx: &[u8], cpu: &HvmHwCpu) -> Result<()> {
            let records = regs::with_cpu(ctx, self.vcpu_index(), cpu).ok_or_else(|| {
                Error::hypervisor(
                    "gethvmcontext",
                    std::io::Error::other("the domain's context has no header record"),
                )
            })?;
            self.shared
                .privcmd
                .set_hvm_context(self.shared.domid, &records)
                .map_err(|e| xen_error("sethvmcontext", e))
        }

        /// Changes this vCPU's CPU record with `f`.
        fn update<R>(&self, op: &'static str, f: impl FnOnce(&mut HvmHwCpu) -> R) -> Result<R> {
            let (mut cpu, ctx) = self.cpu(op)?;
            let r = f(&mut cpu);
            self.load(&ctx, &cpu)?;
            Ok(r)
        }

        /// Gives a vCPU that is down the state of a CPU after RESET.
        pub(crate) fn bring_up(&self) -> Result<()> {
            let ctx = self.context()?;
            if regs::cpu_of(&ctx, self.vcpu_index()).is_none() {
                self.load(&ctx, &regs::reset_cpu())?;
            }
            Ok(())
        }
    }

    /// Register state through the domain's HVM context (see the `regs` module): reads
    /// take the context, writes load it back. A vCPU that is down has no state to read or
    /// change.
    impl VcpuX86_64 for XenVcpu {
        fn get_regs(&self) -> Result<StandardRegisters> {
            Ok(regs::regs(&self.cpu("get_regs")?.0))
        }

        fn set_regs(&self, r: &StandardRegisters) -> Result<()> {
            self.update("set_regs", |cpu| regs::set_regs(cpu, r))
        }

        fn get_sregs(&self) -> Result<SpecialRegisters> {
            let (cpu, ctx) = self.cpu("get_sregs")?;
            Ok(regs::sregs(&cpu, regs::apic_of(&ctx, self.vcpu_index())))
        }

        /// Refuses to change the APIC base or CR8, which Xen keeps in the LAPIC records.
        fn set_sregs(&self, s: &SpecialRegisters) -> Result<()> {
            let (mut cpu, ctx) = self.cpu("set_sregs")?;
            let (apic_base, cr8) = regs::apic_of(&ctx, self.vcpu_index());
            if (s.apic_base, s.cr8) != (apic_base, cr8) {
                return Err(Error::InvalidArgument {
                    op: "set_sregs",
                    reason: format!(
                        "apic_base {:#x} and cr8 {:#x} differ from the LAPIC's {apic_base:#x} \
                         and {cr8:#x}, which this backend does not write",
                        s.apic_base, s.cr8
                    ),
                });
            }
            regs::set_sregs(&mut cpu, s);
            self.load(&ctx, &cpu)
        }

        fn get_fpu(&self) -> Result<FpuState> {
            Ok(regs::fpu(&self.cpu("get_fpu")?.0))
        }

        fn set_fpu(&self, fpu: &FpuState) -> Result<()> {
            self.update("set_fpu", |cpu| regs::set_fpu(cpu, fpu))
        }

        /// The MSRs the CPU record carries: TSC, SYSENTER_*, EFER, STAR, LSTAR, CSTAR,
        /// SFMASK, KERNEL_GS_BASE, TSC_AUX; stops at the first other one.
        fn get_msrs(&self, msrs: &mut [MsrEntry]) -> Result<usize> {
            let (mut cpu, _) = self.cpu("get_msrs")?;
            Ok(regs::get_msrs(&mut cpu, msrs))
        }

        /// As [`get_msrs`](Self::get_msrs).
        fn set_msrs(&self, msrs: &[MsrEntry]) -> Result<usize> {
            self.update("set_msrs", |cpu| regs::set_msrs(cpu, msrs))
        }

        /// Xen's CPUID is the domain's CPU policy, which this backend does not drive.
        fn set_cpuid(&self, _entries: &[CpuidEntry]) -> Result<()> {
            Err(Error::Unsupported {
                capability: Capability::SetCpuid,
            })
        }

        /// As [`set_cpuid`](Self::set_cpuid).
        fn get_cpuid(&self) -> Result<Vec<CpuidEntry>> {
            Err(Error::Unsupported {
                capability: Capability::SetCpuid,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_bindings::privcmd::DomainFlags;
    use xen_bindings::DomId;

    fn state(flags: DomainFlags, shutdown_code: u32) -> DomainInfo {
        DomainInfo {
            domid: DomId::new(3),
            flags,
            shutdown_code,
            memory: 0,
            max_memory: 0,
            online_vcpus: 1,
            max_vcpu_id: Some(0),
            cpu_time_ns: 0,
            handle: [0; 16],
            cpupool: 0,
            gpaddr_bits: 40,
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
