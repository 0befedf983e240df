/* Durable-log benchmark: Ordo's io_uring group commit against a plain pwrite + fdatasync loop
 * measured in the same run on the same file system, per batch size and record size, with the
 * ratio printed; and (--durability) the experiment behind the choice of fdatasync linked after
 * the write over RWF_DSYNC and O_DIRECT + O_DSYNC. Data lives in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "drivers/disk/disk.h"
#include "drivers/disk/disk_record.h"
#include "engine/mem.h"

#define BENCH_LAT_MAX (1u << 20)
#define BENCH_FILE_BYTES (256ull << 20)
#define BENCH_DEPTH 16u /* batches the pipelined run keeps ahead of durability */

struct bench_result {
    double recs_per_s;
    double mb_per_s;
    double p50_us;
    double p99_us;
};

static uint64_t bench_lat[BENCH_LAT_MAX];

/* One run's totals, accumulated over interleaved slices. */
struct bench_acc {
    uint64_t recs;
    uint64_t bytes;
    uint64_t ns;
    uint32_t nlat;
    uint64_t lat[BENCH_LAT_MAX / 4];
};

static struct bench_acc bench_acc[3];

static void bench_acc_lat(struct bench_acc *a, uint64_t ns)
{
    if (a->nlat < BENCH_LAT_MAX / 4) {
        a->lat[a->nlat++] = ns;
    }
}
static double bench_secs = 0.5;
enum bench_idle { BENCH_IDLE_WAIT, BENCH_IDLE_YIELD, BENCH_IDLE_SPIN };
static enum bench_idle bench_idle = BENCH_IDLE_WAIT;
static int bench_rwf_dsync;
static const char *const bench_idle_name[] = {"waits in io_uring when idle", "yields when idle",
                                              "spins"};
static char bench_dir[256];

static uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void bench_finish_acc(struct bench_result *r, struct bench_acc *a)
{
    r->recs_per_s = a->ns > 0 ? (double)a->recs * 1e9 / (double)a->ns : 0;
    r->mb_per_s = a->ns > 0 ? (double)a->bytes * 1e9 / (double)a->ns / 1e6 : 0;
    qsort(a->lat, a->nlat, sizeof(a->lat[0]), bench_cmp);
    r->p50_us = a->nlat > 0 ? (double)a->lat[a->nlat / 2] / 1e3 : 0;
    r->p99_us = a->nlat > 0 ? (double)a->lat[(uint64_t)a->nlat * 99 / 100] / 1e3 : 0;
}

static void bench_finish(struct bench_result *r, uint64_t recs, uint64_t bytes, uint64_t ns,
                         uint32_t nlat)
{
    r->recs_per_s = (double)recs * 1e9 / (double)ns;
    r->mb_per_s = (double)bytes * 1e9 / (double)ns / 1e6;
    qsort(bench_lat, nlat, sizeof(bench_lat[0]), bench_cmp);
    r->p50_us = nlat > 0 ? (double)bench_lat[nlat / 2] / 1e3 : 0;
    r->p99_us = nlat > 0 ? (double)bench_lat[(uint64_t)nlat * 99 / 100] / 1e3 : 0;
}

/* Baseline slice: one pwrite of the same bytes Ordo writes for a batch, then fdatasync. */
static int bench_baseline_slice(int fd, const uint8_t *buf, uint64_t len, uint32_t batch,
                                uint64_t *off, uint64_t slice_ns, struct bench_acc *a)
{
    uint64_t t0 = bench_now_ns();
    uint64_t t = t0;
    while (t < t0 + slice_ns) {
        if (*off + len > BENCH_FILE_BYTES) {
            *off = 0;
        }
        if (pwrite(fd, buf, (size_t)len, (off_t)*off) != (ssize_t)len || fdatasync(fd) < 0) {
            return -errno;
        }
        *off += len;
        a->recs += batch;
        a->bytes += len;
        uint64_t t2 = bench_now_ns();
        bench_acc_lat(a, t2 - t);
        t = t2;
    }
    a->ns += t - t0;
    return 0;
}

static int bench_baseline_open(const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", bench_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || fallocate(fd, 0, 0, (off_t)BENCH_FILE_BYTES) < 0) {
        return -errno;
    }
    return fd;
}

static int bench_rm(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    return remove(p);
}

struct bench_ordo {
    struct disk_log *log;
    uint8_t *payload;
    struct msg_entry *e;
    uint64_t next;
    uint64_t durable;
    uint64_t t_batch[BENCH_DEPTH * 64];
    uint64_t last_of[BENCH_DEPTH * 64];
    uint64_t head;
    uint64_t tail;
};

