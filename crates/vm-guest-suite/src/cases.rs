// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The test cases, each generic over the backend.
//!
//! Every case builds its own [`Machine`], runs one guest from
//! [`crate::code`] and checks from the host side what the devices saw and
//! what the guest reported back on [`REPORT_PORT`].

use std::sync::{Arc, Mutex};
use vm_hypervisor::x86_64::{
    CpuidEntry, FpuState, HypervisorX86_64, MsrEntry, StandardRegisters, VcpuX86_64, VmX86_64,
};
use vm_hypervisor::{
    BusError, Capability, DataMatch, DeviceBus, Error, EventFd, Hypervisor, IoAccess,
    IoEventAddress, IoSpace, IrqLine, MemoryRegion, MemoryRegionFlags, MsiMessage, Vcpu, VcpuExit,
    Vm, VmId,
};

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};

use crate::code;
use crate::devices::Access;
use crate::layout::*;
use crate::machine::Machine;
use crate::{check, Outcome, SuiteError};

/// Exits any test guest needs at most.
const MAX_EXITS: usize = 64;

fn pio_out(port: u16, size: u8) -> IoAccess {
    IoAccess {
        space: IoSpace::Pio,
        addr: port.into(),
        size,
        write: true,
    }
}

/// The exits `run` returned, checked where it returns per access
/// ([`Capability::IoExits`]); elsewhere the device logs say it all.
fn check_exits<H: HypervisorX86_64>(
    m: &Machine<H>,
    expected: Vec<IoAccess>,
    exits: Vec<IoAccess>,
) -> Result<(), SuiteError> {
    if m.io_exits() {
        check("exits", expected, exits)
    } else {
        check("exits", Vec::<IoAccess>::new(), exits)
    }
}

/// A skip naming the first of `caps` the backend lacks, and why the case
/// needs it (`needs`), if any is lacking.
fn missing<H: Hypervisor>(hv: &H, caps: &[Capability], needs: &str) -> Option<Outcome> {
    caps.iter()
        .find(|c| !hv.check_capability(**c))
        .map(|c| Outcome::Skipped(format!("{} lacks {c:?}; {needs}", hv.name())))
}

/// Real mode: `out`, `in`, 2-byte MMIO write and read, `hlt`.
pub fn real_mode_pio_mmio<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    let mut m = Machine::new(hv, false)?;
    m.real_mode(code::REAL_PIO_MMIO)?;
    let exits = m.run_to_halt(MAX_EXITS)?;
    let mmio = |addr, write| IoAccess {
        space: IoSpace::Mmio,
        addr,
        size: 2,
        write,
    };
    check_exits(
        &m,
        vec![
            pio_out(REPORT_PORT, 1),
            IoAccess {
                write: false,
                ..pio_out(DATA_PORT, 1)
            },
            pio_out(REPORT_PORT, 1),
            mmio(MMIO_BASE + 0x10, true),
            mmio(MMIO_BASE + 0x20, false),
            pio_out(REPORT_PORT, 2),
        ],
        exits,
    )?;
    check(
        "port device log",
        vec![
            Access::write(0, &[0x11]),
            Access::read(1, 1),
            // The guest reports the byte it read.
            Access::write(0, &[0x08]),
            // ... and the word it read over MMIO.
            Access::write(0, &[0x08, 0x07]),
        ],
        m.pio.log(),
    )?;
    check(
        "MMIO device log",
        vec![Access::write(0x10, &[0xef, 0xbe]), Access::read(0x20, 2)],
        m.mmio.log(),
    )?;
    Ok(Outcome::Passed)
}

