// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The x86_64 body of the benchmark: its guest is x86 code.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd, VmFd};
use vm_guest_suite::code::{REAL_MMIO_LOOP, REAL_PIO_LOOP};
use vm_guest_suite::layout::{CODE_ADDR, MMIO_BASE, MMIO_SIZE, PIO_BASE, PIO_SIZE, RAM_SIZE};
use vm_hypervisor::x86_64::VcpuX86_64;
use vm_hypervisor::{
    DeviceError, Hypervisor, IoBus, IoHandler, IoSpace, MemoryRegion, MemoryRegionFlags, Vcpu,
    VcpuExit, Vm,
};
use vm_hypervisor_kvm::{Kvm, KvmVcpu, KvmVm};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// The device both loops call: counts writes.
#[derive(Default)]
struct Counter(AtomicU64);

impl IoHandler for Counter {
    fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(0);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0
            .fetch_add(offset + data.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The device both loops call, and a bus holding it at the guests' port and MMIO windows.
fn device_and_bus() -> (Arc<Counter>, IoBus) {
    let dev = Arc::new(Counter::default());
    let mut bus = IoBus::new();
    bus.insert(IoSpace::Pio, PIO_BASE.into(), PIO_SIZE.into(), dev.clone())
        .expect("free ports");
    bus.insert(IoSpace::Mmio, MMIO_BASE, MMIO_SIZE, dev.clone())
        .expect("free MMIO range");
    (dev, bus)
}

/// A raw kvm-ioctls VM running `code` in real mode at `CODE_ADDR`.
struct Raw {
    vcpu: VcpuFd,
    _vm: VmFd,
    _mem: GuestMemoryMmap,
}

fn raw_vm(kvm: &Kvm, code: &[u8]) -> Raw {
    let vm = kvm.as_kvm_ioctls().create_vm().expect("KVM_CREATE_VM");
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM_SIZE as usize)])
        .expect("guest memory");
    mem.write_slice(code, GuestAddress(CODE_ADDR))
        .expect("load code");
    let host = mem.get_host_address(GuestAddress(0)).expect("host address");
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: RAM_SIZE,
        userspace_addr: host as u64,
    };
    // SAFETY: `mem` lives in the returned `Raw`, whose fields drop the vCPU
    // and VM before the memory.
    unsafe { vm.set_user_memory_region(region) }.expect("KVM_SET_USER_MEMORY_REGION");
    let vcpu = vm.create_vcpu(0).expect("KVM_CREATE_VCPU");
    let mut sregs = vcpu.get_sregs().expect("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs).expect("KVM_SET_SREGS");
    let mut regs = vcpu.get_regs().expect("KVM_GET_REGS");
    regs.rip = CODE_ADDR;
    regs.rflags = 2;
    vcpu.set_regs(&regs).expect("KVM_SET_REGS");
    Raw {
        vcpu,
        _vm: vm,
        _mem: mem,
    }
}

/// The same VM built through the vm-hypervisor traits.
struct Ours {
    vcpu: KvmVcpu,
    _vm: KvmVm,
    _mem: GuestMemoryMmap,
}

fn ours_vm(kvm: &Kvm, code: &[u8]) -> Ours {
    let vm = kvm.create_vm().expect("create VM");
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM_SIZE as usize)])
        .expect("guest memory");
    mem.write_slice(code, GuestAddress(CODE_ADDR))
        .expect("load code");
    let region = mem
        .find_region(GuestAddress(0))
        .and_then(|r| MemoryRegion::from_guest_region(r, MemoryRegionFlags::default()))
        .expect("host mapping of guest RAM");
    // SAFETY: `mem` lives in the returned `Ours`, whose fields drop the vCPU
    // and VM before the memory.
    unsafe { vm.set_memory_region(region) }.expect("memory region");
    let vcpu = vm.create_vcpu(0).expect("create vCPU");
    let mut sregs = vcpu.get_sregs().expect("get sregs");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs).expect("set sregs");
    let mut regs = vcpu.get_regs().expect("get regs");
    regs.rip = CODE_ADDR;
    regs.rflags = 2;
    vcpu.set_regs(&regs).expect("set regs");
    Ours {
        vcpu,
        _vm: vm,
        _mem: mem,
    }
}

// Out of line, all three: the instruction count (see `count_instructions`) is what
// callgrind sees inside each of these functions.
#[inline(never)]
fn ours_exit(vcpu: &mut KvmVcpu, bus: &IoBus) {
    expect_io(vcpu.run_on(bus));
}

/// The same exit through the object-safe `Vcpu::run(&dyn DeviceBus)`.
#[inline(never)]
fn dyn_exit(vcpu: &mut KvmVcpu, bus: &IoBus) {
    expect_io(vcpu.run(bus));
}

