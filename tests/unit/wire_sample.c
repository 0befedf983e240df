/* Sample messages for the wire tests, corpus generator and docs example. Deterministic:
 * the same (type, variant) always gives the same message. */
#include "tests/unit/wire_sample.h"

#include <string.h>

const uint8_t wire_sample_types[] = {
    MSG_CLIENT_REQUEST,  MSG_CLIENT_REPLY,     MSG_REDIRECT,
    MSG_VOTE_REQUEST,    MSG_VOTE_RESPONSE,    MSG_APPEND_ENTRIES,
    MSG_APPEND_RESPONSE, MSG_INSTALL_SNAPSHOT, MSG_INSTALL_SNAPSHOT_RESPONSE,
    MSG_TIMEOUT_NOW,     MSG_HEARTBEAT,        MSG_HEARTBEAT_RESPONSE,
};
const size_t wire_sample_types_n = sizeof(wire_sample_types);

struct sample_rng {
    uint64_t s;
};

/* splitmix64: small, seedable, good enough for test values. */
static uint64_t rng_next(struct sample_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(struct sample_rng *r, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rng_next(r) % n);
}

/* Hands out bytes of s->data filled with pseudo-random content. */
static const uint8_t *take(struct wire_sample *s, size_t *used, struct sample_rng *r, size_t n)
{
    uint8_t *p = s->data + *used;
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)rng_next(r);
    }
    *used += n;
    return p;
}

static void fill_config(struct msg_config *c, struct sample_rng *r, uint32_t n)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    for (uint32_t i = 0; i < n; i++) {
        c->servers[i].id = 1 + i * 3 + rng_below(r, 3);
        c->servers[i].role = (uint8_t)(1 + rng_below(r, 2));
    }
}

static void fill_append(struct wire_sample *s, struct sample_rng *r, uint32_t variant)
{
    struct msg_append_entries *a = &s->m.u.append;
    size_t used = 0;
    a->term = 5 + rng_below(r, 100);
    a->prev_log_index = rng_next(r) >> 20;
    a->prev_log_term = a->term - 1;
    a->leader_commit = a->prev_log_index;
    a->n_entries = variant == 0 ? 0 : variant == 7 ? MSG_ENTRIES_MAX : 1 + rng_below(r, 6);
    a->entries = s->entries;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        struct msg_entry *e = &s->entries[i];
        e->term = a->term;
        e->index = a->prev_log_index + 1 + i;
        e->type = (uint8_t)(1 + rng_below(r, 3));
        if (e->type == MSG_ENTRY_CONFIG) {
            struct msg_config c;
            fill_config(&c, r, 1 + rng_below(r, MSG_NODES_MAX));
            e->len = (uint32_t)wire_config_encode(&c, s->data + used, WIRE_CONFIG_LEN_MAX);
            e->data = s->data + used;
            used += e->len;
            continue;
        }
        e->len = e->type == MSG_ENTRY_NOOP ? 0 : rng_below(r, variant == 7 ? 32 : 200);
        e->data = take(s, &used, r, e->len);
    }
}

static void fill_snapshot(struct wire_sample *s, struct sample_rng *r, uint32_t variant)
{
    struct msg_install_snapshot *p = &s->m.u.snapshot;
    size_t used = 0;
    p->term = 1 + rng_below(r, 50);
    p->last_index = 1000 + rng_below(r, 100000);
    p->last_term = p->term;
    fill_config(&p->config, r, variant % (MSG_NODES_MAX + 1));
    p->chunk_len = variant == 0 ? 0 : rng_below(r, 2000);
    p->chunk = take(s, &used, r, p->chunk_len);
    p->offset = variant == 0 ? 0 : rng_below(r, 1u << 20);
    p->done = (uint8_t)(variant & 1);
    p->total_len = p->offset + p->chunk_len + (p->done ? 0 : rng_below(r, 5000));
}

