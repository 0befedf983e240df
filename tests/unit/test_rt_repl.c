/* Three replicas of the replicated runtime in one process over net_ring ports: a test switch
 * moves frames between the ports' rings by destination MAC, and every stage is pumped on this
 * thread. Checks election, replication of a put to every replica, ReadIndex GET, and the
 * follower's redirect. Data directories are fresh temporary directories. */
#include <stdbool.h>
#include <stdio.h>
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

#include "tests/unit/rtc.h"

/* Built twice: RTC_APART=1 runs every test with the sequencer and the log on lcores of their
 * own (test 'rt_repl_lcores'). */
#ifndef RTC_APART
#define RTC_APART 0
#endif

static void setup(void)
{
    rtc_setup(&(struct rtc_params){.name = RTC_APART ? "rtlcores" : "rtrepl",
                                   .election_ticks = 20,
                                   .heartbeat_ticks = 2,
                                   .apart = RTC_APART});
}

TestSuite(rt_repl, .init = setup, .fini = rtc_teardown, .timeout = 60);

Test(rt_repl, unregistered_client_is_refused_as_expired)
{
    int l = rtc_wait_leader();
    rtc_put(l, 5, 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_SESSION_EXPIRED);
    rte_pktmbuf_free(mb);
    cr_assert_eq(sm_kv_count(g_sm[l]), 0, "never applied");
    uint64_t c = rtc_reg(l);
    cr_assert_neq(c, 5);
    rtc_put(l, c, 1, "k", "v");
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.client_id, c);
    rte_pktmbuf_free(mb);
}

Test(rt_repl, put_through_leader_reaches_every_replica)
{
    int l = rtc_wait_leader();
    rtc_put(l, rtc_reg(l), 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    uint64_t applied = g_rt[l].repl->applied;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline &&
           (g_rt[0].repl->applied < applied || g_rt[1].repl->applied < applied ||
            g_rt[2].repl->applied < applied)) {
        rtc_pump_once();
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
    int l = rtc_wait_leader();
    struct rte_mbuf *mb;
    struct msg m;
    uint64_t c = rtc_reg(l);
    rtc_put(l, c, 1, "key", "value");
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    uint8_t args[64];
    int n = sm_kv_encode_get(args, sizeof(args), "key", 3);
    rtc_send_req(l, c, 2, SM_KV_OP_GET, args, (uint32_t)n);
    rtc_wait_answer_to(2, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.result_len, 5);
    cr_assert_eq(memcmp(m.u.reply.result, "value", 5), 0);
    rte_pktmbuf_free(mb);
    cr_assert_geq(g_rt[l].repl->view.reads, 1, "the GET went through ReadIndex");
}

Test(rt_repl, follower_redirects_to_the_leader)
{
    int l = rtc_wait_leader();
    int f = (l + 1) % T_N;
    rtc_put(f, 7, 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_REDIRECT);
    cr_assert_eq(m.u.redirect.leader_id, (uint32_t)l + 1);
    cr_assert_eq(m.u.redirect.leader_ipv4, g_conf.nodes[l].ipv4);
    cr_assert_eq(m.u.redirect.leader_port, g_conf.nodes[l].udp_port);
    rte_pktmbuf_free(mb);
}

Test(rt_repl, new_leader_after_leader_loss_keeps_acknowledged_writes)
{
    int l = rtc_wait_leader();
    struct rte_mbuf *mb;
    struct msg m;
    uint64_t c = rtc_reg(l);
    rtc_put(l, c, 1, "a", "1");
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    g_down[l] = true; /* the leader stops: no rounds, no frames */
    int l2 = rtc_wait_leader();
    cr_assert_neq(l2, l);
    uint8_t args[64];
    int n = sm_kv_encode_get(args, sizeof(args), "a", 1);
    rtc_send_req(l2, c, 2, SM_KV_OP_GET, args, (uint32_t)n);
    rtc_wait_answer_to(2, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK, "the acknowledged write survived");
    cr_assert_eq(m.u.reply.result_len, 1);
    rte_pktmbuf_free(mb);
    rtc_put(l2, c, 3, "b", "2");
    rtc_wait_answer_to(3, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK, "the new leader serves writes");
    rte_pktmbuf_free(mb);
    g_down[l] = false;
}

Test(rt_repl, restarted_replica_recovers_its_log_and_catches_up)
{
    int l = rtc_wait_leader();
    int f = (l + 1) % T_N;
    struct rte_mbuf *mb;
    struct msg m;
    uint64_t c = rtc_reg(l);
    rtc_put(l, c, 1, "x", "1");
    rtc_wait_answer_to(1, &mb, &m);
    rte_pktmbuf_free(mb);
    uint64_t applied = g_rt[l].repl->applied;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[f].repl->applied < applied) {
        rtc_pump_once();
    }
    /* Restart f from its data directory only: a fresh state machine and runtime. */
    rtc_log_threads_stop();
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
    rtc_log_threads_start();
    cr_assert_geq(raft_last_index(g_rt[f].repl->raft), applied, "log recovered from disk");
    rtc_put(l, c, 2, "y", "2");
    rtc_wait_answer_to(2, &mb, &m);
    rte_pktmbuf_free(mb);
    applied = g_rt[l].repl->applied;
    deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[f].repl->applied < applied) {
        rtc_pump_once();
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
    struct frame_udp_addr a = {.src_ip = rtc_ip4(198, 18, 0, 1),
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
    int l = rtc_wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t batches = rp->view.batches;
    uint64_t applied = rp->applied;
    send_probe(l, 42);
    struct rte_mbuf *mb = NULL;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (mb == NULL && rte_get_tsc_cycles() < deadline) {
        rtc_pump_once();
        (void)rte_ring_dequeue(g_client, (void **)&mb);
    }
    cr_assert(mb != NULL, "the probe did not come back within 5 s");
    /* It went through the sequencer and the log: a batch was proposed and applied. */
    cr_assert_gt(rp->view.batches, batches);
    cr_assert_gt(rp->applied, applied);
    struct frame_info fi;
    cr_assert_eq(frame_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, 0, &fi),
                 FRAME_KIND_UDP);
    cr_assert_eq(fi.dst_ip, rtc_ip4(198, 18, 0, 1));
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
    int l = rtc_wait_leader();
    int f = (l + 1) % T_N;
    send_probe(f, 7);
    for (int i = 0; i < 200; i++) {
        rtc_pump_once();
    }
    cr_assert_eq(g_rt[f].repl->probes_dropped, 1u);
    cr_assert_eq(rte_ring_count(g_client), 0u, "a follower answered a probe");
}

