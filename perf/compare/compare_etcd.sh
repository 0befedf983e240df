#!/usr/bin/env bash
# Ordo against etcd on the same machine in the same run, same load shape: PUTs of 64-byte
# values under 16-byte keys, 1/16/64/256 requests outstanding, a fixed duration each.
# etcd: Debian's etcd-server 3.4, three members on 127.0.0.1 (own data directory each,
# fsync on as always), driven through its gRPC-gateway JSON API by perf/compare/etcd_load.c
# (build/perf/etcd_load). Ordo: three replicas over veth (tests/integration/vethlib.sh),
# driven by ordo-load (DPDK, closed loop). Both clients send to the leader only.
# Prints one table: throughput and p50/p99 per system and the ratios Ordo/etcd.
# Usage (root): perf/compare/compare_etcd.sh [BUILD_DIR]   (default: ./build)
# Environment: OUTSTANDING ("1 16 64 256"), DURATION (10 s per run), PMD (af_xdp), BENCH_TIMING
#   (Ordo election timing, vethlib VL_CLUSTER_TIMING form; default 10 ms ticks, 1 s timeout),
#   KEYS (10000), SYSTEMS ("etcd ordo"), RESULTS (file for the raw rows, default a temp file).
# Installs etcd-server and etcd-client with apt-get when etcd is missing. Stops only the
# processes it started (by PID) and removes its data directories on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build}" && pwd)
OUTSTANDING=${OUTSTANDING:-"1 16 64 256"}
DURATION=${DURATION:-10}
PMD=${PMD:-af_xdp}
KEYS=${KEYS:-10000}

# ---- Ordo, in a child process (its own namespaces, torn down when it exits) ------------
if [ "${CE_CHILD:-}" = ordo ]; then
    VL_BUILD=$BUILD
    # Election timing for a benchmark on shared cores: 10 ms ticks, heartbeat 50 ms,
    # election timeout >= 1 s (the tests' 1 ms ticks let a loaded leader lose its term).
    T="replica|tick_us|10000;replica|heartbeat_ticks|5;replica|election_ticks|100"
    VL_CLUSTER_TIMING=${BENCH_TIMING:-$T}
    VL_NS_PREFIX=oce
    . "$HERE/../../tests/integration/vethlib.sh"
    vl_init
    vl_cluster_up 3 "$PMD"
    leader=$(vl_wait_leader 30)
    server="$(vl_ip_replica "$leader"):$(vl_port_replica "$leader")"
    case "$PMD" in
    af_xdp) vdev="net_af_xdp0,iface=on2-c0,start_queue=0,queue_count=1,busy_budget=0" ;;
    *) vdev="net_af_packet0,iface=on2-c0,qpairs=1" ;;
    esac
    for n in $OUTSTANDING; do
        json="$VL_TMP/o$n.json"
        # shellcheck disable=SC2046 # the EAL memory arguments are several words
        vl_client timeout $((DURATION + 60)) "$BUILD/apps/ordo-load" --server "$server" \
            --ip 198.18.0.2 --quiet --outstanding "$n" --duration "$DURATION" \
            --read-ratio 0 --keys "$KEYS" --key-size 16 \
            --value-size 64 --timeout-ms 1000 --json "$json" -- --no-pci "--vdev=$vdev" \
            "--file-prefix=${VL_NS_PREFIX}-${VL_TAG}-load" $(vl_eal_mem_args) \
            --log-level=lib.eal:error -l 0 >"$VL_TMP/load.log" 2>&1 || true
        [ -s "$json" ] || { cat "$VL_TMP/load.log" >&2; vl_die "ordo-load wrote no summary"; }
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print("ordo", sys.argv[2], d["throughput"], d["p50_us"], d["p99_us"], d["errors"]+d["timeouts"],
      d["retries"])' \
            "$json" "$n"
    done
    exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "compare_etcd: needs root (namespaces, DPDK)" >&2; exit 1; }
for b in apps/ordo apps/ordo-load perf/etcd_load; do
    [ -x "$BUILD/$b" ] || { echo "compare_etcd: $BUILD/$b not built" >&2; exit 1; }
done
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    echo "compare_etcd: installing etcd-server etcd-client" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
fi

