/* The Ordo message codec (layout in docs/protocol.md). Pure: libsodium for the MAC and
 * nothing else outside the C library. Decoding must never read past the buffer and never
 * trust a length before checking it against what is left. */
#include "engine/wire.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "engine/err.h"
#include "engine/ordo_assert.h"

/* Fixed part of each body, in bytes (docs/protocol.md has the field offsets). */
#define BODY_REQUEST 23u
#define BODY_REPLY 21u
#define BODY_REDIRECT 32u
#define BODY_VOTE_REQUEST 25u
#define BODY_VOTE_RESPONSE 10u
#define BODY_APPEND 36u
#define BODY_ENTRY 13u
#define BODY_APPEND_RESPONSE 49u
#define BODY_SNAPSHOT 46u
#define BODY_SERVER 5u
#define BODY_SNAPSHOT_RESPONSE 25u
#define BODY_TIMEOUT_NOW 8u
#define BODY_HEARTBEAT 64u
#define BODY_HEARTBEAT_RESPONSE 64u

#define HDR_FLAGS_KNOWN MSG_HDR_MAC
#define REQ_FLAGS_KNOWN (MSG_REQ_NO_SESSION | MSG_REQ_READ | MSG_REQ_REGISTER)
#define VOTE_FLAGS_KNOWN (MSG_VOTE_PRE | MSG_VOTE_TRANSFER)

static_assert(WIRE_MAC_OFF + MSG_MAC_LEN == WIRE_HDR_LEN, "MAC is the last header field");
static_assert(MSG_MAC_LEN == crypto_shorthash_siphashx24_BYTES, "SipHash-x24 fills the field");
static_assert(WIRE_KEY_LEN >= crypto_shorthash_siphashx24_KEYBYTES, "key holds a SipHash key");
static_assert(WIRE_MSG_LEN_MAX < (1u << 30), "lengths fit an int result");
static_assert(MSG_NODES_MAX <= 255, "server count fits a byte");

/* ---- little-endian cursors ---------------------------------------------------------- */

/* Writer: the encoder sizes the message first, so writes need no bound check. */
struct wire_wr {
    uint8_t *p;
    size_t off;
};

static void wr_u8(struct wire_wr *w, uint8_t v)
{
    w->p[w->off++] = v;
}

static void wr_u16(struct wire_wr *w, uint16_t v)
{
    wr_u8(w, (uint8_t)v);
    wr_u8(w, (uint8_t)(v >> 8));
}

static void wr_u32(struct wire_wr *w, uint32_t v)
{
    wr_u16(w, (uint16_t)v);
    wr_u16(w, (uint16_t)(v >> 16));
}

static void wr_u64(struct wire_wr *w, uint64_t v)
{
    wr_u32(w, (uint32_t)v);
    wr_u32(w, (uint32_t)(v >> 32));
}

static void wr_bytes(struct wire_wr *w, const uint8_t *src, size_t n)
{
    if (n > 0) {
        memcpy(w->p + w->off, src, n);
    }
    w->off += n;
}

/* Reader: every decoder calls rd_need before reading a fixed group of fields. */
struct wire_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static int rd_need(const struct wire_rd *r, size_t n)
{
    return r->len - r->off >= n ? 0 : ORDO_ETRUNCATED;
}

static uint8_t rd_u8(struct wire_rd *r)
{
    ORDO_DEBUG_ASSERT(r->off < r->len);
    return r->p[r->off++];
}

static uint16_t rd_u16(struct wire_rd *r)
{
    uint16_t lo = rd_u8(r);
    return (uint16_t)(lo | (uint16_t)(rd_u8(r) << 8));
}

static uint32_t rd_u32(struct wire_rd *r)
{
    uint32_t lo = rd_u16(r);
    return lo | (uint32_t)rd_u16(r) << 16;
}

static uint64_t rd_u64(struct wire_rd *r)
{
    uint64_t lo = rd_u32(r);
    return lo | (uint64_t)rd_u32(r) << 32;
}

static const uint8_t *rd_ptr(struct wire_rd *r, size_t n)
{
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

/* The body must be consumed exactly: leftover bytes are garbage, not padding. */
static int rd_end(const struct wire_rd *r)
{
    return r->off == r->len ? 0 : ORDO_EMALFORMED;
}

static int is_bool(uint8_t v)
{
    return v <= 1;
}

/* ---- library state, MAC --------------------------------------------------------------- */

int wire_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

/* SipHash-x24 (128-bit output) keyed with the first 16 key bytes, over a message whose
 * MAC field is already zero. docs/protocol.md gives the measured reason for SipHash. */
static void wire_mac_zeroed(const struct wire_key *key, const uint8_t *msg, size_t len,
                            uint8_t out[MSG_MAC_LEN])
{
    ORDO_ASSERT(len >= WIRE_HDR_LEN);
    crypto_shorthash_siphashx24(out, msg, len, key->bytes);
}

/* The MAC of a received (const) message: SipHash has no streaming interface, so the
 * message is copied to zero its MAC field. The copy is part of the measured cost. */
static void wire_mac_copy(const struct wire_key *key, const uint8_t *msg, size_t len,
                          uint8_t out[MSG_MAC_LEN])
{
    uint8_t tmp[WIRE_MSG_LEN_MAX];
    ORDO_ASSERT(len >= WIRE_HDR_LEN && len <= sizeof(tmp));
    memcpy(tmp, msg, len);
    memset(tmp + WIRE_MAC_OFF, 0, MSG_MAC_LEN);
    wire_mac_zeroed(key, tmp, len, out);
}

static int type_is_multi(uint8_t type)
{
    return type == MSG_CLIENT_MULTI_REQUEST || type == MSG_CLIENT_MULTI_REPLY;
}

/* The item types a multi frame of type outer may carry. */
static int multi_item_allowed(uint8_t outer, uint8_t item)
{
    if (outer == MSG_CLIENT_MULTI_REQUEST) {
        return item == MSG_CLIENT_REQUEST;
    }
    return item == MSG_CLIENT_REPLY || item == MSG_REDIRECT;
}

static int type_known(uint8_t type)
{
    switch (type) {
    case MSG_CLIENT_REQUEST:
    case MSG_CLIENT_REPLY:
    case MSG_REDIRECT:
    case MSG_CLIENT_MULTI_REQUEST:
    case MSG_CLIENT_MULTI_REPLY:
    case MSG_VOTE_REQUEST:
    case MSG_VOTE_RESPONSE:
    case MSG_APPEND_ENTRIES:
    case MSG_APPEND_RESPONSE:
    case MSG_INSTALL_SNAPSHOT:
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
    case MSG_TIMEOUT_NOW:
    case MSG_HEARTBEAT:
    case MSG_HEARTBEAT_RESPONSE:
        return 1;
    default:
        return 0;
    }
}

/* Multi frames (end of file): the prefix reader, and the check of every item. */
static int decode_multi(struct wire_rd *r, struct msg_multi *mm);
static int multi_check(const struct msg *m);

/* ---- configuration ------------------------------------------------------------------ */

static int config_valid(const struct msg_config *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        const struct msg_server *s = &c->servers[i];
        if (s->id == MSG_NODE_NONE || (s->role != MSG_ROLE_VOTER && s->role != MSG_ROLE_LEARNER)) {
            return 0;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (c->servers[j].id == s->id) {
                return 0;
            }
        }
    }
    return 1;
}

static void config_write(struct wire_wr *w, const struct msg_config *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        wr_u32(w, c->servers[i].id);
        wr_u8(w, c->servers[i].role);
    }
}

/* Reads n servers (count already read and bounded). */
static int config_read(struct wire_rd *r, uint32_t n, struct msg_config *out)
{
    ORDO_ASSERT(n <= MSG_NODES_MAX);
    memset(out, 0, sizeof(*out));
    int rc = rd_need(r, (size_t)n * BODY_SERVER);
    if (rc < 0) {
        return rc;
    }
    out->n = n;
    for (uint32_t i = 0; i < n; i++) {
        out->servers[i].id = rd_u32(r);
        out->servers[i].role = rd_u8(r);
    }
    return config_valid(out) ? 0 : ORDO_EMALFORMED;
}

int wire_config_encode(const struct msg_config *c, uint8_t *buf, size_t cap)
{
    if (c->n > MSG_NODES_MAX) {
        return ORDO_ETOOBIG;
    }
    if (!config_valid(c)) {
        return -EINVAL;
    }
    size_t len = 1 + (size_t)c->n * BODY_SERVER;
    if (cap < len) {
        return ORDO_ENOSPACE;
    }
    struct wire_wr w = {buf, 0};
    wr_u8(&w, (uint8_t)c->n);
    config_write(&w, c);
    ORDO_ASSERT(w.off == len);
    return (int)len;
}

int wire_config_decode(const uint8_t *buf, size_t len, struct msg_config *out)
{
    struct wire_rd r = {buf, len, 0};
    if (len < 1) {
        return ORDO_ETRUNCATED;
    }
    uint32_t n = rd_u8(&r);
    if (n > MSG_NODES_MAX) {
        return ORDO_ETOOBIG;
    }
    int rc = config_read(&r, n, out);
    return rc < 0 ? rc : rd_end(&r);
}

/* ---- field rules shared by the encoder (-EINVAL) and the decoder (ORDO_EMALFORMED) ---- */

static int entries_valid(const struct msg_append_entries *a)
{
    if (a->n_entries > 0 && a->entries == NULL) {
        return 0;
    }
    /* Entry i has index prev_log_index + 1 + i: that must not wrap. */
    if (a->prev_log_index > UINT64_MAX - a->n_entries) {
        return 0;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct msg_entry *e = &a->entries[i];
        if (e->type < MSG_ENTRY_NOOP || e->type > MSG_ENTRY_CONFIG) {
            return 0;
        }
        if ((e->len > 0 && e->data == NULL) || e->index != a->prev_log_index + 1 + i) {
            return 0;
        }
    }
    return 1;
}

static int snapshot_valid(const struct msg_install_snapshot *s)
{
    if (!config_valid(&s->config) || !is_bool(s->done)) {
        return 0;
    }
    if (s->chunk_len > 0 && s->chunk == NULL) {
        return 0;
    }
    /* The chunk lies inside the snapshot, and the last chunk ends it. */
    if (s->offset > s->total_len || s->total_len - s->offset < s->chunk_len) {
        return 0;
    }
    return !s->done || s->offset + s->chunk_len == s->total_len;
}

/* Known flags only; a registration goes through the log and the session table, so it can
 * be neither a read nor a no-session request. */
static int req_flags_valid(uint16_t flags)
{
    if (flags & ~REQ_FLAGS_KNOWN) {
        return 0;
    }
    return !(flags & MSG_REQ_REGISTER) || !(flags & (MSG_REQ_NO_SESSION | MSG_REQ_READ));
}

