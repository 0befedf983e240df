#!/usr/bin/env bash
# Replicated cluster benchmark over veth: three ordo replicas (DPDK on net_af_packet or
# net_af_xdp, behind a bridge) driven by apps/ordo-load (DPDK, closed loop) at several client
# concurrencies and sequencer batch limits, with in the same run: the network path alone (one
# replica, 1-node config, replication off), the raw fdatasync latency of the data directory,
# and the physical floor (two concurrent 4 KiB write+fdatasync streams on that device plus one
# veth UDP round trip to a kernel echo). Prints a table with ratios; plots it with gnuplot
# when installed. Never part of the test pass. Bounded: every load run lasts SECS.
#
# Usage (root): perf/bench_cluster.sh [BUILD_DIR]        (default: ./build)
# Environment:
#   PMD          af_packet | af_xdp (af_packet)
#   OUTSTANDING  client concurrencies ("1 8 64 256")
#   BATCHES      sequencer limits, each COUNT[:BYTES[:TIME_US]] = batch_count_max,
#                batch_bytes_max, batch_time_us ("1 64 1024:8704")
#   PEER_MTU     [replica] peer_mtu and the veths' MTU (8100 on af_packet, 3000 on af_xdp;
#                1500 = standard frames)
#   SECS (3) per run, VALUE_SIZE (64), KEYS (10000), READ_RATIO (0: writes only)
#   IDLE         [replica] idle (template's: backoff)
#   EXTRA        more config overrides "section|key|value;..."
#   PLOT         output picture (docs/bench_cluster.svg; "" for none)
#   SKIP_SINGLE=1 skips the single-replica runs (ratios then show "-")
#   COALESCE     ordo-load --coalesce values, each run in turn at every point ("1": none;
#                e.g. "1 16" adds coalesced rows and the ratio coalesced / not, same run)
#   BENCH_TIMING Raft timing, vethlib VL_CLUSTER_TIMING form (10 ms ticks, heartbeat 50 ms,
#                election timeout >= 1 s, as latency_curve.sh and compare_etcd.sh; the tests'
#                200 ms let a loaded leader lose its term mid-run: docs/benchmarks.md)
#   REPEAT       runs of every (setup, outstanding, coalesce) point, interleaved (1); the
#                table shows each run's ops/s and the median run's figures
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VL_BUILD=$(cd "${1:-$HERE/../build}" && pwd)
export VL_BUILD
PMD=${PMD:-af_packet}
OUTSTANDING=${OUTSTANDING:-"1 8 64 256"}
BATCHES=${BATCHES:-"1 64 1024:8704"}
SECS=${SECS:-3}
VALUE_SIZE=${VALUE_SIZE:-64}
KEYS=${KEYS:-10000}
READ_RATIO=${READ_RATIO:-0}
IDLE=${IDLE:-}
COALESCE=${COALESCE:-1}
REPEAT=${REPEAT:-1}
PLOT=${PLOT-$HERE/../docs/bench_cluster.svg}
case "$PMD" in
af_xdp) PEER_MTU=${PEER_MTU:-3000} ;;
*) PEER_MTU=${PEER_MTU:-8100} ;;
esac
VL_NS_PREFIX=opf
BENCH_T="replica|tick_us|10000;replica|heartbeat_ticks|5;replica|election_ticks|100"
VL_CLUSTER_TIMING=${BENCH_TIMING:-$BENCH_T}
LOAD_IP=198.18.0.2

. "$HERE/../tests/integration/vethlib.sh"
for b in apps/ordo apps/ordo-cli apps/ordo-load perf/udp-echo perf/bench_fsync; do
    [ -x "$VL_BUILD/$b" ] || { echo "bench_cluster: $VL_BUILD/$b not built" >&2; exit 1; }
done
vl_init
vl_net_up 3
RES="$VL_TMP/results.txt"
: >"$RES"
RUN=0

# The config override for PEER_MTU (1500, the default, needs none).
mtu_key() {
    if [ "$PEER_MTU" = 1500 ]; then
        echo "replica|ring_size|1024"
    else
        echo "replica|peer_mtu|$PEER_MTU"
    fi
}

