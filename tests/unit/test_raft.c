/* Unit tests of the Raft core: small hand-driven clusters whose messages the test delivers
 * itself, so every scenario from the dissertation is played step by step. No clock, no I/O. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/raft.h"

#define CL_NODES 5
#define CL_QUEUE 4096
#define ELECTION_MS 100u
#define HEARTBEAT_MS 10u

/* A queued message, deep-copied out of the update (its pointers die at the next step). */
struct qmsg {
    uint32_t to;
    struct msg m;
    struct msg_entry ents[MSG_ENTRIES_MAX];
    uint8_t *blob;
};

struct node {
    struct raft *r;
    int up;
    int auto_persist;
    int isolated;
    uint64_t applied; /* last index applied from committed[] */
    uint64_t applied_terms[4096];
    uint64_t last_truncate;  /* truncate_from of the last update that had one */
    uint64_t snapshot_index; /* last snapshot installed */
    uint64_t snapshot_len;
    uint8_t snapshot_byte;
    uint64_t reads_id[16];
    uint64_t reads_index[16];
    int reads_status[16];
    uint32_t n_reads;
    uint32_t chunks_in;
    uint32_t rejects_in; /* failed append responses received (leader side) */
};

static struct {
    struct node n[CL_NODES + 1];
    uint32_t count;
    uint64_t now;
    struct qmsg q[CL_QUEUE];
    uint32_t qhead;
    uint32_t qtail;
    int drop[CL_NODES + 1][CL_NODES + 1];
} cl;

static void cl_enqueue(uint32_t from, const struct raft_send *s)
{
    cr_assert(cl.qtail - cl.qhead < CL_QUEUE, "queue full");
    struct qmsg *q = &cl.q[cl.qtail++ % CL_QUEUE];
    q->to = s->to;
    q->m = s->msg;
    q->blob = NULL;
    cr_assert_eq(s->msg.hdr.sender, from);
    if (s->msg.hdr.type == MSG_APPEND_ENTRIES) {
        const struct msg_append_entries *a = &s->msg.u.append;
        size_t total = 0;
        for (uint32_t i = 0; i < a->n_entries; i++) {
            total += a->entries[i].len;
        }
        q->blob = malloc(total + 1);
        size_t off = 0;
        for (uint32_t i = 0; i < a->n_entries; i++) {
            q->ents[i] = a->entries[i];
            if (a->entries[i].len > 0) {
                memcpy(q->blob + off, a->entries[i].data, a->entries[i].len);
            }
            q->ents[i].data = a->entries[i].len ? q->blob + off : NULL;
            off += a->entries[i].len;
        }
        q->m.u.append.entries = q->ents;
    }
    if (s->msg.hdr.type == MSG_INSTALL_SNAPSHOT) {
        q->blob = malloc(s->msg.u.snapshot.chunk_len + 1);
        if (s->msg.u.snapshot.chunk_len > 0) {
            memcpy(q->blob, s->msg.u.snapshot.chunk, s->msg.u.snapshot.chunk_len);
        }
        q->m.u.snapshot.chunk = q->blob;
    }
}

static int cl_step(uint32_t id, const struct raft_event *ev);

static void cl_handle(uint32_t id, const struct raft_update *up)
{
    struct node *n = &cl.n[id];
    if (up->flags & RAFT_UPD_SNAPSHOT) {
        n->snapshot_index = up->snapshot.index;
        n->snapshot_len = up->snapshot.len;
        n->snapshot_byte = up->snapshot.len ? up->snapshot.data[up->snapshot.len - 1] : 0;
        n->applied = up->snapshot.index;
    }
    if (up->truncate_from != 0) {
        n->last_truncate = up->truncate_from;
    }
    for (uint32_t i = 0; i < up->n_committed; i++) {
        const struct msg_entry *e = &up->committed[i];
        cr_assert_eq(e->index, n->applied + 1, "apply order on %u", id);
        n->applied = e->index;
        n->applied_terms[e->index % 4096] = e->term;
    }
    for (uint32_t i = 0; i < up->n_reads && n->n_reads < 16; i++) {
        n->reads_id[n->n_reads] = up->reads[i].id;
        n->reads_index[n->n_reads] = up->reads[i].index;
        n->reads_status[n->n_reads] = up->reads[i].status;
        n->n_reads++;
    }
    for (uint32_t i = 0; i < up->n_msgs; i++) {
        cl_enqueue(id, &up->msgs[i]);
    }
    if (n->auto_persist && up->n_entries > 0) {
        const struct msg_entry *e = &up->entries[up->n_entries - 1];
        struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = cl.now};
        ev.u.persisted.index = e->index;
        ev.u.persisted.term = e->term;
        cl_step(id, &ev);
    }
}

static int cl_step(uint32_t id, const struct raft_event *ev)
{
    struct raft_update up;
    int rc = raft_step(cl.n[id].r, ev, &up);
    cl_handle(id, &up);
    return rc;
}

static struct raft_config cl_cfg(uint32_t id)
{
    struct raft_config c = {0};
    c.id = id;
    c.cluster_id = 7;
    c.prng_seed = id * 1000003u;
    c.election_timeout_ms = ELECTION_MS;
    c.heartbeat_ms = HEARTBEAT_MS;
    c.pre_vote = 1;
    c.check_quorum = 1;
    c.snapshot_chunk_bytes = 4096;
    return c;
}

static struct msg_config cl_conf(uint32_t voters)
{
    struct msg_config c = {0};
    for (uint32_t i = 1; i <= voters; i++) {
        c.servers[c.n].id = i;
        c.servers[c.n].role = MSG_ROLE_VOTER;
        c.n++;
    }
    return c;
}

static void cl_start(uint32_t id, const struct raft_config *cfg, const struct raft_restore *rs)
{
    struct raft_restore r = *rs;
    r.now_ms = cl.now;
    cr_assert_eq(raft_create(cfg, &r, &cl.n[id].r), 0);
    cl.n[id].up = 1;
    cl.n[id].auto_persist = 1;
    cl.n[id].applied = rs->snapshot_index;
    if (id > cl.count) {
        cl.count = id;
    }
}

