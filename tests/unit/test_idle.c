/* Idle strategies: busy never gives the core away; back-off walks spin, pause, yield, sleep
 * and never sleeps longer than its bound; work resets it. */
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engine/runtime/idle.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

Test(idle, busy_never_pauses_or_sleeps)
{
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BUSY};
    cr_assert_eq(idle_init(&s, &c), 0);
    for (int i = 0; i < 100000; i++) {
        cr_assert_eq(idle_after(&s, 0), IDLE_ACT_NONE);
    }
    cr_assert_eq(s.sleeps, 0);
}

Test(idle, backoff_walks_spin_pause_yield_sleep)
{
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF,
                          .spin_rounds = 3,
                          .pause_rounds = 2,
                          .yield_rounds = 2,
                          .sleep_ns_min = 1000,
                          .sleep_ns_max = 4000};
    cr_assert_eq(idle_init(&s, &c), 0);
    enum idle_action want[] = {IDLE_ACT_NONE,  IDLE_ACT_NONE,  IDLE_ACT_NONE,
                               IDLE_ACT_PAUSE, IDLE_ACT_PAUSE, IDLE_ACT_YIELD,
                               IDLE_ACT_YIELD, IDLE_ACT_SLEEP, IDLE_ACT_SLEEP};
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_eq(idle_after(&s, 0), want[i], "round %u", i);
    }
}

Test(idle, sleep_doubles_up_to_its_bound)
{
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF,
                          .spin_rounds = 1,
                          .pause_rounds = 1,
                          .yield_rounds = 1,
                          .sleep_ns_min = 1000,
                          .sleep_ns_max = 5000};
    cr_assert_eq(idle_init(&s, &c), 0);
    uint32_t seen[8];
    for (int i = 0; i < 3; i++) {
        (void)idle_after(&s, 0);
    }
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(idle_after(&s, 0), IDLE_ACT_SLEEP);
        seen[i] = s.last_sleep_ns;
        cr_assert_leq(seen[i], 5000u);
    }
    cr_assert_eq(seen[0], 1000u);
    cr_assert_eq(seen[1], 2000u);
    cr_assert_eq(seen[2], 4000u);
    cr_assert_eq(seen[3], 5000u);
    cr_assert_eq(seen[7], 5000u);
}

Test(idle, sleeping_rounds_stay_short)
{
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF, .sleep_ns_max = 50000};
    cr_assert_eq(idle_init(&s, &c), 0);
    /* 1000 empty rounds: spins, pauses and yields, then at most ~600 sleeps of <= 50 us.
     * Generous bound against a loaded 2-core machine, but far below an unbounded sleep. */
    uint64_t t0 = now_ns();
    for (int i = 0; i < 1000; i++) {
        (void)idle_after(&s, 0);
    }
    uint64_t dt = now_ns() - t0;
    cr_assert_gt(s.sleeps, 0);
    cr_assert_lt(dt, 2000000000ull, "1000 idle rounds took %llu ns", (unsigned long long)dt);
}

Test(idle, work_resets_backoff)
{
    struct idle s;
    struct idle_conf c = {
        .mode = IDLE_BACKOFF, .spin_rounds = 1, .pause_rounds = 1, .yield_rounds = 1};
    cr_assert_eq(idle_init(&s, &c), 0);
    for (int i = 0; i < 5; i++) {
        (void)idle_after(&s, 0);
    }
    cr_assert_neq(s.last_sleep_ns, 0);
    cr_assert_eq(idle_after(&s, 3), IDLE_ACT_NONE);
    cr_assert_eq(s.empty_rounds, 0);
    cr_assert_eq(s.last_sleep_ns, 0);
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_NONE);
}

Test(idle, bad_conf_rejected)
{
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF, .sleep_ns_min = 10, .sleep_ns_max = 5};
    cr_assert_eq(idle_init(&s, &c), -EINVAL);
    struct idle_conf d = {.mode = (enum idle_mode)7};
    cr_assert_eq(idle_init(&s, &d), -EINVAL);
}

Test(idle, mode_parse)
{
    enum idle_mode m;
    cr_assert_eq(idle_mode_parse("busy", &m), 0);
    cr_assert_eq(m, IDLE_BUSY);
    cr_assert_eq(idle_mode_parse("backoff", &m), 0);
    cr_assert_eq(m, IDLE_BACKOFF);
    cr_assert_eq(idle_mode_parse("fast", &m), -EINVAL);
}

