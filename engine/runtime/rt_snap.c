/* Background snapshots: fork() gives a child a copy-on-write image of the state machine and
 * session table (private jemalloc memory) frozen at the applied index; the child writes it
 * with the disk snapshot writer and _exit()s, touching no DPDK object. The apply lcore only
 * pays for fork() itself, then polls. It must never block on the child. */
#include "engine/runtime/rt_snap.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_telemetry.h>

#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/runtime/rt_repl.h"
#include "engine/sess.h"
#include "engine/sm.h"

/* Exit codes of the writer: 0 written; 1..254 the errno of the failure; 255 another error. */
#define RT_SNAP_EXIT_OTHER 255

static struct rt_repl *rt_snap_tele; /* the one replica of this process, for telemetry */

static uint64_t rt_snap_ns(uint64_t tsc0)
{
    return (rte_rdtsc() - tsc0) * 1000000000ull / rte_get_tsc_hz();
}

/* The child runs on the CPUs the data path does not pin (when there are any) and at a lower
 * priority: on a small host it must not take the apply lcore's core away. */
static void rt_snap_child_cpu(void)
{
    cpu_set_t mine;
    cpu_set_t other;
    CPU_ZERO(&other);
    if (sched_getaffinity(0, sizeof(mine), &mine) == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (long c = 0; c < n && c < CPU_SETSIZE; c++) {
            if (!CPU_ISSET((size_t)c, &mine)) {
                CPU_SET((size_t)c, &other);
            }
        }
        if (CPU_COUNT(&other) > 0) {
            (void)sched_setaffinity(0, sizeof(other), &other);
        }
    }
    (void)setpriority(PRIO_PROCESS, 0, 10);
}

static void rt_snap_child_sleep(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The writer: serialises sessions then the application (the rt_repl_load order) from its
 * copy-on-write image, then tmp file, fsync, rename, directory fsync (disk_log_snap_save with
 * this process's copy of the log; that only uses plain file calls, never the io_uring ring).
 * No rte_* call, no stdio, no return: _exit() skips every atexit handler (EAL cleanup). */
static void __attribute__((noreturn))
rt_snap_child(struct rt_repl *rp, const struct disk_snap_meta *m, pid_t parent, uint32_t delay_ms)
{
    /* A writer never outlives its replica: a SIGKILLed parent takes it along. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(RT_SNAP_EXIT_OTHER);
    }
    rt_snap_child_cpu();
    if (delay_ms != 0) {
        rt_snap_child_sleep(delay_ms);
    }
    struct sm_mem_sink sink = {0};
    sink.data = mem_alloc((size_t)m->len);
    sink.cap = sink.data != NULL ? (size_t)m->len : 0;
    int rc = sink.data != NULL ? 0 : -ENOMEM;
    if (rc == 0) {
        rc = sess_snapshot_write(rp->rt->sess, sm_mem_sink_write, &sink);
    }
    if (rc == 0) {
        rc = sm_snapshot_write(rp->rt->sm, sm_mem_sink_write, &sink);
    }
    if (rc == 0 && sink.len != m->len) {
        rc = ORDO_ECORRUPT; /* sizes taken at fork disagree with the image: a bug */
    }
    if (rc == 0) {
        rc = disk_log_snap_save(rp->log, m, sink.data);
    }
    _exit(rc == 0 ? 0 : (rc < 0 && rc > -RT_SNAP_EXIT_OTHER) ? -rc : RT_SNAP_EXIT_OTHER);
}

static void rt_snap_backoff(struct rt_repl *rp, const char *what, int detail)
{
    struct rt_snap *s = rp->bg;
    s->failed++;
    s->phase = RT_SNAP_IDLE;
    s->pid = 0;
    mem_free(s->data);
    s->data = NULL;
    s->retry_ms = rp->now_ms + RT_SNAP_RETRY_MS;
    __atomic_store_n(&s->fail_detail, (int32_t)detail, __ATOMIC_RELAXED);
    __atomic_store_n(&s->fail_index, s->meta.last_index, __ATOMIC_RELAXED);
    __atomic_store_n(&s->fail_what, what, __ATOMIC_RELEASE);
    RTE_LOG(WARNING, USER1,
            "ordo: node %u: snapshot at %" PRIu64 " failed: %s %d; previous snapshot and log "
            "kept, retry in %u ms\n",
            rp->rt->self->id, s->meta.last_index, what, detail, RT_SNAP_RETRY_MS);
}

/* Starts the writer at the applied index. The pause on the apply lcore is this function:
 * two O(1) size queries, the O(1) digest and fork() (page tables of the private memory). */
static int rt_snap_start(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    struct disk_snap_meta m;
    uint64_t tsc0 = rte_rdtsc();
    memset(&m, 0, sizeof(m));
    m.last_index = rp->applied;
    if (raft_snapshot_meta(rp->raft, rp->applied, &m.last_term, &m.config) != 0) {
        return 0; /* not held any more (a newer snapshot arrived): nothing to do */
    }
    m.len = sess_snapshot_size(rp->rt->sess) + sm_snapshot_size(rp->rt->sm);
    sm_digest(rp->rt->sm, s->digest);
    s->meta = m;
    s->started++;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        rt_snap_child(rp, &m, parent, s->test_delay_ms);
    }
    if (pid < 0) {
        rt_snap_backoff(rp, "fork: errno", errno);
        return -errno;
    }
    s->pid = pid;
    s->phase = RT_SNAP_WRITING;
    s->start_ms = rp->now_ms;
    s->pause_ns_last = rt_snap_ns(tsc0);
    s->pause_ns_max = RTE_MAX(s->pause_ns_max, s->pause_ns_last);
    RTE_LOG(INFO, USER1,
            "ordo: node %u: snapshot at %" PRIu64 " (%" PRIu64 " bytes) started in the "
            "background, pid %d, pause %" PRIu64 " us\n",
            rp->rt->self->id, m.last_index, m.len, (int)pid, s->pause_ns_last / 1000u);
    return 1;
}

