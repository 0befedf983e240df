/* The runtime side of membership changes (rt_member.c) without a network or a Raft core: a
 * spare serves no clients, a configuration that names it makes it a member, a removed
 * replica redirects to a member of its last configuration, the telemetry view follows the
 * configuration by position in the cluster file, and quorum arithmetic counts voters only. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/raft.h"
#include "engine/runtime/conf.h"
#include "engine/runtime/rt.h"
#include "engine/runtime/rt_repl.h"

static struct conf g_conf;
static struct rt g_rt;
static struct rt_repl *g_rp;

/* A cluster file with nodes 1..n; this replica is node self, with an empty configuration (a
 * spare before it is added). */
static void setup_file(uint32_t n, uint32_t self)
{
    memset(&g_conf, 0, sizeof(g_conf));
    g_conf.nodes_n = n;
    for (uint32_t i = 0; i < n; i++) {
        g_conf.nodes[i].id = i + 1;
    }
    memset(&g_rt, 0, sizeof(g_rt));
    g_rt.conf = &g_conf;
    g_rt.self = &g_conf.nodes[self - 1];
    g_rp = calloc(1, sizeof(*g_rp));
    cr_assert(g_rp != NULL);
    g_rp->rt = &g_rt;
    g_rt.repl = g_rp;
    g_rp->role = RAFT_FOLLOWER;
    g_rp->leader = MSG_NODE_NONE;
}

static void teardown(void)
{
    free(g_rp);
    g_rp = NULL;
}

TestSuite(rt_member, .fini = teardown);

/* Hands the runtime an update whose configuration is voters[] plus learners[]. */
static void adopt(const uint32_t *voters, uint32_t nv, const uint32_t *learners, uint32_t nl)
{
    struct raft_update up;
    memset(&up, 0, sizeof(up));
    up.flags = RAFT_UPD_CONFIG;
    for (uint32_t i = 0; i < nv; i++) {
        up.config.servers[up.config.n].id = voters[i];
        up.config.servers[up.config.n++].role = MSG_ROLE_VOTER;
    }
    for (uint32_t i = 0; i < nl; i++) {
        up.config.servers[up.config.n].id = learners[i];
        up.config.servers[up.config.n++].role = MSG_ROLE_LEARNER;
    }
    rt_member_update(g_rp, &up);
}

Test(rt_member, spare_drops_client_requests_and_counts_them)
{
    setup_file(4, 4);
    cr_assert_not(rt_member_serves(g_rp));
    cr_assert_not(rt_member_serves(g_rp));
    cr_assert_eq(g_rp->member.view.not_member_drops, 2);
    cr_assert_eq(rt_member_redirect_to(g_rp), MSG_NODE_NONE, "it knows no member to name");
    cr_assert_eq(rt_member_voters(g_rp), 1, "quorum arithmetic never divides by zero");
}

Test(rt_member, added_as_learner_becomes_member_and_view_follows_the_file)
{
    setup_file(4, 4);
    const uint32_t v[] = {1, 2, 3}, l[] = {4};
    adopt(v, 3, l, 1);
    cr_assert_eq(g_rp->member.self_member, 1);
    g_rp->leader = 2;
    cr_assert(rt_member_serves(g_rp));
    cr_assert_eq(rt_member_redirect_to(g_rp), 2, "a member names the leader");
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(g_rp->member.view.role[i], RT_MEMBER_VOTER, "node %u", i + 1);
    }
    cr_assert_eq(g_rp->member.view.role[3], RT_MEMBER_LEARNER);
    cr_assert_eq(g_rp->member.view.changes, 1);
    cr_assert_eq(rt_member_voters(g_rp), 3, "the learner does not count");
    const uint32_t v2[] = {1, 2, 3, 4};
    adopt(v2, 4, NULL, 0);
    cr_assert_eq(g_rp->member.view.role[3], RT_MEMBER_VOTER, "promoted");
    cr_assert_eq(rt_member_voters(g_rp), 4);
    cr_assert_eq(g_rp->member.view.changes, 2);
}

Test(rt_member, same_configuration_again_is_no_change)
{
    setup_file(3, 1);
    const uint32_t v[] = {1, 2, 3};
    adopt(v, 3, NULL, 0);
    adopt(v, 3, NULL, 0);
    cr_assert_eq(g_rp->member.view.changes, 1);
    struct raft_update up;
    memset(&up, 0, sizeof(up)); /* no RAFT_UPD_CONFIG: the configuration field is ignored */
    rt_member_update(g_rp, &up);
    cr_assert_eq(g_rp->member.conf.n, 3);
}

Test(rt_member, removed_follower_redirects_to_a_member_of_its_last_configuration)
{
    setup_file(4, 2);
    const uint32_t before[] = {1, 2, 3, 4};
    adopt(before, 4, NULL, 0);
    g_rp->leader = 1;
    const uint32_t after[] = {3, 1, 4};
    adopt(after, 3, NULL, 0);
    cr_assert_eq(g_rp->member.self_member, 0);
    cr_assert_eq(g_rp->member.view.role[1], RT_MEMBER_NONE);
    cr_assert(rt_member_serves(g_rp), "it answers, with redirects");
    cr_assert_eq(rt_member_redirect_to(g_rp), 3, "the first voter of its last configuration");
    cr_assert_eq(g_rp->member.view.not_member_drops, 0);
    adopt(before, 4, NULL, 0); /* added back */
    cr_assert_eq(g_rp->member.self_member, 1);
    cr_assert_eq(rt_member_redirect_to(g_rp), 1, "a member again: names the leader");
}

Test(rt_member, removed_leader_serves_until_it_steps_down)
{
    setup_file(3, 1);
    const uint32_t before[] = {1, 2, 3}, after[] = {2, 3};
    adopt(before, 3, NULL, 0);
    g_rp->role = RAFT_LEADER;
    g_rp->leader = 1;
    adopt(after, 2, NULL, 0);
    cr_assert(rt_member_serves(g_rp));
    cr_assert_eq(rt_member_redirect_to(g_rp), 1);
    g_rp->role = RAFT_FOLLOWER;
    g_rp->leader = MSG_NODE_NONE;
    cr_assert_eq(rt_member_redirect_to(g_rp), 2);
}

Test(rt_member, servers_missing_from_the_file_are_counted)
{
    setup_file(3, 1);
    const uint32_t v[] = {1, 2, 9};
    adopt(v, 3, NULL, 0);
    cr_assert_eq(g_rp->member.view.outside, 1);
    cr_assert_eq(g_rp->member.view.role[2], RT_MEMBER_NONE, "node 3 of the file is not in it");
}
