/* Membership changes of a running replica. Every replica reads the same cluster file, which
 * names every node the cluster may contain (spares with join = 1), so a configuration entry
 * only carries node ids and every replica can address a new member at once. Operator
 * requests reach the core on the apply stage's lcore; the telemetry thread only queues them. */
#include "engine/runtime/rt_member.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_log.h>
#include <rte_telemetry.h>

#include "engine/ordo_assert.h"
#include "engine/raft.h"
#include "engine/runtime/rt_repl.h"

static struct rt_repl *rt_member_tele_rp; /* the one replica of this process, for telemetry */

static const char *rt_member_role_name(uint32_t role)
{
    switch (role) {
    case RT_MEMBER_VOTER:
        return "voter";
    case RT_MEMBER_LEARNER:
        return "learner";
    default:
        return "none";
    }
}

/* RT_MEMBER_* of id in c. */
static uint32_t rt_member_role_in(const struct msg_config *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return c->servers[i].role == MSG_ROLE_VOTER ? RT_MEMBER_VOTER : RT_MEMBER_LEARNER;
        }
    }
    return RT_MEMBER_NONE;
}

/* "voters 1 2 3, learners 4" into buf. */
static void rt_member_describe(const struct msg_config *c, char *buf, size_t cap)
{
    size_t used = 0;
    for (uint32_t pass = 0; pass < 2; pass++) {
        uint8_t want = pass == 0 ? MSG_ROLE_VOTER : MSG_ROLE_LEARNER;
        int w = snprintf(buf + used, cap - used, "%s%s", pass == 0 ? "" : ", ",
                         pass == 0 ? "voters" : "learners");
        used += w > 0 && (size_t)w < cap - used ? (size_t)w : 0;
        uint32_t any = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            if (c->servers[i].role == want) {
                w = snprintf(buf + used, cap - used, " %u", c->servers[i].id);
                used += w > 0 && (size_t)w < cap - used ? (size_t)w : 0;
                any++;
            }
        }
        if (any == 0) {
            w = snprintf(buf + used, cap - used, " -");
            used += w > 0 && (size_t)w < cap - used ? (size_t)w : 0;
        }
    }
}

/* Publishes c in the telemetry view (roles by position in the cluster file). */
static void rt_member_publish(struct rt_repl *rp, const struct msg_config *c)
{
    const struct conf *f = rp->rt->conf;
    uint32_t known = 0;
    for (uint32_t i = 0; i < f->nodes_n; i++) {
        uint32_t role = rt_member_role_in(c, f->nodes[i].id);
        known += role != RT_MEMBER_NONE;
        __atomic_store_n(&rp->member.view.role[i], role, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&rp->member.view.outside, c->n - known, __ATOMIC_RELAXED);
}

/* Logs each difference between the previous configuration and c, once. */
static void rt_member_log_diff(struct rt_repl *rp, const struct msg_config *old,
                               const struct msg_config *c)
{
    uint32_t self = rp->rt->self->id;
    char desc[160];
    rt_member_describe(c, desc, sizeof(desc));
    if (old->n == 0) {
        /* A spare's first configuration (from the leader's log or snapshot): one line. */
        RTE_LOG(NOTICE, USER1, "ordo: node %u: membership: %s\n", self, desc);
        return;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t id = c->servers[i].id;
        uint32_t was = rt_member_role_in(old, id);
        uint32_t now = rt_member_role_in(c, id);
        if (was == RT_MEMBER_NONE) {
            RTE_LOG(NOTICE, USER1, "ordo: node %u: membership: node %u added as %s (%s)\n", self,
                    id, rt_member_role_name(now), desc);
        } else if (was != now) {
            RTE_LOG(NOTICE, USER1, "ordo: node %u: membership: node %u %s (%s)\n", self, id,
                    now == RT_MEMBER_VOTER ? "promoted to voter" : "demoted to learner", desc);
        }
    }
    for (uint32_t i = 0; i < old->n; i++) {
        if (rt_member_role_in(c, old->servers[i].id) == RT_MEMBER_NONE) {
            RTE_LOG(NOTICE, USER1, "ordo: node %u: membership: node %u removed (%s)\n", self,
                    old->servers[i].id, desc);
        }
    }
}

static void rt_member_adopt(struct rt_repl *rp, const struct msg_config *c)
{
    struct rt_member *m = &rp->member;
    uint32_t self = rp->rt->self->id;
    uint8_t member = rt_member_role_in(c, self) != RT_MEMBER_NONE;
    rt_member_log_diff(rp, &m->conf, c);
    if (m->self_member && !member) {
        RTE_LOG(NOTICE, USER1,
                "ordo: node %u: removed from the cluster: only redirects clients to a member "
                "from now on (telemetry stays up; stop the process, or add it again)\n",
                self);
    } else if (!m->self_member && member) {
        RTE_LOG(NOTICE, USER1, "ordo: node %u: now a member (%s)\n", self,
                rt_member_role_name(rt_member_role_in(c, self)));
    }
    m->conf = *c;
    m->self_member = member;
    rt_member_publish(rp, c);
    __atomic_store_n(&m->view.changes, m->view.changes + 1, __ATOMIC_RELAXED);
}

void rt_member_update(struct rt_repl *rp, const struct raft_update *up)
{
    if ((up->flags & RAFT_UPD_CONFIG) == 0 || up->config.n > MSG_NODES_MAX) {
        return;
    }
    if (up->config.n == rp->member.conf.n &&
        memcmp(up->config.servers, rp->member.conf.servers,
               up->config.n * sizeof(up->config.servers[0])) == 0) {
        return;
    }
    rt_member_adopt(rp, &up->config);
}

/* The first voter of the configuration in use other than this replica (MSG_NODE_NONE if
 * none). */
static uint32_t rt_member_any_voter(const struct rt_repl *rp)
{
    const struct msg_config *c = &rp->member.conf;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->servers[i].role == MSG_ROLE_VOTER && c->servers[i].id != rp->rt->self->id) {
            return c->servers[i].id;
        }
    }
    return MSG_NODE_NONE;
}

