// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`XenVm`]: a domain served through an IOREQ server, foreign mappings and dm_op.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use vm_hypervisor::{
    Capability, DataMatch, Error, EventFd, IoEventAddress, IoSpace, IrqLine, MemoryRegion,
    MsiMessage, Result, Vm, VmId,
};
use xen_bindings::evtchn::EventChannel;
use xen_bindings::privcmd::Privcmd;
use xen_bindings::DomId;
use xen_ioreq::{BufIoreqMode, Interrupt, IoRange, IoreqServer, NotifyPath};

use super::memory::{guest_span, XenGuestMemory};
use super::vcpu::XenVcpu;
use super::xen_error;

/// Offset of the virtio-mmio `QueueNotify` register, the one register privcmd's ioeventfd
/// matches: an ioevent's address is a device's base plus this.
const QUEUE_NOTIFY: u64 = 0x50;

/// What a Xen device model offers, the same for every attached domain of this
/// architecture.
pub(crate) fn offers(cap: Capability) -> bool {
    let x86 = cfg!(target_arch = "x86_64");
    match cap {
        Capability::AttachVm
        | Capability::Irqchip
        // Both work whatever the dom0 kernel has: xen-ioreq serves irqfds and doorbells in
        // this process (inside `Vcpu::run`) when privcmd lacks IRQFD/IOEVENTFD.
        | Capability::Irqfd
        | Capability::Ioeventfd
        | Capability::ImmediateExit
        | Capability::MultipleVcpus => true,
        // An empty domain through the builder: PVH on x86, an Arm guest on Arm.
        Capability::CreateVm => x86 || cfg!(target_arch = "aarch64"),
        // dm_op has one operation per kind of line: ISA IRQs, PCI INTx and MSIs on x86,
        // interrupt levels (SPIs) on Arm; GSIs are the hypervisor's own business.
        Capability::IrqLineIsa | Capability::IrqLinePciIntx | Capability::SignalMsi => x86,
        Capability::IrqLineSpi => cfg!(target_arch = "aarch64"),
        _ => false,
    }
}

/// The dm_op interrupt of `line`, where this architecture has one.
fn interrupt(line: IrqLine) -> Result<Interrupt> {
    if !offers(line.capability()) {
        return Err(Error::Unsupported {
            capability: line.capability(),
        });
    }
    match line {
        IrqLine::Isa(irq) if irq < 16 => Ok(Interrupt::Isa(irq)),
        IrqLine::PciIntx {
            segment,
            bus,
            device,
            pin,
        } if device < 32 && pin < 4 => Ok(Interrupt::PciIntx {
            segment,
            bus,
            device,
            intx: pin,
        }),
        IrqLine::Spi(id) if (32..1020).contains(&id) => Ok(Interrupt::Line(id)),
        other => Err(Error::InvalidArgument {
            op: "set_irq_line",
            reason: format!("{other:?} is out of range"),
        }),
    }
}

/// A domain this process created, destroyed when dropped.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) type Owned = crate::builder::Domain<crate::builder::XenOps>;
/// No domain is created on other architectures.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) type Owned = std::convert::Infallible;

/// What a [`XenVm`] and its vCPUs share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) privcmd: Arc<Privcmd>,
    pub(crate) server: IoreqServer,
    pub(crate) memory: XenGuestMemory,
    pub(crate) domid: DomId,
    /// Whether a vCPU's run unpaused the domain this process created (the toolstack
    /// unpauses the domains it made).
    pub(crate) started: AtomicBool,
    /// The domain, if this process created it. Last, so that it is destroyed after the
    /// IOREQ server and the mappings are gone.
    pub(crate) owned: Option<Owned>,
}

/// A domain the toolstack made, served by this process (see the [`attach`](super) module).
///
/// Dropping it (and its vCPUs) destroys its IOREQ server; the domain lives on.
#[derive(Debug)]
pub struct XenVm {
    shared: Arc<Shared>,
    vcpus: Mutex<BTreeSet<u32>>,
    /// The duplicates xen-ioreq holds of the callers' irqfds, by the caller's descriptor and
    /// line: xen-ioreq finds an irqfd to remove by its `Arc`.
    irqfds: Mutex<Vec<(RawFd, IrqLine, Arc<EventFd>)>>,
}

impl XenVm {
    pub(crate) fn attach(privcmd: Arc<Privcmd>, id: VmId) -> Result<Self> {
        let domid = u16::try_from(id.0)
            .ok()
            .map(DomId::new)
            .filter(|d| !d.is_reserved())
            .ok_or_else(|| Error::InvalidArgument {
                op: "attach_vm",
                reason: format!("{id} is not a Xen domain id"),
            })?;
        let info = privcmd
            .domain_info(domid)
            .map_err(|e| xen_error("getdomaininfo", e))?;
        if info.dying() {
            return Err(Error::InvalidArgument {
                op: "attach_vm",
                reason: format!("domain {domid} is being destroyed"),
            });
        }
        Self::serve(privcmd, domid, guest_span(info.max_memory), None)
    }

