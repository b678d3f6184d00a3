# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Hostile MMIO guest for Xen on Arm (tests/arm_hostile.rs, ARM_HOSTILE_CODE): an arm64 Linux
# Image (the header xl's loader checks) entered at EL1 with the MMU off. It turns the MMU on
# with one table of four 1 GiB blocks: VA 0 maps PA 0 as Normal non-cacheable memory (where
# unaligned accesses are allowed), VA 1 GiB maps RAM, VA 2 GiB maps PA 0 again as
# Device-nGnRnE memory (unaligned accesses fault in the guest itself). Its exception handler
# writes ESR_EL1 and FAR_EL1 of every synchronous exception to CTRL + ESR/FAR and skips the
# instruction, so an access Xen refuses (a data abort injected into the guest) shows up in
# the test.
#
# Steps (the test's STEPS): each begins by writing its number to CTRL + STEP and ends with
# `end_step`: a read of CTRL + CHECK and a write and read of DEV + 0x800, which must be
# answered right, then the step's verdict to CTRL + RESULT (1: every check passed; 0xe?: the
# check of that code failed; 0xee/0xed: the normal accesses were answered wrong).
#   1 every size (1, 2, 4, 8) aligned, sign-extending loads, 32-bit loads, load-acquire and
#     store-release, stores of the zero register and a load into it (a sign-extending load
#     into a W register is reported: what the register gets is Xen's doing)
#   2 unaligned accesses (Normal alias), one across a page boundary inside the device, one
#     straddling the device's end into a hole of the server's range
#   3 unaligned accesses to Device memory: alignment faults in the guest (where the CPU
#     raises them)
#   4 holes of the server's ranges: reads of every size, writes
#   5 outside any server's range, and across the end of one: Xen injects data aborts
#   6 accesses without a valid syndrome (ldp, stp, ldxr, SIMD, pre-index writeback, dc zva)
#   7 post-index loads and stores (no valid syndrome either: Xen decodes these; x0 and x1
#     after the load are reported)
#   8 cache maintenance by address on the window (Xen ignores it)
#   9 a storm of writes to the device, then one to a hole
#   aarch64-linux-gnu-as -I. arm_hostile.S -o a.o && aarch64-linux-gnu-ld -Ttext=0 a.o -o a.elf
#   aarch64-linux-gnu-objcopy -O binary a.elf a.bin
        .set DEV, 0x02000000            // the test's store: 0x2000 bytes; the server serves 0x4000
        .set CTRL, 0x02010000           // control registers; the server serves 0x1000
        .set OUTSIDE, 0x02030000        // no server
        .set DEVICE, 0x80000000         // VA offset of the Device-nGnRnE alias
        .set STEP, 0x00
        .set CHECK, 0x04
        .set RESULT, 0x08
        .set REPORT, 0x10
        .set ESR, 0x18
        .set FAR, 0x20
        .set DONE, 0x28
        .set STORM, 2048
        .set HOLE_STORM, 256

        .include "arm_guest.inc"

        .globl _start
_start:
        image_header start, end
