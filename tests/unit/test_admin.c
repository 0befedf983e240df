/* Unit tests of ordo-admin's JSON reader (apps/admin_json.c) and status printer
 * (apps/admin_fmt.c) on telemetry replies shaped like the replica's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/admin_fmt.h"
#include "apps/admin_json.h"

#define TEST_NODES 256u

static struct admin_json_node test_nodes[TEST_NODES];
static struct admin_json_node test_nodes2[TEST_NODES];

static const char test_raft[] =
    "{\"/ordo/raft\": {\"role\": \"leader\", \"id\": 1, \"leader\": 1, \"term\": 7, "
    "\"commit\": 1000, \"applied\": 998, \"durable\": 1001, \"snapshot_index\": 0, "
    "\"last_index\": 1001, \"batches\": 10, \"batch_cmds\": 250, \"batch_bytes\": 5000, "
    "\"batch_cmds_max\": 64, \"redirects\": 3, \"reads\": 0, \"elections_won\": 1, "
    "\"snapshots_taken\": 0, \"snapshots_installed\": 0, \"digest\": \"00ff\", "
    "\"match\": {\"1\": 1001, \"2\": 990, \"3\": 1000}, \"req_ring\": 5}}";

static const char test_stats[] = "{\"/ordo/stats\": {\"rx_packets\": 12, \"tx_packets\": 34, "
                                 "\"ring_full\": 2}}";

static void test_parse(struct admin_json *j, const char *text, struct admin_json_node *n)
{
    cr_assert_eq(admin_json_parse(j, text, strlen(text), n, TEST_NODES), 0, "parse: %s", text);
}

/* Runs the status printer into a string the caller frees. */
static char *test_status(const char *raft, const char *stats)
{
    struct admin_json rj, sj;
    test_parse(&rj, raft, test_nodes);
    test_parse(&sj, stats, test_nodes2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    int rc = admin_fmt_status(f, &rj, admin_fmt_body(&rj), &sj, admin_fmt_body(&sj));
    fclose(f);
    cr_assert_eq(rc, 0);
    return buf;
}

Test(admin_json, reads_numbers_strings_and_nested_members)
{
    struct admin_json j;
    test_parse(&j, test_raft, test_nodes);
    int32_t body = admin_fmt_body(&j);
    cr_assert_geq(body, 0);
    uint64_t v = 0;
    cr_assert_eq(admin_json_u64(&j, admin_json_get(&j, body, "term"), &v), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(admin_json_u64(&j, admin_json_path(&j, body, "match.2"), &v), 0);
    cr_assert_eq(v, 990);
    char s[16];
    cr_assert_eq(admin_json_text(&j, admin_json_get(&j, body, "role"), s, sizeof(s)), 0);
    cr_assert_str_eq(s, "leader");
    cr_assert_eq(admin_json_get(&j, body, "nope"), -1);
}

Test(admin_json, keeps_escaped_quotes_inside_strings)
{
    struct admin_json j;
    test_parse(&j, "{\"a\\\"b\": \"x\\\"y\", \"n\": [1, true, null, -2.5e3]}", test_nodes);
    char s[16];
    cr_assert_eq(admin_json_text(&j, admin_json_get(&j, 0, "n"), s, sizeof(s)), -EINVAL);
    int32_t first = j.nodes[0].child;
    cr_assert_eq(admin_json_text(&j, first, s, sizeof(s)), 0);
    cr_assert_str_eq(s, "x\\\"y");
    admin_json_key(&j, first, s, sizeof(s));
    cr_assert_str_eq(s, "a\\\"b");
}

Test(admin_json, rejects_malformed_input)
{
    static const char *const bad[] = {"",       "{",      "{\"a\" 1}",    "{\"a\": 1,}",
                                      "[1 2]",  "\"open", "{\"a\": tru}", "{} x",
                                      "{1: 2}", "]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct admin_json j;
        cr_expect_eq(admin_json_parse(&j, bad[i], strlen(bad[i]), test_nodes, TEST_NODES), -EINVAL,
                     "accepted: '%s'", bad[i]);
    }
}

Test(admin_json, bounds_depth_and_node_count)
{
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    struct admin_json j;
    cr_assert_eq(admin_json_parse(&j, deep, sizeof(deep), test_nodes, TEST_NODES), -EINVAL);
    const char *many = "[1, 2, 3, 4]";
    cr_assert_eq(admin_json_parse(&j, many, strlen(many), test_nodes, 3), -ENOSPC);
    cr_assert_eq(admin_json_parse(&j, many, strlen(many), test_nodes, 5), 0);
}

Test(admin_json, rejects_negative_fraction_and_overflowing_u64)
{
    struct admin_json j;
    test_parse(&j,
               "{\"a\": -1, \"b\": 1.5, \"c\": 18446744073709551616, "
               "\"d\": 18446744073709551615}",
               test_nodes);
    uint64_t v = 0;
    cr_assert_eq(admin_json_u64(&j, admin_json_get(&j, 0, "a"), &v), -EINVAL);
    cr_assert_eq(admin_json_u64(&j, admin_json_get(&j, 0, "b"), &v), -EINVAL);
    cr_assert_eq(admin_json_u64(&j, admin_json_get(&j, 0, "c"), &v), -EINVAL);
    cr_assert_eq(admin_json_u64(&j, admin_json_get(&j, 0, "d"), &v), 0);
    cr_assert_eq(v, UINT64_MAX);
}

Test(admin_json, accepts_trailing_nul_padding)
{
    static const char text[] = "{\"x\": 1}\0\0";
    struct admin_json j;
    cr_assert_eq(admin_json_parse(&j, text, sizeof(text), test_nodes, TEST_NODES), 0);
}

Test(admin_fmt, body_is_null_for_unknown_command)
{
    struct admin_json j;
    test_parse(&j, "{\"/ordo/raft\": null}", test_nodes);
    cr_assert_eq(admin_fmt_body(&j), -1);
}

Test(admin_fmt, status_shows_role_commit_and_follower_lag)
{
    char *out = test_status(test_raft, test_stats);
    cr_assert(strstr(out, "role:       leader\n") != NULL, "%s", out);
    cr_assert(strstr(out, "term:       7\n") != NULL, "%s", out);
    cr_assert(strstr(out, "commit:     1000\n") != NULL, "%s", out);
    cr_assert(strstr(out, "applied:    998 (behind commit by 2)") != NULL, "%s", out);
    cr_assert(strstr(out, "node 2    match 990  lag 10\n") != NULL, "%s", out);
    cr_assert(strstr(out, "node 1    match 1001  lag -1  (self: durable)") != NULL, "%s", out);
    cr_assert(strstr(out, "mean 25.0, max 64") != NULL, "%s", out);
    cr_assert(strstr(out, "queues:     req_ring 5\n") != NULL, "%s", out);
    cr_assert(strstr(out, "audit:") == NULL, "empty audit line: %s", out);
    cr_assert(strstr(out, "network:    rx_packets 12 tx_packets 34 ring_full 2\n") != NULL, "%s",
              out);
    free(out);
}

/* The configuration in use, learners included, and the membership counters. */
Test(admin_fmt, status_shows_members_and_learners)
{
    static const char raft[] =
        "{\"/ordo/raft\": {\"role\": \"leader\", \"id\": 1, \"commit\": 5, "
        "\"members\": {\"1\": \"voter\", \"2\": \"voter\", \"4\": \"learner\"}, "
        "\"membership\": \"voter\", \"member_changes\": 2, \"promotions\": 0, "
        "\"not_member_drops\": 0, \"member_rc\": -16}}";
    char *out = test_status(raft, test_stats);
    cr_assert(strstr(out, "members:    1 voter, 2 voter, 4 learner (this node: voter)\n") != NULL,
              "%s", out);
    cr_assert(strstr(out, "membership: member_changes 2 promotions 0 not_member_drops 0\n") != NULL,
              "%s", out);
    free(out);
}

Test(admin_fmt, status_of_older_daemon_has_no_members_line)
{
    char *out = test_status(test_raft, test_stats);
    cr_assert(strstr(out, "members:") == NULL, "%s", out);
    cr_assert(strstr(out, "membership:") == NULL, "%s", out);
    free(out);
}

Test(admin_fmt, status_without_raft_says_single)
{
    char *out = test_status("{\"/ordo/raft\": null}", test_stats);
    cr_assert(strstr(out, "role:       single") != NULL, "%s", out);
    free(out);
}

static const char test_snap[] =
    "{\"/ordo/snap\": {\"mode\": \"fork\", \"phase\": \"writing\", \"started\": 5, "
    "\"done\": 3, \"failed\": 1, \"cancelled\": 1, \"last_index\": 2360, "
    "\"pause_ns_last\": 8636000, \"pause_ns_max\": 19452000, \"round_ns_max\": 120000, "
    "\"write_ms_last\": 57, \"last_error\": \"writer killed by signal 9\", "
    "\"last_error_index\": 2100}}";

/* Runs the snapshot printer on one /ordo/snap reply into a string the caller frees. */
static char *test_snap_lines(const char *snap)
{
    struct admin_json j;
    test_parse(&j, snap, test_nodes);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    admin_fmt_snap(f, &j, admin_fmt_body(&j));
    fclose(f);
    return buf;
}

Test(admin_fmt, snap_shows_mode_phase_last_snapshot_counts_and_error)
{
    char *out = test_snap_lines(test_snap);
    cr_assert(strstr(out, "snapshots:  mode fork, writing; last at index 2360 (written in 57 ms, "
                          "apply pause 8636 us, max 19452 us)\n") != NULL,
              "%s", out);
    cr_assert(strstr(out, "snap count: started 5 done 3 failed 1 cancelled 1\n") != NULL, "%s",
              out);
    cr_assert(strstr(out, "snap error: writer killed by signal 9 (snapshot at index 2100)\n") !=
                  NULL,
              "%s", out);
    free(out);
}

Test(admin_fmt, snap_before_the_first_snapshot_has_no_last_and_no_error)
{
    char *out = test_snap_lines("{\"/ordo/snap\": {\"mode\": \"inline\", \"phase\": \"idle\", "
                                "\"started\": 0, \"done\": 0, \"last_error\": \"\"}}");
    cr_assert_str_eq(out, "snapshots:  mode inline, idle\nsnap count: started 0 done 0\n");
    free(out);
}

Test(admin_fmt, snap_of_a_daemon_without_it_prints_nothing)
{
    char *out = test_snap_lines("{\"/ordo/snap\": null}");
    cr_assert_str_eq(out, "");
    free(out);
}

/* status --json: the three bodies as sent, one object; a missing one is null. */
Test(admin_fmt, status_json_holds_the_three_bodies)
{
    static struct admin_json_node nodes3[TEST_NODES];
    struct admin_json rj, sj, nj, out_j;
    test_parse(&rj, test_raft, test_nodes);
    test_parse(&sj, test_stats, test_nodes2);
    test_parse(&nj, test_snap, nodes3);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(admin_fmt_status_json(f, &rj, admin_fmt_body(&rj), &sj, admin_fmt_body(&sj), &nj,
                                       admin_fmt_body(&nj)),
                 0);
    fclose(f);
    static struct admin_json_node parsed[TEST_NODES];
    cr_assert_eq(admin_json_parse(&out_j, buf, len, parsed, TEST_NODES), 0, "%s", buf);
    uint64_t v = 0;
    cr_assert_eq(admin_json_u64(&out_j, admin_json_path(&out_j, 0, "raft.commit"), &v), 0);
    cr_assert_eq(v, 1000);
    cr_assert_eq(admin_json_u64(&out_j, admin_json_path(&out_j, 0, "stats.ring_full"), &v), 0);
    cr_assert_eq(v, 2);
    cr_assert_eq(admin_json_u64(&out_j, admin_json_path(&out_j, 0, "snap.last_index"), &v), 0);
    cr_assert_eq(v, 2360);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    cr_assert_eq(admin_fmt_status_json(f, &rj, admin_fmt_body(&rj), &sj, -1, &nj, -1), 0);
    fclose(f);
    cr_assert(strstr(buf, "\"stats\": null, \"snap\": null}\n") != NULL, "%s", buf);
    free(buf);
}

Test(admin_fmt, flat_prints_dotted_keys)
{
    struct admin_json j;
    test_parse(&j, test_raft, test_nodes);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    admin_fmt_flat(f, &j, admin_fmt_body(&j), "");
    fclose(f);
    cr_assert(strstr(buf, "role=leader\n") != NULL, "%s", buf);
    cr_assert(strstr(buf, "match.3=1000\n") != NULL, "%s", buf);
    free(buf);
}

Test(admin_json, survives_every_truncation_and_byte_flip)
{
    /* Bad replies only return an error: every prefix, and every single-byte corruption. */
    size_t n = strlen(test_raft);
    char buf[sizeof(test_raft)];
    struct admin_json j;
    FILE *sink = fopen("/dev/null", "w");
    cr_assert_not_null(sink);
    for (size_t len = 0; len < n; len++) {
        cr_assert_neq(admin_json_parse(&j, test_raft, len, test_nodes, TEST_NODES), 0,
                      "prefix of %zu bytes accepted", len);
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(buf, test_raft, n);
        buf[i] = (char)(buf[i] ^ 0x5a);
        int rc = admin_json_parse(&j, buf, n, test_nodes, TEST_NODES);
        cr_assert(rc == 0 || rc == -EINVAL, "rc %d at byte %zu", rc, i);
        if (rc == 0) {
            admin_fmt_flat(sink, &j, admin_fmt_body(&j), "");
            (void)admin_fmt_status(sink, &j, admin_fmt_body(&j), &j, admin_fmt_body(&j));
            admin_fmt_snap(sink, &j, admin_fmt_body(&j));
        }
    }
    fclose(sink);
}
