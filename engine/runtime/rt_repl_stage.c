/* Replicated mode, data path on one lcore: Raft ticks from the TSC, peer messages into the
 * core, the sequencer's batches, the log stage (io_uring append / poll, durable reports), the
 * apply stage (leader replies, follower redirects) and ReadIndex reads. Each raft_update is
 * handled in the core's documented order: hard state, snapshot, entries, send, apply. */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "engine/err.h"
#include "engine/frame.h"
#include "engine/ordo_assert.h"
#include "engine/runtime/rt_batch.h"
#include "engine/runtime/rt_repl.h"
#include "engine/runtime/rt_snap.h"

static void rt_repl_handle(struct rt_repl *rp, struct raft_update *up);
static void rt_repl_probes_flush(struct rt_repl *rp);
static void rt_repl_batch_check(struct rt_repl *rp, uint64_t tsc, bool log_done);

static inline struct rt_meta *rt_repl_meta(struct rte_mbuf *m)
{
    return (struct rt_meta *)rte_mbuf_to_priv(m);
}

static void rt_repl_step(struct rt_repl *rp, struct raft_event *ev, int *result)
{
    struct raft_update up;
    ev->now_ms = rp->now_ms;
    int rc = raft_step(rp->raft, ev, &up);
    if (result != NULL) {
        *result = rc;
    }
    rt_repl_handle(rp, &up);
}

/* A peer's address for an outgoing frame; false when its MAC is not resolved yet. */
static bool rt_repl_peer_addr(struct rt_repl *rp, uint32_t id, struct frame_udp_addr *a)
{
    struct rt *rt = rp->rt;
    const struct conf_node *n = conf_node_find(rt->conf, id);
    struct rte_ether_addr mac;
    if (n == NULL || net_local_lookup(&rt->local, n->ipv4, &mac) != 0) {
        return false;
    }
    memcpy(a->src_mac, rt->port.mac.addr_bytes, FRAME_MAC_LEN);
    memcpy(a->dst_mac, mac.addr_bytes, FRAME_MAC_LEN);
    a->src_ip = rt->self->ipv4;
    a->dst_ip = n->ipv4;
    a->src_port = rt->self->udp_port;
    a->dst_port = n->udp_port;
    return true;
}

static struct rte_mbuf *rt_repl_frame(struct rt_repl *rp, const struct frame_udp_addr *a,
                                      const struct msg *msg, const struct wire_key *key)
{
    struct rt *rt = rp->rt;
    struct rte_mbuf *m = rte_pktmbuf_alloc(rt->port.pool);
    if (m == NULL) {
        return NULL;
    }
    uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
    size_t cap = RTE_MIN((size_t)(m->buf_len - m->data_off), (size_t)rp->peer_frame);
    unsigned flags = rt->tx_csum_hw ? FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM : 0;
    uint8_t *payload = buf + FRAME_UDP_PAYLOAD_OFF;
    int len = wire_encode(msg, key, payload, cap - FRAME_UDP_PAYLOAD_OFF);
    if (len > 0) {
        len = frame_build_udp(buf, cap, a, payload, (size_t)len, flags);
    }
    if (len <= 0) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    m->data_len = (uint16_t)len;
    m->pkt_len = (uint32_t)len;
    m->ol_flags = 0;
    if (rt->tx_csum_hw) {
        net_tx_csum_offload(m);
    }
    return m;
}

static void rt_repl_send(struct rt_repl *rp, const struct raft_update *up)
{
    struct rte_mbuf *out[64];
    uint32_t n = 0;
    for (uint32_t i = 0; i < up->n_msgs; i++) {
        struct frame_udp_addr a;
        struct rte_mbuf *m = NULL;
        if (rt_repl_peer_addr(rp, up->msgs[i].to, &a)) {
            m = rt_repl_frame(rp, &a, &up->msgs[i].msg, &rp->rt->cluster_key);
        }
        if (m == NULL) {
            net_stats_inc(NET_CTR_PEER_DROPS); /* the core retransmits */
            continue;
        }
        out[n++] = m;
        if (n == ORDO_ARRAY_LEN(out)) {
            (void)rt_enqueue(rp->rt->tx_ring, out, n);
            n = 0;
        }
    }
    (void)rt_enqueue(rp->rt->tx_ring, out, n);
}