static int bench_ordo_open(struct bench_ordo *o, const char *name, uint32_t batch, uint32_t rec_len)
{
    char path[300];
    struct disk_config c;
    struct ordo_errmsg err;
    int rc;
    snprintf(path, sizeof(path), "%s/%s", bench_dir, name);
    nftw(path, bench_rm, 8, FTW_DEPTH | FTW_PHYS);
    disk_config_default(&c);
    c.dir = path;
    c.segment_bytes = 256ull << 20;
    c.batch_bytes_max = 8u << 20;
    c.entry_len_max = 4096;
    c.index_cap = 1u << 23;
    c.rwf_dsync = bench_rwf_dsync;
    memset(o, 0, sizeof(*o));
    o->log = disk_log_open(&c, &rc, &err);
    if (o->log == NULL) {
        fprintf(stderr, "bench_disk: %s\n", err.text);
        return rc;
    }
    o->payload = mem_calloc(1, rec_len + 1);
    o->e = mem_calloc(batch, sizeof(*o->e));
    if (o->payload == NULL || o->e == NULL) {
        return -ENOMEM;
    }
    o->next = 1;
    return 0;
}

static void bench_ordo_close(struct bench_ordo *o)
{
    disk_log_close(o->log);
    mem_free(o->payload);
    mem_free(o->e);
}

/* Appends one batch if the pipeline has room; returns 1 when appended. */
static int bench_ordo_push(struct bench_ordo *o, uint32_t batch, uint32_t rec_len, uint32_t depth)
{
    if (o->head - o->tail >= depth) {
        return 0;
    }
    for (uint32_t i = 0; i < batch; i++) {
        o->e[i] = (struct msg_entry){.term = 1,
                                     .index = o->next + i,
                                     .type = MSG_ENTRY_BATCH,
                                     .len = rec_len,
                                     .data = o->payload};
    }
    if (disk_log_append(o->log, o->e, batch) < 0) {
        return 0;
    }
    uint64_t slot = o->head % (BENCH_DEPTH * 64);
    o->t_batch[slot] = bench_now_ns();
    o->last_of[slot] = o->next + batch - 1;
    o->head++;
    o->next += batch;
    return 1;
}

/* Ordo slice: batches of `batch` records, at most `depth` batches waiting for durability;
 * the slice ends when everything it appended is durable. */
static int bench_ordo_slice(struct bench_ordo *o, uint32_t batch, uint32_t rec_len, uint32_t depth,
                            uint64_t slice_ns, struct bench_acc *a)
{
    int rc = 0;
    uint64_t first = o->durable;
    uint64_t t0 = bench_now_ns();
    uint64_t t = t0;
    while (t < t0 + slice_ns || o->tail < o->head) {
        if (t < t0 + slice_ns) {
            bench_ordo_push(o, batch, rec_len, depth);
        }
        rc = disk_log_poll(o->log, &o->durable);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0 && bench_idle == BENCH_IDLE_WAIT) {
            /* Back-off idle, as on a shared machine: sleep until the completion. */
            disk_log_idle_wait(o->log, 1000);
        } else if (rc == 0 && bench_idle == BENCH_IDLE_YIELD) {
            sched_yield();
        }
        t = bench_now_ns();
        while (o->tail < o->head && o->last_of[o->tail % (BENCH_DEPTH * 64)] <= o->durable) {
            bench_acc_lat(a, t - o->t_batch[o->tail % (BENCH_DEPTH * 64)]);
            o->tail++;
        }
    }
    a->recs += o->durable - first;
    a->bytes += (o->durable - first) * disk_record_size(rec_len);
    a->ns += t - t0;
    return 0;
}

enum bench_mode {
    BENCH_LINKED = 0,  /* buffered write + linked fdatasync (Ordo's choice) */
    BENCH_RWF_DSYNC,   /* buffered write with RWF_DSYNC */
    BENCH_DIRECT,      /* O_DIRECT | O_DSYNC write */
    BENCH_LINKED_ZERO, /* as BENCH_LINKED, on a file zero-filled instead of fallocated */
};

static const char *const bench_mode_name[] = {"write + linked fdatasync", "write RWF_DSYNC",
                                              "O_DIRECT|O_DSYNC write",
                                              "write + fdatasync, zero-filled file"};

