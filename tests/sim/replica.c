/* One simulated replica: the real Raft core, the key-value state machine with its session
 * table, a minimal simulated disk, and the caller's duties from struct raft_update carried
 * out in the documented order (hard state, snapshot, entries, send, apply). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/sm_kv.h"
#include "tests/sim/world.h"

#define REPLICA_CMD_HDR 27u /* addr u32, client u64, request u64, flags u16, op u8, len u32 */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint64_t replica_last_index(const struct world_replica *rep)
{
    return rep->disk.snap_index + rep->disk.n;
}

static const struct world_ent *replica_ent(const struct world_replica *rep, uint64_t index)
{
    const struct world_disk *d = &rep->disk;
    if (index <= d->snap_index || index > d->snap_index + d->n) {
        return NULL;
    }
    return &d->log[index - d->snap_index - 1];
}

uint64_t replica_entry_term(const struct world_replica *rep, uint64_t index)
{
    const struct world_ent *e = replica_ent(rep, index);
    if (e != NULL) {
        return e->term;
    }
    return index == rep->disk.snap_index ? rep->disk.snap_term : 0;
}

uint64_t replica_entry_chain(const struct world_replica *rep, uint64_t index)
{
    const struct world_ent *e = replica_ent(rep, index);
    if (e != NULL) {
        return e->chain;
    }
    return index == rep->disk.snap_index ? rep->disk.snap_chain : WORLD_NEVER;
}

static void replica_drop_tail(struct world_disk *d, size_t keep)
{
    for (size_t i = keep; i < d->n; i++) {
        free(d->log[i].data);
    }
    if (keep < d->n) {
        d->n = keep;
    }
    if (d->n_durable > d->n) {
        d->n_durable = d->n;
    }
    if (d->sync_upto > d->n) {
        d->sync_upto = d->n;
    }
}

/* Cuts the written log after `last` (a crash of the twin disk kept only that much); what is
 * left is durable. */
void replica_mirror_cut(struct world_replica *rep, uint64_t last)
{
    struct world_disk *d = &rep->disk;
    replica_drop_tail(d, last > d->snap_index ? last - d->snap_index : 0);
    d->n_durable = d->n;
    d->sync_at = WORLD_NEVER;
}

/* Drops the first k entries (now covered by a snapshot). */
static void replica_drop_head(struct world_disk *d, size_t k)
{
    k = k < d->n ? k : d->n;
    for (size_t i = 0; i < k; i++) {
        free(d->log[i].data);
    }
    if (k > 0) {
        memmove(d->log, d->log + k, (d->n - k) * sizeof(*d->log));
    }
    d->n -= k;
    d->n_durable = d->n_durable > k ? d->n_durable - k : 0;
    d->sync_upto = d->sync_upto > k ? d->sync_upto - k : 0;
}

static int replica_sm_new(struct world *w, struct sm **sm, struct sess_table **sess)
{
    /* Small values keep the session table's up-front reply space small (restarts are many). */
    struct sess_config sc = {.sessions_max = w->p.sessions_max, .reply_max = 64};
    struct sm_kv_config kc = {.value_max = 64};
    int rc = sm_kv_create(&kc, sm);
    if (rc == 0) {
        rc = sess_create(&sc, sess);
    }
    return rc;
}

/* Loads sessions then the key-value store from snapshot bytes into fresh instances. */
static int replica_sm_load(struct world *w, const uint8_t *data, uint64_t len, struct sm **sm,
                           struct sess_table **sess)
{
    *sm = NULL;
    *sess = NULL;
    int rc = replica_sm_new(w, sm, sess);
    struct sm_mem_source src = {.data = data, .len = len};
    if (rc == 0 && len > 0) {
        rc = sess_snapshot_read(*sess, sm_mem_source_read, &src);
    }
    if (rc == 0 && len > 0) {
        rc = sm_snapshot_read(*sm, sm_mem_source_read, &src);
    }
    if (rc == 0 && src.pos != src.len) {
        rc = ORDO_EMALFORMED;
    }
    if (rc != 0) {
        sm_destroy(*sm);
        sess_destroy(*sess);
        *sm = NULL;
        *sess = NULL;
    }
    return rc;
}