/* Snapshot from the leader: state machine, then the durable snapshot replacing the log. */
static int rt_repl_install(struct rt_repl *rp, const struct raft_update *up)
{
    const struct raft_snapshot_install *s = &up->snapshot;
    rt_snap_cancel(rp); /* a background one in progress is older: stop it */
    int rc = rt_repl_load(rp, s->data, s->len);
    struct disk_snap_meta meta = {.last_index = s->index, .last_term = s->term, .len = s->len};
    meta.config = s->config;
    if (!rt_repl_log_hold(rp)) {
        return -ECANCELED; /* stopping */
    }
    if (rc == 0) {
        rc = disk_log_snap_save(rp->log, &meta, s->data);
    }
    if (rc == 0) {
        rc = disk_log_compact(rp->log, s->index);
    }
    struct disk_bounds b;
    disk_log_bounds(rp->log, &b);
    if (rc == 0 && up->truncate_from != 0 && b.index_last > s->index) {
        rc = disk_log_truncate(rp->log, s->index);
    }
    rt_repl_log_release(rp);
    if (rc != 0) {
        rt_repl_fail(rp, "snapshot install", rc);
        return rc;
    }
    rp->snap_index = s->index;
    rp->applied = s->index;
    rp->reported = 0;
    rp->view.snapshots_installed++;
    RTE_LOG(NOTICE, USER1, "ordo: node %u: installed snapshot at %" PRIu64 "\n", rp->rt->self->id,
            s->index);
    return 0;
}

/* The log on its own lcore: the same truncation and appends, as commands in order. */
static int rt_repl_entries_apart(struct rt_repl *rp, const struct raft_update *up)
{
    int rc = 0;
    if (up->truncate_from != 0 && (up->flags & RAFT_UPD_SNAPSHOT) == 0) {
        rc = rt_pipe_log_truncate(&rp->log_q, up->truncate_from - 1, &rp->log_trunc_seq);
        rp->reported = RTE_MIN(rp->reported, up->truncate_from - 1);
    }
    if (rc == 0 && up->n_entries != 0) {
        rc = rt_pipe_log_append(&rp->log_q, up->entries, up->n_entries);
    }
    return rc; /* 0, or -ECANCELED: stopping (disk errors come back in the log's report) */
}

static int rt_repl_entries(struct rt_repl *rp, const struct raft_update *up)
{
    int rc = 0;
    if (rp->log_apart) {
        return rt_repl_entries_apart(rp, up);
    }
    if (up->truncate_from != 0 && (up->flags & RAFT_UPD_SNAPSHOT) == 0) {
        rc = disk_log_truncate(rp->log, up->truncate_from - 1);
        /* The rewritten entries must be reported durable again. */
        rp->reported = RTE_MIN(rp->reported, up->truncate_from - 1);
    }
    if (rc == 0 && up->n_entries != 0) {
        rc = disk_log_append(rp->log, up->entries, up->n_entries);
        if (rc == ORDO_ENOSPACE) {
            rc = disk_log_sync(rp->log); /* backpressure: drain the staged write, retry */
            if (rc == 0) {
                rc = disk_log_append(rp->log, up->entries, up->n_entries);
            }
        }
    }
    if (rc != 0) {
        rt_repl_fail(rp, "log write", rc);
    }
    return rc;
}

static void rt_repl_reply(struct rt_repl *rp, const struct rt_batch_cmd *c,
                          const struct msg_client_reply *reply, struct rte_mbuf **out, uint32_t *n)
{
    struct rt *rt = rp->rt;
    struct rte_mbuf *m = rte_pktmbuf_alloc(rt->port.pool);
    if (m == NULL) {
        return;
    }
    struct rt_meta *meta = rt_repl_meta(m);
    meta->has_key = 0;
    meta->multi = c->multi;
    if (c->has_key) {
        const uint8_t *key = conf_client_key(rt->conf, c->req.client_id);
        if (key != NULL) {
            memcpy(meta->key.bytes, key, WIRE_KEY_LEN);
            meta->has_key = 1;
        }
    }
    struct frame_udp_addr *a = &meta->reply_addr;
    memcpy(a->src_mac, rt->port.mac.addr_bytes, FRAME_MAC_LEN);
    memcpy(a->dst_mac, c->dst_mac, FRAME_MAC_LEN);
    a->src_ip = rt->self->ipv4;
    a->dst_ip = c->dst_ip;
    a->src_port = rt->self->udp_port;
    a->dst_port = c->dst_port;
    if (rt_build_reply(rt, m, meta, reply)) {
        out[(*n)++] = m;
    }
}

