/* Interface tests run against both implementations of struct disk_ops: the io_uring driver and
 * the simulated twin must behave the same through the table. */
#include <criterion/criterion.h>
#include <errno.h>

#include "disk_test_util.h"

struct dev {
    const struct disk_ops *ops;
    void *dev;
    struct disk_log *log;
    struct sim_disk *sim;
    uint64_t now;
    char dir[DT_PATH_MAX];
};

enum dev_kind { DEV_REAL, DEV_REAL_DSYNC, DEV_SIM };

static void dev_open(struct dev *d, enum dev_kind kind)
{
    memset(d, 0, sizeof(*d));
    int rc;
    if (kind == DEV_REAL || kind == DEV_REAL_DSYNC) {
        struct disk_config c;
        struct ordo_errmsg err = {{0}};
        cr_assert_eq(dt_mkdtemp(d->dir), 0);
        dt_config(&c, d->dir);
        c.segment_bytes = 64u << 10; /* several segments in every test */
        c.batch_bytes_max = 32u << 10;
        c.entry_len_max = 8u << 10;
        c.rwf_dsync = kind == DEV_REAL_DSYNC;
        d->log = disk_log_open(&c, &rc, &err);
        cr_assert_not_null(d->log, "open: %d %s", rc, err.text);
        d->ops = &disk_log_ops;
        d->dev = d->log;
    } else {
        struct sim_disk_config c;
        sim_disk_config_default(&c);
        c.seed = 42;
        c.latency_min = 1;
        c.latency_max = 5;
        c.capacity_bytes = 1u << 20;
        c.batch_bytes_max = 32u << 10;
        c.entry_len_max = 8u << 10;
        d->sim = sim_disk_create(&c, &rc);
        cr_assert_not_null(d->sim, "create: %d", rc);
        d->ops = &sim_disk_ops;
        d->dev = d->sim;
    }
}

static void dev_close(struct dev *d)
{
    if (d->log != NULL) {
        disk_log_close(d->log);
        dt_rmtree(d->dir);
    }
    sim_disk_destroy(d->sim);
}

/* Polls until `index` is durable (advancing virtual time for the twin), bounded. */
static int dev_wait(struct dev *d, uint64_t index)
{
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    uint64_t durable = 0;
    while (dt_now_ns() < deadline) {
        if (d->sim != NULL) {
            sim_disk_set_time(d->sim, ++d->now);
        }
        int rc = d->ops->poll(d->dev, &durable);
        if (rc < 0) {
            return rc;
        }
        if (durable >= index) {
            return 0;
        }
        sched_yield();
    }
    return -ETIMEDOUT;
}

/* Appends entries first..last of `term`, payload length cycling with the index. */
static int dev_append_range(struct dev *d, uint64_t first, uint64_t last, uint64_t term)
{
    static uint8_t bufs[16][4096];
    struct msg_entry e[16];
    uint64_t i = first;
    while (i <= last) {
        uint32_t n = 0;
        while (n < 8 && i <= last) {
            dt_entry(&e[n], bufs[n], i, term, (uint32_t)((i * 97u) % 3000u));
            n++;
            i++;
        }
        int rc = d->ops->append(d->dev, e, n);
        /* Backpressure is part of the contract: poll, then retry, within a bound. */
        uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
        while (rc == ORDO_ENOSPACE && dt_now_ns() < deadline) {
            if (d->sim != NULL) {
                sim_disk_set_time(d->sim, ++d->now);
            }
            d->ops->poll(d->dev, NULL);
            rc = d->ops->append(d->dev, e, n);
        }
        if (rc < 0) {
            fprintf(stderr, "append %lu..: %s\n", (unsigned long)e[0].index, ordo_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static void dev_check_range(struct dev *d, uint64_t first, uint64_t last, uint64_t term)
{
    static uint8_t buf[256u << 10];
    struct msg_entry out[64];
    uint64_t i = first;
    while (i <= last) {
        int n = d->ops->read(d->dev, i, 64, out, buf, sizeof(buf));
        cr_assert_gt(n, 0, "read %lu: %d", (unsigned long)i, n);
        for (int k = 0; k < n && i <= last; k++, i++) {
            cr_assert_eq(out[k].index, i);
            cr_assert_eq(out[k].term, term);
            cr_assert_eq(out[k].type, MSG_ENTRY_BATCH);
            cr_assert_eq(out[k].len, (uint32_t)((i * 97u) % 3000u));
            cr_assert(dt_payload_ok(out[k].data, out[k].len, i), "payload of %lu",
                      (unsigned long)i);
        }
    }
}

static void body_round_trip(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 300, 1), 0);
    cr_assert_eq(dev_wait(&d, 300), 0);
    dev_check_range(&d, 1, 300, 1);
    struct disk_bounds b;
    d.ops->bounds(d.dev, &b);
    cr_assert_eq(b.index_first, 1);
    cr_assert_eq(b.index_last, 300);
    cr_assert_eq(b.index_durable, 300);
    cr_assert_eq(b.term_last, 1);
    dev_close(&d);
}

static void body_not_durable_not_readable(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 3, 1), 0);
    struct msg_entry out[4];
    uint8_t buf[16384];
    /* Nothing has been polled, so nothing was written: nothing may be read or be durable. */
    cr_assert_eq(d.ops->read(d.dev, 1, 4, out, buf, sizeof(buf)), 0);
    struct disk_bounds b;
    d.ops->bounds(d.dev, &b);
    cr_assert_eq(b.index_durable, 0);
    cr_assert_eq(b.index_last, 3);
    dev_close(&d);
}

