#!/bin/sh
# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Runs in the Xen box's dom0 (a `xen-box run` PROGRAM) next to the daemons
# `cargo xtask vhost-device build` made, added with --add: prints each one's
# --help, then starts it and checks it creates its vhost-user socket (nothing
# connects: no frontend serves a domU here). Exit status = number of failures.
#   cargo xtask xen-box run --arch aarch64 --stack any \
#     --add <vhost-device-rng> --add <vhost-device-vsock> -- crates/xtask/assets/vhost-device-dom0.sh
set -u
fails=0
fail() { echo "VHOST-DEVICE-DOM0 FAIL: $*"; fails=$((fails + 1)); }
echo "VHOST-DEVICE-DOM0: Xen $XEN_BOX_XEN_VERSION, dom0 $(uname -srm)"
for d in vhost-device-rng vhost-device-vsock; do
  [ -x "./$d" ] || { fail "$d not added"; continue; }
  echo "== $d --help"
  "./$d" --help || fail "$d --help exited $?"
done
# Socket checks: the daemon runs until a frontend connects; it is killed after.
check_socket() { # NAME SOCKET CMD...
  name=$1 sock=$2; shift 2
  "$@" >/tmp/$name.log 2>&1 &
  pid=$!
  i=0
  while ! [ -S "$sock" ] && [ $i -lt 20 ] && kill -0 $pid 2>/dev/null; do sleep 0.5; i=$((i + 1)); done
  if [ -S "$sock" ]; then
    echo "VHOST-DEVICE-DOM0: $name listening on $sock (pid $pid)"
  else
    fail "$name made no socket $sock"; cat /tmp/$name.log
  fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
}
[ -x ./vhost-device-rng ] && check_socket vhost-device-rng /tmp/rng.sock0 \
  ./vhost-device-rng --socket-path /tmp/rng.sock -c 1
[ -x ./vhost-device-vsock ] && check_socket vhost-device-vsock /tmp/vhost3.socket \
  ./vhost-device-vsock --vm guest-cid=3,socket=/tmp/vhost3.socket,uds-path=/tmp/vm3.vsock
[ $fails = 0 ] && echo "VHOST-DEVICE-DOM0 ok"
exit $fails
