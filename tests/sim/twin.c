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

/* An error is expected only after an injected fault: the replica then fail-stops (the
 * runtime's rule: after a failed sync nothing more is durable, so the replica must not act on
 * anything it meant to persist). Any other error is a failure of the run. */
static void twin_check(struct world *w, struct world_replica *rep, int rc, const char *what)
{
    if (rc < 0 && rep->fault_armed) {
        world_trace(w, "replica %u: disk %s failed (%s): fail-stop", rep->id, what,
                    ordo_strerror(rc));
        rep->fail_stop = 1;
        return;
    }
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
    if (rep->fail_stop) {
        return;
    }
    struct disk_hard_state hs = {.term = rep->disk.term, .voted_for = rep->disk.voted_for};
    twin_check(w, rep, sim_disk_hard_state_save(rep->twin, &hs), "hard state save");
}

void twin_write(struct world *w, struct world_replica *rep, uint64_t truncate_from,
                const struct msg_entry *es, uint32_t n)
{
    if (rep->fail_stop) {
        return;
    }
    sim_disk_set_time(rep->twin, w->now);
    if (truncate_from != 0) {
        twin_check(w, rep, sim_disk_truncate(rep->twin, truncate_from - 1), "truncate");
    }
    if (n > 0 && !w->failed && !rep->fail_stop) {
        twin_check(w, rep, sim_disk_append(rep->twin, es, n), "append");
    }
}

/* Polls the twin: returns the durable index it reports. */
uint64_t twin_poll(struct world *w, struct world_replica *rep)
{
    uint64_t durable = 0;
    if (rep->fail_stop) {
        return 0;
    }
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
    if (rep->fail_stop) {
        return;
    }
    struct disk_snap_meta m = {.last_index = d->snap_index,
                               .last_term = d->snap_term,
                               .config = d->snap_config,
                               .len = d->snap_len};
    sim_disk_set_time(rep->twin, w->now);
    twin_check(w, rep, sim_disk_snap_save(rep->twin, &m, d->snap_data), "snapshot save");
    struct disk_bounds b;
    sim_disk_bounds(rep->twin, &b);
    if (conflict && d->snap_index < b.index_last && !w->failed && !rep->fail_stop) {
        twin_check(w, rep, sim_disk_truncate(rep->twin, d->snap_index), "truncate");
    }
    if (!w->failed && !rep->fail_stop) {
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

static int twin_load_snapshot(struct world *w, struct world_replica *rep)
{
    struct world_disk *d = &rep->disk;
    struct disk_snap_meta m;
    int rc = sim_disk_snap_latest(rep->twin, &m);
    if (rc == 0 && m.last_index == d->snap_index) {
        return 0; /* the snapshot on disk is the one the simulator holds */
    }
    if (rc == ORDO_ENOTFOUND) {
        free(d->snap_data); /* the only snapshot was the one whose save failed */
        d->snap_data = NULL;
        d->snap_len = 0;
        d->snap_index = 0;
        d->snap_term = 0;
        d->snap_config = (struct msg_config){0};
        d->snap_chain = 0;
        return 0;
    }
    uint8_t *data = malloc(m.len ? m.len : 1);
    if (rc < 0 || data == NULL ||
        (m.len > 0 && sim_disk_snap_read(rep->twin, 0, data, (uint32_t)m.len) < 0)) {
        free(data);
        world_fail(w, "replica %u: twin disk snapshot unreadable after a disk error", rep->id);
        return -1;
    }
    free(d->snap_data);
    d->snap_data = data;
    d->snap_len = m.len;
    d->snap_index = m.last_index;
    d->snap_term = m.last_term;
    d->snap_config = m.config;
    d->snap_chain = check_chain_at(w, m.last_index);
    return 0;
}

static void twin_load_entry(struct world_disk *d, const struct msg_entry *e)
{
    struct world_ent *x = &d->log[d->n];
    x->term = e->term;
    x->type = e->type;
    x->len = e->len;
    x->data = malloc(e->len ? e->len : 1);
    if (x->data != NULL && e->len > 0) {
        memcpy(x->data, e->data, e->len);
    }
    x->dhash = world_hash(e->data, e->len, e->type);
    x->chain =
        world_mix(d->n ? d->log[d->n - 1].chain : d->snap_chain, world_mix(x->term, x->dhash));
    d->n++;
}

/* After a disk error the simulator's copy cannot say what reached the disk: it is rebuilt
 * from what the twin recovered (hard state, snapshot, log), as a restart reads it. */
static void twin_load(struct world *w, struct world_replica *rep)
{
    static uint8_t buf[TWIN_READ_BATCH * 4096];
    struct msg_entry out[TWIN_READ_BATCH];
    struct world_disk *d = &rep->disk;
    struct disk_hard_state hs;
    struct disk_bounds b;
    if (sim_disk_hard_state_load(rep->twin, &hs) == 0) {
        d->term = hs.term;
        d->voted_for = hs.voted_for;
    }
    if (twin_load_snapshot(w, rep) < 0) {
        return;
    }
    /* Recovery's own duty: a snapshot whose log compaction did not happen (the disk failed
     * in between) makes the older entries useless, and a log ending below it unusable. */
    if (d->snap_index > 0) {
        twin_check(w, rep, sim_disk_compact(rep->twin, d->snap_index), "compact at recovery");
    }
    replica_mirror_cut(rep, 0);
    sim_disk_bounds(rep->twin, &b);
    for (uint64_t i = d->snap_index + 1; i <= b.index_last && !w->failed;) {
        int n = sim_disk_read(rep->twin, i, TWIN_READ_BATCH, out, buf, sizeof(buf));
        if (n <= 0 || d->n + (size_t)n > d->cap) {
            size_t cap = d->cap * 2 + (size_t)b.index_last + 64;
            struct world_ent *log = realloc(d->log, cap * sizeof(*log));
            if (n <= 0 || log == NULL) {
                world_fail(w, "replica %u: twin disk log unreadable after a disk error", rep->id);
                return;
            }
            d->log = log;
            d->cap = cap;
        }
        for (int k = 0; k < n; k++, i++) {
            twin_load_entry(d, &out[k]);
        }
    }
    d->n_durable = d->n;
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
    struct disk_bounds b;
    sim_disk_bounds(rep->twin, &b);
    if (rep->fault_armed) {
        if (b.index_last < rep->disk.snap_index + rep->disk.n_durable &&
            b.index_last >= rep->disk.snap_index) {
            world_fail(w, "replica %u: twin disk lost entries reported durable before its error",
                       rep->id);
            return;
        }
        rep->fault_armed = 0;
        rep->fail_stop = 0;
        twin_load(w, rep);
        return;
    }
    if (twin_verify_state(w, rep) < 0) {
        return;
    }
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