/* Applies one committed batch; the leader answers every command. */
static int rt_repl_apply_batch(struct rt_repl *rp, const struct msg_entry *e, bool leader)
{
    struct rte_mbuf *out[CONF_MBUF_REPLIES_MAX]; /* counted in [replica] mbufs */
    uint32_t n = 0;
    struct rt_batch_iter it;
    struct rt_batch_cmd c;
    int rc = rt_batch_iter_init(&it, e->data, e->len);
    while (rc == 0 && (rc = rt_batch_next(&it, &c)) == 1) {
        struct msg_client_reply reply;
        rc = sess_execute_auth(rp->rt->sess, rp->rt->sm, e->index, &c.req, c.has_key, rp->result,
                               rp->rt->sm->result_max, &reply);
        if (rc < 0) {
            return rc; /* a local failure: the other replicas applied it (fail-stop) */
        }
        rc = 0;
        if (leader && c.dst_port != 0) { /* port 0: a probe's no-op, answered apart */
            rt_repl_reply(rp, &c, &reply, out, &n);
        }
        if (n == ORDO_ARRAY_LEN(out)) {
            net_stats_add(NET_CTR_REPLIES, rt_enqueue(rp->rt->tx_ring, out, n));
            n = 0;
        }
    }
    net_stats_add(NET_CTR_REPLIES, rt_enqueue(rp->rt->tx_ring, out, n));
    if (rc < 0) {
        net_stats_inc(NET_CTR_APPLY_ERRORS); /* malformed batch: the same on every replica */
    }
    return 0;
}

static void rt_repl_apply(struct rt_repl *rp, const struct raft_update *up)
{
    bool leader = up->role == RAFT_LEADER;
    for (uint32_t i = 0; i < up->n_committed; i++) {
        const struct msg_entry *e = &up->committed[i];
        if (e->index <= rp->applied) {
            continue; /* covered by a snapshot installed meanwhile */
        }
        sess_advance(rp->rt->sess, e->index);
        if (e->type == MSG_ENTRY_BATCH) {
            int rc = rt_repl_apply_batch(rp, e, leader);
            if (rc != 0) {
                rt_repl_fail(rp, "apply", rc);
                return;
            }
        }
        rp->applied = e->index;
        rt_audit_applied(rp, e->index);
    }
}

static void rt_repl_redirect(struct rt_repl *rp, struct rte_mbuf *m)
{
    struct rt *rt = rp->rt;
    struct rt_meta *meta = rt_repl_meta(m);
    struct msg out;
    memset(&out, 0, sizeof(out));
    out.hdr.type = MSG_REDIRECT;
    out.u.redirect.client_id = meta->req.client_id;
    out.u.redirect.request_no = meta->req.request_no;
    const struct conf_node *ln = conf_node_find(rt->conf, rt_member_redirect_to(rp));
    if (ln != NULL && ln->id != rt->self->id) {
        out.u.redirect.leader_id = ln->id;
        out.u.redirect.leader_ipv4 = ln->ipv4;
        out.u.redirect.leader_port = ln->udp_port;
        memcpy(out.u.redirect.leader_mac, ln->mac, 6);
    }
    rp->view.redirects++;
    if (rt_build_msg(rt, m, meta, &out)) {
        (void)rt_enqueue(rt->tx_ring, &m, 1);
    }
}

static void rt_repl_read_result(struct rt_repl *rp, const struct raft_read *r)
{
    for (uint32_t i = 0; i < rp->reads_n; i++) {
        struct rt_read *p = &rp->reads[(rp->reads_head + i) % RT_READS_MAX];
        if (p->id != r->id || p->m == NULL) {
            continue;
        }
        if (r->status != 0) {
            rt_repl_redirect(rp, p->m);
            p->m = NULL;
        } else {
            p->ready = 1;
            p->index = r->index;
        }
        return;
    }
}

/* Serves parked reads in order once the applied index reached their read index. */
static void rt_repl_serve_reads(struct rt_repl *rp)
{
    struct rt *rt = rp->rt;
    while (rp->reads_n != 0) {
        struct rt_read *p = &rp->reads[rp->reads_head];
        if (p->m != NULL && (!p->ready || p->index > rp->applied)) {
            return;
        }
        if (p->m != NULL) {
            struct rt_meta *meta = rt_repl_meta(p->m);
            struct msg_client_reply reply = {.client_id = meta->req.client_id,
                                             .request_no = meta->req.request_no};
            int st = sm_query(rt->sm, meta->req.op, meta->req.args, meta->req.args_len, rp->result,
                              rt->sm->result_max, &reply.result_len);
            reply.status = (uint8_t)(st >= 0 ? st : MSG_STATUS_BUSY);
            reply.result = rp->result;
            if (rt_build_reply(rt, p->m, meta, &reply)) {
                net_stats_add(NET_CTR_REPLIES, rt_enqueue(rt->tx_ring, &p->m, 1));
            }
            p->m = NULL;
        }
        rp->reads_head = (rp->reads_head + 1) % RT_READS_MAX;
        rp->reads_n--;
    }
}

static void rt_repl_view(struct rt_repl *rp)
{
    struct rt_repl_view *v = &rp->view;
    __atomic_store_n(&v->term, raft_term(rp->raft), __ATOMIC_RELAXED);
    __atomic_store_n(&v->commit, raft_commit_index(rp->raft), __ATOMIC_RELAXED);
    if (__atomic_load_n(&v->applied, __ATOMIC_RELAXED) != rp->applied) {
        rp->rt->sm->ops->digest(rp->rt->sm, v->digest); /* cheap: no scan of the state */
    }
    __atomic_store_n(&v->applied, rp->applied, __ATOMIC_RELAXED);
    __atomic_store_n(&v->durable, raft_durable_index(rp->raft), __ATOMIC_RELAXED);
    __atomic_store_n(&v->snapshot_index, rp->snap_index, __ATOMIC_RELAXED);
    __atomic_store_n(&v->last_index, raft_last_index(rp->raft), __ATOMIC_RELAXED);
    __atomic_store_n(&v->first_index, raft_first_index(rp->raft), __ATOMIC_RELAXED);
    __atomic_store_n(&v->role, rp->role, __ATOMIC_RELAXED);
    __atomic_store_n(&v->leader, rp->leader, __ATOMIC_RELAXED);
    if (!rp->log_apart) {
        rt_repl_log_stats(rp); /* else the log lcore publishes them */
    }
    if (rp->seq_apart) { /* the sequencer's "idle pipeline" close rule */
        uint32_t idle = raft_last_index(rp->raft) == raft_commit_index(rp->raft) ? 1u : 0u;
        __atomic_store_n(&rp->seq_idle, idle, __ATOMIC_RELAXED);
    }
    for (uint32_t i = 0; i < rp->rt->conf->nodes_n; i++) {
        uint32_t id = rp->rt->conf->nodes[i].id;
        uint64_t mi =
            id == rp->rt->self->id ? raft_durable_index(rp->raft) : raft_match_index(rp->raft, id);
        __atomic_store_n(&v->match[i], mi, __ATOMIC_RELAXED);
    }
}

static void rt_repl_role(struct rt_repl *rp, const struct raft_update *up)
{
    if (up->role == rp->role && up->leader_id == rp->leader) {
        return;
    }
    if (up->role == RAFT_LEADER && rp->role != RAFT_LEADER) {
        rp->view.elections_won++;
    }
    RTE_LOG(NOTICE, USER1, "ordo: node %u: role %s -> %s, term %" PRIu64 ", leader %u\n",
            rp->rt->self->id, rt_repl_role_name(rp->role), rt_repl_role_name(up->role), up->term,
            up->leader_id);
    if (rp->role == RAFT_LEADER && up->role != RAFT_LEADER) {
        rt_repl_probes_flush(rp);
    }
    rp->role = up->role;
    rp->leader = up->leader_id;
    /* For a sequencer on its own lcore: it batches writes only while this replica leads. */
    __atomic_store_n(&rp->seq_leader, rp->role == RAFT_LEADER ? 1u : 0u, __ATOMIC_RELEASE);
}

/* Term and vote on stable storage before the update's messages leave (the log lcore's
 * command when the log runs apart: the core waits for it, rare). */
static int rt_repl_hard_state(struct rt_repl *rp, const struct raft_update *up)
{
    struct disk_hard_state hs = {.term = up->term, .voted_for = up->voted_for};
    int rc = rp->log_apart ? rt_pipe_log_hard_state(&rp->log_q, &hs)
                           : disk_log_hard_state_save(rp->log, &hs);
    if (rc != 0 && rc != -ECANCELED) {
        rt_repl_fail(rp, "hard state", rc);
    }
    return rc;
}

/* The log lcore's fatal error, checked before any update goes out: once the log failed,
 * nothing more leaves this replica (the log's own report is read once per round anyway). */
static bool rt_repl_log_broken(struct rt_repl *rp)
{
    struct rt_pipe_report r;
    rt_pipe_log_report(&rp->log_q, &r);
    if (r.error == 0) {
        return false;
    }
    rt_repl_fail(rp, "log", (int)r.error);
    return true;
}

static void rt_repl_handle(struct rt_repl *rp, struct raft_update *up)
{
    if (rp->rt->failed != 0 || (rp->log_apart && rt_repl_log_broken(rp))) {
        return; /* fail-stopped: never acknowledge anything again */
    }
    if ((up->flags & RAFT_UPD_HARD_STATE) != 0 && rt_repl_hard_state(rp, up) != 0) {
        return; /* nothing sent */
    }
    if ((up->flags & RAFT_UPD_SNAPSHOT) != 0 && rt_repl_install(rp, up) != 0) {
        return;
    }
    if ((up->flags & RAFT_UPD_ENTRIES) != 0 && rt_repl_entries(rp, up) != 0) {
        return;
    }
    rt_repl_send(rp, up);
    rt_repl_role(rp, up);
    rt_member_update(rp, up);
    rt_repl_apply(rp, up);
    for (uint32_t i = 0; i < up->n_reads; i++) {
        rt_repl_read_result(rp, &up->reads[i]);
    }
    rt_audit_received(rp, up);
    rp->next_tick_ms = up->next_timeout_ms;
    rt_snap_policy(rp, up->snapshot_wanted);
}

