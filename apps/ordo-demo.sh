#!/usr/bin/env bash
# README command 1: installs what is missing, builds Ordo (release), and runs the main
# job in the veth fallback mode: replicas in network namespaces with DPDK on net_af_xdp,
# a client namespace running ordo-cli's load, then prints throughput and latency.
# Until replication lands (issue 5) the job runs one replica; everything else is real:
# DPDK on a veth, real frames, every reply verified.
#
# Usage (root): apps/ordo-demo.sh [--requests N] [--outstanding K] [--pmd af_xdp|af_packet]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

requests=100000
outstanding=32
pmd=af_xdp
while [ $# -gt 0 ]; do
    case "$1" in
    --requests) requests=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --pmd) pmd=$2; shift 2 ;;
    *) echo "usage: $0 [--requests N] [--outstanding K] [--pmd af_xdp|af_packet]" >&2; exit 2 ;;
    esac
done

./.ci/deps.sh
build=${ORDO_BUILD:-build}
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release >/dev/null
fi
if ! ninja -C "$build" apps/ordo apps/ordo-cli >"$build/demo-build.log" 2>&1; then
    tail -n 30 "$build/demo-build.log" >&2
    echo "ordo-demo: build failed (log: $build/demo-build.log)" >&2
    exit 1
fi

VL_BUILD=$(cd "$build" && pwd)
export VL_BUILD
export VL_NS_PREFIX=ordo-demo
. "$top/tests/integration/vethlib.sh"
vl_init
vl_net_up 1
vl_start_ordo 1 "$pmd"
echo "ordo-demo: replica 1 up on $pmd in namespace $(vl_ns_replica 1)," \
    "address $(vl_ip_replica 1):$(vl_port_replica 1)"
echo "ordo-demo: $requests requests, $outstanding outstanding, 50% reads, 64-byte values," \
    "every reply verified"
out=$(vl_cli --timeout-ms 1000 --retries 5 load --requests "$requests" \
    --outstanding "$outstanding" --value-size 64 --keys 10000 --read-ratio 0.5 --verify) ||
    vl_die "load failed: $out"
line=$(tail -n 1 <<<"$out")
printf 'ordo-demo: throughput %s requests/s; latency p50 %s us, p99 %s us, max %s us;' \
    "$(vl_kv "$line" rps)" "$(vl_kv "$line" p50_us)" "$(vl_kv "$line" p99_us)" \
    "$(vl_kv "$line" max_us)"
printf ' %s ok, %s errors, %s retries\n' "$(vl_kv "$line" ok)" "$(vl_kv "$line" errors)" \
    "$(vl_kv "$line" retries)"
echo "ordo-demo: replica counters: $(vl_counters 1 |
    grep -E '^(rx_packets|tx_packets|tx_drops|requests|replies|probes|mac_failures)=' |
    tr '\n' ' ')"
