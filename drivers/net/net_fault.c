/* Seeded network fault injector: spec parser, process-wide config (seqlock-published) and the
 * RX/TX hooks. Frames of an armed queue pass through a bounded, preallocated hold queue so
 * delay and reorder never allocate; duplicates are copied from the frame's own mempool. */
#include "drivers/net/net_fault.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "drivers/net/net_stats.h"
#include "engine/ordo_assert.h"

#define NET_FAULT_REORDER_WAIT_US 1000u /* a held frame with no successor leaves after this */
#define NET_FAULT_ETH_HLEN 14u
#define NET_FAULT_IP_SRC_OFF (NET_FAULT_ETH_HLEN + 12u)
#define NET_FAULT_IP_DST_OFF (NET_FAULT_ETH_HLEN + 16u)

static_assert((NET_FAULT_HOLD_MAX & (NET_FAULT_HOLD_MAX - 1u)) == 0, "power of two");

struct net_fault_ent {
    struct rte_mbuf *m;
    uint64_t due; /* TSC */
};

/* State of one queue in one direction; touched only by that queue's lcore. */
struct net_fault_q {
    uint64_t rng;
    uint32_t gen; /* config generation the PRNG was seeded for */
    uint32_t head;
    uint32_t count;
    struct rte_mbuf *held; /* reorder slot: leaves right after the next frame */
    uint64_t held_due;
    uint64_t held_since;
    struct net_fault_ent ent[NET_FAULT_HOLD_MAX];
} __rte_cache_aligned;

/* The config as the data path uses it (rates and delay already converted). */
struct net_fault_view {
    bool enabled;
    uint32_t drop_ppm;
    uint32_t dup_ppm;
    uint32_t reorder_ppm;
    uint64_t delay_cycles;
    uint64_t seed;
    uint32_t dirs;
    uint32_t peer_ip;
};

bool net_fault_armed;

static struct net_fault_q net_fault_qs[2][NET_FAULT_QUEUES_MAX];
static struct net_fault_cfg net_fault_cur;
static uint32_t net_fault_seq; /* seqlock: odd while net_fault_set writes */

/* ---- spec parser ---- */

static int net_fault_parse_pct(const char *key, const char *v, uint32_t *ppm,
                               struct ordo_errmsg *err)
{
    uint64_t whole = 0;
    uint64_t frac = 0;
    unsigned fdigits = 0;
    const char *s = v;
    if (*s < '0' || *s > '9') {
        goto bad;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        whole = whole * 10u + (uint64_t)(*s - '0');
        if (whole > 100u) {
            goto bad;
        }
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (++fdigits > 4u) {
                goto bad;
            }
            frac = frac * 10u + (uint64_t)(*s - '0');
        }
    }
    if (*s != '\0') {
        goto bad;
    }
    for (; fdigits < 4u; fdigits++) {
        frac *= 10u;
    }
    uint64_t p = whole * 10000u + frac;
    if (p > NET_FAULT_PPM) {
        goto bad;
    }
    *ppm = (uint32_t)p;
    return 0;
bad:
    ordo_errmsg_set(err, "net fault spec: %s=%s: want a percentage 0..100 (up to 4 decimals)", key,
                    v);
    return ORDO_ECONFIG;
}

static int net_fault_parse_u64(const char *key, const char *v, uint64_t max, uint64_t *out,
                               struct ordo_errmsg *err)
{
    char *end = NULL;
    if (*v < '0' || *v > '9') {
        goto bad;
    }
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno != 0 || end == v || *end != '\0' || x > max) {
        goto bad;
    }
    *out = x;
    return 0;
bad:
    ordo_errmsg_set(err, "net fault spec: %s=%s: want an integer 0..%" PRIu64, key, v, max);
    return ORDO_ECONFIG;
}

