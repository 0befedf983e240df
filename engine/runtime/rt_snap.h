/* Background snapshots of the replicated runtime: a forked child writes state machine +
 * session table through the disk snapshot writer while the apply lcore keeps serving; the
 * apply stage polls for it, reads the file back in bounded chunks and compacts the log.
 * Policy, pause bound and failure handling: docs/replica.md, "Snapshots". */
#ifndef ORDO_ENGINE_RUNTIME_RT_SNAP_H
#define ORDO_ENGINE_RUNTIME_RT_SNAP_H

#include <stdint.h>

#include "drivers/disk/disk.h"
#include "engine/api.h"
#include "engine/msg.h"

struct rt_repl;

/* Bytes read back from the new snapshot file per apply round (bounds that round's pause). */
#define RT_SNAP_LOAD_CHUNK (256u << 10)
/* After a failed snapshot (fork refused, writer failed or killed) no new one starts before
 * this many milliseconds: the previous snapshot and the whole log stay, so waiting is safe. */
#define RT_SNAP_RETRY_MS 1000u

enum rt_snap_phase {
    RT_SNAP_IDLE = 0,
    RT_SNAP_WRITING = 1, /* the child writes the file; the parent polls waitpid(WNOHANG) */
    RT_SNAP_LOADING = 2, /* the parent reads the durable file back for the Raft core */
};

struct rt_snap {
    uint8_t phase;                  /* enum rt_snap_phase */
    int pid;                        /* the writer while WRITING */
    int reap_pid;                   /* a cancelled writer not reaped yet (0: none) */
    struct disk_snap_meta meta;     /* the snapshot in progress */
    uint8_t digest[MSG_DIGEST_LEN]; /* state digest at meta.last_index, taken at fork */
    uint8_t *data;                  /* LOADING: mem_ buffer of meta.len bytes */
    uint64_t loaded;                /* LOADING: bytes read back so far */
    uint64_t start_ms;
    uint64_t retry_ms; /* no start before this time (after a failure) */
    /* Counters and figures (read by the telemetry thread: relaxed loads). */
    uint64_t started;
    uint64_t done;
    uint64_t failed;
    uint64_t cancelled;
    uint64_t last_index;    /* index of the last snapshot completed */
    uint64_t pause_ns_last; /* apply lcore blocked by the start (sizes, digest, fork) */
    uint64_t pause_ns_max;  /* largest such pause */
    uint64_t round_ns_max;  /* largest read-back round or finish (raft step, compaction) */
    uint64_t write_ms_last; /* fork to the child's exit */
    /* The last failure (backoff): what failed (a static string, NULL when none yet), its
     * detail (errno, signal or error code) and the index that snapshot was for. */
    const char *fail_what;
    int32_t fail_detail;
    uint64_t fail_index;
    uint32_t test_delay_ms; /* test hook: the child waits this long before writing */
};

/* Allocates rp's background snapshot state and registers /ordo/snap. Returns 0 or -ENOMEM. */
ORDO_API int rt_snap_init(struct rt_repl *rp);
/* Kills a running writer (SIGKILL, then a blocking wait: shutdown only) and frees. */
ORDO_API void rt_snap_fini(struct rt_repl *rp);

/* The policy, after each handled update (apply lcore): starts a snapshot at the applied
 * index when [replica] snapshot_entries entries were applied since the last one or the core
 * asks for one (log_wanted: the log holds snapshot_log_bytes past it), and none is running
 * or backing off. In snapshot_mode = inline it is taken at once on this lcore. */
ORDO_API void rt_snap_policy(struct rt_repl *rp, uint8_t log_wanted);
/* An operator's request (/ordo/snapshot): starts one now unless one is running. Returns 1
 * when started (or taken inline), 0 when not possible now, or a negative error. */
ORDO_API int rt_snap_request(struct rt_repl *rp);
/* One round (apply lcore, never blocks): reaps the writer, reads back one chunk, or
 * finishes (RAFT_EV_SNAPSHOT_TAKEN, log compaction). Returns the work done (0 or 1). */
ORDO_API uint32_t rt_snap_poll(struct rt_repl *rp);
/* A snapshot from the leader is about to be installed: stops the one in progress (the writer
 * gets SIGKILL and is reaped later without blocking; its file, if any, is older). */
ORDO_API void rt_snap_cancel(struct rt_repl *rp);

#endif
