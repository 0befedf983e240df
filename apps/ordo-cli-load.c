/* ordo-cli load: N key-value requests (or D seconds) with K outstanding over one kernel UDP
 * socket; every reply is checked (with --verify: a GET returns the last value PUT to its key),
 * optional progress lines, an optional read-back of every acknowledged PUT at the end, and one
 * summary line of key=value pairs for scripts. Each outstanding slot is its own client (one
 * request in flight per session, registered before its first request), and owns its keys,
 * so replies are exact. */
#include "apps/ordo-cli.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "apps/load_ids.h"
#include "engine/err.h"
#include "engine/mem.h"
#include "engine/sm_kv.h"

#define LOAD_BATCH 64
#define LOAD_SLOTS_MAX 4096
#define LOAD_VERSION_UNKNOWN UINT64_MAX /* a failed PUT may or may not have applied */
#define LOAD_ERRORS_SHOWN 5
#define LOAD_DURATION_CAP 20000000ull /* --duration-s without --requests: request cap */

struct load_opts {
    uint64_t requests;
    uint32_t outstanding;
    uint32_t value_size;
    uint32_t keys;
    double read_ratio;
    int verify;
    uint64_t seed;
    uint64_t duration_ms; /* 0: run --requests; else stop issuing after this long */
    uint64_t progress_ms; /* 0: no progress lines */
    int readback;         /* after the load, GET every key with an acknowledged PUT */
    int requests_set;
};

struct load_slot {
    uint64_t client_id; /* the registered session's id; 0: none (register first) */
    uint64_t request_no;
    uint64_t first_ns;
    uint64_t deadline_ns;
    uint64_t version; /* PUT: the version written; GET: the version expected */
    uint32_t tries;
    uint32_t key;
    uint32_t len;
    uint8_t op;
    uint8_t busy;
    uint8_t registering; /* the request in flight is its registration (nonce client id) */
};

struct load_stats {
    uint64_t ok;
    uint64_t errors;
    uint64_t verify_failures;
    uint64_t timeouts;
    uint64_t retries;
    uint64_t redirects;
    uint64_t stale;         /* replies to an attempt already answered (a retry crossed it) */
    uint64_t ignored;       /* datagrams that failed decoding, cluster or MAC checks */
    uint64_t registered;    /* sessions opened (one per slot, more after a lost one) */
    uint64_t sessions_lost; /* SESSION_EXPIRED: the request failed, the slot registers again */
    uint64_t rotations;     /* moves to the next --server after silence */
    uint64_t readback_ok;
    uint64_t readback_failed;  /* missing or wrong value, or no reply */
    uint64_t readback_skipped; /* a failed PUT left the key's value uncertain */
};

/* The longest stretch without any successful reply (e.g. a failover), client clock. */
struct load_gap {
    uint64_t last_ok_ns;
    uint64_t max_ns;
    uint64_t start_ns;  /* last success before the longest gap */
    uint64_t end_ns;    /* first success after it */
    uint64_t end_rt_us; /* the same instant on CLOCK_REALTIME, for scripts */
};

struct load {
    const struct cli_opts *o;
    struct load_opts lo;
    struct cli_conn conn;
    struct load_slot *slots;
    uint8_t *reqs; /* slot i's encoded request at i * CLI_MSG_CAP */
    uint32_t *free_slots;
    uint32_t n_free;
    uint64_t *key_version; /* verify: last version acknowledged per key, 0 = absent */
    uint64_t *lat_ns;
    uint64_t issued;
    uint64_t done;
    uint64_t t0_ns;
    uint64_t last_rx_ns;     /* last datagram from the current server */
    uint64_t last_rotate_ns; /* last move to another server */
    uint64_t stop_ns;        /* duration mode: no new requests from here on */
    uint64_t next_progress_ns;
    uint64_t progress_done; /* l->done at the previous progress line */
    uint64_t progress_st_errors;
    int readback_phase;
    uint64_t main_end_ns; /* end of the load proper (before the read-back) */
    uint32_t readback_next;
    struct load_gap gap;
    uint64_t put_version;
    uint64_t client_base; /* slot i registers with client id base + i (nonce, or own id) */
    struct load_ids ids;  /* session id -> slot */
    int fatal;            /* a registration was refused or unanswered: a cli_exit code */
    uint64_t nonce;
    uint64_t rng;
    uint64_t next_deadline_ns;
    struct load_stats st;
    uint8_t value[SM_KV_VALUE_MAX];
    uint8_t args[SM_KV_ARGS_MAX];
    uint8_t rx[LOAD_BATCH][CLI_MSG_CAP];
};

static uint64_t load_rand(struct load *l)
{
    /* xorshift64*: reproducible from --seed, good enough to pick ops and keys. */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 0x2545f4914f6cdd1dull;
}

