/* Shared state of one simulated run: replicas of the real Raft core with their simulated
 * disks and state machines, clients, the network, the virtual clock and the checkers'
 * records. Test-only code: it allocates freely and prints. */
#ifndef ORDO_TESTS_SIM_WORLD_H
#define ORDO_TESTS_SIM_WORLD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/msg.h"
#include "engine/raft.h"
#include "engine/sess.h"
#include "engine/sm.h"
#include "tests/sim/lin.h"
#include "tests/sim/rng.h"
#include "tests/sim/vnet.h"

#define WORLD_NODES_MAX 16 /* replica ids 1..16 (also their network addresses) */
#define WORLD_CLIENTS_MAX 8
#define WORLD_CLIENT_ADDR0 32 /* client i has network address 32 + i */
#define WORLD_KEYS 3
#define WORLD_NEVER UINT64_MAX

/* Deliberate bugs in the simulated replicas themselves (not the core), to show that the
 * client-side checkers see what they must: above the core's RAFT_MUT_* bits. */
#define WORLD_MUT_STALE_READS 0x10000u /* any replica serves reads from its local state */
#define WORLD_MUT_NO_SESSIONS 0x20000u /* commands bypass the session table */
#define WORLD_MUT_FIRST_OPENS 0x40000u /* the old rule: request 1 of an unknown client opens */
#define WORLD_MUT_CORE_MASK 0xffffu

/* One entry as written to the simulated disk (owned copy) with its log-matching chain. */
struct world_ent {
    uint64_t term;
    uint8_t type;
    uint32_t len;
    uint8_t *data;
    uint64_t dhash; /* hash of (type, data) */
    uint64_t chain; /* hash of the whole log prefix ending here */
};

/* Minimal in-simulator disk (the drivers/disk twin had not landed): hard state and snapshot
 * writes are atomic and synchronous; entries are written, then become durable when a
 * simulated fsync completes; a crash keeps the durable prefix plus a random prefix of the
 * unsynced tail (the rest lost or torn, which recovery drops the same way). */
struct world_disk {
    uint64_t term;
    uint32_t voted_for;
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t snap_chain;
    struct msg_config snap_config;
    uint8_t *snap_data;
    uint64_t snap_len;
    struct world_ent *log; /* entries snap_index+1 .. snap_index+n */
    size_t n;
    size_t cap;
    size_t n_durable;
    uint64_t sync_at; /* WORLD_NEVER when no fsync is in flight */
    size_t sync_upto; /* the fsync in flight covers entries written before it: log[0..upto) */
};

struct world_read {
    uint64_t id;
    uint64_t index; /* 0 until the core says the read is ready */
    uint32_t client_addr;
    uint64_t client_id;
    uint64_t request_no;
    uint8_t op;
    uint32_t args_len;
    uint8_t args[64];
};

struct sim_disk;

struct world_replica {
    uint32_t id;
    uint8_t exists;  /* created (founding or added) */
    uint8_t up;      /* running; 0 = crashed */
    uint8_t removed; /* out of the configuration, shut down for good */
    uint8_t member;  /* has appeared in a committed configuration */
    struct raft *raft;
    struct sm *sm;
    struct sess_table *sess;
    uint64_t applied;
    uint64_t tick_at;
    uint8_t role;
    uint64_t term;
    uint8_t snap_wanted;
    uint64_t restart_at;    /* crashed: when the fault schedule restarts it */
    uint64_t crash_at;      /* up: when the fault schedule crashes it (WORLD_NEVER: not planned) */
    uint64_t lead_term;     /* last term in which the simulator saw it lead */
    uint64_t persisted;     /* highest index reported with RAFT_EV_PERSISTED */
    uint8_t fault_armed;    /* the twin disk will fail its next sync (-EIO) */
    uint8_t fail_stop;      /* the disk failed: the replica stops before acting further */
    uint8_t restart_always; /* restart even in the liveness phase (after a fail-stop) */
    uint64_t digest_index;  /* a digest to hand to the core (RAFT_EV_DIGEST); 0 = none */
    uint8_t digest[MSG_DIGEST_LEN];
    struct world_disk disk; /* what was written, and how much of it is durable */
    struct sim_disk *twin;  /* the driver's simulated twin holding it (NULL: mini model) */
    struct world_read *reads;
    size_t n_reads;
    size_t cap_reads;
    uint64_t read_seq;
};

struct world_client {
    uint32_t addr;
    uint64_t client_id;  /* the session's id; while registering, the nonce; 0: no session */
    uint64_t request_no; /* while registering: 1, the other half of the nonce */
    uint8_t busy;
    uint8_t registering; /* a MSG_REQ_REGISTER request is in flight */
    uint32_t target;     /* replica the next attempt goes to */
    uint64_t timer_at;
    uint64_t timeout_ms;
    size_t hist; /* index of the current op in world.hist */
    uint8_t op;
    uint16_t flags;
    uint8_t args[64];
    uint32_t args_len;
    uint64_t last_seen[WORLD_KEYS]; /* last value this client read or wrote per key */
};

/* What the checkers know about a committed index (first replica to commit it sets it). */
struct world_commit {
    uint64_t term;
    uint64_t dhash;
    uint64_t chain;
    uint64_t digest; /* first 8 bytes of the state digest after applying it; 0 = unknown */
};

struct world_once {
    uint64_t client_id;
    uint64_t request_no;
    uint64_t index;
};

