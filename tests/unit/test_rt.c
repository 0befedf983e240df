/* The replica runtime over a net_ring port (no NIC): frames go in through the port's RX ring
 * and replies come out of its TX ring, so the RX -> request ring -> apply -> TX path, the
 * checks on the way, ARP/ICMP answers, probes and the lcore mapping run for real. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include "drivers/net/net.h"
#include "engine/frame.h"
#include "engine/runtime/rt.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

#define T_CLUSTER 7u
#define T_PORT 7001u
#define T_CLIENT_PORT 40000u
#define T_KEYED_CLIENT 42u

static struct conf g_conf;
static struct conf_client_key g_keys[1];
static struct rt g_rt;
static struct sm *g_sm;
static struct rte_ring *g_rx;
static struct rte_ring *g_tx;
static const uint8_t g_mac[6] = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x0b};
static const uint8_t g_client_mac[6] = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x01};

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    uint8_t x[4] = {(uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)d};
    uint32_t v;
    memcpy(&v, x, 4);
    return v;
}

static char g_prefix[64];

/* --in-memory cannot go with --no-huge in DPDK 22.11: a per-process file prefix instead,
 * removed again in teardown. */
static void eal_up(void)
{
    snprintf(g_prefix, sizeof(g_prefix), "--file-prefix=on1-ut-%d", (int)getpid());
    static char *argv[] = {"test_rt",        "--no-pci", "--no-huge", "-m",          "128", NULL,
                           "--no-telemetry", "-l",       "0-1",       "--log-level", "3",   NULL};
    argv[5] = g_prefix;
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_eal_init(11, argv, &e), 0, "%s", e.text);
    g_rx = rte_ring_create("t_rx", 1024, 0, 0);
    g_tx = rte_ring_create("t_tx", 1024, 0, 0);
    cr_assert(g_rx != NULL && g_tx != NULL);
}

/* rt_fini closes the port, so every runtime gets a fresh ring port. */
static void ring_port(void)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof(name), "on1_ring%d", seq++);
    int port = rte_eth_from_rings(name, &g_rx, 1, &g_tx, 1, 0);
    cr_assert_geq(port, 0);
    g_conf.nodes[0].port_index = port;
}

static void conf_fill(void)
{
    memset(&g_conf, 0, sizeof(g_conf));
    snprintf(g_conf.path, sizeof(g_conf.path), "test.ini");
    g_conf.cluster.id = T_CLUSTER;
    memset(g_conf.cluster.key, 0x11, CONF_KEY_LEN);
    g_conf.cluster.value_max = 1024;
    g_conf.cluster.probe_port = FRAME_PROBE_PORT;
    g_conf.nodes_n = 2;
    struct conf_node *n = &g_conf.nodes[0];
    n->id = 1;
    memcpy(n->mac, g_mac, 6);
    n->ipv4 = ip4(198, 18, 0, 11);
    n->udp_port = T_PORT;
    n = &g_conf.nodes[1];
    n->id = 2;
    memcpy(n->mac, (uint8_t[6]){0x02, 0, 0xc6, 0x12, 0, 0x0c}, 6);
    n->ipv4 = ip4(198, 18, 0, 12);
    n->udp_port = T_PORT + 1;
    struct conf_replica *r = &g_conf.replica;
    r->lcores_n = 2;
    r->lcores[0] = 0;
    r->lcores[1] = 1;
    r->rx_queues = r->tx_queues = 1;
    r->rx_burst = r->tx_burst = 32;
    r->rx_desc = r->tx_desc = 256;
    r->mbufs = 2047;
    r->ring_size = 256;
    r->idle = CONF_IDLE_BACKOFF;
    g_conf.clients.auth = CONF_AUTH_OPTIONAL;
    g_conf.clients.allow_n = 1;
    g_conf.clients.allow[0] = (struct conf_subnet){ip4(198, 18, 0, 0), ip4(255, 255, 255, 0), 24};
    g_conf.clients.sessions_max = 64;
    g_keys[0].client_id = T_KEYED_CLIENT;
    memset(g_keys[0].key, 0x42, CONF_KEY_LEN);
    g_conf.clients.keys = g_keys;
    g_conf.clients.keys_n = 1;
}

static void rt_up(void)
{
    struct ordo_errmsg e = {{0}};
    struct sm_kv_config kc = {.value_max = g_conf.cluster.value_max};
    cr_assert_eq(wire_init(), 0);
    cr_assert_eq(sm_kv_create(&kc, &g_sm), 0);
    ring_port();
    cr_assert_eq(rt_init(&g_rt, &g_conf, 1, g_sm, &e), 0, "rt_init: %s", e.text);
    net_stats_reset();
}

static void setup(void)
{
    conf_fill();
    eal_up();
    rt_up();
}

static void teardown(void)
{
    rt_fini(&g_rt);
    sm_destroy(g_sm);
    rte_eal_cleanup();
    char dir[128];
    snprintf(dir, sizeof(dir), "/var/run/dpdk/%s", g_prefix + strlen("--file-prefix="));
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)system(cmd);
}

static void client_addr(struct frame_udp_addr *a, uint32_t src_ip, uint16_t dst_port)
{
    memcpy(a->src_mac, g_client_mac, 6);
    memcpy(a->dst_mac, g_mac, 6);
    a->src_ip = src_ip;
    a->dst_ip = ip4(198, 18, 0, 11);
    a->src_port = T_CLIENT_PORT;
    a->dst_port = dst_port;
}

/* A frame holding msg (encoded with key, or unauthenticated) from src_ip. */
static struct rte_mbuf *mk_msg(const struct msg *m, const struct wire_key *key, uint32_t src_ip)
{
    struct rte_mbuf *mb = rte_pktmbuf_alloc(g_rt.port.pool);
    cr_assert(mb != NULL);
    uint8_t *buf = rte_pktmbuf_mtod(mb, uint8_t *);
    size_t cap = rte_pktmbuf_tailroom(mb);
    int n = wire_encode(m, key, buf + FRAME_UDP_PAYLOAD_OFF, cap - FRAME_UDP_PAYLOAD_OFF);
    cr_assert_gt(n, 0, "wire_encode: %d", n);
    struct frame_udp_addr a;
    client_addr(&a, src_ip, T_PORT);
    int len = frame_build_udp(buf, cap, &a, buf + FRAME_UDP_PAYLOAD_OFF, (size_t)n, 0);
    cr_assert_gt(len, 0);
    cr_assert(rte_pktmbuf_append(mb, (uint16_t)len) != NULL);
    return mb;
}

