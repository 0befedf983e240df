/* The io_uring log driver: group commit (one write + linked fdatasync in flight, appends made
 * meanwhile go into the next write), a preallocated in-memory index of record positions, and
 * recovery at open. It must never report an index durable before its fdatasync completed, and
 * never again after any write or sync failed. */
#include "drivers/disk/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "drivers/disk/disk_record.h"
#include "drivers/disk/disk_recover.h"
#include "drivers/disk/disk_seg.h"
#include "drivers/disk/disk_snap.h"
#include "drivers/disk/disk_state.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"

#if defined(__SANITIZE_ADDRESS__)
#define DISK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DISK_ASAN 1
#endif
#endif
#ifdef DISK_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define DISK_UD_WRITE 1u /* io_uring user_data of the write of the batch in flight */
#define DISK_UD_SYNC 2u  /* ... and of its linked fdatasync */

struct disk_segment {
    uint64_t index_first;
    uint64_t size;     /* preallocated bytes */
    uint64_t end;      /* file offset after the last record written and synced */
    uint64_t reserved; /* file offset after records in flight or staged */
    int fd;
};

struct disk_pos {
    uint64_t off;
    uint64_t term;
    uint32_t seg_no;
    uint32_t size;
};

/* One write's worth of encoded records, targeting one segment. */
struct disk_buf {
    uint8_t *data;
    uint64_t len;
    uint64_t first;    /* index of the first record */
    uint64_t last;     /* index of the last record */
    uint64_t last_rec; /* offset in data of the last record */
    uint64_t off;      /* file offset the write goes to */
    uint32_t seg_no;   /* == seg_tail: a new segment is created when the write is submitted */
};

struct disk_log {
    struct disk_config cfg;
    int dirfd;
    struct io_uring ring;
    int ring_ready;
    int fixed_bufs;            /* buffers are registered: writes use IORING_OP_WRITE_FIXED */
    struct disk_segment *segs; /* segs[seg_no % segments_max] */
    uint32_t seg_head;         /* seg_no of the oldest segment */
    uint32_t seg_tail;         /* seg_no one past the newest segment */
    struct disk_pos *pos;      /* pos[index % index_cap] for index_first..index_last */
    uint64_t index_first;
    uint64_t index_last;
    uint64_t index_durable;
    uint64_t term_last;
    struct disk_buf bufs[2];
    unsigned stage;    /* bufs[stage] collects appends; bufs[stage ^ 1] is the one in flight */
    unsigned inflight; /* completions still expected for the write in flight */
    int inflight_err;
    int submit_again; /* io_uring_submit was interrupted: retry on the next poll */
    int err;          /* fatal error: the log is stopped */
    int fault_kind;
    int fault_err;
    int fork_excluded;  /* disk_log_fork_exclude marked bufs and pos MADV_DONTFORK */
    uint64_t submit_us; /* CLOCK_MONOTONIC at the submit of the write in flight */
    struct disk_state state;
    struct disk_snap snap;
    struct disk_stats stats;
};

void disk_config_default(struct disk_config *c)
{
    memset(c, 0, sizeof(*c));
    c->segment_bytes = 64u << 20;
    c->batch_bytes_max = 4u << 20;
    c->entry_len_max = 1u << 20;
    c->index_cap = 1u << 20;
    c->segments_max = 1024;
    c->snapshots_keep = 2;
    c->ring_entries = 64;
}

static struct disk_segment *disk_seg_at(const struct disk_log *log, uint32_t seg_no)
{
    return &log->segs[seg_no % log->cfg.segments_max];
}

static struct disk_pos *disk_pos_at(const struct disk_log *log, uint64_t index)
{
    return &log->pos[index % log->cfg.index_cap];
}

static void disk_stop(struct disk_log *log, int err)
{
    ORDO_ASSERT(err < 0);
    if (log->err == 0) {
        log->err = err;
    }
}

void disk_log_fault_set(struct disk_log *log, enum disk_fault kind, int err)
{
#ifdef ORDO_FAULT_HOOKS
    log->fault_kind = (int)kind;
    log->fault_err = err;
#else
    (void)log;
    (void)kind;
    (void)err;
#endif
}

/* ---- append and group commit ---- */

static int disk_check_entries(const struct disk_log *log, const struct msg_entry *e, uint32_t n,
                              uint64_t *total)
{
    uint64_t term = log->term_last;
    *total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (e[i].index != log->index_last + 1 + i || e[i].term < term ||
            e[i].type < MSG_ENTRY_NOOP || e[i].type > MSG_ENTRY_CONFIG ||
            e[i].len > log->cfg.entry_len_max || (e[i].len > 0 && e[i].data == NULL)) {
            return -EINVAL;
        }
        term = e[i].term;
        *total += disk_record_size(e[i].len);
    }
    return 0;
}

