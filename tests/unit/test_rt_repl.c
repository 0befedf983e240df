/* Three replicas of the replicated runtime in one process over net_ring ports: a test switch
 * moves frames between the ports' rings by destination MAC, and every stage is pumped on this
 * thread. Checks election, replication of a put to every replica, ReadIndex GET, and the
 * follower's redirect. Data directories are fresh temporary directories. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include "drivers/net/net.h"
#include "engine/frame.h"
#include "engine/runtime/rt.h"
#include "engine/runtime/rt_repl.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

#define T_N 3
#define T_CLUSTER 9u
#define T_PORT 7100u
#define T_CLIENT_PORT 40000u

static struct conf g_conf;
static struct rt g_rt[T_N];
static struct sm *g_sm[T_N];
static struct rte_ring *g_rx[T_N];
static struct rte_ring *g_tx[T_N];
static struct rte_ring *g_client; /* frames addressed to the client */
static char g_prefix[64];
static char g_dirs[T_N][64];
static bool g_down[T_N]; /* a "crashed" replica: not pumped, its frames are dropped */
static const uint8_t g_client_mac[6] = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x01};

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    uint8_t x[4] = {(uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)d};
    uint32_t v;
    memcpy(&v, x, 4);
    return v;
}

static void eal_up(void)
{
    snprintf(g_prefix, sizeof(g_prefix), "--file-prefix=op1-ut-%d", (int)getpid());
    static char *argv[] = {"test_rt_repl",   "--no-pci", "--no-huge", "-m",          "256", NULL,
                           "--no-telemetry", "-l",       "0",         "--log-level", "3",   NULL};
    argv[5] = g_prefix;
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_eal_init(11, argv, &e), 0, "%s", e.text);
    g_client = rte_ring_create("t_client", 1024, 0, 0);
    cr_assert(g_client != NULL);
}

static void conf_fill(void)
{
    memset(&g_conf, 0, sizeof(g_conf));
    snprintf(g_conf.path, sizeof(g_conf.path), "test.ini");
    g_conf.cluster.id = T_CLUSTER;
    memset(g_conf.cluster.key, 0x11, CONF_KEY_LEN);
    g_conf.cluster.value_max = 256;
    g_conf.nodes_n = T_N;
    for (uint32_t i = 0; i < T_N; i++) {
        struct conf_node *n = &g_conf.nodes[i];
        n->id = i + 1;
        memcpy(n->mac, (uint8_t[6]){0x02, 0, 0xc6, 0x12, 0, (uint8_t)(11 + i)}, 6);
        n->ipv4 = ip4(198, 18, 0, 11 + i);
        n->udp_port = (uint16_t)(T_PORT + i);
        snprintf(g_dirs[i], sizeof(g_dirs[i]), "/tmp/op1-rtrepl-XXXXXX");
        cr_assert(mkdtemp(g_dirs[i]) != NULL);
        snprintf(n->data_dir, sizeof(n->data_dir), "%s", g_dirs[i]);
    }
    struct conf_replica *r = &g_conf.replica;
    conf_replica_defaults(r);
    r->rx_desc = r->tx_desc = 256;
    r->mbufs = 2047;
    r->ring_size = 256;
    r->election_ticks = 20; /* 20 ms at 1 ms ticks */
    r->heartbeat_ticks = 2;
    r->tick_us = 1000;
    r->snapshot_entries = 0;
    g_conf.clients.auth = CONF_AUTH_NONE;
    g_conf.clients.sessions_max = 64;
}

static void setup(void)
{
    conf_fill();
    eal_up();
    cr_assert_eq(wire_init(), 0);
    for (uint32_t i = 0; i < T_N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t_rx%u", i);
        g_rx[i] = rte_ring_create(name, 1024, 0, 0);
        snprintf(name, sizeof(name), "t_tx%u", i);
        g_tx[i] = rte_ring_create(name, 1024, 0, 0);
        cr_assert(g_rx[i] != NULL && g_tx[i] != NULL);
        snprintf(name, sizeof(name), "op1_ring%u", i);
        int port = rte_eth_from_rings(name, &g_rx[i], 1, &g_tx[i], 1, 0);
        cr_assert_geq(port, 0);
        g_conf.nodes[i].port_index = port;
        struct sm_kv_config kc = {.value_max = g_conf.cluster.value_max};
        cr_assert_eq(sm_kv_create(&kc, &g_sm[i]), 0);
        struct ordo_errmsg e = {{0}};
        cr_assert_eq(rt_init(&g_rt[i], &g_conf, i + 1, g_sm[i], &e), 0, "rt_init: %s", e.text);
        cr_assert(g_rt[i].repl != NULL, "more than one node: replicated mode");
    }
}

