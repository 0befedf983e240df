/* Deterministic cluster simulator: N replicas of the real Raft core, clients, a faulty
 * network and disks, all driven from one seed by a virtual clock; every step is followed by
 * the checkers (check.c), every run by the linearizability checker, and a liveness phase. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drivers/disk/sim_disk.h"
#include "engine/sm_kv.h"
#include "tests/sim/world.h"

static const char *sim_argv0 = "sim";
static uint64_t sim_current_seed;
static uint32_t sim_mutation;
static uint8_t sim_no_commit_rule;
static uint8_t sim_mini_disk;
static uint32_t sim_sessions; /* --sessions: 1 = sometimes fewer than clients; >1 = fixed */

void world_fail(struct world *w, const char *fmt, ...)
{
    if (w->failed) {
        return;
    }
    w->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof(w->why), fmt, ap);
    va_end(ap);
}

void world_trace(struct world *w, const char *fmt, ...)
{
    if (!w->trace) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%8" PRIu64 " ms #%" PRIu64 "] ", w->now, w->steps);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t world_mix(uint64_t a, uint64_t b)
{
    uint64_t s = a ^ (b * 0x9e3779b97f4a7c15ull);
    return rng_splitmix(&s);
}

uint64_t world_hash(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return world_mix(h, len);
}

static struct lin_op *sim_hist_new(struct world *w)
{
    if (w->n_hist == w->cap_hist) {
        size_t cap = w->cap_hist ? w->cap_hist * 2 : 512;
        struct lin_op *h = realloc(w->hist, cap * sizeof(*h));
        if (h == NULL) {
            world_fail(w, "out of memory");
            return NULL;
        }
        w->hist = h;
        w->cap_hist = cap;
    }
    struct lin_op *op = &w->hist[w->n_hist++];
    memset(op, 0, sizeof(*op));
    return op;
}

static uint32_t sim_random_replica(struct world *w)
{
    uint32_t ids[WORLD_NODES_MAX];
    uint32_t n = 0;
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        if (w->r[id].exists && !w->r[id].removed) {
            ids[n++] = id;
        }
    }
    return n ? ids[rng_below(&w->rng, n)] : 1;
}

static void sim_client_send(struct world *w, struct world_client *c)
{
    struct msg m = {.hdr = {.version = 1, .type = MSG_CLIENT_REQUEST, .sender = c->addr}};
    m.u.request = (struct msg_client_request){.client_id = c->client_id,
                                              .request_no = c->request_no,
                                              .flags = c->flags,
                                              .op = c->op,
                                              .args_len = c->args_len,
                                              .args = c->args};
    world_trace(w, "client %u -> %u: request %" PRIu64 " op %u", c->addr, c->target, c->request_no,
                c->op);
    if (vnet_send(&w->net, w->now, c->addr, c->target, &m) < 0) {
        world_fail(w, "out of memory");
    }
    c->timer_at = w->now + c->timeout_ms;
}

static void sim_value_str(uint64_t v, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, v);
}

/* Encodes the op's arguments; returns the lin kind. */
static uint8_t sim_client_encode(struct world *w, struct world_client *c, struct lin_op *op)
{
    char key[8];
    char val[17];
    char exp[17];
    snprintf(key, sizeof(key), "k%" PRIu64, op->key);
    uint64_t r = rng_below(&w->rng, 100);
    int n;
    c->flags = 0;
    if (r < 30) {
        op->arg = ++w->next_value;
        sim_value_str(op->arg, val);
        c->op = SM_KV_OP_PUT;
        n = sm_kv_encode_put(c->args, sizeof(c->args), key, strlen(key), val, 16);
        c->args_len = (uint32_t)n;
        return LIN_PUT;
    }
    if (r < 65) {
        c->op = SM_KV_OP_GET;
        c->flags = r < 55 ? MSG_REQ_READ : 0; /* ReadIndex, or through the log */
        n = sm_kv_encode_get(c->args, sizeof(c->args), key, strlen(key));
        c->args_len = (uint32_t)n;
        return LIN_GET;
    }
    if (r < 85) {
        uint64_t seen = c->last_seen[op->key];
        op->expect =
            seen && rng_below(&w->rng, 4) ? seen : rng_range(&w->rng, 1, w->next_value + 1);
        op->arg = ++w->next_value;
        sim_value_str(op->expect, exp);
        sim_value_str(op->arg, val);
        c->op = SM_KV_OP_CAS;
        n = sm_kv_encode_cas(c->args, sizeof(c->args), key, strlen(key), exp, 16, val, 16);
        c->args_len = (uint32_t)n;
        return LIN_CAS;
    }
    c->op = SM_KV_OP_DELETE;
    n = sm_kv_encode_del(c->args, sizeof(c->args), key, strlen(key));
    c->args_len = (uint32_t)n;
    return LIN_DEL;
}

/* Opens a session (dissertation 6.3): the request carries a nonce the reply echoes; its
 * result is the client id to use from then on. */
static void sim_client_register(struct world *w, struct world_client *c)
{
    c->client_id = rng_next(&w->rng) | 1;
    c->request_no = 1;
    c->flags = MSG_REQ_REGISTER;
    c->op = MSG_OP_NOOP;
    c->args_len = 0;
    c->registering = 1;
    c->busy = 1;
    sim_client_send(w, c);
}

static void sim_client_issue(struct world *w, struct world_client *c)
{
    struct lin_op *op = sim_hist_new(w);
    if (op == NULL) {
        return;
    }
    op->key = rng_below(&w->rng, WORLD_KEYS);
    op->client = c->addr;
    op->kind = sim_client_encode(w, c, op);
    op->call_time = ++w->time_seq;
    op->ret_time = LIN_PENDING;
    c->hist = w->n_hist - 1;
    c->request_no++;
    c->busy = 1;
    sim_client_send(w, c);
}