static int body_valid(const struct msg *m)
{
    const struct msg_client_request *req = &m->u.request;
    const struct msg_client_reply *rep = &m->u.reply;
    switch (m->hdr.type) {
    case MSG_CLIENT_REQUEST:
        return req_flags_valid(req->flags) && (req->args_len == 0 || req->args != NULL);
    case MSG_CLIENT_REPLY:
        return rep->status <= MSG_STATUS_STOPPED && (rep->result_len == 0 || rep->result != NULL);
    case MSG_VOTE_REQUEST:
        return !(m->u.vote_request.flags & ~VOTE_FLAGS_KNOWN);
    case MSG_VOTE_RESPONSE:
        return is_bool(m->u.vote_response.granted) && is_bool(m->u.vote_response.pre_vote);
    case MSG_APPEND_ENTRIES:
        return entries_valid(&m->u.append);
    case MSG_APPEND_RESPONSE:
        return is_bool(m->u.append_response.success);
    case MSG_INSTALL_SNAPSHOT:
        return snapshot_valid(&m->u.snapshot);
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        return is_bool(m->u.snapshot_response.done);
    default:
        return 1;
    }
}

/* Body length of m, or ORDO_EBADTYPE / ORDO_ETOOBIG. */
static int body_len_of(const struct msg *m, size_t *out)
{
    size_t n = 0;
    switch (m->hdr.type) {
    case MSG_CLIENT_REQUEST:
        n = BODY_REQUEST + (size_t)m->u.request.args_len;
        break;
    case MSG_CLIENT_REPLY:
        n = BODY_REPLY + (size_t)m->u.reply.result_len;
        break;
    case MSG_APPEND_ENTRIES:
        if (m->u.append.n_entries > MSG_ENTRIES_MAX) {
            return ORDO_ETOOBIG;
        }
        n = BODY_APPEND;
        for (uint32_t i = 0; i < m->u.append.n_entries && m->u.append.entries != NULL; i++) {
            n += BODY_ENTRY + (size_t)m->u.append.entries[i].len;
        }
        break;
    case MSG_INSTALL_SNAPSHOT:
        if (m->u.snapshot.config.n > MSG_NODES_MAX) {
            return ORDO_ETOOBIG;
        }
        n = BODY_SNAPSHOT + (size_t)m->u.snapshot.config.n * BODY_SERVER +
            (size_t)m->u.snapshot.chunk_len;
        break;
    case MSG_REDIRECT:
        n = BODY_REDIRECT;
        break;
    case MSG_CLIENT_MULTI_REQUEST:
    case MSG_CLIENT_MULTI_REPLY:
        n = WIRE_MULTI_PREFIX_LEN + (size_t)m->u.multi.items_len;
        break;
    case MSG_VOTE_REQUEST:
        n = BODY_VOTE_REQUEST;
        break;
    case MSG_VOTE_RESPONSE:
        n = BODY_VOTE_RESPONSE;
        break;
    case MSG_APPEND_RESPONSE:
        n = BODY_APPEND_RESPONSE;
        break;
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        n = BODY_SNAPSHOT_RESPONSE;
        break;
    case MSG_TIMEOUT_NOW:
        n = BODY_TIMEOUT_NOW;
        break;
    case MSG_HEARTBEAT:
        n = BODY_HEARTBEAT;
        break;
    case MSG_HEARTBEAT_RESPONSE:
        n = BODY_HEARTBEAT_RESPONSE;
        break;
    default:
        return ORDO_EBADTYPE;
    }
    if (n > WIRE_BODY_LEN_MAX) {
        return ORDO_ETOOBIG;
    }
    *out = n;
    return 0;
}

size_t wire_encoded_len(const struct msg *m)
{
    size_t n = 0;
    return body_len_of(m, &n) < 0 ? 0 : WIRE_HDR_LEN + n;
}

/* ---- encoder -------------------------------------------------------------------------- */

static void encode_client(struct wire_wr *w, const struct msg *m)
{
    const struct msg_client_request *req = &m->u.request;
    const struct msg_client_reply *rep = &m->u.reply;
    const struct msg_redirect *red = &m->u.redirect;
    switch (m->hdr.type) {
    case MSG_CLIENT_REQUEST:
        wr_u64(w, req->client_id);
        wr_u64(w, req->request_no);
        wr_u16(w, req->flags);
        wr_u8(w, req->op);
        wr_u32(w, req->args_len);
        wr_bytes(w, req->args, req->args_len);
        break;
    case MSG_CLIENT_REPLY:
        wr_u64(w, rep->client_id);
        wr_u64(w, rep->request_no);
        wr_u8(w, rep->status);
        wr_u32(w, rep->result_len);
        wr_bytes(w, rep->result, rep->result_len);
        break;
    default:
        ORDO_ASSERT(m->hdr.type == MSG_REDIRECT);
        wr_u64(w, red->client_id);
        wr_u64(w, red->request_no);
        wr_u32(w, red->leader_id);
        /* Already in network byte order: copied as is. */
        wr_bytes(w, (const uint8_t *)&red->leader_ipv4, 4);
        wr_u16(w, red->leader_port);
        wr_bytes(w, red->leader_mac, sizeof(red->leader_mac));
        break;
    }
}

static void encode_append(struct wire_wr *w, const struct msg_append_entries *a)
{
    wr_u64(w, a->term);
    wr_u64(w, a->prev_log_index);
    wr_u64(w, a->prev_log_term);
    wr_u64(w, a->leader_commit);
    wr_u32(w, a->n_entries);
    for (uint32_t i = 0; i < a->n_entries; i++) {
        wr_u64(w, a->entries[i].term);
        wr_u8(w, a->entries[i].type);
        wr_u32(w, a->entries[i].len);
        wr_bytes(w, a->entries[i].data, a->entries[i].len);
    }
}

static void encode_snapshot(struct wire_wr *w, const struct msg_install_snapshot *s)
{
    wr_u64(w, s->term);
    wr_u64(w, s->last_index);
    wr_u64(w, s->last_term);
    wr_u64(w, s->total_len);
    wr_u64(w, s->offset);
    wr_u8(w, s->done);
    wr_u8(w, (uint8_t)s->config.n);
    wr_u32(w, s->chunk_len);
    config_write(w, &s->config);
    wr_bytes(w, s->chunk, s->chunk_len);
}

static void encode_votes(struct wire_wr *w, const struct msg *m)
{
    const struct msg_vote_request *vq = &m->u.vote_request;
    const struct msg_vote_response *vr = &m->u.vote_response;
    const struct msg_append_response *ar = &m->u.append_response;
    switch (m->hdr.type) {
    case MSG_VOTE_REQUEST:
        wr_u64(w, vq->term);
        wr_u64(w, vq->last_log_index);
        wr_u64(w, vq->last_log_term);
        wr_u8(w, vq->flags);
        break;
    case MSG_VOTE_RESPONSE:
        wr_u64(w, vr->term);
        wr_u8(w, vr->granted);
        wr_u8(w, vr->pre_vote);
        break;
    default:
        ORDO_ASSERT(m->hdr.type == MSG_APPEND_RESPONSE);
        wr_u64(w, ar->term);
        wr_u8(w, ar->success);
        wr_u64(w, ar->match_index);
        wr_u64(w, ar->reject_index);
        wr_u64(w, ar->conflict_index);
        wr_u64(w, ar->conflict_term);
        wr_u64(w, ar->last_log_index);
        break;
    }
}

static void encode_small(struct wire_wr *w, const struct msg *m)
{
    const struct msg_install_snapshot_response *sr = &m->u.snapshot_response;
    const struct msg_heartbeat *hb = &m->u.heartbeat;
    const struct msg_heartbeat_response *hr = &m->u.heartbeat_response;
    switch (m->hdr.type) {
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        wr_u64(w, sr->term);
        wr_u64(w, sr->last_index);
        wr_u64(w, sr->next_offset);
        wr_u8(w, sr->done);
        break;
    case MSG_TIMEOUT_NOW:
        wr_u64(w, m->u.timeout_now.term);
        break;
    case MSG_HEARTBEAT:
        wr_u64(w, hb->term);
        wr_u64(w, hb->leader_commit);
        wr_u64(w, hb->read_ctx);
        wr_u64(w, hb->digest_index);
        wr_bytes(w, hb->digest, MSG_DIGEST_LEN);
        break;
    default:
        ORDO_ASSERT(m->hdr.type == MSG_HEARTBEAT_RESPONSE);
        wr_u64(w, hr->term);
        wr_u64(w, hr->read_ctx);
        wr_u64(w, hr->last_log_index);
        wr_u64(w, hr->digest_index);
        wr_bytes(w, hr->digest, MSG_DIGEST_LEN);
        break;
    }
}

static void encode_body(struct wire_wr *w, const struct msg *m)
{
    switch (m->hdr.type) {
    case MSG_CLIENT_REQUEST:
    case MSG_CLIENT_REPLY:
    case MSG_REDIRECT:
        encode_client(w, m);
        break;
    case MSG_CLIENT_MULTI_REQUEST:
    case MSG_CLIENT_MULTI_REPLY:
        wr_u8(w, m->u.multi.version);
        wr_u8(w, m->u.multi.n);
        wr_u16(w, 0);
        wr_bytes(w, m->u.multi.items, m->u.multi.items_len);
        break;
    case MSG_APPEND_ENTRIES:
        encode_append(w, &m->u.append);
        break;
    case MSG_INSTALL_SNAPSHOT:
        encode_snapshot(w, &m->u.snapshot);
        break;
    case MSG_VOTE_REQUEST:
    case MSG_VOTE_RESPONSE:
    case MSG_APPEND_RESPONSE:
        encode_votes(w, m);
        break;
    default:
        encode_small(w, m);
        break;
    }
}

static int encode_check(const struct msg *m, const struct wire_key *key)
{
    if (!type_known(m->hdr.type)) {
        return ORDO_EBADTYPE;
    }
    if (m->hdr.flags & ~HDR_FLAGS_KNOWN) {
        return -EINVAL;
    }
    /* Peer messages are always authenticated and always name their sender. */
    if (msg_type_is_peer(m->hdr.type) && (key == NULL || m->hdr.sender == MSG_NODE_NONE)) {
        return -EINVAL;
    }
    /* A multi frame's items carry their own MACs; the frame itself has none. */
    if (type_is_multi(m->hdr.type)) {
        int rc = key != NULL ? -EINVAL : multi_check(m);
        return rc == ORDO_ETOOBIG ? rc : rc < 0 ? -EINVAL : 0;
    }
    return body_valid(m) ? 0 : -EINVAL;
}

/* The 40-byte header with a zero MAC field. */
static void write_header(struct wire_wr *w, const struct msg_header *h, uint16_t flags,
                         uint32_t body_len)
{
    wr_u32(w, WIRE_MAGIC);
    wr_u8(w, WIRE_VERSION);
    wr_u8(w, h->type);
    wr_u16(w, flags);
    wr_u32(w, h->cluster_id);
    wr_u32(w, h->sender);
    wr_u32(w, body_len);
    wr_u32(w, 0);
    memset(w->p + w->off, 0, MSG_MAC_LEN);
    w->off += MSG_MAC_LEN;
}

