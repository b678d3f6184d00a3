// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The test guests: hand-assembled machine code, each byte group with the
//! instruction it encodes.
//!
//! Guests are a few dozen instructions at most: on nested KVM, guest ring-0
//! code runs through the host's instruction emulator. Ports and addresses
//! are the ones in [`crate::layout`]; every program is loaded at
//! [`CODE_ADDR`](crate::layout::CODE_ADDR), handlers at
//! [`HANDLER_ADDR`](crate::layout::HANDLER_ADDR).

/// Real mode: port out/in and 2-byte MMIO write/read, then `hlt`.
///
/// The guest reports (port 0x500) first 0x11, then the byte it read from
/// port 0x501, then the word it read from MMIO 0x10020.
pub const REAL_PIO_MMIO: &[u8] = &[
    0xba, 0x00, 0x05, //               mov dx, 0x500
    0xb0, 0x11, //                     mov al, 0x11
    0xee, //                           out dx, al
    0x42, //                           inc dx            ; 0x501
    0xec, //                           in al, dx
    0x4a, //                           dec dx            ; 0x500
    0xee, //                           out dx, al        ; report what was read
    0xb8, 0x00, 0x10, //               mov ax, 0x1000
    0x8e, 0xd8, //                     mov ds, ax        ; ds base 0x10000
    0xc7, 0x06, 0x10, 0x00, 0xef, 0xbe, // mov word [0x10], 0xbeef ; MMIO 0x10010
    0xa1, 0x20, 0x00, //               mov ax, [0x20]    ; MMIO 0x10020
    0xef, //                           out dx, ax        ; report the word
    0xf4, //                           hlt
];

/// Real mode: string port I/O. `rep outsb` of the 4 bytes at 0x1200 to
/// port 0x500, then `rep insb` of 3 bytes from port 0x501 to 0x1300, `hlt`.
pub const REAL_STRING_IO: &[u8] = &[
    0xbe, 0x00, 0x12, //               mov si, 0x1200
    0xb9, 0x04, 0x00, //               mov cx, 4
    0xba, 0x00, 0x05, //               mov dx, 0x500
    0xf3, 0x6e, //                     rep outsb
    0xbf, 0x00, 0x13, //               mov di, 0x1300
    0xb9, 0x03, 0x00, //               mov cx, 3
    0x42, //                           inc dx            ; 0x501
    0xf3, 0x6c, //                     rep insb
    0xf4, //                           hlt
];

/// Real mode: writes that should hit ioeventfds, then `hlt`.
///
/// 0x42 to port 0x504 (matches), 0x43 to port 0x504 (does not match, so it
/// reaches the bus), one byte to MMIO 0x10800 (matches any write).
pub const REAL_IOEVENTFD: &[u8] = &[
    0xba, 0x04, 0x05, //               mov dx, 0x504
    0xb0, 0x42, //                     mov al, 0x42
    0xee, //                           out dx, al        ; ioeventfd, no exit
    0xb0, 0x43, //                     mov al, 0x43
    0xee, //                           out dx, al        ; exit to the bus
    0xb8, 0x00, 0x10, //               mov ax, 0x1000
    0x8e, 0xd8, //                     mov ds, ax
    0xc6, 0x06, 0x00, 0x08, 0x07, //   mov byte [0x800], 7 ; ioeventfd, no exit
    0xf4, //                           hlt
];

/// Real mode: accesses a failing device and an empty port.
///
/// `out` and `in` on port 0x510 (device fails both), reports the byte the
/// failed `in` gave (all ones), then `out` to port 0x620 (no device).
pub const REAL_DEVICE_ERRORS: &[u8] = &[
    0xba, 0x10, 0x05, //               mov dx, 0x510
    0xb0, 0x5a, //                     mov al, 0x5a
    0xee, //                           out dx, al        ; device error
    0xec, //                           in al, dx         ; device error, al = 0xff
    0xba, 0x00, 0x05, //               mov dx, 0x500
    0xee, //                           out dx, al        ; report al
    0xba, 0x20, 0x06, //               mov dx, 0x620
    0xee, //                           out dx, al        ; no device
    0xf4, //                           hlt
];

