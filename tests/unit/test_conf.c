/* Unit tests of the cluster configuration loader: good files (the shipped config/ files too),
 * one broken fixture per rule with the exact message, helpers, and allocation failures. */
#include "engine/runtime/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/mem.h"

#ifndef ORDO_TEST_SRC
#define ORDO_TEST_SRC "."
#endif

/* The source tree: $ORDO_SRC (set by meson test), else the configure-time source dir. */
static const char *src_dir(void)
{
    const char *s = getenv("ORDO_SRC");
    return s != NULL && s[0] != '\0' ? s : ORDO_TEST_SRC;
}

static void fixture_dir(char *buf, size_t len)
{
    snprintf(buf, len, "%s/tests/unit/conf", src_dir());
}

static void fixture(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/tests/unit/conf/%s", src_dir(), name);
}

/* Copies tail into out, replacing each "@DIR@" with the fixture directory. */
static void expand(const char *tail, char *out, size_t len)
{
    char dir[CONF_PATH_MAX];
    size_t used = 0;
    fixture_dir(dir, sizeof(dir));
    while (*tail != '\0' && used + 1 < len) {
        if (strncmp(tail, "@DIR@", 5) == 0) {
            used += (size_t)snprintf(out + used, len - used, "%s", dir);
            tail += 5;
        } else {
            out[used++] = *tail++;
        }
    }
    out[used < len ? used : len - 1] = '\0';
}

static int load_fixture(const char *name, struct conf *c, struct ordo_errmsg *err)
{
    char path[CONF_PATH_MAX];
    fixture(name, path, sizeof(path));
    return conf_load(path, c, err);
}

/* conf_load of fixture name fails with exactly "<path><tail>", leaving nothing behind. */
static void expect_error(const char *name, const char *tail)
{
    char path[CONF_PATH_MAX];
    char rest[ORDO_ERRMSG_LEN * 2];
    char want[CONF_PATH_MAX + ORDO_ERRMSG_LEN * 2];
    struct ordo_errmsg err = {{0}};
    struct conf c;
    int64_t live = mem_live_count();
    fixture(name, path, sizeof(path));
    int rc = conf_load(path, &c, &err);
    cr_assert_eq(rc, ORDO_ECONFIG, "%s: rc %d, message \"%s\"", name, rc, err.text);
    expand(tail, rest, sizeof(rest));
    snprintf(want, sizeof(want), "%s%s", path, rest);
    cr_assert_str_eq(err.text, want);
    cr_assert_eq(c.nodes_n, 0);
    cr_assert_null(c.clients.keys);
    cr_assert_eq(mem_live_count(), live, "leaked %lld allocations",
                 (long long)(mem_live_count() - live));
}

static uint32_t ip(const char *s)
{
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
    return a.s_addr;
}

/* ---- good files -------------------------------------------------------------------------- */

Test(conf, minimal_file_gets_every_default)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("good-minimal.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.cluster.id, 7);
    cr_assert_eq(c.cluster.value_max, 4096);
    cr_assert_eq(c.cluster.probe_port, 1028);
    cr_assert_eq(c.cluster.log_level, CONF_LOG_INFO);
    for (int i = 0; i < CONF_KEY_LEN; i += 4) {
        cr_assert_eq(c.cluster.key[i], 0xc0);
        cr_assert_eq(c.cluster.key[i + 1], 0xff);
        cr_assert_eq(c.cluster.key[i + 2], 0xee);
        cr_assert_eq(c.cluster.key[i + 3], 0x00);
    }
    struct conf_replica d;
    conf_replica_defaults(&d);
    cr_assert_eq(memcmp(&c.replica, &d, sizeof(d)), 0, "replica differs from the defaults");
    cr_assert_eq(c.nodes_n, 1);
    cr_assert_str_eq(c.nodes[0].port, "0");
    cr_assert_eq(c.nodes[0].port_index, 0);
    cr_assert_eq(c.clients.auth, CONF_AUTH_OPTIONAL);
    cr_assert_eq(c.clients.sessions_max, 4096);
    conf_free(&c);
}

