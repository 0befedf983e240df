/* ordo-load: a DPDK key-value load generator on its own port (veth via af_xdp/af_packet, or a
 * NIC). Closed loop (N outstanding) or open loop (fixed rate, latency from the intended send
 * time so coordinated omission stays visible); follows redirects; log-linear histograms.
 * Each slot is one client session, registered before the measured run starts. With
 * --coalesce N the requests ready in one loop round leave up to N per frame (multi-request,
 * docs/protocol.md 3.13); --readback reads every acknowledged write back after the run. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "apps/load_ids.h"
#include "drivers/net/net.h"
#include "drivers/net/net_local.h"
#include "engine/err.h"
#include "engine/frame.h"
#include "engine/msg.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

#define LOAD_SLOTS_MAX 4096u
#define LOAD_BURST 32u
#define LOAD_FRAME_MAX 1514u
#define LOAD_EAL_ARGS_MAX 64
#define LOAD_ARP_WAIT_S 5u
#define LOAD_ERR_SHOWN 5u
#define LOAD_CATCHUP_S 1u           /* open loop: how long past --duration late requests still go */
#define LOAD_READBACK_MAX 10000000u /* keys "k%08u" (the default --key-size) */
/* Log-linear histogram: 2^LOAD_H_SUB sub-buckets per power of two (<= 3 % error). */
#define LOAD_H_SUB 5u
#define LOAD_H_BUCKETS ((64u - LOAD_H_SUB + 1u) << LOAD_H_SUB)

enum load_exit {
    LOAD_EXIT_OK = 0,
    LOAD_EXIT_FAILED = 1, /* some request failed or went unanswered */
    LOAD_EXIT_USAGE = 2,
    LOAD_EXIT_SETUP = 3, /* EAL, port or ARP resolution failed */
};

struct load_hist {
    uint64_t n;
    uint64_t max;
    uint64_t b[LOAD_H_BUCKETS];
};

struct load_opts {
    uint32_t server_ip; /* network byte order */
    uint16_t server_port;
    uint32_t my_ip;
    uint16_t my_port;
    const char *port_name;
    uint32_t cluster_id;
    uint64_t client_base;
    uint32_t outstanding;
    double rate; /* requests per second; 0: closed loop */
    uint64_t requests;
    double duration_s;
    double read_ratio;
    uint32_t keys;
    uint32_t key_size; /* bytes: 'k' and the key number, zero-padded */
    uint32_t value_size;
    uint64_t seed;
    uint32_t timeout_ms;
    uint32_t retries;
    int quiet;
    int spin;          /* busy-poll when idle instead of backing off */
    uint32_t coalesce; /* requests per frame at most (1: one per frame, the default) */
    int readback;      /* unique key per PUT, all read back after the run */
    const char *csv_path;
    const char *json_path;
};

struct load_slot {
    uint64_t client_id; /* the slot's session (dissertation 6.3); 0 while registering */
    uint64_t request_no;
    uint64_t intended_tsc; /* latency origin: the scheduled (open) or first send time */
    uint64_t deadline_tsc;
    uint32_t tries;
    uint16_t len;
    uint8_t busy;
    uint8_t registering;         /* the request in flight is its registration */
    uint32_t key_no;             /* --readback: the key of the request in flight */
    uint8_t buf[LOAD_FRAME_MAX]; /* the encoded request, resent as is on retries */
};

struct load_stats {
    uint64_t issued;
    uint64_t ok;
    uint64_t errors;
    uint64_t not_found;
    uint64_t retries;
    uint64_t timeouts; /* requests abandoned after every retry */
    uint64_t redirects;
    uint64_t busy;
    uint64_t stale;
    uint64_t ignored;
    uint64_t registered;    /* sessions opened: one per slot, more after a lost one */
    uint64_t sessions_lost; /* SESSION_EXPIRED: that request failed; the slot registers again */
    uint64_t frames_tx;     /* request frames sent (single or multi) */
    uint64_t multi_rx;      /* multi-reply frames received */
};

#define LOAD_WAIT_FDS 4

struct load {
    struct load_opts o;
    struct net_port port;
    int wait_fds[LOAD_WAIT_FDS]; /* the port's sockets (net_port_wait_fds), wait_n of them */
    uint32_t wait_n;
    struct net_local local;
    struct rte_ether_addr server_mac;
    struct load_slot *slots;
    uint32_t *free_slots;
    uint32_t n_free;
    struct load_ids ids; /* session id -> slot */
    int fatal;           /* a registration was refused or went unanswered */
    uint64_t hz;
    uint64_t t0;
    uint64_t stop_tsc;  /* no new requests from here on */
    uint64_t next_send; /* open loop: intended time of the next request */
    uint64_t next_progress;
    uint64_t progress_ok;
    uint64_t rng;
    uint64_t end_tsc;
    uint32_t errors_shown;
    uint32_t retries_shown;
    uint32_t *pend; /* --coalesce: slots whose request leaves at the end of this round */
    uint32_t npend;
    uint32_t pend_cap;
    uint64_t *rb_value; /* --readback: per key, the request number its acknowledged PUT wrote */
    uint8_t *rb_acked;
    int rb_phase;     /* the run is over: requests are the read-back GETs */
    uint32_t rb_next; /* next key to read back */
    uint32_t rb_n;    /* keys written (the run's --requests) */
    uint64_t rb_ok;   /* read back with the acknowledged value */
    uint64_t rb_failed;
    struct load_stats st;
    struct load_hist all;
    struct load_hist sec;
    FILE *csv;
    uint8_t args[SM_KV_ARGS_MAX];
    uint8_t value[SM_KV_VALUE_MAX];
};

static volatile sig_atomic_t load_stop_flag;

static void load_on_signal(int sig)
{
    (void)sig;
    load_stop_flag = 1;
}

/* ---- histogram ---- */

static uint32_t load_h_index(uint64_t v)
{
    if (v < (1u << LOAD_H_SUB)) {
        return (uint32_t)v;
    }
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t sub = (uint32_t)(v >> (e - LOAD_H_SUB)) & ((1u << LOAD_H_SUB) - 1u);
    return ((e - LOAD_H_SUB + 1u) << LOAD_H_SUB) + sub;
}

/* Middle of bucket i (its values all lie within 1/2^LOAD_H_SUB of it). */
static double load_h_value(uint32_t i)
{
    if (i < (1u << LOAD_H_SUB)) {
        return (double)i;
    }
    uint32_t e = (i >> LOAD_H_SUB) + LOAD_H_SUB - 1u;
    uint64_t sub = i & ((1u << LOAD_H_SUB) - 1u);
    uint64_t lo = (1ull << e) + (sub << (e - LOAD_H_SUB));
    return (double)lo + (double)(1ull << (e - LOAD_H_SUB)) / 2.0;
}

static void load_h_add(struct load_hist *h, uint64_t v)
{
    h->b[load_h_index(v)]++;
    h->n++;
    if (v > h->max) {
        h->max = v;
    }
}

