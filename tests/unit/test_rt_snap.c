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

#include "tests/unit/rtc.h"

/* Built twice: RTC_APART=1 runs every test with the sequencer and the log on lcores of their
 * own (test 'rt_snap_lcores'); the test then touches a replica's log only under a hold. */
#ifndef RTC_APART
#define RTC_APART 0
#endif

static void setup(void)
{
    /* 200 ms at 1 ms ticks: a fork() of this test process (three replicas, ASan) may take
     * tens of milliseconds on a loaded host, and it must not cost the leadership. */
    rtc_setup(&(struct rtc_params){.name = RTC_APART ? "rtsnapl" : "rtsnap",
                                   .election_ticks = 200,
                                   .heartbeat_ticks = 10,
                                   .apart = RTC_APART});
}

/* The newest snapshot of replica i's log (read while its log lcore is held). */
static void snap_latest(int i, struct disk_snap_meta *meta)
{
    cr_assert(rt_repl_log_hold(g_rt[i].repl));
    int rc = disk_log_snap_latest(g_rt[i].repl->log, meta);
    rt_repl_log_release(g_rt[i].repl);
    cr_assert_eq(rc, 0);
}

static void fault_set(int i, enum disk_fault kind)
{
    cr_assert(rt_repl_log_hold(g_rt[i].repl));
    disk_log_fault_set(g_rt[i].repl->log, kind, -EIO);
    rt_repl_log_release(g_rt[i].repl);
}

static void put_ok(int to, uint64_t client, uint64_t no, const char *k, const char *v)
{
    struct rte_mbuf *mb;
    struct msg m;
    rtc_put(to, client, no, k, v);
    rtc_wait_answer_to(no, &mb, &m);
    cr_assert_eq(m.hdr.type, MSG_CLIENT_REPLY, "put %s: answer type %u", k, m.hdr.type);
    cr_assert_eq(m.u.reply.status, MSG_STATUS_OK, "put %s: status %u", k, m.u.reply.status);
    rte_pktmbuf_free(mb);
}

/* Pumps until the background snapshot of replica i is idle again (bounded: 20 s). */
static void wait_snap_idle(int i)
{
    uint64_t deadline = rte_get_tsc_cycles() + 20 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[i].repl->bg->phase != RT_SNAP_IDLE) {
        rtc_pump_once();
    }
    cr_assert_eq(g_rt[i].repl->bg->phase, RT_SNAP_IDLE, "snapshot still running after 20 s");
}

/* Restores replica i's newest snapshot file into a fresh session table and key-value store
 * and returns the store's digest. */
static void restore_digest(int i, uint8_t out[MSG_DIGEST_LEN])
{
    struct disk_snap_meta meta;
    snap_latest(i, &meta);
    uint8_t *data = malloc(meta.len);
    cr_assert(data != NULL);
    cr_assert(rt_repl_log_hold(g_rt[i].repl));
    int got = disk_log_snap_read(g_rt[i].repl->log, 0, data, (uint32_t)meta.len);
    rt_repl_log_release(g_rt[i].repl);
    cr_assert_eq(got, (int)meta.len);
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

TestSuite(rt_snap, .init = setup, .fini = rtc_teardown, .timeout = 60);

/* The writer is slowed down so that writes are applied while it runs: the snapshot must hold
 * the state at its index (taken at fork), not what the parent applied afterwards. */
Test(rt_snap, background_snapshot_holds_the_state_at_its_index)
{
    int l = rtc_wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = rtc_reg(l);
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
    int l = rtc_wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = rtc_reg(l);
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
        rtc_pump_once();
    }
    cr_assert_eq(rp->bg->failed, 1, "the killed writer is seen");
    cr_assert_eq(rp->bg->phase, RT_SNAP_IDLE);
    cr_assert_not_null(rp->bg->fail_what, "the failure is kept for /ordo/snap last_error");
    cr_assert_eq(rp->bg->fail_detail, SIGKILL);
    cr_assert_eq(rp->bg->fail_index, rp->bg->meta.last_index);
    cr_assert_gt(rp->bg->fail_index, first);
    cr_assert_eq(rp->snap_index, first);
    struct disk_snap_meta meta;
    snap_latest(l, &meta);
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
    snap_latest(l, &meta);
    cr_assert_eq(meta.last_index, rp->snap_index);
}

