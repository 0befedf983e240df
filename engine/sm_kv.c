/* The built-in key-value state machine: an open-addressing hash table of copied pairs with
 * an incremental, order-independent state digest. Pure and deterministic: results and
 * digests depend only on the set of pairs, never on the table's layout or history. */
#include "engine/sm_kv.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/sm_stream.h"

#define SM_KV_LANES 4u
#define SM_KV_SLOTS_MIN 16u
#define SM_KV_SNAP_MAGIC 0x53564b4fu /* "OKVS" in little-endian byte order */
#define SM_KV_SNAP_VERSION 1u
#define SM_KV_SNAP_HEADER_LEN                                                                      \
    20u                        /* magic u32, version u16, flags u16, value_max u32, count u64      \
                                */
#define SM_KV_PAIR_OVERHEAD 6u /* key_len u16, value_len u32 */

/* One stored pair: data[] holds key_len (u16 LE), key, value (the bytes the digest hashes,
 * and the snapshot's own pair encoding up to the value length), and its digest lanes so
 * that an overwrite or a delete subtracts them without hashing again. */
struct sm_kv_rec {
    uint64_t lanes[SM_KV_LANES];
    uint32_t key_len;
    uint32_t value_len;
    uint8_t data[];
};

struct sm_kv_slot {
    uint64_t hash;         /* table hash of the key (not part of the state) */
    struct sm_kv_rec *rec; /* NULL: empty */
};

struct sm_kv_table {
    struct sm_kv_slot *slots;
    uint64_t mask; /* slots - 1; slots is a power of two */
    uint64_t count;
};

struct sm_kv {
    struct sm base; /* first: struct sm * converts to struct sm_kv * */
    uint32_t value_max;
    struct sm_kv_table tab;
    uint64_t lanes[SM_KV_LANES]; /* sum over pairs of their lanes, mod 2^64 */
    uint64_t snap_bytes;         /* sum over pairs of SM_KV_PAIR_OVERHEAD + key + value */
};

static const struct sm_ops sm_kv_ops;

/* Domain separators (BLAKE2b personalization: free, unlike a key, which costs a block).
 * Every replica must derive the same digest; the table hash only has to be the same
 * within one process. None is a secret. */
static const uint8_t sm_kv_pair_personal[crypto_generichash_blake2b_PERSONALBYTES] =
    "ordo-kv-pair-v1";
static const uint8_t sm_kv_state_personal[crypto_generichash_blake2b_PERSONALBYTES] =
    "ordo-kv-state-1";
static const uint8_t sm_kv_table_key[crypto_shorthash_KEYBYTES] = "ordo-kv-table-1";

static struct sm_kv *sm_kv_of(struct sm *sm)
{
    ORDO_ASSERT(sm->ops == &sm_kv_ops);
    return (struct sm_kv *)sm;
}

static const struct sm_kv *sm_kv_of_const(const struct sm *sm)
{
    ORDO_ASSERT(sm->ops == &sm_kv_ops);
    return (const struct sm_kv *)sm;
}

/* ---- arguments ---- */

static int sm_kv_key_ok(size_t key_len)
{
    return key_len >= SM_KV_KEY_MIN && key_len <= SM_KV_KEY_MAX;
}

/* Reads a u32 length and that many bytes at *pos; bounds-checked against args_len. */
static int sm_kv_decode_blob(const uint8_t *args, uint32_t args_len, uint32_t *pos, uint32_t max,
                             const uint8_t **p, uint32_t *len)
{
    if (args_len - *pos < 4) {
        return ORDO_ETRUNCATED;
    }
    uint32_t n = sm_stream_rd32(args + *pos);
    *pos += 4;
    if (n > max) {
        return ORDO_ETOOBIG;
    }
    if (args_len - *pos < n) {
        return ORDO_ETRUNCATED;
    }
    *p = args + *pos;
    *len = n;
    *pos += n;
    return 0;
}

static int sm_kv_decode_cas_expected(const uint8_t *args, uint32_t args_len, uint32_t *pos,
                                     uint32_t value_max, struct sm_kv_args *out)
{
    if (args_len - *pos >= 4 && sm_stream_rd32(args + *pos) == SM_KV_CAS_ABSENT) {
        *pos += 4;
        out->expected = NULL;
        out->expected_len = SM_KV_CAS_ABSENT;
        return 0;
    }
    return sm_kv_decode_blob(args, args_len, pos, value_max, &out->expected, &out->expected_len);
}

