/* Lifecycle of the replica runtime: port, rings and session table at start-up, stages on
 * their lcores while running, orderly teardown on stop. Start-up and shutdown only. */
#include "engine/runtime/rt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>
#include <rte_random.h>

#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/runtime/rt_repl.h"
#include "engine/sm_kv.h"

#define RT_ARP_INTERVAL_MS 1000
#define RT_LINK_WAIT_MS 3000

bool rt_replicated(const struct conf *conf, const struct conf_node *self)
{
    return conf->nodes_n > 1 && self->data_dir[0] != '\0';
}

static const char *const rt_stage_names[RT_STAGES] = {"rx", "apply", "tx", "seq", "log"};

uint16_t rt_frame_len_max(uint32_t value_max)
{
    /* Ethernet + IPv4 + UDP, Ordo header, request fields, then the largest args (CAS). */
    uint32_t len = FRAME_UDP_PAYLOAD_OFF + WIRE_HDR_LEN + 32u + 2u + SM_KV_KEY_MAX + 4u +
                   value_max + 4u + value_max;
    return (uint16_t)RTE_MIN(len, (uint32_t)MSG_FRAME_LEN_MAX);
}

/* Jumbo peer frames the port cannot carry would vanish silently: say so at start. */
static void rt_check_peer_mtu(const struct rt *rt)
{
    uint16_t mtu = 0;
    uint32_t want = rt_peer_frame_len(rt->conf) - RTE_ETHER_HDR_LEN;
    if (!rt_replicated(rt->conf, rt->self) || want <= RTE_ETHER_MTU ||
        rte_eth_dev_get_mtu(rt->port.port_id, &mtu) != 0 || mtu >= want) {
        return;
    }
    /* Not fatal: some PMDs (net_af_packet) carry frames beyond the MTU they report, when the
     * kernel interface's MTU and their ring frames (framesz) are large enough. */
    RTE_LOG(WARNING, USER1,
            "ordo: node %u: peer frames of IP MTU %u ([replica] peer_mtu) exceed the port's MTU "
            "%u: every link between replicas must carry them (net_af_packet: framesz devarg)\n",
            rt->self->id, want, mtu);
}

/* Every stage's lcore must be one the EAL runs; stages sharing an lcore share one loop. */
static int rt_map_lcores(struct rt *rt, struct ordo_errmsg *e)
{
    const struct conf_replica *r = &rt->conf->replica;
    rt->stage_lcore[RT_STAGE_RX] = r->rx_lcore;
    rt->stage_lcore[RT_STAGE_APPLY] = r->apply_lcore;
    rt->stage_lcore[RT_STAGE_TX] = r->tx_lcore;
    /* The sequencer and the log exist apart only in replicated mode; on the apply lcore they
     * run inside its round (run-to-completion, no rings). */
    bool repl = rt_replicated(rt->conf, rt->self);
    rt->stage_lcore[RT_STAGE_SEQ] = repl ? r->seq_lcore : r->apply_lcore;
    rt->stage_lcore[RT_STAGE_LOG] = repl ? r->log_lcore : r->apply_lcore;
    rt->lcores_n = 0;
    for (int s = 0; s < RT_STAGES; s++) {
        uint32_t id = rt->stage_lcore[s];
        if (s >= RT_STAGE_SEQ && id == rt->stage_lcore[RT_STAGE_APPLY]) {
            continue;
        }
        if (id >= RTE_MAX_LCORE || !rte_lcore_is_enabled(id)) {
            ordo_errmsg_set(e, "%s: [replica] %s_lcore: lcore %u is not in the EAL lcore list",
                            rt->conf->path, rt_stage_names[s], id);
            return ORDO_ECONFIG;
        }
        uint32_t k = 0;
        while (k < rt->lcores_n && rt->lcores[k].lcore_id != id) {
            k++;
        }
        if (k == rt->lcores_n) {
            memset(&rt->lcores[k], 0, sizeof(rt->lcores[k]));
            rt->lcores[k].rt = rt;
            rt->lcores[k].lcore_id = id;
            rt->lcores_n++;
        }
        rt->lcores[k].stages |= 1u << s;
    }
    struct idle_conf ic = {0};
    ic.mode = r->idle == CONF_IDLE_BUSY ? IDLE_BUSY : IDLE_BACKOFF;
    for (uint32_t k = 0; k < rt->lcores_n; k++) {
        ORDO_ASSERT(idle_init(&rt->lcores[k].idle, &ic) == 0);
    }
    return 0;
}