/* Chooses where the staging buffer's write goes: the newest segment while it has room, else a
 * new segment created at submit time (when nothing is in flight). */
static int disk_stage_target(struct disk_log *log, struct disk_buf *b, uint64_t total)
{
    if (b->len > 0) {
        uint64_t size =
            b->seg_no == log->seg_tail ? log->cfg.segment_bytes : disk_seg_at(log, b->seg_no)->size;
        if (b->len + total > log->cfg.batch_bytes_max || b->off + b->len + total > size) {
            return ORDO_ENOSPACE;
        }
        return 0;
    }
    struct disk_segment *cur = disk_seg_at(log, log->seg_tail - 1);
    b->first = log->index_last + 1;
    if (cur->reserved + total <= cur->size) {
        b->seg_no = log->seg_tail - 1;
        b->off = cur->reserved;
        return 0;
    }
    if (log->seg_tail - log->seg_head >= log->cfg.segments_max) {
        return ORDO_ENOSPACE;
    }
    b->seg_no = log->seg_tail;
    b->off = DISK_SEG_HDR_LEN;
    return 0;
}

int disk_log_append(struct disk_log *log, const struct msg_entry *entries, uint32_t n)
{
    uint64_t total;
    if (log->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (n == 0) {
        return 0;
    }
    int rc = disk_check_entries(log, entries, n, &total);
    if (rc < 0) {
        return rc;
    }
    if (total > log->cfg.batch_bytes_max || total > log->cfg.segment_bytes - DISK_SEG_HDR_LEN) {
        return ORDO_ETOOBIG;
    }
    struct disk_buf *b = &log->bufs[log->stage];
    if (log->index_last + n - log->index_first + 1 > log->cfg.index_cap ||
        disk_stage_target(log, b, total) < 0) {
        log->stats.backpressure++;
        return ORDO_ENOSPACE;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t size = disk_record_encode(b->data + b->len, &entries[i], b->first, 0);
        struct disk_pos *p = disk_pos_at(log, entries[i].index);
        p->off = b->off + b->len;
        p->term = entries[i].term;
        p->seg_no = b->seg_no;
        p->size = (uint32_t)size;
        b->last_rec = b->len;
        b->len += size;
    }
    b->last = entries[n - 1].index;
    log->index_last = b->last;
    log->term_last = entries[n - 1].term;
    if (b->seg_no != log->seg_tail) {
        disk_seg_at(log, b->seg_no)->reserved = b->off + b->len;
    }
    return 0;
}

static int disk_roll(struct disk_log *log, struct disk_buf *b)
{
    ORDO_ASSERT(log->inflight == 0);
    ORDO_ASSERT(log->seg_tail - log->seg_head < log->cfg.segments_max);
    int fd = disk_seg_create(log->dirfd, b->first, log->cfg.segment_bytes);
    if (fd < 0) {
        return fd;
    }
    struct disk_segment *s = disk_seg_at(log, log->seg_tail);
    s->fd = fd;
    s->index_first = b->first;
    s->size = log->cfg.segment_bytes;
    s->end = DISK_SEG_HDR_LEN;
    s->reserved = DISK_SEG_HDR_LEN + b->len;
    log->seg_tail++;
    log->stats.segments_created++;
    return 0;
}

static void disk_asan_check(const uint8_t *p, uint64_t len)
{
#ifdef DISK_ASAN
    /* The kernel reads this buffer behind ASan's back: check it is addressable first. */
    ORDO_ASSERT(__asan_region_is_poisoned((void *)(uintptr_t)p, (size_t)len) == NULL);
#else
    (void)p;
    (void)len;
#endif
}

static uint64_t disk_now_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int disk_submit(struct disk_log *log)
{
    struct disk_buf *b = &log->bufs[log->stage];
    ORDO_ASSERT(log->inflight == 0 && b->len > 0);
    if (b->seg_no == log->seg_tail) {
        int rc = disk_roll(log, b);
        if (rc < 0) {
            return rc;
        }
    }
    struct disk_segment *s = disk_seg_at(log, b->seg_no);
    ORDO_ASSERT(b->off + b->len <= s->size);
    disk_record_mark_end(b->data + b->last_rec);
    disk_asan_check(b->data, b->len);
    struct io_uring_sqe *w = io_uring_get_sqe(&log->ring);
    ORDO_ASSERT(w != NULL); /* the ring holds >= 2 and only this write uses it */
    if (log->fixed_bufs) {
        io_uring_prep_write_fixed(w, s->fd, b->data, (unsigned)b->len, b->off, (int)log->stage);
    } else {
        io_uring_prep_write(w, s->fd, b->data, (unsigned)b->len, b->off);
    }
    io_uring_sqe_set_data64(w, DISK_UD_WRITE);
    log->inflight = 1;
    if (log->cfg.rwf_dsync) {
        w->rw_flags = RWF_DSYNC;
    } else {
        struct io_uring_sqe *f = io_uring_get_sqe(&log->ring);
        ORDO_ASSERT(f != NULL);
        w->flags |= IOSQE_IO_LINK;
        io_uring_prep_fsync(f, s->fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(f, DISK_UD_SYNC);
        log->inflight = 2;
    }
    log->inflight_err = 0;
    log->submit_us = disk_now_us();
    log->stage ^= 1u;
    log->bufs[log->stage].len = 0;
    int rc = io_uring_submit(&log->ring);
    if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
        log->submit_again = 1;
        return 0;
    }
    return rc < 0 ? rc : 0;
}

static void disk_complete(struct disk_log *log)
{
    struct disk_buf *b = &log->bufs[log->stage ^ 1u];
    if (log->inflight_err != 0) {
        disk_stop(log, log->inflight_err);
        return;
    }
    ORDO_ASSERT(b->last > log->index_durable);
    disk_seg_at(log, b->seg_no)->end = b->off + b->len;
    log->index_durable = b->last;
    log->stats.writes++;
    log->stats.bytes += b->len;
    log->stats.entries += b->last - b->first + 1;
    log->stats.write_us += disk_now_us() - log->submit_us;
}

static int disk_reap(struct disk_log *log)
{
    int done = 0;
    struct io_uring_cqe *cqe;
    /* At most two completions are outstanding, which bounds the loop. */
    while (log->inflight > 0 && io_uring_peek_cqe(&log->ring, &cqe) == 0) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&log->ring, cqe);
        if (log->fault_kind != 0 &&
            ((uint64_t)log->fault_kind == ud || (log->cfg.rwf_dsync && ud == DISK_UD_WRITE))) {
            res = log->fault_err;
            log->fault_kind = 0;
        }
        uint64_t want = log->bufs[log->stage ^ 1u].len;
        if (ud == DISK_UD_WRITE && res != (int)want && log->inflight_err == 0) {
            log->inflight_err = res < 0 ? res : -EIO; /* a short write is a failed write */
        }
        if (ud == DISK_UD_SYNC && res < 0 && log->inflight_err == 0) {
            log->inflight_err = res;
        }
        log->inflight--;
        if (log->inflight == 0) {
            disk_complete(log);
            done++;
        }
    }
    return done;
}