static size_t load_key(const struct load *l, uint32_t key, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "ld%016llx-%08u", (unsigned long long)l->nonce, key);
    return (size_t)n;
}

/* The value of version v of a key: reproducible, so a GET can be checked without storing
 * every value. */
static void load_value(uint32_t key, uint64_t version, uint8_t *out, uint32_t len)
{
    uint64_t x = ((uint64_t)key << 40) ^ version ^ 0x9e3779b97f4a7c15ull;

    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7u) == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        out[i] = (uint8_t)(x >> ((i & 7u) * 8u));
    }
}

/* Verify mode partitions keys between slots (slot s owns keys s, s + K, ...): no two
 * requests on one key are ever in flight, so the expected value is exact. */
static uint32_t load_pick_key(struct load *l, uint32_t slot)
{
    uint32_t k = l->lo.outstanding;

    if (!l->lo.verify) {
        return (uint32_t)(load_rand(l) % l->lo.keys);
    }
    uint32_t owned = (l->lo.keys - slot + k - 1) / k;
    return slot + k * (uint32_t)(load_rand(l) % owned);
}

/* Chooses the next operation for a free slot and encodes it into the slot's buffer. */
/* Encodes slot i's operation (op, key, version) with its current request number. */
static int load_encode(struct load *l, uint32_t i)
{
    struct load_slot *s = &l->slots[i];
    char key[48];
    int args_len;

    size_t key_len = load_key(l, s->key, key, sizeof(key));
    if (s->op == SM_KV_OP_GET) {
        args_len = sm_kv_encode_get(l->args, sizeof(l->args), key, key_len);
    } else {
        load_value(s->key, s->version, l->value, l->lo.value_size);
        args_len =
            sm_kv_encode_put(l->args, sizeof(l->args), key, key_len, l->value, l->lo.value_size);
    }
    if (args_len < 0) {
        return args_len;
    }
    int len =
        cli_encode_request(l->o, s->client_id, s->request_no, 0, s->op, l->args, (uint32_t)args_len,
                           l->reqs + (size_t)i * CLI_MSG_CAP, CLI_MSG_CAP);
    if (len < 0) {
        return len;
    }
    s->len = (uint32_t)len;
    return 0;
}

static int load_prepare(struct load *l, uint32_t i)
{
    struct load_slot *s = &l->slots[i];

    s->key = load_pick_key(l, i);
    double r = (double)(load_rand(l) >> 11) * 0x1.0p-53;
    if (r < l->lo.read_ratio) {
        s->op = SM_KV_OP_GET;
        s->version = l->lo.verify ? l->key_version[s->key] : 0;
    } else {
        s->op = SM_KV_OP_PUT;
        s->version = ++l->put_version;
    }
    s->request_no++;
    return load_encode(l, i);
}

/* ---- sessions (dissertation 6.3): one per slot, found again by id in replies ---- */

/* Indexes the slots' ids again (after a slot's session changed; rare). */
static void load_index_ids(struct load *l)
{
    load_ids_rebuild(&l->ids, l->slots, sizeof(*l->slots), offsetof(struct load_slot, client_id));
}

/* The slot a reply or redirect for client id `id` belongs to, or UINT32_MAX. */
static uint32_t load_slot_of(const struct load *l, uint64_t id)
{
    uint64_t nonce = id - l->client_base;
    if (nonce < l->lo.outstanding && l->slots[nonce].registering) {
        return (uint32_t)nonce;
    }
    return load_ids_find(&l->ids, id);
}

/* Encodes slot i's registration: client id base + i is the nonce the reply echoes (with a
 * key, the client's own id), and the number it consumes is the floor a keyed session
 * starts from (engine/sess.h). */
static int load_prepare_register(struct load *l, uint32_t i)
{
    struct load_slot *s = &l->slots[i];

    s->registering = 1;
    s->request_no++;
    int len =
        cli_encode_request(l->o, l->client_base + i, s->request_no, MSG_REQ_REGISTER, MSG_OP_NOOP,
                           NULL, 0, l->reqs + (size_t)i * CLI_MSG_CAP, CLI_MSG_CAP);
    if (len < 0) {
        return len;
    }
    s->len = (uint32_t)len;
    return 0;
}

/* The reply to slot i's registration. BUSY (or an election) waits for the retry; any other
 * refusal ends the load (a keyed floor below the saved number, say): every request needs a
 * session. */
static void load_on_registered(struct load *l, uint32_t i, const struct msg_client_reply *r)
{
    struct load_slot *s = &l->slots[i];
    uint64_t id = 0;

    if (r->status == MSG_STATUS_BUSY || r->status == MSG_STATUS_NO_QUORUM) {
        return;
    }
    if (cli_registered_id(r, &id) != 0) {
        fprintf(stderr, "ordo-cli load: registration of slot %u refused: %s (status %u)\n", i,
                cli_status_str(r->status), (unsigned)r->status);
        l->fatal = CLI_EXIT_REJECTED;
        return;
    }
    s->registering = 0;
    s->client_id = id;
    s->busy = 0;
    l->free_slots[l->n_free++] = i;
    l->st.registered++;
    load_index_ids(l);
}