static int net_fault_parse_dir(const char *v, uint32_t *dirs, struct ordo_errmsg *err)
{
    if (strcmp(v, "rx") == 0) {
        *dirs = NET_FAULT_RX;
    } else if (strcmp(v, "tx") == 0) {
        *dirs = NET_FAULT_TX;
    } else if (strcmp(v, "both") == 0) {
        *dirs = NET_FAULT_RX | NET_FAULT_TX;
    } else {
        ordo_errmsg_set(err, "net fault spec: dir=%s: want rx, tx or both", v);
        return ORDO_ECONFIG;
    }
    return 0;
}

static int net_fault_parse_peer(const char *v, uint32_t *ip, struct ordo_errmsg *err)
{
    struct in_addr a;
    if (strcmp(v, "all") == 0) {
        *ip = 0;
        return 0;
    }
    if (inet_pton(AF_INET, v, &a) != 1 || a.s_addr == 0) {
        ordo_errmsg_set(err, "net fault spec: peer=%s: want an IPv4 address or all", v);
        return ORDO_ECONFIG;
    }
    *ip = a.s_addr;
    return 0;
}

static const char *const net_fault_keys[] = {"drop", "dup", "reorder", "delay_us",
                                             "seed", "dir", "peer"};

static int net_fault_parse_kv(int k, const char *v, struct net_fault_cfg *c,
                              struct ordo_errmsg *err)
{
    const char *key = net_fault_keys[k];
    uint64_t x = 0;
    int rc;
    switch (k) {
    case 0:
        return net_fault_parse_pct(key, v, &c->drop_ppm, err);
    case 1:
        return net_fault_parse_pct(key, v, &c->dup_ppm, err);
    case 2:
        return net_fault_parse_pct(key, v, &c->reorder_ppm, err);
    case 3:
        rc = net_fault_parse_u64(key, v, NET_FAULT_DELAY_US_MAX, &x, err);
        c->delay_us = (uint32_t)x;
        return rc;
    case 4:
        return net_fault_parse_u64(key, v, UINT64_MAX, &c->seed, err);
    case 5:
        return net_fault_parse_dir(v, &c->dirs, err);
    default:
        return net_fault_parse_peer(v, &c->peer_ip, err);
    }
}

