/* The Raft core: elections, replication, snapshots, membership, transfer and reads as a pure
 * step function (STYLE.md section 1). It must never perform I/O, read a clock or draw
 * randomness other than from its own seeded PRNG. Section numbers cite Ongaro's dissertation. */
#include "engine/raft.h"

#include <errno.h>
#include <string.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/wire.h"

#define RAFT_READS_MAX 1024u
/* Messages one step can emit (fixed at create): a full window rarely goes in one step, and
 * pipelined sends past this wait for the next step instead of growing the array. */
#define RAFT_SENDS_MAX (64u * MSG_NODES_MAX)
#define RAFT_CTX_RING 64u

enum raft_pstate {
    RAFT_P_PROBE = 1,     /* one AppendEntries in flight until the match point is found */
    RAFT_P_REPLICATE = 2, /* pipelined: many in flight, bounded by the window */
    RAFT_P_SNAPSHOT = 3,  /* sending InstallSnapshot chunks */
};

/* The leader's view of one other server (3.5), also used by candidates to count votes. */
struct raft_progress {
    uint32_t id;
    uint8_t voter;
    uint8_t state; /* enum raft_pstate */
    uint8_t probe_sent;
    uint8_t vote_granted;
    uint8_t vote_answered;
    uint64_t next_index;
    uint64_t match_index;
    uint64_t sent_ms;  /* last AppendEntries or chunk sent */
    uint64_t ack_ms;   /* last time match_index advanced */
    uint64_t heard_ms; /* last response of any kind in this term (check-quorum) */
    uint64_t read_ctx; /* highest heartbeat round acknowledged */
    uint64_t snap_index;
    uint64_t snap_offset;
};

struct raft_pending_read {
    uint64_t id;
    uint64_t ctx;
    uint64_t index;
};

struct raft {
    struct raft_config cfg;
    uint32_t mutation;
    uint64_t prng;
    uint64_t now_ms;

    uint64_t term;
    uint32_t voted_for;
    uint8_t role;
    uint32_t leader_id;

    /* In-memory log, fixed at create (STYLE.md section 2): entry i (log_base < i <= log_base +
     * log_n) is log[i - log_base - 1]. cum[k] = data bytes from log_base+1 through that entry,
     * plus log_base_cum. Entry data lives in one byte ring (arena): entries are added at the
     * tail and leave at the tail (truncation) or the head (compaction), so the ring is a FIFO.
     * apos[k] is the monotonic arena position just past that entry's data (bytes skipped to
     * keep an entry contiguous at the wrap belong to it); log_base_apos is the head. */
    struct msg_entry *log;
    uint64_t *cum;
    uint64_t *apos;
    uint64_t log_n;
    uint64_t log_cap;
    uint64_t log_base;
    uint64_t log_base_term;
    uint64_t log_base_cum;
    uint64_t log_base_apos;
    uint8_t *arena;
    uint64_t arena_cap;

    uint64_t commit_index;
    uint64_t durable_index;
    uint64_t verified_index; /* log matches this term's leader up to here */
    uint64_t acked_index;    /* highest match acknowledged to this term's leader */

    uint64_t snap_index;
    uint64_t snap_term;
    struct msg_config snap_config;
    uint8_t *snap_data;
    uint64_t snap_len;

    uint8_t *rcv_data; /* snapshot being received */
    uint64_t rcv_len;
    uint64_t rcv_index;
    uint64_t rcv_term;

    struct msg_config bootstrap;
    struct msg_config conf;
    uint64_t conf_index;
    struct raft_progress peers[MSG_NODES_MAX];
    uint32_t n_peers;

    uint64_t election_deadline_ms;
    uint64_t heartbeat_deadline_ms;
    uint64_t quorum_deadline_ms;
    uint8_t quorum_postponed;
    uint64_t leader_heard_ms;

    uint64_t noop_index;
    uint32_t transfer_target;
    uint8_t transfer_sent;
    uint8_t lease_off; /* TimeoutNow sent this term: a successor may exist before the lease ends */
    uint64_t lease_ms; /* raft_lease_ms of the config */
    uint64_t transfer_deadline_ms;
    uint64_t read_ctx;
    uint64_t ctx_sent_ms[RAFT_CTX_RING];
    struct raft_pending_read *pending;
    uint32_t n_pending;

    uint64_t digest_index;
    uint8_t digest[MSG_DIGEST_LEN];

    /* Per-step scratch, handed out through struct raft_update. */
    struct raft_send *sends;
    uint32_t n_sends;
    uint32_t sends_cap;
    struct raft_read *ready;
    uint32_t n_ready;
    struct raft_digest digest_in;
    uint32_t n_digest_in;
    uint8_t hs_dirty;
    uint8_t conf_dirty;
    uint8_t role_dirty;
    uint8_t snap_installed;
    uint8_t snapshot_wanted;
    uint64_t persist_lo;
    uint64_t truncate_from;
    uint64_t step_commit;
    uint64_t proposed_index;

    struct raft_stats stats;
};

/* Role transition table (STYLE.md section 3): [from][to]. */
static const uint8_t raft_transitions[5][5] = {
    [RAFT_FOLLOWER] = {[RAFT_FOLLOWER] = 1, [RAFT_PRE_CANDIDATE] = 1, [RAFT_CANDIDATE] = 1},
    [RAFT_PRE_CANDIDATE] = {[RAFT_FOLLOWER] = 1, [RAFT_PRE_CANDIDATE] = 1, [RAFT_CANDIDATE] = 1},
    [RAFT_CANDIDATE] =
        {[RAFT_FOLLOWER] = 1, [RAFT_PRE_CANDIDATE] = 1, [RAFT_CANDIDATE] = 1, [RAFT_LEADER] = 1},
    [RAFT_LEADER] = {[RAFT_FOLLOWER] = 1},
};

/* ---------------------------------------------------------------- small helpers */

static uint64_t raft_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t raft_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* splitmix64: the only source of randomness, seeded by the caller. */
static uint64_t raft_rand(struct raft *r)
{
    r->prng += 0x9e3779b97f4a7c15ull;
    uint64_t z = r->prng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Randomized election timeout in [min, 2*min) (3.4). */
static void raft_election_reset(struct raft *r)
{
    uint64_t t = r->cfg.election_timeout_ms;
    r->election_deadline_ms = r->now_ms + t + raft_rand(r) % t;
}

/* k-th largest (k >= 1) of v[0..n-1]; sorts v in place. n <= MSG_NODES_MAX. */
static uint64_t raft_kth(uint64_t *v, uint32_t n, uint32_t k)
{
    ORDO_ASSERT(k >= 1 && k <= n && n <= MSG_NODES_MAX);
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        uint32_t j = i;
        while (j > 0 && v[j - 1] < x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return v[k - 1];
}

/* ---------------------------------------------------------------- configuration */

static int raft_conf_find(const struct msg_config *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

static int raft_conf_is_voter(const struct msg_config *c, uint32_t id)
{
    int i = raft_conf_find(c, id);
    return i >= 0 && c->servers[i].role == MSG_ROLE_VOTER;
}

static uint32_t raft_conf_voters(const struct msg_config *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        n += c->servers[i].role == MSG_ROLE_VOTER;
    }
    return n;
}

static int raft_conf_valid(const struct msg_config *c)
{
    if (c->n > MSG_NODES_MAX) {
        return 0;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        const struct msg_server *s = &c->servers[i];
        if (s->id == MSG_NODE_NONE || (s->role != MSG_ROLE_VOTER && s->role != MSG_ROLE_LEARNER)) {
            return 0;
        }
        if (raft_conf_find(c, s->id) != (int)i) {
            return 0;
        }
    }
    return 1;
}

int raft_config_encode(const struct msg_config *c, uint8_t *buf, size_t cap)
{
    return wire_config_encode(c, buf, cap);
}

int raft_config_decode(const uint8_t *buf, size_t len, struct msg_config *c)
{
    int rc = wire_config_decode(buf, len, c);
    return rc < 0 ? ORDO_EMALFORMED : 0;
}

static struct raft_progress *raft_peer(struct raft *r, uint32_t id)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].id == id) {
            return &r->peers[i];
        }
    }
    return NULL;
}

static uint64_t raft_last(const struct raft *r)
{
    return r->log_base + r->log_n;
}

/* Rebuilds the progress array for the servers of conf other than this one, keeping the state
 * of servers that stay. */
static void raft_peers_rebuild(struct raft *r)
{
    struct raft_progress old[MSG_NODES_MAX];
    uint32_t n_old = r->n_peers;
    memcpy(old, r->peers, sizeof(old));
    r->n_peers = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const struct msg_server *s = &r->conf.servers[i];
        if (s->id == r->cfg.id) {
            continue;
        }
        struct raft_progress *p = &r->peers[r->n_peers++];
        uint32_t j = 0;
        while (j < n_old && old[j].id != s->id) {
            j++;
        }
        if (j < n_old) {
            *p = old[j];
        } else {
            memset(p, 0, sizeof(*p));
            p->id = s->id;
            p->next_index = raft_last(r) + 1;
            p->state = RAFT_P_PROBE;
            p->heard_ms = r->now_ms;
            p->ack_ms = r->now_ms;
        }
        p->voter = s->role == MSG_ROLE_VOTER;
    }
    /* A leader keeps replicating, as to a learner, to servers that its latest configuration
     * removes while that configuration is uncommitted, so they receive the entry that removes
     * them and learn it; the first heartbeat round after the commit (which tells them the
     * commit) drops them (raft_broadcast_heartbeat). */
    for (uint32_t j = 0; j < n_old && r->role == RAFT_LEADER; j++) {
        if (r->conf_index > r->commit_index && raft_conf_find(&r->conf, old[j].id) < 0) {
            r->peers[r->n_peers] = old[j];
            r->peers[r->n_peers++].voter = 0;
        }
    }
    ORDO_ASSERT(r->n_peers < MSG_NODES_MAX);
}

static void raft_conf_use(struct raft *r, const struct msg_config *c, uint64_t index)
{
    ORDO_ASSERT(raft_conf_valid(c));
    r->conf = *c;
    r->conf_index = index;
    r->conf_dirty = 1;
    raft_peers_rebuild(r);
}

/* ---------------------------------------------------------------- in-memory log */

static struct msg_entry *raft_log_at(const struct raft *r, uint64_t index)
{
    ORDO_ASSERT(index > r->log_base);
    ORDO_ASSERT(index <= raft_last(r));
    return &r->log[index - r->log_base - 1];
}

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
    if (index == r->log_base) {
        return r->log_base_term;
    }
    if (index > r->log_base && index <= raft_last(r)) {
        return raft_log_at(r, index)->term;
    }
    if (index == r->snap_index) {
        return r->snap_term;
    }
    return 0;
}

static uint64_t raft_cum_at(const struct raft *r, uint64_t index)
{
    if (index <= r->log_base) {
        return r->log_base_cum;
    }
    return r->cum[index - r->log_base - 1];
}

/* Arena position just past the data of entry index (log_base <= index <= last). */
static uint64_t raft_apos_at(const struct raft *r, uint64_t index)
{
    if (index <= r->log_base) {
        return r->log_base_apos;
    }
    return r->apos[index - r->log_base - 1];
}