/* n founding voters with empty logs. */
static void cl_init(uint32_t n)
{
    memset(&cl, 0, sizeof(cl));
    for (uint32_t i = 1; i <= n; i++) {
        struct raft_config c = cl_cfg(i);
        struct raft_restore rs = {0};
        rs.bootstrap = cl_conf(n);
        cl_start(i, &c, &rs);
    }
}

static void cl_fini(void)
{
    for (uint32_t i = 1; i <= cl.count; i++) {
        raft_destroy(cl.n[i].r);
    }
    while (cl.qhead != cl.qtail) {
        free(cl.q[cl.qhead++ % CL_QUEUE].blob);
    }
}

static void cl_isolate(uint32_t id, int on)
{
    cl.n[id].isolated = on;
}

/* Delivers queued messages (and what they cause) until none is left. Returns the count. */
static uint32_t cl_deliver(void)
{
    uint32_t count = 0;
    while (cl.qhead != cl.qtail) {
        cr_assert(count < 100000, "message storm");
        struct qmsg q = cl.q[cl.qhead++ % CL_QUEUE];
        uint32_t from = q.m.hdr.sender;
        if (q.m.hdr.type == MSG_APPEND_ENTRIES) {
            q.m.u.append.entries = q.ents; /* the copy moved */
        }
        int lost =
            cl.n[from].isolated || cl.n[q.to].isolated || !cl.n[q.to].up || cl.drop[from][q.to];
        if (!lost) {
            if (q.m.hdr.type == MSG_INSTALL_SNAPSHOT) {
                cl.n[q.to].chunks_in++;
            }
            if (q.m.hdr.type == MSG_APPEND_RESPONSE && !q.m.u.append_response.success) {
                cl.n[q.to].rejects_in++;
            }
            struct raft_event ev = {.type = RAFT_EV_RECEIVE, .now_ms = cl.now};
            ev.u.receive.msg = &q.m;
            cl_step(q.to, &ev);
        }
        free(q.blob);
        count++;
    }
    return count;
}

static void cl_tick(uint32_t id)
{
    struct raft_event ev = {.type = RAFT_EV_TICK, .now_ms = cl.now};
    cl_step(id, &ev);
}

/* Advances time by ms, ticking every live node each heartbeat and delivering everything. */
static void cl_run(uint64_t ms)
{
    uint64_t end = cl.now + ms;
    while (cl.now < end) {
        cl.now = cl.now + HEARTBEAT_MS / 2 < end ? cl.now + HEARTBEAT_MS / 2 : end;
        for (uint32_t i = 1; i <= cl.count; i++) {
            if (cl.n[i].up) {
                cl_tick(i);
            }
        }
        cl_deliver();
    }
}

/* Makes `id` time out first: only it is ticked past its election timeout. */
static void cl_elect(uint32_t id)
{
    cl.now += 2 * ELECTION_MS;
    cl_tick(id);
    cl_deliver();
    cr_assert_eq(raft_role_get(cl.n[id].r), RAFT_LEADER, "node %u did not win", id);
}

static int cl_propose(uint32_t id, const char *s)
{
    struct raft_event ev = {.type = RAFT_EV_PROPOSE, .now_ms = cl.now};
    ev.u.propose.data = (const uint8_t *)s;
    ev.u.propose.len = (uint32_t)strlen(s);
    return cl_step(id, &ev);
}

static uint32_t cl_leaders(uint64_t term)
{
    uint32_t k = 0;
    for (uint32_t i = 1; i <= cl.count; i++) {
        k += raft_role_get(cl.n[i].r) == RAFT_LEADER && raft_term(cl.n[i].r) == term;
    }
    return k;
}

static int cl_change(uint32_t leader, uint8_t type, uint32_t id)
{
    struct raft_event ev = {.type = RAFT_EV_CHANGE, .now_ms = cl.now};
    ev.u.change.type = type;
    ev.u.change.id = id;
    return cl_step(leader, &ev);
}

/* Restore with the given entry terms at indices 1..n (data "e<i>"). */
static void cl_start_log(uint32_t id, uint32_t voters, uint64_t term, const uint64_t *terms,
                         uint32_t n)
{
    static char bufs[64][8];
    struct msg_entry ents[64];
    cr_assert(n <= 64);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "e%u", i + 1);
        ents[i] = (struct msg_entry){.term = terms[i],
                                     .index = i + 1,
                                     .type = MSG_ENTRY_BATCH,
                                     .len = (uint32_t)strlen(bufs[i]),
                                     .data = (const uint8_t *)bufs[i]};
    }
    struct raft_config c = cl_cfg(id);
    struct raft_restore rs = {0};
    rs.term = term;
    rs.bootstrap = cl_conf(voters);
    rs.n_entries = n;
    rs.entries = ents;
    cl_start(id, &c, &rs);
}

/* ------------------------------------------------------------------ elections */

Test(raft, election_elects_one_leader)
{
    cl_init(3);
    cl_elect(1);
    cr_assert_eq(raft_term(cl.n[1].r), 1);
    cr_assert_eq(cl_leaders(1), 1);
    cl_run(3 * HEARTBEAT_MS);
    for (uint32_t i = 2; i <= 3; i++) {
        cr_assert_eq(raft_role_get(cl.n[i].r), RAFT_FOLLOWER);
        cr_assert_eq(raft_leader(cl.n[i].r), 1);
        cr_assert_eq(raft_voted_for(cl.n[i].r), 1);
    }
    /* The no-op of the new term (6.4) commits everywhere. */
    for (uint32_t i = 1; i <= 3; i++) {
        cr_assert_eq(raft_commit_index(cl.n[i].r), 1);
    }
    cl_fini();
}