int disk_log_poll(struct disk_log *log, uint64_t *index_durable)
{
    int done = disk_reap(log);
    if (log->err == 0 && log->submit_again) {
        int rc = io_uring_submit(&log->ring);
        if (rc >= 0) {
            log->submit_again = 0;
        } else if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            disk_stop(log, rc);
        }
    }
    if (log->err == 0 && log->inflight == 0 && log->bufs[log->stage].len > 0) {
        int rc = disk_submit(log);
        if (rc < 0) {
            disk_stop(log, rc);
        }
    }
    if (index_durable != NULL) {
        *index_durable = log->index_durable;
    }
    return log->err != 0 ? log->err : done;
}

int disk_log_reap(struct disk_log *log)
{
    int done = disk_reap(log);
    return log->err != 0 ? log->err : done;
}

bool disk_log_writing(const struct disk_log *log)
{
    return log->err == 0 && log->inflight > 0;
}

int disk_log_idle_wait(struct disk_log *log, uint32_t timeout_us)
{
    if (log->err != 0 || log->inflight == 0 || log->submit_again) {
        return 0;
    }
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = timeout_us / 1000000u,
                                   .tv_nsec = (long long)(timeout_us % 1000000u) * 1000};
    /* Only waits: the completion is reaped by the next poll. */
    (void)io_uring_wait_cqe_timeout(&log->ring, &cqe, &ts);
    return 0;
}

int disk_log_wait_fd(const struct disk_log *log)
{
    return log->ring_ready ? log->ring.ring_fd : -1;
}

int disk_log_sync(struct disk_log *log)
{
    /* Bounded by the work staged: each pass completes one write or stops the log. */
    while (log->err == 0 && (log->inflight > 0 || log->bufs[log->stage].len > 0)) {
        disk_log_poll(log, NULL);
        if (log->err == 0 && log->inflight > 0 && !log->submit_again) {
            struct io_uring_cqe *cqe;
            int rc = io_uring_wait_cqe(&log->ring, &cqe);
            if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
                disk_stop(log, rc);
            }
        }
    }
    return log->err;
}

/* ---- reads ---- */

static int disk_pread_all(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, (size_t)(len - done), (off_t)(off + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        done += (uint64_t)n;
    }
    return 0;
}

/* Counts the records from index on that sit back to back in one segment and fit in room. */
static uint32_t disk_read_span(const struct disk_log *log, uint64_t index, uint32_t n,
                               uint64_t room, uint64_t *bytes)
{
    const struct disk_pos *p0 = disk_pos_at(log, index);
    uint32_t k = 0;
    *bytes = 0;
    while (k < n) {
        const struct disk_pos *p = disk_pos_at(log, index + k);
        if (p->seg_no != p0->seg_no || p->off != p0->off + *bytes || *bytes + p->size > room) {
            break;
        }
        *bytes += p->size;
        k++;
    }
    return k;
}

