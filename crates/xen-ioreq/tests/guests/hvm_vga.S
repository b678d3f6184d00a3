# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# HVM test guest (tests/xen_ioreq_hvm.rs, VGA_CODE), loaded by the toolstack in place of the
# HVM firmware and entered in flat 32-bit protected mode without paging at 0x100100. Xen's
# stdvga intercept posts single writes to the VGA window (0xa0000-0xbffff) to the buffered
# ring of the IOREQ server covering it; reads there, and port I/O, stay synchronous. Setting
# the emulated RTC's year makes Xen post a time-offset request to every server's ring.
#   as --32 hvm_vga.S -o hvm_vga.o
#   ld -m elf_i386 -Ttext=0x100100 --oformat binary hvm_vga.o -o hvm_vga.bin
        .intel_syntax noprefix
        .code32
        .set VGA, 0xa0000
        .set DONE_PORT, 0x5e7
        .globl _start
_start:
        cli
        mov esi, VGA
        mov eax, [esi]                          # synchronous read, answered by the server
        mov [esi + 0x10], eax                   # buffered: 4 bytes, the value just read
        mov byte ptr [esi + 0x20], 0x11         # buffered: 1 byte
        mov word ptr [esi + 0x22], 0x3322       # buffered: 2 bytes
        mov dword ptr [esi + 0x24], 0x77665544  # buffered: 4 bytes
        mov eax, cr4
        or eax, 0x600                           # OSFXSR | OSXMMEXCPT
        mov cr4, eax
        mov eax, cr0
        and eax, ~4                             # clear EM
        or eax, 2                               # set MP
        mov cr0, eax
        movq xmm0, [quad]
        movq [esi + 0x28], xmm0                 # buffered: 8 bytes in two slots
        mov dword ptr [VGA + 0x1fffc], 0xa5a5a5a5   # buffered: last dword of the window
        mov al, 9                               # RTC year register ...
        out 0x70, al
        mov al, 0x99                            # ... := 2099 (BCD): a time-offset request
        out 0x71, al
        mov byte ptr [esi + 0x30], 0xee         # buffered after the time offset
        mov al, 0xdd                            # synchronous: everything above is posted
        mov dx, DONE_PORT
        out dx, al
1:      hlt
        jmp 1b
        .p2align 3
quad:   .quad 0xfedcba9876543210
