# Copyright 2026 The xen-rust-vmm authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Self cost per function of a callgrind output file (events: Ir), divided by the requests
# served: `awk -v n=<requests> -f callgrind-self.awk <file> | sort -rn`. Used by xen-box.sh
# in instructions mode, where dom0 has valgrind but perhaps not callgrind_annotate's perl.
#
# In the file, "fn=(id) name" starts a function's cost lines ("fn=(id)" alone names one seen
# before, also as "cfn=" the target of a call); the cost line after "calls=" is the call's
# inclusive cost, which belongs to the callee, so it is left out of the caller's self cost.
function named(s,   id, rest) {
    if (match(s, /^\([0-9]+\)/)) {
        id = substr(s, 1, RLENGTH)
        rest = substr(s, RLENGTH + 2)
        if (rest != "")
            names[id] = rest
        return names[id]
    }
    return s
}
BEGIN { ir = 2 }
# "positions: line" (one field before the cost) or "positions: instr line" (two).
/^positions:/ { ir = NF; next }
/^fn=/ { cur = named(substr($0, 4)); next }
/^cfn=/ { named(substr($0, 5)); next }
/^calls=/ { inclusive = 1; next }
/^[0-9+*-]/ {
    if (inclusive)
        inclusive = 0
    else
        self[cur] += $ir
    next
}
END {
    for (f in self)
        if (self[f] / n >= 0.5)
            printf "%8.1f %s\n", self[f] / n, f
}
