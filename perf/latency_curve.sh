#!/usr/bin/env bash
# Open-loop latency curves: sweeps the offered rate of ordo-load's open-loop mode (latency
# from each request's intended send time) until saturation, for three replicas over veth and
# for one replica without replication (the network-path baseline), and plots achieved
# throughput against p50/p99/p99.9 with gnuplot. Never part of the test pass.
# Usage (root): perf/latency_curve.sh [BUILD_DIR] [OUT_DIR]   (defaults: ./build, ./docs)
# Writes OUT_DIR/latency_curve-3replicas.dat, latency_curve-1replica.dat, latency_curve.svg
# and latency_curve.png. Environment: PMD (af_xdp|af_packet, af_xdp), MODES ("3 1"),
#   RATE_START (500 req/s), RATE_STEP (1.4), RATE_MAX (400000), MAX_POINTS (14),
#   DURATION (3 s per point), SAT_RATIO (0.9: saturated when throughput < ratio * offered),
#   SAT_P99_US (1000000), CAP (512 in flight at most), READ_RATIO (0: PUTs only), KEYS (10000),
#   KEY_SIZE (16), VALUE_SIZE (64), BENCH_TIMING (Ordo election timing, as in compare_etcd.sh).
#   PLOT_ONLY=1 redraws the plots from existing .dat files. Installs gnuplot-nox with apt-get
#   when gnuplot is missing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../build}" && pwd)
OUT=$(mkdir -p "${2:-$HERE/../docs}" && cd "${2:-$HERE/../docs}" && pwd)
PMD=${PMD:-af_xdp}
RATE_START=${RATE_START:-500}
RATE_STEP=${RATE_STEP:-1.4}
RATE_MAX=${RATE_MAX:-400000}
MAX_POINTS=${MAX_POINTS:-14}
DURATION=${DURATION:-3}
SAT_RATIO=${SAT_RATIO:-0.9}
SAT_P99_US=${SAT_P99_US:-1000000}
CAP=${CAP:-512}
MIX=(--read-ratio "${READ_RATIO:-0}" --keys "${KEYS:-10000}" --key-size "${KEY_SIZE:-16}"
    --value-size "${VALUE_SIZE:-64}")

# One sweep in a child process (its own namespaces, torn down when it exits).
if [ "${LC_CHILD_MODE:-}" != "" ]; then
    VL_BUILD=$BUILD
    # Election timing for a benchmark on shared cores: 10 ms ticks, heartbeat 50 ms,
    # election timeout >= 1 s (the tests' 1 ms ticks let a loaded leader lose its term).
    T="replica|tick_us|10000;replica|heartbeat_ticks|5;replica|election_ticks|100"
    VL_CLUSTER_TIMING=${BENCH_TIMING:-$T}
    VL_NS_PREFIX=olc
    . "$HERE/../tests/integration/vethlib.sh"
    vl_init
    n=$LC_CHILD_MODE
    if [ "$n" -eq 1 ]; then
        vl_net_up 1
        vl_start_ordo 1 "$PMD"
        leader=1
    else
        vl_cluster_up "$n" "$PMD"
        leader=$(vl_wait_leader 30)
    fi
    server="$(vl_ip_replica "$leader"):$(vl_port_replica "$leader")"
    case "$PMD" in
    af_xdp) vdev="net_af_xdp0,iface=on2-c0,start_queue=0,queue_count=1,busy_budget=0" ;;
    *) vdev="net_af_packet0,iface=on2-c0,qpairs=1" ;;
    esac
    rate=$RATE_START
    for ((p = 1; p <= MAX_POINTS; p++)); do
        json="$VL_TMP/p$p.json"
        # Past saturation ordo-load exits 1 (unanswered requests): the point still counts.
        # shellcheck disable=SC2046 # the EAL memory arguments are several words
        vl_client timeout $((DURATION + 30)) "$BUILD/apps/ordo-load" --server "$server" \
            --ip 198.18.0.2 --quiet --rate "$rate" --duration "$DURATION" --outstanding "$CAP" \
            "${MIX[@]}" --timeout-ms 1000 --retries 2 --json "$json" -- --no-pci \
            "--vdev=$vdev" "--file-prefix=${VL_NS_PREFIX}-${VL_TAG}-load" $(vl_eal_mem_args) \
            --log-level=lib.eal:error -l 0 >"$VL_TMP/load.log" 2>&1 || true
        [ -s "$json" ] || { cat "$VL_TMP/load.log" >&2; vl_die "ordo-load wrote no summary"; }
        row=$(python3 - "$json" "$rate" "$SAT_RATIO" "$SAT_P99_US" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
offered, ratio, p99max = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sat = d["throughput"] < ratio * offered or d["p99_us"] > p99max
print(f'{offered:.0f} {d["throughput"]:.0f} {d["p50_us"]:.1f} {d["p99_us"]:.1f} '
      f'{d["p999_us"]:.1f} {d["max_us"]:.1f} {d["requests"]} {d["ok"]} {d["timeouts"]} '
      f'{int(sat)}')
PY
        )
        echo "$row"
        echo "latency_curve[$n]: offered=$rate -> $row" >&2
        [ "${row##* }" = 1 ] && break
        rate=$(python3 -c "import sys; print(int(float(sys.argv[1]) * float(sys.argv[2])))" \
            "$rate" "$RATE_STEP")
        [ "$rate" -le "$RATE_MAX" ] || break
        sleep 1 # let the replicas drain what the last point left queued
    done
    exit 0
