// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A one-vCPU test machine: guest memory, VM, vCPU and the test devices,
//! set up through the vm-hypervisor traits only.

use std::sync::Arc;

use vm_hypervisor::x86_64::{DescriptorTable, HypervisorX86_64, VcpuX86_64, VmX86_64};
use vm_hypervisor::{
    Capability, Hypervisor, IoAccess, IoBus, IoHandler, IoSpace, MemoryRegion, MemoryRegionFlags,
    Vcpu, VcpuExit, Vm,
};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryBackend, GuestMemoryMmap};

use crate::devices::{Failing, Recorder};
use crate::layout::*;
use crate::SuiteError;

/// The vCPU type of backend `H`.
pub type VcpuOf<H> = <<H as Hypervisor>::Vm as Vm>::Vcpu;

/// A VM with one vCPU, the test memory map of [`crate::layout`] and the
/// test devices on its bus, their ranges claimed for the VM.
///
/// The suite reaches guest memory through [`Vm::guest_memory`] only, as a
/// device would. Where the backend takes VMM memory
/// ([`Capability::UserMemory`]), the machine maps RAM, the read-only and
/// the dirty-logged regions itself and hands them over; where the
/// hypervisor owns guest memory (Xen), the backend's `create_vm` gives the
/// VM its RAM and the other regions stay holes (the cases that need them
/// are skipped by capability).
///
/// Field order matters: the vCPU, the bus (whose hooks may hold the VM)
/// and the VM are dropped before the memory they map.
pub struct Machine<H: Hypervisor> {
    /// vCPU 0.
    pub vcpu: VcpuOf<H>,
    /// Device bus given to every `run`.
    pub bus: IoBus,
    /// The VM, shared with device hooks (which hold it weakly).
    pub vm: Arc<H::Vm>,
    /// The VMM memory behind the VM's regions, where the backend takes it.
    pub mem: Option<GuestMemoryMmap>,
    /// Device on ports [`PIO_BASE`]`..+`[`PIO_SIZE`].
    pub pio: Arc<Recorder>,
    /// Device at [`MMIO_BASE`]`..+`[`MMIO_SIZE`].
    pub mmio: Arc<Recorder>,
    /// Catches guest writes to the read-only region.
    pub rom: Arc<Recorder>,
}

fn mem_err(e: impl std::fmt::Display) -> SuiteError {
    SuiteError::Memory(e.to_string())
}

/// Maps the test memory map in this process and hands it to `vm`.
fn user_memory<V: Vm>(vm: &V) -> Result<GuestMemoryMmap, SuiteError> {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[
        (GuestAddress(0), RAM_SIZE as usize),
        (GuestAddress(ROM_BASE), ROM_SIZE as usize),
        (GuestAddress(DIRTY_BASE), DIRTY_SIZE as usize),
    ])
    .map_err(mem_err)?;
    let regions = [
        (0, RAM_SIZE, MemoryRegionFlags::default()),
        (
            ROM_BASE,
            ROM_SIZE,
            MemoryRegionFlags {
                readonly: true,
                log_dirty: false,
            },
        ),
        (
            DIRTY_BASE,
            DIRTY_SIZE,
            MemoryRegionFlags {
                readonly: false,
                log_dirty: true,
            },
        ),
    ];
    for (base, size, flags) in regions {
        let host = mem.get_host_address(GuestAddress(base)).map_err(mem_err)?;
        let region = MemoryRegion {
            guest_phys_addr: base,
            size,
            host_addr: host as u64,
            flags,
        };
        // SAFETY: the host range is one whole region of `mem`, which the
        // Machine owns and drops after the VM (field order).
        unsafe { vm.set_memory_region(region)? };
    }
    Ok(mem)
}

