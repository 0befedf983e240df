/* Hard state slots. A slot is valid only when magic and CRC match; the newer valid slot wins.
 * A save never touches the slot holding the current value. */
#include "drivers/disk/disk_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "drivers/disk/disk_record.h"

#define DISK_STATE_MAGIC 0x3130534844524f4full /* "ORDHS01" little endian */

void disk_state_encode(uint8_t slot[DISK_STATE_SLOT_LEN], uint64_t seq,
                       const struct disk_hard_state *hs)
{
    disk_record_put64(slot, DISK_STATE_MAGIC);
    disk_record_put64(slot + 8, seq);
    disk_record_put64(slot + 16, hs->term);
    disk_record_put32(slot + 24, hs->voted_for);
    disk_record_put32(slot + 28, disk_record_crc32c(0, slot, 28));
}

int disk_state_decode(const uint8_t slot[DISK_STATE_SLOT_LEN], uint64_t *seq,
                      struct disk_hard_state *hs)
{
    if (disk_record_get64(slot) != DISK_STATE_MAGIC ||
        disk_record_get32(slot + 28) != disk_record_crc32c(0, slot, 28)) {
        return ORDO_ECHECKSUM;
    }
    *seq = disk_record_get64(slot + 8);
    hs->term = disk_record_get64(slot + 16);
    hs->voted_for = disk_record_get32(slot + 24);
    return 0;
}

int disk_state_pick(const uint8_t s0[DISK_STATE_SLOT_LEN], const uint8_t s1[DISK_STATE_SLOT_LEN],
                    uint64_t *seq, struct disk_hard_state *hs)
{
    uint64_t q0 = 0;
    uint64_t q1 = 0;
    struct disk_hard_state h0;
    struct disk_hard_state h1;
    int ok0 = disk_state_decode(s0, &q0, &h0) == 0;
    int ok1 = disk_state_decode(s1, &q1, &h1) == 0;
    if (!ok0 && !ok1) {
        return ORDO_ECORRUPT;
    }
    if (ok0 && (!ok1 || q0 > q1)) {
        *seq = q0;
        *hs = h0;
    } else {
        *seq = q1;
        *hs = h1;
    }
    return 0;
}

static int disk_state_write_slot(int fd, uint64_t seq, const struct disk_hard_state *hs)
{
    uint8_t slot[DISK_STATE_SLOT_LEN];
    disk_state_encode(slot, seq, hs);
    off_t off = (seq & 1u) ? DISK_STATE_SLOT1_OFF : 0;
    ssize_t n = pwrite(fd, slot, sizeof(slot), off);
    if (n < 0) {
        return -errno;
    }
    if ((size_t)n != sizeof(slot)) {
        return -EIO;
    }
    return fdatasync(fd) < 0 ? -errno : 0;
}

/* A new file gets slot 0 = (seq 0, term 0, no vote), durable, so that there is always one
 * valid slot even if the first real save is torn. */
static int disk_state_create(struct disk_state *st, int dirfd)
{
    int fd = openat(dirfd, DISK_STATE_FILE ".tmp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    struct disk_hard_state zero = {0, MSG_NODE_NONE};
    int rc = disk_state_write_slot(fd, 0, &zero);
    if (rc == 0 && renameat(dirfd, DISK_STATE_FILE ".tmp", dirfd, DISK_STATE_FILE) < 0) {
        rc = -errno;
    }
    if (rc == 0 && fsync(dirfd) < 0) {
        rc = -errno;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    st->fd = fd;
    st->seq = 0;
    st->hs = zero;
    return 0;
}

int disk_state_open(struct disk_state *st, int dirfd, struct ordo_errmsg *err)
{
    st->fd = openat(dirfd, DISK_STATE_FILE, O_RDWR | O_CLOEXEC);
    if (st->fd < 0 && errno == ENOENT) {
        int rc = disk_state_create(st, dirfd);
        if (rc < 0) {
            ordo_errmsg_set(err, "%s: create: %s", DISK_STATE_FILE, ordo_strerror(rc));
        }
        return rc;
    }
    if (st->fd < 0) {
        int rc = -errno;
        ordo_errmsg_set(err, "%s: open: %s", DISK_STATE_FILE, ordo_strerror(rc));
        return rc;
    }
    uint8_t s0[DISK_STATE_SLOT_LEN] = {0};
    uint8_t s1[DISK_STATE_SLOT_LEN] = {0};
    /* Short reads leave zeros, which fail the magic check. */
    if (pread(st->fd, s0, sizeof(s0), 0) < 0 ||
        pread(st->fd, s1, sizeof(s1), DISK_STATE_SLOT1_OFF) < 0) {
        int rc = -errno;
        ordo_errmsg_set(err, "%s: read: %s", DISK_STATE_FILE, ordo_strerror(rc));
        disk_state_close(st);
        return rc;
    }
    if (disk_state_pick(s0, s1, &st->seq, &st->hs) < 0) {
        ordo_errmsg_set(err, "%s: offsets 0 and %u: both hard state slots fail their CRC",
                        DISK_STATE_FILE, DISK_STATE_SLOT1_OFF);
        disk_state_close(st);
        return ORDO_ECORRUPT;
    }
    return 0;
}

int disk_state_save(struct disk_state *st, const struct disk_hard_state *hs)
{
    int rc = disk_state_write_slot(st->fd, st->seq + 1, hs);
    if (rc < 0) {
        return rc;
    }
    st->seq++;
    st->hs = *hs;
    return 0;
}

void disk_state_close(struct disk_state *st)
{
    if (st->fd >= 0) {
        close(st->fd);
    }
    st->fd = -1;
}
