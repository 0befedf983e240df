#!/usr/bin/env bash
# ordo-admin against a live 3-replica cluster (af_packet behind a bridge): the leader's status
# says leader with its followers' match and lag, commit advances after a load, a follower
# names the leader, raft/stats/json/net-fault answer, snapshot and transfer take effect, and
# usage errors or a dead socket fail cleanly.
# Usage: admin.sh BUILD_DIR [PMD]   (root; exits 77 without namespaces)
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=${2:-af_packet}
VL_NS_PREFIX=${VL_NS_PREFIX:-oa1}
. "$(dirname "$0")/vethlib.sh"
T="admin[$PMD]"
ADMIN=$VL_BUILD/apps/ordo-admin
[ -x "$ADMIN" ] || vl_die "$ADMIN not built"
field() { sed -n "s/^$1: *\\([^ ]*\\).*/\\1/p" <<<"$2"; }

vl_init
vl_cluster_up 3 "$PMD"
L=$(vl_wait_leader 20)
F=$((L % 3 + 1))
echo "$T: replica $L leads"

st=$(vl_admin "$L" status) || vl_fail "status of leader $L exited $?"
echo "$st"
[ "$(field role "$st")" = leader ] || vl_fail "leader $L status role: $(field role "$st")"
[ "$(field leader "$st")" = "$L" ] || vl_fail "leader $L status names leader $(field leader "$st")"
c0=$(field commit "$st")
[ -n "$c0" ] || vl_fail "no commit index in status"
n=$(grep -cE '^  node [0-9]+ +match [0-9]+  lag -?[0-9]+' <<<"$st" || true)
[ "$n" = 3 ] || vl_fail "status lists $n match lines, expected 3"
grep -qE '^network: +rx_packets [0-9]+' <<<"$st" || vl_fail "no network counters in status"

out=$(vl_cli_at "$L" --timeout-ms 500 --retries 10 load --requests 2000 --outstanding 16 \
    --value-size 32 --keys 500 --read-ratio 0) || vl_fail "load: $out"
echo "$T: load: $out"
[ "$(vl_kv "$out" errors)" = 0 ] || vl_fail "load errors: $out"

st=$(vl_admin "$L" status) || vl_fail "status after load exited $?"
c1=$(field commit "$st")
[ "$c1" -gt "$c0" ] || vl_fail "commit did not advance: $c0 -> $c1"
b=$(field batches "$st")
[ "${b:-0}" -gt 0 ] || vl_fail "no batches counted after the load"
echo "$T: commit $c0 -> $c1, $b batches"

# A follower knows the leader and reaches the same commit (bounded wait).
deadline=$((SECONDS + 10))
while :; do
    fs=$(vl_admin "$F" status) || vl_fail "status of follower $F exited $?"
    [ "$(field commit "$fs")" -ge "$c1" ] && break
    ((SECONDS < deadline)) || vl_fail "follower $F commit stuck at $(field commit "$fs") < $c1"
    sleep 0.05
done
[ "$(field role "$fs")" = follower ] || vl_fail "follower $F role: $(field role "$fs")"
[ "$(field leader "$fs")" = "$L" ] || vl_fail "follower $F names leader $(field leader "$fs")"

vl_admin "$L" raft | grep -qx 'role=leader' || vl_fail "raft: no role=leader line"
vl_admin "$L" stats | grep -qE '^requests=[1-9][0-9]*$' || vl_fail "stats: no requests counted"
vl_admin "$L" json /ordo/port | python3 -c 'import json,sys; json.load(sys.stdin)' ||
    vl_fail "json /ordo/port is not JSON"
vl_admin "$L" net-fault | grep -q '^spec=' || vl_fail "net-fault: no spec"
rc=0
vl_admin "$L" bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || vl_fail "unknown subcommand exited $rc, expected 2"
rc=0
"$ADMIN" --file-prefix "oa1-none-$$" status >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || vl_fail "status of a missing replica exited $rc, expected 1"

# Snapshot now: the snapshot index reaches the applied index.
out=$(vl_admin "$L" snapshot) || vl_fail "snapshot exited $?: $out"
echo "$T: $out"
st=$(vl_admin "$L" status)
[ "$(field snapshot "$st")" -ge "$c1" ] || vl_fail "snapshot index $(field snapshot "$st") < $c1"
# The background snapshot's state (/ordo/snap) in status, its JSON form and the snap command.
grep -E '^snap' <<<"$st" | sed "s/^/$T: /"
grep -qE '^snapshots:  mode fork, [a-z]+; last at index [0-9]+ \(written in' <<<"$st" ||
    vl_fail "status: no snapshots line"
grep -qE '^snap count: started [1-9][0-9]* done [1-9][0-9]* failed 0' <<<"$st" ||
    vl_fail "status: no snap count line"
js=$(vl_admin "$L" status --json) || vl_fail "status --json exited $?"
python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["raft"]["role"] == "leader" and d["stats"]["requests"] > 0, d
assert d["snap"]["done"] >= 1 and d["snap"]["last_index"] >= int(sys.argv[1]), d["snap"]
' "$c1" <<<"$js" || vl_fail "status --json: $js"
vl_admin "$L" snap | grep -qx 'mode=fork' || vl_fail "snap: no mode=fork line"
rc=0
vl_admin "$L" status --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || vl_fail "status --bogus exited $rc, expected 2"

# Transfer: a follower refuses it; the leader hands over to F, which then leads.
rc=0
vl_admin "$F" transfer "$L" >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || vl_fail "transfer on follower $F exited $rc, expected 1"
out=$(vl_admin "$L" transfer "$F") || vl_fail "transfer $L -> $F exited $?: $out"
echo "$T: $out"
st=$(vl_admin "$F" status)
[ "$(field role "$st")" = leader ] || vl_fail "after transfer, $F role: $(field role "$st")"
vl_cli_at "$F" --no-redirect --timeout-ms 500 --retries 4 --quiet put after-transfer 1 ||
    vl_fail "new leader $F does not serve writes"
echo "$T: PASS"