uint32_t rt_member_redirect_to(const struct rt_repl *rp)
{
    if (rp->member.self_member || rp->role == RAFT_LEADER) {
        return rp->leader;
    }
    return rt_member_any_voter(rp);
}

bool rt_member_serves(struct rt_repl *rp)
{
    if (rp->member.self_member || rp->role == RAFT_LEADER ||
        rt_member_any_voter(rp) != MSG_NODE_NONE) {
        return true;
    }
    __atomic_store_n(&rp->member.view.not_member_drops, rp->member.view.not_member_drops + 1,
                     __ATOMIC_RELAXED);
    return false;
}

uint32_t rt_member_voters(const struct rt_repl *rp)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < rp->member.conf.n; i++) {
        v += rp->member.conf.servers[i].role == MSG_ROLE_VOTER;
    }
    return v > 0 ? v : 1;
}

static int rt_member_step(struct rt_repl *rp, uint8_t type, uint32_t id)
{
    struct raft_event ev = {.type = RAFT_EV_CHANGE, .now_ms = rp->now_ms};
    struct raft_update up;
    ev.u.change.type = type;
    ev.u.change.id = id;
    int rc = raft_step(rp->raft, &ev, &up);
    rt_repl_handle_update(rp, &up); /* refused events still carry a valid update */
    return rc;
}

static const char *rt_member_change_name(uint8_t type)
{
    switch (type) {
    case RAFT_CHANGE_ADD_LEARNER:
        return "add as learner";
    case RAFT_CHANGE_PROMOTE:
        return "promote";
    default:
        return "remove";
    }
}

/* Why a change was refused, for the log (the admin CLI words it from the code too). */
static const char *rt_member_refusal(int rc, uint8_t type)
{
    switch (rc) {
    case ORDO_ENOTLEADER:
        return "not the leader (or a leadership transfer runs)";
    case -EBUSY:
        return "another change (or this term's first entry) is not committed yet";
    case -EAGAIN:
        return "the learner lacks committed entries";
    case -EINVAL:
        return type == RAFT_CHANGE_ADD_LEARNER ? "already a member, or the cluster is full"
                                               : "not a member, or the last voter";
    default:
        return ordo_strerror(rc);
    }
}