Test(raft, election_happens_by_itself_and_stays_stable)
{
    cl_init(5);
    cl_run(20 * ELECTION_MS);
    uint32_t leader = raft_leader(cl.n[1].r);
    cr_assert_neq(leader, MSG_NODE_NONE);
    uint64_t term = raft_term(cl.n[leader].r);
    cr_assert_eq(cl_leaders(term), 1);
    cl_run(20 * ELECTION_MS);
    cr_assert_eq(raft_term(cl.n[leader].r), term, "a healthy leader was disrupted");
    cl_fini();
}

Test(raft, vote_refused_to_stale_log)
{
    uint64_t t1[] = {1, 1};
    uint64_t t2[] = {1, 1, 1};
    cl_start_log(1, 3, 1, t1, 2);
    cl_start_log(2, 3, 1, t2, 3);
    cl_start_log(3, 3, 1, t2, 3);
    cl.now += 2 * ELECTION_MS;
    cl_tick(1);
    cl_deliver();
    cr_assert_neq(raft_role_get(cl.n[1].r), RAFT_LEADER, "elected with a shorter log (3.6.1)");
    cr_assert_eq(raft_term(cl.n[2].r), 1, "pre-vote should have kept the term");
    cl_fini();
}

Test(raft, pre_vote_partitioned_node_does_not_disrupt)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    uint64_t term = raft_term(cl.n[1].r);
    cl_isolate(3, 1);
    cl_run(10 * ELECTION_MS);
    /* Pre-vote (9.6): the isolated node keeps campaigning but never bumps its term. */
    cr_assert_eq(raft_term(cl.n[3].r), term);
    cr_assert_geq(raft_stats_get(cl.n[3].r)->pre_votes, 2);
    cl_isolate(3, 0);
    cl_run(5 * ELECTION_MS);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_LEADER);
    cr_assert_eq(raft_term(cl.n[1].r), term, "rejoining node disrupted the leader");
    cr_assert_eq(raft_leader(cl.n[3].r), 1);
    cl_fini();
}

Test(raft, vote_ignored_while_leader_is_alive)
{
    cl_init(3);
    cl_elect(1);
    cl_run(2 * HEARTBEAT_MS);
    /* A real (non-pre) vote request for a higher term, as from a server without pre-vote. */
    struct msg m = {0};
    m.hdr.type = MSG_VOTE_REQUEST;
    m.hdr.sender = 3;
    m.u.vote_request.term = raft_term(cl.n[2].r) + 5;
    m.u.vote_request.last_log_index = 100;
    m.u.vote_request.last_log_term = 100;
    struct raft_event ev = {.type = RAFT_EV_RECEIVE, .now_ms = cl.now};
    ev.u.receive.msg = &m;
    cl_step(2, &ev);
    cr_assert_eq(raft_term(cl.n[2].r), 1, "check-quorum stickiness (9.6)");
    cr_assert_eq(raft_stats_get(cl.n[2].r)->votes_ignored, 1);
    cl_fini();
}

/* A removed follower receives the entry that removes it (the leader replicates to it until
 * the change commits) and the commit; it then never campaigns, and the leader stops
 * contacting it. */
Test(raft, removed_follower_learns_its_removal_and_stays_quiet)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    uint64_t term = raft_term(cl.n[1].r);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_REMOVE, 3), 0);
    uint64_t conf_index = raft_last_index(cl.n[1].r);
    cl_run(3 * HEARTBEAT_MS);
    struct msg_config c;
    raft_config_get(cl.n[3].r, &c);
    cr_assert_eq(c.n, 2, "3 holds the configuration without itself");
    cr_assert_geq(raft_commit_index(cl.n[3].r), conf_index, "and knows it committed");
    uint64_t sent = raft_stats_get(cl.n[1].r)->msgs_out;
    cl_run(HEARTBEAT_MS);
    uint64_t round = raft_stats_get(cl.n[1].r)->msgs_out - sent;
    cr_assert_eq(round, 1, "one heartbeat per round, to 2 only (sent %llu)",
                 (unsigned long long)round);
    cl_run(20 * ELECTION_MS);
    cr_assert_eq(raft_term(cl.n[3].r), term, "the removed server never campaigned");
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_LEADER);
    cl_fini();
}

/* Regression (randomized run): without check-quorum and pre-vote, a removed server that
 * never hears heartbeats again kept deposing the sole remaining leader (4.2.3). Server 3 is
 * cut off while it is removed, so it never learns it. */
Test(raft, removed_server_cannot_depose_leader_without_check_quorum)
{
    memset(&cl, 0, sizeof(cl));
    for (uint32_t i = 1; i <= 3; i++) {
        struct raft_config c = cl_cfg(i);
        c.check_quorum = 0;
        c.pre_vote = 0;
        struct raft_restore rs = {0};
        rs.bootstrap = cl_conf(3);
        cl_start(i, &c, &rs);
    }
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_isolate(3, 1);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_REMOVE, 3), 0);
    cl_run(3 * HEARTBEAT_MS);
    cl_isolate(3, 0);
    uint64_t term = raft_term(cl.n[1].r);
    cl_run(20 * ELECTION_MS); /* 3 times out again and again at ever higher terms */
    cr_assert_gt(raft_term(cl.n[3].r), term);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_LEADER);
    cr_assert_eq(raft_term(cl.n[1].r), term);
    cl_fini();
}

Test(raft, check_quorum_partitioned_leader_steps_down)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_isolate(1, 1);
    cl_run(3 * ELECTION_MS);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_FOLLOWER);
    cr_assert_eq(raft_stats_get(cl.n[1].r)->step_downs, 1);
    cr_assert_eq(cl_propose(1, "x"), ORDO_ENOTLEADER);
    /* The majority side elected someone else meanwhile. */
    cr_assert(raft_role_get(cl.n[2].r) == RAFT_LEADER || raft_role_get(cl.n[3].r) == RAFT_LEADER);
    cl_fini();
}

