#!/bin/sh
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Round trips of guest MMIO reads in the Xen box: xen-ioreq versus a C server on Xen's
# libxendevicemodel (benches/c/ioreq-bench-server.c), one boot per stack.
#
#   crates/xen-ioreq/benches/xen-box.sh bookworm|trixie [rounds]
#
# Each round also serves the guest with a loop that polls between requests
# (EventLoop::set_polling) for XIOREQ_BENCH_POLL_US microseconds (default 1000; set empty: no
# polling rounds).
#
# With XIOREQ_WITH_TESTS=1 the same boot first runs the crate's integration tests (release
# build), so that one boot per stack checks and measures.
#
# With XIOREQ_BENCH_MODE=instructions it counts instead of timing (XIOREQ_BENCH_MAIN_POLL_US:
# the xen-ioreq loop polls, with that window in microseconds): one round, each server under
# valgrind's callgrind (Debian's valgrind added to the dom0 image with --with-pkg), counting only
# the serving code, the Rust event loop's `run` (`bench_serve`) and the C server's loop (`serve`),
# and prints the userspace instructions per served request of each. The counts do not depend on
# the host's load, but a turn that wakes and finds nothing to serve is counted too, in both.
#
# The C server is compiled here against bookworm's libxen-dev headers (downloaded with
# `apt-get download`) and the stack's runtime libraries from the xen-box cache; it links by
# soname (libxendevicemodel.so.1, ...), which both stacks' dom0s provide. The test binary is
# built in release mode, as the C server is with -O2.
set -eu
STACK=${1:?usage: $0 bookworm|trixie [rounds]}
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/xen-ioreq-bench
CACHE=${XEN_BOX_CACHE:-$HOME/.cache/xen-rust-vmm/xen-box/$STACK}
mkdir -p "$WORK"
cd "$ROOT"
cargo xtask xen-box setup --stack "$STACK" >/dev/null

# Headers: bookworm's libxen-dev; libraries to link against: the stack's runtime packages.
SYS=$WORK/sysroot-$STACK
rm -rf "$SYS"
mkdir -p "$SYS"
if ! ls "$WORK"/libxen-dev_*.deb >/dev/null 2>&1; then
    (cd "$WORK" && apt-get download libxen-dev)
fi
for d in "$WORK"/libxen-dev_*.deb "$CACHE"/debs/libxen*.deb; do dpkg-deb -x "$d" "$SYS"; done
LIB=$SYS/usr/lib/x86_64-linux-gnu
for l in xendevicemodel xenevtchn xenforeignmemory; do
    ln -sf "$(basename "$(ls "$LIB"/lib$l.so.1)")" "$LIB/lib$l.so"
done
gcc -O2 -Wall -Werror -I"$SYS/usr/include" -o "$WORK/ioreq-bench-server" \
    crates/xen-ioreq/benches/c/ioreq-bench-server.c \
    -L"$LIB" -Wl,-rpath-link,"$LIB" -Wl,--allow-shlib-undefined \
    -lxendevicemodel -lxenevtchn -lxenforeignmemory

BIN=$(cargo test --release -p xen-ioreq --test xen_ioreq --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
cp "$BIN" "$WORK/xen_ioreq"
TESTS=":"
[ "${XIOREQ_WITH_TESTS:-0}" = 1 ] && TESTS="./xen_ioreq --test-threads=1 || exit \$?"
# The comparison runs once per dom0 vCPU with both servers (and the child C server) pinned to
# it: where the scheduler puts a server relative to the vCPU that takes the event-channel
# interrupt moves a round trip by more than the servers differ, so unpinned runs measure
# placement, not the servers.
if [ "${XIOREQ_BENCH_MODE:-time}" = instructions ]; then
    # The requests one round serves: BENCH_READS reads, the read of the count and the three
    # writes that report the guest's ticks and the end (tests/guests/bench.S).
    REQUESTS=$(($(sed -n 's/^const BENCH_READS: u32 = \([0-9_]*\);/\1/p' \
        crates/xen-ioreq/tests/xen_ioreq.rs | tr -d _) + 4))
    cat >"$WORK/c-under-callgrind.sh" <<'WRAP'
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=/tmp/c-server.cg --toggle-collect=serve \
    "$(dirname "$0")/ioreq-bench-server" "$@" 2>/tmp/c-server.valgrind
WRAP
    chmod +x "$WORK/c-under-callgrind.sh"
    cat >"$WORK/bench-in-dom0.sh" <<DOM0
#!/bin/sh
per() { awk -v t="\$(sed -n 's/^summary: *\\([0-9]*\\).*/\\1/p' "\$1")" -v n=$REQUESTS 'BEGIN { printf "%.0f", t / n }'; }
XIOREQ_BENCH_MAIN_POLL_US=${XIOREQ_BENCH_MAIN_POLL_US-} XIOREQ_C_SERVER=\$PWD/c-under-callgrind.sh XIOREQ_BENCH_ROUNDS=1 \\
    valgrind --tool=callgrind --callgrind-out-file=/tmp/rust-server.cg \\
    --toggle-collect='*bench_serve*' ./xen_ioreq --ignored --exact \\
    round_trips_versus_libxendevicemodel --nocapture 2>/tmp/rust-server.valgrind || exit \$?
grep BENCH /tmp/rust-server.valgrind
echo "INSTRUCTIONS per served IOREQ ($REQUESTS requests, MMIO, one vCPU): xen-ioreq \$(per /tmp/rust-server.cg), libxendevicemodel C \$(per /tmp/c-server.cg)"
for s in rust c; do
    echo "INSTRUCTIONS per request by function (self cost), \$s server:"
    awk -v n=$REQUESTS -f callgrind-self.awk /tmp/\$s-server.cg | sort -rn | head -n 30
done
DOM0
    chmod +x "$WORK/bench-in-dom0.sh"
    cargo xtask xen-box run --stack "$STACK" --with-pkg valgrind --timeout 1500 \
        --add "$WORK/xen_ioreq" --add "$WORK/ioreq-bench-server" \
        --add "$WORK/c-under-callgrind.sh" --add crates/xen-ioreq/benches/callgrind-self.awk \
        -- "$WORK/bench-in-dom0.sh"
    exit $?
fi
cat >"$WORK/bench-in-dom0.sh" <<DOM0
#!/bin/sh
$TESTS
for cpu in \$(seq 0 \$((\$(nproc) - 1))); do
    echo "BENCH pinned to dom0 vCPU \$cpu"
    XIOREQ_BENCH_POLL_US=${XIOREQ_BENCH_POLL_US-1000} XIOREQ_C_SERVER=\$PWD/ioreq-bench-server XIOREQ_BENCH_ROUNDS=$ROUNDS \
        taskset -c \$cpu ./xen_ioreq --ignored --exact round_trips_versus_libxendevicemodel \
        --nocapture || exit \$?
done
DOM0
chmod +x "$WORK/bench-in-dom0.sh"
cargo xtask xen-box run --stack "$STACK" --timeout 1500 \
    --add "$WORK/xen_ioreq" --add "$WORK/ioreq-bench-server" -- "$WORK/bench-in-dom0.sh"