static int disk_read_decode(const struct disk_log *log, uint64_t index, uint32_t k,
                            const uint8_t *buf, struct msg_entry *out)
{
    uint64_t o = 0;
    for (uint32_t i = 0; i < k; i++) {
        struct disk_record r;
        const struct disk_pos *p = disk_pos_at(log, index + i);
        int64_t rc = disk_record_decode(buf + o, p->size, log->cfg.entry_len_max, &r);
        if (rc != (int64_t)p->size || r.index != index + i) {
            return ORDO_ECORRUPT;
        }
        disk_record_to_entry(&r, &out[i]);
        o += p->size;
    }
    return 0;
}

int disk_log_read(struct disk_log *log, uint64_t index, uint32_t n_max, struct msg_entry *out,
                  uint8_t *buf, size_t buf_len)
{
    if (index < log->index_first) {
        return ORDO_ENOTFOUND;
    }
    if (index > log->index_durable) {
        return 0;
    }
    uint64_t avail = log->index_durable - index + 1;
    uint32_t n = avail < n_max ? (uint32_t)avail : n_max;
    uint32_t count = 0;
    uint64_t used = 0;
    while (count < n) {
        uint64_t bytes;
        uint32_t k = disk_read_span(log, index + count, n - count, buf_len - used, &bytes);
        if (k == 0) {
            break;
        }
        const struct disk_pos *p = disk_pos_at(log, index + count);
        int rc = disk_pread_all(disk_seg_at(log, p->seg_no)->fd, buf + used, bytes, p->off);
        if (rc == 0) {
            rc = disk_read_decode(log, index + count, k, buf + used, out + count);
        }
        if (rc < 0) {
            return rc;
        }
        used += bytes;
        count += k;
    }
    return count == 0 && n > 0 ? ORDO_ENOSPACE : (int)count;
}

/* ---- truncation and compaction (control path: blocking file-system calls) ---- */

static int disk_drop_segment(struct disk_log *log, uint32_t seg_no)
{
    struct disk_segment *s = disk_seg_at(log, seg_no);
    char name[DISK_SEG_NAME_LEN];
    disk_seg_name(name, s->index_first);
    close(s->fd);
    s->fd = -1;
    return unlinkat(log->dirfd, name, 0) < 0 ? -errno : 0;
}

static int disk_truncate_files(struct disk_log *log, uint64_t index_last_kept)
{
    const struct disk_pos *p = disk_pos_at(log, index_last_kept + 1);
    uint32_t keep_seg = p->seg_no;
    int rc = 0;
    /* Newest first, so that a crash part-way leaves a log that is a prefix of the old one. */
    while (rc == 0 && log->seg_tail - 1 > keep_seg) {
        rc = disk_drop_segment(log, log->seg_tail - 1);
        log->seg_tail--;
    }
    if (rc == 0 && fsync(log->dirfd) < 0) {
        rc = -errno;
    }
    struct disk_segment *s = disk_seg_at(log, keep_seg);
    if (rc == 0) {
        rc = disk_seg_cut(s->fd, p->off, s->size);
    }
    s->end = p->off;
    s->reserved = p->off;
    return rc;
}