/* Where len bytes written at tail position pos start: an entry never wraps around the end of
 * the ring, so one that would is moved to the ring's start (the skipped bytes count as used). */
static uint64_t raft_arena_place(const struct raft *r, uint64_t pos, uint32_t len)
{
    uint64_t off = pos % r->arena_cap;
    if (len > 0 && off + len > r->arena_cap) {
        return pos + (r->arena_cap - off);
    }
    return pos;
}

/* Whether entries lens[0..n-1] fit after entry `after` once everything past it is dropped:
 * slots in the fixed log array and bytes in the arena (whose head stays at log_base_apos). */
static int raft_log_fits(const struct raft *r, uint64_t after, const uint32_t *lens, uint32_t n)
{
    ORDO_ASSERT(after >= r->log_base && after <= raft_last(r));
    if (after - r->log_base + n > r->log_cap) {
        return 0;
    }
    uint64_t pos = raft_apos_at(r, after);
    for (uint32_t i = 0; i < n; i++) {
        pos = raft_arena_place(r, pos, lens[i]) + lens[i];
        if (pos - r->log_base_apos > r->arena_cap) {
            return 0;
        }
    }
    return 1;
}

/* Whether one more entry of len bytes fits at the end of the log. */
static int raft_log_room(const struct raft *r, uint32_t len)
{
    return raft_log_fits(r, raft_last(r), &len, 1);
}

/* Appends an entry, copying len bytes of data into the arena. Room must have been checked
 * with raft_log_fits (asserted). */
static void raft_log_push(struct raft *r, uint64_t term, uint8_t type, const uint8_t *data,
                          uint32_t len)
{
    ORDO_ASSERT(r->log_n < r->log_cap);
    ORDO_ASSERT(term >= raft_term_at(r, raft_last(r)));
    uint64_t index = raft_last(r) + 1;
    uint64_t start = raft_arena_place(r, raft_apos_at(r, index - 1), len);
    ORDO_ASSERT(start + len - r->log_base_apos <= r->arena_cap);
    struct msg_entry *e = &r->log[r->log_n];
    e->term = term;
    e->index = index;
    e->type = type;
    e->len = len;
    e->data = NULL;
    if (len > 0) {
        uint8_t *dst = r->arena + start % r->arena_cap;
        memcpy(dst, data, len);
        e->data = dst;
    }
    r->cum[r->log_n] = raft_cum_at(r, index - 1) + len;
    r->apos[r->log_n] = start + len;
    r->log_n++;
    if (r->persist_lo == 0 || index < r->persist_lo) {
        r->persist_lo = index;
    }
}

/* Deletes entries >= from (a conflicting suffix, 3.5). Never a committed entry. */
static void raft_log_truncate(struct raft *r, uint64_t from)
{
    ORDO_ASSERT(from > r->log_base);
    ORDO_ASSERT(from <= raft_last(r));
    ORDO_ASSERT(from > r->commit_index || r->mutation != 0);
    r->log_n = from - r->log_base - 1;
    r->durable_index = raft_min(r->durable_index, from - 1);
    if (r->truncate_from == 0 || from < r->truncate_from) {
        r->truncate_from = from;
    }
    if (r->persist_lo >= from) {
        r->persist_lo = 0;
    }
    r->stats.truncations++;
}

/* Drops entries <= upto from memory (they are covered by a snapshot). */
static void raft_log_compact(struct raft *r, uint64_t upto)
{
    ORDO_ASSERT(upto >= r->log_base);
    ORDO_ASSERT(upto <= raft_last(r));
    if (upto == r->log_base) {
        return;
    }
    uint64_t k = upto - r->log_base;
    r->log_base_term = raft_term_at(r, upto);
    r->log_base_cum = raft_cum_at(r, upto);
    r->log_base_apos = raft_apos_at(r, upto); /* frees the arena bytes of entries <= upto */
    memmove(r->log, r->log + k, (r->log_n - k) * sizeof(*r->log));
    memmove(r->cum, r->cum + k, (r->log_n - k) * sizeof(*r->cum));
    memmove(r->apos, r->apos + k, (r->log_n - k) * sizeof(*r->apos));
    r->log_n -= k;
    r->log_base = upto;
}

/* Drops every entry and restarts the log after (base, base_term). */
static void raft_log_reset(struct raft *r, uint64_t base, uint64_t base_term)
{
    r->log_n = 0;
    r->log_base = base;
    r->log_base_term = base_term;
    r->log_base_cum = 0;
    r->log_base_apos = 0;
    r->persist_lo = 0;
}

/* The configuration in force after the last entry: the latest config entry in the log,
 * committed or not (4.1), else the snapshot's, else the bootstrap one. */
static void raft_conf_recompute(struct raft *r)
{
    for (uint64_t i = raft_last(r); i > r->log_base; i--) {
        const struct msg_entry *e = raft_log_at(r, i);
        struct msg_config c;
        if (e->type == MSG_ENTRY_CONFIG && raft_config_decode(e->data, e->len, &c) == 0) {
            if (i != r->conf_index || memcmp(&c, &r->conf, sizeof(c)) != 0) {
                raft_conf_use(r, &c, i);
            }
            return;
        }
    }
    const struct msg_config *c = r->snap_index > 0 ? &r->snap_config : &r->bootstrap;
    uint64_t index = r->snap_index;
    if (index != r->conf_index || memcmp(c, &r->conf, sizeof(*c)) != 0) {
        raft_conf_use(r, c, index);
    }
}

/* ---------------------------------------------------------------- outgoing messages */

/* Returns a zeroed message addressed to `to`, or NULL when the fixed send array is full (the
 * message is dropped and counted: Raft tolerates loss and the timers retransmit). */
static struct msg *raft_send_new(struct raft *r, uint32_t to, uint8_t type)
{
    ORDO_ASSERT(to != MSG_NODE_NONE && to != r->cfg.id);
    if (r->n_sends == r->sends_cap) {
        r->stats.msgs_out_dropped++;
        return NULL;
    }
    struct raft_send *s = &r->sends[r->n_sends++];
    memset(s, 0, sizeof(*s));
    s->to = to;
    s->msg.hdr.version = RAFT_MSG_VERSION;
    s->msg.hdr.type = type;
    s->msg.hdr.flags = MSG_HDR_MAC;
    s->msg.hdr.cluster_id = r->cfg.cluster_id;
    s->msg.hdr.sender = r->cfg.id;
    r->stats.msgs_out++;
    return &s->msg;
}

static void raft_send_append_response(struct raft *r, uint32_t to, int success, uint64_t match,
                                      uint64_t reject, uint64_t conflict_index,
                                      uint64_t conflict_term)
{
    struct msg *m = raft_send_new(r, to, MSG_APPEND_RESPONSE);
    if (m == NULL) {
        return;
    }
    struct msg_append_response *a = &m->u.append_response;
    a->term = r->term;
    a->success = (uint8_t)success;
    a->match_index = match;
    a->reject_index = reject;
    a->conflict_index = conflict_index;
    a->conflict_term = conflict_term;
    a->last_log_index = raft_last(r);
}

static void raft_send_vote_response(struct raft *r, uint32_t to, uint64_t term, int granted,
                                    int pre)
{
    struct msg *m = raft_send_new(r, to, MSG_VOTE_RESPONSE);
    if (m == NULL) {
        return;
    }
    m->u.vote_response.term = term;
    m->u.vote_response.granted = (uint8_t)granted;
    m->u.vote_response.pre_vote = (uint8_t)pre;
}

/* ---------------------------------------------------------------- roles */

static void raft_role_set(struct raft *r, uint8_t role)
{
    ORDO_ASSERT(role >= RAFT_FOLLOWER && role <= RAFT_LEADER);
    ORDO_ASSERT(raft_transitions[r->role][role]);
    if (role != r->role) {
        r->role_dirty = 1;
    }
    r->role = role;
}

static void raft_leader_set(struct raft *r, uint32_t id)
{
    if (id != r->leader_id) {
        r->role_dirty = 1;
    }
    r->leader_id = id;
}

static void raft_term_set(struct raft *r, uint64_t term)
{
    ORDO_ASSERT(term > r->term);
    r->term = term;
    r->voted_for = MSG_NODE_NONE;
    r->hs_dirty = 1;
    r->verified_index = 0;
    r->acked_index = 0;
}

static void raft_read_out(struct raft *r, uint64_t id, uint64_t index, int status)
{
    ORDO_ASSERT(r->n_ready <= RAFT_READS_MAX);
    struct raft_read *rd = &r->ready[r->n_ready++];
    rd->id = id;
    rd->index = index;
    rd->status = status;
}

/* Leaving leadership: pending reads fail (the client retries at the new leader). */
static void raft_leader_cleanup(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_pending; i++) {
        raft_read_out(r, r->pending[i].id, 0, ORDO_ENOTLEADER);
    }
    r->n_pending = 0;
    r->transfer_target = MSG_NODE_NONE;
    r->transfer_sent = 0;
}

static void raft_become_follower(struct raft *r, uint64_t term, uint32_t leader)
{
    if (term > r->term) {
        raft_term_set(r, term);
    }
    if (r->role == RAFT_LEADER) {
        raft_leader_cleanup(r);
    }
    raft_role_set(r, RAFT_FOLLOWER);
    raft_leader_set(r, leader);
    raft_election_reset(r);
}

static int raft_self_voter(const struct raft *r)
{
    return raft_conf_is_voter(&r->conf, r->cfg.id);
}

static int raft_conf_at(const struct raft *r, uint64_t index, struct msg_config *c);

/* Voters campaign. So does a voter that its latest, still uncommitted configuration removes:
 * if it held the longest log and may not campaign, the others could wait for its vote
 * forever. It counts votes with that latest configuration (without itself), as a leader
 * that removes itself does (4.2.2); the two majorities overlap (4.1), and once it wins it
 * commits the removal and steps down. Learners never campaign. */
static int raft_may_campaign(const struct raft *r)
{
    if (raft_self_voter(r)) {
        return 1;
    }
    if (r->conf_index <= r->commit_index || raft_conf_find(&r->conf, r->cfg.id) >= 0) {
        return 0;
    }
    struct msg_config prev;
    if (r->conf_index == 0 || raft_conf_at(r, r->conf_index - 1, &prev) < 0) {
        return 0;
    }
    return raft_conf_is_voter(&prev, r->cfg.id);
}

/* A leader was heard from within the minimum election timeout (9.6): this server ignores
 * vote requests that would depose it. A leader is always in its own lease. */
static int raft_in_lease(const struct raft *r)
{
    /* Always on, not only with check-quorum: it is also what keeps removed servers, which
     * no longer hear heartbeats, from deposing the leader (4.2.3). */
    if (r->role == RAFT_LEADER) {
        return 1;
    }
    return r->leader_id != MSG_NODE_NONE &&
           r->now_ms < r->leader_heard_ms + r->cfg.election_timeout_ms;
}

/* Votes granted, counting this server when it is a voter. */
static int raft_votes_won(const struct raft *r)
{
    uint32_t voters = raft_conf_voters(&r->conf);
    uint32_t granted = raft_self_voter(r) ? 1u : 0u;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        granted += r->peers[i].voter && r->peers[i].vote_granted;
    }
    return voters > 0 && granted >= voters / 2 + 1;
}

