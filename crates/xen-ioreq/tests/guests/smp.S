# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Two-vCPU PVH test guest (tests/xen_ioreq.rs, SMP_CODE). Entered on vCPU 0 in flat 32-bit
# protected mode without paging at 0x100100. vCPU 0 installs the Xen hypercall page, brings
# vCPU 1 up with VCPUOP_initialise + VCPUOP_up, waits until vCPU 1 runs, then both vCPUs
# hammer their own MMIO block at the same time:
#   block + 0: write the sequence 1, 2, ..., N
#   block + 4: read back how many writes the server has seen there (must equal the value)
#   block + 8: write the final index when done (N + 1 if every read-back matched)
# N is read from MMIO + 0x30. A failing hypercall writes its return value to MMIO + 0x20.
#   as --32 smp.S -o smp.o && ld -m elf_i386 -Ttext=0x100100 --oformat binary smp.o -o smp.bin
        .intel_syntax noprefix
        .code32
        .set MMIO, 0xe0000000
        .set HCALL_PAGE, 0x101000
        .set VCPU_OP, HCALL_PAGE + 24 * 32      # __HYPERVISOR_vcpu_op
        .set FLAG, 0x102000
        .set STACK, 0x104000
        .globl _start
_start:
        cli
        mov esp, STACK
        mov eax, 0x40000002                    # Xen leaf 2: EBX = hypercall-page MSR
        cpuid
        mov ecx, ebx
        mov eax, HCALL_PAGE
        xor edx, edx
        wrmsr
        mov dword ptr [FLAG], 0
        xor ebx, ebx                           # VCPUOP_initialise
        mov ecx, 1                             # vCPU 1
        mov edx, offset ctx
        call VCPU_OP
        test eax, eax
        jnz fail
        mov ebx, 1                             # VCPUOP_up
        mov ecx, 1
        xor edx, edx
        call VCPU_OP
        test eax, eax
        jnz fail
1:      pause
        cmp dword ptr [FLAG], 1
        jne 1b
        mov esi, MMIO
        jmp worker
ap_entry:
        mov dword ptr [FLAG], 1
        mov esi, MMIO + 0x10
worker:
        mov ebx, [MMIO + 0x30]                 # N
        inc ebx
        mov ecx, 1
2:      mov [esi], ecx
        mov eax, [esi + 4]
        cmp eax, ecx
        jne 3f
        inc ecx
        cmp ecx, ebx
        jne 2b
3:      mov [esi + 8], ecx
halt:   hlt
        jmp halt
fail:   mov [MMIO + 0x20], eax
        jmp halt

        .balign 8
ctx:                                           # struct vcpu_hvm_context, VCPU_HVM_MODE_32B
        .long 0, 0                             # mode, pad
        .long 0, 0, 0, 0, 0, 0, 0, 0           # eax ecx edx ebx esp ebp esi edi
        .long ap_entry, 2                      # eip, eflags
        .long 1, 0, 0, 0                       # cr0 = PE, cr3, cr4, pad1
        .quad 0                                # efer
        .long 0, 0, 0, 0, 0                    # cs ds ss es tr base
        .long -1, -1, -1, -1, 0x67             # limits
        .word 0xc9b, 0xc93, 0xc93, 0xc93, 0x8b # flat code, flat data x3, busy 32-bit TSS
        .word 0, 0, 0                          # pad2