    /// A new empty domain of `size` (see [`Xen::create_vm`](super::Xen)).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) fn create(privcmd: Arc<Privcmd>, size: super::VmSize) -> Result<Self> {
        use crate::builder::{self, XenOps};
        let ops = Arc::new(XenOps::open().map_err(|e| xen_error("open the domain builder", e))?);
        let name = format!("vm-hypervisor-{}", std::process::id());
        let domain =
            builder::create_empty(ops, &name, size.ram, size.vcpus).map_err(|e| match e {
                crate::Error::InvalidConfig { .. } => Error::InvalidArgument {
                    op: "create_vm",
                    reason: e.to_string(),
                },
                e => xen_error("create an empty domain", e),
            })?;
        let domid = domain.domid();
        // The builder lays RAM out as the toolstack does (`GuestLayout::native`).
        Self::serve(privcmd, domid, guest_span(size.ram), Some(domain))
    }

    /// Serves `domid` (whose RAM lies in `[0, span)`), owning it if `owned` is given.
    fn serve(privcmd: Arc<Privcmd>, domid: DomId, span: u64, owned: Option<Owned>) -> Result<Self> {
        let evtchn = EventChannel::open_nonblocking().map_err(|e| xen_error("open evtchn", e))?;
        // Only x86 Xen posts buffered writes (its emulated VGA, for one); on Arm the ring
        // would be a page that nothing uses.
        let buffered = if cfg!(target_arch = "x86_64") {
            BufIoreqMode::Atomic
        } else {
            BufIoreqMode::Off
        };
        let mut server = IoreqServer::create(privcmd.clone(), evtchn, domid, buffered)
            .map_err(|e| xen_error("create the IOREQ server", e))?;
        server
            .enable()
            .map_err(|e| xen_error("enable the IOREQ server", e))?;
        let memory = XenGuestMemory::new(domid, span)?;
        Ok(Self {
            shared: Arc::new(Shared {
                privcmd,
                server,
                memory,
                domid,
                started: AtomicBool::new(false),
                owned,
            }),
            vcpus: Mutex::new(BTreeSet::new()),
            irqfds: Mutex::default(),
        })
    }

    /// The domain's id.
    pub fn domid(&self) -> DomId {
        self.shared.domid
    }

    /// The IOREQ server, for what the traits do not cover (PCI config space, buffered-ring
    /// statistics, ...).
    pub fn ioreq_server(&self) -> &IoreqServer {
        &self.shared.server
    }

    fn io_range(op: &'static str, space: IoSpace, base: u64, len: u64) -> Result<IoRange> {
        let range = match space {
            IoSpace::Pio => u16::try_from(base)
                .ok()
                .zip(u16::try_from(len).ok())
                .and_then(|(b, l)| IoRange::ports(b, l)),
            IoSpace::Mmio => IoRange::mmio(base, len),
            _ => None,
        };
        range.ok_or_else(|| Error::InvalidArgument {
            op,
            reason: format!(
                "{space} range {base:#x}+{len:#x} is empty or out of the address space"
            ),
        })
    }

    /// Maps (`claim`) or unmaps a range to or from the IOREQ server.
    fn route_io(&self, claim: bool, space: IoSpace, base: u64, len: u64) -> Result<()> {
        let (op, dm_op) = if claim {
            ("claim_io_range", "map_io_range_to_ioreq_server")
        } else {
            ("release_io_range", "unmap_io_range_from_ioreq_server")
        };
        let range = Self::io_range(op, space, base, len)?;
        let server = &self.shared.server;
        let done = if claim {
            server.map_range(range)
        } else {
            server.unmap_range(range)
        };
        done.map_err(|e| xen_error(dm_op, e))
    }

    fn doorbell(addr: IoEventAddress, datamatch: DataMatch) -> Result<(u64, u32)> {
        match (addr, datamatch) {
            (IoEventAddress::Mmio(a), DataMatch::U32(vq)) if a >= QUEUE_NOTIFY => {
                Ok((a - QUEUE_NOTIFY, vq))
            }
            (IoEventAddress::Mmio(_), DataMatch::U32(_)) => Err(Error::InvalidArgument {
                op: "register_ioevent",
                reason: format!("{addr:?} is not a virtio-mmio QueueNotify register"),
            }),
            _ => Err(Error::Unsupported {
                capability: Capability::IoeventfdAny,
            }),
        }
    }
}

