/* Fuzz target for log record decoding and the recovery scan: any bytes, as a segment's record
 * area, a segment header, hard state slots or a snapshot header. Nothing may crash or read out
 * of bounds; a decoded record must re-encode to the same bytes; an accepted scan must report
 * consecutive indexes inside the input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/disk/disk_record.h"
#include "drivers/disk/disk_recover.h"
#include "drivers/disk/disk_seg.h"
#include "drivers/disk/disk_snap.h"
#include "drivers/disk/disk_state.h"
#include "tests/fuzz/fuzz.h"

struct fuzz_log_scan {
    size_t len;
    uint64_t next;
    uint64_t end;
};

static void fuzz_log_fail(const char *what)
{
    fprintf(stderr, "fuzz_log: invariant broken: %s\n", what);
    abort();
}

static void fuzz_log_record(void *ctx, const struct disk_record *r, uint64_t off)
{
    struct fuzz_log_scan *s = ctx;
    if (r->index != s->next || off != s->end) {
        fuzz_log_fail("scan records out of order");
    }
    s->end = off + disk_record_size(r->len);
    if (s->end > s->len) {
        fuzz_log_fail("record past the input");
    }
    s->next++;
}

static void fuzz_log_roundtrip(const uint8_t *data, size_t size)
{
    struct disk_record r;
    int64_t n = disk_record_decode(data, size, DISK_RECORD_PAYLOAD_MAX, &r);
    if (n <= 0) {
        return;
    }
    if ((uint64_t)n > size || (uint64_t)n != disk_record_size(r.len)) {
        fuzz_log_fail("decoded size");
    }
    uint8_t *copy = malloc((size_t)n);
    if (copy == NULL) {
        return;
    }
    struct msg_entry e;
    disk_record_to_entry(&r, &e);
    disk_record_encode(copy, &e, r.batch_first, 0);
    if ((r.flags & DISK_RECORD_F_WRITE_END) != 0) {
        disk_record_mark_end(copy);
    }
    if (memcmp(copy, data, (size_t)n) != 0) {
        fuzz_log_fail("re-encoding differs");
    }
    free(copy);
}

static void fuzz_log_scan(const uint8_t *data, size_t size, int is_last)
{
    struct disk_record r;
    uint64_t first = 1;
    if (disk_record_decode(data, size, DISK_RECORD_PAYLOAD_MAX, &r) > 0) {
        first = r.index;
    }
    struct fuzz_log_scan s = {.len = size, .next = first, .end = 0};
    struct disk_recover_seg rs = {.buf = data,
                                  .len = size,
                                  .base_off = 64,
                                  .name = "fuzz",
                                  .index_expected = first,
                                  .term_min = 0,
                                  .len_max = DISK_RECORD_PAYLOAD_MAX,
                                  .is_last = is_last};
    struct disk_recover_result res;
    struct ordo_errmsg err;
    if (disk_recover_scan(&rs, &res, &err, &s, fuzz_log_record) == 0) {
        if (res.end != s.end || res.index_last + 1 != s.next || res.end > size) {
            fuzz_log_fail("scan result disagrees with its records");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_log_roundtrip(data, size);
    fuzz_log_scan(data, size, 0);
    fuzz_log_scan(data, size, 1);
    uint64_t first;
    uint64_t seg_bytes;
    if (size >= DISK_SEG_HDR_LEN) {
        (void)disk_seg_decode_hdr(data, &first, &seg_bytes);
    }
    if (size >= 2 * DISK_STATE_SLOT_LEN) {
        uint64_t seq;
        struct disk_hard_state hs;
        (void)disk_state_pick(data, data + DISK_STATE_SLOT_LEN, &seq, &hs);
    }
    if (size >= DISK_SNAP_HDR_LEN) {
        struct disk_snap_meta m;
        uint32_t crc;
        (void)disk_snap_decode_hdr(data, &m, &crc);
    }
    return 0;
}
