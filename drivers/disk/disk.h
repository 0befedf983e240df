/* Durable Raft log on io_uring: segment files, group commit, recovery, truncation, compaction,
 * hard state and snapshot files, behind the disk_ops table shared with the simulated twin
 * (drivers/disk/sim_disk.h). Nothing is ever reported durable that is not on stable storage,
 * and after a failed write or sync nothing more is: the log stops (ORDO_ESTOPPED). */
#ifndef ORDO_DRIVERS_DISK_DISK_H
#define ORDO_DRIVERS_DISK_DISK_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/err.h"
#include "engine/msg.h"

/* Raft hard state (dissertation 3.8: currentTerm and votedFor survive restarts). */
struct disk_hard_state {
    uint64_t term;
    uint32_t voted_for; /* MSG_NODE_NONE when no vote in term */
};

/* Snapshot metadata; the data itself is opaque bytes from the application interface. */
struct disk_snap_meta {
    uint64_t last_index; /* the snapshot covers entries up to and including this index */
    uint64_t last_term;
    struct msg_config config; /* configuration as of last_index */
    uint64_t len;             /* bytes of snapshot data */
};

/* Where the log stands. Indexes follow Raft: the first entry is 1; an empty log has
 * index_last == index_first - 1. */
struct disk_bounds {
    uint64_t index_first;   /* oldest entry still readable (after compaction) */
    uint64_t index_last;    /* newest entry appended (durable or not) */
    uint64_t index_durable; /* every entry <= this is on stable storage */
    uint64_t term_last;     /* term of index_last, 0 when the log is empty */
};

/* The interface of a log device, implemented by the io_uring driver (disk_log_ops) and the
 * simulated twin (sim_disk_ops). `dev` is the device object (struct disk_log or struct
 * sim_disk). Stages on the data path call the real driver's functions directly; the table
 * exists so that tests and the simulator can swap in the twin. Every function is called from
 * the one lcore that owns the device. Results: 0 or a count on success, negative on failure. */
struct disk_ops {
    /* Stages a batch of n entries; see disk_log_append. */
    int (*append)(void *dev, const struct msg_entry *entries, uint32_t n);
    /* Reaps completions, submits staged entries; see disk_log_poll. */
    int (*poll)(void *dev, uint64_t *index_durable);
    /* Reads durable entries from index; see disk_log_read. */
    int (*read)(void *dev, uint64_t index, uint32_t n_max, struct msg_entry *out, uint8_t *buf,
                size_t buf_len);
    /* Removes entries after index_last_kept, durably; see disk_log_truncate. */
    int (*truncate)(void *dev, uint64_t index_last_kept);
    /* Drops what a snapshot at `index` covers; see disk_log_compact. */
    int (*compact)(void *dev, uint64_t index);
    void (*bounds)(void *dev, struct disk_bounds *b);
    /* Term of a durable or staged entry; ORDO_ENOTFOUND outside the log. */
    int (*term_at)(void *dev, uint64_t index, uint64_t *term);
    int (*hard_state_save)(void *dev, const struct disk_hard_state *hs);
    int (*hard_state_load)(void *dev, struct disk_hard_state *hs);
    int (*snap_save)(void *dev, const struct disk_snap_meta *meta, const uint8_t *data);
    int (*snap_latest)(void *dev, struct disk_snap_meta *meta);
    int (*snap_read)(void *dev, uint64_t offset, uint8_t *buf, uint32_t len);
    int (*snap_recv_begin)(void *dev, const struct disk_snap_meta *meta);
    int (*snap_recv_chunk)(void *dev, uint64_t offset, const uint8_t *chunk, uint32_t len);
    int (*snap_recv_finish)(void *dev);
};

struct disk_config {
    const char *dir;          /* data directory, created if missing */
    uint64_t segment_bytes;   /* size each segment file is preallocated to */
    uint32_t batch_bytes_max; /* bytes one write (group commit) carries at most */
    uint32_t entry_len_max;   /* payload bound per entry */
    uint64_t index_cap;       /* entries the in-memory index holds (compact before full) */
    uint32_t segments_max;    /* segment files at most */
    uint32_t snapshots_keep;  /* snapshot files kept (newest first), >= 1 */
    uint32_t ring_entries;    /* io_uring submission queue size */
    int rwf_dsync;            /* 1: writes carry RWF_DSYNC instead of a linked fdatasync */
};