/// Real mode: `rep outsb` and `rep insb` reach the device one element at a
/// time, and the input lands in guest memory.
pub fn string_io<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    let mut m = Machine::new(hv, false)?;
    m.load(STRING_SRC_ADDR, b"abcd")?;
    m.real_mode(code::REAL_STRING_IO)?;
    let exits = m.run_to_halt(MAX_EXITS)?;
    if m.io_exits()
        && (exits.is_empty() || exits.iter().any(|a| a.space != IoSpace::Pio || a.size != 1))
    {
        return Err(SuiteError::mismatch("exits", "1-byte port accesses", exits));
    }
    let one = |offset: u64, byte: u8, write: bool| Access {
        offset,
        write,
        data: vec![byte],
    };
    check(
        "port device log",
        vec![
            one(0, b'a', true),
            one(0, b'b', true),
            one(0, b'c', true),
            one(0, b'd', true),
            one(1, 0x08, false),
            one(1, 0x08, false),
            one(1, 0x08, false),
        ],
        m.pio.log(),
    )?;
    check(
        "bytes read into guest memory",
        u32::from_le_bytes([0x08, 0x08, 0x08, 0]),
        m.read_u32(STRING_DST_ADDR)?,
    )?;
    Ok(Outcome::Passed)
}

/// Flat 32-bit protected mode: read-only memory (reads from memory,
/// writes to the bus), dirty logging, 4-byte MMIO.
pub fn protected_mode_memory<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    if let Some(skip) = missing(
        hv,
        &[Capability::ReadonlyMemory, Capability::DirtyLog],
        "the case reads VMM memory mapped read-only and the dirty log of VMM memory",
    ) {
        return Ok(skip);
    }
    let mut m = Machine::new(hv, false)?;
    m.protected_mode(code::PROT_MEMORY)?;
    m.run_to_halt(MAX_EXITS)?;
    check(
        "reports",
        vec![
            Access::write(0, &ROM_VALUE.to_le_bytes()),
            Access::write(0, &0x0506_0708u32.to_le_bytes()),
        ],
        m.pio.writes(),
    )?;
    check(
        "writes to read-only memory",
        vec![Access::write(0, &0x1122_3344u32.to_le_bytes())],
        m.rom.log(),
    )?;
    check(
        "read-only memory after the guest",
        ROM_VALUE,
        m.read_u32(ROM_BASE)?,
    )?;
    check(
        "MMIO device log",
        vec![
            Access::write(0, &0xdead_beefu32.to_le_bytes()),
            Access::read(8, 4),
        ],
        m.mmio.log(),
    )?;
    check(
        "dirty-logged memory",
        0x5566_7788,
        m.read_u32(DIRTY_BASE + 0x1000)?,
    )?;
    // What devices see of the guest's memory through the VM (vm-memory), not
    // through the VMM's own mapping of it.
    check(
        "dirty-logged memory through Vm::guest_memory",
        Ok(0x5566_7788u32),
        m.vm.guest_memory()
            .memory()
            .read_obj::<u32>(GuestAddress(DIRTY_BASE + 0x1000))
            .map_err(|e| e.to_string()),
    )?;
    check(
        "dirty bitmap",
        vec![0b10u64],
        m.vm.get_dirty_log(DIRTY_BASE)?,
    )?;
    check(
        "dirty bitmap after reading it",
        vec![0u64],
        m.vm.get_dirty_log(DIRTY_BASE)?,
    )?;
    Ok(Outcome::Passed)
}

/// 64-bit long mode: port writes of 1 and 4 bytes, 8-byte MMIO write and
/// read, a dirty-logged write.
pub fn long_mode_pio_mmio<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    let mut m = Machine::new(hv, false)?;
    m.long_mode(code::LONG_PIO_MMIO)?;
    m.run_to_halt(MAX_EXITS)?;
    check(
        "reports",
        vec![
            Access::write(0, &[0x64]),
            Access::write(0, &[0x64, 0, 0, 0]),
            Access::write(0, &0x0506_0708u32.to_le_bytes()),
            Access::write(0, &0x0102_0304u32.to_le_bytes()),
        ],
        m.pio.writes(),
    )?;
    check(
        "MMIO device log",
        vec![
            Access::write(0, &0x1122_3344_5566_7788u64.to_le_bytes()),
            Access::read(8, 8),
        ],
        m.mmio.log(),
    )?;
    if hv.check_capability(Capability::DirtyLog) {
        check(
            "dirty bitmap",
            vec![0b100u64],
            m.vm.get_dirty_log(DIRTY_BASE)?,
        )?;
    }
    Ok(Outcome::Passed)
}

