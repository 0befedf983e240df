#!/usr/bin/env bash
# Partition of the leader (3 replicas, PMD given): nftables drop rules on the bridge cut the
# leader off from both followers (the client still reaches it). The majority elects a new
# leader that serves writes; the isolated old leader acknowledges no write; after healing,
# it rejoins, the write it was sent is gone, and all three converge.
# Usage: cluster_partition.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
. "$(dirname "$0")/vethlib.sh"
T="cluster_partition[$PMD]"
vl_init
command -v nft >/dev/null || vl_die "nft is required (apt-get install nftables)"
vl_cluster_up 3 "$PMD"
L=$(vl_wait_leader 20)
vl_cli_at "$L" --quiet --timeout-ms 500 --retries 4 put before-cut 1 || vl_fail "first put"
echo "$T: replica $L leads; partitioning it from the other replicas"
t0=$(vl_now_ms)
vl_partition "$L"
# The majority side: a new leader serving writes (vl_leader prefers the highest term).
N=$(vl_wait_leader 10 "$L")
echo "$T: majority leader $N after $(($(vl_now_ms) - t0)) ms"
vl_cli_at "$N" --quiet --timeout-ms 500 --retries 4 put during-cut 2 || vl_fail "put via $N"

# The minority side: writes sent straight to the old leader are never acknowledged.
for ((r = 0; r < 3; r++)); do
    rc=0
    out=$(vl_cli_at "$L" --no-redirect --timeout-ms 300 --retries 0 put minority "$r" 2>&1) ||
        rc=$?
    [ "$rc" -ne 0 ] || vl_fail "isolated replica $L acknowledged a write"
done
echo "$T: isolated replica $L acknowledged no write (last exit $rc: $(head -n 1 <<<"$out"))"

vl_heal "$L"
echo "$T: healed"
M=$(vl_wait_leader 15)
deadline=$((SECONDS + 10))
while [ "$(vl_raft_field "$L" role)" = leader ] && [ "$M" != "$L" ]; do
    ((SECONDS < deadline)) || vl_fail "replica $L still leads 10 s after healing"
    sleep 0.05
done
v=$(vl_cli_at "$L" --timeout-ms 500 --retries 4 get during-cut) || vl_fail "get via $L"
[ "$v" = 2 ] || vl_fail "get during-cut returned '$v'"
rc=0
vl_cli_at "$M" --timeout-ms 500 --retries 4 get minority >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || vl_fail "a write the minority never acknowledged is visible (get exit $rc)"
conv=$(vl_wait_converged 15) || exit 1
echo "$T: leader $M; all three converged at $conv"
echo "$T: PASS"
