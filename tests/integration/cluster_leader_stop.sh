#!/usr/bin/env bash
# Leader SIGSTOP longer than the election timeout, then SIGCONT (3 replicas, PMD given):
# the others elect a new leader that serves writes; the old one, resumed, accepts no write
# (a write sent straight to it fails or is redirected), steps down within a bound, never
# two leaders in one term, and all three converge.
# Usage: cluster_leader_stop.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
. "$(dirname "$0")/vethlib.sh"
T="cluster_leader_stop[$PMD]"
vl_init
vl_cluster_up 3 "$PMD"
L=$(vl_wait_leader 20)
vl_cli_at "$L" --quiet --timeout-ms 500 --retries 4 put before-stop 1 || vl_fail "first put"
echo "$T: replica $L leads; SIGSTOP"
t0=$(vl_now_ms)
vl_replica_kill "$L" STOP
N=$(vl_wait_leader 10 "$L")
echo "$T: replica $N leads after $(($(vl_now_ms) - t0)) ms"
vl_cli_at "$N" --quiet --timeout-ms 500 --retries 4 put during-stop 2 || vl_fail "put via $N"

vl_replica_kill "$L" CONT
# At once: the resumed replica may still believe it leads, but must not acknowledge.
rc=0
out=$(vl_cli_at "$L" --no-redirect --timeout-ms 300 --retries 0 put stale-leader x 2>&1) ||
    rc=$?
[ "$rc" -ne 0 ] || vl_fail "resumed old leader $L acknowledged a write"
echo "$T: write to resumed replica $L refused (exit $rc: $(head -n 1 <<<"$out"))"

deadline=$((SECONDS + 10))
while :; do
    role=$(vl_raft_field "$L" role)
    [ -n "$role" ] && [ "$role" != leader ] && break
    ((SECONDS < deadline)) || vl_fail "replica $L still '$role' 10 s after SIGCONT"
    sleep 0.05
done
echo "$T: replica $L stepped down ($role) after $(($(vl_now_ms) - t0)) ms"

# No split brain: one leader per term, and the current one accepts writes.
for ((r = 0; r < 5; r++)); do
    leaders=$(for i in 1 2 3; do
        st=$(vl_raft "$i")
        if [ "$(sed -n 's/^role=//p' <<<"$st")" = leader ]; then
            sed -n 's/^term=//p' <<<"$st"
        fi
    done | sort | uniq -d)
    [ -z "$leaders" ] || vl_fail "two leaders in term $leaders"
    sleep 0.1
done
M=$(vl_wait_leader 10)
v=$(vl_cli_at "$L" --timeout-ms 500 --retries 4 get during-stop) || vl_fail "get via $L"
[ "$v" = 2 ] || vl_fail "get during-stop returned '$v'"
rc=0
vl_cli_at "$M" --timeout-ms 500 --retries 4 get stale-leader >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || vl_fail "unacknowledged write to the stale leader is visible (get exit $rc)"
conv=$(vl_wait_converged 15) || exit 1
echo "$T: leader $M; all three at $conv"
echo "$T: PASS"
