/* Handoffs between replicated stages on different lcores: buffer pools over two SPSC rings,
 * and the log lcore's command queue with its seqlock-published durable report. */
#include "engine/runtime/rt_pipe.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_pause.h>

#include "engine/mem.h"
#include "engine/ordo_assert.h"

#define RT_PIPE_ALIGN 64u
#define RT_PIPE_SPINS 256u /* rte_pause rounds before a wait starts yielding the CPU */

static size_t rt_pipe_buf_stride(uint32_t cap)
{
    return RTE_ALIGN_CEIL(sizeof(struct rt_pipe_buf) + cap, RT_PIPE_ALIGN);
}

static struct rte_ring *rt_pipe_ring_init(uint8_t *at, const char *name, const char *tag,
                                          uint32_t n)
{
    char full[RTE_RING_NAMESIZE];
    snprintf(full, sizeof(full), "%s_%s", name, tag);
    struct rte_ring *r = (struct rte_ring *)at;
    int rc = rte_ring_init(r, full, n, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    return rc == 0 ? r : NULL;
}

int rt_pipe_pool_init(struct rt_pipe_pool *p, const char *name, uint32_t n, uint32_t cap)
{
    memset(p, 0, sizeof(*p));
    if (n == 0 || n > 4096u) {
        return -EINVAL;
    }
    ssize_t rsz = rte_ring_get_memsize(rte_align32pow2(n + 1u));
    if (rsz <= 0) {
        return -EINVAL;
    }
    size_t ring_bytes = RTE_ALIGN_CEIL((size_t)rsz, RT_PIPE_ALIGN);
    size_t stride = rt_pipe_buf_stride(cap);
    p->mem = mem_calloc(1, 2 * ring_bytes + n * stride + RT_PIPE_ALIGN);
    if (p->mem == NULL) {
        return -ENOMEM;
    }
    uint8_t *base = RTE_PTR_ALIGN_CEIL((uint8_t *)p->mem, RT_PIPE_ALIGN);
    p->free = rt_pipe_ring_init(base, name, "f", n);
    p->full = rt_pipe_ring_init(base + ring_bytes, name, "q", n);
    if (p->free == NULL || p->full == NULL) {
        rt_pipe_pool_fini(p);
        return -EINVAL;
    }
    p->n = n;
    uint8_t *bufs = base + 2 * ring_bytes;
    for (uint32_t i = 0; i < n; i++) {
        struct rt_pipe_buf *b = (struct rt_pipe_buf *)(bufs + i * stride);
        b->cap = cap;
        ORDO_ASSERT(rte_ring_sp_enqueue(p->free, b) == 0);
    }
    return 0;
}

void rt_pipe_pool_fini(struct rt_pipe_pool *p)
{
    mem_free(p->mem);
    memset(p, 0, sizeof(*p));
}

void rt_pipe_seal(struct rt_pipe_pool *p, struct rt_pipe_buf *b)
{
    ORDO_ASSERT(b->len <= b->cap);
    ORDO_ASSERT(rte_ring_sp_enqueue(p->full, b) == 0); /* holds every buffer: never full */
}

void rt_pipe_put(struct rt_pipe_pool *p, struct rt_pipe_buf *b)
{
    ORDO_ASSERT(rte_ring_sp_enqueue(p->free, b) == 0);
}

/* ---- log command queue ---------------------------------------------------------------- */

/* One round of a bounded-CPU wait: spin briefly, then yield (lcores may share a CPU). False
 * once the runtime stops. */
static bool rt_pipe_wait_round(const struct rt_pipe_log *q, uint32_t *spins)
{
    if (q->stop != NULL && __atomic_load_n(q->stop, __ATOMIC_RELAXED) != 0) {
        return false;
    }
    if (++*spins < RT_PIPE_SPINS) {
        rte_pause();
    } else {
        (void)sched_yield();
    }
    return true;
}

int rt_pipe_log_init(struct rt_pipe_log *q, const char *name, const int *stop)
{
    memset(q, 0, sizeof(*q));
    q->stop = stop;
    return rt_pipe_pool_init(&q->pool, name, RT_PIPE_LOG_SLOTS, sizeof(struct rt_pipe_cmd));
}

void rt_pipe_log_fini(struct rt_pipe_log *q)
{
    rt_pipe_pool_fini(&q->pool);
}

static inline struct rt_pipe_cmd *rt_pipe_cmd_of(struct rt_pipe_buf *b)
{
    return (struct rt_pipe_cmd *)(void *)b->data;
}

/* A free command slot; waits for the log lcore to recycle one (backpressure, like a full
 * staging buffer in disk_log_append). */
static int rt_pipe_slot(struct rt_pipe_log *q, uint32_t type, struct rt_pipe_cmd **out)
{
    uint32_t spins = 0;
    struct rt_pipe_buf *b;
    while ((b = rt_pipe_get(&q->pool)) == NULL) {
        if (!rt_pipe_wait_round(q, &spins)) {
            return -ECANCELED;
        }
    }
    b->len = sizeof(struct rt_pipe_cmd);
    struct rt_pipe_cmd *c = rt_pipe_cmd_of(b);
    c->type = type;
    c->n = 0;
    c->used = 0;
    c->seq = ++q->sent;
    *out = c;
    return 0;
}

static void rt_pipe_send(struct rt_pipe_log *q, struct rt_pipe_cmd *c)
{
    struct rt_pipe_buf *b =
        (struct rt_pipe_buf *)((uint8_t *)c - offsetof(struct rt_pipe_buf, data));
    rt_pipe_seal(&q->pool, b);
}

int rt_pipe_log_append(struct rt_pipe_log *q, const struct msg_entry *entries, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        struct rt_pipe_cmd *c = NULL;
        int rc = rt_pipe_slot(q, RT_PIPE_APPEND, &c);
        if (rc != 0) {
            return rc;
        }
        ORDO_ASSERT(entries[i].len <= RT_PIPE_CMD_BYTES); /* entries come from the core */
        while (i < n && c->n < MSG_ENTRIES_MAX && c->used + entries[i].len <= RT_PIPE_CMD_BYTES) {
            struct msg_entry *e = &c->entries[c->n++];
            *e = entries[i];
            if (e->len != 0) {
                memcpy(c->bytes + c->used, entries[i].data, e->len);
            }
            e->data = c->bytes + c->used;
            c->used += e->len;
            i++;
        }
        rt_pipe_send(q, c);
    }
    return 0;
}

