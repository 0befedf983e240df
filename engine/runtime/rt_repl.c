/* Replicated mode, control side: recovery from the data directory at start-up, the Raft core's
 * configuration from [replica], snapshots of state machine + sessions, fail-stop, and the
 * /ordo/raft telemetry command. The data path is in rt_repl_stage.c. */
#include "engine/runtime/rt_repl.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_telemetry.h>

#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/runtime/rt_batch.h"
#include "engine/runtime/rt_snap.h"
#include "engine/sm.h"

/* conf_load counts parked reads and probes against [replica] mbufs (conf_mbufs_need). */
static_assert(RT_READS_MAX + RT_PROBES_MAX <= CONF_MBUF_PARKED, "parked mbufs counted in conf");

#define RT_RECOVER_BUF (1u << 20)
/* AppendEntries carries at most this many entries, so it fits one peer frame. */
#define RT_APPEND_ENTRIES 8u
#define RT_ENTRY_WIRE 13u /* term, type, length of one entry on the wire */
#define RT_AE_FIXED 96u   /* header and fixed AppendEntries fields, with margin */
#define RT_SNAP_CHUNK 1200u

static struct rt_repl *rt_repl_tele; /* the one replica of this process, for telemetry */

const char *rt_repl_role_name(uint8_t role)
{
    switch (role) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_PRE_CANDIDATE:
        return "pre_candidate";
    default:
        return "follower";
    }
}

void rt_repl_fail(struct rt_repl *rp, const char *what, int rc)
{
    if (rp->rt->failed == 0) {
        RTE_LOG(ERR, USER1, "ordo: node %u: fail-stop: %s: %s\n", rp->rt->self->id, what,
                ordo_strerror(rc));
        rp->rt->failed = rc < 0 ? rc : -EIO;
    }
    rt_request_stop(rp->rt);
}

/* Loads sessions, then the application, from snapshot bytes (the rt_repl_snapshot order). */
int rt_repl_load(struct rt_repl *rp, const uint8_t *data, uint64_t len)
{
    struct sm_mem_source src = {.data = data, .len = len};
    int rc = sess_snapshot_read(rp->rt->sess, sm_mem_source_read, &src);
    if (rc == 0) {
        rc = sm_snapshot_read(rp->rt->sm, sm_mem_source_read, &src);
    }
    if (rc == 0 && src.pos != src.len) {
        rc = ORDO_EMALFORMED;
    }
    return rc;
}

/* The inline snapshot ([replica] snapshot_mode = inline; the default is the background one in
 * rt_snap.c): write sessions + application on this lcore (the pause grows with the state
 * size: see docs/replica.md), hand the bytes to the core, then compact the log. */
int rt_repl_snapshot(struct rt_repl *rp, struct raft_update *up)
{
    struct sm_mem_sink sink = {0};
    struct disk_snap_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.last_index = rp->applied;
    int rc = raft_snapshot_meta(rp->raft, rp->applied, &meta.last_term, &meta.config);
    if (rc != 0) {
        return 0; /* not held any more (a newer snapshot arrived): nothing to do */
    }
    rc = sess_snapshot_write(rp->rt->sess, sm_mem_sink_write, &sink);
    if (rc == 0) {
        rc = sm_snapshot_write(rp->rt->sm, sm_mem_sink_write, &sink);
    }
    meta.len = sink.len;
    if (!rt_repl_log_hold(rp)) {
        sm_mem_sink_free(&sink);
        return 0; /* stopping */
    }
    if (rc == 0) {
        rc = disk_log_snap_save(rp->log, &meta, sink.data);
    }
    rt_repl_log_release(rp);
    if (rc == 0) {
        struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN, .now_ms = rp->now_ms};
        ev.u.snapshot_taken.index = rp->applied;
        ev.u.snapshot_taken.data = sink.data;
        ev.u.snapshot_taken.len = sink.len;
        (void)raft_step(rp->raft, &ev, up);
    }
    sm_mem_sink_free(&sink);
    if (rc == 0 && rt_repl_log_hold(rp)) {
        rc = disk_log_compact(rp->log, meta.last_index);
        rt_repl_log_release(rp);
    }
    if (rc != 0) {
        rt_repl_fail(rp, "snapshot", rc);
        return rc;
    }
    rp->snap_index = meta.last_index;
    rp->reported = 0; /* the snapshot counts as durable: report again */
    rp->view.snapshots_taken++;
    RTE_LOG(NOTICE, USER1, "ordo: node %u: snapshot at %" PRIu64 " (%" PRIu64 " bytes)\n",
            rp->rt->self->id, meta.last_index, meta.len);
    return 1;
}