impl<H: HypervisorX86_64> Machine<H> {
    /// Build the machine; with `irqchip`, the in-hypervisor interrupt
    /// controllers exist before the vCPU is made (as x86 backends need).
    pub fn new(hv: &H, irqchip: bool) -> Result<Self, SuiteError> {
        let vm = hv.create_vm()?;
        if irqchip {
            vm.create_irqchip()?;
        }
        let mem = if vm.check_capability(Capability::UserMemory) {
            let mem = user_memory(&vm)?;
            vm.guest_memory()
                .memory()
                .write_obj(ROM_VALUE, GuestAddress(ROM_BASE))
                .map_err(mem_err)?;
            Some(mem)
        } else {
            None
        };
        let vcpu = vm.create_vcpu(0)?;

        let pio = Arc::new(Recorder::default());
        let mmio = Arc::new(Recorder::default());
        let rom = Arc::new(Recorder::default());
        let mut bus = IoBus::new();
        let devices: [(IoSpace, u64, u64, Arc<dyn IoHandler>); 4] = [
            (IoSpace::Pio, PIO_BASE.into(), PIO_SIZE.into(), pio.clone()),
            (IoSpace::Pio, FAILING_PORT.into(), 1, Arc::new(Failing)),
            (IoSpace::Mmio, MMIO_BASE, MMIO_SIZE, mmio.clone()),
            (IoSpace::Mmio, ROM_BASE, ROM_SIZE, rom.clone()),
        ];
        for (space, base, len, device) in devices {
            bus.insert(space, base, len, device)?;
            // Where guest I/O reaches the VMM only for claimed ranges (an
            // IOREQ server on Xen); a no-op on KVM.
            vm.claim_io_range(space, base, len)?;
        }
        Ok(Self {
            vcpu,
            bus,
            vm: Arc::new(vm),
            mem,
            pio,
            mmio,
            rom,
        })
    }

    /// Copy `code` into guest memory at `addr`.
    pub fn load(&self, addr: u64, code: &[u8]) -> Result<(), SuiteError> {
        self.vm
            .guest_memory()
            .memory()
            .write_slice(code, GuestAddress(addr))
            .map_err(mem_err)
    }

    /// Read a little-endian `u32` of guest memory.
    pub fn read_u32(&self, addr: u64) -> Result<u32, SuiteError> {
        self.vm
            .guest_memory()
            .memory()
            .read_obj(GuestAddress(addr))
            .map_err(mem_err)
    }

    /// Read a byte of guest memory.
    pub fn read_u8(&self, addr: u64) -> Result<u8, SuiteError> {
        self.vm
            .guest_memory()
            .memory()
            .read_obj(GuestAddress(addr))
            .map_err(mem_err)
    }

    fn write_u64(&self, addr: u64, v: u64) -> Result<(), SuiteError> {
        self.vm
            .guest_memory()
            .memory()
            .write_obj(v, GuestAddress(addr))
            .map_err(mem_err)
    }

    /// Whether `run` returns per served access ([`Capability::IoExits`]).
    pub fn io_exits(&self) -> bool {
        self.vm.check_capability(Capability::IoExits)
    }

    fn start_at(&self, entry: u64) -> Result<(), SuiteError> {
        let mut regs = self.vcpu.get_regs()?;
        regs.rip = entry;
        regs.rsp = STACK_TOP;
        regs.rflags = vm_hypervisor::x86_64::StandardRegisters::RFLAGS_RESERVED;
        self.vcpu.set_regs(&regs)?;
        Ok(())
    }

    /// Load `code` and start the vCPU in real mode at [`CODE_ADDR`] with
    /// all segments based at zero.
    pub fn real_mode(&self, code: &[u8]) -> Result<(), SuiteError> {
        self.load(CODE_ADDR, code)?;
        let mut sregs = self.vcpu.get_sregs()?;
        for seg in [
            &mut sregs.cs,
            &mut sregs.ds,
            &mut sregs.es,
            &mut sregs.ss,
            &mut sregs.fs,
            &mut sregs.gs,
        ] {
            seg.base = 0;
            seg.selector = 0;
        }
        self.vcpu.set_sregs(&sregs)?;
        self.start_at(CODE_ADDR)
    }