int disk_log_truncate(struct disk_log *log, uint64_t index_last_kept)
{
    if (log->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (index_last_kept + 1 < log->index_first) {
        return ORDO_ENOTFOUND;
    }
    if (index_last_kept >= log->index_last) {
        return 0;
    }
    int rc = disk_log_sync(log);
    if (rc == 0) {
        rc = disk_truncate_files(log, index_last_kept);
    }
    if (rc < 0) {
        disk_stop(log, rc);
        return rc;
    }
    log->index_last = index_last_kept;
    if (log->index_durable > index_last_kept) {
        log->index_durable = index_last_kept;
    }
    log->term_last =
        index_last_kept >= log->index_first ? disk_pos_at(log, index_last_kept)->term : 0;
    return 0;
}

/* Drops every segment and restarts the log empty at index + 1 (a snapshot covers it all). */
static int disk_reset(struct disk_log *log, uint64_t index)
{
    int rc = disk_log_sync(log);
    while (rc == 0 && log->seg_tail > log->seg_head) {
        rc = disk_drop_segment(log, log->seg_tail - 1);
        log->seg_tail--;
    }
    if (rc == 0 && fsync(log->dirfd) < 0) {
        rc = -errno;
    }
    struct disk_buf b = {.first = index + 1, .len = 0};
    if (rc == 0) {
        rc = disk_roll(log, &b);
    }
    if (rc < 0) {
        disk_stop(log, rc);
        return rc;
    }
    log->index_first = index + 1;
    log->index_last = index;
    log->index_durable = index;
    log->term_last = 0;
    return 0;
}

int disk_log_compact(struct disk_log *log, uint64_t index)
{
    if (log->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (index >= log->index_last) {
        return disk_reset(log, index);
    }
    int dropped = 0;
    /* Oldest first, never the newest segment: the log stays contiguous at every step. */
    while (log->seg_tail - log->seg_head > 1) {
        const struct disk_segment *next = disk_seg_at(log, log->seg_head + 1);
        if (next->index_first - 1 > index) {
            break;
        }
        int rc = disk_drop_segment(log, log->seg_head);
        log->seg_head++;
        log->index_first = next->index_first;
        dropped = 1;
        if (rc < 0) {
            return rc;
        }
    }
    if (dropped && fsync(log->dirfd) < 0) {
        return -errno;
    }
    return 0;
}

void disk_log_bounds(const struct disk_log *log, struct disk_bounds *b)
{
    b->index_first = log->index_first;
    b->index_last = log->index_last;
    b->index_durable = log->index_durable;
    b->term_last = log->term_last;
}

int disk_log_term_at(const struct disk_log *log, uint64_t index, uint64_t *term)
{
    if (index < log->index_first || index > log->index_last) {
        return ORDO_ENOTFOUND;
    }
    *term = disk_pos_at(log, index)->term;
    return 0;
}

int disk_log_error(const struct disk_log *log)
{
    return log->err;
}

void disk_log_stats(const struct disk_log *log, struct disk_stats *s)
{
    *s = log->stats;
}

/* ---- hard state and snapshots ---- */

int disk_log_hard_state_save(struct disk_log *log, const struct disk_hard_state *hs)
{
    if (log->err != 0) {
        return ORDO_ESTOPPED;
    }
    int rc = disk_state_save(&log->state, hs);
    if (rc < 0) {
        /* The slot may be half durable; like a failed log sync, never pretend otherwise. */
        disk_stop(log, rc);
    }
    return rc;
}

int disk_log_hard_state_load(struct disk_log *log, struct disk_hard_state *hs)
{
    *hs = log->state.hs;
    return 0;
}

int disk_log_snap_save(struct disk_log *log, const struct disk_snap_meta *meta, const uint8_t *data)
{
    return disk_snap_save(&log->snap, meta, data);
}

int disk_log_snap_adopt(struct disk_log *log, const struct disk_snap_meta *meta)
{
    return disk_snap_adopt(&log->snap, meta);
}

int disk_log_snap_latest(struct disk_log *log, struct disk_snap_meta *meta)
{
    return disk_snap_latest(&log->snap, meta);
}

int disk_log_snap_read(struct disk_log *log, uint64_t offset, uint8_t *buf, uint32_t len)
{
    return disk_snap_read(&log->snap, offset, buf, len);
}

int disk_log_snap_recv_begin(struct disk_log *log, const struct disk_snap_meta *meta)
{
    return disk_snap_recv_begin(&log->snap, meta);
}

int disk_log_snap_recv_chunk(struct disk_log *log, uint64_t offset, const uint8_t *chunk,
                             uint32_t len)
{
    return disk_snap_recv_chunk(&log->snap, offset, chunk, len);
}

int disk_log_snap_recv_finish(struct disk_log *log)
{
    return disk_snap_recv_finish(&log->snap);
}

/* ---- open and recovery (start-up: allocates and blocks) ---- */

static int disk_check_config(const struct disk_config *c, struct ordo_errmsg *err)
{
    const char *why = NULL;
    if (c->dir == NULL) {
        why = "no data directory";
    } else if (c->segment_bytes < DISK_SEG_HDR_LEN + 4096 || c->segment_bytes > (1ull << 40)) {
        why = "segment_bytes out of range";
    } else if (c->batch_bytes_max < 4096 ||
               c->batch_bytes_max > c->segment_bytes - DISK_SEG_HDR_LEN) {
        why = "batch_bytes_max must be >= 4096 and fit one segment";
    } else if (c->entry_len_max > DISK_RECORD_PAYLOAD_MAX ||
               disk_record_size(c->entry_len_max) > c->batch_bytes_max) {
        why = "entry_len_max must fit one batch";
    } else if (c->index_cap == 0 || c->segments_max < 2 || c->ring_entries < 2) {
        why = "index_cap, segments_max (>= 2) or ring_entries (>= 2) too small";
    }
    if (why != NULL) {
        ordo_errmsg_set(err, "disk config: %s", why);
        return ORDO_ECONFIG;
    }
    return 0;
}

struct disk_scan_ctx {
    struct disk_log *log;
    uint32_t seg_no;
};

static void disk_scan_record(void *ctx, const struct disk_record *r, uint64_t off)
{
    struct disk_scan_ctx *c = ctx;
    struct disk_pos *p = disk_pos_at(c->log, r->index);
    p->off = DISK_SEG_HDR_LEN + off;
    p->term = r->term;
    p->seg_no = c->seg_no;
    p->size = (uint32_t)disk_record_size(r->len);
}

/* Reads segment file `name` whole into *buf (grown as needed). */
static int disk_read_segment(struct disk_log *log, int fd, const char *name, uint8_t **buf,
                             uint64_t *cap, uint64_t *len, struct ordo_errmsg *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        ordo_errmsg_set(err, "%s: stat: %s", name, strerror(errno));
        return -errno;
    }
    *len = (uint64_t)st.st_size;
    if (*len > *cap) {
        uint8_t *nb = mem_realloc(*buf, (size_t)*len);
        if (nb == NULL) {
            return -ENOMEM;
        }
        *buf = nb;
        *cap = *len;
    }
    int rc = disk_pread_all(fd, *buf, *len, 0);
    if (rc < 0) {
        ordo_errmsg_set(err, "%s: read: %s", name, ordo_strerror(rc));
    }
    (void)log;
    return rc;
}

static int disk_check_seg_hdr(const uint8_t *buf, uint64_t len, const char *name,
                              uint64_t first_want, uint64_t *size, struct ordo_errmsg *err)
{
    uint64_t first = 0;
    int rc = len < DISK_SEG_HDR_LEN ? ORDO_ETRUNCATED : disk_seg_decode_hdr(buf, &first, size);
    if (rc == 0 && first != first_want) {
        rc = ORDO_EMALFORMED;
    }
    if (rc < 0) {
        ordo_errmsg_set(err, "%s: offset 0: bad segment header: %s", name, ordo_strerror(rc));
        return ORDO_ECORRUPT;
    }
    return 0;
}

/* Recovers segment number i (first index `first`) and appends it to the log. */
static int disk_recover_one(struct disk_log *log, uint64_t first, int is_last, uint8_t **buf,
                            uint64_t *cap, struct ordo_errmsg *err)
{
    char name[DISK_SEG_NAME_LEN];
    uint64_t len = 0;
    uint64_t size = 0;
    disk_seg_name(name, first);
    if (log->seg_tail > log->seg_head && first != log->index_last + 1) {
        ordo_errmsg_set(err,
                        "%s: offset 0: segment starts at index %" PRIu64 ", expected %" PRIu64
                        " (missing segment or index gap)",
                        name, first, log->index_last + 1);
        return ORDO_ECORRUPT;
    }
    int fd = openat(log->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        ordo_errmsg_set(err, "%s: open: %s", name, strerror(errno));
        return -errno;
    }
    struct disk_segment *s = disk_seg_at(log, log->seg_tail);
    s->fd = fd;
    s->index_first = first;
    log->seg_tail++;
    int rc = disk_read_segment(log, fd, name, buf, cap, &len, err);
    if (rc == 0) {
        rc = disk_check_seg_hdr(*buf, len, name, first, &size, err);
    }
    if (rc < 0) {
        return rc;
    }
    struct disk_recover_seg rs = {.buf = *buf + DISK_SEG_HDR_LEN,
                                  .len = len - DISK_SEG_HDR_LEN,
                                  .base_off = DISK_SEG_HDR_LEN,
                                  .name = name,
                                  .index_expected = first,
                                  .term_min = log->term_last,
                                  .len_max = log->cfg.entry_len_max,
                                  .is_last = is_last};
    struct disk_recover_result res;
    struct disk_scan_ctx ctx = {log, log->seg_tail - 1};
    rc = disk_recover_scan(&rs, &res, err, &ctx, disk_scan_record);
    if (rc == 0 && res.index_last + 1 - log->index_first > log->cfg.index_cap) {
        ordo_errmsg_set(err, "%s: log holds more entries than index_cap", name);
        rc = ORDO_ECONFIG;
    }
    s->size = size > len ? size : len;
    s->end = s->reserved = DISK_SEG_HDR_LEN + res.end;
    if (rc == 0 && (res.tail_dirty || len < s->size)) {
        /* The torn tail of a write that was never acknowledged: cut it durably. */
        rc = disk_seg_cut(fd, s->end, s->size);
    }
    log->index_last = res.index_last;
    log->term_last = res.term_last;
    return rc;
}

static int disk_recover_all(struct disk_log *log, struct ordo_errmsg *err)
{
    uint64_t *firsts = mem_calloc(log->cfg.segments_max, sizeof(*firsts));
    uint8_t *buf = NULL;
    uint64_t cap = 0;
    if (firsts == NULL) {
        return -ENOMEM;
    }
    int n = disk_seg_list(log->dirfd, 1, firsts, log->cfg.segments_max);
    int rc = n < 0 ? n : 0;
    if (rc < 0) {
        ordo_errmsg_set(err, "%s: listing segments: %s", log->cfg.dir, ordo_strerror(rc));
    } else if (n == 0) {
        /* A new log, or one a snapshot covered entirely: start after the snapshot. */
        struct disk_buf b = {.first = log->snap.have ? log->snap.latest.last_index + 1 : 1};
        log->index_first = b.first;
        log->index_last = b.first - 1;
        rc = disk_roll(log, &b);
    } else {
        log->index_first = firsts[0];
        log->index_last = firsts[0] - 1;
        for (int i = 0; i < n && rc == 0; i++) {
            rc = disk_recover_one(log, firsts[i], i == n - 1, &buf, &cap, err);
        }
    }
    mem_free(buf);
    mem_free(firsts);
    if (rc == 0 && n > 0 && fdatasync(disk_seg_at(log, log->seg_tail - 1)->fd) < 0) {
        /* A crashed process may have left written but unsynced bytes in the page cache. */
        rc = -errno;
    }
    log->index_durable = log->index_last;
    return rc;
}

static int disk_open_ring(struct disk_log *log)
{
    /* COOP_TASKRUN + TASKRUN_FLAG: completions finished by io-wq workers are flagged in the
     * SQ ring, so a poller that never makes a system call still sees them (peek enters the
     * kernel only then). Older kernels refuse the flags: plain mode works, with interrupts. */
    int rc = io_uring_queue_init(log->cfg.ring_entries, &log->ring,
                                 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    if (rc == -EINVAL) {
        rc = io_uring_queue_init(log->cfg.ring_entries, &log->ring, 0);
    }
    if (rc < 0) {
        return rc;
    }
    log->ring_ready = 1;
    struct iovec iov[2];
    for (int i = 0; i < 2; i++) {
        iov[i].iov_base = log->bufs[i].data;
        iov[i].iov_len = log->cfg.batch_bytes_max;
    }
    /* Registered buffers save a page pinning per write; without them (memlock limit) plain
     * writes work the same. */
    log->fixed_bufs = io_uring_register_buffers(&log->ring, iov, 2) == 0;
    return 0;
}

static int disk_open_alloc(struct disk_log *log)
{
    log->segs = mem_calloc(log->cfg.segments_max, sizeof(*log->segs));
    log->pos = mem_calloc(log->cfg.index_cap, sizeof(*log->pos));
    log->bufs[0].data = mem_alloc(log->cfg.batch_bytes_max);
    log->bufs[1].data = mem_alloc(log->cfg.batch_bytes_max);
    if (log->segs == NULL || log->pos == NULL || log->bufs[0].data == NULL ||
        log->bufs[1].data == NULL) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < log->cfg.segments_max; i++) {
        log->segs[i].fd = -1;
    }
    return 0;
}

static int disk_open_dir(struct disk_log *log, struct ordo_errmsg *err)
{
    if (mkdir(log->cfg.dir, 0755) < 0 && errno != EEXIST) {
        ordo_errmsg_set(err, "%s: mkdir: %s", log->cfg.dir, strerror(errno));
        return -errno;
    }
    log->dirfd = open(log->cfg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dirfd < 0) {
        ordo_errmsg_set(err, "%s: open: %s", log->cfg.dir, strerror(errno));
        return -errno;
    }
    return 0;
}

struct disk_log *disk_log_open(const struct disk_config *cfg, int *rc, struct ordo_errmsg *err)
{
    struct disk_log *log = NULL;
    *rc = disk_check_config(cfg, err);
    if (*rc == 0) {
        log = mem_calloc(1, sizeof(*log));
        *rc = log == NULL ? -ENOMEM : 0;
    }
    if (*rc < 0) {
        return NULL;
    }
    log->cfg = *cfg;
    log->dirfd = -1;
    log->state.fd = -1;
    log->snap.fd_latest = -1;
    log->snap.recv_fd = -1;
    *rc = disk_open_alloc(log);
    if (*rc == 0) {
        *rc = disk_open_dir(log, err);
    }
    if (*rc == 0) {
        *rc = disk_state_open(&log->state, log->dirfd, err);
    }
    if (*rc == 0) {
        *rc = disk_snap_open(&log->snap, log->dirfd, cfg->snapshots_keep, err);
    }
    if (*rc == 0) {
        *rc = disk_recover_all(log, err);
    }
    if (*rc == 0) {
        *rc = disk_open_ring(log);
        if (*rc < 0) {
            ordo_errmsg_set(err, "io_uring_queue_init: %s", ordo_strerror(*rc));
        }
    }
    if (*rc < 0) {
        if (*rc == -ENOMEM) {
            ordo_errmsg_set(err, "%s: out of memory", cfg->dir);
        }
        disk_log_close(log);
        return NULL;
    }
    return log;
}

/* madvise on the whole pages inside [p, p + len): those hold nothing but this object. */
static int disk_madvise_inner(void *p, size_t len, int advice)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(page - 1);
    if (p == NULL || e <= a) {
        return 0;
    }
    return madvise((void *)a, e - a, advice) == 0 ? 0 : -errno;
}