static int rt_repl_raft_config(const struct rt *rt, struct raft_config *c)
{
    const struct conf_replica *r = &rt->conf->replica;
    memset(c, 0, sizeof(*c));
    c->id = rt->self->id;
    c->cluster_id = rt->conf->cluster.id;
    c->prng_seed = rte_rdtsc() ^ ((uint64_t)rt->self->id << 32);
    uint64_t tick_ms = RTE_MAX(1u, r->tick_us / 1000u);
    c->election_timeout_ms = (uint32_t)(r->election_ticks * tick_ms);
    c->heartbeat_ms = (uint32_t)(r->heartbeat_ticks * tick_ms);
    c->append_entries_max = RT_APPEND_ENTRIES;
    c->append_bytes_max =
        rt_peer_frame_len(rt->conf) - 42u - RT_AE_FIXED - RT_APPEND_ENTRIES * RT_ENTRY_WIRE;
    c->window_entries = r->pipeline_window;
    c->window_bytes = r->pipeline_bytes;
    c->snapshot_chunk_bytes = RT_SNAP_CHUNK;
    /* The core only flags update.snapshot_wanted; rt_snap_policy decides. */
    c->snapshot_threshold_bytes =
        r->snapshot_log_bytes != 0 ? r->snapshot_log_bytes : UINT64_MAX / 2;
    c->snapshot_trailing = 1024;
    c->pre_vote = 1;
    c->check_quorum = 1;
    return (int)c->append_bytes_max;
}

struct rt_recovered {
    struct disk_hard_state hs;
    struct disk_snap_meta snap;
    uint8_t *snap_data;
    uint32_t n;
    struct msg_entry *entries;
};

static void rt_recovered_free(struct rt_recovered *rc)
{
    for (uint32_t i = 0; rc->entries != NULL && i < rc->n; i++) {
        free((void *)(uintptr_t)rc->entries[i].data);
    }
    free(rc->entries);
    free(rc->snap_data);
}

static int rt_recover_snapshot(struct rt_repl *rp, struct rt_recovered *out)
{
    int rc = disk_log_snap_latest(rp->log, &out->snap);
    if (rc == ORDO_ENOTFOUND) {
        memset(&out->snap, 0, sizeof(out->snap));
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    out->snap_data = malloc(RTE_MAX(out->snap.len, 1u));
    if (out->snap_data == NULL) {
        return -ENOMEM;
    }
    for (uint64_t off = 0; off < out->snap.len;) {
        uint32_t chunk = (uint32_t)RTE_MIN(out->snap.len - off, (uint64_t)RT_RECOVER_BUF);
        rc = disk_log_snap_read(rp->log, off, out->snap_data + off, chunk);
        if (rc <= 0) {
            return rc < 0 ? rc : ORDO_ECORRUPT;
        }
        off += (uint64_t)rc;
    }
    return rt_repl_load(rp, out->snap_data, out->snap.len);
}

static int rt_recover_entries(struct rt_repl *rp, struct rt_recovered *out, uint8_t *buf)
{
    struct disk_bounds b;
    struct msg_entry got[64];
    disk_log_bounds(rp->log, &b);
    uint64_t from = out->snap.last_index + 1;
    if (b.index_durable < from) {
        return 0;
    }
    if (b.index_first > from) {
        return ORDO_ECORRUPT; /* a hole between the snapshot and the log */
    }
    uint64_t total = b.index_durable - from + 1;
    out->entries = calloc(total, sizeof(*out->entries));
    if (out->entries == NULL) {
        return -ENOMEM;
    }
    while (out->n < total) {
        int k = disk_log_read(rp->log, from + out->n, 64, got, buf, RT_RECOVER_BUF);
        if (k <= 0) {
            return k < 0 ? k : ORDO_ECORRUPT;
        }
        for (int i = 0; i < k && out->n < total; i++) {
            struct msg_entry *e = &out->entries[out->n];
            *e = got[i];
            uint8_t *copy = malloc(RTE_MAX(got[i].len, 1u));
            if (copy == NULL) {
                return -ENOMEM;
            }
            memcpy(copy, got[i].data, got[i].len);
            e->data = copy;
            out->n++;
        }
    }
    return 0;
}

static int rt_repl_create_core(struct rt_repl *rp, struct rt_recovered *rec)
{
    struct raft_config rc_cfg;
    struct raft_restore rs;
    uint32_t cap = (uint32_t)rt_repl_raft_config(rp->rt, &rc_cfg);
    rp->batch_cap = RTE_MIN(cap, rp->rt->conf->replica.batch_bytes_max);
    memset(&rs, 0, sizeof(rs));
    rs.now_ms = rp->now_ms;
    rs.term = rec->hs.term;
    rs.voted_for = rec->hs.voted_for;
    rs.snapshot_index = rec->snap.last_index;
    rs.snapshot_term = rec->snap.last_term;
    rs.snapshot_config = rec->snap.config;
    rs.snapshot_data = rec->snap_data;
    rs.snapshot_len = rec->snap.len;
    const struct conf *c = rp->rt->conf;
    /* The founding members: nodes with join = 1 are spares, added later by an operator. A
     * spare bootstraps with no configuration and waits for a leader (raft.h). */
    rs.bootstrap.n = 0;
    for (uint32_t i = 0; i < c->nodes_n && rp->rt->self->join == 0; i++) {
        if (c->nodes[i].join == 0) {
            rs.bootstrap.servers[rs.bootstrap.n].id = c->nodes[i].id;
            rs.bootstrap.servers[rs.bootstrap.n++].role = MSG_ROLE_VOTER;
        }
    }
    rs.n_entries = rec->n;
    rs.entries = rec->entries;
    return raft_create(&rc_cfg, &rs, &rp->raft);
}

static int rt_repl_recover(struct rt_repl *rp, struct ordo_errmsg *e)
{
    struct disk_config dc;
    struct rt_recovered rec;
    int rc = 0;
    memset(&rec, 0, sizeof(rec));
    disk_config_default(&dc);
    dc.dir = rp->rt->self->data_dir;
    rp->log = disk_log_open(&dc, &rc, e);
    if (rp->log == NULL) {
        return rc != 0 ? rc : -EIO;
    }
    uint8_t *buf = malloc(RT_RECOVER_BUF);
    rc = buf == NULL ? -ENOMEM : disk_log_hard_state_load(rp->log, &rec.hs);
    if (rc == ORDO_ENOTFOUND) {
        memset(&rec.hs, 0, sizeof(rec.hs));
        rc = 0;
    }
    if (rc == 0) {
        rc = rt_recover_snapshot(rp, &rec);
    }
    if (rc == 0) {
        rc = rt_recover_entries(rp, &rec, buf);
    }
    if (rc == 0) {
        rc = rt_repl_create_core(rp, &rec);
    }
    if (rc != 0) {
        ordo_errmsg_set(e, "%s: recovery: %s", dc.dir, ordo_strerror(rc));
    } else {
        rp->snap_index = rec.snap.last_index;
        rp->applied = rec.snap.last_index;
        rp->reported = rec.snap.last_index + rec.n; /* recovered entries are durable */
        RTE_LOG(NOTICE, USER1,
                "ordo: node %u: recovered term %" PRIu64 ", snapshot %" PRIu64 ", %u entries\n",
                rp->rt->self->id, rec.hs.term, rec.snap.last_index, rec.n);
    }
    rt_recovered_free(&rec);
    free(buf);
    return rc;
}

static void rt_tele_u64(struct rte_tel_data *d, const char *k, const uint64_t *v)
{
    (void)rte_tel_data_add_dict_u64(d, k, __atomic_load_n(v, __ATOMIC_RELAXED));
}

static int rt_repl_tele_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    struct rt_repl *rp = rt_repl_tele;
    if (rp == NULL) {
        return -ENOENT;
    }
    struct rt_repl_view *v = &rp->view;
    rte_tel_data_start_dict(d);
    uint32_t role = __atomic_load_n(&v->role, __ATOMIC_RELAXED);
    (void)rte_tel_data_add_dict_string(d, "role", rt_repl_role_name((uint8_t)role));
    (void)rte_tel_data_add_dict_u64(d, "id", rp->rt->self->id);
    (void)rte_tel_data_add_dict_u64(d, "leader", __atomic_load_n(&v->leader, __ATOMIC_RELAXED));
    const char *const names[] = {"term",           "commit",           "applied",
                                 "durable",        "snapshot_index",   "last_index",
                                 "batches",        "batch_cmds",       "batch_bytes",
                                 "batch_cmds_max", "redirects",        "reads",
                                 "elections_won",  "snapshots_taken",  "snapshots_installed",
                                 "audits_ok",      "audit_mismatches", "probes_dropped"};
    const uint64_t *vals[] = {&v->term,           &v->commit,           &v->applied,
                              &v->durable,        &v->snapshot_index,   &v->last_index,
                              &v->batches,        &v->batch_cmds,       &v->batch_bytes,
                              &v->batch_cmds_max, &v->redirects,        &v->reads,
                              &v->elections_won,  &v->snapshots_taken,  &v->snapshots_installed,
                              &v->audits_ok,      &v->audit_mismatches, &rp->probes_dropped};
    for (size_t i = 0; i < ORDO_ARRAY_LEN(names); i++) {
        rt_tele_u64(d, names[i], vals[i]);
    }
    rt_tele_u64(d, "first_index", &v->first_index);
    rt_tele_u64(d, "audit_mismatch_node", &v->audit_mismatch_node);
    rt_tele_u64(d, "audit_mismatch_index", &v->audit_mismatch_index);
    const char *const closes[RT_BATCH_CLOSES] = {"batch_close_full", "batch_close_idle",
                                                 "batch_close_write", "batch_close_time",
                                                 "batch_close_hold"};
    for (size_t i = 0; i < RT_BATCH_CLOSES; i++) {
        rt_tele_u64(d, closes[i], &v->batch_close[i]);
    }
    rt_tele_u64(d, "log_writes", &v->log_writes);
    rt_tele_u64(d, "log_entries", &v->log_entries);
    rt_tele_u64(d, "log_write_us", &v->log_write_us);
    /* Queue depths: rte_ring_count only reads the ring's head and tail, safe from here. */
    (void)rte_tel_data_add_dict_u64(d, "req_ring", rte_ring_count(rp->rt->req_ring));
    (void)rte_tel_data_add_dict_u64(d, "tx_ring", rte_ring_count(rp->rt->tx_ring));
    if (rp->rt->peer_ring != NULL) {
        (void)rte_tel_data_add_dict_u64(d, "peer_ring", rte_ring_count(rp->rt->peer_ring));
    }
    char hex[2 * MSG_DIGEST_LEN + 1];
    for (uint32_t i = 0; i < MSG_DIGEST_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", v->digest[i]);
    }
    (void)rte_tel_data_add_dict_string(d, "digest", hex);
    struct rte_tel_data *m = rte_tel_data_alloc();
    if (m != NULL) {
        rte_tel_data_start_dict(m);
        for (uint32_t i = 0; i < rp->rt->conf->nodes_n; i++) {
            char k[16];
            snprintf(k, sizeof(k), "%u", rp->rt->conf->nodes[i].id);
            rt_tele_u64(m, k, &v->match[i]);
        }
        (void)rte_tel_data_add_dict_container(d, "match", m, 0);
    }
    rt_member_tele(rp, d);
    return 0;
}

