/* The replicas' disks on the log driver's simulated twin (drivers/disk/sim_disk): every
 * write, truncation, snapshot and crash of a replica goes through it, and after a crash its
 * recovered contents (hard state, snapshot, log) must equal the durable part of what the
 * simulator wrote, which then is all a restarted replica gets. */
#include <stdlib.h>
#include <string.h>

#include "drivers/disk/sim_disk.h"
#include "engine/err.h"
#include "tests/sim/world.h"

#define TWIN_READ_BATCH 16u

static void twin_check(struct world *w, struct world_replica *rep, int rc, const char *what)
{
    if (rc < 0) {
        world_fail(w, "replica %u: twin disk %s failed: %s", rep->id, what, ordo_strerror(rc));
    }
}

int twin_open(struct world *w, struct world_replica *rep)
{
    if (rep->twin != NULL) {
        return 0;
    }
    struct sim_disk_config c;
    sim_disk_config_default(&c);
    c.seed = world_mix(w->seed, rep->id);
    c.latency_min = 0;
    c.latency_max = w->p.disk_max_ms;
    c.capacity_bytes = 1u << 20; /* small: a crash rewrites the tail of the whole image */
    c.batch_bytes_max = 64u << 10;
    c.entry_len_max = 4096;
    int rc = 0;
    rep->twin = sim_disk_create(&c, &rc);
    return rep->twin != NULL ? 0 : rc;
}

void twin_close(struct world_replica *rep)
{
    sim_disk_destroy(rep->twin);
    rep->twin = NULL;
}

void twin_hard_state(struct world *w, struct world_replica *rep)
{
    struct disk_hard_state hs = {.term = rep->disk.term, .voted_for = rep->disk.voted_for};
    twin_check(w, rep, sim_disk_hard_state_save(rep->twin, &hs), "hard state save");
}

void twin_write(struct world *w, struct world_replica *rep, uint64_t truncate_from,
                const struct msg_entry *es, uint32_t n)
{
    sim_disk_set_time(rep->twin, w->now);
    if (truncate_from != 0) {
        twin_check(w, rep, sim_disk_truncate(rep->twin, truncate_from - 1), "truncate");
    }
    if (n > 0 && !w->failed) {
        twin_check(w, rep, sim_disk_append(rep->twin, es, n), "append");
    }
}

/* Polls the twin: returns the durable index it reports. */
uint64_t twin_poll(struct world *w, struct world_replica *rep)
{
    uint64_t durable = 0;
    sim_disk_set_time(rep->twin, w->now);
    twin_check(w, rep, sim_disk_poll(rep->twin, &durable), "poll");
    struct disk_bounds b;
    sim_disk_bounds(rep->twin, &b);
    /* Poll again next millisecond while anything is staged or in flight. */
    rep->disk.sync_at = b.index_durable < b.index_last ? w->now + 1 : WORLD_NEVER;
    return durable;
}

/* A snapshot is durable (taken here, or received from the leader): save it, then drop the
 * log it covers; a received one whose last entry conflicts with the log replaces it all. */
void twin_snapshot(struct world *w, struct world_replica *rep, int conflict)
{
    const struct world_disk *d = &rep->disk;
    struct disk_snap_meta m = {.last_index = d->snap_index,
                               .last_term = d->snap_term,
                               .config = d->snap_config,
                               .len = d->snap_len};
    sim_disk_set_time(rep->twin, w->now);
    twin_check(w, rep, sim_disk_snap_save(rep->twin, &m, d->snap_data), "snapshot save");
    struct disk_bounds b;
    sim_disk_bounds(rep->twin, &b);
    if (conflict && d->snap_index < b.index_last && !w->failed) {
        twin_check(w, rep, sim_disk_truncate(rep->twin, d->snap_index), "truncate");
    }
    if (!w->failed) {
        twin_check(w, rep, sim_disk_compact(rep->twin, d->snap_index), "compact");
    }
}