static int disk_fork_advise(struct disk_log *log, int advice)
{
    int rc = disk_madvise_inner(log->bufs[0].data, log->cfg.batch_bytes_max, advice);
    if (rc == 0) {
        rc = disk_madvise_inner(log->bufs[1].data, log->cfg.batch_bytes_max, advice);
    }
    if (rc == 0) {
        rc = disk_madvise_inner(log->pos, (size_t)log->cfg.index_cap * sizeof(*log->pos), advice);
    }
    return rc;
}

int disk_log_fork_exclude(struct disk_log *log)
{
    int rc = disk_fork_advise(log, MADV_DONTFORK);
    log->fork_excluded = 1; /* also after a partial failure: close undoes what was done */
    return rc;
}

void disk_log_close(struct disk_log *log)
{
    if (log == NULL) {
        return;
    }
    if (log->fork_excluded) {
        /* The pages go back to the allocator: a later owner must be forked normally. */
        (void)disk_fork_advise(log, MADV_DOFORK);
    }
    if (log->ring_ready) {
        disk_log_sync(log);
        io_uring_queue_exit(&log->ring);
    }
    for (uint32_t n = log->seg_head; log->segs != NULL && n != log->seg_tail; n++) {
        if (disk_seg_at(log, n)->fd >= 0) {
            close(disk_seg_at(log, n)->fd);
        }
    }
    disk_state_close(&log->state);
    disk_snap_close(&log->snap);
    if (log->dirfd >= 0) {
        close(log->dirfd);
    }
    mem_free(log->segs);
    mem_free(log->pos);
    mem_free(log->bufs[0].data);
    mem_free(log->bufs[1].data);
    mem_free(log);
}

