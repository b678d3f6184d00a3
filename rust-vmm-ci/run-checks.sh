#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The project's check suite, runnable locally and in CI by one command:
#
#   rust-vmm-ci/run-checks.sh [--list] [check...]      (default: every check, in order)
#
# Each check prints its name, its duration and PASS/FAIL; a summary follows and the script exits
# nonzero when any check failed. Checks keep going after a failure so that one run shows everything.
#
# Environment knobs:
#   COVERAGE_UPDATE=1   write the measured line coverage into coverage_config_x86_64.json
#   CARGO_TARGET_DIR    honoured as usual (default: <repo>/target)

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CI_DIR="$ROOT/rust-vmm-ci"
cd "$ROOT" || exit 2

export CI="${CI:-false}"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One set of flags for build, clippy, test and doc so that their dependency artifacts are shared.
export RUSTFLAGS="${RUSTFLAGS:--D warnings}"
export RUSTDOCFLAGS="${RUSTDOCFLAGS:--D warnings}"

ALL_CHECKS=(spdx crate-files fmt build clippy doc msrv test coverage)

describe() {
    case "$1" in
        spdx) echo "every .rs file carries the SPDX license header" ;;
        crate-files) echo "every crate has README.md and CHANGELOG.md" ;;
        fmt) echo "cargo fmt --all -- --check" ;;
        build) echo "cargo build --workspace --all-targets (RUSTFLAGS=-D warnings)" ;;
        clippy) echo "cargo clippy --workspace --all-targets -- -D warnings -D clippy::undocumented_unsafe_blocks" ;;
        doc) echo "cargo doc --workspace --no-deps (RUSTDOCFLAGS=-D warnings)" ;;
        msrv) echo "cargo xtask msrv: each crate builds with the rustc its rust-version names" ;;
        test) echo "cargo test --workspace (unit, integration, doc tests; KVM guest suite on /dev/kvm)" ;;
        coverage) echo "line coverage with -C instrument-coverage + llvm-cov, compared to coverage_config_x86_64.json" ;;
        *) return 1 ;;
    esac
}

SPDX_LINE='SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause'

check_spdx() {
    local bad=0 n=0 f
    # Every Rust source of the repository, tracked or not yet tracked, outside build output.
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        if ! head -n 5 "$f" | grep -qF "$SPDX_LINE"; then
            echo "missing SPDX header (within the first 5 lines): ${f#./}"
            bad=$((bad + 1))
        fi
    done < <(find . \( -path ./target -o -path ./.git -o -path ./.cache \) -prune -o -type f -name '*.rs' -print0)
    echo "$n .rs files checked, $bad without the header"
    [ "$bad" -eq 0 ]
}

check_crate_files() {
    local bad=0 dir f
    # Crates are the workspace members, as cargo sees them.
    local dirs
    dirs="$(cargo metadata --no-deps --format-version 1 | jq -r '.packages[].manifest_path' | xargs -n1 dirname)" || return 1
    for dir in $dirs; do
        for f in README.md CHANGELOG.md; do
            if [ ! -s "$dir/$f" ]; then
                echo "missing or empty: ${dir#"$ROOT"/}/$f"
                bad=$((bad + 1))
            fi
        done
    done
    echo "$(echo "$dirs" | wc -l) crates checked, $bad files missing"
    [ "$bad" -eq 0 ]
}

check_fmt() { cargo fmt --all -- --check; }

check_build() { cargo build --workspace --all-targets; }

check_clippy() {
    cargo clippy --workspace --all-targets -- -D warnings -D clippy::undocumented_unsafe_blocks
}

check_doc() { cargo doc --workspace --no-deps; }

# Every crate with Debian trixie's rustc 1.85 (unpacked from the machine's Debian archive), the
# rust-version all of them declare; about a minute with a new target directory, 8 s warm.
check_msrv() { cargo xtask msrv; }

check_test() {
    # --show-output: the tests that skip for want of hardware (Xen outside a dom0) say so on stderr,
    # which the test harness would otherwise swallow.
    local out
    out="$(mktemp)"
    cargo test --workspace -- --show-output 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}
    echo "skipped for want of hardware: $(grep -c '^SKIPPED' "$out") test(s)"
    grep '^SKIPPED' "$out" | sed 's/^/  /'
    rm -f "$out"
    return "$rc"
}

check_coverage() { "$CI_DIR/coverage.sh"; }

# --- driver -----------------------------------------------------------------------------------

if [ "${1:-}" = "--list" ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    echo "usage: $0 [check...]   (default: all)"
    for c in "${ALL_CHECKS[@]}"; do printf '  %-12s %s\n' "$c" "$(describe "$c")"; done
    exit 0
fi

if [ "$#" -gt 0 ]; then CHECKS=("$@"); else CHECKS=("${ALL_CHECKS[@]}"); fi
for c in "${CHECKS[@]}"; do
    if ! describe "$c" >/dev/null; then
        echo "unknown check: $c (try --list)" >&2
        exit 2
    fi
done

# Tools the checks use that a fresh machine may lack.
if ! command -v jq >/dev/null 2>&1; then
    echo "installing jq"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get install -y -q --no-install-recommends jq >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends jq >/dev/null; }
    else
        sudo apt-get install -y -q --no-install-recommends jq >/dev/null
    fi
fi

declare -a RESULTS=()
failed=0
total_start=$SECONDS
for c in "${CHECKS[@]}"; do
    echo
    echo "=== check: $c — $(describe "$c")"
    start=$SECONDS
    fn="check_${c//-/_}"
    if "$fn"; then status=PASS; else status=FAIL; failed=$((failed + 1)); fi
    dur=$((SECONDS - start))
    line="$(printf '%-12s %-4s %4dm%02ds' "$c" "$status" $((dur / 60)) $((dur % 60)))"
    RESULTS+=("$line")
    echo "=== $status: $c ($((dur / 60))m$((dur % 60))s)"
done

total=$((SECONDS - total_start))
echo
echo "=== rust-vmm-ci summary (total $((total / 60))m$((total % 60))s)"
for r in "${RESULTS[@]}"; do echo "  $r"; done
echo "checks: $(( ${#CHECKS[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
