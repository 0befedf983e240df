/* ordo-admin's printing: the status view (role, term, commit, per-follower match and lag,
 * batches, queue depths, counters, background snapshots), the status as one JSON object, and
 * flat key=value dumps of any telemetry reply. */
#include "apps/admin_fmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int32_t admin_fmt_body(const struct admin_json *j)
{
    if (j->n == 0 || j->nodes[0].type != ADMIN_JSON_OBJ) {
        return -1;
    }
    int32_t b = j->nodes[0].child;
    if (b < 0 || j->nodes[b].next >= 0 || j->nodes[b].type == ADMIN_JSON_NULL) {
        return -1;
    }
    return b;
}

static void admin_fmt_flat_at(FILE *out, const struct admin_json *j, int32_t node, char *path,
                              size_t cap)
{
    const struct admin_json_node *nd = &j->nodes[node];
    if (nd->type != ADMIN_JSON_OBJ && nd->type != ADMIN_JSON_ARR) {
        char v[256];
        (void)admin_json_text(j, node, v, sizeof(v));
        fprintf(out, "%s=%s\n", path, v);
        return;
    }
    size_t base = strlen(path);
    uint32_t idx = 0;
    for (int32_t c = nd->child; c >= 0; c = j->nodes[c].next, idx++) {
        char k[96];
        if (nd->type == ADMIN_JSON_OBJ) {
            admin_json_key(j, c, k, sizeof(k));
        } else {
            snprintf(k, sizeof(k), "%" PRIu32, idx);
        }
        snprintf(path + base, cap - base, "%s%s", base > 0 ? "." : "", k);
        admin_fmt_flat_at(out, j, c, path, cap);
        path[base] = '\0';
    }
}

void admin_fmt_flat(FILE *out, const struct admin_json *j, int32_t node, const char *prefix)
{
    char path[512];
    if (node < 0 || (uint32_t)node >= j->n) {
        return;
    }
    snprintf(path, sizeof(path), "%s", prefix != NULL ? prefix : "");
    admin_fmt_flat_at(out, j, node, path, sizeof(path));
}

/* A number field, or 0 when it is missing (an older daemon without it). */
static uint64_t admin_fmt_u64(const struct admin_json *j, int32_t obj, const char *key)
{
    uint64_t v = 0;
    (void)admin_json_u64(j, admin_json_get(j, obj, key), &v);
    return v;
}

static void admin_fmt_list(FILE *out, const char *title, const struct admin_json *j, int32_t obj,
                           const char *const *keys, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (admin_json_get(j, obj, keys[i]) >= 0) {
            if (!any) {
                fprintf(out, "%-11s", title);
            }
            fprintf(out, " %s %" PRIu64, keys[i], admin_fmt_u64(j, obj, keys[i]));
            any = 1;
        }
    }
    /* A daemon without these fields gets no empty line. */
    if (any) {
        fputc('\n', out);
    }
}

static void admin_fmt_followers(FILE *out, const struct admin_json *j, int32_t raft)
{
    int32_t m = admin_json_get(j, raft, "match");
    uint64_t commit = admin_fmt_u64(j, raft, "commit");
    uint64_t self = admin_fmt_u64(j, raft, "id");
    if (m < 0 || j->nodes[m].child < 0) {
        return;
    }
    fprintf(out, "followers:  (match index; lag = commit - match)\n");
    for (int32_t c = j->nodes[m].child; c >= 0; c = j->nodes[c].next) {
        char k[32];
        uint64_t match = 0;
        admin_json_key(j, c, k, sizeof(k));
        (void)admin_json_u64(j, c, &match);
        int64_t lag = (int64_t)(commit - match);
        fprintf(out, "  node %-4s match %" PRIu64 "  lag %" PRId64 "%s\n", k, match, lag,
                strtoull(k, NULL, 10) == self ? "  (self: durable)" : "");
    }
}

