/* Unit tests of the client session table: duplicate detection, saved replies, expiry and
 * eviction determinism, snapshots, and the exactly-once step over the key-value store. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/sess.h"
#include "engine/sm.h"
#include "engine/sm_kv.h"

static struct sess_table *sess_new(uint32_t max, uint64_t expiry)
{
    struct sess_table *t = NULL;
    struct sess_config cfg = {.sessions_max = max, .expiry_entries = expiry, .reply_max = 64};
    cr_assert_eq(sess_create(&cfg, &t), 0);
    return t;
}

static void rec(struct sess_table *t, uint64_t client, uint64_t req, uint64_t index,
                const char *result)
{
    cr_assert_eq(sess_record(t, client, req, index, MSG_STATUS_OK, (const uint8_t *)result,
                             (uint32_t)strlen(result)),
                 0);
}

static void snap(const struct sess_table *t, struct sm_mem_sink *s)
{
    *s = (struct sm_mem_sink){0};
    cr_assert_eq(sess_snapshot_write(t, sm_mem_sink_write, s), 0);
    cr_assert_eq(s->len, sess_snapshot_size(t));
}

static int restore(struct sess_table *t, const uint8_t *data, size_t len)
{
    struct sm_mem_source src = {.data = data, .len = len};
    return sess_snapshot_read(t, sm_mem_source_read, &src);
}

Test(sess, unknown_client_is_expired_at_any_request_number)
{
    struct sess_table *t = sess_new(8, 100);
    cr_assert_eq(sess_lookup(t, 42, 1, NULL), SESS_EXPIRED, "request 1 opens nothing");
    cr_assert_eq(sess_lookup(t, 42, 2, NULL), SESS_EXPIRED);
    cr_assert_not(sess_known(t, 42));
    rec(t, 42, 1, 1, "r1");
    cr_assert(sess_known(t, 42));
    cr_assert_eq(sess_lookup(t, 42, 0, NULL), SESS_EXPIRED, "request numbers start at 1");
    sess_destroy(t);
}

Test(sess, register_assigns_distinct_deterministic_ids)
{
    struct sess_table *a = sess_new(8, 100);
    struct sess_table *b = sess_new(8, 100);
    uint64_t ida[3], idb[3];
    uint64_t at[3] = {5, 5, 9};
    for (int i = 0; i < 3; i++) {
        sess_advance(a, at[i]);
        sess_advance(b, at[i]);
        cr_assert_eq(sess_register(a, at[i], &ida[i]), 0);
        cr_assert_eq(sess_register(b, at[i], &idb[i]), 0);
        cr_assert_eq(ida[i], idb[i], "the same entries give the same ids");
    }
    cr_assert_eq(ida[0], (5u << 16) | 0u, "k-th registration at index 5");
    cr_assert_eq(ida[1], (5u << 16) | 1u);
    cr_assert_eq(ida[2], 9u << 16);
    cr_assert_eq(sess_count(a), 3);
    for (int i = 0; i < 3; i++) {
        cr_assert(sess_known(a, ida[i]));
        cr_assert_eq(sess_lookup(a, ida[i], 1, NULL), SESS_NEW, "nothing applied yet");
    }
    sess_destroy(a);
    sess_destroy(b);
}

Test(sess, register_ids_are_salted_and_bounded)
{
    struct sess_table *t = NULL;
    struct sess_config cfg = {.sessions_max = 4, .reply_max = 64, .id_salt = 0xabcdef};
    cr_assert_eq(sess_create(&cfg, &t), 0);
    uint64_t id = 0;
    cr_assert_eq(sess_register(t, 3, &id), 0);
    cr_assert_eq(id, (3u << 16) ^ 0xabcdefu);
    cr_assert_eq(sess_register(t, SESS_REGISTER_INDEX_LIMIT, &id), ORDO_ENOSPACE);
    cr_assert_eq(sess_count(t), 1, "a refused registration changes nothing");
    sess_destroy(t);
}

Test(sess, register_evicts_least_recently_used)
{
    struct sess_table *t = sess_new(2, 1000);
    uint64_t id[3];
    for (uint64_t i = 0; i < 3; i++) {
        sess_advance(t, i + 1);
        cr_assert_eq(sess_register(t, i + 1, &id[i]), 0);
    }
    cr_assert_eq(sess_count(t), 2);
    cr_assert_not(sess_known(t, id[0]), "the oldest session was evicted");
    cr_assert_eq(sess_lookup(t, id[0], 1, NULL), SESS_EXPIRED);
    sess_destroy(t);
}

Test(sess, duplicate_gets_saved_reply)
{
    struct sess_table *t = sess_new(8, 100);
    cr_assert_eq(sess_record(t, 7, 1, 1, MSG_STATUS_CAS_MISMATCH, (const uint8_t *)"cur", 3), 0);
    struct sess_reply r;
    cr_assert_eq(sess_lookup(t, 7, 1, &r), SESS_DUPLICATE);
    cr_assert_eq(r.status, MSG_STATUS_CAS_MISMATCH);
    cr_assert_eq(r.result_len, 3);
    cr_assert_eq(memcmp(r.result, "cur", 3), 0);
    sess_destroy(t);
}

Test(sess, newer_is_new_older_is_expired)
{
    struct sess_table *t = sess_new(8, 100);
    rec(t, 7, 1, 1, "a");
    rec(t, 7, 2, 2, "b");
    cr_assert_eq(sess_lookup(t, 7, 3, NULL), SESS_NEW);
    cr_assert_eq(sess_lookup(t, 7, 5, NULL), SESS_NEW, "gaps are allowed");
    cr_assert_eq(sess_lookup(t, 7, 1, NULL), SESS_EXPIRED);
    struct sess_reply r;
    cr_assert_eq(sess_lookup(t, 7, 2, &r), SESS_DUPLICATE);
    cr_assert_eq(memcmp(r.result, "b", 1), 0);
    sess_destroy(t);
}

Test(sess, unused_session_expires_after_n_entries)
{
    struct sess_table *t = sess_new(8, 100);
    rec(t, 1, 1, 10, "x");
    rec(t, 2, 1, 50, "y");
    sess_advance(t, 110);
    cr_assert_eq(sess_lookup(t, 1, 1, NULL), SESS_DUPLICATE, "110 - 10 = 100: still kept");
    sess_advance(t, 111);
    cr_assert_not(sess_known(t, 1), "forgotten");
    cr_assert_eq(sess_lookup(t, 1, 1, NULL), SESS_EXPIRED, "its retry is never applied again");
    cr_assert_eq(sess_lookup(t, 1, 2, NULL), SESS_EXPIRED);
    cr_assert_eq(sess_lookup(t, 2, 1, NULL), SESS_DUPLICATE);
    cr_assert_eq(sess_count(t), 1);
    sess_advance(t, 1000);
    cr_assert_eq(sess_count(t), 0);
    sess_destroy(t);
}

Test(sess, use_renews_a_session)
{
    struct sess_table *t = sess_new(8, 100);
    rec(t, 1, 1, 10, "x");
    sess_advance(t, 100);
    rec(t, 1, 2, 100, "y");
    sess_advance(t, 150);
    cr_assert_eq(sess_lookup(t, 1, 2, NULL), SESS_DUPLICATE);
    sess_destroy(t);
}

Test(sess, full_table_evicts_least_recently_used)
{
    struct sess_table *t = sess_new(3, 1000);
    rec(t, 1, 1, 1, "a");
    rec(t, 2, 1, 2, "b");
    rec(t, 3, 1, 3, "c");
    rec(t, 1, 2, 4, "a2"); /* client 1 is now the most recent */
    rec(t, 4, 1, 5, "d");
    cr_assert_eq(sess_count(t), 3);
    cr_assert_eq(sess_lookup(t, 2, 2, NULL), SESS_EXPIRED, "client 2 was evicted");
    cr_assert_eq(sess_lookup(t, 1, 2, NULL), SESS_DUPLICATE);
    cr_assert_eq(sess_lookup(t, 3, 1, NULL), SESS_DUPLICATE);
    cr_assert_eq(sess_lookup(t, 4, 1, NULL), SESS_DUPLICATE);
    sess_destroy(t);
}