Test(raft, stalled_leader_hears_followers_before_judging_quorum)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl.now += 2 * ELECTION_MS; /* the leader's loop stalls (the followers are not ticked) */
    cl_tick(1);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_LEADER, "stepped down on its own stall");
    cl_deliver();
    cl.now += 3 * HEARTBEAT_MS;
    cl_tick(1);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_LEADER);
    cl_fini();
}

/* ------------------------------------------------------------------ replication */

Test(raft, commit_needs_durable_majority)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    for (uint32_t i = 1; i <= 3; i++) {
        cl.n[i].auto_persist = 0;
    }
    cr_assert_eq(cl_propose(1, "hello"), 0);
    cl_deliver();
    /* Replicated everywhere but durable nowhere: nothing commits. */
    cr_assert_eq(raft_last_index(cl.n[2].r), 2);
    cr_assert_eq(raft_commit_index(cl.n[1].r), 1);
    struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = cl.now};
    ev.u.persisted.index = 2;
    ev.u.persisted.term = 1;
    cl_step(2, &ev);
    cl_deliver();
    /* One durable follower is not a majority while the leader's own write is pending. */
    cr_assert_eq(raft_commit_index(cl.n[1].r), 1);
    cl_step(1, &ev);
    cl_deliver();
    cr_assert_eq(raft_commit_index(cl.n[1].r), 2);
    cr_assert_eq(cl.n[1].applied, 2);
    cl_fini();
}

Test(raft, follower_never_acks_before_persist)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl.n[2].auto_persist = 0;
    cl_propose(1, "a");
    cl_deliver();
    cr_assert_eq(raft_match_index(cl.n[1].r, 2), 1);
    cr_assert_eq(raft_match_index(cl.n[1].r, 3), 2);
    cl_fini();
}

Test(raft, pipelined_replication_of_many_batches)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(cl_propose(1, "batch-of-commands"), 0);
    }
    cl_deliver();
    cl_run(2 * HEARTBEAT_MS);
    for (uint32_t i = 1; i <= 3; i++) {
        cr_assert_eq(raft_commit_index(cl.n[i].r), 501, "node %u", i);
        cr_assert_eq(cl.n[i].applied, 501);
    }
    cl_fini();
}

Test(raft, lost_messages_are_retransmitted)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl.drop[1][3] = 1;
    for (int i = 0; i < 10; i++) {
        cl_propose(1, "x");
    }
    cl_deliver();
    cr_assert_eq(raft_last_index(cl.n[3].r), 1);
    cl.drop[1][3] = 0;
    cl_run(4 * HEARTBEAT_MS);
    cr_assert_eq(raft_last_index(cl.n[3].r), 11);
    cr_assert_eq(raft_commit_index(cl.n[3].r), 11);
    cl_fini();
}

/* Figure 3.7 (the Raft paper's figure 8), on three servers: the new leader of term 4 must not
 * commit the term-2 entry by counting replicas; it commits only with its own term's entry. */
Test(raft, figure8_old_term_entry_not_committed_by_counting)
{
    uint64_t s1[] = {1, 2};
    uint64_t s2[] = {1};
    uint64_t s3[] = {1, 3};
    cl_start_log(1, 3, 3, s1, 2);
    cl_start_log(2, 3, 3, s2, 1);
    cl_start_log(3, 3, 3, s3, 2);
    cl.drop[1][3] = 1;
    cl.drop[3][1] = 1;
    cl.n[2].auto_persist = 0;
    cl_elect(1);
    cr_assert_eq(raft_term(cl.n[1].r), 4);
    cr_assert_eq(raft_last_index(cl.n[2].r), 3);
    /* S2 made index 2 (term 2) durable but not yet the leader's no-op at 3. */
    struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = cl.now};
    ev.u.persisted.index = 2;
    ev.u.persisted.term = 2;
    cl_step(2, &ev);
    cl_deliver();
    cr_assert_eq(raft_match_index(cl.n[1].r, 2), 2);
    cr_assert_eq(raft_commit_index(cl.n[1].r), 0, "old-term entry committed by counting");
    ev.u.persisted.index = 3;
    ev.u.persisted.term = 4;
    cl_step(2, &ev);
    cl_deliver();
    cr_assert_eq(raft_commit_index(cl.n[1].r), 3);
    cl_fini();
}

Test(raft, figure8_mutation_commits_old_term)
{
    uint64_t s1[] = {1, 2};
    uint64_t s2[] = {1};
    uint64_t s3[] = {1, 3};
    cl_start_log(1, 3, 3, s1, 2);
    cl_start_log(2, 3, 3, s2, 1);
    cl_start_log(3, 3, 3, s3, 2);
    raft_mutation_set(cl.n[1].r, RAFT_MUT_COMMIT_OLD_TERM);
    cl.drop[1][3] = 1;
    cl.drop[3][1] = 1;
    cl.n[2].auto_persist = 0;
    cl_elect(1);
    struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = cl.now};
    ev.u.persisted.index = 2;
    ev.u.persisted.term = 2;
    cl_step(2, &ev);
    cl_deliver();
    cr_assert_eq(raft_commit_index(cl.n[1].r), 2, "the mutation hook had no effect");
    cl_fini();
}

Test(raft, conflicting_suffix_is_truncated)
{
    uint64_t leader[] = {1, 2};
    uint64_t stale[] = {1, 1, 1};
    cl_start_log(1, 3, 2, leader, 2);
    cl_start_log(2, 3, 2, stale, 3);
    cl_start_log(3, 3, 2, leader, 2);
    cl.drop[2][1] = 1; /* S2 cannot vote for S1; S3 does */
    cl_elect(1);
    cl.drop[2][1] = 0;
    cl_run(3 * HEARTBEAT_MS);
    cr_assert_eq(cl.n[2].last_truncate, 2);
    cr_assert_eq(raft_term_at(cl.n[2].r, 2), 2);
    cr_assert_eq(raft_term_at(cl.n[2].r, 3), 3);
    cr_assert_eq(raft_last_index(cl.n[2].r), 3);
    cr_assert_eq(raft_commit_index(cl.n[2].r), 3);
    cr_assert_eq(raft_stats_get(cl.n[2].r)->truncations, 1);
    cl_fini();
}