static struct rte_mbuf *mk_req(uint64_t client, uint64_t no, uint8_t op, const uint8_t *args,
                               uint32_t alen, const struct wire_key *key, uint32_t src_ip)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = T_CLUSTER;
    m.u.request = (struct msg_client_request){client, no, 0, op, alen, args};
    return mk_msg(&m, key, src_ip);
}

/* A registration (MSG_REQ_REGISTER): client and no are the nonce, or with a key the client's
 * own id and its floor request number. */
static struct rte_mbuf *mk_reg(uint64_t client, uint64_t no, const struct wire_key *key,
                               uint32_t src_ip)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = T_CLUSTER;
    m.u.request = (struct msg_client_request){client, no, MSG_REQ_REGISTER, MSG_OP_NOOP, 0, NULL};
    return mk_msg(&m, key, src_ip);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static struct rte_mbuf *mk_put(uint64_t client, uint64_t no, const char *k, const char *v)
{
    static uint8_t args[512];
    int n = sm_kv_encode_put(args, sizeof(args), k, strlen(k), v, strlen(v));
    cr_assert_gt(n, 0);
    return mk_req(client, no, SM_KV_OP_PUT, args, (uint32_t)n, NULL, ip4(198, 18, 0, 1));
}

static struct rte_mbuf *mk_get(uint64_t client, uint64_t no, const char *k)
{
    static uint8_t args[512];
    int n = sm_kv_encode_get(args, sizeof(args), k, strlen(k));
    cr_assert_gt(n, 0);
    return mk_req(client, no, SM_KV_OP_GET, args, (uint32_t)n, NULL, ip4(198, 18, 0, 1));
}

static void inject(struct rte_mbuf *m)
{
    cr_assert_eq(rte_ring_enqueue(g_rx, m), 0);
}

/* Runs every stage on this thread until the port's RX ring and the runtime rings are empty,
 * then takes at most max frames off the port's TX ring. */
static unsigned pump(struct rte_mbuf **out, unsigned max)
{
    for (int round = 0; round < 64; round++) {
        uint32_t w = rt_stage_rx(&g_rt) + rt_stage_apply(&g_rt) + rt_stage_tx(&g_rt);
        if (w == 0 && rte_ring_count(g_rx) == 0) {
            break;
        }
    }
    return rte_ring_dequeue_burst(g_tx, (void **)out, max, NULL);
}

/* Parses a reply frame into *fi and *m (pointers borrow mb). */
static void parse_reply(struct rte_mbuf *mb, struct frame_info *fi, struct msg *m)
{
    int k = frame_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, 0, fi);
    cr_assert_eq(k, FRAME_KIND_UDP, "frame_parse: %d", k);
    cr_assert_eq(wire_decode(fi->payload, fi->payload_len, m, NULL, 0), 0);
    cr_assert_eq(m->hdr.type, MSG_CLIENT_REPLY);
}

static void free_all(struct rte_mbuf **m, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        rte_pktmbuf_free(m[i]);
    }
}

TestSuite(rt, .init = setup, .fini = teardown, .timeout = 30);

/* Registers a session (the single replica applies at once); returns its client id. */
static uint64_t reg(void)
{
    struct rte_mbuf *out[2];
    struct frame_info fi;
    struct msg m;
    inject(mk_reg(0x5eed, 3, NULL, ip4(198, 18, 0, 1)));
    cr_assert_eq(pump(out, 2), 1);
    parse_reply(out[0], &fi, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.client_id, 0x5eed, "the nonce comes back");
    cr_assert_eq(m.u.reply.request_no, 3);
    cr_assert_eq(m.u.reply.result_len, 8);
    uint64_t id = le64(m.u.reply.result);
    free_all(out, 1);
    net_stats_reset();
    return id;
}

Test(rt, registrations_get_distinct_client_ids)
{
    uint64_t a = reg();
    uint64_t b = reg();
    cr_assert_neq(a, b);
    cr_assert_eq(a ^ b, (1u << 16) ^ (2u << 16), "indices 1 and 2 under one salt");
}

Test(rt, unknown_client_refused_as_expired_and_not_applied)
{
    struct rte_mbuf *out[4];
    struct frame_info fi;
    struct msg m;
    inject(mk_put(5, 1, "k", "v"));
    inject(mk_put(5, 2, "k", "v"));
    unsigned n = pump(out, 4);
    cr_assert_eq(n, 2);
    for (unsigned i = 0; i < n; i++) {
        parse_reply(out[i], &fi, &m);
        cr_assert_eq(m.u.reply.status, MSG_STATUS_SESSION_EXPIRED);
    }
    cr_assert_eq(sm_kv_count(g_sm), 0);
    free_all(out, n);
}

Test(rt, put_then_get_answered)
{
    struct rte_mbuf *out[8];
    struct frame_info fi;
    struct msg m;
    uint64_t c = reg();
    inject(mk_put(c, 1, "key", "value"));
    inject(mk_get(c, 2, "key"));
    unsigned n = pump(out, 8);
    cr_assert_eq(n, 2);
    parse_reply(out[0], &fi, &m);
    cr_assert_eq(m.u.reply.request_no, 1);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    parse_reply(out[1], &fi, &m);
    cr_assert_eq(m.u.reply.client_id, c);
    cr_assert_eq(m.u.reply.request_no, 2);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.result_len, 5);
    cr_assert_arr_eq(m.u.reply.result, "value", 5);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 2);
    cr_assert_eq(net_stats_get(NET_CTR_REPLIES), 2);
    free_all(out, n);
}