static void fill_client(struct wire_sample *s, struct sample_rng *r, uint32_t variant)
{
    size_t used = 0;
    uint32_t len = variant == 0 ? 0 : variant == 5 ? 4000 : rng_below(r, 300);
    struct msg_client_request *q = &s->m.u.request;
    struct msg_client_reply *p = &s->m.u.reply;
    struct msg_redirect *d = &s->m.u.redirect;
    switch (s->m.hdr.type) {
    case MSG_CLIENT_REQUEST:
        q->client_id = rng_next(r);
        q->request_no = 1 + rng_below(r, 1000000);
        q->flags = (uint16_t)rng_below(r, 4);
        q->op = (uint8_t)rng_below(r, 5);
        q->args_len = len;
        q->args = take(s, &used, r, len);
        break;
    case MSG_CLIENT_REPLY:
        p->client_id = rng_next(r);
        p->request_no = 1 + rng_below(r, 1000000);
        p->status = (uint8_t)rng_below(r, MSG_STATUS_STOPPED + 1);
        p->result_len = len;
        p->result = take(s, &used, r, len);
        break;
    default:
        d->client_id = rng_next(r);
        d->request_no = 1 + rng_below(r, 1000000);
        d->leader_id = rng_below(r, 6);
        d->leader_ipv4 = (uint32_t)rng_next(r);
        d->leader_port = (uint16_t)rng_next(r);
        memcpy(d->leader_mac, take(s, &used, r, 6), 6);
        break;
    }
}

static void fill_raft_small(struct wire_sample *s, struct sample_rng *r)
{
    struct msg *m = &s->m;
    size_t used = 0;
    uint64_t term = 1 + rng_below(r, 1000);
    switch (m->hdr.type) {
    case MSG_VOTE_REQUEST:
        m->u.vote_request =
            (struct msg_vote_request){term, rng_next(r) >> 8, term - 1, (uint8_t)rng_below(r, 4)};
        break;
    case MSG_VOTE_RESPONSE:
        m->u.vote_response =
            (struct msg_vote_response){term, (uint8_t)rng_below(r, 2), (uint8_t)rng_below(r, 2)};
        break;
    case MSG_APPEND_RESPONSE:
        m->u.append_response = (struct msg_append_response){
            term,       (uint8_t)rng_below(r, 2), rng_next(r), rng_next(r), rng_next(r), term,
            rng_next(r)};
        break;
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        m->u.snapshot_response = (struct msg_install_snapshot_response){
            term, rng_next(r) >> 8, rng_next(r) >> 30, (uint8_t)rng_below(r, 2)};
        break;
    case MSG_TIMEOUT_NOW:
        m->u.timeout_now.term = term;
        break;
    case MSG_HEARTBEAT:
        m->u.heartbeat = (struct msg_heartbeat){term, rng_next(r), rng_next(r), rng_next(r), {0}};
        memcpy(m->u.heartbeat.digest, take(s, &used, r, MSG_DIGEST_LEN), MSG_DIGEST_LEN);
        break;
    default:
        m->u.heartbeat_response =
            (struct msg_heartbeat_response){term, rng_next(r), rng_next(r), rng_next(r), {0}};
        memcpy(m->u.heartbeat_response.digest, take(s, &used, r, MSG_DIGEST_LEN), MSG_DIGEST_LEN);
        break;
    }
}

void wire_sample_fill(struct wire_sample *s, uint8_t type, uint32_t variant)
{
    struct sample_rng r = {((uint64_t)type << 32) ^ variant ^ 0x6f72646f00000000ull};
    memset(&s->m, 0, sizeof(s->m));
    s->m.hdr.type = type;
    s->m.hdr.cluster_id = 0x2a;
    s->m.hdr.sender = msg_type_is_peer(type) ? 1 + rng_below(&r, 5) : 0;
    switch (type) {
    case MSG_CLIENT_REQUEST:
    case MSG_CLIENT_REPLY:
    case MSG_REDIRECT:
        fill_client(s, &r, variant);
        break;
    case MSG_APPEND_ENTRIES:
        fill_append(s, &r, variant);
        break;
    case MSG_INSTALL_SNAPSHOT:
        fill_snapshot(s, &r, variant);
        break;
    default:
        fill_raft_small(s, &r);
        break;
    }
}