static void teardown(void)
{
    for (uint32_t i = 0; i < T_N; i++) {
        rt_fini(&g_rt[i]);
        sm_destroy(g_sm[i]);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dirs[i]);
        (void)system(cmd);
    }
    rte_eal_cleanup();
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '/var/run/dpdk/%s'", g_prefix + strlen("--file-prefix="));
    (void)system(cmd);
}

/* The switch: every frame a port sent goes to the port owning its destination MAC, to all
 * others when broadcast, or to the client ring. */
static uint32_t switch_frames(void)
{
    struct rte_mbuf *m[64];
    uint32_t moved = 0;
    for (uint32_t i = 0; i < T_N; i++) {
        uint32_t n = rte_ring_dequeue_burst(g_tx[i], (void **)m, 64, NULL);
        for (uint32_t k = 0; k < n; k++) {
            const uint8_t *dst = rte_pktmbuf_mtod(m[k], const uint8_t *);
            struct rte_ring *to = NULL;
            for (uint32_t j = 0; j < T_N; j++) {
                if (memcmp(dst, g_conf.nodes[j].mac, 6) == 0) {
                    to = g_rx[j];
                }
            }
            if (memcmp(dst, g_client_mac, 6) == 0) {
                to = g_client;
            }
            for (uint32_t j = 0; j < T_N; j++) {
                if (to == g_rx[j] && (g_down[j] || g_down[i])) {
                    to = NULL;
                }
            }
            if (to == NULL || rte_ring_enqueue(to, m[k]) != 0) {
                rte_pktmbuf_free(m[k]);
            }
        }
        moved += n;
    }
    return moved;
}

static void pump_once(void)
{
    for (uint32_t i = 0; i < T_N; i++) {
        if (g_down[i]) {
            continue;
        }
        (void)rt_stage_rx(&g_rt[i]);
        (void)rt_repl_stage(&g_rt[i]);
        (void)rt_stage_tx(&g_rt[i]);
    }
    if (switch_frames() == 0) {
        usleep(100);
    }
}

static int leader(void)
{
    for (int i = 0; i < T_N; i++) {
        if (!g_down[i] && g_rt[i].repl->role == RAFT_LEADER) {
            return i;
        }
    }
    return -1;
}

/* Pumps until one leader is known to every replica (bounded: 10 s). */
static int wait_leader(void)
{
    uint64_t deadline = rte_get_tsc_cycles() + 10 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline) {
        pump_once();
        int l = leader();
        bool known = l >= 0;
        for (int i = 0; known && i < T_N; i++) {
            known = g_down[i] || g_rt[i].repl->leader == (uint32_t)l + 1;
        }
        if (known) {
            return l;
        }
    }
    cr_assert_fail("no leader within 10 s");
    return -1;
}