static uint64_t sim_parse_value(const uint8_t *p, uint32_t len)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < len && i < 16; i++) {
        uint8_t ch = p[i];
        v = (v << 4) | (uint64_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
    }
    return v;
}

/* Closes the client's current op in the history. status < 0: the outcome is unknown. */
static void sim_client_done(struct world *w, struct world_client *c, int status,
                            const struct msg_client_reply *r)
{
    struct lin_op *op = &w->hist[c->hist];
    c->busy = 0;
    c->timer_at = w->now + rng_below(&w->rng, 20);
    w->ops_done++;
    if (status < 0) {
        return; /* stays pending in the history: it may or may not have happened */
    }
    op->known = 1;
    op->ret_time = ++w->time_seq;
    op->status = (uint8_t)status;
    if (op->kind == LIN_GET && status == LIN_ST_OK) {
        op->out = sim_parse_value(r->result, r->result_len);
    }
    if (status == LIN_ST_OK) {
        c->last_seen[op->key] = op->kind == LIN_GET ? op->out : op->arg;
    } else if (status == LIN_ST_MISMATCH && r->result_len == 16) {
        c->last_seen[op->key] = sim_parse_value(r->result, r->result_len);
    }
}

/* The reply to a registration: status OK carries the new client id. */
static void sim_client_registered(struct world *w, struct world_client *c,
                                  const struct msg_client_reply *r)
{
    if (r->status != MSG_STATUS_OK) {
        return; /* busy and the like: the retry timer resends */
    }
    if (r->result_len != SESS_REGISTER_RESULT_LEN) {
        world_fail(w, "client %u: registration result of %u bytes", c->addr, r->result_len);
        return;
    }
    uint64_t id = 0;
    for (uint32_t i = 0; i < SESS_REGISTER_RESULT_LEN; i++) {
        id |= (uint64_t)r->result[i] << (8 * i);
    }
    world_trace(w, "client %u registered as %016" PRIx64, c->addr, id);
    w->count.registered++;
    c->client_id = id;
    c->request_no = 0;
    c->registering = 0;
    c->busy = 0;
    c->timer_at = w->now + rng_below(&w->rng, 20);
}

void sim_client_reply(struct world *w, const struct msg *m, uint32_t from)
{
    const struct msg_client_reply *r = &m->u.reply;
    for (uint32_t i = 0; i < w->p.clients; i++) {
        struct world_client *c = &w->c[i];
        if (!c->busy || r->client_id != c->client_id || r->request_no != c->request_no) {
            continue;
        }
        world_trace(w, "client %u <- %u: reply %" PRIu64 " status %u", c->addr, from, r->request_no,
                    r->status);
        if (c->registering) {
            sim_client_registered(w, c, r);
            return;
        }
        switch (r->status) {
        case MSG_STATUS_OK:
            sim_client_done(w, c, LIN_ST_OK, r);
            break;
        case MSG_STATUS_NOT_FOUND:
            sim_client_done(w, c, LIN_ST_NOT_FOUND, r);
            break;
        case MSG_STATUS_CAS_MISMATCH:
            sim_client_done(w, c, LIN_ST_MISMATCH, r);
            break;
        case MSG_STATUS_SESSION_EXPIRED:
            /* The session is gone: the outcome is unknown (an earlier attempt may have been
             * applied), so the op stays pending; the next one registers a new session. */
            sim_client_done(w, c, -1, r);
            w->count.expired++;
            c->client_id = 0;
            c->request_no = 0;
            break;
        default:
            break; /* busy and the like: the retry timer resends */
        }
        return;
    }
}

static void sim_client_redirect(struct world *w, const struct msg *m)
{
    const struct msg_redirect *r = &m->u.redirect;
    for (uint32_t i = 0; i < w->p.clients; i++) {
        struct world_client *c = &w->c[i];
        if (c->busy && r->client_id == c->client_id && r->request_no == c->request_no &&
            r->leader_id != MSG_NODE_NONE && r->leader_id != c->target &&
            r->leader_id <= WORLD_NODES_MAX) {
            c->target = r->leader_id;
            sim_client_send(w, c);
        }
    }
}

static void sim_client_timer(struct world *w, struct world_client *c)
{
    if (c->busy) {
        c->target = sim_random_replica(w);
        sim_client_send(w, c);
    } else if (w->faults_on && c->client_id == 0) {
        sim_client_register(w, c);
    } else if (w->faults_on) {
        sim_client_issue(w, c);
    } else {
        c->timer_at = WORLD_NEVER; /* liveness phase: no new operations */
    }
}

static struct world_replica *sim_leader(struct world *w)
{
    struct world_replica *best = NULL;
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *rep = &w->r[id];
        if (rep->up && rep->role == RAFT_LEADER && (best == NULL || rep->term > best->term)) {
            best = rep;
        }
    }
    return best;
}

static void sim_event(struct world *w, struct world_replica *rep, uint8_t type, uint8_t a,
                      uint32_t b)
{
    struct raft_event ev = {.type = type, .now_ms = w->now};
    if (type == RAFT_EV_CHANGE) {
        ev.u.change.type = a;
        ev.u.change.id = b;
    } else {
        ev.u.transfer.target = b;
    }
    int rc = replica_step(w, rep, &ev);
    w->count.transfers += type == RAFT_EV_TRANSFER && rc == 0;
    world_trace(w, "leader %u: %s %u %u -> %d", rep->id,
                type == RAFT_EV_CHANGE ? "change" : "transfer", a, b, rc);
}