Test(rt, reply_goes_back_to_sender)
{
    struct rte_mbuf *out[2];
    struct frame_info fi;
    struct msg m;
    inject(mk_get(reg(), 1, "absent"));
    cr_assert_eq(pump(out, 2), 1);
    parse_reply(out[0], &fi, &m);
    cr_assert_arr_eq(fi.dst_mac, g_client_mac, 6);
    cr_assert_arr_eq(fi.src_mac, g_mac, 6);
    cr_assert_eq(fi.dst_ip, ip4(198, 18, 0, 1));
    cr_assert_eq(fi.src_ip, ip4(198, 18, 0, 11));
    cr_assert_eq(fi.dst_port, T_CLIENT_PORT);
    cr_assert_eq(fi.src_port, T_PORT);
    cr_assert_eq(m.hdr.sender, 1);
    cr_assert_eq(m.hdr.cluster_id, T_CLUSTER);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_NOT_FOUND);
    free_all(out, 1);
}

Test(rt, burst_answered_in_order)
{
    struct rte_mbuf *out[64];
    char key[16];
    uint64_t c = reg();
    for (unsigned i = 1; i <= 40; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        inject(mk_put(c, i, key, "v"));
    }
    unsigned n = pump(out, 64);
    cr_assert_eq(n, 40);
    for (unsigned i = 0; i < n; i++) {
        struct frame_info fi;
        struct msg m;
        parse_reply(out[i], &fi, &m);
        cr_assert_eq(m.u.reply.request_no, i + 1);
        cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    }
    cr_assert_eq(sm_kv_count(g_sm), 40);
    free_all(out, n);
}

Test(rt, retried_request_gets_saved_reply_and_is_not_reapplied)
{
    struct rte_mbuf *out[4];
    struct frame_info fi;
    struct msg m;
    uint64_t c = reg();
    inject(mk_put(c, 1, "k", "one"));
    inject(mk_put(c, 2, "k", "two"));
    inject(mk_put(c, 1, "k", "one")); /* stale retry of request 1 */
    inject(mk_get(c, 3, "k"));
    unsigned n = pump(out, 4);
    cr_assert_eq(n, 4);
    parse_reply(out[2], &fi, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_SESSION_EXPIRED);
    parse_reply(out[3], &fi, &m);
    cr_assert_eq(m.u.reply.result_len, 3);
    cr_assert_arr_eq(m.u.reply.result, "two", 3);
    free_all(out, n);
}

Test(rt, duplicate_request_answered_from_session)
{
    struct rte_mbuf *out[4];
    struct frame_info fi;
    struct msg m;
    uint64_t c = reg();
    inject(mk_put(c, 1, "d", "x"));
    inject(mk_put(c, 1, "d", "x"));
    unsigned n = pump(out, 4);
    cr_assert_eq(n, 2);
    parse_reply(out[1], &fi, &m);
    cr_assert_eq(m.u.reply.request_no, 1);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(sm_kv_count(g_sm), 1);
    free_all(out, n);
}

static struct rte_mbuf *mk_raw(const uint8_t *bytes, size_t len)
{
    struct rte_mbuf *mb = rte_pktmbuf_alloc(g_rt.port.pool);
    cr_assert(mb != NULL);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(mb, (uint16_t)len);
    cr_assert(p != NULL);
    memcpy(p, bytes, len);
    return mb;
}

static struct rte_mbuf *mk_probe(uint32_t index)
{
    uint8_t payload[30];
    memset(payload, 0xab, sizeof(payload));
    uint32_t magic = FRAME_PROBE_MAGIC; /* little-endian host (x86) */
    uint64_t tsc = 0x1122334455667788ull;
    memcpy(payload + FRAME_PROBE_OFF, &magic, 4);
    memcpy(payload + FRAME_PROBE_OFF + 4, &index, 4);
    memcpy(payload + FRAME_PROBE_OFF + 8, &tsc, 8);
    uint8_t buf[128];
    struct frame_udp_addr a;
    client_addr(&a, ip4(198, 18, 0, 1), FRAME_PROBE_PORT);
    int len = frame_build_udp(buf, sizeof(buf), &a, payload, sizeof(payload), 0);
    cr_assert_eq(len, 72);
    return mk_raw(buf, (size_t)len);
}

Test(rt, probe_returned_with_addresses_swapped)
{
    struct rte_mbuf *out[4];
    struct rte_mbuf *p = mk_probe(17);
    uint8_t sent[72];
    memcpy(sent, rte_pktmbuf_mtod(p, uint8_t *), 72);
    inject(p);
    cr_assert_eq(pump(out, 4), 1);
    struct frame_info fi;
    cr_assert_eq(out[0]->data_len, 72);
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(out[0], uint8_t *), 72, 0, &fi), FRAME_KIND_UDP);
    cr_assert_arr_eq(fi.dst_mac, g_client_mac, 6);
    cr_assert_eq(fi.dst_ip, ip4(198, 18, 0, 1));
    cr_assert_eq(fi.src_port, FRAME_PROBE_PORT);
    cr_assert_eq(fi.dst_port, T_CLIENT_PORT);
    cr_assert_arr_eq(fi.payload + FRAME_PROBE_OFF, sent + 42 + FRAME_PROBE_OFF, 16);
    cr_assert_eq(net_stats_get(NET_CTR_PROBES), 1);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 1);
    cr_assert_eq(net_stats_get(NET_CTR_REPLIES), 1);
    free_all(out, 1);
}

Test(rt, probes_and_requests_keep_their_order)
{
    struct rte_mbuf *out[8];
    inject(mk_probe(1));
    inject(mk_put(5, 1, "a", "b"));
    inject(mk_probe(2));
    cr_assert_eq(pump(out, 8), 3);
    struct frame_info fi;
    struct msg m;
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(out[0], uint8_t *), 72, 0, &fi), FRAME_KIND_UDP);
    cr_assert_eq(fi.src_port, FRAME_PROBE_PORT);
    parse_reply(out[1], &fi, &m);
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(out[2], uint8_t *), 72, 0, &fi), FRAME_KIND_UDP);
    uint32_t index;
    memcpy(&index, fi.payload + FRAME_PROBE_OFF + 4, 4);
    cr_assert_eq(index, 2);
    free_all(out, 3);
}

