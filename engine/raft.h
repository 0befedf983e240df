/* The Raft consensus core (Ongaro's dissertation) as a pure, deterministic state machine:
 * events in, one plain-data update out. It never reads a clock, a random source, a file or a
 * socket: time arrives with each event and randomness comes from a PRNG seeded by the caller. */
#ifndef ORDO_ENGINE_RAFT_H
#define ORDO_ENGINE_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"

/* Protocol version written in hdr.version of every message the core builds. */
#define RAFT_MSG_VERSION 1u

/* Roles of the local server (the transition table is checked on every change). A learner
 * (msg_role LEARNER in the configuration) is always RAFT_FOLLOWER here. */
enum raft_role {
    RAFT_FOLLOWER = 1,
    RAFT_PRE_CANDIDATE = 2, /* running a pre-vote (9.6); term not yet incremented */
    RAFT_CANDIDATE = 3,
    RAFT_LEADER = 4,
};

/* Per-replica configuration. Validated by raft_create (ORDO_ECONFIG when out of range);
 * 0 in a field marked "0 = default" selects the default in parentheses. */
struct raft_config {
    uint32_t id;                       /* this server, 1..; never MSG_NODE_NONE */
    uint32_t cluster_id;               /* copied into hdr.cluster_id of outgoing messages */
    uint64_t prng_seed;                /* seeds the election-timeout PRNG (any value) */
    uint32_t election_timeout_ms;      /* minimum election timeout; the timeout is drawn in
                                        * [min, 2*min) (3.4). 0 = default (1000) */
    uint32_t heartbeat_ms;             /* leader heartbeat / retransmit interval, < election
                                        * timeout. 0 = default (election_timeout_ms / 10) */
    uint32_t append_entries_max;       /* entries per AppendEntries, <= MSG_ENTRIES_MAX.
                                        * 0 = default (MSG_ENTRIES_MAX) */
    uint32_t append_bytes_max;         /* entry data bytes per AppendEntries (an entry larger than
                                        * this still goes alone). 0 = default (8192) */
    uint32_t window_entries;           /* pipelining: entries in flight per follower.
                                        * 0 = default (1024) */
    uint64_t window_bytes;             /* pipelining: entry bytes in flight per follower.
                                        * 0 = default (4 MiB) */
    uint32_t snapshot_chunk_bytes;     /* InstallSnapshot chunk size. 0 = default (8192) */
    uint64_t snapshot_threshold_bytes; /* set update.snapshot_wanted once the log holds this
                                        * many data bytes past the last snapshot.
                                        * 0 = default (64 MiB) */
    uint32_t snapshot_trailing;        /* entries kept behind a snapshot for slow followers
                                        * (at most log_bytes_max / 4 of data) */
    uint32_t uncommitted_max;          /* leader refuses proposals (ORDO_ENOSPACE) past this
                                        * many uncommitted entries. 0 = default (65536, at most
                                        * log_entries_max / 2) */
    uint8_t pre_vote;                  /* 1: pre-vote (9.6). Recommended. */
    uint8_t check_quorum;              /* 1: leader steps down without a quorum for an election
                                        * timeout (6.2). Servers that heard from a leader within
                                        * the minimum timeout ignore vote requests either way
                                        * (4.2.3, 9.6) */
    uint8_t lease_reads;               /* 1: opt in to lease reads (6.4.1); requires check_quorum
                                        * and bounded clock drift. 0: ReadIndex with a round. */
    /* The fixed in-memory log, allocated once by raft_create (never on the data path): a full
     * log refuses proposals with ORDO_ENOSPACE and drops AppendEntries (the leader resends)
     * until a snapshot compacts it; update.snapshot_wanted asks for one at half full. */
    uint32_t log_entries_max; /* entries held in memory. 0 = default (RAFT_LOG_ENTRIES_DEFAULT);
                               * >= 128, >= 2 * uncommitted_max, >= 4 * snapshot_trailing */
    uint64_t log_bytes_max;   /* entry data bytes held in memory (one ring).
                               * 0 = default (RAFT_LOG_BYTES_DEFAULT); >= 4 * append_bytes_max */
    /* Lease reads only: the lease is election_timeout_ms / (1 + lease_drift_ppm / 1e6) minus
     * lease_margin_ms, counted from the sending of the heartbeat round a quorum answered
     * (6.4.1). ORDO_ECONFIG when nothing is left. */
    uint32_t lease_drift_ppm; /* clock rate bound between servers, parts per million.
                               * 0 = default (RAFT_LEASE_DRIFT_DEFAULT) */
    uint32_t lease_margin_ms; /* fixed amount taken off the lease (e.g. a scheduling stall) */
};