/* join = 1 marks a spare outside the initial membership; join defaults to 0. */
Test(conf, join_marks_spare_nodes)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("join-spare.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.nodes_n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        cr_assert_eq(c.nodes[i].id, i + 1, "sorted by id");
        cr_assert_eq(c.nodes[i].join, i == 3 ? 1 : 0, "node %u", i + 1);
    }
    const struct conf_node *n4 = conf_node_find(&c, 4);
    cr_assert_not_null(n4, "a spare is addressable like any node");
    cr_assert_eq(n4->udp_port, 7004);
    conf_free(&c);
}

Test(conf, join_defaults_to_founding_member)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("good-minimal.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.nodes[0].join, 0);
    conf_free(&c);
}

Test(conf, defaults_are_documented_values)
{
    struct conf_replica r;
    conf_replica_defaults(&r);
    cr_assert_eq(r.lcores_n, 1);
    cr_assert_eq(r.lcores[0], 0);
    cr_assert_eq(r.rx_lcore + r.seq_lcore + r.log_lcore + r.apply_lcore + r.tx_lcore, 0);
    cr_assert_eq(r.rx_queues, 1);
    cr_assert_eq(r.tx_queues, 1);
    cr_assert_eq(r.rx_burst, 32);
    cr_assert_eq(r.tx_burst, 32);
    cr_assert_eq(r.rx_desc, 1024);
    cr_assert_eq(r.tx_desc, 1024);
    cr_assert_eq(r.mbufs, 8191);
    cr_assert_eq(r.ring_size, 1024);
    cr_assert_eq(r.batch_count_max, 64);
    cr_assert_eq(r.batch_bytes_max, 8192);
    cr_assert_eq(r.batch_time_us, 50);
    cr_assert_eq(r.idle, CONF_IDLE_BACKOFF);
    cr_assert_eq(r.election_ticks, 100);
    cr_assert_eq(r.heartbeat_ticks, 10);
    cr_assert_eq(r.tick_us, 1000);
    cr_assert_eq(r.snapshot_entries, 100000);
    cr_assert_eq(r.snapshot_log_bytes, 0);
    cr_assert_eq(r.snapshot_mode, CONF_SNAPSHOT_FORK);
    cr_assert_eq(r.pipeline_window, 64);
    cr_assert_eq(r.pipeline_bytes, 4u << 20);
    cr_assert_eq(r.peer_mtu, 1500);
}

Test(conf, full_file_sets_every_key)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("good-full.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.cluster.id, 4000000000u);
    for (int i = 0; i < CONF_KEY_LEN; i++) {
        cr_assert_eq(c.cluster.key[i], i + 1, "raw key byte %d", i);
    }
    cr_assert_eq(c.cluster.value_max, 1024);
    cr_assert_eq(c.cluster.probe_port, 0);
    cr_assert_eq(c.cluster.log_level, CONF_LOG_DEBUG);
    const struct conf_replica *r = &c.replica;
    cr_assert_eq(r->lcores_n, 3);
    cr_assert(r->lcores[0] == 0 && r->lcores[1] == 2 && r->lcores[2] == 3);
    cr_assert(r->rx_lcore == 2 && r->seq_lcore == 3 && r->log_lcore == 0 && r->tx_lcore == 2);
    cr_assert_eq(r->apply_lcore, 0, "an unset stage runs on the first lcore");
    cr_assert(r->rx_queues == 2 && r->tx_queues == 3);
    cr_assert(r->rx_burst == 64 && r->tx_burst == 128, "inline comments are stripped");
    cr_assert(r->rx_desc == 256 && r->tx_desc == 512 && r->mbufs == 20000);
    cr_assert(r->ring_size == 4096 && r->batch_count_max == 128 && r->batch_bytes_max == 4096);
    cr_assert(r->batch_time_us == 0 && r->idle == CONF_IDLE_BUSY);
    cr_assert(r->election_ticks == 40 && r->heartbeat_ticks == 20 && r->tick_us == 500);
    cr_assert(r->snapshot_entries == 0 && r->pipeline_window == 8 && r->pipeline_bytes == 4096);
    cr_assert(r->snapshot_log_bytes == 1048576 && r->snapshot_mode == CONF_SNAPSHOT_INLINE);
    cr_assert_eq(r->peer_mtu, 9000);
    cr_assert_eq(c.clients.auth, CONF_AUTH_MAC);
    cr_assert_eq(c.clients.sessions_max, 77);
    cr_assert_eq(c.clients.keys_n, 2);
    conf_free(&c);
}