Test(rt, arp_request_for_us_answered)
{
    uint8_t buf[64];
    int len = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REQUEST, g_client_mac,
                              ip4(198, 18, 0, 1), NULL, ip4(198, 18, 0, 11));
    cr_assert_gt(len, 0);
    inject(mk_raw(buf, (size_t)len));
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 1);
    struct frame_info fi;
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(out[0], uint8_t *), out[0]->data_len, 0, &fi),
                 FRAME_KIND_ARP);
    cr_assert_eq(fi.arp_op, FRAME_ARP_OP_REPLY);
    cr_assert_arr_eq(fi.arp_sha, g_mac, 6);
    cr_assert_eq(fi.src_ip, ip4(198, 18, 0, 11));
    cr_assert_arr_eq(fi.dst_mac, g_client_mac, 6);
    cr_assert_eq(net_stats_get(NET_CTR_ARP_REPLIES), 1);
    free_all(out, 1);
}

Test(rt, arp_for_another_address_ignored)
{
    uint8_t buf[64];
    int len = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REQUEST, g_client_mac,
                              ip4(198, 18, 0, 1), NULL, ip4(198, 18, 0, 99));
    inject(mk_raw(buf, (size_t)len));
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_ARP_REPLIES), 0);
}

Test(rt, icmp_echo_answered)
{
    uint8_t buf[128];
    struct frame_udp_addr a;
    client_addr(&a, ip4(198, 18, 0, 1), 0);
    int len =
        frame_build_icmp_echo(buf, sizeof(buf), &a, 0x1234, 7, (const uint8_t *)"ping!", 5, 0);
    cr_assert_gt(len, 0);
    inject(mk_raw(buf, (size_t)len));
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 1);
    const uint8_t *r = rte_pktmbuf_mtod(out[0], const uint8_t *);
    cr_assert_arr_eq(r, g_client_mac, 6);
    const uint8_t *icmp = r + FRAME_ETH_HLEN + FRAME_IPV4_HLEN;
    cr_assert_eq(icmp[0], FRAME_ICMP_ECHO_REPLY);
    cr_assert_eq(frame_inet_csum(icmp, (size_t)(out[0]->data_len - 34)), 0);
    cr_assert_eq(net_stats_get(NET_CTR_ICMP_ECHO), 1);
    free_all(out, 1);
}

Test(rt, truncated_frame_counted_and_dropped)
{
    struct rte_mbuf *good = mk_put(5, 1, "k", "v");
    uint8_t bytes[256];
    memcpy(bytes, rte_pktmbuf_mtod(good, uint8_t *), good->data_len);
    uint16_t full = good->data_len;
    rte_pktmbuf_free(good);
    for (uint16_t cut = 1; cut < full; cut += 7) {
        inject(mk_raw(bytes, cut));
    }
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_gt(net_stats_malformed(), 0);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 0);
}

Test(rt, bad_magic_and_wrong_cluster_counted)
{
    struct rte_mbuf *a = mk_put(5, 1, "k", "v");
    rte_pktmbuf_mtod(a, uint8_t *)[FRAME_UDP_PAYLOAD_OFF] ^= 0xff;
    /* Fix the UDP checksum: zero means none. */
    rte_pktmbuf_mtod(a, uint8_t *)[40] = 0;
    rte_pktmbuf_mtod(a, uint8_t *)[41] = 0;
    inject(a);
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = T_CLUSTER + 1;
    m.u.request = (struct msg_client_request){5, 1, 0, MSG_OP_NOOP, 0, NULL};
    inject(mk_msg(&m, NULL, ip4(198, 18, 0, 1)));
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_MALFORMED_MAGIC), 1);
    cr_assert_eq(net_stats_get(NET_CTR_MALFORMED_CLUSTER), 1);
}

Test(rt, bad_udp_checksum_counted)
{
    struct rte_mbuf *a = mk_put(5, 1, "k", "v");
    rte_pktmbuf_mtod(a, uint8_t *)[a->data_len - 1] ^= 0x01;
    inject(a);
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_MALFORMED_CSUM), 1);
}

static struct rte_mbuf *mk_peer(const struct wire_key *key)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_TIMEOUT_NOW;
    m.hdr.cluster_id = T_CLUSTER;
    m.hdr.sender = 2;
    m.u.timeout_now.term = 3;
    return mk_msg(&m, key, ip4(198, 18, 0, 12));
}

Test(rt, peer_frame_without_cluster_mac_dropped)
{
    struct wire_key wrong;
    memset(wrong.bytes, 0x22, sizeof(wrong.bytes));
    inject(mk_peer(&wrong));
    struct wire_key right;
    memset(right.bytes, 0x11, sizeof(right.bytes));
    inject(mk_peer(&right));
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_MAC_FAILURES), 1);
    cr_assert_eq(net_stats_get(NET_CTR_PEER_DROPS), 1);
}

Test(rt, unauthenticated_client_outside_subnets_refused)
{
    inject(mk_req(5, 1, MSG_OP_NOOP, NULL, 0, NULL, ip4(198, 19, 0, 1)));
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_UNAUTHORIZED), 1);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 0);
}

Test(rt, keyed_client_verified_and_answered_with_mac)
{
    struct wire_key k;
    memset(k.bytes, 0x42, sizeof(k.bytes));
    /* An authenticated client registers its own id (its MAC identity), request 1 the floor. */
    inject(mk_reg(T_KEYED_CLIENT, 1, &k, ip4(198, 19, 0, 1)));
    inject(mk_req(T_KEYED_CLIENT, 2, MSG_OP_NOOP, NULL, 0, &k, ip4(198, 19, 0, 1)));
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 2);
    struct frame_info fi;
    struct msg m;
    parse_reply(out[0], &fi, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.result_len, 8);
    cr_assert_eq(le64(m.u.reply.result), T_KEYED_CLIENT);
    cr_assert_eq(wire_verify(fi.payload, fi.payload_len, &k), 0);
    parse_reply(out[1], &fi, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.request_no, 2);
    cr_assert_eq(wire_verify(fi.payload, fi.payload_len, &k), 0);
    free_all(out, 2);
}