static int twin_verify_state(struct world *w, struct world_replica *rep)
{
    const struct world_disk *d = &rep->disk;
    struct disk_hard_state hs;
    struct disk_snap_meta m;
    twin_check(w, rep, sim_disk_hard_state_load(rep->twin, &hs), "hard state load");
    if (!w->failed && (hs.term != d->term || hs.voted_for != d->voted_for)) {
        world_fail(w, "replica %u: twin disk recovered hard state (%lu, %u), wrote (%lu, %u)",
                   rep->id, (unsigned long)hs.term, hs.voted_for, (unsigned long)d->term,
                   d->voted_for);
    }
    int rc = sim_disk_snap_latest(rep->twin, &m);
    if (rc == ORDO_ENOTFOUND) {
        m = (struct disk_snap_meta){0};
    } else {
        twin_check(w, rep, rc, "snapshot load");
    }
    if (!w->failed && (m.last_index != d->snap_index || m.last_term != d->snap_term ||
                       m.len != (d->snap_index ? d->snap_len : 0))) {
        world_fail(w, "replica %u: twin disk recovered snapshot at %lu, wrote one at %lu", rep->id,
                   (unsigned long)m.last_index, (unsigned long)d->snap_index);
    }
    return w->failed ? -1 : 0;
}

/* Compares the recovered entries with what was written; returns the last index. */
static uint64_t twin_verify_log(struct world *w, struct world_replica *rep, uint64_t last)
{
    static uint8_t buf[TWIN_READ_BATCH * 4096];
    struct msg_entry out[TWIN_READ_BATCH];
    const struct world_disk *d = &rep->disk;
    for (uint64_t i = d->snap_index + 1; i <= last && !w->failed;) {
        int n = sim_disk_read(rep->twin, i, TWIN_READ_BATCH, out, buf, sizeof(buf));
        if (n <= 0) {
            world_fail(w, "replica %u: twin disk cannot read back entry %lu: %s", rep->id,
                       (unsigned long)i, n < 0 ? ordo_strerror(n) : "not durable");
            break;
        }
        for (int k = 0; k < n; k++, i++) {
            const struct world_ent *x = &d->log[i - d->snap_index - 1];
            if (out[k].term != x->term || out[k].type != x->type ||
                world_hash(out[k].data, out[k].len, out[k].type) != x->dhash) {
                world_fail(w,
                           "replica %u: twin disk returned entry %lu different from the one "
                           "written",
                           rep->id, (unsigned long)i);
                break;
            }
        }
    }
    return last;
}

/* Power loss on the twin (the write in flight dropped, torn or kept, as drawn), then its
 * recovery. The simulator's own copy of the log is cut to what the twin recovered, after
 * checking that this is a prefix of what was written holding every entry reported durable. */
void twin_crash(struct world *w, struct world_replica *rep)
{
    struct ordo_errmsg err = {{0}};
    enum sim_disk_crash_mode mode = (enum sim_disk_crash_mode)(1 + rng_below(&w->rng, 3));
    int rc = sim_disk_crash(rep->twin, mode, &err);
    if (rc < 0) {
        world_fail(w, "replica %u: twin disk recovery failed: %s (%s)", rep->id, err.text,
                   ordo_strerror(rc));
        return;
    }
    if (twin_verify_state(w, rep) < 0) {
        return;
    }
    struct disk_bounds b;
    sim_disk_bounds(rep->twin, &b);
    const struct world_disk *d = &rep->disk;
    uint64_t last = b.index_last > d->snap_index ? b.index_last : d->snap_index;
    if (last > d->snap_index + d->n) {
        world_fail(w, "replica %u: twin disk recovered up to %lu, only %lu was written", rep->id,
                   (unsigned long)last, (unsigned long)(d->snap_index + d->n));
        return;
    }
    if (last < d->snap_index + d->n_durable) {
        world_fail(w,
                   "replica %u: twin disk lost durable entries: recovered up to %lu, %lu "
                   "was reported durable",
                   rep->id, (unsigned long)last, (unsigned long)(d->snap_index + d->n_durable));
        return;
    }
    replica_mirror_cut(rep, twin_verify_log(w, rep, last));
}