#[inline(always)]
fn expect_io(exit: vm_hypervisor::Result<VcpuExit>) {
    match exit.expect("run") {
        VcpuExit::Io(a) => {
            black_box(a);
        }
        other => panic!("unexpected exit {other:?}"),
    }
}

#[inline(never)]
fn raw_exit(vcpu: &mut VcpuFd, dev: &Counter) {
    match vcpu.run().expect("KVM_RUN") {
        KvmExit::IoOut(port, data) => dev.write(u64::from(port - PIO_BASE), data),
        KvmExit::MmioWrite(addr, data) => dev.write(addr - MMIO_BASE, data),
        other => panic!("unexpected exit {other:?}"),
    }
    .expect("device");
}

fn bench(c: &mut Criterion) {
    if !Kvm::is_present() {
        eprintln!("SKIPPED: exit benchmarks: /dev/kvm is absent");
        return;
    }
    let kvm = Kvm::new().expect("open /dev/kvm");
    for (name, code) in [("pio_exits", REAL_PIO_LOOP), ("mmio_exits", REAL_MMIO_LOOP)] {
        let (dev, bus) = device_and_bus();

        let mut ours = ours_vm(&kvm, code);
        let mut raw = raw_vm(&kvm, code);

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("vm-hypervisor", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    ours_exit(&mut ours.vcpu, &bus);
                    timed += t.elapsed();
                    raw_exit(&mut raw.vcpu, &dev);
                }
                timed
            })
        });
        group.bench_function("raw-kvm-ioctls", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    raw_exit(&mut raw.vcpu, &dev);
                    timed += t.elapsed();
                    ours_exit(&mut ours.vcpu, &bus);
                }
                timed
            })
        });
        group.finish();
        paired_summary(name, &mut ours, &mut raw, &bus, &dev);
    }
}

/// Median of `samples` (sorted in place).
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Time `n` exits of each loop one by one, alternating which goes first,
/// and print the median rates and their ratio.
fn paired_summary(name: &str, ours: &mut Ours, raw: &mut Raw, bus: &IoBus, dev: &Counter) {
    const N: usize = 20_000;
    let mut t_ours = Vec::with_capacity(N);
    let mut t_raw = Vec::with_capacity(N);
    for i in 0..N {
        for first in [i % 2 == 0, i % 2 != 0] {
            let t = Instant::now();
            if first {
                ours_exit(&mut ours.vcpu, bus);
                t_ours.push(t.elapsed());
            } else {
                raw_exit(&mut raw.vcpu, dev);
                t_raw.push(t.elapsed());
            }
        }
    }
    let rate = |d: Duration| 1.0 / d.as_secs_f64();
    let (ours_rate, raw_rate) = (rate(median(&mut t_ours)), rate(median(&mut t_raw)));
    println!(
        "{name} paired medians: vm-hypervisor {ours_rate:.0} exits/s, raw kvm-ioctls {raw_rate:.0} exits/s, ratio {:.3}",
        ours_rate / raw_rate
    );
}

/// With `EXIT_INSTRUCTIONS=<ours|dyn|raw>-<pio|mmio>[:N]` in the environment, run
/// only N (default 20 000) exits of that loop, for `benches/exit-instructions.sh`,
/// which counts the instructions inside `ours_exit`/`raw_exit` with callgrind; prints
/// the heap allocations those exits made.
/// Returns false when the variable is unset.
fn count_instructions() -> bool {
    let Ok(what) = std::env::var("EXIT_INSTRUCTIONS") else {
        return false;
    };
    let (path, n) = what.split_once(':').unwrap_or((&what, "20000"));
    let n: usize = n.parse().expect("EXIT_INSTRUCTIONS: N is a number");
    let code = match path.rsplit('-').next() {
        Some("pio") => REAL_PIO_LOOP,
        Some("mmio") => REAL_MMIO_LOOP,
        _ => panic!("EXIT_INSTRUCTIONS: expected <ours|dyn|raw>-<pio|mmio>[:N], got {what}"),
    };
    let kvm = Kvm::new().expect("open /dev/kvm");
    let (dev, bus) = device_and_bus();
    // One exit first, outside the count: the first KVM_RUN sets the vCPU up.
    let allocations = if path.starts_with("ours") || path.starts_with("dyn") {
        let exit = if path.starts_with("ours") {
            ours_exit
        } else {
            dyn_exit
        };
        let mut ours = ours_vm(&kvm, code);
        exit(&mut ours.vcpu, &bus);
        let before = super::allocations();
        for _ in 0..n {
            exit(&mut ours.vcpu, &bus);
        }
        super::allocations() - before
    } else {
        let mut raw = raw_vm(&kvm, code);
        raw_exit(&mut raw.vcpu, &dev);
        let before = super::allocations();
        for _ in 0..n {
            raw_exit(&mut raw.vcpu, &dev);
        }
        super::allocations() - before
    };
    println!("{path}: {n} exits, {allocations} heap allocations");
    true
}

pub fn main() {
    if count_instructions() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
