/* The audit's majority rule (rt_audit.c) without a network, with 3 and 5 replicas: a leader
 * whose digest differs from a majority's stops, also when the followers' digests arrive in
 * separate rounds (as they do); one divergent follower (or two of five) never stops the
 * leader, which names it; a follower whose leader's digest differs stops after the grace of
 * two election timeouts, unless the leader changes first. The Raft core is not involved. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/raft.h"
#include "engine/runtime/conf.h"
#include "engine/runtime/rt.h"
#include "engine/runtime/rt_repl.h"
#include "engine/sm.h"

#define T_GRACE_MS 400u /* 2 x election_ticks (200) x 1 ms ticks */

static uint8_t g_state; /* the fake state machine's whole state: its digest is this byte */
static struct conf g_conf;
static struct rt g_rt;
static struct rt_repl *g_rp;

static void fake_digest(const struct sm *sm, uint8_t out[MSG_DIGEST_LEN])
{
    (void)sm;
    memset(out, g_state, MSG_DIGEST_LEN);
}

static const struct sm_ops g_ops = {.name = "fake", .digest = fake_digest};
static struct sm g_sm = {.ops = &g_ops};

/* Node 1 (us) in a cluster of n, in role, with leader. */
static void cluster(uint32_t n, uint8_t role, uint32_t leader)
{
    memset(&g_conf, 0, sizeof(g_conf));
    g_conf.nodes_n = n;
    for (uint32_t i = 0; i < n; i++) {
        g_conf.nodes[i].id = i + 1;
    }
    g_conf.replica.election_ticks = 200;
    g_conf.replica.heartbeat_ticks = 20;
    g_conf.replica.tick_us = 1000;
    memset(&g_rt, 0, sizeof(g_rt));
    g_rt.conf = &g_conf;
    g_rt.self = &g_conf.nodes[0];
    g_rt.sm = &g_sm;
    g_rp = calloc(1, sizeof(*g_rp));
    cr_assert(g_rp != NULL);
    g_rp->rt = &g_rt;
    g_rt.repl = g_rp;
    g_rp->member.conf.n = n; /* every node a voter */
    for (uint32_t i = 0; i < n; i++) {
        g_rp->member.conf.servers[i].id = i + 1;
        g_rp->member.conf.servers[i].role = MSG_ROLE_VOTER;
    }
    g_rp->role = role;
    g_rp->leader = leader;
    g_rp->now_ms = 1000;
    g_state = 1;
}

static void teardown(void)
{
    free(g_rp);
    g_rp = NULL;
}

/* Our digest after applying index (the core that would carry it is not under test). */
static void own(uint64_t index)
{
    rt_audit_applied(g_rp, index);
    g_rp->audit.pending_index = 0;
}

/* Peer `from`'s digest (its state byte) at index arrives, then one stage round runs. */
static void peer(uint32_t from, uint64_t index, uint8_t state)
{
    struct raft_digest d = {.from = from, .index = index};
    memset(d.digest, state, MSG_DIGEST_LEN);
    struct raft_update up;
    memset(&up, 0, sizeof(up));
    up.n_digests = 1;
    up.digests = &d;
    rt_audit_received(g_rp, &up);
    rt_audit_round(g_rp);
}

static void round_at(uint64_t now_ms)
{
    g_rp->now_ms = now_ms;
    rt_audit_round(g_rp);
}

TestSuite(rt_audit, .fini = teardown, .timeout = 10);

Test(rt_audit, leader_of_three_stops_when_both_followers_agree_on_another_digest)
{
    cluster(3, RAFT_LEADER, 1);
    own(256);
    peer(2, 256, 7);
    cr_assert_eq(g_rt.failed, 0, "one differing follower of two is no majority");
    peer(3, 256, 7); /* a later round: the first follower's digest must still count */
    cr_assert_neq(g_rt.failed, 0, "the leader is in the minority: it must stop");
    cr_assert_eq(g_rt.stop, 1);
}

