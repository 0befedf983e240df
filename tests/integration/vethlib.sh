# veth harness for Ordo integration tests and benchmarks (sourced by bash scripts).
# Builds one network namespace per replica plus one for clients, joined by veth pairs
# (directly for one replica, through a bridge namespace for more), starts real processes
# in them and always tears everything down again: it never touches the root namespace.
#
# Usage:  . vethlib.sh; vl_init; vl_net_up 1; vl_start_ordo 1 af_xdp; vl_wait_ready 1 ...
# Names:  namespaces "${VL_NS_PREFIX}-<tag>-{c,r<i>,br}" with a per-run tag, so parallel
#         runs never collide; interfaces (created directly inside the namespaces) "on2-*".
# Addresses (198.18.0.0/15 only): client 198.18.0.1, replica i 198.18.0.(10+i), /24.

VL_NS_PREFIX=${VL_NS_PREFIX:-on2}
VL_SUBNET=198.18.0
VL_CLIENT_IP=$VL_SUBNET.1
VL_PORT_BASE=${VL_PORT_BASE:-7000}
VL_READY_PATTERN=${VL_READY_PATTERN:-ready}
VL_PIDS=()
VL_NAMESPACES=()
VL_TMP=
VL_TAG=
VL_N=0

vl_log() {
    echo "vethlib: $*" >&2
}

# Setup failures are loud: message, then exit 1 (the EXIT trap prints the last lines of
# every process log and cleans up).
vl_die() {
    echo "vethlib: FATAL: $*" >&2
    exit 1
}

vl_skip() {
    echo "vethlib: SKIP: $*" >&2
    exit 77
}