static void replica_send(struct world *w, struct world_replica *rep, uint32_t to,
                         const struct msg *m)
{
    if (vnet_send(&w->net, w->now, rep->id, to, m) < 0) {
        world_fail(w, "out of memory in the simulated network");
    }
}

static void replica_reply(struct world *w, struct world_replica *rep, uint32_t addr,
                          const struct msg_client_reply *r)
{
    struct msg m = {.hdr = {.version = 1, .type = MSG_CLIENT_REPLY, .sender = rep->id}};
    m.u.reply = *r;
    replica_send(w, rep, addr, &m);
}

static void replica_redirect(struct world *w, struct world_replica *rep, uint32_t addr,
                             uint64_t client_id, uint64_t request_no)
{
    struct msg m = {.hdr = {.version = 1, .type = MSG_REDIRECT, .sender = rep->id}};
    m.u.redirect.client_id = client_id;
    m.u.redirect.request_no = request_no;
    m.u.redirect.leader_id = rep->raft ? raft_leader(rep->raft) : MSG_NODE_NONE;
    replica_send(w, rep, addr, &m);
}

/* WORLD_MUT_FIRST_OPENS: the rule registration replaced, where request 1 of a client the
 * table does not know is applied and opens a session, so a delayed retry of an applied
 * request 1 whose session was evicted is applied again. Returns 1 if it applied req. */
static int replica_first_opens(struct world_replica *rep, uint64_t index,
                               const struct msg_client_request *req, uint8_t *out, uint32_t cap,
                               struct msg_client_reply *reply)
{
    uint32_t len = 0;
    if (sess_is_register(req->flags) || sess_bypass(req->flags) || req->request_no != 1 ||
        sess_known(rep->sess, req->client_id)) {
        return 0;
    }
    int st = sm_apply(rep->sm, req->op, req->args, req->args_len, out, cap, &len);
    if (st < 0) {
        return 0;
    }
    (void)sess_record(rep->sess, req->client_id, 1, index, (uint8_t)st, out, len);
    *reply = (struct msg_client_reply){req->client_id, 1, (uint8_t)st, len, out};
    return 1;
}

/* Applies one client command of a committed batch through the session table. */
static void replica_apply_cmd(struct world *w, struct world_replica *rep, uint64_t index,
                              const uint8_t *p, uint32_t args_len)
{
    uint32_t addr = (uint32_t)get_le(p, 4);
    struct msg_client_request req = {
        .client_id = get_le(p + 4, 8),
        .request_no = get_le(p + 12, 8),
        .flags = (uint16_t)get_le(p + 20, 2),
        .op = p[22],
        .args_len = args_len,
        .args = p + REPLICA_CMD_HDR,
    };
    int reg = sess_is_register(req.flags);
    if ((w->p.mutation & WORLD_MUT_NO_SESSIONS) && !reg) {
        req.flags |= MSG_REQ_NO_SESSION;
    }
    int fresh = !reg && (sess_bypass(req.flags) ||
                         sess_lookup(rep->sess, req.client_id, req.request_no, NULL) == SESS_NEW);
    static uint8_t out[SM_KV_VALUE_MAX + 64];
    struct msg_client_reply reply;
    int rc = 0;
    if ((w->p.mutation & WORLD_MUT_FIRST_OPENS) &&
        replica_first_opens(rep, index, &req, out, sizeof(out), &reply)) {
        fresh = 1;
    } else {
        rc = sess_execute(rep->sess, rep->sm, index, &req, out, sizeof(out), &reply);
    }
    if (rc < 0) {
        world_fail(w, "replica %u: sess_execute at %lu: %s", rep->id, (unsigned long)index,
                   ordo_strerror(rc));
        return;
    }
    /* Simulated clients never ask for at-least-once, so every command counts; an assigned
     * id (as request number 0) must come from one index only: ids are never reused. */
    if (fresh) {
        check_once(w, req.client_id, req.request_no, index);
    }
    if (reg && reply.status == MSG_STATUS_OK && reply.result_len == SESS_REGISTER_RESULT_LEN) {
        check_once(w, get_le(reply.result, 8), 0, index);
    }
    if (rep->role == RAFT_LEADER) {
        replica_reply(w, rep, addr, &reply);
    }
}

