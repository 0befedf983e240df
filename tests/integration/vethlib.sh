# veth harness for Ordo integration tests and benchmarks (sourced by bash scripts).
# Builds one network namespace per replica plus one for clients, joined by veth pairs
# (directly for one replica, through a bridge namespace for more), starts real processes
# in them and always tears everything down again: it never touches the root namespace.
#
# Usage:  VL_BUILD=<build dir>; . vethlib.sh; vl_init; vl_net_up N; vl_start_ordo I PMD;
#         vl_cli ARGS (ordo-cli against replica 1); vl_counter I NAME (telemetry);
#         vl_spawn/vl_wait_log/vl_stop for other processes. Everything is torn down on exit.
#         Several replicas sharing one file: VL_CLUSTER_CONFIG=$(vl_write_cluster_config PMD).
#         Clusters (3, 5, up to 9): vl_cluster_up N PMD and the vl_replica_*/vl_wait_* helpers
#         below; extra daemon flags per replica: VL_REPLICA_ARGS[i]="--net-fault SPEC".
#         Telemetry reads go through ordo-admin when $VL_BUILD/apps/ordo-admin exists.
# Names:  namespaces "${VL_NS_PREFIX}-<tag>-{c,r<i>,br}" with a per-run tag, so parallel
#         runs never collide; interfaces (created directly inside the namespaces) "on2-*".
# Addresses (198.18.0.0/15 only): client 198.18.0.1, replica i 198.18.0.(10+i), /24.

VL_NS_PREFIX=${VL_NS_PREFIX:-on2}
VL_SUBNET=198.18.0
VL_CLIENT_IP=$VL_SUBNET.1
VL_PORT_BASE=${VL_PORT_BASE:-7000}
VL_READY_PATTERN=${VL_READY_PATTERN:-'ordo: node [0-9]+ ready'}
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
    # Missing tools on a machine that can run the test are a setup failure, not a skip.
    local tp
    for tp in ethtool:ethtool python3:python3 ping:iputils-ping; do
        command -v "${tp%%:*}" >/dev/null ||
            vl_die "${tp%%:*} is required (apt-get install ${tp#*:})"
    done
    local probe="${VL_NS_PREFIX}-probe-$$"
    ip netns add "$probe" 2>/dev/null || vl_skip "cannot create network namespaces"
    ip netns del "$probe" 2>/dev/null || true
}

