#!/usr/bin/env bash
# Leader SIGKILL under load (3 replicas, PMD given): a verified load runs through the
# leader; halfway the leader is SIGKILLed; a new leader must serve writes within
# FAILOVER_MAX_S (the time is printed, as measured by the harness and by the client's
# longest stall); the load finishes without errors; every acknowledged PUT is read back
# (load --readback); the survivors converge to the same applied state.
# Usage: cluster_leader_kill.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
FAILOVER_MAX_S=${FAILOVER_MAX_S:-10}
. "$(dirname "$0")/vethlib.sh"
T="cluster_leader_kill[$PMD]"
vl_init
vl_cluster_up 3 "$PMD"
L=$(vl_wait_leader 20)
echo "$T: replica $L leads"

# 6 s of load; each request retried for up to 20 s (100 x 200 ms), so a failover costs
# retries and redirects, never errors.
vl_load_spawn load "$L" --timeout-ms 200 --retries 100 load --duration-s 6 \
    --progress-ms 500 --outstanding 16 --value-size 64 --keys 2000 --read-ratio 0.5 \
    --verify --readback
vl_wait_count load '^progress' 4 15
kill_ms=$(vl_now_ms)
vl_replica_kill "$L" KILL
N=$(vl_wait_leader "$FAILOVER_MAX_S" "$L")
seen_ms=$(($(vl_now_ms) - kill_ms))
echo "$T: SIGKILL of leader $L; replica $N serves writes after $seen_ms ms (harness poll)"

rc=0
vl_wait_exit load 45 || rc=$?
out=$(grep '^mode=' "$VL_TMP/load.log" || true)
grep '^progress' "$VL_TMP/load.log" | sed "s/^/$T: /"
[ "$rc" -eq 0 ] && [ -n "$out" ] || vl_fail "load exited $rc: $(tail -n 5 "$VL_TMP/load.log")"
echo "$T: $out"
for k in errors verify_failures readback_failed; do
    [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "$k = $(vl_kv "$out" "$k")"
done
[ "$(vl_kv "$out" readback_ok)" -gt 0 ] || vl_fail "nothing read back"
gap_end=$(vl_kv "$out" gap_end_epoch_ms)
echo "$T: failover: first reply after the kill $((gap_end - kill_ms)) ms after SIGKILL;" \
    "longest client stall $(vl_kv "$out" max_gap_ms) ms"
[ $((gap_end - kill_ms)) -le $((FAILOVER_MAX_S * 1000)) ] || vl_fail "failover too slow"

conv=$(vl_wait_converged 15) || exit 1
echo "$T: survivors at $conv"
echo "$T: PASS"