static int net_fault_key_index(const char *key)
{
    for (int i = 0; i < (int)RTE_DIM(net_fault_keys); i++) {
        if (strcmp(key, net_fault_keys[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int net_fault_parse(const char *spec, struct net_fault_cfg *out, struct ordo_errmsg *err)
{
    char buf[NET_FAULT_SPEC_MAX + 1];
    struct net_fault_cfg c = {.enabled = true, .dirs = NET_FAULT_RX, .seed = 1};
    uint32_t seen = 0;
    if (spec == NULL || spec[0] == '\0' || strcmp(spec, "off") == 0) {
        *out = (struct net_fault_cfg){.dirs = NET_FAULT_RX, .seed = 1};
        return 0;
    }
    if (strlen(spec) > NET_FAULT_SPEC_MAX) {
        ordo_errmsg_set(err, "net fault spec: longer than %u characters", NET_FAULT_SPEC_MAX);
        return ORDO_ECONFIG;
    }
    strcpy(buf, spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok || eq[1] == '\0') {
            ordo_errmsg_set(err, "net fault spec: '%s': want key=value", tok);
            return ORDO_ECONFIG;
        }
        *eq = '\0';
        int k = net_fault_key_index(tok);
        if (k < 0) {
            ordo_errmsg_set(err,
                            "net fault spec: unknown key '%s' (drop, dup, reorder, delay_us, "
                            "seed, dir, peer)",
                            tok);
            return ORDO_ECONFIG;
        }
        if ((seen & (1u << k)) != 0) {
            ordo_errmsg_set(err, "net fault spec: key '%s' given twice", tok);
            return ORDO_ECONFIG;
        }
        seen |= 1u << k;
        int rc = net_fault_parse_kv(k, eq + 1, &c, err);
        if (rc != 0) {
            return rc;
        }
    }
    *out = c;
    return 0;
}

int net_fault_format(const struct net_fault_cfg *c, char *buf, uint32_t len)
{
    char ip[INET_ADDRSTRLEN] = "all";
    if (!c->enabled) {
        return snprintf(buf, len, "off");
    }
    if (c->peer_ip != 0) {
        struct in_addr a = {.s_addr = c->peer_ip};
        inet_ntop(AF_INET, &a, ip, sizeof(ip));
    }
    const char *dir = c->dirs == NET_FAULT_RX ? "rx" : c->dirs == NET_FAULT_TX ? "tx" : "both";
    return snprintf(
        buf, len,
        "drop=%u.%04u,dup=%u.%04u,reorder=%u.%04u,delay_us=%u,seed=%" PRIu64 ",dir=%s,peer=%s",
        c->drop_ppm / 10000u, c->drop_ppm % 10000u, c->dup_ppm / 10000u, c->dup_ppm % 10000u,
        c->reorder_ppm / 10000u, c->reorder_ppm % 10000u, c->delay_us, c->seed, dir, ip);
}

/* ---- config publication ---- */

int net_fault_set(const struct net_fault_cfg *cfg, struct ordo_errmsg *err)
{
    if (cfg->drop_ppm > NET_FAULT_PPM || cfg->dup_ppm > NET_FAULT_PPM ||
        cfg->reorder_ppm > NET_FAULT_PPM) {
        ordo_errmsg_set(err, "net fault: a rate is above 100 %%");
        return ORDO_ECONFIG;
    }
    if (cfg->delay_us > NET_FAULT_DELAY_US_MAX) {
        ordo_errmsg_set(err, "net fault: delay_us %u above %u", cfg->delay_us,
                        NET_FAULT_DELAY_US_MAX);
        return ORDO_ECONFIG;
    }
    if (cfg->enabled && (cfg->dirs & (NET_FAULT_RX | NET_FAULT_TX)) == 0) {
        ordo_errmsg_set(err, "net fault: no direction (rx, tx or both)");
        return ORDO_ECONFIG;
    }
    /* Single writer (control plane); readers retry while the sequence is odd or moved. */
    uint32_t s = __atomic_load_n(&net_fault_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&net_fault_seq, s + 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(&net_fault_cur, cfg, sizeof(*cfg));
    __atomic_store_n(&net_fault_seq, s + 2u, __ATOMIC_RELEASE);
    if (cfg->enabled) {
        __atomic_store_n(&net_fault_armed, true, __ATOMIC_RELEASE);
    }
    return 0;
}

static uint32_t net_fault_read(struct net_fault_cfg *out)
{
    for (;;) {
        uint32_t s1 = __atomic_load_n(&net_fault_seq, __ATOMIC_ACQUIRE);
        if ((s1 & 1u) == 0) {
            memcpy(out, &net_fault_cur, sizeof(*out));
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&net_fault_seq, __ATOMIC_RELAXED) == s1) {
                return s1;
            }
        }
        rte_pause();
    }
}

void net_fault_get(struct net_fault_cfg *out)
{
    (void)net_fault_read(out);
}

void net_fault_reset(void)
{
    for (unsigned d = 0; d < 2u; d++) {
        for (unsigned q = 0; q < NET_FAULT_QUEUES_MAX; q++) {
            struct net_fault_q *fq = &net_fault_qs[d][q];
            for (uint32_t i = 0; i < fq->count; i++) {
                rte_pktmbuf_free(fq->ent[(fq->head + i) & (NET_FAULT_HOLD_MAX - 1u)].m);
            }
            rte_pktmbuf_free(fq->held);
            memset(fq, 0, sizeof(*fq));
        }
    }
    memset(&net_fault_cur, 0, sizeof(net_fault_cur));
    __atomic_store_n(&net_fault_seq, 0u, __ATOMIC_RELAXED);
    __atomic_store_n(&net_fault_armed, false, __ATOMIC_RELEASE);
}

/* ---- data path ---- */

/* splitmix64: small, fast, and good enough for fault rolls; one stream per queue. */
static inline uint64_t net_fault_next(struct net_fault_q *fq)
{
    uint64_t z = (fq->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline bool net_fault_roll(struct net_fault_q *fq, uint32_t ppm)
{
    /* Always draw, so one frame consumes the same randomness whatever the rates. */
    uint64_t r = net_fault_next(fq) % NET_FAULT_PPM;
    return r < ppm;
}

/* Refreshes the view when the config changed and reseeds the queue's stream. */
static void net_fault_view_get(struct net_fault_q *fq, unsigned d, uint16_t q,
                               struct net_fault_view *v)
{
    struct net_fault_cfg c;
    uint32_t gen = net_fault_read(&c);
    v->enabled = c.enabled && (c.dirs & (d == 0 ? NET_FAULT_RX : NET_FAULT_TX)) != 0;
    v->drop_ppm = c.drop_ppm;
    v->dup_ppm = c.dup_ppm;
    v->reorder_ppm = c.reorder_ppm;
    v->delay_cycles = (uint64_t)c.delay_us * rte_get_tsc_hz() / 1000000u;
    v->peer_ip = c.peer_ip;
    if (fq->gen != gen + 1u) {
        fq->gen = gen + 1u;
        fq->rng = c.seed ^ ((uint64_t)(d * NET_FAULT_QUEUES_MAX + q) << 56);
    }
}

static bool net_fault_match(const struct rte_mbuf *m, uint32_t peer_ip, unsigned d)
{
    if (peer_ip == 0) {
        return true;
    }
    if (rte_pktmbuf_data_len(m) < NET_FAULT_IP_DST_OFF + 4u) {
        return false;
    }
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    if (p[12] != 0x08 || p[13] != 0x00) {
        return false;
    }
    uint32_t ip;
    memcpy(&ip, p + (d == 0 ? NET_FAULT_IP_SRC_OFF : NET_FAULT_IP_DST_OFF), sizeof(ip));
    return ip == peer_ip;
}

static void net_fault_push(struct net_fault_q *fq, struct rte_mbuf *m, uint64_t due)
{
    if (fq->count == NET_FAULT_HOLD_MAX) {
        rte_pktmbuf_free(m);
        net_stats_inc(NET_CTR_FAULT_OVERFLOW);
        return;
    }
    struct net_fault_ent *e = &fq->ent[(fq->head + fq->count) & (NET_FAULT_HOLD_MAX - 1u)];
    e->m = m;
    e->due = due;
    fq->count++;
}

/* A frame held for reordering leaves right after its successor (not before it). */
static void net_fault_release_held(struct net_fault_q *fq, uint64_t after)
{
    if (fq->held != NULL) {
        net_fault_push(fq, fq->held, RTE_MAX(fq->held_due, after));
        fq->held = NULL;
    }
}

/* Applies the faults to one frame; what survives goes to the hold queue. */
static void net_fault_one(struct net_fault_q *fq, const struct net_fault_view *v, unsigned d,
                          struct rte_mbuf *m, uint64_t now)
{
    if (!v->enabled || !net_fault_match(m, v->peer_ip, d)) {
        net_fault_push(fq, m, now);
        net_fault_release_held(fq, now);
        return;
    }
    bool drop = net_fault_roll(fq, v->drop_ppm);
    bool dup = net_fault_roll(fq, v->dup_ppm);
    bool reorder = net_fault_roll(fq, v->reorder_ppm);
    if (drop) {
        rte_pktmbuf_free(m);
        net_stats_inc(NET_CTR_FAULT_DROPS);
        return;
    }
    uint64_t due = now + v->delay_cycles;
    if (v->delay_cycles != 0) {
        net_stats_inc(NET_CTR_FAULT_DELAYED);
    }
    struct rte_mbuf *copy = dup ? rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX) : NULL;
    if (reorder && fq->held == NULL) {
        fq->held = m;
        fq->held_due = due;
        fq->held_since = now;
        net_stats_inc(NET_CTR_FAULT_REORDERS);
    } else {
        net_fault_push(fq, m, due);
        net_fault_release_held(fq, due);
    }
    if (copy != NULL) {
        net_fault_push(fq, copy, due);
        net_stats_inc(NET_CTR_FAULT_DUPS);
    }
}

/* Moves due frames (oldest first) to out; a reordered frame with no successor leaves after
 * NET_FAULT_REORDER_WAIT_US so a quiet link does not keep it forever. */
static uint16_t net_fault_pop(struct net_fault_q *fq, struct rte_mbuf **out, uint16_t cap,
                              uint64_t now)
{
    if (fq->held != NULL &&
        now - fq->held_since > NET_FAULT_REORDER_WAIT_US * rte_get_tsc_hz() / 1000000u) {
        net_fault_push(fq, fq->held, fq->held_due);
        fq->held = NULL;
    }
    uint16_t k = 0;
    while (k < cap && fq->count != 0) {
        struct net_fault_ent *e = &fq->ent[fq->head];
        if (e->due > now) {
            break;
        }
        out[k++] = e->m;
        fq->head = (fq->head + 1u) & (NET_FAULT_HOLD_MAX - 1u);
        fq->count--;
    }
    return k;
}

uint16_t net_fault_rx(uint16_t q, struct rte_mbuf **m, uint16_t got, uint16_t n)
{
    ORDO_ASSERT(q < NET_FAULT_QUEUES_MAX);
    struct net_fault_q *fq = &net_fault_qs[0][q];
    struct net_fault_view v;
    uint64_t now = rte_rdtsc();
    net_fault_view_get(fq, 0, q, &v);
    for (uint16_t i = 0; i < got; i++) {
        net_fault_one(fq, &v, 0, m[i], now);
    }
    return net_fault_pop(fq, m, n, now);
}

void net_fault_tx_take(uint16_t q, struct rte_mbuf **m, uint16_t n)
{
    ORDO_ASSERT(q < NET_FAULT_QUEUES_MAX);
    struct net_fault_q *fq = &net_fault_qs[1][q];
    struct net_fault_view v;
    uint64_t now = rte_rdtsc();
    net_fault_view_get(fq, 1, q, &v);
    for (uint16_t i = 0; i < n; i++) {
        net_fault_one(fq, &v, 1, m[i], now);
    }
}

uint16_t net_fault_tx_due(uint16_t q, struct rte_mbuf **out, uint16_t cap)
{
    ORDO_ASSERT(q < NET_FAULT_QUEUES_MAX);
    return net_fault_pop(&net_fault_qs[1][q], out, cap, rte_rdtsc());
}

/* ---- telemetry: /ordo/net_fault[,SPEC] shows the config and counters, or sets SPEC ---- */

static int net_fault_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
    struct net_fault_cfg c;
    struct ordo_errmsg e = {{0}};
    char spec[NET_FAULT_SPEC_MAX];
    (void)cmd;
    rte_tel_data_start_dict(d);
    if (params != NULL && params[0] != '\0') {
        if (net_fault_parse(params, &c, &e) != 0 || net_fault_set(&c, &e) != 0) {
            rte_tel_data_add_dict_string(d, "error", e.text);
            return 0;
        }
    }
    net_fault_get(&c);
    (void)net_fault_format(&c, spec, sizeof(spec));
    rte_tel_data_add_dict_string(d, "spec", spec);
    for (int k = NET_CTR_FAULT_DROPS; k <= NET_CTR_FAULT_OVERFLOW; k++) {
        rte_tel_data_add_dict_u64(d, net_stats_name((enum net_ctr)k),
                                  net_stats_get((enum net_ctr)k));
    }
    return 0;
}

int net_fault_telemetry_register(void)
{
    return rte_telemetry_register_cmd("/ordo/net_fault", net_fault_cmd,
                                      "Network fault injector: config and counters. Parameter: "
                                      "a spec to install (drop=5,dup=1,...) or off");
}