/* The value at quantile q (0..1); the maximum is exact. */
static double load_h_quantile(const struct load_hist *h, double q)
{
    if (h->n == 0) {
        return 0.0;
    }
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    rank = rank == 0 ? 1 : rank;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LOAD_H_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = load_h_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* ---- requests and frames ---- */

static uint64_t load_rand(struct load *l)
{
    /* xorshift64*: the key and operation mix only need to be cheap and seedable. */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 0x2545f4914f6cdd1dull;
}

static double load_ns(const struct load *l, uint64_t cycles)
{
    return (double)cycles * 1e9 / (double)l->hz;
}

/* The key of slot s's next request, and whether it is a GET: random (the mix of --keys and
 * --read-ratio); with --readback a fresh key per PUT, then after the run each acknowledged
 * key once more as a GET. */
static uint32_t load_pick(struct load *l, struct load_slot *s, int *get)
{
    uint32_t k;
    if (l->rb_phase) {
        while (l->rb_next < l->rb_n && !l->rb_acked[l->rb_next]) {
            l->rb_next++;
        }
        k = l->rb_next < l->rb_n ? l->rb_next++ : 0; /* issued once per acknowledged key */
        *get = 1;
    } else if (l->o.readback) {
        k = (uint32_t)l->st.issued;
        l->rb_value[k] = s->request_no;
        *get = 0;
    } else {
        k = (uint32_t)(load_rand(l) % l->o.keys);
        *get = (double)(load_rand(l) >> 11) * 0x1.0p-53 < l->o.read_ratio;
    }
    s->key_no = k;
    return k;
}

/* Encodes slot i's next request (a fresh request number) as a complete frame. */
static int load_prepare(struct load *l, uint32_t i)
{
    struct load_slot *s = &l->slots[i];
    char key[32];
    int get;
    uint32_t k = load_pick(l, s, &get);
    int key_len = snprintf(key, sizeof(key), "k%0*" PRIu32, (int)l->o.key_size - 1, k);
    int args_len;
    uint8_t op;
    if (get) {
        op = SM_KV_OP_GET;
        args_len = sm_kv_encode_get(l->args, sizeof(l->args), key, (size_t)key_len);
    } else {
        op = SM_KV_OP_PUT;
        memcpy(l->value, &s->request_no,
               sizeof(s->request_no) < l->o.value_size ? sizeof(s->request_no) : l->o.value_size);
        args_len = sm_kv_encode_put(l->args, sizeof(l->args), key, (size_t)key_len, l->value,
                                    l->o.value_size);
    }
    if (args_len < 0) {
        return args_len;
    }
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = l->o.cluster_id;
    m.hdr.sender = MSG_NODE_NONE;
    m.u.request.client_id = s->client_id;
    m.u.request.request_no = ++s->request_no;
    m.u.request.op = op;
    m.u.request.args_len = (uint32_t)args_len;
    m.u.request.args = l->args;
    int len = wire_encode(&m, NULL, s->buf + FRAME_UDP_PAYLOAD_OFF,
                          sizeof(s->buf) - FRAME_UDP_PAYLOAD_OFF);
    if (len < 0) {
        return len;
    }
    s->len = (uint16_t)len;
    return 0;
}

static void load_server_addr(const struct load *l, struct frame_udp_addr *a)
{
    memcpy(a->src_mac, l->port.mac.addr_bytes, FRAME_MAC_LEN);
    memcpy(a->dst_mac, l->server_mac.addr_bytes, FRAME_MAC_LEN);
    a->src_ip = l->o.my_ip;
    a->dst_ip = l->o.server_ip;
    a->src_port = l->o.my_port;
    a->dst_port = l->o.server_port;
}

/* Queues frame m in tx; sends the burst when full. */
static void load_tx_add(struct load *l, struct rte_mbuf *m, struct rte_mbuf **tx, uint16_t *ntx)
{
    l->st.frames_tx++;
    tx[(*ntx)++] = m;
    if (*ntx == LOAD_BURST) {
        (void)net_tx(&l->port, 0, tx, *ntx);
        *ntx = 0;
    }
}

/* Builds slot i's frame toward the current server (a redirect may have changed it) and
 * queues it in tx. */
static void load_send_one(struct load *l, uint32_t i, struct rte_mbuf **tx, uint16_t *ntx)
{
    struct load_slot *s = &l->slots[i];
    struct frame_udp_addr a;
    load_server_addr(l, &a);
    struct rte_mbuf *m = rte_pktmbuf_alloc(l->port.pool);
    if (m == NULL) {
        return; /* pool exhausted: the timeout resends it */
    }
    size_t flen = FRAME_UDP_PAYLOAD_OFF + s->len;
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)flen);
    if (p == NULL || frame_build_udp(p, flen, &a, s->buf + FRAME_UDP_PAYLOAD_OFF, s->len, 0) < 0) {
        rte_pktmbuf_free(m);
        return;
    }
    load_tx_add(l, m, tx, ntx);
}

/* Sends slot i's request: at once, or with --coalesce at the end of the round (load_flush),
 * packed with the other requests ready by then. */
static void load_send(struct load *l, uint32_t i, struct rte_mbuf **tx, uint16_t *ntx)
{
    if (l->o.coalesce <= 1) {
        load_send_one(l, i, tx, ntx);
        return;
    }
    if (l->npend == l->pend_cap) {
        load_send_one(l, i, tx, ntx); /* a slot queued twice in one round: rare */
        return;
    }
    l->pend[l->npend++] = i;
}

/* Packs pend[*at..] into one multi-request frame (at most --coalesce requests, one standard
 * Ethernet frame) and advances *at past them. Returns the frame, or NULL (no mbuf: those
 * requests are resent at their timeout). */
static struct rte_mbuf *load_pack(struct load *l, uint32_t *at)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(l->port.pool);
    if (m == NULL) {
        *at = l->npend;
        return NULL;
    }
    uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
    size_t cap = RTE_MIN((size_t)rte_pktmbuf_tailroom(m), (size_t)LOAD_FRAME_MAX);
    struct wire_multi_wr w;
    int rc = wire_multi_start(&w, MSG_CLIENT_MULTI_REQUEST, l->o.cluster_id, MSG_NODE_NONE,
                              buf + FRAME_UDP_PAYLOAD_OFF, cap - FRAME_UDP_PAYLOAD_OFF);
    while (rc == 0 && *at < l->npend && w.n < l->o.coalesce) {
        const struct load_slot *s = &l->slots[l->pend[*at]];
        rc = wire_multi_add(&w, s->buf + FRAME_UDP_PAYLOAD_OFF, s->len);
        *at += rc == 0 ? 1u : 0u;
    }
    int len = wire_multi_finish(&w);
    struct frame_udp_addr a;
    load_server_addr(l, &a);
    if (len > 0) {
        len = frame_build_udp(buf, cap, &a, buf + FRAME_UDP_PAYLOAD_OFF, (size_t)len, 0);
    }
    if (len <= 0) {
        *at += w.n == 0 ? 1u : 0u; /* an item that fits no frame: its timeout reports it */
        rte_pktmbuf_free(m);
        return NULL;
    }
    m->data_len = (uint16_t)len;
    m->pkt_len = (uint32_t)len;
    return m;
}

