/* Client session table for exactly-once execution (dissertation 6.3): per client, the
 * highest applied request number and its saved reply. It is replicated state: changed only
 * while applying committed entries, deterministically, and kept in snapshots. Pure; all
 * memory is allocated at create (no allocation while applying). */
#ifndef ORDO_ENGINE_SESS_H
#define ORDO_ENGINE_SESS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"
#include "engine/sm.h"

/* Protocol, for clients (dissertation 6.3, docs/protocol.md): a client first registers: a
 * request with MSG_REQ_REGISTER (op MSG_OP_NOOP, no args) goes through the log like a write,
 * and applying it opens a new session whose client id the reply's result carries (8 bytes,
 * little-endian). The register request's own client_id and request_no are a nonce of the
 * client's choosing, echoed in the reply so it can match it; a retried registration opens
 * another session (the unused one ages out). The client then numbers its requests 1, 2, 3, ...
 * under the assigned id with at most one outstanding; a retry reuses the number. A request
 * from a client id without a session (never registered, expired, evicted) is never applied:
 * it gets MSG_STATUS_SESSION_EXPIRED, and the client must register again and report the
 * request in flight as failed (it may or may not have been applied). Requests with
 * MSG_REQ_NO_SESSION bypass the table (benchmarking, at-least-once): see sess_bypass.
 * Read-only requests (MSG_REQ_READ) are served by query and bypass it too. */

/* Every replica of a cluster must use the same config, or their tables diverge. */
struct sess_config {
    uint32_t sessions_max;   /* clients kept; the least recently used is evicted; >= 1 */
    uint64_t expiry_entries; /* a session not used by the last N applied entries expires */
    uint32_t reply_max;      /* largest saved result (>= the application's result_max, >= 8) */
    /* XORed into every assigned client id. 0 for a replicated table (it must be equal on
     * every replica); a replica that keeps nothing across a restart picks a random one per
     * start, so that ids handed out by an earlier run name no session of this one. */
    uint64_t id_salt;
};

#define SESS_SESSIONS_MAX_DEFAULT 1024u
#define SESS_EXPIRY_ENTRIES_DEFAULT 1000000u
#define SESS_REPLY_MAX_DEFAULT MSG_VALUE_LEN_MAX

struct sess_table;

/* Creates an empty table; cfg NULL = defaults; zero fields take their defaults. Allocates
 * sessions_max * reply_max bytes of reply space up front. Returns 0, ORDO_ECONFIG or
 * -ENOMEM; *out is owned by the caller (sess_destroy). */
ORDO_API int sess_create(const struct sess_config *cfg, struct sess_table **out);
/* NULL-safe. */
ORDO_API void sess_destroy(struct sess_table *t);

/* Sessions currently kept. */
ORDO_API uint32_t sess_count(const struct sess_table *t);

/* Whether client_id has a session now (registered, not expired, not evicted). */
ORDO_API int sess_known(const struct sess_table *t, uint64_t client_id);

/* Whether a request bypasses the session table (MSG_REQ_NO_SESSION or MSG_REQ_READ). A
 * registration never does (the codec rejects REGISTER with either flag). */
static inline int sess_bypass(uint16_t req_flags)
{
    return (req_flags & MSG_REQ_REGISTER) == 0 &&
           (req_flags & (MSG_REQ_NO_SESSION | MSG_REQ_READ)) != 0;
}

/* Whether a request asks for a new session (MSG_REQ_REGISTER). */
static inline int sess_is_register(uint16_t req_flags)
{
    return (req_flags & MSG_REQ_REGISTER) != 0;
}

/* Assigned client ids: ((index << 16) | k) ^ id_salt for the k-th registration applied at log
 * index `index` (k counts from 0). Unique and never reused: indices only grow. */
#define SESS_REGISTER_PER_INDEX (1u << 16)
#define SESS_REGISTER_INDEX_LIMIT (UINT64_C(1) << 48)
#define SESS_REGISTER_RESULT_LEN 8u /* the reply's result: the client id, little-endian */

/* Deterministic expiry. The apply stage calls this once for EVERY applied log entry (any
 * type), in log order, with the entry's index, before the entry's commands: sessions whose
 * last use is more than expiry_entries before `index` (index - last_used > expiry_entries)
 * are dropped. Indices must not decrease (asserted). Amortized O(1). */
ORDO_API void sess_advance(struct sess_table *t, uint64_t index);

enum sess_verdict {
    SESS_NEW = 0,       /* apply the command, then sess_record its reply */
    SESS_DUPLICATE = 1, /* already applied: answer with the saved reply, do not apply */
    SESS_EXPIRED = 2,   /* answer MSG_STATUS_SESSION_EXPIRED, do not apply */
};

/* A saved reply. `result` borrows the table's memory: valid until the next sess_record,
 * sess_advance, sess_snapshot_read or sess_destroy on the table. */
struct sess_reply {
    uint8_t status; /* enum msg_status */
    uint32_t result_len;
    const uint8_t *result;
};