static void load_arm(struct load *l, struct load_slot *s, uint64_t now)
{
    s->deadline_ns = now + (uint64_t)l->o->timeout_ms * 1000000ull;
    if (s->deadline_ns < l->next_deadline_ns) {
        l->next_deadline_ns = s->deadline_ns;
    }
}

/* Read-back phase: the next key with an acknowledged PUT (UINT32_MAX when none is left);
 * keys whose value a failed PUT made uncertain are counted and skipped. */
static uint32_t load_next_readback(struct load *l)
{
    while (l->readback_next < l->lo.keys) {
        uint32_t k = l->readback_next++;
        if (l->key_version[k] == LOAD_VERSION_UNKNOWN) {
            l->st.readback_skipped++;
        } else if (l->key_version[k] != 0) {
            return k;
        }
    }
    return UINT32_MAX;
}

static int load_may_issue(struct load *l, uint64_t now)
{
    if (l->readback_phase) {
        return l->readback_next < l->lo.keys;
    }
    return l->issued < l->lo.requests && (l->stop_ns == 0 || now < l->stop_ns);
}

/* Encodes a GET of the next read-back key for slot i. Returns 0, 1 when no key is left,
 * or a negative encoding error. */
static int load_prepare_readback(struct load *l, uint32_t i)
{
    struct load_slot *s = &l->slots[i];

    uint32_t k = load_next_readback(l);
    if (k == UINT32_MAX) {
        return 1;
    }
    s->key = k;
    s->op = SM_KV_OP_GET;
    s->version = l->key_version[k];
    s->request_no++;
    return load_encode(l, i);
}

/* Fills every free slot with a new request (until N are issued) and sends them in one
 * sendmmsg. Returns 0 or a negative error from encoding. */
static int load_issue(struct load *l)
{
    struct mmsghdr msgs[LOAD_BATCH];
    struct iovec iov[LOAD_BATCH];
    unsigned int n = 0;
    uint64_t now = cli_now_ns();

    while (n < LOAD_BATCH && l->n_free > 0 && load_may_issue(l, now)) {
        uint32_t i = l->free_slots[--l->n_free];
        struct load_slot *s = &l->slots[i];
        int reg = s->client_id == 0;
        int rc = reg                 ? load_prepare_register(l, i)
                 : l->readback_phase ? load_prepare_readback(l, i)
                                     : load_prepare(l, i);
        if (rc == 1) {
            l->free_slots[l->n_free++] = i; /* read-back: nothing left to read */
            break;
        }
        if (rc != 0) {
            return rc;
        }
        s->busy = 1;
        s->tries = 1;
        s->first_ns = now;
        load_arm(l, s, now);
        l->issued += l->readback_phase || reg ? 0u : 1u;
        iov[n].iov_base = l->reqs + (size_t)i * CLI_MSG_CAP;
        iov[n].iov_len = s->len;
        memset(&msgs[n], 0, sizeof(msgs[n]));
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        n++;
    }
    /* A datagram the kernel refuses (full buffer, ICMP error) is retried on timeout. */
    unsigned int sent = 0;
    while (sent < n) {
        int rc = sendmmsg(l->conn.fd, msgs + sent, n - sent, 0);
        if (rc <= 0) {
            break;
        }
        sent += (unsigned int)rc;
    }
    return 0;
}

static void load_send_one(struct load *l, uint32_t i)
{
    (void)send(l->conn.fd, l->reqs + (size_t)i * CLI_MSG_CAP, l->slots[i].len, 0);
}

static void load_note_ok(struct load *l, uint64_t now)
{
    struct load_gap *g = &l->gap;
    uint64_t from = g->last_ok_ns != 0 ? g->last_ok_ns : l->t0_ns;

    if (now - from > g->max_ns) {
        g->max_ns = now - from;
        g->start_ns = from;
        g->end_ns = now;
        g->end_rt_us = cli_now_realtime_us();
    }
    g->last_ok_ns = now;
}

static void load_finish(struct load *l, uint32_t i, int ok)
{
    struct load_slot *s = &l->slots[i];
    uint64_t now = cli_now_ns();

    s->busy = 0;
    l->free_slots[l->n_free++] = i;
    if (l->readback_phase) {
        if (ok) {
            l->st.readback_ok++;
        } else {
            l->st.readback_failed++;
        }
        return;
    }
    if (ok) {
        l->st.ok++;
        l->lat_ns[l->done] = now - s->first_ns;
        load_note_ok(l, now);
    } else {
        l->lat_ns[l->done] = UINT64_MAX; /* sorted last, excluded from percentiles */
    }
    l->done++;
}

