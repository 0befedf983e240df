/* The network fault injector: spec parsing, deterministic drop statistics, and duplication,
 * reordering, delay and the peer filter on a real net_ring port (frames through net_tx/net_rx). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include "drivers/net/net.h"
#include "drivers/net/net_fault.h"
#include "engine/err.h"

#define T_FRAME_LEN 64u
#define T_STAT_FRAMES 100000u

static struct rte_ring *g_rx;
static struct rte_ring *g_tx;
static struct net_port g_port;
static char g_prefix[64];

static void eal_up(void)
{
    snprintf(g_prefix, sizeof(g_prefix), "--file-prefix=op3-ut-%d", (int)getpid());
    static char *argv[] = {"test_net_fault", "--no-pci", "--no-huge", "-m",          "64", NULL,
                           "--no-telemetry", "-l",       "0",         "--log-level", "3",  NULL};
    argv[5] = g_prefix;
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_eal_init(11, argv, &e), 0, "%s", e.text);
    g_rx = rte_ring_create("f_rx", 4096, 0, 0);
    g_tx = rte_ring_create("f_tx", 4096, 0, 0);
    cr_assert(g_rx != NULL && g_tx != NULL);
    int port = rte_eth_from_rings("op3_ring0", &g_rx, 1, &g_tx, 1, 0);
    cr_assert_geq(port, 0);
    struct net_conf c = {.port_id = (uint16_t)port,
                         .rx_queues = 1,
                         .tx_queues = 1,
                         .mbufs = 4095,
                         .frame_len_max = 1518};
    cr_assert_eq(net_port_open(&g_port, &c, &e), 0, "%s", e.text);
    net_fault_reset();
    net_stats_reset();
}

static void eal_down(void)
{
    net_fault_reset();
    net_port_close(&g_port);
    rte_eal_cleanup();
    char dir[128];
    snprintf(dir, sizeof(dir), "/var/run/dpdk/%s", g_prefix + strlen("--file-prefix="));
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)system(cmd);
}

/* Ethernet/IPv4/UDP frame from src to dst whose payload starts with seq. */
static struct rte_mbuf *frame(const char *src, const char *dst, uint32_t seq)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_port.pool);
    cr_assert_not_null(m);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, T_FRAME_LEN);
    cr_assert_not_null(p);
    memset(p, 0, T_FRAME_LEN);
    p[12] = 0x08;
    p[14] = 0x45;
    p[23] = 17;
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, src, &a), 1);
    memcpy(p + 26, &a.s_addr, 4);
    cr_assert_eq(inet_pton(AF_INET, dst, &a), 1);
    memcpy(p + 30, &a.s_addr, 4);
    memcpy(p + 42, &seq, sizeof(seq));
    return m;
}

static uint32_t seq_of(const struct rte_mbuf *m)
{
    uint32_t seq;
    memcpy(&seq, rte_pktmbuf_mtod(m, const uint8_t *) + 42, sizeof(seq));
    return seq;
}

static void set_spec(const char *spec)
{
    struct net_fault_cfg c;
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_fault_parse(spec, &c, &e), 0, "%s: %s", spec, e.text);
    cr_assert_eq(net_fault_set(&c, &e), 0, "%s: %s", spec, e.text);
}

/* Sends n frames through net_tx and takes what reached the port's TX ring. */
static unsigned tx_through(unsigned n, struct rte_mbuf **out, unsigned cap)
{
    for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = frame("198.18.0.11", "198.18.0.12", i + 1);
        (void)net_tx(&g_port, 0, &m, 1);
    }
    return rte_ring_dequeue_burst(g_tx, (void **)out, cap, NULL);
}

static void free_all(struct rte_mbuf **m, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        rte_pktmbuf_free(m[i]);
    }
}

Test(parse, full_spec)
{
    struct net_fault_cfg c;
    struct ordo_errmsg e = {{0}};
    const char *spec = "drop=5,dup=1,reorder=2,delay_us=200,seed=42,dir=both,peer=198.18.0.12";
    cr_assert_eq(net_fault_parse(spec, &c, &e), 0, "%s", e.text);
    cr_assert(c.enabled);
    cr_assert_eq(c.drop_ppm, 50000);
    cr_assert_eq(c.dup_ppm, 10000);
    cr_assert_eq(c.reorder_ppm, 20000);
    cr_assert_eq(c.delay_us, 200);
    cr_assert_eq(c.seed, 42);
    cr_assert_eq(c.dirs, NET_FAULT_RX | NET_FAULT_TX);
    cr_assert_eq(c.peer_ip, inet_addr("198.18.0.12"));
}