/* /ordo/transfer,N: queue a leadership transfer to node N (0: the most up-to-date voter)
 * for the apply stage; the reply only says it was queued (its outcome shows in /ordo/raft). */
static int rt_repl_tele_transfer(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    struct rt_repl *rp = rt_repl_tele;
    if (rp == NULL) {
        return -ENOENT;
    }
    rte_tel_data_start_dict(d);
    char *end = NULL;
    unsigned long id = params != NULL ? strtoul(params, &end, 10) : 0;
    if (params == NULL || end == params || *end != '\0' ||
        (id != MSG_NODE_NONE && conf_node_find(rp->rt->conf, (uint32_t)id) == NULL)) {
        (void)rte_tel_data_add_dict_string(d, "error", "usage: /ordo/transfer,<node id|0>");
        return 0;
    }
    __atomic_store_n(&rp->admin_transfer, RT_ADMIN_PENDING | id, __ATOMIC_RELEASE);
    (void)rte_tel_data_add_dict_u64(d, "transfer_queued", id);
    return 0;
}

/* /ordo/snapshot: queue a snapshot at the applied index for the apply stage. */
static int rt_repl_tele_snapshot(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    struct rt_repl *rp = rt_repl_tele;
    if (rp == NULL) {
        return -ENOENT;
    }
    rte_tel_data_start_dict(d);
    __atomic_store_n(&rp->admin_snapshot, 1u, __ATOMIC_RELEASE);
    (void)rte_tel_data_add_dict_u64(d, "snapshot_queued", 1);
    (void)rte_tel_data_add_dict_u64(d, "applied",
                                    __atomic_load_n(&rp->view.applied, __ATOMIC_RELAXED));
    return 0;
}

