/* The log stage on its own lcore (replicated mode, [replica] log_lcore != apply_lcore): the
 * io_uring disk log is then used by that lcore only; the core sends it commands and reads its
 * durable report through rt_pipe_log, and holds it for snapshots and installs. */
#include <stdio.h>

#include "engine/runtime/rt_repl.h"

int rt_repl_log_init(struct rt_repl *rp)
{
    struct rt *rt = rp->rt;
    rp->log_apart = rt->stage_lcore[RT_STAGE_LOG] != rt->stage_lcore[RT_STAGE_APPLY];
    if (!rp->log_apart) {
        return 0;
    }
    char name[RTE_RING_NAMESIZE];
    snprintf(name, sizeof(name), "ordo_log_%u", rt->self->id);
    return rt_pipe_log_init(&rp->log_q, name, &rt->stop);
}

void rt_repl_log_fini(struct rt_repl *rp)
{
    rt_pipe_log_fini(&rp->log_q);
}

uint32_t rt_repl_log_stage(struct rt *rt)
{
    struct rt_repl *rp = rt->repl;
    if (__atomic_load_n(&rt->failed, __ATOMIC_RELAXED) != 0) {
        return 0; /* fail-stopped: the log does nothing more */
    }
    uint32_t work = rt_pipe_log_serve(&rp->log_q, rp->log);
    if (work != 0) {
        rt_repl_log_stats(rp);
    }
    return work;
}

void rt_repl_log_stats(struct rt_repl *rp)
{
    struct rt_repl_view *v = &rp->view;
    struct disk_stats ds;
    disk_log_stats(rp->log, &ds);
    __atomic_store_n(&v->log_writes, ds.writes, __ATOMIC_RELAXED);
    __atomic_store_n(&v->log_entries, ds.entries, __ATOMIC_RELAXED);
    __atomic_store_n(&v->log_write_us, ds.write_us, __ATOMIC_RELAXED);
    __atomic_store_n(&rp->log_writes, ds.writes, __ATOMIC_RELEASE);
}

bool rt_repl_log_hold(struct rt_repl *rp)
{
    return !rp->log_apart || rt_pipe_log_hold(&rp->log_q) == 0;
}

void rt_repl_log_release(struct rt_repl *rp)
{
    if (rp->log_apart) {
        rt_pipe_log_release(&rp->log_q, rp->log);
    }
}
