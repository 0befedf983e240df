#!/usr/bin/env bash
# tcpreplay replays a pcap from ordo-pcapgen (no-session requests) twice from the client
# namespace into one replica on veth: every request of both loops is answered (replica
# telemetry and a tcpdump capture of the replies) and the second loop executes again.
# Usage: pcap_replay.sh BUILD_DIR [PMD]  (PMD af_xdp (default) or af_packet; root, tcpreplay
# and tcpdump; exits 77 without them).
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=${2:-af_xdp}
VL_NS_PREFIX=ob1
N=${PCAP_REPLAY_N:-400} # requests in the pcap
LOOPS=2
PPS=${PCAP_REPLAY_PPS:-500}
CLIENT_PORT=40000
fail() {
    echo "pcap_replay[$PMD]: FAIL: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || { echo "pcap_replay: SKIP: needs root" >&2; exit 77; }
command -v tcpreplay >/dev/null ||
    { echo "pcap_replay: SKIP: tcpreplay not installed (apt-get install tcpreplay)" >&2; exit 77; }
command -v tcpdump >/dev/null ||
    { echo "pcap_replay: SKIP: tcpdump not installed" >&2; exit 77; }
. "$(dirname "$0")/vethlib.sh"

vl_init
vl_net_up 1
vl_start_ordo 1 "$PMD"
NSC=$(vl_ns_client)
CMAC=$(ip -n "$NSC" -br link show on2-c0 | awk '{print $3}')
[ -n "$CMAC" ] || fail "no MAC on the client's veth"

# Requests from the client namespace's own address to replica 1, as its config names it.
"$VL_BUILD/apps/ordo-pcapgen" --out "$VL_TMP/req.pcap" --config "$VL_TMP/r1.ini" --node 1 \
    --src-mac "$CMAC" --src-ip "$VL_CLIENT_IP" --src-port "$CLIENT_PORT" --count "$N" \
    --mix 5:4:1 --keys 100 --value-size 64 --client-id 777 || fail "ordo-pcapgen failed"

# Replies to the client port, captured as they arrive (-c stops tcpdump at the last one).
WANT=$((N * LOOPS))
# A 16 MiB capture buffer: a starved tcpdump on a loaded host must not lose replies.
vl_spawn tcpdump "$NSC" tcpdump -i on2-c0 -nn -U --immediate-mode -B 16384 -c "$WANT" \
    -w "$VL_TMP/replies.pcap" "udp and src port $(vl_port_replica 1) and dst port $CLIENT_PORT"
vl_wait_log tcpdump 'listening on' 10

REQ0=$(vl_counter 1 requests)
REP0=$(vl_counter 1 replies)
APPLIED0=$(vl_raft_field 1 applied)
OUT=$(vl_client timeout 20 tcpreplay -i on2-c0 --pps="$PPS" --loop="$LOOPS" \
    "$VL_TMP/req.pcap" 2>&1) || fail "tcpreplay exited $?: $OUT"
grep -Eq "Successful packets: +$WANT\b" <<<"$OUT" || fail "tcpreplay did not send $WANT: $OUT"

# Bounded wait for the last replies (the replica answers within milliseconds).
deadline=$((SECONDS + 10))
while (($(vl_counter 1 replies) - REP0 < WANT)) && ((SECONDS < deadline)); do
    sleep 0.1
done
REQ=$(($(vl_counter 1 requests) - REQ0))
REP=$(($(vl_counter 1 replies) - REP0))
echo "pcap_replay[$PMD]: sent $WANT, replica counted requests=$REQ replies=$REP"
[ "$REQ" -eq "$WANT" ] || fail "replica received $REQ requests of $WANT"
[ "$REP" -eq "$WANT" ] || fail "replica answered $REP of $WANT"

# Every reply reached the client's veth: tcpdump exits by itself after WANT packets (bounded
# wait: a SIGTERM would discard what is still in its ring). Replies that the kernel counted
# but dropped for a full capture buffer (tcpdump's "dropped by kernel", a loaded host's
# artifact) did arrive; any other shortfall is a reply that never reached the wire.
for ((i = 0; i < 300; i++)); do
    kill -0 "$(vl_pid tcpdump)" 2>/dev/null || break
    sleep 0.05
done
vl_stop tcpdump || true
GOT=$(tcpdump -nn -r "$VL_TMP/replies.pcap" 2>/dev/null | wc -l)
DROPPED=$(sed -n 's/^\([0-9]*\) packets\? dropped by kernel.*/\1/p' "$VL_TMP/tcpdump.log")
DROPPED=${DROPPED:-0}
echo "pcap_replay[$PMD]: captured $GOT replies of $WANT (tcpdump: $DROPPED dropped by kernel)"
[ "$GOT" -le "$WANT" ] && [ $((GOT + DROPPED)) -ge "$WANT" ] ||
    fail "captured $GOT replies of $WANT, $DROPPED dropped by the capture:
$(cat "$VL_TMP/tcpdump.log")"

# No-session requests are not deduplicated: the second loop went through the log again.
if [ -n "$APPLIED0" ]; then
    APPLIED=$(($(vl_raft_field 1 applied) - APPLIED0))
    echo "pcap_replay[$PMD]: applied entries +$APPLIED"
    [ "$APPLIED" -ge "$WANT" ] || fail "only $APPLIED entries applied for $WANT requests"
fi
echo "pcap_replay[$PMD]: OK"
