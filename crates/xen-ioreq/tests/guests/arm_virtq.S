# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Hostile virtqueue guest for Xen on Arm (tests/arm_hostile.rs, ARM_VIRTQ_CODE): an arm64
# Linux Image entered at EL1 with the MMU off, driving the virtio-mmio entropy device of
# examples/virtio_rng at DEV (queue 0 of 8 entries in its RAM at QUEUE, split layout of the
# virtio 1.x specification). Each step offers the device something a driver must not, kicks
# the queue (QueueNotify), and reads CTRL + SYNC, which the test answers once the device has
# made a pass over the queue; then it checks the used ring, and makes a normal request (one
# 64-byte buffer) that must be served right: its used entry and bytes go to CTRL + REPORT,
# the verdict (1, or the code of the failed check) to CTRL + RESULT.
#   1 set-up (features, queue), no hostile part
#   2 a descriptor chain that loops (1 -> 2 -> 1)
#   3 a buffer of 0xffffffff bytes; a chain of two such (more than 2^32 bytes)
#   4 buffers outside RAM (below it, the device's own window, past it, past the device
#     model's map, wrapping the address space), and a head index past the queue
#   5 the avail index far ahead of what was offered, then put back
#   aarch64-linux-gnu-as -I. arm_virtq.S -o a.o && aarch64-linux-gnu-ld -Ttext=0 a.o -o a.elf
#   aarch64-linux-gnu-objcopy -O binary a.elf a.bin
        .set DEV, 0x02000000            // virtio-mmio registers
        .set CTRL, 0x02010000
        .set QUEUE, 0x40200000          // descriptor table; avail +0x1000, used +0x2000
        .set BUF, 0x40300000            // the normal request's buffer
        .set BIG, 0x40400000            // room for 64 KiB
        .set STEP, 0x00
        .set CHECK, 0x04
        .set RESULT, 0x08
        .set REPORT, 0x10
        .set DONE, 0x28
        .set SYNC, 0x30
        .set NEXT, 1                    // descriptor flags
        .set WRITE, 2

        .include "arm_guest.inc"

        .macro reg_write off, value
        ldr     w0, =\value
        str     w0, [x20, #\off]
        .endm

        // Descriptor \i: \addr, \len bytes, \flags, \next.
        .macro desc i, addr, len, flags, next
        ldr     x0, =\addr
        str     x0, [x21, #(\i * 16)]
        ldr     w0, =\len
        str     w0, [x21, #(\i * 16 + 8)]
        mov     w0, #\flags
        strh    w0, [x21, #(\i * 16 + 12)]
        mov     w0, #\next
        strh    w0, [x21, #(\i * 16 + 14)]
        .endm

        // Offers the chain at \head: the avail ring's next entry, then its index (w26).
        .macro post head
        and     w0, w26, #7
        add     x1, x22, #4
        mov     w2, #\head
        strh    w2, [x1, w0, uxtw #1]
        add     w26, w26, #1
        dmb     sy
        strh    w26, [x22, #2]
        .endm

        // QueueNotify, then wait for the device's pass.
        .macro kick
        dmb     sy
        str     wzr, [x20, #0x50]
        ldr     w0, [x25, #SYNC]
        dmb     sy
        .endm

        // The used index moved by \n (w27: what the guest has seen).
        .macro used_moved n, code
        ldrh    w0, [x23, #2]
        add     w27, w27, #\n
        and     w27, w27, #0xffff
        expect  x0, x27, \code
        .endm

        // Reports used entry w27 - \j (id | len << 32) and leaves it in x2.
        .macro report_used j
        sub     w0, w27, #\j
        and     w0, w0, #7
        lsl     w0, w0, #3
        add     x1, x23, #4
        add     x1, x1, w0, uxtw
        ldr     w2, [x1]
        ldr     w3, [x1, #4]
        orr     x2, x2, x3, lsl #32
        str     x2, [x25, #REPORT]
        .endm

        .globl _start
_start:
        image_header start, end
start:
        movz    x20, #(DEV >> 16), lsl #16
        movz    x25, #(CTRL >> 16), lsl #16
        ldr     x21, =QUEUE
        add     x22, x21, #0x1000
        add     x23, x21, #0x2000
        mov     w26, #0
        mov     w27, #0
        // Zeroed rings: avail flags and index, used flags and index.
        str     wzr, [x22]
        str     wzr, [x23]

        // 1: the driver's set-up.
        step    1
        ldr     w1, [x20, #0x000]
        ldr     w2, =0x74726976         // "virt"
        expect  x1, x2, 0xe1
        ldr     w1, [x20, #0x004]
        mov     w2, #2
        expect  x1, x2, 0xe2
        ldr     w1, [x20, #0x008]
        mov     w2, #4                  // entropy source
        expect  x1, x2, 0xe3
        reg_write 0x070, 0              // reset
        reg_write 0x070, 3              // ACKNOWLEDGE | DRIVER
        reg_write 0x024, 1
        reg_write 0x020, 1              // VIRTIO_F_VERSION_1 (bit 32)
        reg_write 0x024, 0
        reg_write 0x020, 0
        reg_write 0x070, 0xb            // FEATURES_OK
        ldr     w1, [x20, #0x070]
        mov     w2, #0xb
        expect  x1, x2, 0xe4
        reg_write 0x030, 0
        ldr     w1, [x20, #0x034]
        cmp     w1, #8
        b.hs    1f
        mov     w24, #0xe5
1:      reg_write 0x038, 8
        reg_write 0x080, QUEUE
        reg_write 0x084, 0
        reg_write 0x090, QUEUE + 0x1000
        reg_write 0x094, 0
        reg_write 0x0a0, QUEUE + 0x2000
        reg_write 0x0a4, 0
        reg_write 0x044, 1
        reg_write 0x070, 0xf            // DRIVER_OK
        bl      normal

        // 2: a chain that loops.
        step    2
        desc    1, BUF + 0x100, 16, WRITE | NEXT, 2
        desc    2, BUF + 0x200, 16, WRITE | NEXT, 1
        post    1
        kick
        used_moved 1, 0xe1
        report_used 1
        bl      normal

        // 3: absurd lengths.
        step    3
        desc    3, BIG, 0xffffffff, WRITE, 0
        desc    4, BIG, 0xffffffff, WRITE | NEXT, 5
        desc    5, BIG, 0xffffffff, WRITE, 0
        post    3
        post    4
        kick
        used_moved 2, 0xe1
        report_used 2
        report_used 1
        bl      normal

        // 4: outside RAM, and a head past the queue (last: it gets no used entry).
        step    4
        desc    1, 0x1000, 64, WRITE, 0
        desc    2, DEV, 64, WRITE, 0
        desc    3, 0x46000000, 64, WRITE, 0
        desc    4, 0x100000000, 64, WRITE, 0
        desc    5, 0xffffffffffffff00, 0x1000, WRITE, 0
        post    1
        post    2
        post    3
        post    4
        post    5
        post    0xff
        kick
        used_moved 5, 0xe1
        report_used 5
        report_used 4
        report_used 3
        report_used 2
        report_used 1
        bl      normal

        // 5: the avail index far ahead, then back.
        step    5
        add     w0, w26, #0x4000
        strh    w0, [x22, #2]
        kick
        ldrh    w0, [x23, #2]
        expect  x0, x27, 0xe1
        strh    w26, [x22, #2]
        bl      normal

        mov     w0, #0xdd
        str     w0, [x25, #DONE]
halt:
        wfi
        b       halt

// The normal request of step w19: one 64-byte buffer, which must come back whole; its used
// entry and bytes are reported. Then CHECK, and the verdict (w24).
normal:
        desc    0, BUF, 64, WRITE, 0
        post    0
        kick
        used_moved 1, 0xd1
        report_used 1
        mov     x3, #64
        lsl     x3, x3, #32
        expect  x2, x3, 0xd2
        ldr     x1, =BUF
        mov     w3, #8
1:      ldr     x2, [x1], #8
        str     x2, [x25, #REPORT]
        subs    w3, w3, #1
        b.ne    1b
        ldr     w0, [x25, #CHECK]
        movz    w1, #0x5afe, lsl #16
        add     w1, w1, w19
        expect  x0, x1, 0xee
        str     w24, [x25, #RESULT]
        ret

        .ltorg
end:
