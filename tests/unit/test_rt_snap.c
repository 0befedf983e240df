/* Lifecycle of the replicated runtime, three replicas in one process over net_ring ports (the
 * harness of test_rt_repl.c): background snapshots (consistent at their index while writes
 * go on; a killed writer leaves the previous snapshot and is retried), a log disk error
 * fail-stops without acknowledging, and a leader without its majority refuses writes. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include "drivers/disk/disk.h"
#include "drivers/net/net.h"
#include "engine/frame.h"
#include "engine/runtime/rt.h"
#include "engine/runtime/rt_repl.h"
#include "engine/runtime/rt_snap.h"
#include "engine/sess.h"
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
    snprintf(g_prefix, sizeof(g_prefix), "--file-prefix=op1-snap-ut-%d", (int)getpid());
    static char *argv[] = {"test_rt_snap",   "--no-pci", "--no-huge", "-m",          "256", NULL,
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
        snprintf(g_dirs[i], sizeof(g_dirs[i]), "/tmp/op1-rtsnap-XXXXXX");
        cr_assert(mkdtemp(g_dirs[i]) != NULL);
        snprintf(n->data_dir, sizeof(n->data_dir), "%s", g_dirs[i]);
    }
    struct conf_replica *r = &g_conf.replica;
    conf_replica_defaults(r);
    r->rx_desc = r->tx_desc = 256;
    r->mbufs = 2047;
    r->ring_size = 256;
    /* 200 ms at 1 ms ticks: a fork() of this test process (three replicas, ASan) may take
     * tens of milliseconds on a loaded host, and it must not cost the leadership. */
    r->election_ticks = 200;
    r->heartbeat_ticks = 10;
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
        snprintf(name, sizeof(name), "snap_ring%u", i);
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

static void put_ok(int to, uint64_t client, uint64_t no, const char *k, const char *v)
{
    struct rte_mbuf *mb;
    struct msg m;
    put(to, client, no, k, v);
    wait_answer_to(no, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY, "put %s: answer type %u", k, m.hdr.type);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK, "put %s: status %u", k, m.u.reply.status);
    rte_pktmbuf_free(mb);
}

#define T_REG_NO 777u /* the registration's nonce request number (answers match on it) */

/* Registers a client session through the leader; returns the id the cluster assigned. */
static uint64_t reg(int to)
{
    struct rte_mbuf *mb;
    struct msg m;
    send_req_flags(to, 0x5eed, T_REG_NO, MSG_REQ_REGISTER, MSG_OP_NOOP, NULL, 0);
    wait_answer_to(T_REG_NO, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK);
    cr_assert_eq(m.u.reply.result_len, 8);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++) {
        id |= (uint64_t)m.u.reply.result[i] << (8 * i);
    }
    rte_pktmbuf_free(mb);
    return id;
}

/* Pumps until the background snapshot of replica i is idle again (bounded: 20 s). */
static void wait_snap_idle(int i)
{
    uint64_t deadline = rte_get_tsc_cycles() + 20 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[i].repl->bg->phase != RT_SNAP_IDLE) {
        pump_once();
    }
    cr_assert_eq(g_rt[i].repl->bg->phase, RT_SNAP_IDLE, "snapshot still running after 20 s");
}

/* Restores replica i's newest snapshot file into a fresh session table and key-value store
 * and returns the store's digest. */
static void restore_digest(int i, uint8_t out[MSG_DIGEST_LEN])
{
    struct disk_snap_meta meta;
    cr_assert_eq(disk_log_snap_latest(g_rt[i].repl->log, &meta), 0);
    uint8_t *data = malloc(meta.len);
    cr_assert(data != NULL);
    cr_assert_eq(disk_log_snap_read(g_rt[i].repl->log, 0, data, (uint32_t)meta.len), (int)meta.len);
    struct sm_kv_config kc = {.value_max = g_conf.cluster.value_max};
    struct sm *sm = NULL;
    struct sess_table *sess = NULL;
    struct sess_config sc = {.sessions_max = g_conf.clients.sessions_max,
                             .reply_max = g_sm[i]->result_max};
    cr_assert_eq(sm_kv_create(&kc, &sm), 0);
    cr_assert_eq(sess_create(&sc, &sess), 0);
    struct sm_mem_source src = {.data = data, .len = meta.len};
    cr_assert_eq(sess_snapshot_read(sess, sm_mem_source_read, &src), 0);
    cr_assert_eq(sm_snapshot_read(sm, sm_mem_source_read, &src), 0);
    cr_assert_eq(src.pos, src.len, "nothing after the two sections");
    sm_digest(sm, out);
    sess_destroy(sess);
    sm_destroy(sm);
    free(data);
}

TestSuite(rt_snap, .init = setup, .fini = teardown, .timeout = 60);

