/* Snapshot files: written to a temporary name, synced, renamed into place, directory synced;
 * the newest `keep` are kept. Served and received in chunks for InstallSnapshot. */
#ifndef ORDO_DRIVERS_DISK_DISK_SNAP_H
#define ORDO_DRIVERS_DISK_DISK_SNAP_H

#include <stdint.h>

#include "drivers/disk/disk.h"
#include "engine/api.h"
#include "engine/err.h"

#define DISK_SNAP_HDR_LEN 256u

struct disk_snap {
    int dirfd;
    uint32_t keep;
    int have;                     /* a snapshot exists */
    struct disk_snap_meta latest; /* valid when have */
    int fd_latest;                /* open for chunk reads */
    int recv_fd;                  /* temporary file being received, -1 when none */
    struct disk_snap_meta recv_meta;
    uint64_t recv_off;
    uint32_t recv_crc;
};

/* Encodes / decodes the file header (pure). decode returns 0, ORDO_EBADMAGIC or
 * ORDO_ECHECKSUM. data_crc is the CRC32C of the data. */
ORDO_API void disk_snap_encode_hdr(uint8_t hdr[DISK_SNAP_HDR_LEN], const struct disk_snap_meta *m,
                                   uint32_t data_crc);
ORDO_API int disk_snap_decode_hdr(const uint8_t hdr[DISK_SNAP_HDR_LEN], struct disk_snap_meta *m,
                                  uint32_t *data_crc);

/* Finds the newest snapshot under dirfd and checks its header and data CRC; removes leftover
 * temporary files. Returns 0 (with or without a snapshot), -errno, or ORDO_ECORRUPT with err
 * naming the file. */
ORDO_API int disk_snap_open(struct disk_snap *s, int dirfd, uint32_t keep, struct ordo_errmsg *err);
ORDO_API void disk_snap_close(struct disk_snap *s);
ORDO_API int disk_snap_save(struct disk_snap *s, const struct disk_snap_meta *m,
                            const uint8_t *data);
/* Takes the durable file snap-<m->last_index>-<m->last_term>.snap (written by another
 * process) as the latest after checking its header against m. Returns 0, -errno,
 * ORDO_ETRUNCATED, a header decode error or ORDO_ECORRUPT (header differs from m). */
ORDO_API int disk_snap_adopt(struct disk_snap *s, const struct disk_snap_meta *m);
ORDO_API int disk_snap_latest(const struct disk_snap *s, struct disk_snap_meta *m);
ORDO_API int disk_snap_read(struct disk_snap *s, uint64_t off, uint8_t *buf, uint32_t len);
ORDO_API int disk_snap_recv_begin(struct disk_snap *s, const struct disk_snap_meta *m);
ORDO_API int disk_snap_recv_chunk(struct disk_snap *s, uint64_t off, const uint8_t *chunk,
                                  uint32_t len);
ORDO_API int disk_snap_recv_finish(struct disk_snap *s);

#endif
