/* ordo-logtool: prints and checks a replica's durable log, hard state and snapshots without
 * changing anything (a torn tail is reported, not cut). Exit 0 when the log would open, 1 when
 * it is damaged, 2 on usage or I/O errors. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/disk/disk_record.h"
#include "drivers/disk/disk_recover.h"
#include "drivers/disk/disk_seg.h"
#include "drivers/disk/disk_state.h"
#include "engine/err.h"
#include "engine/mem.h"

#define LOGTOOL_SEGS_MAX 65536u

struct logtool {
    int print;        /* print every record */
    int dump;         /* print payload bytes (hex, first 32) */
    uint64_t from;    /* print records with index >= from */
    uint64_t to;      /* ... and <= to */
    uint32_t len_max; /* payload bound used by the scan */
    uint64_t records;
    uint64_t bytes;
};

static const char *logtool_type(uint8_t t)
{
    switch (t) {
    case MSG_ENTRY_NOOP:
        return "noop";
    case MSG_ENTRY_BATCH:
        return "batch";
    case MSG_ENTRY_CONFIG:
        return "config";
    default:
        return "?";
    }
}

static void logtool_record(void *ctx, const struct disk_record *r, uint64_t off)
{
    struct logtool *t = ctx;
    t->records++;
    t->bytes += r->len;
    if (!t->print || r->index < t->from || r->index > t->to) {
        return;
    }
    printf("  index %" PRIu64 " term %" PRIu64 " type %s len %" PRIu32 " offset %" PRIu64
           " write %" PRIu64 "%s",
           r->index, r->term, logtool_type(r->type), r->len, off + DISK_SEG_HDR_LEN, r->batch_first,
           (r->flags & DISK_RECORD_F_WRITE_END) ? " end" : "");
    if (t->dump) {
        printf(" data ");
        for (uint32_t i = 0; i < r->len && i < 32; i++) {
            printf("%02x", r->payload[i]);
        }
        printf(r->len > 32 ? "..." : "");
    }
    printf("\n");
}

static int logtool_read_file(int dirfd, const char *name, uint8_t **buf, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        return -errno;
    }
    *len = (size_t)st.st_size;
    *buf = mem_alloc(*len);
    if (*buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t done = 0;
    while (done < *len) {
        ssize_t n = pread(fd, *buf + done, *len - done, (off_t)done);
        if (n <= 0) {
            close(fd);
            return n < 0 ? -errno : -EIO;
        }
        done += (size_t)n;
    }
    close(fd);
    return 0;
}

/* Checks one segment; returns 0, 1 (damaged) or 2 (I/O). *next and *term carry continuity. */
static int logtool_segment(struct logtool *t, int dirfd, uint64_t first, int is_last,
                           uint64_t *next, uint64_t *term)
{
    char name[DISK_SEG_NAME_LEN];
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t hdr_first = 0;
    uint64_t seg_bytes = 0;
    struct ordo_errmsg err = {{0}};
    disk_seg_name(name, first);
    int rc = logtool_read_file(dirfd, name, &buf, &len);
    if (rc < 0) {
        fprintf(stderr, "ordo-logtool: %s: %s\n", name, strerror(-rc));
        mem_free(buf);
        return 2;
    }
    if (len < DISK_SEG_HDR_LEN || disk_seg_decode_hdr(buf, &hdr_first, &seg_bytes) < 0 ||
        hdr_first != first) {
        printf("%s: offset 0: bad segment header\n", name);
        mem_free(buf);
        return 1;
    }
    if (*next != 0 && first != *next) {
        printf("%s: offset 0: starts at index %" PRIu64 ", expected %" PRIu64
               " (missing segment or index gap)\n",
               name, first, *next);
        mem_free(buf);
        return 1;
    }
    struct disk_recover_seg rs = {.buf = buf + DISK_SEG_HDR_LEN,
                                  .len = len - DISK_SEG_HDR_LEN,
                                  .base_off = DISK_SEG_HDR_LEN,
                                  .name = name,
                                  .index_expected = first,
                                  .term_min = *term,
                                  .len_max = t->len_max,
                                  .is_last = is_last};
    struct disk_recover_result res;
    printf("%s: first index %" PRIu64 ", %zu bytes\n", name, first, len);
    rc = disk_recover_scan(&rs, &res, &err, t, logtool_record);
    if (rc < 0) {
        printf("DAMAGED: %s\n", err.text);
        mem_free(buf);
        return 1;
    }
    printf("  %" PRIu64 " records, indexes %" PRIu64 "..%" PRIu64 ", %" PRIu64 " bytes used%s\n",
           res.count, first, res.index_last, res.end + DISK_SEG_HDR_LEN,
           res.tail_dirty ? "; torn tail of an unacknowledged write (cut at next open)" : "");
    *next = res.index_last + 1;
    *term = res.term_last;
    mem_free(buf);
    return 0;
}