static int bench_dur_file(enum bench_mode mode, const char *path, uint64_t bytes)
{
    int flags = O_RDWR | O_CREAT | O_TRUNC;
    if (mode == BENCH_DIRECT) {
        flags |= O_DIRECT | O_DSYNC;
    }
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        return -errno;
    }
    if (mode != BENCH_LINKED_ZERO) {
        return fallocate(fd, 0, 0, (off_t)bytes) < 0 ? -errno : fd;
    }
    static uint8_t zero[1u << 20];
    for (uint64_t off = 0; off < bytes; off += sizeof(zero)) {
        if (pwrite(fd, zero, sizeof(zero), (off_t)off) != (ssize_t)sizeof(zero)) {
            close(fd);
            return -EIO;
        }
    }
    return fsync(fd) < 0 ? -errno : fd;
}

/* One io_uring write (and, for BENCH_LINKED*, its linked fdatasync); waits for completion. */
static int bench_dur_one(struct io_uring *ring, enum bench_mode mode, int fd, void *buf,
                         uint32_t len, uint64_t off)
{
    struct io_uring_sqe *w = io_uring_get_sqe(ring);
    io_uring_prep_write(w, fd, buf, len, off);
    unsigned want = 1;
    if (mode == BENCH_RWF_DSYNC) {
        w->rw_flags = RWF_DSYNC;
    } else if (mode != BENCH_DIRECT) {
        w->flags |= IOSQE_IO_LINK;
        io_uring_prep_fsync(io_uring_get_sqe(ring), fd, IORING_FSYNC_DATASYNC);
        want = 2;
    }
    io_uring_submit(ring);
    int rc = 0;
    for (unsigned i = 0; i < want; i++) {
        struct io_uring_cqe *cqe;
        int wrc = io_uring_wait_cqe(ring, &cqe);
        if (wrc < 0) {
            return wrc;
        }
        if (cqe->res < 0 && rc == 0) {
            rc = cqe->res;
        }
        io_uring_cqe_seen(ring, cqe);
    }
    return rc;
}

static int bench_durability(enum bench_mode mode, uint32_t len, struct bench_result *r)
{
    char path[300];
    struct io_uring ring;
    snprintf(path, sizeof(path), "%s/dur", bench_dir);
    const uint64_t bytes = 64ull << 20;
    int fd = bench_dur_file(mode, path, bytes);
    if (fd < 0) {
        return fd;
    }
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, len) != 0 || io_uring_queue_init(8, &ring, 0) < 0) {
        close(fd);
        return -ENOMEM;
    }
    memset(buf, 0x5a, len);
    uint64_t off = 0;
    uint64_t n = 0;
    uint32_t nlat = 0;
    uint64_t t0 = bench_now_ns();
    uint64_t t = t0;
    uint64_t end = t0 + (uint64_t)(bench_secs * 1e9);
    int rc = 0;
    while (t < end && rc == 0) {
        off = off + len > bytes ? 0 : off;
        rc = bench_dur_one(&ring, mode, fd, buf, len, off);
        off += len;
        n++;
        uint64_t t2 = bench_now_ns();
        bench_lat[nlat < BENCH_LAT_MAX ? nlat++ : 0] = t2 - t;
        t = t2;
    }
    bench_finish(r, n, n * len, t - t0, nlat);
    io_uring_queue_exit(&ring);
    free(buf);
    close(fd);
    unlink(path);
    return rc;
}

static void bench_run_durability(void)
{
    static const uint32_t sizes[] = {4096, 65536, 524288};
    printf("# durability experiment (io_uring, one write at a time, %.2f s per cell)\n",
           bench_secs);
    printf("%-38s %8s %10s %9s %9s\n", "method", "bytes", "writes/s", "MB/s", "p50 us");
    for (int m = 0; m < 4; m++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            struct bench_result r;
            int rc = bench_durability((enum bench_mode)m, sizes[i], &r);
            if (rc < 0) {
                printf("%-38s %8u  error: %s\n", bench_mode_name[m], sizes[i], strerror(-rc));
                continue;
            }
            printf("%-38s %8u %10.0f %9.1f %9.1f\n", bench_mode_name[m], sizes[i], r.recs_per_s,
                   r.mb_per_s, r.p50_us);
        }
    }
}

static void bench_row(const char *what, uint32_t batch, uint32_t len, const struct bench_result *r,
                      const struct bench_result *base)
{
    printf("%-10s %6u %6u %11.0f %9.1f %9.1f %9.1f %7.2f %7.2f\n", what, batch, len, r->recs_per_s,
           r->mb_per_s, r->p50_us, r->p99_us, r->recs_per_s / base->recs_per_s,
           r->mb_per_s / base->mb_per_s);
}

/* One cell: baseline, ordo-1 and ordo-DEPTH run in alternating slices, so that all three see
 * the same moments of a noisy machine. */
