#!/usr/bin/env bash
# ordo-cli against ordo-fake (kernel sockets, real codec and key-value store) in a private
# namespace: one-shot commands and their exit codes, redirect following, retries that reuse
# the request number, a clear error for an unreachable replica, and verified load.
# Usage: cli_fake.sh ORDO_CLI ORDO_FAKE   (root; exits 77 without namespaces)
set -euo pipefail
CLI=$1
FAKE=$2
. "$(dirname "$0")/vethlib.sh"
vl_init
vl_ns_add "$(vl_ns_client)"
NS=$(vl_ns_client)
A=127.0.0.1:7101   # redirects to B
B=127.0.0.1:7102   # answers
C=127.0.0.1:7103   # drops the first two datagrams
vl_spawn fake-a "$NS" "$FAKE" --bind $A --redirect $B
vl_spawn fake-b "$NS" "$FAKE" --bind $B
vl_spawn fake-c "$NS" "$FAKE" --bind $C --drop-first 2 --trace
for f in fake-a fake-b fake-c; do vl_wait_log $f 'ordo-fake: ready' 10; done

fail() { echo "cli_fake: FAIL: $*" >&2; exit 1; }
# expect RC CMD...: run ordo-cli in the namespace, check its exit code, keep its stdout.
expect() {
    local want=$1 rc=0
    shift
    OUT=$(vl_client "$CLI" --timeout-ms 200 --retries 3 "$@" 2>"$VL_TMP/err") || rc=$?
    [ "$rc" -eq "$want" ] || fail "ordo-cli $* exited $rc, expected $want: $(cat "$VL_TMP/err")"
}

expect 0 --server $A put alpha one                      # via redirect to B
expect 0 --server $A get alpha; [ "$OUT" = one ] || fail "get returned '$OUT'"
expect 0 --server $B cas alpha one two
expect 4 --server $B cas alpha one three; [ "$OUT" = two ] || fail "cas mismatch printed '$OUT'"
expect 0 --server $B del alpha
expect 3 --server $B get alpha
expect 3 --server $B del alpha
expect 2 --server $B frobnicate alpha
expect 2 --server nonsense get alpha
expect 0 --server $A register; [[ $OUT =~ ^[0-9]+$ ]] || fail "register printed '$OUT'"
echo "cli_fake: one-shot commands, exit codes, register and redirect ok"

expect 0 --server $C --client-id 42 --request-no 7 put beta x
grep -c '^request 42 7$' "$VL_TMP/fake-c.log" | grep -qx 3 ||
    fail "expected 3 attempts with request number 7: $(cat "$VL_TMP/fake-c.log")"
echo "cli_fake: retries reuse the request number ok"

expect 6 --server 127.0.0.1:7199 get beta
grep -q 'no reply from 127.0.0.1:7199 after 4 attempt' "$VL_TMP/err" || fail "$(cat "$VL_TMP/err")"
echo "cli_fake: unreachable replica reported: $(cat "$VL_TMP/err")"

expect 0 --server $A load --requests 20000 --outstanding 16 --value-size 100 --keys 500 \
    --read-ratio 0.5 --verify
echo "$OUT"
grep -q ' ok=20000 errors=0 verify_failures=0 ' <<<"$OUT" || fail "load: $OUT"
echo "cli_fake: PASS"
