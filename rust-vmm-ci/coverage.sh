#!/usr/bin/env bash
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Line coverage of the workspace crates' src/ (crates/xtask, tests/, benches/, examples/ and unit-test
# files under src/, i.e. src/**/tests.rs and src/**/tests/, excluded),
# measured with rustc's -C instrument-coverage and LLVM's llvm-profdata + llvm-cov, then compared to
# `coverage_score` in coverage_config_x86_64.json:
#   - more than 0.5 below the recorded figure: failure;
#   - more than 0.5 above it: a note suggesting to raise the recorded figure.
# COVERAGE_UPDATE=1 writes the measured figure into the config file; COVERAGE_LLVM=trixie skips
# the host package (to exercise the fallback below).
#
# llvm-profdata and llvm-cov must come from the same LLVM major version as rustc (a profile written
# by a newer LLVM is refused by an older llvm-profdata as an unsupported version). The rustup
# toolchain ships no llvm-tools here, so the tools are taken, in this order, from:
#   1. $LLVM_PROFDATA / $LLVM_COV, when both are set;
#   2. Debian's llvm-<major> package on the host (installed with apt-get when missing; bookworm has
#      llvm-22 through bookworm-security);
#   3. Debian trixie's llvm-<major>, downloaded through an isolated apt configuration under
#      $XRV_CACHE/llvm (nothing is installed on the host) and run with trixie's own dynamic loader.
# Outputs: <target>/coverage/{report.txt,summary.json,lcov.info}.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="$ROOT/coverage_config_x86_64.json"
XRV_CACHE="${XRV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/xen-rust-vmm}"
COV_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/coverage"
PROF_DIR="$COV_DIR/profraw"
export DEBIAN_FRONTEND=noninteractive

log() { echo "coverage: $*"; }
die() { echo "coverage: error: $*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

LLVM_MAJOR="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
[ -n "$LLVM_MAJOR" ] || die "cannot read rustc's LLVM version from 'rustc -vV'"

tool_ok() { # tool -> true when it runs and is LLVM $LLVM_MAJOR
    "$1" --version 2>/dev/null | grep -q "LLVM version $LLVM_MAJOR\."
}

use_host_package() {
    local bin="/usr/lib/llvm-$LLVM_MAJOR/bin"
    if [ ! -x "$bin/llvm-profdata" ] || [ ! -x "$bin/llvm-cov" ]; then
        log "installing Debian package llvm-$LLVM_MAJOR on the host"
        if ! as_root apt-get install -y -q --no-install-recommends "llvm-$LLVM_MAJOR" >/dev/null 2>&1; then
            as_root apt-get update -q >/dev/null 2>&1 || true
            as_root apt-get install -y -q --no-install-recommends "llvm-$LLVM_MAJOR" >/dev/null 2>&1 || return 1
        fi
    fi
    LLVM_PROFDATA="$bin/llvm-profdata"
    LLVM_COV="$bin/llvm-cov"
}

use_trixie_package() {
    local base="$XRV_CACHE/llvm" apt root mirror
    apt="$base/apt-trixie"
    root="$base/root-trixie-$LLVM_MAJOR"
    if [ ! -x "$root/usr/lib/llvm-$LLVM_MAJOR/bin/llvm-cov" ]; then
        log "fetching Debian trixie's llvm-$LLVM_MAJOR into $base (isolated apt, not installed on the host)"
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
        : >"$apt/empty-status"
        # The machine's own Debian mirror, from its active (not commented) apt sources.
        mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
            grep -E '^[[:space:]]*(deb[[:space:]]|URIs:)' | grep -oE 'https?://[^[:space:]]+' |
            grep -E '/debian/?$' | head -n1)"
        [ -n "$mirror" ] || { log "this machine's apt sources name no Debian archive"; return 1; }
        mirror="${mirror%/}"
        printf 'deb %s trixie main\ndeb %s-security trixie-security main\n' "$mirror" "$mirror" >"$apt/sources.list"
        local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
            -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
            -o "Dir::State::status=$apt/empty-status" -o APT::Architectures::=amd64
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
        apt-get "${opts[@]}" update -q >/dev/null || return 1
        # With an empty status file the download holds the whole dependency closure, glibc included.
        apt-get "${opts[@]}" install --download-only -y -q --no-install-recommends "llvm-$LLVM_MAJOR" >/dev/null || return 1
        rm -rf "$root.tmp"
        mkdir -p "$root.tmp"
        local deb
        for deb in "$apt/cache/archives/"*.deb; do dpkg-deb -x "$deb" "$root.tmp"; done
        rm -rf "$root"
        mv "$root.tmp" "$root"
    fi
    # Wrappers that run the tools with trixie's loader and libraries (trixie's glibc is newer).
    local wrap="$base/bin-trixie-$LLVM_MAJOR" t
    mkdir -p "$wrap"
    for t in llvm-profdata llvm-cov; do
        cat >"$wrap/$t" <<WRAP
#!/bin/sh
exec "$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu:$root/usr/lib/llvm-$LLVM_MAJOR/lib" "$root/usr/lib/llvm-$LLVM_MAJOR/bin/$t" "\$@"
WRAP
        chmod +x "$wrap/$t"
    done
    LLVM_PROFDATA="$wrap/llvm-profdata"
    LLVM_COV="$wrap/llvm-cov"
}

