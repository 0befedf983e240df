/* On-disk log record codec and CRC32C, shared by the io_uring driver, its simulated twin,
 * recovery, the log tool and the fuzz target. Pure: encodes and checks bytes, no I/O. */
#ifndef ORDO_DRIVERS_DISK_DISK_RECORD_H
#define ORDO_DRIVERS_DISK_DISK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"

/* Record layout (little endian), documented in docs/storage.md:
 *   0  u32 crc32c over bytes [4, DISK_RECORD_HDR_LEN + len)
 *   4  u32 len          payload bytes
 *   8  u64 index
 *  16  u64 term
 *  24  u64 batch_first  first index of the write (group commit) holding the record
 *  32  u64 zero         reserved
 *  40  u8  type         enum msg_entry_type
 *  41  u8  flags        DISK_RECORD_F_*
 *  42  u8[6] zero
 *  48  payload, then zero padding to a multiple of DISK_RECORD_ALIGN. */
#define DISK_RECORD_HDR_LEN 48u
#define DISK_RECORD_ALIGN 8u
/* Set on the last record of each write: recovery uses it to tell a torn unfinished write
 * (never acknowledged) from damage to a completed one. */
#define DISK_RECORD_F_WRITE_END 0x01u
/* Largest payload accepted by the codec; config may lower it. */
#define DISK_RECORD_PAYLOAD_MAX (16u << 20)

/* Decoded record header; payload borrows the buffer it was decoded from. */
struct disk_record {
    uint64_t index;
    uint64_t term;
    uint64_t batch_first;
    uint32_t len;
    uint8_t type;
    uint8_t flags; /* DISK_RECORD_F_* */
    const uint8_t *payload;
};

/* CRC32C (Castagnoli), SSE4.2 instruction when compiled in, else the table version. */
ORDO_API uint32_t disk_record_crc32c(uint32_t crc, const void *buf, size_t len);
/* Portable table-driven CRC32C, same results; exported so tests can compare the two. */
ORDO_API uint32_t disk_record_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Bytes a record with `len` payload bytes takes on disk (header + payload + padding). */
static inline uint64_t disk_record_size(uint32_t len)
{
    uint64_t n = (uint64_t)DISK_RECORD_HDR_LEN + len;
    return (n + DISK_RECORD_ALIGN - 1) & ~(uint64_t)(DISK_RECORD_ALIGN - 1);
}

/* Encodes entry e into dst, which must hold disk_record_size(e->len) bytes. batch_first is the
 * first index of the write the record belongs to. Returns the bytes written. */
ORDO_API uint64_t disk_record_encode(uint8_t *dst, const struct msg_entry *e, uint64_t batch_first,
                                     uint8_t flags);

/* Sets DISK_RECORD_F_WRITE_END on the encoded record at rec and updates its CRC. */
ORDO_API void disk_record_mark_end(uint8_t *rec);

/* Decodes the record at buf (avail bytes readable). Returns the record's size on disk (> 0)
 * and fills *r on success; 0 when the header is all zero (end of written data); otherwise
 * ORDO_ETRUNCATED (record runs past avail), ORDO_ETOOBIG (len above len_max),
 * ORDO_EMALFORMED (reserved bytes, index 0, batch_first above index), ORDO_EBADTYPE or
 * ORDO_ECHECKSUM. Never reads beyond avail. */
ORDO_API int64_t disk_record_decode(const uint8_t *buf, size_t avail, uint32_t len_max,
                                    struct disk_record *r);

/* Fills a msg_entry from a decoded record (data borrows the record's buffer). */
ORDO_API void disk_record_to_entry(const struct disk_record *r, struct msg_entry *e);

/* Little-endian helpers shared by the disk files. */
static inline void disk_record_put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void disk_record_put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t disk_record_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static inline uint32_t disk_record_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

#endif
