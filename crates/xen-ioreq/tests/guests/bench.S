# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Round-trip benchmark guest (tests/xen_ioreq.rs, BENCH_CODE). Entered in flat 32-bit protected
# mode at 0x100100: reads N from MMIO + 0x40, does N 4-byte MMIO reads of MMIO + 0, then
# writes the elapsed TSC ticks to MMIO + 0x48 (low) / + 0x4c (high) and 0xdd to MMIO + 0x50.
#   as --32 bench.S -o bench.o && ld -m elf_i386 -Ttext=0x100100 --oformat binary bench.o -o bench.bin
        .intel_syntax noprefix
        .code32
        .set MMIO, 0xe0000000
        .globl _start
_start:
        cli
        mov esi, MMIO
        mov ecx, [esi + 0x40]
        rdtsc
        mov edi, eax
        mov ebp, edx
1:      mov eax, [esi]
        dec ecx
        jnz 1b
        rdtsc
        sub eax, edi
        sbb edx, ebp
        mov [esi + 0x48], eax
        mov [esi + 0x4c], edx
        mov dword ptr [esi + 0x50], 0xdd
2:      hlt
        jmp 2b
