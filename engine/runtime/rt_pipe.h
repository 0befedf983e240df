/* Handoffs between replicated stages on different lcores (docs/replica.md): sealed batches
 * sequencer -> core, log commands core -> log lcore with its durable report back. SPSC
 * rte_rings; buffers allocated at start-up and recycled through free rings. */
#ifndef ORDO_ENGINE_RUNTIME_RT_PIPE_H
#define ORDO_ENGINE_RUNTIME_RT_PIPE_H

#include <stdint.h>

#include <rte_ring.h>

#include "drivers/disk/disk.h"
#include "engine/api.h"
#include "engine/msg.h"

/* A buffer of a pool: len bytes of data[cap] in use. */
struct rt_pipe_buf {
    uint32_t len;
    uint32_t cap;
    uint8_t data[];
};

/* n buffers travelling one way: the producer takes a free one, fills it and seals it (FIFO);
 * the consumer takes sealed ones in order and puts them back free. One producer lcore, one
 * consumer lcore. */
struct rt_pipe_pool {
    struct rte_ring *free; /* consumer -> producer */
    struct rte_ring *full; /* producer -> consumer, in seal order */
    void *mem;             /* owned: rings and buffers */
    uint32_t n;
};

/* Allocates n buffers (1..4096) of cap data bytes each and both rings. Start-up only.
 * Returns 0, -EINVAL or -ENOMEM. */
ORDO_API int rt_pipe_pool_init(struct rt_pipe_pool *p, const char *name, uint32_t n, uint32_t cap);
/* Frees everything (buffers in flight included). Accepts a pool never initialised (zeroed). */
ORDO_API void rt_pipe_pool_fini(struct rt_pipe_pool *p);

/* Producer: a free buffer (len 0), or NULL when every buffer is in flight (backpressure). */
static inline struct rt_pipe_buf *rt_pipe_get(struct rt_pipe_pool *p)
{
    void *b = NULL;
    if (rte_ring_sc_dequeue(p->free, &b) != 0) {
        return NULL;
    }
    ((struct rt_pipe_buf *)b)->len = 0;
    return b;
}

/* Producer: hands b to the consumer. Never fails: the full ring holds every buffer. */
ORDO_API void rt_pipe_seal(struct rt_pipe_pool *p, struct rt_pipe_buf *b);

/* Consumer: the oldest sealed buffer, or NULL. */
static inline struct rt_pipe_buf *rt_pipe_take(struct rt_pipe_pool *p)
{
    void *b = NULL;
    return rte_ring_sc_dequeue(p->full, &b) == 0 ? b : NULL;
}

/* Consumer: b is free again. */
ORDO_API void rt_pipe_put(struct rt_pipe_pool *p, struct rt_pipe_buf *b);

/* ---- the log lcore's command queue ---------------------------------------------------- */

enum rt_pipe_cmd_type {
    RT_PIPE_APPEND = 1,     /* disk_log_append of the entries copied into the command */
    RT_PIPE_TRUNCATE = 2,   /* disk_log_truncate(arg) */
    RT_PIPE_HARD_STATE = 3, /* disk_log_hard_state_save(hs) */
};

#define RT_PIPE_LOG_SLOTS 64u
#define RT_PIPE_CMD_BYTES MSG_FRAME_LEN_MAX /* entry bytes per command: any one entry fits */

struct rt_pipe_cmd {
    uint32_t type; /* enum rt_pipe_cmd_type */
    uint32_t n;    /* RT_PIPE_APPEND: entries */
    uint64_t seq;  /* 1, 2, ... in send order */
    uint64_t arg;
    struct disk_hard_state hs;
    struct msg_entry entries[MSG_ENTRIES_MAX]; /* data points into bytes[] */
    uint32_t used;
    uint8_t bytes[RT_PIPE_CMD_BYTES];
};

/* What the log lcore last published. */
struct rt_pipe_report {
    uint64_t durable; /* disk_log durable index */
    uint64_t term;    /* its term (0: unknown) */
    uint64_t done;    /* seq of the last command executed */
    int64_t error;    /* the log's fatal error (sticky), 0 while healthy */
    uint64_t writing; /* 1 while a write is in flight (disk_log_writing) */
};

struct rt_pipe_log {
    struct rt_pipe_pool pool; /* buffers hold struct rt_pipe_cmd; full ring = command FIFO */
    uint64_t sent;            /* core: seq of the last command sent */
    const int *stop;          /* the runtime's stop flag: every wait gives up once it is set */
    /* Seqlock: gen is odd while the report is being written. */
    uint64_t gen;
    struct rt_pipe_report rep;
    /* Hold (the core uses the log itself for a while): req from the core, ack from the log
     * lcore once it drained the commands and stopped, rel from the core to let it go on. */
    uint64_t hold_req;
    uint64_t hold_ack;
    uint64_t hold_rel;
};

/* Start-up: the queue and its RT_PIPE_LOG_SLOTS command slots; waits give up once *stop is
 * nonzero (the runtime's rt->stop). Returns 0 or -ENOMEM. */
ORDO_API int rt_pipe_log_init(struct rt_pipe_log *q, const char *name, const int *stop);
ORDO_API void rt_pipe_log_fini(struct rt_pipe_log *q);

/* Core side. Each returns 0, or -ECANCELED when the runtime stops while waiting for a free
 * slot or the log lcore. */
/* Copies entries[0..n) into commands (several when they exceed one); waits for free slots. */
ORDO_API int rt_pipe_log_append(struct rt_pipe_log *q, const struct msg_entry *entries, uint32_t n);
/* Queues a truncation after index_last_kept; *seq gets its command number. */
ORDO_API int rt_pipe_log_truncate(struct rt_pipe_log *q, uint64_t index_last_kept, uint64_t *seq);
/* Queues the hard state and waits until the log lcore saved it (durable) or failed: returns
 * 0, the log's error, or -ECANCELED. */
ORDO_API int rt_pipe_log_hard_state(struct rt_pipe_log *q, const struct disk_hard_state *hs);
/* The latest report (consistent: read under the seqlock). */
ORDO_API void rt_pipe_log_report(struct rt_pipe_log *q, struct rt_pipe_report *out);
/* Hold: waits until the log lcore executed every command sent and stopped touching the log;
 * the caller then owns it until rt_pipe_log_release, which first publishes a fresh report
 * from the log's bounds (a snapshot or truncation may have moved them). */
ORDO_API int rt_pipe_log_hold(struct rt_pipe_log *q);
ORDO_API void rt_pipe_log_release(struct rt_pipe_log *q, struct disk_log *log);

/* Log lcore side: executes the queued commands in order, reaps completions, grants a hold,
 * publishes the report. Returns the work done. The only function touching log while the
 * log lcore runs (besides a hold). */
ORDO_API uint32_t rt_pipe_log_serve(struct rt_pipe_log *q, struct disk_log *log);

#endif
