// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! aarch64 Linux boot state: where the device tree goes and the registers
//! the boot vCPU starts with.
//!
//! The arm64 boot protocol enters the kernel image at EL1 (or EL2) with
//! the MMU off, interrupts masked, x0 holding the device tree address and
//! x1 to x3 zero. Secondary vCPUs start powered off and are brought up by
//! the kernel through PSCI. Plain data: compiles and is tested on every
//! host.
//!
//! ```
//! use vm_vcpu_ref::arm64_boot::{boot_registers, fdt_address, vcpu_init};
//! use vm_vcpu_ref::gic::MmioRegion;
//!
//! let ram = MmioRegion::new(0x4000_0000, 0x1000_0000);
//! let fdt = fdt_address(ram, 0x1000).unwrap();
//! let regs = boot_registers(0x4020_0000, fdt);
//! assert_eq!(regs.x[0], fdt);
//! assert!(vcpu_init(1).power_off);
//! ```

use vm_hypervisor::aarch64::{CoreRegisters, VcpuInit};

use crate::error::{Error, Result};
use crate::fdt::MAX_FDT_SIZE;
use crate::gic::MmioRegion;

/// Alignment used for the device tree: a 2 MiB block of its own, so the
/// kernel's cacheable block mapping of it covers nothing else.
pub const FDT_ALIGN: u64 = 2 << 20;

/// Where to put a device tree of `fdt_size` bytes: the last 2 MiB-aligned
/// 2 MiB block of `ram`.
pub fn fdt_address(ram: MmioRegion, fdt_size: usize) -> Result<u64> {
    if fdt_size > MAX_FDT_SIZE {
        return Err(Error::InvalidSize {
            what: "device tree",
            value: fdt_size as u64,
            reason: "larger than the 2 MiB a kernel accepts",
        });
    }
    let end = ram.end().ok_or(Error::InvalidSize {
        what: "RAM region",
        value: ram.base,
        reason: "wraps around the address space",
    })?;
    let addr = (end & !(FDT_ALIGN - 1))
        .checked_sub(FDT_ALIGN)
        .filter(|a| *a >= ram.base)
        .ok_or(Error::InvalidSize {
            what: "RAM region",
            value: ram.size,
            reason: "too small to hold an aligned 2 MiB device tree block",
        })?;
    Ok(addr)
}

/// Registers of the boot vCPU: PC at the kernel entry, x0 at the device
/// tree, EL1h with D, A, I and F masked.
pub fn boot_registers(kernel_entry: u64, fdt_addr: u64) -> CoreRegisters {
    let mut regs = CoreRegisters {
        pc: kernel_entry,
        pstate: CoreRegisters::PSTATE_EL1H_DAIF_MASKED,
        ..CoreRegisters::default()
    };
    regs.x[0] = fdt_addr;
    regs
}

/// vCPU initialisation: PSCI 0.2 for all, vCPUs other than 0 powered off
/// until the kernel starts them with PSCI CPU_ON.
pub fn vcpu_init(index: usize) -> VcpuInit {
    VcpuInit {
        power_off: index > 0,
        psci_0_2: true,
        ..VcpuInit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdt_goes_in_the_last_aligned_block() {
        let ram = MmioRegion::new(0x4000_0000, 0x1000_0000);
        assert_eq!(fdt_address(ram, 0x1_0000).unwrap(), 0x4fe0_0000);
        let odd = MmioRegion::new(0x4000_0000, 0x0030_1000);
        assert_eq!(fdt_address(odd, 0x1000).unwrap(), 0x4000_0000);
        assert!(fdt_address(MmioRegion::new(0x4000_0000, 0x10_0000), 1).is_err());
        assert!(fdt_address(ram, MAX_FDT_SIZE + 1).is_err());
        assert!(fdt_address(MmioRegion::new(u64::MAX, 2), 1).is_err());
    }

    #[test]
    fn boot_state() {
        let r = boot_registers(0x4008_0000, 0x4fe0_0000);
        assert_eq!(
            (r.pc, r.x[0], r.x[1], r.pstate),
            (0x4008_0000, 0x4fe0_0000, 0, 0x3c5)
        );
        assert!(!vcpu_init(0).power_off);
        assert!(vcpu_init(3).power_off && vcpu_init(3).psci_0_2);
    }
}