Test(sess, reply_larger_than_reply_max_refused)
{
    struct sess_table *t = sess_new(3, 1000);
    static const uint8_t big[65];
    cr_assert_eq(sess_record(t, 1, 1, 1, 0, big, sizeof(big)), ORDO_ETOOBIG);
    cr_assert_eq(sess_count(t), 0);
    sess_destroy(t);
}

/* Drives a table through a fixed pseudo-random workload with registrations, evictions and
 * expiry: 64 clients, each registering again whenever its session is gone. */
static void workload(struct sess_table *t)
{
    uint64_t x = 12345;
    uint64_t next_req[64] = {0};
    uint64_t id[64] = {0};
    for (uint64_t index = 1; index <= 3000; index++) {
        sess_advance(t, index);
        x = x * 6364136223846793005u + 1442695040888963407u;
        uint64_t client = (x >> 33) % 64;
        uint64_t req = next_req[client] + 1;
        if (id[client] == 0 || sess_lookup(t, id[client], req, NULL) == SESS_EXPIRED) {
            cr_assert_eq(sess_register(t, index, &id[client]), 0);
            next_req[client] = 0;
            continue;
        }
        char r[16];
        int n = snprintf(r, sizeof(r), "%lu", (unsigned long)index);
        cr_assert_eq(sess_record(t, id[client], req, index, (uint8_t)(index % 7),
                                 (const uint8_t *)r, (uint32_t)n),
                     0);
        next_req[client] = req;
    }
}

