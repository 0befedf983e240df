/* The simulated twin's own faults: crash modes, torn last write, bit rot, full disk, latency and
 * determinism from the seed. */
#include <criterion/criterion.h>
#include <errno.h>

#include "disk_test_util.h"

static struct sim_disk *sim_new(uint64_t seed, uint64_t lat_min, uint64_t lat_max)
{
    struct sim_disk_config c;
    sim_disk_config_default(&c);
    c.seed = seed;
    c.latency_min = lat_min;
    c.latency_max = lat_max;
    c.capacity_bytes = 1u << 20;
    c.batch_bytes_max = 64u << 10;
    c.entry_len_max = 4096;
    int rc;
    struct sim_disk *d = sim_disk_create(&c, &rc);
    cr_assert_not_null(d, "%d", rc);
    return d;
}

static void sim_append(struct sim_disk *d, uint64_t first, uint64_t last, uint32_t len)
{
    static uint8_t bufs[64][512];
    struct msg_entry e[64];
    cr_assert_leq(last - first + 1, 64);
    for (uint64_t i = first; i <= last; i++) {
        dt_entry(&e[i - first], bufs[i - first], i, 1, len);
    }
    cr_assert_eq(sim_disk_append(d, e, (uint32_t)(last - first + 1)), 0);
}

/* Advances virtual time one unit per poll until `index` is durable; returns the time taken. */
static uint64_t sim_run(struct sim_disk *d, uint64_t *now, uint64_t index)
{
    uint64_t start = *now;
    uint64_t durable = 0;
    for (int i = 0; i < 100000 && durable < index; i++) {
        sim_disk_set_time(d, ++*now);
        cr_assert_geq(sim_disk_poll(d, &durable), 0);
    }
    cr_assert_geq(durable, index);
    return *now - start;
}

Test(disk_sim, latency_in_virtual_time)
{
    struct sim_disk *d = sim_new(7, 10, 10);
    uint64_t now = 0;
    sim_append(d, 1, 5, 100);
    uint64_t durable = 0;
    sim_disk_set_time(d, now);
    cr_assert_eq(sim_disk_poll(d, &durable), 0); /* submits at time 0 */
    sim_disk_set_time(d, 9);
    cr_assert_eq(sim_disk_poll(d, &durable), 0);
    cr_assert_eq(durable, 0, "durable before its latency elapsed");
    sim_disk_set_time(d, 10);
    cr_assert_eq(sim_disk_poll(d, &durable), 1);
    cr_assert_eq(durable, 5);
    sim_disk_destroy(d);
}

Test(disk_sim, crash_drop_loses_unsynced_only)
{
    struct sim_disk *d = sim_new(1, 5, 5);
    uint64_t now = 0;
    sim_append(d, 1, 10, 100);
    sim_run(d, &now, 10);
    sim_append(d, 11, 20, 100);
    sim_disk_poll(d, NULL);     /* in flight, not durable */
    sim_append(d, 21, 25, 100); /* staged */
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(sim_disk_crash(d, SIM_DISK_CRASH_DROP, &err), 0, "%s", err.text);
    struct disk_bounds b;
    sim_disk_bounds(d, &b);
    cr_assert_eq(b.index_last, 10);
    cr_assert_eq(b.index_durable, 10);
    sim_append(d, 11, 12, 50);
    sim_run(d, &now, 12);
    sim_disk_destroy(d);
}

Test(disk_sim, crash_keep_persists_unacknowledged_write)
{
    struct sim_disk *d = sim_new(1, 5, 5);
    uint64_t now = 0;
    sim_append(d, 1, 10, 100);
    sim_disk_poll(d, NULL);
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(sim_disk_crash(d, SIM_DISK_CRASH_KEEP, &err), 0, "%s", err.text);
    struct disk_bounds b;
    sim_disk_bounds(d, &b);
    cr_assert_eq(b.index_last, 10);
    (void)now;
    sim_disk_destroy(d);
}