Test(conf, nodes_are_sorted_and_complete)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    char dir[CONF_PATH_MAX];
    char want[CONF_PATH_MAX + 16];
    cr_assert_eq(load_fixture("good-full.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.nodes_n, 2);
    const struct conf_node *a = &c.nodes[0];
    const struct conf_node *b = &c.nodes[1];
    cr_assert(a->id == 1 && b->id == 3, "sorted by id");
    cr_assert_eq(memcmp(b->mac, "\x02\x00\xc6\x12\x00\x03", 6), 0);
    cr_assert_eq(b->ipv4, ip("198.18.0.3"));
    cr_assert_eq(b->udp_port, 9003);
    cr_assert_str_eq(b->port, "net_null0");
    cr_assert_eq(b->port_index, -1);
    cr_assert_str_eq(a->port, "1");
    cr_assert_eq(a->port_index, 1);
    cr_assert_str_eq(b->data_dir, "/var/tmp/ordo-test/r3", "absolute paths stay");
    fixture_dir(dir, sizeof(dir));
    snprintf(want, sizeof(want), "%s/data/r1", dir);
    cr_assert_str_eq(a->data_dir, want, "relative paths join the file's directory");
    cr_assert_str_eq(b->eal, "--no-pci --vdev='net_null0,size=64' --file-prefix=\"t 3\"");
    conf_free(&c);
}

Test(conf, relative_key_path_resolves_against_the_file)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    char dir[CONF_PATH_MAX];
    char want[CONF_PATH_MAX + 32];
    cr_assert_eq(load_fixture("sub/relative.ini", &c, &err), 0, "%s", err.text);
    fixture_dir(dir, sizeof(dir));
    snprintf(want, sizeof(want), "%s/sub/../test.key", dir);
    cr_assert_str_eq(c.cluster.key_file, want);
    cr_assert_eq(c.cluster.key[0], 0xc0);
    conf_free(&c);
}

static void load_shipped(const char *name, struct conf *c)
{
    char path[CONF_PATH_MAX];
    struct ordo_errmsg err = {{0}};
    snprintf(path, sizeof(path), "%s/config/%s", src_dir(), name);
    cr_assert_eq(conf_load(path, c, &err), 0, "%s", err.text);
}

Test(conf_shipped, veth_1_loads)
{
    struct conf c;
    load_shipped("veth-1.ini", &c);
    cr_assert_eq(c.nodes_n, 1);
    cr_assert_eq(c.nodes[0].ipv4, ip("198.18.0.1"));
    cr_assert(conf_subnet_allows(&c, ip("198.19.255.254")));
    cr_assert_not(conf_subnet_allows(&c, ip("10.0.0.1")));
    conf_free(&c);
}

Test(conf_shipped, veth_3_loads)
{
    struct conf c;
    load_shipped("veth-3.ini", &c);
    cr_assert_eq(c.nodes_n, 3);
    for (uint32_t i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof(want), "198.18.0.%u", i + 1);
        cr_assert_eq(c.nodes[i].id, i + 1);
        cr_assert_eq(c.nodes[i].ipv4, ip(want));
        snprintf(want, sizeof(want), "iface=ordo-r%u", i + 1);
        cr_assert_not_null(strstr(c.nodes[i].eal, want), "%s", c.nodes[i].eal);
    }
    cr_assert_eq(c.replica.idle, CONF_IDLE_BACKOFF);
    conf_free(&c);
}

Test(conf_shipped, baremetal_3_loads)
{
    struct conf c;
    load_shipped("baremetal-3.ini", &c);
    cr_assert_eq(c.nodes_n, 3);
    cr_assert_eq(c.replica.idle, CONF_IDLE_BUSY);
    cr_assert_eq(c.replica.lcores_n, 6);
    cr_assert_eq(c.nodes[0].port_index, -1);
    cr_assert_eq(c.clients.auth, CONF_AUTH_MAC);
    cr_assert_not_null(conf_client_key(&c, 1001));
    conf_free(&c);
}

/* peer_mtu on net_af_xdp: 3000 fits a 4 KiB umem chunk; jumbo frames on af_packet are not
 * bound by it. */