Test(raft, fast_backtracking_skips_whole_terms)
{
    uint64_t lead[41];
    uint64_t foll[41];
    lead[0] = foll[0] = 1;
    for (int i = 1; i < 41; i++) {
        lead[i] = 3;
        foll[i] = 2;
    }
    cl_start_log(1, 3, 3, lead, 21);
    cl_start_log(2, 3, 3, foll, 41);
    cl_start_log(3, 3, 3, lead, 21);
    cl.drop[2][1] = 1;
    cl_elect(1);
    cl.drop[2][1] = 0;
    cl_run(3 * HEARTBEAT_MS);
    /* One rejection names term 2, which the leader lacks: it jumps to index 2 at once. */
    cr_assert_leq(cl.n[1].rejects_in, 2, "took %u rejections", cl.n[1].rejects_in);
    cr_assert_eq(raft_last_index(cl.n[2].r), 22);
    cr_assert_eq(raft_term_at(cl.n[2].r, 22), 4);
    cr_assert_eq(raft_term_at(cl.n[2].r, 2), 3);
    cl_fini();
}

/* Figure 3.6 of the dissertation (figure 7 of the paper): the leader of term 8 and follower
 * logs (a)-(f), missing entries, holding extra ones, or both. Replication must leave every
 * follower with exactly the leader's log. */
static const uint64_t fig7_leader[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};

static void fig7_case(const uint64_t *follower, uint32_t n)
{
    cl_start_log(1, 3, 7, fig7_leader, 10);
    cl_start_log(2, 3, 7, follower, n);
    cl_start_log(3, 3, 7, fig7_leader, 10);
    cl.drop[2][1] = 1; /* keep (d), whose log is newer, from refusing the leader's election */
    cl_elect(1);
    cl.drop[2][1] = 0;
    cr_assert_eq(raft_term(cl.n[1].r), 8);
    cl_run(5 * HEARTBEAT_MS);
    cr_assert_eq(raft_last_index(cl.n[2].r), 11);
    for (uint64_t i = 1; i <= 11; i++) {
        cr_assert_eq(raft_term_at(cl.n[2].r, i), raft_term_at(cl.n[1].r, i), "index %lu",
                     (unsigned long)i);
    }
    cr_assert_eq(raft_commit_index(cl.n[2].r), 11);
    cl_fini();
}

Test(raft, figure7_a_missing_one)
{
    static const uint64_t f[] = {1, 1, 1, 4, 4, 5, 5, 6, 6};
    fig7_case(f, 9);
}

Test(raft, figure7_b_missing_many)
{
    static const uint64_t f[] = {1, 1, 1, 4};
    fig7_case(f, 4);
}

Test(raft, figure7_c_extra_same_term)
{
    static const uint64_t f[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6};
    fig7_case(f, 11);
}

Test(raft, figure7_d_extra_newer_term)
{
    static const uint64_t f[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
    fig7_case(f, 12);
}

Test(raft, figure7_e_missing_and_conflicting)
{
    static const uint64_t f[] = {1, 1, 1, 4, 4, 4, 4};
    fig7_case(f, 7);
}

Test(raft, figure7_f_long_conflicting_suffix)
{
    static const uint64_t f[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    fig7_case(f, 11);
}

/* ------------------------------------------------------------------ snapshots */

static uint8_t snap_bytes[20000];

static void cl_start_snap(uint32_t id, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < sizeof(snap_bytes); i++) {
        snap_bytes[i] = (uint8_t)(i * 7);
    }
    struct raft_config c = cl_cfg(id);
    struct raft_restore rs = {0};
    rs.term = term;
    rs.bootstrap = cl_conf(3);
    if (index > 0) {
        rs.snapshot_index = index;
        rs.snapshot_term = term;
        rs.snapshot_config = cl_conf(3);
        rs.snapshot_data = snap_bytes;
        rs.snapshot_len = sizeof(snap_bytes);
    }
    cl_start(id, &c, &rs);
}

Test(raft, snapshot_installed_in_chunks)
{
    cl_start_snap(1, 10, 1);
    uint64_t t[] = {1, 1, 1};
    cl_start_log(2, 3, 1, t, 3);
    cl_start_snap(3, 10, 1);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cr_assert_eq(cl.n[2].chunks_in, 5, "20000 bytes in 4096-byte chunks");
    cr_assert_eq(cl.n[2].snapshot_index, 10);
    cr_assert_eq(cl.n[2].snapshot_len, sizeof(snap_bytes));
    cr_assert_eq(cl.n[2].snapshot_byte, snap_bytes[sizeof(snap_bytes) - 1]);
    cr_assert_eq(cl.n[2].last_truncate, 11, "the stale log must go");
    cr_assert_eq(raft_snapshot_index(cl.n[2].r), 10);
    cr_assert_eq(raft_last_index(cl.n[2].r), 11);
    cr_assert_eq(raft_commit_index(cl.n[2].r), 11);
    cr_assert_eq(cl.n[2].applied, 11);
    cl_fini();
}

Test(raft, snapshot_mid_replication_compacts_and_catches_up_follower)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_isolate(3, 1);
    for (int i = 0; i < 30; i++) {
        cl_propose(1, "v");
    }
    cl_deliver();
    cr_assert_eq(raft_commit_index(cl.n[1].r), 31);
    struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN, .now_ms = cl.now};
    ev.u.snapshot_taken.index = 31;
    ev.u.snapshot_taken.data = (const uint8_t *)"state@31";
    ev.u.snapshot_taken.len = 8;
    cr_assert_eq(cl_step(1, &ev), 0);
    cr_assert_eq(raft_first_index(cl.n[1].r), 32);
    cl_isolate(3, 0);
    cl_run(ELECTION_MS / 2);
    cr_assert_eq(cl.n[3].snapshot_index, 31);
    cr_assert_eq(raft_commit_index(cl.n[3].r), 31);
    cr_assert_eq(cl_propose(1, "after"), 0);
    cl_run(2 * HEARTBEAT_MS);
    cr_assert_eq(raft_commit_index(cl.n[3].r), 32);
    cl_fini();
}