void rt_repl_handle_update(struct rt_repl *rp, struct raft_update *up)
{
    rt_repl_handle(rp, up);
}

/* The log lcore's report: its durable index and that entry's term (*term 0: unknown). A
 * report from before the last truncation command is stale: *durable stays 0. */
static int rt_repl_log_remote(struct rt_repl *rp, uint64_t *durable, uint64_t *term)
{
    struct rt_pipe_report r;
    rt_pipe_log_report(&rp->log_q, &r);
    if (r.error != 0) {
        return (int)r.error;
    }
    __atomic_store_n(&rp->log_writing, (uint32_t)r.writing, __ATOMIC_RELAXED);
    if (r.done >= rp->log_trunc_seq) {
        *durable = r.durable;
        *term = r.term;
    }
    return 0;
}

/* The log driven here: reap completions, let the open batch close on a completed write
 * before the next write is submitted (it then rides that write), submit. */
static int rt_repl_log_local(struct rt_repl *rp, uint64_t *durable)
{
    int rc = disk_log_reap(rp->log);
    if (rc > 0) {
        rt_repl_batch_check(rp, rte_rdtsc(), true);
    }
    if (rc >= 0) {
        rc = disk_log_poll(rp->log, durable);
    }
    return rc;
}

/* Log stage: reap io_uring completions (or read the log lcore's report) and report the
 * durable index (a snapshot covers what it replaced, so its index counts as durable too). */
static uint32_t rt_repl_log(struct rt_repl *rp)
{
    uint64_t durable = 0;
    uint64_t dterm = 0;
    int rc =
        rp->log_apart ? rt_repl_log_remote(rp, &durable, &dterm) : rt_repl_log_local(rp, &durable);
    if (rc < 0) {
        rt_repl_fail(rp, "log", rc);
        return 0;
    }
    if (rp->seq_apart && !rp->log_apart) {
        __atomic_store_n(&rp->log_writing, disk_log_writing(rp->log) ? 1u : 0u, __ATOMIC_RELAXED);
    }
    uint64_t idx = RTE_MAX(durable, rp->snap_index);
    if (idx <= rp->reported && rp->reported != 0) {
        return (uint32_t)rc;
    }
    uint64_t term = idx == durable ? dterm : 0;
    if (idx == rp->snap_index || (!rp->log_apart && disk_log_term_at(rp->log, idx, &term) != 0) ||
        term == 0) {
        term = raft_term_at(rp->raft, idx);
    }
    rp->reported = idx;
    if (idx == 0) {
        return (uint32_t)rc;
    }
    struct raft_event ev = {.type = RAFT_EV_PERSISTED};
    ev.u.persisted.index = idx;
    ev.u.persisted.term = term;
    rt_repl_step(rp, &ev, NULL);
    return 1;
}

/* A refused proposal (leadership lost, too many uncommitted entries): every command of the
 * batch is answered BUSY at once, from the addresses in the batch, so clients retry now
 * (and are redirected if leadership moved) instead of after their timeout. */
static void rt_repl_refuse(struct rt_repl *rp, const uint8_t *batch, uint32_t len)
{
    struct rte_mbuf *out[64];
    uint32_t n = 0;
    struct rt_batch_iter it;
    struct rt_batch_cmd c;
    if (rt_batch_iter_init(&it, batch, len) != 0) {
        return;
    }
    while (rt_batch_next(&it, &c) == 1) {
        if (c.dst_port == 0) {
            continue; /* a probe's no-op: the probe is dropped (rt_repl_probes_assign) */
        }
        struct msg_client_reply reply = {.client_id = c.req.client_id,
                                         .request_no = c.req.request_no,
                                         .status = MSG_STATUS_BUSY};
        rt_repl_reply(rp, &c, &reply, out, &n);
        if (n == ORDO_ARRAY_LEN(out)) {
            (void)rt_enqueue(rp->rt->tx_ring, out, n);
            n = 0;
        }
        net_stats_inc(NET_CTR_RING_FULL);
    }
    (void)rt_enqueue(rp->rt->tx_ring, out, n);
}

static void rt_repl_probe_drop(struct rt_repl *rp, struct rte_mbuf *m)
{
    rte_pktmbuf_free(m);
    rp->probes_dropped++;
}

/* The open batch was just proposed (accepted: its entry is the last in the log) or refused:
 * the probes parked for it (index 0, at the tail of the FIFO) get its index or are dropped. */
