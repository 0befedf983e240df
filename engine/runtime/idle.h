/* Idle strategies for polling loops: busy-poll (a dedicated core) or back-off (spin, then
 * pause/yield, then short sleeps) for machines where lcores share cores with others. A back-off
 * sleep ends early when one of the loop's wait descriptors (port sockets, io_uring) is ready. */
#ifndef ORDO_ENGINE_RUNTIME_IDLE_H
#define ORDO_ENGINE_RUNTIME_IDLE_H

#include <stdint.h>

#include "engine/api.h"

enum idle_mode {
    IDLE_BUSY = 0,    /* never give the core away */
    IDLE_BACKOFF = 1, /* spin, pause, yield, then sleep with doubling up to sleep_ns_max */
};

/* What idle_after did on this round (for tests and telemetry). */
enum idle_action {
    IDLE_ACT_NONE = 0,  /* work was done, or still spinning */
    IDLE_ACT_PAUSE = 1, /* a burst of CPU pause hints */
    IDLE_ACT_YIELD = 2, /* sched_yield */
    IDLE_ACT_SLEEP = 3, /* nanosleep of last_sleep_ns */
};

/* Descriptors one loop may wait on: a port's RX queues plus the log's io_uring. */
#define IDLE_WAIT_FDS_MAX 8
/* Early wake-ups per idle spell after which sleeps ignore the descriptors: a descriptor that
 * stays ready without giving the loop work must not turn the back-off into a busy loop. */
#define IDLE_WAKES_MAX 8

struct idle_conf {
    enum idle_mode mode;
    uint32_t spin_rounds;  /* empty rounds before pausing (default 64) */
    uint32_t pause_rounds; /* empty rounds of pause hints before yielding (default 256) */
    uint32_t yield_rounds; /* empty rounds of sched_yield before sleeping (default 64) */
    uint32_t sleep_ns_min; /* first sleep (default 1000) */
    uint32_t sleep_ns_max; /* longest sleep: bounds added latency (default 100000) */
};

/* One polling loop's idle state; owned by the lcore running the loop. */
struct idle {
    struct idle_conf conf;
    uint32_t empty_rounds;  /* consecutive rounds without work */
    uint32_t last_sleep_ns; /* 0 until the first sleep of this idle spell */
    uint64_t sleeps;        /* total sleeps (statistics) */
    uint64_t wakeups;       /* sleeps ended early by a ready descriptor (statistics) */
    uint32_t spell_wakes;   /* early wake-ups in this idle spell */
    uint32_t fds_n;
    int fds[IDLE_WAIT_FDS_MAX];
};

/* Fills defaults for zero fields and checks min <= max. Returns 0 or -EINVAL. */
ORDO_API int idle_init(struct idle *s, const struct idle_conf *conf);

/* Call once per loop round with the work the round did. work > 0 resets the back-off; with
 * no work it spins, pauses, yields, or sleeps at most conf.sleep_ns_max. Returns the action. */
ORDO_API enum idle_action idle_after(struct idle *s, uint32_t work);

/* Adds fd to the descriptors whose readiness (POLLIN) ends a back-off sleep early, so the loop
 * wakes when a frame or a log completion arrives instead of at the end of its sleep. With
 * descriptors the back-off skips its pause rounds and sleeps (ppoll) after its spin and yield
 * rounds, until IDLE_WAKES_MAX early wake-ups in one idle spell brought no work; without
 * descriptors a sleep is a plain nanosleep. Start-up only, from the loop's owner. Returns 0,
 * -EINVAL (fd < 0) or -ENOSPC (IDLE_WAIT_FDS_MAX already added). */
ORDO_API int idle_wait_fd_add(struct idle *s, int fd);

/* Parses "busy" or "backoff". Returns 0 or -EINVAL. */
ORDO_API int idle_mode_parse(const char *text, enum idle_mode *out);

#endif