static void load_report_error(struct load *l, const struct load_slot *s, const char *what)
{
    uint64_t shown = l->st.errors + l->st.verify_failures + l->st.readback_failed;

    if (shown <= LOAD_ERRORS_SHOWN) {
        fprintf(stderr, "ordo-cli load: %s (op %u, key %u, client %llu, request %llu)\n", what,
                (unsigned)s->op, s->key, (unsigned long long)s->client_id,
                (unsigned long long)s->request_no);
    }
}

/* Checks a GET reply against the key's last acknowledged PUT. Returns 1 if it matches. */
static int load_check_get(struct load *l, const struct load_slot *s,
                          const struct msg_client_reply *r)
{
    if (s->version == LOAD_VERSION_UNKNOWN) {
        return r->status == MSG_STATUS_OK || r->status == MSG_STATUS_NOT_FOUND;
    }
    if (s->version == 0) {
        return r->status == MSG_STATUS_NOT_FOUND;
    }
    if (r->status != MSG_STATUS_OK || r->result_len != l->lo.value_size) {
        return 0;
    }
    load_value(s->key, s->version, l->value, l->lo.value_size);
    return memcmp(r->result, l->value, l->lo.value_size) == 0;
}

/* SESSION_EXPIRED: the slot's session is gone (expired or evicted). This attempt was not
 * applied but an earlier one may have been: exactly-once is lost for this request, so it
 * fails (a PUT's key becomes uncertain); the slot registers again before its next one. */
static void load_session_lost(struct load *l, uint32_t i)
{
    struct load_slot *s = &l->slots[i];

    l->st.sessions_lost++;
    load_report_error(l, s, "session expired: outcome unknown, registering again");
    if (l->readback_phase) {
        l->st.readback_skipped++;
    } else {
        l->st.errors++;
    }
    if (l->lo.verify && s->op == SM_KV_OP_PUT) {
        l->key_version[s->key] = LOAD_VERSION_UNKNOWN;
    }
    s->client_id = 0;
    load_index_ids(l);
    if (l->readback_phase) {
        s->busy = 0;
        l->free_slots[l->n_free++] = i;
        return;
    }
    load_finish(l, i, 0);
}

static void load_on_reply(struct load *l, uint32_t i, const struct msg_client_reply *r)
{
    struct load_slot *s = &l->slots[i];

    if (l->o->echo) {
        load_finish(l, i, 1);
        return;
    }
    if (s->registering) {
        load_on_registered(l, i, r);
        return;
    }
    if (r->status == MSG_STATUS_BUSY) {
        return; /* backpressure: the timeout retries it */
    }
    if (r->status == MSG_STATUS_SESSION_EXPIRED) {
        load_session_lost(l, i);
        return;
    }
    if (s->op == SM_KV_OP_PUT) {
        if (r->status != MSG_STATUS_OK) {
            l->st.errors++;
            load_report_error(l, s, cli_status_str(r->status));
            if (l->lo.verify) {
                l->key_version[s->key] = LOAD_VERSION_UNKNOWN;
            }
            load_finish(l, i, 0);
            return;
        }
        if (l->lo.verify) {
            l->key_version[s->key] = s->version;
        }
        load_finish(l, i, 1);
        return;
    }
    int good = l->lo.verify ? load_check_get(l, s, r)
                            : (r->status == MSG_STATUS_OK || r->status == MSG_STATUS_NOT_FOUND);
    if (!good && l->readback_phase) {
        load_report_error(l, s, "read-back: GET does not return the last acknowledged PUT");
    } else if (!good) {
        l->st.verify_failures++;
        load_report_error(l, s, "GET reply does not match the last PUT");
    }
    load_finish(l, i, good);
}

static void load_on_redirect(struct load *l, uint32_t i, const struct msg_redirect *r)
{
    struct sockaddr_in leader;

    if (cli_redirect_target(r, &leader) != 0) {
        return; /* no leader known yet: the timeout retries */
    }
    l->st.redirects++;
    if (leader.sin_addr.s_addr == l->conn.server.sin_addr.s_addr &&
        leader.sin_port == l->conn.server.sin_port) {
        load_send_one(l, i);
        return;
    }
    if (cli_conn_retarget(&l->conn, &leader) != 0) {
        return;
    }
    /* Replies from the old server are filtered from now on: resend everything in flight. */
    uint64_t now = cli_now_ns();
    for (uint32_t j = 0; j < l->lo.outstanding; j++) {
        if (l->slots[j].busy) {
            load_send_one(l, j);
            load_arm(l, &l->slots[j], now);
        }
    }
}