/* "members:    1 voter, 2 voter, 4 learner" (the configuration in use), when reported. */
static void admin_fmt_members(FILE *out, const struct admin_json *j, int32_t raft)
{
    int32_t m = admin_json_get(j, raft, "members");
    char self[16] = "";
    if (m < 0 || j->nodes[m].type != ADMIN_JSON_OBJ) {
        return;
    }
    (void)admin_json_text(j, admin_json_get(j, raft, "membership"), self, sizeof(self));
    fprintf(out, "members:   ");
    for (int32_t c = j->nodes[m].child; c >= 0; c = j->nodes[c].next) {
        char k[32], role[16];
        admin_json_key(j, c, k, sizeof(k));
        (void)admin_json_text(j, c, role, sizeof(role));
        fprintf(out, " %s %s%s", k, role, j->nodes[c].next >= 0 ? "," : "");
    }
    if (j->nodes[m].child < 0) {
        fprintf(out, " none known");
    }
    fprintf(out, " (this node: %s)\n", self[0] != '\0' ? self : "unknown");
}

static void admin_fmt_batches(FILE *out, const struct admin_json *j, int32_t raft)
{
    uint64_t b = admin_fmt_u64(j, raft, "batches");
    uint64_t cmds = admin_fmt_u64(j, raft, "batch_cmds");
    uint64_t bytes = admin_fmt_u64(j, raft, "batch_bytes");
    double div = b > 0 ? (double)b : 1.0;
    fprintf(out,
            "batches:    %" PRIu64 " (commands %" PRIu64 ", mean %.1f, max %" PRIu64
            "; bytes %" PRIu64 ", mean %.1f)\n",
            b, cmds, (double)cmds / div, admin_fmt_u64(j, raft, "batch_cmds_max"), bytes,
            (double)bytes / div);
}

static void admin_fmt_raft(FILE *out, const struct admin_json *j, int32_t raft)
{
    char role[32], digest[80];
    (void)admin_json_text(j, admin_json_get(j, raft, "role"), role, sizeof(role));
    (void)admin_json_text(j, admin_json_get(j, raft, "digest"), digest, sizeof(digest));
    uint64_t commit = admin_fmt_u64(j, raft, "commit");
    uint64_t applied = admin_fmt_u64(j, raft, "applied");
    fprintf(out, "node:       %" PRIu64 "\n", admin_fmt_u64(j, raft, "id"));
    fprintf(out, "role:       %s\n", role[0] != '\0' ? role : "unknown");
    fprintf(out, "leader:     %" PRIu64 "\n", admin_fmt_u64(j, raft, "leader"));
    fprintf(out, "term:       %" PRIu64 "\n", admin_fmt_u64(j, raft, "term"));
    fprintf(out, "commit:     %" PRIu64 "\n", commit);
    fprintf(out, "applied:    %" PRIu64 " (behind commit by %" PRId64 ")\n", applied,
            (int64_t)(commit - applied));
    fprintf(out, "durable:    %" PRIu64 "\n", admin_fmt_u64(j, raft, "durable"));
    fprintf(out, "last index: %" PRIu64 "\n", admin_fmt_u64(j, raft, "last_index"));
    fprintf(out, "snapshot:   %" PRIu64 "\n", admin_fmt_u64(j, raft, "snapshot_index"));
    admin_fmt_members(out, j, raft);
    admin_fmt_followers(out, j, raft);
    admin_fmt_batches(out, j, raft);
    static const char *const queues[] = {"req_ring", "peer_ring", "tx_ring"};
    admin_fmt_list(out, "queues:", j, raft, queues, sizeof(queues) / sizeof(queues[0]));
    static const char *const ctrs[] = {"elections_won", "redirects", "reads", "snapshots_taken",
                                       "snapshots_installed"};
    admin_fmt_list(out, "raft:", j, raft, ctrs, sizeof(ctrs) / sizeof(ctrs[0]));
    static const char *const memb[] = {"member_changes", "promotions", "not_member_drops"};
    admin_fmt_list(out, "membership:", j, raft, memb, sizeof(memb) / sizeof(memb[0]));
    /* audit_mismatch_node: the last peer whose digest differed (a stopped divergent replica
     * can no longer be asked; its peers remember it). */
    static const char *const audit[] = {"audits_ok", "audit_mismatches", "audit_mismatch_node",
                                        "audit_mismatch_index"};
    admin_fmt_list(out, "audit:", j, raft, audit, sizeof(audit) / sizeof(audit[0]));
    if (digest[0] != '\0') {
        fprintf(out, "digest:     %s\n", digest);
    }
}