/* Classifies a request of a registered client; never changes the table (the leader may also
 * call it before proposing, to answer duplicates early). Rules:
 *   known client, request_no >  saved -> SESS_NEW (saved is 0 right after registration)
 *   known client, request_no == saved -> SESS_DUPLICATE, *reply = the saved reply
 *   known client, request_no <  saved -> SESS_EXPIRED (older than the one kept)
 *   unknown client (any request_no)   -> SESS_EXPIRED (never registered, expired or
 *                                        evicted: only MSG_REQ_REGISTER opens a session)
 *   request_no == 0                   -> SESS_EXPIRED (numbers start at 1)
 * reply may be NULL. */
ORDO_API enum sess_verdict sess_lookup(const struct sess_table *t, uint64_t client_id,
                                       uint64_t request_no, struct sess_reply *reply);

/* Opens a new session at log index `index` (>= the last sess_advance index and the last
 * registration's index) with no request applied yet, evicting the least recently used
 * session (deterministically: smallest last-use index, ties in order of use) when the table
 * is full, and sets *client_id to its assigned id (see SESS_REGISTER_PER_INDEX). Returns 0,
 * or ORDO_ENOSPACE (table unchanged, the same on every replica) after SESS_REGISTER_PER_INDEX
 * registrations at one index or at an index >= SESS_REGISTER_INDEX_LIMIT. */
ORDO_API int sess_register(struct sess_table *t, uint64_t index, uint64_t *client_id);

/* Saves the reply of an applied request (after SESS_NEW) and marks the session used at
 * `index` (the entry's index, >= the last sess_advance index). request_no >= 1. For a client
 * without a session it opens one (evicting as sess_register does): only snapshot loading
 * and tests rely on that; applied requests of unknown clients never get here. Copies
 * result. Returns 0, or ORDO_ETOOBIG (table unchanged) when result_len > reply_max: a
 * config error, the same on every replica. */
ORDO_API int sess_record(struct sess_table *t, uint64_t client_id, uint64_t request_no,
                         uint64_t index, uint8_t status, const uint8_t *result,
                         uint32_t result_len);

/* The whole exactly-once step for one committed client command at log entry `index`:
 * MSG_REQ_REGISTER -> sess_register, status OK and the new id as result (MSG_STATUS_BUSY if
 * it returns ORDO_ENOSPACE; MSG_STATUS_INVALID, nothing changed, if READ or NO_SESSION is
 * also set or request_no is 0); bypass (sess_bypass) -> apply; otherwise lookup, and apply + record
 * on SESS_NEW, saved reply on SESS_DUPLICATE, MSG_STATUS_SESSION_EXPIRED on SESS_EXPIRED. Fills
 * *reply (client_id, request_no: the request's, status, result, result_len); reply->result points
 * into `out` (out_cap >= sm->result_max) or into the table (saved replies and the registration
 * result; lifetime as for struct sess_reply). Returns 0, or the negative local error of sm apply
 * (session table and state unchanged: retry or fail-stop, see struct sm_ops), or ORDO_ETOOBIG from
 * sess_record. */
ORDO_API int sess_execute(struct sess_table *t, struct sm *sm, uint64_t index,
                          const struct msg_client_request *req, uint8_t *out, uint32_t out_cap,
                          struct msg_client_reply *reply);

/* sess_execute for a request whose MAC was verified under its client id's key
 * (authenticated != 0; the same on every replica: the batch records it). Only registration
 * differs: the MAC identity is the client id, so an authenticated client's session keeps
 * it. The registration is then request number F of that client (a floor: the client picks
 * F above every number it used before, e.g. from the clock): with no session or a lower
 * saved number, the session (re)opens with F as its last request and the id as its saved
 * reply; F equal to the saved number is a duplicate (saved reply), F below it expired. */
ORDO_API int sess_execute_auth(struct sess_table *t, struct sm *sm, uint64_t index,
                               const struct msg_client_request *req, int authenticated,
                               uint8_t *out, uint32_t out_cap, struct msg_client_reply *reply);

/* Snapshot section of the table (versioned header, sessions in LRU order, checksum), through
 * the same callbacks as the application's snapshot. Returns 0 or the sink's error. Version 2
 * (registration): a session may have request number 0 (registered, nothing applied yet);
 * version 1 sections (sessions opened by request number 1) are refused (ORDO_EVERSION). */
ORDO_API int sess_snapshot_write(const struct sess_table *t, sm_sink_fn sink, void *ctx);
/* Exact bytes sess_snapshot_write would produce now. */
ORDO_API uint64_t sess_snapshot_size(const struct sess_table *t);
/* Replaces the table's contents. Validates everything (count <= sessions_max, result_len
 * <= reply_max, no duplicate client, last-use indices in order, checksum); errors as for
 * sm_ops.snapshot_read. Atomic: on error the old contents stay. */
ORDO_API int sess_snapshot_read(struct sess_table *t, sm_source_fn source, void *ctx);

#endif