/* Fills c with defaults (64 MiB segments, 4 MiB batches, 1 Mi entries, keep 2 snapshots);
 * c->dir is set to NULL and must be filled in. */
ORDO_API void disk_config_default(struct disk_config *c);

struct disk_log;

struct disk_stats {
    uint64_t writes;       /* write+sync pairs completed */
    uint64_t bytes;        /* bytes made durable */
    uint64_t entries;      /* entries made durable */
    uint64_t backpressure; /* appends refused with ORDO_ENOSPACE */
    uint64_t segments_created;
    uint64_t write_us; /* sum over completed writes of submit to reap, microseconds */
};

/* Opens (creating if needed) the log in cfg->dir and recovers it: validates every record,
 * rebuilds the index, cuts a torn tail of the last write in the last segment, reads hard state
 * and the newest snapshot. On failure returns NULL with *rc set (-errno, ORDO_ECORRUPT,
 * ORDO_ECONFIG) and err naming the file, offset and cause. Start-up only (allocates, blocks). */
ORDO_API struct disk_log *disk_log_open(const struct disk_config *cfg, int *rc,
                                        struct ordo_errmsg *err);
/* Waits for in-flight I/O, closes files and frees the log. NULL is accepted. */
ORDO_API void disk_log_close(struct disk_log *log);

/* Stages entries[0..n) (copied; the caller keeps ownership) for the next write. Entries must
 * continue the log: entries[i].index == index_last + 1 + i, terms non-decreasing, known
 * type, len <= entry_len_max. Returns 0; ORDO_ENOSPACE when the staging buffer or the index
 * is full (backpressure: poll, then retry); ORDO_ETOOBIG when the batch can never fit one
 * write; -EINVAL on a broken precondition; ORDO_ESTOPPED after a fatal error. Never blocks. */
ORDO_API int disk_log_append(struct disk_log *log, const struct msg_entry *entries, uint32_t n);

/* The log stage's poll function. Reaps io_uring completions without blocking
 * (io_uring_peek_cqe) and, when no write is in flight, submits everything staged as one write
 * linked to an fdatasync (group commit). Sets *index_durable (may be NULL). Returns the number
 * of writes completed (0 when none), or the fatal error (-EIO, -ENOSPC...) once the log has
 * stopped; the durable index never advances after that. A segment roll creates a file
 * (blocking) once per segment_bytes. */
ORDO_API int disk_log_poll(struct disk_log *log, uint64_t *index_durable);

/* Reaps completions like disk_log_poll but submits nothing, so the caller can stage more
 * entries (group commit) before the next write goes out with its disk_log_poll. Returns the
 * writes completed (0 or 1) or the fatal error. Same lcore as disk_log_poll. */
ORDO_API int disk_log_reap(struct disk_log *log);

/* True while a write (and its sync) is in flight: what is appended now waits for the next
 * write, so the sequencer may keep its batch open meanwhile (group commit). */
ORDO_API bool disk_log_writing(const struct disk_log *log);

/* Idle strategy hook for a back-off idle loop (shared machines, tests): when a write is in
 * flight, sleeps in the kernel until a completion arrives or timeout_us passes; returns at once
 * otherwise. Never call it from a busy-polling lcore. Returns 0. */
ORDO_API int disk_log_idle_wait(struct disk_log *log, uint32_t timeout_us);

/* The io_uring descriptor: readable (POLLIN) while a completion waits to be reaped, so a
 * back-off idle loop can sleep until a write is durable (idle_wait_fd_add) and report it at
 * once. -1 before the ring exists. The descriptor stays the log's: never close or read it. */
ORDO_API int disk_log_wait_fd(const struct disk_log *log);

/* Blocks until everything staged is durable or the log stops. Control path and tests only.
 * Returns 0 or the fatal error. */
ORDO_API int disk_log_sync(struct disk_log *log);

/* Reads up to n_max durable entries starting at index into out[], payloads copied into buf
 * (entries borrow buf). Returns the count (0 when index > index_durable); ORDO_ENOTFOUND when
 * index < index_first; ORDO_ENOSPACE when buf cannot hold the first entry; ORDO_ECORRUPT
 * when the bytes read fail their CRC. Reads from the page cache (pread). */
ORDO_API int disk_log_read(struct disk_log *log, uint64_t index, uint32_t n_max,
                           struct msg_entry *out, uint8_t *buf, size_t buf_len);