static int rt_snap_take(struct rt_repl *rp)
{
    if (rp->rt->conf->replica.snapshot_mode == CONF_SNAPSHOT_INLINE) {
        struct raft_update up;
        uint64_t tsc0 = rte_rdtsc();
        struct rt_snap *s = rp->bg;
        int rc = rt_repl_snapshot(rp, &up);
        if (rc == 1) {
            /* Counted like a background one, so /ordo/snap tells the same in both modes (an
             * inline failure is a fail-stop, never a backoff). */
            s->started++;
            s->done++;
            s->last_index = rp->snap_index;
            s->pause_ns_last = rt_snap_ns(tsc0);
            s->pause_ns_max = RTE_MAX(s->pause_ns_max, s->pause_ns_last);
            rt_repl_handle_update(rp, &up);
        }
        return rc;
    }
    return rt_snap_start(rp);
}

void rt_snap_policy(struct rt_repl *rp, uint8_t log_wanted)
{
    struct rt_snap *s = rp->bg;
    uint64_t every = rp->rt->conf->replica.snapshot_entries;
    /* log_wanted: past snapshot_log_bytes when that is set, and always once the core's fixed
     * log is half full (without that snapshot a full log would refuse proposals for good). */
    bool due = (every != 0 && rp->applied >= rp->snap_index + every) || log_wanted;
    if (!due || rp->applied <= rp->snap_index || rp->rt->failed != 0 || s->phase != RT_SNAP_IDLE ||
        s->reap_pid != 0 || rp->now_ms < s->retry_ms) {
        return;
    }
    (void)rt_snap_take(rp);
}

int rt_snap_request(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    if (rp->applied <= rp->snap_index || rp->rt->failed != 0 || s->phase != RT_SNAP_IDLE ||
        s->reap_pid != 0) {
        return 0;
    }
    return rt_snap_take(rp);
}