const struct wire_key *wire_sample_multi_item(struct wire_sample *s, uint8_t type, uint32_t i)
{
    static struct wire_key key;
    uint8_t item = MSG_CLIENT_REQUEST;
    if (type == MSG_CLIENT_MULTI_REPLY) {
        item = i % 3 == 2 ? MSG_REDIRECT : MSG_CLIENT_REPLY;
    }
    wire_sample_fill(s, item, i % 5);
    /* Small items, so that MSG_MULTI_MAX of them fit one frame. */
    if (s->m.u.request.args_len > 64 && item == MSG_CLIENT_REQUEST) {
        s->m.u.request.args_len = 64;
    }
    if (s->m.u.reply.result_len > 64 && item == MSG_CLIENT_REPLY) {
        s->m.u.reply.result_len = 64;
    }
    wire_sample_key(&key, 2);
    return i % 2 == 1 ? &key : NULL;
}

int wire_sample_multi(uint8_t type, uint32_t n, uint8_t *buf, size_t cap)
{
    static struct wire_sample s;
    struct wire_multi_wr w;
    int rc = wire_multi_start(&w, type, 0x2a, 0, buf, cap);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const struct wire_key *key = wire_sample_multi_item(&s, type, i);
        rc = wire_multi_add_msg(&w, &s.m, key);
    }
    return rc < 0 ? rc : wire_multi_finish(&w);
}

void wire_sample_key(struct wire_key *key, uint8_t seed)
{
    for (size_t i = 0; i < sizeof(key->bytes); i++) {
        key->bytes[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
    }
}

#define DIFF(f)                                                                                    \
    do {                                                                                           \
        if (a->f != b->f) {                                                                        \
            return #f;                                                                             \
        }                                                                                          \
    } while (0)
#define DIFF_BYTES(p, q, n, name)                                                                  \
    do {                                                                                           \
        if ((n) > 0 && memcmp((p), (q), (n)) != 0) {                                               \
            return name;                                                                           \
        }                                                                                          \
    } while (0)

static const char *diff_client(const struct msg *a, const struct msg *b)
{
    switch (a->hdr.type) {
    case MSG_CLIENT_REQUEST:
        DIFF(u.request.client_id);
        DIFF(u.request.request_no);
        DIFF(u.request.flags);
        DIFF(u.request.op);
        DIFF(u.request.args_len);
        DIFF_BYTES(a->u.request.args, b->u.request.args, a->u.request.args_len, "args");
        return NULL;
    case MSG_CLIENT_REPLY:
        DIFF(u.reply.client_id);
        DIFF(u.reply.request_no);
        DIFF(u.reply.status);
        DIFF(u.reply.result_len);
        DIFF_BYTES(a->u.reply.result, b->u.reply.result, a->u.reply.result_len, "result");
        return NULL;
    default:
        DIFF(u.redirect.client_id);
        DIFF(u.redirect.request_no);
        DIFF(u.redirect.leader_id);
        DIFF(u.redirect.leader_ipv4);
        DIFF(u.redirect.leader_port);
        DIFF_BYTES(a->u.redirect.leader_mac, b->u.redirect.leader_mac, 6, "leader_mac");
        return NULL;
    }
}

static const char *diff_append(const struct msg *a, const struct msg *b)
{
    DIFF(u.append.term);
    DIFF(u.append.prev_log_index);
    DIFF(u.append.prev_log_term);
    DIFF(u.append.leader_commit);
    DIFF(u.append.n_entries);
    for (uint32_t i = 0; i < a->u.append.n_entries; i++) {
        const struct msg_entry *x = &a->u.append.entries[i];
        const struct msg_entry *y = &b->u.append.entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type || x->len != y->len) {
            return "entry header";
        }
        DIFF_BYTES(x->data, y->data, x->len, "entry data");
    }
    return NULL;
}