/* One membership step: promote a learner, remove a voter, or add a new learner. */
static void sim_membership(struct world *w, struct world_replica *l)
{
    struct msg_config c;
    raft_config_get(l->raft, &c);
    uint32_t voters[MSG_NODES_MAX];
    uint32_t nv = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        if (c.servers[i].role == MSG_ROLE_LEARNER) {
            sim_event(w, l, RAFT_EV_CHANGE, RAFT_CHANGE_PROMOTE, c.servers[i].id);
            return;
        }
        voters[nv++] = c.servers[i].id;
    }
    if (nv > 3 && (nv > w->p.nodes || rng_below(&w->rng, 2))) {
        sim_event(w, l, RAFT_EV_CHANGE, RAFT_CHANGE_REMOVE, voters[rng_below(&w->rng, nv)]);
        return;
    }
    uint32_t id = 0;
    for (uint32_t i = 1; i <= WORLD_NODES_MAX && id == 0; i++) {
        struct world_replica *r = &w->r[i];
        if ((r->exists && !r->removed && !r->member) || !r->exists) {
            id = i;
        }
    }
    if (id == 0) {
        return;
    }
    if (!w->r[id].exists) {
        struct msg_config none = {0};
        w->r[id].id = id;
        if (replica_start(w, &w->r[id], &none) != 0) {
            return;
        }
    }
    sim_event(w, l, RAFT_EV_CHANGE, RAFT_CHANGE_ADD_LEARNER, id);
}

static void sim_partition(struct world *w)
{
    uint8_t side[WORLD_NODES_MAX + 1];
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        side[id] = (uint8_t)rng_below(&w->rng, 2);
    }
    int asym = rng_below(&w->rng, 3) == 0;
    for (uint32_t a = 1; a <= WORLD_NODES_MAX; a++) {
        for (uint32_t b = 1; b <= WORLD_NODES_MAX; b++) {
            if (side[a] != side[b] && (!asym || side[a] == 0)) {
                vnet_block(&w->net, a, b, 1);
            }
        }
    }
    world_trace(w, "fault: %s partition", asym ? "asymmetric" : "symmetric");
}

static void sim_crash(struct world *w)
{
    struct world_replica *l = sim_leader(w);
    uint32_t id = l != NULL && rng_below(&w->rng, 2) ? l->id : sim_random_replica(w);
    struct world_replica *rep = &w->r[id];
    if (!rep->up) {
        return;
    }
    replica_crash(w, rep);
    rep->restart_at = w->now + rng_range(&w->rng, 5, w->p.restart_max_ms);
    world_trace(w, "fault: crash %u (restart at %" PRIu64 ")", id, rep->restart_at);
}

static void sim_network_params(struct world *w)
{
    struct vnet_faults *f = &w->net.faults;
    f->loss_ppm = rng_below(&w->rng, 4) ? (uint32_t)rng_below(&w->rng, 200000) : 0;
    f->dup_ppm = (uint32_t)rng_below(&w->rng, 100000);
    f->delay_min_ms = (uint32_t)rng_range(&w->rng, 0, 3);
    f->delay_max_ms = f->delay_min_ms + (uint32_t)rng_below(&w->rng, 60);
    world_trace(w, "fault: loss %u dup %u delay %u..%u", f->loss_ppm, f->dup_ppm, f->delay_min_ms,
                f->delay_max_ms);
}

/* An fsync (or hard state or snapshot save) error on one replica's twin disk. */
static void sim_fault_disk(struct world *w)
{
    struct world_replica *rep = &w->r[sim_random_replica(w)];
    if (!rep->up || rep->twin == NULL || rep->fault_armed) {
        return;
    }
    sim_disk_fail_next_sync(rep->twin, -EIO);
    rep->fault_armed = 1;
    world_trace(w, "fault: the next sync of %u fails", rep->id);
}

/* One fault tick of the fault phase: each kind of fault with its probability. */
static void sim_fault(struct world *w)
{
    w->fault_at = w->now + rng_range(&w->rng, 5, w->p.fault_gap_ms);
    uint64_t x = rng_below(&w->rng, 1000000);
    struct world_replica *l = sim_leader(w);
    if (x < w->p.crash_ppm) {
        sim_crash(w);
    } else if ((x -= w->p.crash_ppm) < w->p.partition_ppm) {
        sim_partition(w);
    } else if ((x -= w->p.partition_ppm) < 60000) {
        vnet_isolate(&w->net, sim_random_replica(w), 1);
        world_trace(w, "fault: isolate");
    } else if ((x -= 60000) < 150000) {
        vnet_heal(&w->net);
        world_trace(w, "fault: heal");
    } else if ((x -= 150000) < 100000) {
        sim_network_params(w);
    } else if ((x -= 100000) < 30000) {
        sim_fault_disk(w);
    } else if ((x -= 30000) < w->p.member_ppm) {
        if (l != NULL) {
            sim_membership(w, l);
        }
    } else if ((x -= w->p.member_ppm) < w->p.transfer_ppm && l != NULL) {
        uint32_t target = rng_below(&w->rng, 2) ? sim_random_replica(w) : MSG_NODE_NONE;
        sim_event(w, l, RAFT_EV_TRANSFER, 0, target);
    }
}

static uint64_t sim_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t sim_next_time(struct world *w, uint64_t phase_end)
{
    uint64_t t = sim_min(phase_end, vnet_next_ms(&w->net));
    if (w->faults_on) {
        t = sim_min(t, w->fault_at);
    }
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *rep = &w->r[id];
        if (rep->up) {
            t = sim_min(t, sim_min(rep->tick_at, rep->disk.sync_at));
            t = w->faults_on ? sim_min(t, rep->crash_at) : t;
            t = rep->snap_wanted || rep->digest_index || rep->fail_stop ? sim_min(t, w->now) : t;
        } else if (rep->exists && !rep->removed && (w->faults_on || rep->restart_always)) {
            t = sim_min(t, rep->restart_at);
        }
    }
    for (uint32_t i = 0; i < w->p.clients; i++) {
        t = sim_min(t, w->c[i].timer_at);
    }
    return t;
}

