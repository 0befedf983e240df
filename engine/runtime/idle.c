/* Back-off for polling loops. The only place a stage lcore may sleep; bounded by
 * sleep_ns_max so a waking packet waits at most that long. */
#include "engine/runtime/idle.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include <rte_pause.h>

#define IDLE_PAUSES_PER_ROUND 32

int idle_init(struct idle *s, const struct idle_conf *conf)
{
    memset(s, 0, sizeof(*s));
    s->conf = *conf;
    struct idle_conf *c = &s->conf;
    if (c->mode != IDLE_BUSY && c->mode != IDLE_BACKOFF) {
        return -EINVAL;
    }
    c->spin_rounds = c->spin_rounds != 0 ? c->spin_rounds : 64;
    c->pause_rounds = c->pause_rounds != 0 ? c->pause_rounds : 256;
    c->yield_rounds = c->yield_rounds != 0 ? c->yield_rounds : 64;
    c->sleep_ns_min = c->sleep_ns_min != 0 ? c->sleep_ns_min : 1000;
    c->sleep_ns_max = c->sleep_ns_max != 0 ? c->sleep_ns_max : 100000;
    if (c->sleep_ns_min > c->sleep_ns_max || c->sleep_ns_max >= 1000000000u) {
        return -EINVAL;
    }
    return 0;
}

int idle_wait_fd_add(struct idle *s, int fd)
{
    if (fd < 0) {
        return -EINVAL;
    }
    if (s->fds_n == IDLE_WAIT_FDS_MAX) {
        return -ENOSPC;
    }
    s->fds[s->fds_n++] = fd;
    return 0;
}

/* Sleeps ts, or less when a wait descriptor becomes readable. Readiness is only a hint to
 * wake: the loop's next round polls the port and the ring as always. */
static void idle_wait(struct idle *s, const struct timespec *ts)
{
    if (s->fds_n == 0 || s->spell_wakes >= IDLE_WAKES_MAX) {
        /* An interrupted sleep (a stop signal) simply ends early: the loop rechecks its flag. */
        (void)nanosleep(ts, NULL);
        return;
    }
    struct pollfd p[IDLE_WAIT_FDS_MAX];
    for (uint32_t i = 0; i < s->fds_n; i++) {
        p[i].fd = s->fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    if (ppoll(p, s->fds_n, ts, NULL) > 0) {
        s->wakeups++;
        s->spell_wakes++;
    }
}

static void idle_sleep(struct idle *s)
{
    uint32_t ns = s->last_sleep_ns == 0 ? s->conf.sleep_ns_min : s->last_sleep_ns * 2;
    if (ns > s->conf.sleep_ns_max || ns < s->last_sleep_ns) {
        ns = s->conf.sleep_ns_max;
    }
    s->last_sleep_ns = ns;
    s->sleeps++;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
    idle_wait(s, &ts);
}

enum idle_action idle_after(struct idle *s, uint32_t work)
{
    if (work != 0) {
        s->empty_rounds = 0;
        s->last_sleep_ns = 0;
        s->spell_wakes = 0;
        return IDLE_ACT_NONE;
    }
    if (s->conf.mode == IDLE_BUSY) {
        return IDLE_ACT_NONE;
    }
    const struct idle_conf *c = &s->conf;
    uint32_t r = s->empty_rounds;
    if (r < UINT32_MAX) {
        s->empty_rounds = r + 1;
    }
    if (r < c->spin_rounds) {
        return IDLE_ACT_NONE;
    }
    r -= c->spin_rounds;
    if (s->fds_n != 0 && s->spell_wakes < IDLE_WAKES_MAX) {
        /* Readiness of the wait descriptors wakes the loop, so no pause rounds: they would
         * only burn a core the other processes need (shared machines). The yield rounds
         * stay: under a steady stream the next frame usually arrives while other processes
         * run, and is then taken without a sleep and wake-up. */
        if (r < c->yield_rounds) {
            (void)sched_yield();
            return IDLE_ACT_YIELD;
        }
        idle_sleep(s);
        return IDLE_ACT_SLEEP;
    }
    if (r < c->pause_rounds) {
        for (int i = 0; i < IDLE_PAUSES_PER_ROUND; i++) {
            rte_pause();
        }
        return IDLE_ACT_PAUSE;
    }
    r -= c->pause_rounds;
    if (r < c->yield_rounds) {
        (void)sched_yield();
        return IDLE_ACT_YIELD;
    }
    idle_sleep(s);
    return IDLE_ACT_SLEEP;
}

int idle_mode_parse(const char *text, enum idle_mode *out)
{
    if (strcmp(text, "busy") == 0) {
        *out = IDLE_BUSY;
        return 0;
    }
    if (strcmp(text, "backoff") == 0) {
        *out = IDLE_BACKOFF;
        return 0;
    }
    return -EINVAL;
}