Test(conf_good, af_xdp_peer_mtu_3000_and_af_packet_8100)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("af-xdp-peer-mtu-ok.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.replica.peer_mtu, 3000);
    conf_free(&c);
    cr_assert_eq(load_fixture("af-packet-peer-mtu.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.replica.peer_mtu, 8100);
    conf_free(&c);
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* One replica has no peer ring and parks nothing: veth-3's old 4095 mbufs fit it. */
Test(conf_helpers, mbufs_need_of_a_single_replica)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    struct conf_mbuf_need n;
    cr_assert_eq(load_fixture("mbufs-single.ini", &c, &err), 0, "%s", err.text);
    conf_mbufs_need(&c, &n);
    cr_assert_eq(n.descriptors, 1024);
    cr_assert_eq(n.rings_n, 2);
    cr_assert_eq(n.rings, 2046);
    cr_assert_eq(n.lcores_n, 1);
    cr_assert_eq(n.bursts, 64);
    cr_assert_eq(n.caches, 384, "a 256-mbuf cache holds up to its flush threshold, 384");
    cr_assert_eq(n.split, 32, "one RX burst of multi-request items copied out");
    cr_assert_eq(n.parked, 0);
    cr_assert_eq(n.replies, 0);
    cr_assert_eq(n.total, 3550);
    conf_free(&c);
}

/* Every distinct stage lcore holds its own bursts and cache; parked mbufs when replicated. */
Test(conf_helpers, mbufs_need_counts_stage_lcores_and_parked)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    struct conf_mbuf_need n;
    cr_assert_eq(load_fixture("good-full.ini", &c, &err), 0, "%s", err.text);
    conf_mbufs_need(&c, &n);
    cr_assert_eq(n.lcores_n, 3, "rx/tx on 2, seq on 3, log/apply on 0");
    cr_assert_eq(n.descriptors, 2 * 256 + 3 * 512);
    cr_assert_eq(n.rings, 3 * 4095);
    cr_assert_eq(n.bursts, 3 * (64 + 128));
    cr_assert_eq(n.caches, 3 * 384);
    cr_assert_eq(n.split, 64, "rx_burst");
    cr_assert_eq(n.parked, CONF_MBUF_PARKED);
    cr_assert_eq(n.replies, 128, "a leader's replies to one batch of batch_count_max commands");
    cr_assert_eq(n.total,
                 n.descriptors + n.rings + n.bursts + n.caches + n.split + n.parked + n.replies);
    cr_assert_leq(n.total, c.replica.mbufs);
    conf_free(&c);
}

/* Every shipped config covers the count (conf_load would refuse it otherwise). */
Test(conf_shipped, mbufs_cover_what_the_pipeline_holds)
{
    static const char *const names[] = {"veth-1.ini", "veth-3.ini", "baremetal-3.ini"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct conf c;
        struct conf_mbuf_need n;
        load_shipped(names[i], &c);
        conf_mbufs_need(&c, &n);
        cr_assert_leq(n.total, c.replica.mbufs, "%s", names[i]);
        cr_log_info("%s: mbufs %u, needed %lu", names[i], c.replica.mbufs, (unsigned long)n.total);
        conf_free(&c);
    }
}

Test(conf_helpers, node_find)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("good-full.ini", &c, &err), 0, "%s", err.text);
    cr_assert_eq(conf_node_find(&c, 3), &c.nodes[1]);
    cr_assert_eq(conf_node_find(&c, 1), &c.nodes[0]);
    cr_assert_null(conf_node_find(&c, 2));
    cr_assert_null(conf_node_find(&c, 0));
    conf_free(&c);
}

Test(conf_helpers, client_key_lookup)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(load_fixture("good-full.ini", &c, &err), 0, "%s", err.text);
    const uint8_t *k7 = conf_client_key(&c, 7);
    const uint8_t *k9 = conf_client_key(&c, 9);
    cr_assert_not_null(k7);
    cr_assert_not_null(k9);
    cr_assert_eq(k7[0], 0x77);
    cr_assert_eq(k9[CONF_KEY_LEN - 1], 0x99);
    cr_assert_null(conf_client_key(&c, 8));
    cr_assert_null(conf_client_key(&c, 0));
    cr_assert_null(conf_client_key(&c, UINT64_MAX));
    conf_free(&c);
}

