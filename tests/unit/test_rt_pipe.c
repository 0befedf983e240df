/* The handoffs between replicated stages on different lcores (engine/runtime/rt_pipe.h):
 * the batch pool's rings and recycling, the log command queue's order against a real io_uring
 * log, the hard state saved before its sender goes on, holds, errors and stops. No EAL. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <criterion/criterion.h>

#include "disk_test_util.h"
#include "engine/runtime/rt_pipe.h"

/* ---- batch pool ----------------------------------------------------------------------- */

Test(rt_pipe, pool_hands_out_every_buffer_once_then_refuses)
{
    struct rt_pipe_pool p;
    cr_assert_eq(rt_pipe_pool_init(&p, "t_pool", 8, 100), 0);
    struct rt_pipe_buf *got[8];
    for (int i = 0; i < 8; i++) {
        got[i] = rt_pipe_get(&p);
        cr_assert_not_null(got[i]);
        cr_assert_eq(got[i]->cap, 100);
        cr_assert_eq(got[i]->len, 0);
        for (int k = 0; k < i; k++) {
            cr_assert_neq(got[i], got[k], "buffer %d handed out twice", i);
        }
    }
    cr_assert_null(rt_pipe_get(&p), "all 8 in flight: backpressure");
    rt_pipe_seal(&p, got[3]);
    cr_assert_null(rt_pipe_get(&p), "sealed is not free");
    struct rt_pipe_buf *b = rt_pipe_take(&p);
    cr_assert_eq(b, got[3]);
    rt_pipe_put(&p, b);
    cr_assert_eq(rt_pipe_get(&p), got[3], "recycled buffer comes back");
    rt_pipe_pool_fini(&p);
}

Test(rt_pipe, pool_keeps_seal_order_and_contents)
{
    struct rt_pipe_pool p;
    cr_assert_eq(rt_pipe_pool_init(&p, "t_order", 4, 16), 0);
    for (uint8_t round = 0; round < 10; round++) {
        for (uint8_t i = 0; i < 4; i++) {
            struct rt_pipe_buf *b = rt_pipe_get(&p);
            cr_assert_not_null(b);
            b->data[0] = (uint8_t)(round * 4 + i);
            b->len = 1;
            rt_pipe_seal(&p, b);
        }
        for (uint8_t i = 0; i < 4; i++) {
            struct rt_pipe_buf *b = rt_pipe_take(&p);
            cr_assert_not_null(b);
            cr_assert_eq(b->len, 1);
            cr_assert_eq(b->data[0], round * 4 + i);
            rt_pipe_put(&p, b);
        }
        cr_assert_null(rt_pipe_take(&p));
    }
    rt_pipe_pool_fini(&p);
}

Test(rt_pipe, pool_rejects_bad_sizes)
{
    struct rt_pipe_pool p;
    cr_assert_eq(rt_pipe_pool_init(&p, "t_bad", 0, 16), -EINVAL);
    cr_assert_eq(rt_pipe_pool_init(&p, "t_bad", 5000, 16), -EINVAL);
    rt_pipe_pool_fini(&p); /* zeroed: accepted */
}

#define T_XFER 200000u

static void *t_producer(void *arg)
{
    struct rt_pipe_pool *p = arg;
    for (uint32_t i = 0; i < T_XFER;) {
        struct rt_pipe_buf *b = rt_pipe_get(p);
        if (b == NULL) {
            sched_yield();
            continue;
        }
        memcpy(b->data, &i, sizeof(i));
        b->len = sizeof(i);
        rt_pipe_seal(p, b);
        i++;
    }
    return NULL;
}

/* Two threads, one producer and one consumer (the sequencer and the core): every buffer
 * arrives once, in order, with its contents, and the pool never grows. */
Test(rt_pipe, pool_between_two_threads_loses_nothing)
{
    struct rt_pipe_pool p;
    cr_assert_eq(rt_pipe_pool_init(&p, "t_xfer", 16, 64), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, t_producer, &p), 0);
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    uint32_t next = 0;
    while (next < T_XFER && dt_now_ns() < deadline) {
        struct rt_pipe_buf *b = rt_pipe_take(&p);
        if (b == NULL) {
            sched_yield();
            continue;
        }
        uint32_t v;
        cr_assert_eq(b->len, sizeof(v));
        memcpy(&v, b->data, sizeof(v));
        cr_assert_eq(v, next, "got %u, expected %u", v, next);
        next++;
        rt_pipe_put(&p, b);
    }
    pthread_join(th, NULL);
    cr_assert_eq(next, T_XFER);
    cr_assert_eq(rte_ring_count(p.free), 16, "every buffer back in the free ring");
    rt_pipe_pool_fini(&p);
}

/* ---- log command queue ---------------------------------------------------------------- */

struct t_log {
    char dir[DT_PATH_MAX];
    struct disk_log *log;
    struct rt_pipe_log q;
    int stop;
};