int sm_kv_decode(uint8_t op, const uint8_t *args, uint32_t args_len, uint32_t value_max,
                 struct sm_kv_args *out)
{
    memset(out, 0, sizeof(*out));
    if (op < SM_KV_OP_PUT || op > SM_KV_OP_CAS) {
        return ORDO_EBADTYPE;
    }
    if (args == NULL || args_len < 2) {
        return ORDO_ETRUNCATED;
    }
    uint32_t pos = 2;
    uint32_t key_len = sm_stream_rd16(args);
    if (!sm_kv_key_ok(key_len)) {
        return key_len == 0 ? ORDO_EMALFORMED : ORDO_ETOOBIG;
    }
    if (args_len - pos < key_len) {
        return ORDO_ETRUNCATED;
    }
    out->key = args + pos;
    out->key_len = key_len;
    pos += key_len;
    int rc = 0;
    if (op == SM_KV_OP_PUT || op == SM_KV_OP_CAS) {
        rc = sm_kv_decode_blob(args, args_len, &pos, value_max, &out->value, &out->value_len);
    }
    if (rc == 0 && op == SM_KV_OP_CAS) {
        rc = sm_kv_decode_cas_expected(args, args_len, &pos, value_max, out);
    }
    if (rc == 0 && pos != args_len) {
        rc = ORDO_EMALFORMED; /* trailing bytes: not an encoding we produce */
    }
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

static int sm_kv_encode_key(uint8_t *buf, size_t cap, const void *key, size_t key_len, size_t total)
{
    if (!sm_kv_key_ok(key_len)) {
        return ORDO_ETOOBIG;
    }
    if (buf == NULL || cap < total) {
        return ORDO_ENOSPACE;
    }
    sm_stream_le16(buf, (uint16_t)key_len);
    memcpy(buf + 2, key, key_len);
    return (int)(2 + key_len);
}

static size_t sm_kv_encode_blob(uint8_t *p, const void *v, size_t len)
{
    sm_stream_le32(p, (uint32_t)len);
    if (len > 0) {
        memcpy(p + 4, v, len);
    }
    return 4 + len;
}

int sm_kv_encode_get(uint8_t *buf, size_t cap, const void *key, size_t key_len)
{
    return sm_kv_encode_key(buf, cap, key, key_len, 2 + key_len);
}

int sm_kv_encode_del(uint8_t *buf, size_t cap, const void *key, size_t key_len)
{
    return sm_kv_encode_key(buf, cap, key, key_len, 2 + key_len);
}

int sm_kv_encode_put(uint8_t *buf, size_t cap, const void *key, size_t key_len, const void *value,
                     size_t value_len)
{
    if (value_len > SM_KV_VALUE_MAX) {
        return ORDO_ETOOBIG;
    }
    int n = sm_kv_encode_key(buf, cap, key, key_len, 2 + key_len + 4 + value_len);
    if (n < 0) {
        return n;
    }
    return n + (int)sm_kv_encode_blob(buf + n, value, value_len);
}

int sm_kv_encode_cas(uint8_t *buf, size_t cap, const void *key, size_t key_len,
                     const void *expected, size_t expected_len, const void *value, size_t value_len)
{
    int absent = expected_len == SM_KV_CAS_ABSENT;
    if (value_len > SM_KV_VALUE_MAX || (!absent && expected_len > SM_KV_VALUE_MAX)) {
        return ORDO_ETOOBIG;
    }
    size_t total = 2 + key_len + 4 + value_len + 4 + (absent ? 0 : expected_len);
    int n = sm_kv_encode_key(buf, cap, key, key_len, total);
    if (n < 0) {
        return n;
    }
    size_t pos = (size_t)n + sm_kv_encode_blob(buf + n, value, value_len);
    if (absent) {
        sm_stream_le32(buf + pos, SM_KV_CAS_ABSENT);
        pos += 4;
    } else {
        pos += sm_kv_encode_blob(buf + pos, expected, expected_len);
    }
    return (int)pos;
}

/* ---- records and digest ---- */

static uint64_t sm_kv_hash(const uint8_t *key, uint32_t key_len)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, key_len, sm_kv_table_key);
    return sm_stream_rd64(h);
}