vl_init() {
    vl_require_caps
    vl_pick_tag
    VL_TMP=$(mktemp -d "/tmp/${VL_NS_PREFIX}-${VL_TAG}.XXXXXX") || vl_die "mktemp failed"
    echo "$$" >"$VL_TMP/owner"
    trap vl_cleanup EXIT
    vl_reap_stale
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

# vl_set_mtu MTU: every veth end (client, bridge ports, replicas) carries MTU-sized frames;
# after vl_net_up, before the replicas attach (af_xdp's XDP program bounds a veth's MTU).
vl_set_mtu() {
    local i nsb
    nsb=$(vl_ns_bridge)
    ip -n "$(vl_ns_client)" link set on2-c0 mtu "$1" || vl_die "mtu on2-c0"
    ip -n "$nsb" link set on2-bc mtu "$1" || vl_die "mtu on2-bc"
    for ((i = 1; i <= VL_N; i++)); do
        ip -n "$nsb" link set "on2-b$i" mtu "$1" || vl_die "mtu on2-b$i"
        ip -n "$(vl_ns_replica "$i")" link set "$(vl_dev_replica "$i")" mtu "$1" ||
            vl_die "mtu replica $i"
    done
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

# vl_stop_all: stops every process this run started, together (SIGTERM, 5 s, SIGKILL).
vl_stop_all() {
    local pid i alive
    for pid in "${VL_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for ((i = 0; i < 100; i++)); do
        alive=0
        for pid in "${VL_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1 && break
        done
        [ "$alive" -eq 1 ] || break
        sleep 0.05
    done
    for pid in "${VL_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}

# vl_pick_tag: a random 4-hex-digit run tag that no other run of this prefix uses (no temp
# directory, no namespace): names are per tag, so a shared tag would collide.
vl_pick_tag() {
    local try used
    used=$(ip netns list 2>/dev/null | awk '{print $1}')
    for ((try = 0; try < 64; try++)); do
        VL_TAG=$(printf '%04x' $(((RANDOM << 1 ^ $$ ^ try) & 0xffff)))
        compgen -G "/tmp/${VL_NS_PREFIX}-${VL_TAG}.*" >/dev/null && continue
        grep -q "^${VL_NS_PREFIX}-${VL_TAG}-" <<<"$used" && continue
        return 0
    done
    vl_die "no free run tag for prefix $VL_NS_PREFIX (stale /tmp/${VL_NS_PREFIX}-* dirs?)"
}

# vl_tag_live TAG: true if a run that owns TAG (any /tmp/PREFIX-TAG.*/owner) is alive.
vl_tag_live() {
    local f owner
    for f in /tmp/"${VL_NS_PREFIX}-$1".*/owner; do
        owner=$(head -n 1 "$f" 2>/dev/null) || continue
        [[ "$owner" =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null && return 0
    done
    return 1
}

# vl_reap_stale: deletes namespaces of this prefix left by runs that died before their
# teardown (killed by a runner's timeout). A run's tag is live while its owner shell is.
# Never fails: a namespace that a concurrent run's teardown removed after the listing
# cannot be deleted again, which is fine (a non-zero return here once made set -e callers
# exit at startup without a word).
vl_reap_stale() {
    local ns tag
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case "$ns" in "${VL_NS_PREFIX}"-????-*) ;; *) continue ;; esac
        tag=${ns#"${VL_NS_PREFIX}"-}
        tag=${tag%%-*}
        [ "$tag" = "$VL_TAG" ] && continue
        vl_tag_live "$tag" && continue
        if ip netns del "$ns" 2>/dev/null; then
            vl_log "removed stale namespace $ns"
        fi
    done
    return 0
}

vl_cleanup() {
    local rc=$? pid ns
    # Teardown must run to the end whatever fails on the way (callers often set -e).
    set +e
    trap - EXIT
    # One SIGTERM to every process, one shared 5 s bound, then SIGKILL: teardown stays short
    # (a test runner that times out kills a slow teardown before the namespaces go).
    vl_stop_all
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

# ---- configuration and replicas ---------------------------------------------------------

# vl_ini_apply FILE: applies "section|key|value" lines from stdin, in order, to FILE: each
# sets KEY in [SECTION] (replace, or append to the section, creating it at the end of the
# file if missing). Other lines stay as they are. One python start for any number of edits:
# on a loaded 2-core machine each start costs most of a second.
vl_ini_apply() {
    python3 -S - "$1" 3<&0 <<'PY' || vl_die "cannot edit $1"
import os, sys
path = sys.argv[1]
edits = [l.split('|', 2) for l in os.fdopen(3).read().splitlines() if l.strip()]
lines = open(path).read().splitlines()
def ini_set(lines, section, key, value):
    out, cur, done, insert_at = [], None, False, None
    for line in lines:
        s = line.strip()
        if s.startswith('[') and s.endswith(']'):
            if cur == section and not done:
                insert_at = len(out)
                while insert_at > 0 and out[insert_at - 1].strip() == '':
                    insert_at -= 1
            cur = s[1:-1].strip()
        elif cur == section and not done and '=' in s and not s.startswith((';', '#')):
            if s.split('=', 1)[0].strip() == key:
                out.append(f'{key} = {value}')
                done = True
                continue
        out.append(line)
    if not done:
        if insert_at is None and cur == section:
            insert_at = len(out)
        if insert_at is None:
            out += ['', f'[{section}]', f'{key} = {value}']
        else:
            out.insert(insert_at, f'{key} = {value}')
    return out
for e in edits:
    if len(e) != 3:
        sys.exit(f'bad edit line: {"|".join(e)}')
    lines = ini_set(lines, *e)
open(path, 'w').write('\n'.join(lines) + '\n')
PY
}

# vl_ini_set FILE SECTION KEY VALUE: one edit (see vl_ini_apply).
vl_ini_set() {
    printf '%s|%s|%s\n' "$2" "$3" "$4" | vl_ini_apply "$1"
}

# DPDK memory: hugepages when enough are free, else --no-huge -m (both work with the
# af_xdp and af_packet PMDs). VL_MEM_MB per replica.
VL_MEM_MB=${VL_MEM_MB:-256}
vl_eal_mem_args() {
    local free_pages need
    free_pages=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo 2>/dev/null)
    need=$(((VL_MEM_MB + 1) / 2))
    if [ "${VL_HUGE:-auto}" != no ] && [ "${free_pages:-0}" -ge "$need" ] &&
        mountpoint -q /dev/hugepages 2>/dev/null; then
        echo "-m $VL_MEM_MB --huge-unlink"
    else
        echo "--no-huge -m $VL_MEM_MB"
    fi
}

# vl_eal_args I PMD: the EAL arguments of replica I on its veth with PMD af_xdp|af_packet.
vl_eal_args() {
    local i=$1 pmd=$2 vdev
    case "$pmd" in
    af_xdp) vdev="net_af_xdp0,iface=$(vl_dev_replica "$i"),start_queue=0,queue_count=1" ;;
    af_packet) vdev="net_af_packet0,iface=$(vl_dev_replica "$i"),qpairs=1" ;;
    *) vl_die "unknown PMD '$pmd' (af_xdp or af_packet)" ;;
    esac
    echo "--no-pci --vdev=$vdev --file-prefix=$(vl_file_prefix "$i") $(vl_eal_mem_args)" \
        "--log-level=lib.eal:error"
}

vl_port_name() {
    case "$1" in
    af_xdp) echo net_af_xdp0 ;;
    af_packet) echo net_af_packet0 ;;
    esac
}

