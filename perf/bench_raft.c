/* Commands ordered per second by the Raft core alone: three replicas in one process, a network
 * that delivers at once and disks that persist at once, at batch sizes 1, 16 and 256. Prints
 * ratios against a baseline measured in the same run (copying each batch once per replica,
 * the least any replication must do), to show the core is never the bottleneck. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/raft.h"

#define BENCH_NODES 3u
#define BENCH_QUEUE 8192u
#define BENCH_CMD_BYTES 16u
#define BENCH_SECONDS 1.0

/* A message in flight: the header and entry descriptors are copied (the sender's arrays move
 * when it steps); entry data stays in the sender's log, which nothing truncates here. */
struct bench_msg {
    uint32_t to;
    struct msg m;
    struct msg_entry ents[MSG_ENTRIES_MAX];
};

struct bench {
    struct raft *r[BENCH_NODES + 1];
    struct bench_msg *q;
    uint32_t head;
    uint32_t tail;
    uint64_t now;
    uint64_t applied; /* entries applied on replica 1 */
};

static void bench_step(struct bench *b, uint32_t id, struct raft_event *ev);

static void bench_handle(struct bench *b, uint32_t id, const struct raft_update *up)
{
    for (uint32_t i = 0; i < up->n_msgs; i++) {
        if (b->tail - b->head == BENCH_QUEUE) {
            fprintf(stderr, "bench_raft: queue overflow\n");
            exit(1);
        }
        struct bench_msg *x = &b->q[b->tail++ % BENCH_QUEUE];
        x->to = up->msgs[i].to;
        x->m = up->msgs[i].msg;
        if (x->m.hdr.type == MSG_APPEND_ENTRIES && x->m.u.append.n_entries > 0) {
            memcpy(x->ents, x->m.u.append.entries, x->m.u.append.n_entries * sizeof(x->ents[0]));
            x->m.u.append.entries = x->ents;
        }
    }
    if (id == 1) {
        b->applied += up->n_committed;
    }
    if (up->n_entries > 0) {
        const struct msg_entry *last = &up->entries[up->n_entries - 1];
        struct raft_event ev = {.type = RAFT_EV_PERSISTED};
        ev.u.persisted.index = last->index;
        ev.u.persisted.term = last->term;
        bench_step(b, id, &ev);
    }
}

static void bench_step(struct bench *b, uint32_t id, struct raft_event *ev)
{
    struct raft_update up;
    ev->now_ms = b->now;
    int rc = raft_step(b->r[id], ev, &up);
    if (rc < 0 && ev->type != RAFT_EV_RECEIVE) {
        fprintf(stderr, "bench_raft: event %u failed: %d\n", ev->type, rc);
        exit(1);
    }
    bench_handle(b, id, &up);
}

static void bench_drain(struct bench *b)
{
    while (b->head != b->tail) {
        /* The slot stays reserved until its step is done (head moves after it). */
        struct bench_msg *x = &b->q[b->head % BENCH_QUEUE];
        struct raft_event ev = {.type = RAFT_EV_RECEIVE};
        ev.u.receive.msg = &x->m;
        bench_step(b, x->to, &ev);
        b->head++;
    }
}

static void bench_start(struct bench *b)
{
    memset(b, 0, sizeof(*b));
    b->q = calloc(BENCH_QUEUE, sizeof(*b->q));
    struct msg_config c = {0};
    for (uint32_t i = 1; i <= BENCH_NODES; i++) {
        c.servers[c.n].id = i;
        c.servers[c.n].role = MSG_ROLE_VOTER;
        c.n++;
    }
    for (uint32_t i = 1; i <= BENCH_NODES; i++) {
        struct raft_config cfg = {0};
        cfg.id = i;
        cfg.prng_seed = i;
        cfg.election_timeout_ms = 1000;
        cfg.pre_vote = 1;
        cfg.check_quorum = 1;
        cfg.append_bytes_max = 64u << 10;
        cfg.snapshot_threshold_bytes = UINT64_MAX;
        /* bench_compact runs every 16384 proposals: 64 MiB of entries at batch 256. */
        cfg.log_bytes_max = 128u << 20;
        struct raft_restore rs = {0};
        rs.bootstrap = c;
        if (b->q == NULL || raft_create(&cfg, &rs, &b->r[i]) != 0) {
            fprintf(stderr, "bench_raft: setup failed\n");
            exit(1);
        }
    }
    b->now = 5000; /* past every election timeout: replica 1 campaigns first */
    struct raft_event tick = {.type = RAFT_EV_TICK};
    bench_step(b, 1, &tick);
    bench_drain(b);
    if (raft_role_get(b->r[1]) != RAFT_LEADER) {
        fprintf(stderr, "bench_raft: no leader\n");
        exit(1);
    }
}