static void sim_trace_msg(struct world *w, const struct vnet_pkt *p)
{
    const struct msg *m = &p->msg;
    switch (m->hdr.type) {
    case MSG_APPEND_ENTRIES:
        world_trace(w,
                    "%u -> %u: append term %" PRIu64 " prev %" PRIu64 "/%" PRIu64
                    " entries %u commit %" PRIu64,
                    p->from, p->to, m->u.append.term, m->u.append.prev_log_index,
                    m->u.append.prev_log_term, m->u.append.n_entries, m->u.append.leader_commit);
        break;
    case MSG_APPEND_RESPONSE:
        world_trace(w,
                    "%u -> %u: append response term %" PRIu64 " ok %u match %" PRIu64
                    " reject %" PRIu64 " conflict %" PRIu64 "/%" PRIu64 " last %" PRIu64,
                    p->from, p->to, m->u.append_response.term, m->u.append_response.success,
                    m->u.append_response.match_index, m->u.append_response.reject_index,
                    m->u.append_response.conflict_index, m->u.append_response.conflict_term,
                    m->u.append_response.last_log_index);
        break;
    case MSG_INSTALL_SNAPSHOT:
        world_trace(w,
                    "%u -> %u: snapshot term %" PRIu64 " last %" PRIu64 " offset %" PRIu64
                    " len %u done %u",
                    p->from, p->to, m->u.snapshot.term, m->u.snapshot.last_index,
                    m->u.snapshot.offset, m->u.snapshot.chunk_len, m->u.snapshot.done);
        break;
    case MSG_VOTE_REQUEST:
        world_trace(w, "%u -> %u: %svote request term %" PRIu64 " last %" PRIu64 "/%" PRIu64,
                    p->from, p->to, (m->u.vote_request.flags & MSG_VOTE_PRE) ? "pre-" : "",
                    m->u.vote_request.term, m->u.vote_request.last_log_index,
                    m->u.vote_request.last_log_term);
        break;
    case MSG_VOTE_RESPONSE:
        world_trace(w, "%u -> %u: %svote %s term %" PRIu64, p->from, p->to,
                    m->u.vote_response.pre_vote ? "pre-" : "",
                    m->u.vote_response.granted ? "granted" : "refused", m->u.vote_response.term);
        break;
    default:
        world_trace(w, "%u -> %u: type %u term %" PRIu64, p->from, p->to, m->hdr.type,
                    m->u.heartbeat.term);
    }
}

static void sim_deliver(struct world *w, struct vnet_pkt *p)
{
    struct msg *m = &p->msg;
    if (p->to >= WORLD_CLIENT_ADDR0) {
        if (m->hdr.type == MSG_CLIENT_REPLY) {
            sim_client_reply(w, m, p->from);
        } else if (m->hdr.type == MSG_REDIRECT) {
            sim_client_redirect(w, m);
        }
        return;
    }
    struct world_replica *rep = &w->r[p->to];
    if (p->to == 0 || p->to > WORLD_NODES_MAX || !rep->up) {
        return;
    }
    if (!msg_type_is_peer(m->hdr.type)) {
        m->hdr.sender = p->from;
        replica_client_request(w, rep, m);
        return;
    }
    sim_trace_msg(w, p);
    struct raft_event ev = {.type = RAFT_EV_RECEIVE, .now_ms = w->now};
    ev.u.receive.msg = m;
    replica_step(w, rep, &ev);
}

/* Replica-side due work, in a fixed order. Returns 1 if it did one item. */
static int sim_replica_work(struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *rep = &w->r[id];
        if (rep->up && rep->fail_stop) {
            world_trace(w, "replica %u fail-stops after its disk failed", id);
            w->count.disk_errors++;
            replica_crash(w, rep);
            rep->restart_at = w->now + rng_range(&w->rng, 5, 200);
            rep->restart_always = 1;
            return 1;
        }
        if (!rep->up && rep->exists && !rep->removed && (w->faults_on || rep->restart_always) &&
            rep->restart_at <= w->now) {
            rep->restart_always = 0;
            world_trace(w, "restart %u", id);
            replica_start(w, rep, &w->config_committed);
            return 1;
        }
        if (rep->up && rep->crash_at <= w->now) {
            world_trace(w, "fault: planned crash of %u", id);
            replica_crash(w, rep);
            rep->restart_at = w->now + rng_range(&w->rng, 5, 400);
            return 1;
        }
        if (rep->up && rep->disk.sync_at <= w->now) {
            replica_sync_done(w, rep);
            return 1;
        }
        if (rep->up && rep->snap_wanted) {
            replica_snapshot(w, rep);
            return 1;
        }
        if (rep->up && rep->digest_index != 0) {
            replica_digest(w, rep);
            return 1;
        }
    }
    return 0;
}

static int sim_tick_work(struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *rep = &w->r[id];
        if (rep->up && rep->tick_at <= w->now) {
            struct raft_event ev = {.type = RAFT_EV_TICK, .now_ms = w->now};
            replica_step(w, rep, &ev);
            return 1;
        }
    }
    for (uint32_t i = 0; i < w->p.clients; i++) {
        if (w->c[i].timer_at <= w->now) {
            sim_client_timer(w, &w->c[i]);
            return 1;
        }
    }
    return 0;
}

/* Figure 8 needs leaders that crash right after they win, before their first entry of the
 * term is on a majority: a new leader is crashed within milliseconds now and then. */
static void sim_watch_leaders(struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX && w->faults_on; id++) {
        struct world_replica *rep = &w->r[id];
        if (!rep->up || rep->role != RAFT_LEADER || rep->lead_term == rep->term) {
            continue;
        }
        rep->lead_term = rep->term;
        w->count.leaders++;
        if (!rng_chance(&w->rng, w->p.leader_crash_ppm)) {
            continue;
        }
        if (rng_below(&w->rng, 2)) {
            rep->crash_at = w->now + rng_below(&w->rng, 3u * w->p.disk_max_ms + 5u);
        } else {
            /* Cut off before its first entries leave: they stay on it alone. */
            vnet_isolate(&w->net, id, 1);
            world_trace(w, "fault: new leader %u isolated", id);
        }
    }
}