/* BLAKE2b-256 of (key_len u16 LE, key, value): the length prefix keeps (key, value)
 * splits apart; the 32 bytes become four 64-bit lanes of the multiset sum. */
static void sm_kv_rec_lanes(struct sm_kv_rec *rec)
{
    uint8_t out[8 * SM_KV_LANES];
    crypto_generichash_blake2b_salt_personal(out, sizeof(out), rec->data,
                                             2u + (size_t)rec->key_len + rec->value_len, NULL, 0,
                                             NULL, sm_kv_pair_personal);
    for (unsigned i = 0; i < SM_KV_LANES; i++) {
        rec->lanes[i] = sm_stream_rd64(out + (size_t)8 * i);
    }
}

static struct sm_kv_rec *sm_kv_rec_new(uint32_t key_len, uint32_t value_len)
{
    struct sm_kv_rec *rec = mem_alloc(sizeof(*rec) + 2u + key_len + value_len);
    if (rec != NULL) {
        rec->key_len = key_len;
        rec->value_len = value_len;
        sm_stream_le16(rec->data, (uint16_t)key_len);
    }
    return rec;
}

static uint8_t *sm_kv_rec_key(struct sm_kv_rec *rec)
{
    return rec->data + 2;
}

static uint8_t *sm_kv_rec_value_mut(struct sm_kv_rec *rec)
{
    return rec->data + 2 + rec->key_len;
}

static struct sm_kv_rec *sm_kv_rec_make(const struct sm_kv_args *a)
{
    struct sm_kv_rec *rec = sm_kv_rec_new(a->key_len, a->value_len);
    if (rec != NULL) {
        memcpy(sm_kv_rec_key(rec), a->key, a->key_len);
        if (a->value_len > 0) {
            memcpy(sm_kv_rec_value_mut(rec), a->value, a->value_len);
        }
        sm_kv_rec_lanes(rec);
    }
    return rec;
}

static const uint8_t *sm_kv_rec_value(const struct sm_kv_rec *rec)
{
    return rec->data + 2 + rec->key_len;
}

static void sm_kv_account(struct sm_kv *kv, const struct sm_kv_rec *rec, int add)
{
    uint64_t bytes = SM_KV_PAIR_OVERHEAD + (uint64_t)rec->key_len + rec->value_len;
    for (unsigned i = 0; i < SM_KV_LANES; i++) {
        kv->lanes[i] = add ? kv->lanes[i] + rec->lanes[i] : kv->lanes[i] - rec->lanes[i];
    }
    kv->snap_bytes = add ? kv->snap_bytes + bytes : kv->snap_bytes - bytes;
}

static void sm_kv_digest_of(const uint64_t lanes[SM_KV_LANES], uint64_t count,
                            uint8_t out[MSG_DIGEST_LEN])
{
    uint8_t buf[8 + 8 * SM_KV_LANES];
    sm_stream_le64(buf, count);
    for (unsigned i = 0; i < SM_KV_LANES; i++) {
        sm_stream_le64(buf + 8 + (size_t)8 * i, lanes[i]);
    }
    crypto_generichash_blake2b_salt_personal(out, MSG_DIGEST_LEN, buf, sizeof(buf), NULL, 0, NULL,
                                             sm_kv_state_personal);
}

static void sm_kv_digest(const struct sm *sm, uint8_t out[MSG_DIGEST_LEN])
{
    const struct sm_kv *kv = sm_kv_of_const(sm);
    sm_kv_digest_of(kv->lanes, kv->tab.count, out);
}

/* ---- table: linear probing, no tombstones (backward-shift deletion) ---- */

static int sm_kv_table_init(struct sm_kv_table *t, uint64_t keys)
{
    uint64_t n = SM_KV_SLOTS_MIN;
    /* Load factor at most 3/4; bounded by 64 doublings. */
    while (n / 4 * 3 < keys && n < (UINT64_C(1) << 40)) {
        n *= 2;
    }
    t->slots = mem_calloc(n, sizeof(*t->slots));
    if (t->slots == NULL) {
        return -ENOMEM;
    }
    t->mask = n - 1;
    t->count = 0;
    return 0;
}

static void sm_kv_table_free(struct sm_kv_table *t)
{
    if (t->slots == NULL) {
        return;
    }
    for (uint64_t i = 0; i <= t->mask; i++) {
        mem_free(t->slots[i].rec);
    }
    mem_free(t->slots);
    t->slots = NULL;
    t->count = 0;
}

/* Slot of the key, or of the empty slot where it would go; *found tells which. */
static uint64_t sm_kv_table_find(const struct sm_kv_table *t, uint64_t hash, const uint8_t *key,
                                 uint32_t key_len, int *found)
{
    uint64_t i = hash & t->mask;
    /* The table is never full (load <= 3/4), so an empty slot ends the probe. */
    for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
        const struct sm_kv_slot *s = &t->slots[i];
        if (s->rec == NULL) {
            break;
        }
        if (s->hash == hash && s->rec->key_len == key_len &&
            memcmp(s->rec->data + 2, key, key_len) == 0) {
            *found = 1;
            return i;
        }
    }
    ORDO_ASSERT(t->slots[i].rec == NULL);
    *found = 0;
    return i;
}

static void sm_kv_table_put_new(struct sm_kv_table *t, uint64_t hash, struct sm_kv_rec *rec)
{
    uint64_t i = hash & t->mask;
    for (uint64_t n = 0; n <= t->mask && t->slots[i].rec != NULL; n++) {
        i = (i + 1) & t->mask;
    }
    ORDO_ASSERT(t->slots[i].rec == NULL);
    t->slots[i].hash = hash;
    t->slots[i].rec = rec;
    t->count++;
}

/* Makes room for one more key. -ENOMEM leaves the table as it was. */
static int sm_kv_table_reserve(struct sm_kv_table *t)
{
    uint64_t n = t->mask + 1;
    if (t->count + 1 <= n / 4 * 3) {
        return 0;
    }
    struct sm_kv_table g;
    if (n > (UINT64_MAX / 2) / sizeof(struct sm_kv_slot)) {
        return -ENOMEM;
    }
    g.slots = mem_calloc(n * 2, sizeof(*g.slots));
    if (g.slots == NULL) {
        return -ENOMEM;
    }
    g.mask = n * 2 - 1;
    g.count = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (t->slots[i].rec != NULL) {
            sm_kv_table_put_new(&g, t->slots[i].hash, t->slots[i].rec);
        }
    }
    ORDO_ASSERT(g.count == t->count);
    mem_free(t->slots);
    *t = g;
    return 0;
}

static void sm_kv_table_remove(struct sm_kv_table *t, uint64_t i)
{
    ORDO_ASSERT(t->slots[i].rec != NULL);
    t->slots[i].rec = NULL;
    t->count--;
    /* Backward shift: move each following entry of the cluster into the hole if the hole lies
     * between its home slot and where it sits now, so lookups never stop early. */
    uint64_t hole = i;
    uint64_t j = (i + 1) & t->mask;
    for (uint64_t n = 0; n < t->mask && t->slots[j].rec != NULL; n++) {
        uint64_t home = t->slots[j].hash & t->mask;
        if (((j - home) & t->mask) >= ((j - hole) & t->mask)) {
            t->slots[hole] = t->slots[j];
            t->slots[j].rec = NULL;
            hole = j;
        }
        j = (j + 1) & t->mask;
    }
}

/* ---- operations ---- */

static const struct sm_kv_rec *sm_kv_lookup(const struct sm_kv *kv, const struct sm_kv_args *a)
{
    int found;
    uint64_t i =
        sm_kv_table_find(&kv->tab, sm_kv_hash(a->key, a->key_len), a->key, a->key_len, &found);
    return found ? kv->tab.slots[i].rec : NULL;
}

