// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! vCPU 0's entry state for PVH, as HVM save records.
//!
//! A PVH kernel starts in 32-bit protected mode with paging off: flat 4 GiB code and data
//! segments, a minimal TSS, EIP at the ELF note's entry and EBX holding the start-info
//! address. Linux's 32-bit boot protocol starts the same way, but with ESI at the zero page
//! and the segments loaded from a GDT the guest can see ([`linux32_cpu`]). Xen takes that state through `XEN_DOMCTL_sethvmcontext` as a header record (copied
//! from the domain's own context, as Xen checks it against the host), a CPU record and an end
//! record. Before that, every vCPU's MTRRs are enabled with write-back as the default type
//! (without MTRRs all guest memory would be uncacheable); each `sethvmcontext` resets the
//! vCPUs it touches, so the CPU record goes last.

use xen_bindings::abi::xen::hvm_save::*;
use xen_bindings::abi::Pod;
use xen_bindings::DomId;

use super::loader::Protocol;
use crate::error::{Error, Result};

/// CR0.PE: protected mode.
const CR0_PE: u64 = 1 << 0;
/// CR0.ET: extension type (always 1 on modern CPUs).
const CR0_ET: u64 = 1 << 4;
/// DR6 at reset.
const DR6_DEFAULT: u64 = 0xffff_0ff0;
/// DR7 at reset.
const DR7_DEFAULT: u64 = 0x0000_0400;
/// Segment attributes (access byte + G/D nibble) of a flat 32-bit code segment: present,
/// DPL 0, execute/read, accessed; 4 KiB granularity, 32-bit.
const AR_CODE32: u32 = 0xc9b;
/// Of a flat 32-bit data segment: present, read/write, accessed; G, D/B.
const AR_DATA32: u32 = 0xc93;
/// Of a busy 32-bit TSS.
const AR_TSS_BUSY: u32 = 0x8b;
/// The 32-bit boot protocol's `__BOOT_CS` and `__BOOT_DS` selectors.
const BOOT_CS: u32 = 0x10;
const BOOT_DS: u32 = 0x18;
/// Index of the GDTR in [`HvmHwCpu::limit`] and [`HvmHwCpu::base`] (after the eight segment
/// registers and the IDTR).
const GDTR: usize = 9;

/// One record found in a context.
pub(crate) fn find_record(records: &[u8], typecode: u16, instance: u16) -> Option<&[u8]> {
    let d = std::mem::size_of::<HvmSaveDescriptor>();
    let mut off = 0;
    while off + d <= records.len() {
        let desc = HvmSaveDescriptor::from_bytes(&records[off..])?;
        let start = off + d;
        let end = start.checked_add(desc.length as usize)?;
        if end > records.len() {
            return None;
        }
        if desc.typecode == typecode && desc.instance == instance {
            return Some(&records[start..end]);
        }
        if desc.typecode == HVM_SAVE_CODE_END {
            return None;
        }
        off = end;
    }
    None
}

pub(crate) fn push_record<T: Pod>(out: &mut Vec<u8>, typecode: u16, instance: u16, payload: &T) {
    let bytes = payload.as_bytes();
    let desc = HvmSaveDescriptor {
        typecode,
        instance,
        length: bytes.len() as u32,
    };
    out.extend_from_slice(desc.as_bytes());
    out.extend_from_slice(bytes);
}

pub(crate) fn push_end(out: &mut Vec<u8>) {
    out.extend_from_slice(
        HvmSaveDescriptor {
            typecode: HVM_SAVE_CODE_END,
            instance: 0,
            length: 0,
        }
        .as_bytes(),
    );
}

/// The CPU record of a PVH boot vCPU entering at `entry` with `start_info` in EBX.
pub fn pvh_cpu(entry: u32, start_info: u32) -> HvmHwCpu {
    let mut cpu = HvmHwCpu::default();
    for seg in [
        HvmSegment::Cs,
        HvmSegment::Ds,
        HvmSegment::Es,
        HvmSegment::Ss,
    ] {
        cpu.base[seg as usize] = 0;
        cpu.limit[seg as usize] = !0;
        cpu.arbytes[seg as usize] = AR_DATA32;
    }
    cpu.arbytes[HvmSegment::Cs as usize] = AR_CODE32;
    cpu.base[HvmSegment::Tr as usize] = 0;
    cpu.limit[HvmSegment::Tr as usize] = 0x67;
    cpu.arbytes[HvmSegment::Tr as usize] = AR_TSS_BUSY;
    cpu.cr0 = CR0_PE | CR0_ET;
    cpu.rip = u64::from(entry);
    cpu.gprs[HVM_GPR_RBX] = u64::from(start_info);
    cpu.dr[HVM_DR6] = DR6_DEFAULT;
    cpu.dr[HVM_DR7] = DR7_DEFAULT;
    cpu
}