Test(conf_helpers, subnet_allows_per_auth_mode)
{
    struct conf c;
    memset(&c, 0, sizeof(c));
    c.clients.auth = CONF_AUTH_NONE;
    cr_assert(conf_subnet_allows(&c, ip("8.8.8.8")), "none without allow admits everyone");
    c.clients.allow_n = 1;
    c.clients.allow[0].addr = ip("198.18.0.0");
    c.clients.allow[0].mask = ip("255.254.0.0");
    c.clients.allow[0].prefix_len = 15;
    cr_assert(conf_subnet_allows(&c, ip("198.19.1.2")));
    cr_assert_not(conf_subnet_allows(&c, ip("198.20.0.1")));
    c.clients.auth = CONF_AUTH_OPTIONAL;
    cr_assert(conf_subnet_allows(&c, ip("198.18.0.9")));
    cr_assert_not(conf_subnet_allows(&c, ip("198.17.255.255")));
    c.clients.auth = CONF_AUTH_MAC;
    cr_assert_not(conf_subnet_allows(&c, ip("198.18.0.9")), "mac never admits unsigned");
    c.clients.auth = CONF_AUTH_OPTIONAL;
    c.clients.allow_n = 0;
    cr_assert_not(conf_subnet_allows(&c, ip("198.18.0.9")));
}

Test(conf_helpers, eal_argv_splits_and_unquotes)
{
    struct conf_argv a;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(conf_eal_argv("  --no-pci\t--vdev='net_af_xdp0,iface=a b' \"x\\\"y\" a\\ b '' ",
                               "ordo", &a, &err),
                 0, "%s", err.text);
    cr_assert_eq(a.argc, 6);
    cr_assert_str_eq(a.argv[0], "ordo");
    cr_assert_str_eq(a.argv[1], "--no-pci");
    cr_assert_str_eq(a.argv[2], "--vdev=net_af_xdp0,iface=a b");
    cr_assert_str_eq(a.argv[3], "x\"y");
    cr_assert_str_eq(a.argv[4], "a b");
    cr_assert_str_eq(a.argv[5], "");
    cr_assert_null(a.argv[6]);
}

Test(conf_helpers, eal_argv_empty_gives_prog_only)
{
    struct conf_argv a;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(conf_eal_argv("   ", "ordo", &a, &err), 0);
    cr_assert_eq(a.argc, 1);
    cr_assert_null(a.argv[1]);
}

Test(conf_helpers, eal_argv_rejects_bad_quoting)
{
    struct conf_argv a;
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(conf_eal_argv("--a 'b", "ordo", &a, &err), ORDO_ECONFIG);
    cr_assert_str_eq(err.text, "EAL arguments \"--a 'b\": unterminated quote");
    cr_assert_eq(conf_eal_argv("--a \"b\\\"", "ordo", &a, &err), ORDO_ECONFIG);
    cr_assert_eq(conf_eal_argv("--a b\\", "ordo", &a, &err), ORDO_ECONFIG);
    cr_assert_str_eq(err.text, "EAL arguments \"--a b\\\": dangling backslash");
}

Test(conf_helpers, eal_argv_bounds_argument_count)
{
    char args[CONF_STR_MAX];
    struct conf_argv a;
    struct ordo_errmsg err = {{0}};
    memset(args, 0, sizeof(args));
    for (int i = 0; i < CONF_EAL_ARGS_MAX; i++) {
        strcat(args, "a ");
    }
    cr_assert_eq(conf_eal_argv(args, "ordo", &a, &err), 0, "%s", err.text);
    cr_assert_eq(a.argc, CONF_EAL_ARGS_MAX + 1);
    strcat(args, "b");
    cr_assert_eq(conf_eal_argv(args, "ordo", &a, &err), ORDO_ECONFIG);
    cr_assert_not_null(strstr(err.text, "more than 64 arguments"), "%s", err.text);
}

Test(conf_helpers, lcores_list)
{
    struct conf_replica r;
    char buf[16];
    conf_replica_defaults(&r);
    r.lcores_n = 3;
    r.lcores[0] = 2;
    r.lcores[1] = 10;
    r.lcores[2] = 127;
    cr_assert_eq(conf_lcores_list(&r, buf, sizeof(buf)), 8);
    cr_assert_str_eq(buf, "2,10,127");
    cr_assert_eq(conf_lcores_list(&r, buf, 8), -ENOSPC);
    cr_assert_eq(conf_lcores_list(&r, buf, 0), -ENOSPC);
}