/* WRITING: has the child exited? A clean exit means the file is durable under its name. */
static uint32_t rt_snap_reap(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    int st = 0;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == 0) {
        return 0;
    }
    s->write_ms_last = rp->now_ms - s->start_ms;
    if (r < 0) {
        rt_snap_backoff(rp, "waitpid: errno", errno);
    } else if (WIFSIGNALED(st)) {
        rt_snap_backoff(rp, "writer killed by signal", WTERMSIG(st));
    } else if (WEXITSTATUS(st) != 0) {
        rt_snap_backoff(rp, "writer exit status (errno)", WEXITSTATUS(st));
    } else {
        int rc = rt_repl_log_hold(rp) ? disk_log_snap_adopt(rp->log, &s->meta) : -ECANCELED;
        rt_repl_log_release(rp);
        s->data = rc == 0 ? mem_alloc(RTE_MAX(s->meta.len, 1u)) : NULL;
        if (rc != 0 || s->data == NULL) {
            rt_snap_backoff(rp, "adopt: error", rc != 0 ? rc : -ENOMEM);
            return 1;
        }
        s->pid = 0;
        s->loaded = 0;
        s->phase = RT_SNAP_LOADING;
    }
    return 1;
}

/* LOADING done: the core takes the bytes (no copy), then the durable log is compacted. */
static void rt_snap_finish(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN, .now_ms = rp->now_ms};
    struct raft_update up;
    ev.u.snapshot_taken.index = s->meta.last_index;
    ev.u.snapshot_taken.data = s->data;
    ev.u.snapshot_taken.len = s->meta.len;
    ev.u.snapshot_taken.take = 1;
    s->data = NULL; /* the core owns it now, whatever it returns */
    int rc = raft_step(rp->raft, &ev, &up);
    if (rc != 0) {
        rt_snap_backoff(rp, "raft: error", rc);
        return;
    }
    rt_repl_handle_update(rp, &up); /* phase is still LOADING: the policy does not restart */
    rc = 0;
    if (rp->rt->failed == 0 && rt_repl_log_hold(rp)) {
        rc = disk_log_compact(rp->log, s->meta.last_index);
        rt_repl_log_release(rp);
    }
    if (rc != 0) {
        rt_repl_fail(rp, "log compaction after snapshot", rc);
    }
    rp->snap_index = RTE_MAX(rp->snap_index, s->meta.last_index);
    rp->reported = 0; /* the snapshot counts as durable: report again */
    rp->view.snapshots_taken++;
    s->done++;
    s->last_index = s->meta.last_index;
    s->phase = RT_SNAP_IDLE;
    RTE_LOG(NOTICE, USER1,
            "ordo: node %u: snapshot at %" PRIu64 " (%" PRIu64 " bytes): written in the "
            "background in %" PRIu64 " ms, apply pause %" PRIu64 " us; log compacted\n",
            rp->rt->self->id, s->meta.last_index, s->meta.len, s->write_ms_last,
            s->pause_ns_last / 1000u);
}

static uint32_t rt_snap_load(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    uint64_t tsc0 = rte_rdtsc();
    if (s->loaded < s->meta.len) {
        uint32_t want = (uint32_t)RTE_MIN(s->meta.len - s->loaded, (uint64_t)RT_SNAP_LOAD_CHUNK);
        int n = rt_repl_log_hold(rp)
                    ? disk_log_snap_read(rp->log, s->loaded, s->data + s->loaded, want)
                    : -ECANCELED;
        rt_repl_log_release(rp);
        if (n <= 0) {
            rt_snap_backoff(rp, "read back: error", n < 0 ? n : ORDO_ETRUNCATED);
            return 1;
        }
        s->loaded += (uint64_t)n;
    } else {
        rt_snap_finish(rp);
    }
    s->round_ns_max = RTE_MAX(s->round_ns_max, rt_snap_ns(tsc0));
    return 1;
}

uint32_t rt_snap_poll(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    if (s->reap_pid != 0) {
        int st = 0;
        if (waitpid(s->reap_pid, &st, WNOHANG) != 0) {
            s->reap_pid = 0;
        }
    }
    if (s->phase == RT_SNAP_WRITING) {
        return rt_snap_reap(rp);
    }
    if (s->phase == RT_SNAP_LOADING) {
        return rt_snap_load(rp);
    }
    return 0;
}

void rt_snap_cancel(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    if (s->phase == RT_SNAP_IDLE) {
        return;
    }
    if (s->phase == RT_SNAP_WRITING) {
        (void)kill(s->pid, SIGKILL);
        s->reap_pid = s->pid;
    }
    s->pid = 0;
    mem_free(s->data);
    s->data = NULL;
    s->phase = RT_SNAP_IDLE;
    s->cancelled++;
    RTE_LOG(INFO, USER1, "ordo: node %u: snapshot at %" PRIu64 " cancelled (installing one)\n",
            rp->rt->self->id, s->meta.last_index);
}