/* Servers gone from a committed configuration are shut down for good. */
static void sim_retire(struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *rep = &w->r[id];
        if (!rep->exists || rep->removed) {
            continue;
        }
        int in = 0;
        for (uint32_t k = 0; k < w->config_committed.n; k++) {
            in |= w->config_committed.servers[k].id == id;
        }
        if (in) {
            rep->member = 1;
        } else if (rep->member) {
            world_trace(w, "retire %u (removed from the configuration)", id);
            rep->removed = 1;
            if (rep->up) {
                replica_crash(w, rep);
            }
        }
    }
}

static void sim_one_step(struct world *w)
{
    struct vnet_pkt p;
    if (sim_replica_work(w)) {
        return;
    }
    if (w->faults_on && w->fault_at <= w->now) {
        sim_fault(w);
        return;
    }
    if (vnet_pop(&w->net, w->now, &p)) {
        sim_deliver(w, &p);
        vnet_pkt_free(&p);
        return;
    }
    sim_tick_work(w);
}

static void sim_heal_all(struct world *w)
{
    w->faults_on = 0;
    vnet_heal(&w->net);
    w->net.faults = (struct vnet_faults){.delay_min_ms = 1, .delay_max_ms = 5};
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *rep = &w->r[id];
        rep->crash_at = WORLD_NEVER;
        if (rep->exists && !rep->removed && !rep->up) {
            replica_start(w, rep, &w->config_committed);
        }
    }
    world_trace(w, "liveness phase: faults stop, every replica restarts");
}

static int sim_clients_idle(const struct world *w)
{
    for (uint32_t i = 0; i < w->p.clients; i++) {
        if (w->c[i].busy) {
            return 0;
        }
    }
    return 1;
}

/* Liveness (after the faults stop): a leader within a bounded time, then every pending
 * client operation completes. Returns 1 when the run is complete. */
static int sim_liveness(struct world *w, uint64_t heal_ms, uint64_t *leader_ms)
{
    if (*leader_ms == WORLD_NEVER && sim_leader(w) != NULL) {
        *leader_ms = w->now;
    }
    uint64_t leader_bound = heal_ms + 30ull * w->p.election_ms;
    if (*leader_ms == WORLD_NEVER && w->now > leader_bound) {
        world_fail(w, "liveness: no leader %" PRIu64 " ms after the faults stopped",
                   w->now - heal_ms);
        return 1;
    }
    if (*leader_ms != WORLD_NEVER && sim_clients_idle(w)) {
        uint64_t lm = *leader_ms - heal_ms;
        uint64_t cm = w->now - heal_ms;
        w->count.leader_ms_max = lm > w->count.leader_ms_max ? lm : w->count.leader_ms_max;
        w->count.complete_ms_max = cm > w->count.complete_ms_max ? cm : w->count.complete_ms_max;
        return 1;
    }
    if (w->now > heal_ms + w->p.liveness_ms) {
        world_fail(
            w, "liveness: client operations still pending %" PRIu64 " ms after the faults stopped",
            w->now - heal_ms);
        return 1;
    }
    return 0;
}

static void sim_loop(struct world *w)
{
    uint64_t heal_ms = WORLD_NEVER;
    uint64_t leader_ms = WORLD_NEVER;
    while (!w->failed) {
        uint64_t phase_end = w->faults_on ? w->p.fault_ms : WORLD_NEVER;
        uint64_t t = sim_next_time(w, phase_end);
        if (t == WORLD_NEVER) {
            world_fail(w, "simulation ran out of events");
            break;
        }
        w->now = t > w->now ? t : w->now;
        if (w->faults_on && w->now >= w->p.fault_ms) {
            sim_heal_all(w);
            heal_ms = w->now;
        } else {
            sim_one_step(w);
        }
        w->steps++;
        sim_retire(w);
        sim_watch_leaders(w);
        if (!w->failed) {
            check_step(w);
        }
        if (!w->faults_on && !w->failed && sim_liveness(w, heal_ms, &leader_ms)) {
            break;
        }
        if (w->steps > 5000000) {
            world_fail(w, "step limit reached");
        }
    }
}

/* Fault profile of a run: calm (few faults, long stretches of progress), rough, or storm
 * (many short terms and diverging logs, the ground of figure 8). */
static void sim_profile(struct world_params *p, struct rng *r)
{
    uint64_t kind = rng_below(r, 100);
    if (kind < 40) {
        p->fault_gap_ms = (uint32_t)rng_range(r, 100, 300);
        p->crash_ppm = (uint32_t)rng_range(r, 30000, 100000);
        p->restart_max_ms = 1500;
        p->leader_crash_ppm = 0;
    } else if (kind < 75) {
        p->fault_gap_ms = (uint32_t)rng_range(r, 50, 200);
        p->crash_ppm = (uint32_t)rng_range(r, 50000, 150000);
        p->restart_max_ms = 800;
        p->leader_crash_ppm = (uint32_t)rng_range(r, 0, 200000);
    } else {
        p->fault_gap_ms = (uint32_t)rng_range(r, 20, 80);
        p->crash_ppm = (uint32_t)rng_range(r, 100000, 300000);
        p->restart_max_ms = (uint32_t)rng_range(r, 50, 400);
        p->leader_crash_ppm = (uint32_t)rng_range(r, 200000, 500000);
    }
    p->partition_ppm = (uint32_t)rng_range(r, 30000, 150000);
}