/* A pipe whose read end is readable (one byte written) or not. */
static void ready_pipe(int fds[2], int ready)
{
    cr_assert_eq(pipe(fds), 0);
    if (ready) {
        cr_assert_eq(write(fds[1], "x", 1), 1);
    }
}

Test(idle, wait_fd_add_checks_its_arguments)
{
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF};
    cr_assert_eq(idle_init(&s, &c), 0);
    cr_assert_eq(idle_wait_fd_add(&s, -1), -EINVAL);
    for (int i = 0; i < IDLE_WAIT_FDS_MAX; i++) {
        cr_assert_eq(idle_wait_fd_add(&s, 0), 0);
    }
    cr_assert_eq(idle_wait_fd_add(&s, 0), -ENOSPC);
}

Test(idle, ready_descriptor_ends_the_sleep_early)
{
    int p[2];
    ready_pipe(p, 1);
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF,
                          .spin_rounds = 1,
                          .yield_rounds = 1,
                          .sleep_ns_min = 500000000,
                          .sleep_ns_max = 500000000};
    cr_assert_eq(idle_init(&s, &c), 0);
    cr_assert_eq(idle_wait_fd_add(&s, p[0]), 0);
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_NONE);
    /* With descriptors the back-off skips its pause rounds: spin, yield, then sleep. */
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_YIELD);
    uint64_t t0 = now_ns();
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_SLEEP);
    uint64_t dt = now_ns() - t0;
    cr_assert_eq(s.wakeups, 1);
    cr_assert_lt(dt, 250000000ull, "a 500 ms sleep with a ready descriptor took %llu ns",
                 (unsigned long long)dt);
    close(p[0]);
    close(p[1]);
}

Test(idle, quiet_descriptor_sleeps_the_whole_time)
{
    int p[2];
    ready_pipe(p, 0);
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF,
                          .spin_rounds = 1,
                          .yield_rounds = 1,
                          .sleep_ns_min = 20000000,
                          .sleep_ns_max = 20000000};
    cr_assert_eq(idle_init(&s, &c), 0);
    cr_assert_eq(idle_wait_fd_add(&s, p[0]), 0);
    (void)idle_after(&s, 0);
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_YIELD);
    uint64_t t0 = now_ns();
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_SLEEP);
    cr_assert_geq(now_ns() - t0, 19000000ull);
    cr_assert_eq(s.wakeups, 0);
    close(p[0]);
    close(p[1]);
}

Test(idle, descriptor_ready_without_work_stops_waking_the_loop)
{
    int p[2];
    ready_pipe(p, 1);
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF,
                          .spin_rounds = 1,
                          .pause_rounds = 1,
                          .yield_rounds = 1,
                          .sleep_ns_min = 1000,
                          .sleep_ns_max = 100000};
    cr_assert_eq(idle_init(&s, &c), 0);
    cr_assert_eq(idle_wait_fd_add(&s, p[0]), 0);
    for (int i = 0; i < 1 + IDLE_WAKES_MAX + 10; i++) {
        (void)idle_after(&s, 0);
    }
    /* Stays ready but brings no work: after IDLE_WAKES_MAX the sleeps are plain again. */
    cr_assert_eq(s.wakeups, IDLE_WAKES_MAX);
    cr_assert_eq(idle_after(&s, 1), IDLE_ACT_NONE);
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_NONE);
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_YIELD);
    cr_assert_eq(idle_after(&s, 0), IDLE_ACT_SLEEP);
    cr_assert_eq(s.wakeups, IDLE_WAKES_MAX + 1, "work starts a new spell that may wake again");
    close(p[0]);
    close(p[1]);
}

Test(idle, descriptors_skip_the_pause_rounds_but_not_the_yields)
{
    int p[2];
    ready_pipe(p, 0);
    struct idle s;
    struct idle_conf c = {.mode = IDLE_BACKOFF,
                          .spin_rounds = 2,
                          .pause_rounds = 5,
                          .yield_rounds = 3,
                          .sleep_ns_min = 1000,
                          .sleep_ns_max = 1000};
    cr_assert_eq(idle_init(&s, &c), 0);
    cr_assert_eq(idle_wait_fd_add(&s, p[0]), 0);
    enum idle_action want[] = {IDLE_ACT_NONE,  IDLE_ACT_NONE,  IDLE_ACT_YIELD, IDLE_ACT_YIELD,
                               IDLE_ACT_YIELD, IDLE_ACT_SLEEP, IDLE_ACT_SLEEP};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_eq(idle_after(&s, 0), want[i], "round %zu", i);
    }
    close(p[0]);
    close(p[1]);
}