static void t_log_open(struct t_log *t)
{
    memset(t, 0, sizeof(*t));
    cr_assert_eq(dt_mkdtemp(t->dir), 0);
    struct disk_config c;
    dt_config(&c, t->dir);
    int rc = 0;
    struct ordo_errmsg e = {{0}};
    t->log = disk_log_open(&c, &rc, &e);
    cr_assert_not_null(t->log, "%s", e.text);
    cr_assert_eq(rt_pipe_log_init(&t->q, "t_logq", &t->stop), 0);
}

static void t_log_close(struct t_log *t)
{
    rt_pipe_log_fini(&t->q);
    disk_log_close(t->log);
    dt_rmtree(t->dir);
}

/* Serves (this thread is the log lcore) until the report shows index durable and every
 * command done, or the bound passes. */
static void t_serve_until(struct t_log *t, uint64_t index)
{
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    struct rt_pipe_report r;
    for (;;) {
        (void)rt_pipe_log_serve(&t->q, t->log);
        rt_pipe_log_report(&t->q, &r);
        cr_assert_eq(r.error, 0, "log error %ld", (long)r.error);
        if (r.durable >= index && r.done == t->q.sent) {
            return;
        }
        cr_assert_lt(dt_now_ns(), deadline, "index %lu not durable (at %lu)", (unsigned long)index,
                     (unsigned long)r.durable);
        sched_yield();
    }
}

static void t_append(struct t_log *t, uint64_t from, uint64_t to, uint64_t term, uint32_t len)
{
    static uint8_t bufs[128][4096];
    struct msg_entry e[128];
    uint32_t n = 0;
    cr_assert_leq(to - from + 1, 128);
    for (uint64_t i = from; i <= to; i++, n++) {
        dt_entry(&e[n], bufs[n], i, term, len);
    }
    cr_assert_eq(rt_pipe_log_append(&t->q, e, n), 0);
    /* The queue copied the bytes: scribbling on the caller's buffers changes nothing. */
    for (uint32_t k = 0; k < n; k++) {
        memset(bufs[k], 0xee, len);
    }
}

static void t_check_entries(struct t_log *t, uint64_t from, uint64_t to, uint64_t term)
{
    static uint8_t buf[1 << 20];
    struct msg_entry out[128];
    int n = disk_log_read(t->log, from, (uint32_t)(to - from + 1), out, buf, sizeof(buf));
    cr_assert_eq(n, (int)(to - from + 1), "read %d", n);
    for (int k = 0; k < n; k++) {
        cr_assert_eq(out[k].index, from + (uint64_t)k);
        cr_assert_eq(out[k].term, term);
        cr_assert(dt_payload_ok(out[k].data, out[k].len, out[k].index), "payload of %lu",
                  (unsigned long)out[k].index);
    }
}

/* Appends that exceed one command (more than MSG_ENTRIES_MAX entries, more bytes than a
 * slot) are split, and land in the log in order with their bytes and terms. */
Test(rt_pipe, appends_arrive_in_order_with_their_bytes)
{
    struct t_log t;
    t_log_open(&t);
    t_append(&t, 1, 100, 1, 40);     /* 100 entries: two commands */
    t_append(&t, 101, 110, 1, 3000); /* 30 000 bytes: four commands */
    cr_assert_geq(t.q.sent, 6);
    t_serve_until(&t, 110);
    struct rt_pipe_report r;
    rt_pipe_log_report(&t.q, &r);
    cr_assert_eq(r.durable, 110);
    cr_assert_eq(r.term, 1);
    t_check_entries(&t, 1, 110, 1);
    t_log_close(&t);
}

/* A truncation queued between appends runs between them: the rewritten suffix has the new
 * term, and the report names the command it reflects (older reports are recognisable). */
Test(rt_pipe, truncate_runs_in_command_order)
{
    struct t_log t;
    t_log_open(&t);
    t_append(&t, 1, 20, 1, 64);
    uint64_t seq = 0;
    cr_assert_eq(rt_pipe_log_truncate(&t.q, 10, &seq), 0);
    cr_assert_eq(seq, t.q.sent);
    t_append(&t, 11, 30, 2, 64);
    t_serve_until(&t, 30);
    struct rt_pipe_report r;
    rt_pipe_log_report(&t.q, &r);
    cr_assert_gt(r.done, seq);
    cr_assert_eq(r.term, 2);
    t_check_entries(&t, 1, 10, 1);
    t_check_entries(&t, 11, 30, 2);
    t_log_close(&t);
}

struct t_waiter {
    struct t_log *t;
    uint64_t term;
    int rc;
    int returned;
};