static void logtool_hard_state(int dirfd)
{
    uint8_t s0[DISK_STATE_SLOT_LEN] = {0};
    uint8_t s1[DISK_STATE_SLOT_LEN] = {0};
    int fd = openat(dirfd, DISK_STATE_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("hard state: none\n");
        return;
    }
    if (pread(fd, s0, sizeof(s0), 0) < 0 || pread(fd, s1, sizeof(s1), DISK_STATE_SLOT1_OFF) < 0) {
        printf("hard state: read error: %s\n", strerror(errno));
    }
    close(fd);
    uint64_t seq;
    struct disk_hard_state hs;
    if (disk_state_pick(s0, s1, &seq, &hs) < 0) {
        printf("hard state: DAMAGED (both slots fail their CRC)\n");
        return;
    }
    printf("hard state: term %" PRIu64 ", voted for %" PRIu32 " (write %" PRIu64 ")\n", hs.term,
           hs.voted_for, seq);
}

static int logtool_run(struct logtool *t, const char *dir)
{
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t *firsts = mem_calloc(LOGTOOL_SEGS_MAX, sizeof(*firsts));
    if (dirfd < 0 || firsts == NULL) {
        fprintf(stderr, "ordo-logtool: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    int n = disk_seg_list(dirfd, 0, firsts, LOGTOOL_SEGS_MAX);
    if (n < 0) {
        fprintf(stderr, "ordo-logtool: %s: %s\n", dir, ordo_strerror(n));
        return 2;
    }
    logtool_hard_state(dirfd);
    printf("%d segment(s)\n", n);
    uint64_t next = 0;
    uint64_t term = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = logtool_segment(t, dirfd, firsts[i], i == n - 1, &next, &term);
    }
    if (rc == 0) {
        printf("OK: %" PRIu64 " records (%" PRIu64 " payload bytes), last index %" PRIu64
               ", last term %" PRIu64 "\n",
               t->records, t->bytes, next == 0 ? 0 : next - 1, term);
    }
    mem_free(firsts);
    close(dirfd);
    return rc;
}

static void logtool_usage(void)
{
    fprintf(stderr, "usage: ordo-logtool check|print|dump DIR [--from N] [--to N]\n"
                    "  check  validate every record (CRC, index continuity, terms); exit 1 on\n"
                    "         damage, naming file and offset\n"
                    "  print  also list every record (index, term, type, length, offset)\n"
                    "  dump   also show the first payload bytes\n");
}

int main(int argc, char **argv)
{
    struct logtool t = {.from = 0, .to = UINT64_MAX, .len_max = DISK_RECORD_PAYLOAD_MAX};
    if (argc < 3) {
        logtool_usage();
        return 2;
    }
    if (strcmp(argv[1], "print") == 0 || strcmp(argv[1], "dump") == 0) {
        t.print = 1;
        t.dump = strcmp(argv[1], "dump") == 0;
    } else if (strcmp(argv[1], "check") != 0) {
        logtool_usage();
        return 2;
    }
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--from") == 0) {
            t.from = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--to") == 0) {
            t.to = strtoull(argv[i + 1], NULL, 10);
        } else {
            logtool_usage();
            return 2;
        }
    }
    return logtool_run(&t, argv[2]);
}