# fix_eal CFG: net_af_packet's ring frames default to 2048 bytes; jumbo frames need larger
# ones. The kernel wants frames per block x blocks = framecnt exactly and blocksz a multiple
# of the page size; the PMD wants framesz - 32 <= the mbuf data room (~8978 here): framesz
# 8192 carries frames up to 8160 bytes, so peer_mtu 8100 on af_packet.
fix_eal() {
    [ "$PMD" = af_packet ] && [ "$PEER_MTU" -gt 1500 ] || return 0
    sed -i 's/\(net_af_packet0,iface=on2-r[0-9],qpairs=1\)/\1,blocksz=16384,framesz=8192,framecnt=512/' \
        "$1" || vl_die "cannot edit $1"
}

# label BASE COALESCE: the results label of a run ("+cK" marks --coalesce K).
label() {
    if [ "$2" = 1 ]; then echo "$1"; else echo "$1+c$2"; fi
}

# load_run SERVER_INDEX OUTSTANDING JSON [COALESCE]: one closed-loop ordo-load run of SECS
# seconds.
load_run() {
    local i=$1 n=$2 json=$3 co=${4:-1} vdev
    case "$PMD" in
    af_xdp) vdev="net_af_xdp0,iface=on2-c0,start_queue=0,queue_count=1,busy_budget=0" ;;
    *) vdev="net_af_packet0,iface=on2-c0,qpairs=1" ;;
    esac
    RUN=$((RUN + 1))
    # Fresh client ids per run: the replicas' sessions must not see old request numbers.
    # shellcheck disable=SC2046 # the EAL memory arguments are several words
    vl_client timeout $((SECS + 30)) "$VL_BUILD/apps/ordo-load" \
        --server "$(vl_ip_replica "$i"):$(vl_port_replica "$i")" --ip "$LOAD_IP" --quiet \
        --client-id $((RUN * 10000)) --outstanding "$n" --duration "$SECS" --coalesce "$co" \
        --read-ratio "$READ_RATIO" --keys "$KEYS" --value-size "$VALUE_SIZE" \
        --timeout-ms 1000 --retries 20 --json "$json" -- --no-pci "--vdev=$vdev" \
        "--file-prefix=${VL_NS_PREFIX}-${VL_TAG}-load" $(vl_eal_mem_args) \
        --log-level=lib.eal:error -l 0 >"$VL_TMP/load.out" 2>&1 ||
        vl_die "ordo-load (outstanding $n) failed: $(tail -n 3 "$VL_TMP/load.out")"
}

# Floor and baselines measured first, before any replica owns a veth.
measure_floor() {
    local nsr dev out
    nsr=$(vl_ns_replica 1)
    dev=$(vl_dev_replica 1)
    ip -n "$nsr" addr add "$(vl_ip_replica 1)/24" dev "$dev" || vl_die "address $dev"
    vl_dev_kernel_side "$nsr" "$dev"
    vl_spawn echo "$nsr" "$VL_BUILD/perf/udp-echo" --bind "$(vl_ip_replica 1):$(vl_port_replica 1)"
    vl_wait_log echo 'udp-echo: ready' 10
    out=$(vl_cli --echo --timeout-ms 1000 --retries 3 load --requests 3000 --outstanding 1 \
        --value-size "$VALUE_SIZE" --keys "$KEYS" --read-ratio 0) || vl_die "echo: $out"
    vl_stop echo
    ip -n "$nsr" addr flush dev "$dev"
    ip netns exec "$(vl_ns_client)" ip neigh flush all
    echo "rtt $(vl_kv "$(tail -n 1 <<<"$out")" p50_us)" >>"$RES"
    measure_fsync
}

# measure_fsync: one fdatasync stream, then two concurrent ones, on the data directory's
# device. Repeated before every cluster setup: the report takes the median of each.
measure_fsync() {
    local out
    mkdir -p "$VL_TMP/data-r1"
    out=$("$VL_BUILD/perf/bench_fsync" --dir "$VL_TMP/data-r1" --streams 1 --secs 1) ||
        vl_die "bench_fsync: $out"
    echo "fsync1 $(vl_kv "$out" p50_us) $(vl_kv "$out" ops_s)" >>"$RES"
    out=$("$VL_BUILD/perf/bench_fsync" --dir "$VL_TMP/data-r1" --streams 2 --secs 1) ||
        vl_die "bench_fsync: $out"
    echo "fsync2 $(vl_kv "$out" p50_us) $(vl_kv "$out" ops_s)" >>"$RES"
}