/* Sends the requests queued this round: a lone one as a plain request, more packed. */
static void load_flush(struct load *l, struct rte_mbuf **tx, uint16_t *ntx)
{
    uint32_t at = 0;
    while (at < l->npend) {
        const struct load_slot *s = &l->slots[l->pend[at]];
        if (at + 1 == l->npend || FRAME_UDP_PAYLOAD_OFF + WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN +
                                          WIRE_MULTI_ITEM_HDR_LEN + s->len >
                                      LOAD_FRAME_MAX) {
            load_send_one(l, l->pend[at++], tx, ntx);
            continue;
        }
        struct rte_mbuf *m = load_pack(l, &at);
        if (m != NULL) {
            load_tx_add(l, m, tx, ntx);
        }
    }
    l->npend = 0;
}

static void load_arm(struct load *l, struct load_slot *s, uint64_t now)
{
    s->deadline_tsc = now + (uint64_t)l->o.timeout_ms * l->hz / 1000u;
}

/* Frees slot i with its outcome; ok adds its latency (from the intended send time). */
static void load_finish(struct load *l, uint32_t i, int ok, uint64_t now)
{
    struct load_slot *s = &l->slots[i];
    if (ok) {
        uint64_t ns = (uint64_t)load_ns(l, now - s->intended_tsc);
        load_h_add(&l->all, ns);
        load_h_add(&l->sec, ns);
        l->st.ok++;
    }
    s->busy = 0;
    l->free_slots[l->n_free++] = i;
}

static void load_error(struct load *l, uint32_t i, const char *what)
{
    l->st.errors++;
    if (l->errors_shown++ < LOAD_ERR_SHOWN) {
        fprintf(stderr, "ordo-load: client %" PRIu64 " request %" PRIu64 ": %s\n",
                l->slots[i].client_id, l->slots[i].request_no, what);
    }
}

/* ---- sessions: each slot registers one; replies find their slot by session id ---- */

/* Indexes the slots' ids again (after a registration; rare). */
static void load_index_ids(struct load *l)
{
    load_ids_rebuild(&l->ids, l->slots, sizeof(*l->slots), offsetof(struct load_slot, client_id));
}

/* The slot an answer for client id `id` belongs to (a registration's is client_base + i,
 * the nonce it was sent with), or UINT32_MAX. */
static uint32_t load_slot_of(const struct load *l, uint64_t id)
{
    uint64_t nonce = id - l->o.client_base;
    if (nonce < l->o.outstanding && l->slots[nonce].registering) {
        return (uint32_t)nonce;
    }
    return load_ids_find(&l->ids, id);
}

/* Sends slot i's registration (MSG_REQ_REGISTER): its client id client_base + i and request
 * number are the nonce the reply echoes; the reply's result is the session id. The slot
 * stays busy (not free) until registered. */
static void load_register(struct load *l, uint32_t i, uint64_t now, struct rte_mbuf **tx,
                          uint16_t *ntx)
{
    struct load_slot *s = &l->slots[i];
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = l->o.cluster_id;
    m.u.request.client_id = l->o.client_base + i;
    m.u.request.request_no = ++s->request_no;
    m.u.request.flags = MSG_REQ_REGISTER;
    int len = wire_encode(&m, NULL, s->buf + FRAME_UDP_PAYLOAD_OFF,
                          sizeof(s->buf) - FRAME_UDP_PAYLOAD_OFF);
    if (len < 0) {
        l->fatal = 1;
        return;
    }
    s->len = (uint16_t)len;
    s->client_id = 0;
    s->registering = 1;
    s->busy = 1;
    s->tries = 0;
    s->deadline_tsc = now + (uint64_t)l->o.timeout_ms * l->hz / 1000u;
    load_send(l, i, tx, ntx);
}

/* The reply to slot i's registration: the slot becomes free with its session. BUSY (or an
 * election) waits for the retry; any other refusal stops the run. */
static void load_on_registered(struct load *l, uint32_t i, const struct msg_client_reply *r)
{
    struct load_slot *s = &l->slots[i];
    if (r->status == MSG_STATUS_BUSY || r->status == MSG_STATUS_NO_QUORUM) {
        return;
    }
    if (r->status != MSG_STATUS_OK || r->result_len != 8) {
        fprintf(stderr, "ordo-load: registration refused (status %u)\n", (unsigned)r->status);
        l->fatal = 1;
        return;
    }
    uint64_t id = 0;
    for (uint32_t k = 0; k < 8; k++) {
        id |= (uint64_t)r->result[k] << (8 * k);
    }
    s->client_id = id;
    s->registering = 0;
    s->busy = 0;
    l->free_slots[l->n_free++] = i;
    l->st.registered++;
    load_index_ids(l);
}

static const char *load_status_str(uint8_t status)
{
    static const char *const names[] = {
        "ok",   "not found", "cas mismatch", "invalid arguments", "session expired",
        "busy", "too large", "unauthorized", "no quorum",         "stopped",
    };
    return status < RTE_DIM(names) ? names[status] : "unknown status";
}

/* --readback: an acknowledged PUT marks its key; a read-back GET must return exactly the
 * value that PUT wrote (load_prepare: its request number, then zero bytes). */
static void load_readback_note(struct load *l, const struct load_slot *s,
                               const struct msg_client_reply *r)
{
    if (!l->rb_phase) {
        if (r->status == MSG_STATUS_OK && s->key_no < l->rb_n) {
            l->rb_acked[s->key_no] = 1;
        }
        return;
    }
    if (r->status != MSG_STATUS_OK && r->status != MSG_STATUS_NOT_FOUND) {
        return; /* BUSY and the like: retried */
    }
    uint8_t want[SM_KV_VALUE_MAX];
    memset(want, 0, l->o.value_size);
    uint64_t v = l->rb_value[s->key_no];
    memcpy(want, &v, sizeof(v) < l->o.value_size ? sizeof(v) : l->o.value_size);
    bool same = r->status == MSG_STATUS_OK && r->result_len == l->o.value_size &&
                memcmp(r->result, want, l->o.value_size) == 0;
    if (same) {
        l->rb_ok++;
        return;
    }
    l->rb_failed++;
    if (l->rb_failed <= LOAD_ERR_SHOWN) {
        fprintf(stderr, "ordo-load: readback of key %" PRIu32 ": %s\n", s->key_no,
                r->status == MSG_STATUS_OK ? "other value" : "not found");
    }
}

static void load_on_reply(struct load *l, uint32_t i, const struct msg_client_reply *r,
                          uint64_t now, struct rte_mbuf **tx, uint16_t *ntx)
{
    if (l->slots[i].registering) {
        load_on_registered(l, i, r);
        return;
    }
    if (l->o.readback) {
        load_readback_note(l, &l->slots[i], r);
    }
    switch (r->status) {
    case MSG_STATUS_OK:
        load_finish(l, i, 1, now);
        return;
    case MSG_STATUS_NOT_FOUND: /* a GET of a key nobody PUT yet: a valid answer */
        l->st.not_found++;
        load_finish(l, i, 1, now);
        return;
    case MSG_STATUS_BUSY:
    case MSG_STATUS_NO_QUORUM:
        l->st.busy++; /* backpressure or an election: the timeout retries it */
        return;
    case MSG_STATUS_SESSION_EXPIRED:
        /* The session expired or was evicted: this request may or may not have been applied
         * by an earlier attempt (exactly-once is lost for it), so it fails; the slot
         * registers a new session before its next request. */
        l->st.sessions_lost++;
        load_error(l, i, "session expired (outcome unknown); registering again");
        load_register(l, i, now, tx, ntx);
        load_index_ids(l);
        return;
    default:
        load_error(l, i, load_status_str(r->status));
        load_finish(l, i, 0, now);
        return;
    }
}

