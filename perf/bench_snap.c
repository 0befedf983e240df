/* Benchmark: the pause a snapshot costs the apply lcore, background (fork: the runtime's
 * rt_snap_start) against inline (serialise + write + fsync on the lcore), with N keys in
 * the key-value store and a full session table. While the forked writer runs, the parent
 * keeps overwriting keys (copy-on-write faults) and reports its slowest put. Not a test:
 * prints figures, never fails on speed.
 * Usage: bench_snap [keys (default 100000)] [dir (default /tmp)] [--eal] [--log] */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "drivers/disk/disk.h"
#include "drivers/disk/disk_snap.h"
#include "engine/mem.h"
#include "engine/sess.h"
#include "engine/sm.h"
#include "engine/sm_kv.h"

#define BENCH_KEY_LEN 16u
#define BENCH_VALUE_LEN 64u
#define BENCH_SESSIONS 4096u
#define BENCH_ROUNDS 5u

struct bench {
    struct sm *sm;
    struct sess_table *sess;
    struct disk_snap snap;
    uint64_t keys;
    uint64_t index;
    uint64_t seed;
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void bench_die(const char *what, int rc)
{
    fprintf(stderr, "bench_snap: %s: %s\n", what, ordo_strerror(rc));
    exit(1);
}

/* Puts key number i with a value derived from round. */
static void bench_put(struct bench *b, uint64_t i, uint64_t round)
{
    char key[BENCH_KEY_LEN + 1];
    uint8_t value[BENCH_VALUE_LEN];
    uint8_t args[2u + BENCH_KEY_LEN + 4u + BENCH_VALUE_LEN];
    uint8_t out[64];
    uint32_t out_len = 0;
    snprintf(key, sizeof(key), "key-%011lu", (unsigned long)i);
    memset(value, (int)(round & 0xff), sizeof(value));
    memcpy(value, &round, sizeof(round));
    int n = sm_kv_encode_put(args, sizeof(args), key, BENCH_KEY_LEN, value, BENCH_VALUE_LEN);
    if (n <= 0 ||
        sm_apply(b->sm, SM_KV_OP_PUT, args, (uint32_t)n, out, sizeof(out), &out_len) < 0) {
        bench_die("put", -EINVAL);
    }
    b->index++;
}

static void bench_fill(struct bench *b)
{
    struct sm_kv_config kc = {.value_max = 256, .capacity_hint = (uint32_t)b->keys};
    struct sess_config sc = {.sessions_max = BENCH_SESSIONS, .reply_max = 256};
    if (sm_kv_create(&kc, &b->sm) != 0 || sess_create(&sc, &b->sess) != 0) {
        bench_die("create", -ENOMEM);
    }
    for (uint64_t i = 0; i < b->keys; i++) {
        bench_put(b, i, 0);
    }
    for (uint64_t c = 1; c <= BENCH_SESSIONS; c++) {
        (void)sess_record(b->sess, c, 1, b->index, MSG_STATUS_OK, NULL, 0);
    }
}

/* Serialises sessions + store and saves them (tmp, fsync, rename, directory fsync). */
static int bench_write(struct bench *b, uint64_t len)
{
    struct sm_mem_sink sink = {0};
    struct disk_snap_meta m;
    memset(&m, 0, sizeof(m));
    m.last_index = b->index;
    m.last_term = 1;
    m.len = len;
    int rc = sess_snapshot_write(b->sess, sm_mem_sink_write, &sink);
    if (rc == 0) {
        rc = sm_snapshot_write(b->sm, sm_mem_sink_write, &sink);
    }
    if (rc == 0) {
        rc = disk_snap_save(&b->snap, &m, sink.data);
    }
    sm_mem_sink_free(&sink);
    return rc;
}

static uint64_t bench_len(const struct bench *b)
{
    return sess_snapshot_size(b->sess) + sm_snapshot_size(b->sm);
}

/* One background snapshot: the fork pause, the writer's time, and the parent's puts. */
static void bench_fork_round(struct bench *b, uint64_t round, uint64_t *pause_ns, uint64_t *cpu_ns)
{
    uint8_t digest[MSG_DIGEST_LEN];
    uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t t0 = now_ns();
    uint64_t len = bench_len(b);
    sm_digest(b->sm, digest);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(bench_write(b, len) == 0 ? 0 : 1);
    }
    uint64_t t1 = now_ns();
    *cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (pid < 0) {
        bench_die("fork", -errno);
    }
    *pause_ns = t1 - t0;
    uint64_t puts = 0;
    uint64_t put_max = 0;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        uint64_t p0 = now_ns();
        bench_put(b, (b->seed = b->seed * 6364136223846793005ull + 1) % b->keys, round);
        put_max = now_ns() - p0 > put_max ? now_ns() - p0 : put_max;
        puts++;
    }
    uint64_t t2 = now_ns();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        bench_die("writer", -EIO);
    }
    printf("  fork: pause %8.3f ms (cpu %.3f ms) | writer %7.1f ms | %lu bytes | parent puts "
           "meanwhile %lu,"
           " slowest %.1f us\n",
           (double)*pause_ns / 1e6, (double)*cpu_ns / 1e6, (double)(t2 - t1) / 1e6,
           (unsigned long)len, (unsigned long)puts, (double)put_max / 1e3);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Optional: an EAL with 512 MiB of memfd-backed memory, as a replica has (shared mappings,
 * so fork() does not copy them). */
