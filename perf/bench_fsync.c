/* The device's durable-write floor: N concurrent streams, each a loop of one 4 KiB pwrite plus
 * fdatasync on its own preallocated file in a given directory (N = 2: a leader and a follower
 * sharing one disk, as on veth). Prints one key=value line: per-op latency and total rate. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FSYNC_STREAMS_MAX 16u
#define FSYNC_LAT_MAX (1u << 18) /* latencies kept per stream */
#define FSYNC_FILE_BYTES (64ull << 20)

struct fsync_stream {
    pthread_t thread;
    int fd;
    uint32_t size;
    uint64_t deadline_ns;
    uint64_t ops_max;
    uint64_t n;
    uint64_t *lat_ns;
    int err;
};

static uint64_t fsync_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *fsync_run(void *arg)
{
    struct fsync_stream *s = arg;
    uint8_t *buf = malloc(s->size);
    if (buf == NULL) {
        s->err = ENOMEM;
        return NULL;
    }
    memset(buf, 0xa5, s->size);
    uint64_t off = 0;
    while (s->n < s->ops_max && fsync_now_ns() < s->deadline_ns) {
        uint64_t t0 = fsync_now_ns();
        buf[0] = (uint8_t)s->n; /* every write carries new bytes */
        if (pwrite(s->fd, buf, s->size, (off_t)off) != (ssize_t)s->size || fdatasync(s->fd) != 0) {
            s->err = errno != 0 ? errno : EIO;
            break;
        }
        s->lat_ns[s->n % FSYNC_LAT_MAX] = fsync_now_ns() - t0;
        s->n++;
        off = (off + s->size) % FSYNC_FILE_BYTES;
    }
    free(buf);
    return NULL;
}

static int fsync_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int fsync_open(const char *dir, uint32_t i, int *fd)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench_fsync.%d.%u", dir, (int)getpid(), i);
    *fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (*fd < 0) {
        return -errno;
    }
    (void)unlink(path); /* gone when closed, whatever happens */
    /* Preallocated and written once: the measured syncs carry data, not extent changes. */
    int rc = posix_fallocate(*fd, 0, (off_t)FSYNC_FILE_BYTES);
    if (rc == 0 && fdatasync(*fd) != 0) {
        rc = errno;
    }
    return -rc;
}

static void fsync_usage(void)
{
    fprintf(stderr, "usage: bench_fsync --dir DIR [--streams N (2)] [--size BYTES (4096)]\n"
                    "                   [--secs S (2)] [--ops N per stream (unbounded)]\n");
}

struct fsync_opts {
    const char *dir;
    uint32_t streams;
    uint32_t size;
    double secs;
    uint64_t ops;
};

static int fsync_parse(int argc, char **argv, struct fsync_opts *o)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},  {"streams", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'}, {"secs", required_argument, NULL, 't'},
        {"ops", required_argument, NULL, 'o'},  {NULL, 0, NULL, 0}};
    *o = (struct fsync_opts){.streams = 2, .size = 4096, .secs = 2.0, .ops = UINT64_MAX};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'n':
            o->streams = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->size = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            o->secs = strtod(optarg, NULL);
            break;
        case 'o':
            o->ops = strtoull(optarg, NULL, 10);
            break;
        default:
            return -EINVAL;
        }
    }
    if (o->dir == NULL || o->streams == 0 || o->streams > FSYNC_STREAMS_MAX || o->size == 0 ||
        o->size > (1u << 20) || !(o->secs > 0 && o->secs <= 600) || o->ops == 0) {
        return -EINVAL;
    }
    return 0;
}

/* Every stream's latencies merged: quantiles over all operations. */
static void fsync_report(const struct fsync_opts *o, struct fsync_stream *s, double secs)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < o->streams; i++) {
        total += s[i].n < FSYNC_LAT_MAX ? s[i].n : FSYNC_LAT_MAX;
    }
    uint64_t *all = calloc(total + 1, sizeof(*all));
    uint64_t k = 0;
    uint64_t ops = 0;
    for (uint32_t i = 0; i < o->streams && all != NULL; i++) {
        uint64_t kept = s[i].n < FSYNC_LAT_MAX ? s[i].n : FSYNC_LAT_MAX;
        memcpy(all + k, s[i].lat_ns, kept * sizeof(*all));
        k += kept;
        ops += s[i].n;
    }
    if (all != NULL && k != 0) {
        qsort(all, k, sizeof(*all), fsync_cmp);
    }
    double p50 = all != NULL && k != 0 ? (double)all[k / 2] / 1e3 : 0;
    double p99 = all != NULL && k != 0 ? (double)all[(k * 99) / 100] / 1e3 : 0;
    printf("bench_fsync: streams=%u size=%u ops=%" PRIu64 " secs=%.2f ops_s=%.0f p50_us=%.1f "
           "p99_us=%.1f\n",
           o->streams, o->size, ops, secs, secs > 0 ? (double)ops / secs : 0, p50, p99);
    free(all);
}

int main(int argc, char **argv)
{
    struct fsync_opts o;
    if (fsync_parse(argc, argv, &o) != 0) {
        fsync_usage();
        return 2;
    }
    struct fsync_stream s[FSYNC_STREAMS_MAX];
    memset(s, 0, sizeof(s));
    for (uint32_t i = 0; i < o.streams; i++) {
        int rc = fsync_open(o.dir, i, &s[i].fd);
        s[i].lat_ns = calloc(FSYNC_LAT_MAX, sizeof(uint64_t));
        if (rc != 0 || s[i].lat_ns == NULL) {
            fprintf(stderr, "bench_fsync: %s: %s\n", o.dir, strerror(rc != 0 ? -rc : ENOMEM));
            return 1;
        }
    }
    uint64_t t0 = fsync_now_ns();
    for (uint32_t i = 0; i < o.streams; i++) {
        s[i].size = o.size;
        s[i].ops_max = o.ops;
        s[i].deadline_ns = t0 + (uint64_t)(o.secs * 1e9);
        if (pthread_create(&s[i].thread, NULL, fsync_run, &s[i]) != 0) {
            fprintf(stderr, "bench_fsync: cannot start stream %u\n", i);
            return 1;
        }
    }
    int err = 0;
    for (uint32_t i = 0; i < o.streams; i++) {
        (void)pthread_join(s[i].thread, NULL);
        err = err != 0 ? err : s[i].err;
    }
    double secs = (double)(fsync_now_ns() - t0) / 1e9;
    if (err != 0) {
        fprintf(stderr, "bench_fsync: write+fdatasync in %s: %s\n", o.dir, strerror(err));
        return 1;
    }
    fsync_report(&o, s, secs);
    for (uint32_t i = 0; i < o.streams; i++) {
        close(s[i].fd);
        free(s[i].lat_ns);
    }
    return 0;
}