static void replica_apply_batch(struct world *w, struct world_replica *rep,
                                const struct msg_entry *e)
{
    if (e->len < 4) {
        world_fail(w, "replica %u: batch at %lu too short", rep->id, (unsigned long)e->index);
        return;
    }
    uint32_t n = (uint32_t)get_le(e->data, 4);
    uint32_t pos = 4;
    for (uint32_t i = 0; i < n && !w->failed; i++) {
        if (e->len - pos < REPLICA_CMD_HDR) {
            world_fail(w, "replica %u: batch at %lu truncated", rep->id, (unsigned long)e->index);
            return;
        }
        uint32_t args_len = (uint32_t)get_le(e->data + pos + 23, 4);
        if (e->len - pos - REPLICA_CMD_HDR < args_len) {
            world_fail(w, "replica %u: batch args truncated", rep->id);
            return;
        }
        replica_apply_cmd(w, rep, e->index, e->data + pos, args_len);
        pos += REPLICA_CMD_HDR + args_len;
    }
}

static void replica_apply(struct world *w, struct world_replica *rep, const struct msg_entry *e)
{
    if (e->index != rep->applied + 1) {
        world_fail(w, "replica %u: applying %lu after %lu (gap)", rep->id, (unsigned long)e->index,
                   (unsigned long)rep->applied);
        return;
    }
    sess_advance(rep->sess, e->index);
    if (e->type == MSG_ENTRY_BATCH) {
        replica_apply_batch(w, rep, e);
    }
    rep->applied = e->index;
    check_applied(w, rep, e->index);
    if (e->index % 16 == 0) {
        /* Auditing (DESIGN.md step 6): peers compare digests carried in heartbeats. */
        rep->digest_index = e->index;
        sm_digest(rep->sm, rep->digest);
    }
}

static void replica_serve_one(struct world *w, struct world_replica *rep,
                              const struct world_read *rd)
{
    static uint8_t out[SM_KV_VALUE_MAX + 64];
    struct msg_client_reply reply = {.client_id = rd->client_id, .request_no = rd->request_no};
    uint32_t out_len = 0;
    int st = sm_query(rep->sm, rd->op, rd->args, rd->args_len, out, sizeof(out), &out_len);
    reply.status = (uint8_t)(st < 0 ? MSG_STATUS_BUSY : st);
    reply.result = out;
    reply.result_len = out_len;
    replica_reply(w, rep, rd->client_addr, &reply);
    w->count.reads++;
}

/* Serves ReadIndex reads whose index is applied (dissertation 6.4 step 4). */
static void replica_serve_reads(struct world *w, struct world_replica *rep)
{
    for (size_t i = 0; i < rep->n_reads;) {
        struct world_read *rd = &rep->reads[i];
        if (rd->index == 0 || rd->index > rep->applied) {
            i++;
            continue;
        }
        replica_serve_one(w, rep, rd);
        rep->reads[i] = rep->reads[--rep->n_reads];
    }
}

static void replica_reads_update(struct world *w, struct world_replica *rep,
                                 const struct raft_update *up)
{
    for (uint32_t i = 0; i < up->n_reads; i++) {
        for (size_t j = 0; j < rep->n_reads; j++) {
            struct world_read *rd = &rep->reads[j];
            if (rd->id != up->reads[i].id) {
                continue;
            }
            if (up->reads[i].status == 0) {
                rd->index = up->reads[i].index;
            } else {
                replica_redirect(w, rep, rd->client_addr, rd->client_id, rd->request_no);
                rep->reads[j] = rep->reads[--rep->n_reads];
            }
            break;
        }
    }
    replica_serve_reads(w, rep);
}