static void rt_repl_probes_assign(struct rt_repl *rp, bool accepted)
{
    uint64_t index = raft_last_index(rp->raft);
    while (rp->probes_n != 0) {
        uint32_t i = (rp->probes_head + rp->probes_n - 1) % RT_PROBES_MAX;
        struct rt_probe *p = &rp->probes[i];
        if (p->index != 0) {
            return; /* older probes belong to earlier batches */
        }
        if (accepted) {
            /* Walk back over every unassigned probe: all of them ride this batch. */
            for (uint32_t k = 0; k < rp->probes_n; k++) {
                struct rt_probe *q = &rp->probes[(i + RT_PROBES_MAX - k) % RT_PROBES_MAX];
                if (q->index != 0) {
                    break;
                }
                q->index = index;
            }
            return;
        }
        rt_repl_probe_drop(rp, p->m);
        p->m = NULL;
        rp->probes_n--;
    }
}

/* Drops every parked probe (leadership lost: their entries may never commit here). */
static void rt_repl_probes_flush(struct rt_repl *rp)
{
    while (rp->probes_n != 0) {
        struct rt_probe *p = &rp->probes[rp->probes_head];
        rt_repl_probe_drop(rp, p->m);
        p->m = NULL;
        rp->probes_head = (rp->probes_head + 1) % RT_PROBES_MAX;
        rp->probes_n--;
    }
}

/* Answers, in order, the probes whose entry is applied: the frame itself with addresses
 * swapped, the 16 probe bytes untouched (the same answer as the single-replica runtime). */
static void rt_repl_serve_probes(struct rt_repl *rp)
{
    while (rp->probes_n != 0) {
        struct rt_probe *p = &rp->probes[rp->probes_head];
        if (p->index == 0 || p->index > rp->applied) {
            return;
        }
        struct rte_mbuf *m = p->m;
        p->m = NULL;
        rp->probes_head = (rp->probes_head + 1) % RT_PROBES_MAX;
        rp->probes_n--;
        m->ol_flags = 0;
        if (frame_swap_reply(rte_pktmbuf_mtod(m, uint8_t *), m->data_len) != 0) {
            rt_repl_probe_drop(rp, m);
            continue;
        }
        net_stats_add(NET_CTR_REPLIES, rt_enqueue(rp->rt->tx_ring, &m, 1));
    }
}

/* Proposes one batch as one entry (the core copies it); a refusal answers it BUSY. */
static int rt_repl_propose_batch(struct rt_repl *rp, const uint8_t *batch, uint32_t len)
{
    uint32_t n = rt_batch_count(batch, len);
    struct raft_event ev = {.type = RAFT_EV_PROPOSE};
    ev.u.propose.data = batch;
    ev.u.propose.len = len;
    int rc = 0;
    rt_repl_step(rp, &ev, &rc);
    if (rc == 0) {
        rp->view.batches++;
        rp->view.batch_cmds += n;
        rp->view.batch_bytes += len;
        rp->view.batch_cmds_max = RTE_MAX(rp->view.batch_cmds_max, (uint64_t)n);
    } else {
        rt_repl_refuse(rp, batch, len);
    }
    return rc;
}

static void rt_repl_propose(struct rt_repl *rp)
{
    if (rp->batch_open_tsc == 0) {
        return;
    }
    int rc = rt_repl_propose_batch(rp, rp->batch, rp->batch_len);
    rt_repl_probes_assign(rp, rc == 0);
    rp->batch_open_tsc = 0;
}

/* Adds a write to the open batch (closing it when full). The request's bytes are copied, so
 * the mbuf is freed here; the reply is built from the batch at apply time. */
static void rt_repl_batch_add(struct rt_repl *rp, struct rte_mbuf *m)
{
    struct rt_meta *meta = rt_repl_meta(m);
    struct rt_batch_cmd c;
    rt_repl_cmd_of(&c, meta);
    if (RT_BATCH_HDR_LEN + rt_batch_cmd_len(&c) > rp->batch_cap) {
        struct msg_client_reply reply = {.client_id = c.req.client_id,
                                         .request_no = c.req.request_no,
                                         .status = MSG_STATUS_TOO_LARGE};
        if (rt_build_reply(rp->rt, m, meta, &reply)) {
            (void)rt_enqueue(rp->rt->tx_ring, &m, 1);
        }
        return;
    }
    for (int tries = 0; tries < 2; tries++) {
        if (rp->batch_open_tsc == 0) {
            rp->batch_len = rt_batch_init(rp->batch);
            rp->batch_open_tsc = rte_rdtsc();
        }
        if (rt_batch_add(rp->batch, rp->batch_cap, &rp->batch_len, &c) == 0) {
            break;
        }
        rp->view.batch_close[0]++; /* closed full (count or bytes) */
        rt_repl_propose(rp);
    }
    rte_pktmbuf_free(m);
    if (rt_batch_count(rp->batch, rp->batch_len) >= rp->batch_count_max) {
        rp->view.batch_close[0]++; /* closed full (count or bytes) */
        rt_repl_propose(rp);
    }
}

/* Group commit at the entry level (rt_batch_close_rule): an idle pipeline proposes at once;
 * under load the batch grows while the log writes and closes when a write completes, so that
 * everything gathered meanwhile rides the next write; bounded by RT_BATCH_HOLD_MAX x
 * batch_time_us and the count/byte limits. */