static void raft_send_vote_requests(struct raft *r, uint64_t term, uint8_t flags)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        struct raft_progress *p = &r->peers[i];
        p->vote_granted = 0;
        p->vote_answered = 0;
        if (!p->voter) {
            continue;
        }
        struct msg *m = raft_send_new(r, p->id, MSG_VOTE_REQUEST);
        if (m == NULL) {
            continue;
        }
        m->u.vote_request.term = term;
        m->u.vote_request.last_log_index = raft_last(r);
        m->u.vote_request.last_log_term = raft_term_at(r, raft_last(r));
        m->u.vote_request.flags = flags;
    }
}

static void raft_become_leader(struct raft *r);

/* A real election (3.4): new term, vote for self, durable before the requests leave. */
static void raft_start_election(struct raft *r, int transfer)
{
    ORDO_ASSERT(raft_may_campaign(r));
    if (r->role == RAFT_LEADER) {
        raft_leader_cleanup(r);
    }
    raft_term_set(r, r->term + 1);
    r->voted_for = r->cfg.id;
    raft_role_set(r, RAFT_CANDIDATE);
    raft_leader_set(r, MSG_NODE_NONE);
    raft_election_reset(r);
    r->stats.elections++;
    raft_send_vote_requests(r, r->term, transfer ? MSG_VOTE_TRANSFER : 0);
    if (raft_votes_won(r)) {
        raft_become_leader(r);
    }
}

/* Pre-vote (9.6): ask whether an election could succeed, without touching the term. */
static void raft_start_pre_vote(struct raft *r)
{
    ORDO_ASSERT(raft_may_campaign(r));
    raft_role_set(r, RAFT_PRE_CANDIDATE);
    raft_leader_set(r, MSG_NODE_NONE);
    raft_election_reset(r);
    r->stats.pre_votes++;
    raft_send_vote_requests(r, r->term + 1, MSG_VOTE_PRE);
    if (raft_votes_won(r)) {
        raft_start_election(r, 0);
    }
}

/* ---------------------------------------------------------------- replication (leader) */

static void raft_send_chunk(struct raft *r, struct raft_progress *p)
{
    ORDO_ASSERT(r->snap_index > 0);
    if (p->snap_index != r->snap_index) {
        p->snap_index = r->snap_index;
        p->snap_offset = 0;
    }
    p->sent_ms = r->now_ms;
    struct msg *m = raft_send_new(r, p->id, MSG_INSTALL_SNAPSHOT);
    if (m == NULL) {
        return;
    }
    struct msg_install_snapshot *s = &m->u.snapshot;
    uint64_t off = raft_min(p->snap_offset, r->snap_len);
    uint64_t len = raft_min(r->cfg.snapshot_chunk_bytes, r->snap_len - off);
    s->term = r->term;
    s->last_index = r->snap_index;
    s->last_term = r->snap_term;
    s->config = r->snap_config;
    s->total_len = r->snap_len;
    s->offset = off;
    s->done = off + len == r->snap_len;
    s->chunk_len = (uint32_t)len;
    s->chunk = NULL; /* set in raft_finish: snap_data may move within the step */
}

/* Sends one AppendEntries starting at p->next_index; returns the number of entries in it. */
static uint64_t raft_send_append(struct raft *r, struct raft_progress *p)
{
    uint64_t prev = p->next_index - 1;
    uint64_t last = raft_last(r);
    uint64_t n = 0;
    uint64_t bytes = 0;
    while (prev + n < last && n < r->cfg.append_entries_max) {
        uint32_t len = raft_log_at(r, prev + n + 1)->len;
        if (n > 0 && bytes + len > r->cfg.append_bytes_max) {
            break;
        }
        bytes += len;
        n++;
    }
    p->sent_ms = r->now_ms;
    struct msg *m = raft_send_new(r, p->id, MSG_APPEND_ENTRIES);
    if (m == NULL) {
        return n; /* counted as in flight: the retransmit timer recovers */
    }
    struct msg_append_entries *a = &m->u.append;
    a->term = r->term;
    a->prev_log_index = prev;
    a->prev_log_term = raft_term_at(r, prev);
    a->leader_commit = r->commit_index;
    a->n_entries = (uint32_t)n;
    a->entries = NULL; /* set in raft_finish: the log array may move within the step */
    return n;
}

/* Sends what the follower's state and window allow (3.5; pipelining 10.2.2). */
static void raft_replicate(struct raft *r, struct raft_progress *p)
{
    if (p->state == RAFT_P_SNAPSHOT) {
        return;
    }
    if (p->next_index - 1 < r->log_base) {
        /* The entries it needs were compacted: InstallSnapshot (5.3). */
        p->state = RAFT_P_SNAPSHOT;
        p->snap_index = 0;
        raft_send_chunk(r, p);
        return;
    }
    if (p->state == RAFT_P_PROBE) {
        if (p->probe_sent && r->now_ms < p->sent_ms + r->cfg.heartbeat_ms) {
            return;
        }
        /* next_index stays: the answer to the probe decides where to go on. */
        p->probe_sent = 1;
        (void)raft_send_append(r, p);
        return;
    }
    uint64_t last = raft_last(r);
    for (uint32_t guard = 0; guard < r->cfg.window_entries && p->next_index <= last; guard++) {
        if (r->n_sends == r->sends_cap) {
            break; /* the rest goes with the next step, once the caller took these */
        }
        uint64_t inflight = p->next_index - 1 - p->match_index;
        uint64_t from = raft_max(p->match_index, r->log_base);
        uint64_t bytes = raft_cum_at(r, p->next_index - 1) - raft_cum_at(r, from);
        if (inflight >= r->cfg.window_entries || bytes >= r->cfg.window_bytes) {
            break;
        }
        p->next_index += raft_send_append(r, p);
    }
}

static void raft_replicate_all(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        raft_replicate(r, &r->peers[i]);
    }
}

static void raft_send_timeout_now(struct raft *r, struct raft_progress *p)
{
    struct msg *m = raft_send_new(r, p->id, MSG_TIMEOUT_NOW);
    if (m != NULL) {
        m->u.timeout_now.term = r->term;
    }
    r->transfer_sent = 1;
    /* The target's election bypasses leader stickiness (3.10), so this leader's lease no
     * longer guarantees that no other leader exists: no more lease reads in this term. */
    r->lease_off = 1;
}

/* One heartbeat round (new ReadIndex context) to every other server. */
static void raft_broadcast_heartbeat(struct raft *r)
{
    r->read_ctx++;
    r->ctx_sent_ms[r->read_ctx % RAFT_CTX_RING] = r->now_ms;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        struct msg *m = raft_send_new(r, r->peers[i].id, MSG_HEARTBEAT);
        if (m == NULL) {
            continue;
        }
        struct msg_heartbeat *h = &m->u.heartbeat;
        h->term = r->term;
        h->leader_commit = r->commit_index;
        h->read_ctx = r->read_ctx;
        h->digest_index = r->digest_index;
        memcpy(h->digest, r->digest, MSG_DIGEST_LEN);
    }
    r->heartbeat_deadline_ms = r->now_ms + r->cfg.heartbeat_ms;
    uint32_t members = r->conf.n - (raft_conf_find(&r->conf, r->cfg.id) >= 0 ? 1u : 0u);
    if (r->n_peers > members && r->conf_index <= r->commit_index) {
        raft_peers_rebuild(r); /* removed servers were told the commit: stop contacting them */
    }
}

static void raft_become_leader(struct raft *r)
{
    ORDO_ASSERT(r->role == RAFT_CANDIDATE);
    ORDO_ASSERT(r->voted_for == r->cfg.id);
    raft_role_set(r, RAFT_LEADER);
    raft_leader_set(r, r->cfg.id);
    r->stats.leaderships++;
    raft_peers_rebuild(r); /* removed servers kept by an earlier term go unless still due */
    for (uint32_t i = 0; i < r->n_peers; i++) {
        struct raft_progress *p = &r->peers[i];
        p->next_index = raft_last(r) + 1;
        p->match_index = 0;
        p->state = RAFT_P_PROBE;
        p->probe_sent = 0;
        p->heard_ms = r->now_ms;
        p->ack_ms = r->now_ms;
        p->read_ctx = 0;
    }
    r->n_pending = 0;
    r->transfer_target = MSG_NODE_NONE;
    r->lease_off = 0;
    r->quorum_postponed = 0;
    r->quorum_deadline_ms = r->now_ms + r->cfg.election_timeout_ms;
    /* A no-op entry of the new term lets the leader learn what is committed (6.4) and
     * commit older entries indirectly (3.6.2). Without memory, the broadcast still asserts
     * leadership and the next proposal carries the term. */
    r->noop_index = UINT64_MAX;
    if (raft_log_room(r, 0)) {
        raft_log_push(r, r->term, MSG_ENTRY_NOOP, NULL, 0);
        r->noop_index = raft_last(r);
    }
    raft_replicate_all(r);
    raft_broadcast_heartbeat(r);
}

/* ---------------------------------------------------------------- commit and reads */

static void raft_reads_check(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->n_pending == 0 || r->commit_index < r->noop_index) {
        return;
    }
    uint64_t v[MSG_NODES_MAX];
    uint32_t n = 0;
    if (raft_self_voter(r)) {
        v[n++] = r->read_ctx;
    }
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].voter) {
            v[n++] = r->peers[i].read_ctx;
        }
    }
    if (n == 0) {
        return;
    }
    uint64_t qctx = raft_kth(v, n, n / 2 + 1);
    uint32_t k = 0;
    while (k < r->n_pending && r->pending[k].ctx <= qctx) {
        uint64_t index = r->pending[k].index;
        raft_read_out(r, r->pending[k].id, index == 0 ? r->commit_index : index, 0);
        k++;
    }
    memmove(r->pending, r->pending + k, (r->n_pending - k) * sizeof(*r->pending));
    r->n_pending -= k;
}

/* The removed leader leaves (4.2.2): it tells the others the change committed and hands
 * leadership to the most up-to-date remaining voter with TimeoutNow (3.10), so the cluster
 * need not wait an election timeout for a successor. */
static void raft_step_down_removed(struct raft *r)
{
    raft_broadcast_heartbeat(r);
    struct raft_progress *best = NULL;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        struct raft_progress *p = &r->peers[i];
        if (p->voter && (best == NULL || p->match_index > best->match_index)) {
            best = p;
        }
    }
    if (best != NULL && best->match_index >= r->conf_index) {
        raft_send_timeout_now(r, best);
    }
    raft_become_follower(r, r->term, MSG_NODE_NONE);
}

static void raft_commit_to(struct raft *r, uint64_t index)
{
    ORDO_ASSERT(index > r->commit_index);
    ORDO_ASSERT(index <= raft_last(r));
    r->commit_index = index;
    /* A leader removed from the configuration steps down once that change commits
     * (4.2.2); until then it manages the cluster without counting itself. */
    if (r->role == RAFT_LEADER && r->conf_index <= index &&
        raft_conf_find(&r->conf, r->cfg.id) < 0) {
        raft_step_down_removed(r);
        return;
    }
    raft_reads_check(r);
}

/* Advances the commit index to the highest index durable on a majority of voters, but only
 * for an entry of the current term (3.6.2, figure 3.7). The leader counts itself only up to
 * its own durable index (10.2.1). */