static void send_req_flags(int to, uint64_t client, uint64_t no, uint16_t flags, uint8_t op,
                           const uint8_t *args, uint32_t alen)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = T_CLUSTER;
    m.u.request = (struct msg_client_request){client, no, flags, op, alen, args};
    struct rte_mbuf *mb = rte_pktmbuf_alloc(g_rt[to].port.pool);
    cr_assert(mb != NULL);
    uint8_t *buf = rte_pktmbuf_mtod(mb, uint8_t *);
    size_t cap = rte_pktmbuf_tailroom(mb);
    int n = wire_encode(&m, NULL, buf + FRAME_UDP_PAYLOAD_OFF, cap - FRAME_UDP_PAYLOAD_OFF);
    cr_assert_gt(n, 0);
    struct frame_udp_addr a = {.src_ip = ip4(198, 18, 0, 1),
                               .dst_ip = g_conf.nodes[to].ipv4,
                               .src_port = T_CLIENT_PORT,
                               .dst_port = g_conf.nodes[to].udp_port};
    memcpy(a.src_mac, g_client_mac, 6);
    memcpy(a.dst_mac, g_conf.nodes[to].mac, 6);
    int len = frame_build_udp(buf, cap, &a, buf + FRAME_UDP_PAYLOAD_OFF, (size_t)n, 0);
    cr_assert_gt(len, 0);
    cr_assert(rte_pktmbuf_append(mb, (uint16_t)len) != NULL);
    cr_assert_eq(rte_ring_enqueue(g_rx[to], mb), 0);
}

static void send_req(int to, uint64_t client, uint64_t no, uint8_t op, const uint8_t *args,
                     uint32_t alen)
{
    send_req_flags(to, client, no, 0, op, args, alen);
}

/* Pumps until the client receives an answer to request_no (bounded: 5 s); decodes it into *m.
 * The frame stays allocated in *mb (m borrows it). Answers to older requests are skipped, as
 * clients do: a new leader also answers the committed batches it applies after its election. */
static void wait_answer_to(uint64_t request_no, struct rte_mbuf **mb, struct msg *m)
{
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline) {
        pump_once();
        if (rte_ring_dequeue(g_client, (void **)mb) != 0) {
            continue;
        }
        struct frame_info fi;
        int k = frame_parse(rte_pktmbuf_mtod(*mb, const uint8_t *), (*mb)->data_len, 0, &fi);
        cr_assert_eq(k, FRAME_KIND_UDP);
        cr_assert_eq(wire_decode(fi.payload, fi.payload_len, m, NULL, 0), 0);
        uint64_t no =
            m->hdr.type == MSG_REDIRECT ? m->u.redirect.request_no : m->u.reply.request_no;
        if (no == request_no) {
            return;
        }
        rte_pktmbuf_free(*mb);
    }
    cr_assert_fail("no answer to request %lu within 5 s", (unsigned long)request_no);
}

static void put(int to, uint64_t client, uint64_t no, const char *k, const char *v)
{
    uint8_t args[128];
    int n = sm_kv_encode_put(args, sizeof(args), k, strlen(k), v, strlen(v));
    cr_assert_gt(n, 0);
    send_req(to, client, no, SM_KV_OP_PUT, args, (uint32_t)n);
}

TestSuite(rt_repl, .init = setup, .fini = teardown, .timeout = 60);

#define T_REG_NO 777u /* the registration's nonce request number (answers match on it) */

/* Registers a session through replica `to` (the leader): the id comes back once the entry is
 * committed and applied. */
static uint64_t reg(int to)
{
    struct rte_mbuf *mb;
    struct msg m;
    send_req_flags(to, 0x5eed, T_REG_NO, MSG_REQ_REGISTER, MSG_OP_NOOP, NULL, 0);
    wait_answer_to(T_REG_NO, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.client_id, 0x5eed);
    cr_assert_eq(m.u.reply.result_len, 8);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++) {
        id |= (uint64_t)m.u.reply.result[i] << (8 * i);
    }
    rte_pktmbuf_free(mb);
    return id;
}

Test(rt_repl, unregistered_client_is_refused_as_expired)
{
    int l = wait_leader();
    put(l, 5, 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_SESSION_EXPIRED);
    rte_pktmbuf_free(mb);
    cr_assert_eq(sm_kv_count(g_sm[l]), 0, "never applied");
    uint64_t c = reg(l);
    cr_assert_neq(c, 5);
    put(l, c, 1, "k", "v");
    wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.client_id, c);
    rte_pktmbuf_free(mb);
}