/* Routes one datagram to its slot. Slot i is client client_base + i. */
static void load_on_datagram(struct load *l, const uint8_t *buf, size_t len)
{
    struct msg m;

    if (cli_decode_reply(l->o, buf, len, &m) != 0) {
        l->st.ignored++;
        return;
    }
    /* Requests (echo mode), replies and redirects all start with client id, request no. */
    uint64_t client = m.hdr.type == MSG_REDIRECT ? m.u.redirect.client_id : m.u.reply.client_id;
    uint64_t req_no = m.hdr.type == MSG_REDIRECT ? m.u.redirect.request_no : m.u.reply.request_no;
    if (m.hdr.type == MSG_CLIENT_REQUEST) {
        client = m.u.request.client_id;
        req_no = m.u.request.request_no;
    }
    uint32_t i = l->o->echo ? (uint32_t)(client - l->client_base) : load_slot_of(l, client);
    if (i >= l->lo.outstanding || !l->slots[i].busy || l->slots[i].request_no != req_no) {
        l->st.stale++;
        return;
    }
    if (m.hdr.type == MSG_REDIRECT) {
        load_on_redirect(l, i, &m.u.redirect);
    } else {
        load_on_reply(l, i, &m.u.reply);
    }
}

/* Receives what is queued (one recvmmsg); waits in poll up to wait_ms if nothing is.
 * Returns datagrams received. */