fn evt() -> Result<EventFd, SuiteError> {
    EventFd::new(libc::EFD_NONBLOCK).map_err(|e| SuiteError::Host(e.to_string()))
}

fn evt_count(e: &EventFd) -> u64 {
    // Non-blocking: an unsignalled eventfd reads as EAGAIN, i.e. zero.
    e.read().unwrap_or(0)
}

/// Real mode: matching writes signal ioeventfds without reaching the bus;
/// a non-matching write reaches the bus. The ioevents are a port with a
/// one-byte match and an MMIO byte matching any value: beyond the
/// virtio-mmio doorbell shape, so the case needs [`Capability::IoeventfdAny`].
pub fn ioeventfd<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    if let Some(skip) = missing(
        hv,
        &[Capability::Ioeventfd, Capability::IoeventfdAny],
        "the case's ioevents are a port with a one-byte match and an MMIO byte matching any value",
    ) {
        return Ok(skip);
    }
    let mut m = Machine::new(hv, false)?;
    let pio_evt = evt()?;
    let mmio_evt = evt()?;
    let pio_addr = IoEventAddress::Pio(IOEVENT_PORT);
    let mmio_addr = IoEventAddress::Mmio(MMIO_IOEVENT_ADDR);
    m.vm.register_ioevent(&pio_evt, pio_addr, DataMatch::U8(IOEVENT_MATCH))?;
    m.vm.register_ioevent(&mmio_evt, mmio_addr, DataMatch::Any)?;
    m.real_mode(code::REAL_IOEVENTFD)?;
    let exits = m.run_to_halt(MAX_EXITS)?;
    check_exits(&m, vec![pio_out(IOEVENT_PORT, 1)], exits)?;
    check("port ioeventfd count", 1, evt_count(&pio_evt))?;
    check("MMIO ioeventfd count", 1, evt_count(&mmio_evt))?;
    check(
        "port device log",
        vec![Access::write(u64::from(IOEVENT_PORT - PIO_BASE), &[0x43])],
        m.pio.log(),
    )?;
    check("MMIO device log", Vec::<Access>::new(), m.mmio.log())?;
    m.vm.unregister_ioevent(&pio_evt, pio_addr, DataMatch::U8(IOEVENT_MATCH))?;
    m.vm.unregister_ioevent(&mmio_evt, mmio_addr, DataMatch::Any)?;
    Ok(Outcome::Passed)
}

