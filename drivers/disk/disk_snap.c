/* Snapshot files "snap-<index>-<term>.snap": a 256-byte checksummed header, then the data.
 * A snapshot is visible under its final name only once its bytes are durable. */
#include "drivers/disk/disk_snap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "drivers/disk/disk_record.h"
#include "drivers/disk/disk_seg.h"

#define DISK_SNAP_MAGIC 0x31504e53445244full /* "ORDSNP1" little endian */
#define DISK_SNAP_TMP "snap-recv.tmp"
#define DISK_SNAP_NAME_LEN 64
#define DISK_SNAP_SCAN_MAX 4096u /* directory entries examined at most */

void disk_snap_encode_hdr(uint8_t hdr[DISK_SNAP_HDR_LEN], const struct disk_snap_meta *m,
                          uint32_t data_crc)
{
    memset(hdr, 0, DISK_SNAP_HDR_LEN);
    disk_record_put64(hdr, DISK_SNAP_MAGIC);
    disk_record_put64(hdr + 8, m->last_index);
    disk_record_put64(hdr + 16, m->last_term);
    disk_record_put64(hdr + 24, m->len);
    disk_record_put32(hdr + 32, data_crc);
    disk_record_put32(hdr + 36, m->config.n);
    for (uint32_t i = 0; i < MSG_NODES_MAX; i++) {
        disk_record_put32(hdr + 40 + 8 * i, m->config.servers[i].id);
        hdr[44 + 8 * i] = m->config.servers[i].role;
    }
    disk_record_put32(hdr + 252, disk_record_crc32c(0, hdr, 252));
}

int disk_snap_decode_hdr(const uint8_t hdr[DISK_SNAP_HDR_LEN], struct disk_snap_meta *m,
                         uint32_t *data_crc)
{
    if (disk_record_get64(hdr) != DISK_SNAP_MAGIC) {
        return ORDO_EBADMAGIC;
    }
    if (disk_record_get32(hdr + 252) != disk_record_crc32c(0, hdr, 252)) {
        return ORDO_ECHECKSUM;
    }
    memset(m, 0, sizeof(*m));
    m->last_index = disk_record_get64(hdr + 8);
    m->last_term = disk_record_get64(hdr + 16);
    m->len = disk_record_get64(hdr + 24);
    *data_crc = disk_record_get32(hdr + 32);
    m->config.n = disk_record_get32(hdr + 36);
    if (m->config.n > MSG_NODES_MAX) {
        return ORDO_EMALFORMED;
    }
    for (uint32_t i = 0; i < MSG_NODES_MAX; i++) {
        m->config.servers[i].id = disk_record_get32(hdr + 40 + 8 * i);
        m->config.servers[i].role = hdr[44 + 8 * i];
    }
    return 0;
}

static void disk_snap_name(char *name, uint64_t index, uint64_t term)
{
    snprintf(name, DISK_SNAP_NAME_LEN, "snap-%020" PRIu64 "-%020" PRIu64 ".snap", index, term);
}

static int disk_snap_parse_name(const char *name, uint64_t *index, uint64_t *term)
{
    char tail[8];
    if (strlen(name) != 51 ||
        sscanf(name, "snap-%20" SCNu64 "-%20" SCNu64 "%7s", index, term, tail) != 3 ||
        strcmp(tail, ".snap") != 0) {
        return -1;
    }
    return 0;
}

/* Lists snapshot files: the newest (by index, then term) into newest_*, the oldest's name into
 * oldest, and counts them. With clean_tmp, removes temporary files left by a crash. */
static int disk_snap_scan(int dirfd, int clean_tmp, uint64_t *newest_index, uint64_t *newest_term,
                          uint32_t *count, char *oldest)
{
    DIR *d = NULL;
    int rc_open = disk_seg_opendir(dirfd, &d);
    if (rc_open < 0) {
        return rc_open;
    }
    uint64_t old_index = UINT64_MAX;
    uint64_t old_term = UINT64_MAX;
    *count = 0;
    *newest_index = 0;
    *newest_term = 0;
    struct dirent *de;
    for (uint32_t seen = 0; seen < DISK_SNAP_SCAN_MAX && (de = readdir(d)) != NULL; seen++) {
        uint64_t i;
        uint64_t t;
        if (clean_tmp && strncmp(de->d_name, "snap-", 5) == 0 &&
            strstr(de->d_name, ".tmp") != NULL) {
            unlinkat(dirfd, de->d_name, 0);
            continue;
        }
        if (disk_snap_parse_name(de->d_name, &i, &t) < 0) {
            continue;
        }
        (*count)++;
        if (i > *newest_index || (i == *newest_index && t > *newest_term)) {
            *newest_index = i;
            *newest_term = t;
        }
        if (i < old_index || (i == old_index && t < old_term)) {
            old_index = i;
            old_term = t;
            snprintf(oldest, DISK_SNAP_NAME_LEN, "%s", de->d_name);
        }
    }
    closedir(d);
    return 0;
}

