/* Log record encoding, validation and CRC32C. Every byte read from disk passes through
 * disk_record_decode before anything trusts it; it must never read out of bounds. */
#include "drivers/disk/disk_record.h"

#include <pthread.h>
#include <string.h>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "engine/err.h"

#define DISK_RECORD_CRC_POLY 0x82F63B78u /* CRC32C, reflected */

static uint32_t disk_record_crc_table[256];
static pthread_once_t disk_record_crc_once = PTHREAD_ONCE_INIT;

static void disk_record_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ DISK_RECORD_CRC_POLY : c >> 1;
        }
        disk_record_crc_table[i] = c;
    }
}

uint32_t disk_record_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&disk_record_crc_once, disk_record_crc_init);
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc = disk_record_crc_table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    }
    return ~crc;
}

uint32_t disk_record_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__SSE4_2__)
    const uint8_t *p = buf;
    uint64_t c = (uint32_t)~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len > 0) {
        c32 = _mm_crc32_u8(c32, *p);
        p++;
        len--;
    }
    return ~c32;
#else
    return disk_record_crc32c_sw(crc, buf, len);
#endif
}

uint64_t disk_record_encode(uint8_t *dst, const struct msg_entry *e, uint64_t batch_first,
                            uint8_t flags)
{
    uint64_t size = disk_record_size(e->len);
    disk_record_put32(dst + 4, e->len);
    disk_record_put64(dst + 8, e->index);
    disk_record_put64(dst + 16, e->term);
    disk_record_put64(dst + 24, batch_first);
    memset(dst + 32, 0, 16);
    dst[40] = e->type;
    dst[41] = flags;
    if (e->len > 0) {
        memcpy(dst + DISK_RECORD_HDR_LEN, e->data, e->len);
    }
    /* Padding is zero so that a record's bytes on disk are a pure function of its content. */
    memset(dst + DISK_RECORD_HDR_LEN + e->len, 0, size - DISK_RECORD_HDR_LEN - e->len);
    uint32_t crc = disk_record_crc32c(0, dst + 4, (size_t)DISK_RECORD_HDR_LEN - 4 + e->len);
    disk_record_put32(dst, crc);
    return size;
}

static int disk_record_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static int disk_record_check_fields(const struct disk_record *r, const uint8_t *hdr)
{
    for (unsigned i = 32; i < 40; i++) {
        if (hdr[i] != 0) {
            return ORDO_EMALFORMED;
        }
    }
    for (unsigned i = 42; i < DISK_RECORD_HDR_LEN; i++) {
        if (hdr[i] != 0) {
            return ORDO_EMALFORMED;
        }
    }
    if ((r->flags & ~DISK_RECORD_F_WRITE_END) != 0) {
        return ORDO_EMALFORMED;
    }
    if (r->index == 0 || r->batch_first == 0 || r->batch_first > r->index) {
        return ORDO_EMALFORMED;
    }
    if (r->type < MSG_ENTRY_NOOP || r->type > MSG_ENTRY_CONFIG) {
        return ORDO_EBADTYPE;
    }
    return 0;
}

int64_t disk_record_decode(const uint8_t *buf, size_t avail, uint32_t len_max,
                           struct disk_record *r)
{
    if (avail < DISK_RECORD_HDR_LEN) {
        return disk_record_all_zero(buf, avail) ? 0 : ORDO_ETRUNCATED;
    }
    if (disk_record_all_zero(buf, DISK_RECORD_HDR_LEN)) {
        return 0;
    }
    r->len = disk_record_get32(buf + 4);
    if (r->len > len_max || r->len > DISK_RECORD_PAYLOAD_MAX) {
        return ORDO_ETOOBIG;
    }
    uint64_t size = disk_record_size(r->len);
    if (size > avail) {
        return ORDO_ETRUNCATED;
    }
    r->index = disk_record_get64(buf + 8);
    r->term = disk_record_get64(buf + 16);
    r->batch_first = disk_record_get64(buf + 24);
    r->type = buf[40];
    r->flags = buf[41];
    r->payload = buf + DISK_RECORD_HDR_LEN;
    uint32_t crc = disk_record_crc32c(0, buf + 4, (size_t)DISK_RECORD_HDR_LEN - 4 + r->len);
    if (crc != disk_record_get32(buf)) {
        return ORDO_ECHECKSUM;
    }
    int rc = disk_record_check_fields(r, buf);
    if (rc < 0) {
        return rc;
    }
    if (!disk_record_all_zero(buf + DISK_RECORD_HDR_LEN + r->len,
                              (size_t)size - DISK_RECORD_HDR_LEN - r->len)) {
        return ORDO_EMALFORMED;
    }
    return (int64_t)size;
}

void disk_record_mark_end(uint8_t *rec)
{
    uint32_t len = disk_record_get32(rec + 4);
    rec[41] |= DISK_RECORD_F_WRITE_END;
    disk_record_put32(rec, disk_record_crc32c(0, rec + 4, (size_t)DISK_RECORD_HDR_LEN - 4 + len));
}

void disk_record_to_entry(const struct disk_record *r, struct msg_entry *e)
{
    e->term = r->term;
    e->index = r->index;
    e->type = r->type;
    e->len = r->len;
    e->data = r->payload;
}