Test(rt_repl, put_through_leader_reaches_every_replica)
{
    int l = wait_leader();
    put(l, reg(l), 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    uint64_t applied = g_rt[l].repl->applied;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline &&
           (g_rt[0].repl->applied < applied || g_rt[1].repl->applied < applied ||
            g_rt[2].repl->applied < applied)) {
        pump_once();
    }
    uint8_t d[T_N][MSG_DIGEST_LEN];
    for (int i = 0; i < T_N; i++) {
        cr_assert_geq(g_rt[i].repl->applied, applied, "replica %d applied", i + 1);
        g_sm[i]->ops->digest(g_sm[i], d[i]);
    }
    cr_assert_eq(memcmp(d[0], d[1], MSG_DIGEST_LEN), 0);
    cr_assert_eq(memcmp(d[0], d[2], MSG_DIGEST_LEN), 0);
    cr_assert_eq(sm_kv_count(g_sm[(l + 1) % T_N]), 1);
}

Test(rt_repl, get_after_put_reads_the_value)
{
    int l = wait_leader();
    struct rte_mbuf *mb;
    struct msg m;
    uint64_t c = reg(l);
    put(l, c, 1, "key", "value");
    wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    uint8_t args[64];
    int n = sm_kv_encode_get(args, sizeof(args), "key", 3);
    send_req(l, c, 2, SM_KV_OP_GET, args, (uint32_t)n);
    wait_answer_to(2, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.result_len, 5);
    cr_assert_eq(memcmp(m.u.reply.result, "value", 5), 0);
    rte_pktmbuf_free(mb);
    cr_assert_geq(g_rt[l].repl->view.reads, 1, "the GET went through ReadIndex");
}

Test(rt_repl, follower_redirects_to_the_leader)
{
    int l = wait_leader();
    int f = (l + 1) % T_N;
    put(f, 7, 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_REDIRECT);
    cr_assert_eq(m.u.redirect.leader_id, (uint32_t)l + 1);
    cr_assert_eq(m.u.redirect.leader_ipv4, g_conf.nodes[l].ipv4);
    cr_assert_eq(m.u.redirect.leader_port, g_conf.nodes[l].udp_port);
    rte_pktmbuf_free(mb);
}

Test(rt_repl, new_leader_after_leader_loss_keeps_acknowledged_writes)
{
    int l = wait_leader();
    struct rte_mbuf *mb;
    struct msg m;
    uint64_t c = reg(l);
    put(l, c, 1, "a", "1");
    wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    g_down[l] = true; /* the leader stops: no rounds, no frames */
    int l2 = wait_leader();
    cr_assert_neq(l2, l);
    uint8_t args[64];
    int n = sm_kv_encode_get(args, sizeof(args), "a", 1);
    send_req(l2, c, 2, SM_KV_OP_GET, args, (uint32_t)n);
    wait_answer_to(2, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK, "the acknowledged write survived");
    cr_assert_eq(m.u.reply.result_len, 1);
    rte_pktmbuf_free(mb);
    put(l2, c, 3, "b", "2");
    wait_answer_to(3, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK, "the new leader serves writes");
    rte_pktmbuf_free(mb);
    g_down[l] = false;
}

Test(rt_repl, restarted_replica_recovers_its_log_and_catches_up)
{
    int l = wait_leader();
    int f = (l + 1) % T_N;
    struct rte_mbuf *mb;
    struct msg m;
    uint64_t c = reg(l);
    put(l, c, 1, "x", "1");
    wait_answer_to(1, &mb, &m);
    rte_pktmbuf_free(mb);
    uint64_t applied = g_rt[l].repl->applied;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[f].repl->applied < applied) {
        pump_once();
    }
    /* Restart f from its data directory only: a fresh state machine and runtime. */
    rt_fini(&g_rt[f]);
    sm_destroy(g_sm[f]);
    char name[32];
    snprintf(name, sizeof(name), "op1_ring%d_b", f);
    int port = rte_eth_from_rings(name, &g_rx[f], 1, &g_tx[f], 1, 0);
    cr_assert_geq(port, 0);
    g_conf.nodes[f].port_index = port;
    struct sm_kv_config kc = {.value_max = g_conf.cluster.value_max};
    cr_assert_eq(sm_kv_create(&kc, &g_sm[f]), 0);
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(rt_init(&g_rt[f], &g_conf, (uint32_t)f + 1, g_sm[f], &e), 0, "%s", e.text);
    cr_assert_geq(raft_last_index(g_rt[f].repl->raft), applied, "log recovered from disk");
    put(l, c, 2, "y", "2");
    wait_answer_to(2, &mb, &m);
    rte_pktmbuf_free(mb);
    applied = g_rt[l].repl->applied;
    deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[f].repl->applied < applied) {
        pump_once();
    }
    cr_assert_geq(g_rt[f].repl->applied, applied);
    cr_assert_eq(sm_kv_count(g_sm[f]), 2);
}

