/* The simulator's checkers, run on every step: election safety, log matching, leader
 * completeness, state machine safety, durable majority of every commit (nothing committed
 * is lost by a crash), exactly-once, and equal state digests at equal applied indices. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft.h"
#include "tests/sim/world.h"

static int check_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need < *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 256;
    while (n <= need) {
        n *= 2;
    }
    uint8_t *p = realloc(*arr, n * elem);
    if (p == NULL) {
        return -1;
    }
    memset(p + *cap * elem, 0, (n - *cap) * elem);
    *arr = p;
    *cap = n;
    return 0;
}

uint64_t check_chain_at(const struct world *w, uint64_t index)
{
    if (index == 0) {
        return 0;
    }
    return index <= w->commit_max ? w->commits[index].chain : WORLD_NEVER;
}

/* Log matching (figure 3.2): an entry with the same index and term in two logs means the
 * logs are identical up to it. Checked whenever a log gains entries, against every other
 * log (crashed replicas' disks included), by comparing prefix hashes. */
void check_written(struct world *w, struct world_replica *rep, uint64_t first, uint64_t last)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX; id++) {
        struct world_replica *o = &w->r[id];
        if (!o->exists || o == rep) {
            continue;
        }
        for (uint64_t i = first; i <= last; i++) {
            uint64_t t = replica_entry_term(o, i);
            if (t == 0 || t != replica_entry_term(rep, i) || i <= o->disk.snap_index) {
                continue;
            }
            if (replica_entry_chain(o, i) != replica_entry_chain(rep, i)) {
                world_fail(w,
                           "log matching: replicas %u and %u both hold term %lu at index %lu "
                           "but their logs differ before it",
                           rep->id, id, (unsigned long)t, (unsigned long)i);
                return;
            }
        }
    }
}

void check_config_written(struct world *w, uint64_t index, const struct msg_config *c)
{
    if (index > w->config_committed_index && index >= w->config_pending_index) {
        w->config_pending = *c;
        w->config_pending_index = index;
    }
}

static void check_commit_new(struct world *w, struct world_replica *rep, const struct msg_entry *e,
                             uint64_t dh)
{
    uint64_t i = e->index;
    if (i != w->commit_max + 1) {
        world_fail(w, "replica %u committed %lu but the highest commit seen is %lu", rep->id,
                   (unsigned long)i, (unsigned long)w->commit_max);
        return;
    }
    if (check_grow((void **)&w->commits, &w->cap_commits, i + 1, sizeof(*w->commits)) < 0) {
        world_fail(w, "out of memory");
        return;
    }
    struct world_commit *c = &w->commits[i];
    c->term = e->term;
    c->dhash = dh;
    c->chain = world_mix(check_chain_at(w, i - 1), world_mix(e->term, dh));
    c->digest = 0;
    w->commit_max = i;
    struct msg_config cfg;
    if (e->type == MSG_ENTRY_CONFIG && raft_config_decode(e->data, e->len, &cfg) == 0) {
        w->config_committed = cfg;
        w->config_committed_index = i;
        w->count.configs++;
    }
}

/* State machine safety (figure 3.2): every replica commits the same entry at an index. */
void check_committed(struct world *w, struct world_replica *rep, const struct msg_entry *e)
{
    uint64_t dh = world_hash(e->data, e->len, e->type);
    if (e->index > w->commit_max) {
        check_commit_new(w, rep, e, dh);
    } else if (e->index > 0) {
        const struct world_commit *c = &w->commits[e->index];
        if (c->term != e->term || c->dhash != dh) {
            world_fail(w,
                       "state machine safety: replica %u commits term %lu at index %lu, "
                       "another replica committed term %lu there (or other data)",
                       rep->id, (unsigned long)e->term, (unsigned long)e->index,
                       (unsigned long)c->term);
            return;
        }
    }
    uint64_t mine = replica_entry_chain(rep, e->index);
    if (!w->failed && mine != WORLD_NEVER && mine != w->commits[e->index].chain) {
        world_fail(w,
                   "replica %u commits index %lu but its log before it is not the committed "
                   "prefix",
                   rep->id, (unsigned long)e->index);
    }
}

/* A digest a peer sent in a heartbeat (or its response) matches the state every replica
 * had after applying that index. */
void check_peer_digest(struct world *w, struct world_replica *rep, const struct raft_digest *d)
{
    if (d->index == 0 || d->index > w->commit_max || w->commits[d->index].digest == 0) {
        return;
    }
    uint64_t v;
    memcpy(&v, d->digest, sizeof(v));
    w->count.digests++;
    if ((v | 1) != w->commits[d->index].digest) {
        world_fail(w,
                   "digest mismatch: replica %u received from %u a digest at index %lu that "
                   "differs from the applied state there",
                   rep->id, d->from, (unsigned long)d->index);
    }
}

/* Equal digests at equal applied indices. */
void check_applied(struct world *w, struct world_replica *rep, uint64_t index)
{
    if (index > w->commit_max) {
        world_fail(w, "replica %u applied %lu beyond every commit (%lu)", rep->id,
                   (unsigned long)index, (unsigned long)w->commit_max);
        return;
    }
    uint8_t d[MSG_DIGEST_LEN];
    sm_digest(rep->sm, d);
    uint64_t v;
    memcpy(&v, d, sizeof(v));
    v |= 1; /* 0 means "not recorded yet" */
    struct world_commit *c = &w->commits[index];
    if (c->digest == 0) {
        c->digest = v;
    } else if (c->digest != v) {
        world_fail(w,
                   "digest mismatch: replica %u's state after index %lu differs from "
                   "another replica's",
                   rep->id, (unsigned long)index);
    }
}