/* Sets key to value, creating it if absent. Returns MSG_STATUS_OK or -ENOMEM (no change). */
static int sm_kv_set(struct sm_kv *kv, const struct sm_kv_args *a)
{
    int found;
    uint64_t hash = sm_kv_hash(a->key, a->key_len);
    uint64_t i = sm_kv_table_find(&kv->tab, hash, a->key, a->key_len, &found);
    struct sm_kv_rec *old = found ? kv->tab.slots[i].rec : NULL;
    if (old != NULL && old->value_len == a->value_len) {
        /* Same size: overwrite in place, no allocation on the common update path. */
        sm_kv_account(kv, old, 0);
        if (a->value_len > 0) {
            memmove(sm_kv_rec_value_mut(old), a->value, a->value_len);
        }
        sm_kv_rec_lanes(old);
        sm_kv_account(kv, old, 1);
        return MSG_STATUS_OK;
    }
    if (old == NULL && sm_kv_table_reserve(&kv->tab) != 0) {
        return -ENOMEM;
    }
    struct sm_kv_rec *rec = sm_kv_rec_make(a);
    if (rec == NULL) {
        return -ENOMEM;
    }
    if (old != NULL) {
        sm_kv_account(kv, old, 0);
        kv->tab.slots[i].rec = rec;
        mem_free(old);
    } else {
        sm_kv_table_put_new(&kv->tab, hash, rec);
    }
    sm_kv_account(kv, rec, 1);
    return MSG_STATUS_OK;
}

static int sm_kv_delete(struct sm_kv *kv, const struct sm_kv_args *a)
{
    int found;
    uint64_t i =
        sm_kv_table_find(&kv->tab, sm_kv_hash(a->key, a->key_len), a->key, a->key_len, &found);
    if (!found) {
        return MSG_STATUS_NOT_FOUND;
    }
    struct sm_kv_rec *rec = kv->tab.slots[i].rec;
    sm_kv_account(kv, rec, 0);
    sm_kv_table_remove(&kv->tab, i);
    mem_free(rec);
    return MSG_STATUS_OK;
}

static int sm_kv_result(const struct sm_kv_rec *rec, int status, uint8_t *out, uint32_t out_cap,
                        uint32_t *out_len)
{
    if (rec->value_len > out_cap) {
        return MSG_STATUS_TOO_LARGE;
    }
    if (rec->value_len > 0) {
        memcpy(out, sm_kv_rec_value(rec), rec->value_len);
    }
    *out_len = rec->value_len;
    return status;
}

static int sm_kv_cas(struct sm_kv *kv, const struct sm_kv_args *a, uint8_t *out, uint32_t out_cap,
                     uint32_t *out_len)
{
    const struct sm_kv_rec *cur = sm_kv_lookup(kv, a);
    if (a->expected_len == SM_KV_CAS_ABSENT) {
        if (cur != NULL) {
            return sm_kv_result(cur, MSG_STATUS_CAS_MISMATCH, out, out_cap, out_len);
        }
        return sm_kv_set(kv, a);
    }
    if (cur == NULL) {
        return MSG_STATUS_NOT_FOUND;
    }
    if (cur->value_len != a->expected_len ||
        (a->expected_len > 0 && memcmp(sm_kv_rec_value(cur), a->expected, a->expected_len) != 0)) {
        return sm_kv_result(cur, MSG_STATUS_CAS_MISMATCH, out, out_cap, out_len);
    }
    return sm_kv_set(kv, a);
}

static int sm_kv_get(const struct sm_kv *kv, const struct sm_kv_args *a, uint8_t *out,
                     uint32_t out_cap, uint32_t *out_len)
{
    const struct sm_kv_rec *cur = sm_kv_lookup(kv, a);
    if (cur == NULL) {
        return MSG_STATUS_NOT_FOUND;
    }
    return sm_kv_result(cur, MSG_STATUS_OK, out, out_cap, out_len);
}

static int sm_kv_apply(struct sm *sm, uint8_t op, const uint8_t *args, uint32_t args_len,
                       uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    struct sm_kv *kv = sm_kv_of(sm);
    struct sm_kv_args a;
    *out_len = 0;
    if (op == MSG_OP_NOOP) {
        return MSG_STATUS_OK;
    }
    if (sm_kv_decode(op, args, args_len, kv->value_max, &a) != 0) {
        return MSG_STATUS_INVALID;
    }
    switch (op) {
    case SM_KV_OP_PUT:
        return sm_kv_set(kv, &a);
    case SM_KV_OP_GET:
        return sm_kv_get(kv, &a, out, out_cap, out_len);
    case SM_KV_OP_DELETE:
        return sm_kv_delete(kv, &a);
    case SM_KV_OP_CAS:
        return sm_kv_cas(kv, &a, out, out_cap, out_len);
    default:
        /* sm_kv_decode accepted only the four ops above. */
        ORDO_ASSERT(0);
        return MSG_STATUS_INVALID;
    }
}

