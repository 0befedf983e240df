/* Recovery of the io_uring log from damaged files: every torn-tail length of the last record is
 * cut, damage anywhere else is refused with file and offset, hard state survives a torn write
 * of either slot. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "disk_test_util.h"
#include "drivers/disk/disk_record.h"
#include "drivers/disk/disk_seg.h"
#include "drivers/disk/disk_state.h"

static char dir[DT_PATH_MAX];

static void setup(void)
{
    cr_assert_eq(dt_mkdtemp(dir), 0);
}

static void teardown(void)
{
    dt_rmtree(dir);
}

static struct disk_log *open_log(const char *d, int *rc, struct ordo_errmsg *err)
{
    struct disk_config c;
    dt_config(&c, d);
    c.segment_bytes = 64u << 10;
    c.batch_bytes_max = 32u << 10;
    c.entry_len_max = 8u << 10;
    return disk_log_open(&c, rc, err);
}

static struct disk_log *open_ok(void)
{
    int rc;
    struct ordo_errmsg err = {{0}};
    struct disk_log *log = open_log(dir, &rc, &err);
    cr_assert_not_null(log, "open: %d %s", rc, err.text);
    return log;
}

/* Appends first..last of `term`, one write per `per_write` entries, each durable. */
static void append_durable(struct disk_log *log, uint64_t first, uint64_t last, uint64_t term,
                           uint32_t len, uint32_t per_write)
{
    static uint8_t bufs[64][1024];
    struct msg_entry e[64];
    cr_assert_leq(len, 1024);
    cr_assert_leq(per_write, 64);
    for (uint64_t i = first; i <= last;) {
        uint32_t n = 0;
        while (n < per_write && i <= last) {
            dt_entry(&e[n], bufs[n], i, term, len);
            n++;
            i++;
        }
        cr_assert_eq(disk_log_append(log, e, n), 0);
        int wrc = dt_wait_log(log, i - 1);
        cr_assert_eq(wrc, 0, "wait %lu: %s", (unsigned long)(i - 1), ordo_strerror(wrc));
    }
}

static void check_entries(struct disk_log *log, uint64_t first, uint64_t last, uint32_t len)
{
    static uint8_t buf[1u << 20];
    struct msg_entry out[256];
    for (uint64_t i = first; i <= last;) {
        int n = disk_log_read(log, i, 256, out, buf, sizeof(buf));
        cr_assert_gt(n, 0, "read %lu: %d", (unsigned long)i, n);
        for (int k = 0; k < n && i <= last; k++, i++) {
            cr_assert_eq(out[k].index, i);
            cr_assert_eq(out[k].len, len);
            cr_assert(dt_payload_ok(out[k].data, len, i));
        }
    }
}

static void seg_path(char *out, uint64_t first)
{
    char name[DISK_SEG_NAME_LEN];
    disk_seg_name(name, first);
    snprintf(out, DT_PATH_MAX + DISK_SEG_NAME_LEN, "%s/%s", dir, name);
}

static void file_patch(const char *path, uint64_t off, const void *p, size_t n)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void file_read(const char *path, uint64_t off, void *p, size_t n)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

TestSuite(disk_recover, .init = setup, .fini = teardown, .timeout = 60);

Test(disk_recover, reopen_keeps_everything)
{
    struct disk_log *log = open_ok();
    append_durable(log, 1, 500, 2, 200, 7); /* several segments */
    disk_log_close(log);
    log = open_ok();
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_eq(b.index_first, 1);
    cr_assert_eq(b.index_last, 500);
    cr_assert_eq(b.index_durable, 500);
    cr_assert_eq(b.term_last, 2);
    check_entries(log, 1, 500, 200);
    append_durable(log, 501, 510, 3, 200, 10);
    check_entries(log, 1, 510, 200);
    disk_log_close(log);
}

