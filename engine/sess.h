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

/* Protocol, for clients: a client picks a fresh random 64-bit client id per run, numbers its
 * requests 1, 2, 3, ... and has at most one outstanding; a retry reuses the number. Requests
 * with MSG_REQ_NO_SESSION bypass the table (benchmarking, at-least-once): see sess_bypass.
 * Read-only requests (MSG_REQ_READ) are served by query and bypass it too. */

/* Every replica of a cluster must use the same config, or their tables diverge. */
struct sess_config {
    uint32_t sessions_max;   /* clients kept; the least recently used is evicted; >= 1 */
    uint64_t expiry_entries; /* a session not used by the last N applied entries expires */
    uint32_t reply_max;      /* largest saved result (>= the application's result_max) */
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

/* Whether a request bypasses the session table (MSG_REQ_NO_SESSION or MSG_REQ_READ). */
static inline int sess_bypass(uint16_t req_flags)
{
    return (req_flags & (MSG_REQ_NO_SESSION | MSG_REQ_READ)) != 0;
}

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

/* Classifies a request; never changes the table (the leader may also call it before
 * proposing, to answer duplicates early). Rules:
 *   known client, request_no >  saved -> SESS_NEW
 *   known client, request_no == saved -> SESS_DUPLICATE, *reply = the saved reply
 *   known client, request_no <  saved -> SESS_EXPIRED (older than the one kept)
 *   unknown client, request_no == 1   -> SESS_NEW (the first request opens the session)
 *   unknown client, request_no != 1   -> SESS_EXPIRED (its session expired or was evicted)
 * reply may be NULL. */
ORDO_API enum sess_verdict sess_lookup(const struct sess_table *t, uint64_t client_id,
                                       uint64_t request_no, struct sess_reply *reply);

/* Saves the reply of an applied request (after SESS_NEW) and marks the session used at
 * `index` (the entry's index, >= the last sess_advance index). Opens the session if new,
 * evicting the least recently used one (deterministically: smallest last-use index, ties in
 * order of use) when the table is full. Copies result. Returns 0, or ORDO_ETOOBIG (table
 * unchanged) when result_len > reply_max: a config error, the same on every replica. */
ORDO_API int sess_record(struct sess_table *t, uint64_t client_id, uint64_t request_no,
                         uint64_t index, uint8_t status, const uint8_t *result,
                         uint32_t result_len);

/* The whole exactly-once step for one committed client command at log entry `index`:
 * bypass (sess_bypass) -> apply; otherwise lookup, and apply + record on SESS_NEW, saved
 * reply on SESS_DUPLICATE, MSG_STATUS_SESSION_EXPIRED on SESS_EXPIRED. Fills *reply
 * (client_id, request_no, status, result, result_len); reply->result points into `out`
 * (out_cap >= sm->result_max) or into the table (lifetime as for struct sess_reply).
 * Returns 0, or the negative local error of sm apply (session table and state unchanged:
 * retry or fail-stop, see struct sm_ops), or ORDO_ETOOBIG from sess_record. */
ORDO_API int sess_execute(struct sess_table *t, struct sm *sm, uint64_t index,
                          const struct msg_client_request *req, uint8_t *out, uint32_t out_cap,
                          struct msg_client_reply *reply);

/* Snapshot section of the table (versioned header, sessions in LRU order, checksum), through
 * the same callbacks as the application's snapshot. Returns 0 or the sink's error. */
ORDO_API int sess_snapshot_write(const struct sess_table *t, sm_sink_fn sink, void *ctx);
/* Exact bytes sess_snapshot_write would produce now. */
ORDO_API uint64_t sess_snapshot_size(const struct sess_table *t);
/* Replaces the table's contents. Validates everything (count <= sessions_max, result_len
 * <= reply_max, no duplicate client, last-use indices in order, checksum); errors as for
 * sm_ops.snapshot_read. Atomic: on error the old contents stay. */
ORDO_API int sess_snapshot_read(struct sess_table *t, sm_source_fn source, void *ctx);

#endif