find_tools() {
    if [ -n "${LLVM_PROFDATA:-}" ] && [ -n "${LLVM_COV:-}" ]; then
        tool_ok "$LLVM_PROFDATA" && tool_ok "$LLVM_COV" && return 0
        log "LLVM_PROFDATA/LLVM_COV are not LLVM $LLVM_MAJOR; looking elsewhere"
    fi
    if [ "${COVERAGE_LLVM:-}" != trixie ] && use_host_package && tool_ok "$LLVM_PROFDATA" && tool_ok "$LLVM_COV"; then return 0; fi
    log "no usable host llvm-$LLVM_MAJOR; trying Debian trixie's"
    if use_trixie_package && tool_ok "$LLVM_PROFDATA" && tool_ok "$LLVM_COV"; then return 0; fi
    die "no llvm-profdata/llvm-cov of LLVM $LLVM_MAJOR found (rustc uses LLVM $LLVM_MAJOR)"
}

find_tools
log "rustc LLVM $LLVM_MAJOR; tools: $LLVM_PROFDATA, $LLVM_COV ($("$LLVM_COV" --version | grep -o 'LLVM version [0-9.]*'))"

# --- build and run the instrumented tests -----------------------------------------------------

# Own target dir: instrumented artifacts must not replace the ordinary ones.
# The config's exclude_path (comma-separated directories, e.g. "crates/xtask") leaves those crates'
# tests unrun and their files uncounted; crate_features are passed to cargo.
EXCLUDE_PATHS="$(jq -r '.exclude_path // ""' "$CONFIG")"
FEATURES="$(jq -r '.crate_features // ""' "$CONFIG")"
CARGO_ARGS=(--workspace --tests)
IFS=',' read -r -a EXCLUDES <<<"$EXCLUDE_PATHS"
for ex in "${EXCLUDES[@]}"; do
    ex="${ex#./}"
    ex="${ex%/}"
    [ -n "$ex" ] || continue
    while IFS= read -r pkg; do
        CARGO_ARGS+=(--exclude "$pkg")
    done < <(cargo metadata --no-deps --format-version 1 |
        jq -r --arg dir "$ROOT/$ex" '.packages[] | select((.manifest_path | rtrimstr("/Cargo.toml")) == $dir) | .name')
done
[ -z "$FEATURES" ] || CARGO_ARGS+=(--features "$FEATURES")

# Own target dir: instrumented artifacts must not replace the ordinary ones. One per checkout:
# cargo reuses a workspace crate's artifacts built in another checkout of the same tree (its
# fingerprints are relative to the workspace root), and their coverage maps name that
# checkout's files, which the figure below would then leave out or count as never run.
export CARGO_TARGET_DIR="$COV_DIR/target-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
export RUSTFLAGS="-C instrument-coverage"
log "cargo test ${CARGO_ARGS[*]}"

rm -rf "$PROF_DIR"
mkdir -p "$PROF_DIR"

log "building instrumented test binaries"
if ! cargo test "${CARGO_ARGS[@]}" --no-run --message-format=json >"$COV_DIR/build.json"; then
    # The compiler's messages are inside the JSON: show them.
    jq -r 'select(.reason == "compiler-message") | .message.rendered' "$COV_DIR/build.json" >&2
    die "the instrumented test binaries did not build"
fi
mapfile -t OBJECTS < <(jq -r 'select(.reason == "compiler-artifact" and .executable != null) | .executable' \
    "$COV_DIR/build.json" | sort -u)
