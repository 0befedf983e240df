/* Client session table: a fixed pool of sessions, an open-addressing index by client id and
 * a least-recently-used list ordered by the log index of last use. Deterministic: every
 * change follows from the committed entries applied, in order; no allocation after create. */
#include "engine/sess.h"

#include <errno.h>
#include <string.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/sm_stream.h"

#define SESS_NIL UINT32_MAX
#define SESS_SNAP_MAGIC 0x5345534fu /* "OSES" in little-endian byte order */
#define SESS_SNAP_VERSION 2u        /* 2: registration (request number 0 = nothing applied yet) */
#define SESS_SNAP_HEADER_LEN 20u    /* magic u32, version u16, flags u16, count u32, index u64 */
#define SESS_ENTRY_LEN 29u          /* client u64, request u64, last_used u64, status u8, len u32 */
#define SESS_SESSIONS_LIMIT (1u << 24)

struct sess_entry {
    uint64_t client_id;
    uint64_t request_no; /* highest applied; 0 when free or registered with nothing applied */
    uint64_t last_used;  /* log index of the last sess_record */
    uint32_t prev;       /* LRU list (towards the least recently used) */
    uint32_t next;       /* LRU list, or the free list */
    uint32_t result_len;
    uint8_t status;
};

struct sess_table {
    struct sess_config cfg;
    struct sess_entry *entries; /* cfg.sessions_max */
    uint8_t *replies;           /* cfg.reply_max bytes per entry */
    uint32_t *slots;            /* index: entry + 1, 0 = empty; load <= 1/2 */
    uint32_t slot_mask;
    uint32_t count;
    uint32_t free_head;
    uint32_t lru_head; /* least recently used */
    uint32_t lru_tail; /* most recently used */
    uint64_t index_last;
    uint64_t reply_bytes; /* sum of result_len, for sess_snapshot_size */
    uint64_t reg_index;   /* index of the last registration */
    uint32_t reg_next;    /* next k for an id at reg_index (SESS_REGISTER_PER_INDEX) */
    uint8_t reg_result[SESS_REGISTER_RESULT_LEN]; /* the last registration's reply result */
};

/* splitmix64's finalizer: client ids are random already, but a test may use 1, 2, 3... */
static uint32_t sess_slot_of(const struct sess_table *t, uint64_t client_id)
{
    uint64_t z = client_id + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return (uint32_t)(z ^ (z >> 31)) & t->slot_mask;
}

static uint8_t *sess_reply_buf(const struct sess_table *t, uint32_t e)
{
    return t->replies + (size_t)e * t->cfg.reply_max;
}

static void sess_reset(struct sess_table *t)
{
    uint32_t n = t->cfg.sessions_max;
    memset(t->slots, 0, ((size_t)t->slot_mask + 1) * sizeof(*t->slots));
    for (uint32_t i = 0; i < n; i++) {
        t->entries[i] = (struct sess_entry){.prev = SESS_NIL, .next = i + 1 < n ? i + 1 : SESS_NIL};
    }
    t->count = 0;
    t->free_head = 0;
    t->lru_head = SESS_NIL;
    t->lru_tail = SESS_NIL;
    t->index_last = 0;
    t->reply_bytes = 0;
    t->reg_index = 0;
    t->reg_next = 0;
}

static int sess_config_fill(const struct sess_config *cfg, struct sess_config *c)
{
    *c = (struct sess_config){0};
    if (cfg != NULL) {
        *c = *cfg;
    }
    c->sessions_max = c->sessions_max ? c->sessions_max : SESS_SESSIONS_MAX_DEFAULT;
    c->expiry_entries = c->expiry_entries ? c->expiry_entries : SESS_EXPIRY_ENTRIES_DEFAULT;
    c->reply_max = c->reply_max ? c->reply_max : SESS_REPLY_MAX_DEFAULT;
    if (c->sessions_max > SESS_SESSIONS_LIMIT || c->reply_max > (1u << 20) ||
        c->reply_max < SESS_REGISTER_RESULT_LEN) {
        return ORDO_ECONFIG;
    }
    return 0;
}