# vl_telemetry I CMD: one DPDK telemetry command against replica I; prints the JSON reply.
vl_telemetry() {
    python3 - "/var/run/dpdk/$(vl_file_prefix "$1")/dpdk_telemetry.v2" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
s.recv(16384)  # greeting: version, pid, max_output_len
s.send(sys.argv[2].encode())
print(s.recv(1 << 20).decode())
PY
}

# vl_counter I NAME: one counter of replica I from the /ordo/stats telemetry command.
vl_counter() {
    local v
    v=$(vl_admin_flat "$1" stats /ordo/stats | sed -n "s/^$2=//p")
    [[ "$v" =~ ^[0-9]+$ ]] || vl_die "cannot read counter $2 of replica $1"
    echo "$v"
}

# vl_counters I: every /ordo/stats counter of replica I as NAME=VALUE lines.
vl_counters() {
    vl_admin_flat "$1" stats /ordo/stats
}

# vl_find_template: the single-replica veth config shipped in config/.
vl_find_template() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    for f in "$root/config/veth-1.ini" "$root/config/veth-3.ini"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    vl_die "no config template (config/veth-1.ini) found under $root"
}

# vl_node_edits I PMD DIR: the vl_ini_apply lines of [node.I] for this run.
vl_node_edits() {
    local i=$1 pmd=$2 dir=$3
    echo "node.$i|mac|$(vl_mac_replica "$i")"
    echo "node.$i|ipv4|$(vl_ip_replica "$i")"
    echo "node.$i|udp_port|$(vl_port_replica "$i")"
    echo "node.$i|eal|$(vl_eal_args "$i" "$pmd")"
    echo "node.$i|port|$(vl_port_name "$pmd")"
    echo "node.$i|data_dir|$dir"
}

# vl_extra_edits "section|key|value;...": one vl_ini_apply line per override.
vl_extra_edits() {
    local IFS=';' ov
    for ov in $1; do
        [ -z "$ov" ] || echo "$ov"
    done
}