static int bench_cell(uint32_t batch, uint32_t len, struct bench_result r[3])
{
    struct bench_ordo o1;
    struct bench_ordo od;
    memset(&o1, 0, sizeof(o1));
    memset(&od, 0, sizeof(od));
    uint64_t blen = disk_record_size(len) * batch;
    uint8_t *buf = mem_calloc(1, (size_t)blen);
    int fd = bench_baseline_open("baseline");
    int rc = buf == NULL ? -ENOMEM : fd < 0 ? fd : 0;
    if (rc == 0) {
        rc = bench_ordo_open(&o1, "ordo1", batch, len);
    }
    if (rc == 0) {
        rc = bench_ordo_open(&od, "ordod", batch, len);
    }
    memset(bench_acc, 0, sizeof(bench_acc));
    uint64_t off = 0;
    const uint64_t slice_ns = 50000000u;
    uint32_t rounds = (uint32_t)(bench_secs * 1e9 / (double)slice_ns);
    for (uint32_t k = 0; k < rounds && rc == 0; k++) {
        rc = bench_baseline_slice(fd, buf, blen, batch, &off, slice_ns, &bench_acc[0]);
        if (rc == 0) {
            rc = bench_ordo_slice(&o1, batch, len, 1, slice_ns, &bench_acc[1]);
        }
        if (rc == 0) {
            rc = bench_ordo_slice(&od, batch, len, BENCH_DEPTH, slice_ns, &bench_acc[2]);
        }
    }
    for (int i = 0; i < 3; i++) {
        bench_finish_acc(&r[i], &bench_acc[i]);
    }
    bench_ordo_close(&o1);
    bench_ordo_close(&od);
    close(fd);
    mem_free(buf);
    return rc;
}

static int bench_run_table(void)
{
    static const uint32_t batches[] = {1, 8, 64, 512};
    static const uint32_t lens[] = {64, 1024};
    printf("# append -> durable, %.2f s per run per cell, in alternating 50 ms slices;\n"
           "# ratio = Ordo / baseline in the same run\n",
           bench_secs);
    printf("# baseline: pwrite of the same bytes + fdatasync; ordo-1: one batch in flight;\n"
           "# ordo-%u: up to %u batches waiting (group commit merges them)\n",
           BENCH_DEPTH, BENCH_DEPTH);
    printf("%-10s %6s %6s %11s %9s %9s %9s %7s %7s\n", "run", "batch", "rec_B", "records/s", "MB/s",
           "p50 us", "p99 us", "x rec", "x MB");
    for (size_t l = 0; l < 2; l++) {
        for (size_t b = 0; b < 4; b++) {
            struct bench_result r[3];
            int rc = bench_cell(batches[b], lens[l], r);
            if (rc < 0) {
                fprintf(stderr, "bench_disk: %s\n", ordo_strerror(rc));
                return 1;
            }
            char name[16];
            snprintf(name, sizeof(name), "ordo-%u", BENCH_DEPTH);
            bench_row("baseline", batches[b], lens[l], &r[0], &r[0]);
            bench_row("ordo-1", batches[b], lens[l], &r[1], &r[0]);
            bench_row(name, batches[b], lens[l], &r[2], &r[0]);
            fflush(stdout);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int durability = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--durability") == 0) {
            durability = 1;
        } else if (strcmp(argv[i], "--spin") == 0) {
            bench_idle = BENCH_IDLE_SPIN;
        } else if (strcmp(argv[i], "--rwf-dsync") == 0) {
            bench_rwf_dsync = 1;
        } else if (strcmp(argv[i], "--yield") == 0) {
            bench_idle = BENCH_IDLE_YIELD;
        } else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc) {
            bench_secs = atof(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: bench_disk [--durability] [--spin|--yield] [--rwf-dsync] [--secs S]\n");
            return 2;
        }
    }
    const char *base = getenv("TMPDIR");
    snprintf(bench_dir, sizeof(bench_dir), "%s/ordo-bench-disk-XXXXXX",
             base != NULL ? base : "/tmp");
    if (mkdtemp(bench_dir) == NULL) {
        perror("bench_disk: mkdtemp");
        return 1;
    }
    printf("# data directory %s (removed at exit); fio not used; poller %s; %s\n", bench_dir,
           bench_idle_name[bench_idle],
           bench_rwf_dsync ? "writes carry RWF_DSYNC" : "write + linked fdatasync");
    int rc = 0;
    if (durability) {
        bench_run_durability();
    } else {
        rc = bench_run_table();
    }
    nftw(bench_dir, bench_rm, 8, FTW_DEPTH | FTW_PHYS);
    return rc;
}
