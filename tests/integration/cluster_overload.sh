#!/usr/bin/env bash
# Overload must never cost the leader its term: three replicas, ordo-load with 256 requests
# outstanding (closed loop, PUTs of 64-byte values) against the leader for a few seconds, with
# the benchmark's election timing (10 ms ticks, heartbeat 50 ms, election timeout >= 1 s).
# Passes when no replica's term moved, the leader stayed the same, no replica won an election
# during the run (telemetry /ordo/raft), and the load saw no error and no abandoned request.
# PEER_MTU (1500): [replica] peer_mtu and every veth's MTU. On af_xdp 3000 wedged the cluster:
# AppendEntries over 2,840 bytes were dropped by the kernel (no room for its XDP headroom in
# the umem chunk), the followers never got an entry again and every request timed out.
# Usage: cluster_overload.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
VL_NS_PREFIX=oqo
VL_CLUSTER_TIMING="replica|tick_us|10000;replica|heartbeat_ticks|5;replica|election_ticks|100"
. "$(dirname "$0")/vethlib.sh"
PEER_MTU=${PEER_MTU:-1500}
T="cluster_overload[$PMD mtu $PEER_MTU]"
OUTSTANDING=${OUTSTANDING:-256}
DURATION=${DURATION:-3}
# 9 (ordo-load's default, as in bench_cluster) fills a 2,772-byte batch with 24 PUTs: an
# AppendEntries of 2,893 bytes; 16-byte keys stay just under the old 2,840-byte af_xdp limit.
KEY_SIZE=${KEY_SIZE:-16}

vl_init
if [ "$PEER_MTU" != 1500 ]; then
    VL_MTU=$PEER_MTU
    VL_CONF_EXTRA="replica|peer_mtu|$PEER_MTU"
fi
vl_cluster_up 3 "$PMD"
L=$(vl_wait_leader 30)
# raft_snapshot I: "term elections_won leader" of replica I (telemetry), or dies.
raft_snapshot() {
    local out
    out=$(vl_raft "$1")
    [ -n "$out" ] || vl_fail "replica $1 answered no /ordo/raft"
    echo "$(sed -n 's/^term=//p' <<<"$out") $(sed -n 's/^elections_won=//p' <<<"$out")" \
        "$(sed -n 's/^leader=//p' <<<"$out")"
}
declare -A before
for i in 1 2 3; do
    before[$i]=$(raft_snapshot "$i")
done
echo "$T: replica $L leads; before: r1 ${before[1]} | r2 ${before[2]} | r3 ${before[3]}"

case "$PMD" in
af_xdp) vdev="net_af_xdp0,iface=on2-c0,start_queue=0,queue_count=1,busy_budget=0" ;;
*) vdev="net_af_packet0,iface=on2-c0,qpairs=1" ;;
esac
rc=0
# shellcheck disable=SC2046 # the EAL memory arguments are several words
OUT=$(vl_client timeout $((DURATION + 40)) "$VL_BUILD/apps/ordo-load" \
    --server "$(vl_ip_replica "$L"):$(vl_port_replica "$L")" --ip 198.18.0.2 --quiet \
    --outstanding "$OUTSTANDING" --duration "$DURATION" --read-ratio 0 --keys 10000 \
    --key-size "$KEY_SIZE" --value-size 64 --timeout-ms 1000 --json "$VL_TMP/load.json" -- \
    --no-pci "--vdev=$vdev" "--file-prefix=${VL_NS_PREFIX}-${VL_TAG}-load" $(vl_eal_mem_args) \
    --log-level=lib.eal:error -l 0 2>&1) || rc=$?
[ "$rc" -eq 0 ] || vl_fail "ordo-load exited $rc: $OUT"
SUMMARY=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d["throughput"], d["ok"], d["errors"], d["timeouts"], d["retries"], d["redirects"],
      d["p50_us"], d["p99_us"])' "$VL_TMP/load.json") || vl_fail "no JSON summary: $OUT"
read -r tput ok errors timeouts retries redirects p50 p99 <<<"$SUMMARY"
echo "$T: $OUTSTANDING outstanding for ${DURATION}s: $tput req/s, ok=$ok errors=$errors" \
    "timeouts=$timeouts retries=$retries redirects=$redirects p50=${p50}us p99=${p99}us"

for i in 1 2 3; do
    after=$(raft_snapshot "$i")
    [ "$after" = "${before[$i]}" ] ||
        vl_fail "replica $i: term/elections_won/leader moved from '${before[$i]}' to '$after'"
done
[ "$errors" -eq 0 ] && [ "$timeouts" -eq 0 ] || vl_fail "errors=$errors timeouts=$timeouts"
[ "$redirects" -eq 0 ] || vl_fail "$redirects redirects: leadership moved during the run"
[ "$ok" -gt 0 ] || vl_fail "no request answered"
echo "$T: leader's largest batch: $(vl_raft_field "$L" batch_cmds_max) commands"
# Frames the PMD saw the kernel drop (af_xdp: too big for the chunk, or fill ring empty), and
# on af_packet the sockets' RX ring drops (PACKET_STATISTICS; that PMD's imissed stays 0).
for i in 1 2 3; do
    port=$(vl_admin "$i" json /ordo/port 2>/dev/null) || port=
    echo "$T: r$i imissed $(sed -n 's/.*"imissed":\([0-9]*\).*/\1/p' <<<"$port")" \
        "sock_drops $(sed -n 's/.*"sock_drops":\([0-9]*\).*/\1/p' <<<"$port")"
    if [ "$PMD" = af_packet ]; then
        grep -q '"sock_packets":[1-9]' <<<"$port" || vl_fail "r$i: no socket counters: $port"
    fi
done
echo "$T: client $(grep -o 'tx_drops=[0-9]* sock_drops=[0-9]*' <<<"$OUT")"
echo "$T: PASS (terms, leader and elections unchanged on every replica)"