# record KIND BATCH OUTSTANDING JSON [cmds_per_batch]
record() {
    python3 - "$@" >>"$RES" <<'PY'
import json, sys
kind, batch, n, path = sys.argv[1:5]
d = json.load(open(path))
per = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else '-'
print(kind, batch, n, d['throughput'], d['p50_us'], d['p99_us'], d['errors'], per)
PY
}

run_single() {
    local n
    VL_CONF_EXTRA="$(mtu_key)${IDLE:+;replica|idle|$IDLE}${EXTRA:+;$EXTRA}"
    VL_CLUSTER_CONFIG=$(vl_write_config 1 "$PMD")
    fix_eal "$VL_CLUSTER_CONFIG"
    vl_start_ordo 1 "$PMD"
    VL_CLUSTER_CONFIG=
    local r c
    for n in $OUTSTANDING; do
        for ((r = 0; r < REPEAT; r++)); do
            for c in $COALESCE; do
                load_run 1 "$n" "$VL_TMP/run.json" "$c"
                record single "$(label - "$c")" "$n" "$VL_TMP/run.json"
                echo "bench_cluster: single outstanding=$n $(tail -n 1 "$RES")" >&2
            done
        done
    done
    vl_stop ordo-r1
}

# batch_stats I: "batches batch_cmds" of replica I from /ordo/raft.
batch_stats() {
    local st
    st=$(vl_raft "$1")
    echo "$(sed -n 's/^batches=//p' <<<"$st") $(sed -n 's/^batch_cmds=//p' <<<"$st")"
}

STALL_KEYS="imissed|oerrors|rx_nombuf|sock_drops|tx_drops|ring_full|malformed|requests|replies"
STALL_KEYS+="|term|commit|last_index|batches|batch_cmds|log_writes|log_write_us|req_ring|tx_ring"
# counters I: replica I's loss and pipeline counters as NAME=VALUE words (/ordo/port,
# /ordo/stats, /ordo/raft).
counters() {
    (vl_telemetry_kv "$1" /ordo/port; vl_telemetry_kv "$1" /ordo/stats; vl_raft "$1") |
        grep -E "^($STALL_KEYS)=" |
        tr '\n' ' '
}

# stall_report JSON BEFORE...: when a run retried (a request or its answer got lost, or waited
# past the 1 s timeout), prints the first timed-out requests, the client's own drops and every
# replica's counters before and after the run, to match the outlier with where frames went.
stall_report() {
    local retries i json=$1
    shift
    retries=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["retries"])' "$json")
    [ "${retries:-0}" != 0 ] || return 0
    echo "bench_cluster: stall: $retries retries; client:" \
        "$(grep -oE '(ok|busy|stale|redirects|duration_s|max_us|tx_drops|sock_drops)=[0-9.]*' \
            "$VL_TMP/load.out" | tr '\n' ' ')" >&2
    grep 'resending' "$VL_TMP/load.out" | head -n 5 >&2 || true
    for ((i = 1; i <= 3; i++)); do
        echo "bench_cluster: stall: r$i before: ${!i}" >&2
        echo "bench_cluster: stall: r$i after:  $(counters "$i")" >&2
        ip -n "$(vl_ns_replica "$i")" -s -o link show "$(vl_dev_replica "$i")" | head -c 600 >&2
    done
    ip -n "$(vl_ns_client)" -s -o link show on2-c0 | head -c 600 >&2
    echo "bench_cluster: stall: softnet dropped (hex, per cpu):" \
        "$(awk '{print $2}' /proc/net/softnet_stat | tr '\n' ' ')" >&2
}

# term_check LEADER BEFORE: says so when the run moved the term (an election: every request
# the old leader held waits out the client's timeout, so the run's figures are an outlier).
term_check() {
    local t0 t1
    t0=$(grep -o 'term=[0-9]*' <<<"$2" | sort -t= -k2 -n | tail -n 1)
    t1=$(vl_raft_field "$1" term)
    [ "${t0#term=}" = "$t1" ] ||
        echo "bench_cluster: WARNING: ${t0:-term=?} -> term=$t1 during the run (election)" >&2
}