/// A duplicate of `fd` that xen-ioreq can keep.
fn keep(fd: &EventFd) -> Result<Arc<EventFd>> {
    fd.try_clone()
        .map(Arc::new)
        .map_err(|e| Error::hypervisor("dup the eventfd", e))
}

/// The error for undoing a registration that was not made.
fn not_registered(op: &'static str, what: String) -> Error {
    Error::InvalidArgument {
        op,
        reason: format!("{what} is not registered"),
    }
}

fn log_path(what: &str, domid: DomId, path: NotifyPath) {
    log::info!("domain {domid}: {what} served by {path:?}");
}

#[cfg(target_arch = "x86_64")]
impl vm_hypervisor::x86_64::VmX86_64 for XenVm {
    /// Nothing to do: the domain's emulated local APICs exist from its creation (a PVH
    /// domain has no PIC or IOAPIC; a toolstack's HVM domain has all three).
    fn create_irqchip(&self) -> Result<()> {
        Ok(())
    }

    /// Xen's PIT is emulated for HVM domains made with it, never added later.
    fn create_pit(&self) -> Result<()> {
        Err(Error::Unsupported {
            capability: Capability::Pit,
        })
    }
}

impl Vm for XenVm {
    type Vcpu = XenVcpu;
    type Memory = XenGuestMemory;

    fn check_capability(&self, cap: Capability) -> bool {
        offers(cap)
    }

    fn max_vcpu_id(&self) -> u32 {
        u32::try_from(self.shared.server.vcpus()).unwrap_or(u32::MAX)
    }

    fn create_vcpu(&self, id: u32) -> Result<XenVcpu> {
        let max_id = self.max_vcpu_id();
        if id >= max_id {
            return Err(Error::VcpuIdOutOfRange { id, max_id });
        }
        let mut ids = self.vcpus.lock().unwrap_or_else(|p| p.into_inner());
        if ids.contains(&id) {
            return Err(Error::VcpuIdInUse { id });
        }
        let vcpu = XenVcpu::new(self.shared.clone(), id);
        // A created domain's vCPUs are down until they have a state: give this one the
        // state of a CPU after RESET, as a new KVM vCPU has.
        #[cfg(target_arch = "x86_64")]
        if self.shared.owned.is_some() {
            vcpu.bring_up()?;
        }
        ids.insert(id);
        Ok(vcpu)
    }

    fn guest_memory(&self) -> XenGuestMemory {
        self.shared.memory.clone()
    }

    unsafe fn set_memory_region(&self, _region: MemoryRegion) -> Result<()> {
        Err(Error::Unsupported {
            capability: Capability::UserMemory,
        })
    }

    fn remove_memory_region(&self, guest_phys_addr: u64) -> Result<MemoryRegion> {
        Err(Error::NoMemoryRegion { guest_phys_addr })
    }

    fn memory_regions(&self) -> Vec<MemoryRegion> {
        Vec::new()
    }

    fn get_dirty_log(&self, _guest_phys_addr: u64) -> Result<Vec<u64>> {
        Err(Error::Unsupported {
            capability: Capability::DirtyLog,
        })
    }

    fn claim_io_range(&self, space: IoSpace, base: u64, len: u64) -> Result<()> {
        self.route_io(true, space, base, len)
    }

    fn release_io_range(&self, space: IoSpace, base: u64, len: u64) -> Result<()> {
        self.route_io(false, space, base, len)
    }

    fn set_irq_line(&self, line: IrqLine, level: bool) -> Result<()> {
        self.shared
            .server
            .set_irq(interrupt(line)?, level)
            .map_err(|e| xen_error("dm_op set irq level", e))
    }

    fn register_irqfd(&self, fd: &EventFd, line: IrqLine) -> Result<()> {
        let irq = interrupt(line)?;
        let kept = keep(fd)?;
        let mut irqfds = self.irqfds.lock().unwrap_or_else(|p| p.into_inner());
        let path = self
            .shared
            .server
            .add_irqfd(kept.clone(), irq)
            .map_err(|e| xen_error("irqfd", e))?;
        irqfds.push((fd.as_raw_fd(), line, kept));
        log_path("irqfd", self.shared.domid, path);
        Ok(())
    }

    fn unregister_irqfd(&self, fd: &EventFd, line: IrqLine) -> Result<()> {
        let mut irqfds = self.irqfds.lock().unwrap_or_else(|p| p.into_inner());
        let at = irqfds
            .iter()
            .position(|(f, l, _)| *f == fd.as_raw_fd() && *l == line)
            .ok_or_else(|| not_registered("unregister_irqfd", format!("an irqfd for {line:?}")))?;
        let (_, _, kept) = irqfds.remove(at);
        self.shared
            .server
            .remove_irqfd(&kept)
            .map_err(|e| xen_error("remove irqfd", e))
            .map(drop)
    }

