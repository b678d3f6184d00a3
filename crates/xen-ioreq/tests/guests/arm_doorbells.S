# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Doorbell guest for Xen on Arm (tests/arm_doorbells.rs, ARM_DOORBELLS_CODE): an arm64 Linux
# Image (the header xl's loader checks) entered at EL1 with the MMU off. Per round it reads the
# round number from CTRL + 0 (the test answers once a server for the round exists; 0 ends),
# the number of doorbells from CTRL + 4, then writes queue 0 to QueueNotify (BASE + 0x50) and
# 0xf to Status (BASE + 0x70) that many times, and writes the round number to CTRL + 8.
#   aarch64-linux-gnu-as arm_doorbells.S -o a.o && aarch64-linux-gnu-ld -Ttext=0 a.o -o a.elf
#   aarch64-linux-gnu-objcopy -O binary a.elf a.bin
        .set BASE, 0x02000000
        .set CTRL, 0x02010000
        .globl _start
_start:
        b       start                   // code0
        nop                             // code1
        .quad   0x80000                 // text_offset
        .quad   end - _start            // image_size
        .quad   0                       // flags
        .quad   0, 0, 0                 // res2..res4
        .ascii  "ARM\x64"               // magic
        .word   0                       // res5
start:
        movz    x1, #(CTRL >> 16), lsl #16
        movz    x2, #(BASE >> 16), lsl #16
        mov     w7, #0
        mov     w6, #0xf
round:
        ldr     w4, [x1]
        cbz     w4, halt
        ldr     w5, [x1, #4]
        cbz     w5, done
ring:
        str     w7, [x2, #0x50]
        str     w6, [x2, #0x70]
        subs    w5, w5, #1
        b.ne    ring
done:
        str     w4, [x1, #8]
        b       round
halt:
        wfi
        b       halt
end:
