/* Recovery scan of one log segment's bytes, shared by the io_uring driver, the simulated
 * twin and the log tool. Pure: it classifies bytes, the caller truncates files. It must never
 * accept a record out of order nor drop one silently: damage is either a torn tail of the last
 * write (reported as such) or corruption (refused with file and offset). */
#ifndef ORDO_DRIVERS_DISK_DISK_RECOVER_H
#define ORDO_DRIVERS_DISK_DISK_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/disk/disk_record.h"
#include "engine/api.h"
#include "engine/err.h"

/* One segment's record area, borrowed for the duration of the scan. */
struct disk_recover_seg {
    const uint8_t *buf;      /* record area (after the segment header) */
    size_t len;              /* bytes in buf */
    uint64_t base_off;       /* file offset of buf[0], for messages */
    const char *name;        /* file name, for messages */
    uint64_t index_expected; /* index the first record must carry */
    uint64_t term_min;       /* terms never decrease along the log */
    uint32_t len_max;        /* payload bound */
    int is_last;             /* the newest segment: a torn tail is allowed there only */
};

struct disk_recover_result {
    uint64_t end;        /* bytes of buf holding valid records */
    uint64_t count;      /* valid records */
    uint64_t index_last; /* index of the last valid record, index_expected - 1 when none */
    uint64_t term_last;  /* its term, term_min when none */
    int tail_dirty;      /* non-zero bytes follow `end`: the caller must cut the file there */
};

/* Called for each valid record in order; off is relative to buf. */
typedef void (*disk_recover_record_fn)(void *ctx, const struct disk_record *r, uint64_t off);

/* Scans s. Returns 0 and fills *res when the segment is usable (a torn tail of the last write
 * in the last segment is reported through res->tail_dirty); ORDO_ECORRUPT with err naming the
 * file, the offset and the cause otherwise. fn may be NULL. */
ORDO_API int disk_recover_scan(const struct disk_recover_seg *s, struct disk_recover_result *res,
                               struct ordo_errmsg *err, void *ctx, disk_recover_record_fn fn);

#endif