/* The writer is slowed down so that writes are applied while it runs: the snapshot must hold
 * the state at its index (taken at fork), not what the parent applied afterwards. */
Test(rt_snap, background_snapshot_holds_the_state_at_its_index)
{
    int l = wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = reg(l);
    char k[32];
    for (uint64_t i = 1; i <= 40; i++) {
        snprintf(k, sizeof(k), "before-%lu", (unsigned long)i);
        put_ok(l, c, i, k, "v1");
    }
    rp->bg->test_delay_ms = 1500;
    cr_assert_eq(rt_snap_request(rp), 1);
    cr_assert_eq(rp->bg->phase, RT_SNAP_WRITING);
    uint64_t at = rp->bg->meta.last_index;
    cr_assert_eq(at, rp->applied);
    uint8_t want[MSG_DIGEST_LEN];
    memcpy(want, rp->bg->digest, sizeof(want));
    for (uint64_t i = 41; i <= 60; i++) {
        snprintf(k, sizeof(k), "during-%lu", (unsigned long)i);
        put_ok(l, c, i, k, "v2"); /* served while the child writes */
    }
    cr_assert_eq(rp->bg->phase, RT_SNAP_WRITING, "writes were applied while the child ran");
    cr_assert_gt(rp->applied, at);
    wait_snap_idle(l);
    cr_assert_eq(rp->bg->done, 1);
    cr_assert_eq(rp->bg->failed, 0);
    cr_assert_eq(rp->snap_index, at);
    cr_assert_eq(raft_snapshot_index(rp->raft), at, "the core holds the new snapshot");
    cr_assert_eq(rp->view.snapshots_taken, 1);
    cr_assert_lt(rp->bg->pause_ns_last, 1000000000ull, "fork pause under 1 s");
    cr_log_info("fork pause %lu ns", (unsigned long)rp->bg->pause_ns_last);
    uint8_t got[MSG_DIGEST_LEN];
    uint8_t now[MSG_DIGEST_LEN];
    restore_digest(l, got);
    sm_digest(g_sm[l], now);
    cr_assert_eq(memcmp(got, want, MSG_DIGEST_LEN), 0, "restored state = state at the index");
    cr_assert_neq(memcmp(got, now, MSG_DIGEST_LEN), 0, "later writes are not in it");
    put_ok(l, c, 61, "after", "v3");
}

/* A writer killed mid-snapshot: the previous snapshot stays the newest and intact, the
 * replica keeps serving, and the policy takes a new one once the back-off has passed. */
Test(rt_snap, killed_writer_keeps_the_previous_snapshot_and_is_retried)
{
    int l = wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = reg(l);
    put_ok(l, c, 1, "a", "1");
    cr_assert_eq(rt_snap_request(rp), 1);
    wait_snap_idle(l);
    cr_assert_eq(rp->bg->done, 1);
    uint64_t first = rp->snap_index;
    uint8_t first_digest[MSG_DIGEST_LEN];
    restore_digest(l, first_digest);
    put_ok(l, c, 2, "b", "2");
    rp->bg->test_delay_ms = 10000;
    cr_assert_eq(rt_snap_request(rp), 1);
    int pid = rp->bg->pid;
    cr_assert_gt(pid, 0);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    uint64_t killed_ms = rp->now_ms;
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && rp->bg->failed == 0) {
        pump_once();
    }
    cr_assert_eq(rp->bg->failed, 1, "the killed writer is seen");
    cr_assert_eq(rp->bg->phase, RT_SNAP_IDLE);
    cr_assert_eq(rp->snap_index, first);
    struct disk_snap_meta meta;
    cr_assert_eq(disk_log_snap_latest(rp->log, &meta), 0);
    cr_assert_eq(meta.last_index, first, "the previous snapshot is still the newest");
    uint8_t again[MSG_DIGEST_LEN];
    restore_digest(l, again);
    cr_assert_eq(memcmp(again, first_digest, MSG_DIGEST_LEN), 0, "and intact");
    put_ok(l, c, 3, "c", "3"); /* the replica keeps going */
    /* The policy retries by itself once the back-off has passed. */
    rp->bg->test_delay_ms = 0;
    g_conf.replica.snapshot_entries = 3;
    deadline = rte_get_tsc_cycles() + 10 * rte_get_tsc_hz();
    for (uint64_t no = 4; rte_get_tsc_cycles() < deadline && rp->bg->done < 2; no++) {
        put_ok(l, c, no, "d", "4");
    }
    cr_assert_eq(rp->bg->done, 2, "retried after the back-off");
    cr_assert_geq(rp->now_ms, killed_ms + RT_SNAP_RETRY_MS, "not before the back-off");
    cr_assert_gt(rp->snap_index, first);
    cr_assert_eq(disk_log_snap_latest(rp->log, &meta), 0);
    cr_assert_eq(meta.last_index, rp->snap_index);
}