static void raft_leader_commit(struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        return;
    }
    uint64_t v[MSG_NODES_MAX];
    uint32_t n = 0;
    if (raft_self_voter(r)) {
        int early = (r->mutation & RAFT_MUT_LEADER_NO_PERSIST) != 0;
        v[n++] = early ? raft_last(r) : r->durable_index;
    }
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].voter) {
            v[n++] = r->peers[i].match_index;
        }
    }
    if (n == 0) {
        return;
    }
    uint64_t q = raft_kth(v, n, n / 2 + 1);
    if (q <= r->commit_index) {
        return;
    }
    if (raft_term_at(r, q) != r->term && !(r->mutation & RAFT_MUT_COMMIT_OLD_TERM)) {
        return;
    }
    raft_commit_to(r, q);
}

/* Follower: commit what the leader committed, within the prefix known to match it. */
static void raft_follower_commit(struct raft *r, uint64_t leader_commit)
{
    uint64_t c = raft_min(leader_commit, r->verified_index);
    if (c > r->commit_index) {
        raft_commit_to(r, c);
    }
}

/* Follower: acknowledge what is both durable and known to match the leader. Followers never
 * acknowledge entries that are not durable (DESIGN.md; 3.8). */
static void raft_follower_ack(struct raft *r, int force)
{
    if (r->role != RAFT_FOLLOWER || r->leader_id == MSG_NODE_NONE) {
        return;
    }
    int early = (r->mutation & RAFT_MUT_ACK_BEFORE_PERSIST) != 0;
    uint64_t m = raft_min(early ? raft_last(r) : r->durable_index, r->verified_index);
    if (m <= r->acked_index && !force) {
        return;
    }
    r->acked_index = raft_max(r->acked_index, m);
    raft_send_append_response(r, r->leader_id, 1, m, 0, 0, 0);
}

/* ---------------------------------------------------------------- vote handling */

static int raft_log_up_to_date(const struct raft *r, uint64_t last_index, uint64_t last_term)
{
    uint64_t my_term = raft_term_at(r, raft_last(r));
    if (last_term != my_term) {
        return last_term > my_term;
    }
    return last_index >= raft_last(r);
}

static int raft_on_vote_request(struct raft *r, uint32_t from, const struct msg_vote_request *q)
{
    int pre = (q->flags & MSG_VOTE_PRE) != 0;
    if (q->term < r->term) {
        r->stats.msgs_stale++;
        raft_send_vote_response(r, from, r->term, 0, pre);
        return 0;
    }
    /* Leader stickiness (9.6 / 4.2.3): a live leader is not deposed by a server that merely
     * lost contact, unless the leader itself asked for the election (3.10). */
    if (q->term > r->term && !(q->flags & MSG_VOTE_TRANSFER) && raft_in_lease(r)) {
        r->stats.votes_ignored++;
        return 0;
    }
    int log_ok = raft_log_up_to_date(r, q->last_log_index, q->last_log_term) ||
                 (r->mutation & RAFT_MUT_VOTE_ANY_LOG);
    if (pre) {
        int granted = q->term > r->term && log_ok;
        raft_send_vote_response(r, from, granted ? q->term : r->term, granted, 1);
        return 0;
    }
    if (q->term > r->term) {
        raft_become_follower(r, q->term, MSG_NODE_NONE);
    }
    int free_vote = r->voted_for == MSG_NODE_NONE || r->voted_for == from ||
                    (r->mutation & RAFT_MUT_VOTE_TWICE);
    int granted = free_vote && log_ok;
    if (granted) {
        /* The VOTE_TWICE mutation leaves no record, so the next candidate gets a vote too. */
        if (r->voted_for != from && !(r->mutation & RAFT_MUT_VOTE_TWICE)) {
            r->voted_for = from;
            r->hs_dirty = 1;
        }
        raft_election_reset(r);
    }
    raft_send_vote_response(r, from, r->term, granted, 0);
    return 0;
}

static int raft_on_vote_response(struct raft *r, uint32_t from, const struct msg_vote_response *v)
{
    if (v->term > r->term && !(v->pre_vote && v->granted)) {
        raft_become_follower(r, v->term, MSG_NODE_NONE);
        return 0;
    }
    struct raft_progress *p = raft_peer(r, from);
    if (p == NULL || !p->voter) {
        return 0;
    }
    if (v->pre_vote) {
        if (r->role != RAFT_PRE_CANDIDATE || v->term != r->term + 1) {
            return 0;
        }
    } else if (r->role != RAFT_CANDIDATE || v->term != r->term) {
        return 0;
    }
    p->vote_answered = 1;
    p->vote_granted = v->granted;
    if (!raft_votes_won(r)) {
        return 0;
    }
    if (v->pre_vote) {
        raft_start_election(r, 0);
    } else {
        raft_become_leader(r);
    }
    return 0;
}

/* ---------------------------------------------------------------- follower side */

/* A message from the leader of term `term` (>= ours): follow it and restart the timer. */
static void raft_leader_contact(struct raft *r, uint64_t term, uint32_t from)
{
    if (term == r->term && r->role == RAFT_LEADER) {
        /* Two leaders in one term break election safety (3.6.3). Only a mutated core may
         * get here; the simulator's checkers report it. */
        ORDO_ASSERT(r->mutation != 0);
    }
    if (term > r->term || r->role != RAFT_FOLLOWER || r->leader_id != from) {
        raft_become_follower(r, term, from);
    }
    r->leader_heard_ms = r->now_ms;
    raft_election_reset(r);
}

static int raft_append_valid(const struct raft *r, const struct msg_append_entries *a)
{
    if (a->n_entries > MSG_ENTRIES_MAX || (a->n_entries > 0 && a->entries == NULL)) {
        return 0;
    }
    if (a->prev_log_index > UINT64_MAX - MSG_ENTRIES_MAX || a->prev_log_term > a->term) {
        return 0;
    }
    uint64_t t = a->prev_log_term;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct msg_entry *e = &a->entries[i];
        struct msg_config c;
        if (e->index != a->prev_log_index + 1 + i || e->term < t || e->term > a->term) {
            return 0;
        }
        if (e->type < MSG_ENTRY_NOOP || e->type > MSG_ENTRY_CONFIG) {
            return 0;
        }
        if ((e->len > 0 && e->data == NULL) ||
            (e->type == MSG_ENTRY_CONFIG && raft_config_decode(e->data, e->len, &c) != 0)) {
            return 0;
        }
        t = e->term;
    }
    (void)r;
    return 1;
}

/* Rejects an AppendEntries whose prev entry does not match, with the hints of 5.x / 3.5's
 * optimization: the conflicting term and the first index we hold for it. */
static void raft_append_reject(struct raft *r, uint32_t from, uint64_t prev)
{
    uint64_t last = raft_last(r);
    if (prev > last) {
        raft_send_append_response(r, from, 0, 0, prev, last + 1, 0);
        return;
    }
    uint64_t t = raft_term_at(r, prev);
    uint64_t i = prev;
    while (i > r->log_base + 1 && i - 1 > r->commit_index && raft_term_at(r, i - 1) == t) {
        i--;
    }
    raft_send_append_response(r, from, 0, 0, prev, i, t);
}

/* Copies the message's entries past the matching prefix into the log after truncating a
 * conflict (3.5). Returns 0, or ORDO_ENOSPACE with the log unchanged when the fixed log cannot
 * hold them even after the truncation (the leader retransmits; a snapshot frees room). */
static int raft_append_store(struct raft *r, const struct msg_append_entries *a)
{
    uint32_t k = 0;
    uint64_t last = raft_last(r);
    while (k < a->n_entries) {
        const struct msg_entry *e = &a->entries[k];
        if (e->index <= r->log_base) {
            k++; /* covered by our snapshot: committed, hence matching */
            continue;
        }
        if (e->index > last || raft_term_at(r, e->index) != e->term) {
            break;
        }
        k++;
    }
    if (k == a->n_entries) {
        return 0;
    }
    uint32_t lens[MSG_ENTRIES_MAX];
    uint32_t n = a->n_entries - k;
    for (uint32_t i = 0; i < n; i++) {
        lens[i] = a->entries[k + i].len;
    }
    uint64_t first = a->entries[k].index;
    if (!raft_log_fits(r, first - 1, lens, n)) {
        r->stats.log_full++;
        return ORDO_ENOSPACE;
    }
    /* The configuration changes only if its entry goes or a config entry comes; the check
     * keeps appends O(entries) instead of a scan of the log. */
    int conf_touched = first <= r->conf_index && r->conf_index != UINT64_MAX;
    if (first <= last) {
        raft_log_truncate(r, first);
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct msg_entry *e = &a->entries[k + i];
        conf_touched |= e->type == MSG_ENTRY_CONFIG;
        raft_log_push(r, e->term, e->type, e->data, e->len);
    }
    if (conf_touched) {
        raft_conf_recompute(r);
    }
    return 0;
}

static int raft_on_append(struct raft *r, uint32_t from, const struct msg_append_entries *a)
{
    if (!raft_append_valid(r, a)) {
        r->stats.msgs_invalid++;
        return ORDO_EMALFORMED;
    }
    if (a->term < r->term) {
        /* Tell a stale leader about the newer term so it steps down. */
        r->stats.msgs_stale++;
        raft_send_append_response(r, from, 0, 0, a->prev_log_index, 0, 0);
        return 0;
    }
    raft_leader_contact(r, a->term, from);
    uint64_t prev = a->prev_log_index;
    int mismatch =
        prev > raft_last(r) || (prev >= r->log_base && raft_term_at(r, prev) != a->prev_log_term);
    if (mismatch) {
        raft_append_reject(r, from, prev);
        return 0;
    }
    if (r->mutation & RAFT_MUT_NO_TRUNCATE) {
        uint64_t last = raft_last(r);
        for (uint32_t i = 0; i < a->n_entries && a->entries[i].index <= last; i++) {
            if (a->entries[i].index > r->log_base &&
                raft_term_at(r, a->entries[i].index) != a->entries[i].term) {
                raft_send_append_response(r, from, 1, prev + a->n_entries, 0, 0, 0);
                return 0; /* keeps the conflicting suffix yet acknowledges */
            }
        }
    }
    int rc = raft_append_store(r, a);
    if (rc < 0) {
        return rc; /* dropped, log unchanged; the leader retransmits */
    }
    uint64_t end = prev + a->n_entries;
    r->verified_index = raft_max(r->verified_index, end);
    raft_follower_commit(r, a->leader_commit);
    int early = (r->mutation & RAFT_MUT_ACK_BEFORE_PERSIST) != 0;
    if (early || raft_min(r->durable_index, r->verified_index) >= end) {
        raft_follower_ack(r, 1);
    }
    return 0;
}

static void raft_digest_in(struct raft *r, uint32_t from, uint64_t index, const uint8_t *d)
{
    if (index == 0) {
        return;
    }
    r->digest_in.from = from;
    r->digest_in.index = index;
    memcpy(r->digest_in.digest, d, MSG_DIGEST_LEN);
    r->n_digest_in = 1;
}