static void rt_member_request(struct rt_repl *rp, uint64_t q)
{
    struct rt_member *m = &rp->member;
    uint8_t type = (uint8_t)((q >> 16) & 0xffu);
    uint32_t id = (uint32_t)(q & 0xffffu);
    int rc = rt_member_step(rp, type, id);
    if (rc == 0) {
        __atomic_store_n(&m->view.index, raft_last_index(rp->raft), __ATOMIC_RELAXED);
        RTE_LOG(NOTICE, USER1, "ordo: node %u: admin: %s node %u: accepted at index %" PRIu64 "\n",
                rp->rt->self->id, rt_member_change_name(type), id, raft_last_index(rp->raft));
    } else {
        RTE_LOG(WARNING, USER1, "ordo: node %u: admin: %s node %u: refused: %s\n", rp->rt->self->id,
                rt_member_change_name(type), id, rt_member_refusal(rc, type));
    }
    __atomic_store_n(&m->view.rc, (int64_t)rc, __ATOMIC_RELAXED);
    /* Release: the CLI reads rc and index once it sees the new count. */
    __atomic_store_n(&m->view.requests, m->view.requests + 1, __ATOMIC_RELEASE);
}

/* Leader: promotes the first learner that holds every committed entry (the core checks it
 * and answers -EAGAIN otherwise), at most once per heartbeat interval. */
static void rt_member_promote(struct rt_repl *rp)
{
    struct rt_member *m = &rp->member;
    if (rp->role != RAFT_LEADER || rp->now_ms < m->next_promote_ms) {
        return;
    }
    const struct conf_replica *r = &rp->rt->conf->replica;
    m->next_promote_ms = rp->now_ms + RTE_MAX(1u, r->heartbeat_ticks * r->tick_us / 1000u);
    for (uint32_t i = 0; i < m->conf.n; i++) {
        if (m->conf.servers[i].role != MSG_ROLE_LEARNER) {
            continue;
        }
        uint32_t id = m->conf.servers[i].id;
        uint64_t match = raft_match_index(rp->raft, id);
        if (match < raft_commit_index(rp->raft)) {
            return; /* not caught up yet: no need to ask the core */
        }
        int rc = rt_member_step(rp, RAFT_CHANGE_PROMOTE, id);
        if (rc == 0) {
            m->view.promotions++;
            RTE_LOG(NOTICE, USER1,
                    "ordo: node %u: learner %u caught up (match %" PRIu64
                    "): promoting it to voter at index %" PRIu64 "\n",
                    rp->rt->self->id, id, match, raft_last_index(rp->raft));
        }
        return; /* one change at a time */
    }
}

void rt_member_round(struct rt_repl *rp)
{
    uint64_t q = __atomic_exchange_n(&rp->member.request, 0, __ATOMIC_ACQ_REL);
    if (q != 0 && rp->rt->failed == 0) {
        rt_member_request(rp, q);
    }
    if (rp->rt->failed == 0) {
        rt_member_promote(rp);
    }
}

/* ---- telemetry (telemetry thread) ------------------------------------------------------- */

void rt_member_tele(struct rt_repl *rp, struct rte_tel_data *d)
{
    struct rt_member_view *v = &rp->member.view;
    const struct conf *f = rp->rt->conf;
    uint32_t self_role = RT_MEMBER_NONE;
    struct rte_tel_data *m = rte_tel_data_alloc();
    if (m != NULL) {
        rte_tel_data_start_dict(m);
    }
    for (uint32_t i = 0; i < f->nodes_n; i++) {
        uint32_t role = __atomic_load_n(&v->role[i], __ATOMIC_RELAXED);
        char k[16];
        snprintf(k, sizeof(k), "%u", f->nodes[i].id);
        if (f->nodes[i].id == rp->rt->self->id) {
            self_role = role;
        }
        if (m != NULL && role != RT_MEMBER_NONE) {
            (void)rte_tel_data_add_dict_string(m, k, rt_member_role_name(role));
        }
    }
    if (m != NULL) {
        (void)rte_tel_data_add_dict_container(d, "members", m, 0);
    }
    (void)rte_tel_data_add_dict_string(d, "membership", rt_member_role_name(self_role));
    const char *const names[] = {"member_requests", "member_index",     "member_changes",
                                 "promotions",      "not_member_drops", "members_outside"};
    uint64_t vals[] = {__atomic_load_n(&v->requests, __ATOMIC_ACQUIRE),
                       __atomic_load_n(&v->index, __ATOMIC_RELAXED),
                       __atomic_load_n(&v->changes, __ATOMIC_RELAXED),
                       __atomic_load_n(&v->promotions, __ATOMIC_RELAXED),
                       __atomic_load_n(&v->not_member_drops, __ATOMIC_RELAXED),
                       __atomic_load_n(&v->outside, __ATOMIC_RELAXED)};
    for (size_t i = 0; i < ORDO_ARRAY_LEN(names); i++) {
        (void)rte_tel_data_add_dict_u64(d, names[i], vals[i]);
    }
    (void)rte_tel_data_add_dict_int(d, "member_rc", (int)__atomic_load_n(&v->rc, __ATOMIC_RELAXED));
}