Test(rt, keyed_client_with_bad_mac_refused)
{
    struct wire_key k;
    memset(k.bytes, 0x43, sizeof(k.bytes));
    inject(mk_req(T_KEYED_CLIENT, 1, MSG_OP_NOOP, NULL, 0, &k, ip4(198, 18, 0, 1)));
    inject(mk_req(77, 1, MSG_OP_NOOP, NULL, 0, &k, ip4(198, 18, 0, 1))); /* no key known */
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_MAC_FAILURES), 1);
    cr_assert_eq(net_stats_get(NET_CTR_UNAUTHORIZED), 1);
}

Test(rt, frame_for_another_mac_ignored)
{
    struct rte_mbuf *a = mk_put(5, 1, "k", "v");
    rte_pktmbuf_mtod(a, uint8_t *)[5] ^= 0x01;
    inject(a);
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
    cr_assert_eq(net_stats_get(NET_CTR_RX_IGNORED), 1);
}

Test(rt, full_request_ring_drops_and_counts)
{
    /* Restart with a 64-entry ring and 128-frame RX bursts. */
    rt_fini(&g_rt);
    sm_destroy(g_sm);
    g_conf.replica.ring_size = 64;
    g_conf.replica.rx_burst = 128;
    rt_up();
    for (unsigned i = 1; i <= 128; i++) {
        inject(mk_put(5, i, "k", "v"));
    }
    cr_assert_eq(rt_stage_rx(&g_rt), 128);
    uint64_t queued = net_stats_get(NET_CTR_REQUESTS);
    cr_assert_eq(queued, 63); /* an rte_ring of size 64 holds 63 */
    cr_assert_eq(net_stats_get(NET_CTR_RING_FULL), 128 - queued);
    struct rte_mbuf *out[128];
    cr_assert_eq(pump(out, 128), 63);
    free_all(out, 63);
}

/* ---- stages on lcores ---------------------------------------------------------------- */

/* Registers through the running stages (bounded: 10 s); returns the id, 0 on failure. */
static uint64_t drive_register(void)
{
    struct rte_mbuf *out[1];
    struct timespec t0, t;
    uint64_t id = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (rte_ring_enqueue(g_rx, mk_reg(0x5eed, 1, NULL, ip4(198, 18, 0, 1))) != 0) {
        sched_yield();
    }
    for (;;) {
        if (rte_ring_dequeue_burst(g_tx, (void **)out, 1, NULL) == 1) {
            struct frame_info fi;
            struct msg m;
            if (frame_parse(rte_pktmbuf_mtod(out[0], const uint8_t *), out[0]->data_len, 0, &fi) ==
                    FRAME_KIND_UDP &&
                wire_decode(fi.payload, fi.payload_len, &m, NULL, 0) == 0 &&
                m.hdr.type == MSG_CLIENT_REPLY && m.u.reply.result_len == 8) {
                id = le64(m.u.reply.result);
            }
            rte_pktmbuf_free(out[0]);
            return id;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) {
            return 0;
        }
        sched_yield();
    }
}

static void *drive(void *arg)
{
    unsigned *answered = arg;
    struct rte_mbuf *out[32];
    uint64_t c = drive_register();
    for (unsigned i = 1; i <= 100; i++) {
        while (rte_ring_enqueue(g_rx, mk_put(c, i, "k", "v")) != 0) {
            sched_yield();
        }
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (*answered < 100) {
        unsigned n = rte_ring_dequeue_burst(g_tx, (void **)out, 32, NULL);
        free_all(out, n);
        *answered += n;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) {
            break;
        }
        if (n == 0) {
            sched_yield();
        }
    }
    rt_request_stop(&g_rt);
    return NULL;
}

static void run_mapped(uint32_t rx, uint32_t apply, uint32_t tx)
{
    rt_fini(&g_rt);
    sm_destroy(g_sm);
    g_conf.replica.rx_lcore = rx;
    g_conf.replica.apply_lcore = apply;
    g_conf.replica.tx_lcore = tx;
    rt_up();
    unsigned answered = 0;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, drive, &answered), 0);
    cr_assert_eq(rt_run(&g_rt), 0);
    pthread_join(th, NULL);
    cr_assert_eq(answered, 100);
    cr_assert_eq(sm_kv_count(g_sm), 1);
}

Test(rt, all_stages_on_the_main_lcore)
{
    run_mapped(0, 0, 0);
}

Test(rt, stages_split_over_two_lcores)
{
    run_mapped(1, 0, 1);
}

Test(rt, all_stages_on_a_worker_lcore)
{
    run_mapped(1, 1, 1);
}

Test(rt, stage_on_a_missing_lcore_is_a_config_error)
{
    rt_fini(&g_rt);
    struct ordo_errmsg e = {{0}};
    g_conf.replica.apply_lcore = 5;
    cr_assert_eq(rt_init(&g_rt, &g_conf, 1, g_sm, &e), ORDO_ECONFIG);
    cr_assert(strstr(e.text, "apply_lcore") != NULL, "%s", e.text);
    cr_assert_eq(rt_init(&g_rt, &g_conf, 9, g_sm, &e), ORDO_ECONFIG);
    g_conf.replica.apply_lcore = 0;
    ring_port();
    cr_assert_eq(rt_init(&g_rt, &g_conf, 1, g_sm, &e), 0, "%s", e.text);
}

Test(rt, missing_port_named_in_the_error)
{
    rt_fini(&g_rt);
    struct ordo_errmsg e = {{0}};
    g_conf.nodes[0].port_index = -1;
    snprintf(g_conf.nodes[0].port, sizeof(g_conf.nodes[0].port), "net_af_xdp7");
    cr_assert_eq(rt_init(&g_rt, &g_conf, 1, g_sm, &e), -ENODEV);
    cr_assert(strstr(e.text, "net_af_xdp7") != NULL, "%s", e.text);
    g_conf.nodes[0].port_index = 99;
    cr_assert_eq(rt_init(&g_rt, &g_conf, 1, g_sm, &e), -ENODEV);
    cr_assert(strstr(e.text, "port 99") != NULL, "%s", e.text);
}