# vl_write_config I PMD: writes $VL_TMP/r<I>.ini for replica I from the template, with
# this run's addresses, veth, PMD, file prefix, data directory and a fresh cluster key.
# Prints the path. Extra overrides: VL_CONF_EXTRA="section|key|value;..." (applied last).
vl_write_config() {
    local i=$1 pmd=$2 tmpl cfg dir
    tmpl=$(vl_find_template)
    cfg="$VL_TMP/r$i.ini"
    dir="$VL_TMP/data-r$i"
    mkdir -p "$dir" || vl_die "mkdir $dir"
    # Only node I stays: drop other [node.*] sections of the template.
    python3 - "$tmpl" "$cfg" "node.$i" <<'PY' || vl_die "cannot write $cfg"
import sys, re
src, dst, keep = sys.argv[1:4]
out, skip = [], False
for line in open(src).read().splitlines():
    m = re.match(r'\s*\[([^\]]+)\]', line)
    if m:
        name = m.group(1).strip()
        skip = name.startswith('node.') and name != keep
    if not skip:
        out.append(line)
open(dst, 'w').write('\n'.join(out) + '\n')
PY
    [ -f "$VL_TMP/cluster.key" ] ||
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$VL_TMP/cluster.key"
    {
        echo "cluster|key_file|$VL_TMP/cluster.key"
        vl_node_edits "$i" "$pmd" "$dir"
        # AF_XDP puts each mbuf in one umem chunk of at most a page: frames (sized from
        # value_max) must stay well under 4 KiB there, so af_xdp runs use smaller values.
        [ "$pmd" != af_xdp ] || echo "cluster|value_max|${VL_XDP_VALUE_MAX:-1024}"
        vl_extra_edits "${VL_CONF_EXTRA:-}"
    } | vl_ini_apply "$cfg" || vl_die "cannot write $cfg"
    echo "$cfg"
}

# vl_write_cluster_config PMD: one file for all VL_N replicas (every [node.i] with this
# run's addresses, veth, file prefix and data directory), for multi-replica runs: the
# template's other sections are kept, and VL_CONF_EXTRA applies. Prints the path.
vl_write_cluster_config() {
    local pmd=$1 cfg i base extra=${VL_CONF_EXTRA:-}
    cfg="$VL_TMP/cluster.ini"
    VL_CONF_EXTRA=
    base=$(vl_write_config 1 "$pmd")
    VL_CONF_EXTRA=$extra
    mv "$base" "$cfg" || vl_die "cannot write $cfg"
    for ((i = 2; i <= VL_N; i++)); do
        mkdir -p "$VL_TMP/data-r$i" || vl_die "mkdir data-r$i"
    done
    {
        for ((i = 2; i <= VL_N; i++)); do
            vl_node_edits "$i" "$pmd" "$VL_TMP/data-r$i"
        done
        vl_extra_edits "$extra"
    } | vl_ini_apply "$cfg" || vl_die "cannot write $cfg"
    echo "$cfg"
}

# vl_start_ordo I PMD: writes the config and starts replica I in its namespace; waits
# (bounded) for its readiness line. ORDO_BIN: the daemon (default: $VL_BUILD/apps/ordo).
VL_READY_TIMEOUT_S=${VL_READY_TIMEOUT_S:-30}
vl_start_ordo() {
    local i=$1 pmd=$2 cfg bin=${ORDO_BIN:-$VL_BUILD/apps/ordo}
    [ -x "$bin" ] || vl_die "replica daemon $bin not built"
    # VL_CLUSTER_CONFIG (from vl_write_cluster_config): every replica reads one shared file.
    cfg=${VL_CLUSTER_CONFIG:-}
    [ -n "$cfg" ] || cfg=$(vl_write_config "$i" "$pmd")
    vl_spawn "ordo-r$i" "$(vl_ns_replica "$i")" "$bin" --config "$cfg" --node "$i"
    vl_wait_log "ordo-r$i" "$VL_READY_PATTERN" "$VL_READY_TIMEOUT_S"
}

# vl_cli ARGS...: ordo-cli in the client namespace against replica 1.
vl_cli() {
    vl_client "${ORDO_CLI:-$VL_BUILD/apps/ordo-cli}" --server \
        "$(vl_ip_replica 1):$(vl_port_replica 1)" "$@"
}

# vl_kv LINE KEY: the value of KEY in a line of key=value pairs (ordo-cli load summary).
vl_kv() {
    tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}