vl_dump_logs() {
    local f
    [ -n "$VL_TMP" ] && [ -d "$VL_TMP" ] || return 0
    for f in "$VL_TMP"/*.log; do
        [ -s "$f" ] || continue
        echo "---- $(basename "$f") (last 30 lines) ----" >&2
        tail -n 30 "$f" >&2
    done
}

# Exit 77 unless we are root and can create a network namespace.
vl_require_caps() {
    [ "$(id -u)" -eq 0 ] || vl_skip "needs root (network namespaces, DPDK)"
    command -v ip >/dev/null || vl_skip "iproute2 (ip) not installed"
    local probe="${VL_NS_PREFIX}-probe-$$"
    ip netns add "$probe" 2>/dev/null || vl_skip "cannot create network namespaces"
    ip netns del "$probe"
}

vl_init() {
    vl_require_caps
    VL_TAG=$(printf '%04x' $(((RANDOM << 1 ^ $$) & 0xffff)))
    VL_TMP=$(mktemp -d "/tmp/${VL_NS_PREFIX}-${VL_TAG}.XXXXXX") || vl_die "mktemp failed"
    trap vl_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

vl_ns_client() { echo "${VL_NS_PREFIX}-${VL_TAG}-c"; }
vl_ns_replica() { echo "${VL_NS_PREFIX}-${VL_TAG}-r$1"; }
vl_ns_bridge() { echo "${VL_NS_PREFIX}-${VL_TAG}-br"; }
vl_ip_replica() { echo "$VL_SUBNET.$((10 + $1))"; }
vl_port_replica() { echo "$((VL_PORT_BASE + $1))"; }
vl_dev_replica() { echo "on2-r$1"; }
vl_file_prefix() { echo "${VL_NS_PREFIX}-${VL_TAG}-r$1"; }
# Locally administered, fixed per node: configs can name peers' MACs statically.
vl_mac_replica() { printf '02:00:c6:12:00:%02x' "$((10 + $1))"; }

vl_ns_add() {
    ip netns add "$1" || vl_die "cannot create namespace $1"
    VL_NAMESPACES+=("$1")
    ip -n "$1" link set lo up || vl_die "cannot bring lo up in $1"
}

# Kernel senders leave UDP checksums to the NIC (CHECKSUM_PARTIAL); a DPDK receiver on
# a veth would see them unfinished, so kernel-side ends compute checksums in software.
vl_dev_kernel_side() {
    local ns=$1 dev=$2
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null 2>&1 ||
        vl_die "ethtool -K $dev tx off failed in $ns"
}

# A replica's end: up, fixed MAC, no IPv4 address (DPDK answers ARP and ICMP itself;
# the kernel must not answer for it too).
vl_dev_replica_side() {
    local ns=$1 dev=$2 i=$3
    ip -n "$ns" link set "$dev" address "$(vl_mac_replica "$i")" || vl_die "set MAC of $dev"
    ip -n "$ns" link set "$dev" up || vl_die "cannot bring $dev up in $ns"
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" >/dev/null 2>&1 || true
}

vl_client_addr() {
    local nsc dev=$1
    nsc=$(vl_ns_client)
    ip -n "$nsc" addr add "$VL_CLIENT_IP/24" dev "$dev" || vl_die "cannot address $dev"
    ip -n "$nsc" link set "$dev" up || vl_die "cannot bring $dev up"
    vl_dev_kernel_side "$nsc" "$dev"
    ip netns exec "$nsc" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" >/dev/null 2>&1 || true
}

# One replica: client <-veth-> replica, no bridge (the benchmark path has no extra hop).
vl_net_direct() {
    local nsc nsr
    nsc=$(vl_ns_client)
    nsr=$(vl_ns_replica 1)
    ip link add on2-c0 netns "$nsc" type veth peer name "$(vl_dev_replica 1)" netns "$nsr" ||
        vl_die "cannot create veth pair $nsc/$nsr"
    vl_client_addr on2-c0
    vl_dev_replica_side "$nsr" "$(vl_dev_replica 1)" 1
}

# Several replicas: each namespace has one veth to a Linux bridge in its own namespace.
vl_net_bridged() {
    local nsb i nsr
    nsb=$(vl_ns_bridge)
    vl_ns_add "$nsb"
    ip -n "$nsb" link add on2-br type bridge || vl_die "cannot create bridge in $nsb"
    ip -n "$nsb" link set on2-br up || vl_die "cannot bring bridge up"
    ip link add on2-c0 netns "$(vl_ns_client)" type veth peer name on2-bc netns "$nsb" ||
        vl_die "cannot create client veth"
    ip -n "$nsb" link set on2-bc master on2-br up || vl_die "cannot attach on2-bc"
    vl_client_addr on2-c0
    for ((i = 1; i <= VL_N; i++)); do
        nsr=$(vl_ns_replica "$i")
        ip link add "on2-b$i" netns "$nsb" type veth peer name "$(vl_dev_replica "$i")" \
            netns "$nsr" || vl_die "cannot create veth for replica $i"
        ip -n "$nsb" link set "on2-b$i" master on2-br up || vl_die "cannot attach on2-b$i"
        vl_dev_kernel_side "$nsb" "on2-b$i"
        vl_dev_replica_side "$nsr" "$(vl_dev_replica "$i")" "$i"
    done
}

# vl_net_up N: namespaces and links for N replicas and the client namespace.
vl_net_up() {
    local i
    VL_N=$1
    [ "$VL_N" -ge 1 ] && [ "$VL_N" -le 9 ] || vl_die "vl_net_up: 1..9 replicas, got $VL_N"
    vl_ns_add "$(vl_ns_client)"
    for ((i = 1; i <= VL_N; i++)); do
        vl_ns_add "$(vl_ns_replica "$i")"
    done
    if [ "$VL_N" -eq 1 ]; then
        vl_net_direct
    else
        vl_net_bridged
    fi
}

# vl_spawn NAME NS CMD...: start CMD in namespace NS in the background, output to
# $VL_TMP/NAME.log; prints nothing, records the PID in VL_PIDS and in VL_PID_<NAME>.
vl_spawn() {
    local name=$1 ns=$2
    shift 2
    # ip netns exec execs the command: $! is the command's own PID, so we stop it by PID.
    ip netns exec "$ns" "$@" >"$VL_TMP/$name.log" 2>&1 </dev/null &
    local pid=$!
    VL_PIDS+=("$pid")
    printf -v "VL_PID_${name//-/_}" '%s' "$pid"
}

vl_pid() {
    local var="VL_PID_${1//-/_}"
    echo "${!var}"
}

# vl_wait_log NAME PATTERN TIMEOUT_S: wait until NAME's log matches PATTERN (grep -E),
# polling every 50 ms, bounded; dies if the process exits first or time runs out.
vl_wait_log() {
    local name=$1 pattern=$2 timeout_s=$3 pid deadline
    pid=$(vl_pid "$name")
    deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if grep -Eq -- "$pattern" "$VL_TMP/$name.log" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || vl_die "$name (pid $pid) exited before '$pattern'"
        sleep 0.05
    done
    vl_die "$name not ready within ${timeout_s}s (waited for '$pattern')"
}

# vl_stop_pid PID: SIGTERM, bounded wait (5 s), then SIGKILL. Returns the exit status.
vl_stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null
        return $?
    }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        vl_log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
}

vl_stop() {
    vl_stop_pid "$(vl_pid "$1")"
}

vl_cleanup() {
    local rc=$? pid ns
    trap - EXIT
    for pid in "${VL_PIDS[@]}"; do
        vl_stop_pid "$pid" >/dev/null 2>&1
    done
    for ns in "${VL_NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "$VL_TMP" ] && [ -d "$VL_TMP" ]; then
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -z "${VL_KEEP_LOGS:-}" ]; then
            vl_dump_logs
        fi
        [ -n "${VL_KEEP_LOGS:-}" ] && vl_log "logs kept in $VL_TMP" || rm -rf "$VL_TMP"
    fi
    [ -n "$VL_TAG" ] && rm -rf "/var/run/dpdk/${VL_NS_PREFIX}-${VL_TAG}-"* 2>/dev/null
    exit "$rc"
}

# vl_client CMD...: run CMD in the client namespace (foreground).
vl_client() {
    ip netns exec "$(vl_ns_client)" "$@"
}