static void sim_params(struct world *w)
{
    struct world_params *p = &w->p;
    struct rng *r = &w->rng;
    p->nodes = rng_below(r, 2) ? 5 : 3;
    p->clients = (uint32_t)rng_range(r, 2, 6);
    p->fault_ms = rng_range(r, 2000, 6000);
    p->liveness_ms = 20000;
    p->election_ms = 100;
    p->disk_max_ms = (uint32_t)rng_below(r, 12);
    sim_profile(p, r);
    p->member_ppm = rng_below(r, 3) ? (uint32_t)rng_range(r, 30000, 100000) : 0;
    p->transfer_ppm = (uint32_t)rng_range(r, 10000, 60000);
    static const uint64_t snaps[] = {1500, 6000, 1ull << 40};
    p->snapshot_bytes = snaps[rng_below(r, 3)];
    static const uint32_t appends[] = {1, 2, 8, 64};
    p->append_max = appends[rng_below(r, 4)];
    p->window = (uint32_t)rng_range(r, 1, 64);
    /* Fewer sessions than clients exercises eviction and SESSION_EXPIRED (--sessions). */
    uint32_t few = p->clients - 1;
    p->sessions_max = rng_below(r, 4) || sim_sessions == 0 ? 1024 : few;
    p->sessions_max = sim_sessions > 1 ? sim_sessions : p->sessions_max;
    p->lease_reads = rng_below(r, 4) == 0;
}

static int sim_init(struct world *w, uint64_t seed, uint32_t nodes, int trace)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    rng_seed(&w->rng, seed);
    sim_params(w);
    w->p.nodes = nodes ? nodes : w->p.nodes;
    w->p.mutation = sim_mutation;
    w->p.no_commit_rule = sim_no_commit_rule;
    w->p.twin = !sim_mini_disk;
    vnet_init(&w->net, &w->rng);
    w->faults_on = 1;
    w->fault_at = rng_range(&w->rng, 50, 300);
    struct msg_config boot = {.n = w->p.nodes};
    for (uint32_t i = 0; i < w->p.nodes; i++) {
        boot.servers[i] = (struct msg_server){.id = i + 1, .role = MSG_ROLE_VOTER};
    }
    w->config_committed = boot;
    w->trace = trace;
    world_trace(w,
                "seed %" PRIu64 ": %u nodes, %u clients, fault phase %" PRIu64
                " ms, disk sync <= %u ms, snapshot every %" PRIu64 " bytes, %u sessions, leases %u",
                seed, w->p.nodes, w->p.clients, w->p.fault_ms, w->p.disk_max_ms,
                w->p.snapshot_bytes, w->p.sessions_max, w->p.lease_reads);
    for (uint32_t id = 1; id <= w->p.nodes; id++) {
        w->r[id].id = id;
        w->r[id].member = 1;
        if (replica_start(w, &w->r[id], &boot) != 0) {
            return -1;
        }
    }
    for (uint32_t i = 0; i < w->p.clients; i++) {
        struct world_client *c = &w->c[i];
        c->addr = WORLD_CLIENT_ADDR0 + i;
        c->client_id = 0; /* its first timer registers a session */
        c->target = (uint32_t)rng_range(&w->rng, 1, w->p.nodes);
        c->timeout_ms = rng_range(&w->rng, 150, 400);
        c->timer_at = rng_below(&w->rng, 10);
    }
    return 0;
}

static void sim_free(struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        replica_free(&w->r[id]);
    }
    vnet_free(&w->net);
    free(w->hist);
    free(w->commits);
    free(w->term_leader);
    free(w->once);
}

struct sim_stats {
    uint64_t seeds;
    uint64_t steps;
    uint64_t ops;
    uint64_t commits;
    uint64_t lin_unknown;
    uint64_t failed;
    uint64_t fingerprint; /* of the last run: equal runs give equal fingerprints */
    struct world_counts count;
};

static const struct {
    const char *name;
    uint32_t flag;
} sim_mutations[] = {
    {"commit_old_term", RAFT_MUT_COMMIT_OLD_TERM},
    {"ack_before_persist", RAFT_MUT_ACK_BEFORE_PERSIST},
    {"vote_twice", RAFT_MUT_VOTE_TWICE},
    {"leader_no_persist", RAFT_MUT_LEADER_NO_PERSIST},
    {"vote_any_log", RAFT_MUT_VOTE_ANY_LOG},
    {"no_truncate", RAFT_MUT_NO_TRUNCATE},
    {"sim_stale_reads", WORLD_MUT_STALE_READS},
    {"sim_no_sessions", WORLD_MUT_NO_SESSIONS},
    {"sim_first_opens", WORLD_MUT_FIRST_OPENS},
};

static const char *sim_mutation_name(void)
{
    for (size_t i = 0; i < ORDO_ARRAY_LEN(sim_mutations); i++) {
        if (sim_mutations[i].flag == sim_mutation) {
            return sim_mutations[i].name;
        }
    }
    return NULL;
}

static void sim_print_replay(FILE *f, uint64_t seed, uint32_t nodes)
{
    fprintf(f, "  replay: %s --seed %" PRIu64, sim_argv0, seed);
    if (nodes) {
        fprintf(f, " --nodes %u", nodes);
    }
    if (sim_mutation_name() != NULL) {
        fprintf(f, " --mutate %s", sim_mutation_name());
    }
    if (sim_sessions != 0) {
        fprintf(f, " --sessions %u", sim_sessions);
    }
    if (sim_mini_disk) {
        fprintf(f, " --mini-disk");
    }
    fprintf(f, " --trace\n");
}

static void sim_check_history(struct world *w, struct sim_stats *st)
{
    struct lin_report rep;
    int rc = lin_check(w->hist, w->n_hist, 0, &rep);
    w->lin_steps = rep.steps;
    if (rc == LIN_VIOLATION) {
        world_fail(w, "linearizability violation in the client history");
        lin_print(stderr, w->hist, &rep);
    } else if (rc == LIN_UNKNOWN) {
        st->lin_unknown++;
    } else if (rc < 0) {
        world_fail(w, "linearizability checker out of memory");
    }
    lin_report_free(&rep);
}