/// Run an interrupt guest: `trigger` fires when the guest says "ready"
/// (from the port device, while the guest waits for the write to
/// complete); returns once it says "done". Where `run` returns per access
/// that is the "done" exit; elsewhere the guest's halt after it.
fn run_interrupt_guest<H: HypervisorX86_64 + 'static>(
    m: &mut Machine<H>,
    trigger: impl Fn(&H::Vm) -> Result<(), SuiteError> + Send + Sync + 'static,
) -> Result<(), SuiteError> {
    let vm = Arc::downgrade(&m.vm);
    let failed = Arc::new(Mutex::new(None::<String>));
    let failure = failed.clone();
    m.pio.on_write(u64::from(READY_PORT - PIO_BASE), move || {
        let done = match vm.upgrade() {
            Some(vm) => trigger(&vm).map_err(|e| e.to_string()),
            None => Err("the VM is gone".into()),
        };
        if let Err(e) = done {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    let ran = run_until_done(m);
    m.pio.clear_hook();
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(SuiteError::Host(format!("interrupt trigger: {e}")));
    }
    ran?;
    let done = u64::from(DONE_PORT - PIO_BASE);
    check(
        "guest said done",
        true,
        m.pio.writes().iter().any(|a| a.offset == done),
    )
}

fn run_until_done<H: HypervisorX86_64>(m: &mut Machine<H>) -> Result<(), SuiteError> {
    let io_exits = m.io_exits();
    for _ in 0..MAX_EXITS {
        match m.run_once()? {
            VcpuExit::Io(a) if a == pio_out(DONE_PORT, 1) => return Ok(()),
            VcpuExit::Hlt if !io_exits => return Ok(()),
            VcpuExit::Io(_) | VcpuExit::Interrupted => {}
            other => return Err(SuiteError::UnexpectedExit(other)),
        }
    }
    Err(SuiteError::TooManyExits(MAX_EXITS))
}

/// Real mode with the in-hypervisor PIC: an interrupt injected through an
/// irqfd on GSI 4 runs the guest's handler.
pub fn irqfd_interrupt<H: HypervisorX86_64 + 'static>(hv: &H) -> Result<Outcome, SuiteError> {
    if let Some(skip) = missing(
        hv,
        &[
            Capability::Irqchip,
            Capability::Irqfd,
            Capability::IrqLineGsi,
        ],
        "the case raises GSI 4 (the PIC's IRQ 4) through an irqfd",
    ) {
        return Ok(skip);
    }
    let mut m = Machine::new(hv, true)?;
    let irq = evt()?;
    m.vm.register_irqfd(&irq, IrqLine::Gsi(IRQFD_GSI))?;
    m.real_mode_handler(PIC_IRQ4_VECTOR, code::REAL_IRQ_HANDLER)?;
    m.real_mode(code::REAL_IRQ_WAIT)?;
    let fire = irq
        .try_clone()
        .map_err(|e| SuiteError::Host(e.to_string()))?;
    run_interrupt_guest(&mut m, move |_| {
        fire.write(1).map_err(|e| SuiteError::Host(e.to_string()))
    })?;
    check("handler flag", 1, m.read_u8(FLAG_ADDR)?)?;
    // The value of the "done" write is whatever rdtsc left in al.
    let writes: Vec<(u64, Option<Vec<u8>>)> = m
        .pio
        .writes()
        .into_iter()
        .map(|a| (a.offset, (a.offset == 0).then_some(a.data)))
        .collect();
    check(
        "port writes (ready, handler report, done)",
        vec![
            (u64::from(READY_PORT - PIO_BASE), None),
            (0, Some(vec![PIC_IRQ4_VECTOR])),
            (u64::from(DONE_PORT - PIO_BASE), None),
        ],
        writes,
    )?;
    m.vm.unregister_irqfd(&irq, IrqLine::Gsi(IRQFD_GSI))?;
    Ok(Outcome::Passed)
}

/// Real mode with the in-hypervisor PIC and PIT: raising and lowering
/// ISA IRQ 4 runs the guest's handler.
pub fn irq_line_interrupt<H: HypervisorX86_64 + 'static>(hv: &H) -> Result<Outcome, SuiteError> {
    if let Some(skip) = missing(
        hv,
        &[Capability::Irqchip, Capability::IrqLineIsa, Capability::Pit],
        "the case raises ISA IRQ 4 into the in-hypervisor PIC, with the PIT present",
    ) {
        return Ok(skip);
    }
    let mut m = Machine::new(hv, true)?;
    m.vm.create_pit()?;
    m.real_mode_handler(PIC_IRQ4_VECTOR, code::REAL_IRQ_HANDLER)?;
    m.real_mode(code::REAL_IRQ_WAIT)?;
    run_interrupt_guest(&mut m, |vm| {
        vm.set_irq_line(IrqLine::Isa(LINE_ISA_IRQ), true)?;
        vm.set_irq_line(IrqLine::Isa(LINE_ISA_IRQ), false)?;
        Ok(())
    })?;
    check("handler flag", 1, m.read_u8(FLAG_ADDR)?)?;
    check(
        "handler report",
        Some(Access::write(0, &[PIC_IRQ4_VECTOR])),
        m.pio.writes().get(1).cloned(),
    )?;
    Ok(Outcome::Passed)
}

