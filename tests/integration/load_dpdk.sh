#!/usr/bin/env bash
# ordo-load (DPDK client on its own veth end) against one ordo replica: a closed-loop run and
# an open-loop run; every request answered, no errors, and a sane summary (quantiles ordered,
# throughput consistent with count and duration). Usage: load_dpdk.sh BUILD_DIR [PMD]
# A third run injects loss, duplication and reordering on the client's port (net_fault).
# (PMD: af_xdp (default) or af_packet; root; exits 77 without namespaces).
set -euo pipefail
VL_BUILD=$(cd "$1" && pwd)
PMD=${2:-af_xdp}
VL_NS_PREFIX=op3
. "$(dirname "$0")/vethlib.sh"
LOAD_IP=198.18.0.2 # ordo-load's own address; the client namespace's kernel keeps .1
fail() { echo "load_dpdk[$PMD]: FAIL: $*" >&2; exit 1; }

# ordo-load ARGS...: the generator in the client namespace on the client's veth end, bounded.
load_run() {
    local vdev
    case "$PMD" in
    af_xdp) vdev="net_af_xdp0,iface=on2-c0,start_queue=0,queue_count=1,busy_budget=0" ;;
    *) vdev="net_af_packet0,iface=on2-c0,qpairs=1" ;;
    esac
    # shellcheck disable=SC2046 # the EAL memory arguments are several words
    vl_client timeout 25 "$VL_BUILD/apps/ordo-load" --server "$(vl_ip_replica 1):$(vl_port_replica 1)" \
        --ip "$LOAD_IP" "$@" -- --no-pci "--vdev=$vdev" \
        "--file-prefix=${VL_NS_PREFIX}-${VL_TAG}-load" $(vl_eal_mem_args) \
        --log-level=lib.eal:error -l 0 ${LOAD_EAL_EXTRA:-}
}

# check_summary OUT REQUESTS: every request answered, no errors, quantiles in order.
check_summary() {
    local out=$1 want=$2 line
    line=$(grep 'ordo-load: summary' <<<"$out") || fail "no summary line: $out"
    echo "load_dpdk[$PMD]: $line"
    [ "$(vl_kv "$line" requests)" = "$want" ] || fail "issued $(vl_kv "$line" requests) != $want"
    [ "$(vl_kv "$line" ok)" = "$want" ] || fail "answered $(vl_kv "$line" ok) of $want"
    [ "$(vl_kv "$line" errors)" = 0 ] || fail "errors in: $line"
    python3 - "$line" <<'PY' || fail "insane summary: $line"
import sys
kv = dict(t.split('=', 1) for t in sys.argv[1].split() if '=' in t)
q = [float(kv[k]) for k in ('p50_us', 'p90_us', 'p99_us', 'p999_us', 'max_us')]
assert 0 < q[0] <= q[1] <= q[2] <= q[3] <= q[4] * 1.04, q
dur, ok, tput = float(kv['duration_s']), int(kv['ok']), float(kv['throughput'])
assert dur > 0 and abs(tput - ok / dur) <= 0.01 * tput + 1, (tput, ok, dur)
PY
}

vl_init
vl_net_up 1
vl_start_ordo 1 "$PMD"

# Closed loop: 20,000 requests, 16 outstanding, half GETs.
OUT=$(load_run --requests 20000 --outstanding 16 --read-ratio 0.5 --keys 500 --value-size 64 \
    --timeout-ms 500 --csv "$VL_TMP/closed.csv" --json "$VL_TMP/closed.json" 2>&1) ||
    fail "closed loop exited $?: $OUT"
check_summary "$OUT" 20000
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] == 20000, d' \
    "$VL_TMP/closed.json" || fail "JSON summary"
head -1 "$VL_TMP/closed.csv" | grep -q '^t_s,ops,p50_us' || fail "CSV header"

# Open loop: 2,000 requests/s for 2 s: ~4,000 requests, latency from the intended send time.
OUT=$(load_run --rate 2000 --duration 2 --read-ratio 0.9 --keys 500 --timeout-ms 500 2>&1) ||
    fail "open loop exited $?: $OUT"
n=$(vl_kv "$(grep 'ordo-load: summary' <<<"$OUT")" requests)
[ "${n:-0}" -ge 3800 ] && [ "$n" -le 4001 ] || fail "open loop issued ${n:-none}, want ~4000"
check_summary "$OUT" "$n"
grep -q 'ordo-load: t=1s ops/s=' <<<"$OUT" || fail "no progress line: $OUT"
# Lossy client port (net_fault on RX and TX: 5 % drops, duplicates, reordering): every
# request still answered, through retries that the replica's sessions deduplicate.
OUT=$(load_run --requests 3000 --outstanding 8 --read-ratio 0.3 --keys 200 --timeout-ms 50 \
    --retries 20 --net-fault drop=5,dup=2,reorder=5,seed=7,dir=both 2>&1) ||
    fail "lossy run exited $?: $OUT"
check_summary "$OUT" 3000
[ "$(vl_kv "$(grep 'ordo-load: summary' <<<"$OUT")" retries)" -gt 0 ] || fail "no retries"
# Faults set at run time on the replica through telemetry (/ordo/net_fault): its RX drops
# frames, the clients' retries cover them, and "off" restores a clean path.
T=$(vl_telemetry 1 "/ordo/net_fault,drop=5,dup=1,seed=3,dir=rx") || fail "telemetry set"
grep -q 'drop=5.0000,dup=1.0000' <<<"$T" || fail "telemetry set: $T"
OUT=$(load_run --requests 2000 --outstanding 8 --timeout-ms 50 --retries 20 2>&1) ||
    fail "run with replica faults exited $?: $OUT"
check_summary "$OUT" 2000
[ "$(vl_counter 1 fault_drops)" -gt 0 ] || fail "replica counted no fault drops"
T=$(vl_telemetry 1 "/ordo/net_fault,off") && grep -q '"spec":"off"' <<<"$T" ||
    fail "telemetry off: $T"
echo "load_dpdk[$PMD]: PASS"