int rt_repl_init(struct rt *rt, struct ordo_errmsg *e)
{
    struct rt_repl *rp = mem_alloc(sizeof(*rp));
    if (rp == NULL) {
        ordo_errmsg_set(e, "replica state: out of memory");
        return -ENOMEM;
    }
    memset(rp, 0, sizeof(*rp));
    rt->repl = rp;
    rp->rt = rt;
    rp->tsc_hz = rte_get_tsc_hz();
    rp->tsc0 = rte_rdtsc();
    rp->role = RAFT_FOLLOWER;
    rp->peer_frame = rt_peer_frame_len(rt->conf);
    rp->batch_count_max = RTE_MIN(rt->conf->replica.batch_count_max, RT_BATCH_COUNT_MAX);
    rp->batch_time_tsc = rp->tsc_hz / 1000000u * rt->conf->replica.batch_time_us;
    rp->result = mem_alloc(RTE_MAX(rt->sm->result_max, 1u));
    rp->batch = mem_alloc(CONF_BATCH_BYTES_LIMIT);
    if (rp->result == NULL || rp->batch == NULL) {
        ordo_errmsg_set(e, "replica buffers: out of memory");
        return -ENOMEM;
    }
    int rc = rt_repl_recover(rp, e);
    if (rc != 0) {
        return rc;
    }
    rc = rt_snap_init(rp);
    if (rc != 0) {
        ordo_errmsg_set(e, "snapshot state: out of memory");
        return rc;
    }
    rc = rt_repl_seq_init(rp);
    if (rc == 0) {
        rc = rt_repl_log_init(rp);
    }
    if (rc != 0) {
        ordo_errmsg_set(e, "sequencer / log lcore rings: %s", ordo_strerror(rc));
        return rc;
    }
    rt_repl_tele = rp;
    rt_member_init(rp);
    (void)rte_telemetry_register_cmd("/ordo/raft", rt_repl_tele_cmd,
                                     "Raft state: role, term, leader, commit, applied, match "
                                     "index per node, batch counters");
    (void)rte_telemetry_register_cmd("/ordo/transfer", rt_repl_tele_transfer,
                                     "Transfer leadership. Parameter: node id (0: best voter)");
    (void)rte_telemetry_register_cmd("/ordo/snapshot", rt_repl_tele_snapshot,
                                     "Take a snapshot at the applied index now. No parameters");
    RTE_LOG(NOTICE, USER1, "ordo: node %u: replicated mode, %u nodes, batch cap %u bytes\n",
            rt->self->id, rt->conf->nodes_n, rp->batch_cap);
    RTE_LOG(NOTICE, USER1,
            "ordo: node %u: lcores: rx %u, sequencer %u%s, log %u%s, core+apply %u, tx %u\n",
            rt->self->id, rt->stage_lcore[RT_STAGE_RX], rt->stage_lcore[RT_STAGE_SEQ],
            rp->seq_apart ? " (own)" : "", rt->stage_lcore[RT_STAGE_LOG],
            rp->log_apart ? " (own)" : "", rt->stage_lcore[RT_STAGE_APPLY],
            rt->stage_lcore[RT_STAGE_TX]);
    return 0;
}

void rt_repl_fini(struct rt *rt)
{
    struct rt_repl *rp = rt->repl;
    if (rp == NULL) {
        return;
    }
    rt_repl_tele = NULL;
    rt_member_fini();
    rt_snap_fini(rp);
    for (uint32_t i = 0; i < rp->reads_n; i++) {
        rte_pktmbuf_free(rp->reads[(rp->reads_head + i) % RT_READS_MAX].m);
    }
    for (uint32_t i = 0; i < rp->probes_n; i++) {
        rte_pktmbuf_free(rp->probes[(rp->probes_head + i) % RT_PROBES_MAX].m);
    }
    rt_repl_seq_fini(rp);
    rt_repl_log_fini(rp);
    raft_destroy(rp->raft);
    disk_log_close(rp->log);
    mem_free(rp->result);
    mem_free(rp->batch);
    mem_free(rp);
    rt->repl = NULL;
}