#if RTC_APART
/* The sequencer lcore batches a burst of writes: fewer entries than commands, every command
 * answered OK and applied. */
Test(rt_repl, sequencer_lcore_batches_a_burst_of_writes)
{
    int l = rtc_wait_leader();
    uint64_t c = rtc_reg(l);
    uint64_t batches0 = g_rt[l].repl->view.batches;
    for (uint64_t no = 1; no <= 20; no++) {
        char k[8];
        snprintf(k, sizeof(k), "k%u", (unsigned)no);
        rtc_put(l, c, no, k, "v");
    }
    struct rte_mbuf *mb;
    struct msg m;
    rtc_wait_answer_to(20, &mb, &m);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    rte_pktmbuf_free(mb);
    uint64_t batches = g_rt[l].repl->view.batches - batches0;
    cr_assert_geq(batches, 1);
    cr_assert_lt(batches, 20, "%lu entries for 20 writes", (unsigned long)batches);
    cr_assert_eq(sm_kv_count(g_sm[l]), 20);
}

/* A batch sealed while the sequencer still believed this replica led reaches a core that
 * does not lead: every command is refused BUSY (the client retries), nothing is applied. */
Test(rt_repl, sealed_batch_at_a_follower_core_is_refused_busy)
{
    int l = rtc_wait_leader();
    int f = (l + 1) % T_N;
    __atomic_store_n(&g_rt[f].repl->seq_leader, 1u, __ATOMIC_RELEASE); /* a stale view */
    rtc_put(f, 7, 1, "k", "v");
    struct rte_mbuf *mb;
    struct msg m;
    rtc_wait_answer_to(1, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_BUSY);
    rte_pktmbuf_free(mb);
    cr_assert_eq(sm_kv_count(g_sm[f]), 0);
    __atomic_store_n(&g_rt[f].repl->seq_leader, 0u, __ATOMIC_RELEASE);
    rtc_put(f, 7, 2, "k", "v");
    rtc_wait_answer_to(2, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_REDIRECT, "an up-to-date sequencer leaves it to the core");
    rte_pktmbuf_free(mb);
}
#endif
/* A multi-request frame to replica `to` holding reqs[0..n) (docs/protocol.md 3.13). */
static void send_multi(int to, const struct msg_client_request *reqs, uint32_t n)
{
    struct rte_mbuf *mb = rte_pktmbuf_alloc(g_rt[to].port.pool);
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
        cr_assert_eq(wire_multi_add_msg(&w, &m, NULL), 0);
    }
    int len = wire_multi_finish(&w);
    struct frame_udp_addr a = {.src_ip = rtc_ip4(198, 18, 0, 1),
                               .dst_ip = g_conf.nodes[to].ipv4,
                               .src_port = T_CLIENT_PORT,
                               .dst_port = g_conf.nodes[to].udp_port};
    memcpy(a.src_mac, g_client_mac, 6);
    memcpy(a.dst_mac, g_conf.nodes[to].mac, 6);
    len = frame_build_udp(buf, cap, &a, buf + FRAME_UDP_PAYLOAD_OFF, (size_t)len, 0);
    cr_assert_gt(len, 0);
    cr_assert(rte_pktmbuf_append(mb, (uint16_t)len) != NULL);
    cr_assert_eq(rte_ring_enqueue(g_rx[to], mb), 0);
}