/// Flat protected mode with the in-hypervisor LAPIC: an MSI runs the
/// guest's handler for its vector.
pub fn msi_interrupt<H: HypervisorX86_64 + 'static>(hv: &H) -> Result<Outcome, SuiteError> {
    if let Some(skip) = missing(
        hv,
        &[Capability::Irqchip, Capability::SignalMsi],
        "the case sends an MSI to the in-hypervisor LAPIC",
    ) {
        return Ok(skip);
    }
    let mut m = Machine::new(hv, true)?;
    m.protected_mode(code::PROT_MSI_WAIT)?;
    m.protected_mode_handler(MSI_VECTOR, code::PROT_MSI_HANDLER)?;
    let delivered = Arc::new(Mutex::new(None));
    let accepted = delivered.clone();
    run_interrupt_guest(&mut m, move |vm| {
        let took = vm.signal_msi(MsiMessage::x86_fixed(0, MSI_VECTOR))?;
        *accepted.lock().unwrap_or_else(|p| p.into_inner()) = Some(took);
        Ok(())
    })?;
    let delivered = *delivered.lock().unwrap_or_else(|p| p.into_inner());
    check("MSI accepted", Some(true), delivered)?;
    check("handler flag", 1, m.read_u8(FLAG_ADDR)?)?;
    check(
        "handler report",
        Some(Access::write(0, &[MSI_VECTOR])),
        m.pio.writes().get(1).cloned(),
    )?;
    Ok(Outcome::Passed)
}

/// A device that fails, and an access with no device, come back from `run`
/// as typed errors; the guest continues, and a failed read gives it all
/// ones.
///
/// Where `run` serves accesses inside ([`Capability::IoExits`] absent) the
/// errors are the backend's to log: the case checks that the guest ran on
/// to its halt and got all ones from the failed read.
pub fn device_errors<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    let mut m = Machine::new(hv, false)?;
    m.real_mode(code::REAL_DEVICE_ERRORS)?;
    if !m.io_exits() {
        let exits = m.run_to_halt(MAX_EXITS)?;
        check_exits(&m, Vec::new(), exits)?;
        check(
            "value of the failed read",
            vec![Access::write(0, &[0xff])],
            m.pio.writes(),
        )?;
        return Ok(Outcome::Passed);
    }
    let failing = u64::from(FAILING_PORT);
    match m.run_once() {
        Err(Error::Io {
            access,
            source: BusError::Device {
                base, op: "write", ..
            },
        }) if access == pio_out(FAILING_PORT, 1) && base == failing => {}
        other => return Err(SuiteError::mismatch("failing write", "Error::Io", other)),
    }
    match m.run_once() {
        Err(Error::Io {
            access,
            source: BusError::Device { op: "read", .. },
        }) if !access.write && access.addr == failing => {}
        other => return Err(SuiteError::mismatch("failing read", "Error::Io", other)),
    }
    check(
        "report",
        Ok(VcpuExit::Io(pio_out(REPORT_PORT, 1))),
        m.run_once().map_err(|e| e.to_string()),
    )?;
    check(
        "value of the failed read",
        vec![Access::write(0, &[0xff])],
        m.pio.writes(),
    )?;
    match m.run_once() {
        Err(Error::Io {
            source:
                BusError::NoDevice {
                    space: IoSpace::Pio,
                    addr,
                },
            ..
        }) if addr == u64::from(EMPTY_PORT) => {}
        other => {
            return Err(SuiteError::mismatch(
                "empty port",
                "BusError::NoDevice",
                other,
            ))
        }
    }
    check(
        "last exit",
        Ok(VcpuExit::Hlt),
        m.run_once().map_err(|e| e.to_string()),
    )?;
    Ok(Outcome::Passed)
}

