#!/usr/bin/env bash
# ordo-load (DPDK client) against ordo-cli load (kernel UDP client) on one ordo replica over
# veth, same replica, same key-value mix, in the same run, at several outstanding counts,
# alternating the two clients; prints one table row per run. Never part of the test pass.
# Usage (root): perf/load_compare.sh [BUILD_DIR]   (default: ./build)
# Environment: PMD=af_xdp|af_packet (af_xdp), REQUESTS (100000), OUTSTANDING ("1 16 64"),
#   VALUE_SIZE (64), KEYS (10000), READ_RATIO (0.5), ROUNDS (2), LOAD_EXTRA (ordo-load options),
#   XDP_EXTRA (net_af_xdp devargs, default ",busy_budget=0": preferred busy polling on a veth
#   delays RX until the next syscall, measured p50 380 us with it vs 107 us without).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VL_BUILD=$(cd "${1:-$HERE/../build}" && pwd)
PMD=${PMD:-af_xdp}
REQUESTS=${REQUESTS:-100000}
OUTSTANDING=${OUTSTANDING:-"1 16 64"}
VALUE_SIZE=${VALUE_SIZE:-64}
KEYS=${KEYS:-10000}
READ_RATIO=${READ_RATIO:-0.5}
ROUNDS=${ROUNDS:-2}
VL_NS_PREFIX=op3
. "$HERE/../tests/integration/vethlib.sh"
for b in apps/ordo apps/ordo-cli apps/ordo-load; do
    [ -x "$VL_BUILD/$b" ] || { echo "load_compare: $VL_BUILD/$b not built" >&2; exit 1; }
done
vl_init
vl_net_up 1
vl_start_ordo 1 "$PMD"
SERVER="$(vl_ip_replica 1):$(vl_port_replica 1)"
MIX=(--value-size "$VALUE_SIZE" --keys "$KEYS" --read-ratio "$READ_RATIO")

# The DPDK client takes the client veth from the kernel (af_xdp) for its run only, on its own
# address (.2), so the kernel client keeps 198.18.0.1 between runs.
run_load() {
    local vdev
    case "$PMD" in
    af_xdp) vdev="net_af_xdp0,iface=on2-c0,start_queue=0,queue_count=1${XDP_EXTRA-,busy_budget=0}" ;;
    *) vdev="net_af_packet0,iface=on2-c0,qpairs=1" ;;
    esac
    # shellcheck disable=SC2046
    vl_client "$VL_BUILD/apps/ordo-load" --server "$SERVER" --ip 198.18.0.2 --quiet ${LOAD_EXTRA:-} \
        --requests "$REQUESTS" --outstanding "$1" "${MIX[@]}" -- --no-pci "--vdev=$vdev" \
        "--file-prefix=${VL_NS_PREFIX}-${VL_TAG}-load" $(vl_eal_mem_args) \
        --log-level=lib.eal:error -l 0 2>/dev/null | sed -n 's/^ordo-load: summary //p'
}
run_cli() {
    vl_cli --timeout-ms 500 --retries 5 load --requests "$REQUESTS" --outstanding "$1" \
        "${MIX[@]}" 2>/dev/null
}
printf '%-10s %5s %9s %9s %9s %9s\n' client outst ops/s p50_us p99_us errors
for ((r = 1; r <= ROUNDS; r++)); do
    for n in $OUTSTANDING; do
        L=$(run_load "$n")
        printf '%-10s %5s %9s %9s %9s %9s\n' ordo-load "$n" "$(vl_kv "$L" throughput)" \
            "$(vl_kv "$L" p50_us)" "$(vl_kv "$L" p99_us)" "$(vl_kv "$L" errors)"
        C=$(run_cli "$n")
        printf '%-10s %5s %9s %9s %9s %9s\n' ordo-cli "$n" "$(vl_kv "$C" rps)" \
            "$(vl_kv "$C" p50_us)" "$(vl_kv "$C" p99_us)" "$(vl_kv "$C" errors)"
    done
done