/* Pumps until the client got n answers (single or packed; bounded: 5 s), copied to out in
 * arrival order (their pointers dangle: the frames are freed). Returns the number of
 * multi-reply frames among them. */
static uint32_t collect_answers(struct msg *out, uint32_t n)
{
    uint32_t got = 0;
    uint32_t multi = 0;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (got < n && rte_get_tsc_cycles() < deadline) {
        struct rte_mbuf *mb;
        rtc_pump_once();
        if (rte_ring_dequeue(g_client, (void **)&mb) != 0) {
            continue;
        }
        struct frame_info fi;
        struct msg m;
        cr_assert_eq(frame_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, 0, &fi),
                     FRAME_KIND_UDP);
        cr_assert_eq(wire_decode(fi.payload, fi.payload_len, &m, NULL, 0), 0);
        if (m.hdr.type != MSG_CLIENT_MULTI_REPLY) {
            cr_assert_lt(got, n);
            out[got++] = m;
        } else {
            multi++;
            struct wire_multi_iter it;
            struct msg item;
            const uint8_t *raw;
            size_t raw_len;
            wire_multi_iter_init(&it, &m);
            while (wire_multi_next(&it, &item, &raw, &raw_len) == 1) {
                cr_assert_lt(got, n, "more answers than requests");
                out[got++] = item;
            }
        }
        rte_pktmbuf_free(mb);
    }
    cr_assert_eq(got, n, "%u answers of %u within 5 s", got, n);
    return multi;
}

Test(rt_repl, follower_redirects_every_item_of_a_multi_request_in_one_multi_reply)
{
    int l = rtc_wait_leader();
    int f = (l + 1) % T_N;
    struct msg_client_request reqs[3] = {
        {7, 1, 0, MSG_OP_NOOP, 0, NULL},
        {8, 1, 0, MSG_OP_NOOP, 0, NULL},
        {9, 1, 0, MSG_OP_NOOP, 0, NULL},
    };
    send_multi(f, reqs, 3);
    struct msg ans[3];
    cr_assert_eq(collect_answers(ans, 3), 1, "three redirects leave in one frame");
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(ans[i].hdr.type, MSG_REDIRECT);
        cr_assert_eq(ans[i].u.redirect.client_id, reqs[i].client_id);
        cr_assert_eq(ans[i].u.redirect.leader_id, (uint32_t)l + 1);
        cr_assert_eq(ans[i].u.redirect.leader_port, g_conf.nodes[l].udp_port);
    }
}

Test(rt_repl, leader_applies_every_item_of_a_multi_request_once)
{
    int l = rtc_wait_leader();
    uint64_t c[3] = {rtc_reg(l), rtc_reg(l), rtc_reg(l)};
    uint8_t args[3][64];
    struct msg_client_request reqs[3];
    for (uint32_t i = 0; i < 3; i++) {
        char k[4] = {'m', (char)('0' + i), 0, 0};
        int n = sm_kv_encode_put(args[i], sizeof(args[i]), k, 2, "v", 1);
        reqs[i] = (struct msg_client_request){c[i], 1, 0, SM_KV_OP_PUT, (uint32_t)n, args[i]};
    }
    send_multi(l, reqs, 3);
    struct msg ans[3];
    (void)collect_answers(ans, 3);
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(ans[i].hdr.type, MSG_CLIENT_REPLY);
        cr_assert_eq(ans[i].u.reply.status, MSG_STATUS_OK, "answer %u", i);
    }
    cr_assert_eq(sm_kv_count(g_sm[l]), 3);
    /* The frame again under the same request numbers, with other values so that a second
     * apply would show: every item is a retry, answered from its session. */
    uint8_t again[3][64];
    for (uint32_t i = 0; i < 3; i++) {
        char k[4] = {'m', (char)('0' + i), 0, 0};
        int n = sm_kv_encode_put(again[i], sizeof(again[i]), k, 2, "w", 1);
        reqs[i].args = again[i];
        reqs[i].args_len = (uint32_t)n;
    }
    send_multi(l, reqs, 3);
    (void)collect_answers(ans, 3);
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(ans[i].u.reply.status, MSG_STATUS_OK, "retry %u: status %u", i,
                     ans[i].u.reply.status);
    }
    cr_assert_eq(sm_kv_count(g_sm[l]), 3);
    for (uint32_t i = 0; i < 3; i++) {
        char k[4] = {'m', (char)('0' + i), 0, 0};
        uint8_t get[16];
        uint8_t v[8];
        uint32_t vlen = 0;
        int n = sm_kv_encode_get(get, sizeof(get), k, 2);
        cr_assert_eq(sm_query(g_sm[l], SM_KV_OP_GET, get, (uint32_t)n, v, sizeof(v), &vlen),
                     MSG_STATUS_OK);
        cr_assert(vlen == 1 && v[0] == 'v', "item %u applied again by its retry", i);
    }
}