Test(disk_sim, torn_crash_keeps_a_prefix_of_whole_records)
{
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct sim_disk *d = sim_new(seed, 3, 3);
        uint64_t now = 0;
        sim_append(d, 1, 4, 200);
        sim_run(d, &now, 4);
        sim_append(d, 5, 30, 200);
        sim_disk_poll(d, NULL);
        struct ordo_errmsg err = {{0}};
        cr_assert_eq(sim_disk_crash(d, SIM_DISK_CRASH_TORN, &err), 0, "seed %lu: %s",
                     (unsigned long)seed, err.text);
        struct disk_bounds b;
        sim_disk_bounds(d, &b);
        cr_assert_geq(b.index_last, 4, "seed %lu lost durable entries", (unsigned long)seed);
        cr_assert_lt(b.index_last, 30, "seed %lu: a torn write survived whole",
                     (unsigned long)seed);
        static uint8_t buf[1u << 16];
        struct msg_entry out[64];
        cr_assert_eq(sim_disk_read(d, 1, 64, out, buf, sizeof(buf)), (int)b.index_last);
        sim_disk_destroy(d);
    }
}

Test(disk_sim, bit_rot_detected_on_read_and_restart)
{
    struct sim_disk *d = sim_new(3, 1, 1);
    uint64_t now = 0;
    for (uint64_t i = 1; i <= 10; i++) {
        sim_append(d, i, i, 64);
        sim_run(d, &now, i);
    }
    cr_assert_eq(sim_disk_rot(d, 4, 60, 3), 0);
    static uint8_t buf[4096];
    struct msg_entry out[4];
    cr_assert_eq(sim_disk_read(d, 4, 1, out, buf, sizeof(buf)), ORDO_ECORRUPT);
    cr_assert_eq(sim_disk_read(d, 3, 1, out, buf, sizeof(buf)), 1);
    struct ordo_errmsg err = {{0}};
    cr_assert_eq(sim_disk_crash(d, SIM_DISK_CRASH_DROP, &err), ORDO_ECORRUPT);
    cr_assert_not_null(strstr(err.text, "record index 4"), "%s", err.text);
    cr_assert_eq(sim_disk_append(d, NULL, 0), ORDO_ESTOPPED);
    sim_disk_destroy(d);
}

Test(disk_sim, full_disk_stops)
{
    struct sim_disk *d = sim_new(3, 1, 1);
    uint64_t now = 0;
    sim_disk_set_capacity(d, 2000);
    sim_append(d, 1, 5, 200);
    sim_run(d, &now, 5);
    sim_append(d, 6, 20, 200);
    uint64_t durable = 0;
    int rc = 0;
    for (int i = 0; i < 10 && rc >= 0; i++) {
        sim_disk_set_time(d, ++now);
        rc = sim_disk_poll(d, &durable);
    }
    cr_assert_eq(rc, -ENOSPC);
    cr_assert_eq(durable, 5);
    cr_assert_eq(sim_disk_error(d), -ENOSPC);
    sim_disk_destroy(d);
}

Test(disk_sim, hard_state_save_failure_stops)
{
    struct sim_disk *d = sim_new(3, 1, 1);
    struct disk_hard_state hs = {4, 2};
    cr_assert_eq(sim_disk_hard_state_save(d, &hs), 0);
    sim_disk_fail_next_sync(d, -EIO);
    struct disk_hard_state hs2 = {5, 1};
    cr_assert_eq(sim_disk_hard_state_save(d, &hs2), -EIO);
    cr_assert_eq(sim_disk_hard_state_load(d, &hs), 0);
    cr_assert_eq(hs.term, 4);
    cr_assert_eq(sim_disk_hard_state_save(d, &hs2), ORDO_ESTOPPED);
    sim_disk_destroy(d);
}

/* Same seed, same calls: same durable times and same torn lengths. */
static uint64_t sim_trace(uint64_t seed)
{
    struct sim_disk *d = sim_new(seed, 1, 50);
    uint64_t now = 0;
    uint64_t h = 0;
    for (uint64_t i = 1; i <= 40; i++) {
        sim_append(d, i, i, 32);
        h = h * 31 + sim_run(d, &now, i);
    }
    sim_append(d, 41, 60, 32);
    sim_disk_poll(d, NULL);
    struct ordo_errmsg err;
    sim_disk_crash(d, SIM_DISK_CRASH_TORN, &err);
    struct disk_bounds b;
    sim_disk_bounds(d, &b);
    h = h * 31 + b.index_last;
    sim_disk_destroy(d);
    return h;
}

Test(disk_sim, deterministic_from_seed)
{
    cr_assert_eq(sim_trace(99), sim_trace(99));
    cr_assert_neq(sim_trace(99), sim_trace(100));
}
