#!/usr/bin/env bash
# Layering and header checks (STYLE.md sections 1 and 5), run in the unit suite:
#  - engine/ (outside engine/runtime/) includes no DPDK, liburing, jemalloc or OS I/O header;
#  - dependencies point one way: engine never includes drivers/ or apps/, drivers never apps/;
#  - every header compiles alone (self-contained), with warnings as errors.
# Usage: layering.sh SOURCE_ROOT CC [CFLAGS...]
set -uo pipefail
root=$1
shift
cc=("$@")
fail=0
cd "$root" || exit 1

bad() {
    echo "layering: $*" >&2
    fail=1
}

# Pure engine: no I/O headers, no DPDK/liburing/jemalloc, no drivers/apps.
forbidden='#include *[<"](rte_|liburing|jemalloc|unistd\.h|fcntl\.h|sys/|pthread\.h|time\.h|stdio\.h|drivers/|apps/)'
for f in engine/*.c engine/*.h; do
    case "$f" in engine/err.c | engine/ordo_assert.h) continue ;; esac # stdio for messages
    if grep -nE "$forbidden" "$f" >/tmp/layering.$$ 2>/dev/null; then
        while read -r line; do bad "$f:$line: the pure engine must not include this"; done \
            </tmp/layering.$$
    fi
done
for f in engine/runtime/*.[ch] drivers/*/*.[ch]; do
    if grep -nE '#include *"apps/' "$f" >/tmp/layering.$$; then
        bad "$f: includes apps/ (dependencies point apps -> drivers -> engine)"
    fi
done
rm -f /tmp/layering.$$

# Every header alone.
cflags=$(pkg-config --cflags libdpdk liburing libsodium 2>/dev/null | sed 's/-I/-isystem /g')
for h in engine/*.h engine/runtime/*.h drivers/*/*.h; do
    # shellcheck disable=SC2086
    if ! echo "#include \"$h\"" | "${cc[@]}" -std=gnu11 -Wall -Wextra -Werror -fsyntax-only \
        -D_GNU_SOURCE -march=native -I. $cflags -x c - 2>/tmp/layering-h.$$; then
        bad "$h does not compile alone: $(head -n 3 /tmp/layering-h.$$)"
    fi
done
rm -f /tmp/layering-h.$$
[ "$fail" = 0 ] && echo "layering: ok"
exit "$fail"