static int rt_open_port(struct rt *rt, struct ordo_errmsg *e)
{
    const struct conf_replica *r = &rt->conf->replica;
    struct net_conf nc;
    memset(&nc, 0, sizeof(nc));
    nc.port_id = rt->self->port_index >= 0 ? (uint16_t)rt->self->port_index : NET_PORT_ANY;
    nc.port_name = rt->self->port_index >= 0 ? NULL : rt->self->port;
    nc.rx_queues = r->rx_queues;
    nc.tx_queues = r->tx_queues;
    nc.rx_desc = r->rx_desc;
    nc.tx_desc = r->tx_desc;
    nc.mbufs = r->mbufs;
    nc.mbuf_cache = RTE_MIN(CONF_MBUF_CACHE_MAX, r->mbufs / 8u); /* as conf counts it */
    nc.mbuf_priv_size = (uint16_t)RTE_ALIGN(sizeof(struct rt_meta), RTE_MBUF_PRIV_ALIGN);
    nc.frame_len_max = rt_frame_len_max(rt->conf->cluster.value_max);
    if (rt_replicated(rt->conf, rt->self)) {
        nc.frame_len_max = (uint16_t)RTE_MAX(
            nc.frame_len_max, (uint16_t)(rt_peer_frame_len(rt->conf) + RTE_ETHER_CRC_LEN));
    }
    nc.link_wait_ms = RT_LINK_WAIT_MS;
    nc.mac_set = true;
    memcpy(nc.mac.addr_bytes, rt->self->mac, RTE_ETHER_ADDR_LEN);
    int rc = net_port_open(&rt->port, &nc, e);
    if (rc != 0) {
        ordo_errmsg_wrap(e, "node %u", rt->self->id);
        return rc;
    }
    rt_check_peer_mtu(rt);
    rt->rx_csum_flags = rt->port.rx_csum_hw ? FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM : 0;
    rt->tx_csum_hw = rt->port.tx_csum_hw;
    (void)net_stats_telemetry_register(rt->port.port_id);
    return 0;
}

