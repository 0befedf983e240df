#!/usr/bin/env bash
# Three replicas through DPDK behind a bridge (PMD given): a leader is elected and serves
# writes; a follower answers a client with a redirect naming the leader (ordo-cli
# --no-redirect), the CLI follows it, a GET through another follower reads the value, a
# verified load through a follower succeeds, and all replicas reach the same applied state.
# Usage: cluster_basic.sh BUILD_DIR PMD   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=$2
. "$(dirname "$0")/vethlib.sh"
T="cluster_basic[$PMD]"
vl_init
vl_cluster_up 3 "$PMD"
t0=$(vl_now_ms)
L=$(vl_wait_leader 20)
echo "$T: replica $L leads (elected and serving writes after $(($(vl_now_ms) - t0)) ms)"
F1=$((L % 3 + 1))
F2=$((F1 % 3 + 1))

# A follower redirects, naming the leader.
rc=0
out=$(vl_cli_at "$F1" --no-redirect --timeout-ms 500 --retries 4 put k1 v1) || rc=$?
[ "$rc" -eq 8 ] || vl_fail "put to follower $F1 with --no-redirect exited $rc ($out), expected 8"
grep -q "^redirect leader=$L addr=$(vl_ip_replica "$L"):$(vl_port_replica "$L")\$" <<<"$out" ||
    vl_fail "follower $F1 redirected to '$out', expected leader $L"
echo "$T: follower $F1 redirects to $L"

# The CLI follows the redirect: the leader answers.
err=$(vl_cli_at "$F1" --show-server --timeout-ms 500 --retries 4 put k1 v1 2>&1 >/dev/null) ||
    vl_fail "put through follower $F1: $err"
grep -q "answered by $(vl_ip_replica "$L"):" <<<"$err" || vl_fail "put answered by: $err"
v=$(vl_cli_at "$F2" --timeout-ms 500 --retries 4 get k1) || vl_fail "get through $F2 exited $?"
[ "$v" = v1 ] || vl_fail "get k1 returned '$v'"
echo "$T: put through follower $F1, get through follower $F2: ok"

out=$(vl_cli_at "$F2" --timeout-ms 500 --retries 10 load --requests 5000 --outstanding 16 \
    --value-size 64 --keys 1000 --read-ratio 0.5 --verify --readback) || vl_fail "load: $out"
echo "$T: $out"
[ "$(vl_kv "$out" errors)" = 0 ] && [ "$(vl_kv "$out" verify_failures)" = 0 ] &&
    [ "$(vl_kv "$out" readback_failed)" = 0 ] || vl_fail "load: $out"

conv=$(vl_wait_converged 15) || exit 1
echo "$T: all replicas at $conv"
echo "$T: PASS"