int wire_encode(const struct msg *m, const struct wire_key *key, uint8_t *buf, size_t cap)
{
    size_t body_len = 0;
    /* Bounds first: the field checks walk the entries, so their count must be sane. */
    int rc = body_len_of(m, &body_len);
    if (rc == 0) {
        rc = encode_check(m, key);
    }
    if (rc < 0) {
        return rc;
    }
    size_t len = WIRE_HDR_LEN + body_len;
    if (cap < len) {
        return ORDO_ENOSPACE;
    }
    uint16_t flags = (uint16_t)(m->hdr.flags & ~MSG_HDR_MAC);
    struct wire_wr w = {buf, 0};
    write_header(&w, &m->hdr, key != NULL ? (uint16_t)(flags | MSG_HDR_MAC) : flags,
                 (uint32_t)body_len);
    encode_body(&w, m);
    ORDO_ASSERT(w.off == len);
    if (key != NULL) {
        wire_mac_zeroed(key, buf, len, buf + WIRE_MAC_OFF);
    }
    return (int)len;
}

/* ---- decoder -------------------------------------------------------------------------- */

int wire_peek_header(const uint8_t *buf, size_t len, struct msg_header *hdr)
{
    if (len < WIRE_HDR_LEN) {
        return ORDO_ETRUNCATED;
    }
    if (len > WIRE_MSG_LEN_MAX) {
        return ORDO_ETOOBIG;
    }
    struct wire_rd r = {buf, len, 0};
    if (rd_u32(&r) != WIRE_MAGIC) {
        return ORDO_EBADMAGIC;
    }
    hdr->version = rd_u8(&r);
    hdr->type = rd_u8(&r);
    hdr->flags = rd_u16(&r);
    hdr->cluster_id = rd_u32(&r);
    hdr->sender = rd_u32(&r);
    hdr->body_len = rd_u32(&r);
    uint32_t reserved = rd_u32(&r);
    if (hdr->version != WIRE_VERSION) {
        return ORDO_EVERSION;
    }
    if (!type_known(hdr->type)) {
        return ORDO_EBADTYPE;
    }
    if (reserved != 0 || (hdr->flags & ~HDR_FLAGS_KNOWN)) {
        return ORDO_EMALFORMED;
    }
    if (hdr->body_len > WIRE_BODY_LEN_MAX) {
        return ORDO_ETOOBIG;
    }
    if (hdr->body_len > len - WIRE_HDR_LEN) {
        return ORDO_ETRUNCATED;
    }
    if (hdr->body_len < len - WIRE_HDR_LEN) {
        return ORDO_EMALFORMED;
    }
    if (msg_type_is_peer(hdr->type) &&
        (!(hdr->flags & MSG_HDR_MAC) || hdr->sender == MSG_NODE_NONE)) {
        return ORDO_EMALFORMED;
    }
    if (type_is_multi(hdr->type) && (hdr->flags & MSG_HDR_MAC)) {
        return ORDO_EMALFORMED;
    }
    /* Without the flag the MAC field must be zero, so every accepted message has exactly
     * one encoding (the fuzz target checks re-encoding byte for byte). */
    if (!(hdr->flags & MSG_HDR_MAC) && !sodium_is_zero(buf + WIRE_MAC_OFF, MSG_MAC_LEN)) {
        return ORDO_EMALFORMED;
    }
    return 0;
}

static int decode_client(struct wire_rd *r, struct msg *m)
{
    struct msg_client_request *req = &m->u.request;
    struct msg_client_reply *rep = &m->u.reply;
    struct msg_redirect *red = &m->u.redirect;
    if (m->hdr.type == MSG_CLIENT_REQUEST) {
        if (rd_need(r, BODY_REQUEST) < 0) {
            return ORDO_ETRUNCATED;
        }
        req->client_id = rd_u64(r);
        req->request_no = rd_u64(r);
        req->flags = rd_u16(r);
        req->op = rd_u8(r);
        req->args_len = rd_u32(r);
        if (rd_need(r, req->args_len) < 0) {
            return ORDO_ETRUNCATED;
        }
        req->args = rd_ptr(r, req->args_len);
        return 0;
    }
    if (m->hdr.type == MSG_CLIENT_REPLY) {
        if (rd_need(r, BODY_REPLY) < 0) {
            return ORDO_ETRUNCATED;
        }
        rep->client_id = rd_u64(r);
        rep->request_no = rd_u64(r);
        rep->status = rd_u8(r);
        rep->result_len = rd_u32(r);
        if (rd_need(r, rep->result_len) < 0) {
            return ORDO_ETRUNCATED;
        }
        rep->result = rd_ptr(r, rep->result_len);
        return 0;
    }
    if (rd_need(r, BODY_REDIRECT) < 0) {
        return ORDO_ETRUNCATED;
    }
    red->client_id = rd_u64(r);
    red->request_no = rd_u64(r);
    red->leader_id = rd_u32(r);
    memcpy(&red->leader_ipv4, rd_ptr(r, 4), 4);
    red->leader_port = rd_u16(r);
    memcpy(red->leader_mac, rd_ptr(r, sizeof(red->leader_mac)), sizeof(red->leader_mac));
    return 0;
}