static int raft_on_heartbeat(struct raft *r, uint32_t from, const struct msg_heartbeat *h)
{
    struct msg *m;
    if (h->term < r->term) {
        r->stats.msgs_stale++;
        m = raft_send_new(r, from, MSG_HEARTBEAT_RESPONSE);
        if (m != NULL) {
            m->u.heartbeat_response.term = r->term;
        }
        return 0;
    }
    raft_leader_contact(r, h->term, from);
    raft_follower_commit(r, h->leader_commit);
    raft_digest_in(r, from, h->digest_index, h->digest);
    m = raft_send_new(r, from, MSG_HEARTBEAT_RESPONSE);
    if (m == NULL) {
        return 0;
    }
    struct msg_heartbeat_response *hr = &m->u.heartbeat_response;
    hr->term = r->term;
    hr->read_ctx = h->read_ctx;
    hr->last_log_index = raft_last(r);
    hr->digest_index = r->digest_index;
    memcpy(hr->digest, r->digest, MSG_DIGEST_LEN);
    return 0;
}

static int raft_snapshot_valid(const struct msg_install_snapshot *s)
{
    if (s->last_index == 0 || s->last_term == 0 || s->last_term > s->term) {
        return 0;
    }
    if (!raft_conf_valid(&s->config) || s->offset > s->total_len) {
        return 0;
    }
    if (s->chunk_len > s->total_len - s->offset || (s->chunk_len > 0 && s->chunk == NULL)) {
        return 0;
    }
    return !s->done || s->offset + s->chunk_len == s->total_len;
}

static void raft_send_snapshot_response(struct raft *r, uint32_t to, uint64_t index,
                                        uint64_t next_offset, int done)
{
    struct msg *m = raft_send_new(r, to, MSG_INSTALL_SNAPSHOT_RESPONSE);
    if (m == NULL) {
        return;
    }
    m->u.snapshot_response.term = r->term;
    m->u.snapshot_response.last_index = index;
    m->u.snapshot_response.next_offset = next_offset;
    m->u.snapshot_response.done = (uint8_t)done;
}

/* Replaces the log with the received snapshot (5.3, figure 5.3): a matching entry at the
 * snapshot's index keeps the suffix after it; otherwise the whole log goes. */
static void raft_snapshot_install(struct raft *r, const struct msg_install_snapshot *s)
{
    uint64_t idx = s->last_index;
    if (idx <= raft_last(r) && idx >= r->log_base && raft_term_at(r, idx) == s->last_term) {
        raft_log_compact(r, idx);
        r->durable_index = raft_max(r->durable_index, idx);
    } else {
        /* The caller's snapshot replaces entries <= idx; everything after goes too. */
        raft_log_reset(r, idx, s->last_term);
        r->truncate_from = idx + 1;
        r->durable_index = idx;
    }
    mem_free(r->snap_data);
    r->snap_data = r->rcv_data;
    r->snap_len = r->rcv_len;
    r->rcv_data = NULL;
    r->rcv_len = 0;
    r->snap_index = idx;
    r->snap_term = s->last_term;
    r->snap_config = s->config;
    r->snap_installed = 1;
    r->verified_index = raft_max(r->verified_index, idx);
    if (idx > r->commit_index) {
        r->commit_index = idx;
    }
    raft_conf_recompute(r);
    r->stats.snapshots_installed++;
}

/* Appends a chunk to the snapshot being received. Returns 0 or -ENOMEM. */
static int raft_snapshot_chunk(struct raft *r, const struct msg_install_snapshot *s)
{
    if (s->offset == 0) {
        mem_free(r->rcv_data);
        r->rcv_data = NULL;
        r->rcv_len = 0;
        r->rcv_index = s->last_index;
        r->rcv_term = s->last_term;
    }
    if (s->chunk_len == 0) {
        return 0;
    }
    uint8_t *d = mem_realloc(r->rcv_data, r->rcv_len + s->chunk_len);
    if (d == NULL) {
        return -ENOMEM;
    }
    memcpy(d + r->rcv_len, s->chunk, s->chunk_len);
    r->rcv_data = d;
    r->rcv_len += s->chunk_len;
    return 0;
}

static int raft_on_snapshot(struct raft *r, uint32_t from, const struct msg_install_snapshot *s)
{
    if (!raft_snapshot_valid(s)) {
        r->stats.msgs_invalid++;
        return ORDO_EMALFORMED;
    }
    if (s->term < r->term) {
        r->stats.msgs_stale++;
        raft_send_snapshot_response(r, from, s->last_index, 0, 0);
        return 0;
    }
    raft_leader_contact(r, s->term, from);
    if (s->last_index <= r->commit_index) {
        /* Already have it (and everything committed is durable before we ack it). */
        int have = s->last_index <= r->durable_index;
        raft_send_snapshot_response(r, from, s->last_index, have ? s->total_len : 0, have);
        return 0;
    }
    int same = s->last_index == r->rcv_index && s->last_term == r->rcv_term;
    if (s->offset != 0 && (!same || s->offset != r->rcv_len)) {
        raft_send_snapshot_response(r, from, s->last_index, same ? r->rcv_len : 0, 0);
        return 0;
    }
    int rc = raft_snapshot_chunk(r, s);
    if (rc < 0) {
        return rc;
    }
    if (!s->done) {
        raft_send_snapshot_response(r, from, s->last_index, r->rcv_len, 0);
        return 0;
    }
    raft_snapshot_install(r, s);
    raft_send_snapshot_response(r, from, s->last_index, s->total_len, 1);
    r->acked_index = raft_max(r->acked_index, s->last_index);
    return 0;
}

static int raft_on_timeout_now(struct raft *r, uint32_t from, const struct msg_timeout_now *t)
{
    if (t->term != r->term || r->leader_id != from || r->role != RAFT_FOLLOWER) {
        r->stats.msgs_stale++;
        return 0;
    }
    if (!raft_may_campaign(r)) {
        return 0;
    }
    /* Leadership transfer (3.10): start an election at once, skipping pre-vote. */
    raft_start_election(r, 1);
    return 0;
}

/* ---------------------------------------------------------------- leader side */

static void raft_transfer_check(struct raft *r, struct raft_progress *p)
{
    if (r->transfer_target == p->id && !r->transfer_sent && p->match_index == raft_last(r)) {
        raft_send_timeout_now(r, p);
    }
}

/* Where to resume after a rejection, from the follower's hints (3.5, fast back-tracking):
 * past our last entry of the conflicting term if we have that term, else its first index. */
static uint64_t raft_backtrack(const struct raft *r, const struct msg_append_response *a)
{
    uint64_t next = a->conflict_index;
    if (a->conflict_term > 0) {
        uint64_t j = raft_min(a->reject_index, raft_last(r));
        while (j > r->log_base && raft_term_at(r, j) > a->conflict_term) {
            j--;
        }
        if (j > r->log_base && raft_term_at(r, j) == a->conflict_term) {
            next = j + 1;
        }
    }
    return next;
}

/* The preamble every response to the leader shares (dissertation 3.3: a newer term makes
 * any server a follower). Returns the sender's progress when the response belongs to this
 * leader's current term, else NULL (stepped down, or a stale answer, counted). */
static struct raft_progress *raft_response_peer(struct raft *r, uint32_t from, uint64_t term)
{
    if (term > r->term) {
        raft_become_follower(r, term, MSG_NODE_NONE);
        return NULL;
    }
    struct raft_progress *p = raft_peer(r, from);
    if (r->role != RAFT_LEADER || term != r->term || p == NULL) {
        r->stats.msgs_stale++;
        return NULL;
    }
    p->heard_ms = r->now_ms;
    return p;
}

static int raft_on_append_response(struct raft *r, uint32_t from,
                                   const struct msg_append_response *a)
{
    struct raft_progress *p = raft_response_peer(r, from, a->term);
    if (p == NULL) {
        return 0;
    }
    if (a->success) {
        if (a->match_index > raft_last(r)) {
            r->stats.msgs_invalid++;
            return ORDO_EMALFORMED;
        }
        if (a->match_index > p->match_index) {
            p->match_index = a->match_index;
            p->ack_ms = r->now_ms;
        }
        p->next_index = raft_max(p->next_index, p->match_index + 1);
        if (p->state == RAFT_P_PROBE) {
            p->state = RAFT_P_REPLICATE;
            p->probe_sent = 0;
        }
        raft_leader_commit(r);
        if (r->role != RAFT_LEADER) {
            return 0;
        }
        raft_transfer_check(r, p);
        raft_replicate(r, p);
        return 0;
    }
    /* In probe only the answer to the probe counts; when pipelining, any rejection above
     * the match point means the follower lost the thread. */
    int relevant = p->state == RAFT_P_PROBE ? a->reject_index == p->next_index - 1
                                            : a->reject_index > p->match_index;
    if (p->state == RAFT_P_SNAPSHOT || !relevant) {
        return 0;
    }
    uint64_t next = raft_min(raft_backtrack(r, a), a->reject_index);
    p->next_index = raft_max(next, p->match_index + 1);
    p->state = RAFT_P_PROBE;
    p->probe_sent = 0;
    raft_replicate(r, p);
    return 0;
}

static int raft_on_heartbeat_response(struct raft *r, uint32_t from,
                                      const struct msg_heartbeat_response *h)
{
    struct raft_progress *p = raft_response_peer(r, from, h->term);
    if (p == NULL) {
        return 0;
    }
    if (h->read_ctx <= r->read_ctx) {
        p->read_ctx = raft_max(p->read_ctx, h->read_ctx);
    }
    raft_digest_in(r, from, h->digest_index, h->digest);
    raft_reads_check(r);
    return 0;
}

static int raft_on_snapshot_response(struct raft *r, uint32_t from,
                                     const struct msg_install_snapshot_response *s)
{
    struct raft_progress *p = raft_response_peer(r, from, s->term);
    if (p == NULL) {
        return 0;
    }
    if (p->state != RAFT_P_SNAPSHOT || s->last_index != p->snap_index) {
        return 0;
    }
    if (s->done) {
        if (s->last_index > raft_last(r) && s->last_index > r->snap_index) {
            r->stats.msgs_invalid++;
            return ORDO_EMALFORMED;
        }
        p->match_index = raft_max(p->match_index, s->last_index);
        p->next_index = p->match_index + 1;
        p->ack_ms = r->now_ms;
        p->state = RAFT_P_PROBE;
        p->probe_sent = 0;
        r->stats.snapshots_sent++;
        raft_leader_commit(r);
        if (r->role == RAFT_LEADER) {
            raft_replicate(r, p);
        }
        return 0;
    }
    /* Send at once only on progress; otherwise the retransmit timer resends, so a
     * follower that cannot take the snapshot yet causes no message storm. */
    uint64_t before = p->snap_offset;
    p->snap_offset = raft_min(s->next_offset, r->snap_len);
    if (p->snap_offset > before) {
        raft_send_chunk(r, p);
    }
    return 0;
}