Test(conf_helpers, free_wipes_and_tolerates_repeat)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    int64_t live = mem_live_count();
    cr_assert_eq(load_fixture("good-full.ini", &c, &err), 0, "%s", err.text);
    conf_free(&c);
    uint8_t zero[CONF_KEY_LEN] = {0};
    cr_assert_eq(memcmp(c.cluster.key, zero, sizeof(zero)), 0);
    cr_assert_null(c.clients.keys);
    conf_free(&c);
    cr_assert_eq(mem_live_count(), live);
}

Test(conf_helpers, every_allocation_failure_is_clean)
{
    char path[CONF_PATH_MAX];
    int64_t live = mem_live_count();
    int failed = 0;
    fixture("good-full.ini", path, sizeof(path));
    for (int64_t n = 0; n < 64; n++) {
        struct conf c;
        struct ordo_errmsg err = {{0}};
        mem_fault_set(n, 1);
        int rc = conf_load(path, &c, &err);
        mem_fault_set(-1, 0);
        cr_assert(rc == 0 || rc == -ENOMEM, "countdown %lld: rc %d (%s)", (long long)n, rc,
                  err.text);
        if (rc == 0) {
            conf_free(&c);
        } else {
            failed++;
            cr_assert_not_null(strstr(err.text, "out of memory"), "%s", err.text);
        }
        cr_assert_eq(mem_live_count(), live, "countdown %lld leaked", (long long)n);
    }
    cr_assert_geq(failed, 3, "the loader allocates at least file, entries and client keys");
}

/* ---- broken files: one rule each, exact message ----------------------------------------- */

#define BAD(test, file, tail)                                                                      \
    Test(conf_bad, test)                                                                           \
    {                                                                                              \
        expect_error(file, tail);                                                                  \
    }

BAD(missing_file, "does-not-exist.ini", ": cannot open: No such file or directory")
BAD(empty_file, "empty.ini", ": no [cluster] section (required)")
BAD(rx_burst_zero, "bad-rx-burst.ini",
    ": [replica] rx_burst: expected an integer in 1..512, got \"0\"")
BAD(peer_mtu_below_standard, "bad-peer-mtu.ini",
    ": [replica] peer_mtu: expected an integer in 1500..9000, got \"1400\"")
BAD(unknown_key_suggests, "unknown-key.ini",
    ": [replica] rx_brust: unknown key (did you mean rx_burst?)")
BAD(unknown_key, "unknown-key-far.ini", ": [cluster] colour: unknown key")
BAD(unknown_section, "unknown-section.ini",
    ": [replicas]: unknown section (expected cluster, node.<id>, replica or clients)")
BAD(missing_cluster_id, "missing-cluster-id.ini", ": [cluster] id: missing (required)")
BAD(missing_node_eal, "missing-node-eal.ini", ": [node.2] eal: missing (required)")
BAD(duplicate_ipv4, "dup-node-ip.ini", ": [node.2] ipv4: 198.18.0.1 is also used by [node.1]")
BAD(duplicate_mac, "dup-node-mac.ini", ": [node.2] mac: 02:00:c6:12:00:01 is also used by [node.1]")
BAD(duplicate_data_dir, "dup-data-dir.ini",
    ": [node.2] data_dir: \"@DIR@/data/r1\" is also used by [node.1]")
BAD(bad_mac, "bad-mac.ini",
    ": [node.1] mac: expected a MAC address like 02:00:00:00:00:01, got \"02:00:c6:12:00\"")
BAD(multicast_mac, "multicast-mac.ini",
    ": [node.1] mac: 01:00:5e:00:00:01 is a multicast address; expected a unicast MAC")
BAD(bad_ipv4, "bad-ipv4.ini",
    ": [node.1] ipv4: expected a unicast IPv4 address like 198.18.0.1, got \"198.18.0.256\"")
BAD(bad_udp_port, "bad-udp-port.ini",
    ": [node.1] udp_port: expected an integer in 1..65535, got \"65536\"")
BAD(bad_port, "bad-port.ini",
    ": [node.1] port: expected a DPDK port index in 0..31 or a port name, got \"32\"")
