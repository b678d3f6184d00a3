# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Side-by-side round-trip guest (tests/xen_ioreq_qemu.rs, QEMU_BENCH_CODE), loaded by the
# toolstack in place of the HVM firmware of a domain whose device model is QEMU, and entered in
# flat 32-bit protected mode without paging at 0x100100. MMIO is a window served by the test's
# IOREQ server; VGA is the legacy VGA window, served by QEMU's VGA device.
# Reads N (reads per block) from MMIO + 0x40 and B (blocks) from MMIO + 0x44, then B times:
# N 4-byte reads of MMIO + 0, elapsed TSC ticks written to MMIO + 0x48 (low) / + 0x4c (high);
# N 4-byte reads of VGA + 0, ticks to MMIO + 0x58 / + 0x5c and the last value read from VGA
# to MMIO + 0x60. Finally writes 0xdd to MMIO + 0x50.
#   as --32 qemu_bench.S -o qemu_bench.o
#   ld -m elf_i386 -Ttext=0x100100 --oformat binary qemu_bench.o -o qemu_bench.bin
        .intel_syntax noprefix
        .code32
        .set MMIO, 0xe0000000
        .set VGA, 0xa0000
        .set SCRATCH, 0x180000                  # plain RAM: keeps the VGA value past rdtsc
        .globl _start
_start:
        cli
        mov esi, MMIO
        mov ebx, [esi + 0x44]
block:
        mov ecx, [esi + 0x40]
        rdtsc
        mov edi, eax
        mov ebp, edx
1:      mov eax, [esi]                          # served by the test's IOREQ server
        dec ecx
        jnz 1b
        rdtsc
        sub eax, edi
        sbb edx, ebp
        mov [esi + 0x48], eax
        mov [esi + 0x4c], edx
        mov ecx, [esi + 0x40]
        rdtsc
        mov edi, eax
        mov ebp, edx
2:      mov eax, [VGA]                          # served by QEMU
        dec ecx
        jnz 2b
        mov [SCRATCH], eax
        rdtsc
        sub eax, edi
        sbb edx, ebp
        mov [esi + 0x58], eax
        mov [esi + 0x5c], edx
        mov eax, [SCRATCH]
        mov [esi + 0x60], eax
        dec ebx
        jnz block
        mov dword ptr [esi + 0x50], 0xdd
3:      hlt
        jmp 3b