static int load_receive(struct load *l, int wait_ms)
{
    struct mmsghdr msgs[LOAD_BATCH];
    struct iovec iov[LOAD_BATCH];

    for (int i = 0; i < LOAD_BATCH; i++) {
        iov[i].iov_base = l->rx[i];
        iov[i].iov_len = CLI_MSG_CAP;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(l->conn.fd, msgs, LOAD_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) {
        struct pollfd pfd = {.fd = l->conn.fd, .events = POLLIN};
        (void)poll(&pfd, 1, wait_ms);
        return 0;
    }
    l->last_rx_ns = cli_now_ns();
    for (int i = 0; i < n; i++) {
        load_on_datagram(l, l->rx[i], msgs[i].msg_len);
    }
    return n;
}

/* Several servers (--server A,B,C): when the current one has answered nothing for a whole
 * timeout, move to the next (a follower redirects to the leader) and resend everything in
 * flight there. At most one move per timeout. Returns 1 if it moved. */
static int load_maybe_rotate(struct load *l, uint64_t now)
{
    uint64_t t = (uint64_t)l->o->timeout_ms * 1000000ull;

    if (l->o->n_servers < 2 || now - l->last_rx_ns < t || now - l->last_rotate_ns < t) {
        return 0;
    }
    if (cli_conn_retarget(&l->conn, cli_next_server(l->o, &l->conn.server)) != 0) {
        return 0;
    }
    l->last_rotate_ns = now;
    l->st.rotations++;
    for (uint32_t j = 0; j < l->lo.outstanding; j++) {
        if (l->slots[j].busy) {
            load_send_one(l, j);
            load_arm(l, &l->slots[j], now);
        }
    }
    return 1;
}

/* Resends every request whose attempt timed out (same request number), or gives it up
 * after --retries. */
static void load_expire(struct load *l, uint64_t now)
{
    l->next_deadline_ns = UINT64_MAX;
    for (uint32_t i = 0; i < l->lo.outstanding; i++) {
        struct load_slot *s = &l->slots[i];
        if (!s->busy) {
            continue;
        }
        if (s->deadline_ns > now) {
            l->next_deadline_ns =
                s->deadline_ns < l->next_deadline_ns ? s->deadline_ns : l->next_deadline_ns;
            continue;
        }
        if (s->tries > l->o->retries && s->registering) {
            fprintf(stderr,
                    "ordo-cli load: registration of slot %u: no reply after every "
                    "retry\n",
                    i);
            l->fatal = CLI_EXIT_NO_REPLY;
            return;
        }
        if (s->tries > l->o->retries && l->readback_phase) {
            load_report_error(l, s, "read-back: no reply after every retry");
            load_finish(l, i, 0);
            continue;
        }
        if (s->tries > l->o->retries) {
            l->st.timeouts++;
            l->st.errors++;
            load_report_error(l, s, "no reply after every retry");
            if (l->lo.verify && s->op == SM_KV_OP_PUT) {
                l->key_version[s->key] = LOAD_VERSION_UNKNOWN;
            }
            load_finish(l, i, 0);
            continue;
        }
        s->tries++;
        l->st.retries++;
        if (load_maybe_rotate(l, now)) {
            return; /* every request in flight was resent to the next server */
        }
        load_send_one(l, i);
        load_arm(l, s, now);
    }
}

static int load_cmp_u64(const void *a, const void *b);
static double load_pct_us(const uint64_t *sorted, uint64_t n, double pct);

/* One progress line for the requests finished since the previous one (their latencies are
 * sorted in place: the summary sorts everything again). */
static void load_progress(struct load *l, uint64_t now)
{
    uint64_t from = l->progress_done;
    uint64_t n = l->done - from;
    uint64_t *lat = l->lat_ns + from;
    uint64_t n_ok = 0;
    char addr[64];

    qsort(lat, n, sizeof(*lat), load_cmp_u64);
    while (n_ok < n && lat[n_ok] != UINT64_MAX) {
        n_ok++;
    }
    double span_s = (double)l->lo.progress_ms / 1000.0;
    printf("progress t_s=%.1f ok=%llu rps=%.0f p50_us=%.1f p99_us=%.1f errors=%llu "
           "retries=%llu redirects=%llu server=%s\n",
           (double)(now - l->t0_ns) / 1e9, (unsigned long long)n_ok, (double)n_ok / span_s,
           load_pct_us(lat, n_ok, 50.0), load_pct_us(lat, n_ok, 99.0),
           (unsigned long long)(l->st.errors - l->progress_st_errors),
           (unsigned long long)l->st.retries, (unsigned long long)l->st.redirects,
           cli_addr_str(&l->conn.server, addr, sizeof(addr)));
    fflush(stdout);
    l->progress_done = l->done;
    l->progress_st_errors = l->st.errors;
    l->next_progress_ns += l->lo.progress_ms * 1000000ull;
}

/* The current phase is over when nothing may be issued and nothing is in flight. */
static int load_phase_over(struct load *l, uint64_t now)
{
    return !load_may_issue(l, now) && l->n_free == l->lo.outstanding;
}

static int load_run(struct load *l)
{
    for (;;) {
        uint64_t t = cli_now_ns();
        if (l->fatal != 0) {
            return l->fatal;
        }
        if (l->lo.progress_ms != 0 && !l->readback_phase && t >= l->next_progress_ns) {
            load_progress(l, t);
        }
        if (load_phase_over(l, t)) {
            if (!l->lo.readback || l->readback_phase) {
                return CLI_EXIT_OK;
            }
            l->readback_phase = 1;
            l->main_end_ns = t;
        }
        int rc = load_issue(l);
        if (rc != 0) {
            fprintf(stderr, "ordo-cli load: cannot encode a request: %s\n", ordo_strerror(rc));
            return CLI_EXIT_LOCAL;
        }
        uint64_t now = cli_now_ns();
        int wait_ms = 0;
        if (l->next_deadline_ns > now) {
            uint64_t left_ms = (l->next_deadline_ns - now + 999999) / 1000000;
            wait_ms = left_ms > 100 ? 100 : (int)left_ms;
        }
        if (l->lo.progress_ms != 0 && l->next_progress_ns > now &&
            (l->next_progress_ns - now) / 1000000 < (uint64_t)wait_ms) {
            wait_ms = (int)((l->next_progress_ns - now) / 1000000);
        }
        load_receive(l, wait_ms);
        now = cli_now_ns();
        if (now >= l->next_deadline_ns) {
            load_expire(l, now);
        }
    }
}

static int load_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double load_pct_us(const uint64_t *sorted, uint64_t n, double pct)
{
    if (n == 0) {
        return 0.0;
    }
    uint64_t idx = (uint64_t)(pct / 100.0 * (double)(n - 1) + 0.5);
    return (double)sorted[idx] / 1000.0;
}

/* The summary's second half: the longest stall and the read-back results. */
static void load_summary_tail(const struct load *l)
{
    const struct load_gap *g = &l->gap;

    printf(" registered=%llu sessions_lost=%llu rotations=%llu max_gap_ms=%.1f gap_start_s=%.3f "
           "gap_end_s=%.3f gap_end_epoch_ms=%llu",
           (unsigned long long)l->st.registered, (unsigned long long)l->st.sessions_lost,
           (unsigned long long)l->st.rotations, (double)g->max_ns / 1e6,
           g->start_ns != 0 ? (double)(g->start_ns - l->t0_ns) / 1e9 : 0.0,
           g->end_ns != 0 ? (double)(g->end_ns - l->t0_ns) / 1e9 : 0.0,
           (unsigned long long)(g->end_rt_us / 1000u));
    if (l->lo.readback) {
        printf(" readback_ok=%llu readback_failed=%llu readback_skipped=%llu",
               (unsigned long long)l->st.readback_ok, (unsigned long long)l->st.readback_failed,
               (unsigned long long)l->st.readback_skipped);
    }
    printf("\n");
    fflush(stdout);
}

static void load_summary(struct load *l, double elapsed_s)
{
    uint64_t n_ok = l->st.ok;
    double sum = 0.0;

    qsort(l->lat_ns, l->done, sizeof(l->lat_ns[0]), load_cmp_u64);
    for (uint64_t i = 0; i < n_ok; i++) {
        sum += (double)l->lat_ns[i];
    }
    printf("mode=%s requests=%llu ok=%llu errors=%llu verify_failures=%llu timeouts=%llu "
           "retries=%llu redirects=%llu stale=%llu ignored=%llu elapsed_s=%.3f rps=%.0f "
           "p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f outstanding=%u value_size=%u "
           "keys=%u read_ratio=%.2f verify=%d",
           l->o->echo ? "echo" : "ordo", (unsigned long long)l->issued, (unsigned long long)n_ok,
           (unsigned long long)l->st.errors, (unsigned long long)l->st.verify_failures,
           (unsigned long long)l->st.timeouts, (unsigned long long)l->st.retries,
           (unsigned long long)l->st.redirects, (unsigned long long)l->st.stale,
           (unsigned long long)l->st.ignored, elapsed_s,
           elapsed_s > 0 ? (double)n_ok / elapsed_s : 0.0, load_pct_us(l->lat_ns, n_ok, 50.0),
           load_pct_us(l->lat_ns, n_ok, 99.0), n_ok ? (double)l->lat_ns[n_ok - 1] / 1000.0 : 0.0,
           n_ok ? sum / (double)n_ok / 1000.0 : 0.0, l->lo.outstanding, l->lo.value_size,
           l->lo.keys, l->lo.read_ratio, l->lo.verify);
    load_summary_tail(l);
}

static const struct option load_long_opts[] = {
    {"requests", required_argument, NULL, 'n'},
    {"outstanding", required_argument, NULL, 'k'},
    {"value-size", required_argument, NULL, 'b'},
    {"keys", required_argument, NULL, 'm'},
    {"read-ratio", required_argument, NULL, 'r'},
    {"verify", no_argument, NULL, 'v'},
    {"seed", required_argument, NULL, 's'},
    {"duration-s", required_argument, NULL, 'd'},
    {"progress-ms", required_argument, NULL, 'p'},
    {"readback", no_argument, NULL, 'R'},
    {NULL, 0, NULL, 0},
};

static int load_parse_num(const char *name, const char *arg, uint64_t max, uint64_t *out)
{
    char *end = NULL;

    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v > max) {
        fprintf(stderr, "ordo-cli load: --%s wants an integer 0..%llu, got '%s'\n", name,
                (unsigned long long)max, arg);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int load_parse_one(struct load_opts *lo, int id, const char *arg)
{
    uint64_t v = 0;
    int rc = 0;
    char *end = NULL;

    switch (id) {
    case 'n':
        rc = load_parse_num("requests", arg, 100000000ull, &lo->requests);
        lo->requests_set = 1;
        break;
    case 'd':
        rc = load_parse_num("duration-s", arg, 3600, &v);
        lo->duration_ms = v * 1000u;
        break;
    case 'p':
        rc = load_parse_num("progress-ms", arg, 3600000, &lo->progress_ms);
        break;
    case 'R':
        lo->readback = 1;
        break;
    case 'k':
        rc = load_parse_num("outstanding", arg, LOAD_SLOTS_MAX, &v);
        lo->outstanding = (uint32_t)v;
        break;
    case 'b':
        rc = load_parse_num("value-size", arg, SM_KV_VALUE_MAX, &v);
        lo->value_size = (uint32_t)v;
        break;
    case 'm':
        rc = load_parse_num("keys", arg, 10000000ull, &v);
        lo->keys = (uint32_t)v;
        break;
    case 'r':
        lo->read_ratio = strtod(arg, &end);
        if (end == arg || *end != '\0' || !(lo->read_ratio >= 0.0 && lo->read_ratio <= 1.0)) {
            fprintf(stderr, "ordo-cli load: --read-ratio wants 0..1, got '%s'\n", arg);
            rc = -EINVAL;
        }
        break;
    case 'v':
        lo->verify = 1;
        break;
    case 's':
        rc = load_parse_num("seed", arg, UINT64_MAX, &lo->seed);
        break;
    default:
        rc = -EINVAL;
    }
    return rc;
}

static int load_parse(struct load_opts *lo, int argc, char **argv)
{
    int id;

    memset(lo, 0, sizeof(*lo));
    lo->outstanding = 1;
    lo->value_size = 16;
    lo->keys = 1000;
    lo->requests = 1000;
    lo->read_ratio = 0.5;
    lo->seed = 1;
    optind = 0; /* glibc: restart scanning on the load arguments */
    while ((id = getopt_long(argc, argv, "+", load_long_opts, NULL)) != -1) {
        if (id == '?' || load_parse_one(lo, id, optarg) != 0) {
            return -EINVAL;
        }
    }
    if (optind != argc || lo->requests == 0 || lo->outstanding == 0 || lo->keys == 0) {
        fprintf(stderr, "ordo-cli load: --requests, --outstanding and --keys must be >= 1 "
                        "and no extra arguments may follow\n");
        return -EINVAL;
    }
    if (lo->duration_ms != 0 && !lo->requests_set) {
        lo->requests = LOAD_DURATION_CAP;
    }
    if (lo->readback && !lo->verify) {
        fprintf(stderr, "ordo-cli load: --readback needs --verify (it knows the last PUTs)\n");
        return -EINVAL;
    }
    if (lo->verify && lo->outstanding > lo->keys) {
        /* Verification gives each slot its own keys: no more slots than keys. */
        fprintf(stderr, "ordo-cli load: --verify: outstanding lowered from %u to %u (keys)\n",
                lo->outstanding, lo->keys);
        lo->outstanding = lo->keys;
    }
    return 0;
}

static void load_free(struct load *l)
{
    cli_conn_close(&l->conn);
    mem_free(l->slots);
    mem_free(l->reqs);
    mem_free(l->free_slots);
    mem_free(l->key_version);
    mem_free(l->lat_ns);
    load_ids_fini(&l->ids);
    mem_free(l);
}

static struct load *load_new(const struct cli_opts *o, const struct load_opts *lo)
{
    struct load *l = mem_calloc(1, sizeof(*l));

    if (l == NULL) {
        return NULL;
    }
    l->o = o;
    l->lo = *lo;
    l->conn.fd = -1;
    l->slots = mem_calloc(lo->outstanding, sizeof(*l->slots));
    l->reqs = mem_calloc(lo->outstanding, CLI_MSG_CAP);
    l->free_slots = mem_calloc(lo->outstanding, sizeof(*l->free_slots));
    l->key_version = mem_calloc(lo->keys, sizeof(*l->key_version));
    l->lat_ns = mem_calloc(lo->requests, sizeof(*l->lat_ns));
    if (load_ids_init(&l->ids, lo->outstanding) != 0 || l->slots == NULL || l->reqs == NULL ||
        l->free_slots == NULL || l->key_version == NULL || l->lat_ns == NULL) {
        load_free(l);
        return NULL;
    }
    return l;
}

/* Every slot registers a session before its first request (engine/sess.h): with a key, its
 * own id client base + i (the key's client, numbered from the clock so that the floor lies
 * above earlier runs); without, an id the replica assigns (base + i is only the nonce). */
static void load_init_slots(struct load *l)
{
    uint64_t first_no = l->o->request_no != 0 ? l->o->request_no
                        : l->o->has_key       ? cli_now_realtime_us()
                                              : 1;

    l->client_base = l->o->client_id_set ? l->o->client_id : cli_random_u64() >> 1;
    l->nonce = cli_random_u64();
    l->rng = l->lo.seed * 0x9e3779b97f4a7c15ull + 1;
    l->next_deadline_ns = UINT64_MAX;
    for (uint32_t i = 0; i < l->lo.outstanding; i++) {
        /* Echo mode: nothing registers (the "server" echoes the request). */
        l->slots[i].client_id = l->o->echo ? l->client_base + i : 0;
        l->slots[i].request_no = first_no - 1; /* each request increments before use */
        /* Pop order: slot 0 first. */
        l->free_slots[i] = l->lo.outstanding - 1 - i;
    }
    l->n_free = l->lo.outstanding;
}

int cli_load_main(const struct cli_opts *o, int argc, char **argv)
{
    struct load_opts lo;

    if (load_parse(&lo, argc, argv) != 0) {
        return CLI_EXIT_USAGE;
    }
    struct load *l = load_new(o, &lo);
    if (l == NULL) {
        fprintf(stderr, "ordo-cli load: out of memory for %llu requests\n",
                (unsigned long long)lo.requests);
        return CLI_EXIT_LOCAL;
    }
    load_init_slots(l);
    int rc = cli_conn_open(&l->conn, &o->server);
    if (rc != 0) {
        fprintf(stderr, "ordo-cli load: cannot open a UDP socket: %s\n", strerror(-rc));
        load_free(l);
        return CLI_EXIT_LOCAL;
    }
    uint64_t t0 = cli_now_ns();
    l->t0_ns = t0;
    l->last_rx_ns = t0;
    l->stop_ns = lo.duration_ms != 0 ? t0 + lo.duration_ms * 1000000ull : 0;
    l->next_progress_ns = t0 + lo.progress_ms * 1000000ull;
    rc = load_run(l);
    uint64_t end = l->main_end_ns != 0 ? l->main_end_ns : cli_now_ns();
    double elapsed_s = (double)(end - t0) / 1e9;
    if (rc == CLI_EXIT_OK) {
        load_summary(l, elapsed_s);
        if (l->st.ok == 0 && l->st.timeouts == l->issued) {
            rc = CLI_EXIT_NO_REPLY;
        } else if (l->st.ok != l->issued || l->st.readback_failed != 0) {
            rc = CLI_EXIT_FAILED;
        }
    }
    load_free(l);
    return rc;
}
