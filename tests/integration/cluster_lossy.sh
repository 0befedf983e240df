#!/usr/bin/env bash
# Lossy network (3 replicas, PMD given): every replica runs the seeded fault injector
# (ordo --net-fault, its own seed) on all its traffic in both directions, so each frame
# between two replicas crosses two injectors: about 5 % loss, 5 % duplication and 5 %
# reordering per hop (client frames cross one). Leader election, a bounded verified load
# with retries, then every acknowledged PUT is read back (load --readback), the three
# replicas converge to the same applied index and digest, and every injector's telemetry
# counters (/ordo/net_fault) show it dropped, duplicated and reordered frames.
# Usage: cluster_lossy.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
SPEC=${LOSSY_SPEC:-drop=2.5,dup=2.5,reorder=2.5,dir=both}
. "$(dirname "$0")/vethlib.sh"
T="cluster_lossy[$PMD]"
t_start=$SECONDS
vl_init
for i in 1 2 3; do
    VL_REPLICA_ARGS[i]="--net-fault $SPEC,seed=$((4200 + i))"
done
vl_cluster_up 3 "$PMD"
t0=$(vl_now_ms)
L=$(vl_wait_leader 20)
echo "$T: faults '$SPEC' on every replica; replica $L leads after $(($(vl_now_ms) - t0)) ms"

# Bounded load: at most 4000 requests or 6 s; a lost request or reply costs a retry
# (200 ms), never an error (50 retries).
out=$(vl_cli_any "$L" --timeout-ms 200 --retries 50 load --requests 4000 --duration-s 6 \
    --outstanding 8 --value-size 64 --keys 400 --read-ratio 0.3 --verify --readback) ||
    vl_fail "load exited $?: $out"
echo "$T: $out"
for k in errors verify_failures readback_failed; do
    [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "$k = $(vl_kv "$out" "$k")"
done
[ "$(vl_kv "$out" readback_ok)" -gt 0 ] || vl_fail "nothing read back"
[ "$(vl_kv "$out" retries)" -gt 0 ] || vl_fail "no client retry under loss: faults not active?"

conv=$(vl_wait_converged 20) || exit 1
echo "$T: all replicas at $conv"

for i in 1 2 3; do
    nf=$(vl_net_fault "$i")
    [ -n "$nf" ] || vl_fail "replica $i: no /ordo/net_fault telemetry"
    grep -q '^spec=drop=2.5000,dup=2.5000,reorder=2.5000,.*dir=both' <<<"$nf" ||
        [ -n "${LOSSY_SPEC:-}" ] || vl_fail "replica $i: spec $(grep '^spec=' <<<"$nf")"
    for c in fault_drops fault_dups fault_reorders; do
        v=$(sed -n "s/^$c=//p" <<<"$nf")
        [ "${v:-0}" -gt 0 ] || vl_fail "replica $i: $c = ${v:-none}"
    done
    echo "$T: r$i injector: $(grep -E '^fault_(drops|dups|reorders|overflow)=' <<<"$nf" |
        tr '\n' ' ')"
done
echo "$T: PASS ($((SECONDS - t_start)) s)"