/* Follows a redirect: the named leader becomes the server for every request from now on, and
 * this one is resent at once (the others when they time out, or right away if they were
 * redirected too). The leader's MAC comes with the redirect, else from ARP. */
static void load_on_redirect(struct load *l, uint32_t i, const struct msg_redirect *r,
                             struct rte_mbuf **tx, uint16_t *ntx)
{
    static const uint8_t zero[6];
    if (r->leader_id == MSG_NODE_NONE || r->leader_ipv4 == 0 || r->leader_port == 0) {
        return; /* no leader known yet: the timeout retries */
    }
    l->st.redirects++;
    if (r->leader_ipv4 != l->o.server_ip || r->leader_port != l->o.server_port) {
        l->o.server_ip = r->leader_ipv4;
        l->o.server_port = r->leader_port;
        if (memcmp(r->leader_mac, zero, sizeof(zero)) != 0) {
            memcpy(l->server_mac.addr_bytes, r->leader_mac, sizeof(zero));
        } else {
            (void)net_local_peer_add(&l->local, r->leader_ipv4, NULL);
        }
    }
    l->st.retries++;
    l->slots[i].tries++;
    load_send(l, i, tx, ntx);
}

/* One answer (a reply or a redirect): finds its slot (by session id) and the current
 * attempt. */
static void load_on_answer(struct load *l, const struct msg *mp, uint64_t now, struct rte_mbuf **tx,
                           uint16_t *ntx)
{
    bool reply = mp->hdr.type == MSG_CLIENT_REPLY;
    uint64_t cid = reply ? mp->u.reply.client_id : mp->u.redirect.client_id;
    uint64_t rno = reply ? mp->u.reply.request_no : mp->u.redirect.request_no;
    uint32_t i = load_slot_of(l, cid);
    if (i >= l->o.outstanding || !l->slots[i].busy || l->slots[i].request_no != rno) {
        l->st.stale++; /* an answer to an attempt already settled (duplicate or late) */
        return;
    }
    if (reply) {
        load_on_reply(l, i, &mp->u.reply, now, tx, ntx);
    } else {
        load_on_redirect(l, i, &mp->u.redirect, tx, ntx);
    }
}

/* One Ordo datagram for us: a reply, a redirect, or a multi-reply holding several. */
static void load_on_datagram(struct load *l, const struct frame_info *fi, uint64_t now,
                             struct rte_mbuf **tx, uint16_t *ntx)
{
    struct msg m;
    if (wire_decode(fi->payload, fi->payload_len, &m, NULL, 0) != 0 ||
        m.hdr.cluster_id != l->o.cluster_id) {
        l->st.ignored++;
        return;
    }
    if (m.hdr.type == MSG_CLIENT_REPLY || m.hdr.type == MSG_REDIRECT) {
        load_on_answer(l, &m, now, tx, ntx);
        return;
    }
    if (m.hdr.type != MSG_CLIENT_MULTI_REPLY) {
        l->st.ignored++;
        return;
    }
    l->st.multi_rx++;
    struct wire_multi_iter it;
    struct msg item;
    const uint8_t *raw;
    size_t raw_len;
    wire_multi_iter_init(&it, &m);
    while (wire_multi_next(&it, &item, &raw, &raw_len) == 1) {
        load_on_answer(l, &item, now, tx, ntx);
    }
}

/* Receives one burst: Ordo replies, ARP (answered and learned), the rest ignored. */
static uint16_t load_receive(struct load *l, uint64_t now, struct rte_mbuf **tx, uint16_t *ntx)
{
    struct rte_mbuf *rx[LOAD_BURST];
    uint16_t n = net_rx(&l->port, 0, rx, LOAD_BURST);
    for (uint16_t k = 0; k < n; k++) {
        struct rte_mbuf *m = rx[k];
        struct frame_info fi;
        int kind = m->nb_segs == 1 ? frame_parse(rte_pktmbuf_mtod(m, const uint8_t *),
                                                 rte_pktmbuf_data_len(m), 0, &fi)
                                   : ORDO_EMALFORMED;
        if (kind == FRAME_KIND_UDP && fi.dst_ip == l->o.my_ip && fi.dst_port == l->o.my_port) {
            load_on_datagram(l, &fi, now, tx, ntx);
        } else if ((kind == FRAME_KIND_ARP || kind == FRAME_KIND_ICMP_ECHO) &&
                   net_local_handle(&l->local, m, &fi) == 1) {
            tx[(*ntx)++] = m; /* answered in place */
            if (*ntx == LOAD_BURST) {
                (void)net_tx(&l->port, 0, tx, *ntx);
                *ntx = 0;
            }
            continue;
        }
        rte_pktmbuf_free(m);
    }
    /* A redirect may name a leader whose MAC only ARP can tell. */
    struct rte_ether_addr mac;
    if (net_local_lookup(&l->local, l->o.server_ip, &mac) == 0) {
        l->server_mac = mac;
    }
    return n;
}

/* Starts new requests: closed loop fills every free slot; open loop sends those whose intended
 * time has come (a late one keeps its intended time: the wait counts in its latency). */
/* Whether new requests may start now. An open loop with a duration sends every request
 * scheduled before its end, late ones too (up to LOAD_CATCHUP_S past it): a generator or
 * replica that stalled near the end (a loaded host) must neither shorten the run nor drop
 * its slowest requests from the latencies. */
static bool load_may_issue(const struct load *l, uint64_t now)
{
    if (load_stop_flag || (l->o.requests != 0 && l->st.issued >= l->o.requests)) {
        return false;
    }
    if (l->o.rate > 0 && l->stop_tsc != UINT64_MAX) {
        return l->next_send < l->stop_tsc && now < l->stop_tsc + LOAD_CATCHUP_S * l->hz;
    }
    return now < l->stop_tsc;
}

static uint32_t load_issue(struct load *l, uint64_t now, struct rte_mbuf **tx, uint16_t *ntx)
{
    uint32_t started = 0;
    while (l->n_free != 0 && load_may_issue(l, now)) {
        uint64_t intended = now;
        if (l->o.rate > 0) {
            if (l->next_send > now) {
                break;
            }
            intended = l->next_send;
            l->next_send =
                l->t0 + (uint64_t)((double)(l->st.issued + 1) * (double)l->hz / l->o.rate);
        }
        uint32_t i = l->free_slots[--l->n_free];
        struct load_slot *s = &l->slots[i];
        if (load_prepare(l, i) != 0) {
            load_error(l, i, "cannot encode the request");
            l->free_slots[l->n_free++] = i;
            l->st.issued++;
            continue;
        }
        s->busy = 1;
        s->tries = 0;
        s->intended_tsc = intended;
        load_arm(l, s, now);
        l->st.issued++;
        load_send(l, i, tx, ntx);
        started++;
    }
    return started;
}

/* Names the first timed-out attempts (which request, when), so a stall can be matched with
 * the replicas' counters and a capture. */