/* snapshot_mode = inline still works (and is what the benchmark compares against). */
Test(rt_snap, inline_mode_takes_the_snapshot_on_the_apply_lcore)
{
    int l = rtc_wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = rtc_reg(l);
    put_ok(l, c, 1, "a", "1");
    g_conf.replica.snapshot_mode = CONF_SNAPSHOT_INLINE;
    cr_assert_eq(rt_snap_request(rp), 1);
    cr_assert_eq(rp->bg->phase, RT_SNAP_IDLE, "nothing left running");
    cr_assert_eq(rp->snap_index, rp->applied);
    cr_assert_eq(rp->bg->done, 1, "counted in /ordo/snap like a background one");
    cr_assert_eq(rp->bg->last_index, rp->snap_index);
    uint8_t got[MSG_DIGEST_LEN];
    uint8_t now[MSG_DIGEST_LEN];
    restore_digest(l, got);
    sm_digest(g_sm[l], now);
    cr_assert_eq(memcmp(got, now, MSG_DIGEST_LEN), 0);
}

TestSuite(rt_lifecycle, .init = setup, .fini = rtc_teardown, .timeout = 60);

/* Pumps for up to ms, draining the client ring; true when node `from` answered request_no
 * with MSG_STATUS_OK meanwhile. */
static bool ok_from(int from, uint64_t request_no, uint64_t ms)
{
    bool seen = false;
    uint64_t deadline = rte_get_tsc_cycles() + ms * rte_get_tsc_hz() / 1000u;
    while (rte_get_tsc_cycles() < deadline) {
        rtc_pump_once();
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
    int l = rtc_wait_leader();
    struct rt_repl *rp = g_rt[l].repl;
    uint64_t c = rtc_reg(l);
    put_ok(l, c, 1, "a", "1");
    /* The majority may commit before the leader's own fsync is reported: wait for it, so
     * that "durable" below is everything written before the fault. */
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline &&
           raft_durable_index(rp->raft) < raft_last_index(rp->raft)) {
        rtc_pump_once();
    }
    uint64_t durable = raft_durable_index(rp->raft);
    cr_assert_eq(durable, raft_last_index(rp->raft));
    /* The followers pause until the leader has seen its own sync fail: their acks alone are
     * a majority, and would otherwise race the failed sync's completion (with the log on its
     * own lcore, that race is often lost). */
    int f1 = (l + 1) % T_N;
    int f2 = (l + 2) % T_N;
    g_down[f1] = g_down[f2] = true;
    fault_set(l, DISK_FAULT_SYNC);
    rtc_put(l, c, 2, "b", "2");
    deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[l].failed == 0) {
        rtc_pump_once();
    }
    g_down[f1] = g_down[f2] = false;
    cr_assert(!ok_from(l, 2, 1000), "a replica whose log failed acknowledged a write");
    cr_assert_neq(g_rt[l].failed, 0, "fail-stop recorded");
    cr_assert_eq(raft_durable_index(rp->raft), durable, "nothing more counted durable");
    cr_assert_eq(rt_repl_stage(&g_rt[l]), 0, "a stopped replica does no more work");
}

Test(rt_lifecycle, follower_log_write_error_fail_stops_and_never_acknowledges)
{
    int l = rtc_wait_leader();
    int f = (l + 1) % T_N;
    uint64_t c = rtc_reg(l);
    put_ok(l, c, 1, "a", "1");
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline &&
           raft_match_index(g_rt[l].repl->raft, (uint32_t)f + 1) < g_rt[l].repl->applied) {
        rtc_pump_once();
    }
    uint64_t match = raft_match_index(g_rt[l].repl->raft, (uint32_t)f + 1);
    fault_set(f, DISK_FAULT_WRITE);
    put_ok(l, c, 2, "b", "2"); /* the other follower makes the majority */
    (void)ok_from(l, 3, 300);
    cr_assert_neq(g_rt[f].failed, 0, "the follower fail-stopped");
    cr_assert_eq(raft_match_index(g_rt[l].repl->raft, (uint32_t)f + 1), match,
                 "the failed follower acknowledged nothing more");
}

Test(rt_lifecycle, leader_that_loses_its_majority_refuses_writes)
{
    int l = rtc_wait_leader();
    uint64_t c = rtc_reg(l);
    put_ok(l, c, 1, "a", "1");
    for (int i = 0; i < T_N; i++) {
        g_down[i] = i != l; /* both followers gone: their frames are dropped */
    }
    /* check_quorum: no majority heard from within an election timeout -> step down. */
    uint64_t deadline = rte_get_tsc_cycles() + 5 * rte_get_tsc_hz();
    while (rte_get_tsc_cycles() < deadline && g_rt[l].repl->role == RAFT_LEADER) {
        rtc_pump_once();
    }
    cr_assert_neq(g_rt[l].repl->role, RAFT_LEADER, "stepped down without a majority");
    rtc_put(l, c, 2, "b", "2");
    cr_assert(!ok_from(l, 2, 500), "a leader without its majority acknowledged a write");
    for (int i = 0; i < T_N; i++) {
        g_down[i] = false;
    }
}