static int sm_kv_is_read(const struct sm *sm, uint8_t op)
{
    (void)sm;
    return op == SM_KV_OP_GET;
}

static int sm_kv_query(const struct sm *sm, uint8_t op, const uint8_t *args, uint32_t args_len,
                       uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    const struct sm_kv *kv = sm_kv_of_const(sm);
    struct sm_kv_args a;
    *out_len = 0;
    if (op != SM_KV_OP_GET || sm_kv_decode(op, args, args_len, kv->value_max, &a) != 0) {
        return MSG_STATUS_INVALID;
    }
    return sm_kv_get(kv, &a, out, out_cap, out_len);
}

/* ---- snapshot ---- */

static uint64_t sm_kv_snapshot_size(const struct sm *sm)
{
    const struct sm_kv *kv = sm_kv_of_const(sm);
    return SM_KV_SNAP_HEADER_LEN + kv->snap_bytes + MSG_DIGEST_LEN + SM_STREAM_SUM_LEN;
}

/* Format (little-endian): header (magic, version, flags = 0, value_max, count), count pairs
 * (key_len u16, key, value_len u32, value) in table order, the state digest, and the
 * BLAKE2b-256 checksum of every byte before it. */
static int sm_kv_snapshot_write(const struct sm *sm, sm_sink_fn sink, void *ctx)
{
    const struct sm_kv *kv = sm_kv_of_const(sm);
    struct sm_stream_writer w;
    uint8_t digest[MSG_DIGEST_LEN];
    uint64_t pairs = 0;
    sm_stream_writer_init(&w, sink, ctx);
    sm_stream_put_u32(&w, SM_KV_SNAP_MAGIC);
    sm_stream_put_u16(&w, SM_KV_SNAP_VERSION);
    sm_stream_put_u16(&w, 0);
    sm_stream_put_u32(&w, kv->value_max);
    sm_stream_put_u64(&w, kv->tab.count);
    for (uint64_t i = 0; i <= kv->tab.mask && w.err == 0; i++) {
        const struct sm_kv_rec *rec = kv->tab.slots[i].rec;
        if (rec == NULL) {
            continue;
        }
        /* data[] starts with key_len u16 LE and the key: the snapshot's encoding. */
        sm_stream_put(&w, rec->data, 2u + rec->key_len);
        sm_stream_put_u32(&w, rec->value_len);
        sm_stream_put(&w, sm_kv_rec_value(rec), rec->value_len);
        pairs++;
    }
    ORDO_ASSERT(w.err != 0 || pairs == kv->tab.count);
    sm_kv_digest(sm, digest);
    sm_stream_put(&w, digest, sizeof(digest));
    return sm_stream_writer_finish(&w);
}

static int sm_kv_snapshot_header(struct sm_stream_reader *r, uint64_t *count)
{
    uint32_t magic;
    uint16_t version;
    uint16_t flags;
    uint32_t value_max;
    sm_stream_get_u32(r, &magic);
    sm_stream_get_u16(r, &version);
    sm_stream_get_u16(r, &flags);
    sm_stream_get_u32(r, &value_max);
    int rc = sm_stream_get_u64(r, count);
    if (rc != 0) {
        return rc;
    }
    if (magic != SM_KV_SNAP_MAGIC) {
        return ORDO_EBADMAGIC;
    }
    if (version != SM_KV_SNAP_VERSION) {
        return ORDO_EVERSION;
    }
    return flags == 0 && value_max <= SM_KV_VALUE_MAX ? 0 : ORDO_EMALFORMED;
}