static void load_retry_note(struct load *l, uint32_t i, uint64_t now)
{
    const struct load_slot *s = &l->slots[i];
    if (l->retries_shown++ < LOAD_ERR_SHOWN) {
        fprintf(stderr,
                "ordo-load: t=%.3fs client %" PRIu64 " request %" PRIu64 " no answer in %" PRIu32
                " ms, resending (try %" PRIu32 ", %" PRIu32 " in flight)\n",
                (double)(now - l->t0) / (double)l->hz, s->client_id, s->request_no, l->o.timeout_ms,
                s->tries, l->o.outstanding - l->n_free);
    }
}

/* Resends requests past their deadline with the same request number (the replica's session
 * table answers a duplicate from its saved reply); gives up after --retries. */
static void load_expire(struct load *l, uint64_t now, struct rte_mbuf **tx, uint16_t *ntx)
{
    for (uint32_t i = 0; i < l->o.outstanding; i++) {
        struct load_slot *s = &l->slots[i];
        if (!s->busy || now < s->deadline_tsc) {
            continue;
        }
        if (s->tries >= l->o.retries && s->registering) {
            fprintf(stderr, "ordo-load: registration of slot %" PRIu32 ": no reply\n", i);
            l->fatal = 1;
            return;
        }
        if (s->tries >= l->o.retries) {
            l->st.timeouts++;
            load_error(l, i, "no reply after every retry");
            load_finish(l, i, 0, now);
            continue;
        }
        s->tries++;
        l->st.retries++;
        load_retry_note(l, i, now);
        load_arm(l, s, now);
        load_send(l, i, tx, ntx);
    }
}

static void load_progress(struct load *l, uint64_t now)
{
    double t = (double)(now - l->t0) / (double)l->hz;
    uint64_t ops = l->st.ok - l->progress_ok;
    double p50 = load_h_quantile(&l->sec, 0.50) / 1e3;
    double p99 = load_h_quantile(&l->sec, 0.99) / 1e3;
    if (!l->o.quiet) {
        printf("ordo-load: t=%.0fs ops/s=%" PRIu64 " p50_us=%.1f p99_us=%.1f errors=%" PRIu64
               " retries=%" PRIu64 "\n",
               t, ops, p50, p99, l->st.errors, l->st.retries);
        fflush(stdout);
    }
    if (l->csv != NULL) {
        fprintf(l->csv, "%.0f,%" PRIu64 ",%.1f,%.1f,%" PRIu64 ",%" PRIu64 "\n", t, ops, p50, p99,
                l->st.errors, l->st.retries);
    }
    l->progress_ok = l->st.ok;
    memset(&l->sec, 0, sizeof(l->sec));
    l->next_progress += l->hz;
}

static uint32_t load_in_flight(const struct load *l)
{
    return l->o.outstanding - l->n_free;
}

/* The main loop: issue, receive, expire, progress; back off briefly when idle so the replica
 * sharing the cores keeps its share. Ends when nothing more is to be issued and all settled. */
/* The main loops' pause when idle: a sleep that a frame on the port's sockets ends at once
 * (net_af_packet, net_af_xdp), so replies are taken when they arrive and the client does not
 * wake every few microseconds on cores it shares with the replicas. 100 us bounds it in a
 * closed loop (retry timers are 100 us apart anyway); an open loop keeps 5 us for its send
 * schedule, as does a PMD without sockets. */