Test(disk_recover, every_torn_tail_length)
{
    const uint32_t len = 100;
    const uint64_t rec = disk_record_size(len);
    struct disk_log *log = open_ok();
    append_durable(log, 1, 5, 1, len, 1);
    disk_log_close(log);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, 1);
    uint64_t last_off = DISK_SEG_HDR_LEN + 4 * rec;
    uint8_t orig[256];
    uint8_t zero[256] = {0};
    file_read(path, last_off, orig, rec);
    /* Every strict prefix of the last record (its zero padding aside), as a crash mid-write
     * leaves it. */
    for (uint64_t keep = 0; keep < DISK_RECORD_HDR_LEN + len; keep++) {
        file_patch(path, last_off, orig, rec);
        file_patch(path, last_off + keep, zero, rec - keep);
        log = open_ok();
        struct disk_bounds b;
        disk_log_bounds(log, &b);
        cr_assert_eq(b.index_last, 4, "torn at %lu bytes: last %lu", (unsigned long)keep,
                     (unsigned long)b.index_last);
        check_entries(log, 1, 4, len);
        disk_log_close(log);
    }
    /* The log stays usable: the cut tail is rewritten by new appends. */
    log = open_ok();
    append_durable(log, 5, 9, 1, len, 2);
    disk_log_close(log);
    log = open_ok();
    check_entries(log, 1, 9, len);
    disk_log_close(log);
}

Test(disk_recover, torn_write_of_several_records)
{
    const uint32_t len = 64;
    const uint64_t rec = disk_record_size(len);
    struct disk_log *log = open_ok();
    append_durable(log, 1, 3, 1, len, 3);
    append_durable(log, 4, 9, 1, len, 6);
    disk_log_close(log);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, 1);
    /* The second write lost its first sector but not the records after it: still a tear of the
     * unfinished last write, as long as its final record did not survive. */
    uint8_t zero[512] = {0};
    file_patch(path, DISK_SEG_HDR_LEN + 3 * rec + 10, zero, 40);
    file_patch(path, DISK_SEG_HDR_LEN + 8 * rec, zero, rec);
    log = open_ok();
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_eq(b.index_last, 3);
    disk_log_close(log);
}

Test(disk_recover, middle_corruption_refused_with_file_and_offset)
{
    const uint32_t len = 64;
    const uint64_t rec = disk_record_size(len);
    struct disk_log *log = open_ok();
    append_durable(log, 1, 10, 1, len, 1);
    disk_log_close(log);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, 1);
    uint64_t off = DISK_SEG_HDR_LEN + 4 * rec; /* record 5 */
    uint8_t b;
    file_read(path, off + DISK_RECORD_HDR_LEN + 3, &b, 1);
    b ^= 0x10;
    file_patch(path, off + DISK_RECORD_HDR_LEN + 3, &b, 1);
    int rc = 0;
    struct ordo_errmsg err = {{0}};
    cr_assert_null(open_log(dir, &rc, &err));
    cr_assert_eq(rc, ORDO_ECORRUPT);
    char want[64];
    snprintf(want, sizeof(want), "offset %lu", (unsigned long)off);
    cr_assert_not_null(strstr(err.text, "log-00000000000000000001.seg"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, want), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "record index 5"), "%s", err.text);
}

Test(disk_recover, damage_inside_completed_last_write_refused)
{
    const uint32_t len = 64;
    const uint64_t rec = disk_record_size(len);
    struct disk_log *log = open_ok();
    append_durable(log, 1, 8, 1, len, 8); /* one write: its last record marks it complete */
    disk_log_close(log);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, 1);
    uint8_t b = 0xff;
    file_patch(path, DISK_SEG_HDR_LEN + 2 * rec + 20, &b, 1);
    int rc = 0;
    struct ordo_errmsg err = {{0}};
    cr_assert_null(open_log(dir, &rc, &err));
    cr_assert_eq(rc, ORDO_ECORRUPT);
    cr_assert_not_null(strstr(err.text, "completed write"), "%s", err.text);
}

Test(disk_recover, damage_in_older_segment_refused)
{
    struct disk_log *log = open_ok();
    append_durable(log, 1, 400, 1, 400, 8);
    disk_log_close(log);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, 1);
    /* The tail of an older segment: nothing may be cut there. */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    uint8_t rec[64];
    memset(rec, 0, sizeof(rec));
    uint64_t last_off = DISK_SEG_HDR_LEN + 100 * disk_record_size(400); /* inside the data */
    file_read(path, last_off, rec, 8);
    rec[0] ^= 1;
    file_patch(path, last_off, rec, 1);
    int rc = 0;
    struct ordo_errmsg err = {{0}};
    cr_assert_null(open_log(dir, &rc, &err));
    cr_assert_eq(rc, ORDO_ECORRUPT);
    cr_assert_not_null(strstr(err.text, "log-00000000000000000001.seg"), "%s", err.text);
}