/* One line per replica, printed with a failure. */
static void sim_dump(const struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        const struct world_replica *rep = &w->r[id];
        if (!rep->exists) {
            continue;
        }
        const struct world_disk *d = &rep->disk;
        fprintf(stderr,
                "  replica %u: %s role %u term %" PRIu64 " commit %" PRIu64 " applied %" PRIu64
                " log %" PRIu64 "..%" PRIu64 " durable %" PRIu64,
                id,
                rep->removed ? "removed"
                : rep->up    ? "up"
                             : "down",
                rep->role, rep->term, rep->raft ? raft_commit_index(rep->raft) : 0, rep->applied,
                d->snap_index, d->snap_index + d->n, d->snap_index + d->n_durable);
        if (rep->twin != NULL) {
            struct disk_bounds b;
            sim_disk_bounds(rep->twin, &b);
            fprintf(stderr, " twin %" PRIu64 "..%" PRIu64 " durable %" PRIu64 " err %d",
                    b.index_first, b.index_last, b.index_durable, sim_disk_error(rep->twin));
        }
        fprintf(stderr, "\n");
    }
}

/* Runs one seed to completion; returns 0 when every check passed. */
static int sim_run(uint64_t seed, uint32_t nodes, int trace, int quiet, struct sim_stats *st)
{
    static struct world w;
    sim_current_seed = seed;
    int rc = sim_init(&w, seed, nodes, trace);
    if (rc == 0) {
        sim_loop(&w);
    }
    if (!w.failed) {
        sim_check_history(&w, st);
    }
    st->seeds++;
    st->steps += w.steps;
    st->ops += w.ops_done;
    st->commits += w.commit_max;
    w.count.msgs = w.net.delivered;
    st->fingerprint = world_mix(world_mix(w.steps, w.now), world_mix(w.ops_done, w.n_hist));
    st->fingerprint = world_mix(st->fingerprint, check_chain_at(&w, w.commit_max));
    uint64_t *dst = (uint64_t *)(void *)&st->count;
    const uint64_t *src = (const uint64_t *)(const void *)&w.count;
    for (size_t i = 0; i < sizeof(w.count) / sizeof(uint64_t) - 2; i++) {
        dst[i] += src[i];
    }
    if (w.count.leader_ms_max > st->count.leader_ms_max) {
        st->count.leader_ms_max = w.count.leader_ms_max;
    }
    if (w.count.complete_ms_max > st->count.complete_ms_max) {
        st->count.complete_ms_max = w.count.complete_ms_max;
    }
    if (w.failed) {
        st->failed++;
        if (!quiet) {
            fprintf(stderr,
                    "FAIL seed %" PRIu64 " (%u nodes, step %" PRIu64 ", %" PRIu64 " ms): %s\n",
                    seed, w.p.nodes, w.steps, w.now, w.why);
            sim_print_replay(stderr, seed, nodes);
            sim_dump(&w);
        }
    } else if (trace) {
        fprintf(stderr,
                "seed %" PRIu64 " ok: %u nodes, %" PRIu64 " steps, %" PRIu64 " ops, %" PRIu64
                " commits, %" PRIu64 " ms\n",
                seed, w.p.nodes, w.steps, w.ops_done, w.commit_max, w.now);
    }
    sim_free(&w);
    return w.failed ? 1 : 0;
}

static void sim_on_abort(int sig)
{
    (void)sig;
    fprintf(stderr, "ABORT in seed %" PRIu64 " (an assertion fired)\n", sim_current_seed);
    sim_print_replay(stderr, sim_current_seed, 0);
    signal(SIGABRT, SIG_DFL);
}

/* Runs a seed in a child process so that an assertion (abort) in the core is reported as a
 * failure of that seed rather than ending the whole pass. */