static void *t_hard_state(void *arg)
{
    struct t_waiter *w = arg;
    struct disk_hard_state hs = {.term = w->term, .voted_for = 2};
    w->rc = rt_pipe_log_hard_state(&w->t->q, &hs);
    __atomic_store_n(&w->returned, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The core sends the hard state and cannot go on (send the update's messages) before the log
 * lcore saved it: here the log side only runs when the test says so, so the waiter is still
 * blocked while the command sits in the queue, and returns once it is durable. */
Test(rt_pipe, hard_state_is_durable_before_the_sender_goes_on)
{
    struct t_log t;
    t_log_open(&t);
    struct t_waiter w = {.t = &t, .term = 7};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, t_hard_state, &w), 0);
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    while (rte_ring_count(t.q.pool.full) == 0) {
        cr_assert_lt(dt_now_ns(), deadline, "hard state never queued");
        sched_yield();
    }
    cr_assert_eq(__atomic_load_n(&w.returned, __ATOMIC_ACQUIRE), 0,
                 "returned before the log lcore ran");
    struct disk_hard_state hs;
    cr_assert_neq(disk_log_hard_state_load(t.log, &hs) == 0 && hs.term == 7, 1);
    (void)rt_pipe_log_serve(&t.q, t.log);
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(disk_log_hard_state_load(t.log, &hs), 0);
    cr_assert_eq(hs.term, 7);
    cr_assert_eq(hs.voted_for, 2);
    t_log_close(&t);
}

Test(rt_pipe, waits_give_up_when_the_runtime_stops)
{
    struct t_log t;
    t_log_open(&t);
    t.stop = 1; /* no log lcore will ever answer */
    struct disk_hard_state hs = {.term = 3, .voted_for = 1};
    cr_assert_eq(rt_pipe_log_hard_state(&t.q, &hs), -ECANCELED);
    cr_assert_eq(rt_pipe_log_hold(&t.q), -ECANCELED);
    t_log_close(&t);
}

static void *t_log_lcore(void *arg)
{
    struct t_log *t = arg;
    while (__atomic_load_n(&t->stop, __ATOMIC_RELAXED) == 0) {
        if (rt_pipe_log_serve(&t->q, t->log) == 0) {
            sched_yield();
        }
    }
    return NULL;
}

/* A hold (snapshots, installs) runs every command sent before it, then lets the holder use
 * the log alone; release publishes the bounds the holder left (compaction moved them). */
Test(rt_pipe, hold_drains_commands_and_release_reports_fresh_bounds)
{
    struct t_log t;
    t_log_open(&t);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, t_log_lcore, &t), 0);
    t_append(&t, 1, 50, 1, 64);
    cr_assert_eq(rt_pipe_log_hold(&t.q), 0);
    struct disk_bounds b;
    disk_log_bounds(t.log, &b);
    cr_assert_eq(b.index_last, 50, "every append ran before the hold was granted");
    cr_assert_eq(disk_log_sync(t.log), 0);
    cr_assert_eq(disk_log_compact(t.log, 80), 0); /* as an installed snapshot at 80 would */
    rt_pipe_log_release(&t.q, t.log);
    struct rt_pipe_report r;
    rt_pipe_log_report(&t.q, &r);
    cr_assert_eq(r.durable, 80);
    t_append(&t, 81, 90, 2, 64);
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    do {
        cr_assert_lt(dt_now_ns(), deadline);
        sched_yield();
        rt_pipe_log_report(&t.q, &r);
    } while (r.durable < 90);
    cr_assert_eq(r.term, 2);
    __atomic_store_n(&t.stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    t_log_close(&t);
}

#ifdef ORDO_FAULT_HOOKS
/* A failed write stops the log: the report carries the error, the durable index never
 * covers the failed entries, and a later hard state wait fails instead of succeeding. */
Test(rt_pipe, disk_error_is_reported_and_nothing_more_is_durable)
{
    struct t_log t;
    t_log_open(&t);
    t_append(&t, 1, 5, 1, 64);
    t_serve_until(&t, 5);
    disk_log_fault_set(t.log, DISK_FAULT_SYNC, -EIO);
    t_append(&t, 6, 10, 1, 64);
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    struct rt_pipe_report r;
    do {
        cr_assert_lt(dt_now_ns(), deadline);
        (void)rt_pipe_log_serve(&t.q, t.log);
        rt_pipe_log_report(&t.q, &r);
    } while (r.error == 0);
    cr_assert_eq(r.error, -EIO);
    cr_assert_lt(r.durable, 6);
    pthread_t th;
    struct t_waiter w = {.t = &t, .term = 9};
    cr_assert_eq(pthread_create(&th, NULL, t_hard_state, &w), 0);
    while (__atomic_load_n(&w.returned, __ATOMIC_ACQUIRE) == 0) {
        cr_assert_lt(dt_now_ns(), deadline + DT_WAIT_NS);
        (void)rt_pipe_log_serve(&t.q, t.log);
        sched_yield();
    }
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, -EIO);
    t_log_close(&t);
}
#endif
