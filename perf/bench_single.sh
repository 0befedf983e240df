#!/usr/bin/env bash
# Single-replica benchmark over veth: request rate and round-trip latency (p50/p99) of one
# ordo replica (DPDK on net_af_xdp or net_af_packet) driven by ordo-cli load, and in the
# same run the kernel UDP echo server (perf/udp_echo.c) in the same namespaces with the
# same client and load; prints both summaries and the ratios. Never part of the test pass.
#
# Usage (root): perf/bench_single.sh [BUILD_DIR]        (default: ./build)
# Environment: PMD=af_xdp|af_packet (af_xdp), REQUESTS (200000), OUTSTANDING (32),
#   VALUE_SIZE (64), KEYS (10000), READ_RATIO (0.5), ROUNDS (1: alternate echo/ordo runs),
#   IDLE (the template's, backoff: or busy = the replica's lcore never sleeps).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VL_BUILD=$(cd "${1:-$HERE/../build}" && pwd)
export VL_BUILD
PMD=${PMD:-af_xdp}
REQUESTS=${REQUESTS:-200000}
OUTSTANDING=${OUTSTANDING:-32}
VALUE_SIZE=${VALUE_SIZE:-64}
KEYS=${KEYS:-10000}
READ_RATIO=${READ_RATIO:-0.5}
ROUNDS=${ROUNDS:-1}
IDLE=${IDLE:-}

. "$HERE/../tests/integration/vethlib.sh"
for b in apps/ordo apps/ordo-cli perf/udp-echo; do
    [ -x "$VL_BUILD/$b" ] || { echo "bench_single: $VL_BUILD/$b not built" >&2; exit 1; }
done
vl_init
vl_net_up 1
[ -n "$IDLE" ] && VL_CONF_EXTRA="replica|idle|$IDLE"
NSR=$(vl_ns_replica 1)
DEV=$(vl_dev_replica 1)
ADDR="$(vl_ip_replica 1):$(vl_port_replica 1)"
LOAD=(load --requests "$REQUESTS" --outstanding "$OUTSTANDING" --value-size "$VALUE_SIZE"
    --keys "$KEYS" --read-ratio "$READ_RATIO")

# Baseline: the kernel owns the replica's veth for the duration (address on, echo server),
# then gives it back bare to DPDK.
run_echo() {
    ip -n "$NSR" addr add "$(vl_ip_replica 1)/24" dev "$DEV" || vl_die "address $DEV"
    vl_dev_kernel_side "$NSR" "$DEV"
    vl_spawn "echo$1" "$NSR" "$VL_BUILD/perf/udp-echo" --bind "$ADDR"
    vl_wait_log "echo$1" 'udp-echo: ready' 10
    vl_cli --echo --timeout-ms 1000 --retries 3 "${LOAD[@]}" >"$VL_TMP/echo$1.out" ||
        vl_die "baseline load failed: $(cat "$VL_TMP/echo$1.out")"
    vl_stop "echo$1"
    ip -n "$NSR" addr flush dev "$DEV"
    ip netns exec "$(vl_ns_client)" ip neigh flush all
    echo "baseline: $(tail -n 1 "$VL_TMP/echo$1.out")"
}

run_ordo() {
    vl_start_ordo 1 "$PMD"
    vl_cli --timeout-ms 1000 --retries 3 "${LOAD[@]}" >"$VL_TMP/ordo$1.out" ||
        vl_die "ordo load failed: $(cat "$VL_TMP/ordo$1.out")"
    vl_stop ordo-r1
    echo "ordo:     $(tail -n 1 "$VL_TMP/ordo$1.out")"
}

# Best of ROUNDS per side (highest rate; its latencies), so one noisy round on a shared
# machine does not decide the ratio.
best() {
    local best_line="" best_rps=-1 line rps
    while read -r line; do
        rps=$(vl_kv "$line" rps)
        if [ "${rps:-0}" -gt "$best_rps" ]; then
            best_rps=$rps
            best_line=$line
        fi
    done
    echo "$best_line"
}

echo "bench_single: pmd=$PMD requests=$REQUESTS outstanding=$OUTSTANDING" \
    "value_size=$VALUE_SIZE keys=$KEYS read_ratio=$READ_RATIO rounds=$ROUNDS" \
    "idle=${IDLE:-template} eal_mem='$(vl_eal_mem_args)' host=$(nproc)cpu $(uname -r)" \
    "loadavg=$(cut -d' ' -f1 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    run_echo "$r"
    run_ordo "$r"
done
E=$(tail -q -n 1 "$VL_TMP"/echo*.out | best)
O=$(tail -q -n 1 "$VL_TMP"/ordo*.out | best)
for side in "$E" "$O"; do
    [ "$(vl_kv "$side" errors)" = 0 ] && [ "$(vl_kv "$side" ok)" = "$REQUESTS" ] ||
        vl_die "a run had errors: $side"
done
python3 - "$E" "$O" <<'PY'
import sys
e, o = ({k: v for k, v in (p.split('=', 1) for p in line.split())} for line in sys.argv[1:3])
f = lambda d, k: float(d[k])
print("result: ordo_rps=%.0f echo_rps=%.0f rps_ratio=%.3f "
      "ordo_p50_us=%.1f echo_p50_us=%.1f p50_ratio=%.3f "
      "ordo_p99_us=%.1f echo_p99_us=%.1f p99_ratio=%.3f" % (
          f(o, 'rps'), f(e, 'rps'), f(o, 'rps') / f(e, 'rps'),
          f(o, 'p50_us'), f(e, 'p50_us'), f(o, 'p50_us') / f(e, 'p50_us'),
          f(o, 'p99_us'), f(e, 'p99_us'), f(o, 'p99_us') / f(e, 'p99_us')))
PY