static int raft_receive(struct raft *r, const struct msg *m)
{
    uint32_t from = m->hdr.sender;
    r->stats.msgs_in++;
    if (!msg_type_is_peer(m->hdr.type) || from == MSG_NODE_NONE || from == r->cfg.id) {
        r->stats.msgs_invalid++;
        return ORDO_EMALFORMED;
    }
    switch (m->hdr.type) {
    case MSG_VOTE_REQUEST:
        return raft_on_vote_request(r, from, &m->u.vote_request);
    case MSG_VOTE_RESPONSE:
        return raft_on_vote_response(r, from, &m->u.vote_response);
    case MSG_APPEND_ENTRIES:
        return raft_on_append(r, from, &m->u.append);
    case MSG_APPEND_RESPONSE:
        return raft_on_append_response(r, from, &m->u.append_response);
    case MSG_INSTALL_SNAPSHOT:
        return raft_on_snapshot(r, from, &m->u.snapshot);
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        return raft_on_snapshot_response(r, from, &m->u.snapshot_response);
    case MSG_TIMEOUT_NOW:
        return raft_on_timeout_now(r, from, &m->u.timeout_now);
    case MSG_HEARTBEAT:
        return raft_on_heartbeat(r, from, &m->u.heartbeat);
    case MSG_HEARTBEAT_RESPONSE:
        return raft_on_heartbeat_response(r, from, &m->u.heartbeat_response);
    default:
        r->stats.msgs_invalid++;
        return ORDO_EBADTYPE;
    }
}

/* ---------------------------------------------------------------- timers */

/* Check-quorum (6.2): a leader that has not heard from a majority of voters within an
 * election timeout steps down, so a partitioned leader stops accepting work. */
static void raft_check_quorum(struct raft *r)
{
    uint32_t voters = raft_conf_voters(&r->conf);
    uint32_t alive = raft_self_voter(r) ? 1u : 0u;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const struct raft_progress *p = &r->peers[i];
        alive += p->voter && p->heard_ms + r->cfg.election_timeout_ms > r->now_ms;
    }
    if (voters > 0 && alive < voters / 2 + 1) {
        r->stats.step_downs++;
        raft_become_follower(r, r->term, MSG_NODE_NONE);
        return;
    }
    r->quorum_deadline_ms = r->now_ms + r->cfg.election_timeout_ms;
}

/* Retransmission: a probe or chunk unanswered for a heartbeat interval is resent; a pipeline
 * that made no progress for a heartbeat interval falls back to probing from match + 1. */
static void raft_retransmit(struct raft *r, struct raft_progress *p)
{
    uint64_t hb = r->cfg.heartbeat_ms;
    if (p->state == RAFT_P_SNAPSHOT) {
        if (r->now_ms >= p->sent_ms + hb) {
            raft_send_chunk(r, p);
        }
        return;
    }
    if (p->state == RAFT_P_REPLICATE && p->match_index + 1 < p->next_index &&
        r->now_ms >= p->ack_ms + hb && r->now_ms >= p->sent_ms + hb) {
        p->state = RAFT_P_PROBE;
        p->next_index = p->match_index + 1;
        p->probe_sent = 0;
    }
    if (p->state == RAFT_P_PROBE && p->probe_sent && r->now_ms >= p->sent_ms + hb) {
        p->probe_sent = 0;
    }
    raft_replicate(r, p);
}

static void raft_leader_tick(struct raft *r)
{
    uint64_t late = 2 * (uint64_t)r->cfg.heartbeat_ms;
    uint64_t last_heartbeat_ms = r->heartbeat_deadline_ms - r->cfg.heartbeat_ms;
    int due = r->cfg.check_quorum && r->now_ms >= r->quorum_deadline_ms;
    if (due && !r->quorum_postponed && r->now_ms >= last_heartbeat_ms + late) {
        /* This leader was not run for a while (a stalled loop, not the network) and sent no
         * heartbeats: let the followers answer one before judging the quorum (once in a row,
         * so a leader run too rarely still steps down when cut off). */
        r->quorum_deadline_ms = r->now_ms + late;
        r->quorum_postponed = 1;
    } else if (due) {
        r->quorum_postponed = 0;
        raft_check_quorum(r);
        if (r->role != RAFT_LEADER) {
            return;
        }
    }
    if (r->transfer_target != MSG_NODE_NONE && r->now_ms >= r->transfer_deadline_ms) {
        r->transfer_target = MSG_NODE_NONE; /* 3.10: abort, resume client service */
        r->transfer_sent = 0;
    }
    if (r->now_ms >= r->heartbeat_deadline_ms) {
        raft_broadcast_heartbeat(r);
        for (uint32_t i = 0; i < r->n_peers; i++) {
            raft_retransmit(r, &r->peers[i]);
        }
    }
}

static int raft_tick(struct raft *r)
{
    if (r->role == RAFT_LEADER) {
        raft_leader_tick(r);
        return 0;
    }
    if (r->now_ms < r->election_deadline_ms) {
        return 0;
    }
    if (!raft_may_campaign(r)) {
        raft_election_reset(r); /* learners and removed servers never campaign */
        return 0;
    }
    if (r->cfg.pre_vote) {
        raft_start_pre_vote(r);
    } else {
        raft_start_election(r, 0);
    }
    return 0;
}

/* ---------------------------------------------------------------- local events */

/* Appends one entry as leader (copying data into the arena) and replicates it at once: the
 * leader writes its own log in parallel with the AppendEntries (10.2.1). ORDO_ENOSPACE when
 * the fixed log is full (backpressure until a snapshot compacts it). */
static int raft_leader_append(struct raft *r, uint8_t type, const uint8_t *data, uint32_t len)
{
    if (!raft_log_room(r, len)) {
        r->stats.log_full++;
        return ORDO_ENOSPACE;
    }
    raft_log_push(r, r->term, type, data, len);
    r->proposed_index = raft_last(r);
    return 0;
}

static int raft_propose(struct raft *r, const uint8_t *data, uint32_t len)
{
    if (r->role != RAFT_LEADER || r->transfer_target != MSG_NODE_NONE) {
        r->stats.proposals_refused++;
        return ORDO_ENOTLEADER;
    }
    if (raft_last(r) - r->commit_index >= r->cfg.uncommitted_max) {
        r->stats.proposals_refused++;
        return ORDO_ENOSPACE;
    }
    if (len > 0 && data == NULL) {
        return -EINVAL;
    }
    if (len > r->arena_cap / 4) {
        r->stats.proposals_refused++;
        return ORDO_ETOOBIG; /* could never be sure to fit beside the entries kept */
    }
    /* Uncommitted bytes stay within a quarter of the arena: with the quarter kept behind a
     * snapshot (raft_compact_point) and a snapshot asked for at half, every follower with the
     * same arena can always take the leader's entries once it compacts what is committed. */
    uint64_t from = raft_max(r->commit_index, r->log_base);
    if (raft_cum_at(r, raft_last(r)) - raft_cum_at(r, from) + len > r->arena_cap / 4) {
        r->stats.proposals_refused++;
        r->stats.log_full++;
        return ORDO_ENOSPACE;
    }
    int rc = raft_leader_append(r, MSG_ENTRY_BATCH, data, len);
    if (rc < 0) {
        r->stats.proposals_refused++;
        return rc;
    }
    if (r->noop_index == UINT64_MAX) {
        r->noop_index = raft_last(r); /* the no-op failed to allocate: this entry stands in */
    }
    raft_replicate_all(r);
    raft_leader_commit(r);
    return 0;
}

/* Lease read (6.4.1): the quorum acknowledged a heartbeat round sent less than the lease
 * (a minimum election timeout shortened for clock drift, raft_lease_ms) ago, so no other
 * leader can exist yet (check-quorum keeps voters sticky). */
static int raft_lease_valid(struct raft *r)
{
    uint64_t v[MSG_NODES_MAX];
    uint32_t n = 0;
    if (raft_self_voter(r)) {
        v[n++] = r->read_ctx;
    }
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].voter) {
            v[n++] = r->peers[i].read_ctx;
        }
    }
    if (n == 0) {
        return 0;
    }
    uint64_t q = raft_kth(v, n, n / 2 + 1);
    if (q == 0 || r->read_ctx - q >= RAFT_CTX_RING) {
        return 0;
    }
    return r->now_ms < r->ctx_sent_ms[q % RAFT_CTX_RING] + r->lease_ms;
}

/* ReadIndex (6.4): remember the commit index, confirm leadership with a heartbeat round,
 * then hand the read back with that index. Reads wait for the leader's no-op to commit. */
static int raft_read(struct raft *r, uint64_t id)
{
    if (r->role != RAFT_LEADER) {
        return ORDO_ENOTLEADER;
    }
    int noop_done = r->commit_index >= r->noop_index;
    if (r->cfg.lease_reads && !r->lease_off && noop_done && raft_lease_valid(r)) {
        raft_read_out(r, id, r->commit_index, 0);
        return 0;
    }
    if (r->n_pending == RAFT_READS_MAX) {
        return ORDO_ENOSPACE;
    }
    raft_broadcast_heartbeat(r);
    struct raft_pending_read *p = &r->pending[r->n_pending++];
    p->id = id;
    p->ctx = r->read_ctx;
    p->index = noop_done ? r->commit_index : 0;
    raft_reads_check(r);
    return 0;
}

/* Builds the configuration that a change request asks for; -errno when it is not allowed. */
static int raft_change_conf(struct raft *r, uint8_t type, uint32_t id, struct msg_config *c)
{
    *c = r->conf;
    int i = raft_conf_find(c, id);
    if (id == MSG_NODE_NONE) {
        return -EINVAL;
    }
    switch (type) {
    case RAFT_CHANGE_ADD_LEARNER:
        if (i >= 0 || c->n == MSG_NODES_MAX) {
            return -EINVAL;
        }
        c->servers[c->n].id = id;
        c->servers[c->n].role = MSG_ROLE_LEARNER;
        c->n++;
        return 0;
    case RAFT_CHANGE_PROMOTE: {
        if (i < 0 || c->servers[i].role != MSG_ROLE_LEARNER) {
            return -EINVAL;
        }
        /* 4.2.1: promote only a learner that holds every committed entry. */
        struct raft_progress *p = raft_peer(r, id);
        if (p == NULL || p->match_index < r->commit_index) {
            return -EAGAIN;
        }
        c->servers[i].role = MSG_ROLE_VOTER;
        return 0;
    }
    case RAFT_CHANGE_REMOVE:
        if (i < 0) {
            return -EINVAL;
        }
        if (c->servers[i].role == MSG_ROLE_VOTER && raft_conf_voters(c) == 1) {
            return -EINVAL;
        }
        c->servers[i] = c->servers[c->n - 1];
        c->n--;
        return 0;
    default:
        return -EINVAL;
    }
}

/* One server at a time (4.1): a new change waits until the previous one and this term's
 * no-op are committed, so two configurations can never form disjoint majorities. */
static int raft_change(struct raft *r, uint8_t type, uint32_t id)
{
    if (r->role != RAFT_LEADER || r->transfer_target != MSG_NODE_NONE) {
        return ORDO_ENOTLEADER;
    }
    if (r->conf_index > r->commit_index || r->commit_index < r->noop_index) {
        return -EBUSY;
    }
    struct msg_config c;
    int rc = raft_change_conf(r, type, id, &c);
    if (rc < 0) {
        return rc;
    }
    uint8_t buf[WIRE_CONFIG_LEN_MAX];
    int len = raft_config_encode(&c, buf, sizeof(buf));
    ORDO_ASSERT(len > 0);
    rc = raft_leader_append(r, MSG_ENTRY_CONFIG, buf, (uint32_t)len);
    if (rc < 0) {
        return rc;
    }
    /* A server uses a configuration as soon as it is in its log (4.1). */
    raft_conf_use(r, &c, raft_last(r));
    raft_replicate_all(r);
    raft_leader_commit(r);
    return 0;
}