Test(raft, snapshot_beyond_commit_is_refused)
{
    cl_init(3);
    cl_elect(1);
    struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN, .now_ms = cl.now};
    ev.u.snapshot_taken.index = 5;
    cr_assert_eq(cl_step(1, &ev), -EINVAL);
    cl_fini();
}

/* ------------------------------------------------------------------ membership */

static void cl_add_node(uint32_t id)
{
    struct raft_config c = cl_cfg(id);
    struct raft_restore rs = {0};
    cl_start(id, &c, &rs); /* empty configuration: waits for a leader */
}

Test(raft, learner_added_catches_up_then_promoted)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    for (int i = 0; i < 20; i++) {
        cl_propose(1, "x");
    }
    cl_deliver();
    cl_add_node(4);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_ADD_LEARNER, 4), 0);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_PROMOTE, 4), -EBUSY, "one change at a time (4.1)");
    cl_run(5 * ELECTION_MS);
    /* The learner holds the log, knows it is a learner, and never campaigned. */
    cr_assert_eq(raft_last_index(cl.n[4].r), 22); /* no-op, 20 batches, config */
    cr_assert_eq(raft_stats_get(cl.n[4].r)->pre_votes, 0);
    struct msg_config c;
    raft_config_get(cl.n[4].r, &c);
    cr_assert_eq(c.n, 4);
    cr_assert_eq(raft_term(cl.n[1].r), 1);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_PROMOTE, 4), 0);
    cl_run(3 * HEARTBEAT_MS);
    for (uint32_t i = 1; i <= 4; i++) {
        raft_config_get(cl.n[i].r, &c);
        cr_assert_eq(c.n, 4);
        for (uint32_t k = 0; k < c.n; k++) {
            cr_assert_eq(c.servers[k].role, MSG_ROLE_VOTER);
        }
    }
    cl_fini();
}

Test(raft, promote_waits_for_learner_to_catch_up)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_add_node(4);
    cl_isolate(4, 1);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_ADD_LEARNER, 4), 0);
    cl_run(3 * HEARTBEAT_MS);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_PROMOTE, 4), -EAGAIN);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_PROMOTE, 9), -EINVAL);
    cl_fini();
}

Test(raft, leader_removes_itself)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_REMOVE, 1), 0);
    cl_deliver();
    /* 4.2.2: it stepped down once the configuration without it committed. */
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_FOLLOWER);
    struct msg_config c;
    raft_config_get(cl.n[2].r, &c);
    cr_assert_eq(c.n, 2);
    cr_assert_geq(raft_commit_index(cl.n[2].r), 2);
    cr_assert_eq(raft_term(cl.n[2].r), 2, "the successor's election came from TimeoutNow");
    /* It handed leadership over with TimeoutNow (3.10): no election timeout to wait for. */
    uint32_t k = 0;
    for (uint32_t i = 2; i <= 3; i++) {
        k += raft_role_get(cl.n[i].r) == RAFT_LEADER;
    }
    cr_assert_eq(k, 1, "a successor right away");
    cl_run(5 * ELECTION_MS);
    k = 0;
    for (uint32_t i = 2; i <= 3; i++) {
        k += raft_role_get(cl.n[i].r) == RAFT_LEADER;
    }
    cr_assert_eq(k, 1, "the remaining two elect a leader");
    cr_assert_neq(raft_role_get(cl.n[1].r), RAFT_LEADER);
    cl_fini();
}

/* Regression (found by a randomized run): a leader removes itself, loses its quorum before
 * the change replicates, and steps down. The remaining voter lacks the change and needs the
 * removed server's vote, which it never gets for its shorter log: the removed server must
 * still campaign under its latest configuration, win, and commit its own removal. */
Test(raft, removed_server_with_longest_log_still_campaigns)
{
    cl_init(2);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl.drop[1][2] = 1;
    cr_assert_eq(cl_change(1, RAFT_CHANGE_REMOVE, 1), 0);
    cl_run(3 * ELECTION_MS);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_FOLLOWER, "check-quorum step-down");
    cl.drop[1][2] = 0;
    cl_run(20 * ELECTION_MS);
    struct msg_config c;
    raft_config_get(cl.n[2].r, &c);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.servers[0].id, 2);
    cr_assert_eq(raft_role_get(cl.n[2].r), RAFT_LEADER);
    cr_assert_eq(raft_commit_index(cl.n[2].r), raft_last_index(cl.n[2].r));
    cl_fini();
}

Test(raft, remove_last_voter_is_refused)
{
    cl_init(1);
    cl_elect(1);
    cr_assert_eq(raft_commit_index(cl.n[1].r), 1);
    cr_assert_eq(cl_change(1, RAFT_CHANGE_REMOVE, 1), -EINVAL);
    cl_fini();
}

/* ------------------------------------------------------------------ transfer and reads */

Test(raft, leadership_transfer_with_timeout_now)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    struct raft_event ev = {.type = RAFT_EV_TRANSFER, .now_ms = cl.now};
    ev.u.transfer.target = 2;
    cr_assert_eq(cl_step(1, &ev), 0);
    cr_assert_eq(cl_propose(1, "x"), ORDO_ENOTLEADER, "proposals stop during a transfer");
    cl_deliver();
    cr_assert_eq(raft_role_get(cl.n[2].r), RAFT_LEADER);
    cr_assert_eq(raft_term(cl.n[2].r), 2);
    cr_assert_eq(raft_role_get(cl.n[1].r), RAFT_FOLLOWER);
    cr_assert_eq(raft_leader(cl.n[1].r), 2);
    cl_fini();
}

