/* Decoded form of every Ordo message: what the wire codec (engine/wire.h) produces and
 * consumes, and what the Raft core, the sequencer and the apps exchange.
 * Pure data. Pointers inside decoded messages borrow the frame they were decoded from
 * and are valid only while that frame is; encoders copy them. */
#ifndef ORDO_ENGINE_MSG_H
#define ORDO_ENGINE_MSG_H

#include <stdint.h>

#include "engine/api.h"

/* Limits shared by every module. Values are upper bounds; config may lower them. */
#define MSG_NODES_MAX 16       /* servers in a configuration (voters + learners) */
#define MSG_KEY_LEN_MAX 256    /* key-value keys */
#define MSG_VALUE_LEN_MAX 4096 /* key-value values (default bound; config may lower) */
#define MSG_DIGEST_LEN 32      /* state digest carried in heartbeats */
#define MSG_MAC_LEN 16         /* MAC field in every header */
#define MSG_ENTRIES_MAX 64     /* entries in one AppendEntries message */
#define MSG_FRAME_LEN_MAX 9000 /* jumbo frame: the largest frame Ordo sends */
#define MSG_NODE_NONE 0u       /* node ids are 1..MSG_NODE_ID_MAX; 0 means none */
#define MSG_MULTI_MAX 64       /* messages in one multi-request or multi-reply frame */

/* Message types (one byte on the wire). Client types < 16, peer (Raft) types >= 16. */
enum msg_type {
    MSG_CLIENT_REQUEST = 1,
    MSG_CLIENT_REPLY = 2,
    MSG_REDIRECT = 3, /* not-leader redirect, names the leader's address */
    /* Several client messages in one frame (docs/protocol.md, "Multi-message frames"):
     * each item is a complete encoded MSG_CLIENT_REQUEST (resp. MSG_CLIENT_REPLY or
     * MSG_REDIRECT) with its own header and MAC. */
    MSG_CLIENT_MULTI_REQUEST = 4,
    MSG_CLIENT_MULTI_REPLY = 5,
    MSG_VOTE_REQUEST = 16,
    MSG_VOTE_RESPONSE = 17,
    MSG_APPEND_ENTRIES = 18,
    MSG_APPEND_RESPONSE = 19,
    MSG_INSTALL_SNAPSHOT = 20,
    MSG_INSTALL_SNAPSHOT_RESPONSE = 21,
    MSG_TIMEOUT_NOW = 22,
    MSG_HEARTBEAT = 23,          /* leader -> follower: commit index, ReadIndex ctx, digest */
    MSG_HEARTBEAT_RESPONSE = 24, /* follower -> leader: ReadIndex ctx echo, digest */
};

static inline int msg_type_is_peer(uint8_t type)
{
    return type >= 16;
}

/* Client request flags. */
#define MSG_REQ_NO_SESSION 0x0001u /* benchmarking mode: at-least-once, not deduplicated */
#define MSG_REQ_READ 0x0002u       /* read-only: served by ReadIndex, not logged */
/* Opens a client session (dissertation 6.3), through the log like a write: the reply's
 * result is the session's client id (8 bytes, little-endian). The request's client_id and
 * request_no are the client's nonce, echoed in the reply (a MAC'd request: its own id and a
 * floor request number, engine/sess.h). Not with NO_SESSION or READ. */
#define MSG_REQ_REGISTER 0x0004u

/* Operation 0 is reserved in every application for a no-op (pktgen probes use it). */
#define MSG_OP_NOOP 0u

/* Reply status (one byte on the wire). */
enum msg_status {
    MSG_STATUS_OK = 0,
    MSG_STATUS_NOT_FOUND = 1,
    MSG_STATUS_CAS_MISMATCH = 2,
    MSG_STATUS_INVALID = 3,         /* the application rejected the arguments */
    MSG_STATUS_SESSION_EXPIRED = 4, /* no session (never registered, expired, evicted), or a
                                       request number older than the session keeps */
    MSG_STATUS_BUSY = 5,            /* backpressure: retry later */
    MSG_STATUS_TOO_LARGE = 6,
    MSG_STATUS_UNAUTHORIZED = 7,
    MSG_STATUS_NO_QUORUM = 8, /* leader lost its majority */
    MSG_STATUS_STOPPED = 9,   /* replica is fail-stopped */
};

/* Common header of every message (decoded). The MAC itself is checked by the codec. */
struct msg_header {
    uint8_t version;
    uint8_t type;   /* enum msg_type */
    uint16_t flags; /* MSG_HDR_* */
    uint32_t cluster_id;
    uint32_t sender; /* node id for peers; 0 for clients */
    uint32_t body_len;
};
#define MSG_HDR_MAC 0x0001u /* the MAC field is set (always for peers; optional for clients) */

struct msg_client_request {
    uint64_t client_id;
    uint64_t request_no; /* per client, starts at 1, retries reuse it */
    uint16_t flags;      /* MSG_REQ_* */
    uint8_t op;          /* application-defined; MSG_OP_NOOP = no-op */
    uint32_t args_len;
    const uint8_t *args; /* application-defined encoding of the arguments */
};