/// Real mode with the in-hypervisor PIC: set the PIC's vector base to 0x20,
/// unmask IRQ 4, enable interrupts, say "ready" on port 0x502, then wait
/// (bounded by the TSC, about 2^33 cycles) for the handler to set the flag
/// at 0x7000, say "done" on port 0x503 and halt with interrupts off (which
/// ends the vCPU on backends that run it to the halt, Xen's among them).
pub const REAL_IRQ_WAIT: &[u8] = &[
    0xb0, 0x11, //                     mov al, 0x11      ; ICW1: init, ICW4 follows
    0xe6, 0x20, //                     out 0x20, al
    0xb0, 0x20, //                     mov al, 0x20      ; ICW2: vectors 0x20-0x27
    0xe6, 0x21, //                     out 0x21, al
    0xb0, 0x04, //                     mov al, 0x04      ; ICW3: slave on IRQ 2
    0xe6, 0x21, //                     out 0x21, al
    0xb0, 0x01, //                     mov al, 0x01      ; ICW4: 8086 mode
    0xe6, 0x21, //                     out 0x21, al
    0xb0, 0xef, //                     mov al, 0xef      ; OCW1: only IRQ 4 unmasked
    0xe6, 0x21, //                     out 0x21, al
    0xfb, //                           sti
    0xba, 0x02, 0x05, //               mov dx, 0x502
    0xee, //                           out dx, al        ; ready
    0x0f, 0x31, //                     rdtsc
    0x66, 0x89, 0xd6, //               mov esi, edx
    // wait:
    0x80, 0x3e, 0x00, 0x70, 0x00, //   cmp byte [0x7000], 0
    0x75, 0x0b, //                     jne done
    0x0f, 0x31, //                     rdtsc
    0x66, 0x29, 0xf2, //               sub edx, esi
    0x66, 0x83, 0xfa, 0x02, //         cmp edx, 2
    0x72, 0xee, //                     jb wait
    // done:
    0xba, 0x03, 0x05, //               mov dx, 0x503
    0xee, //                           out dx, al        ; done
    0xfa, //                           cli               ; so hlt ends the vCPU
    0xf4, //                           hlt
];

/// Real-mode handler for the PIC interrupt: set the flag, EOI, report the
/// vector (0x24) on port 0x500, `iret`.
pub const REAL_IRQ_HANDLER: &[u8] = &[
    0xc6, 0x06, 0x00, 0x70, 0x01, //   mov byte [0x7000], 1
    0xb0, 0x20, //                     mov al, 0x20
    0xe6, 0x20, //                     out 0x20, al      ; non-specific EOI
    0xba, 0x00, 0x05, //               mov dx, 0x500
    0xb0, 0x24, //                     mov al, 0x24
    0xee, //                           out dx, al
    0xcf, //                           iret
];

/// Flat 32-bit protected mode: read-only memory, dirty logging and 4-byte
/// MMIO, then `hlt`.
///
/// Reports the dword at ROM 0x20000, writes 0x11223344 to it (becomes
/// MMIO), writes 0x55667788 to 0x31000 (page 1 of the dirty-logged region),
/// writes 0xdeadbeef to MMIO 0x10000, reads MMIO 0x10008 and reports it.
pub const PROT_MEMORY: &[u8] = &[
    0xa1, 0x00, 0x00, 0x02, 0x00, //   mov eax, [0x20000]
    0x66, 0xba, 0x00, 0x05, //         mov dx, 0x500
    0xef, //                           out dx, eax       ; report ROM value
    0xc7, 0x05, 0x00, 0x00, 0x02, 0x00, 0x44, 0x33, 0x22,
    0x11, // mov dword [0x20000], 0x11223344
    0xc7, 0x05, 0x00, 0x10, 0x03, 0x00, 0x88, 0x77, 0x66,
    0x55, // mov dword [0x31000], 0x55667788
    0xc7, 0x05, 0x00, 0x00, 0x01, 0x00, 0xef, 0xbe, 0xad,
    0xde, // mov dword [0x10000], 0xdeadbeef
    0x8b, 0x1d, 0x08, 0x00, 0x01, 0x00, // mov ebx, [0x10008]
    0x89, 0xd8, //                     mov eax, ebx
    0xef, //                           out dx, eax       ; report MMIO value
    0xf4, //                           hlt
];

