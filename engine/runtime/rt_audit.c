/* Auditing (state machine approach, step 6): replicas digest their state at the same applied
 * indexes and compare through the heartbeats. The leader sees every follower's digest and
 * fail-stops when a majority agrees on another one; a follower sees only the leader's and
 * fail-stops when that leader's still differs after two election timeouts (a divergent leader
 * detects itself first; a leader change clears the suspicion). */
#include <string.h>

#include <rte_log.h>
#include <rte_mbuf.h>

#include "engine/runtime/rt_repl.h"
#include "engine/sm_kv.h"

void rt_repl_diverge_at(struct rt *rt, uint64_t index)
{
    if (rt->repl != NULL) {
        rt->repl->audit.diverge_at = index;
    }
}

static void rt_audit_fault(struct rt_repl *rp)
{
    uint8_t args[64];
    uint8_t out[8];
    uint32_t out_len = 0;
    int len = sm_kv_encode_put(args, sizeof(args), "ordo-diverge", 12, "1", 1);
    if (len > 0) {
        (void)sm_apply(rp->rt->sm, SM_KV_OP_PUT, args, (uint32_t)len, out, sizeof(out), &out_len);
    }
    RTE_LOG(WARNING, USER1, "ordo: node %u: TEST FAULT: state changed locally after %" PRIu64 "\n",
            rp->rt->self->id, rp->audit.diverge_at);
}

void rt_audit_applied(struct rt_repl *rp, uint64_t index)
{
    struct rt_audit *a = &rp->audit;
    if (a->diverge_at != 0 && index == a->diverge_at) {
        rt_audit_fault(rp);
    }
    if (index % RT_AUDIT_EVERY != 0) {
        return;
    }
    struct rt_audit_mine *m = &a->mine[(index / RT_AUDIT_EVERY) % RT_AUDIT_KEEP];
    m->index = index;
    rp->rt->sm->ops->digest(rp->rt->sm, m->digest);
    a->pending_index = index;
}

void rt_audit_received(struct rt_repl *rp, const struct raft_update *up)
{
    const struct conf *c = rp->rt->conf;
    for (uint32_t i = 0; i < up->n_digests; i++) {
        for (uint32_t k = 0; k < c->nodes_n; k++) {
            if (c->nodes[k].id == up->digests[i].from && up->digests[i].index != 0) {
                rp->audit.peer[k] = up->digests[i];
            }
        }
    }
}

/* Own digest at index, or NULL when not kept. */
static const uint8_t *rt_audit_mine(const struct rt_audit *a, uint64_t index)
{
    const struct rt_audit_mine *m = &a->mine[(index / RT_AUDIT_EVERY) % RT_AUDIT_KEEP];
    return m->index == index && index != 0 ? m->digest : NULL;
}

/* Leader: peers agreeing with each other (and not with us) on the digest of peer k. */
static uint32_t rt_audit_others(const struct rt_audit *a, uint32_t n, uint32_t k)
{
    uint32_t same = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (a->peer[j].index == a->peer[k].index &&
            memcmp(a->peer[j].digest, a->peer[k].digest, MSG_DIGEST_LEN) == 0) {
            same++;
        }
    }
    return same;
}

static void rt_audit_diverged(struct rt_repl *rp, uint64_t index, uint32_t other)
{
    RTE_LOG(ERR, USER1,
            "ordo: node %u: DIVERGENCE: state digest at index %" PRIu64
            " differs from the majority's (node %u agrees with the majority)\n",
            rp->rt->self->id, index, other);
    rt_repl_fail(rp, "audit: state digest differs from the majority", ORDO_ECORRUPT);
}

/* Compares peer k's latest digest with ours once per audit index (counting and remembering
 * the outcome). Returns 1 when it differs, 0 when equal or not comparable (not applied here
 * yet, or older than the kept digests). Peers' digests stay until replaced: the leader's
 * majority count needs every follower's at once, and they arrive in separate rounds. */
static int rt_audit_differs(struct rt_repl *rp, uint32_t k)
{
    struct rt_audit *a = &rp->audit;
    const struct raft_digest *p = &a->peer[k];
    if (p->index == 0) {
        return 0;
    }
    if (a->compared[k] != p->index) {
        const uint8_t *mine = rt_audit_mine(a, p->index);
        if (mine == NULL) {
            return 0;
        }
        a->compared[k] = p->index;
        a->differs[k] = memcmp(mine, p->digest, MSG_DIGEST_LEN) != 0;
        a->ok += !a->differs[k];
        a->mismatches += a->differs[k];
        if (a->differs[k]) {
            rp->view.audit_mismatch_node = p->from;
            rp->view.audit_mismatch_index = p->index;
            RTE_LOG(WARNING, USER1,
                    "ordo: node %u: audit: node %u's state digest at index %" PRIu64
                    " differs from ours\n",
                    rp->rt->self->id, p->from, p->index);
        }
    }
    return a->differs[k];
}

static void rt_audit_compare(struct rt_repl *rp)
{
    struct rt_audit *a = &rp->audit;
    const struct conf *c = rp->rt->conf;
    uint32_t majority = rt_member_voters(rp) / 2 + 1; /* spares in the file do not count */
    for (uint32_t k = 0; k < c->nodes_n; k++) {
        struct raft_digest *p = &a->peer[k];
        int differs = rt_audit_differs(rp, k);
        if (p->index == 0 || a->compared[k] != p->index) {
            continue; /* nothing comparable from this peer */
        }
        if (p->from == rp->leader && rp->role != RAFT_LEADER) {
            if (!differs) {
                a->suspect_since_ms = 0;
            } else if (a->suspect_since_ms == 0) {
                a->suspect_since_ms = rp->now_ms;
                a->suspect_leader = rp->leader;
            }
            a->suspect_index = p->index;
        }
        if (differs && rp->role == RAFT_LEADER && rt_audit_others(a, c->nodes_n, k) >= majority) {
            rt_audit_diverged(rp, p->index, p->from);
            return;
        }
    }
}

void rt_audit_round(struct rt_repl *rp)
{
    struct rt_audit *a = &rp->audit;
    if (a->pending_index != 0) {
        struct raft_event ev = {.type = RAFT_EV_DIGEST, .now_ms = rp->now_ms};
        struct raft_update up;
        ev.u.digest.index = a->pending_index;
        memcpy(ev.u.digest.digest, rt_audit_mine(a, a->pending_index), MSG_DIGEST_LEN);
        a->pending_index = 0;
        (void)raft_step(rp->raft, &ev, &up);
        rt_repl_handle_update(rp, &up);
    }
    /* A suspicion is about one leader: once another leads (or none, during an election) the
     * old one's digest no longer counts, or a whole majority would stop after a divergent
     * leader stopped itself. */
    if (a->suspect_since_ms != 0 && a->suspect_leader != rp->leader) {
        a->suspect_since_ms = 0;
    }
    rt_audit_compare(rp);
    uint64_t grace = 2ull * rp->rt->conf->replica.election_ticks *
                     RTE_MAX(1u, rp->rt->conf->replica.tick_us / 1000u);
    if (a->suspect_since_ms != 0 && rp->role != RAFT_LEADER &&
        rp->now_ms - a->suspect_since_ms > grace && rp->rt->failed == 0) {
        rt_audit_diverged(rp, a->suspect_index, rp->leader);
    }
    rp->view.audits_ok = a->ok;
    rp->view.audit_mismatches = a->mismatches;
}