# ---- replicated clusters ----------------------------------------------------------------
# vl_cluster_up N PMD: namespaces for N replicas behind the bridge, one shared config
# (VL_CLUSTER_CONFIG) with test election timing, every replica started, each ready.
# Replicas are then addressed by index: vl_replica_{start,kill,stop,pid}, vl_raft,
# vl_wait_leader, vl_partition/vl_heal, vl_wait_converged. Nothing sleeps blindly: every
# wait polls with a deadline and dies naming what it waited for.
# Timing: 1 ms ticks, heartbeat 20 ms, election timeout >= 200 ms: tolerant of two shared
# cores, quick enough for tests. Override with VL_CLUSTER_TIMING="section|key|value;...".
VL_CLUSTER_TIMING_DEFAULT="replica|tick_us|1000;replica|heartbeat_ticks|20"
VL_CLUSTER_TIMING_DEFAULT+=";replica|election_ticks|200"
VL_CLUSTER_TIMING=${VL_CLUSTER_TIMING:-$VL_CLUSTER_TIMING_DEFAULT}
VL_PMD=
VL_DOWN=() # VL_DOWN[i]=1: replica i was killed or stopped by the test
# Extra daemon arguments (word-split), e.g. --net-fault SPEC or --diverge-at I:
# VL_REPLICA_ARGS_ALL for every replica, VL_REPLICA_ARGS[i] for replica i (after the former).
VL_REPLICA_ARGS_ALL=${VL_REPLICA_ARGS_ALL:-}
VL_REPLICA_ARGS=()

vl_cluster_up() {
    local n=$1 pmd=$2 i
    VL_PMD=$pmd
    vl_net_up "$n"
    # VL_MTU: jumbo links (set [replica] peer_mtu through VL_CONF_EXTRA to use them).
    [ -z "${VL_MTU:-}" ] || vl_set_mtu "$VL_MTU"
    local extra=${VL_CONF_EXTRA:-}
    VL_CONF_EXTRA="$VL_CLUSTER_TIMING${extra:+;$extra}"
    VL_CLUSTER_CONFIG=$(vl_write_cluster_config "$pmd")
    VL_CONF_EXTRA=$extra
    export VL_CLUSTER_CONFIG
    for ((i = 1; i <= n; i++)); do
        vl_replica_spawn "$i"
    done
    for ((i = 1; i <= n; i++)); do
        vl_wait_log "ordo-r$i" "$VL_READY_PATTERN" "$VL_READY_TIMEOUT_S"
    done
}

# vl_replica_spawn I: start replica I (again) without waiting; its log is appended to, so
# a restarted replica's earlier life stays visible in ordo-r<I>.log.
vl_replica_spawn() {
    local i=$1 bin=${ORDO_BIN:-$VL_BUILD/apps/ordo} ns
    [ -x "$bin" ] || vl_die "replica daemon $bin not built"
    ns=$(vl_ns_replica "$i")
    echo "=== vethlib: start replica $i at $(date +%T.%N) ===" >>"$VL_TMP/ordo-r$i.log"
    local -a extra
    read -r -a extra <<<"$VL_REPLICA_ARGS_ALL ${VL_REPLICA_ARGS[i]:-}"
    ip netns exec "$ns" "$bin" --config "$VL_CLUSTER_CONFIG" --node "$i" "${extra[@]}" \
        >>"$VL_TMP/ordo-r$i.log" 2>&1 </dev/null &
    local pid=$!
    VL_PIDS+=("$pid")
    printf -v "VL_PID_ordo_r$i" '%s' "$pid"
    VL_DOWN[i]=0
}

# vl_replica_start I: restart replica I and wait (bounded) for its new readiness line.
vl_replica_start() {
    local i=$1 before
    before=$(grep -cE -- "$VL_READY_PATTERN" "$VL_TMP/ordo-r$i.log" 2>/dev/null || true)
    vl_replica_spawn "$i"
    vl_wait_count "ordo-r$i" "$VL_READY_PATTERN" $((${before:-0} + 1)) "$VL_READY_TIMEOUT_S"
}

