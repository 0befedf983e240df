/* ordo-admin's printing: turns parsed telemetry replies (/ordo/raft, /ordo/stats, /ordo/snap)
 * into the human-readable status, its JSON form and flat key=value lines. Pure: writes only to the
 * given FILE. */
#ifndef ORDO_APPS_ADMIN_FMT_H
#define ORDO_APPS_ADMIN_FMT_H

#include <stdio.h>

#include "apps/admin_json.h"

/* The value of a telemetry reply {"<command>": VALUE}: its node index, or -1 when the reply
 * is not a one-member object or VALUE is null (command unknown to the server). */
int32_t admin_fmt_body(const struct admin_json *j);

/* Prints every scalar below node as "prefix.key=value" lines (nested objects dotted). */
void admin_fmt_flat(FILE *out, const struct admin_json *j, int32_t node, const char *prefix);

/* Prints the status. raft: /ordo/raft body (-1 when the replica runs without replication);
 * stats: /ordo/stats body (-1 when unavailable). Returns 0, or -EINVAL when neither holds
 * anything to print. */
int admin_fmt_status(FILE *out, const struct admin_json *rj, int32_t raft,
                     const struct admin_json *sj, int32_t stats);

/* Prints the background snapshot lines of the status from a /ordo/snap body: mode, phase, the
 * last snapshot (index, write time, apply pause), the counts, and the last failure when there
 * was one. Prints nothing when snap is -1 (no replication, or a daemon without /ordo/snap). */
void admin_fmt_snap(FILE *out, const struct admin_json *j, int32_t snap);

/* The status as one JSON object {"raft": R, "stats": S, "snap": N}, each member the reply
 * body as the replica sent it, or null when its index is -1. Returns 0, or -EINVAL when raft
 * and stats are both -1. */
int admin_fmt_status_json(FILE *out, const struct admin_json *rj, int32_t raft,
                          const struct admin_json *sj, int32_t stats, const struct admin_json *nj,
                          int32_t snap);

#endif