static int decode_append(struct wire_rd *r, struct msg_append_entries *a, struct msg_entry *entries,
                         uint32_t entries_cap)
{
    if (rd_need(r, BODY_APPEND) < 0) {
        return ORDO_ETRUNCATED;
    }
    a->term = rd_u64(r);
    a->prev_log_index = rd_u64(r);
    a->prev_log_term = rd_u64(r);
    a->leader_commit = rd_u64(r);
    a->n_entries = rd_u32(r);
    a->entries = entries;
    if (a->n_entries > MSG_ENTRIES_MAX) {
        return ORDO_ETOOBIG;
    }
    /* Each entry needs its fixed part: a count the body cannot hold is a truncation. */
    if ((size_t)a->n_entries * BODY_ENTRY > r->len - r->off) {
        return ORDO_ETRUNCATED;
    }
    if (a->n_entries > entries_cap) {
        return ORDO_ENOSPACE;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        struct msg_entry *e = &entries[i];
        if (rd_need(r, BODY_ENTRY) < 0) {
            return ORDO_ETRUNCATED;
        }
        e->term = rd_u64(r);
        e->type = rd_u8(r);
        e->len = rd_u32(r);
        e->index = a->prev_log_index + 1 + i;
        if (rd_need(r, e->len) < 0) {
            return ORDO_ETRUNCATED;
        }
        e->data = rd_ptr(r, e->len);
    }
    return 0;
}

static int decode_snapshot(struct wire_rd *r, struct msg_install_snapshot *s)
{
    if (rd_need(r, BODY_SNAPSHOT) < 0) {
        return ORDO_ETRUNCATED;
    }
    s->term = rd_u64(r);
    s->last_index = rd_u64(r);
    s->last_term = rd_u64(r);
    s->total_len = rd_u64(r);
    s->offset = rd_u64(r);
    s->done = rd_u8(r);
    uint32_t n = rd_u8(r);
    s->chunk_len = rd_u32(r);
    if (n > MSG_NODES_MAX) {
        return ORDO_ETOOBIG;
    }
    int rc = config_read(r, n, &s->config);
    if (rc < 0) {
        return rc;
    }
    if (rd_need(r, s->chunk_len) < 0) {
        return ORDO_ETRUNCATED;
    }
    s->chunk = rd_ptr(r, s->chunk_len);
    return 0;
}

static void decode_votes(struct wire_rd *r, struct msg *m)
{
    struct msg_vote_request *vq = &m->u.vote_request;
    struct msg_vote_response *vr = &m->u.vote_response;
    struct msg_append_response *ar = &m->u.append_response;
    switch (m->hdr.type) {
    case MSG_VOTE_REQUEST:
        vq->term = rd_u64(r);
        vq->last_log_index = rd_u64(r);
        vq->last_log_term = rd_u64(r);
        vq->flags = rd_u8(r);
        break;
    case MSG_VOTE_RESPONSE:
        vr->term = rd_u64(r);
        vr->granted = rd_u8(r);
        vr->pre_vote = rd_u8(r);
        break;
    default:
        ar->term = rd_u64(r);
        ar->success = rd_u8(r);
        ar->match_index = rd_u64(r);
        ar->reject_index = rd_u64(r);
        ar->conflict_index = rd_u64(r);
        ar->conflict_term = rd_u64(r);
        ar->last_log_index = rd_u64(r);
        break;
    }
}

static void decode_small(struct wire_rd *r, struct msg *m)
{
    struct msg_install_snapshot_response *sr = &m->u.snapshot_response;
    struct msg_heartbeat *hb = &m->u.heartbeat;
    struct msg_heartbeat_response *hr = &m->u.heartbeat_response;
    switch (m->hdr.type) {
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        sr->term = rd_u64(r);
        sr->last_index = rd_u64(r);
        sr->next_offset = rd_u64(r);
        sr->done = rd_u8(r);
        break;
    case MSG_TIMEOUT_NOW:
        m->u.timeout_now.term = rd_u64(r);
        break;
    case MSG_HEARTBEAT:
        hb->term = rd_u64(r);
        hb->leader_commit = rd_u64(r);
        hb->read_ctx = rd_u64(r);
        hb->digest_index = rd_u64(r);
        memcpy(hb->digest, rd_ptr(r, MSG_DIGEST_LEN), MSG_DIGEST_LEN);
        break;
    default:
        hr->term = rd_u64(r);
        hr->read_ctx = rd_u64(r);
        hr->last_log_index = rd_u64(r);
        hr->digest_index = rd_u64(r);
        memcpy(hr->digest, rd_ptr(r, MSG_DIGEST_LEN), MSG_DIGEST_LEN);
        break;
    }
}

/* Fixed-size bodies: their exact size, or 0 for bodies with variable parts. */
static size_t body_fixed_len(uint8_t type)
{
    switch (type) {
    case MSG_REDIRECT:
        return BODY_REDIRECT;
    case MSG_VOTE_REQUEST:
        return BODY_VOTE_REQUEST;
    case MSG_VOTE_RESPONSE:
        return BODY_VOTE_RESPONSE;
    case MSG_APPEND_RESPONSE:
        return BODY_APPEND_RESPONSE;
    case MSG_INSTALL_SNAPSHOT_RESPONSE:
        return BODY_SNAPSHOT_RESPONSE;
    case MSG_TIMEOUT_NOW:
        return BODY_TIMEOUT_NOW;
    case MSG_HEARTBEAT:
        return BODY_HEARTBEAT;
    case MSG_HEARTBEAT_RESPONSE:
        return BODY_HEARTBEAT_RESPONSE;
    default:
        return 0;
    }
}