static void load_idle(const struct load *l)
{
    if (l->wait_n == 0) {
        rte_delay_us_sleep(5);
        return;
    }
    struct pollfd p[LOAD_WAIT_FDS];
    for (uint32_t i = 0; i < l->wait_n; i++) {
        p[i].fd = l->wait_fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    struct timespec ts = {.tv_sec = 0, .tv_nsec = l->o.rate > 0 ? 5000 : 100000};
    (void)ppoll(p, l->wait_n, &ts, NULL);
}

static void load_run(struct load *l)
{
    struct rte_mbuf *tx[LOAD_BURST];
    uint16_t ntx = 0;
    uint32_t idle = 0;
    uint64_t next_expire = 0;
    uint64_t next_arp = 0;
    for (;;) {
        uint64_t now = rte_rdtsc();
        uint32_t work = load_issue(l, now, tx, &ntx);
        work += load_receive(l, now, tx, &ntx);
        if (now >= next_expire) {
            load_expire(l, now, tx, &ntx);
            next_expire = now + l->hz / 10000u; /* every 100 us */
        }
        load_flush(l, tx, &ntx);
        if (now >= next_arp) {
            ntx = (uint16_t)(ntx + net_local_arp_poll(&l->local, l->port.pool, now, l->hz / 5,
                                                      tx + ntx, (uint16_t)(LOAD_BURST - ntx)));
            next_arp = now + l->hz / 10u;
        }
        (void)net_tx(&l->port, 0, tx, ntx); /* ntx == 0 still flushes held fault frames */
        ntx = 0;
        if (now >= l->next_progress) {
            load_progress(l, now);
        }
        bool issuing = load_may_issue(l, now);
        if ((!issuing && load_in_flight(l) == 0) || l->fatal) {
            l->end_tsc = now;
            return;
        }
        idle = work != 0 ? 0 : idle + 1;
        if (!l->o.spin && idle > 256) {
            load_idle(l);
        }
    }
}

/* Registers every slot's session before the measured run (so neither the rate schedule nor
 * the latencies see it), bounded by the retries. Returns 0 or -ETIMEDOUT / -EPROTO. */
static int load_register_all(struct load *l)
{
    struct rte_mbuf *tx[LOAD_BURST];
    uint16_t ntx = 0;
    uint64_t next_expire = 0;
    uint32_t idle = 0;
    uint64_t now = rte_rdtsc();
    for (uint32_t i = 0; i < l->o.outstanding; i++) {
        load_register(l, i, now, tx, &ntx);
    }
    while (l->n_free < l->o.outstanding && !l->fatal && !load_stop_flag) {
        now = rte_rdtsc();
        uint32_t work = load_receive(l, now, tx, &ntx);
        if (now >= next_expire) {
            load_expire(l, now, tx, &ntx);
            next_expire = now + l->hz / 1000u;
        }
        load_flush(l, tx, &ntx);
        (void)net_tx(&l->port, 0, tx, ntx);
        ntx = 0;
        idle = work != 0 ? 0 : idle + 1;
        if (!l->o.spin && idle > 256) {
            load_idle(l);
        }
    }
    load_flush(l, tx, &ntx);
    (void)net_tx(&l->port, 0, tx, ntx);
    if (l->n_free < l->o.outstanding) {
        return l->fatal ? -EPROTO : -ETIMEDOUT;
    }
    l->st.retries = 0; /* count the run's retries only */
    return 0;
}

/* After the run: every acknowledged PUT's key is read back (closed loop, same slots and
 * retries) and must hold the value written. Prints one line; returns 0 when all did. */
static int load_readback(struct load *l)
{
    uint64_t acked = 0;
    for (uint32_t k = 0; k < l->rb_n; k++) {
        acked += l->rb_acked[k];
    }
    uint64_t errors = l->st.errors;
    if (acked != 0 && !l->fatal && !load_stop_flag) {
        l->rb_phase = 1;
        l->o.requests = acked;
        l->o.rate = 0;
        l->st.issued = 0;
        l->stop_tsc = UINT64_MAX;
        load_run(l);
    }
    uint64_t unanswered = acked - l->rb_ok - l->rb_failed;
    printf("ordo-load: readback keys=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64
           " unanswered=%" PRIu64 " errors=%" PRIu64 "\n",
           acked, l->rb_ok, l->rb_failed, unanswered, l->st.errors - errors);
    return l->rb_failed == 0 && unanswered == 0 && l->st.errors == errors ? 0 : -EIO;
}

/* ---- summary ---- */

static void load_summary(struct load *l)
{
    double secs = (double)(l->end_tsc - l->t0) / (double)l->hz;
    double tput = secs > 0 ? (double)l->st.ok / secs : 0.0;
    const struct load_hist *h = &l->all;
    double q[5] = {load_h_quantile(h, 0.50) / 1e3, load_h_quantile(h, 0.90) / 1e3,
                   load_h_quantile(h, 0.99) / 1e3, load_h_quantile(h, 0.999) / 1e3,
                   (double)h->max / 1e3};
    /* The client's own losses: frames its TX queue refused, frames its socket's RX ring had
     * no room for (replies the replicas sent and the kernel dropped here). */
    uint64_t tx_drops = net_stats_get(NET_CTR_TX_DROPS);
    struct net_sock_stats k = {0};
    (void)net_port_sock_stats(l->port.port_id, &k);
    printf("ordo-load: summary mode=%s outstanding=%" PRIu32 " rate=%.0f requests=%" PRIu64
           " ok=%" PRIu64 " errors=%" PRIu64 " timeouts=%" PRIu64 " retries=%" PRIu64
           " redirects=%" PRIu64 " busy=%" PRIu64 " not_found=%" PRIu64 " stale=%" PRIu64
           " ignored=%" PRIu64 " duration_s=%.3f throughput=%.0f p50_us=%.1f p90_us=%.1f"
           " p99_us=%.1f p999_us=%.1f max_us=%.1f registered=%" PRIu64 " sessions_lost=%" PRIu64
           " coalesce=%" PRIu32 " frames=%" PRIu64 " multi_replies=%" PRIu64 " tx_drops=%" PRIu64
           " sock_drops=%" PRIu64 "\n",
           l->o.rate > 0 ? "open" : "closed", l->o.outstanding, l->o.rate, l->st.issued, l->st.ok,
           l->st.errors, l->st.timeouts, l->st.retries, l->st.redirects, l->st.busy,
           l->st.not_found, l->st.stale, l->st.ignored, secs, tput, q[0], q[1], q[2], q[3], q[4],
           l->st.registered, l->st.sessions_lost, l->o.coalesce, l->st.frames_tx, l->st.multi_rx,
           tx_drops, k.drops);
    if (l->o.json_path == NULL) {
        return;
    }
    FILE *f = fopen(l->o.json_path, "w");
    if (f == NULL) {
        fprintf(stderr, "ordo-load: cannot write %s: %s\n", l->o.json_path, strerror(errno));
        return;
    }
    fprintf(f,
            "{\"mode\":\"%s\",\"outstanding\":%" PRIu32 ",\"rate\":%.0f,\"requests\":%" PRIu64
            ",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64
            ",\"retries\":%" PRIu64 ",\"redirects\":%" PRIu64 ",\"duration_s\":%.3f"
            ",\"throughput\":%.0f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f"
            ",\"p999_us\":%.1f,\"max_us\":%.1f,\"tx_drops\":%" PRIu64 ",\"sock_drops\":%" PRIu64
            "}\n",
            l->o.rate > 0 ? "open" : "closed", l->o.outstanding, l->o.rate, l->st.issued, l->st.ok,
            l->st.errors, l->st.timeouts, l->st.retries, l->st.redirects, secs, tput, q[0], q[1],
            q[2], q[3], q[4], tx_drops, k.drops);
    fclose(f);
}

/* ---- options ---- */

static void load_usage(FILE *f)
{
    fprintf(f,
            "usage: ordo-load --server IP:PORT --ip IP [options] -- EAL-ARGS\n"
            "  --server IP:PORT    replica to send to (redirects are followed)\n"
            "  --server-mac MAC    its MAC (default: resolved by ARP)\n"
            "  --ip IP             our IPv4 on the port; --udp-port P (default 9000)\n"
            "  --port NAME         ethdev name (default: the first port)\n"
            "  --cluster-id N      (default 1); --client-id N first registration nonce (each\n"
            "                      slot registers a session at start; default: random)\n"
            "  --outstanding N     closed loop: N requests in flight (default 16, max %u);\n"
            "                      open loop: the cap on requests in flight (default 256)\n"
            "  --rate R            open loop at R requests/s (latency from intended send)\n"
            "  --requests N        stop after N requests; --duration S stop after S seconds\n"
            "                      (default: 10000 requests)\n"
            "  --read-ratio F      share of GETs (default 0.5); --keys N (default 1000)\n"
            "  --key-size N        key bytes, 9..31 (default 9: k%%08u)\n"
            "  --value-size N      PUT value bytes (default 64); --seed N\n"
            "  --timeout-ms N      per attempt (default 200); --retries N (default 10)\n"
            "  --csv FILE          per-second rows t,ops,p50_us,p99_us,errors,retries\n"
            "  --json FILE         the summary as JSON\n"
            "  --quiet             no progress lines; --spin busy-poll when idle\n"
            "  --net-fault SPEC    inject faults on our port (drivers/net/net_fault.h)\n"
            "  --coalesce N        up to N requests per frame (multi-request, max %u;\n"
            "                      default 1: one request per frame)\n"
            "  --readback          every PUT to a fresh key (no GETs); after the run each\n"
            "                      acknowledged key is read back and must hold its value\n"
            "exit: 0 all answered, 1 errors or unanswered, 2 usage, 3 setup failure\n",
            LOAD_SLOTS_MAX, MSG_MULTI_MAX);
}

static int load_num(const char *name, const char *arg, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "ordo-load: --%s %s: want a number in %g..%g\n", name, arg, lo, hi);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int load_addr(const char *name, const char *arg, uint32_t *ip, uint16_t *port)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", arg);
    char *colon = strchr(buf, ':');
    if ((port != NULL) != (colon != NULL)) {
        fprintf(stderr, "ordo-load: --%s %s: want %s\n", name, arg, port ? "IP:PORT" : "IP");
        return -EINVAL;
    }
    if (colon != NULL) {
        *colon = '\0';
        double p;
        if (load_num(name, colon + 1, 1, 65535, &p) != 0) {
            return -EINVAL;
        }
        *port = (uint16_t)p;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1) {
        fprintf(stderr, "ordo-load: --%s %s: not an IPv4 address\n", name, arg);
        return -EINVAL;
    }
    *ip = a.s_addr;
    return 0;
}

enum {
    OPT_SERVER = 256,
    OPT_SERVER_MAC,
    OPT_IP,
    OPT_UDP_PORT,
    OPT_PORT,
    OPT_CLUSTER,
    OPT_CLIENT,
    OPT_OUTSTANDING,
    OPT_RATE,
    OPT_REQUESTS,
    OPT_DURATION,
    OPT_READ_RATIO,
    OPT_KEYS,
    OPT_KEY_SIZE,
    OPT_VALUE_SIZE,
    OPT_SEED,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_CSV,
    OPT_JSON,
    OPT_QUIET,
    OPT_SPIN,
    OPT_FAULT,
    OPT_COALESCE,
    OPT_READBACK,
    OPT_HELP,
};

