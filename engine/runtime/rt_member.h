/* Membership changes of a running replica: operator requests (/ordo/member_add,N and
 * /ordo/member_remove,N) stepped into the Raft core on the leader, automatic promotion of
 * caught-up learners, the configuration in use for telemetry and logs, and the rule that a
 * replica outside the configuration serves no clients. See docs/admin.md. */
#ifndef ORDO_ENGINE_RUNTIME_RT_MEMBER_H
#define ORDO_ENGINE_RUNTIME_RT_MEMBER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"

struct rt_repl;
struct raft_update;
struct rte_tel_data;

/* Roles in rt_member_view.role (by position in conf->nodes). */
#define RT_MEMBER_NONE 0u
#define RT_MEMBER_VOTER 1u
#define RT_MEMBER_LEARNER 2u

/* Telemetry view, written by the replica lcore, read by the telemetry thread. */
struct rt_member_view {
    uint32_t role[MSG_NODES_MAX]; /* RT_MEMBER_* of each conf->nodes[] entry */
    uint32_t outside;             /* servers in the configuration that the file lacks */
    uint64_t requests;            /* operator requests handled (member_add / member_remove) */
    int64_t rc;                   /* result of the last one: 0 or a raft_step error */
    uint64_t index;               /* log index of the last accepted change (leader) */
    uint64_t changes;             /* configuration changes seen (log entries, snapshots) */
    uint64_t promotions;          /* learners this replica promoted as leader */
    uint64_t not_member_drops;    /* client requests dropped while outside the configuration */
};

struct rt_member {
    struct msg_config conf;   /* configuration in use, as of the last update */
    uint8_t self_member;      /* this replica is in conf (voter or learner) */
    uint64_t next_promote_ms; /* leader: next automatic promotion attempt */
    /* Operator request from the telemetry thread, taken by the apply stage:
     * 0 none, else RT_MEMBER_PENDING | change type << 16 | node id. */
    uint64_t request;
    struct rt_member_view view;
};

#define RT_MEMBER_PENDING (1ull << 32)

/* After the core exists: takes its configuration, logs it and registers the telemetry
 * commands. */
ORDO_API void rt_member_init(struct rt_repl *rp);
/* For every handled raft_update: adopts a new configuration (logged once per change). */
ORDO_API void rt_member_update(struct rt_repl *rp, const struct raft_update *up);
/* Once per round: the queued operator request, then (leader) learner promotion. */
ORDO_API void rt_member_round(struct rt_repl *rp);
/* Whether client requests are served (redirected or handled): false for a spare that was
 * never a member (it knows no member to name), which drops them (counted): clients with
 * several servers move on at their timeout. A removed replica still answers, with a
 * redirect (rt_member_redirect_to); a removed leader serves until it steps down. */
ORDO_API bool rt_member_serves(struct rt_repl *rp);
/* The node a redirect names: the leader for a member; for a removed replica, which no longer
 * hears from the leader, a voter of the last configuration it knew (that member redirects
 * the client on to the leader). MSG_NODE_NONE when there is none. */
ORDO_API uint32_t rt_member_redirect_to(const struct rt_repl *rp);
/* Adds the membership fields to the /ordo/raft reply. */
ORDO_API void rt_member_tele(struct rt_repl *rp, struct rte_tel_data *d);
/* Unregisters this replica from the telemetry commands (rt_repl_fini). */
ORDO_API void rt_member_fini(void);
/* Voters in the configuration in use (at least 1 for quorum arithmetic). */
ORDO_API uint32_t rt_member_voters(const struct rt_repl *rp);

#endif
