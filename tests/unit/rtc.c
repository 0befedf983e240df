/* Test fixture shared by the replicated-runtime unit tests: three replicas of the runtime in
 * one process over net_ring ports, a switch moving frames between the rings by destination
 * MAC, every stage pumped on the calling thread, fresh temporary data directories. */
#include <pthread.h>
#include <sched.h>
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
#include <stdio.h>

#include "tests/unit/rtc.h"

struct conf g_conf;
struct rt g_rt[T_N];
struct sm *g_sm[T_N];
struct rte_ring *g_rx[T_N];
struct rte_ring *g_tx[T_N];
struct rte_ring *g_client; /* frames addressed to the client */
static char g_prefix[64];
char g_dirs[T_N][64];
bool g_down[T_N]; /* a "crashed" replica: not pumped, its frames are dropped */
const uint8_t g_client_mac[6] = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x01};
static bool g_apart;
static int g_log_run;
static pthread_t g_log_th[T_N];

uint32_t rtc_ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    uint8_t x[4] = {(uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)d};
    uint32_t v;
    memcpy(&v, x, 4);
    return v;
}

static void rtc_eal_up(const char *name)
{
    snprintf(g_prefix, sizeof(g_prefix), "--file-prefix=op1-%s-%d", name, (int)getpid());
    static char *argv[] = {"test_rtc",       "--no-pci", "--no-huge", "-m",          "256", NULL,
                           "--no-telemetry", "-l",       "0",         "--log-level", "3",   NULL};
    argv[5] = g_prefix;
    if (g_apart) { /* lcores 1 and 2 exist (the stages' lcores), on the host's CPUs 0-1 */
        argv[7] = "--lcores";
        argv[8] = "(0-2)@(0-1)";
    }
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_eal_init(11, argv, &e), 0, "%s", e.text);
    g_client = rte_ring_create("t_client", 1024, 0, 0);
    cr_assert(g_client != NULL);
}

static void rtc_conf_fill(const struct rtc_params *p)
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
        n->ipv4 = rtc_ip4(198, 18, 0, 11 + i);
        n->udp_port = (uint16_t)(T_PORT + i);
        snprintf(g_dirs[i], sizeof(g_dirs[i]), "/tmp/op1-%s-XXXXXX", p->name);
        cr_assert(mkdtemp(g_dirs[i]) != NULL);
        snprintf(n->data_dir, sizeof(n->data_dir), "%s", g_dirs[i]);
    }
    struct conf_replica *r = &g_conf.replica;
    conf_replica_defaults(r);
    r->rx_desc = r->tx_desc = 256;
    r->mbufs = 2047;
    r->ring_size = 256;
    r->election_ticks = p->election_ticks; /* ms at 1 ms ticks */
    r->heartbeat_ticks = p->heartbeat_ticks;
    r->tick_us = 1000;
    r->snapshot_entries = 0;
    if (p->apart) {
        r->seq_lcore = 1;
        r->log_lcore = 2;
    }
    g_conf.clients.auth = CONF_AUTH_NONE;
    g_conf.clients.sessions_max = 64;
}

static void *rtc_log_loop(void *arg)
{
    struct rt *rt = arg;
    while (__atomic_load_n(&g_log_run, __ATOMIC_ACQUIRE) != 0) {
        if (rt_repl_log_stage(rt) == 0) {
            (void)sched_yield();
        }
    }
    return NULL;
}

void rtc_log_threads_start(void)
{
    if (!g_apart) {
        return;
    }
    __atomic_store_n(&g_log_run, 1, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < T_N; i++) {
        cr_assert(g_rt[i].repl->seq_apart && g_rt[i].repl->log_apart);
        cr_assert_eq(pthread_create(&g_log_th[i], NULL, rtc_log_loop, &g_rt[i]), 0);
    }
}

void rtc_log_threads_stop(void)
{
    if (!g_apart || __atomic_load_n(&g_log_run, __ATOMIC_ACQUIRE) == 0) {
        return;
    }
    __atomic_store_n(&g_log_run, 0, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < T_N; i++) {
        pthread_join(g_log_th[i], NULL);
    }
}