static int raft_transfer(struct raft *r, uint32_t target)
{
    if (r->role != RAFT_LEADER) {
        return ORDO_ENOTLEADER;
    }
    if (r->transfer_target != MSG_NODE_NONE) {
        return -EBUSY;
    }
    struct raft_progress *p = NULL;
    if (target == MSG_NODE_NONE) {
        for (uint32_t i = 0; i < r->n_peers; i++) {
            struct raft_progress *q = &r->peers[i];
            if (q->voter && (p == NULL || q->match_index > p->match_index)) {
                p = q;
            }
        }
    } else {
        p = raft_peer(r, target);
    }
    if (p == NULL || !p->voter) {
        return -EINVAL;
    }
    /* 3.10: stop accepting proposals, bring the target up to date, then TimeoutNow; give up
     * after an election timeout. */
    r->transfer_target = p->id;
    r->transfer_sent = 0;
    r->transfer_deadline_ms = r->now_ms + r->cfg.election_timeout_ms;
    raft_transfer_check(r, p);
    if (!r->transfer_sent) {
        raft_replicate(r, p);
    }
    return 0;
}

/* The configuration in force at index (<= last), for snapshot metadata. */
static int raft_conf_at(const struct raft *r, uint64_t index, struct msg_config *c)
{
    for (uint64_t i = index; i > r->log_base; i--) {
        const struct msg_entry *e = raft_log_at(r, i);
        if (e->type == MSG_ENTRY_CONFIG && raft_config_decode(e->data, e->len, c) == 0) {
            return 0;
        }
    }
    if (r->snap_index > 0 && index >= r->snap_index) {
        *c = r->snap_config;
        return 0;
    }
    if (r->log_base == 0) {
        *c = r->bootstrap;
        return 0;
    }
    return ORDO_ENOTFOUND;
}

/* Where compaction after a snapshot at index stops: snapshot_trailing entries stay behind it
 * for followers that are only a little behind, but in at most a quarter of the arena, so the
 * kept entries can never fill the fixed log that only further snapshots could empty. */
static uint64_t raft_compact_point(const struct raft *r, uint64_t index)
{
    uint64_t upto = r->log_base;
    if (index > r->log_base + r->cfg.snapshot_trailing) {
        upto = index - r->cfg.snapshot_trailing;
    }
    uint64_t kept_max = r->arena_cap / 4;
    for (uint32_t i = 0; i < r->cfg.snapshot_trailing && upto < index; i++) {
        if (raft_apos_at(r, index) - raft_apos_at(r, upto) <= kept_max) {
            break;
        }
        upto++;
    }
    return upto;
}

/* Compaction (5.1): the caller snapshotted its state at index; keep snapshot_trailing
 * entries behind it for followers that are only a little behind. */
static int raft_snapshot_taken(struct raft *r, uint64_t index, const uint8_t *data, uint64_t len,
                               uint8_t take)
{
    /* With take, the core owns data from here on: every early return frees it. */
    uint8_t *owned = take ? (uint8_t *)(uintptr_t)data : NULL;
    if (index > r->commit_index || (len > 0 && data == NULL)) {
        mem_free(owned);
        return -EINVAL;
    }
    if (index <= r->snap_index || index < r->log_base) {
        mem_free(owned);
        return 0; /* older than the one we hold */
    }
    struct msg_config c;
    int rc = raft_conf_at(r, index, &c);
    ORDO_ASSERT(rc == 0);
    uint8_t *copy = owned != NULL ? owned : mem_alloc(len);
    if (copy == NULL) {
        return -ENOMEM;
    }
    if (owned == NULL && len > 0) {
        memcpy(copy, data, len);
    }
    mem_free(r->snap_data);
    r->snap_data = copy;
    r->snap_len = len;
    r->snap_term = raft_term_at(r, index);
    r->snap_index = index;
    r->snap_config = c;
    ORDO_ASSERT(r->snap_term > 0);
    raft_log_compact(r, raft_compact_point(r, index));
    return 0;
}

static int raft_persisted(struct raft *r, uint64_t index, uint64_t term)
{
    if (index > raft_last(r) || index < r->log_base || raft_term_at(r, index) != term) {
        return 0; /* stale: that entry was truncated and rewritten since */
    }
    if (index <= r->durable_index) {
        return 0;
    }
    r->durable_index = index;
    if (r->role == RAFT_LEADER) {
        raft_leader_commit(r);
    } else {
        raft_follower_ack(r, 0);
    }
    return 0;
}

/* ---------------------------------------------------------------- step */

static void raft_begin(struct raft *r)
{
    r->n_sends = 0;
    r->n_ready = 0;
    r->n_digest_in = 0;
    r->hs_dirty = 0;
    r->conf_dirty = 0;
    r->role_dirty = 0;
    r->snap_installed = 0;
    r->persist_lo = 0;
    r->truncate_from = 0;
    r->step_commit = r->commit_index;
    r->proposed_index = 0;
}

static uint64_t raft_next_timeout(const struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        return r->election_deadline_ms;
    }
    uint64_t t = r->heartbeat_deadline_ms;
    if (r->cfg.check_quorum) {
        t = raft_min(t, r->quorum_deadline_ms);
    }
    if (r->transfer_target != MSG_NODE_NONE) {
        t = raft_min(t, r->transfer_deadline_ms);
    }
    return t;
}

/* Points outgoing messages at entry and chunk memory now that the step can no longer move
 * the log or the snapshot. */
static void raft_fix_sends(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_sends; i++) {
        struct msg *m = &r->sends[i].msg;
        if (m->hdr.type == MSG_APPEND_ENTRIES && m->u.append.n_entries > 0) {
            const struct msg_append_entries *a = &m->u.append;
            ORDO_ASSERT(a->prev_log_index >= r->log_base);
            ORDO_ASSERT(a->prev_log_index + a->n_entries <= raft_last(r));
            m->u.append.entries = raft_log_at(r, a->prev_log_index + 1);
        }
        if (m->hdr.type == MSG_INSTALL_SNAPSHOT && m->u.snapshot.chunk_len > 0) {
            ORDO_ASSERT(m->u.snapshot.last_index == r->snap_index);
            m->u.snapshot.chunk = r->snap_data + m->u.snapshot.offset;
        }
    }
}

/* A snapshot is due when the log holds snapshot_threshold_bytes past the last snapshot, or
 * when the entries past it fill half the fixed log (slots or arena bytes): compacting them
 * then frees room before proposals meet ORDO_ENOSPACE. */
static int raft_snapshot_due(const struct raft *r)
{
    uint64_t since = raft_max(r->snap_index, r->log_base);
    if (raft_cum_at(r, raft_last(r)) - raft_cum_at(r, since) >= r->cfg.snapshot_threshold_bytes) {
        return 1;
    }
    if (raft_last(r) - since >= r->log_cap / 2) {
        return 1;
    }
    return raft_apos_at(r, raft_last(r)) - raft_apos_at(r, since) >= r->arena_cap / 2;
}

static void raft_finish_log(struct raft *r, struct raft_update *up)
{
    up->truncate_from = r->truncate_from;
    if (r->persist_lo != 0 && r->persist_lo <= raft_last(r)) {
        up->entries = raft_log_at(r, r->persist_lo);
        up->n_entries = (uint32_t)(raft_last(r) - r->persist_lo + 1);
    }
    if (up->n_entries > 0 || up->truncate_from != 0) {
        up->flags |= RAFT_UPD_ENTRIES;
    }
    if (r->snap_installed) {
        up->flags |= RAFT_UPD_SNAPSHOT;
        up->snapshot.index = r->snap_index;
        up->snapshot.term = r->snap_term;
        up->snapshot.config = r->snap_config;
        up->snapshot.data = r->snap_data;
        up->snapshot.len = r->snap_len;
    }
    up->commit_index = r->commit_index;
    if (r->commit_index > r->step_commit) {
        up->flags |= RAFT_UPD_COMMIT;
        uint64_t first = r->step_commit + 1;
        if (r->snap_installed) {
            first = raft_max(first, r->snap_index + 1);
        }
        up->commit_first = first;
        if (first <= r->commit_index) {
            up->committed = raft_log_at(r, first);
            up->n_committed = (uint32_t)(r->commit_index - first + 1);
        }
    }
    up->snapshot_wanted = (uint8_t)raft_snapshot_due(r);
}

static void raft_finish(struct raft *r, struct raft_update *up)
{
    memset(up, 0, sizeof(*up));
    raft_fix_sends(r);
    up->term = r->term;
    up->voted_for = r->voted_for;
    if (r->hs_dirty) {
        up->flags |= RAFT_UPD_HARD_STATE;
    }
    raft_finish_log(r, up);
    up->n_msgs = r->n_sends;
    up->msgs = r->sends;
    up->n_reads = r->n_ready;
    up->reads = r->ready;
    up->n_digests = r->n_digest_in;
    up->digests = &r->digest_in;
    up->role = r->role;
    up->leader_id = r->leader_id;
    if (r->role_dirty) {
        up->flags |= RAFT_UPD_ROLE;
    }
    up->config = r->conf;
    if (r->conf_dirty) {
        up->flags |= RAFT_UPD_CONFIG;
    }
    up->proposed_index = r->proposed_index;
    up->next_timeout_ms = raft_next_timeout(r);
    /* Postconditions that hold after every step. */
    ORDO_ASSERT(r->commit_index <= raft_last(r) || r->commit_index == r->snap_index);
    ORDO_ASSERT(r->log_base <= r->snap_index || r->snap_index == 0);
    ORDO_ASSERT(r->role != RAFT_LEADER || r->leader_id == r->cfg.id);
    ORDO_ASSERT(r->role != RAFT_CANDIDATE || r->voted_for == r->cfg.id);
}

int raft_step(struct raft *r, const struct raft_event *ev, struct raft_update *up)
{
    ORDO_ASSERT(r != NULL && ev != NULL && up != NULL);
    ORDO_ASSERT(ev->now_ms >= r->now_ms);
    r->now_ms = ev->now_ms;
    raft_begin(r);
    int rc = 0;
    switch (ev->type) {
    case RAFT_EV_TICK:
        rc = raft_tick(r);
        break;
    case RAFT_EV_RECEIVE:
        ORDO_ASSERT(ev->u.receive.msg != NULL);
        rc = raft_receive(r, ev->u.receive.msg);
        break;
    case RAFT_EV_PERSISTED:
        rc = raft_persisted(r, ev->u.persisted.index, ev->u.persisted.term);
        break;
    case RAFT_EV_SNAPSHOT_TAKEN:
        rc = raft_snapshot_taken(r, ev->u.snapshot_taken.index, ev->u.snapshot_taken.data,
                                 ev->u.snapshot_taken.len, ev->u.snapshot_taken.take);
        break;
    case RAFT_EV_PROPOSE:
        rc = raft_propose(r, ev->u.propose.data, ev->u.propose.len);
        break;
    case RAFT_EV_READ:
        rc = raft_read(r, ev->u.read.id);
        break;
    case RAFT_EV_CHANGE:
        rc = raft_change(r, ev->u.change.type, ev->u.change.id);
        break;
    case RAFT_EV_TRANSFER:
        rc = raft_transfer(r, ev->u.transfer.target);
        break;
    case RAFT_EV_DIGEST:
        r->digest_index = ev->u.digest.index;
        memcpy(r->digest, ev->u.digest.digest, MSG_DIGEST_LEN);
        break;
    default:
        /* Caller misuse (an unknown event type), not outside input: fail-stop. */
        ORDO_ASSERT(ev->type >= RAFT_EV_TICK && ev->type <= RAFT_EV_DIGEST);
    }
    raft_finish(r, up);
    return rc;
}