# vl_wait_count NAME PATTERN COUNT TIMEOUT_S: wait until the log has COUNT matching lines.
vl_wait_count() {
    local name=$1 pattern=$2 count=$3 deadline=$((SECONDS + $4)) pid c
    pid=$(vl_pid "$name")
    while ((SECONDS < deadline)); do
        c=$(grep -cE -- "$pattern" "$VL_TMP/$name.log" 2>/dev/null || true)
        [ "${c:-0}" -ge "$count" ] && return 0
        kill -0 "$pid" 2>/dev/null || vl_die "$name (pid $pid) exited before '$pattern'"
        sleep 0.05
    done
    vl_die "$name: '$pattern' not seen $count times within $4 s"
}

vl_replica_pid() { vl_pid "ordo-r$1"; }

# vl_replica_kill I [SIGNAL]: signal replica I by PID (default SIGKILL). KILL also reaps it.
vl_replica_kill() {
    local i=$1 sig=${2:-KILL} pid
    pid=$(vl_replica_pid "$i")
    kill -"$sig" "$pid" 2>/dev/null || vl_die "cannot send SIG$sig to replica $i (pid $pid)"
    case "$sig" in
    KILL | 9)
        wait "$pid" 2>/dev/null || true
        VL_DOWN[i]=1
        ;;
    STOP) VL_DOWN[i]=1 ;;
    CONT) VL_DOWN[i]=0 ;;
    esac
}

# vl_replica_stop I: SIGTERM, bounded wait, SIGKILL if ignored.
vl_replica_stop() {
    vl_stop_pid "$(vl_replica_pid "$1")"
    VL_DOWN[$1]=1
}

vl_replica_up() { [ "${VL_DOWN[$1]:-0}" = 0 ]; }

# vl_raft I: replica I's /ordo/raft telemetry as NAME=VALUE lines (match index per node as
# match.<id>=...); prints nothing if the replica does not answer within 1 s (stopped, dead,
# or a daemon without replication).
vl_raft() {
    vl_admin_flat "$1" raft /ordo/raft
}

# vl_admin_flat I SUBCOMMAND TELEMETRY_CMD: replica I's reply as NAME=VALUE lines (nested
# objects as NAME.KEY=VALUE), nothing if it does not answer within 1 s. Through ordo-admin
# when it is built (a python start costs most of a second on a loaded machine, and
# vl_wait_leader polls every replica), else through python.
vl_admin_flat() {
    local admin=${VL_BUILD:-}/apps/ordo-admin
    if [ -x "$admin" ]; then
        "$admin" --file-prefix "$(vl_file_prefix "$1")" --timeout-ms 1000 "$2" 2>/dev/null
        return 0
    fi
    vl_telemetry_kv "$1" "$3"
}

# vl_raft_field I NAME: one field of vl_raft (empty when unavailable).
vl_raft_field() {
    vl_raft "$1" | sed -n "s/^$2=//p"
}

# vl_state I: one line for logs: role, term, leader, commit, applied (and digest if any).
vl_state() {
    local out
    out=$(vl_raft "$1" | grep -E '^(role|term|leader|commit|applied|digest)=' | tr '\n' ' ')
    echo "r$1: ${out:-no telemetry}"
}

vl_states() {
    local i
    for ((i = 1; i <= VL_N; i++)); do
        vl_replica_up "$i" && vl_state "$i"
    done
    return 0
}

# vl_fail MSG...: a test's failure: "$T: FAIL: MSG" on stderr (T: the script's test name),
# every live replica's state, exit 1 (the EXIT trap then dumps the logs and cleans up).
vl_fail() {
    echo "${T:-vethlib}: FAIL: $*" >&2
    vl_states >&2
    exit 1
}

# vl_admin I ARGS...: ordo-admin ($ADMIN, else the build's) against replica I's telemetry.
vl_admin() {
    local i=$1
    shift
    "${ADMIN:-$VL_BUILD/apps/ordo-admin}" --file-prefix "$(vl_file_prefix "$i")" "$@"
}

# vl_cli_at I ARGS...: ordo-cli in the client namespace against replica I.
vl_cli_at() {
    local i=$1
    shift
    vl_client "${ORDO_CLI:-$VL_BUILD/apps/ordo-cli}" --server \
        "$(vl_ip_replica "$i"):$(vl_port_replica "$i")" "$@"
}