Test(rt, ring_port_found_by_name)
{
    rt_fini(&g_rt);
    struct ordo_errmsg e = {{0}};
    ring_port();
    uint16_t pid = (uint16_t)g_conf.nodes[0].port_index;
    cr_assert_eq(rte_eth_dev_get_name_by_port(pid, g_conf.nodes[0].port), 0);
    g_conf.nodes[0].port_index = -1;
    cr_assert_eq(rt_init(&g_rt, &g_conf, 1, g_sm, &e), 0, "%s", e.text);
    cr_assert_eq(g_rt.port.port_id, pid);
    cr_assert_arr_eq(g_rt.port.mac.addr_bytes, g_mac, 6);
}

Test(rt, peer_without_static_mac_resolved_by_arp)
{
    rt_fini(&g_rt);
    sm_destroy(g_sm);
    memset(g_conf.nodes[1].mac, 0, 6);
    rt_up();
    uint32_t peer_ip = g_conf.nodes[1].ipv4;
    struct rte_ether_addr mac;
    cr_assert_eq(net_local_lookup(&g_rt.local, peer_ip, &mac), ORDO_ENOTFOUND);
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 1); /* the ARP request for the peer */
    struct frame_info fi;
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(out[0], uint8_t *), out[0]->data_len, 0, &fi),
                 FRAME_KIND_ARP);
    cr_assert_eq(fi.arp_op, FRAME_ARP_OP_REQUEST);
    cr_assert_eq(fi.dst_ip, peer_ip);
    free_all(out, 1);
    cr_assert_eq(pump(out, 4), 0); /* rate-limited: no second request at once */
    const uint8_t peer_mac[6] = {0x02, 0, 0xc6, 0x12, 0, 0x0c};
    uint8_t buf[64];
    int len = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REPLY, peer_mac, peer_ip, g_mac,
                              g_conf.nodes[0].ipv4);
    cr_assert_gt(len, 0);
    inject(mk_raw(buf, (size_t)len));
    cr_assert_eq(pump(out, 4), 0);
    cr_assert_eq(net_local_lookup(&g_rt.local, peer_ip, &mac), 0);
    cr_assert_arr_eq(mac.addr_bytes, peer_mac, 6);
    cr_assert_eq(net_stats_get(NET_CTR_ARP_LEARNED), 1);
}

Test(rt, static_peer_mac_known_without_arp)
{
    struct rte_ether_addr mac;
    cr_assert_eq(net_local_lookup(&g_rt.local, g_conf.nodes[1].ipv4, &mac), 0);
    cr_assert_arr_eq(mac.addr_bytes, g_conf.nodes[1].mac, 6);
    struct rte_mbuf *out[2];
    cr_assert_eq(pump(out, 2), 0);
}

/* ---- multi-request frames: split into requests, answers packed per client address ---- */

/* A multi-request frame from 198.18.0.1 holding reqs[0..n), item i MAC'd under keys[i]. */
static struct rte_mbuf *mk_multi(const struct msg_client_request *reqs,
                                 const struct wire_key *const *keys, uint32_t n)
{
    struct rte_mbuf *mb = rte_pktmbuf_alloc(g_rt.port.pool);
    cr_assert(mb != NULL);
    uint8_t *buf = rte_pktmbuf_mtod(mb, uint8_t *);
    size_t cap = RTE_MIN(rte_pktmbuf_tailroom(mb), (size_t)1514);
    struct wire_multi_wr w;
    cr_assert_eq(wire_multi_start(&w, MSG_CLIENT_MULTI_REQUEST, T_CLUSTER, 0,
                                  buf + FRAME_UDP_PAYLOAD_OFF, cap - FRAME_UDP_PAYLOAD_OFF),
                 0);
    for (uint32_t i = 0; i < n; i++) {
        struct msg m;
        memset(&m, 0, sizeof(m));
        m.hdr.type = MSG_CLIENT_REQUEST;
        m.u.request = reqs[i];
        cr_assert_eq(wire_multi_add_msg(&w, &m, keys != NULL ? keys[i] : NULL), 0);
    }
    int len = wire_multi_finish(&w);
    struct frame_udp_addr a;
    client_addr(&a, ip4(198, 18, 0, 1), T_PORT);
    len = frame_build_udp(buf, cap, &a, buf + FRAME_UDP_PAYLOAD_OFF, (size_t)len, 0);
    cr_assert_gt(len, 0);
    cr_assert(rte_pktmbuf_append(mb, (uint16_t)len) != NULL);
    return mb;
}

/* Decodes the one multi-reply in mb into its n items (pointers borrow mb). */
static uint32_t parse_multi(struct rte_mbuf *mb, struct msg *items, const uint8_t **raw,
                            size_t *raw_len, uint32_t max)
{
    struct frame_info fi;
    struct msg m;
    int k = frame_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, 0, &fi);
    cr_assert_eq(k, FRAME_KIND_UDP);
    cr_assert_eq(fi.dst_port, T_CLIENT_PORT);
    cr_assert_eq(wire_decode(fi.payload, fi.payload_len, &m, NULL, 0), 0);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_MULTI_REPLY);
    struct wire_multi_iter it;
    wire_multi_iter_init(&it, &m);
    uint32_t n = 0;
    while (n < max && wire_multi_next(&it, &items[n], &raw[n], &raw_len[n]) == 1) {
        n++;
    }
    cr_assert_eq(n, m.u.multi.n);
    return n;
}

/* conf_load's mbuf count must cover what the port's pool can park in each stage lcore's
 * cache: DPDK lets a cache fill up to its flush threshold before it spills to the pool. */
Test(rt, mbufs_need_covers_the_pools_per_lcore_cache)
{
    struct conf_mbuf_need need;
    conf_mbufs_need(&g_conf, &need);
    const struct rte_mempool_cache *c = rte_mempool_default_cache(g_rt.port.pool, rte_lcore_id());
    cr_assert_not_null(c, "the port's pool has a per-lcore cache");
    cr_assert_eq(need.lcores_n, 1);
    cr_assert_geq(need.caches, c->flushthresh, "counted %lu, a cache holds up to %u",
                  (unsigned long)need.caches, c->flushthresh);
}