/// Overlapping and malformed memory regions are refused.
fn bad_regions<H: HypervisorX86_64>(m: &Machine<H>) -> Result<(), SuiteError> {
    let ram = m.vm.memory_regions()[0];
    let overlapping = MemoryRegion {
        guest_phys_addr: 0x8000,
        ..ram
    };
    // SAFETY: the region is refused before the hypervisor sees it; were it
    // accepted, it would alias RAM that `m` keeps mapped.
    match unsafe { m.vm.set_memory_region(overlapping) } {
        Err(Error::MemoryRegionOverlap {
            guest_phys_addr: 0x8000,
            other_guest_phys_addr: 0,
            ..
        }) => {}
        other => {
            return Err(SuiteError::mismatch(
                "overlap",
                "MemoryRegionOverlap",
                other,
            ))
        }
    }
    let unaligned = MemoryRegion {
        guest_phys_addr: 0x100_0010,
        flags: MemoryRegionFlags::default(),
        ..ram
    };
    // SAFETY: as above; refused because the address is unaligned.
    match unsafe { m.vm.set_memory_region(unaligned) } {
        Err(Error::InvalidMemoryRegion { .. }) => {}
        other => {
            return Err(SuiteError::mismatch(
                "unaligned",
                "InvalidMemoryRegion",
                other,
            ))
        }
    }
    Ok(())
}