/* A pktgen probe from the client to replica `to` (probe port, 16 probe bytes at payload
 * offset FRAME_PROBE_OFF carrying `seq`). */
static void send_probe(int to, uint32_t seq)
{
    uint8_t payload[30];
    memset(payload, 0xab, sizeof(payload));
    uint32_t magic = FRAME_PROBE_MAGIC; /* little-endian host (x86) */
    uint64_t tsc = 0x1122334455667788ull;
    memcpy(payload + FRAME_PROBE_OFF, &magic, 4);
    memcpy(payload + FRAME_PROBE_OFF + 4, &seq, 4);
    memcpy(payload + FRAME_PROBE_OFF + 8, &tsc, 8);
    struct rte_mbuf *mb = rte_pktmbuf_alloc(g_rt[to].port.pool);
    cr_assert(mb != NULL);
    uint8_t *buf = rte_pktmbuf_mtod(mb, uint8_t *);
    struct frame_udp_addr a = {.src_ip = ip4(198, 18, 0, 1),
                               .dst_ip = g_conf.nodes[to].ipv4,
                               .src_port = FRAME_PROBE_PORT,
                               .dst_port = FRAME_PROBE_PORT};
    memcpy(a.src_mac, g_client_mac, 6);
    memcpy(a.dst_mac, g_conf.nodes[to].mac, 6);
    int len = frame_build_udp(buf, rte_pktmbuf_tailroom(mb), &a, payload, sizeof(payload), 0);
    cr_assert_gt(len, 0);
    cr_assert(rte_pktmbuf_append(mb, (uint16_t)len) != NULL);
    cr_assert_eq(rte_ring_enqueue(g_rx[to], mb), 0);
}

Test(rt_repl, probe_to_leader_returns_once_its_entry_is_applied)
{
    g_conf.cluster.probe_port = FRAME_PROBE_PORT; /* read per frame by the RX stage */
    int l = wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t batches = rp->view.batches;
    uint64_t applied = rp->applied;
    send_probe(l, 42);
    struct rte_mbuf *mb = NULL;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (mb == NULL && rte_get_tsc_cycles() < deadline) {
        pump_once();
        (void)rte_ring_dequeue(g_client, (void **)&mb);
    }
    cr_assert(mb != NULL, "the probe did not come back within 5 s");
    /* It went through the sequencer and the log: a batch was proposed and applied. */
    cr_assert_gt(rp->view.batches, batches);
    cr_assert_gt(rp->applied, applied);
    struct frame_info fi;
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, 0, &fi),
                 FRAME_KIND_UDP);
    cr_assert_eq(fi.dst_ip, ip4(198, 18, 0, 1));
    cr_assert_eq(fi.src_ip, g_conf.nodes[l].ipv4);
    cr_assert_eq(memcmp(fi.dst_mac, g_client_mac, 6), 0);
    uint32_t seq;
    memcpy(&seq, fi.payload + FRAME_PROBE_OFF + 4, 4);
    cr_assert_eq(seq, 42u);
    cr_assert_eq(rp->probes_n, 0u);
    rte_pktmbuf_free(mb);
}

Test(rt_repl, probe_to_follower_is_dropped_and_counted)
{
    g_conf.cluster.probe_port = FRAME_PROBE_PORT;
    int l = wait_leader();
    int f = (l + 1) % T_N;
    send_probe(f, 7);
    for (int i = 0; i < 200; i++) {
        pump_once();
    }
    cr_assert_eq(g_rt[f].repl->probes_dropped, 1u);
    cr_assert_eq(rte_ring_count(g_client), 0u, "a follower answered a probe");
}
