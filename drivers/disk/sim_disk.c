/* Memory-backed twin of the log driver. The log image uses the real record format and the
 * real recovery scan, so torn writes and bit rot are judged exactly as on disk. Deterministic:
 * no clock, no random source, no file; everything derives from the seed and the calls. */
#include "drivers/disk/sim_disk.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "drivers/disk/disk_record.h"
#include "drivers/disk/disk_recover.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"

struct sim_disk_pos {
    uint64_t off; /* logical byte offset: img_base + position in img */
    uint64_t term;
    uint32_t size;
};

struct sim_disk {
    struct sim_disk_config cfg;
    uint64_t rng;
    uint64_t now;
    uint8_t *img;         /* durable records, then the write in flight; zeros beyond */
    uint64_t img_alloc;   /* bytes allocated for img */
    uint64_t img_base;    /* logical offset of img[0] (bytes dropped by compaction) */
    uint64_t img_len;     /* durable bytes */
    uint64_t flight_len;  /* bytes of the write in flight at img + img_len, 0 when none */
    uint64_t flight_last; /* index of its last record */
    uint64_t flight_due;  /* virtual time of its completion */
    int flight_err;       /* the result its completion will carry */
    uint8_t *stage;       /* encoded records appended since the last submit */
    uint64_t stage_len;
    uint64_t stage_first;
    uint64_t stage_last_rec;
    struct sim_disk_pos *pos; /* pos[index - index_first] */
    uint64_t pos_cap;
    uint64_t index_first;
    uint64_t index_last;
    uint64_t index_durable;
    uint64_t term_last;
    int err;
    int fail_err;
    struct disk_hard_state hs;
    int snap_have;
    struct disk_snap_meta snap_meta;
    uint8_t *snap_data;
    int recv_active;
    struct disk_snap_meta recv_meta;
    uint8_t *recv_data;
    uint64_t recv_off;
};

void sim_disk_config_default(struct sim_disk_config *c)
{
    memset(c, 0, sizeof(*c));
    c->seed = 1;
    c->latency_min = 1;
    c->latency_max = 1;
    c->capacity_bytes = 64u << 20;
    c->batch_bytes_max = 1u << 20;
    c->entry_len_max = 64u << 10;
}