static int decode_body(struct wire_rd *r, struct msg *m, struct msg_entry *entries,
                       uint32_t entries_cap)
{
    switch (m->hdr.type) {
    case MSG_CLIENT_REQUEST:
    case MSG_CLIENT_REPLY:
    case MSG_REDIRECT:
        return decode_client(r, m);
    case MSG_CLIENT_MULTI_REQUEST:
    case MSG_CLIENT_MULTI_REPLY:
        return decode_multi(r, &m->u.multi);
    case MSG_APPEND_ENTRIES:
        return decode_append(r, &m->u.append, entries, entries_cap);
    case MSG_INSTALL_SNAPSHOT:
        return decode_snapshot(r, &m->u.snapshot);
    default:
        break;
    }
    size_t fixed = body_fixed_len(m->hdr.type);
    ORDO_ASSERT(fixed > 0);
    if (rd_need(r, fixed) < 0) {
        return ORDO_ETRUNCATED;
    }
    if (m->hdr.type == MSG_VOTE_REQUEST || m->hdr.type == MSG_VOTE_RESPONSE ||
        m->hdr.type == MSG_APPEND_RESPONSE) {
        decode_votes(r, m);
    } else {
        decode_small(r, m);
    }
    return 0;
}

/* One message; a multi frame's items are not looked at (multi_check does that). */
static int decode_one(const uint8_t *buf, size_t len, struct msg *out, struct msg_entry *entries,
                      uint32_t entries_cap)
{
    memset(out, 0, sizeof(*out));
    int rc = wire_peek_header(buf, len, &out->hdr);
    if (rc < 0) {
        return rc;
    }
    struct wire_rd r = {buf + WIRE_HDR_LEN, out->hdr.body_len, 0};
    rc = decode_body(&r, out, entries, entries_cap);
    if (rc < 0) {
        return rc;
    }
    rc = rd_end(&r);
    if (rc < 0) {
        return rc;
    }
    /* The same rules the encoder enforces, so every accepted message re-encodes. */
    return body_valid(out) ? 0 : ORDO_EMALFORMED;
}

/* ---- multi-message frames ------------------------------------------------------------- */

static int decode_multi(struct wire_rd *r, struct msg_multi *mm)
{
    if (rd_need(r, WIRE_MULTI_PREFIX_LEN) < 0) {
        return ORDO_ETRUNCATED;
    }
    mm->version = rd_u8(r);
    mm->n = rd_u8(r);
    if (rd_u16(r) != 0) {
        return ORDO_EMALFORMED;
    }
    mm->items_len = (uint32_t)(r->len - r->off);
    mm->items = rd_ptr(r, mm->items_len);
    return 0;
}

void wire_multi_iter_init(struct wire_multi_iter *it, const struct msg *m)
{
    it->p = m->u.multi.items;
    it->len = m->u.multi.items_len;
    it->off = 0;
    it->type = m->hdr.type;
    it->cluster_id = m->hdr.cluster_id;
    it->sender = m->hdr.sender;
}

int wire_multi_next(struct wire_multi_iter *it, struct msg *item, const uint8_t **raw,
                    size_t *raw_len)
{
    if (it->off == it->len) {
        return 0;
    }
    struct wire_rd r = {it->p, it->len, it->off};
    if (rd_need(&r, WIRE_MULTI_ITEM_HDR_LEN) < 0) {
        return ORDO_ETRUNCATED;
    }
    uint16_t n = rd_u16(&r);
    if (rd_need(&r, n) < 0) {
        return ORDO_ETRUNCATED;
    }
    const uint8_t *p = rd_ptr(&r, n);
    struct msg_header hdr;
    /* Type first: decode_one must never see a nested multi frame (no recursion). */
    int rc = wire_peek_header(p, n, &hdr);
    if (rc < 0) {
        return rc;
    }
    if (!multi_item_allowed(it->type, hdr.type)) {
        return ORDO_EMALFORMED;
    }
    rc = decode_one(p, n, item, NULL, 0);
    if (rc < 0) {
        return rc;
    }
    if (item->hdr.cluster_id != it->cluster_id || item->hdr.sender != it->sender) {
        return ORDO_EMALFORMED;
    }
    it->off = (uint32_t)r.off;
    *raw = p;
    *raw_len = n;
    return 1;
}

/* Every item of a decoded (or to be encoded) multi message, as wire_decode documents. */
static int multi_check(const struct msg *m)
{
    const struct msg_multi *mm = &m->u.multi;
    if (mm->version != WIRE_MULTI_VERSION) {
        return ORDO_EVERSION;
    }
    if (mm->n > MSG_MULTI_MAX) {
        return ORDO_ETOOBIG;
    }
    if (mm->n == 0 || (mm->items_len > 0 && mm->items == NULL)) {
        return ORDO_EMALFORMED;
    }
    struct wire_multi_iter it;
    wire_multi_iter_init(&it, m);
    for (uint32_t i = 0; i < mm->n; i++) {
        struct msg item;
        const uint8_t *raw;
        size_t raw_len;
        int rc = wire_multi_next(&it, &item, &raw, &raw_len);
        if (rc <= 0) {
            return rc == 0 ? ORDO_ETRUNCATED : rc;
        }
    }
    return it.off == it.len ? 0 : ORDO_EMALFORMED;
}

int wire_decode(const uint8_t *buf, size_t len, struct msg *out, struct msg_entry *entries,
                uint32_t entries_cap)
{
    int rc = decode_one(buf, len, out, entries, entries_cap);
    if (rc == 0 && type_is_multi(out->hdr.type)) {
        rc = multi_check(out);
    }
    return rc;
}