int admin_fmt_status(FILE *out, const struct admin_json *rj, int32_t raft,
                     const struct admin_json *sj, int32_t stats)
{
    static const char *const net[] = {"rx_packets",   "tx_packets",   "requests",  "replies",
                                      "tx_drops",     "ring_full",    "malformed", "mac_failures",
                                      "unauthorized", "apply_errors", "peer_drops"};
    int ok_raft = raft >= 0 && rj->nodes[raft].type == ADMIN_JSON_OBJ;
    int ok_stats = stats >= 0 && sj->nodes[stats].type == ADMIN_JSON_OBJ;
    if (!ok_raft && !ok_stats) {
        return -EINVAL;
    }
    if (ok_raft) {
        admin_fmt_raft(out, rj, raft);
    } else {
        fprintf(out, "role:       single (no replication: no /ordo/raft)\n");
    }
    if (ok_stats) {
        admin_fmt_list(out, "network:", sj, stats, net, sizeof(net) / sizeof(net[0]));
    }
    return 0;
}

void admin_fmt_snap(FILE *out, const struct admin_json *j, int32_t snap)
{
    char mode[16] = "", phase[16] = "", err[128] = "";
    if (snap < 0 || j->nodes[snap].type != ADMIN_JSON_OBJ) {
        return;
    }
    (void)admin_json_text(j, admin_json_get(j, snap, "mode"), mode, sizeof(mode));
    (void)admin_json_text(j, admin_json_get(j, snap, "phase"), phase, sizeof(phase));
    fprintf(out, "snapshots:  mode %s, %s", mode[0] != '\0' ? mode : "fork",
            phase[0] != '\0' ? phase : "unknown");
    if (admin_fmt_u64(j, snap, "done") > 0) {
        fprintf(out,
                "; last at index %" PRIu64 " (written in %" PRIu64 " ms, apply pause %" PRIu64
                " us, max %" PRIu64 " us)",
                admin_fmt_u64(j, snap, "last_index"), admin_fmt_u64(j, snap, "write_ms_last"),
                admin_fmt_u64(j, snap, "pause_ns_last") / 1000u,
                admin_fmt_u64(j, snap, "pause_ns_max") / 1000u);
    }
    fputc('\n', out);
    static const char *const counts[] = {"started", "done", "failed", "cancelled"};
    admin_fmt_list(out, "snap count:", j, snap, counts, sizeof(counts) / sizeof(counts[0]));
    /* A failure is not fatal (the previous snapshot and the log stay): say what and where. */
    if (admin_json_text(j, admin_json_get(j, snap, "last_error"), err, sizeof(err)) == 0 &&
        err[0] != '\0') {
        fprintf(out, "snap error: %s (snapshot at index %" PRIu64 ")\n", err,
                admin_fmt_u64(j, snap, "last_error_index"));
    }
}

/* One member of the status JSON: the body's text as received, or null. */
static void admin_fmt_json_member(FILE *out, const char *name, const struct admin_json *j,
                                  int32_t body, const char *sep)
{
    fprintf(out, "\"%s\": ", name);
    if (body < 0 || (uint32_t)body >= j->n) {
        fprintf(out, "null%s", sep);
        return;
    }
    const struct admin_json_node *nd = &j->nodes[body];
    /* A string's slice excludes its quotes; containers and scalars are printed as sent. */
    const char *q = nd->type == ADMIN_JSON_STR ? "\"" : "";
    fprintf(out, "%s%.*s%s%s", q, (int)nd->len, j->text + nd->off, q, sep);
}

int admin_fmt_status_json(FILE *out, const struct admin_json *rj, int32_t raft,
                          const struct admin_json *sj, int32_t stats, const struct admin_json *nj,
                          int32_t snap)
{
    if (raft < 0 && stats < 0) {
        return -EINVAL;
    }
    fputc('{', out);
    admin_fmt_json_member(out, "raft", rj, raft, ", ");
    admin_fmt_json_member(out, "stats", sj, stats, ", ");
    admin_fmt_json_member(out, "snap", nj, snap, "}\n");
    return 0;
}
