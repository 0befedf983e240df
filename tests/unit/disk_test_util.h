/* Helpers shared by the disk tests: temporary data directories (removed at the end), entry
 * builders, and bounded waits on the real driver and the simulated twin. */
#ifndef ORDO_TESTS_UNIT_DISK_TEST_UTIL_H
#define ORDO_TESTS_UNIT_DISK_TEST_UTIL_H

#include <ftw.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drivers/disk/disk.h"
#include "drivers/disk/sim_disk.h"

#define DT_PATH_MAX 256
#define DT_WAIT_NS (10ull * 1000000000ull) /* bound on any wait for a completion */

static inline uint64_t dt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Creates a fresh directory under $TMPDIR (or /tmp); returns 0. */
static inline int dt_mkdtemp(char *out)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, DT_PATH_MAX, "%s/ordo-disk-XXXXXX", base != NULL ? base : "/tmp");
    return mkdtemp(out) != NULL ? 0 : -1;
}

static inline int dt_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void dt_rmtree(const char *dir)
{
    nftw(dir, dt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Deterministic payload for entry `index`: len bytes derived from index. */
static inline void dt_payload(uint8_t *p, uint32_t len, uint64_t index)
{
    for (uint32_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(index * 31u + i * 7u + 1u);
    }
}

static inline int dt_payload_ok(const uint8_t *p, uint32_t len, uint64_t index)
{
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] != (uint8_t)(index * 31u + i * 7u + 1u)) {
            return 0;
        }
    }
    return 1;
}

/* Fills e (and its payload storage buf) as entry `index` of `term` with len bytes. */
static inline void dt_entry(struct msg_entry *e, uint8_t *buf, uint64_t index, uint64_t term,
                            uint32_t len)
{
    dt_payload(buf, len, index);
    e->index = index;
    e->term = term;
    e->type = MSG_ENTRY_BATCH;
    e->len = len;
    e->data = buf;
}

/* Polls the real driver until index is durable, the log stops, or DT_WAIT_NS passes.
 * Returns 0, the log's error, or -ETIMEDOUT. */
static inline int dt_wait_log(struct disk_log *log, uint64_t index)
{
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    uint64_t durable = 0;
    int rc = 0;
    while (dt_now_ns() < deadline) {
        rc = disk_log_poll(log, &durable);
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

static inline void dt_config(struct disk_config *c, const char *dir)
{
    disk_config_default(c);
    c->dir = dir;
    c->segment_bytes = 1u << 20;
    c->batch_bytes_max = 256u << 10;
    c->entry_len_max = 64u << 10;
    c->index_cap = 1u << 16;
    c->segments_max = 64;
}

#endif