Test(sess, same_entries_give_same_table)
{
    struct sess_table *a = sess_new(32, 200);
    struct sess_table *b = sess_new(32, 200);
    workload(a);
    workload(b);
    struct sm_mem_sink sa, sb;
    snap(a, &sa);
    snap(b, &sb);
    cr_assert_eq(sa.len, sb.len);
    cr_assert_eq(memcmp(sa.data, sb.data, sa.len), 0);
    sm_mem_sink_free(&sa);
    sm_mem_sink_free(&sb);
    sess_destroy(a);
    sess_destroy(b);
}

Test(sess, snapshot_round_trip)
{
    struct sess_table *a = sess_new(32, 200);
    struct sess_table *b = sess_new(32, 200);
    workload(a);
    rec(b, 999, 1, 1, "replaced");
    struct sm_mem_sink sa, sb;
    snap(a, &sa);
    cr_assert_eq(restore(b, sa.data, sa.len), 0);
    cr_assert_eq(sess_count(b), sess_count(a));
    cr_assert_not(sess_known(b, 999), "old contents gone");
    snap(b, &sb);
    cr_assert_eq(sa.len, sb.len);
    cr_assert_eq(memcmp(sa.data, sb.data, sa.len), 0, "same bytes: same LRU order too");
    /* And both behave the same from here on: evictions follow the restored order. */
    for (uint64_t c = 1000; c < 1040; c++) {
        rec(a, c, 1, 4000 + c, "n");
        rec(b, c, 1, 4000 + c, "n");
    }
    sm_mem_sink_free(&sa);
    sm_mem_sink_free(&sb);
    snap(a, &sa);
    snap(b, &sb);
    cr_assert_eq(memcmp(sa.data, sb.data, sa.len), 0);
    sm_mem_sink_free(&sa);
    sm_mem_sink_free(&sb);
    sess_destroy(a);
    sess_destroy(b);
}

Test(sess, corrupt_snapshot_rejected_and_old_kept)
{
    struct sess_table *a = sess_new(8, 200);
    struct sess_table *b = sess_new(8, 200);
    rec(a, 1, 1, 1, "one");
    rec(a, 2, 1, 2, "two");
    rec(b, 3, 5, 7, "keep");
    struct sm_mem_sink s;
    snap(a, &s);
    for (size_t i = 0; i < s.len; i++) {
        s.data[i] ^= 0x10;
        cr_assert_lt(restore(b, s.data, s.len), 0, "flip at %zu accepted", i);
        s.data[i] ^= 0x10;
    }
    for (size_t len = 0; len < s.len; len++) {
        cr_assert_lt(restore(b, s.data, len), 0, "truncation to %zu accepted", len);
    }
    cr_assert_eq(sess_count(b), 1);
    cr_assert_eq(sess_lookup(b, 3, 5, NULL), SESS_DUPLICATE);
    sm_mem_sink_free(&s);
    sess_destroy(a);
    sess_destroy(b);
}

