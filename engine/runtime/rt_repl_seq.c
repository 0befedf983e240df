/* The sequencer on its own lcore ([replica] seq_lcore != apply_lcore): batches the leader's
 * writes from the request ring into pooled buffers sealed for the Raft core; what it must not
 * batch (reads, probes, anything while this replica does not lead) goes to the core as is. */
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "engine/ordo_assert.h"
#include "engine/runtime/rt_batch.h"
#include "engine/runtime/rt_repl.h"

/* Sealed batches in flight at most: the core proposes them as fast as they come, so these
 * only absorb a stall of the core lcore (a shared CPU); when all are in flight the sequencer
 * leaves requests to the core. */
#define RT_REPL_SEQ_BATCHES 64u

int rt_repl_seq_init(struct rt_repl *rp)
{
    struct rt *rt = rp->rt;
    rp->seq_apart = rt->stage_lcore[RT_STAGE_SEQ] != rt->stage_lcore[RT_STAGE_APPLY];
    if (!rp->seq_apart) {
        return 0;
    }
    char name[RTE_RING_NAMESIZE];
    snprintf(name, sizeof(name), "ordo_seq_%u", rt->self->id);
    int rc = rt_pipe_pool_init(&rp->seq_pool, name, RT_REPL_SEQ_BATCHES, rp->batch_cap);
    if (rc != 0) {
        return rc;
    }
    /* tx_burst mbufs at most: the sequencer lcore never sends, so the mbufs [replica] mbufs
     * counts for its TX burst (conf_mbufs_need) are the ones this ring may hold. */
    snprintf(name, sizeof(name), "ordo_fwd_%u", rt->self->id);
    rp->seq_fwd = rte_ring_create(name, rt->conf->replica.tx_burst, (int)rte_socket_id(),
                                  RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    return rp->seq_fwd == NULL ? -ENOMEM : 0;
}

void rt_repl_seq_fini(struct rt_repl *rp)
{
    void *m;
    if (rp->seq_fwd != NULL) {
        while (rte_ring_dequeue(rp->seq_fwd, &m) == 0) {
            rte_pktmbuf_free(m);
        }
        rte_ring_free(rp->seq_fwd);
        rp->seq_fwd = NULL;
    }
    rp->seq_open = NULL;
    rt_pipe_pool_fini(&rp->seq_pool);
}

static void rt_repl_seq_seal(struct rt_repl *rp)
{
    rt_pipe_seal(&rp->seq_pool, rp->seq_open);
    rp->seq_open = NULL;
}

static bool rt_repl_seq_open(struct rt_repl *rp)
{
    struct rt_pipe_buf *b = rt_pipe_get(&rp->seq_pool);
    if (b == NULL) {
        return false;
    }
    b->len = rt_batch_init(b->data);
    rp->seq_open = b;
    rp->seq_open_tsc = rte_rdtsc();
    return true;
}

/* Adds a write to the open batch (sealing it when full). False: too large for any batch, or
 * no buffer free; the core then handles the request itself. */
static bool rt_repl_seq_add(struct rt_repl *rp, struct rte_mbuf *m)
{
    const struct rt_meta *meta = rte_mbuf_to_priv(m);
    struct rt_batch_cmd c;
    rt_repl_cmd_of(&c, meta);
    if (RT_BATCH_HDR_LEN + rt_batch_cmd_len(&c) > rp->batch_cap) {
        return false; /* the core answers TOO_LARGE */
    }
    bool added = false;
    for (int tries = 0; tries < 2 && !added; tries++) {
        if (rp->seq_open == NULL && !rt_repl_seq_open(rp)) {
            return false;
        }
        struct rt_pipe_buf *b = rp->seq_open;
        added = rt_batch_add(b->data, b->cap, &b->len, &c) == 0;
        if (!added) {
            __atomic_fetch_add(&rp->view.batch_close[0], 1, __ATOMIC_RELAXED); /* full */
            rt_repl_seq_seal(rp);
        }
    }
    ORDO_ASSERT(added); /* an empty batch takes any command within batch_cap */
    rte_pktmbuf_free(m);
    if (rt_batch_count(rp->seq_open->data, rp->seq_open->len) >= rp->batch_count_max) {
        __atomic_fetch_add(&rp->view.batch_close[0], 1, __ATOMIC_RELAXED); /* full */
        rt_repl_seq_seal(rp);
    }
    return true;
}

/* The core's close rule (rt_batch_close_rule) from what the core and the log's owner
 * publish: the log's writing state and completed writes, the pipeline's idleness; sealed
 * batches the core has not taken yet count as work in the pipeline. */
static bool rt_repl_seq_due(struct rt_repl *rp, uint64_t tsc)
{
    uint64_t writes = __atomic_load_n(&rp->log_writes, __ATOMIC_ACQUIRE);
    struct rt_batch_clock c = {.age = tsc - rp->seq_open_tsc,
                               .time = rp->batch_time_tsc,
                               .hold_max = rp->batch_time_tsc * RT_BATCH_HOLD_MAX};
    c.log_writing = __atomic_load_n(&rp->log_writing, __ATOMIC_RELAXED) != 0 ? 1u : 0u;
    c.log_done = writes != rp->seq_writes_seen ? 1u : 0u;
    c.idle = __atomic_load_n(&rp->seq_idle, __ATOMIC_RELAXED) != 0 &&
             rte_ring_count(rp->seq_pool.full) == 0 && rte_ring_count(rp->rt->req_ring) == 0;
    rp->seq_writes_seen = writes;
    enum rt_batch_close why = rt_batch_close_rule(&c);
    if (why != RT_BATCH_KEEP) {
        __atomic_fetch_add(&rp->view.batch_close[why], 1, __ATOMIC_RELAXED);
    }
    return why != RT_BATCH_KEEP;
}

static void rt_repl_seq_request(struct rt_repl *rp, struct rte_mbuf *m, bool leader)
{
    const struct rt_meta *meta = rte_mbuf_to_priv(m);
    const struct sm *sm = rp->rt->sm;
    /* is_read is a pure function of op (engine/sm.h): safe from this lcore. */
    bool write = meta->kind == RT_META_REQUEST &&
                 (sess_is_register(meta->req.flags) || !sm->ops->is_read(sm, meta->req.op));
    if (leader && write && rt_repl_seq_add(rp, m)) {
        return;
    }
    if (rte_ring_sp_enqueue(rp->seq_fwd, m) != 0) {
        rte_pktmbuf_free(m); /* backpressure: the client retries */
        net_stats_inc(NET_CTR_RING_FULL);
    }
}

uint32_t rt_repl_seq_stage(struct rt *rt)
{
    struct rt_repl *rp = rt->repl;
    if (__atomic_load_n(&rt->failed, __ATOMIC_RELAXED) != 0) {
        return 0;
    }
    /* Acquire: pairs with the core's release when it becomes leader. A batch sealed just
     * after it lost leadership is refused BUSY by the core. */
    bool leader = __atomic_load_n(&rp->seq_leader, __ATOMIC_ACQUIRE) != 0;
    struct rte_mbuf *in[RT_BURST_MAX];
    /* No more than the forward ring takes: the rest waits in the request ring, not dropped. */
    uint32_t want = RTE_MIN((uint32_t)rt->rx_burst, rte_ring_free_count(rp->seq_fwd));
    uint32_t n = rte_ring_dequeue_burst(rt->req_ring, (void **)in, want, NULL);
    for (uint32_t i = 0; i < n; i++) {
        rt_repl_seq_request(rp, in[i], leader);
    }
    if (rp->seq_open != NULL && rt_repl_seq_due(rp, rte_rdtsc())) {
        rt_repl_seq_seal(rp);
        n++;
    }
    return n;
}