/* Reads one pair into a new record and inserts it into t. */
static int sm_kv_snapshot_pair(struct sm_stream_reader *r, uint32_t value_max,
                               struct sm_kv_table *t, uint64_t lanes[SM_KV_LANES], uint64_t *bytes)
{
    uint16_t key_len;
    uint32_t value_len;
    int found;
    sm_stream_get_u16(r, &key_len);
    if (r->err == 0 && !sm_kv_key_ok(key_len)) {
        return ORDO_EMALFORMED;
    }
    /* Read the key first, into the record sized once the value length is known. */
    uint8_t key[SM_KV_KEY_MAX];
    sm_stream_get(r, key, key_len);
    int rc = sm_stream_get_u32(r, &value_len);
    if (rc != 0) {
        return rc;
    }
    if (value_len > value_max) {
        return ORDO_ETOOBIG;
    }
    struct sm_kv_rec *rec = sm_kv_rec_new(key_len, value_len);
    if (rec == NULL) {
        return -ENOMEM;
    }
    memcpy(sm_kv_rec_key(rec), key, key_len);
    rc = sm_stream_get(r, sm_kv_rec_value_mut(rec), value_len);
    uint64_t hash = sm_kv_hash(key, key_len);
    if (rc == 0) {
        (void)sm_kv_table_find(t, hash, key, key_len, &found);
        rc = found ? ORDO_ECORRUPT : sm_kv_table_reserve(t);
    }
    if (rc != 0) {
        mem_free(rec);
        return rc;
    }
    sm_kv_rec_lanes(rec);
    sm_kv_table_put_new(t, hash, rec);
    for (unsigned i = 0; i < SM_KV_LANES; i++) {
        lanes[i] += rec->lanes[i];
    }
    *bytes += SM_KV_PAIR_OVERHEAD + (uint64_t)key_len + value_len;
    return 0;
}

static int sm_kv_snapshot_read(struct sm *sm, sm_source_fn source, void *ctx)
{
    struct sm_kv *kv = sm_kv_of(sm);
    struct sm_stream_reader r;
    struct sm_kv_table t = {0};
    uint64_t lanes[SM_KV_LANES] = {0};
    uint64_t bytes = 0;
    uint64_t count;
    uint8_t want[MSG_DIGEST_LEN];
    uint8_t got[MSG_DIGEST_LEN];
    sm_stream_reader_init(&r, source, ctx);
    int rc = sm_kv_snapshot_header(&r, &count);
    /* The count is outside input: size the table for at most 64k keys up front, and let
     * it grow as pairs actually arrive. */
    if (rc == 0) {
        rc = sm_kv_table_init(&t, count < 65536 ? count : 65536);
    }
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        rc = sm_kv_snapshot_pair(&r, kv->value_max, &t, lanes, &bytes);
    }
    if (rc == 0) {
        sm_stream_get(&r, want, sizeof(want));
        rc = sm_stream_reader_finish(&r);
    }
    if (rc == 0) {
        sm_kv_digest_of(lanes, t.count, got);
        rc = sodium_memcmp(want, got, sizeof(got)) == 0 ? 0 : ORDO_ECORRUPT;
    }
    if (rc != 0) {
        sm_kv_table_free(&t);
        return rc;
    }
    sm_kv_table_free(&kv->tab);
    kv->tab = t;
    memcpy(kv->lanes, lanes, sizeof(lanes));
    kv->snap_bytes = bytes;
    return 0;
}

/* ---- life cycle ---- */

static void sm_kv_destroy(struct sm *sm)
{
    struct sm_kv *kv = sm_kv_of(sm);
    sm_kv_table_free(&kv->tab);
    mem_free(kv);
}

uint64_t sm_kv_count(const struct sm *sm)
{
    return sm_kv_of_const(sm)->tab.count;
}

int sm_kv_create(const struct sm_kv_config *cfg, struct sm **out)
{
    struct sm_kv_config c = {0};
    if (cfg != NULL) {
        c = *cfg;
    }
    if (c.value_max == 0) {
        c.value_max = SM_KV_VALUE_MAX;
    }
    if (c.value_max > SM_KV_VALUE_MAX) {
        return ORDO_ECONFIG;
    }
    struct sm_kv *kv = mem_calloc(1, sizeof(*kv));
    if (kv == NULL) {
        return -ENOMEM;
    }
    if (sm_kv_table_init(&kv->tab, c.capacity_hint) != 0) {
        mem_free(kv);
        return -ENOMEM;
    }
    kv->base.ops = &sm_kv_ops;
    kv->base.result_max = c.value_max;
    kv->value_max = c.value_max;
    *out = &kv->base;
    return 0;
}

static const struct sm_ops sm_kv_ops = {
    .name = "kv",
    .apply = sm_kv_apply,
    .query = sm_kv_query,
    .is_read = sm_kv_is_read,
    .snapshot_write = sm_kv_snapshot_write,
    .snapshot_size = sm_kv_snapshot_size,
    .snapshot_read = sm_kv_snapshot_read,
    .digest = sm_kv_digest,
    .destroy = sm_kv_destroy,
};
