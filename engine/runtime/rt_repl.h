/* Replicated mode of the runtime (more than one node in the config): the sequencer, the Raft
 * core driver, the log stage on the io_uring disk log, the apply stage with leader replies and
 * follower redirects, ReadIndex reads, snapshots, and the /ordo/raft telemetry command.
 * All of it runs on the apply stage's lcore, except the sequencer (rt_repl_seq.c) and the log
 * (rt_repl_log.c) when the config places them on lcores of their own; see docs/replica.md. */
#ifndef ORDO_ENGINE_RUNTIME_RT_REPL_H
#define ORDO_ENGINE_RUNTIME_RT_REPL_H

#include <stdint.h>
#include <string.h>

#include "drivers/disk/disk.h"
#include "engine/api.h"
#include "engine/raft.h"
#include "engine/runtime/rt.h"
#include "engine/runtime/rt_batch.h"
#include "engine/runtime/rt_member.h"
#include "engine/runtime/rt_pipe.h"

/* The batch command for a client request the RX stage parsed: its reply address, key flag,
 * multi flag and request (the sequencer, apart or on the core's lcore, batches these). */
static inline void rt_repl_cmd_of(struct rt_batch_cmd *c, const struct rt_meta *meta)
{
    memcpy(c->dst_mac, meta->reply_addr.dst_mac, 6);
    c->dst_ip = meta->reply_addr.dst_ip;
    c->dst_port = meta->reply_addr.dst_port;
    c->has_key = meta->has_key;
    c->multi = meta->multi;
    c->req = meta->req;
}

#define RT_READS_MAX 1024u /* ReadIndex requests parked at once */
/* A partial batch waits for the log's write in flight at most this many batch_time_us. */
#define RT_BATCH_HOLD_MAX 40u
/* Peer frames by default stay within a standard 1500-byte MTU (veth and af_xdp defaults): a
 * batch, an AppendEntries and a snapshot chunk all fit one such frame. [replica] peer_mtu
 * raises the bound for jumbo-frame networks (9000 is common in datacenters): batches, and so
 * group commit, then grow up to batch_bytes_max. */
#define RT_PEER_FRAME_MAX 1514u

/* Largest frame (Ethernet header included, no CRC) sent to a peer under c's peer_mtu: at most
 * MSG_FRAME_LEN_MAX with room for the 4-byte CRC, so peer_mtu 9000 gives an IP MTU of 8982. */
static inline uint32_t rt_peer_frame_len(const struct conf *c)
{
    uint32_t len = c->replica.peer_mtu + 14u;
    if (len < RT_PEER_FRAME_MAX) {
        len = RT_PEER_FRAME_MAX;
    }
    return len < MSG_FRAME_LEN_MAX - 4u ? len : MSG_FRAME_LEN_MAX - 4u;
}

/* Auditing: every RT_AUDIT_EVERY applied entries each replica takes its state digest; the
 * leader's travels in heartbeats, the followers' in the responses (rt_audit.c). */
#define RT_AUDIT_EVERY 256u
#define RT_AUDIT_KEEP 16u

struct rt_snap;

struct rt_audit_mine {
    uint64_t index;
    uint8_t digest[MSG_DIGEST_LEN];
};

struct rt_audit {
    struct rt_audit_mine mine[RT_AUDIT_KEEP]; /* own digests, ring by audit number */
    struct raft_digest peer[MSG_NODES_MAX];   /* latest received, by position in conf->nodes */
    uint64_t compared[MSG_NODES_MAX];         /* peer[k].index last compared with ours */
    uint8_t differs[MSG_NODES_MAX];           /* its outcome: 1 when the digests differed */
    uint64_t pending_index;                   /* own digest not yet given to the core */
    uint64_t suspect_since_ms;                /* follower: differs from the leader since */
    uint64_t suspect_index;
    uint32_t suspect_leader; /* the leader suspected; a new leader clears the suspicion */
    uint64_t diverge_at;     /* test fault: corrupt the local state after applying this index */
    uint64_t ok;             /* peer digests that matched ours */
    uint64_t mismatches;     /* peer digests that differed */
};