/* last_error ("" when none: "what detail", e.g. "writer killed by signal 9") and
 * last_error_index: the last failed snapshot, for operators (ordo-admin status). */
static void rt_snap_tele_error(const struct rt_snap *s, struct rte_tel_data *d)
{
    char msg[96] = "";
    const char *what = __atomic_load_n(&s->fail_what, __ATOMIC_ACQUIRE);
    if (what != NULL) {
        snprintf(msg, sizeof(msg), "%s %" PRId32, what,
                 __atomic_load_n(&s->fail_detail, __ATOMIC_RELAXED));
    }
    (void)rte_tel_data_add_dict_string(d, "last_error", msg);
    (void)rte_tel_data_add_dict_u64(d, "last_error_index",
                                    __atomic_load_n(&s->fail_index, __ATOMIC_RELAXED));
}

static int rt_snap_tele_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    struct rt_repl *rp = rt_snap_tele;
    if (rp == NULL) {
        return -ENOENT;
    }
    const struct rt_snap *s = rp->bg;
    static const char *const phases[] = {"idle", "writing", "loading"};
    uint8_t ph = __atomic_load_n(&s->phase, __ATOMIC_RELAXED);
    rte_tel_data_start_dict(d);
    (void)rte_tel_data_add_dict_string(
        d, "mode", rp->rt->conf->replica.snapshot_mode == CONF_SNAPSHOT_INLINE ? "inline" : "fork");
    (void)rte_tel_data_add_dict_string(d, "phase", phases[ph <= RT_SNAP_LOADING ? ph : 0]);
    const char *const names[] = {"started",      "done",         "failed",
                                 "cancelled",    "last_index",   "pause_ns_last",
                                 "pause_ns_max", "round_ns_max", "write_ms_last"};
    const uint64_t *vals[] = {&s->started,      &s->done,         &s->failed,
                              &s->cancelled,    &s->last_index,   &s->pause_ns_last,
                              &s->pause_ns_max, &s->round_ns_max, &s->write_ms_last};
    for (size_t i = 0; i < ORDO_ARRAY_LEN(names); i++) {
        (void)rte_tel_data_add_dict_u64(d, names[i], __atomic_load_n(vals[i], __ATOMIC_RELAXED));
    }
    rt_snap_tele_error(s, d);
    return 0;
}

int rt_snap_init(struct rt_repl *rp)
{
    rp->bg = mem_calloc(1, sizeof(*rp->bg));
    if (rp->bg == NULL) {
        return -ENOMEM;
    }
    /* The writer never touches the log's buffers or index: fork() must not copy them (the
     * pinned io_uring buffers would be copied eagerly, 8 MiB, ~5 ms of the pause). */
    int rc = disk_log_fork_exclude(rp->log);
    if (rc != 0) {
        RTE_LOG(WARNING, USER1, "ordo: node %u: snapshot: madvise(MADV_DONTFORK): %s\n",
                rp->rt->self->id, ordo_strerror(rc));
    }
    rt_snap_tele = rp;
    (void)rte_telemetry_register_cmd("/ordo/snap", rt_snap_tele_cmd,
                                     "Background snapshots: phase, counters, apply-lcore pause "
                                     "of the last and largest start (ns). No parameters");
    return 0;
}

void rt_snap_fini(struct rt_repl *rp)
{
    struct rt_snap *s = rp->bg;
    if (s == NULL) {
        return;
    }
    rt_snap_tele = NULL;
    int pids[2] = {s->phase == RT_SNAP_WRITING ? s->pid : 0, s->reap_pid};
    for (int i = 0; i < 2; i++) {
        if (pids[i] > 0) {
            (void)kill(pids[i], SIGKILL);
            (void)waitpid(pids[i], NULL, 0); /* shutdown: a killed child exits promptly */
        }
    }
    mem_free(s->data);
    mem_free(s);
    rp->bg = NULL;
}