Test(sess, snapshot_larger_than_table_rejected)
{
    struct sess_table *a = sess_new(8, 200);
    struct sess_table *b = sess_new(2, 200);
    rec(a, 1, 1, 1, "1");
    rec(a, 2, 1, 2, "2");
    rec(a, 3, 1, 3, "3");
    struct sm_mem_sink s;
    snap(a, &s);
    cr_assert_eq(restore(b, s.data, s.len), ORDO_ETOOBIG);
    sm_mem_sink_free(&s);
    sess_destroy(a);
    sess_destroy(b);
}

Test(sess, advance_backwards_aborts, .signal = SIGABRT)
{
    struct sess_table *t = sess_new(8, 200);
    sess_advance(t, 10);
    sess_advance(t, 9);
}

/* ---- the exactly-once step over the key-value store ---- */

struct fixture {
    struct sess_table *t;
    struct sm *kv;
    uint8_t args[64];
    uint8_t out[SM_KV_VALUE_MAX];
};

static void fixture_init(struct fixture *f)
{
    struct sess_config cfg = {.sessions_max = 8, .expiry_entries = 100};
    cr_assert_eq(sess_create(&cfg, &f->t), 0);
    cr_assert_eq(sm_kv_create(NULL, &f->kv), 0);
}

static void fixture_fini(struct fixture *f)
{
    sess_destroy(f->t);
    sm_destroy(f->kv);
}

static int exec_cas(struct fixture *f, uint64_t index, uint64_t client, uint64_t req,
                    uint16_t flags, const char *expect, const char *v,
                    struct msg_client_reply *reply)
{
    int n = sm_kv_encode_cas(f->args, sizeof(f->args), "k", 1, expect,
                             expect ? strlen(expect) : SM_KV_CAS_ABSENT, v, strlen(v));
    cr_assert_gt(n, 0);
    struct msg_client_request req_msg = {.client_id = client,
                                         .request_no = req,
                                         .flags = flags,
                                         .op = SM_KV_OP_CAS,
                                         .args_len = (uint32_t)n,
                                         .args = f->args};
    sess_advance(f->t, index);
    return sess_execute(f->t, f->kv, index, &req_msg, f->out, sizeof(f->out), reply);
}