struct msg_client_reply {
    uint64_t client_id;
    uint64_t request_no;
    uint8_t status; /* enum msg_status */
    uint32_t result_len;
    const uint8_t *result;
};

struct msg_redirect {
    uint64_t client_id;
    uint64_t request_no;
    uint32_t leader_id;   /* MSG_NODE_NONE when unknown */
    uint32_t leader_ipv4; /* network byte order */
    uint16_t leader_port; /* host byte order */
    uint8_t leader_mac[6];
};

/* A multi-request or multi-reply frame: n (1..MSG_MULTI_MAX) items, each a u16 length and
 * that many bytes of one complete encoded client message. items borrows the frame; walk
 * it with wire_multi_next (engine/wire.h). */
struct msg_multi {
    uint8_t version; /* WIRE_MULTI_VERSION */
    uint8_t n;
    uint32_t items_len;
    const uint8_t *items;
};

/* Raft log entry types. */
enum msg_entry_type {
    MSG_ENTRY_NOOP = 1,   /* a new leader's first entry (dissertation 6.4) */
    MSG_ENTRY_BATCH = 2,  /* a sequencer batch of client commands */
    MSG_ENTRY_CONFIG = 3, /* membership: data is an encoded struct msg_config */
};

struct msg_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum msg_entry_type */
    uint32_t len;
    const uint8_t *data;
};

enum msg_role {
    MSG_ROLE_VOTER = 1,
    MSG_ROLE_LEARNER = 2, /* non-voting, catching up before promotion */
};

struct msg_server {
    uint32_t id;
    uint8_t role; /* enum msg_role */
};

struct msg_config {
    uint32_t n;
    struct msg_server servers[MSG_NODES_MAX];
};

#define MSG_VOTE_PRE 0x01u      /* pre-vote (dissertation 9.6): no term change */
#define MSG_VOTE_TRANSFER 0x02u /* election started by TimeoutNow: bypass leader stickiness */

struct msg_vote_request {
    uint64_t term; /* for a pre-vote: the term the candidate would use */
    uint64_t last_log_index;
    uint64_t last_log_term;
    uint8_t flags; /* MSG_VOTE_* ; the candidate is the header's sender */
};

struct msg_vote_response {
    uint64_t term;
    uint8_t granted;
    uint8_t pre_vote;
};

struct msg_append_entries {
    uint64_t term;
    uint64_t prev_log_index;
    uint64_t prev_log_term;
    uint64_t leader_commit;
    uint32_t n_entries; /* <= MSG_ENTRIES_MAX; entry i has index prev_log_index + 1 + i */
    const struct msg_entry *entries;
};

struct msg_append_response {
    uint64_t term;
    uint8_t success;
    uint64_t match_index;    /* success: last index durable on the follower for this request */
    uint64_t reject_index;   /* failure: the prev_log_index that was rejected */
    uint64_t conflict_index; /* failure: first index of conflict_term, or last_log_index + 1 */
    uint64_t conflict_term;  /* failure: term at reject_index on the follower, 0 if none */
    uint64_t last_log_index; /* the follower's last log index */
};

struct msg_install_snapshot {
    uint64_t term;
    uint64_t last_index; /* snapshot covers entries up to and including this index */
    uint64_t last_term;
    struct msg_config config; /* the configuration as of last_index */
    uint64_t total_len;       /* bytes in the whole snapshot */
    uint64_t offset;          /* offset of this chunk */
    uint8_t done;             /* last chunk */
    uint32_t chunk_len;
    const uint8_t *chunk;
};

struct msg_install_snapshot_response {
    uint64_t term;
    uint64_t last_index;
    uint64_t next_offset; /* bytes received so far; the leader sends from here */
    uint8_t done;         /* the snapshot was installed */
};

struct msg_timeout_now {
    uint64_t term;
};

struct msg_heartbeat {
    uint64_t term;
    uint64_t leader_commit;
    uint64_t read_ctx;     /* ReadIndex round number, echoed by the follower */
    uint64_t digest_index; /* index at which digest was taken; 0 when none */
    uint8_t digest[MSG_DIGEST_LEN];
};

struct msg_heartbeat_response {
    uint64_t term;
    uint64_t read_ctx;
    uint64_t last_log_index;
    uint64_t digest_index;
    uint8_t digest[MSG_DIGEST_LEN];
};

/* One decoded message of any type. */
struct msg {
    struct msg_header hdr;
    union {
        struct msg_client_request request;
        struct msg_client_reply reply;
        struct msg_redirect redirect;
        struct msg_multi multi;
        struct msg_vote_request vote_request;
        struct msg_vote_response vote_response;
        struct msg_append_entries append;
        struct msg_append_response append_response;
        struct msg_install_snapshot snapshot;
        struct msg_install_snapshot_response snapshot_response;
        struct msg_timeout_now timeout_now;
        struct msg_heartbeat heartbeat;
        struct msg_heartbeat_response heartbeat_response;
    } u;
};

#endif