/// The CPU record of a vCPU entering Linux's 32-bit boot protocol at `entry`, with ESI at
/// `zero_page` and CS, DS, ES and SS loaded from the GDT at `gdt` (`gdt_limit`): a PVH CPU
/// record ([`pvh_cpu`]) with EBX zero, the selectors `__BOOT_CS` and `__BOOT_DS`, and the
/// GDTR set.
pub fn linux32_cpu(entry: u32, zero_page: u32, gdt: u32, gdt_limit: u16) -> HvmHwCpu {
    let mut cpu = pvh_cpu(entry, 0);
    cpu.gprs[HVM_GPR_RSI] = u64::from(zero_page);
    cpu.sel[HvmSegment::Cs as usize] = BOOT_CS;
    for seg in [HvmSegment::Ds, HvmSegment::Es, HvmSegment::Ss] {
        cpu.sel[seg as usize] = BOOT_DS;
    }
    cpu.base[GDTR] = u64::from(gdt);
    cpu.limit[GDTR] = u32::from(gdt_limit);
    cpu
}

/// vCPU 0's CPU record for entering at `entry` as `protocol` says.
pub fn boot_cpu(entry: u32, protocol: Protocol) -> HvmHwCpu {
    match protocol {
        Protocol::Pvh { start_info } => pvh_cpu(entry, start_info),
        Protocol::Linux32 {
            zero_page,
            gdt,
            gdt_limit,
        } => linux32_cpu(entry, zero_page, gdt, gdt_limit),
    }
}

/// The `sethvmcontext` calls that set up `vcpus` vCPUs of `domid`: one MTRR context per vCPU,
/// write-back by default. `current` is the domain's context as `gethvmcontext` returned it.
pub fn mtrr_contexts(domid: DomId, current: &[u8], vcpus: u32) -> Result<Vec<Vec<u8>>> {
    let header = header_of(domid, current)?;
    let mut mtrr = find_record(current, HVM_SAVE_CODE_MTRR, 0)
        .and_then(HvmHwMtrr::from_bytes)
        .ok_or(Error::HvmContext {
            domid,
            record: "MTRR",
        })?;
    mtrr.msr_mtrr_def_type = MTRR_TYPE_WRBACK | MTRR_DEF_TYPE_ENABLE;
    let mut calls = Vec::new();
    for vcpu in 0..vcpus {
        let mut c = Vec::new();
        push_record(&mut c, HVM_SAVE_CODE_HEADER, 0, &header);
        push_record(&mut c, HVM_SAVE_CODE_MTRR, vcpu as u16, &mtrr);
        push_end(&mut c);
        calls.push(c);
    }
    Ok(calls)
}

fn header_of(domid: DomId, current: &[u8]) -> Result<HvmSaveHeader> {
    find_record(current, HVM_SAVE_CODE_HEADER, 0)
        .and_then(HvmSaveHeader::from_bytes)
        .ok_or(Error::HvmContext {
            domid,
            record: "header",
        })
}