# vl_ask_leader I: asks replica I directly (no redirect followed) with a GET of a probe key;
# prints I if it answered (it leads), the leader it names, or nothing (no answer, no leader).
vl_ask_leader() {
    local i=$1 out rc=0
    out=$(vl_cli_at "$i" --no-redirect --timeout-ms 300 --retries 0 get vl-leader-probe \
        2>/dev/null) || rc=$?
    case "$rc" in
    0 | 3) echo "$i" ;;
    8) sed -n 's/^redirect leader=\([0-9][0-9]*\).*/\1/p' <<<"$out" ;;
    esac
}

# vl_leader: the replica that leads now, by telemetry (role=leader with the highest term
# among live replicas), else by asking each live replica; prints nothing if none is known.
vl_leader() {
    local i role term best= best_term=-1
    for ((i = 1; i <= VL_N; i++)); do
        vl_replica_up "$i" || continue
        local st
        st=$(vl_raft "$i")
        role=$(sed -n 's/^role=//p' <<<"$st")
        term=$(sed -n 's/^term=//p' <<<"$st")
        if [ "$role" = leader ] && [ "${term:-0}" -gt "$best_term" ]; then
            best=$i
            best_term=$term
        fi
    done
    if [ -z "$best" ]; then
        for ((i = 1; i <= VL_N; i++)); do
            vl_replica_up "$i" || continue
            best=$(vl_ask_leader "$i")
            [ -n "$best" ] && break
        done
    fi
    echo "$best"
}

# vl_wait_leader TIMEOUT_S [NOT]: waits until a live replica other than NOT leads and
# accepts a write sent straight to it; prints its index. Dies at the deadline.
vl_wait_leader() {
    local timeout_s=$1 not=${2:-0} deadline l
    deadline=$(($(date +%s%N) / 1000000 + timeout_s * 1000))
    while (($(date +%s%N) / 1000000 < deadline)); do
        l=$(vl_leader)
        if [ -n "$l" ] && [ "$l" != "$not" ] && vl_replica_up "$l" &&
            vl_cli_at "$l" --no-redirect --timeout-ms 300 --retries 0 --quiet \
                put vl-leader-check "$l" >/dev/null 2>&1; then
            echo "$l"
            return 0
        fi
        sleep 0.05
    done
    vl_states >&2
    vl_die "no leader serving writes within ${timeout_s}s${not:+ (excluding replica $not)}"
}

# vl_partition I / vl_heal I: cut replica I off from every other replica (not from the
# client) with nftables drop rules on the bridge's forward hook, in the bridge namespace;
# the PMDs see frames before any netfilter of the replica's own namespace, the bridge does
# not. VL_PARTITION_MODE=link takes the bridge-side veth down instead (client cut too).
vl_partition() {
    local i=$1 nsb port
    nsb=$(vl_ns_bridge)
    port="on2-b$i"
    if [ "${VL_PARTITION_MODE:-nft}" = link ]; then
        ip -n "$nsb" link set "$port" down || vl_die "cannot take $port down"
        return 0
    fi
    command -v nft >/dev/null || vl_die "nft is required (apt-get install nftables)"
    ip netns exec "$nsb" nft -f - <<NFT || vl_die "cannot add nftables rules in $nsb"
table bridge vl_part {
    chain forward {
        type filter hook forward priority 0; policy accept;
    }
}
add rule bridge vl_part forward iifname "$port" oifname != "on2-bc" counter drop comment "vl-r$i"
add rule bridge vl_part forward oifname "$port" iifname != "on2-bc" counter drop comment "vl-r$i"
NFT
}

vl_heal() {
    local i=$1 nsb h
    nsb=$(vl_ns_bridge)
    if [ "${VL_PARTITION_MODE:-nft}" = link ]; then
        ip -n "$nsb" link set "on2-b$i" up || vl_die "cannot bring on2-b$i up"
        return 0
    fi
    for h in $(ip netns exec "$nsb" nft -a list chain bridge vl_part forward 2>/dev/null |
        sed -n "s/.*comment \"vl-r$i\" # handle \([0-9]*\)/\1/p"); do
        ip netns exec "$nsb" nft delete rule bridge vl_part forward handle "$h" ||
            vl_die "cannot delete nftables rule $h"
    done
}

