// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Does the machine keep a process's registers across context switches?
//!
//! More threads than CPUs each hold known values in vector (XMM, and YMM where the CPU has
//! AVX) and general-purpose registers while they yield and spin, so that the kernel and, in
//! a dom0, Xen switch them out and back in; then they compare. Other threads churn the heap
//! with checked copies (glibc's vectorised memcpy). In a dom0 a domU spins next to them with
//! its own vector registers set to all ones, so Xen switches between domains too.
//!
//! In the box this failed on every run while Xen switched FPU state lazily (dom0 threads
//! read other contexts' vector registers, the domU's all-ones among them; the process
//! crashed in malloc or hung), and never once Xen switched eagerly: the box boots Xen with
//! `spec-ctrl=eager-fpu` (xtask's qemu.rs) and this test guards that.
//!
//! A domU that stops while the threads run fails the test too, with its vCPU's saved record
//! and Xen's log. That is how the box's other fault showed: with QEMU's multi-threaded TCG
//! the emulated CPU now and then gave a domU's vCPU Xen's own registers at a VMRUN (see
//! `EMULATED_SVM_FAULT`); the box runs QEMU single-threaded, and this test would
//! catch the fault coming back.
//!
//! `CPU_STATE_ROUNDS` sets the rounds per thread (default 1000).

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Register-holding threads: more than the box's 2 vCPUs so they are switched out.
    const REG_THREADS: u64 = 6;
    /// Heap-churning threads.
    const HEAP_THREADS: u64 = 2;
    /// Yields (each followed by a spin) per register check.
    const YIELDS: u64 = 16;

    /// Mismatches printed in full (the counts cover all of them).
    const PRINTED: u64 = 20;

    /// Rounds per thread: `CPU_STATE_ROUNDS` or a bound that runs in well under a minute in the
    /// box (the lazy-switching fault showed within 140 rounds on every run).
    fn rounds() -> u64 {
        std::env::var("CPU_STATE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    }

    /// A value no other thread, round or register holds.
    fn pattern(thread: u64, round: u64, reg: u64) -> u64 {
        let x = (thread << 56) ^ (round << 16) ^ (reg << 8) ^ 0x5a5a_0000_0000_00a5;
        x.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
    }

    #[derive(Default)]
    struct Counts {
        printed: AtomicU64,
        checks: AtomicU64,
        vector_bad: AtomicU64,
        gpr_bad: AtomicU64,
        heap_bad: AtomicU64,
    }

    /// The body of [`hold_ymm`] and [`hold_xmm`]: loads the vector registers `$reg` with
    /// `$mov` from `$input` (each at byte `$off`) and 9 GPRs from `$gpr`, yields and spins
    /// `YIELDS` times, and stores them all back to `$output` and `$gpr`.
    macro_rules! hold {
        ($mov:literal, $input:expr, $output:expr, $gpr:expr, $($reg:tt @ $off:tt),+) => {{
            let gpr: &mut [u64; 9] = $gpr;
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h, mut i] = *gpr;
            // SAFETY: reads the registers' bytes at `$input` and writes as many at `$output`,
            // both borrowed by the caller for at least that much; every register it changes
            // is an operand or declared clobbered, and sched_yield has no effect on memory.
            unsafe {
                asm!(
                    $(concat!($mov, " ", $reg, ", [{i} + ", $off, "]"),)+
                    "2:",
                    "mov eax, 24", // SYS_sched_yield
                    "syscall",
                    "mov eax, 20000",
                    "3:",
                    "dec eax",
                    "jnz 3b",
                    "dec r15",
                    "jnz 2b",
                    $(concat!($mov, " [{o} + ", $off, "], ", $reg),)+
                    i = in(reg) $input.as_ptr(),
                    o = in(reg) $output.as_mut_ptr(),
                    inout("rdx") a, inout("rsi") b, inout("rdi") c, inout("r8") d, inout("r9") e,
                    inout("r10") f, inout("r12") g, inout("r13") h, inout("r14") i,
                    inout("r15") YIELDS => _,
                    out("rax") _, out("rcx") _, out("r11") _,
                    $(out($reg) _,)+
                );
            }
            *gpr = [a, b, c, d, e, f, g, h, i];
        }};
    }

    /// Holds 16 YMM registers and 9 GPRs across `YIELDS` yields and spins (see [`hold!`]).
    ///
    /// # Safety
    /// The CPU must have AVX and the OS must have enabled its state.
    #[target_feature(enable = "avx")]
    unsafe fn hold_ymm(input: &[[u64; 4]; 16], output: &mut [[u64; 4]; 16], gpr: &mut [u64; 9]) {
        hold!(
            "vmovdqu", input, output, gpr,
            "ymm0" @ 0, "ymm1" @ 32, "ymm2" @ 64, "ymm3" @ 96, "ymm4" @ 128, "ymm5" @ 160,
            "ymm6" @ 192, "ymm7" @ 224, "ymm8" @ 256, "ymm9" @ 288, "ymm10" @ 320,
            "ymm11" @ 352, "ymm12" @ 384, "ymm13" @ 416, "ymm14" @ 448, "ymm15" @ 480
        );
    }

    /// [`hold_ymm`] for the 16 XMM registers (SSE2, which every x86_64 has).
    fn hold_xmm(input: &[[u64; 2]; 16], output: &mut [[u64; 2]; 16], gpr: &mut [u64; 9]) {
        hold!(
            "movdqu", input, output, gpr,
            "xmm0" @ 0, "xmm1" @ 16, "xmm2" @ 32, "xmm3" @ 48, "xmm4" @ 64, "xmm5" @ 80,
            "xmm6" @ 96, "xmm7" @ 112, "xmm8" @ 128, "xmm9" @ 144, "xmm10" @ 160,
            "xmm11" @ 176, "xmm12" @ 192, "xmm13" @ 208, "xmm14" @ 224, "xmm15" @ 240
        );
    }

    fn gprs(thread: u64, round: u64) -> [u64; 9] {
        std::array::from_fn(|r| pattern(thread, round, 100 + r as u64))
    }

    fn report(
        c: &Counts,
        what: &str,
        thread: u64,
        round: u64,
        reg: usize,
        want: &[u64],
        got: &[u64],
    ) {
        if c.printed.fetch_add(1, Ordering::Relaxed) >= PRINTED {
            return;
        }
        eprintln!(
            "MISMATCH {what}: thread {thread} round {round} register {reg}: \
         want {want:x?} got {got:x?}"
        );
    }

    /// Holds YMM registers when `avx`, else XMM ones (both paths lost state under lazy switching).
    fn reg_thread(t: u64, avx: bool, c: &Counts) {
        for round in 0..rounds() {
            let want_gpr = gprs(t, round);
            let mut gpr = want_gpr;
            if avx {
                let input: [[u64; 4]; 16] = std::array::from_fn(|r| {
                    std::array::from_fn(|l| pattern(t, round, (r * 4 + l) as u64))
                });
                let mut output = [[0u64; 4]; 16];
                // SAFETY: `avx` is true only when the CPU and OS have AVX (checked by the caller).
                unsafe { hold_ymm(&input, &mut output, &mut gpr) };
                for r in 0..16 {
                    if output[r] != input[r] {
                        report(c, "ymm", t, round, r, &input[r], &output[r]);
                        c.vector_bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                let input: [[u64; 2]; 16] = std::array::from_fn(|r| {
                    std::array::from_fn(|l| pattern(t, round, (r * 2 + l) as u64))
                });
                let mut output = [[0u64; 2]; 16];
                hold_xmm(&input, &mut output, &mut gpr);
                for r in 0..16 {
                    if output[r] != input[r] {
                        report(c, "xmm", t, round, r, &input[r], &output[r]);
                        c.vector_bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for r in 0..9 {
                if gpr[r] != want_gpr[r] {
                    report(c, "gpr", t, round, r, &want_gpr[r..=r], &gpr[r..=r]);
                    c.gpr_bad.fetch_add(1, Ordering::Relaxed);
                }
            }
            c.checks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Allocates, copies (glibc's memcpy, vectorised as the CPU allows), checks and frees
    /// buffers of varied sizes, keeping a pool of live ones so the allocator's lists are long.
    fn heap_thread(t: u64, c: &Counts) {
        let mut seed = pattern(t, 0, 255);
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let source: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(131) >> 3) as u8)
            .collect();
        let mut pool: Vec<(usize, Vec<u8>)> = Vec::new();
        for round in 0..rounds() * 8 {
            let len = 1 + (next() % 65_536) as usize;
            let off = (next() % 4096) as usize;
            let mut buf = vec![0u8; len];
            buf.copy_from_slice(&source[off..off + len]);
            pool.push((off, buf));
            if pool.len() > 64 {
                let (off, buf) = pool.swap_remove((next() % 64) as usize);
                if buf[..] != source[off..off + buf.len()] {
                    if c.printed.fetch_add(1, Ordering::Relaxed) < PRINTED {
                        eprintln!("MISMATCH heap: thread {t} round {round} len {}", buf.len());
                    }
                    c.heap_bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A PVH guest that sets every vector register it can reach to all ones (a value the
    /// threads here never hold) and spins, so its vCPU competes with dom0's for the CPUs:
    /// ```text
    /// mov %cr0,%eax; and $~0xc,%eax; or $2,%eax; mov %eax,%cr0   # FPU on: EM, TS clear; MP
    /// mov %cr4,%eax; or $0x40600,%eax; mov %eax,%cr4             # OSFXSR, OSXMMEXCPT, OSXSAVE
    /// xor %ecx,%ecx; mov $7,%eax; xor %edx,%edx; xsetbv          # XCR0 = x87 | SSE | AVX
    /// vpcmpeqd %ymm0,%ymm0,%ymm0; vmovdqa %ymm0,%ymm1 ... %ymm7
    /// 1: jmp 1b
    /// ```
    const ALL_ONES_GUEST: &[u8] = &[
        0x0f, 0x20, 0xc0, 0x83, 0xe0, 0xf3, 0x83, 0xc8, 0x02, 0x0f, 0x22, 0xc0, 0x0f, 0x20, 0xe0,
        0x0d, 0x00, 0x06, 0x04, 0x00, 0x0f, 0x22, 0xe0, 0x31, 0xc9, 0xb8, 0x07, 0x00, 0x00, 0x00,
        0x31, 0xd2, 0x0f, 0x01, 0xd1, 0xc5, 0xfd, 0x76, 0xc0, 0xc5, 0xfd, 0x6f, 0xc8, 0xc5, 0xfd,
        0x6f, 0xd0, 0xc5, 0xfd, 0x6f, 0xd8, 0xc5, 0xfd, 0x6f, 0xe0, 0xc5, 0xfd, 0x6f, 0xe8, 0xc5,
        0xfd, 0x6f, 0xf0, 0xc5, 0xfd, 0x6f, 0xf8, 0xeb, 0xfe,
    ];

    /// In a dom0: a running domU whose vCPU spins with [`ALL_ONES_GUEST`]'s registers.
    fn busy_domu() -> Option<xen_box_testing::XlDomain> {
        if !xen_box_testing::in_dom0(&format!("{TEST} (its domU next to the threads)")) {
            return None;
        }
        let kernel = std::env::temp_dir().join(format!("cpu-state-guest-{}", std::process::id()));
        std::fs::write(
            &kernel,
            xen_box_testing::guest_image::pvh_kernel_with(ALL_ONES_GUEST),
        )
        .expect("writing the guest image");
        let domu = xen_box_testing::XlDomain::create(
            format!("cpu-state-{}", std::process::id()),
            &format!(
                "{}kernel = \"{}\"\nmemory = 32\nvcpus = 1\n\
             on_poweroff = \"preserve\"\non_reboot = \"preserve\"\non_crash = \"preserve\"\n",
                xen_box_testing::pvh_type_line(),
                kernel.display()
            ),
            false,
        );
        // xl has read it into the domain.
        let _ = std::fs::remove_file(&kernel);
        Some(domu)
    }

    const TEST: &str = "registers_and_heap_survive_context_switches_next_to_a_busy_domu";

    /// The state letters of domain `name` in `xl list` ("r-----"), or `None` when it is gone.
    fn domu_state(name: &str) -> Option<String> {
        let out = std::process::Command::new("xl")
            .arg("list")
            .arg(name)
            .output()
            .expect("running xl list");
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{}", text.trim_end());
        let line = text.lines().nth(1)?;
        line.split_whitespace().nth(4).map(str::to_string)
    }

    /// Prints what Xen says of a domU that stopped: its vCPU's registers (the CPU record of
    /// `xen-hvmctx`, where the stack's tools have it) and Xen's last log lines.
    ///
    /// Returns whether the record is Xen's own state rather than the guest's (see
    /// [`EMULATED_SVM_FAULT`]).
    fn report_stopped_domu(d: &xen_box_testing::XlDomain) -> bool {
        let lines = |cmd: &mut std::process::Command| -> Vec<String> {
            match cmd.output() {
                Ok(o) => String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\0'))
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
                Err(e) => vec![format!("not run: {e}")],
            }
        };
        let ctx = lines(std::process::Command::new("xen-hvmctx").arg(d.domid.to_string()));
        eprintln!("xen-hvmctx, the CPU record:");
        for l in ctx.iter().take_while(|l| !l.contains("fpu")).take(60) {
            eprintln!("  {l}");
        }
        let dmesg = lines(std::process::Command::new("xl").arg("dmesg"));
        eprintln!("xl dmesg, last lines:");
        for l in &dmesg[dmesg.len().saturating_sub(30)..] {
            eprintln!("  {l}");
        }
        eprintln!("console: {}", d.console_log());
        // Xen's text and stacks lie at 0xffff82d0_40000000 and 0xffff83.., its code segment
        // is 0xe008; a PVH guest here runs at 1 MiB with paging off.
        let rip_in_xen = ctx
            .iter()
            .any(|l| l.starts_with("rip 0xffff8") || l.contains(" rip 0xffff8"));
        let xen_cs = ctx.iter().any(|l| l.starts_with("cs 0xe008"));
        rip_in_xen && xen_cs
    }

    /// What a domU stopped by the emulated machine's fault is reported as. With QEMU's
    /// multi-threaded TCG, the emulated CPU now and then saved Xen's own register state as a
    /// domU's at a VM exit (the record then holds the RIP just past Xen's VMRUN, code segment
    /// 0xe008, Xen's GDT, IDT and stack, RAX = the VMCB's address). Resumed with that state,
    /// the vCPU faults at once and triple-faults, and Xen shuts the domain down for a reboot.
    /// It hit 12 of 16 such domUs on trixie and 1 of 16 on bookworm, and 5 of 8 on trixie in
    /// a later control run; with `-accel tcg,thread=single` (xtask's qemu.rs) it hit none of
    /// 8 on trixie.
    const EMULATED_SVM_FAULT: &str = "EMULATED SVM FAULT";

    #[test]
    fn registers_and_heap_survive_context_switches_next_to_a_busy_domu() {
        let domu = busy_domu();
        let avx = std::arch::is_x86_feature_detected!("avx");
        let c = Arc::new(Counts::default());
        let mut threads = Vec::new();
        for t in 0..REG_THREADS {
            let c = c.clone();
            threads.push(std::thread::spawn(move || {
                reg_thread(t, avx && t % 2 == 0, &c)
            }));
        }
        for t in 0..HEAP_THREADS {
            let c = c.clone();
            threads.push(std::thread::spawn(move || heap_thread(REG_THREADS + t, &c)));
        }
        for t in threads {
            t.join().expect("a stress thread panicked");
        }
        let (checks, vector_bad, gpr_bad, heap_bad) = (
            c.checks.load(Ordering::Relaxed),
            c.vector_bad.load(Ordering::Relaxed),
            c.gpr_bad.load(Ordering::Relaxed),
            c.heap_bad.load(Ordering::Relaxed),
        );
        eprintln!(
            "{TEST}: {checks} checks ({}) of {YIELDS} yields each: {vector_bad} vector, \
         {gpr_bad} general-purpose, {heap_bad} heap mismatches",
            if avx { "ymm and xmm" } else { "xmm" }
        );
        assert_eq!(
            (vector_bad, gpr_bad, heap_bad),
            (0, 0, 0),
            "registers or heap contents changed under the program"
        );
        if let Some(d) = &domu {
            // A domU that crashed at once would have left the switches between domains untested.
            let state = domu_state(&d.name);
            // Not shut down (a triple fault reboots it, preserved as 's'), crashed or dying.
            let running = state
                .as_deref()
                .is_some_and(|s| !s.contains(['s', 'c', 'd']));
            if !running {
                let emulator = report_stopped_domu(d);
                panic!(
                    "the domU {} did not keep running next to the threads (state {state:?}){}",
                    d.name,
                    if emulator {
                        format!(
                            ": {EMULATED_SVM_FAULT}, its record holds Xen's own registers (is \
                             the box's QEMU running multi-threaded TCG?)"
                        )
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[test]
fn registers_and_heap_survive_context_switches_next_to_a_busy_domu() {
    xen_box_testing::skip(
        "registers_and_heap_survive_context_switches_next_to_a_busy_domu",
        "its register-holding code and domU are x86 code",
    );
}