/* A pktgen probe riding the log (docs/pktgen.md): its no-op command is in the batch proposed
 * at `index` (0: the batch is still open); the frame goes back once that index is applied. */
#define RT_PROBES_MAX 1024u
struct rt_probe {
    struct rte_mbuf *m;
    uint64_t index;
};

struct rt_read {
    uint64_t id;
    uint64_t index; /* ready at this applied index */
    struct rte_mbuf *m;
    uint8_t ready;
};

/* Telemetry view, written by the replica lcore, read by the telemetry thread. */
struct rt_repl_view {
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint64_t durable;
    uint64_t snapshot_index;
    uint64_t last_index;
    uint64_t first_index; /* first entry the core holds (log start: older ones need a snapshot) */
    uint32_t role;        /* enum raft_role */
    uint32_t leader;
    uint64_t match[MSG_NODES_MAX]; /* by position in conf->nodes */
    uint64_t batches;
    uint64_t batch_cmds;
    uint64_t batch_bytes;
    uint64_t batch_cmds_max;
    uint64_t redirects;
    uint64_t reads;
    uint64_t elections_won;
    uint64_t snapshots_taken;
    uint64_t snapshots_installed;
    uint64_t audits_ok;
    uint64_t audit_mismatches;
    uint64_t audit_mismatch_node;          /* last peer whose digest differed from ours, 0: none */
    uint64_t audit_mismatch_index;         /* and the index of that digest */
    uint64_t batch_close[RT_BATCH_CLOSES]; /* batches closed by rt_batch_close_rule, by reason */
    uint64_t log_writes;                   /* log write+sync pairs completed (disk_stats) */
    uint64_t log_entries;                  /* entries they made durable */
    uint64_t log_write_us;                 /* their total submit-to-reap time */
    uint8_t digest[MSG_DIGEST_LEN];        /* state digest at `applied` */
};

struct rt_repl {
    struct rt *rt;
    struct raft *raft;
    struct disk_log *log;
    uint64_t tsc_hz;
    uint64_t tsc0;
    uint64_t now_ms;
    uint64_t next_tick_ms;
    uint8_t role;
    uint32_t leader;
    /* Sequencer. */
    uint8_t *batch;
    uint32_t batch_len;
    uint32_t batch_cap;
    uint32_t batch_count_max;
    uint64_t batch_open_tsc; /* 0: no batch open */
    uint64_t batch_time_tsc;
    uint32_t peer_frame; /* rt_peer_frame_len */
    /* Log and apply. */
    uint64_t reported; /* durable index last reported to the core */
    uint64_t snap_index;
    uint64_t applied;
    uint8_t *result;
    /* ReadIndex. */
    uint64_t read_seq;
    uint32_t reads_head;
    uint32_t reads_n;
    struct rt_read reads[RT_READS_MAX];
    /* Probes waiting for their entry, oldest first (indexes never decrease along the FIFO). */
    uint32_t probes_head;
    uint32_t probes_n;
    uint64_t probes_dropped; /* refused: not the leader, FIFO full, proposal refused */
    struct rt_probe probes[RT_PROBES_MAX];
    struct msg_entry rx_entries[MSG_ENTRIES_MAX];
    struct rt_audit audit;
    struct rt_repl_view view;
    /* Operator requests from the telemetry thread (/ordo/transfer, /ordo/snapshot), taken
     * by the apply stage: the telemetry thread never steps the core itself.
     * admin_transfer: 0 none, else RT_ADMIN_PENDING | target (MSG_NODE_NONE: best voter). */
    uint64_t admin_transfer;
    uint32_t admin_snapshot;
    struct rt_member member; /* configuration in use, operator changes (rt_member.c) */
    struct rt_snap *bg;      /* background snapshots (rt_snap.c) */
    /* Sequencer on its own lcore (rt_repl_seq.c; seq_apart false: the core's round batches). */
    bool seq_apart;
    struct rt_pipe_pool seq_pool; /* sequencer -> core: sealed batches, recycled */
    struct rte_ring *seq_fwd;     /* sequencer -> core (SPSC): requests it does not batch */
    struct rt_pipe_buf *seq_open; /* the sequencer's open batch */
    uint64_t seq_open_tsc;
    uint32_t seq_leader;      /* published by the core: 1 while it leads (the sequencer batches) */
    uint32_t log_writing;     /* published by the log's owner: a write is in flight */
    uint64_t log_writes;      /* published by the log's owner: writes completed (disk_stats) */
    uint32_t seq_idle;        /* published by the core: nothing proposed waits for commit */
    uint64_t seq_writes_seen; /* sequencer: log_writes at its last close check */
    /* Log on its own lcore (rt_repl_log.c; log_apart false: the core drives the log). */
    bool log_apart;
    struct rt_pipe_log log_q;
    uint64_t log_trunc_seq; /* reports from before this truncation command are stale */
};

