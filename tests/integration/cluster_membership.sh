#!/usr/bin/env bash
# Membership changes under load (issue 5): replicas 1-3 found the cluster, replica 4 is a
# spare (join = 1) that starts empty and must not campaign. While a verified client load
# runs: ordo-admin adds 4 (learner, promoted once caught up), removes a follower F, adds F
# back (it catches up again), then removes the leader R itself. The load must end without
# errors beyond retries, every acknowledged PUT is read back, and the final members (all but
# R) converge to the same applied index and state digest. The client's p50/p99 per half
# second are printed, before, during and after the changes.
# Usage: cluster_membership.sh BUILD_DIR [PMD]   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=${2:-af_packet}
VL_NS_PREFIX=${VL_NS_PREFIX:-om1}
. "$(dirname "$0")/vethlib.sh"
T="cluster_membership[$PMD]"
ADMIN=$VL_BUILD/apps/ordo-admin
[ -x "$ADMIN" ] || vl_die "$ADMIN not built"
LOAD_S=${LOAD_S:-12}
# mb_raft I: replica I's /ordo/raft as key=value lines (members.<id>=voter|learner), through
# ordo-admin (no interpreter start-up: this runs while the load does, on a shared machine).
mb_raft() { vl_admin "$1" --timeout-ms 1000 raft 2>/dev/null || true; }
# mb_field STATE NAME: one field of an mb_raft output kept in a variable.
mb_field() { sed -n "s/^$2=//p" <<<"$1"; }
# mb_role I J: replica J's role (voter, learner or empty) in replica I's configuration.
mb_role() { mb_field "$(mb_raft "$1")" "members.$2"; }
# mb_leader: the replica that reports role=leader with the highest term (empty if none).
mb_leader() {
    local i st best= term best_term=-1
    for i in 1 2 3 4; do
        st=$(mb_raft "$i")
        term=$(mb_field "$st" term)
        if [ "$(mb_field "$st" role)" = leader ] && [ "${term:-0}" -gt "$best_term" ]; then
            best=$i
            best_term=$term
        fi
    done
    echo "$best"
}
mb_phase() { echo "$T: [$((SECONDS - t_start)) s] $*"; }
# mb_change add|remove N: ordo-admin on the current leader (MB_LEADER afterwards). On a
# shared, loaded machine leadership can move meanwhile: up to 3 attempts, each on the leader
# of the moment, and a change already in place (an attempt whose outcome the CLI did not see)
# counts as done.
mb_change() {
    local op=$1 n=$2 want= try l out rc
    [ "$op" = add ] && want=voter
    l=$MB_LEADER
    for try in 1 2 3; do
        [ "$try" = 1 ] || l=$(mb_leader)
        if [ -n "$l" ]; then
            rc=0
            out=$(vl_admin "$l" "$op" "$n" 2>&1) || rc=$?
            echo "$T: ordo-admin $op $n (on $l): $out"
            MB_LEADER=$l
            [ "$rc" -eq 0 ] && return 0
            [ "$(mb_role "$l" "$n")" = "$want" ] && return 0
        fi
        sleep 0.5
    done
    vl_fail "ordo-admin $op $n: 3 attempts failed"
}

# mb_converged TIMEOUT_S ID...: waits until the given replicas report the same applied index
# and digest twice in a row; prints "applied=N digest=D".
mb_converged() {
    local deadline=$((SECONDS + $1)) i sig prev= one same
    shift
    while ((SECONDS < deadline)); do
        sig=
        same=1
        for i in "$@"; do
            local st
            st=$(mb_raft "$i")
            one="applied=$(mb_field "$st" applied) digest=$(mb_field "$st" digest)"
            [ -z "$sig" ] && sig=$one
            [ "$one" = "$sig" ] && [[ "$one" != "applied= "* ]] || same=0
        done
        if [ "$same" = 1 ] && [ "$sig" = "$prev" ]; then
            echo "$sig"
            return 0
        fi
        prev=$([ "$same" = 1 ] && echo "$sig")
        sleep 0.2
    done
    for i in "$@"; do vl_state "$i" >&2; done
    vl_fail "replicas $* did not converge within the deadline"
}

t_start=$SECONDS
vl_init
VL_PMD=$PMD
vl_net_up 4
VL_CONF_EXTRA="$VL_CLUSTER_TIMING;node.4|join|1"
VL_CLUSTER_CONFIG=$(vl_write_cluster_config "$PMD")
VL_CONF_EXTRA=
export VL_CLUSTER_CONFIG
for i in 1 2 3 4; do
    vl_replica_spawn "$i"
done
for i in 1 2 3 4; do
    vl_wait_log "ordo-r$i" "$VL_READY_PATTERN" "$VL_READY_TIMEOUT_S"
