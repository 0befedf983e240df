/* Fuzz target for the key-value store's argument decoder and apply path, and for the
 * snapshot readers of the store and of the session table. The first input byte picks the
 * target; the checks below abort (libFuzzer reports a crash) when a property fails. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/sess.h"
#include "engine/sm.h"
#include "engine/sm_kv.h"
#include "tests/fuzz/fuzz.h"

enum fuzz_sm_kv_mode {
    FUZZ_SM_KV_ARGS = 0,     /* op byte, then args */
    FUZZ_SM_KV_SNAPSHOT = 1, /* a key-value snapshot */
    FUZZ_SM_KV_SESS = 2,     /* a session table snapshot */
};

/* A decoded request re-encodes to the very same bytes: the decoder accepts one encoding. */
static void fuzz_sm_kv_reencode(uint8_t op, const uint8_t *args, uint32_t len,
                                const struct sm_kv_args *a)
{
    static uint8_t buf[SM_KV_ARGS_MAX];
    int n = -1;
    switch (op) {
    case SM_KV_OP_PUT:
        n = sm_kv_encode_put(buf, sizeof(buf), a->key, a->key_len, a->value, a->value_len);
        break;
    case SM_KV_OP_GET:
        n = sm_kv_encode_get(buf, sizeof(buf), a->key, a->key_len);
        break;
    case SM_KV_OP_DELETE:
        n = sm_kv_encode_del(buf, sizeof(buf), a->key, a->key_len);
        break;
    default:
        n = sm_kv_encode_cas(buf, sizeof(buf), a->key, a->key_len, a->expected, a->expected_len,
                             a->value, a->value_len);
        break;
    }
    ORDO_ASSERT(n > 0 && (uint32_t)n == len);
    ORDO_ASSERT(memcmp(buf, args, len) == 0);
}

static void fuzz_sm_kv_args(struct sm *kv, const uint8_t *data, size_t size)
{
    static uint8_t out[SM_KV_VALUE_MAX];
    uint32_t out_len = 0;
    if (size < 1 || size > UINT32_MAX) {
        return;
    }
    uint8_t op = data[0];
    const uint8_t *args = data + 1;
    uint32_t len = (uint32_t)(size - 1);
    struct sm_kv_args a;
    int rc = sm_kv_decode(op, args, len, SM_KV_VALUE_MAX, &a);
    if (rc == 0) {
        fuzz_sm_kv_reencode(op, args, len, &a);
    }
    int st = sm_apply(kv, op, args, len, out, sizeof(out), &out_len);
    ORDO_ASSERT(st >= 0 && out_len <= sizeof(out));
    ORDO_ASSERT(rc == 0 || op == MSG_OP_NOOP || st == MSG_STATUS_INVALID);
    st = sm_query(kv, op, args, len, out, sizeof(out), &out_len);
    ORDO_ASSERT(st >= 0 && out_len <= sizeof(out));
}

/* A failed read keeps the old state; a successful one writes back an equal state. */
static void fuzz_sm_kv_snapshot(struct sm *kv, const uint8_t *data, size_t size)
{
    uint8_t before[MSG_DIGEST_LEN], after[MSG_DIGEST_LEN];
    struct sm_mem_source src = {.data = data, .len = size};
    sm_digest(kv, before);
    int rc = sm_snapshot_read(kv, sm_mem_source_read, &src);
    sm_digest(kv, after);
    if (rc != 0) {
        ORDO_ASSERT(memcmp(before, after, sizeof(after)) == 0);
        return;
    }
    struct sm_mem_sink sink = {0};
    rc = sm_snapshot_write(kv, sm_mem_sink_write, &sink);
    ORDO_ASSERT(rc == 0 && sink.len == sm_snapshot_size(kv));
    sm_mem_sink_free(&sink);
}

static void fuzz_sm_kv_sess(const uint8_t *data, size_t size)
{
    struct sess_table *t = NULL;
    struct sess_config cfg = {.sessions_max = 16, .expiry_entries = 100, .reply_max = 64};
    ORDO_ASSERT(sess_create(&cfg, &t) == 0);
    ORDO_ASSERT(sess_record(t, 1, 1, 1, 0, (const uint8_t *)"x", 1) == 0);
    struct sm_mem_source src = {.data = data, .len = size};
    int rc = sess_snapshot_read(t, sm_mem_source_read, &src);
    if (rc != 0) {
        ORDO_ASSERT(sess_count(t) == 1 && sess_lookup(t, 1, 1, NULL) == SESS_DUPLICATE);
    } else {
        struct sm_mem_sink sink = {0};
        ORDO_ASSERT(sess_snapshot_write(t, sm_mem_sink_write, &sink) == 0);
        ORDO_ASSERT(sink.len == sess_snapshot_size(t) && sink.len <= size);
        /* Sessions are written in LRU order: the bytes read come back unchanged. */
        ORDO_ASSERT(memcmp(sink.data, data, sink.len) == 0);
        sm_mem_sink_free(&sink);
    }
    sess_destroy(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    struct sm *kv = NULL;
    ORDO_ASSERT(sm_kv_create(NULL, &kv) == 0);
    static const uint8_t put[] = {1, 0, 'k', 1, 0, 0, 0, 'v'};
    uint32_t out_len;
    ORDO_ASSERT(sm_apply(kv, SM_KV_OP_PUT, put, sizeof(put), NULL, 0, &out_len) == 0);
    switch (data[0] % 3) {
    case FUZZ_SM_KV_ARGS:
        fuzz_sm_kv_args(kv, data + 1, size - 1);
        break;
    case FUZZ_SM_KV_SNAPSHOT:
        fuzz_sm_kv_snapshot(kv, data + 1, size - 1);
        break;
    default:
        fuzz_sm_kv_sess(data + 1, size - 1);
        break;
    }
    sm_destroy(kv);
    return 0;
}