static const struct option load_longopts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"server-mac", required_argument, NULL, OPT_SERVER_MAC},
    {"ip", required_argument, NULL, OPT_IP},
    {"udp-port", required_argument, NULL, OPT_UDP_PORT},
    {"port", required_argument, NULL, OPT_PORT},
    {"cluster-id", required_argument, NULL, OPT_CLUSTER},
    {"client-id", required_argument, NULL, OPT_CLIENT},
    {"outstanding", required_argument, NULL, OPT_OUTSTANDING},
    {"rate", required_argument, NULL, OPT_RATE},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"read-ratio", required_argument, NULL, OPT_READ_RATIO},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"key-size", required_argument, NULL, OPT_KEY_SIZE},
    {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", required_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"spin", no_argument, NULL, OPT_SPIN},
    {"net-fault", required_argument, NULL, OPT_FAULT},
    {"coalesce", required_argument, NULL, OPT_COALESCE},
    {"readback", no_argument, NULL, OPT_READBACK},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct load_cli {
    struct load_opts o;
    struct rte_ether_addr server_mac;
    bool server_mac_set;
    bool outstanding_set;
    bool client_set;
    const char *fault;
};

/* Numeric options: one table row per option (name for errors, bounds, where to store). */
static int load_opt_num(struct load_cli *c, int id, const char *arg)
{
    double v;
    const char *name = load_longopts[id - OPT_SERVER].name;
    static const double hi[] = {
        [OPT_UDP_PORT - OPT_SERVER] = 65535, [OPT_CLUSTER - OPT_SERVER] = 4294967295.0,
        [OPT_CLIENT - OPT_SERVER] = 1e18,    [OPT_OUTSTANDING - OPT_SERVER] = LOAD_SLOTS_MAX,
        [OPT_RATE - OPT_SERVER] = 1e8,       [OPT_REQUESTS - OPT_SERVER] = 1e12,
        [OPT_DURATION - OPT_SERVER] = 86400, [OPT_READ_RATIO - OPT_SERVER] = 1,
        [OPT_KEYS - OPT_SERVER] = 1e8,       [OPT_VALUE_SIZE - OPT_SERVER] = SM_KV_VALUE_MAX,
        [OPT_SEED - OPT_SERVER] = 1e18,      [OPT_TIMEOUT - OPT_SERVER] = 60000,
        [OPT_RETRIES - OPT_SERVER] = 1000,   [OPT_KEY_SIZE - OPT_SERVER] = 31};
    double lo = id == OPT_KEY_SIZE ? 9
                : (id == OPT_OUTSTANDING || id == OPT_KEYS || id == OPT_UDP_PORT ||
                   id == OPT_TIMEOUT || id == OPT_VALUE_SIZE)
                    ? 1
                    : 0;
    if (load_num(name, arg, lo, hi[id - OPT_SERVER], &v) != 0) {
        return -EINVAL;
    }
    struct load_opts *o = &c->o;
    switch (id) {
    case OPT_UDP_PORT:
        o->my_port = (uint16_t)v;
        break;
    case OPT_CLUSTER:
        o->cluster_id = (uint32_t)v;
        break;
    case OPT_CLIENT:
        o->client_base = (uint64_t)v;
        break;
    case OPT_OUTSTANDING:
        o->outstanding = (uint32_t)v;
        c->outstanding_set = true;
        break;
    case OPT_RATE:
        o->rate = v;
        break;
    case OPT_REQUESTS:
        o->requests = (uint64_t)v;
        break;
    case OPT_DURATION:
        o->duration_s = v;
        break;
    case OPT_READ_RATIO:
        o->read_ratio = v;
        break;
    case OPT_KEYS:
        o->keys = (uint32_t)v;
        break;
    case OPT_KEY_SIZE:
        o->key_size = (uint32_t)v;
        break;
    case OPT_VALUE_SIZE:
        o->value_size = (uint32_t)v;
        break;
    case OPT_SEED:
        o->seed = (uint64_t)v;
        break;
    case OPT_TIMEOUT:
        o->timeout_ms = (uint32_t)v;
        break;
    default:
        o->retries = (uint32_t)v;
        break;
    }
    return 0;
}

static int load_opt(struct load_cli *c, int id, const char *arg)
{
    switch (id) {
    case OPT_SERVER:
        return load_addr("server", arg, &c->o.server_ip, &c->o.server_port);
    case OPT_IP:
        return load_addr("ip", arg, &c->o.my_ip, NULL);
    case OPT_SERVER_MAC:
        if (rte_ether_unformat_addr(arg, &c->server_mac) != 0) {
            fprintf(stderr, "ordo-load: --server-mac %s: not a MAC address\n", arg);
            return -EINVAL;
        }
        c->server_mac_set = true;
        return 0;
    case OPT_PORT:
        c->o.port_name = arg;
        return 0;
    case OPT_CSV:
        c->o.csv_path = arg;
        return 0;
    case OPT_JSON:
        c->o.json_path = arg;
        return 0;
    case OPT_QUIET:
        c->o.quiet = 1;
        return 0;
    case OPT_SPIN:
        c->o.spin = 1;
        return 0;
    case OPT_READBACK:
        c->o.readback = 1;
        return 0;
    case OPT_COALESCE: {
        double v;
        if (load_num("coalesce", arg, 1, MSG_MULTI_MAX, &v) != 0) {
            return -EINVAL;
        }
        c->o.coalesce = (uint32_t)v;
        return 0;
    }
    case OPT_FAULT:
        c->fault = arg;
        return 0;
    default:
        return load_opt_num(c, id, arg);
    }
}

/* Parses our options up to "--"; *eal_at is the index of the first EAL argument. */
static int load_parse(struct load_cli *c, int argc, char **argv, int *eal_at)
{
    c->o = (struct load_opts){.my_port = 9000,
                              .cluster_id = 1,
                              .client_base = 1000,
                              .outstanding = 16,
                              .read_ratio = 0.5,
                              .keys = 1000,
                              .key_size = 9,
                              .value_size = 64,
                              .seed = 1,
                              .timeout_ms = 200,
                              .retries = 10,
                              .coalesce = 1};
    int id;
    while ((id = getopt_long(argc, argv, "", load_longopts, NULL)) != -1) {
        if (id == OPT_HELP) {
            load_usage(stdout);
            exit(LOAD_EXIT_OK);
        }
        if (id == '?' || load_opt(c, id, optarg) != 0) {
            return -EINVAL;
        }
    }
    if (c->o.server_ip == 0 || c->o.my_ip == 0) {
        fprintf(stderr, "ordo-load: --server and --ip are required\n");
        return -EINVAL;
    }
    if (c->o.rate > 0 && !c->outstanding_set) {
        c->o.outstanding = 256;
    }
    if (c->o.requests == 0 && c->o.duration_s <= 0) {
        c->o.requests = 10000;
    }
    if (c->o.readback && (c->o.duration_s > 0 || c->o.requests > LOAD_READBACK_MAX)) {
        fprintf(stderr, "ordo-load: --readback wants --requests N (at most %u), no --duration\n",
                LOAD_READBACK_MAX);
        return -EINVAL;
    }
    *eal_at = optind;
    return 0;
}

/* ---- set-up ---- */

static int load_port_up(struct load *l, struct ordo_errmsg *e)
{
    struct net_conf nc = {.port_id = NET_PORT_ANY,
                          .port_name = l->o.port_name,
                          .rx_queues = 1,
                          .tx_queues = 1,
                          .rx_desc = 512,
                          .tx_desc = 512,
                          .mbufs = 4095,
                          .mbuf_cache = 128,
                          /* AF_XDP wants umem chunks of 2048..4096 bytes: each mbuf is one. */
                          .frame_len_max = 2048,
                          .link_wait_ms = 2000};
    int rc = net_port_open(&l->port, &nc, e);
    if (rc != 0) {
        return rc;
    }
    net_local_init(&l->local, &l->port.mac, l->o.my_ip);
    l->wait_n = net_port_wait_fds(&l->port, l->wait_fds, LOAD_WAIT_FDS);
    return 0;
}

/* Resolves the server's MAC by ARP (bounded), answering ARP for our own address meanwhile. */
static int load_resolve(struct load *l)
{
    struct rte_mbuf *tx[LOAD_BURST];
    uint16_t ntx = 0;
    uint64_t deadline = rte_rdtsc() + LOAD_ARP_WAIT_S * l->hz;
    if (net_local_peer_add(&l->local, l->o.server_ip, NULL) != 0) {
        return ORDO_ENOSPACE;
    }
    while (rte_rdtsc() < deadline && !load_stop_flag) {
        uint64_t now = rte_rdtsc();
        ntx = (uint16_t)(ntx + net_local_arp_poll(&l->local, l->port.pool, now, l->hz / 5, tx + ntx,
                                                  (uint16_t)(LOAD_BURST - ntx)));
        (void)load_receive(l, now, tx, &ntx);
        (void)net_tx(&l->port, 0, tx, ntx);
        ntx = 0;
        if (net_local_lookup(&l->local, l->o.server_ip, &l->server_mac) == 0) {
            return 0;
        }
        rte_delay_us_sleep(1000);
    }
    return ORDO_ENOTFOUND;
}

static int load_alloc(struct load *l)
{
    l->slots = calloc(l->o.outstanding, sizeof(*l->slots));
    l->free_slots = calloc(l->o.outstanding, sizeof(*l->free_slots));
    l->pend_cap = 2 * l->o.outstanding;
    l->pend = calloc(l->pend_cap, sizeof(*l->pend));
    if (load_ids_init(&l->ids, l->o.outstanding) != 0 || l->slots == NULL ||
        l->free_slots == NULL || l->pend == NULL) {
        return -ENOMEM;
    }
    if (l->o.readback) {
        l->rb_n = (uint32_t)l->o.requests;
        l->rb_value = calloc(l->rb_n, sizeof(*l->rb_value));
        l->rb_acked = calloc(l->rb_n, sizeof(*l->rb_acked));
        if (l->rb_value == NULL || l->rb_acked == NULL) {
            return -ENOMEM;
        }
    }
    l->n_free = 0; /* a slot becomes free once registered (load_register_all) */
    if (l->o.csv_path != NULL) {
        l->csv = fopen(l->o.csv_path, "w");
        if (l->csv == NULL) {
            fprintf(stderr, "ordo-load: cannot write %s: %s\n", l->o.csv_path, strerror(errno));
            return -errno;
        }
        fprintf(l->csv, "t_s,ops,p50_us,p99_us,errors,retries\n");
    }
    return 0;
}

static int load_fault(const char *spec)
{
    struct net_fault_cfg fc;
    struct ordo_errmsg e = {{0}};
    if (net_fault_parse(spec, &fc, &e) != 0 || net_fault_set(&fc, &e) != 0) {
        fprintf(stderr, "ordo-load: --net-fault: %s\n", e.text);
        return -EINVAL;
    }
    return 0;
}

static int load_setup(struct load *l, const struct load_cli *c, int argc, char **argv)
{
    static char *eal[LOAD_EAL_ARGS_MAX + 1];
    struct ordo_errmsg e = {{0}};
    if (argc > LOAD_EAL_ARGS_MAX) {
        fprintf(stderr, "ordo-load: too many EAL arguments\n");
        return -E2BIG;
    }
    eal[0] = (char *)"ordo-load";
    for (int i = 0; i < argc; i++) {
        eal[i + 1] = argv[i];
    }
    if (wire_init() != 0 || net_eal_init(argc + 1, eal, &e) != 0 || load_port_up(l, &e) != 0) {
        fprintf(stderr, "ordo-load: %s\n", e.text[0] != '\0' ? e.text : "libsodium init failed");
        return -EIO;
    }
    l->hz = rte_get_tsc_hz();
    l->rng = c->o.seed * 0x9e3779b97f4a7c15ull + 1u;
    if (c->fault != NULL && load_fault(c->fault) != 0) {
        return -EINVAL;
    }
    if (c->server_mac_set) {
        l->server_mac = c->server_mac;
    } else if (load_resolve(l) != 0) {
        struct in_addr a = {.s_addr = l->o.server_ip};
        fprintf(stderr, "ordo-load: no ARP reply from %s within %u s\n", inet_ntoa(a),
                LOAD_ARP_WAIT_S);
        return -EHOSTUNREACH;
    }
    return load_alloc(l);
}

int main(int argc, char **argv)
{
    static struct load l;
    struct load_cli c;
    memset(&c, 0, sizeof(c));
    int eal_at = 0;
    if (load_parse(&c, argc, argv, &eal_at) != 0) {
        load_usage(stderr);
        return LOAD_EXIT_USAGE;
    }
    l.o = c.o;
    if (!c.client_set) {
        /* A fresh nonce range per run for the registrations (the replica assigns the
         * session ids): a late reply to an earlier run's registration is never taken. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x =
            ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40);
        l.o.client_base = (x & 0xffffffffffffull) << 12;
    }
    signal(SIGINT, load_on_signal);
    signal(SIGTERM, load_on_signal);
    if (load_setup(&l, &c, argc - eal_at, argv + eal_at) != 0) {
        return LOAD_EXIT_SETUP;
    }
    if (load_register_all(&l) != 0) {
        fprintf(stderr,
                "ordo-load: cannot register %" PRIu32 " client sessions (%" PRIu64 " registered)\n",
                l.o.outstanding, l.st.registered);
        return LOAD_EXIT_SETUP;
    }
    l.t0 = rte_rdtsc();
    l.next_send = l.t0;
    l.next_progress = l.t0 + l.hz;
    l.stop_tsc = l.o.duration_s > 0 ? l.t0 + (uint64_t)(l.o.duration_s * (double)l.hz) : UINT64_MAX;
    load_run(&l);
    load_summary(&l);
    if (l.csv != NULL) {
        fclose(l.csv);
    }
    bool all = l.st.errors == 0 && l.st.ok == l.st.issued && !l.fatal;
    if (l.o.readback) {
        all = load_readback(&l) == 0 && all;
    }
    net_port_close(&l.port);
    free(l.slots);
    free(l.free_slots);
    load_ids_fini(&l.ids);
    free(l.pend);
    free(l.rb_value);
    free(l.rb_acked);
    return all ? LOAD_EXIT_OK : LOAD_EXIT_FAILED;
}
