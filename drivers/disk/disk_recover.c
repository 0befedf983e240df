/* Segment scan: validates CRC, index continuity and term order, and tells a torn tail of the
 * last (never acknowledged) write from damage to acknowledged data. Pure byte logic. */
#include "drivers/disk/disk_recover.h"

#include <inttypes.h>

static int disk_recover_any_nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 1;
        }
    }
    return 0;
}

static int disk_recover_fail(const struct disk_recover_seg *s, struct ordo_errmsg *err,
                             uint64_t off, const char *what, uint64_t index)
{
    ordo_errmsg_set(err, "%s: offset %" PRIu64 ": %s (record index %" PRIu64 ")", s->name,
                    s->base_off + off, what, index);
    return ORDO_ECORRUPT;
}

/* Looks past the first damaged byte at `bad` for valid records. A valid record from a later
 * write, or the last record of a write, proves the damaged write had completed (and may have
 * been acknowledged): that is corruption. Records of the same unfinished write are a tear. */
static int disk_recover_tail(const struct disk_recover_seg *s, uint64_t bad, uint64_t index_next,
                             struct ordo_errmsg *err)
{
    struct disk_record r;
    uint64_t off = bad + DISK_RECORD_ALIGN;
    while (off + DISK_RECORD_HDR_LEN <= s->len) {
        int64_t n = disk_record_decode(s->buf + off, s->len - off, s->len_max, &r);
        if (n <= 0 || r.index < index_next) {
            off += DISK_RECORD_ALIGN;
            continue;
        }
        if (r.batch_first > index_next) {
            return disk_recover_fail(s, err, bad, "damaged record followed by a later write",
                                     index_next);
        }
        if ((r.flags & DISK_RECORD_F_WRITE_END) != 0) {
            return disk_recover_fail(s, err, bad, "damaged record inside a completed write",
                                     index_next);
        }
        off += (uint64_t)n;
    }
    return 0;
}

static const char *disk_recover_why(int64_t rc)
{
    switch (rc) {
    case ORDO_ECHECKSUM:
        return "CRC mismatch";
    case ORDO_ETRUNCATED:
        return "record runs past the end of the segment";
    case ORDO_ETOOBIG:
        return "record length out of bounds";
    case ORDO_EBADTYPE:
        return "unknown record type";
    default:
        return "malformed record header";
    }
}

/* Handles the first position that does not hold a valid record. */
static int disk_recover_stop(const struct disk_recover_seg *s, struct disk_recover_result *res,
                             int64_t rc, struct ordo_errmsg *err)
{
    uint64_t next = res->index_last + 1;
    int dirty = disk_recover_any_nonzero(s->buf + res->end, s->len - res->end);
    if (!dirty) {
        return 0;
    }
    int trc = disk_recover_tail(s, res->end, next, err);
    if (trc < 0) {
        return trc;
    }
    if (!s->is_last) {
        return disk_recover_fail(
            s, err, res->end,
            rc == 0 ? "garbage after the last record of a segment" : disk_recover_why(rc), next);
    }
    res->tail_dirty = 1;
    return 0;
}

int disk_recover_scan(const struct disk_recover_seg *s, struct disk_recover_result *res,
                      struct ordo_errmsg *err, void *ctx, disk_recover_record_fn fn)
{
    res->end = 0;
    res->count = 0;
    res->index_last = s->index_expected - 1;
    res->term_last = s->term_min;
    res->tail_dirty = 0;
    /* Each valid record is at least DISK_RECORD_HDR_LEN bytes, which bounds the loop. */
    for (;;) {
        struct disk_record r;
        int64_t rc = disk_record_decode(s->buf + res->end, s->len - res->end, s->len_max, &r);
        if (rc <= 0) {
            return disk_recover_stop(s, res, rc, err);
        }
        if (r.index != res->index_last + 1) {
            return disk_recover_fail(s, err, res->end, "index gap", res->index_last + 1);
        }
        if (r.term < res->term_last) {
            return disk_recover_fail(s, err, res->end, "term decreases", r.index);
        }
        if (fn != NULL) {
            fn(ctx, &r, res->end);
        }
        res->end += (uint64_t)rc;
        res->count++;
        res->index_last = r.index;
        res->term_last = r.term;
    }
}