#define RT_ADMIN_PENDING (1ull << 32)

/* Recovers hard state, snapshot and log from the node's data directory, creates the Raft core
 * and the peer ring. rt's port and rings exist already. Returns 0 or an error (e says why). */
ORDO_API int rt_repl_init(struct rt *rt, struct ordo_errmsg *e);
ORDO_API void rt_repl_fini(struct rt *rt);
/* One round of every replicated stage (ticks, peers, sequencer, log, reads). Returns the work
 * done. On a fatal error (disk) sets rt->failed and asks every stage to stop. */
ORDO_API uint32_t rt_repl_stage(struct rt *rt);

/* The sequencer's and the log's own lcores (rt.c runs them when placed apart). */
ORDO_API uint32_t rt_repl_seq_stage(struct rt *rt);
ORDO_API uint32_t rt_repl_log_stage(struct rt *rt);
/* Start-up / teardown of the handoffs for the stages placed apart (rt->stage_lcore). */
ORDO_API int rt_repl_seq_init(struct rt_repl *rp);
ORDO_API void rt_repl_seq_fini(struct rt_repl *rp);
ORDO_API int rt_repl_log_init(struct rt_repl *rp);
ORDO_API void rt_repl_log_fini(struct rt_repl *rp);
/* Core side of a log placed apart (no-ops when it is not): hold stops the log lcore so that
 * the caller may use rp->log directly (snapshots, installs); false when the runtime stops
 * meanwhile (skip the work). release lets the log lcore go on. */
ORDO_API bool rt_repl_log_hold(struct rt_repl *rp);
/* The log's counters into the telemetry view (and log_writes): called by the log's owner. */
ORDO_API void rt_repl_log_stats(struct rt_repl *rp);
ORDO_API void rt_repl_log_release(struct rt_repl *rp);

/* Internal to the replicated stages (rt_repl.c, rt_repl_stage.c). */
ORDO_API const char *rt_repl_role_name(uint8_t role);
/* Logs the cause once, records it in rt->failed and stops every stage (fail-stop). */
ORDO_API void rt_repl_fail(struct rt_repl *rp, const char *what, int rc);
/* Loads sessions then the application from snapshot bytes. Returns 0 or the read error. */
ORDO_API int rt_repl_load(struct rt_repl *rp, const uint8_t *data, uint64_t len);
/* Snapshots at the applied index, tells the core (its update lands in *up: the caller
 * handles it) and compacts the log. Returns 1 when taken, 0 when not possible, or the error. */
ORDO_API int rt_repl_snapshot(struct rt_repl *rp, struct raft_update *up);

/* Handles one raft_update in the core's order (rt_repl_stage.c). */
ORDO_API void rt_repl_handle_update(struct rt_repl *rp, struct raft_update *up);

/* Auditing (rt_audit.c). After each applied entry: */
ORDO_API void rt_audit_applied(struct rt_repl *rp, uint64_t index);
/* Digests received in an update: */
ORDO_API void rt_audit_received(struct rt_repl *rp, const struct raft_update *up);
/* Once per round, outside any update: gives a new own digest to the core and compares;
 * fail-stops a replica whose digest differs from the majority's. */
ORDO_API void rt_audit_round(struct rt_repl *rp);
/* Test-only fault (ordo --diverge-at): after applying index, the local state changes. */
ORDO_API void rt_repl_diverge_at(struct rt *rt, uint64_t index);

#endif