/* splitmix64: small, seedable, and good enough for fault schedules. */
static uint64_t sim_disk_rand(struct sim_disk *d)
{
    uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct sim_disk_pos *sim_disk_pos_at(const struct sim_disk *d, uint64_t index)
{
    ORDO_ASSERT(index >= d->index_first && index - d->index_first < d->pos_cap);
    return &d->pos[index - d->index_first];
}

static void sim_disk_stop(struct sim_disk *d, int err)
{
    if (d->err == 0) {
        d->err = err;
    }
}

struct sim_disk *sim_disk_create(const struct sim_disk_config *cfg, int *rc)
{
    if (cfg->latency_max < cfg->latency_min || cfg->batch_bytes_max < 4096 ||
        disk_record_size(cfg->entry_len_max) > cfg->batch_bytes_max ||
        cfg->capacity_bytes < cfg->batch_bytes_max) {
        *rc = ORDO_ECONFIG;
        return NULL;
    }
    struct sim_disk *d = mem_calloc(1, sizeof(*d));
    if (d == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    d->cfg = *cfg;
    d->rng = cfg->seed;
    d->img_alloc = cfg->capacity_bytes + cfg->batch_bytes_max;
    d->img = mem_calloc(1, (size_t)d->img_alloc);
    d->stage = mem_alloc(cfg->batch_bytes_max);
    d->pos_cap = d->img_alloc / DISK_RECORD_HDR_LEN + 1;
    d->pos = mem_calloc((size_t)d->pos_cap, sizeof(*d->pos));
    if (d->img == NULL || d->stage == NULL || d->pos == NULL) {
        sim_disk_destroy(d);
        *rc = -ENOMEM;
        return NULL;
    }
    d->index_first = 1;
    d->hs.voted_for = MSG_NODE_NONE;
    *rc = 0;
    return d;
}

void sim_disk_destroy(struct sim_disk *d)
{
    if (d == NULL) {
        return;
    }
    mem_free(d->img);
    mem_free(d->stage);
    mem_free(d->pos);
    mem_free(d->snap_data);
    mem_free(d->recv_data);
    mem_free(d);
}

void sim_disk_set_time(struct sim_disk *d, uint64_t now)
{
    d->now = now;
}

static int sim_disk_check(const struct sim_disk *d, const struct msg_entry *e, uint32_t n,
                          uint64_t *total)
{
    uint64_t term = d->term_last;
    *total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (e[i].index != d->index_last + 1 + i || e[i].term < term || e[i].type < MSG_ENTRY_NOOP ||
            e[i].type > MSG_ENTRY_CONFIG || e[i].len > d->cfg.entry_len_max ||
            (e[i].len > 0 && e[i].data == NULL)) {
            return -EINVAL;
        }
        term = e[i].term;
        *total += disk_record_size(e[i].len);
    }
    return 0;
}

int sim_disk_append(struct sim_disk *d, const struct msg_entry *entries, uint32_t n)
{
    uint64_t total;
    if (d->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (n == 0) {
        return 0;
    }
    int rc = sim_disk_check(d, entries, n, &total);
    if (rc < 0) {
        return rc;
    }
    if (total > d->cfg.batch_bytes_max) {
        return ORDO_ETOOBIG;
    }
    if (d->stage_len + total > d->cfg.batch_bytes_max ||
        d->index_last + n - d->index_first + 1 > d->pos_cap) {
        return ORDO_ENOSPACE;
    }
    if (d->stage_len == 0) {
        d->stage_first = d->index_last + 1;
    }
    uint64_t logical = d->img_base + d->img_len + d->flight_len + d->stage_len;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t size = disk_record_encode(d->stage + d->stage_len, &entries[i], d->stage_first, 0);
        d->index_last = entries[i].index;
        struct sim_disk_pos *p = sim_disk_pos_at(d, entries[i].index);
        p->off = logical;
        p->term = entries[i].term;
        p->size = (uint32_t)size;
        d->stage_last_rec = d->stage_len;
        d->stage_len += size;
        logical += size;
    }
    d->term_last = entries[n - 1].term;
    return 0;
}

static void sim_disk_submit(struct sim_disk *d)
{
    disk_record_mark_end(d->stage + d->stage_last_rec);
    d->flight_len = d->stage_len;
    d->flight_last = d->index_last;
    d->flight_err = 0;
    if (d->img_len + d->stage_len > d->cfg.capacity_bytes) {
        d->flight_err = -ENOSPC;
    } else {
        memcpy(d->img + d->img_len, d->stage, (size_t)d->stage_len);
    }
    if (d->fail_err != 0) {
        d->flight_err = d->fail_err;
        d->fail_err = 0;
    }
    uint64_t span = d->cfg.latency_max - d->cfg.latency_min + 1;
    d->flight_due = d->now + d->cfg.latency_min + (span == 0 ? 0 : sim_disk_rand(d) % span);
    d->stage_len = 0;
}

static int sim_disk_complete(struct sim_disk *d)
{
    if (d->flight_err != 0) {
        sim_disk_stop(d, d->flight_err);
        return 0;
    }
    d->img_len += d->flight_len;
    d->index_durable = d->flight_last;
    d->flight_len = 0;
    return 1;
}

int sim_disk_poll(struct sim_disk *d, uint64_t *index_durable)
{
    int done = 0;
    if (d->err == 0 && d->flight_len > 0 && d->now >= d->flight_due) {
        done = sim_disk_complete(d);
    }
    if (d->err == 0 && d->flight_len == 0 && d->stage_len > 0) {
        sim_disk_submit(d);
    }
    if (index_durable != NULL) {
        *index_durable = d->index_durable;
    }
    return d->err != 0 ? d->err : done;
}

/* Finishes every write at once, as the real driver blocks in truncate and compact. */
static int sim_disk_drain(struct sim_disk *d)
{
    for (int pass = 0; pass < 2 && d->err == 0; pass++) {
        if (d->flight_len > 0) {
            sim_disk_complete(d);
        }
        if (d->err == 0 && d->stage_len > 0) {
            sim_disk_submit(d);
        }
    }
    if (d->err == 0 && d->flight_len > 0) {
        sim_disk_complete(d);
    }
    return d->err;
}

int sim_disk_read(struct sim_disk *d, uint64_t index, uint32_t n_max, struct msg_entry *out,
                  uint8_t *buf, size_t buf_len)
{
    if (index < d->index_first) {
        return ORDO_ENOTFOUND;
    }
    uint32_t count = 0;
    uint64_t used = 0;
    while (count < n_max && index + count <= d->index_durable) {
        const struct sim_disk_pos *p = sim_disk_pos_at(d, index + count);
        if (used + p->size > buf_len) {
            break;
        }
        memcpy(buf + used, d->img + (p->off - d->img_base), p->size);
        struct disk_record r;
        int64_t rc = disk_record_decode(buf + used, p->size, d->cfg.entry_len_max, &r);
        if (rc != (int64_t)p->size || r.index != index + count) {
            return ORDO_ECORRUPT;
        }
        disk_record_to_entry(&r, &out[count]);
        used += p->size;
        count++;
    }
    if (count == 0 && n_max > 0 && index <= d->index_durable) {
        return ORDO_ENOSPACE;
    }
    return (int)count;
}

int sim_disk_truncate(struct sim_disk *d, uint64_t index_last_kept)
{
    if (d->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (index_last_kept + 1 < d->index_first) {
        return ORDO_ENOTFOUND;
    }
    if (index_last_kept >= d->index_last) {
        return 0;
    }
    int rc = sim_disk_drain(d);
    if (rc < 0) {
        return rc;
    }
    uint64_t cut = sim_disk_pos_at(d, index_last_kept + 1)->off - d->img_base;
    memset(d->img + cut, 0, (size_t)(d->img_len - cut));
    d->img_len = cut;
    d->index_last = index_last_kept;
    d->index_durable = index_last_kept;
    d->term_last =
        index_last_kept >= d->index_first ? sim_disk_pos_at(d, index_last_kept)->term : 0;
    return 0;
}

int sim_disk_compact(struct sim_disk *d, uint64_t index)
{
    if (d->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (index < d->index_first) {
        return 0;
    }
    int rc = sim_disk_drain(d);
    if (rc < 0) {
        return rc;
    }
    if (index >= d->index_last) {
        memset(d->img, 0, (size_t)d->img_len);
        d->img_base += d->img_len;
        d->img_len = 0;
        d->index_first = index + 1;
        d->index_last = index;
        d->index_durable = index;
        d->term_last = 0;
        return 0;
    }
    /* The real driver drops whole segments; the twin drops exactly what the snapshot covers,
     * which is what the caller may rely on at most. */
    const struct sim_disk_pos *keep = sim_disk_pos_at(d, index + 1);
    uint64_t drop = keep->off - d->img_base;
    uint64_t n_drop = index + 1 - d->index_first;
    memmove(d->img, d->img + drop, (size_t)(d->img_len - drop));
    memset(d->img + d->img_len - drop, 0, (size_t)drop);
    memmove(d->pos, d->pos + n_drop, (size_t)(d->index_last - index) * sizeof(*d->pos));
    d->img_base += drop;
    d->img_len -= drop;
    d->index_first = index + 1;
    return 0;
}

void sim_disk_bounds(const struct sim_disk *d, struct disk_bounds *b)
{
    b->index_first = d->index_first;
    b->index_last = d->index_last;
    b->index_durable = d->index_durable;
    b->term_last = d->term_last;
}

int sim_disk_term_at(const struct sim_disk *d, uint64_t index, uint64_t *term)
{
    if (index < d->index_first || index > d->index_last) {
        return ORDO_ENOTFOUND;
    }
    *term = sim_disk_pos_at(d, index)->term;
    return 0;
}

static int sim_disk_sync_fault(struct sim_disk *d)
{
    if (d->err != 0) {
        return ORDO_ESTOPPED;
    }
    if (d->fail_err != 0) {
        int rc = d->fail_err;
        d->fail_err = 0;
        sim_disk_stop(d, rc);
        return rc;
    }
    return 0;
}

int sim_disk_hard_state_save(struct sim_disk *d, const struct disk_hard_state *hs)
{
    int rc = sim_disk_sync_fault(d);
    if (rc == 0) {
        d->hs = *hs;
    }
    return rc;
}

int sim_disk_hard_state_load(struct sim_disk *d, struct disk_hard_state *hs)
{
    *hs = d->hs;
    return 0;
}

/* Replaces the snapshot with meta and a copy made by the caller (ownership passes here). */
static void sim_disk_snap_install(struct sim_disk *d, const struct disk_snap_meta *meta,
                                  uint8_t *data)
{
    mem_free(d->snap_data);
    d->snap_data = data;
    d->snap_meta = *meta;
    d->snap_have = 1;
}

int sim_disk_snap_save(struct sim_disk *d, const struct disk_snap_meta *meta, const uint8_t *data)
{
    int rc = sim_disk_sync_fault(d);
    if (rc < 0) {
        return rc;
    }
    uint8_t *copy = mem_alloc((size_t)meta->len);
    if (copy == NULL) {
        return -ENOMEM;
    }
    if (meta->len > 0) {
        memcpy(copy, data, (size_t)meta->len);
    }
    sim_disk_snap_install(d, meta, copy);
    return 0;
}

int sim_disk_snap_latest(struct sim_disk *d, struct disk_snap_meta *meta)
{
    if (!d->snap_have) {
        return ORDO_ENOTFOUND;
    }
    *meta = d->snap_meta;
    return 0;
}

int sim_disk_snap_read(struct sim_disk *d, uint64_t offset, uint8_t *buf, uint32_t len)
{
    if (!d->snap_have) {
        return ORDO_ENOTFOUND;
    }
    if (offset >= d->snap_meta.len) {
        return 0;
    }
    uint64_t n = d->snap_meta.len - offset < len ? d->snap_meta.len - offset : len;
    memcpy(buf, d->snap_data + offset, (size_t)n);
    return (int)n;
}

int sim_disk_snap_recv_begin(struct sim_disk *d, const struct disk_snap_meta *meta)
{
    uint8_t *buf = mem_alloc((size_t)meta->len);
    if (buf == NULL) {
        return -ENOMEM;
    }
    mem_free(d->recv_data);
    d->recv_data = buf;
    d->recv_meta = *meta;
    d->recv_off = 0;
    d->recv_active = 1;
    return 0;
}

int sim_disk_snap_recv_chunk(struct sim_disk *d, uint64_t offset, const uint8_t *chunk,
                             uint32_t len)
{
    if (!d->recv_active || offset != d->recv_off || len > d->recv_meta.len - d->recv_off) {
        return -EINVAL;
    }
    memcpy(d->recv_data + offset, chunk, len);
    d->recv_off += len;
    return 0;
}

int sim_disk_snap_recv_finish(struct sim_disk *d)
{
    if (!d->recv_active || d->recv_off != d->recv_meta.len) {
        return -EINVAL;
    }
    int rc = sim_disk_sync_fault(d);
    if (rc < 0) {
        return rc;
    }
    sim_disk_snap_install(d, &d->recv_meta, d->recv_data);
    d->recv_data = NULL;
    d->recv_active = 0;
    return 0;
}

static void sim_disk_scan_record(void *ctx, const struct disk_record *r, uint64_t off)
{
    struct sim_disk *d = ctx;
    struct sim_disk_pos *p = sim_disk_pos_at(d, r->index);
    p->off = d->img_base + off;
    p->term = r->term;
    p->size = (uint32_t)disk_record_size(r->len);
}

/* Applies the crash mode to the write in flight; returns the bytes of the image to scan. */
static uint64_t sim_disk_crash_flight(struct sim_disk *d, enum sim_disk_crash_mode mode)
{
    uint64_t keep = 0;
    if (d->flight_len > 0 && d->flight_err == 0) {
        if (mode == SIM_DISK_CRASH_KEEP) {
            keep = d->flight_len;
        } else if (mode == SIM_DISK_CRASH_TORN) {
            keep = sim_disk_rand(d) % d->flight_len;
        }
    }
    uint64_t len = d->img_len + keep;
    /* Bytes past what survives read back as zeros, as from a preallocated file. */
    memset(d->img + len, 0, (size_t)(d->img_alloc - len));
    return len;
}

int sim_disk_crash(struct sim_disk *d, enum sim_disk_crash_mode mode, struct ordo_errmsg *err)
{
    uint64_t len = sim_disk_crash_flight(d, mode);
    d->flight_len = 0;
    d->stage_len = 0;
    d->recv_active = 0;
    d->err = 0;
    d->fail_err = 0;
    struct disk_recover_seg rs = {.buf = d->img,
                                  .len = len,
                                  .base_off = 0,
                                  .name = "sim-disk",
                                  .index_expected = d->index_first,
                                  .term_min = 0,
                                  .len_max = d->cfg.entry_len_max,
                                  .is_last = 1};
    struct disk_recover_result res;
    int rc = disk_recover_scan(&rs, &res, err, d, sim_disk_scan_record);
    if (rc < 0) {
        sim_disk_stop(d, rc);
        return rc;
    }
    memset(d->img + res.end, 0, (size_t)(len - res.end));
    d->img_len = res.end;
    d->index_last = res.index_last;
    d->index_durable = res.index_last;
    d->term_last = res.count > 0 ? res.term_last : 0;
    return 0;
}

void sim_disk_fail_next_sync(struct sim_disk *d, int err)
{
    ORDO_ASSERT(err < 0);
    d->fail_err = err;
}

void sim_disk_set_capacity(struct sim_disk *d, uint64_t capacity_bytes)
{
    d->cfg.capacity_bytes = capacity_bytes < d->img_alloc - d->cfg.batch_bytes_max
                                ? capacity_bytes
                                : d->img_alloc - d->cfg.batch_bytes_max;
}

int sim_disk_rot(struct sim_disk *d, uint64_t index, uint32_t byte, unsigned bit)
{
    if (index < d->index_first || index > d->index_durable) {
        return ORDO_ENOTFOUND;
    }
    const struct sim_disk_pos *p = sim_disk_pos_at(d, index);
    d->img[p->off - d->img_base + byte % p->size] ^= (uint8_t)(1u << (bit & 7u));
    return 0;
}

int sim_disk_error(const struct sim_disk *d)
{
    return d->err;
}

/* ---- ops table ---- */

static int sim_disk_op_append(void *dev, const struct msg_entry *e, uint32_t n)
{
    return sim_disk_append(dev, e, n);
}

static int sim_disk_op_poll(void *dev, uint64_t *index_durable)
{
    return sim_disk_poll(dev, index_durable);
}

static int sim_disk_op_read(void *dev, uint64_t index, uint32_t n_max, struct msg_entry *out,
                            uint8_t *buf, size_t buf_len)
{
    return sim_disk_read(dev, index, n_max, out, buf, buf_len);
}

static int sim_disk_op_truncate(void *dev, uint64_t index_last_kept)
{
    return sim_disk_truncate(dev, index_last_kept);
}

static int sim_disk_op_compact(void *dev, uint64_t index)
{
    return sim_disk_compact(dev, index);
}

static void sim_disk_op_bounds(void *dev, struct disk_bounds *b)
{
    sim_disk_bounds(dev, b);
}

static int sim_disk_op_term_at(void *dev, uint64_t index, uint64_t *term)
{
    return sim_disk_term_at(dev, index, term);
}

static int sim_disk_op_hs_save(void *dev, const struct disk_hard_state *hs)
{
    return sim_disk_hard_state_save(dev, hs);
}

static int sim_disk_op_hs_load(void *dev, struct disk_hard_state *hs)
{
    return sim_disk_hard_state_load(dev, hs);
}

static int sim_disk_op_snap_save(void *dev, const struct disk_snap_meta *meta, const uint8_t *data)
{
    return sim_disk_snap_save(dev, meta, data);
}

static int sim_disk_op_snap_latest(void *dev, struct disk_snap_meta *meta)
{
    return sim_disk_snap_latest(dev, meta);
}

static int sim_disk_op_snap_read(void *dev, uint64_t offset, uint8_t *buf, uint32_t len)
{
    return sim_disk_snap_read(dev, offset, buf, len);
}

static int sim_disk_op_recv_begin(void *dev, const struct disk_snap_meta *meta)
{
    return sim_disk_snap_recv_begin(dev, meta);
}

static int sim_disk_op_recv_chunk(void *dev, uint64_t offset, const uint8_t *chunk, uint32_t len)
{
    return sim_disk_snap_recv_chunk(dev, offset, chunk, len);
}

static int sim_disk_op_recv_finish(void *dev)
{
    return sim_disk_snap_recv_finish(dev);
}

const struct disk_ops sim_disk_ops = {
    .append = sim_disk_op_append,
    .poll = sim_disk_op_poll,
    .read = sim_disk_op_read,
    .truncate = sim_disk_op_truncate,
    .compact = sim_disk_op_compact,
    .bounds = sim_disk_op_bounds,
    .term_at = sim_disk_op_term_at,
    .hard_state_save = sim_disk_op_hs_save,
    .hard_state_load = sim_disk_op_hs_load,
    .snap_save = sim_disk_op_snap_save,
    .snap_latest = sim_disk_op_snap_latest,
    .snap_read = sim_disk_op_snap_read,
    .snap_recv_begin = sim_disk_op_recv_begin,
    .snap_recv_chunk = sim_disk_op_recv_chunk,
    .snap_recv_finish = sim_disk_op_recv_finish,
};