static int replica_append(struct world *w, struct world_replica *rep, const struct msg_entry *e)
{
    struct world_disk *d = &rep->disk;
    if (e->index != replica_last_index(rep) + 1) {
        world_fail(w, "replica %u: core asked to write %lu after %lu (not contiguous)", rep->id,
                   (unsigned long)e->index, (unsigned long)replica_last_index(rep));
        return -EINVAL;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct world_ent *log = realloc(d->log, cap * sizeof(*log));
        if (log == NULL) {
            return -ENOMEM;
        }
        d->log = log;
        d->cap = cap;
    }
    struct world_ent *x = &d->log[d->n];
    x->term = e->term;
    x->type = e->type;
    x->len = e->len;
    x->data = malloc(e->len ? e->len : 1);
    if (x->data == NULL) {
        return -ENOMEM;
    }
    if (e->len > 0) {
        memcpy(x->data, e->data, e->len);
    }
    x->dhash = world_hash(e->data, e->len, e->type);
    uint64_t prev = d->n ? d->log[d->n - 1].chain : d->snap_chain;
    x->chain = world_mix(prev, world_mix(x->term, x->dhash));
    d->n++;
    if (e->type == MSG_ENTRY_CONFIG) {
        struct msg_config c;
        if (raft_config_decode(e->data, e->len, &c) == 0) {
            check_config_written(w, e->index, &c);
        }
    }
    return 0;
}

static void replica_write(struct world *w, struct world_replica *rep, const struct raft_update *up)
{
    struct world_disk *d = &rep->disk;
    if (up->truncate_from != 0) {
        if (up->truncate_from <= d->snap_index) {
            world_fail(w, "replica %u: truncate_from %lu inside the snapshot (%lu)", rep->id,
                       (unsigned long)up->truncate_from, (unsigned long)d->snap_index);
            return;
        }
        replica_drop_tail(d, up->truncate_from - d->snap_index - 1);
        /* The rewritten entries must be reported durable again (the core lowered its
         * durable index with the truncation). */
        if (rep->persisted >= up->truncate_from) {
            rep->persisted = up->truncate_from - 1;
        }
    }
    for (uint32_t i = 0; i < up->n_entries && !w->failed; i++) {
        if (replica_append(w, rep, &up->entries[i]) == -ENOMEM) {
            world_fail(w, "out of memory writing entries");
        }
    }
    if (rep->twin != NULL && !w->failed) {
        twin_write(w, rep, up->truncate_from, up->entries, up->n_entries);
        d->sync_at = up->n_entries > 0 ? w->now : d->sync_at;
    }
    if (up->n_entries > 0) {
        check_written(w, rep, up->entries[0].index, up->entries[up->n_entries - 1].index);
        if (d->sync_at == WORLD_NEVER) {
            d->sync_at = w->now + rng_below(&w->rng, w->p.disk_max_ms + 1u);
            d->sync_upto = d->n;
        }
    }
}

/* A snapshot from the leader replaces the state machine and the log prefix (7.2). */
static void replica_install(struct world *w, struct world_replica *rep,
                            const struct raft_snapshot_install *s)
{
    struct sm *sm;
    struct sess_table *sess;
    int rc = replica_sm_load(w, s->data, s->len, &sm, &sess);
    if (rc != 0) {
        world_fail(w, "replica %u: snapshot at %lu does not load: %s", rep->id,
                   (unsigned long)s->index, ordo_strerror(rc));
        return;
    }
    sm_destroy(rep->sm);
    sess_destroy(rep->sess);
    rep->sm = sm;
    rep->sess = sess;
    rep->applied = s->index;
    w->count.snaps_installed++;
    struct world_disk *d = &rep->disk;
    uint64_t keep_from = s->index + 1;
    int conflict = replica_entry_term(rep, s->index) != s->term;
    if (conflict) {
        keep_from = replica_last_index(rep) + 1; /* no matching entry: drop the whole log */
    }
    uint8_t *copy = malloc(s->len ? s->len : 1);
    if (copy == NULL) {
        world_fail(w, "out of memory");
        return;
    }
    memcpy(copy, s->data, s->len);
    replica_drop_head(d, keep_from > d->snap_index ? keep_from - d->snap_index - 1 : 0);
    free(d->snap_data);
    d->snap_data = copy;
    d->snap_len = s->len;
    d->snap_index = s->index;
    d->snap_term = s->term;
    d->snap_config = s->config;
    d->snap_chain = check_chain_at(w, s->index);
    if (d->snap_chain == WORLD_NEVER) {
        world_fail(w, "replica %u: installed a snapshot at %lu beyond every commit", rep->id,
                   (unsigned long)s->index);
    }
    if (rep->twin != NULL && !w->failed) {
        twin_snapshot(w, rep, conflict);
    }
    if (conflict && rep->persisted > s->index) {
        rep->persisted = s->index;
    }
    if (d->sync_at == WORLD_NEVER) {
        d->sync_at = w->now;
    }
    check_applied(w, rep, s->index);
}

