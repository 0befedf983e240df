#!/usr/bin/env bash
# A new learner that must install a snapshot (issue 5): replicas 1-3 found the cluster with
# one command per log entry and a small snapshot_log_bytes, replica 4 is a spare (join = 1).
# Writes make the leader snapshot and compact its log past index 1 (checked: /ordo/raft
# first_index > 1), so the empty spare cannot be caught up from the log. Under a verified
# client load ordo-admin adds 4; it must install a snapshot (snapshots_installed, its log
# line), be promoted to voter, and end with the others' applied index and state digest.
# Every acknowledged write is read back.
# Usage: cluster_learner_snapshot.sh BUILD_DIR [PMD]   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=${2:-af_packet}
VL_NS_PREFIX=${VL_NS_PREFIX:-ols}
. "$(dirname "$0")/vethlib.sh"
T="cluster_learner_snapshot[$PMD]"
ADMIN=$VL_BUILD/apps/ordo-admin
[ -x "$ADMIN" ] || vl_die "$ADMIN not built"
LOAD_S=${LOAD_S:-8}

# One field of replica I's /ordo/raft (empty when it does not answer).
ls_field() { vl_raft_field "$@"; }
ls_phase() { echo "$T: [$((SECONDS - t_start)) s] $*"; }
# ls_load ARGS...: a verified load through the leader, in the foreground; fails on any error.
ls_load() {
    local out
    out=$(vl_cli_any "$L" --timeout-ms 200 --retries 50 load "$@" --value-size 64 \
        --keys 1000 --verify --readback) || vl_fail "load: $out"
    for k in errors verify_failures readback_failed; do
        [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "load: $k = $(vl_kv "$out" "$k"): $out"
    done
    echo "$T: $out"
}

t_start=$SECONDS
vl_init
VL_PMD=$PMD
vl_net_up 4
# batch_count_max 1: one write per entry, so a few thousand writes outgrow the core's
# retained tail (1024 entries behind a snapshot); 32 KiB of log past a snapshot starts the
# next one (about 250 entries of these writes).
VL_CONF_EXTRA="$VL_CLUSTER_TIMING;node.4|join|1;replica|batch_count_max|1"
VL_CONF_EXTRA+=";replica|snapshot_log_bytes|32768"
VL_CLUSTER_CONFIG=$(vl_write_cluster_config "$PMD")
VL_CONF_EXTRA=
export VL_CLUSTER_CONFIG
for i in 1 2 3 4; do
    vl_replica_spawn "$i"
done
for i in 1 2 3 4; do
    vl_wait_log "ordo-r$i" "$VL_READY_PATTERN" "$VL_READY_TIMEOUT_S"
done
L=$(vl_wait_leader 20)
ls_phase "4 replicas ready; replica $L leads, spare 4"
[ "$(ls_field 4 membership)" = none ] || vl_fail "spare 4 is a member before being added"

# 1. Compaction: enough single-write entries that the leader's log starts past index 1.
ls_load --requests 2500 --outstanding 16 --read-ratio 0
deadline=$((SECONDS + 15))
while first=$(ls_field "$L" first_index) && [ "${first:-0}" -le 1 ]; do
    ((SECONDS < deadline)) || vl_fail "leader $L never compacted its log (first_index ${first:-?})"
    sleep 0.2
done
snap=$(ls_field "$L" snapshot_index)
ls_phase "leader $L: snapshot_index $snap, log starts at $first"
[ "$(ls_field 4 snapshots_installed)" = 0 ] || vl_fail "spare 4 installed a snapshot early"

# 2. Add 4 under a verified load (reads and writes, every replica listed).
vl_load_spawn load "$L" --timeout-ms 200 --retries 100 load --duration-s "$LOAD_S" \
    --progress-ms 500 --outstanding 16 --value-size 64 --keys 1000 --read-ratio 0.5 \
    --verify --readback
vl_wait_count load '^progress' 2 20
t_add=$(vl_now_ms)
added=
for try in 1 2 3; do
    [ "$try" = 1 ] || L=$(vl_leader)
    [ -n "$L" ] || { sleep 0.5; continue; }
    rc=0
    out=$(vl_admin "$L" add 4 2>&1) || rc=$?
    echo "$T: ordo-admin add 4 (on $L): $out"
    if [ "$rc" -eq 0 ] || [ "$(ls_field "$L" members.4)" = voter ]; then
        added=1
        break
    fi
    sleep 0.5
done
[ -n "$added" ] || vl_fail "ordo-admin add 4: 3 attempts failed"
ls_phase "4 added and promoted in $(($(vl_now_ms) - t_add)) ms"

rc=0
vl_wait_exit load $((LOAD_S + 30)) || rc=$?
out=$(grep '^mode=' "$VL_TMP/load.log" || true)
[ "$rc" -eq 0 ] && [ -n "$out" ] || vl_fail "load exited $rc: $(tail -n 5 "$VL_TMP/load.log")"
echo "$T: $out"
for k in errors verify_failures readback_failed; do
    [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "$k = $(vl_kv "$out" "$k")"
done
[ "$(vl_kv "$out" readback_ok)" -gt 0 ] || vl_fail "nothing read back"

# 3. Node 4 installed a snapshot (it could not have been caught up from the log), is a voter
# in everyone's configuration, and holds the same state as the others.
inst=$(ls_field 4 snapshots_installed)
[ "${inst:-0}" -ge 1 ] || vl_fail "node 4 installed no snapshot (snapshots_installed ${inst:-?})"
grep -q 'installed snapshot at' "$VL_TMP/ordo-r4.log" || vl_fail "node 4 logged no install"
conv=$(vl_wait_converged 20)
for i in 1 2 3 4; do
    [ "$(ls_field "$i" members.4)" = voter ] || vl_fail "replica $i: 4 is not a voter"
done
[ "$(ls_field 4 membership)" = voter ] || vl_fail "node 4 does not see itself as a voter"
echo "$T: node 4 installed $inst snapshot(s); all four at $conv"
echo "$T: PASS in $((SECONDS - t_start)) s"