/* ---- ops table ---- */

static int disk_op_append(void *dev, const struct msg_entry *e, uint32_t n)
{
    return disk_log_append(dev, e, n);
}

static int disk_op_poll(void *dev, uint64_t *index_durable)
{
    return disk_log_poll(dev, index_durable);
}

static int disk_op_read(void *dev, uint64_t index, uint32_t n_max, struct msg_entry *out,
                        uint8_t *buf, size_t buf_len)
{
    return disk_log_read(dev, index, n_max, out, buf, buf_len);
}

static int disk_op_truncate(void *dev, uint64_t index_last_kept)
{
    return disk_log_truncate(dev, index_last_kept);
}

static int disk_op_compact(void *dev, uint64_t index)
{
    return disk_log_compact(dev, index);
}

static void disk_op_bounds(void *dev, struct disk_bounds *b)
{
    disk_log_bounds(dev, b);
}

static int disk_op_term_at(void *dev, uint64_t index, uint64_t *term)
{
    return disk_log_term_at(dev, index, term);
}

static int disk_op_hs_save(void *dev, const struct disk_hard_state *hs)
{
    return disk_log_hard_state_save(dev, hs);
}

static int disk_op_hs_load(void *dev, struct disk_hard_state *hs)
{
    return disk_log_hard_state_load(dev, hs);
}