static void bench_eal(void)
{
    static char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=bench-snap-%d", (int)getpid());
    static char *eal_argv[] = {"bench_snap", "--no-pci",       "--no-huge", "-m", "512",
                               prefix,       "--no-telemetry", "-l",        "0",  NULL};
    if (rte_eal_init(9, eal_argv) < 0) {
        bench_die("rte_eal_init", -rte_errno);
    }
}

/* Optional: the replica's io_uring log in a subdirectory, its two write buffers registered
 * (pinned) and written, as in a running replica. */
static struct disk_log *bench_log(const char *dir)
{
    char sub[300];
    struct disk_config dc;
    struct ordo_errmsg err = {{0}};
    int rc = 0;
    snprintf(sub, sizeof(sub), "%s/log", dir);
    disk_config_default(&dc);
    dc.dir = sub;
    struct disk_log *log = disk_log_open(&dc, &rc, &err);
    if (log == NULL) {
        bench_die(err.text, rc);
    }
    static uint8_t data[4000];
    for (uint64_t i = 1; i <= 4000; i++) {
        struct msg_entry e = {.index = i, .term = 1, .type = MSG_ENTRY_BATCH, .len = 4000};
        e.data = data;
        uint64_t durable = 0;
        if (disk_log_append(log, &e, 1) != 0 || disk_log_poll(log, &durable) < 0) {
            (void)disk_log_sync(log);
        }
    }
    (void)disk_log_sync(log);
    if (getenv("BENCH_SNAP_FORK_ALL") == NULL && disk_log_fork_exclude(log) != 0) {
        bench_die("disk_log_fork_exclude", -errno);
    }
    return log;
}

int main(int argc, char **argv)
{
    struct bench b = {.keys = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000u, .seed = 7};
    const char *base = argc > 2 ? argv[2] : "/tmp";
    int with_log = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--eal") == 0) {
            bench_eal();
        } else if (strcmp(argv[i], "--log") == 0) {
            with_log = 1;
        } else {
            bench_die(argv[i], -EINVAL);
        }
    }
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/bench-snap-XXXXXX", base);
    if (b.keys == 0 || mkdtemp(dir) == NULL) {
        bench_die("keys > 0 and a writable directory", -EINVAL);
    }
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct ordo_errmsg err = {{0}};
    if (dirfd < 0 || disk_snap_open(&b.snap, dirfd, 2, &err) != 0) {
        bench_die("snapshot directory", -EIO);
    }
    struct disk_log *log = with_log ? bench_log(dir) : NULL;
    uint64_t f0 = now_ns();
    bench_fill(&b);
    printf("bench_snap: %lu keys (%u-byte keys, %u-byte values), %u sessions, filled in %.0f ms;"
           " snapshot %lu bytes in %s\n",
           (unsigned long)b.keys, BENCH_KEY_LEN, BENCH_VALUE_LEN, BENCH_SESSIONS,
           (double)(now_ns() - f0) / 1e6, (unsigned long)bench_len(&b), dir);
    uint64_t inline_ns[BENCH_ROUNDS];
    uint64_t fork_ns[BENCH_ROUNDS];
    uint64_t cpu_ns[BENCH_ROUNDS];
    for (uint32_t r = 0; r < BENCH_ROUNDS; r++) {
        uint64_t t0 = now_ns();
        if (bench_write(&b, bench_len(&b)) != 0) {
            bench_die("inline snapshot", -EIO);
        }
        inline_ns[r] = now_ns() - t0;
        printf("  inline: pause %8.3f ms\n", (double)inline_ns[r] / 1e6);
        bench_fork_round(&b, r + 1, &fork_ns[r], &cpu_ns[r]);
    }
    qsort(inline_ns, BENCH_ROUNDS, sizeof(uint64_t), cmp_u64);
    qsort(fork_ns, BENCH_ROUNDS, sizeof(uint64_t), cmp_u64);
    qsort(cpu_ns, BENCH_ROUNDS, sizeof(uint64_t), cmp_u64);
    printf("summary: keys %lu | fork pause median %.3f ms max %.3f ms (cpu median %.3f ms max "
           "%.3f ms) | inline pause median %.1f ms max %.1f ms | ratio inline/fork %.0fx\n",
           (unsigned long)b.keys, (double)fork_ns[BENCH_ROUNDS / 2] / 1e6,
           (double)fork_ns[BENCH_ROUNDS - 1] / 1e6, (double)cpu_ns[BENCH_ROUNDS / 2] / 1e6,
           (double)cpu_ns[BENCH_ROUNDS - 1] / 1e6, (double)inline_ns[BENCH_ROUNDS / 2] / 1e6,
           (double)inline_ns[BENCH_ROUNDS - 1] / 1e6,
           (double)inline_ns[BENCH_ROUNDS / 2] / (double)fork_ns[BENCH_ROUNDS / 2]);
    disk_snap_close(&b.snap);
    disk_log_close(log);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)system(cmd);
    sess_destroy(b.sess);
    sm_destroy(b.sm);
    return 0;
}