static int sim_run_forked(uint64_t seed, uint32_t nodes, int quiet, struct sim_stats *st)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        return sim_run(seed, nodes, 0, quiet, st);
    }
    if (pid == 0) {
        if (quiet) {
            signal(SIGABRT, SIG_DFL);
        }
        _exit(sim_run(seed, nodes, 0, quiet, st) ? 1 : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    st->seeds++;
    st->failed++;
    if (!quiet) {
        fprintf(stderr, "FAIL seed %" PRIu64 ": killed by signal %d\n", seed, WTERMSIG(status));
        sim_print_replay(stderr, seed, nodes);
    }
    return 1;
}

static double sim_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sim_usage(void)
{
    fprintf(stderr,
            "usage: %s [--seed S [--trace]] [--seeds N] [--start S] [--time SEC] [--soak]\n"
            "          [--nodes 3|5] [--mutate NAME --expect-catch]\n"
            "  --seed S        run one seed in-process (reproduces a failure exactly)\n"
            "  --trace         print every step of the run\n"
            "  --seeds N       run N seeds from --start (default 1) and stop\n"
            "  --time SEC      also stop after SEC seconds of wall time\n"
            "  --soak          run seeds until stopped (or the first failure)\n"
            "  --mutate NAME   break the core on purpose: commit_old_term, ack_before_persist,\n"
            "                  vote_twice, leader_no_persist, vote_any_log, no_truncate;\n"
            "                  or the simulated replica: sim_stale_reads, sim_no_sessions,\n"
            "                  sim_first_opens (request 1 of an unknown client opens a\n"
            "                  session: the rule before registration; use --sessions 2)\n"
            "  --expect-catch  succeed only if some seed fails (tests of the checkers)\n"
            "  --sessions N    session table size: 1 = now and then fewer than clients\n"
            "                  (exercises eviction and expiry), N > 1 = always N\n"
            "  --mini-disk     the simulator's minimal disk model instead of the driver's twin\n"
            "  --replay-check  run every seed twice and demand identical runs (determinism)\n"
            "  --no-commit-rule  leave out the direct figure 3.7 check (leaders commit only\n"
            "                  entries of their term), to see what else catches a mutation\n",
            sim_argv0);
}

struct sim_opts {
    uint64_t seed;
    int one;
    int trace;
    uint64_t seeds;
    uint64_t start;
    double time_s;
    int soak;
    uint32_t nodes;
    int expect_catch;
    int replay_check;
};

static int sim_parse(int argc, char **argv, struct sim_opts *o)
{
    static const struct option lo[] = {
        {"seed", required_argument, NULL, 's'},     {"trace", no_argument, NULL, 't'},
        {"seeds", required_argument, NULL, 'n'},    {"start", required_argument, NULL, 'S'},
        {"time", required_argument, NULL, 'T'},     {"soak", no_argument, NULL, 'k'},
        {"nodes", required_argument, NULL, 'N'},    {"mutate", required_argument, NULL, 'm'},
        {"expect-catch", no_argument, NULL, 'e'},   {"sessions", required_argument, NULL, 'x'},
        {"no-commit-rule", no_argument, NULL, 'R'}, {"replay-check", no_argument, NULL, 'P'},
        {"mini-disk", no_argument, NULL, 'D'},      {NULL, 0, NULL, 0},
    };
    int c;
    *o = (struct sim_opts){.seeds = 100, .start = 1};
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            o->seed = strtoull(optarg, NULL, 0);
            o->one = 1;
            break;
        case 't':
            o->trace = 1;
            break;
        case 'n':
            o->seeds = strtoull(optarg, NULL, 0);
            break;
        case 'S':
            o->start = strtoull(optarg, NULL, 0);
            break;
        case 'T':
            o->time_s = strtod(optarg, NULL);
            break;
        case 'k':
            o->soak = 1;
            break;
        case 'N':
            o->nodes = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        case 'm':
            for (size_t i = 0; i < ORDO_ARRAY_LEN(sim_mutations); i++) {
                if (strcmp(optarg, sim_mutations[i].name) == 0) {
                    sim_mutation = sim_mutations[i].flag;
                }
            }
            if (sim_mutation == 0) {
                fprintf(stderr, "unknown mutation %s\n", optarg);
                return -1;
            }
            break;
        case 'e':
            o->expect_catch = 1;
            break;
        case 'R':
            sim_no_commit_rule = 1;
            break;
        case 'P':
            o->replay_check = 1;
            break;
        case 'D':
            sim_mini_disk = 1;
            break;
        case 'x':
            sim_sessions = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* Reproducibility: a seed run twice in one process gives the very same run. */
static int sim_replay_check(const struct sim_opts *o, struct sim_stats *st)
{
    for (uint64_t seed = o->start; seed < o->start + o->seeds; seed++) {
        int a = sim_run(seed, o->nodes, 0, 0, st);
        uint64_t fa = st->fingerprint;
        int b = sim_run(seed, o->nodes, 0, 0, st);
        if (a != b || fa != st->fingerprint) {
            printf("seed %" PRIu64 " is not reproducible: %016" PRIx64 " then %016" PRIx64 "\n",
                   seed, fa, st->fingerprint);
            return 1;
        }
    }
    printf("sim: %" PRIu64 " seeds replayed identically\n", o->seeds);
    return st->failed ? 1 : 0;
}

static int sim_many(const struct sim_opts *o, struct sim_stats *st)
{
    if (o->replay_check) {
        return sim_replay_check(o, st);
    }
    double t0 = sim_wall();
    uint64_t caught = 0;
    uint64_t seed = o->start;
    for (uint64_t k = 0; o->soak || k < o->seeds; k++, seed++) {
        if (o->time_s > 0 && sim_wall() - t0 > o->time_s) {
            break;
        }
        if (sim_run_forked(seed, o->nodes, 0, st) != 0) {
            caught = seed;
            break;
        }
    }
    double dt = sim_wall() - t0;
    printf("sim: %" PRIu64 " seeds, %" PRIu64 " steps, %" PRIu64 " client ops, %" PRIu64
           " commits, %.1f s (%.0f seeds/min, %.0f steps/min), %" PRIu64
           " histories too big to decide, %" PRIu64 " failed\n",
           st->seeds, st->steps, st->ops, st->commits, dt, (double)st->seeds * 60.0 / dt,
           (double)st->steps * 60.0 / dt, st->lin_unknown, st->failed);
    const struct world_counts *k = &st->count;
    printf("sim: covered %" PRIu64 " crashes, %" PRIu64 " leaderships, %" PRIu64
           " snapshots taken, %" PRIu64 " installed, %" PRIu64 " configurations committed, %" PRIu64
           " transfers, %" PRIu64 " disk errors, %" PRIu64 " peer digests compared, %" PRIu64
           " ReadIndex reads, %" PRIu64 " expired sessions, %" PRIu64 " registrations, %" PRIu64
           " messages\n",
           k->crashes, k->leaders, k->snaps_taken, k->snaps_installed, k->configs, k->transfers,
           k->disk_errors, k->digests, k->reads, k->expired, k->registered, k->msgs);
    printf("sim: liveness: leader within %" PRIu64 " ms and every pending op done within %" PRIu64
           " ms of the faults stopping (worst seed)\n",
           k->leader_ms_max, k->complete_ms_max);
    if (o->expect_catch) {
        if (caught) {
            printf("mutation %s caught by seed %" PRIu64 "\n", sim_mutation_name(), caught);
            return 0;
        }
        printf("mutation %s NOT caught in %" PRIu64 " seeds\n", sim_mutation_name(), st->seeds);
        return 1;
    }
    return st->failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    sim_argv0 = argv[0];
    struct sim_opts o;
    if (sim_parse(argc, argv, &o) != 0) {
        sim_usage();
        return 2;
    }
    struct sim_stats *st =
        mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(st, 0, sizeof(*st));
    signal(SIGABRT, sim_on_abort);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.one) {
        int rc = sim_run(o.seed, o.nodes, o.trace, 0, st);
        printf("seed %" PRIu64 ": %s (%" PRIu64 " steps, %" PRIu64 " client ops)\n", o.seed,
               rc ? "FAILED" : "ok", st->steps, st->ops);
        return o.expect_catch ? !rc : rc;
    }
    return sim_many(&o, st);
}