static void replica_handle(struct world *w, struct world_replica *rep, const struct raft_update *up)
{
    if (up->flags & RAFT_UPD_HARD_STATE) {
        rep->disk.term = up->term;
        rep->disk.voted_for = up->voted_for;
        if (rep->twin != NULL) {
            twin_hard_state(w, rep);
        }
    }
    if ((up->flags & RAFT_UPD_SNAPSHOT) && !rep->fail_stop) {
        replica_install(w, rep, &up->snapshot);
    }
    if ((up->flags & RAFT_UPD_ENTRIES) && !rep->fail_stop) {
        replica_write(w, rep, up);
    }
    if (rep->fail_stop) {
        return; /* the disk failed: nothing that depends on it may leave the replica */
    }
    for (uint32_t i = 0; i < up->n_msgs && !w->failed; i++) {
        replica_send(w, rep, up->msgs[i].to, &up->msgs[i].msg);
    }
    uint8_t was = rep->role;
    rep->role = up->role;
    rep->term = raft_term(rep->raft);
    /* Figure 3.7: a leader advances its commit index only to an entry of its own term
     * (older entries commit with it, never by being counted on a majority). */
    if (!w->p.no_commit_rule && was == RAFT_LEADER && rep->role == RAFT_LEADER &&
        (up->flags & RAFT_UPD_COMMIT) && raft_term_at(rep->raft, up->commit_index) != rep->term) {
        world_fail(w,
                   "commit rule: leader %u of term %lu advanced its commit index to %lu, "
                   "an entry of term %lu",
                   rep->id, (unsigned long)rep->term, (unsigned long)up->commit_index,
                   (unsigned long)raft_term_at(rep->raft, up->commit_index));
    }
    for (uint32_t i = 0; i < up->n_committed && !w->failed; i++) {
        const struct msg_entry *e = &up->committed[i];
        check_committed(w, rep, e);
        if (e->index > rep->applied && !w->failed) {
            replica_apply(w, rep, e);
        }
    }
    replica_reads_update(w, rep, up);
    for (uint32_t i = 0; i < up->n_digests && !w->failed; i++) {
        check_peer_digest(w, rep, &up->digests[i]);
    }
    if (rep->role == RAFT_LEADER && was != RAFT_LEADER) {
        check_became_leader(w, rep);
    }
    rep->snap_wanted = rep->snap_wanted || up->snapshot_wanted;
    rep->tick_at = up->next_timeout_ms > w->now ? up->next_timeout_ms : w->now + 1;
    if (!w->failed && raft_last_index(rep->raft) != replica_last_index(rep)) {
        world_fail(w, "replica %u: core log ends at %lu, written log at %lu", rep->id,
                   (unsigned long)raft_last_index(rep->raft),
                   (unsigned long)replica_last_index(rep));
    }
}

int replica_step(struct world *w, struct world_replica *rep, const struct raft_event *ev)
{
    struct raft_update up;
    int rc = raft_step(rep->raft, ev, &up);
    if (rc == -ENOMEM) {
        world_fail(w, "replica %u: raft_step out of memory", rep->id);
    }
    replica_handle(w, rep, &up);
    return rc;
}

