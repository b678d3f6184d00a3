/*
 * Copyright 2026 The xen-rust-vmm authors.
 * SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
 *
 * Benchmark fixture: the same IOREQ server as xen-ioreq's round-trip benchmark
 * (tests/xen_ioreq.rs, round_trips_versus_libxendevicemodel), written against Xen's C
 * libraries (libxendevicemodel, libxenforeignmemory, libxenevtchn) the way a C device model
 * serves a vCPU: poll the event channel, take the pending port, unmask it, handle the slot,
 * notify. Serves one vCPU and the 4 KiB MMIO window at <base>.
 *
 *   usage: ioreq-bench-server <domid> <base> <reads>
 *
 * Prints "READY" once the server is enabled, then, after the guest writes 0xdd to base + 0x50,
 * "reads=<n> ns=<per round trip, first read to the done write> ticks=<guest TSC per read>".
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/hvm/dm_op.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/ioreq.h>
#include <xen/memory.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int fail(const char *what)
{
    fprintf(stderr, "ioreq-bench-server: %s: %s\n", what, strerror(errno));
    return 1;
}

/* What the serving loop saw. */
struct figures {
    uint64_t reads;
    uint32_t tsc_lo, tsc_hi;
    double first, done;
    const char *error;
};

/*
 * The serving loop, out of line so that an instruction count can be limited to it
 * (`valgrind --tool=callgrind --toggle-collect=serve`, benches/xen-box.sh instructions).
 */
static __attribute__((noinline)) struct figures serve(xenevtchn_handle *xce, int port,
                                                      ioreq_t *r, uint64_t base, uint32_t want)
{
    struct figures f = { 0 };
    struct pollfd pfd = { .fd = xenevtchn_fd(xce), .events = POLLIN };
    while (!f.done) {
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
            f.error = "poll";
            return f;
        }
        int p = xenevtchn_pending(xce);
        if (p < 0)
            continue;
        xenevtchn_unmask(xce, p);
        if (p != port)
            continue;
        /* state is a 4-bit field: plain accesses ordered by fences. */
        if (r->state != STATE_IOREQ_READY)
            continue;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        r->state = STATE_IOREQ_INPROCESS;
        uint64_t off = r->addr - base;
        if (r->type == IOREQ_TYPE_COPY && r->dir == IOREQ_READ) {
            if (off == 0x40) {
                r->data = want;
            } else {
                if (!f.reads++)
                    f.first = now_ns();
                r->data = 0x12345678;
            }
        } else if (r->type == IOREQ_TYPE_COPY) {
            if (off == 0x48)
                f.tsc_lo = r->data;
            else if (off == 0x4c)
                f.tsc_hi = r->data;
            else if (off == 0x50)
                f.done = now_ns();
        }
        __atomic_thread_fence(__ATOMIC_RELEASE);
        r->state = STATE_IORESP_READY;
        xenevtchn_notify(xce, port);
    }
    return f;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <domid> <base> <reads>\n", argv[0]);
        return 2;
    }
    domid_t domid = atoi(argv[1]);
    uint64_t base = strtoull(argv[2], NULL, 0);
    uint32_t want = strtoul(argv[3], NULL, 0);
    ioservid_t id;
    void *page = NULL;

    xendevicemodel_handle *dm = xendevicemodel_open(NULL, 0);
    xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
    xenevtchn_handle *xce = xenevtchn_open(NULL, 0);
    if (!dm || !fm || !xce)
        return fail("open");
    if (xendevicemodel_create_ioreq_server(dm, domid, 0 /* BUFIOREQ_OFF */, &id))
        return fail("create_ioreq_server");
    xenforeignmemory_resource_handle *res = xenforeignmemory_map_resource(
        fm, domid, XENMEM_resource_ioreq_server, id, XENMEM_resource_ioreq_server_frame_ioreq(0),
        1, &page, PROT_READ | PROT_WRITE, 0);
    if (!res)
        return fail("map_resource");
    if (xendevicemodel_map_io_range_to_ioreq_server(dm, domid, id, 1, base, base + 0xfff))
        return fail("map_io_range");
    if (xendevicemodel_set_ioreq_server_state(dm, domid, id, 1))
        return fail("set_ioreq_server_state");
    shared_iopage_t *sp = page;
    int port = xenevtchn_bind_interdomain(xce, domid, sp->vcpu_ioreq[0].vp_eport);
    if (port < 0)
        return fail("bind_interdomain");
    printf("READY\n");
    fflush(stdout);

    struct figures f = serve(xce, port, &sp->vcpu_ioreq[0], base, want);
    if (f.error)
        return fail(f.error);
    printf("reads=%" PRIu64 " ns=%.1f ticks=%.1f\n", f.reads, (f.done - f.first) / want,
           (double)((uint64_t)f.tsc_hi << 32 | f.tsc_lo) / want);
    xendevicemodel_set_ioreq_server_state(dm, domid, id, 0);
    xenforeignmemory_unmap_resource(fm, res);
    xendevicemodel_destroy_ioreq_server(dm, domid, id);
    return 0;
}