    /// Load `code` and start the vCPU in flat 32-bit protected mode (no
    /// paging) at [`CODE_ADDR`], with vm-vcpu-ref's boot GDT (code selector
    /// 0x10, data 0x18).
    pub fn protected_mode(&self, code: &[u8]) -> Result<(), SuiteError> {
        self.load(CODE_ADDR, code)?;
        let base = self.vcpu.get_sregs()?;
        let sregs = vm_vcpu_ref::protected_mode::setup_from(
            &*self.vm.guest_memory().memory(),
            &vm_vcpu_ref::protected_mode::Layout::default(),
            &base,
        )?;
        self.vcpu.set_sregs(&sregs)?;
        self.start_at(CODE_ADDR)
    }

    /// Point vector `vector` of a protected-mode IDT at [`IDT_ADDR`] to
    /// [`HANDLER_ADDR`], load `handler` there and set IDTR.
    pub fn protected_mode_handler(&self, vector: u8, handler: &[u8]) -> Result<(), SuiteError> {
        self.load(HANDLER_ADDR, handler)?;
        // 32-bit interrupt gate: offset 15:0, selector, P=1 DPL=0 type 0xe,
        // offset 31:16. The selector is vm-vcpu-ref's boot code segment.
        let code_selector = u64::from(vm_vcpu_ref::long_mode::selectors::CODE.0);
        let gate = (HANDLER_ADDR & 0xffff)
            | (code_selector << 16)
            | (0x8e_u64 << 40)
            | ((HANDLER_ADDR >> 16) << 48);
        self.write_u64(IDT_ADDR + 8 * u64::from(vector), gate)?;
        let mut sregs = self.vcpu.get_sregs()?;
        sregs.idt = DescriptorTable {
            base: IDT_ADDR,
            limit: (8 * (u16::from(vector) + 1) - 1),
        };
        self.vcpu.set_sregs(&sregs)?;
        Ok(())
    }

    /// Point real-mode interrupt vector `vector` to [`HANDLER_ADDR`] and
    /// load `handler` there.
    pub fn real_mode_handler(&self, vector: u8, handler: &[u8]) -> Result<(), SuiteError> {
        self.load(HANDLER_ADDR, handler)?;
        // IVT entry: offset (16 bits) then segment (16 bits).
        let entry = HANDLER_ADDR as u32;
        self.vm
            .guest_memory()
            .memory()
            .write_obj(entry, GuestAddress(4 * u64::from(vector)))
            .map_err(mem_err)
    }

    /// Load `code` and start the vCPU in 64-bit long mode at [`CODE_ADDR`],
    /// with vm-vcpu-ref's boot GDT and identity page tables (first GiB) at
    /// [`PML4_ADDR`].
    pub fn long_mode(&self, code: &[u8]) -> Result<(), SuiteError> {
        self.load(CODE_ADDR, code)?;
        let base = self.vcpu.get_sregs()?;
        let layout = vm_vcpu_ref::long_mode::Layout {
            page_tables: GuestAddress(PML4_ADDR),
            ..Default::default()
        };
        let sregs =
            vm_vcpu_ref::long_mode::setup_from(&*self.vm.guest_memory().memory(), &layout, &base)?;
        self.vcpu.set_sregs(&sregs)?;
        self.vcpu
            .set_regs(&vm_vcpu_ref::long_mode::entry_registers(
                CODE_ADDR, STACK_TOP,
            ))?;
        Ok(())
    }

    /// Run one exit (through [`Vcpu::run_on`]: the suite's bus
    /// is a concrete `IoBus`).
    pub fn run_once(&mut self) -> Result<VcpuExit, vm_hypervisor::Error> {
        self.vcpu.run_on(&self.bus)
    }

    /// Run until the guest halts; returns the I/O exits seen on the way
    /// (none where the backend serves I/O inside `run`).
    /// Any other exit, an error, or more than `max_exits` exits fail.
    pub fn run_to_halt(&mut self, max_exits: usize) -> Result<Vec<IoAccess>, SuiteError> {
        let mut io = Vec::new();
        for _ in 0..max_exits {
            match self.run_once()? {
                VcpuExit::Io(a) => io.push(a),
                VcpuExit::Hlt => return Ok(io),
                other => return Err(SuiteError::UnexpectedExit(other)),
            }
        }
        Err(SuiteError::TooManyExits(max_exits))
    }
}