int wire_multi_start(struct wire_multi_wr *w, uint8_t type, uint32_t cluster_id, uint32_t sender,
                     uint8_t *buf, size_t cap)
{
    if (!type_is_multi(type)) {
        return -EINVAL;
    }
    if (cap < WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN) {
        return ORDO_ENOSPACE;
    }
    w->buf = buf;
    w->cap = cap < WIRE_MSG_LEN_MAX ? cap : WIRE_MSG_LEN_MAX;
    w->n = 0;
    w->type = type;
    w->cluster_id = cluster_id;
    w->sender = sender;
    struct msg_header h = {.type = type, .cluster_id = cluster_id, .sender = sender};
    struct wire_wr wr = {buf, 0};
    write_header(&wr, &h, 0, 0);
    wr_u8(&wr, WIRE_MULTI_VERSION);
    wr_u8(&wr, 0);
    wr_u16(&wr, 0);
    w->len = wr.off;
    return 0;
}

/* Room for one more item of len bytes: 0, ORDO_ETOOBIG or ORDO_ENOSPACE. */
static int multi_room(const struct wire_multi_wr *w, size_t len)
{
    if (w->n >= MSG_MULTI_MAX) {
        return ORDO_ETOOBIG;
    }
    if (len > UINT16_MAX || w->cap - w->len < WIRE_MULTI_ITEM_HDR_LEN + len) {
        return ORDO_ENOSPACE;
    }
    return 0;
}

int wire_multi_add(struct wire_multi_wr *w, const uint8_t *item, size_t len)
{
    struct msg_header h;
    if (wire_peek_header(item, len, &h) < 0 || !multi_item_allowed(w->type, h.type) ||
        h.cluster_id != w->cluster_id || h.sender != w->sender) {
        return -EINVAL;
    }
    int rc = multi_room(w, len);
    if (rc < 0) {
        return rc;
    }
    /* The item may already sit in buf (a reply frame turned into a multi frame). */
    memmove(w->buf + w->len + WIRE_MULTI_ITEM_HDR_LEN, item, len);
    struct wire_wr wr = {w->buf, w->len};
    wr_u16(&wr, (uint16_t)len);
    w->len += WIRE_MULTI_ITEM_HDR_LEN + len;
    w->n++;
    return 0;
}

int wire_multi_add_msg(struct wire_multi_wr *w, const struct msg *m, const struct wire_key *key)
{
    if (!multi_item_allowed(w->type, m->hdr.type)) {
        return -EINVAL;
    }
    int rc = multi_room(w, 0);
    if (rc < 0) {
        return rc;
    }
    struct msg copy = *m;
    copy.hdr.cluster_id = w->cluster_id;
    copy.hdr.sender = w->sender;
    size_t off = w->len + WIRE_MULTI_ITEM_HDR_LEN;
    rc = wire_encode(&copy, key, w->buf + off, w->cap - off);
    if (rc < 0) {
        return rc;
    }
    if ((size_t)rc > UINT16_MAX) {
        return ORDO_ENOSPACE;
    }
    struct wire_wr wr = {w->buf, w->len};
    wr_u16(&wr, (uint16_t)rc);
    w->len = off + (size_t)rc;
    w->n++;
    return 0;
}

int wire_multi_finish(struct wire_multi_wr *w)
{
    if (w->n == 0) {
        return -EINVAL;
    }
    struct wire_wr wr = {w->buf, 16};
    wr_u32(&wr, (uint32_t)(w->len - WIRE_HDR_LEN));
    w->buf[WIRE_HDR_LEN + 1] = (uint8_t)w->n;
    return (int)w->len;
}

int wire_check_cluster(const uint8_t *buf, size_t len, uint32_t cluster_id)
{
    if (len < WIRE_HDR_LEN) {
        return ORDO_ETRUNCATED;
    }
    struct wire_rd r = {buf, len, 8};
    return rd_u32(&r) == cluster_id ? 0 : ORDO_ECLUSTER;
}

int wire_verify(const uint8_t *buf, size_t len, const struct wire_key *key)
{
    struct msg_header hdr;
    uint8_t mac[MSG_MAC_LEN];
    int rc = wire_peek_header(buf, len, &hdr);
    if (rc < 0) {
        return rc;
    }
    if (!(hdr.flags & MSG_HDR_MAC)) {
        return ORDO_EBADMAC;
    }
    wire_mac_copy(key, buf, len, mac);
    return crypto_verify_16(mac, buf + WIRE_MAC_OFF) == 0 ? 0 : ORDO_EBADMAC;
}

void wire_count(struct wire_counters *c, int err)
{
    switch (err) {
    case 0:
        c->ok++;
        break;
    case ORDO_EMALFORMED:
        c->malformed++;
        break;
    case ORDO_ETRUNCATED:
        c->truncated++;
        break;
    case ORDO_EBADMAGIC:
        c->bad_magic++;
        break;
    case ORDO_EVERSION:
        c->bad_version++;
        break;
    case ORDO_EBADTYPE:
        c->bad_type++;
        break;
    case ORDO_EBADMAC:
        c->bad_mac++;
        break;
    case ORDO_ECLUSTER:
        c->wrong_cluster++;
        break;
    case ORDO_ETOOBIG:
        c->oversized++;
        break;
    case ORDO_ECHECKSUM:
        c->checksum++;
        break;
    case ORDO_ENOSPACE:
        c->no_space++;
        break;
    default:
        c->other++;
        break;
    }
}