/* snapshot_mode = inline still works (and is what the benchmark compares against). */
Test(rt_snap, inline_mode_takes_the_snapshot_on_the_apply_lcore)
{
    int l = wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = reg(l);
    put_ok(l, c, 1, "a", "1");
    g_conf.replica.snapshot_mode = CONF_SNAPSHOT_INLINE;
    cr_assert_eq(rt_snap_request(rp), 1);
    cr_assert_eq(rp->bg->phase, RT_SNAP_IDLE, "nothing left running");
    cr_assert_eq(rp->snap_index, rp->applied);
    uint8_t got[MSG_DIGEST_LEN];
    uint8_t now[MSG_DIGEST_LEN];
    restore_digest(l, got);
    sm_digest(g_sm[l], now);
    cr_assert_eq(memcmp(got, now, MSG_DIGEST_LEN), 0);
}

TestSuite(rt_lifecycle, .init = setup, .fini = teardown, .timeout = 60);

/* Pumps for up to ms, draining the client ring; true when node `from` answered request_no
 * with MSG_STATUS_OK meanwhile. */
static bool ok_from(int from, uint64_t request_no, uint64_t ms)
{
    bool seen = false;
    uint64_t deadline = rte_get_tsc_cycles() + ms * rte_get_tsc_hz() / 1000u;
    while (rte_get_tsc_cycles() < deadline) {
        pump_once();
        struct rte_mbuf *mb;
        while (rte_ring_dequeue(g_client, (void **)&mb) == 0) {
            struct frame_info fi;
            struct msg m;
            int k = frame_parse(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, 0, &fi);
            if (k == FRAME_KIND_UDP && fi.src_ip == g_conf.nodes[from].ipv4 &&
                wire_decode(fi.payload, fi.payload_len, &m, NULL, 0) == 0 &&
                m.hdr.type == MSG_CLIENT_REPLY && m.u.reply.request_no == request_no &&
                m.u.reply.status == MSG_STATUS_OK) {
                seen = true;
            }
            rte_pktmbuf_free(mb);
        }
    }
    return seen;
}

Test(rt_lifecycle, leader_log_sync_error_fail_stops_without_acknowledging)
{
    int l = wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = reg(l);
    put_ok(l, c, 1, "a", "1");
    uint64_t durable = raft_durable_index(rp->raft);
    disk_log_fault_set(rp->log, DISK_FAULT_SYNC, -EIO);
    put(l, c, 2, "b", "2");
    cr_assert(!ok_from(l, 2, 1000), "a replica whose log failed acknowledged a write");
    cr_assert_neq(g_rt[l].failed, 0, "fail-stop recorded");
    cr_assert_eq(raft_durable_index(rp->raft), durable, "nothing more counted durable");
    cr_assert_eq(rt_repl_stage(&g_rt[l]), 0, "a stopped replica does no more work");
}

Test(rt_lifecycle, follower_log_write_error_fail_stops_and_never_acknowledges)
{
    int l = wait_leader();
    int f = (l + 1) % T_N;
    uint64_t c = reg(l);
    put_ok(l, c, 1, "a", "1");
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline &&
           raft_match_index(g_rt[l].repl->raft, (uint32_t)f + 1) < g_rt[l].repl->applied) {
        pump_once();
    }
    uint64_t match = raft_match_index(g_rt[l].repl->raft, (uint32_t)f + 1);
    disk_log_fault_set(g_rt[f].repl->log, DISK_FAULT_WRITE, -EIO);
    put_ok(l, c, 2, "b", "2"); /* the other follower makes the majority */
    (void)ok_from(l, 3, 300);
    cr_assert_neq(g_rt[f].failed, 0, "the follower fail-stopped");
    cr_assert_eq(raft_match_index(g_rt[l].repl->raft, (uint32_t)f + 1), match,
                 "the failed follower acknowledged nothing more");
}

Test(rt_lifecycle, leader_that_loses_its_majority_refuses_writes)
{
    int l = wait_leader();
    uint64_t c = reg(l);
    put_ok(l, c, 1, "a", "1");
    for (int i = 0; i < T_N; i++) {
        g_down[i] = i != l; /* both followers gone: their frames are dropped */
    }
    /* check_quorum: no majority heard from within an election timeout -> step down. */
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[l].repl->role == RAFT_LEADER) {
        pump_once();
    }
    cr_assert_neq(g_rt[l].repl->role, RAFT_LEADER, "stepped down without a majority");
    put(l, c, 2, "b", "2");
    cr_assert(!ok_from(l, 2, 500), "a leader without its majority acknowledged a write");
    for (int i = 0; i < T_N; i++) {
        g_down[i] = false;
    }
}