start:
        movz    x25, #((DEVICE + CTRL) >> 16), lsl #16
        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x0, #(3 << 20)          // CPACR_EL1.FPEN: SIMD loads do not trap
        msr     cpacr_el1, x0
        // The table: the page below the image (free: the image sits text_offset into RAM).
        adr     x0, _start
        sub     x0, x0, #0x1000
        ldr     x1, =0x705              // PA 0: block, AttrIndx 1, inner shareable, AF
        str     x1, [x0]
        ldr     x1, =0x40000709         // RAM: block, AttrIndx 2, inner shareable, AF
        str     x1, [x0, #8]
        ldr     x1, =0x401              // PA 0: block, AttrIndx 0 (Device-nGnRnE), AF
        str     x1, [x0, #16]
        str     xzr, [x0, #24]
        msr     ttbr0_el1, x0
        ldr     x1, =0xff4400           // MAIR: 0 Device-nGnRnE, 1 Normal NC, 2 Normal WB
        msr     mair_el1, x1
        ldr     x1, =0x80800020         // TCR: T0SZ 32 (4 GiB), 4 KiB granules, EPD1
        msr     tcr_el1, x1
        isb
        tlbi    vmalle1
        dsb     nsh
        isb
        mrs     x1, sctlr_el1
        orr     x1, x1, #1              // M
        bic     x1, x1, #2              // A: no alignment check on Normal memory
        msr     sctlr_el1, x1
        isb
        movz    x20, #(DEV >> 16), lsl #16
        movz    x21, #((DEVICE + DEV) >> 16), lsl #16

        // 1: every size, aligned, through the Device alias.
        step    1
        mov     w0, #0x81
        strb    w0, [x21, #0x10]
        ldrb    w1, [x21, #0x10]
        expect  x1, x0, 0xe1
        ldrsb   x1, [x21, #0x10]
        mov     x2, #-0x7f
        expect  x1, x2, 0xe2
        ldrsb   w1, [x21, #0x10]        // into a W register: Xen's to sign-extend; reported
        str     x1, [x25, #REPORT]
        mov     w0, #0x8382
        strh    w0, [x21, #0x12]
        ldrh    w1, [x21, #0x12]
        expect  x1, x0, 0xe4
        ldrsh   x1, [x21, #0x12]
        ldr     x2, =0xffffffffffff8382
        expect  x1, x2, 0xe5
        ldr     w0, =0x87868584
        str     w0, [x21, #0x14]
        ldr     w1, [x21, #0x14]
        expect  x1, x0, 0xe6
        ldrsw   x1, [x21, #0x14]
        ldr     x2, =0xffffffff87868584
        expect  x1, x2, 0xe7
        ldr     x0, =0x8f8e8d8c8b8a8988
        str     x0, [x21, #0x18]
        ldr     x1, [x21, #0x18]
        expect  x1, x0, 0xe8
        ldr     x0, =0x0123456789abcdef
        add     x3, x21, #0x20
        stlr    x0, [x3]
        ldar    x1, [x3]
        expect  x1, x0, 0xe9
        str     x0, [x21, #0x28]
        str     xzr, [x21, #0x28]
        ldr     x1, [x21, #0x28]
        expect  x1, xzr, 0xea
        ldr     xzr, [x21, #0x18]
        bl      end_step

        // 2: unaligned, through the Normal alias.
        step    2
        ldr     x3, =DEV + 0x101
        ldr     x0, =0x1716151413121110
        str     x0, [x3]
        ldr     x1, [x3]
        expect  x1, x0, 0xe1
        ldr     x3, =DEV + 0x10a
        ldr     w0, =0x2b2a2928
        str     w0, [x3]
        ldr     w1, [x3]
        expect  x1, x0, 0xe2
        ldr     x3, =DEV + 0x113
        mov     w0, #0x3130
        strh    w0, [x3]
        ldrh    w1, [x3]
        expect  x1, x0, 0xe3
        ldr     x3, =DEV + 0xffd        // across the page boundary at DEV + 0x1000
        ldr     x0, =0x4746454443424140
        str     x0, [x3]
        ldr     x1, [x3]
        expect  x1, x0, 0xe4
        ldr     x3, =DEV + 0x1ffe       // across the device's end, into a hole
        ldr     w0, =0x5b5a5958
        str     w0, [x3]
        ldr     w1, [x3]
        str     x1, [x25, #REPORT]
        bl      end_step

        // 3: unaligned, through the Device alias.
        step    3
        ldr     x3, =DEVICE + DEV + 0x102
        ldr     w1, [x3]
        str     w1, [x3]
        bl      end_step

        // 4: holes of the server's ranges.
        step    4
        ldr     x3, =DEVICE + DEV + 0x3000
        ldrb    w1, [x3]
        mov     w2, #0xff
        expect  x1, x2, 0xe1
        ldrh    w1, [x3, #2]
        mov     w2, #0xffff
        expect  x1, x2, 0xe2
        ldr     w1, [x3, #4]
        mov     w2, #-1
        expect  x1, x2, 0xe3
        ldr     x1, [x3, #8]
        mov     x2, #-1
        expect  x1, x2, 0xe4
        str     x2, [x3, #16]
        ldr     w1, [x25, #0x800]
        mov     w2, #-1
        expect  x1, x2, 0xe5
        str     w1, [x25, #0x804]
        bl      end_step

        // 5: outside any server's range, and across the end of one.
        step    5
        ldr     x3, =DEVICE + OUTSIDE
        ldr     w1, [x3]
        str     w1, [x3]
        ldr     x3, =DEV + 0x3ffc
        ldr     x1, [x3]
        bl      end_step

        // 6: no valid syndrome.
        step    6
        add     x3, x21, #0x40
        ldp     x1, x2, [x3]
        stp     x1, x2, [x3]
        ldxr    x1, [x3]
        ldr     q0, [x3]
        str     d0, [x3]
        ldr     x1, [x3, #8]!
        add     x4, x20, #0x400
        dc      zva, x4
        bl      end_step

        // 7: post-index: Xen decodes the instruction and updates the base register.
        step    7
        ldr     x0, =0x7776757473727170
        add     x3, x21, #0x200
        mov     x4, x3
        str     x0, [x3], #8
        add     x5, x4, #8
        expect  x3, x5, 0xe1
        mov     x1, #0
        ldr     x1, [x4], #16           // where the value lands is Xen's business: reported
        str     x0, [x25, #REPORT]
        str     x1, [x25, #REPORT]
        add     x5, x5, #8
        expect  x4, x5, 0xe3
        bl      end_step

        // 8: cache maintenance by address.
        step    8
        add     x3, x20, #0x400
        dc      civac, x3
        dc      cvac, x3
        dc      ivac, x3
        bl      end_step

        // 9: a storm of writes, each a request; the last one stays.
        step    9
        add     x3, x21, #0x300
        mov     w5, #0
storm:
        add     w5, w5, #1
        str     w5, [x3]
        cmp     w5, #STORM
        b.ne    storm
        ldr     w1, [x3]
        expect  x1, x5, 0xe1
        ldr     x3, =DEVICE + DEV + 0x3800
        mov     w5, #0
hole_storm:
        add     w5, w5, #1
        str     w5, [x3]
        cmp     w5, #HOLE_STORM
        b.ne    hole_storm
        bl      end_step

        mov     w0, #0xdd
        str     w0, [x25, #DONE]
halt:
        wfi
        b       halt

// The normal accesses after a step (w19), then its verdict (w24).
end_step:
        ldr     w0, [x25, #CHECK]
        movz    w1, #0x5afe, lsl #16
        add     w1, w1, w19
        cmp     w0, w1
        b.eq    1f
        mov     w24, #0xee
1:      ldr     x1, =0x1122334455667700
        add     x1, x1, x19
        str     x1, [x21, #0x800]
        ldr     x0, [x21, #0x800]
        cmp     x0, x1
        b.eq    2f
        mov     w24, #0xed
2:      str     w24, [x25, #RESULT]
        ret

        .ltorg

// Synchronous exceptions at EL1: report and skip the instruction. Nothing else is expected
// (interrupts stay masked): those entries stop the guest.
        .balign 0x800
vectors:
        b       sync                    // current EL, SP0
        .balign 0x80
        b       halt
        .balign 0x80
        b       halt
        .balign 0x80
        b       halt
        .balign 0x80
sync:                                   // current EL, SPx
        mrs     x26, esr_el1
        str     x26, [x25, #ESR]
        mrs     x26, far_el1
        str     x26, [x25, #FAR]
        mrs     x26, elr_el1
        add     x26, x26, #4
        msr     elr_el1, x26
        eret
        .balign 0x80
        b       halt
        .balign 0x80
        b       halt
        .balign 0x80
        b       halt
        .balign 0x80
end:
