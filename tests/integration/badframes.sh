#!/usr/bin/env bash
# Hostile frames at a real replica (DPDK, PMD given) while verified client load runs: bad
# magic, truncated Ordo message, truncated IPv4 datagram, bad UDP checksum, wrong cluster,
# unauthenticated from a disallowed subnet, bad client MAC, bad peer MAC. Each kind must be
# counted under its own telemetry counter and ignored; verified loads (one after each kind,
# one in the background throughout) must finish clean.
# Usage: badframes.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
N=50
. "$(dirname "$0")/vethlib.sh"
vl_init
vl_net_up 1
# Unauthenticated clients only from 198.18.0.0/24 (the client namespace); client 77 has a
# key, so a request from it with a wrong MAC is a MAC failure, not merely unauthorized.
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$VL_TMP/client77.key"
VL_CONF_EXTRA="clients|allow|198.18.0.0/24;clients|auth|optional"
VL_CONF_EXTRA+=";clients|key.77|$VL_TMP/client77.key"
vl_start_ordo 1 "$PMD"
fail() { echo "badframes[$PMD]: FAIL: $*" >&2; exit 1; }

# Valid traffic runs in the background for the whole attack.
vl_spawn load "$(vl_ns_client)" "$VL_BUILD/apps/ordo-cli" --server \
    "$(vl_ip_replica 1):$(vl_port_replica 1)" --timeout-ms 1000 --retries 5 load \
    --requests 50000 --outstanding 4 --value-size 32 --keys 500 --verify
# A client with its key is served (and checks the replica's reply); a wrong key gets nothing.
OUT=$(vl_cli --client-id 77 --key-file "$VL_TMP/client77.key" put authed yes) ||
    fail "authenticated put exited $?"
OUT=$(vl_cli --client-id 77 --key-file "$VL_TMP/client77.key" get authed) && [ "$OUT" = yes ] ||
    fail "authenticated get returned '$OUT'"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$VL_TMP/wrong.key"
mac0=$(vl_counter 1 mac_failures)
rc=0
vl_cli --client-id 77 --key-file "$VL_TMP/wrong.key" --timeout-ms 200 --retries 1 get authed \
    2>/dev/null || rc=$?
[ "$rc" -eq 6 ] || fail "a request under a wrong key exited $rc, expected 6 (no reply)"
# Its 2 frames (1 retry) are MAC failures. Wait (bounded) until both are counted before the
# baseline: on a loaded host the retry, sent 200 ms before the cli gave up, could still be
# in the replica's RX queue, and then counted once too many against the hostile kinds.
for ((t = 0; t < 200; t++)); do
    mac=$(vl_counter 1 mac_failures)
    [ $((mac - mac0)) -ge 2 ] && break
    sleep 0.05
done
[ $((mac - mac0)) -eq 2 ] || fail "2 frames under a wrong key: mac_failures +$((mac - mac0))"
echo "badframes[$PMD]: client MAC keys: right key served, wrong key ignored and counted"
vl_counters 1 >"$VL_TMP/before"
# kind:counter:source address (198.19.0.99 lies outside the allowed subnet)
KINDS="magic:malformed_magic trunc:malformed_truncated ipv4trunc:malformed_truncated
csum:malformed_checksum cluster:malformed_cluster unauth:unauthorized badmac:mac_failures
peerbadmac:mac_failures"
declare -A want
for kc in $KINDS; do
    kind=${kc%%:*}
    ctr=${kc#*:}
    src=198.18.0.1:40000
    [ "$kind" = unauth ] && src=198.19.0.99:40000
    vl_client "$VL_BUILD/tests/integration/ordo-badframes" --dev on2-c0 \
        --dst-mac "$(vl_mac_replica 1)" --dst "$(vl_ip_replica 1):$(vl_port_replica 1)" \
        --src "$src" --kind "$kind" --count "$N" --client-id 77 >/dev/null ||
        fail "ordo-badframes --kind $kind failed"
    want[$ctr]=$((${want[$ctr]:-0} + N))
    # Valid traffic right after each kind: still served, still correct.
    OUT=$(vl_cli --timeout-ms 1000 --retries 5 load --requests 500 --outstanding 4 \
        --value-size 32 --keys 100 --verify) || fail "load after '$kind' frames: $OUT"
done
# Every hostile frame is counted: wait (bounded) for the counters to catch up.
ok=0
for ((t = 0; t < 100; t++)); do
    vl_counters 1 >"$VL_TMP/after"
    ok=1
    for ctr in "${!want[@]}"; do
        b=$(sed -n "s/^$ctr=//p" "$VL_TMP/before")
        a=$(sed -n "s/^$ctr=//p" "$VL_TMP/after")
        [ $((a - b)) -eq "${want[$ctr]}" ] || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.05
done
for ctr in "${!want[@]}"; do
    b=$(sed -n "s/^$ctr=//p" "$VL_TMP/before")
    a=$(sed -n "s/^$ctr=//p" "$VL_TMP/after")
    echo "badframes[$PMD]: $ctr +$((a - b)) (expected +${want[$ctr]})"
done
[ "$ok" = 1 ] || fail "counters do not match the frames sent"
# The load must end by itself (bounded) with every request verified.
for ((t = 0; t < 600; t++)); do
    kill -0 "$(vl_pid load)" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$(vl_pid load)" 2>/dev/null && fail "load still running after 30 s"
wait "$(vl_pid load)" || fail "load exited $?: $(cat "$VL_TMP/load.log")"
OUT=$(tail -n 1 "$VL_TMP/load.log")
echo "badframes[$PMD]: $OUT"
[ "$(vl_kv "$OUT" ok)" = 50000 ] && [ "$(vl_kv "$OUT" verify_failures)" = 0 ] || fail "$OUT"
[ "$(vl_counter 1 requests)" -ge 54000 ] || fail "replica counted too few requests"
echo "badframes[$PMD]: PASS"