/// Flat 32-bit protected mode with the in-hypervisor LAPIC: software-enable
/// the LAPIC (spurious vector 0xff), enable interrupts, say "ready", wait
/// (bounded by the TSC) for the handler's flag, say "done", halt with
/// interrupts off.
pub const PROT_MSI_WAIT: &[u8] = &[
    0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00,
    0x00, // mov dword [0xfee000f0], 0x1ff
    0xfb, //                           sti
    0x66, 0xba, 0x02, 0x05, //         mov dx, 0x502
    0xee, //                           out dx, al        ; ready
    0x0f, 0x31, //                     rdtsc
    0x89, 0xd6, //                     mov esi, edx
    // wait:
    0x80, 0x3d, 0x00, 0x70, 0x00, 0x00, 0x00, // cmp byte [0x7000], 0
    0x75, 0x09, //                     jne done
    0x0f, 0x31, //                     rdtsc
    0x29, 0xf2, //                     sub edx, esi
    0x83, 0xfa, 0x02, //               cmp edx, 2
    0x72, 0xee, //                     jb wait
    // done:
    0x66, 0xba, 0x03, 0x05, //         mov dx, 0x503
    0xee, //                           out dx, al        ; done
    0xfa, //                           cli               ; so hlt ends the vCPU
    0xf4, //                           hlt
];

/// 32-bit handler for the MSI: set the flag, LAPIC EOI, report the vector
/// (0x40) on port 0x500, then say "done" itself and halt.
///
/// It does not return with `iretd`: where guest ring-0 code runs through
/// KVM's instruction emulator (nested KVM), that emulator only implements
/// real-mode `iret`, and a protected-mode one ends in an emulation error.
pub const PROT_MSI_HANDLER: &[u8] = &[
    0xc6, 0x05, 0x00, 0x70, 0x00, 0x00, 0x01, // mov byte [0x7000], 1
    0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, // mov dword [0xfee000b0], 0
    0x66, 0xba, 0x00, 0x05, //         mov dx, 0x500
    0xb0, 0x40, //                     mov al, 0x40
    0xee, //                           out dx, al
    0x66, 0xba, 0x03, 0x05, //         mov dx, 0x503
    0xee, //                           out dx, al        ; done
    0xf4, //                           hlt
];

/// 64-bit long mode: 1- and 4-byte port writes, 8-byte MMIO write and
/// read, a write to page 2 of the dirty-logged region, then `hlt`.
///
/// Reports 0x64 (1 byte), 0x64 (4 bytes), then the low and high dwords of
/// the qword read from MMIO 0x10008.
pub const LONG_PIO_MMIO: &[u8] = &[
    0x66, 0xba, 0x00, 0x05, //         mov dx, 0x500
    0xb8, 0x64, 0x00, 0x00, 0x00, //   mov eax, 0x64
    0xee, //                           out dx, al
    0xef, //                           out dx, eax
    0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // mov rax, 0x1122334455667788
    0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00, // mov [0x10000], rax
    0x48, 0x8b, 0x1c, 0x25, 0x08, 0x00, 0x01, 0x00, // mov rbx, [0x10008]
    0x89, 0x04, 0x25, 0x00, 0x20, 0x03, 0x00, // mov [0x32000], eax
    0x48, 0x89, 0xd8, //               mov rax, rbx
    0xef, //                           out dx, eax       ; low dword
    0x48, 0xc1, 0xe8, 0x20, //         shr rax, 32
    0xef, //                           out dx, eax       ; high dword
    0xf4, //                           hlt
];

/// An endless port-write loop (real mode), for exit-rate benchmarks.
pub const REAL_PIO_LOOP: &[u8] = &[
    0xba, 0x00, 0x05, //               mov dx, 0x500
    // again:
    0xee, //                           out dx, al
    0xeb, 0xfd, //                     jmp again
];

/// An endless MMIO-write loop (real mode, ds base 0x10000), for exit-rate
/// benchmarks.
pub const REAL_MMIO_LOOP: &[u8] = &[
    0xb8, 0x00, 0x10, //               mov ax, 0x1000
    0x8e, 0xd8, //                     mov ds, ax
    // again:
    0xa2, 0x00, 0x00, //               mov [0x0], al     ; MMIO 0x10000
    0xeb, 0xfb, //                     jmp again
];