/* ---------------------------------------------------------------- create / destroy */

/* Lease length (6.4.1): followers ignore candidates for a minimum election timeout after
 * hearing from the leader, as measured by their own clocks; a follower clock running fast
 * by the drift bound ends that wait early in the leader's time, so the leader's lease is the
 * timeout divided by (1 + drift), less the fixed margin. 0 when nothing is left. */
static uint64_t raft_lease_ms(const struct raft_config *c)
{
    uint64_t t = (uint64_t)c->election_timeout_ms * 1000000u / (1000000u + c->lease_drift_ppm);
    return t > c->lease_margin_ms ? t - c->lease_margin_ms : 0;
}

static int raft_config_fill(struct raft_config *c)
{
    if (c->id == MSG_NODE_NONE) {
        return ORDO_ECONFIG;
    }
    c->election_timeout_ms = c->election_timeout_ms ? c->election_timeout_ms : 1000;
    c->heartbeat_ms = c->heartbeat_ms ? c->heartbeat_ms : c->election_timeout_ms / 10;
    c->heartbeat_ms = c->heartbeat_ms ? c->heartbeat_ms : 1;
    c->append_entries_max = c->append_entries_max ? c->append_entries_max : MSG_ENTRIES_MAX;
    c->append_bytes_max = c->append_bytes_max ? c->append_bytes_max : 8192;
    c->window_entries = c->window_entries ? c->window_entries : 1024;
    c->window_bytes = c->window_bytes ? c->window_bytes : 4u << 20;
    c->snapshot_chunk_bytes = c->snapshot_chunk_bytes ? c->snapshot_chunk_bytes : 8192;
    c->snapshot_threshold_bytes =
        c->snapshot_threshold_bytes ? c->snapshot_threshold_bytes : 64u << 20;
    c->log_entries_max = c->log_entries_max ? c->log_entries_max : RAFT_LOG_ENTRIES_DEFAULT;
    c->log_bytes_max = c->log_bytes_max ? c->log_bytes_max : RAFT_LOG_BYTES_DEFAULT;
    uint32_t half = c->log_entries_max / 2;
    c->uncommitted_max = c->uncommitted_max ? c->uncommitted_max : (half < 65536u ? half : 65536u);
    c->lease_drift_ppm = c->lease_drift_ppm ? c->lease_drift_ppm : RAFT_LEASE_DRIFT_DEFAULT;
    if (c->heartbeat_ms >= c->election_timeout_ms || c->append_entries_max > MSG_ENTRIES_MAX) {
        return ORDO_ECONFIG;
    }
    /* The fixed log must hold a full window of uncommitted entries next to the entries kept
     * behind a snapshot, and one maximal AppendEntries must fit in the arena. */
    if (c->log_entries_max < 2u * MSG_ENTRIES_MAX || c->uncommitted_max > half ||
        c->snapshot_trailing > c->log_entries_max / 4) {
        return ORDO_ECONFIG;
    }
    if (c->log_bytes_max < 4ull * c->append_bytes_max || c->log_bytes_max > RAFT_LOG_BYTES_MAX) {
        return ORDO_ECONFIG;
    }
    if (c->lease_reads && !c->check_quorum) {
        return ORDO_ECONFIG;
    }
    if (c->lease_reads && raft_lease_ms(c) == 0) {
        return ORDO_ECONFIG; /* the drift bound and margin leave no lease at all */
    }
    return 0;
}

static int raft_restore_valid(const struct raft_restore *rs)
{
    if (!raft_conf_valid(&rs->bootstrap) || (rs->n_entries > 0 && rs->entries == NULL)) {
        return 0;
    }
    if (rs->snapshot_index > 0 &&
        (!raft_conf_valid(&rs->snapshot_config) || rs->snapshot_term == 0 ||
         rs->snapshot_term > rs->term || (rs->snapshot_len > 0 && rs->snapshot_data == NULL))) {
        return 0;
    }
    uint64_t t = rs->snapshot_term;
    for (uint32_t i = 0; i < rs->n_entries; i++) {
        const struct msg_entry *e = &rs->entries[i];
        if (e->index != rs->snapshot_index + 1 + i || e->term < t || e->term > rs->term ||
            (e->len > 0 && e->data == NULL)) {
            return 0;
        }
        t = e->term;
    }
    return 1;
}

/* Allocates the fixed log (start-up, STYLE.md section 2): the configured sizes, or twice
 * what the recovered log needs when that is more, so a restart never fails for room. */
static int raft_log_alloc(struct raft *r, const struct raft_restore *rs)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < rs->n_entries; i++) {
        bytes += rs->entries[i].len;
    }
    r->log_cap = raft_max(r->cfg.log_entries_max, 2ull * rs->n_entries);
    r->arena_cap = raft_max(r->cfg.log_bytes_max, 2 * bytes);
    r->log = mem_alloc(r->log_cap * sizeof(*r->log));
    r->cum = mem_alloc(r->log_cap * sizeof(*r->cum));
    r->apos = mem_alloc(r->log_cap * sizeof(*r->apos));
    r->arena = mem_alloc(r->arena_cap);
    if (r->log == NULL || r->cum == NULL || r->apos == NULL || r->arena == NULL) {
        return -ENOMEM;
    }
    /* Touch every page now: the memory is committed at start-up, and the data path never
     * takes a page fault on a first pass through the ring. */
    memset(r->log, 0, r->log_cap * sizeof(*r->log));
    memset(r->cum, 0, r->log_cap * sizeof(*r->cum));
    memset(r->apos, 0, r->log_cap * sizeof(*r->apos));
    memset(r->arena, 0, r->arena_cap);
    return 0;
}

static int raft_restore_load(struct raft *r, const struct raft_restore *rs)
{
    r->term = rs->term;
    r->voted_for = rs->voted_for;
    r->bootstrap = rs->bootstrap;
    r->log_base = rs->snapshot_index;
    r->log_base_term = rs->snapshot_term;
    r->snap_index = rs->snapshot_index;
    r->snap_term = rs->snapshot_term;
    r->snap_config = rs->snapshot_config;
    r->commit_index = rs->snapshot_index;
    r->snap_data = mem_alloc(rs->snapshot_len);
    if (r->snap_data == NULL || raft_log_alloc(r, rs) < 0) {
        return -ENOMEM;
    }
    r->snap_len = rs->snapshot_len;
    if (rs->snapshot_len > 0) {
        memcpy(r->snap_data, rs->snapshot_data, rs->snapshot_len);
    }
    for (uint32_t i = 0; i < rs->n_entries; i++) {
        const struct msg_entry *e = &rs->entries[i];
        ORDO_ASSERT(raft_log_room(r, e->len)); /* sized above */
        raft_log_push(r, e->term, e->type, e->data, e->len);
    }
    r->durable_index = raft_last(r);
    r->conf_index = UINT64_MAX; /* forces raft_conf_recompute to install one */
    raft_conf_recompute(r);
    return 0;
}

int raft_create(const struct raft_config *cfg, const struct raft_restore *rs, struct raft **out)
{
    ORDO_ASSERT(cfg != NULL && rs != NULL && out != NULL);
    *out = NULL;
    struct raft_config c = *cfg;
    if (raft_config_fill(&c) < 0 || !raft_restore_valid(rs)) {
        return ORDO_ECONFIG;
    }
    struct raft *r = mem_calloc(1, sizeof(*r));
    if (r == NULL) {
        return -ENOMEM;
    }
    r->cfg = c;
    r->lease_ms = raft_lease_ms(&c);
    r->prng = c.prng_seed;
    r->now_ms = rs->now_ms;
    r->role = RAFT_FOLLOWER;
    r->pending = mem_calloc(RAFT_READS_MAX, sizeof(*r->pending));
    r->ready = mem_calloc(RAFT_READS_MAX + 1, sizeof(*r->ready));
    r->sends = mem_calloc(RAFT_SENDS_MAX, sizeof(*r->sends));
    r->sends_cap = RAFT_SENDS_MAX;
    if (r->pending == NULL || r->ready == NULL || r->sends == NULL ||
        raft_restore_load(r, rs) < 0) {
        raft_destroy(r);
        return -ENOMEM;
    }
    r->persist_lo = 0;
    raft_election_reset(r);
    *out = r;
    return 0;
}

void raft_destroy(struct raft *r)
{
    if (r == NULL) {
        return;
    }
    mem_free(r->log);
    mem_free(r->cum);
    mem_free(r->apos);
    mem_free(r->arena);
    mem_free(r->snap_data);
    mem_free(r->rcv_data);
    mem_free(r->pending);
    mem_free(r->ready);
    mem_free(r->sends);
    mem_free(r);
}

void raft_mutation_set(struct raft *r, uint32_t flags)
{
    r->mutation |= flags;
}

/* ---------------------------------------------------------------- accessors */

uint32_t raft_id(const struct raft *r)
{
    return r->cfg.id;
}

enum raft_role raft_role_get(const struct raft *r)
{
    return (enum raft_role)r->role;
}

uint64_t raft_term(const struct raft *r)
{
    return r->term;
}

uint32_t raft_voted_for(const struct raft *r)
{
    return r->voted_for;
}

uint32_t raft_leader(const struct raft *r)
{
    return r->leader_id;
}

uint64_t raft_commit_index(const struct raft *r)
{
    return r->commit_index;
}

uint64_t raft_durable_index(const struct raft *r)
{
    return r->durable_index;
}

uint64_t raft_snapshot_index(const struct raft *r)
{
    return r->snap_index;
}

uint64_t raft_first_index(const struct raft *r)
{
    return r->log_base + 1;
}

uint64_t raft_last_index(const struct raft *r)
{
    return raft_last(r);
}

uint64_t raft_last_term(const struct raft *r)
{
    return raft_term_at(r, raft_last(r));
}

int raft_entry_get(const struct raft *r, uint64_t index, struct msg_entry *e)
{
    if (index <= r->log_base || index > raft_last(r)) {
        return ORDO_ENOTFOUND;
    }
    *e = *raft_log_at(r, index);
    return 0;
}

void raft_config_get(const struct raft *r, struct msg_config *c)
{
    *c = r->conf;
}

int raft_snapshot_meta(const struct raft *r, uint64_t index, uint64_t *term, struct msg_config *c)
{
    if (index < r->log_base || index > raft_last(r) || index == 0) {
        return ORDO_ENOTFOUND;
    }
    *term = raft_term_at(r, index);
    return raft_conf_at(r, index, c);
}

uint64_t raft_match_index(const struct raft *r, uint32_t id)
{
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].id == id) {
            return r->peers[i].match_index;
        }
    }
    return 0;
}

const struct raft_stats *raft_stats_get(const struct raft *r)
{
    return &r->stats;
}