Test(raft, transfer_to_unknown_server_is_refused)
{
    cl_init(3);
    cl_elect(1);
    struct raft_event ev = {.type = RAFT_EV_TRANSFER, .now_ms = cl.now};
    ev.u.transfer.target = 9;
    cr_assert_eq(cl_step(1, &ev), -EINVAL);
    cr_assert_eq(cl_step(2, &ev), ORDO_ENOTLEADER);
    cl_fini();
}

static int cl_read(uint32_t id, uint64_t rid)
{
    struct raft_event ev = {.type = RAFT_EV_READ, .now_ms = cl.now};
    ev.u.read.id = rid;
    return cl_step(id, &ev);
}

Test(raft, read_index_after_heartbeat_round)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_propose(1, "w");
    cl_deliver();
    cr_assert_eq(cl_read(1, 77), 0);
    cr_assert_eq(cl.n[1].n_reads, 0, "a read needs a heartbeat round first");
    cl_deliver();
    cr_assert_eq(cl.n[1].n_reads, 1);
    cr_assert_eq(cl.n[1].reads_id[0], 77);
    cr_assert_eq(cl.n[1].reads_index[0], 2);
    cr_assert_eq(cl.n[1].reads_status[0], 0);
    cr_assert_eq(cl_read(2, 78), ORDO_ENOTLEADER);
    cl_fini();
}

Test(raft, read_index_fails_when_leadership_is_lost)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_isolate(1, 1);
    cr_assert_eq(cl_read(1, 5), 0);
    cl_deliver();
    cr_assert_eq(cl.n[1].n_reads, 0, "a partitioned leader cannot serve reads");
    cl_run(3 * ELECTION_MS);
    cr_assert_eq(cl.n[1].n_reads, 1);
    cr_assert_eq(cl.n[1].reads_status[0], ORDO_ENOTLEADER);
    cl_fini();
}

Test(raft, lease_read_is_immediate_when_opted_in)
{
    memset(&cl, 0, sizeof(cl));
    for (uint32_t i = 1; i <= 3; i++) {
        struct raft_config c = cl_cfg(i);
        c.lease_reads = 1;
        struct raft_restore rs = {0};
        rs.bootstrap = cl_conf(3);
        cl_start(i, &c, &rs);
    }
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cr_assert_eq(cl_read(1, 9), 0);
    cr_assert_eq(cl.n[1].n_reads, 1);
    cr_assert_eq(cl.n[1].reads_index[0], 1);
    cl_fini();
}

Test(raft, no_lease_reads_after_timeout_now)
{
    memset(&cl, 0, sizeof(cl));
    for (uint32_t i = 1; i <= 3; i++) {
        struct raft_config c = cl_cfg(i);
        c.lease_reads = 1;
        struct raft_restore rs = {0};
        rs.bootstrap = cl_conf(3);
        cl_start(i, &c, &rs);
    }
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    cl_isolate(2, 1); /* the target gets TimeoutNow only later, as if delayed */
    cl.drop[1][2] = 1;
    struct raft_event ev = {.type = RAFT_EV_TRANSFER, .now_ms = cl.now};
    ev.u.transfer.target = 2;
    cr_assert_eq(cl_step(1, &ev), 0);
    cr_assert_eq(cl_read(1, 3), 0);
    cr_assert_eq(cl.n[1].n_reads, 0, "a lease read right after TimeoutNow could be stale");
    cl_fini();
}

/* ------------------------------------------------------------------ misc */

Test(raft, single_node_commits_after_own_persist)
{
    cl_init(1);
    cl.n[1].auto_persist = 0;
    cl_elect(1);
    cr_assert_eq(raft_commit_index(cl.n[1].r), 0);
    struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = cl.now};
    ev.u.persisted.index = 1;
    ev.u.persisted.term = 1;
    cl_step(1, &ev);
    cr_assert_eq(raft_commit_index(cl.n[1].r), 1);
    cl_fini();
}

Test(raft, stale_persist_report_is_ignored)
{
    cl_init(1);
    cl.n[1].auto_persist = 0;
    cl_elect(1);
    struct raft_event ev = {.type = RAFT_EV_PERSISTED, .now_ms = cl.now};
    ev.u.persisted.index = 1;
    ev.u.persisted.term = 9;
    cl_step(1, &ev);
    cr_assert_eq(raft_durable_index(cl.n[1].r), 0);
    cl_fini();
}

Test(raft, hard_state_flagged_before_vote_leaves)
{
    cl_init(3);
    cl.now += 2 * ELECTION_MS;
    cl_tick(2);
    /* Pre-vote round: no term change yet. */
    cr_assert_eq(raft_term(cl.n[2].r), 0);
    struct qmsg *q = &cl.q[cl.qhead % CL_QUEUE];
    cr_assert_eq(q->m.hdr.type, MSG_VOTE_REQUEST);
    struct raft_event ev = {.type = RAFT_EV_RECEIVE, .now_ms = cl.now};
    ev.u.receive.msg = &q->m;
    struct raft_update up;
    raft_step(cl.n[1].r, &ev, &up);
    cr_assert_eq(up.flags & RAFT_UPD_HARD_STATE, 0, "a pre-vote changes no hard state");
    cr_assert_eq(up.n_msgs, 1);
    cr_assert(up.msgs[0].msg.u.vote_response.granted);
    cl.qhead++;
    cl_deliver();
    cr_assert_eq(raft_role_get(cl.n[2].r), RAFT_LEADER);
    cl_fini();
}

