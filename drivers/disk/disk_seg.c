/* Segment file helpers. A segment is visible under its final name only once its header and
 * preallocation are durable, so recovery never sees a half-made segment. */
#include "drivers/disk/disk_seg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "drivers/disk/disk_record.h"
#include "engine/err.h"

#define DISK_SEG_MAGIC 0x31474f4c44524full /* "ORDLOG1" little endian */
#define DISK_SEG_SCAN_MAX (1u << 20)       /* directory entries examined at most */

void disk_seg_name(char name[DISK_SEG_NAME_LEN], uint64_t index_first)
{
    snprintf(name, DISK_SEG_NAME_LEN, "log-%020" PRIu64 ".seg", index_first);
}

int disk_seg_parse_name(const char *name, uint64_t *index_first)
{
    if (strlen(name) != 28 || strncmp(name, "log-", 4) != 0 || strcmp(name + 24, ".seg") != 0) {
        return -1;
    }
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *index_first = v;
    return 0;
}

static uint32_t disk_seg_hdr_crc(const uint8_t *hdr)
{
    uint32_t crc = disk_record_crc32c(0, hdr, 12);
    return disk_record_crc32c(crc, hdr + 16, DISK_SEG_HDR_LEN - 16);
}

void disk_seg_encode_hdr(uint8_t hdr[DISK_SEG_HDR_LEN], uint64_t index_first,
                         uint64_t segment_bytes)
{
    memset(hdr, 0, DISK_SEG_HDR_LEN);
    disk_record_put64(hdr, DISK_SEG_MAGIC);
    disk_record_put32(hdr + 8, DISK_SEG_VERSION);
    disk_record_put64(hdr + 16, index_first);
    disk_record_put64(hdr + 24, segment_bytes);
    disk_record_put32(hdr + 12, disk_seg_hdr_crc(hdr));
}

int disk_seg_decode_hdr(const uint8_t hdr[DISK_SEG_HDR_LEN], uint64_t *index_first,
                        uint64_t *segment_bytes)
{
    if (disk_record_get64(hdr) != DISK_SEG_MAGIC) {
        return ORDO_EBADMAGIC;
    }
    if (disk_record_get32(hdr + 12) != disk_seg_hdr_crc(hdr)) {
        return ORDO_ECHECKSUM;
    }
    if (disk_record_get32(hdr + 8) != DISK_SEG_VERSION) {
        return ORDO_EVERSION;
    }
    *index_first = disk_record_get64(hdr + 16);
    *segment_bytes = disk_record_get64(hdr + 24);
    return 0;
}

int disk_seg_create(int dirfd, uint64_t index_first, uint64_t segment_bytes)
{
    char name[DISK_SEG_NAME_LEN];
    char tmp[DISK_SEG_NAME_LEN + 8];
    uint8_t hdr[DISK_SEG_HDR_LEN];
    disk_seg_name(name, index_first);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    int fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    if (fallocate(fd, 0, 0, (off_t)segment_bytes) < 0) {
        rc = -errno;
    }
    disk_seg_encode_hdr(hdr, index_first, segment_bytes);
    if (rc == 0 && pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
        rc = errno != 0 ? -errno : -EIO;
    }
    if (rc == 0 && fsync(fd) < 0) {
        rc = -errno;
    }
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0) {
        rc = -errno;
    }
    if (rc == 0 && fsync(dirfd) < 0) {
        rc = -errno;
    }
    if (rc < 0) {
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return rc;
    }
    return fd;
}

static void disk_seg_sort(uint64_t *v, uint32_t n)
{
    /* Insertion sort: directories are read once at start-up and are nearly sorted. */
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        uint32_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

int disk_seg_opendir(int dirfd, DIR **out)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    *out = fdopendir(fd);
    if (*out == NULL) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return 0;
}

int disk_seg_list(int dirfd, int clean_tmp, uint64_t *firsts, uint32_t max)
{
    DIR *d = NULL;
    int rc_open = disk_seg_opendir(dirfd, &d);
    if (rc_open < 0) {
        return rc_open;
    }
    uint32_t n = 0;
    int rc = 0;
    struct dirent *de;
    for (uint32_t seen = 0; seen < DISK_SEG_SCAN_MAX && (de = readdir(d)) != NULL; seen++) {
        uint64_t first;
        size_t len = strlen(de->d_name);
        if (clean_tmp && strncmp(de->d_name, "log-", 4) == 0 && len > 4 &&
            strcmp(de->d_name + len - 4, ".tmp") == 0) {
            unlinkat(dirfd, de->d_name, 0);
            continue;
        }
        if (disk_seg_parse_name(de->d_name, &first) < 0) {
            continue;
        }
        if (n == max) {
            rc = ORDO_ETOOBIG;
            break;
        }
        firsts[n++] = first;
    }
    closedir(d);
    if (rc < 0) {
        return rc;
    }
    disk_seg_sort(firsts, n);
    return (int)n;
}

int disk_seg_cut(int fd, uint64_t off, uint64_t segment_bytes)
{
    if (ftruncate(fd, (off_t)off) < 0) {
        return -errno;
    }
    if (fallocate(fd, 0, 0, (off_t)segment_bytes) < 0) {
        return -errno;
    }
    return fsync(fd) < 0 ? -errno : 0;
}
