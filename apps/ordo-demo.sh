#!/usr/bin/env bash
# README command 1: installs what is missing, builds Ordo (release), and runs the main job in
# the veth fallback mode: replicas in network namespaces with DPDK on net_af_xdp, a client
# namespace running ordo-cli's verified load for about 20 s; halfway the leader is SIGKILLed.
# Prints throughput and latency before and after, the time until a new leader served writes,
# checks that the survivors reach the same state and reads back every acknowledged write.
# With a daemon built without replication, or --replicas 1, it runs one replica instead.
#
# Usage (root): apps/ordo-demo.sh [--replicas 3|1] [--seconds S] [--outstanding K]
#               [--pmd af_xdp|af_packet] [--requests N (one replica only)]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

replicas=3
seconds=20
requests=100000
outstanding=32
pmd=af_xdp
usage="usage: $0 [--replicas 3|1] [--seconds S] [--outstanding K] [--pmd af_xdp|af_packet]"
usage+=" [--requests N]"
while [ $# -gt 0 ]; do
    case "$1" in
    --replicas) replicas=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --pmd) pmd=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
    esac
done
case "$replicas" in 1 | 3 | 5) ;; *) echo "ordo-demo: --replicas 1, 3 or 5" >&2; exit 2 ;; esac
[ "$seconds" -ge 6 ] 2>/dev/null || { echo "ordo-demo: --seconds >= 6" >&2; exit 2; }

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

# A daemon without the replicated pipeline (no /ordo/raft telemetry) runs one replica.
if [ "$replicas" -gt 1 ] && ! grep -q /ordo/raft "$VL_BUILD/apps/ordo"; then
    echo "ordo-demo: this ordo build has no replicated mode: running one replica"
    replicas=1
fi

demo_single() {
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
    printf ' %s ok, %s errors, %s retries\n' "$(vl_kv "$line" ok)" \
        "$(vl_kv "$line" errors)" "$(vl_kv "$line" retries)"
    echo "ordo-demo: replica counters: $(vl_counters 1 |
        grep -E '^(rx_packets|tx_packets|tx_drops|requests|replies|probes|mac_failures)=' |
        tr '\n' ' ')"
}

# demo_phase FROM_S TO_S: mean ops/s, p50 and p99 of the 1 s progress lines in [FROM, TO).
demo_phase() {
    awk -v from="$1" -v to="$2" '
        /^progress/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["t_s"] > from && v["t_s"] <= to && v["ok"] > 0) {
                n++; rps += v["rps"]; p50 += v["p50_us"]; p99 += v["p99_us"]
            }
        }
        END {
            if (n == 0) { print "no full second measured"; exit }
            printf "%.0f requests/s, p50 %.0f us, p99 %.0f us (mean of %d one-second samples)\n",
                rps / n, p50 / n, p99 / n, n
        }' "$VL_TMP/load.log"
}

demo_cluster() {
    vl_cluster_up "$replicas" "$pmd"
    local leader
    leader=$(vl_wait_leader 30)
    echo "ordo-demo: $replicas replicas up on $pmd (namespaces $(vl_ns_replica 1)..," \
        "198.18.0.11..); replica $leader leads"
    echo "ordo-demo: load for ${seconds} s: $outstanding outstanding, 50% reads, 64-byte" \
        "values, every reply verified; SIGKILL of the leader at $((seconds / 2)) s"
    vl_load_spawn load "$leader" --timeout-ms 200 --retries 100 load --duration-s "$seconds" \
        --progress-ms 1000 --outstanding "$outstanding" --value-size 64 --keys 10000 \
        --read-ratio 0.5 --verify --readback
    vl_wait_count load '^progress' $((seconds / 2)) $((seconds + 20))
    local kill_ms kill_s next
    kill_ms=$(vl_now_ms)
    kill_s=$(awk '/^progress/ {split($2, kv, "="); t = kv[2]} END {print t}' "$VL_TMP/load.log")
    vl_replica_kill "$leader" KILL
    echo "ordo-demo: t=${kill_s}s: SIGKILL leader $leader (pid $(vl_replica_pid "$leader"))"
    next=$(vl_wait_leader 15 "$leader")
    local rc=0
    vl_wait_exit load $((seconds + 60)) || rc=$?
    local sum
    sum=$(grep '^mode=' "$VL_TMP/load.log" || true)
    [ -n "$sum" ] || vl_die "load exited $rc without a summary"
    demo_report "$sum" "$kill_ms" "$kill_s" "$leader" "$next"
    [ "$rc" -eq 0 ] || vl_die "load reported failures (exit $rc): $sum"
}

# demo_report SUMMARY KILL_MS KILL_S OLD NEW: the figures, then the convergence check.
demo_report() {
    local sum=$1 kill_ms=$2 kill_s=$3 old=$4 new=$5 gap_end after
    gap_end=$(vl_kv "$sum" gap_end_epoch_ms)
    after=$(awk -v t="$(vl_kv "$sum" gap_end_s)" 'BEGIN {print int(t) + 1}')
    echo "ordo-demo: before the kill: $(demo_phase 1 "$kill_s")"
    echo "ordo-demo: after failover:  $(demo_phase "$after" 1e9)"
    echo "ordo-demo: failover: replica $new leads; first request served $((gap_end - kill_ms)) ms" \
        "after the SIGKILL (longest client stall $(vl_kv "$sum" max_gap_ms) ms)"
    printf 'ordo-demo: whole run: %s ok, %s errors, %s retries, %s redirects; p50 %s us,' \
        "$(vl_kv "$sum" ok)" "$(vl_kv "$sum" errors)" "$(vl_kv "$sum" retries)" \
        "$(vl_kv "$sum" redirects)" "$(vl_kv "$sum" p50_us)"
    printf ' p99 %s us, max %s us\n' "$(vl_kv "$sum" p99_us)" "$(vl_kv "$sum" max_us)"
    echo "ordo-demo: read back every acknowledged write: $(vl_kv "$sum" readback_ok) keys ok," \
        "$(vl_kv "$sum" readback_failed) missing or wrong," \
        "$(vl_kv "$sum" readback_skipped) left uncertain by a failed request"
    local conv
    conv=$(vl_wait_converged 30) || exit 1
    echo "ordo-demo: surviving replicas agree: $conv"
    vl_states | sed 's/^/ordo-demo:   /'
    [ "$(vl_kv "$sum" readback_failed)" = 0 ] && [ "$(vl_kv "$sum" verify_failures)" = 0 ] ||
        vl_die "an acknowledged write is missing or a read was stale"
    echo "ordo-demo: PASS: no acknowledged write lost"
}

vl_init
if [ "$replicas" -eq 1 ]; then
    demo_single
else
    demo_cluster
fi