static int replica_create_core(struct world *w, struct world_replica *rep,
                               const struct msg_config *boot, const struct msg_entry *es)
{
    struct world_disk *d = &rep->disk;
    struct raft_config cfg = {
        .id = rep->id,
        .cluster_id = 1,
        .prng_seed = world_mix(w->seed, world_mix(rep->id, w->steps)),
        .election_timeout_ms = w->p.election_ms,
        .append_entries_max = w->p.append_max,
        .window_entries = w->p.window,
        .snapshot_chunk_bytes = 512,
        .snapshot_threshold_bytes = w->p.snapshot_bytes,
        .snapshot_trailing = 4,
        .pre_vote = 1,
        .check_quorum = 1,
        .lease_reads = w->p.lease_reads,
    };
    struct raft_restore rs = {
        .now_ms = w->now,
        .term = d->term,
        .voted_for = d->voted_for,
        .snapshot_index = d->snap_index,
        .snapshot_term = d->snap_term,
        .snapshot_config = d->snap_config,
        .snapshot_data = d->snap_data,
        .snapshot_len = d->snap_len,
        .bootstrap = *boot,
        .n_entries = (uint32_t)d->n,
        .entries = es,
    };
    int rc = raft_create(&cfg, &rs, &rep->raft);
    if (rc == 0 && (w->p.mutation & WORLD_MUT_CORE_MASK) != 0) {
        raft_mutation_set(rep->raft, w->p.mutation & WORLD_MUT_CORE_MASK);
    }
    return rc;
}

/* Starts (or restarts) a replica from its disk only: hard state, snapshot, durable log. */
int replica_start(struct world *w, struct world_replica *rep, const struct msg_config *boot)
{
    struct world_disk *d = &rep->disk;
    if (w->p.twin && twin_open(w, rep) != 0) {
        world_fail(w, "replica %u: cannot create its twin disk", rep->id);
        return -ENOMEM;
    }
    struct msg_entry *es = calloc(d->n + 1, sizeof(*es));
    if (es == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->n; i++) {
        es[i] = (struct msg_entry){.term = d->log[i].term,
                                   .index = d->snap_index + 1 + i,
                                   .type = d->log[i].type,
                                   .len = d->log[i].len,
                                   .data = d->log[i].data};
    }
    int rc = replica_create_core(w, rep, boot, es);
    free(es);
    if (rc == 0) {
        rc = replica_sm_load(w, d->snap_data, d->snap_len, &rep->sm, &rep->sess);
    }
    if (rc != 0) {
        world_fail(w, "replica %u: restart failed: %s", rep->id, ordo_strerror(rc));
        return rc;
    }
    rep->exists = 1;
    rep->up = 1;
    rep->applied = d->snap_index;
    rep->role = RAFT_FOLLOWER;
    rep->term = d->term;
    rep->snap_wanted = 0;
    rep->n_reads = 0;
    rep->crash_at = WORLD_NEVER;
    rep->digest_index = 0;
    rep->persisted = d->snap_index + d->n; /* recovered entries are durable (raft_create) */
    d->sync_at = WORLD_NEVER;
    if (d->snap_index > 0) {
        check_applied(w, rep, d->snap_index);
    }
    struct raft_event ev = {.type = RAFT_EV_TICK, .now_ms = w->now};
    replica_step(w, rep, &ev);
    return 0;
}

static void replica_stop(struct world_replica *rep)
{
    raft_destroy(rep->raft);
    sm_destroy(rep->sm);
    sess_destroy(rep->sess);
    rep->raft = NULL;
    rep->sm = NULL;
    rep->sess = NULL;
    rep->up = 0;
    rep->n_reads = 0;
    rep->role = 0;
}

/* Power loss: volatile state is gone; the unsynced tail survives only in part. */
void replica_crash(struct world *w, struct world_replica *rep)
{
    struct world_disk *d = &rep->disk;
    w->count.crashes++;
    if (rep->twin != NULL) {
        twin_crash(w, rep);
    } else {
        size_t unsynced = d->n - d->n_durable;
        size_t keep = d->n_durable + (size_t)rng_below(&w->rng, unsynced + 1);
        replica_drop_tail(d, keep);
        d->n_durable = d->n;
        d->sync_at = WORLD_NEVER;
    }
    replica_stop(rep);
    vnet_purge(&w->net, rep->id);
}