#define RAFT_LOG_ENTRIES_DEFAULT (1u << 18)
#define RAFT_LOG_BYTES_DEFAULT (64ull << 20)
#define RAFT_LOG_BYTES_MAX (1ull << 40)
#define RAFT_LEASE_DRIFT_DEFAULT 10000u /* 1 %: far above quartz, covers NTP slewing */

/* State the caller recovered from its durable storage, handed to raft_create. Everything is
 * borrowed for the call only; the core copies what it keeps. */
struct raft_restore {
    uint64_t now_ms;    /* current time: the first election timer starts here */
    uint64_t term;      /* hard state */
    uint32_t voted_for; /* hard state; MSG_NODE_NONE for none */
    /* Latest snapshot, or snapshot_index 0 when there is none. */
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    struct msg_config snapshot_config;
    const uint8_t *snapshot_data; /* snapshot bytes (kept in the core to send to followers) */
    uint64_t snapshot_len;
    /* Configuration used when neither the snapshot nor the log holds one: the initial
     * cluster (identical on every founding server), or n = 0 for a server that will be
     * added later (it then waits for a leader to contact it). */
    struct msg_config bootstrap;
    /* Durable log entries snapshot_index+1 .. snapshot_index+n_entries, consecutive. */
    uint32_t n_entries;
    const struct msg_entry *entries;
};

/* Membership changes, one server at a time (4.1). */
enum raft_change_type {
    RAFT_CHANGE_ADD_LEARNER = 1, /* add a non-voting server that catches up (4.2.1) */
    RAFT_CHANGE_PROMOTE = 2,     /* learner -> voter, once it holds every committed entry */
    RAFT_CHANGE_REMOVE = 3,      /* remove any server, the leader itself included (4.2.2) */
};

enum raft_event_type {
    RAFT_EV_TICK = 1,           /* time passed: fire timers due at now_ms */
    RAFT_EV_RECEIVE = 2,        /* a peer message (msg_type_is_peer); hdr.sender = from */
    RAFT_EV_PERSISTED = 3,      /* entries up to (index, term) are durable */
    RAFT_EV_SNAPSHOT_TAKEN = 4, /* the caller snapshotted its state machine at index */
    RAFT_EV_PROPOSE = 5,        /* leader: append one client batch as one log entry */
    RAFT_EV_READ = 6,           /* leader: linearizable read (ReadIndex, 6.4) */
    RAFT_EV_CHANGE = 7,         /* leader: membership change */
    RAFT_EV_TRANSFER = 8,       /* leader: hand leadership over (3.10) */
    RAFT_EV_DIGEST = 9,         /* the local state digest at an applied index (auditing) */
};

/* One input. Pointers inside are borrowed for the duration of raft_step only. */
struct raft_event {
    uint8_t type;    /* enum raft_event_type */
    uint64_t now_ms; /* current time; must never go backwards (asserted) */
    union {
        struct {
            const struct msg *msg; /* decoded, MAC-checked; bodies are still validated */
        } receive;
        struct {
            uint64_t index; /* every entry <= index written by the caller is durable */
            uint64_t term;  /* term of the entry at index: a stale report (the entry was
                             * truncated and rewritten since) is ignored */
        } persisted;
        struct {
            uint64_t index; /* applied index the snapshot covers; <= commit index.
                             * Take term and config from raft_snapshot_meta() */
            const uint8_t *data;
            uint64_t len; /* the core copies the bytes to send InstallSnapshot */
            /* Nonzero: data was allocated with mem_alloc and the core takes it over instead
             * of copying it (a large snapshot costs no copy on the apply lcore); the core
             * frees it in every case, also when it returns an error or ignores the event. */
            uint8_t take;
        } snapshot_taken;
        struct {
            const uint8_t *data; /* opaque batch bytes (copied into the log's arena) */
            uint32_t len;        /* <= log_bytes_max / 4 */
        } propose;
        struct {
            uint64_t id; /* caller-chosen id, echoed in update.reads */
        } read;
        struct {
            uint8_t type; /* enum raft_change_type */
            uint32_t id;  /* the server added, promoted or removed */
        } change;
        struct {
            uint32_t target; /* a voter, or MSG_NODE_NONE: the most up-to-date voter */
        } transfer;
        struct {
            uint64_t index; /* the digest covers the state after applying index */
            uint8_t digest[MSG_DIGEST_LEN];
        } digest;
    } u;
};