BAD(bad_cidr, "bad-cidr.ini",
    ": [clients] allow: expected IPv4 subnets like 198.18.0.0/15, got \"10.0.0.0/33\"")
BAD(cidr_host_bits, "cidr-host-bits.ini",
    ": [clients] allow: 198.18.0.1/15 has host bits set (did you mean 198.18.0.0/15?)")
BAD(stage_lcore_not_in_lcores, "stage-lcore.ini",
    ": [replica] seq_lcore: lcore 3 is not in lcores (0,1)")
BAD(lcores_duplicate, "lcores-dup.ini", ": [replica] lcores: lcore 1 is listed twice")
BAD(lcores_malformed, "lcores-bad.ini",
    ": [replica] lcores: expected a list of lcore ids in 0..127 like \"0,2-3\", got \"0-\"")
BAD(ring_not_power_of_two, "ring-not-pow2.ini",
    ": [replica] ring_size: expected a power of two in 64..1048576, got \"1000\"")
BAD(bad_idle, "bad-idle.ini", ": [replica] idle: expected one of busy, backoff, got \"spin\"")
BAD(duplicate_key, "dup-key.ini", ": [replica] rx_burst: given twice")
BAD(duplicate_section, "dup-section.ini", ": [replica]: section given twice")
BAD(duplicate_node_section, "dup-node-section.ini", ": [node.1]: section given twice")
BAD(node_id_mismatch, "node-id-mismatch.ini",
    ": [node.2] id: expected 2 (the id in the section name), got \"3\"")
BAD(node_id_range, "node-id-range.ini",
    ": [node.256]: unknown section (expected node.<id>, id in 1..255)")
BAD(node_id_zero_padded, "node-id-zero-pad.ini",
    ": [node.01]: unknown section (expected node.<id>, id in 1..255)")
BAD(too_many_nodes, "too-many-nodes.ini", ": [node.17]: more than 16 nodes")
BAD(no_nodes, "no-nodes.ini", ": no [node.<id>] section (need at least one replica)")
BAD(no_cluster, "no-cluster.ini", ": no [cluster] section (required)")
BAD(key_file_missing, "key-missing-file.ini",
    ": [cluster] key_file: cannot open \"@DIR@/nonexistent.key\": No such file or directory")
BAD(key_file_short, "key-short.ini",
    ": [cluster] key_file: \"@DIR@/short.key\": expected 32 raw bytes or 64 hex characters, "
    "got 17 bytes")
BAD(key_all_zero, "key-zero.ini", ": [cluster] key_file: \"@DIR@/zero.key\": the key is all zeros")
BAD(eal_unterminated_quote, "eal-quote.ini",
    ": [node.1] eal: unterminated quote in \"--no-pci --vdev='net_null0\"")
BAD(eal_sets_lcores, "eal-lcores.ini",
    ": [node.1] eal: \"-l\" is not allowed here: [replica] lcores sets them")
BAD(eal_sets_main_lcore, "eal-main-lcore.ini",
    ": [node.1] eal: \"--main-lcore=1\" is not allowed here: [replica] lcores sets them")
BAD(election_vs_heartbeat, "election-ticks.ini",
    ": [replica] election_ticks: expected at least 2 x heartbeat_ticks = 20, got 15")
BAD(mbufs_too_few, "mbufs-small.ini",
    ": [replica] mbufs: expected at least 7512, got 1000: queues x rx_desc/tx_desc 2048 + 3 rings "
    "x ring_size 3069 + 1 lcores x (bursts + cache) 251 + RX split 32 + parked "
    "reads/probes/replies 2112")
/* The pool that stalled a veth leader's TX for 1-2 s under 256 outstanding requests. */
BAD(mbufs_veth_4095_refused, "mbufs-veth-4095.ini",
    ": [replica] mbufs: expected at least 6685, got 4095: queues x rx_desc/tx_desc 1024 + 3 rings "
    "x ring_size 3069 + 1 lcores x (bursts + cache) 448 + RX split 32 + parked "
    "reads/probes/replies 2112")
BAD(mbufs_count_every_stage_lcore, "mbufs-lcores.ini",
    ": [replica] mbufs: expected at least 10173, got 8191: queues x rx_desc/tx_desc 2048 + 3 rings "
    "x ring_size 3069 + 3 lcores x (bursts + cache) 2688 + RX split 256 + parked "
    "reads/probes/replies 2112")