void replica_free(struct world_replica *rep)
{
    replica_stop(rep);
    twin_close(rep);
    replica_drop_tail(&rep->disk, 0);
    free(rep->disk.log);
    free(rep->disk.snap_data);
    free(rep->reads);
    memset(rep, 0, sizeof(*rep));
}

void replica_digest(struct world *w, struct world_replica *rep)
{
    struct raft_event ev = {.type = RAFT_EV_DIGEST, .now_ms = w->now};
    ev.u.digest.index = rep->digest_index;
    memcpy(ev.u.digest.digest, rep->digest, MSG_DIGEST_LEN);
    rep->digest_index = 0;
    replica_step(w, rep, &ev);
}

/* The simulated fsync completed: the entries written before it was issued are durable.
 * Later writes need another fsync, so durability advances in steps, as on a real disk. */
/* Tells the core how far the log is durable. A snapshot covers what it replaced, so the
 * snapshot index counts as durable even when the entries it covers were not yet synced (a
 * follower may apply, and snapshot, entries committed elsewhere before its own fsync). */
static void replica_report_durable(struct world *w, struct world_replica *rep)
{
    struct world_disk *d = &rep->disk;
    uint64_t index = d->snap_index + d->n_durable;
    if (index <= rep->persisted || index == 0 || w->failed) {
        return;
    }
    rep->persisted = index;
    struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = w->now};
    ev.u.persisted.index = index;
    ev.u.persisted.term = d->n_durable ? d->log[d->n_durable - 1].term : d->snap_term;
    replica_step(w, rep, &ev);
}

static void replica_twin_sync(struct world *w, struct world_replica *rep)
{
    struct world_disk *d = &rep->disk;
    uint64_t durable = twin_poll(w, rep);
    if (rep->fail_stop) {
        return;
    }
    uint64_t n = durable > d->snap_index ? durable - d->snap_index : 0;
    if (n > d->n) {
        world_fail(w, "replica %u: twin disk reports %lu durable, only %lu written", rep->id,
                   (unsigned long)durable, (unsigned long)replica_last_index(rep));
        return;
    }
    d->n_durable = n > d->n_durable ? n : d->n_durable;
    replica_report_durable(w, rep);
}

/* The simulated fsync completed: the entries written before it was issued are durable.
 * Later writes need another fsync, so durability advances in steps, as on a real disk. */
void replica_sync_done(struct world *w, struct world_replica *rep)
{
    struct world_disk *d = &rep->disk;
    if (rep->twin != NULL) {
        replica_twin_sync(w, rep);
        return;
    }
    d->sync_at = WORLD_NEVER;
    if (d->sync_upto > d->n_durable) {
        d->n_durable = d->sync_upto;
    }
    if (d->n > d->n_durable) {
        d->sync_at = w->now + rng_below(&w->rng, w->p.disk_max_ms + 1u);
        d->sync_upto = d->n;
    }
    replica_report_durable(w, rep);
}

/* The core asked for a snapshot: serialize sessions and store at the applied index,
 * make it durable with the log prefix it covers, then tell the core. */
void replica_snapshot(struct world *w, struct world_replica *rep)
{
    struct world_disk *d = &rep->disk;
    rep->snap_wanted = 0;
    uint64_t index = rep->applied;
    struct msg_config c;
    uint64_t term;
    if (index <= d->snap_index || raft_snapshot_meta(rep->raft, index, &term, &c) != 0) {
        return;
    }
    struct sm_mem_sink sink = {0};
    int rc = sess_snapshot_write(rep->sess, sm_mem_sink_write, &sink);
    if (rc == 0) {
        rc = sm_snapshot_write(rep->sm, sm_mem_sink_write, &sink);
    }
    if (rc != 0) {
        world_fail(w, "replica %u: snapshot write failed: %s", rep->id, ordo_strerror(rc));
        sm_mem_sink_free(&sink);
        return;
    }
    uint64_t chain = replica_entry_chain(rep, index);
    replica_drop_head(d, index - d->snap_index);
    free(d->snap_data);
    d->snap_data = malloc(sink.len ? sink.len : 1);
    if (d->snap_data != NULL && sink.len > 0) {
        memcpy(d->snap_data, sink.data, sink.len);
    }
    d->snap_len = sink.len;
    d->snap_index = index;
    d->snap_term = term;
    d->snap_config = c;
    d->snap_chain = chain;
    if (rep->twin != NULL) {
        twin_snapshot(w, rep, 0);
    }
    if (rep->fail_stop) {
        sm_mem_sink_free(&sink);
        return;
    }
    w->count.snaps_taken++;
    struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN, .now_ms = w->now};
    ev.u.snapshot_taken.index = index;
    ev.u.snapshot_taken.data = sink.data;
    ev.u.snapshot_taken.len = sink.len;
    replica_step(w, rep, &ev);
    sm_mem_sink_free(&sink);
    if (d->sync_at == WORLD_NEVER && d->snap_index > rep->persisted) {
        d->sync_at = w->now;
    }
}