static void body_bad_append(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 5, 2), 0);
    uint8_t p[8];
    struct msg_entry e;
    dt_entry(&e, p, 7, 2, 8); /* gap: 6 is missing */
    cr_assert_eq(d.ops->append(d.dev, &e, 1), -EINVAL);
    dt_entry(&e, p, 6, 1, 8); /* term goes back */
    cr_assert_eq(d.ops->append(d.dev, &e, 1), -EINVAL);
    dt_entry(&e, p, 6, 2, 8);
    e.type = 99;
    cr_assert_eq(d.ops->append(d.dev, &e, 1), -EINVAL);
    dev_close(&d);
}

static void body_truncate(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 200, 1), 0);
    cr_assert_eq(dev_wait(&d, 200), 0);
    cr_assert_eq(d.ops->truncate(d.dev, 120), 0);
    struct disk_bounds b;
    d.ops->bounds(d.dev, &b);
    cr_assert_eq(b.index_last, 120);
    cr_assert_eq(b.index_durable, 120);
    cr_assert_eq(dev_append_range(&d, 121, 150, 3), 0);
    cr_assert_eq(dev_wait(&d, 150), 0);
    dev_check_range(&d, 1, 120, 1);
    dev_check_range(&d, 121, 150, 3);
    uint64_t term = 0;
    cr_assert_eq(d.ops->term_at(d.dev, 150, &term), 0);
    cr_assert_eq(term, 3);
    cr_assert_eq(d.ops->term_at(d.dev, 151, &term), ORDO_ENOTFOUND);
    dev_close(&d);
}

static void body_truncate_pending(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 50, 1), 0);
    /* Truncating entries that are staged but not yet durable drains them first. */
    cr_assert_eq(d.ops->truncate(d.dev, 10), 0);
    cr_assert_eq(dev_append_range(&d, 11, 20, 2), 0);
    cr_assert_eq(dev_wait(&d, 20), 0);
    dev_check_range(&d, 1, 10, 1);
    dev_check_range(&d, 11, 20, 2);
    dev_close(&d);
}

static void body_compact(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 400, 1), 0);
    cr_assert_eq(dev_wait(&d, 400), 0);
    cr_assert_eq(d.ops->compact(d.dev, 250), 0);
    struct disk_bounds b;
    d.ops->bounds(d.dev, &b);
    cr_assert_gt(b.index_first, 1, "compaction dropped nothing");
    cr_assert_leq(b.index_first, 251, "compaction dropped entries the snapshot does not cover");
    struct msg_entry out[1];
    uint8_t buf[8192];
    cr_assert_eq(d.ops->read(d.dev, 1, 1, out, buf, sizeof(buf)), ORDO_ENOTFOUND);
    dev_check_range(&d, 251, 400, 1);
    /* A snapshot past the end (InstallSnapshot) leaves an empty log after it. */
    cr_assert_eq(d.ops->compact(d.dev, 1000), 0);
    d.ops->bounds(d.dev, &b);
    cr_assert_eq(b.index_first, 1001);
    cr_assert_eq(b.index_last, 1000);
    cr_assert_eq(dev_append_range(&d, 1001, 1010, 4), 0);
    cr_assert_eq(dev_wait(&d, 1010), 0);
    dev_check_range(&d, 1001, 1010, 4);
    dev_close(&d);
}

static void body_hard_state(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    struct disk_hard_state hs;
    cr_assert_eq(d.ops->hard_state_load(d.dev, &hs), 0);
    cr_assert_eq(hs.term, 0);
    cr_assert_eq(hs.voted_for, MSG_NODE_NONE);
    for (uint32_t t = 1; t <= 5; t++) {
        struct disk_hard_state w = {t, t % 3};
        cr_assert_eq(d.ops->hard_state_save(d.dev, &w), 0);
        cr_assert_eq(d.ops->hard_state_load(d.dev, &hs), 0);
        cr_assert_eq(hs.term, t);
        cr_assert_eq(hs.voted_for, t % 3);
    }
    dev_close(&d);
}