/* Removes every entry after index_last_kept (a follower overwriting a conflicting suffix,
 * dissertation 3.5), durably, before returning: later segments are unlinked and the segment
 * holding index_last_kept + 1 is cut. Drains in-flight writes first (blocks; rare). Returns 0;
 * ORDO_ENOTFOUND below index_first - 1; ORDO_ESTOPPED. */
ORDO_API int disk_log_truncate(struct disk_log *log, uint64_t index_last_kept);

/* Snapshot at `index` is durable: unlinks whole segments all of whose entries are <= index
 * (never the newest segment). When index >= index_last, the whole log is dropped and restarts
 * empty at index + 1 (InstallSnapshot). Returns 0 or -errno / ORDO_ESTOPPED. */
ORDO_API int disk_log_compact(struct disk_log *log, uint64_t index);

ORDO_API void disk_log_bounds(const struct disk_log *log, struct disk_bounds *b);
ORDO_API int disk_log_term_at(const struct disk_log *log, uint64_t index, uint64_t *term);
/* The fatal error that stopped the log, 0 while running. */
ORDO_API int disk_log_error(const struct disk_log *log);
ORDO_API void disk_log_stats(const struct disk_log *log, struct disk_stats *s);

/* Hard state: written to one of two checksummed slots alternately and made durable before
 * returning (blocks for one fdatasync), so a crash at any byte leaves the old or the new
 * value. Load returns the value recovered at open or last saved. */
ORDO_API int disk_log_hard_state_save(struct disk_log *log, const struct disk_hard_state *hs);
ORDO_API int disk_log_hard_state_load(struct disk_log *log, struct disk_hard_state *hs);

/* Snapshots (control path, blocking file I/O). save writes meta.len bytes of data to a
 * temporary file, syncs it, renames it into place, syncs the directory, keeps the newest
 * snapshots_keep. latest returns ORDO_ENOTFOUND when none. read copies len bytes of the
 * newest snapshot's data from offset (for loading or chunked transfer) and returns the count.
 * recv_begin/chunk/finish receive a snapshot chunk by chunk (offsets in order; a chunk at
 * another offset returns -EINVAL) and install it atomically at finish. */
ORDO_API int disk_log_snap_save(struct disk_log *log, const struct disk_snap_meta *meta,
                                const uint8_t *data);
ORDO_API int disk_log_snap_latest(struct disk_log *log, struct disk_snap_meta *meta);
ORDO_API int disk_log_snap_read(struct disk_log *log, uint64_t offset, uint8_t *buf, uint32_t len);
/* adopt: a forked writer (the background snapshot, engine/runtime/rt_snap.c) saved a
 * snapshot with its copy of this log; this process takes that file, snap-<index>-<term>.snap,
 * as the newest after checking its header against meta (ORDO_ECORRUPT when it differs). */
ORDO_API int disk_log_snap_adopt(struct disk_log *log, const struct disk_snap_meta *meta);

ORDO_API int disk_log_snap_recv_begin(struct disk_log *log, const struct disk_snap_meta *meta);
ORDO_API int disk_log_snap_recv_chunk(struct disk_log *log, uint64_t offset, const uint8_t *chunk,
                                      uint32_t len);
ORDO_API int disk_log_snap_recv_finish(struct disk_log *log);

/* For a process that forks a snapshot writer (engine/runtime/rt_snap.c): marks the write
 * buffers (pinned by io_uring: fork() would copy them at once) and the entry index
 * MADV_DONTFORK, so fork() neither copies nor maps them. A forked child may then only use
 * the snapshot calls on its copy of the log (disk_log_snap_save), never append, read, poll,
 * sync, compact, truncate or close it: those pages are absent there. Undone at close.
 * Returns 0 or -errno from madvise. */
ORDO_API int disk_log_fork_exclude(struct disk_log *log);

/* The io_uring driver behind the ops table (dev is a struct disk_log *). */
ORDO_API extern const struct disk_ops disk_log_ops;

/* Fault injection (tests; compiled with -Dfault_hooks=true): the next completion of the given
 * kind carries `err` instead of its real result. */
enum disk_fault {
    DISK_FAULT_WRITE = 1,
    DISK_FAULT_SYNC = 2,
};
ORDO_API void disk_log_fault_set(struct disk_log *log, enum disk_fault kind, int err);

#endif