[ "${#OBJECTS[@]}" -gt 0 ] || die "no test binaries were built"
log "${#OBJECTS[@]} instrumented binaries"

log "running the tests"
tests_ok=1
LLVM_PROFILE_FILE="$PROF_DIR/%p-%m.profraw" cargo test "${CARGO_ARGS[@]}" --no-fail-fast || tests_ok=0

shopt -s nullglob
PROFRAW=("$PROF_DIR"/*.profraw)
shopt -u nullglob
[ "${#PROFRAW[@]}" -gt 0 ] || die "the tests wrote no .profraw file"

# A version mismatch between rustc's LLVM and llvm-profdata shows here ("unsupported version").
"$LLVM_PROFDATA" merge -sparse "${PROFRAW[@]}" -o "$COV_DIR/merged.profdata" ||
    die "llvm-profdata could not merge the profiles"

OBJ_ARGS=()
for o in "${OBJECTS[@]}"; do OBJ_ARGS+=(-object "$o"); done
# Everything that is not a workspace crate's src/ (or is xtask) is left out.
IGNORE='/\.cargo/|/\.rustup/|^/rustc/|/rustc/[0-9a-f]+/|/crates/xtask/|/crates/[^/]+/(tests|benches|examples)/|/target/|/src/(.*/)?tests(\.rs|/)'
COV_ARGS=(-instr-profile="$COV_DIR/merged.profdata" -ignore-filename-regex="$IGNORE" "${OBJ_ARGS[@]}")

"$LLVM_COV" report "${COV_ARGS[@]}" >"$COV_DIR/report.txt"
"$LLVM_COV" export -format=lcov "${COV_ARGS[@]}" >"$COV_DIR/lcov.info"
"$LLVM_COV" export -summary-only "${COV_ARGS[@]}" >"$COV_DIR/summary.json"
cat "$COV_DIR/report.txt"

# Sum lines over workspace crates' src/ only (a positive filter on top of the regex above).
read -r covered count < <(jq -r --arg root "$ROOT/" --arg ex "$EXCLUDE_PATHS" '
    ($ex | split(",") | map(ltrimstr("./") | rtrimstr("/")) | map(select(. != "")) | map(. + "/")) as $excl
    | [ .data[0].files[]
      | (.filename | ltrimstr($root)) as $f
      | select(($f | test("^crates/[^/]+/src/")) and ($f | test("/src/(.*/)?tests(\\.rs|/)") | not)
               and ([$excl[] as $e | $f | startswith($e)] | any | not))
      | .summary.lines ]
    | "\(map(.covered) | add // 0) \(map(.count) | add // 0)"' "$COV_DIR/summary.json")
measured="$(awk -v c="$covered" -v n="$count" 'BEGIN { printf "%.2f", (n > 0 ? 100 * c / n : 0) }')"
recorded="$(jq -r '.coverage_score' "$CONFIG")"
log "line coverage: $measured% ($covered of $count lines in crates/*/src without src/**/tests{.rs,/}; excluded: ${EXCLUDE_PATHS:-none})"
log "recorded coverage_score in ${CONFIG#"$ROOT"/}: $recorded%"
log "reports: $COV_DIR/report.txt, $COV_DIR/lcov.info"

verdict="$(awk -v m="$measured" -v r="$recorded" 'BEGIN { if (m < r - 0.5) print "drop"; else if (m > r + 0.5) print "rise"; else print "same" }')"
status=0
case "$verdict" in
    drop)
        echo "coverage: FAIL: coverage dropped to $measured% from the recorded $recorded% (tolerance 0.5)"
        status=1 ;;
    rise)
        echo "coverage: note: coverage rose to $measured% from the recorded $recorded%;" \
            "please update coverage_score in ${CONFIG#"$ROOT"/} (COVERAGE_UPDATE=1 does it)" ;;
esac
if [ "${COVERAGE_UPDATE:-0}" = 1 ]; then
    tmp="$(mktemp)"
    jq --argjson m "$measured" '.coverage_score = $m' "$CONFIG" >"$tmp" && mv "$tmp" "$CONFIG"
    chmod 644 "$CONFIG"
    log "wrote coverage_score $measured to ${CONFIG#"$ROOT"/}"
fi
if [ "$tests_ok" -ne 1 ]; then
    echo "coverage: FAIL: some tests failed under instrumentation; the figure above is incomplete"
    status=1
fi
exit "$status"