fi

[ -n "${PLOT_ONLY:-}" ] || [ "$(id -u)" -eq 0 ] || { echo "latency_curve: needs root (namespaces, DPDK)" >&2; exit 1; }
for b in apps/ordo apps/ordo-load; do
    [ -x "$BUILD/$b" ] || { echo "latency_curve: $BUILD/$b not built" >&2; exit 1; }
done
if ! command -v gnuplot >/dev/null; then
    echo "latency_curve: installing gnuplot-nox" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
fi

COMMIT=$(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
for n in ${MODES:-3 1}; do
    [ -z "${PLOT_ONLY:-}" ] || break
    name=$([ "$n" -eq 1 ] && echo 1replica || echo "${n}replicas")
    dat="$OUT/latency_curve-$name.dat"
    {
        echo "# ordo-load open loop, $n replica(s) over veth ($PMD), $(date -u '+%F %H:%M UTC')"
        echo "# commit $COMMIT; $MACHINE; load average $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "# command: PMD=$PMD DURATION=$DURATION CAP=$CAP perf/latency_curve.sh; mix ${MIX[*]}"
        echo "# offered_rps throughput_rps p50_us p99_us p999_us max_us requests ok timeouts saturated"
    } >"$dat"
    LC_CHILD_MODE=$n "$0" "$BUILD" "$OUT" >>"$dat"
    echo "latency_curve: wrote $dat" >&2
done

# Both curves on one plot: latency (log) against achieved throughput.
PLOT=
for spec in "3replicas|lw 2|3 replicas" "1replica|dt 2|1 replica"; do
    IFS='|' read -r name style label <<<"$spec"
    f="$OUT/latency_curve-$name.dat"
    [ -s "$f" ] || continue
    for q in '3|#1f77b4|p50' '4|#ff7f0e|p99' '5|#d62728|p99.9'; do
        IFS='|' read -r col color qn <<<"$q"
        PLOT+="${PLOT:+, }\"$f\" using 2:$col with linespoints $style lc rgb \"$color\""
        PLOT+=" title \"$label $qn\""
    done
done
PLOT="plot $PLOT"
# The commit the data came from (PLOT_ONLY may redraw older data).
DATA_COMMIT=$(sed -n 's/^# commit \([0-9a-f]*\);.*/\1/p' "$OUT"/latency_curve-*.dat 2>/dev/null |
    head -1)
for term in "svg size 1040,560 dynamic noenhanced font 'sans,12'" \
    "pngcairo size 1040,560 noenhanced font 'sans,10'"; do
    ext=$([ "${term%% *}" = svg ] && echo svg || echo png)
    gnuplot <<GP
set terminal $term
set output "$OUT/latency_curve.$ext"
set title "Ordo open-loop latency vs throughput (veth, $PMD, commit ${DATA_COMMIT:-$COMMIT})"
set xlabel "achieved throughput (requests/s)"
set ylabel "latency from intended send (us)"
set logscale y
set grid
set key outside right top vertical
$PLOT
GP
    echo "latency_curve: wrote $OUT/latency_curve.$ext" >&2
done