/// Bad input from the VMM gets typed errors, not panics: overlapping or
/// malformed memory regions, vCPU ids out of range or reused, dirty logs of
/// regions without logging, odd access sizes on the bus.
pub fn bad_input<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    let m = Machine::new(hv, false)?;
    if hv.check_capability(Capability::UserMemory) {
        bad_regions(&m)?;
    } else {
        let region = MemoryRegion {
            guest_phys_addr: 0x100_0000,
            size: 0x1000,
            host_addr: 0,
            flags: MemoryRegionFlags::default(),
        };
        // SAFETY: refused whatever the region: the backend takes no VMM
        // memory.
        match unsafe { m.vm.set_memory_region(region) } {
            Err(Error::Unsupported {
                capability: Capability::UserMemory,
            }) => {}
            other => {
                return Err(SuiteError::mismatch(
                    "set_memory_region",
                    "Unsupported(UserMemory)",
                    other,
                ))
            }
        }
    }
    match m.vm.remove_memory_region(0x100_0000) {
        Err(Error::NoMemoryRegion {
            guest_phys_addr: 0x100_0000,
        }) => {}
        other => return Err(SuiteError::mismatch("remove", "NoMemoryRegion", other)),
    }
    // The bus's ranges are claimed (a no-op on KVM, an IOREQ range on Xen):
    // the machine claimed this one; it is released and claimed again.
    // Ranges that are empty or leave the port space are refused.
    m.vm.release_io_range(IoSpace::Pio, PIO_BASE.into(), PIO_SIZE.into())?;
    m.vm.claim_io_range(IoSpace::Pio, PIO_BASE.into(), PIO_SIZE.into())?;
    for (space, base, len) in [
        (IoSpace::Pio, 0xffff, 2),
        (IoSpace::Pio, 0x80, 0),
        (IoSpace::Mmio, u64::MAX, 2),
    ] {
        match m.vm.claim_io_range(space, base, len) {
            Err(Error::InvalidArgument { .. }) => {}
            other => return Err(SuiteError::mismatch("io range", "InvalidArgument", other)),
        }
    }
    // What a backend lacks fails with the capability it lacks, whatever
    // the backend: attaching, and each kind of interrupt line.
    if !hv.check_capability(Capability::AttachVm) {
        match hv.attach_vm(VmId(1)) {
            Err(Error::Unsupported {
                capability: Capability::AttachVm,
            }) => {}
            other => {
                return Err(SuiteError::mismatch(
                    "attach",
                    "Unsupported(AttachVm)",
                    other.map(drop),
                ))
            }
        }
    }
    for line in [
        IrqLine::Gsi(IRQFD_GSI),
        IrqLine::Isa(LINE_ISA_IRQ),
        IrqLine::PciIntx {
            segment: 0,
            bus: 0,
            device: 3,
            pin: 0,
        },
        IrqLine::Spi(40),
    ] {
        if m.vm.check_capability(line.capability()) {
            continue;
        }
        match m.vm.set_irq_line(line, true) {
            Err(Error::Unsupported { capability }) if capability == line.capability() => {}
            other => return Err(SuiteError::mismatch("irq line kind", "Unsupported", other)),
        }
    }
    match m.vm.get_dirty_log(0) {
        Err(Error::DirtyLogNotEnabled { guest_phys_addr: 0 })
            if hv.check_capability(Capability::DirtyLog) => {}
        Err(Error::Unsupported {
            capability: Capability::DirtyLog,
        }) if !hv.check_capability(Capability::DirtyLog) => {}
        other => {
            return Err(SuiteError::mismatch(
                "dirty log",
                "DirtyLogNotEnabled, or Unsupported(DirtyLog)",
                other,
            ))
        }
    }
    let max = m.vm.max_vcpu_id();
    for id in [max, max.saturating_add(1), u32::MAX] {
        match m.vm.create_vcpu(id) {
            Err(Error::VcpuIdOutOfRange { id: got, max_id }) if got == id && max_id == max => {}
            Err(e) => return Err(SuiteError::mismatch("vCPU id range", "VcpuIdOutOfRange", e)),
            Ok(_) => return Err(SuiteError::mismatch("vCPU id range", "an error", "a vCPU")),
        }
    }
    match m.vm.create_vcpu(0) {
        Err(Error::VcpuIdInUse { id: 0 }) => {}
        Err(e) => return Err(SuiteError::mismatch("vCPU id reuse", "VcpuIdInUse", e)),
        Ok(_) => return Err(SuiteError::mismatch("vCPU id reuse", "an error", "a vCPU")),
    }
    for size in [0usize, 3, 5, 16] {
        let mut buf = vec![0u8; size];
        match m.bus.read(IoSpace::Mmio, MMIO_BASE, &mut buf) {
            Err(BusError::InvalidAccessSize { size: s, .. }) if s == size => {}
            other => {
                return Err(SuiteError::mismatch(
                    "odd MMIO read",
                    "InvalidAccessSize",
                    other,
                ))
            }
        }
        match m.bus.write(IoSpace::Mmio, MMIO_BASE, &buf) {
            Err(BusError::InvalidAccessSize { .. }) => {}
            other => {
                return Err(SuiteError::mismatch(
                    "odd MMIO write",
                    "InvalidAccessSize",
                    other,
                ))
            }
        }
    }
    check("MMIO device log", Vec::<Access>::new(), m.mmio.log())?;
    Ok(Outcome::Passed)
}

/// Immediate exit makes `run` return without entering the guest; clearing
/// it lets the guest run.
pub fn immediate_exit<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    if let Some(skip) = missing(
        hv,
        &[Capability::ImmediateExit],
        "the case asks run to return before entering the guest",
    ) {
        return Ok(skip);
    }
    let mut m = Machine::new(hv, false)?;
    m.real_mode(&[0xf4])?; // hlt
    m.vcpu.set_immediate_exit(true);
    check("with immediate exit", VcpuExit::Interrupted, m.run_once()?)?;
    check("rip unchanged", CODE_ADDR, m.vcpu.get_regs()?.rip)?;
    m.vcpu.set_immediate_exit(false);
    check("without immediate exit", VcpuExit::Hlt, m.run_once()?)?;
    Ok(Outcome::Passed)
}