/* Peers: static MACs from config; an all-zero MAC is resolved by ARP. */
static int rt_add_peers(struct rt *rt)
{
    static const uint8_t zero[6];
    net_local_init(&rt->local, &rt->port.mac, rt->self->ipv4);
    for (uint32_t i = 0; i < rt->conf->nodes_n; i++) {
        const struct conf_node *n = &rt->conf->nodes[i];
        if (n->id == rt->self->id) {
            continue;
        }
        struct rte_ether_addr mac;
        memcpy(mac.addr_bytes, n->mac, RTE_ETHER_ADDR_LEN);
        int rc = net_local_peer_add(&rt->local, n->ipv4,
                                    memcmp(n->mac, zero, sizeof(zero)) == 0 ? NULL : &mac);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int rt_make_rings(struct rt *rt, struct ordo_errmsg *e)
{
    char name[RTE_RING_NAMESIZE];
    uint32_t size = rt->conf->replica.ring_size;
    /* RX (and ARP/ICMP answers) may come from several lcores; one consumer each. */
    snprintf(name, sizeof(name), "ordo_req_%u", rt->self->id);
    rt->req_ring = rte_ring_create(name, size, (int)rte_socket_id(), RING_F_SC_DEQ);
    snprintf(name, sizeof(name), "ordo_tx_%u", rt->self->id);
    rt->tx_ring = rte_ring_create(name, size, (int)rte_socket_id(), RING_F_SC_DEQ);
    if (rt_replicated(rt->conf, rt->self)) {
        snprintf(name, sizeof(name), "ordo_peer_%u", rt->self->id);
        rt->peer_ring = rte_ring_create(name, size, (int)rte_socket_id(), RING_F_SC_DEQ);
    }
    if (rt->req_ring == NULL || rt->tx_ring == NULL ||
        (rt_replicated(rt->conf, rt->self) && rt->peer_ring == NULL)) {
        ordo_errmsg_set(e, "rings of %u entries: %s", size, rte_strerror(rte_errno));
        return -ENOMEM;
    }
    return 0;
}

/* The mbuf flag marking replies the TX stage may pack (rt.h). Registering the same name
 * again returns the same bit; without a free bit replies simply go out one per frame. */
static void rt_multi_flag_init(struct rt *rt)
{
    static const struct rte_mbuf_dynflag desc = {.name = "ordo_multi_reply"};
    int bit = rte_mbuf_dynflag_register(&desc);
    rt->multi_flag = bit >= 0 ? 1ull << bit : 0;
}

static int rt_make_state(struct rt *rt, struct ordo_errmsg *e)
{
    /* A single replica keeps nothing across a restart: a fresh salt per start keeps the
     * client ids it hands out from naming sessions of an earlier run (engine/sess.h). */
    struct sess_config sc = {
        .sessions_max = rt->conf->clients.sessions_max,
        .reply_max = rt->sm->result_max,
        .id_salt = rt_replicated(rt->conf, rt->self) ? 0 : rte_rand(),
    };
    int rc = sess_create(&sc, &rt->sess);
    if (rc != 0) {
        ordo_errmsg_set(e, "session table of %u sessions: %s", sc.sessions_max, ordo_strerror(rc));
        return rc;
    }
    rt->result_cap = rt->sm->result_max;
    rt->result = mem_alloc(RTE_MAX(rt->result_cap, 1u));
    if (rt->result == NULL) {
        ordo_errmsg_set(e, "result buffer of %u bytes: out of memory", rt->result_cap);
        return -ENOMEM;
    }
    return 0;
}

int rt_init(struct rt *rt, const struct conf *conf, uint32_t node_id, struct sm *sm,
            struct ordo_errmsg *e)
{
    memset(rt, 0, sizeof(*rt));
    rt->port.port_id = NET_PORT_ANY;
    rt->conf = conf;
    rt->sm = sm;
    rt->self = conf_node_find(conf, node_id);
    if (rt->self == NULL) {
        ordo_errmsg_set(e, "%s: no [node.%u] section", conf->path, node_id);
        return ORDO_ECONFIG;
    }
    rt->rx_burst = (uint16_t)RTE_MIN(conf->replica.rx_burst, RT_BURST_MAX);
    rt->tx_burst = (uint16_t)RTE_MIN(conf->replica.tx_burst, RT_BURST_MAX);
    rt->arp_interval_tsc = rte_get_tsc_hz() / 1000u * RT_ARP_INTERVAL_MS;
    memcpy(rt->cluster_key.bytes, conf->cluster.key, WIRE_KEY_LEN);
    int rc = rt_map_lcores(rt, e);
    if (rc == 0) {
        rc = rt_make_state(rt, e);
    }
    if (rc == 0) {
        rt_multi_flag_init(rt);
        rc = rt_make_rings(rt, e);
    }
    if (rc == 0) {
        rc = rt_open_port(rt, e);
    }
    if (rc == 0) {
        rc = rt_add_peers(rt);
    }
    if (rc == 0 && rt_replicated(conf, rt->self)) {
        rc = rt_repl_init(rt, e);
    }
    if (rc != 0) {
        rt_fini(rt);
    }
    return rc;
}

/* Runs stage s of lc if it has it, keeping its longest call. */
static uint32_t rt_lcore_stage(struct rt_lcore *lc, enum rt_stage s)
{
    struct rt *rt = lc->rt;
    if ((lc->stages & (1u << s)) == 0) {
        return 0;
    }
    uint64_t t0 = rte_rdtsc();
    uint32_t work = 0;
    switch (s) {
    case RT_STAGE_RX:
        work = rt_stage_rx(rt);
        break;
    case RT_STAGE_SEQ:
        work = rt_repl_seq_stage(rt);
        break;
    case RT_STAGE_APPLY:
        work = rt->repl != NULL ? rt_repl_stage(rt) : rt_stage_apply(rt);
        break;
    case RT_STAGE_LOG:
        work = rt_repl_log_stage(rt);
        break;
    default:
        work = rt_stage_tx(rt);
        break;
    }
    lc->stage_max_tsc[s] = RTE_MAX(lc->stage_max_tsc[s], rte_rdtsc() - t0);
    return work;
}

static void rt_lcore_report(const struct rt_lcore *lc)
{
    double ms = 1e3 / (double)rte_get_tsc_hz();
    RTE_LOG(INFO, USER1,
            "ordo: node %u: lcore %u: %" PRIu64 " rounds, %" PRIu64 " sleeps, %" PRIu64
            " woken early; longest ms: round gap %.1f, rx %.1f seq %.1f apply %.1f log %.1f"
            " tx %.1f\n",
            lc->rt->self->id, lc->lcore_id, lc->rounds, lc->idle.sleeps, lc->idle.wakeups,
            (double)lc->gap_max_tsc * ms, (double)lc->stage_max_tsc[RT_STAGE_RX] * ms,
            (double)lc->stage_max_tsc[RT_STAGE_SEQ] * ms,
            (double)lc->stage_max_tsc[RT_STAGE_APPLY] * ms,
            (double)lc->stage_max_tsc[RT_STAGE_LOG] * ms,
            (double)lc->stage_max_tsc[RT_STAGE_TX] * ms);
}

static int rt_lcore_loop(void *arg)
{
    struct rt_lcore *lc = arg;
    struct rt *rt = lc->rt;
    static const enum rt_stage order[] = {RT_STAGE_RX, RT_STAGE_SEQ, RT_STAGE_APPLY, RT_STAGE_LOG,
                                          RT_STAGE_TX};
    uint64_t last = rte_rdtsc();
    /* Relaxed: only a flag; pairs with the relaxed store in rt_request_stop. */
    while (__atomic_load_n(&rt->stop, __ATOMIC_RELAXED) == 0) {
        uint64_t now = rte_rdtsc();
        lc->gap_max_tsc = RTE_MAX(lc->gap_max_tsc, now - last);
        last = now;
        uint32_t work = 0;
        for (size_t i = 0; i < ORDO_ARRAY_LEN(order); i++) {
            work += rt_lcore_stage(lc, order[i]);
        }
        lc->rounds++;
        (void)idle_after(&lc->idle, work);
    }
    rt_lcore_report(lc);
    return 0;
}

/* Back-off sleeps end when the lcore has something to do: a frame on the port (RX stage) or
 * a log completion (replicated apply stage), not at the end of the sleep (docs/replica.md).
 * Only an lcore running every stage gets descriptors: one whose input comes through rings
 * from another lcore has nothing to wake it and keeps the timed back-off. */
static void rt_idle_fds(struct rt *rt, struct rt_lcore *lc)
{
    int fds[IDLE_WAIT_FDS_MAX];
    uint32_t n = 0;
    const uint32_t all = (1u << RT_STAGE_RX) | (1u << RT_STAGE_APPLY) | (1u << RT_STAGE_TX);
    if ((lc->stages & all) != all ||
        (rt->repl != NULL && (rt->repl->seq_apart || rt->repl->log_apart))) {
        return; /* requests or log reports come through rings: no descriptor wakes it */
    }
    n = net_port_wait_fds(&rt->port, fds, IDLE_WAIT_FDS_MAX - 1);
    if (n != 0 && rt->repl != NULL) { /* frames wake nothing without port sockets */
        int fd = disk_log_wait_fd(rt->repl->log);
        if (fd >= 0) {
            fds[n++] = fd;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        (void)idle_wait_fd_add(&lc->idle, fds[i]);
    }
    if (rt->conf->replica.idle != CONF_IDLE_BUSY) {
        RTE_LOG(INFO, USER1, "ordo: node %u: lcore %u back-off wakes on %u descriptors\n",
                rt->self->id, lc->lcore_id, n);
    }
}

int rt_run(struct rt *rt)
{
    unsigned main_id = rte_get_main_lcore();
    struct rt_lcore *main_lc = NULL;
    int rc = 0;
    for (uint32_t k = 0; k < rt->lcores_n; k++) {
        struct rt_lcore *lc = &rt->lcores[k];
        rt_idle_fds(rt, lc);
        if (lc->lcore_id == main_id) {
            main_lc = lc;
            continue;
        }
        rc = rte_eal_remote_launch(rt_lcore_loop, lc, lc->lcore_id);
        if (rc != 0) {
            rt_request_stop(rt);
            break;
        }
    }
    if (main_lc != NULL && rc == 0) {
        (void)rt_lcore_loop(main_lc);
    } else {
        /* No stage here: the main lcore only waits for the stop request. */
        struct idle wait;
        struct idle_conf ic = {.mode = IDLE_BACKOFF, .sleep_ns_max = 10000000};
        ORDO_ASSERT(idle_init(&wait, &ic) == 0);
        while (__atomic_load_n(&rt->stop, __ATOMIC_RELAXED) == 0) {
            (void)idle_after(&wait, 0);
        }
    }
    rte_eal_mp_wait_lcore();
    return rc;
}

void rt_request_stop(struct rt *rt)
{
    __atomic_store_n(&rt->stop, 1, __ATOMIC_RELAXED);
}

static void rt_free_ring(struct rte_ring **r)
{
    void *m;
    if (*r == NULL) {
        return;
    }
    while (rte_ring_dequeue(*r, &m) == 0) {
        rte_pktmbuf_free(m);
    }
    rte_ring_free(*r);
    *r = NULL;
}

void rt_fini(struct rt *rt)
{
    /* Rings hold mbufs of the port's pool: empty them before the pool goes away. */
    rt_repl_fini(rt);
    rt_free_ring(&rt->peer_ring);
    rt_free_ring(&rt->req_ring);
    rt_free_ring(&rt->tx_ring);
    net_port_close(&rt->port);
    sess_destroy(rt->sess);
    rt->sess = NULL;
    mem_free(rt->result);
    rt->result = NULL;
}