/* Compacts every replica at its commit index, as a replica taking snapshots would. */
static void bench_compact(struct bench *b)
{
    static const uint8_t state[8];
    for (uint32_t i = 1; i <= BENCH_NODES; i++) {
        struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN};
        ev.u.snapshot_taken.index = raft_commit_index(b->r[i]);
        ev.u.snapshot_taken.data = state;
        ev.u.snapshot_taken.len = sizeof(state);
        bench_step(b, i, &ev);
    }
}

/* --cpu: time is this process's CPU time, for figures on a machine shared with other load. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Commands per second ordered and applied through the core at this batch size. */
static double bench_core(uint32_t batch)
{
    struct bench b;
    bench_start(&b);
    uint32_t len = batch * BENCH_CMD_BYTES;
    uint8_t *data = calloc(1, len);
    uint64_t proposed = 0;
    double t0 = bench_now();
    double t1 = t0;
    while (t1 - t0 < BENCH_SECONDS) {
        for (uint32_t k = 0; k < 64; k++) {
            struct raft_event ev = {.type = RAFT_EV_PROPOSE};
            ev.u.propose.data = data;
            ev.u.propose.len = len;
            bench_step(&b, 1, &ev);
            proposed++;
        }
        bench_drain(&b);
        if ((proposed & 16383) == 0) {
            bench_compact(&b);
        }
        t1 = bench_now();
    }
    double cmds = (double)b.applied * batch / (t1 - t0);
    for (uint32_t i = 1; i <= BENCH_NODES; i++) {
        raft_destroy(b.r[i]);
    }
    free(b.q);
    free(data);
    return cmds;
}

/* Baseline: each batch copied once per replica, nothing else. */
static double bench_baseline(uint32_t batch)
{
    uint32_t len = batch * BENCH_CMD_BYTES;
    uint8_t *src = calloc(1, len);
    uint8_t *dst = calloc(BENCH_NODES, len);
    uint64_t n = 0;
    double t0 = bench_now();
    double t1 = t0;
    while (t1 - t0 < BENCH_SECONDS) {
        for (uint32_t k = 0; k < 1024; k++) {
            src[0] = (uint8_t)n;
            for (uint32_t i = 0; i < BENCH_NODES; i++) {
                memcpy(dst + (size_t)i * len, src, len);
            }
            n++;
        }
        __asm__ volatile("" : : "r"(dst) : "memory");
        t1 = bench_now();
    }
    free(src);
    free(dst);
    return (double)n * batch / (t1 - t0);
}

int main(int argc, char **argv)
{
    static const uint32_t batches[] = {1, 16, 256};
    if (argc > 1 && strcmp(argv[1], "--cpu") == 0) {
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    } else if (argc > 1) {
        fprintf(stderr, "usage: %s [--cpu]\n", argv[0]);
        return 2;
    }
    printf("raft core, %u replicas in one process, instant network and disk, %u-byte commands%s\n",
           BENCH_NODES, BENCH_CMD_BYTES, argc > 1 ? ", per CPU second" : "");
    printf("%6s %16s %16s %8s\n", "batch", "core cmds/s", "memcpy cmds/s", "ratio");
    for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        double core = bench_core(batches[i]);
        double base = bench_baseline(batches[i]);
        printf("%6u %16.0f %16.0f %8.3f\n", batches[i], core, base, core / base);
    }
    return 0;
}