Test(rt, multi_request_split_applied_and_answered_in_one_multi_reply)
{
    uint64_t id[3] = {reg(), reg(), reg()};
    uint8_t args[3][64];
    struct msg_client_request reqs[4];
    for (uint32_t i = 0; i < 3; i++) {
        char k[8] = {'k', (char)('0' + i), 0};
        int n = sm_kv_encode_put(args[i], sizeof(args[i]), k, 2, "value", 5);
        reqs[i] = (struct msg_client_request){id[i], 1, 0, SM_KV_OP_PUT, (uint32_t)n, args[i]};
    }
    uint8_t get[32];
    int gn = sm_kv_encode_get(get, sizeof(get), "k2", 2);
    reqs[3] = (struct msg_client_request){id[0], 2, 0, SM_KV_OP_GET, (uint32_t)gn, get};
    inject(mk_multi(reqs, NULL, 4));
    struct rte_mbuf *out[8];
    cr_assert_eq(pump(out, 8), 1, "four answers for one address leave as one frame");
    struct msg items[8];
    const uint8_t *raw[8];
    size_t raw_len[8];
    cr_assert_eq(parse_multi(out[0], items, raw, raw_len, 8), 4);
    for (uint32_t i = 0; i < 4; i++) {
        cr_assert_eq(items[i].hdr.type, MSG_CLIENT_REPLY);
        cr_assert_eq(items[i].u.reply.status, MSG_STATUS_OK, "item %u", i);
        cr_assert_eq(items[i].u.reply.client_id, reqs[i].client_id);
        cr_assert_eq(items[i].u.reply.request_no, reqs[i].request_no);
    }
    cr_assert_eq(items[3].u.reply.result_len, 5);
    cr_assert_eq(memcmp(items[3].u.reply.result, "value", 5), 0);
    cr_assert_eq(sm_kv_count(g_sm), 3);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 4);
    cr_assert_eq(net_stats_get(NET_CTR_MULTI_REQUESTS), 1);
    cr_assert_eq(net_stats_get(NET_CTR_MULTI_REPLIES), 1);
    free_all(out, 1);
}

/* The value the state machine holds for key k ("" when none). */
static void kv_value(const char *k, char *out, size_t cap)
{
    uint8_t args[64];
    uint32_t len = 0;
    int n = sm_kv_encode_get(args, sizeof(args), k, strlen(k));
    cr_assert_gt(n, 0);
    int st =
        sm_query(g_sm, SM_KV_OP_GET, args, (uint32_t)n, (uint8_t *)out, (uint32_t)cap - 1, &len);
    out[st == MSG_STATUS_OK ? len : 0] = '\0';
}

/* Exactly once per item: a request repeated in one frame, and the frame resent, apply only
 * the first copy; the repeats (here with other values under the same request numbers, so a
 * second apply would show) are answered OK from the session. */
Test(rt, multi_repeated_items_and_a_resent_frame_apply_once)
{
    uint64_t a = reg();
    uint64_t b = reg();
    static const char *const vals[] = {"first", "second", "third"};
    uint8_t args[3][2][64];
    struct msg_client_request reqs[3];
    for (uint32_t round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < 3; i++) {
            uint8_t *p = args[i][round];
            const char *k = i == 1 ? "kb" : "ka";
            const char *v = vals[round == 0 ? i / 2 : 2];
            int n = sm_kv_encode_put(p, 64, k, 2, v, strlen(v));
            reqs[i] =
                (struct msg_client_request){i == 1 ? b : a, 1, 0, SM_KV_OP_PUT, (uint32_t)n, p};
        }
        inject(mk_multi(reqs, NULL, 3)); /* items 0 and 2: the same request of client a */
        struct rte_mbuf *out[4];
        cr_assert_eq(pump(out, 4), 1);
        struct msg items[4];
        const uint8_t *raw[4];
        size_t raw_len[4];
        cr_assert_eq(parse_multi(out[0], items, raw, raw_len, 4), 3);
        for (uint32_t i = 0; i < 3; i++) {
            cr_assert_eq(items[i].u.reply.client_id, reqs[i].client_id);
            cr_assert_eq(items[i].u.reply.status, MSG_STATUS_OK, "round %u item %u", round, i);
        }
        free_all(out, 1);
        char got[16];
        kv_value("ka", got, sizeof(got));
        cr_assert_str_eq(got, "first", "round %u: client a's request applied again", round);
        kv_value("kb", got, sizeof(got));
        cr_assert_str_eq(got, "first", "round %u: client b's request applied again", round);
    }
}

Test(rt, single_requests_keep_single_replies)
{
    uint64_t id = reg();
    for (unsigned i = 1; i <= 3; i++) {
        inject(mk_put(id, i, "k", "v"));
    }
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 3);
    for (unsigned i = 0; i < 3; i++) {
        struct frame_info fi;
        struct msg m;
        parse_reply(out[i], &fi, &m); /* asserts a plain CLIENT_REPLY */
    }
    cr_assert_eq(net_stats_get(NET_CTR_MULTI_REPLIES), 0);
    free_all(out, 3);
}

Test(rt, multi_items_authenticated_one_by_one)
{
    struct wire_key good;
    struct wire_key bad;
    memset(good.bytes, 0x42, sizeof(good.bytes));
    memset(bad.bytes, 0x43, sizeof(bad.bytes));
    struct msg_client_request reqs[3] = {
        {T_KEYED_CLIENT, 1, MSG_REQ_REGISTER, MSG_OP_NOOP, 0, NULL},
        {T_KEYED_CLIENT, 2, 0, MSG_OP_NOOP, 0, NULL}, /* wrong key: dropped alone */
        {0x77, 1, MSG_REQ_NO_SESSION, MSG_OP_NOOP, 0, NULL},
    };
    const struct wire_key *keys[3] = {&good, &bad, NULL};
    inject(mk_multi(reqs, keys, 3));
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 1);
    struct msg items[4];
    const uint8_t *raw[4];
    size_t raw_len[4];
    cr_assert_eq(parse_multi(out[0], items, raw, raw_len, 4), 2);
    cr_assert_eq(items[0].u.reply.client_id, T_KEYED_CLIENT);
    cr_assert_eq(items[0].u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(wire_verify(raw[0], raw_len[0], &good), 0, "a keyed item's reply has its MAC");
    cr_assert_eq(items[1].u.reply.client_id, 0x77);
    cr_assert((items[1].hdr.flags & MSG_HDR_MAC) == 0);
    cr_assert_eq(net_stats_get(NET_CTR_MAC_FAILURES), 1);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 2);
    free_all(out, 1);
}