static void body_snapshot(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    static uint8_t data[100000];
    static uint8_t got[100000];
    dt_payload(data, sizeof(data), 5);
    struct disk_snap_meta m = {.last_index = 77, .last_term = 3, .len = sizeof(data)};
    m.config.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        m.config.servers[i].id = i + 1;
        m.config.servers[i].role = MSG_ROLE_VOTER;
    }
    struct disk_snap_meta r;
    cr_assert_eq(d.ops->snap_latest(d.dev, &r), ORDO_ENOTFOUND);
    cr_assert_eq(d.ops->snap_save(d.dev, &m, data), 0);
    cr_assert_eq(d.ops->snap_latest(d.dev, &r), 0);
    cr_assert_eq(r.last_index, 77);
    cr_assert_eq(r.last_term, 3);
    cr_assert_eq(r.config.n, 3);
    cr_assert_eq(r.config.servers[2].id, 3);
    /* Serve in chunks, receive them as another replica would, and install. */
    m.last_index = 90;
    cr_assert_eq(d.ops->snap_recv_begin(d.dev, &m), 0);
    uint64_t off = 0;
    while (off < sizeof(data)) {
        int n = d.ops->snap_read(d.dev, off, got, 7000);
        cr_assert_gt(n, 0);
        cr_assert_eq(d.ops->snap_recv_chunk(d.dev, off, got, (uint32_t)n), 0);
        off += (uint64_t)n;
    }
    cr_assert_eq(d.ops->snap_recv_chunk(d.dev, 5, got, 1), -EINVAL, "out-of-order chunk");
    cr_assert_eq(d.ops->snap_recv_finish(d.dev), 0);
    cr_assert_eq(d.ops->snap_latest(d.dev, &r), 0);
    cr_assert_eq(r.last_index, 90);
    cr_assert_eq(d.ops->snap_read(d.dev, 0, got, sizeof(got)), (int)sizeof(got));
    cr_assert_eq(memcmp(got, data, sizeof(data)), 0);
    dev_close(&d);
}

static void body_group_commit(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    /* One batch goes in flight; the appends made meanwhile must share the next write. */
    cr_assert_eq(dev_append_range(&d, 1, 1, 1), 0);
    cr_assert_geq(d.ops->poll(d.dev, NULL), 0);
    for (uint64_t i = 2; i <= 40; i++) {
        cr_assert_eq(dev_append_range(&d, i, i, 1), 0);
    }
    cr_assert_eq(dev_wait(&d, 40), 0);
    if (d.log != NULL) {
        struct disk_stats s;
        disk_log_stats(d.log, &s);
        cr_assert_leq(s.writes, 3, "40 appends took %lu writes", (unsigned long)s.writes);
    }
    dev_check_range(&d, 1, 40, 1);
    dev_close(&d);
}

static void dev_fail_sync(struct dev *d, int err)
{
    if (d->log != NULL) {
        disk_log_fault_set(d->log, DISK_FAULT_SYNC, err);
    } else {
        sim_disk_fail_next_sync(d->sim, err);
    }
}

static void body_sync_failure(enum dev_kind kind)
{
    struct dev d;
    dev_open(&d, kind);
    cr_assert_eq(dev_append_range(&d, 1, 10, 1), 0);
    cr_assert_eq(dev_wait(&d, 10), 0);
    dev_fail_sync(&d, -EIO);
    cr_assert_eq(dev_append_range(&d, 11, 20, 1), 0);
    cr_assert_eq(dev_wait(&d, 20), -EIO);
    uint64_t durable = 0;
    /* Never acknowledged, and never again: polling keeps reporting the error. */
    cr_assert_eq(d.ops->poll(d.dev, &durable), -EIO);
    cr_assert_eq(durable, 10);
    cr_assert_eq(dev_append_range(&d, 21, 21, 1), ORDO_ESTOPPED);
    cr_assert_eq(d.ops->truncate(d.dev, 5), ORDO_ESTOPPED);
    dev_close(&d);
}

#define DISK_OPS_TEST(name)                                                                        \
    Test(disk_ops, name##_real, .timeout = 30)                                                     \
    {                                                                                              \
        if (!disk_ops_have_uring()) {                                                              \
            cr_skip_test("io_uring unavailable");                                                  \
        }                                                                                          \
        body_##name(DEV_REAL);                                                                     \
    }                                                                                              \
    Test(disk_ops, name##_real_dsync, .timeout = 30)                                               \
    {                                                                                              \
        if (!disk_ops_have_uring()) {                                                              \
            cr_skip_test("io_uring unavailable");                                                  \
        }                                                                                          \
        body_##name(DEV_REAL_DSYNC);                                                               \
    }                                                                                              \
    Test(disk_ops, name##_sim, .timeout = 30)                                                      \
    {                                                                                              \
        body_##name(DEV_SIM);                                                                      \
    }

#include <liburing.h>

static int disk_ops_have_uring(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0) {
        return 0;
    }
    io_uring_queue_exit(&ring);
    return 1;
}

DISK_OPS_TEST(round_trip)
DISK_OPS_TEST(not_durable_not_readable)
DISK_OPS_TEST(bad_append)
DISK_OPS_TEST(truncate)
DISK_OPS_TEST(truncate_pending)
DISK_OPS_TEST(compact)
DISK_OPS_TEST(hard_state)
DISK_OPS_TEST(snapshot)
DISK_OPS_TEST(group_commit)
DISK_OPS_TEST(sync_failure)