int sess_create(const struct sess_config *cfg, struct sess_table **out)
{
    struct sess_config c;
    if (sess_config_fill(cfg, &c) != 0) {
        return ORDO_ECONFIG;
    }
    struct sess_table *t = mem_calloc(1, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    t->cfg = c;
    uint32_t slots = 4;
    /* Load at most 1/2 keeps probes short; bounded by SESS_SESSIONS_LIMIT. */
    while (slots < 2 * c.sessions_max) {
        slots *= 2;
    }
    t->slot_mask = slots - 1;
    t->entries = mem_calloc(c.sessions_max, sizeof(*t->entries));
    t->replies = mem_alloc((size_t)c.sessions_max * c.reply_max);
    t->slots = mem_calloc(slots, sizeof(*t->slots));
    if (t->entries == NULL || t->replies == NULL || t->slots == NULL) {
        sess_destroy(t);
        return -ENOMEM;
    }
    sess_reset(t);
    *out = t;
    return 0;
}

void sess_destroy(struct sess_table *t)
{
    if (t == NULL) {
        return;
    }
    mem_free(t->entries);
    mem_free(t->replies);
    mem_free(t->slots);
    mem_free(t);
}

uint32_t sess_count(const struct sess_table *t)
{
    return t->count;
}

/* ---- index by client id (linear probing, backward-shift deletion) ---- */

/* Slot holding client_id, or the empty slot where it would go; *entry is SESS_NIL then. */
static uint32_t sess_find(const struct sess_table *t, uint64_t client_id, uint32_t *entry)
{
    uint32_t i = sess_slot_of(t, client_id);
    /* Load <= 1/2: an empty slot ends every probe. */
    for (uint32_t n = 0; n <= t->slot_mask && t->slots[i] != 0; n++) {
        if (t->entries[t->slots[i] - 1].client_id == client_id) {
            *entry = t->slots[i] - 1;
            return i;
        }
        i = (i + 1) & t->slot_mask;
    }
    ORDO_ASSERT(t->slots[i] == 0);
    *entry = SESS_NIL;
    return i;
}

static void sess_unindex(struct sess_table *t, uint32_t i)
{
    ORDO_ASSERT(t->slots[i] != 0);
    t->slots[i] = 0;
    uint32_t hole = i;
    uint32_t j = (i + 1) & t->slot_mask;
    for (uint32_t n = 0; n < t->slot_mask && t->slots[j] != 0; n++) {
        uint32_t home = sess_slot_of(t, t->entries[t->slots[j] - 1].client_id);
        if (((j - home) & t->slot_mask) >= ((j - hole) & t->slot_mask)) {
            t->slots[hole] = t->slots[j];
            t->slots[j] = 0;
            hole = j;
        }
        j = (j + 1) & t->slot_mask;
    }
}

/* ---- LRU list ---- */

static void sess_lru_unlink(struct sess_table *t, uint32_t e)
{
    struct sess_entry *s = &t->entries[e];
    if (s->prev != SESS_NIL) {
        t->entries[s->prev].next = s->next;
    } else {
        t->lru_head = s->next;
    }
    if (s->next != SESS_NIL) {
        t->entries[s->next].prev = s->prev;
    } else {
        t->lru_tail = s->prev;
    }
    s->prev = SESS_NIL;
    s->next = SESS_NIL;
}

static void sess_lru_append(struct sess_table *t, uint32_t e)
{
    struct sess_entry *s = &t->entries[e];
    s->prev = t->lru_tail;
    s->next = SESS_NIL;
    if (t->lru_tail != SESS_NIL) {
        t->entries[t->lru_tail].next = e;
    } else {
        t->lru_head = e;
    }
    t->lru_tail = e;
}

/* Drops a session: out of the index and the LRU list, back to the free list. */
static void sess_drop(struct sess_table *t, uint32_t e)
{
    uint32_t found;
    uint32_t i = sess_find(t, t->entries[e].client_id, &found);
    ORDO_ASSERT(found == e);
    sess_unindex(t, i);
    sess_lru_unlink(t, e);
    t->reply_bytes -= t->entries[e].result_len;
    t->entries[e] = (struct sess_entry){.prev = SESS_NIL, .next = t->free_head};
    t->free_head = e;
    t->count--;
}

/* ---- replicated operations ---- */

void sess_advance(struct sess_table *t, uint64_t index)
{
    ORDO_ASSERT(index >= t->index_last);
    t->index_last = index;
    /* The LRU list is ordered by last use, so expired sessions are a prefix of it. */
    for (uint32_t n = t->count; n > 0 && t->lru_head != SESS_NIL; n--) {
        const struct sess_entry *s = &t->entries[t->lru_head];
        if (index - s->last_used <= t->cfg.expiry_entries) {
            break;
        }
        sess_drop(t, t->lru_head);
    }
}

int sess_known(const struct sess_table *t, uint64_t client_id)
{
    uint32_t e;
    (void)sess_find(t, client_id, &e);
    return e != SESS_NIL;
}

enum sess_verdict sess_lookup(const struct sess_table *t, uint64_t client_id, uint64_t request_no,
                              struct sess_reply *reply)
{
    uint32_t e;
    (void)sess_find(t, client_id, &e);
    if (e == SESS_NIL || request_no == 0) {
        return SESS_EXPIRED; /* only a registration opens a session (dissertation 6.3) */
    }
    const struct sess_entry *s = &t->entries[e];
    if (request_no > s->request_no) {
        return SESS_NEW;
    }
    if (request_no < s->request_no) {
        return SESS_EXPIRED;
    }
    if (reply != NULL) {
        reply->status = s->status;
        reply->result_len = s->result_len;
        reply->result = sess_reply_buf(t, e);
    }
    return SESS_DUPLICATE;
}

/* Entry for a new client: a free one, or the least recently used one evicted. */
static uint32_t sess_open(struct sess_table *t, uint32_t slot, uint64_t client_id)
{
    if (t->free_head == SESS_NIL) {
        ORDO_ASSERT(t->count == t->cfg.sessions_max);
        sess_drop(t, t->lru_head);
        /* The drop may have shifted entries in the index: find the empty slot again. */
        uint32_t none;
        slot = sess_find(t, client_id, &none);
        ORDO_ASSERT(none == SESS_NIL);
    }
    uint32_t e = t->free_head;
    ORDO_ASSERT(e != SESS_NIL);
    t->free_head = t->entries[e].next;
    t->entries[e] = (struct sess_entry){.client_id = client_id, .prev = SESS_NIL, .next = SESS_NIL};
    t->slots[slot] = e + 1;
    t->count++;
    sess_lru_append(t, e);
    return e;
}

/* Saves a session's last applied request and reply at `index`, opening the session if the
 * client has none. request_no 0 only for a session that is new (registration, snapshot). */
static void sess_store(struct sess_table *t, uint64_t client_id, uint64_t request_no,
                       uint64_t index, uint8_t status, const uint8_t *result, uint32_t result_len)
{
    ORDO_ASSERT(result_len <= t->cfg.reply_max);
    uint32_t e;
    uint32_t slot = sess_find(t, client_id, &e);
    if (e == SESS_NIL) {
        e = sess_open(t, slot, client_id);
    } else {
        ORDO_ASSERT(request_no > t->entries[e].request_no);
        sess_lru_unlink(t, e);
        sess_lru_append(t, e);
    }
    struct sess_entry *s = &t->entries[e];
    ORDO_ASSERT(s->prev == SESS_NIL || t->entries[s->prev].last_used <= index);
    t->reply_bytes = t->reply_bytes - s->result_len + result_len;
    s->request_no = request_no;
    s->last_used = index;
    s->status = status;
    s->result_len = result_len;
    if (result_len > 0) {
        /* memmove: a snapshot read stages the result in this very buffer. */
        memmove(sess_reply_buf(t, e), result, result_len);
    }
}

int sess_record(struct sess_table *t, uint64_t client_id, uint64_t request_no, uint64_t index,
                uint8_t status, const uint8_t *result, uint32_t result_len)
{
    if (result_len > t->cfg.reply_max) {
        return ORDO_ETOOBIG;
    }
    ORDO_ASSERT(index >= t->index_last);
    ORDO_ASSERT(request_no >= 1);
    sess_store(t, client_id, request_no, index, status, result, result_len);
    return 0;
}

int sess_register(struct sess_table *t, uint64_t index, uint64_t *client_id)
{
    ORDO_ASSERT(index >= 1); /* log indices start at 1: no id is 0 (without a salt) */
    ORDO_ASSERT(index >= t->index_last);
    ORDO_ASSERT(index >= t->reg_index);
    if (index != t->reg_index) {
        t->reg_index = index;
        t->reg_next = 0;
    }
    if (index >= SESS_REGISTER_INDEX_LIMIT) {
        return ORDO_ENOSPACE;
    }
    /* Assigned ids never collide with each other; skipping a taken id only matters for a
     * table whose ids came from elsewhere (tests), and is deterministic too. */
    while (t->reg_next < SESS_REGISTER_PER_INDEX) {
        uint64_t id = ((index << 16) | t->reg_next++) ^ t->cfg.id_salt;
        uint32_t e;
        (void)sess_find(t, id, &e);
        if (e == SESS_NIL) {
            sess_store(t, id, 0, index, MSG_STATUS_OK, NULL, 0);
            *client_id = id;
            return 0;
        }
    }
    return ORDO_ENOSPACE;
}

static void sess_reply_id(struct sess_table *t, uint64_t id, struct msg_client_reply *reply)
{
    for (uint32_t i = 0; i < SESS_REGISTER_RESULT_LEN; i++) {
        t->reg_result[i] = (uint8_t)(id >> (8 * i));
    }
    reply->status = MSG_STATUS_OK;
    reply->result = t->reg_result;
    reply->result_len = SESS_REGISTER_RESULT_LEN;
}

/* An authenticated client's registration: its MAC identity is its client id, so that is
 * the session's id too; the request number is a floor (it becomes the session's last
 * request), so its requests from before stay refused as expired. */
static void sess_execute_register_own(struct sess_table *t, uint64_t index,
                                      const struct msg_client_request *req,
                                      struct msg_client_reply *reply)
{
    struct sess_reply saved;
    enum sess_verdict v = sess_known(t, req->client_id)
                              ? sess_lookup(t, req->client_id, req->request_no, &saved)
                              : SESS_NEW;
    if (v == SESS_DUPLICATE) {
        reply->status = saved.status;
        reply->result_len = saved.result_len;
        reply->result = saved.result;
        return;
    }
    if (v == SESS_EXPIRED) {
        reply->status = MSG_STATUS_SESSION_EXPIRED;
        return;
    }
    sess_reply_id(t, req->client_id, reply);
    sess_store(t, req->client_id, req->request_no, index, MSG_STATUS_OK, t->reg_result,
               SESS_REGISTER_RESULT_LEN);
}

/* The registration step of sess_execute. */
static void sess_execute_register(struct sess_table *t, uint64_t index,
                                  const struct msg_client_request *req, int authenticated,
                                  struct msg_client_reply *reply)
{
    uint64_t id = 0;
    ORDO_ASSERT(index >= t->index_last);
    if ((req->flags & (MSG_REQ_NO_SESSION | MSG_REQ_READ)) || req->request_no == 0) {
        reply->status = MSG_STATUS_INVALID; /* the codec refuses these; batches are data too */
        return;
    }
    if (authenticated) {
        sess_execute_register_own(t, index, req, reply);
        return;
    }
    if (sess_register(t, index, &id) != 0) {
        reply->status = MSG_STATUS_BUSY;
        return;
    }
    sess_reply_id(t, id, reply);
}

int sess_execute(struct sess_table *t, struct sm *sm, uint64_t index,
                 const struct msg_client_request *req, uint8_t *out, uint32_t out_cap,
                 struct msg_client_reply *reply)
{
    return sess_execute_auth(t, sm, index, req, 0, out, out_cap, reply);
}

int sess_execute_auth(struct sess_table *t, struct sm *sm, uint64_t index,
                      const struct msg_client_request *req, int authenticated, uint8_t *out,
                      uint32_t out_cap, struct msg_client_reply *reply)
{
    struct sess_reply saved;
    uint32_t out_len = 0;
    *reply = (struct msg_client_reply){
        .client_id = req->client_id, .request_no = req->request_no, .result = out};
    if (sess_is_register(req->flags)) {
        sess_execute_register(t, index, req, authenticated, reply);
        return 0;
    }
    int bypass = sess_bypass(req->flags);
    enum sess_verdict v =
        bypass ? SESS_NEW : sess_lookup(t, req->client_id, req->request_no, &saved);
    if (v == SESS_DUPLICATE) {
        reply->status = saved.status;
        reply->result_len = saved.result_len;
        reply->result = saved.result;
        return 0;
    }
    if (v == SESS_EXPIRED) {
        reply->status = MSG_STATUS_SESSION_EXPIRED;
        return 0;
    }
    /* Refuse before applying, so that a reply too large to save never leaves the state
     * changed without its session. */
    if (!bypass && sm->result_max > t->cfg.reply_max) {
        return ORDO_ETOOBIG;
    }
    int rc = sm_apply(sm, req->op, req->args, req->args_len, out, out_cap, &out_len);
    if (rc < 0) {
        return rc;
    }
    ORDO_ASSERT(rc <= UINT8_MAX && out_len <= out_cap);
    reply->status = (uint8_t)rc;
    reply->result_len = out_len;
    if (!bypass) {
        rc = sess_record(t, req->client_id, req->request_no, index, (uint8_t)rc, out, out_len);
        ORDO_ASSERT(rc == 0);
    }
    return 0;
}

/* ---- snapshot ---- */

uint64_t sess_snapshot_size(const struct sess_table *t)
{
    return SESS_SNAP_HEADER_LEN + (uint64_t)t->count * SESS_ENTRY_LEN + t->reply_bytes +
           SM_STREAM_SUM_LEN;
}

/* Format (little-endian): magic, version, flags = 0, count u32, index_last u64, then the
 * sessions from least to most recently used (client_id u64, request_no u64, last_used u64,
 * status u8, result_len u32, result), then the BLAKE2b-256 checksum of every byte before. */
int sess_snapshot_write(const struct sess_table *t, sm_sink_fn sink, void *ctx)
{
    struct sm_stream_writer w;
    uint32_t n = 0;
    sm_stream_writer_init(&w, sink, ctx);
    sm_stream_put_u32(&w, SESS_SNAP_MAGIC);
    sm_stream_put_u16(&w, SESS_SNAP_VERSION);
    sm_stream_put_u16(&w, 0);
    sm_stream_put_u32(&w, t->count);
    sm_stream_put_u64(&w, t->index_last);
    for (uint32_t e = t->lru_head; e != SESS_NIL && n < t->count && w.err == 0; n++) {
        const struct sess_entry *s = &t->entries[e];
        sm_stream_put_u64(&w, s->client_id);
        sm_stream_put_u64(&w, s->request_no);
        sm_stream_put_u64(&w, s->last_used);
        sm_stream_put_u8(&w, s->status);
        sm_stream_put_u32(&w, s->result_len);
        sm_stream_put(&w, sess_reply_buf(t, e), s->result_len);
        e = s->next;
    }
    ORDO_ASSERT(w.err != 0 || n == t->count);
    return sm_stream_writer_finish(&w);
}

static int sess_snapshot_header(struct sm_stream_reader *r, const struct sess_table *t,
                                uint32_t *count, uint64_t *index_last)
{
    uint32_t magic;
    uint16_t version;
    uint16_t flags;
    sm_stream_get_u32(r, &magic);
    sm_stream_get_u16(r, &version);
    sm_stream_get_u16(r, &flags);
    sm_stream_get_u32(r, count);
    int rc = sm_stream_get_u64(r, index_last);
    if (rc != 0) {
        return rc;
    }
    if (magic != SESS_SNAP_MAGIC) {
        return ORDO_EBADMAGIC;
    }
    if (version != SESS_SNAP_VERSION) {
        return ORDO_EVERSION;
    }
    if (flags != 0) {
        return ORDO_EMALFORMED;
    }
    return *count > t->cfg.sessions_max ? ORDO_ETOOBIG : 0;
}

/* Reads one session into n (a fresh table being filled in LRU order). */
static int sess_snapshot_entry(struct sm_stream_reader *r, struct sess_table *n,
                               uint64_t index_last)
{
    uint64_t client_id;
    uint64_t request_no;
    uint64_t last_used;
    uint8_t status;
    uint32_t len;
    sm_stream_get_u64(r, &client_id);
    sm_stream_get_u64(r, &request_no);
    sm_stream_get_u64(r, &last_used);
    sm_stream_get_u8(r, &status);
    int rc = sm_stream_get_u32(r, &len);
    if (rc != 0) {
        return rc;
    }
    if (len > n->cfg.reply_max) {
        return ORDO_ETOOBIG;
    }
    /* A registered session with nothing applied yet has no saved reply. */
    if (request_no == 0 && (status != MSG_STATUS_OK || len != 0)) {
        return ORDO_EMALFORMED;
    }
    uint32_t e;
    (void)sess_find(n, client_id, &e);
    uint64_t prev_used = n->lru_tail == SESS_NIL ? 0 : n->entries[n->lru_tail].last_used;
    if (e != SESS_NIL || last_used < prev_used || last_used > index_last) {
        return ORDO_ECORRUPT;
    }
    /* Stage the result in the reply buffer of the entry sess_record will take next (the
     * free head: no eviction happens while count <= sessions_max). */
    ORDO_ASSERT(n->free_head != SESS_NIL);
    uint8_t *buf = sess_reply_buf(n, n->free_head);
    rc = sm_stream_get(r, buf, len);
    if (rc != 0) {
        return rc;
    }
    sess_store(n, client_id, request_no, last_used, status, buf, len);
    return 0;
}

int sess_snapshot_read(struct sess_table *t, sm_source_fn source, void *ctx)
{
    struct sm_stream_reader r;
    struct sess_table *n;
    uint32_t count;
    uint64_t index_last;
    int rc = sess_create(&t->cfg, &n);
    if (rc != 0) {
        return rc;
    }
    sm_stream_reader_init(&r, source, ctx);
    rc = sess_snapshot_header(&r, t, &count, &index_last);
    /* Entries are recorded at their own last-use index (n->index_last stays 0 meanwhile);
     * the table's index is set once all are in. */
    for (uint32_t i = 0; rc == 0 && i < count; i++) {
        rc = sess_snapshot_entry(&r, n, index_last);
    }
    if (rc == 0) {
        rc = sm_stream_reader_finish(&r);
    }
    if (rc != 0) {
        sess_destroy(n);
        return rc;
    }
    n->index_last = index_last;
    struct sess_table old = *t;
    *t = *n;
    *n = old;
    sess_destroy(n);
    return 0;
}