static size_t check_once_slot(const struct world *w, uint64_t cid, uint64_t rno)
{
    size_t mask = w->cap_once - 1;
    size_t j = world_mix(cid, rno) & mask;
    while (w->once[j].client_id != 0 &&
           (w->once[j].client_id != cid || w->once[j].request_no != rno)) {
        j = (j + 1) & mask;
    }
    return j;
}

static int check_once_grow(struct world *w)
{
    struct world_once *old = w->once;
    size_t old_cap = w->cap_once;
    w->cap_once = old_cap ? old_cap * 2 : 1024;
    w->once = calloc(w->cap_once, sizeof(*w->once));
    if (w->once == NULL) {
        return -1;
    }
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].client_id != 0) {
            w->once[check_once_slot(w, old[i].client_id, old[i].request_no)] = old[i];
        }
    }
    free(old);
    return 0;
}

/* Exactly-once: a client request takes effect at one log index only, on every replica. */
void check_once(struct world *w, uint64_t client_id, uint64_t request_no, uint64_t index)
{
    if ((w->n_once + 1) * 2 > w->cap_once && check_once_grow(w) < 0) {
        world_fail(w, "out of memory");
        return;
    }
    struct world_once *o = &w->once[check_once_slot(w, client_id, request_no)];
    if (o->client_id == 0) {
        *o = (struct world_once){client_id, request_no, index};
        w->n_once++;
    } else if (o->index != index) {
        world_fail(w, "exactly-once: client %016lx request %lu applied at index %lu and %lu",
                   (unsigned long)client_id, (unsigned long)request_no, (unsigned long)o->index,
                   (unsigned long)index);
    }
}

/* Leader completeness (3.6): a new leader of term T holds every entry committed in an
 * earlier term. Entries committed in terms >= T may legitimately be missing. */
void check_became_leader(struct world *w, struct world_replica *rep)
{
    uint64_t t = raft_term(rep->raft);
    uint64_t i = w->commit_max;
    while (i > 0 && w->commits[i].term >= t) {
        i--;
    }
    if (i == 0 || i <= rep->disk.snap_index) {
        return;
    }
    if (replica_entry_chain(rep, i) != w->commits[i].chain) {
        world_fail(w,
                   "leader completeness: replica %u leads term %lu without committed index %lu "
                   "(term %lu)",
                   rep->id, (unsigned long)t, (unsigned long)i, (unsigned long)w->commits[i].term);
    }
}

static int check_holds(const struct world *w, const struct world_replica *rep, uint64_t i)
{
    const struct world_disk *d = &rep->disk;
    if (i <= d->snap_index) {
        return 1;
    }
    if (i - d->snap_index > d->n_durable) {
        return 0;
    }
    return d->log[i - d->snap_index - 1].chain == w->commits[i].chain;
}

static int check_quorum_holds(const struct world *w, const struct msg_config *c, uint64_t i)
{
    uint32_t voters = 0;
    uint32_t holding = 0;
    for (uint32_t k = 0; k < c->n && k < MSG_NODES_MAX; k++) {
        uint32_t id = c->servers[k].id;
        if (c->servers[k].role != MSG_ROLE_VOTER || id == 0 || id > WORLD_NODES_MAX) {
            continue;
        }
        voters++;
        holding += (uint32_t)check_holds(w, &w->r[id], i);
    }
    return holding >= voters / 2 + 1;
}

/* Durability: the highest committed entry is durable on a majority of the voters of the
 * committed configuration (or of a newer one written since: one-server changes let either
 * be the one it was committed under). A crash can then never lose it. */
static void check_durable(struct world *w)
{
    uint64_t i = w->commit_max;
    if (i == 0 || check_quorum_holds(w, &w->config_committed, i)) {
        return;
    }
    if (w->config_pending_index > w->config_committed_index &&
        check_quorum_holds(w, &w->config_pending, i)) {
        return;
    }
    world_fail(w,
               "durability: committed index %lu (term %lu) is durable on less than a "
               "majority of the voters",
               (unsigned long)i, (unsigned long)w->commits[i].term);
}

/* Election safety (figure 3.2): at most one leader per term. */
void check_step(struct world *w)
{
    for (uint32_t id = 1; id <= WORLD_NODES_MAX && !w->failed; id++) {
        struct world_replica *rep = &w->r[id];
        if (!rep->up || rep->role != RAFT_LEADER) {
            continue;
        }
        uint64_t t = rep->term;
        if (check_grow((void **)&w->term_leader, &w->cap_terms, t + 1, sizeof(uint32_t)) < 0) {
            world_fail(w, "out of memory");
            return;
        }
        if (w->term_leader[t] == 0) {
            w->term_leader[t] = id;
        } else if (w->term_leader[t] != id) {
            world_fail(w, "election safety: replicas %u and %u both lead term %lu",
                       w->term_leader[t], id, (unsigned long)t);
        }
    }
    if (!w->failed) {
        check_durable(w);
    }
}
