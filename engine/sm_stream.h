/* Checksummed, buffered snapshot streams shared by the snapshot sections of the key-value
 * store and the session table: little-endian fields, a BLAKE2b-256 checksum of every byte
 * before it at the end. Internal to libordo (not exported). */
#ifndef ORDO_ENGINE_SM_STREAM_H
#define ORDO_ENGINE_SM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "engine/sm.h"

#define SM_STREAM_SUM_LEN 32u /* trailing checksum bytes */
#define SM_STREAM_BUF_LEN 8192u

/* Writer: the first error (from the sink) sticks and later calls do nothing, so a section
 * writes all its fields and checks the result once, at sm_stream_writer_finish. */
struct sm_stream_writer {
    sm_sink_fn sink;
    void *ctx;
    int err;
    size_t fill;
    crypto_generichash_state hs;
    uint8_t buf[SM_STREAM_BUF_LEN];
};

void sm_stream_writer_init(struct sm_stream_writer *w, sm_sink_fn sink, void *ctx);
void sm_stream_put(struct sm_stream_writer *w, const void *p, size_t n);
void sm_stream_put_u8(struct sm_stream_writer *w, uint8_t v);
void sm_stream_put_u16(struct sm_stream_writer *w, uint16_t v);
void sm_stream_put_u32(struct sm_stream_writer *w, uint32_t v);
void sm_stream_put_u64(struct sm_stream_writer *w, uint64_t v);
/* Appends the checksum and flushes. Returns 0 or the first sink error. */
int sm_stream_writer_finish(struct sm_stream_writer *w);

/* Reader: same sticky-error rule; every get returns the (sticky) error so loops stop at the
 * first failure. Values are zero when an error is returned. */
struct sm_stream_reader {
    sm_source_fn source;
    void *ctx;
    int err;
    crypto_generichash_state hs;
};

void sm_stream_reader_init(struct sm_stream_reader *r, sm_source_fn source, void *ctx);
int sm_stream_get(struct sm_stream_reader *r, void *p, size_t n);
int sm_stream_get_u8(struct sm_stream_reader *r, uint8_t *v);
int sm_stream_get_u16(struct sm_stream_reader *r, uint16_t *v);
int sm_stream_get_u32(struct sm_stream_reader *r, uint32_t *v);
int sm_stream_get_u64(struct sm_stream_reader *r, uint64_t *v);
/* Reads the trailing checksum and compares it with the bytes read so far. Returns 0, the
 * first source error, or ORDO_ECHECKSUM. */
int sm_stream_reader_finish(struct sm_stream_reader *r);

/* Little-endian helpers for fixed buffers. */
static inline void sm_stream_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void sm_stream_le32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void sm_stream_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint16_t sm_stream_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t sm_stream_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t sm_stream_rd64(const uint8_t *p)
{
    return (uint64_t)sm_stream_rd32(p) | ((uint64_t)sm_stream_rd32(p + 4) << 32);
}

#endif
