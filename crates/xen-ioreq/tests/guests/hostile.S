# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Hostile HVM test guest (tests/hostile_guest.rs, HOSTILE_CODE), loaded by the toolstack in
# place of the HVM firmware and entered in flat 32-bit protected mode without paging at
# 0x100100. It sends an IOREQ server what a hostile guest can make Xen send: every access size
# the ISA has at odd alignments (10- and 16-byte ones Xen splits, page-crossing ones), port and
# MMIO holes of the server's ranges where no device sits, `rep ins/outs/movs/stos` with huge
# counts, backwards (df=1) across the edge of RAM into frames the guest does not have, guest
# pointers into the special pages (the legacy ioreq pages) that the device model does not
# map, a flood of buffered VGA writes far past the ring's 511 slots, and port/MMIO accesses in
# quick succession. Each step N starts with `out STEP_PORT, N` and ends with the normal access:
# `in eax, CHECK_PORT` must read CHECK_MAGIC | N; the guest then writes its verdict to
# RESULT_PORT (1: all its checks passed; 0xe?: which check failed; 0xfa: a fault, whose vector
# went to FAULT_PORT, cut the step short). Values only the test can judge go to REPORT_PORT.
# The guest ends with 0xdd to DONE_PORT.
#   as --32 hostile.S -o hostile.o
#   ld -m elf_i386 -Ttext=0x100100 --oformat binary hostile.o -o hostile.bin
        .intel_syntax noprefix
        .code32
        .set PORTS, 0x5e0
        .set DATA_PORT, PORTS                   # reads: 0xd0 + offset per byte; writes hashed
        .set CHECK_PORT, PORTS + 4              # 4-byte reads: CHECK_MAGIC | step
        .set STEP_PORT, PORTS + 8
        .set RESULT_PORT, PORTS + 9
        .set FAULT_PORT, PORTS + 10
        .set REPORT_PORT, PORTS + 12            # 4-byte writes: a value for the test
        .set DONE_PORT, PORTS + 15
        .set HOLE_PORT, PORTS + 0x13            # in the server's range, no device
        .set CHECK_MAGIC, 0x5afe0000
        .set MMIO, 0xe0000000                   # device: 0x2000 bytes of store; then a hole
        .set VGA, 0xa0000                       # device: 0x20000 bytes of store (buffered writes)
        .set STACK, 0x180000
        .set IDT, 0x170000                      # 32 gates, built at start
        .set BUF_A, 0x200000
        .set BUF_B, 0x210000
        .set HUGE, 0x100000                     # bytes of the huge `rep outsb`
        .set IOREQ_SERVER_PAGES, 0xfeff0000     # 8 frames below the special pages; below: none
        .set IOREQ_PAGE, 0xfeffd000             # the legacy ioreq page's frame
        .set FLOOD, 0x1800                      # bytes per pass of the VGA flood
        .set QUICK, 2000                        # iterations of the quick-succession loop

        .macro begin n
        mov dword ptr [status], 1
        mov dword ptr [resume], offset end_\n
        mov al, \n
        mov dx, STEP_PORT
        out dx, al
        .endm

        .macro end n
end_\n:
        mov eax, \n
        call check
        .endm

        # eax must be \val, else the step's verdict is \code.
        .macro expect val, code
        cmp eax, \val
        je 9f
        mov dword ptr [status], \code
9:
        .endm

        .macro report
        mov dx, REPORT_PORT
        out dx, eax
        .endm

        .globl _start
_start:
        cli
        lgdt [gdt_desc]
        .byte 0xea                              # ljmp 0x08:1f (our flat code segment)
        .long 1f
        .word 0x08
1:      mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov fs, ax
        mov gs, ax
        mov esp, STACK
        # Vectors 0-31 to their stubs: a fault ends the step, not the guest.
        mov edi, IDT
        mov esi, offset stubs
        mov ecx, 32