/* A message to send. msg.hdr has version, type, cluster_id and sender set; body_len is
 * left for the codec. Pointers inside (append.entries, snapshot.chunk) point into memory the
 * core owns, valid until the next raft_step or raft_destroy. */
struct raft_send {
    uint32_t to;
    struct msg msg;
};

/* A read that is ready (status 0: serve it once the applied index >= index) or failed
 * (status ORDO_ENOTLEADER: leadership was lost; the client retries elsewhere). */
struct raft_read {
    uint64_t id;
    uint64_t index;
    int status;
};

/* A state digest received from a peer (leader in a heartbeat, follower in a response). */
struct raft_digest {
    uint32_t from;
    uint64_t index;
    uint8_t digest[MSG_DIGEST_LEN];
};

/* Snapshot received from the leader, to install. */
struct raft_snapshot_install {
    uint64_t index;
    uint64_t term;
    struct msg_config config;
    const uint8_t *data;
    uint64_t len;
};

/* Flags in raft_update.flags: which parts of the update carry something. */
#define RAFT_UPD_HARD_STATE 0x0001u /* term / voted_for changed */
#define RAFT_UPD_ENTRIES 0x0002u    /* entries (and/or truncate_from) to persist */
#define RAFT_UPD_SNAPSHOT 0x0004u   /* snapshot to install */
#define RAFT_UPD_COMMIT 0x0008u     /* commit_index advanced; committed[] to apply */
#define RAFT_UPD_ROLE 0x0010u       /* role or leader_id changed */
#define RAFT_UPD_CONFIG 0x0020u     /* the configuration in use changed */

/* The output of one raft_step. The caller owns the struct; every pointer inside points into
 * memory the core owns, valid until the next raft_step or raft_destroy. The caller handles
 * it in this order:
 *  1. hard state (term, voted_for): make it durable BEFORE sending any message of this update
 *     (a vote or a new term must survive a crash before anyone acts on it);
 *  2. snapshot: install it into the state machine and make it durable, replacing the log up
 *     to snapshot.index, also BEFORE sending the messages; when truncate_from is set in the
 *     same update (the core dropped its whole log), delete the entries >= truncate_from in
 *     that same durable step, so a crash never leaves a snapshot followed by stale entries;
 *  3. entries: apply truncate_from first (delete durable entries >= truncate_from), then write
 *     entries[] in order; this may be asynchronous: report completion with RAFT_EV_PERSISTED
 *     (followers acknowledge and the leader counts itself only after that);
 *  4. send msgs[];
 *  5. apply committed[] in order (after the snapshot, if any).
 * Fields not flagged are zero (counts) or unchanged (the state fields, always current). */
struct raft_update {
    uint32_t flags; /* RAFT_UPD_* */

    /* Current hard state (persist when RAFT_UPD_HARD_STATE). */
    uint64_t term;
    uint32_t voted_for;

    /* Entries to persist. truncate_from 0 = no truncation. */
    uint64_t truncate_from;
    uint32_t n_entries;
    const struct msg_entry *entries;

    /* Snapshot to install (RAFT_UPD_SNAPSHOT). */
    struct raft_snapshot_install snapshot;

    /* Messages to send. */
    uint32_t n_msgs;
    const struct raft_send *msgs;