/// The `sethvmcontext` calls that start `vcpus` vCPUs of `domid` with vCPU 0 at `entry`
/// (as `protocol` says):
/// one MTRR context per vCPU ([`mtrr_contexts`]), then vCPU 0's CPU context, in that order.
/// `current` is the domain's context as `gethvmcontext` returned it.
pub fn boot_contexts(
    domid: DomId,
    current: &[u8],
    vcpus: u32,
    entry: u32,
    protocol: Protocol,
) -> Result<Vec<Vec<u8>>> {
    let header = header_of(domid, current)?;
    let mut calls = mtrr_contexts(domid, current, vcpus)?;
    let mut c = Vec::new();
    push_record(&mut c, HVM_SAVE_CODE_HEADER, 0, &header);
    push_record(&mut c, HVM_SAVE_CODE_CPU, 0, &boot_cpu(entry, protocol));
    push_end(&mut c);
    calls.push(c);
    Ok(calls)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A context's start: the header record Xen writes first.
    pub(crate) fn header_only() -> Vec<u8> {
        let mut c = Vec::new();
        let header = HvmSaveHeader {
            magic: HVM_FILE_MAGIC,
            version: 1,
            ..Default::default()
        };
        push_record(&mut c, HVM_SAVE_CODE_HEADER, 0, &header);
        c
    }

    /// A context like Xen's: header, one CPU record, one MTRR record, end.
    pub(crate) fn fake_context() -> Vec<u8> {
        let mut c = header_only();
        push_record(&mut c, HVM_SAVE_CODE_CPU, 0, &HvmHwCpu::default());
        push_record(&mut c, HVM_SAVE_CODE_MTRR, 0, &HvmHwMtrr::default());
        push_end(&mut c);
        c
    }

    #[test]
    fn the_boot_vcpu_enters_flat_protected_mode_with_start_info_in_ebx() {
        let cpu = pvh_cpu(0x100_0000, 0x6000);
        assert_eq!(cpu.rip, 0x100_0000);
        assert_eq!(cpu.gprs[HVM_GPR_RBX], 0x6000);
        assert_eq!(cpu.cr0, 0x11);
        assert_eq!(cpu.arbytes[HvmSegment::Cs as usize], 0xc9b);
        assert_eq!(cpu.arbytes[HvmSegment::Ss as usize], 0xc93);
        assert_eq!(cpu.limit[HvmSegment::Ds as usize], 0xffff_ffff);
        assert_eq!(cpu.limit[HvmSegment::Tr as usize], 0x67);
    }

    #[test]
    fn the_32_bit_boot_protocol_gets_esi_the_boot_selectors_and_the_gdt() {
        let cpu = linux32_cpu(0x10_0000, 0x7000, 0x6000, 31);
        assert_eq!(cpu.rip, 0x10_0000);
        assert_eq!(cpu.gprs[HVM_GPR_RSI], 0x7000);
        assert_eq!(cpu.gprs[HVM_GPR_RBX], 0, "EBX must be zero");
        assert_eq!(cpu.sel[..6], [0x10, 0x18, 0x18, 0, 0, 0x18]);
        assert_eq!((cpu.base[9], cpu.limit[9]), (0x6000, 31));
        assert_eq!(
            cpu.arbytes[HvmSegment::Cs as usize],
            0xc9b,
            "the GDT's 0x10 entry"
        );
        assert_eq!(
            cpu.arbytes[HvmSegment::Ds as usize],
            0xc93,
            "the GDT's 0x18 entry"
        );
        assert_eq!(cpu.cr0, 0x11, "protected mode, paging off");
    }

    #[test]
    fn mtrrs_go_first_and_the_cpu_record_last() {
        let pvh = Protocol::Pvh { start_info: 0x6000 };
        let calls = boot_contexts(DomId::new(1), &fake_context(), 2, 0x1000, pvh).unwrap();
        assert_eq!(calls.len(), 3);
        let mtrr = find_record(&calls[1], HVM_SAVE_CODE_MTRR, 1)
            .and_then(HvmHwMtrr::from_bytes)
            .unwrap();
        assert_eq!(mtrr.msr_mtrr_def_type, 0x806);
        let cpu = find_record(&calls[2], HVM_SAVE_CODE_CPU, 0)
            .and_then(HvmHwCpu::from_bytes)
            .unwrap();
        assert_eq!(cpu.rip, 0x1000);
        assert!(find_record(&calls[2], HVM_SAVE_CODE_HEADER, 0).is_some());
    }

    #[test]
    fn a_context_without_header_is_an_error() {
        let pvh = Protocol::Pvh { start_info: 0 };
        let err = boot_contexts(DomId::new(3), &[0u8; 8], 1, 0, pvh).unwrap_err();
        assert!(
            matches!(
                err,
                Error::HvmContext {
                    record: "header",
                    ..
                }
            ),
            "{err}"
        );
    }
}