/* /ordo/member_add,N and /ordo/member_remove,N: queue the change for the apply stage. The
 * reply carries member_requests as it was, so the caller can wait for the next count and
 * read member_rc (the outcome) in /ordo/raft. */
static int rt_member_tele_req(const char *cmd, const char *params, struct rte_tel_data *d)
{
    struct rt_repl *rp = rt_member_tele_rp;
    if (rp == NULL) {
        return -ENOENT;
    }
    bool add = strcmp(cmd, "/ordo/member_add") == 0;
    rte_tel_data_start_dict(d);
    char *end = NULL;
    unsigned long id = params != NULL ? strtoul(params, &end, 10) : 0;
    if (params == NULL || end == params || *end != '\0' || id == 0 || id > CONF_NODE_ID_MAX) {
        (void)rte_tel_data_add_dict_string(d, "error",
                                           add ? "usage: /ordo/member_add,<node id>"
                                               : "usage: /ordo/member_remove,<node id>");
        return 0;
    }
    if (add && conf_node_find(rp->rt->conf, (uint32_t)id) == NULL) {
        (void)rte_tel_data_add_dict_string(d, "error",
                                           "no [node.<id>] section for this node in the cluster "
                                           "file (every replica must know its address)");
        return 0;
    }
    uint64_t seen = __atomic_load_n(&rp->member.view.requests, __ATOMIC_ACQUIRE);
    uint64_t type = add ? RAFT_CHANGE_ADD_LEARNER : RAFT_CHANGE_REMOVE;
    uint64_t want = RT_MEMBER_PENDING | type << 16 | id;
    uint64_t none = 0;
    if (!__atomic_compare_exchange_n(&rp->member.request, &none, want, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        (void)rte_tel_data_add_dict_string(d, "error",
                                           "busy: another membership request is queued");
        return 0;
    }
    (void)rte_tel_data_add_dict_u64(d, "member_queued", id);
    (void)rte_tel_data_add_dict_u64(d, "member_requests", seen);
    return 0;
}

void rt_member_init(struct rt_repl *rp)
{
    struct rt_member *m = &rp->member;
    struct msg_config c;
    char desc[160];
    memset(m, 0, sizeof(*m));
    raft_config_get(rp->raft, &c);
    m->conf = c;
    m->self_member = rt_member_role_in(&c, rp->rt->self->id) != RT_MEMBER_NONE;
    rt_member_publish(rp, &c);
    rt_member_describe(&c, desc, sizeof(desc));
    if (m->self_member) {
        RTE_LOG(NOTICE, USER1, "ordo: node %u: membership: %s\n", rp->rt->self->id, desc);
    } else {
        RTE_LOG(NOTICE, USER1,
                "ordo: node %u: not a member yet (spare, join = 1): waiting for the leader to "
                "add it; serves no clients until then\n",
                rp->rt->self->id);
    }
    rt_member_tele_rp = rp;
    (void)rte_telemetry_register_cmd("/ordo/member_add", rt_member_tele_req,
                                     "Leader: add node N (a [node.N] of the cluster file) as a "
                                     "learner; promoted once caught up. Parameter: node id");
    (void)rte_telemetry_register_cmd("/ordo/member_remove", rt_member_tele_req,
                                     "Leader: remove node N from the cluster (the leader itself "
                                     "too). Parameter: node id");
}

void rt_member_fini(void)
{
    rt_member_tele_rp = NULL;
}