    fn register_ioevent(
        &self,
        fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
    ) -> Result<()> {
        let (base, vq) = Self::doorbell(addr, datamatch)?;
        let path = self
            .shared
            .server
            .add_ioeventfd(base, 4, vq, keep(fd)?)
            .map_err(|e| xen_error("ioeventfd", e))?;
        log_path("ioeventfd", self.shared.domid, path);
        Ok(())
    }

    /// Removes the doorbell of `addr` and `datamatch`, whichever eventfd it signals (a
    /// virtio-mmio queue has one).
    fn unregister_ioevent(
        &self,
        _fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
    ) -> Result<()> {
        let (base, vq) = Self::doorbell(addr, datamatch)?;
        let removed = self
            .shared
            .server
            .remove_ioeventfd(base, vq)
            .map_err(|e| xen_error("remove ioeventfd", e))?;
        if removed {
            Ok(())
        } else {
            Err(not_registered(
                "unregister_ioevent",
                format!("queue {vq} of the device at {base:#x}"),
            ))
        }
    }

    fn signal_msi(&self, msi: MsiMessage) -> Result<bool> {
        if !offers(Capability::SignalMsi) {
            return Err(Error::Unsupported {
                capability: Capability::SignalMsi,
            });
        }
        self.shared
            .server
            .inject_msi(msi.address, msi.data)
            .map_err(|e| xen_error("dm_op inject_msi", e))?;
        // Xen does not say whether the guest took it.
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_map_to_their_dm_op_or_are_refused_by_capability() {
        let pci = IrqLine::PciIntx {
            segment: 0,
            bus: 0,
            device: 4,
            pin: 1,
        };
        // What each line becomes: the dm_op interrupt, or the error's kind.
        let outcome = |line| match interrupt(line) {
            Ok(irq) => Ok(irq),
            Err(Error::Unsupported { capability }) => Err(Some(capability)),
            Err(_) => Err(None),
        };
        let x86 = cfg!(target_arch = "x86_64");
        let cases = [
            (IrqLine::Isa(4), x86.then_some(Interrupt::Isa(4))),
            (
                pci,
                x86.then_some(Interrupt::PciIntx {
                    segment: 0,
                    bus: 0,
                    device: 4,
                    intx: 1,
                }),
            ),
            (IrqLine::Spi(40), (!x86).then_some(Interrupt::Line(40))),
        ];
        for (line, irq) in cases {
            match irq {
                Some(irq) => assert_eq!(outcome(line), Ok(irq), "{line:?}"),
                None => assert_eq!(outcome(line), Err(Some(line.capability())), "{line:?}"),
            }
        }
        // Out of range for the platform's numbering, where the kind is offered.
        let bad = if x86 {
            IrqLine::Isa(16)
        } else {
            IrqLine::Spi(20)
        };
        assert_eq!(outcome(bad), Err(None));
        assert_eq!(outcome(IrqLine::Gsi(4)), Err(Some(Capability::IrqLineGsi)));
    }

    #[test]
    fn only_queue_notify_doorbells_become_ioevents() {
        assert_eq!(
            XenVm::doorbell(IoEventAddress::Mmio(0x0a00_0050), DataMatch::U32(1)).unwrap(),
            (0x0a00_0000, 1)
        );
        assert!(matches!(
            XenVm::doorbell(IoEventAddress::Pio(0x510), DataMatch::U8(1)),
            Err(Error::Unsupported {
                capability: Capability::IoeventfdAny
            })
        ));
        assert!(matches!(
            XenVm::doorbell(IoEventAddress::Mmio(0x10), DataMatch::U32(0)),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn io_ranges_are_checked_before_xen_sees_them() {
        assert!(XenVm::io_range("t", IoSpace::Pio, 0x5e0, 8).is_ok());
        assert!(XenVm::io_range("t", IoSpace::Pio, 0xffff, 2).is_err());
        assert!(XenVm::io_range("t", IoSpace::Pio, 0x1_0000, 1).is_err());
        assert!(XenVm::io_range("t", IoSpace::Mmio, 0xfe00_0000, 0).is_err());
        assert!(XenVm::io_range("t", IoSpace::Mmio, u64::MAX, 2).is_err());
    }

    #[test]
    fn a_device_model_attaches_and_offers_no_user_memory() {
        assert!(offers(Capability::AttachVm));
        assert_eq!(
            offers(Capability::CreateVm),
            cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
        );
        assert!(!offers(Capability::IoExits), "run serves I/O inside");
        assert!(!offers(Capability::UserMemory));
        assert!(!offers(Capability::DirtyLog));
        assert!(!offers(Capability::IoeventfdAny));
    }
}