    /* Commit: entries commit_first .. commit_index are newly committed, in committed[]
     * (n_committed = commit_index - commit_first + 1 when RAFT_UPD_COMMIT). Entries of type
     * MSG_ENTRY_NOOP and MSG_ENTRY_CONFIG carry no client commands but still count as applied. */
    uint64_t commit_index;
    uint64_t commit_first;
    uint32_t n_committed;
    const struct msg_entry *committed;

    /* Reads ready or failed. */
    uint32_t n_reads;
    const struct raft_read *reads;

    /* Digests received. */
    uint32_t n_digests;
    const struct raft_digest *digests;

    /* Role and leader (always current). */
    uint8_t role;       /* enum raft_role */
    uint32_t leader_id; /* MSG_NODE_NONE when unknown */

    /* Configuration in use (always current; RAFT_UPD_CONFIG when it changed). */
    struct msg_config config;

    /* Result of RAFT_EV_PROPOSE: index given to the new entry (0 otherwise). */
    uint64_t proposed_index;

    /* 1 when the log holds snapshot_threshold_bytes past the last snapshot: the caller
     * should snapshot its state machine at its applied index (RAFT_EV_SNAPSHOT_TAKEN). */
    uint8_t snapshot_wanted;

    /* Absolute time at which the caller must deliver the next RAFT_EV_TICK (it may deliver
     * earlier; ticks are idempotent). */
    uint64_t next_timeout_ms;
};

/* Counters, for operators and tests. */
struct raft_stats {
    uint64_t msgs_in;
    uint64_t msgs_out;
    uint64_t msgs_out_dropped; /* no memory to queue a message (retransmitted later) */
    uint64_t msgs_invalid;     /* validated and dropped (bad fields, not a peer type, ...) */
    uint64_t msgs_stale;       /* older term, ignored or answered with our term */
    uint64_t elections;        /* elections started (real ones, after pre-vote) */
    uint64_t pre_votes;        /* pre-vote rounds started */
    uint64_t leaderships;      /* times this server became leader */
    uint64_t step_downs;       /* check-quorum step-downs */
    uint64_t votes_ignored;    /* vote requests ignored because a leader is alive (9.6) */
    uint64_t truncations;      /* conflicting suffixes dropped */
    uint64_t snapshots_sent;   /* InstallSnapshot completions */
    uint64_t snapshots_installed;
    uint64_t proposals_refused;
    uint64_t log_full; /* proposals or AppendEntries refused: the fixed log was full */
};

/* Deliberately broken protocol variants, for the checker tests (tests/sim). All off by
 * default; never set outside tests. */
/* Leader commits old-term entries by counting replicas (violates 3.6.2 / figure 3.7). */
#define RAFT_MUT_COMMIT_OLD_TERM 0x0001u
/* Follower acknowledges entries before they are durable. */
#define RAFT_MUT_ACK_BEFORE_PERSIST 0x0002u
/* Grants a second vote in the same term (the vote is not recorded). */
#define RAFT_MUT_VOTE_TWICE 0x0004u
/* Leader counts itself before its own write is durable. */
#define RAFT_MUT_LEADER_NO_PERSIST 0x0008u
/* Grants votes without the up-to-date log check (3.6.1). */
#define RAFT_MUT_VOTE_ANY_LOG 0x0010u
/* Follower keeps a conflicting suffix yet acknowledges the leader's entries. */
#define RAFT_MUT_NO_TRUNCATE 0x0020u

struct raft;

/* Creates a core from its configuration and recovered state (both borrowed for the call).
 * Starts as a follower with an election timer drawn from the PRNG. Control plane only: it
 * allocates the fixed log (log_entries_max and log_bytes_max, or twice the recovered log when
 * that is larger, so a restart never lacks room); steps allocate only for snapshots.
 * Returns 0 and *out, ORDO_ECONFIG for an invalid config or restore (inconsistent indices,
 * more than MSG_NODES_MAX servers, ...) or -ENOMEM. */
ORDO_API int raft_create(const struct raft_config *cfg, const struct raft_restore *rs,
                         struct raft **out);

/* Frees the core and everything it owns (NULL is accepted). */
ORDO_API void raft_destroy(struct raft *r);