static int disk_op_snap_save(void *dev, const struct disk_snap_meta *meta, const uint8_t *data)
{
    return disk_log_snap_save(dev, meta, data);
}

static int disk_op_snap_latest(void *dev, struct disk_snap_meta *meta)
{
    return disk_log_snap_latest(dev, meta);
}

static int disk_op_snap_read(void *dev, uint64_t offset, uint8_t *buf, uint32_t len)
{
    return disk_log_snap_read(dev, offset, buf, len);
}

static int disk_op_recv_begin(void *dev, const struct disk_snap_meta *meta)
{
    return disk_log_snap_recv_begin(dev, meta);
}

static int disk_op_recv_chunk(void *dev, uint64_t offset, const uint8_t *chunk, uint32_t len)
{
    return disk_log_snap_recv_chunk(dev, offset, chunk, len);
}

static int disk_op_recv_finish(void *dev)
{
    return disk_log_snap_recv_finish(dev);
}

const struct disk_ops disk_log_ops = {
    .append = disk_op_append,
    .poll = disk_op_poll,
    .read = disk_op_read,
    .truncate = disk_op_truncate,
    .compact = disk_op_compact,
    .bounds = disk_op_bounds,
    .term_at = disk_op_term_at,
    .hard_state_save = disk_op_hs_save,
    .hard_state_load = disk_op_hs_load,
    .snap_save = disk_op_snap_save,
    .snap_latest = disk_op_snap_latest,
    .snap_read = disk_op_snap_read,
    .snap_recv_begin = disk_op_recv_begin,
    .snap_recv_chunk = disk_op_recv_chunk,
    .snap_recv_finish = disk_op_recv_finish,
};