static int disk_snap_check_data(int fd, uint64_t len, uint32_t crc_want)
{
    uint8_t buf[65536];
    uint32_t crc = 0;
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)(DISK_SNAP_HDR_LEN + off));
        if (n <= 0) {
            return n < 0 ? -errno : ORDO_ETRUNCATED;
        }
        crc = disk_record_crc32c(crc, buf, (size_t)n);
        off += (uint64_t)n;
    }
    return crc == crc_want ? 0 : ORDO_ECHECKSUM;
}

/* Opens and fully checks one snapshot file; on success keeps it as the latest. */
static int disk_snap_load(struct disk_snap *s, const char *name, struct ordo_errmsg *err)
{
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        ordo_errmsg_set(err, "%s: open: %s", name, ordo_strerror(rc));
        return rc;
    }
    uint8_t hdr[DISK_SNAP_HDR_LEN] = {0};
    struct disk_snap_meta m;
    uint32_t crc = 0;
    int rc = pread(fd, hdr, sizeof(hdr), 0) < 0 ? -errno : 0;
    if (rc == 0) {
        rc = disk_snap_decode_hdr(hdr, &m, &crc);
    }
    if (rc == 0) {
        rc = disk_snap_check_data(fd, m.len, crc);
    }
    if (rc < 0) {
        ordo_errmsg_set(err, "%s: offset %u: snapshot damaged: %s", name,
                        rc == ORDO_ECHECKSUM ? DISK_SNAP_HDR_LEN : 0u, ordo_strerror(rc));
        close(fd);
        return rc < -4095 ? ORDO_ECORRUPT : rc;
    }
    if (s->fd_latest >= 0) {
        close(s->fd_latest);
    }
    s->fd_latest = fd;
    s->latest = m;
    s->have = 1;
    return 0;
}

int disk_snap_open(struct disk_snap *s, int dirfd, uint32_t keep, struct ordo_errmsg *err)
{
    memset(s, 0, sizeof(*s));
    s->dirfd = dirfd;
    s->keep = keep == 0 ? 1 : keep;
    s->fd_latest = -1;
    s->recv_fd = -1;
    /* Zeroed: gcc -O3 cannot see that scan sets them on every successful path. */
    uint64_t index = 0;
    uint64_t term = 0;
    uint32_t count = 0;
    char oldest[DISK_SNAP_NAME_LEN];
    int rc = disk_snap_scan(dirfd, 1, &index, &term, &count, oldest);
    if (rc < 0) {
        ordo_errmsg_set(err, "snapshots: scan: %s", ordo_strerror(rc));
        return rc;
    }
    if (count == 0) {
        return 0;
    }
    char name[DISK_SNAP_NAME_LEN];
    disk_snap_name(name, index, term);
    return disk_snap_load(s, name, err);
}

void disk_snap_close(struct disk_snap *s)
{
    if (s->fd_latest >= 0) {
        close(s->fd_latest);
    }
    if (s->recv_fd >= 0) {
        close(s->recv_fd);
        unlinkat(s->dirfd, DISK_SNAP_TMP, 0);
    }
    s->fd_latest = -1;
    s->recv_fd = -1;
}

static int disk_snap_prune(struct disk_snap *s)
{
    /* Bounded: each pass removes the oldest file, and there are at most SCAN_MAX files. */
    for (uint32_t pass = 0; pass < DISK_SNAP_SCAN_MAX; pass++) {
        uint64_t index = 0;
        uint64_t term = 0;
        uint32_t count = 0;
        char oldest[DISK_SNAP_NAME_LEN];
        int rc = disk_snap_scan(s->dirfd, 0, &index, &term, &count, oldest);
        if (rc < 0) {
            return rc;
        }
        if (count <= s->keep) {
            break;
        }
        if (unlinkat(s->dirfd, oldest, 0) < 0) {
            return -errno;
        }
    }
    return fsync(s->dirfd) < 0 ? -errno : 0;
}