/* A peer_mtu the af_xdp port cannot receive: every larger AppendEntries would be dropped by
 * the kernel and the cluster would wedge without an error. */
BAD(af_xdp_peer_mtu_over_chunk, "af-xdp-peer-mtu.ini",
    ": [replica] peer_mtu: expected at most 3300 with net_af_xdp ([node.2]: 4 KiB umem chunks), "
    "got 3400")
BAD(af_xdp_peer_mtu_port_index, "af-xdp-peer-mtu-index.ini",
    ": [replica] peer_mtu: expected at most 3300 with net_af_xdp ([node.2]: 4 KiB umem chunks), "
    "got 3400")
BAD(snapshot_log_bytes_below_batch, "snapshot-log-bytes.ini",
    ": [replica] snapshot_log_bytes: expected 0 or at least batch_bytes_max = 8192, got 4096")
BAD(snapshot_log_bytes_range, "snapshot-log-bytes-range.ini",
    ": [replica] snapshot_log_bytes: expected an integer in 0..1125899906842624, got "
    "\"1125899906842625\"")
BAD(bad_snapshot_mode, "bad-snapshot-mode.ini",
    ": [replica] snapshot_mode: expected one of fork, inline, got \"thread\"")
BAD(pipeline_bytes_below_batch, "pipeline-bytes.ini",
    ": [replica] pipeline_bytes: expected at least batch_bytes_max = 8192, got 1000")
BAD(value_max_over_frame, "value-max.ini",
    ": [cluster] value_max: expected an integer in 1..4096, got \"4097\"")
BAD(bad_log_level, "bad-log-level.ini",
    ": [cluster] log_level: expected one of error, warning, notice, info, debug, got \"verbose\"")
BAD(auth_mac_without_keys, "auth-mac-no-keys.ini",
    ": [clients] auth: mac needs at least one key.<client_id> entry")
BAD(allow_with_auth_mac, "allow-with-mac.ini",
    ": [clients] allow: has no effect with auth = mac (use auth = optional)")
BAD(client_key_with_auth_none, "key-with-none.ini",
    ": [clients] key.1: has no effect with auth = none")
BAD(client_key_duplicate, "client-key-dup.ini", ": [clients] key.7: given twice")
BAD(client_key_is_cluster_key, "client-key-cluster.ini",
    ": [clients] key.5: same key as [cluster] key_file; clients must not hold the peer key")
BAD(client_key_bad_id, "client-key-name.ini",
    ": [clients] key.007: unknown key (expected key.<client_id>, a client id in "
    "1..18446744073709551615)")
BAD(probe_port_clash, "probe-port-clash.ini",
    ": [node.2] udp_port: 1028 is also [cluster] probe_port")
BAD(join_not_a_flag, "join-bad.ini", ": [node.2] join: expected an integer in 0..1, got \"yes\"")
BAD(join_everywhere, "join-all.ini",
    ": every [node.<id>] has join = 1 (the initial membership needs at least one node with "
    "join = 0)")
BAD(lint_no_equals, "lint-no-equals.ini",
    ":3: expected \"[section]\" or \"key = value\", got \"rx_burst 32\"")
BAD(lint_outside_section, "lint-outside.ini", ":3: \"id = 1\" is outside any section")
BAD(lint_empty_value, "lint-empty-value.ini", ":3: [replica] rx_burst: empty value")
BAD(lint_text_after_bracket, "lint-after-bracket.ini",
    ":3: unexpected text after ']' in \"[replica] x\"")
BAD(lint_unclosed_section, "lint-unclosed.ini", ":3: expected ']' to close \"[replica\"")
BAD(lint_missing_key, "lint-no-key.ini", ":3: [replica]: missing key name before '='")
BAD(lint_long_line, "lint-long-line.ini", ":3: longer than 320 characters")
BAD(lint_long_value, "lint-long-value.ini",
    ":3: [replica] rx_burst: value longer than 255 characters")
BAD(lint_long_key, "lint-long-key.ini", ":3: [replica]: key longer than 63 characters")
BAD(lint_nul_byte, "lint-nul.ini", ":3: contains a NUL byte")
BAD(lint_empty_section_name, "lint-empty-section.ini", ":3: empty section name")