Test(raft, malformed_message_is_counted_not_fatal)
{
    cl_init(3);
    struct msg m = {0};
    m.hdr.type = MSG_APPEND_ENTRIES;
    m.hdr.sender = 2;
    m.u.append.term = 1;
    m.u.append.n_entries = 3;
    m.u.append.entries = NULL;
    struct raft_event ev = {.type = RAFT_EV_RECEIVE, .now_ms = cl.now};
    ev.u.receive.msg = &m;
    cr_assert_eq(cl_step(1, &ev), ORDO_EMALFORMED);
    m.hdr.type = MSG_CLIENT_REQUEST;
    cr_assert_eq(cl_step(1, &ev), ORDO_EMALFORMED);
    m.hdr.type = MSG_HEARTBEAT;
    m.hdr.sender = 1; /* from itself */
    cr_assert_eq(cl_step(1, &ev), ORDO_EMALFORMED);
    cr_assert_eq(raft_stats_get(cl.n[1].r)->msgs_invalid, 3);
    cr_assert_eq(raft_term(cl.n[1].r), 0);
    cl_fini();
}

Test(raft, invalid_config_is_rejected)
{
    struct raft_config c = cl_cfg(0);
    struct raft_restore rs = {0};
    struct raft *r;
    cr_assert_eq(raft_create(&c, &rs, &r), ORDO_ECONFIG);
    c = cl_cfg(1);
    c.heartbeat_ms = 500;
    cr_assert_eq(raft_create(&c, &rs, &r), ORDO_ECONFIG);
    c = cl_cfg(1);
    rs.bootstrap.n = 2;
    rs.bootstrap.servers[0].id = 1;
    rs.bootstrap.servers[0].role = MSG_ROLE_VOTER;
    rs.bootstrap.servers[1].id = 1;
    rs.bootstrap.servers[1].role = MSG_ROLE_VOTER;
    cr_assert_eq(raft_create(&c, &rs, &r), ORDO_ECONFIG, "duplicate server id");
}

Test(raft, digests_are_passed_up)
{
    cl_init(3);
    cl_elect(1);
    struct raft_event ev = {.type = RAFT_EV_DIGEST, .now_ms = cl.now};
    ev.u.digest.index = 1;
    memset(ev.u.digest.digest, 0xab, MSG_DIGEST_LEN);
    cl_step(1, &ev);
    cl.now += HEARTBEAT_MS;
    cl_tick(1);
    struct qmsg *q = &cl.q[cl.qhead % CL_QUEUE];
    cr_assert_eq(q->m.hdr.type, MSG_HEARTBEAT);
    struct raft_event rx = {.type = RAFT_EV_RECEIVE, .now_ms = cl.now};
    rx.u.receive.msg = &q->m;
    struct raft_update up;
    raft_step(cl.n[q->to].r, &rx, &up);
    cr_assert_eq(up.n_digests, 1);
    cr_assert_eq(up.digests[0].from, 1);
    cr_assert_eq(up.digests[0].index, 1);
    cr_assert_eq(up.digests[0].digest[5], 0xab);
    cl.qhead++;
    cl_fini();
}

Test(raft, create_fails_cleanly_at_every_allocation)
{
    uint64_t terms[] = {1, 1, 2, 2, 2};
    struct msg_entry ents[5];
    for (uint32_t i = 0; i < 5; i++) {
        ents[i] = (struct msg_entry){.term = terms[i],
                                     .index = i + 1,
                                     .type = MSG_ENTRY_BATCH,
                                     .len = 3,
                                     .data = (const uint8_t *)"abc"};
    }
    struct raft_config c = cl_cfg(1);
    struct raft_restore rs = {0};
    rs.term = 2;
    rs.bootstrap = cl_conf(3);
    rs.n_entries = 5;
    rs.entries = ents;
    int64_t base = mem_live_count();
    int ok = 0;
    for (int64_t countdown = 0; countdown < 64 && !ok; countdown++) {
        struct raft *r = NULL;
        mem_fault_set(countdown, 1);
        int rc = raft_create(&c, &rs, &r);
        mem_fault_set(-1, 0);
        if (rc == 0) {
            ok = 1;
            cr_assert_eq(raft_last_index(r), 5);
            raft_destroy(r);
        } else {
            cr_assert_eq(rc, -ENOMEM);
            cr_assert_null(r);
        }
        cr_assert_eq(mem_live_count(), base, "leak after failing allocation %ld", (long)countdown);
    }
    cr_assert(ok);
}

Test(raft, allocation_failures_lose_no_safety_and_progress_resumes)
{
    cl_init(3);
    cl_elect(1);
    cl_run(3 * HEARTBEAT_MS);
    mem_fault_set(0, -1); /* every allocation fails */
    cr_assert_eq(cl_propose(1, "x"), -ENOMEM);
    cr_assert_eq(raft_last_index(cl.n[1].r), 1, "a failed proposal leaves no trace");
    mem_fault_set(-1, 0);
    cr_assert_eq(cl_propose(1, "y"), 0);
    /* Followers cannot store it: they drop the AppendEntries and the leader retransmits. */
    mem_fault_set(0, -1);
    cl_deliver();
    mem_fault_set(-1, 0);
    cr_assert_eq(raft_commit_index(cl.n[1].r), 1);
    cl_run(4 * HEARTBEAT_MS);
    for (uint32_t i = 1; i <= 3; i++) {
        cr_assert_eq(raft_commit_index(cl.n[i].r), 2, "node %u", i);
    }
    cl_fini();
}

static void time_backwards(void)
{
    cl_init(1);
    struct raft_event ev = {.type = RAFT_EV_TICK, .now_ms = 100};
    struct raft_update up;
    raft_step(cl.n[1].r, &ev, &up);
    ev.now_ms = 50;
    raft_step(cl.n[1].r, &ev, &up);
}

Test(raft, assert_time_never_goes_backwards, .signal = SIGABRT)
{
    time_backwards();
}

Test(raft, assert_unknown_event_type, .signal = SIGABRT)
{
    cl_init(1);
    struct raft_event ev = {.type = 99, .now_ms = 0};
    struct raft_update up;
    raft_step(cl.n[1].r, &ev, &up);
}