struct world_params {
    uint32_t nodes;
    uint32_t clients;
    uint64_t fault_ms;    /* length of the fault phase */
    uint64_t liveness_ms; /* bound for the liveness phase */
    uint32_t election_ms;
    uint32_t disk_max_ms;
    uint32_t crash_ppm;      /* per fault tick */
    uint32_t fault_gap_ms;   /* fault ticks come every 5..gap ms */
    uint32_t restart_max_ms; /* a crashed replica restarts within this */
    uint32_t partition_ppm;
    uint32_t member_ppm;
    uint32_t transfer_ppm;
    uint64_t snapshot_bytes;
    uint32_t sessions_max;
    uint32_t mutation;
    uint32_t leader_crash_ppm; /* a new leader crashes within milliseconds (figure 8) */
    uint32_t append_max;       /* entries per AppendEntries */
    uint8_t no_commit_rule;    /* skip the direct figure 3.7 check (measure the others) */
    uint8_t twin;              /* disks on drivers/disk/sim_disk (else the minimal model) */
    uint8_t lease_reads;       /* leader leases for reads (6.4.1): clocks here are perfect */
    uint32_t window;           /* entries in flight per follower */
};

struct world {
    uint64_t seed;
    struct world_params p;
    struct rng rng;
    struct vnet net;
    uint64_t now;
    uint64_t steps;
    uint64_t time_seq; /* unique increasing times for the history */
    int trace;
    int failed;
    char why[512];
    uint8_t faults_on;
    uint64_t fault_at;
    struct world_replica r[WORLD_NODES_MAX + 1];
    struct world_client c[WORLD_CLIENTS_MAX];
    uint64_t next_value;
    struct lin_op *hist;
    size_t n_hist;
    size_t cap_hist;
    struct world_commit *commits; /* [index], index 0 unused */
    uint64_t commit_max;
    size_t cap_commits;
    uint32_t *term_leader; /* [term] */
    size_t cap_terms;
    struct msg_config config_committed;
    uint64_t config_committed_index;
    struct msg_config config_pending; /* latest config entry written anywhere after it */
    uint64_t config_pending_index;
    struct world_once *once; /* open-addressing map of applied client requests */
    size_t cap_once;
    size_t n_once;
    uint64_t ops_done;
    uint64_t lin_steps;
    struct world_counts {
        uint64_t crashes;
        uint64_t leaders;
        uint64_t snaps_taken;
        uint64_t snaps_installed;
        uint64_t configs;
        uint64_t transfers;
        uint64_t reads;
        uint64_t expired;
        uint64_t registered; /* sessions opened by the clients' registrations */
        uint64_t msgs;
        uint64_t digests;         /* digests received from peers and compared */
        uint64_t disk_errors;     /* injected disk errors that fail-stopped a replica */
        uint64_t leader_ms_max;   /* liveness: longest wait for a leader after the faults */
        uint64_t complete_ms_max; /* liveness: longest wait for every pending op */
    } count;
};

/* Records a failure (the first one wins) and stops the run. */
void world_fail(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void world_trace(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t world_hash(const void *data, size_t len, uint64_t seed);
uint64_t world_mix(uint64_t a, uint64_t b);

/* replica.c: one replica's core, disk, state machine and apply loop. */
int replica_start(struct world *w, struct world_replica *rep, const struct msg_config *boot);
void replica_crash(struct world *w, struct world_replica *rep);
int replica_step(struct world *w, struct world_replica *rep, const struct raft_event *ev);
void replica_sync_done(struct world *w, struct world_replica *rep);
void replica_snapshot(struct world *w, struct world_replica *rep);
void replica_digest(struct world *w, struct world_replica *rep);
void replica_client_request(struct world *w, struct world_replica *rep, const struct msg *m);
void replica_free(struct world_replica *rep);
uint64_t replica_entry_term(const struct world_replica *rep, uint64_t index);
uint64_t replica_entry_chain(const struct world_replica *rep, uint64_t index);
uint64_t replica_last_index(const struct world_replica *rep);

void replica_mirror_cut(struct world_replica *rep, uint64_t last);

/* twin.c: the disks on the log driver's simulated twin. */
int twin_open(struct world *w, struct world_replica *rep);
void twin_close(struct world_replica *rep);
void twin_hard_state(struct world *w, struct world_replica *rep);
void twin_write(struct world *w, struct world_replica *rep, uint64_t truncate_from,
                const struct msg_entry *es, uint32_t n);
uint64_t twin_poll(struct world *w, struct world_replica *rep);
void twin_snapshot(struct world *w, struct world_replica *rep, int conflict);
void twin_crash(struct world *w, struct world_replica *rep);

/* check.c: invariants after every step, and the records they use. */
void check_written(struct world *w, struct world_replica *rep, uint64_t first, uint64_t last);
void check_committed(struct world *w, struct world_replica *rep, const struct msg_entry *e);
void check_applied(struct world *w, struct world_replica *rep, uint64_t index);
void check_once(struct world *w, uint64_t client_id, uint64_t request_no, uint64_t index);
void check_became_leader(struct world *w, struct world_replica *rep);
void check_step(struct world *w);
uint64_t check_chain_at(const struct world *w, uint64_t index);
void check_config_written(struct world *w, uint64_t index, const struct msg_config *c);
void check_peer_digest(struct world *w, struct world_replica *rep, const struct raft_digest *d);

/* sim.c: client side. */
void sim_client_reply(struct world *w, const struct msg *m, uint32_t from);

#endif
