/* Fault injection on the real driver: EIO and ENOSPC at the io_uring completion, and a really
 * full disk (a small tmpfs mounted in a private mount namespace). Each must give a clear error,
 * no acknowledgement of what failed, and no further appends. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>

#include "disk_test_util.h"

static char dir[DT_PATH_MAX];

static void setup(void)
{
    cr_assert_eq(dt_mkdtemp(dir), 0);
}

static void teardown(void)
{
    dt_rmtree(dir);
}

TestSuite(disk_fault, .init = setup, .fini = teardown, .timeout = 60);

static struct disk_log *open_small(const char *d)
{
    struct disk_config c;
    struct ordo_errmsg err = {{0}};
    int rc;
    dt_config(&c, d);
    c.segment_bytes = 128u << 10;
    c.batch_bytes_max = 16u << 10;
    c.entry_len_max = 4096;
    struct disk_log *log = disk_log_open(&c, &rc, &err);
    cr_assert_not_null(log, "open: %d %s", rc, err.text);
    return log;
}

static int append_one(struct disk_log *log, uint64_t index, uint32_t len)
{
    static uint8_t buf[4096];
    struct msg_entry e;
    dt_entry(&e, buf, index, 1, len);
    return disk_log_append(log, &e, 1);
}

static void injected(enum disk_fault kind, int inject, int err)
{
    struct disk_log *log = open_small(dir);
    cr_assert_eq(append_one(log, 1, 100), 0);
    cr_assert_eq(dt_wait_log(log, 1), 0);
    disk_log_fault_set(log, kind, inject);
    cr_assert_eq(append_one(log, 2, 100), 0);
    cr_assert_eq(dt_wait_log(log, 2), err);
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_eq(b.index_durable, 1, "a failed write was acknowledged");
    cr_assert_eq(disk_log_error(log), err);
    cr_assert_eq(append_one(log, 3, 100), ORDO_ESTOPPED);
    cr_assert_eq(disk_log_poll(log, NULL), err, "the error must stay reported");
    disk_log_close(log);
}

Test(disk_fault, eio_on_write)
{
    injected(DISK_FAULT_WRITE, -EIO, -EIO);
}

Test(disk_fault, enospc_on_write)
{
    injected(DISK_FAULT_WRITE, -ENOSPC, -ENOSPC);
}

Test(disk_fault, eio_on_fdatasync)
{
    injected(DISK_FAULT_SYNC, -EIO, -EIO);
}

Test(disk_fault, short_write_is_failure)
{
    injected(DISK_FAULT_WRITE, 10, -EIO); /* 10 bytes of ~150 written */
}

Test(disk_fault, full_tmpfs)
{
    /* A private mount namespace: the tmpfs disappears with this test's process. */
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=512k") < 0) {
        cr_skip_test("cannot mount a tmpfs (needs CAP_SYS_ADMIN): %s", strerror(errno));
    }
    struct disk_log *log = open_small(dir);
    int rc = 0;
    uint64_t index = 1;
    uint64_t deadline = dt_now_ns() + DT_WAIT_NS;
    /* 512 KiB hold a few 128 KiB segments: appending must end in ENOSPC at a segment roll. */
    while (rc == 0 && dt_now_ns() < deadline && index < 100000) {
        rc = append_one(log, index, 3000);
        if (rc == 0) {
            index++;
        }
        if (rc == ORDO_ENOSPACE) {
            rc = 0;
        }
        int prc = disk_log_poll(log, NULL);
        if (prc < 0) {
            rc = prc;
        }
    }
    if (rc == 0 || rc == ORDO_ESTOPPED) {
        rc = dt_wait_log(log, index - 1);
    }
    cr_assert_eq(rc, -ENOSPC, "got %d (%s)", rc, ordo_strerror(rc));
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_lt(b.index_durable, index - 1, "entries past the full disk were acknowledged");
    cr_assert_eq(append_one(log, index, 10), ORDO_ESTOPPED);
    disk_log_close(log);
    /* Everything acknowledged is still there after a restart. */
    log = open_small(dir);
    struct disk_bounds b2;
    disk_log_bounds(log, &b2);
    cr_assert_geq(b2.index_last, b.index_durable);
    disk_log_close(log);
    umount2(dir, MNT_DETACH);
}