static const char *diff_snapshot(const struct msg *a, const struct msg *b)
{
    DIFF(u.snapshot.term);
    DIFF(u.snapshot.last_index);
    DIFF(u.snapshot.last_term);
    DIFF(u.snapshot.total_len);
    DIFF(u.snapshot.offset);
    DIFF(u.snapshot.done);
    DIFF(u.snapshot.config.n);
    for (uint32_t i = 0; i < a->u.snapshot.config.n; i++) {
        DIFF(u.snapshot.config.servers[i].id);
        DIFF(u.snapshot.config.servers[i].role);
    }
    DIFF(u.snapshot.chunk_len);
    DIFF_BYTES(a->u.snapshot.chunk, b->u.snapshot.chunk, a->u.snapshot.chunk_len, "chunk");
    return NULL;
}

static const char *diff_raft_small(const struct msg *a, const struct msg *b)
{
    switch (a->hdr.type) {
    case MSG_VOTE_REQUEST:
        DIFF(u.vote_request.term);
        DIFF(u.vote_request.last_log_index);
        DIFF(u.vote_request.last_log_term);
        DIFF(u.vote_request.flags);
        return NULL;
    case MSG_VOTE_RESPONSE:
        DIFF(u.vote_response.term);
        DIFF(u.vote_response.granted);
        DIFF(u.vote_response.pre_vote);
        return NULL;
    case MSG_APPEND_RESPONSE:
        DIFF(u.append_response.term);
        DIFF(u.append_response.success);
        DIFF(u.append_response.match_index);
        DIFF(u.append_response.reject_index);
        DIFF(u.append_response.conflict_index);
        DIFF(u.append_response.conflict_term);
        DIFF(u.append_response.last_log_index);
        return NULL;
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        DIFF(u.snapshot_response.term);
        DIFF(u.snapshot_response.last_index);
        DIFF(u.snapshot_response.next_offset);
        DIFF(u.snapshot_response.done);
        return NULL;
    default:
        return NULL;
    }
}

static const char *diff_heartbeats(const struct msg *a, const struct msg *b)
{
    const struct msg_heartbeat_response *x = &a->u.heartbeat_response;
    const struct msg_heartbeat_response *y = &b->u.heartbeat_response;
    switch (a->hdr.type) {
    case MSG_TIMEOUT_NOW:
        DIFF(u.timeout_now.term);
        return NULL;
    case MSG_HEARTBEAT:
        DIFF(u.heartbeat.term);
        DIFF(u.heartbeat.leader_commit);
        DIFF(u.heartbeat.read_ctx);
        DIFF(u.heartbeat.digest_index);
        DIFF_BYTES(a->u.heartbeat.digest, b->u.heartbeat.digest, MSG_DIGEST_LEN, "digest");
        return NULL;
    default:
        DIFF(u.heartbeat_response.term);
        DIFF(u.heartbeat_response.read_ctx);
        DIFF(u.heartbeat_response.last_log_index);
        DIFF(u.heartbeat_response.digest_index);
        DIFF_BYTES(x->digest, y->digest, MSG_DIGEST_LEN, "digest");
        return NULL;
    }
}

/* Header fields the encoder computes (version, body_len, the MSG_HDR_MAC bit) are not
 * compared: a message built by hand leaves them unset. */
const char *wire_sample_diff(const struct msg *a, const struct msg *b)
{
    DIFF(hdr.type);
    DIFF(hdr.cluster_id);
    DIFF(hdr.sender);
    if ((a->hdr.flags & ~MSG_HDR_MAC) != (b->hdr.flags & ~MSG_HDR_MAC)) {
        return "hdr.flags";
    }
    switch (a->hdr.type) {
    case MSG_CLIENT_REQUEST:
    case MSG_CLIENT_REPLY:
    case MSG_REDIRECT:
        return diff_client(a, b);
    case MSG_APPEND_ENTRIES:
        return diff_append(a, b);
    case MSG_INSTALL_SNAPSHOT:
        return diff_snapshot(a, b);
    case MSG_TIMEOUT_NOW:
    case MSG_HEARTBEAT:
    case MSG_HEARTBEAT_RESPONSE:
        return diff_heartbeats(a, b);
    default:
        return diff_raft_small(a, b);
    }
}
