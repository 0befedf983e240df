#!/usr/bin/env bash
# One real ordo replica on a veth pair through DPDK (PMD given: af_xdp or af_packet):
# ARP and ping answered, one-shot commands, then 10,000 verified requests from ordo-cli,
# every one answered correctly, and the replica's counters agree.
# Usage: ordo_veth.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
. "$(dirname "$0")/vethlib.sh"
vl_init
vl_net_up 1
vl_start_ordo 1 "$PMD"
IP=$(vl_ip_replica 1)
fail() { echo "ordo_veth[$PMD]: FAIL: $*" >&2; exit 1; }

# The kernel in the client namespace must resolve the replica by ARP and get ICMP echoes.
vl_client ping -c 3 -i 0.2 -W 2 "$IP" >"$VL_TMP/ping.out" || fail "ping: $(cat "$VL_TMP/ping.out")"
vl_client ip neigh show "$IP" | grep -qi "$(vl_mac_replica 1)" || fail "no ARP entry for $IP"
[ "$(vl_counter 1 icmp_echo)" -ge 3 ] || fail "icmp_echo counter below 3"
[ "$(vl_counter 1 arp_replies)" -ge 1 ] || fail "arp_replies counter is 0"
echo "ordo_veth[$PMD]: ARP and ping answered"

OUT=$(vl_cli put greeting hello) || fail "put exited $?"
OUT=$(vl_cli get greeting) && [ "$OUT" = hello ] || fail "get returned '$OUT'"
rc=0; vl_cli get nosuchkey >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "get of a missing key exited $rc, expected 3"
echo "ordo_veth[$PMD]: put/get ok"

# Sessions (dissertation 6.3): `register` prints a new client id that later runs can use;
# a client id the replica never registered is refused as expired and nothing is applied.
ID=$(vl_cli register) || fail "register exited $?"
[[ $ID =~ ^[0-9]+$ ]] || fail "register printed '$ID'"
vl_cli --client-id "$ID" --request-no 1 --quiet put sess one || fail "put with $ID exited $?"
rc=0; vl_cli --client-id 987654321 --retries 1 put sess two 2>"$VL_TMP/err" || rc=$?
[ "$rc" -eq 5 ] && grep -q 'session expired' "$VL_TMP/err" ||
    fail "unregistered client exited $rc: $(cat "$VL_TMP/err")"
OUT=$(vl_cli get sess) && [ "$OUT" = one ] || fail "get sess returned '$OUT'"
echo "ordo_veth[$PMD]: registration ok; an unregistered client is refused"

before=$(vl_counter 1 requests)
OUT=$(vl_cli --timeout-ms 1000 --retries 5 load --requests 10000 --outstanding 16 \
    --value-size 64 --keys 2000 --read-ratio 0.5 --verify) || fail "load: $OUT"
echo "ordo_veth[$PMD]: $OUT"
[ "$(vl_kv "$OUT" ok)" = 10000 ] || fail "not every request answered: $OUT"
[ "$(vl_kv "$OUT" errors)" = 0 ] && [ "$(vl_kv "$OUT" verify_failures)" = 0 ] || fail "$OUT"
after=$(vl_counter 1 requests)
[ $((after - before)) -ge 10000 ] || fail "replica counted $((after - before)) requests"
echo "ordo_veth[$PMD]: PASS"
