#!/usr/bin/env bash
# Per-stage lcores (3 replicas, PMD given): every replica runs rx, sequencer, log, core+apply
# and tx on 5 different lcores (more lcores than the host's CPUs: the daemon maps them onto
# its CPUs with EAL --lcores; back-off idle). A verified load runs through the leader, the
# leader is SIGKILLed halfway, a new leader must serve, every acknowledged PUT is read back
# and the survivors converge to the same applied index and state digest.
# Usage: cluster_lcores.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
FAILOVER_MAX_S=${FAILOVER_MAX_S:-10}
. "$(dirname "$0")/vethlib.sh"
T="cluster_lcores[$PMD]"
export VL_CONF_EXTRA="replica|idle|backoff;replica|lcores|0-4;replica|rx_lcore|0;\
replica|seq_lcore|1;replica|log_lcore|2;replica|apply_lcore|3;replica|tx_lcore|4"
vl_init
vl_cluster_up 3 "$PMD"
for i in 1 2 3; do
    grep -q "lcores: rx 0, sequencer 1 (own), log 2 (own), core+apply 3, tx 4" \
        "$VL_TMP/ordo-r$i.log" || vl_fail "replica $i does not place the stages apart:
$(grep -i lcore "$VL_TMP/ordo-r$i.log")"
done
L=$(vl_wait_leader 20)
echo "$T: replica $L leads; stages on lcores 0-4 of every replica"

vl_load_spawn load "$L" --timeout-ms 200 --retries 100 load --duration-s 6 \
    --progress-ms 500 --outstanding 16 --value-size 64 --keys 2000 --read-ratio 0.5 \
    --verify --readback
vl_wait_count load '^progress' 4 15
kill_ms=$(vl_now_ms)
vl_replica_kill "$L" KILL
N=$(vl_wait_leader "$FAILOVER_MAX_S" "$L")
echo "$T: SIGKILL of leader $L; replica $N serves writes after $(($(vl_now_ms) - kill_ms)) ms"

rc=0
vl_wait_exit load 30 || rc=$?
out=$(grep '^mode=' "$VL_TMP/load.log" || true)
[ "$rc" -eq 0 ] && [ -n "$out" ] || vl_fail "load exited $rc: $(tail -n 5 "$VL_TMP/load.log")"
echo "$T: $out"
for k in errors verify_failures readback_failed; do
    [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "$k = $(vl_kv "$out" "$k")"
done
[ "$(vl_kv "$out" readback_ok)" -gt 0 ] || vl_fail "nothing read back"
conv=$(vl_wait_converged 15) || exit 1
echo "$T: survivors at $conv"
echo "$T: PASS"