run_cluster() {
    local spec=$1 count bytes time_us i n L b0 c0 b1 c1 per
    IFS=: read -r count bytes time_us <<<"$spec"
    local ov="$VL_CLUSTER_TIMING;replica|batch_count_max|$count;$(mtu_key)"
    [ -n "$bytes" ] && ov+=";replica|batch_bytes_max|$bytes"
    [ -n "$time_us" ] && ov+=";replica|batch_time_us|$time_us"
    [ -n "$IDLE" ] && ov+=";replica|idle|$IDLE"
    [ -n "${EXTRA:-}" ] && ov+=";$EXTRA"
    VL_CONF_EXTRA=$ov
    VL_PMD=$PMD
    VL_CLUSTER_CONFIG=$(vl_write_cluster_config "$PMD")
    fix_eal "$VL_CLUSTER_CONFIG"
    export VL_CLUSTER_CONFIG
    for ((i = 1; i <= 3; i++)); do
        rm -rf "$VL_TMP/data-r$i" && mkdir -p "$VL_TMP/data-r$i"
        vl_replica_spawn "$i"
    done
    for ((i = 1; i <= 3; i++)); do
        vl_wait_log "ordo-r$i" "$VL_READY_PATTERN" "$VL_READY_TIMEOUT_S"
    done
    L=$(vl_wait_leader 30)
    local r co
    for n in $OUTSTANDING; do
        for ((r = 0; r < REPEAT; r++)); do
            for co in $COALESCE; do
                read -r b0 c0 <<<"$(batch_stats "$L")"
                local c1s c2s c3s
                c1s=$(counters 1) c2s=$(counters 2) c3s=$(counters 3)
                load_run "$L" "$n" "$VL_TMP/run.json" "$co"
                read -r b1 c1 <<<"$(batch_stats "$L")"
                stall_report "$VL_TMP/run.json" "$c1s" "$c2s" "$c3s"
                term_check "$L" "$c1s $c2s $c3s"
                per=$(python3 -c 'import sys; b=int(sys.argv[2] or 0)-int(sys.argv[1] or 0);
c=int(sys.argv[4] or 0)-int(sys.argv[3] or 0); print("%.1f" % (c/b) if b > 0 else "-")' \
                    "${b0:-0}" "${b1:-0}" "${c0:-0}" "${c1:-0}")
                record cluster "$(label "$spec" "$co")" "$n" "$VL_TMP/run.json" "$per"
                echo "bench_cluster: batch=$spec outstanding=$n $(tail -n 1 "$RES")" >&2
            done
        done
    done
    for ((i = 1; i <= 3; i++)); do
        vl_replica_stop "$i"
    done
}

echo "bench_cluster: pmd=$PMD peer_mtu=$PEER_MTU outstanding='$OUTSTANDING'" \
    "batches='$BATCHES' secs=$SECS value_size=$VALUE_SIZE read_ratio=$READ_RATIO" \
    "coalesce='$COALESCE' repeat=$REPEAT" \
    "idle=${IDLE:-template} eal_mem='$(vl_eal_mem_args)' host=$(nproc)cpu $(uname -r)" \
    "loadavg=$(cut -d' ' -f1 /proc/loadavg) commit=$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo ?)"
vl_set_mtu "$PEER_MTU"
measure_floor
[ "${SKIP_SINGLE:-0}" = 1 ] || run_single
for spec in $BATCHES; do
    measure_fsync
    run_cluster "$spec"
done
python3 "$HERE/bench_cluster_report.py" "$RES" "$VL_TMP/plot.dat"
if [ -n "$PLOT" ]; then
    if command -v gnuplot >/dev/null; then
        # (gnuplot warns about each block's title line; the plot is right.)
        gnuplot -e "datafile='$VL_TMP/plot.dat'; outfile='$PLOT'" "$HERE/bench_cluster.gp" \
            2> >(grep -v 'Skipping data file' >&2) && echo "bench_cluster: plot written to $PLOT"
    else
        echo "bench_cluster: gnuplot not installed (apt-get install gnuplot-nox): no plot"
    fi
fi
