/* Segment files of the log: naming, header, creation (preallocated, atomically named), listing
 * and cutting. Blocking file-system calls: start-up, segment roll, truncation, the log tool. */
#ifndef ORDO_DRIVERS_DISK_DISK_SEG_H
#define ORDO_DRIVERS_DISK_DISK_SEG_H

#include <dirent.h>
#include <stdint.h>

#include "engine/api.h"

/* Header at offset 0 of every segment (little endian):
 *   0 u64 magic "ORDLOG1", 8 u32 version (1), 12 u32 crc32c of bytes [0,12) and [16,64),
 *  16 u64 index_first, 24 u64 segment_bytes, 32..64 zero. Records start at DISK_SEG_HDR_LEN. */
#define DISK_SEG_HDR_LEN 64u
#define DISK_SEG_NAME_LEN 48
#define DISK_SEG_VERSION 1u

/* "log-<index_first, 20 digits>.seg": lexical order is log order. */
ORDO_API void disk_seg_name(char name[DISK_SEG_NAME_LEN], uint64_t index_first);
/* 0 and *index_first for a segment name, -1 for any other name. */
ORDO_API int disk_seg_parse_name(const char *name, uint64_t *index_first);

ORDO_API void disk_seg_encode_hdr(uint8_t hdr[DISK_SEG_HDR_LEN], uint64_t index_first,
                                  uint64_t segment_bytes);
/* 0, ORDO_EBADMAGIC, ORDO_EVERSION or ORDO_ECHECKSUM. */
ORDO_API int disk_seg_decode_hdr(const uint8_t hdr[DISK_SEG_HDR_LEN], uint64_t *index_first,
                                 uint64_t *segment_bytes);

/* Creates segment index_first under dirfd: writes it under a temporary name, preallocates
 * segment_bytes (fallocate), writes and syncs the header, renames, syncs the directory. Returns
 * the open fd (O_RDWR) or -errno (-ENOSPC when the disk is full). */
ORDO_API int disk_seg_create(int dirfd, uint64_t index_first, uint64_t segment_bytes);

/* Lists the segments under dirfd in ascending order of first index (at most max); removes
 * temporary files left by a crash when clean_tmp. Returns the count or -errno. */
/* Opens the data directory `dirfd` for listing with its own descriptor (dirfd stays open):
 * 0 and *out (closedir it), or -errno. Shared by the segment and snapshot scans. */
ORDO_API int disk_seg_opendir(int dirfd, DIR **out);
ORDO_API int disk_seg_list(int dirfd, int clean_tmp, uint64_t *firsts, uint32_t max);

/* Cuts the file at off (everything after reads as zeros), keeps it preallocated to
 * segment_bytes, and makes both durable (fsync). ftruncate is one journalled metadata change,
 * so a crash leaves the file either cut or whole. Returns 0 or -errno. */
ORDO_API int disk_seg_cut(int fd, uint64_t off, uint64_t segment_bytes);

#endif