Test(parse, defaults_and_decimals)
{
    struct net_fault_cfg c;
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_fault_parse("drop=0.5", &c, &e), 0, "%s", e.text);
    cr_assert(c.enabled);
    cr_assert_eq(c.drop_ppm, 5000);
    cr_assert_eq(c.dup_ppm, 0);
    cr_assert_eq(c.dirs, NET_FAULT_RX);
    cr_assert_eq(c.peer_ip, 0);
    cr_assert_eq(net_fault_parse("drop=100.0000", &c, &e), 0, "%s", e.text);
    cr_assert_eq(c.drop_ppm, NET_FAULT_PPM);
}

Test(parse, off_is_disabled)
{
    struct net_fault_cfg c;
    struct ordo_errmsg e = {{0}};
    cr_assert_eq(net_fault_parse("off", &c, &e), 0);
    cr_assert(!c.enabled);
    cr_assert_eq(net_fault_parse("", &c, &e), 0);
    cr_assert(!c.enabled);
}

Test(parse, bad_specs_name_the_cause)
{
    static const struct {
        const char *spec;
        const char *needle;
    } bad[] = {
        {"drop=101", "drop=101"},      {"drop=-1", "drop"},       {"drop=5x", "drop"},
        {"drop=1.23456", "drop"},      {"dup=", "key=value"},     {"reorder", "key=value"},
        {"=5", "key=value"},           {"loss=5", "unknown key"}, {"drop=1,drop=2", "twice"},
        {"dir=up", "dir=up"},          {"peer=1.2.3", "peer"},    {"peer=0.0.0.0", "peer"},
        {"delay_us=2000000", "delay"}, {"seed=abc", "seed"},      {"delay_us=1e3", "delay"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct net_fault_cfg c;
        struct ordo_errmsg e = {{0}};
        cr_assert_eq(net_fault_parse(bad[i].spec, &c, &e), ORDO_ECONFIG, "%s", bad[i].spec);
        cr_assert_not_null(strstr(e.text, bad[i].needle), "%s: '%s'", bad[i].spec, e.text);
    }
}

Test(parse, format_round_trips)
{
    struct net_fault_cfg a;
    struct net_fault_cfg b;
    struct ordo_errmsg e = {{0}};
    char buf[NET_FAULT_SPEC_MAX];
    cr_assert_eq(net_fault_parse("drop=2.5,dup=1,delay_us=7,seed=9,dir=tx,peer=198.18.0.3", &a, &e),
                 0);
    cr_assert_lt(net_fault_format(&a, buf, sizeof(buf)), (int)sizeof(buf));
    cr_assert_eq(net_fault_parse(buf, &b, &e), 0, "%s: %s", buf, e.text);
    cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "%s", buf);
}

Test(parse, set_rejects_out_of_range)
{
    struct ordo_errmsg e = {{0}};
    struct net_fault_cfg c = {.enabled = true, .drop_ppm = NET_FAULT_PPM + 1, .dirs = 1};
    cr_assert_eq(net_fault_set(&c, &e), ORDO_ECONFIG);
    c.drop_ppm = 0;
    c.dirs = 0;
    cr_assert_eq(net_fault_set(&c, &e), ORDO_ECONFIG);
    cr_assert(!net_fault_armed);
}

/* Runs T_STAT_FRAMES frames through the RX hook and returns how many were dropped. */
static unsigned drops_over_run(void)
{
    struct rte_mbuf *m[32];
    unsigned passed = 0;
    net_fault_reset();
    set_spec("drop=5,seed=42");
    for (unsigned i = 0; i < T_STAT_FRAMES; i += 32) {
        for (unsigned k = 0; k < 32; k++) {
            m[k] = frame("198.18.0.12", "198.18.0.11", i + k);
        }
        uint16_t got = net_fault_rx(0, m, 32, 32);
        passed += got;
        free_all(m, got);
    }
    return (T_STAT_FRAMES / 32u) * 32u - passed;
}

Test(fault, drops_within_bounds_and_deterministic, .init = eal_up, .fini = eal_down)
{
    unsigned d1 = drops_over_run();
    cr_assert_eq(net_stats_get(NET_CTR_FAULT_DROPS), d1);
    /* 5 % of 99,968: mean 4,998, sd 69; +-5 sd. */
    cr_assert(d1 > 4650 && d1 < 5350, "drops %u", d1);
    unsigned d2 = drops_over_run();
    cr_assert_eq(d1, d2, "same seed, same drops: %u vs %u", d1, d2);
}

Test(fault, off_passes_everything_in_order, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *out[64];
    unsigned n = tx_through(16, out, 64);
    cr_assert_eq(n, 16);
    for (unsigned i = 0; i < n; i++) {
        cr_assert_eq(seq_of(out[i]), i + 1);
    }
    free_all(out, n);
    cr_assert(!net_fault_armed);
}