/* Handles one event and fills *up (overwritten; see struct raft_update for the caller's
 * duties). The core must be driven by one thread at a time. Returns 0, or for a refused
 * event (the update is still valid and must be handled):
 *  ORDO_ENOTLEADER  propose / read / change / transfer on a non-leader, or during a transfer;
 *  ORDO_ENOSPACE    propose beyond uncommitted_max entries or log_bytes_max / 4 uncommitted
 *                   bytes, or with the fixed log full (retry after commits or the next
 *                   snapshot: backpressure); read with 1024 reads pending; an
 *                   AppendEntries the full log cannot hold (dropped, log unchanged);
 *  ORDO_ETOOBIG     propose of more than log_bytes_max / 4 bytes;
 *  -EBUSY           change while another change is uncommitted or before the leader's no-op
 *                   is committed; transfer while one is running;
 *  -EAGAIN          promote of a learner that lacks committed entries (retry later);
 *  -EINVAL          change / transfer naming an unknown or wrong server, removal of the last
 *                   voter, snapshot_taken beyond the commit index;
 *  ORDO_EMALFORMED  a message with invalid fields, a non-peer type or from itself
 *                   (counted in msgs_invalid, ignored); ORDO_EBADTYPE an unknown peer type;
 *  -ENOMEM          an allocation failed (the event had no effect).
 * Asserts (fail-stop) on caller misuse: time going backwards, unknown event type. */
ORDO_API int raft_step(struct raft *r, const struct raft_event *ev, struct raft_update *up);

/* Turns on RAFT_MUT_* flags (tests only). */
ORDO_API void raft_mutation_set(struct raft *r, uint32_t flags);

/* Read-only accessors (for the runtime, the simulator's checkers and tests). */
ORDO_API uint32_t raft_id(const struct raft *r);
ORDO_API enum raft_role raft_role_get(const struct raft *r);
ORDO_API uint64_t raft_term(const struct raft *r);
ORDO_API uint32_t raft_voted_for(const struct raft *r);
ORDO_API uint32_t raft_leader(const struct raft *r);
ORDO_API uint64_t raft_commit_index(const struct raft *r);
ORDO_API uint64_t raft_durable_index(const struct raft *r); /* highest index reported durable */
ORDO_API uint64_t raft_snapshot_index(const struct raft *r);
ORDO_API uint64_t raft_first_index(const struct raft *r); /* first entry held in memory */
ORDO_API uint64_t raft_last_index(const struct raft *r);
ORDO_API uint64_t raft_last_term(const struct raft *r);
/* Term of the entry at index (the snapshot term at snapshot_index), 0 if not held. */
ORDO_API uint64_t raft_term_at(const struct raft *r, uint64_t index);
/* Fills *e with the entry at index; e->data points into the core (valid until the entry is
 * compacted or truncated). Returns 0 or ORDO_ENOTFOUND. */
ORDO_API int raft_entry_get(const struct raft *r, uint64_t index, struct msg_entry *e);
/* The configuration in use (latest in the log, committed or not, 4.1). */
ORDO_API void raft_config_get(const struct raft *r, struct msg_config *c);
/* Term and configuration as of index (for a snapshot the caller is about to take).
 * Returns 0 or ORDO_ENOTFOUND when index is not in [snapshot_index, last_index]. */
ORDO_API int raft_snapshot_meta(const struct raft *r, uint64_t index, uint64_t *term,
                                struct msg_config *c);
/* Leader only: follower's match index (0 when unknown or not leader). */
ORDO_API uint64_t raft_match_index(const struct raft *r, uint32_t id);
ORDO_API const struct raft_stats *raft_stats_get(const struct raft *r);

/* Encoding of MSG_ENTRY_CONFIG data: the wire format of wire_config_encode (engine/wire.h:
 * u8 n, then n times u32 id LE, u8 role). encode returns the length written or a negative
 * code from wire_config_encode; decode returns 0 or ORDO_EMALFORMED (never asserts). */
#define RAFT_CONFIG_ENC_MAX (1u + 5u * MSG_NODES_MAX)
ORDO_API int raft_config_encode(const struct msg_config *c, uint8_t *buf, size_t cap);
ORDO_API int raft_config_decode(const uint8_t *buf, size_t len, struct msg_config *c);

#endif
