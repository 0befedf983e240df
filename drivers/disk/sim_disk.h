/* Simulated twin of the log driver for the deterministic cluster simulator: the same
 * operations as disk_log (struct disk_ops), backed by memory, with virtual-time latency and
 * the faults real disks have. No clock, no random source and no file is touched: time comes
 * from sim_disk_set_time and randomness from the seed in the config, so one seed and one
 * sequence of calls always give the same results. */
#ifndef ORDO_DRIVERS_DISK_SIM_DISK_H
#define ORDO_DRIVERS_DISK_SIM_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/disk/disk.h"
#include "engine/api.h"
#include "engine/err.h"
#include "engine/msg.h"

struct sim_disk_config {
    uint64_t seed;            /* PRNG seed: latencies and torn-write lengths derive from it */
    uint64_t latency_min;     /* virtual time from submitting a write to its durability */
    uint64_t latency_max;     /* >= latency_min; each write draws uniformly in between */
    uint64_t capacity_bytes;  /* log bytes the disk holds; beyond it writes fail -ENOSPC */
    uint32_t batch_bytes_max; /* bytes one write (group commit) carries at most */
    uint32_t entry_len_max;   /* payload bound per entry */
};

/* Defaults: seed 1, latency 1..1, 64 MiB capacity, 1 MiB batches, 64 KiB entries. */
ORDO_API void sim_disk_config_default(struct sim_disk_config *c);

struct sim_disk;

/* Creates an empty disk (log empty at index 1, hard state {0, none}, no snapshot). Returns
 * NULL with *rc = -ENOMEM or ORDO_ECONFIG. Allocates capacity_bytes up front. */
ORDO_API struct sim_disk *sim_disk_create(const struct sim_disk_config *cfg, int *rc);
ORDO_API void sim_disk_destroy(struct sim_disk *d);

/* Sets the virtual time (monotonic, caller's units). A write submitted at time t becomes
 * durable at the first poll with time >= t + its drawn latency. */
ORDO_API void sim_disk_set_time(struct sim_disk *d, uint64_t now);

/* The log operations: same contracts as the disk_log_* functions of disk.h (append stages,
 * poll submits one write at a time and reports the durable index, read returns durable
 * entries, truncate and compact act at once, hard state and snapshots are durable on return).
 * dev arguments of sim_disk_ops are struct sim_disk *. */
ORDO_API int sim_disk_append(struct sim_disk *d, const struct msg_entry *entries, uint32_t n);
ORDO_API int sim_disk_poll(struct sim_disk *d, uint64_t *index_durable);
ORDO_API int sim_disk_read(struct sim_disk *d, uint64_t index, uint32_t n_max,
                           struct msg_entry *out, uint8_t *buf, size_t buf_len);
ORDO_API int sim_disk_truncate(struct sim_disk *d, uint64_t index_last_kept);
ORDO_API int sim_disk_compact(struct sim_disk *d, uint64_t index);
ORDO_API void sim_disk_bounds(const struct sim_disk *d, struct disk_bounds *b);
ORDO_API int sim_disk_term_at(const struct sim_disk *d, uint64_t index, uint64_t *term);
ORDO_API int sim_disk_hard_state_save(struct sim_disk *d, const struct disk_hard_state *hs);
ORDO_API int sim_disk_hard_state_load(struct sim_disk *d, struct disk_hard_state *hs);
ORDO_API int sim_disk_snap_save(struct sim_disk *d, const struct disk_snap_meta *meta,
                                const uint8_t *data);
ORDO_API int sim_disk_snap_latest(struct sim_disk *d, struct disk_snap_meta *meta);
ORDO_API int sim_disk_snap_read(struct sim_disk *d, uint64_t offset, uint8_t *buf, uint32_t len);
ORDO_API int sim_disk_snap_recv_begin(struct sim_disk *d, const struct disk_snap_meta *meta);
ORDO_API int sim_disk_snap_recv_chunk(struct sim_disk *d, uint64_t offset, const uint8_t *chunk,
                                      uint32_t len);
ORDO_API int sim_disk_snap_recv_finish(struct sim_disk *d);

ORDO_API extern const struct disk_ops sim_disk_ops;

/* What happens to the write in flight (submitted, not yet durable) at a crash. Staged entries
 * (appended, not yet submitted) are always lost. */
enum sim_disk_crash_mode {
    SIM_DISK_CRASH_DROP = 1, /* the write in flight is lost entirely */
    SIM_DISK_CRASH_TORN = 2, /* a PRNG-drawn prefix of it (possibly empty) survives */
    SIM_DISK_CRASH_KEEP = 3, /* it reached the platter but was never acknowledged */
};

/* Crashes and restarts the disk: applies `mode` to the write in flight, forgets everything
 * volatile (staged entries, a snapshot being received, a stopped state), then recovers like
 * disk_log_open: the log is rescanned, a torn tail is cut. Returns 0, or ORDO_ECORRUPT with
 * err naming the offset when the image holds damage that is not a torn tail (for example after
 * sim_disk_rot); the disk then stays stopped. */
ORDO_API int sim_disk_crash(struct sim_disk *d, enum sim_disk_crash_mode mode,
                            struct ordo_errmsg *err);

/* The next write's completion (and the next hard state or snapshot save) fails with err
 * (e.g. -EIO): the disk stops as the real driver does, and nothing more becomes durable. */
ORDO_API void sim_disk_fail_next_sync(struct sim_disk *d, int err);

/* Changes the capacity (bytes of log image). A write that would go past it fails with -ENOSPC
 * at its completion and stops the disk. */
ORDO_API void sim_disk_set_capacity(struct sim_disk *d, uint64_t capacity_bytes);

/* Bit rot: flips bit `bit` (0..7) of byte `byte` of durable record `index` (byte 0 is the
 * first header byte; taken modulo the record's size). Reads of that record then return
 * ORDO_ECORRUPT and a crash-restart refuses the log. Returns 0 or ORDO_ENOTFOUND. */
ORDO_API int sim_disk_rot(struct sim_disk *d, uint64_t index, uint32_t byte, unsigned bit);

/* The fatal error that stopped the disk, 0 while running. */
ORDO_API int sim_disk_error(const struct sim_disk *d);

#endif