Test(rt_audit, leader_of_five_stops_when_three_followers_agree_on_another_digest)
{
    cluster(5, RAFT_LEADER, 1);
    own(512);
    peer(2, 512, 7);
    peer(3, 512, 7);
    peer(5, 512, 1); /* agrees with us */
    cr_assert_eq(g_rt.failed, 0, "2 of 5 agreeing on another digest is no majority");
    peer(4, 512, 7);
    cr_assert_neq(g_rt.failed, 0, "3 of 5 agree on another digest: the leader must stop");
}

Test(rt_audit, leader_of_five_keeps_running_with_two_divergent_followers)
{
    cluster(5, RAFT_LEADER, 1);
    own(256);
    peer(2, 256, 7);
    peer(3, 256, 7);
    peer(4, 256, 1);
    peer(5, 256, 1);
    round_at(5000);
    cr_assert_eq(g_rt.failed, 0);
    cr_assert_eq(g_rp->view.audits_ok, 2);
    cr_assert_eq(g_rp->view.audit_mismatches, 2);
    cr_assert_eq(g_rp->view.audit_mismatch_node, 3, "the last differing follower is named");
    cr_assert_eq(g_rp->view.audit_mismatch_index, 256);
}

Test(rt_audit, leader_of_three_names_a_divergent_follower_and_keeps_running)
{
    cluster(3, RAFT_LEADER, 1);
    own(256);
    peer(3, 256, 9);
    peer(2, 256, 1);
    round_at(5000);
    cr_assert_eq(g_rt.failed, 0);
    cr_assert_eq(g_rp->view.audit_mismatch_node, 3);
    cr_assert_eq(g_rp->view.audit_mismatches, 1);
}

Test(rt_audit, each_peer_digest_counts_once_per_index)
{
    cluster(3, RAFT_LEADER, 1);
    own(256);
    for (int i = 0; i < 5; i++) {
        peer(2, 256, 1); /* every heartbeat response repeats the latest digest */
    }
    cr_assert_eq(g_rp->view.audits_ok, 1);
    own(512);
    peer(2, 512, 1);
    cr_assert_eq(g_rp->view.audits_ok, 2);
}

Test(rt_audit, digest_at_an_index_not_applied_here_is_not_compared)
{
    cluster(3, RAFT_LEADER, 1);
    own(256);
    peer(2, 512, 7);
    peer(3, 512, 7);
    cr_assert_eq(g_rt.failed, 0);
    cr_assert_eq(g_rp->view.audits_ok + g_rp->view.audit_mismatches, 0);
}

Test(rt_audit, follower_differing_from_its_leader_stops_after_the_grace)
{
    cluster(3, RAFT_FOLLOWER, 2);
    own(256);
    peer(2, 256, 7);
    round_at(1000 + T_GRACE_MS);
    cr_assert_eq(g_rt.failed, 0, "stopped within the grace");
    round_at(1000 + T_GRACE_MS + 1);
    cr_assert_neq(g_rt.failed, 0, "still differing after the grace: must stop");
}

Test(rt_audit, follower_agreeing_with_its_leader_keeps_running)
{
    cluster(5, RAFT_FOLLOWER, 3);
    own(256);
    peer(3, 256, 1);
    peer(2, 256, 7); /* another follower's digest: a follower judges only its leader's */
    round_at(1000 + 10 * T_GRACE_MS);
    cr_assert_eq(g_rt.failed, 0);
}

Test(rt_audit, leader_change_clears_a_followers_suspicion)
{
    cluster(3, RAFT_FOLLOWER, 2);
    own(256);
    peer(2, 256, 7);  /* the divergent leader, which then stops itself */
    g_rp->leader = 0; /* election */
    round_at(1000 + T_GRACE_MS / 2);
    g_rp->leader = 3;
    round_at(1000 + 2 * T_GRACE_MS);
    cr_assert_eq(g_rt.failed, 0, "the old leader's digest no longer counts");
    peer(3, 256, 1);
    round_at(1000 + 10 * T_GRACE_MS);
    cr_assert_eq(g_rt.failed, 0, "the new leader agrees with us");
}