int rt_pipe_log_truncate(struct rt_pipe_log *q, uint64_t index_last_kept, uint64_t *seq)
{
    struct rt_pipe_cmd *c = NULL;
    int rc = rt_pipe_slot(q, RT_PIPE_TRUNCATE, &c);
    if (rc != 0) {
        return rc;
    }
    c->arg = index_last_kept;
    *seq = c->seq;
    rt_pipe_send(q, c);
    return 0;
}

void rt_pipe_log_report(struct rt_pipe_log *q, struct rt_pipe_report *out)
{
    for (;;) {
        uint64_t g0 = __atomic_load_n(&q->gen, __ATOMIC_ACQUIRE);
        out->durable = __atomic_load_n(&q->rep.durable, __ATOMIC_RELAXED);
        out->term = __atomic_load_n(&q->rep.term, __ATOMIC_RELAXED);
        out->done = __atomic_load_n(&q->rep.done, __ATOMIC_RELAXED);
        out->error = __atomic_load_n(&q->rep.error, __ATOMIC_RELAXED);
        out->writing = __atomic_load_n(&q->rep.writing, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((g0 & 1u) == 0 && __atomic_load_n(&q->gen, __ATOMIC_RELAXED) == g0) {
            return;
        }
        rte_pause();
    }
}

/* Writer side of the seqlock: the log lcore, or the core while it holds the log. */
static void rt_pipe_publish(struct rt_pipe_log *q, const struct rt_pipe_report *r)
{
    uint64_t g = q->gen;
    __atomic_store_n(&q->gen, g + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&q->rep.durable, r->durable, __ATOMIC_RELAXED);
    __atomic_store_n(&q->rep.term, r->term, __ATOMIC_RELAXED);
    __atomic_store_n(&q->rep.done, r->done, __ATOMIC_RELAXED);
    __atomic_store_n(&q->rep.error, r->error, __ATOMIC_RELAXED);
    __atomic_store_n(&q->rep.writing, r->writing, __ATOMIC_RELAXED);
    __atomic_store_n(&q->gen, g + 2, __ATOMIC_RELEASE);
}

int rt_pipe_log_hard_state(struct rt_pipe_log *q, const struct disk_hard_state *hs)
{
    struct rt_pipe_cmd *c = NULL;
    int rc = rt_pipe_slot(q, RT_PIPE_HARD_STATE, &c);
    if (rc != 0) {
        return rc;
    }
    c->hs = *hs;
    uint64_t seq = c->seq;
    rt_pipe_send(q, c);
    /* Rare (elections, votes): the core waits, so the update's messages leave only after the
     * term and vote are on stable storage. */
    uint32_t spins = 0;
    struct rt_pipe_report r;
    for (;;) {
        rt_pipe_log_report(q, &r);
        if (r.error != 0) {
            return (int)r.error;
        }
        if (r.done >= seq) {
            return 0;
        }
        if (!rt_pipe_wait_round(q, &spins)) {
            return -ECANCELED;
        }
    }
}

int rt_pipe_log_hold(struct rt_pipe_log *q)
{
    uint64_t want = q->hold_req + 1;
    __atomic_store_n(&q->hold_req, want, __ATOMIC_RELEASE);
    uint32_t spins = 0;
    while (__atomic_load_n(&q->hold_ack, __ATOMIC_ACQUIRE) != want) {
        if (!rt_pipe_wait_round(q, &spins)) {
            return -ECANCELED; /* the log lcore may still grant it: release undoes it */
        }
    }
    return 0;
}

void rt_pipe_log_release(struct rt_pipe_log *q, struct disk_log *log)
{
    uint64_t want = q->hold_req;
    if (__atomic_load_n(&q->hold_ack, __ATOMIC_ACQUIRE) == want && log != NULL) {
        struct disk_bounds b;
        struct rt_pipe_report r = q->rep;
        disk_log_bounds(log, &b);
        r.durable = b.index_durable;
        if (disk_log_term_at(log, r.durable, &r.term) != 0) {
            r.term = 0;
        }
        r.error = r.error != 0 ? r.error : disk_log_error(log);
        r.writing = disk_log_writing(log) ? 1u : 0u;
        rt_pipe_publish(q, &r);
    }
    __atomic_store_n(&q->hold_rel, want, __ATOMIC_RELEASE);
}

static int rt_pipe_exec(struct disk_log *log, const struct rt_pipe_cmd *c)
{
    int rc = -EINVAL;
    switch (c->type) {
    case RT_PIPE_APPEND:
        rc = disk_log_append(log, c->entries, c->n);
        if (rc == ORDO_ENOSPACE) {
            rc = disk_log_sync(log); /* staging full: drain the write in flight, retry */
            if (rc == 0) {
                rc = disk_log_append(log, c->entries, c->n);
            }
        }
        break;
    case RT_PIPE_TRUNCATE:
        rc = disk_log_truncate(log, c->arg);
        break;
    case RT_PIPE_HARD_STATE:
        rc = disk_log_hard_state_save(log, &c->hs);
        break;
    default:
        ORDO_ASSERT(0 && "unknown log command");
    }
    return rc;
}

/* A granted hold: the log lcore stays off the log until the core releases it. */
static void rt_pipe_grant(struct rt_pipe_log *q, uint64_t req)
{
    __atomic_store_n(&q->hold_ack, req, __ATOMIC_RELEASE);
    uint32_t spins = 0;
    while (__atomic_load_n(&q->hold_rel, __ATOMIC_ACQUIRE) != req) {
        if (!rt_pipe_wait_round(q, &spins)) {
            return;
        }
    }
}

uint32_t rt_pipe_log_serve(struct rt_pipe_log *q, struct disk_log *log)
{
    uint64_t req = __atomic_load_n(&q->hold_req, __ATOMIC_ACQUIRE);
    struct rt_pipe_report r = q->rep; /* this lcore is the writer: no seqlock needed */
    uint32_t work = 0;
    struct rt_pipe_buf *b;
    while ((b = rt_pipe_take(&q->pool)) != NULL) {
        struct rt_pipe_cmd *c = rt_pipe_cmd_of(b);
        if (r.error == 0) {
            int rc = rt_pipe_exec(log, c);
            r.error = rc;
        }
        r.done = c->seq;
        rt_pipe_put(&q->pool, b);
        work++;
    }
    uint64_t durable = 0;
    int rc = disk_log_poll(log, &durable);
    if (rc < 0 && r.error == 0) {
        r.error = rc;
    }
    work += rc > 0 ? (uint32_t)rc : 0u;
    if (disk_log_term_at(log, durable, &r.term) != 0) {
        r.term = 0;
    }
    r.durable = durable;
    r.writing = disk_log_writing(log) ? 1u : 0u;
    if (memcmp(&r, &q->rep, sizeof(r)) != 0) {
        rt_pipe_publish(q, &r);
    }
    if (req != __atomic_load_n(&q->hold_ack, __ATOMIC_RELAXED)) {
        rt_pipe_grant(q, req);
        work++;
    }
    return work;
}