static uint8_t rt_repl_log_writing(const struct rt_repl *rp)
{
    if (rp->log_apart) {
        return __atomic_load_n(&rp->log_writing, __ATOMIC_RELAXED) != 0 ? 1u : 0u;
    }
    return disk_log_writing(rp->log) ? 1u : 0u;
}

static void rt_repl_batch_check(struct rt_repl *rp, uint64_t tsc, bool log_done)
{
    if (rp->batch_open_tsc == 0) {
        return;
    }
    struct rt_batch_clock c = {.age = tsc - rp->batch_open_tsc,
                               .time = rp->batch_time_tsc,
                               .hold_max = rp->batch_time_tsc * RT_BATCH_HOLD_MAX,
                               .log_writing = rt_repl_log_writing(rp),
                               .log_done = log_done};
    c.idle = raft_last_index(rp->raft) == raft_commit_index(rp->raft) &&
             rte_ring_count(rp->rt->req_ring) == 0;
    enum rt_batch_close why = rt_batch_close_rule(&c);
    if (why != RT_BATCH_KEEP) {
        rp->view.batch_close[why]++;
        rt_repl_propose(rp);
    }
}

static void rt_repl_read(struct rt_repl *rp, struct rte_mbuf *m)
{
    if (rp->reads_n == RT_READS_MAX) {
        rte_pktmbuf_free(m); /* backpressure: the client retries */
        net_stats_inc(NET_CTR_RING_FULL);
        return;
    }
    struct rt_read *p = &rp->reads[(rp->reads_head + rp->reads_n) % RT_READS_MAX];
    p->id = ++rp->read_seq;
    p->m = m;
    p->ready = 0;
    rp->reads_n++;
    rp->view.reads++;
    struct raft_event ev = {.type = RAFT_EV_READ};
    ev.u.read.id = p->id;
    rt_repl_step(rp, &ev, NULL);
}

/* Reads go through ReadIndex, not the log. A session client's read still counts in its request
 * numbering, so the read of a client unknown to this replica's table goes through the log:
 * applied, it gets SESSION_EXPIRED if the client has no session (this leader may not have
 * applied its registration yet, so it cannot refuse it here). A registration is a write. */
static bool rt_repl_by_read_index(struct rt_repl *rp, const struct msg_client_request *req)
{
    struct rt *rt = rp->rt;
    if (sess_is_register(req->flags) || !rt->sm->ops->is_read(rt->sm, req->op)) {
        return false;
    }
    return sess_bypass(req->flags) || sess_known(rt->sess, req->client_id);
}

/* A probe is a no-op command in the open batch, answered once its entry is applied: its
 * round trip is the commit latency of a write. Only the leader takes probes; a follower or a
 * server outside the configuration drops them (pktgen cannot follow a redirect), counted in
 * probes_dropped. */
static void rt_repl_probe(struct rt_repl *rp, struct rte_mbuf *m)
{
    struct rt_batch_cmd c;
    memset(&c, 0, sizeof(c)); /* dst_port 0: no client reply for this command */
    c.req.flags = MSG_REQ_NO_SESSION;
    c.req.op = MSG_OP_NOOP;
    if (!rt_member_serves(rp) || rp->role != RAFT_LEADER || rp->probes_n == RT_PROBES_MAX) {
        rt_repl_probe_drop(rp, m);
        return;
    }
    bool added =
        rp->batch_open_tsc != 0 && rt_batch_add(rp->batch, rp->batch_cap, &rp->batch_len, &c) == 0;
    if (!added) {
        if (rp->batch_open_tsc != 0) {
            rp->view.batch_close[0]++; /* closed full (count or bytes) */
            rt_repl_propose(rp);       /* full: the earlier probes ride it, this one the next */
        }
        rp->batch_len = rt_batch_init(rp->batch);
        rp->batch_open_tsc = rte_rdtsc();
        ORDO_ASSERT(rt_batch_add(rp->batch, rp->batch_cap, &rp->batch_len, &c) == 0);
    }
    struct rt_probe *p = &rp->probes[(rp->probes_head + rp->probes_n) % RT_PROBES_MAX];
    p->m = m;
    p->index = 0;
    rp->probes_n++;
    if (rt_batch_count(rp->batch, rp->batch_len) >= rp->batch_count_max) {
        rp->view.batch_close[0]++; /* closed full (count or bytes) */
        rt_repl_propose(rp);
    }
}

