/* The application interface: what any replicated state machine implements so that Ordo can
 * apply committed commands to it, serve reads, snapshot it and compare replicas' digests.
 * Pure: an application never reaches a clock, file, socket or random source. */
#ifndef ORDO_ENGINE_SM_H
#define ORDO_ENGINE_SM_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"

/* Snapshot output: writes all `len` bytes of `buf` (borrowed for the call only) to wherever
 * ctx says. Returns 0, or a negative error that the writer passes back to its caller
 * unchanged. Called many times per snapshot, in order. */
typedef int (*sm_sink_fn)(void *ctx, const void *buf, size_t len);

/* Snapshot input: fills exactly `len` bytes of `buf`. Returns 0, ORDO_ETRUNCATED when the
 * input ends first, or another negative error; readers pass errors back unchanged. A reader
 * takes exactly the bytes of its own format and nothing after them, so several sections
 * (sessions, then the application) can follow one another in one stream. */
typedef int (*sm_source_fn)(void *ctx, void *buf, size_t len);

struct sm;

/* Operations table of one application. Every function is called by the apply stage's lcore
 * only (one thread); none may block. "Deterministic" means: the same state and the same
 * input give the same output and the same new state on every replica, whatever the memory
 * layout, the history that led to the state, or the host. */
struct sm_ops {
    const char *name; /* short, static, for logs ("kv") */

    /* Applies one committed command. `op` is the application's operation code; MSG_OP_NOOP
     * (0) must be accepted with any args, change nothing and return MSG_STATUS_OK with an
     * empty result. `args` (args_len bytes) is borrowed for the call and is outside input:
     * validate it, and answer MSG_STATUS_INVALID for anything malformed, never crash.
     * The result goes to `out` (out_cap bytes, caller-owned); *out_len is always set (0 when
     * there is no result). Callers pass out_cap >= sm->result_max; with less, an op whose
     * result does not fit answers MSG_STATUS_TOO_LARGE and changes nothing.
     * Returns an enum msg_status (>= 0): the deterministic outcome, part of the replicated
     * output. Returns a negative error (-ENOMEM) only for a LOCAL failure that other
     * replicas would not see: the state, the digest and *out_len (0) are then unchanged, and
     * the caller must not reply from it: it retries the same command later or fail-stops. */
    int (*apply)(struct sm *sm, uint8_t op, const uint8_t *args, uint32_t args_len, uint8_t *out,
                 uint32_t out_cap, uint32_t *out_len);

    /* Serves a read-only command (one for which is_read(op) is true) from the current state
     * without the log (after ReadIndex). Same arguments and statuses as apply; never changes
     * the state. An op that is not a read answers MSG_STATUS_INVALID. */
    int (*query)(const struct sm *sm, uint8_t op, const uint8_t *args, uint32_t args_len,
                 uint8_t *out, uint32_t out_cap, uint32_t *out_len);

    /* Nonzero when `op` never changes the state, so that it may be served by query. Pure
     * function of op. MSG_OP_NOOP is not a read (probes go through the log). */
    int (*is_read)(const struct sm *sm, uint8_t op);

    /* Streams the whole state to `sink` in the application's self-delimiting, versioned,
     * checksummed format. Does not change the state. Returns 0 or the sink's error. */
    int (*snapshot_write)(const struct sm *sm, sm_sink_fn sink, void *ctx);

    /* Exact number of bytes snapshot_write would produce now (for InstallSnapshot's
     * total_len and for preallocating). */
    uint64_t (*snapshot_size)(const struct sm *sm);

    /* Replaces the whole state with the snapshot read from `source`. The input is outside
     * input: every field is validated; corrupt input gives ORDO_EBADMAGIC, ORDO_EVERSION,
     * ORDO_EMALFORMED, ORDO_ETOOBIG, ORDO_ECHECKSUM or ORDO_ECORRUPT, a short one the
     * source's error, no memory -ENOMEM. Atomic: on any error the old state (and digest)
     * stays as it was. */
    int (*snapshot_read)(struct sm *sm, sm_source_fn source, void *ctx);

    /* Digest of the state (MSG_DIGEST_LEN bytes to `out`): equal states give equal digests
     * whatever the order of operations that built them; different states differ (with
     * cryptographic probability). Cheap: no scan of the state. */
    void (*digest)(const struct sm *sm, uint8_t out[MSG_DIGEST_LEN]);

    /* Frees the instance and everything it owns. NULL-safe through sm_destroy. */
    void (*destroy)(struct sm *sm);
};

/* Every application instance begins with this header (embed it as the first member); the
 * instance is created by the application's own constructor (e.g. sm_kv_create). */
struct sm {
    const struct sm_ops *ops;
    uint32_t result_max; /* largest result any op can produce; callers size `out` by it */
};

/* Convenience wrappers: one indirect call each; see struct sm_ops for the contracts. */
static inline int sm_apply(struct sm *sm, uint8_t op, const uint8_t *args, uint32_t args_len,
                           uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    return sm->ops->apply(sm, op, args, args_len, out, out_cap, out_len);
}

static inline int sm_query(const struct sm *sm, uint8_t op, const uint8_t *args, uint32_t args_len,
                           uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    return sm->ops->query(sm, op, args, args_len, out, out_cap, out_len);
}

static inline int sm_is_read(const struct sm *sm, uint8_t op)
{
    return sm->ops->is_read(sm, op);
}

static inline int sm_snapshot_write(const struct sm *sm, sm_sink_fn sink, void *ctx)
{
    return sm->ops->snapshot_write(sm, sink, ctx);
}

static inline uint64_t sm_snapshot_size(const struct sm *sm)
{
    return sm->ops->snapshot_size(sm);
}

static inline int sm_snapshot_read(struct sm *sm, sm_source_fn source, void *ctx)
{
    return sm->ops->snapshot_read(sm, source, ctx);
}

static inline void sm_digest(const struct sm *sm, uint8_t out[MSG_DIGEST_LEN])
{
    sm->ops->digest(sm, out);
}

static inline void sm_destroy(struct sm *sm)
{
    if (sm != NULL) {
        sm->ops->destroy(sm);
    }
}

/* In-memory sink and source (engine/sm.c), for tests, fuzzing and small snapshots. */

/* A growing buffer: data is allocated with mem_ and owned by the struct. Start from
 * {0} (all zero); free with sm_mem_sink_free. */
struct sm_mem_sink {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* sm_sink_fn for a struct sm_mem_sink passed as ctx. Returns 0 or -ENOMEM (data kept). */
ORDO_API int sm_mem_sink_write(void *ctx, const void *buf, size_t len);
/* Frees the buffer and zeroes the struct. */
ORDO_API void sm_mem_sink_free(struct sm_mem_sink *s);

/* Reads a borrowed byte range; `data` must stay valid while reading. */
struct sm_mem_source {
    const uint8_t *data;
    size_t len;
    size_t pos;
};

/* sm_source_fn for a struct sm_mem_source passed as ctx: copies the next `len` bytes, or
 * returns ORDO_ETRUNCATED (position unchanged) when fewer remain. */
ORDO_API int sm_mem_source_read(void *ctx, void *buf, size_t len);

#endif