static int disk_snap_write_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : (size_t)len, (off_t)off);
        if (n < 0) {
            return -errno;
        }
        p += n;
        len -= (uint64_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Makes the temporary file durable under its final name and makes it the latest. */
static int disk_snap_install(struct disk_snap *s, int fd, const char *tmp,
                             const struct disk_snap_meta *m, uint32_t crc)
{
    uint8_t hdr[DISK_SNAP_HDR_LEN];
    char name[DISK_SNAP_NAME_LEN];
    disk_snap_encode_hdr(hdr, m, crc);
    int rc = disk_snap_write_all(fd, hdr, sizeof(hdr), 0);
    if (rc == 0 && fdatasync(fd) < 0) {
        rc = -errno;
    }
    disk_snap_name(name, m->last_index, m->last_term);
    if (rc == 0 && renameat(s->dirfd, tmp, s->dirfd, name) < 0) {
        rc = -errno;
    }
    if (rc == 0 && fsync(s->dirfd) < 0) {
        rc = -errno;
    }
    close(fd);
    if (rc < 0) {
        unlinkat(s->dirfd, tmp, 0);
        return rc;
    }
    int nfd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (nfd < 0) {
        return -errno;
    }
    if (s->fd_latest >= 0) {
        close(s->fd_latest);
    }
    s->fd_latest = nfd;
    s->latest = *m;
    s->have = 1;
    return disk_snap_prune(s);
}

int disk_snap_save(struct disk_snap *s, const struct disk_snap_meta *m, const uint8_t *data)
{
    char tmp[DISK_SNAP_NAME_LEN];
    snprintf(tmp, sizeof(tmp), "snap-save-%020" PRIu64 ".tmp", m->last_index);
    int fd = openat(s->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    int rc = disk_snap_write_all(fd, data, m->len, DISK_SNAP_HDR_LEN);
    if (rc < 0) {
        close(fd);
        unlinkat(s->dirfd, tmp, 0);
        return rc;
    }
    return disk_snap_install(s, fd, tmp, m, disk_record_crc32c(0, data, (size_t)m->len));
}

/* Takes as the latest a snapshot file another process (the background snapshot writer, a
 * fork of this one) made durable under its final name: checks the header against m, then
 * keeps the file open for reads. The data CRC is not scanned here (the writer computed it
 * from the same bytes; disk_snap_open checks it at the next start). */
int disk_snap_adopt(struct disk_snap *s, const struct disk_snap_meta *m)
{
    char name[DISK_SNAP_NAME_LEN];
    disk_snap_name(name, m->last_index, m->last_term);
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    uint8_t hdr[DISK_SNAP_HDR_LEN] = {0};
    struct disk_snap_meta got;
    uint32_t crc = 0;
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    int rc = n < 0 ? -errno : n != (ssize_t)sizeof(hdr) ? ORDO_ETRUNCATED : 0;
    if (rc == 0) {
        rc = disk_snap_decode_hdr(hdr, &got, &crc);
    }
    if (rc == 0 &&
        (got.last_index != m->last_index || got.last_term != m->last_term || got.len != m->len)) {
        rc = ORDO_ECORRUPT;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (s->fd_latest >= 0) {
        close(s->fd_latest);
    }
    s->fd_latest = fd;
    s->latest = got;
    s->have = 1;
    return 0;
}

int disk_snap_latest(const struct disk_snap *s, struct disk_snap_meta *m)
{
    if (!s->have) {
        return ORDO_ENOTFOUND;
    }
    *m = s->latest;
    return 0;
}

int disk_snap_read(struct disk_snap *s, uint64_t off, uint8_t *buf, uint32_t len)
{
    if (!s->have) {
        return ORDO_ENOTFOUND;
    }
    if (off >= s->latest.len) {
        return 0;
    }
    uint64_t want = s->latest.len - off < len ? s->latest.len - off : len;
    uint64_t done = 0;
    while (done < want) {
        ssize_t n = pread(s->fd_latest, buf + done, (size_t)(want - done),
                          (off_t)(DISK_SNAP_HDR_LEN + off + done));
        if (n <= 0) {
            return n < 0 ? -errno : ORDO_ETRUNCATED;
        }
        done += (uint64_t)n;
    }
    return (int)done;
}

int disk_snap_recv_begin(struct disk_snap *s, const struct disk_snap_meta *m)
{
    if (s->recv_fd >= 0) {
        close(s->recv_fd);
    }
    s->recv_fd = openat(s->dirfd, DISK_SNAP_TMP, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->recv_fd < 0) {
        return -errno;
    }
    s->recv_meta = *m;
    s->recv_off = 0;
    s->recv_crc = 0;
    return 0;
}

int disk_snap_recv_chunk(struct disk_snap *s, uint64_t off, const uint8_t *chunk, uint32_t len)
{
    if (s->recv_fd < 0 || off != s->recv_off || len > s->recv_meta.len - s->recv_off) {
        return -EINVAL;
    }
    int rc = disk_snap_write_all(s->recv_fd, chunk, len, DISK_SNAP_HDR_LEN + off);
    if (rc < 0) {
        return rc;
    }
    s->recv_crc = disk_record_crc32c(s->recv_crc, chunk, len);
    s->recv_off += len;
    return 0;
}

int disk_snap_recv_finish(struct disk_snap *s)
{
    if (s->recv_fd < 0 || s->recv_off != s->recv_meta.len) {
        return -EINVAL;
    }
    int fd = s->recv_fd;
    s->recv_fd = -1;
    return disk_snap_install(s, fd, DISK_SNAP_TMP, &s->recv_meta, s->recv_crc);
}
