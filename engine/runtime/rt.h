/* The replica runtime: one port, the RX, apply and TX stages, the rings between them, the
 * mapping of stages onto lcores, and (more than one node) the replicated stages of rt_repl.h.
 * Owns nothing the caller passed in (config, state machine); never prints or exits. */
#ifndef ORDO_ENGINE_RUNTIME_RT_H
#define ORDO_ENGINE_RUNTIME_RT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ring.h>

#include "drivers/net/net.h"
#include "drivers/net/net_local.h"
#include "engine/api.h"
#include "engine/err.h"
#include "engine/runtime/conf.h"
#include "engine/runtime/idle.h"
#include "engine/sess.h"
#include "engine/sm.h"
#include "engine/wire.h"

#define RT_BURST_MAX 512
/* Largest multi-reply frame: a standard Ethernet frame, so any client port takes it. */
#define RT_MULTI_FRAME_MAX 1514u

enum rt_stage {
    RT_STAGE_RX = 0,    /* port RX -> parse, check, ARP/ICMP, request ring */
    RT_STAGE_APPLY = 1, /* request ring -> state machine -> reply ring */
    RT_STAGE_TX = 2,    /* reply ring -> port TX */
    /* Replicated mode only, when placed apart from the apply lcore (else the apply lcore's
     * round runs them): */
    RT_STAGE_SEQ = 3, /* request ring -> write batches -> Raft core (rt_repl_seq.c) */
    RT_STAGE_LOG = 4, /* log commands -> io_uring disk log -> durable report */
    RT_STAGES = 5,
};

/* The stages one lcore runs, with that lcore's idle state. */
struct rt_lcore {
    struct rt *rt;
    uint32_t lcore_id;
    uint32_t stages; /* bit (1 << enum rt_stage) */
    struct idle idle;
    uint64_t rounds;
    /* Longest wall time of one call of each stage, and the longest gap between two round
     * starts (idle sleep included), in TSC cycles: a stage that blocks, or an lcore the
     * kernel did not run, shows here (logged at exit). */
    uint64_t stage_max_tsc[RT_STAGES];
    uint64_t gap_max_tsc;
};

struct rt {
    const struct conf *conf;      /* borrowed for the runtime's lifetime */
    const struct conf_node *self; /* borrows conf */
    struct sm *sm;                /* borrowed; used by the apply lcore only */
    struct sess_table *sess;      /* owned */
    struct net_port port;         /* owned */
    struct net_local local;       /* RX lcore */
    struct rte_ring *req_ring;    /* MPSC: RX stage(s) -> apply stage */
    struct rte_ring *tx_ring;     /* MPSC: apply stage and RX (ARP/ICMP) -> TX stage */
    struct rte_ring *peer_ring;   /* replicated mode: RX -> Raft (MAC-checked peer frames) */
    struct rt_repl *repl;         /* replicated mode (more than one node), else NULL */
    int failed;                   /* fail-stop cause (negative), 0 while healthy */
    struct wire_key cluster_key;
    uint8_t *result; /* apply stage's result buffer, result_cap bytes */
    uint32_t result_cap;
    uint64_t applied_index; /* commands applied (single-replica "log index") */
    uint64_t arp_interval_tsc;
    uint16_t rx_burst;
    uint16_t tx_burst;
    unsigned rx_csum_flags; /* FRAME_SKIP_* the port's RX offload allows */
    bool tx_csum_hw;
    /* mbuf dynamic flag on replies to requests that came in multi-request frames: the TX
     * stage packs those for one address into a multi-reply. 0: never packed. */
    uint64_t multi_flag;
    uint32_t stage_lcore[RT_STAGES];
    uint32_t lcores_n;
    struct rt_lcore lcores[RT_STAGES]; /* one per distinct stage lcore */
    int stop;                          /* set by rt_request_stop, read by every stage lcore */
};

/* Private area of every mbuf in the port's pool: what the RX stage learned, for the apply
 * stage. Pointers borrow the mbuf's data. */
enum rt_meta_kind {
    RT_META_REQUEST = 1,
    RT_META_PROBE = 2,
    RT_META_PEER = 3, /* replicated mode: a peer message whose MAC verified */
};

struct rt_meta {
    uint8_t kind;         /* enum rt_meta_kind */
    uint16_t payload_off; /* RT_META_PEER: the Ordo message's offset and length in the mbuf */
    uint32_t payload_len;
    uint8_t has_key; /* the request carried a client MAC: the reply carries one with key */
    uint8_t multi;   /* it came in a multi-request frame: its reply may be packed (rt_stage_tx) */
    struct frame_udp_addr reply_addr;
    struct msg_client_request req;
    struct wire_key key;
};

/* Largest frame the runtime receives or sends for a key-value store with values of at most
 * value_max bytes (a CAS carries two), capped at MSG_FRAME_LEN_MAX. */
ORDO_API uint16_t rt_frame_len_max(uint32_t value_max);

/* Whether node self of conf runs replicated (Raft, disk log): more than one node and a data
 * directory (conf_load always sets one; hand-built test configs may leave it empty to get
 * the single-replica stages). */
ORDO_API bool rt_replicated(const struct conf *conf, const struct conf_node *self);

/* Brings up node node_id of conf over sm: checks that every stage lcore is an enabled EAL
 * lcore, opens the node's port (EAL already initialised), creates the rings and the session
 * table. conf and sm are borrowed until rt_fini. On error everything is undone and e names
 * the cause. Returns 0, ORDO_ECONFIG, -ENOMEM or the port's error. Main lcore. */
ORDO_API int rt_init(struct rt *rt, const struct conf *conf, uint32_t node_id, struct sm *sm,
                     struct ordo_errmsg *e);

/* Runs the stages on their lcores (workers through rte_eal_remote_launch, the main lcore
 * itself) until rt_request_stop, then waits for every worker. Returns 0 or the negative
 * errno of a failed launch. Main lcore. */
ORDO_API int rt_run(struct rt *rt);

/* Asks every stage loop to return. Async-signal-safe; any thread. */
ORDO_API void rt_request_stop(struct rt *rt);

/* Stops the port and frees what rt_init made. Only after rt_run returned (or instead of it). */
ORDO_API void rt_fini(struct rt *rt);

/* The stages: poll functions returning the work done (frames handled). Each must be called
 * from one lcore at a time; they share data only through the rings. */
ORDO_API uint32_t rt_stage_rx(struct rt *rt);
ORDO_API uint32_t rt_stage_apply(struct rt *rt);
ORDO_API uint32_t rt_stage_tx(struct rt *rt);

/* Shared with the replicated stages (rt_repl.c). */
struct msg_client_reply;
/* Builds the reply frame in m (its metadata gives address and key). False: m was freed. */
ORDO_API bool rt_build_reply(struct rt *rt, struct rte_mbuf *m, const struct rt_meta *meta,
                             const struct msg_client_reply *reply);
/* Builds message out (any client type) to meta's reply address in m. False: m was freed. */
ORDO_API bool rt_build_msg(struct rt *rt, struct rte_mbuf *m, const struct rt_meta *meta,
                           struct msg *out);
/* Enqueues n mbufs on r; what does not fit is freed and counted. Returns the count queued. */
ORDO_API uint32_t rt_enqueue(struct rte_ring *r, struct rte_mbuf **m, uint32_t n);

#endif