static void replica_read_request(struct world *w, struct world_replica *rep, uint32_t from,
                                 const struct msg_client_request *q)
{
    if (rep->n_reads == rep->cap_reads) {
        size_t cap = rep->cap_reads ? rep->cap_reads * 2 : 16;
        struct world_read *rd = realloc(rep->reads, cap * sizeof(*rd));
        if (rd == NULL) {
            world_fail(w, "out of memory");
            return;
        }
        rep->reads = rd;
        rep->cap_reads = cap;
    }
    struct world_read *rd = &rep->reads[rep->n_reads++];
    *rd = (struct world_read){.id = ++rep->read_seq,
                              .client_addr = from,
                              .client_id = q->client_id,
                              .request_no = q->request_no,
                              .op = q->op,
                              .args_len = q->args_len};
    memcpy(rd->args, q->args, q->args_len);
    struct raft_event ev = {.type = RAFT_EV_READ, .now_ms = w->now};
    ev.u.read.id = rd->id;
    uint64_t id = rd->id;
    if (replica_step(w, rep, &ev) == 0) {
        return;
    }
    for (size_t i = 0; i < rep->n_reads; i++) {
        if (rep->reads[i].id == id) {
            rep->reads[i] = rep->reads[--rep->n_reads];
            break;
        }
    }
    replica_redirect(w, rep, from, q->client_id, q->request_no);
}

/* A client request reaching this replica: the leader proposes it as a batch of one command
 * (or starts a ReadIndex round for a read); anyone else redirects. */
void replica_client_request(struct world *w, struct world_replica *rep, const struct msg *m)
{
    const struct msg_client_request *q = &m->u.request;
    uint32_t from = m->hdr.sender;
    if ((w->p.mutation & WORLD_MUT_STALE_READS) && (q->flags & MSG_REQ_READ)) {
        struct world_read rd = {.client_addr = from,
                                .client_id = q->client_id,
                                .request_no = q->request_no,
                                .op = q->op,
                                .args_len = q->args_len > 64 ? 0 : q->args_len};
        memcpy(rd.args, q->args, rd.args_len);
        replica_serve_one(w, rep, &rd);
        return;
    }
    if (rep->role != RAFT_LEADER || q->args_len > 64) {
        replica_redirect(w, rep, from, q->client_id, q->request_no);
        return;
    }
    if (q->flags & MSG_REQ_READ) {
        replica_read_request(w, rep, from, q);
        return;
    }
    uint8_t buf[4 + REPLICA_CMD_HDR + 64];
    put_u32(buf, 1);
    put_u32(buf + 4, from);
    put_u64(buf + 8, q->client_id);
    put_u64(buf + 16, q->request_no);
    put_u16(buf + 24, q->flags);
    buf[26] = q->op;
    put_u32(buf + 27, q->args_len);
    memcpy(buf + 4 + REPLICA_CMD_HDR, q->args, q->args_len);
    struct raft_event ev = {.type = RAFT_EV_PROPOSE, .now_ms = w->now};
    ev.u.propose.data = buf;
    ev.u.propose.len = 4 + REPLICA_CMD_HDR + q->args_len;
    if (replica_step(w, rep, &ev) != 0) {
        replica_redirect(w, rep, from, q->client_id, q->request_no);
    }
}
