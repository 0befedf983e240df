#!/usr/bin/env bash
# Follower SIGKILL and restart (3 replicas, PMD given): writes continue on the majority
# while a follower is down; restarted, it recovers from its log and catches up with the
# leader (same applied index, and digest when exported); then the other follower is
# SIGKILLed, so every further write needs the restarted one, and the acknowledged writes
# are read back. MODE snapshot: snapshots every 500 entries, so while the follower is down
# the leader compacts past its log and the restarted follower must install a snapshot.
# Usage: cluster_follower_restart.sh BUILD_DIR PMD [log|snapshot]   (root; 77 without netns)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
MODE=${3:-log}
. "$(dirname "$0")/vethlib.sh"
T="cluster_follower_restart[$PMD,$MODE]"
[ "$MODE" = snapshot ] && VL_CONF_EXTRA="replica|snapshot_entries|500"
load() {
    local out
    out=$(vl_cli_at "$L" --timeout-ms 200 --retries 50 load --outstanding 16 "$@" \
        --value-size 64 --keys 1000 --read-ratio 0.3 --verify --readback) || vl_fail "load: $out"
    [ "$(vl_kv "$out" errors)" = 0 ] && [ "$(vl_kv "$out" readback_failed)" = 0 ] ||
        vl_fail "load: $out"
    echo "$T: $out"
}
vl_init
vl_cluster_up 3 "$PMD"
L=$(vl_wait_leader 20)
F=$((L % 3 + 1))
G=$((F % 3 + 1))
echo "$T: replica $L leads; SIGKILL follower $F"
load --requests 3000
vl_replica_kill "$F" KILL
if [ "$MODE" = snapshot ]; then
    # Few commands per batch, so the log grows past the core's retained tail (1024 entries)
    # plus a snapshot interval: the leader no longer holds what the follower lacks.
    load --requests 8000 --outstanding 2
else
    load --requests 5000
fi
before=$(vl_raft_field "$L" applied)
vl_replica_start "$F"
echo "$T: follower $F restarted (leader applied $before)"
conv=$(vl_wait_converged 20) || exit 1
echo "$T: all three at $conv"
a=$(vl_raft_field "$F" applied)
[ "${a:-0}" -ge "${before:-1}" ] || vl_fail "restarted follower applied ${a:-?} < $before"
if [ "$MODE" = snapshot ]; then
    inst=$(vl_raft_field "$F" snapshots_installed)
    taken=$(vl_raft_field "$L" snapshots_taken)
    echo "$T: leader took ${taken:-?} snapshots; restarted follower installed ${inst:-?}"
    [ "${inst:-0}" -ge 1 ] || vl_fail "the restarted follower installed no snapshot"
fi

vl_replica_kill "$G" KILL
echo "$T: SIGKILL follower $G: writes now need $F"
load --requests 2000
conv=$(vl_wait_converged 15) || exit 1
echo "$T: leader and restarted follower at $conv"
echo "$T: PASS"
