/* A real crash test: a child appends through io_uring and reports each durable index to the
 * parent over a pipe; the parent SIGKILLs it at random moments, reopens the log and checks that
 * every index reported durable is present and intact, and that the log takes new appends. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "disk_test_util.h"

#define CRASH_ROUNDS 60
#define CRASH_LEN_MAX 64u

static uint64_t crash_rng;

static uint64_t crash_rand(void)
{
    crash_rng ^= crash_rng << 13;
    crash_rng ^= crash_rng >> 7;
    crash_rng ^= crash_rng << 17;
    return crash_rng;
}

static uint32_t crash_len(uint64_t index)
{
    return (uint32_t)((index * 2654435761u) % CRASH_LEN_MAX);
}

static void crash_config(struct disk_config *c, const char *dir)
{
    dt_config(c, dir);
    c->segment_bytes = 256u << 10;
    c->batch_bytes_max = 64u << 10;
    c->entry_len_max = 4096;
    /* Never compacted: room for every entry 60 rounds can write on a fast device (tmpfs
     * makes about 1,600 entries durable per 10 ms round), with a wide margin. A full index
     * would stall the child (ORDO_ENOSPACE) and fail the last append. */
    c->index_cap = 1u << 20;
    c->segments_max = 1024;
}

/* Child: append forever in batches of 1..32 entries, report every new durable index. */
static void crash_child(const char *dir, int wfd, uint64_t term, uint64_t seed)
{
    struct disk_config c;
    struct ordo_errmsg err;
    int rc;
    /* Never outlive the test, whatever happens to it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    crash_config(&c, dir);
    struct disk_log *log = disk_log_open(&c, &rc, &err);
    if (log == NULL) {
        _exit(3);
    }
    static uint8_t bufs[32][CRASH_LEN_MAX];
    struct msg_entry e[32];
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    uint64_t next = b.index_last + 1;
    uint64_t reported = b.index_durable;
    crash_rng = seed | 1u;
    for (;;) {
        uint32_t n = 1 + (uint32_t)(crash_rand() % 16);
        for (uint32_t i = 0; i < n; i++) {
            dt_entry(&e[i], bufs[i], next + i, term, crash_len(next + i));
        }
        /* Keep a bounded amount ahead of durability, as Raft's pipeline does. */
        rc = next - 1 - reported > 64 ? ORDO_ENOSPACE : disk_log_append(log, e, n);
        if (rc == 0) {
            next += n;
        } else if (rc != ORDO_ENOSPACE) {
            _exit(4);
        }
        uint64_t durable = 0;
        if (disk_log_poll(log, &durable) < 0) {
            _exit(5);
        }
        if (durable > reported) {
            reported = durable;
            if (write(wfd, &durable, sizeof(durable)) != (ssize_t)sizeof(durable)) {
                _exit(6);
            }
        }
    }
}

/* Reads reports until the kill moment (a count of reports, or a delay when count is 0). */
static uint64_t crash_watch(pid_t pid, int rfd, uint32_t reports, uint64_t delay_ns)
{
    uint64_t max = 0;
    uint64_t v;
    uint64_t deadline = dt_now_ns() + (reports == 0 ? delay_ns : DT_WAIT_NS);
    uint32_t got = 0;
    while (dt_now_ns() < deadline && (reports == 0 || got < reports)) {
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        int ms = (int)((deadline - dt_now_ns()) / 1000000u);
        if (poll(&p, 1, ms) <= 0) {
            continue;
        }
        if (read(rfd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
            break;
        }
        max = v > max ? v : max;
        got++;
    }
    kill(pid, SIGKILL);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child exited on its own: %d",
              status);
    /* Everything reported before the kill counts: drain the pipe to its end. */
    while (read(rfd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
        max = v > max ? v : max;
    }
    return max;
}

static void crash_verify(const char *dir, uint64_t durable_max, uint64_t *last)
{
    struct disk_config c;
    struct ordo_errmsg err = {{0}};
    int rc;
    crash_config(&c, dir);
    struct disk_log *log = disk_log_open(&c, &rc, &err);
    cr_assert_not_null(log, "reopen: %s", err.text);
    struct disk_bounds b;
    disk_log_bounds(log, &b);
    cr_assert_geq(b.index_last, durable_max, "lost acknowledged entries: last %lu < %lu",
                  (unsigned long)b.index_last, (unsigned long)durable_max);
    static uint8_t buf[1u << 20];
    struct msg_entry out[512];
    for (uint64_t i = 1; i <= b.index_last;) {
        int n = disk_log_read(log, i, 512, out, buf, sizeof(buf));
        cr_assert_gt(n, 0, "read %lu: %d", (unsigned long)i, n);
        for (int k = 0; k < n; k++, i++) {
            cr_assert_eq(out[k].index, i);
            cr_assert_eq(out[k].len, crash_len(i));
            cr_assert(dt_payload_ok(out[k].data, out[k].len, i), "entry %lu damaged",
                      (unsigned long)i);
        }
    }
    *last = b.index_last;
    disk_log_close(log);
}

Test(disk_crash, sigkill_loses_nothing_acknowledged, .timeout = 120)
{
    char dir[DT_PATH_MAX];
    cr_assert_eq(dt_mkdtemp(dir), 0);
    uint64_t seed = dt_now_ns();
    crash_rng = seed | 1u;
    cr_log_info("seed %lu", (unsigned long)seed);
    uint64_t durable_all = 0;
    uint64_t last = 0;
    int kills = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        uint64_t child_seed = crash_rand();
        uint32_t reports = (uint32_t)(crash_rand() % 4 == 0 ? 0 : 1 + crash_rand() % 12);
        uint64_t delay_ns = crash_rand() % 10000000u;
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(dir, p[1], (uint64_t)round + 1, child_seed);
        }
        close(p[1]);
        uint64_t durable = crash_watch(pid, p[0], reports, delay_ns);
        close(p[0]);
        kills++;
        durable_all = durable > durable_all ? durable : durable_all;
        crash_verify(dir, durable_all, &last);
    }
    cr_assert_geq(kills, 50);
    cr_assert_gt(last, 0, "no entry ever became durable");
    /* Usable afterwards: one more append from the parent. */
    struct disk_config c;
    struct ordo_errmsg err = {{0}};
    int rc;
    crash_config(&c, dir);
    struct disk_log *log = disk_log_open(&c, &rc, &err);
    cr_assert_not_null(log, "%s", err.text);
    uint8_t buf[CRASH_LEN_MAX];
    struct msg_entry e;
    dt_entry(&e, buf, last + 1, CRASH_ROUNDS + 1, crash_len(last + 1));
    rc = disk_log_append(log, &e, 1);
    cr_assert_eq(rc, 0, "append after %d kills at index %lu: %s", kills, (unsigned long)(last + 1),
                 ordo_strerror(rc));
    cr_assert_eq(dt_wait_log(log, last + 1), 0);
    disk_log_close(log);
    cr_log_info("%d kills, %lu entries", kills, (unsigned long)last);
    dt_rmtree(dir);
}