void rtc_setup(const struct rtc_params *p)
{
    g_apart = p->apart;
    rtc_conf_fill(p);
    rtc_eal_up(p->name);
    cr_assert_eq(wire_init(), 0);
    for (uint32_t i = 0; i < T_N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t_rx%u", i);
        g_rx[i] = rte_ring_create(name, 1024, 0, 0);
        snprintf(name, sizeof(name), "t_tx%u", i);
        g_tx[i] = rte_ring_create(name, 1024, 0, 0);
        cr_assert(g_rx[i] != NULL && g_tx[i] != NULL);
        snprintf(name, sizeof(name), "rtc_ring%u", i);
        int port = rte_eth_from_rings(name, &g_rx[i], 1, &g_tx[i], 1, 0);
        cr_assert_geq(port, 0);
        g_conf.nodes[i].port_index = port;
        struct sm_kv_config kc = {.value_max = g_conf.cluster.value_max};
        cr_assert_eq(sm_kv_create(&kc, &g_sm[i]), 0);
        struct ordo_errmsg e = {{0}};
        cr_assert_eq(rt_init(&g_rt[i], &g_conf, i + 1, g_sm[i], &e), 0, "rt_init: %s", e.text);
        cr_assert(g_rt[i].repl != NULL, "more than one node: replicated mode");
    }
    rtc_log_threads_start();
}

void rtc_teardown(void)
{
    rtc_log_threads_stop();
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
uint32_t rtc_switch(void)
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

void rtc_pump_once(void)
{
    for (uint32_t i = 0; i < T_N; i++) {
        if (g_down[i]) {
            continue;
        }
        (void)rt_stage_rx(&g_rt[i]);
        if (g_rt[i].repl->seq_apart) {
            (void)rt_repl_seq_stage(&g_rt[i]);
        }
        (void)rt_repl_stage(&g_rt[i]);
        (void)rt_stage_tx(&g_rt[i]);
    }
    if (rtc_switch() == 0) {
        usleep(100);
    }
}

int rtc_leader(void)
{
    for (int i = 0; i < T_N; i++) {
        if (!g_down[i] && g_rt[i].repl->role == RAFT_LEADER) {
            return i;
        }
    }
    return -1;
}

/* Pumps until one leader is known to every replica (bounded: 10 s). */
int rtc_wait_leader(void)
{
    uint64_t deadline = rte_get_tsc_cycles() + 10 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline) {
        rtc_pump_once();
        int l = rtc_leader();
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

void rtc_send_req_flags(int to, uint64_t client, uint64_t no, uint16_t flags, uint8_t op,
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
    struct frame_udp_addr a = {.src_ip = rtc_ip4(198, 18, 0, 1),
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

void rtc_send_req(int to, uint64_t client, uint64_t no, uint8_t op, const uint8_t *args,
                  uint32_t alen)
{
    rtc_send_req_flags(to, client, no, 0, op, args, alen);
}

/* Pumps until the client receives an answer to request_no (bounded: 5 s); decodes it into *m.
 * The frame stays allocated in *mb (m borrows it). Answers to older requests are skipped, as
 * clients do: a new leader also answers the committed batches it applies after its election. */
void rtc_wait_answer_to(uint64_t request_no, struct rte_mbuf **mb, struct msg *m)
{
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline) {
        rtc_pump_once();
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

void rtc_put(int to, uint64_t client, uint64_t no, const char *k, const char *v)
{
    uint8_t args[128];
    int n = sm_kv_encode_put(args, sizeof(args), k, strlen(k), v, strlen(v));
    cr_assert_gt(n, 0);
    rtc_send_req(to, client, no, SM_KV_OP_PUT, args, (uint32_t)n);
}

#define RTC_REG_NO 777u /* the registration's nonce request number (answers match on it) */

/* Registers a session through replica `to` (the leader): the id comes back once the entry is
 * committed and applied. */
uint64_t rtc_reg(int to)
{
    struct rte_mbuf *mb;
    struct msg m;
    rtc_send_req_flags(to, 0x5eed, RTC_REG_NO, MSG_REQ_REGISTER, MSG_OP_NOOP, NULL, 0);
    rtc_wait_answer_to(RTC_REG_NO, &mb, &m);
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