Test(disk_recover, missing_segment_refused)
{
    struct disk_log *log = open_ok();
    append_durable(log, 1, 600, 1, 400, 8);
    disk_log_close(log);
    uint64_t firsts[64];
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int n = disk_seg_list(fd, 0, firsts, 64);
    close(fd);
    cr_assert_geq(n, 3);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, firsts[1]);
    cr_assert_eq(unlink(path), 0);
    int rc = 0;
    struct ordo_errmsg err = {{0}};
    cr_assert_null(open_log(dir, &rc, &err));
    cr_assert_eq(rc, ORDO_ECORRUPT);
    cr_assert_not_null(strstr(err.text, "missing segment"), "%s", err.text);
}

Test(disk_recover, truncate_survives_reopen)
{
    struct disk_log *log = open_ok();
    append_durable(log, 1, 300, 1, 300, 5);
    cr_assert_eq(disk_log_truncate(log, 77), 0);
    append_durable(log, 78, 90, 2, 300, 5);
    disk_log_close(log);
    log = open_ok();
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_eq(b.index_last, 90);
    cr_assert_eq(b.term_last, 2);
    check_entries(log, 1, 90, 300);
    disk_log_close(log);
}

Test(disk_recover, compaction_survives_reopen)
{
    struct disk_log *log = open_ok();
    append_durable(log, 1, 600, 1, 300, 8);
    cr_assert_eq(disk_log_compact(log, 400), 0);
    struct disk_bounds b1;
    disk_log_bounds(log, &b1);
    disk_log_close(log);
    log = open_ok();
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_eq(b.index_first, b1.index_first);
    cr_assert_gt(b.index_first, 1);
    cr_assert_eq(b.index_last, 600);
    check_entries(log, b.index_first, 600, 300);
    disk_log_close(log);
}

Test(disk_recover, snapshot_survives_reopen_and_keeps_newest)
{
    struct disk_log *log = open_ok();
    uint8_t data[3000];
    for (uint64_t k = 1; k <= 4; k++) {
        dt_payload(data, sizeof(data), k);
        struct disk_snap_meta m = {.last_index = 10 * k, .last_term = k, .len = sizeof(data)};
        cr_assert_eq(disk_log_snap_save(log, &m, data), 0);
    }
    cr_assert_eq(disk_log_compact(log, 40), 0);
    disk_log_close(log);
    log = open_ok();
    struct disk_snap_meta m;
    cr_assert_eq(disk_log_snap_latest(log, &m), 0);
    cr_assert_eq(m.last_index, 40);
    cr_assert_eq(disk_log_snap_read(log, 0, data, sizeof(data)), (int)sizeof(data));
    cr_assert(dt_payload_ok(data, sizeof(data), 4));
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_eq(b.index_first, 41);
    disk_log_close(log);
    int snaps = 0;
    for (uint64_t k = 1; k <= 4; k++) {
        char p[DT_PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/snap-%020lu-%020lu.snap", dir, (unsigned long)(10 * k),
                 (unsigned long)k);
        snaps += access(p, F_OK) == 0;
    }
    cr_assert_eq(snaps, 2, "snapshots_keep = 2");
}

/* Hard state: a torn write of either slot leaves the old value (or the new one when whole). */
static void hard_state_torn(uint32_t saves_before)
{
    struct disk_log *log = open_ok();
    struct disk_hard_state hs;
    for (uint32_t i = 1; i <= saves_before; i++) {
        hs = (struct disk_hard_state){10 + i, i};
        cr_assert_eq(disk_log_hard_state_save(log, &hs), 0);
    }
    disk_log_close(log);
    struct disk_hard_state old = {10 + saves_before, saves_before};
    struct disk_hard_state next = {99, 7};
    uint64_t seq = saves_before + 1;
    uint8_t slot[DISK_STATE_SLOT_LEN];
    uint8_t prev[DISK_STATE_SLOT_LEN];
    disk_state_encode(slot, seq, &next);
    char path[DT_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, DISK_STATE_FILE);
    uint64_t off = (seq & 1u) ? DISK_STATE_SLOT1_OFF : 0;
    file_read(path, off, prev, sizeof(prev));
    for (uint32_t keep = 0; keep <= DISK_STATE_SLOT_LEN; keep++) {
        file_patch(path, off, prev, sizeof(prev));
        file_patch(path, off, slot, keep);
        log = open_ok();
        cr_assert_eq(disk_log_hard_state_load(log, &hs), 0);
        if (keep == DISK_STATE_SLOT_LEN) {
            cr_assert_eq(hs.term, next.term);
            cr_assert_eq(hs.voted_for, next.voted_for);
        } else {
            cr_assert(hs.term == old.term || hs.term == next.term, "torn at %u", keep);
            cr_assert_eq(hs.term, old.term, "torn slot accepted at %u bytes", keep);
            cr_assert_eq(hs.voted_for, old.voted_for);
        }
        disk_log_close(log);
    }
}