TMP=$(mktemp -d /tmp/ordo-etcd.XXXXXX)
RESULTS=${RESULTS:-$TMP/results.txt}
ETCD_PIDS=()
# etcd_down: SIGTERM to every member we started, bounded wait (5 s), then SIGKILL.
etcd_down() {
    local pid i
    for pid in "${ETCD_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${ETCD_PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    ETCD_PIDS=()
}
cleanup() {
    local rc=$?
    set +e
    etcd_down
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- etcd: three members on loopback -------------------------------------------------------
CPORT=(0 23791 23792 23793)
PPORT=(0 23801 23802 23803)
etcd_up() {
    local i cluster= deadline
    for i in 1 2 3; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:${PPORT[i]}"
    done
    for i in 1 2 3; do
        etcd --name "e$i" --data-dir "$TMP/e$i" \
            --listen-client-urls "http://127.0.0.1:${CPORT[i]}" \
            --advertise-client-urls "http://127.0.0.1:${CPORT[i]}" \
            --listen-peer-urls "http://127.0.0.1:${PPORT[i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${PPORT[i]}" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "ordo-compare-$$" >"$TMP/e$i.log" 2>&1 </dev/null &
        ETCD_PIDS+=("$!")
    done
    ENDPOINTS="127.0.0.1:${CPORT[1]},127.0.0.1:${CPORT[2]},127.0.0.1:${CPORT[3]}"
    deadline=$((SECONDS + 60))
    until ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { tail -n 20 "$TMP"/e*.log >&2; echo "etcd not healthy" >&2; exit 1; }
        sleep 0.2
    done
}

# The member that leads now (its client endpoint).
etcd_leader() {
    ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint status -w json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    s = e["Status"]
    if s["header"]["member_id"] == s["leader"]:
        print(e["Endpoint"].replace("http://", ""))
        break'
}

: >"$RESULTS"
if [[ " ${SYSTEMS:-etcd ordo} " == *" etcd "* ]]; then
    etcd_up
    EP=$(etcd_leader)
    [ -n "$EP" ] || { echo "compare_etcd: no etcd leader" >&2; exit 1; }
    echo "compare_etcd: etcd $(etcd --version | head -1 | awk '{print $3}'), leader $EP" >&2
    for n in $OUTSTANDING; do
        "$BUILD/perf/etcd_load" --endpoint "$EP" --conns "$n" --duration "$DURATION" \
            --warmup 1 --keys "$KEYS" --key-size 16 --value-size 64 --json "$TMP/e$n.json" \
            >"$TMP/etcd_load.log" 2>&1 || true
        [ -s "$TMP/e$n.json" ] || { cat "$TMP/etcd_load.log" >&2; exit 1; }
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print("etcd", sys.argv[2], d["throughput"], d["p50_us"], d["p99_us"], d["errors"], 0)' \
            "$TMP/e$n.json" "$n" | tee -a "$RESULTS" >&2
    done
    etcd_down || true
fi
if [[ " ${SYSTEMS:-etcd ordo} " == *" ordo "* ]]; then
    CE_CHILD=ordo "$0" "$BUILD" | tee -a "$RESULTS" >&2
fi

# ---- the table ---------------------------------------------------------------------------
python3 - "$RESULTS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 7:
        rows[(f[0], int(f[1]))] = [float(x) for x in f[2:]]
ns = sorted({n for _, n in rows})
print("| outstanding | etcd req/s | etcd p50 us | etcd p99 us | ordo req/s | ordo p50 us "
      "| ordo p99 us | throughput ordo/etcd | ordo p99 < etcd p50 |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for n in ns:
    e, o = rows.get(("etcd", n)), rows.get(("ordo", n))
    cell = lambda r, i: f"{r[i]:,.0f}" if r else "-"
    ratio = f"{o[0] / e[0]:.1f}x" if e and o and e[0] > 0 else "-"
    goal = ("yes" if o[2] < e[1] else "no") if e and o else "-"
    errs = "".join(f" ({s} errors: {int(r[3])})" for s, r in (("etcd", e), ("ordo", o))
                   if r and r[3] > 0)
    errs += f" (ordo retries: {int(o[4])})" if o and o[4] > 0 else ""
    print(f"| {n} | {cell(e, 0)} | {cell(e, 1)} | {cell(e, 2)} | {cell(o, 0)} | "
          f"{cell(o, 1)} | {cell(o, 2)} | {ratio} | {goal}{errs} |")
PY
