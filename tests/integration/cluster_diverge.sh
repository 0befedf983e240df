#!/usr/bin/env bash
# Divergence (N replicas, PMD given): replica D runs with the test-only fault
# `ordo --diverge-at X` (its key-value state changes locally after applying index X). WHO
# says whether D is a follower (the default) or the leader when the fault strikes
# (ordo-admin transfer arranges it). A load runs past X and the next audit point (every
# RT_AUDIT_EVERY = 256 entries): D must log the DIVERGENCE and fail-stop (exit 3, "fail-
# stopped"), every other replica keeps running and serving writes, the load ends without
# errors and every acknowledged PUT is read back, the survivors converge to one digest, and
# ordo-admin shows it: D's socket is gone (exit 1), a survivor's status counts the audit
# mismatch and names D (audit_mismatch_node) and shows D's growing lag (leader's view).
# Usage: cluster_diverge.sh BUILD_DIR PMD [N] [follower|leader]  (root; 77 without netns)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
N=${3:-3}
WHO=${4:-follower}
X=${DIVERGE_AT:-64}
. "$(dirname "$0")/vethlib.sh"
T="cluster_diverge[$PMD,$N,$WHO]"
ADMIN=$VL_BUILD/apps/ordo-admin
[ -x "$ADMIN" ] || vl_die "$ADMIN not built"
field() { sed -n "s/^$1: *\\([^ ]*\\).*/\\1/p" <<<"$2"; }
t_start=$SECONDS
vl_init
D=$N
VL_REPLICA_ARGS[D]="--diverge-at $X"
vl_cluster_up "$N" "$PMD"
L=$(vl_wait_leader 20)
echo "$T: replica $L leads; replica $D diverges after index $X"
# Put D in the role asked for before the load reaches X (a transfer takes a few entries).
if [ "$WHO" = follower ] && [ "$L" = "$D" ]; then
    vl_admin "$L" transfer 0 || vl_fail "transfer away from $D"
    L=$(vl_wait_leader 10 "$D")
elif [ "$WHO" = leader ]; then
    # An election on the loaded machine may move leadership again: up to 3 transfers.
    for ((try = 0; try < 3 && L != D; try++)); do
        vl_admin "$L" transfer "$D" || true
        L=$(vl_wait_leader 10)
    done
    [ "$L" = "$D" ] || vl_fail "replica $L leads, not $D, after 3 transfers"
fi
[ "$(vl_raft_field "$L" applied)" -lt "$X" ] || vl_fail "index $X applied before the load"
echo "$T: replica $L leads (D=$D is the $WHO)"

# Writes only: each request is one log entry or a small batch, so the load passes the first
# audit point after X within a few seconds. Failover (leader case) costs retries only.
t0=$(vl_now_ms)
vl_load_spawn load "$L" --timeout-ms 200 --retries 100 load --requests 6000 --duration-s 10 \
    --outstanding 4 --value-size 32 --keys 300 --read-ratio 0 --verify --readback
vl_wait_log "ordo-r$D" 'DIVERGENCE' 40
t_div=$(($(vl_now_ms) - t0))
rc=0
vl_wait_exit "ordo-r$D" 10 || rc=$?
VL_DOWN[D]=1
[ "$rc" = 3 ] || vl_fail "replica $D exited $rc after the divergence, expected 3 (fail-stop)"
grep -q "ordo: node $D fail-stopped" "$VL_TMP/ordo-r$D.log" || vl_fail "no fail-stop line"
grep -E 'DIVERGENCE|fail-stop|TEST FAULT' "$VL_TMP/ordo-r$D.log" | sed "s/^/$T: r$D: /"
echo "$T: replica $D detected its divergence $t_div ms into the load and exited $rc"

rc=0
vl_wait_exit load 60 || rc=$?
out=$(grep '^mode=' "$VL_TMP/load.log" || true)
[ "$rc" -eq 0 ] && [ -n "$out" ] || vl_fail "load exited $rc: $(tail -n 5 "$VL_TMP/load.log")"
echo "$T: $out"
for k in errors verify_failures readback_failed; do
    [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "$k = $(vl_kv "$out" "$k")"
done
for ((i = 1; i <= N; i++)); do
    [ "$i" = "$D" ] && continue
    kill -0 "$(vl_replica_pid "$i")" 2>/dev/null || vl_fail "replica $i stopped too"
    ! grep -q 'DIVERGENCE\|fail-stop' "$VL_TMP/ordo-r$i.log" || vl_fail "replica $i fail-stopped"
done
M=$(vl_wait_leader 10 "$D")
conv=$(vl_wait_converged 20) || exit 1
echo "$T: survivors serve writes (leader $M) and converged at $conv"

# The admin CLI: D's socket is gone; the leader counts the mismatch, names D, shows its lag.
rc=0
vl_admin "$D" status >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || vl_fail "ordo-admin status of the stopped replica exited $rc, expected 1"
st=$(vl_admin "$M" status) || vl_fail "ordo-admin status of leader $M exited $?"
grep -E '^audit:|^  node' <<<"$st" | sed "s/^/$T: admin r$M: /"
mism=$(sed -n 's/.* audit_mismatches \([0-9]*\).*/\1/p' <<<"$st")
node=$(sed -n 's/.* audit_mismatch_node \([0-9]*\).*/\1/p' <<<"$st")
[ "${mism:-0}" -gt 0 ] || vl_fail "leader $M status shows no audit mismatch"
[ "${node:-}" = "$D" ] || vl_fail "leader $M names node '${node:-}' as mismatching, expected $D"
lag=$(sed -n "s/^  node $D *match [0-9]*  lag \\(-\\?[0-9]*\\).*/\\1/p" <<<"$st")
[ "${lag:-0}" -gt 0 ] || vl_fail "leader $M shows no lag for the stopped replica $D"
echo "$T: PASS ($((SECONDS - t_start)) s)"