2:      mov eax, esi
        mov [edi], ax
        mov word ptr [edi + 2], 0x08
        mov word ptr [edi + 4], 0x8e00          # present 32-bit interrupt gate
        shr eax, 16
        mov [edi + 6], ax
        add edi, 8
        add esi, 8
        loop 2b
        lidt [idt_desc]
        mov eax, cr4
        or eax, 0x600                           # OSFXSR | OSXMMEXCPT
        mov cr4, eax
        mov eax, cr0
        and eax, ~0xc                           # clear EM and TS
        or eax, 0x22                            # set MP and NE
        mov cr0, eax
        fninit

        # 1: port I/O of 1, 2 and 4 bytes at odd ports; a read straddling the device's end
        # and accesses to a port of the server's range with no device (read as all ones).
        begin 1
        mov dx, PORTS + 1
        mov al, 0x11
        out dx, al
        mov dx, PORTS + 3
        mov ax, 0x3322
        out dx, ax
        mov dx, PORTS + 5
        mov eax, 0x77665544
        out dx, eax
        mov dx, PORTS + 1
        in eax, dx
        expect 0xd4d3d2d1, 0xe1
        mov dx, PORTS + 3
        xor eax, eax
        in ax, dx
        expect 0xd4d3, 0xe2
        mov dx, PORTS + 14
        in eax, dx
        expect -1, 0xe3
        mov dx, HOLE_PORT
        in eax, dx
        expect -1, 0xe4
        out dx, eax
        end 1

        # 2: MMIO of 1, 2, 4, 8, 10 and 16 bytes at odd addresses, dwords across a page
        # boundary and into the hole, read back.
        begin 2
        mov esi, MMIO
        mov byte ptr [esi + 1], 0x11
        mov word ptr [esi + 3], 0x3322
        mov dword ptr [esi + 5], 0x77665544
        movq xmm0, [quad]
        movq [esi + 0x11], xmm0
        movdqu xmm1, [oct]
        movdqu [esi + 0x23], xmm1
        fld tbyte ptr [ten]
        fstp tbyte ptr [esi + 0x41]
        mov dword ptr [esi + 0xffe], 0xaabbccdd
        mov dword ptr [esi + 0xfff], 0x01020304
        mov dword ptr [esi + 0x1ffe], 0x05060708
        mov eax, [esi + 5]
        expect 0x77665544, 0xe1
        mov eax, [esi + 0xffe]
        expect 0x020304dd, 0xe2
        movq xmm2, [esi + 0x11]
        pcmpeqb xmm2, xmm0
        pmovmskb eax, xmm2
        expect 0xffff, 0xe3
        movdqu xmm3, [esi + 0x23]
        pcmpeqb xmm3, xmm1
        pmovmskb eax, xmm3
        expect 0xffff, 0xe4
        mov eax, [MMIO + 0x2000]
        expect -1, 0xe5
        mov eax, [MMIO + 0x1ffe]                # half device, half hole
        report
        mov eax, [esi + 0x41]                   # what the 10-byte store left, for the test
        report
        mov eax, [esi + 0x45]
        report
        movzx eax, word ptr [esi + 0x49]
        report
        fld tbyte ptr [esi + 0x41]              # and what a 10-byte load reads back
        fstp tbyte ptr [BUF_A]
        mov eax, [BUF_A]
        report
        mov eax, [BUF_A + 4]
        report
        movzx eax, word ptr [BUF_A + 8]
        report
        end 2

        # 3: `rep movsd` between RAM and MMIO (data_is_ptr), forwards then backwards.
        begin 3
        mov edi, BUF_A
        mov ecx, 0x800
        mov eax, 0x12345678
1:      stosd
        add eax, 0x9e3779b9
        loop 1b
        mov esi, BUF_A
        mov edi, MMIO
        mov ecx, 0x800
        rep movsd
        std
        mov esi, MMIO + 0x1ffc
        mov edi, BUF_B + 0x1ffc
        mov ecx, 0x800
        rep movsd
        cld
        mov esi, BUF_A
        mov edi, BUF_B
        mov ecx, 0x800
        repe cmpsd
        sete al
        movzx eax, al
        expect 1, 0xe1
        end 3

        # 4: a huge `rep outsb` (data_is_ptr, HUGE bytes); the guest reports the hash of what
        # it sends (h = h * 31 + byte) for the test to compare with what the port got.
        begin 4
        mov esi, 0x100000
        mov ecx, HUGE
        xor ebx, ebx
        xor eax, eax