/* Registers through sess_execute at `index`; returns the assigned client id. */
static uint64_t exec_register(struct fixture *f, uint64_t index)
{
    struct msg_client_request req = {
        .client_id = 777, .request_no = 9, .flags = MSG_REQ_REGISTER, .op = MSG_OP_NOOP};
    struct msg_client_reply r;
    sess_advance(f->t, index);
    cr_assert_eq(sess_execute(f->t, f->kv, index, &req, f->out, sizeof(f->out), &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_OK);
    cr_assert_eq(r.client_id, 777, "the nonce is echoed");
    cr_assert_eq(r.request_no, 9);
    cr_assert_eq(r.result_len, SESS_REGISTER_RESULT_LEN);
    uint64_t id = 0;
    for (uint32_t i = 0; i < SESS_REGISTER_RESULT_LEN; i++) {
        id |= (uint64_t)r.result[i] << (8 * i);
    }
    cr_assert(sess_known(f->t, id));
    return id;
}

Test(sess, execute_applies_a_retry_once)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    uint64_t c = exec_register(&f, 1);
    cr_assert_eq(exec_cas(&f, 2, c, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_OK);
    /* The retry of the same create-if-absent would mismatch if applied again. */
    cr_assert_eq(exec_cas(&f, 3, c, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_OK, "saved reply, not a second apply");
    cr_assert_eq(r.client_id, c);
    cr_assert_eq(r.request_no, 1);
    cr_assert_eq(exec_cas(&f, 4, c, 2, 0, NULL, "v2", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_CAS_MISMATCH);
    cr_assert_eq(r.result_len, 2);
    cr_assert_eq(memcmp(r.result, "v1", 2), 0);
    cr_assert_eq(exec_cas(&f, 5, c, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_SESSION_EXPIRED);
    cr_assert_eq(r.result_len, 0);
    fixture_fini(&f);
}

Test(sess, execute_unknown_client_is_expired_and_not_applied)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    for (uint64_t no = 1; no <= 3; no++) {
        cr_assert_eq(exec_cas(&f, no, 5, no, 0, NULL, "v1", &r), 0);
        cr_assert_eq(r.status, MSG_STATUS_SESSION_EXPIRED, "request %lu", (unsigned long)no);
    }
    cr_assert_eq(sm_kv_count(f.kv), 0, "never applied");
    cr_assert_eq(sess_count(f.t), 0, "and no session opened");
    fixture_fini(&f);
}

/* The hole this closes: request 1 applied, its session evicted, then a delayed retry of
 * request 1 arrives. Under "request 1 opens a session" it was applied a second time. */
Test(sess, execute_retry_after_eviction_is_expired_not_applied_twice)
{
    struct fixture f;
    struct sess_config cfg = {.sessions_max = 1, .expiry_entries = 100};
    cr_assert_eq(sess_create(&cfg, &f.t), 0);
    cr_assert_eq(sm_kv_create(NULL, &f.kv), 0);
    struct msg_client_reply r;
    uint64_t a = exec_register(&f, 1);
    cr_assert_eq(exec_cas(&f, 2, a, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_OK);
    uint64_t b = exec_register(&f, 3);
    cr_assert_neq(a, b);
    cr_assert_not(sess_known(f.t, a), "evicted by b's registration");
    uint8_t before[MSG_DIGEST_LEN], after[MSG_DIGEST_LEN];
    sm_digest(f.kv, before);
    cr_assert_eq(exec_cas(&f, 4, a, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_SESSION_EXPIRED);
    sm_digest(f.kv, after);
    cr_assert_eq(memcmp(before, after, sizeof(after)), 0, "the retry changed nothing");
    cr_assert_eq(sess_count(f.t), 1);
    cr_assert(sess_known(f.t, b));
    fixture_fini(&f);
}

static uint8_t exec_register_own(struct fixture *f, uint64_t index, uint64_t client, uint64_t no)
{
    struct msg_client_request req = {
        .client_id = client, .request_no = no, .flags = MSG_REQ_REGISTER, .op = MSG_OP_NOOP};
    struct msg_client_reply r;
    sess_advance(f->t, index);
    cr_assert_eq(sess_execute_auth(f->t, f->kv, index, &req, 1, f->out, sizeof(f->out), &r), 0);
    if (r.status == MSG_STATUS_OK) {
        cr_assert_eq(r.result_len, SESS_REGISTER_RESULT_LEN);
        cr_assert_eq(r.result[0], (uint8_t)client, "the session id is the client's own");
    }
    return r.status;
}

Test(sess, authenticated_register_keeps_the_client_id_with_a_floor)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    cr_assert_eq(exec_register_own(&f, 1, 77, 1000), MSG_STATUS_OK);
    cr_assert_eq(exec_register_own(&f, 2, 77, 1000), MSG_STATUS_OK, "a retry: saved reply");
    cr_assert_eq(sess_lookup(f.t, 77, 999, NULL), SESS_EXPIRED, "numbers below the floor");
    cr_assert_eq(exec_cas(&f, 3, 77, 1001, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_OK);
    cr_assert_eq(exec_register_own(&f, 4, 77, 1000), MSG_STATUS_SESSION_EXPIRED);
    /* Evicted or expired, then registered again above every number used: the delayed
     * retry of request 1001 is refused, not applied a second time. */
    sess_advance(f.t, 500);
    cr_assert_not(sess_known(f.t, 77));
    cr_assert_eq(exec_register_own(&f, 501, 77, 5000), MSG_STATUS_OK);
    cr_assert_eq(exec_cas(&f, 502, 77, 1001, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_SESSION_EXPIRED);
    cr_assert_eq(exec_register_own(&f, 503, 77, 0), MSG_STATUS_INVALID);
    fixture_fini(&f);
}

Test(sess, execute_register_with_read_or_no_session_is_invalid)
{
    struct fixture f;
    fixture_init(&f);
    static const uint16_t bad[] = {MSG_REQ_REGISTER | MSG_REQ_READ,
                                   MSG_REQ_REGISTER | MSG_REQ_NO_SESSION};
    for (size_t i = 0; i < 2; i++) {
        struct msg_client_request req = {.client_id = 1, .request_no = 1, .flags = bad[i]};
        struct msg_client_reply r;
        sess_advance(f.t, i + 1);
        cr_assert_eq(sess_execute(f.t, f.kv, i + 1, &req, f.out, sizeof(f.out), &r), 0);
        cr_assert_eq(r.status, MSG_STATUS_INVALID);
        cr_assert_eq(r.result_len, 0);
    }
    cr_assert_eq(sess_count(f.t), 0);
    fixture_fini(&f);
}

Test(sess, execute_without_session_applies_every_time)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    cr_assert_eq(exec_cas(&f, 1, 5, 1, MSG_REQ_NO_SESSION, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_OK);
    cr_assert_eq(exec_cas(&f, 2, 5, 1, MSG_REQ_NO_SESSION, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_CAS_MISMATCH, "applied twice: at-least-once");
    cr_assert_eq(sess_count(f.t), 0);
    fixture_fini(&f);
}

Test(sess, execute_after_expiry_says_expired)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    uint64_t c = exec_register(&f, 1);
    cr_assert_eq(exec_cas(&f, 2, c, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(exec_cas(&f, 500, c, 2, 0, "v1", "v2", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_SESSION_EXPIRED);
    cr_assert_eq(exec_cas(&f, 501, c, 1, 0, NULL, "v1", &r), 0);
    cr_assert_eq(r.status, MSG_STATUS_SESSION_EXPIRED, "a retry of request 1 too");
    fixture_fini(&f);
}

Test(sess, execute_local_failure_changes_nothing)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    uint64_t c = exec_register(&f, 1);
    mem_fault_set(0, 1);
    int rc = exec_cas(&f, 2, c, 1, 0, NULL, "v1", &r);
    mem_fault_set(-1, 0);
    cr_assert_eq(rc, -ENOMEM);
    cr_assert_eq(sess_lookup(f.t, c, 1, NULL), SESS_NEW, "nothing recorded");
    cr_assert_eq(sm_kv_count(f.kv), 0);
    cr_assert_eq(exec_cas(&f, 2, c, 1, 0, NULL, "v1", &r), 0, "the retry succeeds");
    cr_assert_eq(r.status, MSG_STATUS_OK);
    fixture_fini(&f);
}

Test(sess, execute_refuses_reply_max_below_result_max)
{
    struct fixture f;
    struct sess_config cfg = {.sessions_max = 8, .reply_max = 16};
    cr_assert_eq(sess_create(&cfg, &f.t), 0);
    cr_assert_eq(sm_kv_create(NULL, &f.kv), 0);
    struct msg_client_reply r;
    uint64_t c = exec_register(&f, 1);
    cr_assert_eq(exec_cas(&f, 2, c, 1, 0, NULL, "v1", &r), ORDO_ETOOBIG);
    cr_assert_eq(sm_kv_count(f.kv), 0, "nothing applied");
    fixture_fini(&f);
}

/* ---- hand-built session snapshots (docs/kv.md layout), valid checksums ---- */

struct hand {
    uint8_t b[512];
    size_t n;
};

static void hand_le(struct hand *h, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h->b[h->n++] = (uint8_t)(v >> (8 * i));
    }
}

static void hand_header_v(struct hand *h, uint16_t version, uint32_t count, uint64_t index)
{
    h->n = 0;
    memcpy(h->b, "OSES", 4);
    h->n = 4;
    hand_le(h, version, 2);
    hand_le(h, 0, 2);
    hand_le(h, count, 4);
    hand_le(h, index, 8);
}

static void hand_header(struct hand *h, uint32_t count, uint64_t index)
{
    hand_header_v(h, 2, count, index);
}

static void hand_entry_len(struct hand *h, uint64_t client, uint64_t req, uint64_t used,
                           uint32_t len)
{
    hand_le(h, client, 8);
    hand_le(h, req, 8);
    hand_le(h, used, 8);
    hand_le(h, MSG_STATUS_OK, 1);
    hand_le(h, len, 4);
    for (uint32_t i = 0; i < len; i++) {
        h->b[h->n++] = 'r';
    }
}

static void hand_entry(struct hand *h, uint64_t client, uint64_t req, uint64_t used)
{
    hand_entry_len(h, client, req, used, 1);
}

static int hand_restore(struct sess_table *t, struct hand *h)
{
    crypto_generichash(h->b + h->n, 32, h->b, h->n, NULL, 0);
    h->n += 32;
    return restore(t, h->b, h->n);
}

Test(sess, hand_built_snapshot_as_documented_is_accepted)
{
    struct sess_table *t = sess_new(8, 100);
    struct hand h;
    hand_header(&h, 2, 20);
    hand_entry(&h, 5, 3, 10);
    hand_entry(&h, 6, 1, 20);
    cr_assert_eq(hand_restore(t, &h), 0);
    struct sess_reply r;
    cr_assert_eq(sess_lookup(t, 5, 3, &r), SESS_DUPLICATE);
    cr_assert_eq(r.result_len, 1);
    cr_assert_eq(r.result[0], 'r');
    sess_advance(t, 111);
    cr_assert_eq(sess_lookup(t, 5, 3, NULL), SESS_EXPIRED, "expired at its restored last use");
    cr_assert_eq(sess_lookup(t, 6, 1, NULL), SESS_DUPLICATE);
    sess_destroy(t);
}

Test(sess, snapshot_with_repeated_client_is_corrupt)
{
    struct sess_table *t = sess_new(8, 100);
    struct hand h;
    hand_header(&h, 2, 20);
    hand_entry(&h, 5, 1, 10);
    hand_entry(&h, 5, 2, 20);
    cr_assert_eq(hand_restore(t, &h), ORDO_ECORRUPT);
    sess_destroy(t);
}

Test(sess, snapshot_out_of_lru_order_is_corrupt)
{
    struct sess_table *t = sess_new(8, 100);
    struct hand h;
    hand_header(&h, 2, 20);
    hand_entry(&h, 5, 1, 20);
    hand_entry(&h, 6, 1, 10);
    cr_assert_eq(hand_restore(t, &h), ORDO_ECORRUPT);
    hand_header(&h, 1, 20);
    hand_entry(&h, 5, 1, 21);
    cr_assert_eq(hand_restore(t, &h), ORDO_ECORRUPT, "last use after the table's index");
    sess_destroy(t);
}

Test(sess, snapshot_with_request_zero_and_a_reply_is_malformed)
{
    struct sess_table *t = sess_new(8, 100);
    struct hand h;
    hand_header(&h, 1, 20);
    hand_entry(&h, 5, 0, 10);
    cr_assert_eq(hand_restore(t, &h), ORDO_EMALFORMED);
    sess_destroy(t);
}

Test(sess, snapshot_with_registered_unused_session_is_accepted)
{
    struct sess_table *t = sess_new(8, 100);
    struct hand h;
    hand_header(&h, 1, 20);
    hand_entry_len(&h, 5, 0, 10, 0);
    cr_assert_eq(hand_restore(t, &h), 0);
    cr_assert_eq(sess_lookup(t, 5, 1, NULL), SESS_NEW);
    sess_destroy(t);
}

Test(sess, snapshot_version_1_is_refused)
{
    struct sess_table *t = sess_new(8, 100);
    struct hand h;
    hand_header_v(&h, 1, 1, 20);
    hand_entry(&h, 5, 1, 10);
    cr_assert_eq(hand_restore(t, &h), ORDO_EVERSION);
    sess_destroy(t);
}

Test(sess, snapshot_round_trip_keeps_registered_sessions)
{
    struct fixture f;
    fixture_init(&f);
    struct msg_client_reply r;
    uint64_t a = exec_register(&f, 1);
    uint64_t b = exec_register(&f, 2);
    cr_assert_eq(exec_cas(&f, 3, a, 1, 0, NULL, "v1", &r), 0);
    struct sm_mem_sink s;
    snap(f.t, &s);
    struct sess_table *t = sess_new(8, 100);
    cr_assert_eq(restore(t, s.data, s.len), 0);
    cr_assert_eq(sess_count(t), 2);
    cr_assert_eq(sess_lookup(t, a, 1, NULL), SESS_DUPLICATE, "a's request 1 is still known");
    cr_assert_eq(sess_lookup(t, b, 1, NULL), SESS_NEW, "b registered, nothing applied");
    uint64_t c = 0;
    sess_advance(t, 4);
    cr_assert_eq(sess_register(t, 4, &c), 0);
    cr_assert(c != a && c != b, "ids after a restore are new ones");
    sm_mem_sink_free(&s);
    sess_destroy(t);
    fixture_fini(&f);
}