done
mb_phase "4 replicas ready"
L=$(vl_wait_leader 20)
MB_LEADER=$L
echo "$T: replica $L leads; spare 4"

# The spare: not a member, never campaigned (term 0), known to nobody's configuration.
st=$(mb_raft 4)
[ "$(mb_field "$st" membership)" = none ] || vl_fail "spare 4 is a member before being added"
[ "$(mb_field "$st" term)" = 0 ] || vl_fail "spare 4 campaigned (term $(mb_field "$st" term))"
[ -z "$(mb_role "$L" 4)" ] || vl_fail "leader lists 4 before the add"
grep -q 'not a member yet' "$VL_TMP/ordo-r4.log" || vl_fail "spare 4 did not log its state"

# Verified load through the leader, every replica listed (a replica that drops requests
# because it is outside the configuration makes the client move on after a timeout).
vl_load_spawn load "$L" --timeout-ms 200 --retries 100 load --duration-s "$LOAD_S" \
    --progress-ms 500 --outstanding 16 --value-size 64 --keys 2000 --read-ratio 0.5 \
    --verify --readback
vl_wait_count load '^progress' 4 20
t_change=$(vl_now_ms)
mb_phase "load running; membership changes start"

# 1. Add the spare: a learner first, a voter once caught up (the CLI waits for both).
mb_change add 4
grep -q 'now a member' "$VL_TMP/ordo-r4.log" || vl_fail "4 did not log joining"
grep -q 'learner 4 caught up' "$VL_TMP"/ordo-r[123].log || vl_fail "no leader logged the promotion"

# 2. Remove a follower: it receives the entry that removes it, logs it once, stops serving.
L=$MB_LEADER
F=$((L % 3 + 1))
mb_change remove "$F"
vl_wait_log "ordo-r$F" 'removed from the cluster' 10
n=$(grep -c 'removed from the cluster' "$VL_TMP/ordo-r$F.log" || true)
[ "$n" = 1 ] || vl_fail "removed follower $F logged its removal $n times"

# 3. Add it back: its log is behind; it catches up and is promoted again.
mb_change add "$F"

# 4. Remove the leader itself: it commits the change, steps down, the others elect.
R=$MB_LEADER
mb_change remove "$R"
vl_wait_log "ordo-r$R" 'removed from the cluster' 10
t_done=$(vl_now_ms)
mb_phase "changes done in $((t_done - t_change)) ms (ordo-admin wall time included)"
kill -0 "$(vl_pid load)" 2>/dev/null ||
    vl_fail "the load ended before the changes did (machine too slow for LOAD_S=$LOAD_S?)"
KEEP=()
for i in 1 2 3 4; do
    [ "$i" = "$R" ] || KEEP+=("$i")
done

rc=0
vl_wait_exit load $((LOAD_S + 40)) || rc=$?
out=$(grep '^mode=' "$VL_TMP/load.log" || true)
grep '^progress' "$VL_TMP/load.log" | sed "s/^/$T: /"
[ "$rc" -eq 0 ] && [ -n "$out" ] || vl_fail "load exited $rc: $(tail -n 5 "$VL_TMP/load.log")"
echo "$T: $out"
for k in errors verify_failures readback_failed; do
    [ "$(vl_kv "$out" "$k")" = 0 ] || vl_fail "$k = $(vl_kv "$out" "$k")"
done
[ "$(vl_kv "$out" readback_ok)" -gt 0 ] || vl_fail "nothing read back"
echo "$T: longest client stall $(vl_kv "$out" max_gap_ms) ms (changes started at" \
    "$t_change, done at $t_done, epoch ms)"

# Final configuration, as every remaining member sees it: three voters, R gone; one leads.
conv=$(mb_converged 20 "${KEEP[@]}")
N=
for i in "${KEEP[@]}"; do
    st=$(mb_raft "$i")
    for j in "${KEEP[@]}"; do
        r=$(mb_field "$st" "members.$j")
        [ "$r" = voter ] || vl_fail "replica $i: $j is '$r'"
    done
    [ -z "$(mb_field "$st" "members.$R")" ] || vl_fail "replica $i still lists removed $R"
    [ "$(mb_field "$st" role)" = leader ] && N=$i
done
[ -n "$N" ] || vl_fail "no leader among ${KEEP[*]}"
echo "$T: members ${KEEP[*]} at $conv; replica $N leads"
st=$(mb_raft "$R")
[ "$(mb_field "$st" membership)" = none ] || vl_fail "removed $R still a member"
[ "$(mb_field "$st" role)" != leader ] || vl_fail "removed $R still leads"
echo "$T: PASS in $((SECONDS - t_start)) s"