Test(rt, multi_items_of_unknown_sessions_each_get_session_expired)
{
    struct msg_client_request reqs[2] = {
        {901, 1, 0, MSG_OP_NOOP, 0, NULL},
        {902, 1, 0, MSG_OP_NOOP, 0, NULL},
    };
    inject(mk_multi(reqs, NULL, 2));
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 1);
    struct msg items[4];
    const uint8_t *raw[4];
    size_t raw_len[4];
    cr_assert_eq(parse_multi(out[0], items, raw, raw_len, 4), 2);
    for (uint32_t i = 0; i < 2; i++) {
        cr_assert_eq(items[i].u.reply.client_id, reqs[i].client_id);
        cr_assert_eq(items[i].u.reply.status, MSG_STATUS_SESSION_EXPIRED);
    }
    free_all(out, 1);
}

Test(rt, malformed_multi_frame_dropped_whole_and_counted)
{
    uint64_t id = reg();
    struct msg_client_request reqs[2] = {
        {id, 1, 0, MSG_OP_NOOP, 0, NULL},
        {id, 2, 0, MSG_OP_NOOP, 0, NULL},
    };
    struct rte_mbuf *bad = mk_multi(reqs, NULL, 2);
    /* The second item's request flags get an unknown bit (UDP checksum is then wrong too:
     * zero it, "none"). */
    uint8_t *f = rte_pktmbuf_mtod(bad, uint8_t *);
    size_t item1 =
        FRAME_UDP_PAYLOAD_OFF + WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + WIRE_HDR_LEN + 23 + 2;
    f[item1 + WIRE_HDR_LEN + 16 + 1] = 0x80;
    f[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 6] = 0;
    f[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 7] = 0;
    inject(bad);
    inject(mk_put(id, 1, "k", "v"));
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 1, "only the single request after it is answered");
    struct frame_info fi;
    struct msg m;
    parse_reply(out[0], &fi, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(net_stats_get(NET_CTR_MULTI_REJECTED), 1);
    cr_assert_eq(net_stats_get(NET_CTR_MALFORMED_FRAME), 1, "unknown request flag bit");
    cr_assert_eq(sm_kv_count(g_sm), 1);
    free_all(out, 1);
}

/* multi_rejected counts every multi-request frame dropped whole, also those the header
 * checks refuse (docs/protocol.md 3.13: the outer header never has MSG_HDR_MAC). */
Test(rt, multi_frame_with_an_outer_mac_counted_as_rejected)
{
    struct msg_client_request reqs[2] = {
        {0x77, 1, MSG_REQ_NO_SESSION, MSG_OP_NOOP, 0, NULL},
        {0x78, 1, MSG_REQ_NO_SESSION, MSG_OP_NOOP, 0, NULL},
    };
    struct rte_mbuf *bad = mk_multi(reqs, NULL, 2);
    uint8_t *f = rte_pktmbuf_mtod(bad, uint8_t *);
    f[FRAME_UDP_PAYLOAD_OFF + 6] |= (uint8_t)MSG_HDR_MAC; /* header flags, u16 LE */
    f[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 6] = 0;          /* UDP checksum: none */
    f[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 7] = 0;
    inject(bad);
    struct rte_mbuf *out[4];
    cr_assert_eq(pump(out, 4), 0);
    cr_assert_eq(net_stats_get(NET_CTR_MULTI_REJECTED), 1);
    cr_assert_eq(net_stats_get(NET_CTR_MULTI_REQUESTS), 0);
    cr_assert_eq(net_stats_get(NET_CTR_REQUESTS), 0);
}

Test(rt, multi_replies_stay_within_a_standard_frame)
{
    /* 60 no-session no-ops from one address in three frames: their answers leave packed,
     * none over 1,514 bytes or MSG_MULTI_MAX items, every one of them exactly once. */
    struct msg_client_request reqs[20];
    for (uint32_t f = 0; f < 3; f++) {
        for (uint32_t i = 0; i < 20; i++) {
            reqs[i] = (struct msg_client_request){1000 + f * 20 + i, 1, MSG_REQ_NO_SESSION,
                                                  MSG_OP_NOOP,       0, NULL};
        }
        inject(mk_multi(reqs, NULL, 20));
    }
    struct rte_mbuf *out[64];
    unsigned n = pump(out, 64);
    cr_assert_lt(n, 60, "packed: fewer frames than answers");
    bool seen[60] = {false};
    for (unsigned k = 0; k < n; k++) {
        cr_assert_leq(out[k]->data_len, RT_MULTI_FRAME_MAX);
        struct frame_info fi;
        struct msg m;
        cr_assert_eq(
            frame_parse(rte_pktmbuf_mtod(out[k], const uint8_t *), out[k]->data_len, 0, &fi),
            FRAME_KIND_UDP);
        cr_assert_eq(wire_decode(fi.payload, fi.payload_len, &m, NULL, 0), 0);
        struct msg items[MSG_MULTI_MAX];
        const uint8_t *raw[MSG_MULTI_MAX];
        size_t raw_len[MSG_MULTI_MAX];
        uint32_t c = 1;
        if (m.hdr.type == MSG_CLIENT_MULTI_REPLY) {
            c = parse_multi(out[k], items, raw, raw_len, MSG_MULTI_MAX);
        } else {
            items[0] = m;
        }
        for (uint32_t i = 0; i < c; i++) {
            uint64_t id = items[i].u.reply.client_id - 1000;
            cr_assert_lt(id, 60);
            cr_assert(!seen[id], "answer %lu twice", (unsigned long)id);
            seen[id] = true;
        }
    }
    for (unsigned i = 0; i < 60; i++) {
        cr_assert(seen[i], "no answer to request %u", i);
    }
    free_all(out, n);
}