# vl_wait_converged TIMEOUT_S: waits until every live replica reports the same applied
# index (and digest, when the daemon exports one) and it no longer moves; prints
# "applied=N [digest=D]". Dies at the deadline with every replica's state.
vl_wait_converged() {
    local deadline=$((SECONDS + $1)) i a d sig prev= same
    while ((SECONDS < deadline)); do
        sig=
        same=1
        for ((i = 1; i <= VL_N; i++)); do
            vl_replica_up "$i" || continue
            local st
            st=$(vl_raft "$i")
            a=$(sed -n 's/^applied=//p' <<<"$st")
            d=$(sed -n 's/^digest=//p' <<<"$st")
            [ -n "$a" ] || { same=0; break; }
            local one="applied=$a${d:+ digest=$d}"
            [ -z "$sig" ] && sig=$one
            [ "$one" = "$sig" ] || same=0
        done
        if [ "$same" = 1 ] && [ -n "$sig" ] && [ "$sig" = "$prev" ]; then
            echo "$sig"
            return 0
        fi
        prev=$([ "$same" = 1 ] && echo "$sig")
        sleep 0.1
    done
    vl_states >&2
    vl_die "replicas did not converge within $1 s"
}

# vl_wait_exit NAME TIMEOUT_S: waits (bounded) for a process started with vl_spawn to exit;
# returns its exit status. Dies if it is still running at the deadline.
vl_wait_exit() {
    local pid deadline=$((SECONDS + $2))
    pid=$(vl_pid "$1")
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || vl_die "$1 (pid $pid) still running after $2 s"
        sleep 0.05
    done
    local rc=0
    wait "$pid" || rc=$?
    return "$rc"
}

vl_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# vl_servers I: every replica's IP:PORT, comma-separated, replica I first (ordo-cli
# --server list: an attempt without reply moves on to the next replica).
vl_servers() {
    local first=$1 i list
    list="$(vl_ip_replica "$first"):$(vl_port_replica "$first")"
    for ((i = 1; i <= VL_N; i++)); do
        [ "$i" = "$first" ] || list+=",$(vl_ip_replica "$i"):$(vl_port_replica "$i")"
    done
    echo "$list"
}

# vl_cli_any I ARGS...: ordo-cli with every replica listed, replica I first.
vl_cli_any() {
    local i=$1
    shift
    vl_client "${ORDO_CLI:-$VL_BUILD/apps/ordo-cli}" --server "$(vl_servers "$i")" "$@"
}

# vl_load_spawn NAME I ARGS...: ordo-cli (every replica listed, I first) in the background
# in the client namespace, output in $VL_TMP/NAME.log.
vl_load_spawn() {
    local name=$1 i=$2
    shift 2
    vl_spawn "$name" "$(vl_ns_client)" "${ORDO_CLI:-$VL_BUILD/apps/ordo-cli}" \
        --server "$(vl_servers "$i")" "$@"
}

# vl_telemetry_kv I CMD: replica I's flat telemetry reply to CMD as NAME=VALUE lines (nested
# objects as NAME.KEY=VALUE); prints nothing if the replica does not answer within 1 s.
vl_telemetry_kv() {
    python3 - "/var/run/dpdk/$(vl_file_prefix "$1")/dpdk_telemetry.v2" "$2" <<'PY' 2>/dev/null
import json, socket, sys
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(1.0)
    s.connect(sys.argv[1])
    s.recv(16384)
    s.send(sys.argv[2].encode())
    v = next(iter(json.loads(s.recv(1 << 20).decode()).values()))
    for k, x in (v.items() if isinstance(v, dict) else []):
        for kk, xx in (x.items() if isinstance(x, dict) else [(None, x)]):
            print(f"{k}.{kk}={xx}" if kk is not None else f"{k}={xx}")
except Exception:
    pass
PY
}

# vl_net_fault I: replica I's fault injector (/ordo/net_fault): spec=... and its counters
# (fault_drops, fault_dups, fault_reorders, fault_delayed, fault_overflow) as NAME=VALUE.
vl_net_fault() {
    vl_admin_flat "$1" net-fault /ordo/net_fault
}