Test(fault, duplicates_every_frame_on_tx, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *out[64];
    set_spec("dup=100,dir=tx");
    unsigned n = tx_through(8, out, 64);
    cr_assert_eq(n, 16);
    for (unsigned i = 0; i < n; i++) {
        cr_assert_eq(seq_of(out[i]), i / 2 + 1, "frame %u", i);
    }
    cr_assert_neq(out[0], out[1]); /* a copy, not the same mbuf twice */
    cr_assert_eq(net_stats_get(NET_CTR_FAULT_DUPS), 8);
    free_all(out, n);
}

Test(fault, reorder_swaps_with_next_frame, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *out[64];
    set_spec("reorder=100,dir=tx");
    unsigned n = tx_through(8, out, 64);
    cr_assert_eq(n, 8);
    static const uint32_t want[] = {2, 1, 4, 3, 6, 5, 8, 7};
    for (unsigned i = 0; i < n; i++) {
        cr_assert_eq(seq_of(out[i]), want[i], "frame %u: %u", i, seq_of(out[i]));
    }
    cr_assert_eq(net_stats_get(NET_CTR_FAULT_REORDERS), 4);
    free_all(out, n);
}

Test(fault, delay_holds_rx_frames_then_releases, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *m[8];
    set_spec("delay_us=20000,dir=rx");
    for (unsigned i = 0; i < 4; i++) {
        m[i] = frame("198.18.0.12", "198.18.0.11", i + 1);
    }
    cr_assert_eq(rte_ring_enqueue_burst(g_rx, (void **)m, 4, NULL), 4);
    uint64_t t0 = rte_rdtsc();
    unsigned got = net_rx(&g_port, 0, m, 8);
    cr_assert_eq(got, 0, "nothing before the delay");
    uint64_t limit = t0 + rte_get_tsc_hz(); /* bounded wait: 1 s */
    while (got == 0 && rte_rdtsc() < limit) {
        got = net_rx(&g_port, 0, m, 8);
    }
    uint64_t us = (rte_rdtsc() - t0) * 1000000u / rte_get_tsc_hz();
    cr_assert_eq(got, 4);
    cr_assert_geq(us, 20000, "released after %lu us", (unsigned long)us);
    for (unsigned i = 0; i < got; i++) {
        cr_assert_eq(seq_of(m[i]), i + 1);
    }
    free_all(m, got);
}

Test(fault, peer_filter_touches_only_that_peer, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *m[16];
    set_spec("drop=100,dir=rx,peer=198.18.0.12");
    for (unsigned i = 0; i < 8; i++) {
        m[i] = frame(i % 2 == 0 ? "198.18.0.12" : "198.18.0.13", "198.18.0.11", i + 1);
    }
    cr_assert_eq(rte_ring_enqueue_burst(g_rx, (void **)m, 8, NULL), 8);
    unsigned got = net_rx(&g_port, 0, m, 16);
    cr_assert_eq(got, 4);
    for (unsigned i = 0; i < got; i++) {
        cr_assert_eq(seq_of(m[i]) % 2, 0, "only .13's frames (even seq) pass");
    }
    cr_assert_eq(net_stats_get(NET_CTR_FAULT_DROPS), 4);
    free_all(m, got);
}

Test(fault, hold_queue_is_bounded_and_counts_overflow, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *m[32];
    set_spec("delay_us=1000000,dir=rx"); /* nothing leaves during the test */
    unsigned total = NET_FAULT_HOLD_MAX + 64u;
    for (unsigned i = 0; i < total; i += 32) {
        for (unsigned k = 0; k < 32; k++) {
            m[k] = frame("198.18.0.12", "198.18.0.11", i + k);
        }
        cr_assert_eq(net_fault_rx(0, m, 32, 32), 0);
    }
    cr_assert_eq(net_stats_get(NET_CTR_FAULT_OVERFLOW), 64);
    cr_assert_eq(net_stats_get(NET_CTR_FAULT_DELAYED), total);
    /* Held mbufs are still owned by the injector: the pool has them out, reset frees them. */
    unsigned before = rte_mempool_avail_count(g_port.pool);
    net_fault_reset();
    cr_assert_eq(rte_mempool_avail_count(g_port.pool), before + NET_FAULT_HOLD_MAX);
}

Test(fault, switching_off_passes_frames_and_drains_held_ones, .init = eal_up, .fini = eal_down)
{
    struct rte_mbuf *out[64];
    set_spec("reorder=100,dir=tx");
    unsigned n = tx_through(3, out, 64); /* 2, 1 leave; 3 is held for its successor */
    cr_assert_eq(n, 2);
    free_all(out, n);
    set_spec("off");
    cr_assert(net_fault_armed, "stays armed so held frames drain");
    n = tx_through(2, out, 64);
    cr_assert_eq(n, 3, "the held frame and the new ones, got %u", n);
    free_all(out, n);
}