/// What [`VcpuX86_64::set_cpuid`] promises, checked the same on every host.
/// Hosts differ in what they keep: one KVM returns every supported entry it was
/// given, another drops a few, and one adds the XSAVE leaves (0xd) that leaf 1
/// implies. So the case checks what holds everywhere: leaf 0 (vendor and
/// highest leaf) reads back as set, leaf 1 is there, and a narrower set
/// replaces the first (fewer entries come back than after the full set).
fn cpuid_round_trip<H: HypervisorX86_64>(
    m: &Machine<H>,
    supported: &[CpuidEntry],
) -> Result<(), SuiteError> {
    let leaf0 = supported
        .iter()
        .find(|e| e.function == 0)
        .copied()
        .ok_or_else(|| SuiteError::Host("no CPUID leaf 0".into()))?;
    let narrow: Vec<CpuidEntry> = supported
        .iter()
        .filter(|e| e.function <= 1)
        .copied()
        .collect();
    let mut counts = Vec::new();
    for set in [supported, &narrow[..]] {
        m.vcpu.set_cpuid(set)?;
        let got = m.vcpu.get_cpuid()?;
        check(
            "CPUID leaf 0",
            Some(leaf0),
            got.iter().find(|e| e.function == 0).copied(),
        )?;
        check(
            "CPUID leaf 1 present",
            true,
            got.iter().any(|e| e.function == 1),
        )?;
        counts.push(got.len());
    }
    if counts[1] >= counts[0] {
        return Err(SuiteError::mismatch(
            "CPUID entries after setting leaves 0 and 1 only, fewer than after the full set",
            format!("fewer than {}", counts[0]),
            counts[1],
        ));
    }
    Ok(())
}

/// Registers, FPU, MSRs and CPUID written through the neutral types read
/// back the same.
pub fn registers_round_trip<H: HypervisorX86_64>(hv: &H) -> Result<Outcome, SuiteError> {
    let m = Machine::new(hv, false)?;
    let regs = StandardRegisters {
        rax: 0x1111,
        rbx: 0x2222,
        r15: 0xf00d,
        rsp: STACK_TOP,
        rip: CODE_ADDR,
        rflags: StandardRegisters::RFLAGS_RESERVED,
        ..Default::default()
    };
    m.vcpu.set_regs(&regs)?;
    check("regs", regs, m.vcpu.get_regs()?)?;
    m.long_mode(&[0xf4])?;
    let sregs = m.vcpu.get_sregs()?;
    check("long-mode cs.l", true, sregs.cs.l)?;
    check("cr3", PML4_ADDR, sregs.cr3)?;
    m.vcpu.set_sregs(&sregs)?;
    check("sregs", sregs, m.vcpu.get_sregs()?)?;
    let fpu = FpuState {
        fcw: FpuState::FCW_DEFAULT,
        mxcsr: FpuState::MXCSR_DEFAULT,
        xmm: [[0x5a; 16]; 16],
        ..m.vcpu.get_fpu()?
    };
    m.vcpu.set_fpu(&fpu)?;
    let back = m.vcpu.get_fpu()?;
    check("fpu xmm", fpu.xmm, back.xmm)?;
    check("fpu fcw", fpu.fcw, back.fcw)?;
    // IA32_SYSENTER_CS and IA32_SYSENTER_ESP.
    let msrs = [MsrEntry::new(0x174, 0x10), MsrEntry::new(0x175, 0x8000)];
    check("MSRs written", 2, m.vcpu.set_msrs(&msrs)?)?;
    let mut read = [MsrEntry::new(0x174, 0), MsrEntry::new(0x175, 0)];
    check("MSRs read", 2, m.vcpu.get_msrs(&mut read)?)?;
    check("MSR values", msrs, read)?;
    if hv.check_capability(Capability::SetCpuid) {
        cpuid_round_trip(&m, &hv.supported_cpuid()?)?;
    }
    Ok(Outcome::Passed)
}
