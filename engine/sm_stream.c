/* Checksummed snapshot streams: buffering, little-endian fields, BLAKE2b-256 trailer.
 * Pure: bytes go only through the caller's sink and source callbacks. */
#include "engine/sm_stream.h"

#include <string.h>

#include "engine/err.h"
#include "engine/ordo_assert.h"

void sm_stream_writer_init(struct sm_stream_writer *w, sm_sink_fn sink, void *ctx)
{
    w->sink = sink;
    w->ctx = ctx;
    w->err = 0;
    w->fill = 0;
    crypto_generichash_init(&w->hs, NULL, 0, SM_STREAM_SUM_LEN);
}

static void sm_stream_flush(struct sm_stream_writer *w)
{
    if (w->err == 0 && w->fill > 0) {
        w->err = w->sink(w->ctx, w->buf, w->fill);
    }
    w->fill = 0;
}

static void sm_stream_put_raw(struct sm_stream_writer *w, const uint8_t *p, size_t n)
{
    /* The loop advances by at least one byte per pass: bounded by n. */
    while (n > 0 && w->err == 0) {
        if (w->fill == sizeof(w->buf)) {
            sm_stream_flush(w);
            continue;
        }
        size_t k = sizeof(w->buf) - w->fill;
        k = k < n ? k : n;
        memcpy(w->buf + w->fill, p, k);
        w->fill += k;
        p += k;
        n -= k;
    }
}

void sm_stream_put(struct sm_stream_writer *w, const void *p, size_t n)
{
    if (w->err != 0 || n == 0) {
        return;
    }
    crypto_generichash_update(&w->hs, p, n);
    sm_stream_put_raw(w, p, n);
}

void sm_stream_put_u8(struct sm_stream_writer *w, uint8_t v)
{
    sm_stream_put(w, &v, 1);
}

void sm_stream_put_u16(struct sm_stream_writer *w, uint16_t v)
{
    uint8_t b[2];
    sm_stream_le16(b, v);
    sm_stream_put(w, b, sizeof(b));
}

void sm_stream_put_u32(struct sm_stream_writer *w, uint32_t v)
{
    uint8_t b[4];
    sm_stream_le32(b, v);
    sm_stream_put(w, b, sizeof(b));
}

void sm_stream_put_u64(struct sm_stream_writer *w, uint64_t v)
{
    uint8_t b[8];
    sm_stream_le64(b, v);
    sm_stream_put(w, b, sizeof(b));
}

int sm_stream_writer_finish(struct sm_stream_writer *w)
{
    uint8_t sum[SM_STREAM_SUM_LEN];
    crypto_generichash_final(&w->hs, sum, sizeof(sum));
    sm_stream_put_raw(w, sum, sizeof(sum));
    sm_stream_flush(w);
    return w->err;
}

void sm_stream_reader_init(struct sm_stream_reader *r, sm_source_fn source, void *ctx)
{
    r->source = source;
    r->ctx = ctx;
    r->err = 0;
    crypto_generichash_init(&r->hs, NULL, 0, SM_STREAM_SUM_LEN);
}

int sm_stream_get(struct sm_stream_reader *r, void *p, size_t n)
{
    if (r->err == 0 && n > 0) {
        r->err = r->source(r->ctx, p, n);
        ORDO_ASSERT(r->err <= 0);
    }
    if (r->err != 0) {
        memset(p, 0, n);
        return r->err;
    }
    crypto_generichash_update(&r->hs, p, n);
    return 0;
}

int sm_stream_get_u8(struct sm_stream_reader *r, uint8_t *v)
{
    return sm_stream_get(r, v, 1);
}

int sm_stream_get_u16(struct sm_stream_reader *r, uint16_t *v)
{
    uint8_t b[2];
    int rc = sm_stream_get(r, b, sizeof(b));
    *v = sm_stream_rd16(b);
    return rc;
}

int sm_stream_get_u32(struct sm_stream_reader *r, uint32_t *v)
{
    uint8_t b[4];
    int rc = sm_stream_get(r, b, sizeof(b));
    *v = sm_stream_rd32(b);
    return rc;
}

int sm_stream_get_u64(struct sm_stream_reader *r, uint64_t *v)
{
    uint8_t b[8];
    int rc = sm_stream_get(r, b, sizeof(b));
    *v = sm_stream_rd64(b);
    return rc;
}

int sm_stream_reader_finish(struct sm_stream_reader *r)
{
    uint8_t want[SM_STREAM_SUM_LEN];
    uint8_t got[SM_STREAM_SUM_LEN];
    if (r->err != 0) {
        return r->err;
    }
    crypto_generichash_final(&r->hs, want, sizeof(want));
    r->err = r->source(r->ctx, got, sizeof(got));
    if (r->err != 0) {
        return r->err;
    }
    if (sodium_memcmp(want, got, sizeof(got)) != 0) {
        r->err = ORDO_ECHECKSUM;
    }
    return r->err;
}