Test(disk_recover, hard_state_torn_slot0)
{
    hard_state_torn(1); /* next save (seq 2) goes to slot 0 */
}

Test(disk_recover, hard_state_torn_slot1)
{
    hard_state_torn(2); /* next save (seq 3) goes to slot 1 */
}

Test(disk_recover, hard_state_both_slots_damaged_refused)
{
    struct disk_log *log = open_ok();
    struct disk_hard_state hs = {5, 2};
    cr_assert_eq(disk_log_hard_state_save(log, &hs), 0);
    disk_log_close(log);
    char path[DT_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, DISK_STATE_FILE);
    uint8_t junk[4] = {1, 2, 3, 4};
    file_patch(path, 20, junk, 4);
    file_patch(path, DISK_STATE_SLOT1_OFF + 20, junk, 4);
    int rc = 0;
    struct ordo_errmsg err = {{0}};
    cr_assert_null(open_log(dir, &rc, &err));
    cr_assert_eq(rc, ORDO_ECORRUPT);
    cr_assert_not_null(strstr(err.text, DISK_STATE_FILE), "%s", err.text);
}

/* The log tool (apps/ordo-logtool, path in ORDO_LOGTOOL) checks without changing anything. */
static int run_logtool(const char *cmd, char *out, size_t out_len)
{
    const char *tool = getenv("ORDO_LOGTOOL");
    char line[DT_PATH_MAX + 256];
    snprintf(line, sizeof(line), "%s %s %s 2>&1", tool, cmd, dir);
    FILE *p = popen(line, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(disk_recover, logtool_checks_and_names_damage)
{
    if (getenv("ORDO_LOGTOOL") == NULL) {
        cr_skip_test("ORDO_LOGTOOL not set (run through meson test)");
    }
    struct disk_log *log = open_ok();
    append_durable(log, 1, 20, 3, 64, 1);
    disk_log_close(log);
    static char out[1u << 16];
    cr_assert_eq(run_logtool("check", out, sizeof(out)), 0, "%s", out);
    cr_assert_not_null(strstr(out, "OK: 20 records"), "%s", out);
    cr_assert_eq(run_logtool("print", out, sizeof(out)), 0, "%s", out);
    cr_assert_not_null(strstr(out, "index 20 term 3 type batch len 64"), "%s", out);
    char path[DT_PATH_MAX + DISK_SEG_NAME_LEN];
    seg_path(path, 1);
    uint8_t b = 0x55;
    file_patch(path, DISK_SEG_HDR_LEN + 5 * disk_record_size(64) + 50, &b, 1);
    cr_assert_eq(run_logtool("check", out, sizeof(out)), 1, "%s", out);
    cr_assert_not_null(strstr(out, "DAMAGED: log-00000000000000000001.seg: offset"), "%s", out);
}

/* disk_log_writing tells the sequencer whether a write is in flight (group commit). */
Test(disk_recover, writing_is_true_only_while_a_write_is_in_flight)
{
    struct disk_log *log = open_ok();
    cr_assert_not(disk_log_writing(log), "nothing staged, nothing written");
    uint8_t buf[64];
    struct msg_entry e;
    dt_entry(&e, buf, 1, 1, sizeof(buf));
    cr_assert_eq(disk_log_append(log, &e, 1), 0);
    cr_assert_not(disk_log_writing(log), "staged, not yet submitted");
    uint64_t durable = 0;
    cr_assert_geq(disk_log_poll(log, &durable), 0);
    cr_assert(disk_log_writing(log), "the poll submitted the write; completions come later");
    cr_assert_eq(dt_wait_log(log, 1), 0);
    cr_assert_not(disk_log_writing(log), "durable: no write in flight");
    disk_log_close(log);
}