1:      lodsb
        imul ebx, ebx, 31
        add ebx, eax
        loop 1b
        mov eax, ebx
        report
        mov esi, 0x100000
        mov ecx, HUGE
        mov dx, DATA_PORT
        rep outsb
        end 4

        # 5: `rep insb` backwards (df=1) from the lowest of the frames kept for ioreq servers,
        # which the device model does not map, down into the unpopulated frames below it.
        begin 5
        std
        mov edi, IOREQ_SERVER_PAGES + 0x7ff
        mov ecx, 0x1000
        mov dx, DATA_PORT
        rep insb
        cld
        end 5

        # 6: data_is_ptr into the legacy ioreq page's frame: `rep insd`, `rep outsd` and a
        # `rep movsd` from it to MMIO.
        begin 6
        mov edi, IOREQ_PAGE
        mov ecx, 0x400
        mov dx, DATA_PORT
        rep insd
        mov esi, IOREQ_PAGE
        mov ecx, 0x400
        rep outsd
        mov esi, IOREQ_PAGE
        mov edi, MMIO + 0x1000
        mov ecx, 0x400
        rep movsd
        end 6

        # 7: `rep insb` backwards from RAM down into the VGA hole: RAM gets 0xd0s through a
        # data_is_ptr request, the hole one element at a time (each a buffered VGA write).
        begin 7
        std
        mov edi, 0xc07ff
        mov ecx, 0x1000
        mov dx, DATA_PORT
        rep insb
        cld
        movzx eax, byte ptr [0xc0000]
        expect 0xd0, 0xe1
        movzx eax, byte ptr [0xc07ff]
        expect 0xd0, 0xe2
        end 7

        # 8: `rep stosd` to MMIO with a huge count, forwards and backwards (past the server's
        # range both ways); what the device holds after is reported.
        begin 8
        mov edi, MMIO
        mov eax, 0x5a5a5a5a
        mov ecx, 0x100000
        rep stosd
        std
        mov edi, MMIO + 0x1ffc
        mov eax, 0xa5a5a5a5
        mov ecx, 0x100000
        rep stosd
        cld
        mov eax, [MMIO]
        report
        mov eax, [MMIO + 0x1ffc]
        report
        end 8

        # 9: a flood of single buffered writes to the VGA window, two passes over FLOOD bytes
        # (24 times the ring's 511 slots); the last byte is read back.
        begin 9
        xor ecx, ecx
1:      mov eax, ecx
        xor al, 0x55
        mov [VGA + 0x1000 + ecx], al
        inc ecx
        cmp ecx, FLOOD
        jne 1b
        xor ecx, ecx
1:      imul eax, ecx, 7
        add eax, 3
        mov [VGA + 0x1000 + ecx], al
        inc ecx
        cmp ecx, FLOOD
        jne 1b
        movzx eax, byte ptr [VGA + 0x1000 + FLOOD - 1]
        expect (((FLOOD - 1) * 7 + 3) & 0xff), 0xe1
        end 9

        # 10: port and MMIO accesses in quick succession, each MMIO write read back.
        begin 10
        mov ecx, QUICK
1:      mov dx, DATA_PORT
        mov al, cl
        out dx, al
        mov [MMIO + 0x100], ecx
        mov eax, [MMIO + 0x100]
        cmp eax, ecx
        jne 2f
        loop 1b
        jmp 3f
2:      mov dword ptr [status], 0xe1
3:
        end 10

        # 11: `rep movsd` from MMIO to MMIO (VGA to the device) and from RAM into the hole.
        begin 11
        mov esi, VGA + 0x1000
        mov edi, MMIO + 0x800
        mov ecx, 0x100
        rep movsd
        mov esi, BUF_A
        mov edi, MMIO + 0x3000
        mov ecx, 0x400
        rep movsd
        mov eax, [MMIO + 0x800]
        expect 0x18110a03, 0xe1
        end 11

        mov al, 0xdd
        mov dx, DONE_PORT
        out dx, al
1:      hlt
        jmp 1b

# The normal access after a step (eax = step): must read CHECK_MAGIC | step.
check:
        cld
        mov ebx, eax
        or ebx, CHECK_MAGIC
        mov dx, CHECK_PORT
        in eax, dx
        cmp eax, ebx
        je 1f
        mov dword ptr [status], 0xee
1:      mov eax, [status]
        mov dx, RESULT_PORT
        out dx, al
        ret

fault:
        mov esp, STACK
        mov dx, FAULT_PORT
        out dx, al
        mov dword ptr [status], 0xfa
        cld
        jmp dword ptr [resume]

        .balign 8
stubs:
        .irp v, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
        .balign 8
        mov al, \v
        jmp fault
        .endr

        .balign 8
gdt:    .quad 0
        .quad 0x00cf9b000000ffff                # 0x08: flat 32-bit code
        .quad 0x00cf93000000ffff                # 0x10: flat data
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt
        .balign 8
idt_desc:
        .word 32 * 8 - 1
        .long IDT
        .balign 16
quad:   .quad 0xfedcba9876543210
oct:    .quad 0x1716151413121110, 0x1f1e1d1c1b1a1918
ten:    .quad 0xd1d2d3d4d5d6d7d8                # 80-bit: a normal number, round-trips
        .word 0x4001
        .balign 4
status: .long 0
resume: .long 0