static void rt_repl_request(struct rt_repl *rp, struct rte_mbuf *m)
{
    struct rt_meta *meta = rt_repl_meta(m);
    if (meta->kind == RT_META_PROBE) {
        rt_repl_probe(rp, m);
        return;
    }
    if (!rt_member_serves(rp)) {
        rte_pktmbuf_free(m); /* a spare: clients move on at their timeout (rt_member.h) */
    } else if (rp->role != RAFT_LEADER) {
        rt_repl_redirect(rp, m);
    } else if (rt_repl_by_read_index(rp, &meta->req)) {
        rt_repl_read(rp, m);
    } else {
        rt_repl_batch_add(rp, m);
    }
}

static uint32_t rt_repl_peers(struct rt_repl *rp)
{
    struct rte_mbuf *in[64];
    uint32_t n = rte_ring_dequeue_burst(rp->rt->peer_ring, (void **)in, 64, NULL);
    for (uint32_t i = 0; i < n; i++) {
        struct rt_meta *meta = rt_repl_meta(in[i]);
        const uint8_t *p = rte_pktmbuf_mtod(in[i], const uint8_t *) + meta->payload_off;
        struct msg msg;
        int rc = wire_decode(p, meta->payload_len, &msg, rp->rx_entries, MSG_ENTRIES_MAX);
        if (rc == 0) {
            struct raft_event ev = {.type = RAFT_EV_RECEIVE};
            ev.u.receive.msg = &msg;
            rt_repl_step(rp, &ev, NULL);
        } else {
            net_stats_inc(net_stats_malformed_ctr(rc));
        }
        rte_pktmbuf_free(in[i]);
    }
    return n;
}

/* The sequencer on its own lcore: the requests it left to the core (reads, probes, anything
 * while not leading, no buffer free), then its sealed batches in order, each proposed as one
 * entry (refused BUSY when this replica no longer leads) and its buffer recycled. */
static uint32_t rt_repl_seq_intake(struct rt_repl *rp)
{
    struct rte_mbuf *in[RT_BURST_MAX];
    uint32_t n = rte_ring_sc_dequeue_burst(rp->seq_fwd, (void **)in, rp->rt->rx_burst, NULL);
    for (uint32_t i = 0; i < n; i++) {
        rt_repl_request(rp, in[i]);
    }
    struct rt_pipe_buf *b;
    while ((b = rt_pipe_take(&rp->seq_pool)) != NULL) {
        (void)rt_repl_propose_batch(rp, b->data, b->len);
        rt_pipe_put(&rp->seq_pool, b);
        n++;
    }
    return n;
}

/* Operator requests queued by the telemetry thread: a leadership transfer (refused by the
 * core on a follower or during another transfer) and a snapshot at the applied index. */
static void rt_repl_admin(struct rt_repl *rp)
{
    uint64_t t = __atomic_exchange_n(&rp->admin_transfer, 0, __ATOMIC_ACQ_REL);
    if (t != 0) {
        struct raft_event ev = {.type = RAFT_EV_TRANSFER};
        ev.u.transfer.target = (uint32_t)(t & ~RT_ADMIN_PENDING);
        int rc = 0;
        rt_repl_step(rp, &ev, &rc);
        RTE_LOG(NOTICE, USER1, "ordo: node %u: admin: leadership transfer to %u: %s\n",
                rp->rt->self->id, ev.u.transfer.target, rc == 0 ? "started" : ordo_strerror(rc));
    }
    if (__atomic_exchange_n(&rp->admin_snapshot, 0, __ATOMIC_ACQ_REL) != 0) {
        (void)rt_snap_request(rp); /* in the background (snapshot_mode = fork) */
    }
}

uint32_t rt_repl_stage(struct rt *rt)
{
    struct rt_repl *rp = rt->repl;
    if (rt->failed != 0) {
        return 0;
    }
    uint64_t tsc = rte_rdtsc();
    rp->now_ms = (tsc - rp->tsc0) / (rp->tsc_hz / 1000u);
    /* Peers before the tick: after a stall (shared cores) the heartbeats already queued
     * must count before the election timer is judged. */
    uint32_t work = rt_repl_peers(rp);
    if (rp->now_ms >= rp->next_tick_ms) {
        struct raft_event ev = {.type = RAFT_EV_TICK};
        rt_repl_step(rp, &ev, NULL);
    }
    if (rp->seq_apart) {
        work += rt_repl_seq_intake(rp);
    } else {
        struct rte_mbuf *in[RT_BURST_MAX];
        uint32_t n = rte_ring_dequeue_burst(rt->req_ring, (void **)in, rt->rx_burst, NULL);
        for (uint32_t i = 0; i < n; i++) {
            rt_repl_request(rp, in[i]);
        }
        work += n;
    }
    rt_repl_batch_check(rp, tsc, false);
    work += rt_repl_log(rp);
    work += rt_snap_poll(rp);
    rt_repl_admin(rp);
    rt_member_round(rp);
    rt_repl_serve_reads(rp);
    rt_repl_serve_probes(rp);
    rt_audit_round(rp);
    rt_repl_view(rp);
    return work;
}
