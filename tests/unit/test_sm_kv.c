/* Unit tests of the key-value state machine: every op, CAS rules, argument bounds, the
 * incremental digest, snapshots (round trip and corruption), growth and allocation faults. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/sm.h"
#include "engine/sm_kv.h"

static uint8_t args[SM_KV_ARGS_MAX];
static uint8_t out[SM_KV_VALUE_MAX];
static uint32_t out_len;

static struct sm *kv_new(uint32_t value_max)
{
    struct sm *sm = NULL;
    struct sm_kv_config cfg = {.value_max = value_max};
    cr_assert_eq(sm_kv_create(&cfg, &sm), 0);
    return sm;
}

static int kv_op(struct sm *sm, uint8_t op, int n)
{
    cr_assert_gt(n, 0, "encoder failed: %d", n);
    return sm_apply(sm, op, args, (uint32_t)n, out, sizeof(out), &out_len);
}

static int kv_put(struct sm *sm, const char *k, const char *v)
{
    return kv_op(sm, SM_KV_OP_PUT,
                 sm_kv_encode_put(args, sizeof(args), k, strlen(k), v, strlen(v)));
}

static int kv_get(struct sm *sm, const char *k)
{
    return kv_op(sm, SM_KV_OP_GET, sm_kv_encode_get(args, sizeof(args), k, strlen(k)));
}

static int kv_del(struct sm *sm, const char *k)
{
    return kv_op(sm, SM_KV_OP_DELETE, sm_kv_encode_del(args, sizeof(args), k, strlen(k)));
}

static int kv_cas(struct sm *sm, const char *k, const char *expect, const char *v)
{
    size_t elen = expect == NULL ? SM_KV_CAS_ABSENT : strlen(expect);
    return kv_op(sm, SM_KV_OP_CAS,
                 sm_kv_encode_cas(args, sizeof(args), k, strlen(k), expect, elen, v, strlen(v)));
}

static void expect_value(struct sm *sm, const char *k, const char *v)
{
    cr_assert_eq(kv_get(sm, k), MSG_STATUS_OK, "GET %s", k);
    cr_assert_eq(out_len, strlen(v));
    cr_assert_eq(memcmp(out, v, out_len), 0);
}

static void digest_of(const struct sm *sm, uint8_t d[MSG_DIGEST_LEN])
{
    sm_digest(sm, d);
}

static void snap(const struct sm *sm, struct sm_mem_sink *s)
{
    *s = (struct sm_mem_sink){0};
    cr_assert_eq(sm_snapshot_write(sm, sm_mem_sink_write, s), 0);
    cr_assert_eq(s->len, sm_snapshot_size(sm), "snapshot_size must be exact");
}

static int restore(struct sm *sm, const uint8_t *data, size_t len)
{
    struct sm_mem_source src = {.data = data, .len = len};
    return sm_snapshot_read(sm, sm_mem_source_read, &src);
}

Test(sm_kv, noop_accepts_any_args_and_changes_nothing)
{
    struct sm *sm = kv_new(0);
    uint8_t before[MSG_DIGEST_LEN], after[MSG_DIGEST_LEN];
    digest_of(sm, before);
    uint8_t junk[3] = {0xff, 0xff, 0xff};
    cr_assert_eq(sm_apply(sm, MSG_OP_NOOP, junk, 3, out, sizeof(out), &out_len), MSG_STATUS_OK);
    cr_assert_eq(out_len, 0);
    cr_assert_eq(sm_apply(sm, MSG_OP_NOOP, NULL, 0, out, sizeof(out), &out_len), MSG_STATUS_OK);
    digest_of(sm, after);
    cr_assert_eq(memcmp(before, after, sizeof(after)), 0);
    sm_destroy(sm);
}

Test(sm_kv, put_then_get_returns_value)
{
    struct sm *sm = kv_new(0);
    cr_assert_eq(kv_put(sm, "alpha", "one"), MSG_STATUS_OK);
    cr_assert_eq(out_len, 0, "PUT has no result");
    expect_value(sm, "alpha", "one");
    cr_assert_eq(sm_kv_count(sm), 1);
    sm_destroy(sm);
}

Test(sm_kv, get_missing_is_not_found)
{
    struct sm *sm = kv_new(0);
    cr_assert_eq(kv_get(sm, "nope"), MSG_STATUS_NOT_FOUND);
    cr_assert_eq(out_len, 0);
    sm_destroy(sm);
}

Test(sm_kv, put_overwrites_same_and_other_size)
{
    struct sm *sm = kv_new(0);
    cr_assert_eq(kv_put(sm, "k", "aaa"), MSG_STATUS_OK);
    cr_assert_eq(kv_put(sm, "k", "bbb"), MSG_STATUS_OK);
    expect_value(sm, "k", "bbb");
    cr_assert_eq(kv_put(sm, "k", "a much longer value"), MSG_STATUS_OK);
    expect_value(sm, "k", "a much longer value");
    cr_assert_eq(kv_put(sm, "k", ""), MSG_STATUS_OK);
    expect_value(sm, "k", "");
    cr_assert_eq(sm_kv_count(sm), 1);
    sm_destroy(sm);
}

Test(sm_kv, delete_removes_and_reports_missing)
{
    struct sm *sm = kv_new(0);
    cr_assert_eq(kv_put(sm, "k", "v"), MSG_STATUS_OK);
    cr_assert_eq(kv_del(sm, "k"), MSG_STATUS_OK);
    cr_assert_eq(out_len, 0);
    cr_assert_eq(kv_get(sm, "k"), MSG_STATUS_NOT_FOUND);
    cr_assert_eq(kv_del(sm, "k"), MSG_STATUS_NOT_FOUND);
    cr_assert_eq(sm_kv_count(sm), 0);
    sm_destroy(sm);
}

Test(sm_kv, cas_match_swaps)
{
    struct sm *sm = kv_new(0);
    kv_put(sm, "k", "old");
    cr_assert_eq(kv_cas(sm, "k", "old", "new"), MSG_STATUS_OK);
    cr_assert_eq(out_len, 0);
    expect_value(sm, "k", "new");
    sm_destroy(sm);
}

Test(sm_kv, cas_mismatch_returns_current_and_keeps_it)
{
    struct sm *sm = kv_new(0);
    kv_put(sm, "k", "current");
    cr_assert_eq(kv_cas(sm, "k", "other", "new"), MSG_STATUS_CAS_MISMATCH);
    cr_assert_eq(out_len, 7);
    cr_assert_eq(memcmp(out, "current", 7), 0);
    cr_assert_eq(kv_cas(sm, "k", "curren", "new"), MSG_STATUS_CAS_MISMATCH, "prefix is no match");
    expect_value(sm, "k", "current");
    sm_destroy(sm);
}

Test(sm_kv, cas_on_missing_key_is_not_found)
{
    struct sm *sm = kv_new(0);
    cr_assert_eq(kv_cas(sm, "k", "", "new"), MSG_STATUS_NOT_FOUND);
    cr_assert_eq(kv_get(sm, "k"), MSG_STATUS_NOT_FOUND, "nothing was created");
    sm_destroy(sm);
}

Test(sm_kv, cas_absent_creates_only_if_missing)
{
    struct sm *sm = kv_new(0);
    cr_assert_eq(kv_cas(sm, "k", NULL, "first"), MSG_STATUS_OK);
    expect_value(sm, "k", "first");
    cr_assert_eq(kv_cas(sm, "k", NULL, "second"), MSG_STATUS_CAS_MISMATCH);
    cr_assert_eq(out_len, 5);
    cr_assert_eq(memcmp(out, "first", 5), 0);
    expect_value(sm, "k", "first");
    sm_destroy(sm);
}

Test(sm_kv, cas_empty_expected_matches_empty_value_only)
{
    struct sm *sm = kv_new(0);
    kv_put(sm, "k", "");
    cr_assert_eq(kv_cas(sm, "k", "", "filled"), MSG_STATUS_OK);
    cr_assert_eq(kv_cas(sm, "k", "", "again"), MSG_STATUS_CAS_MISMATCH);
    expect_value(sm, "k", "filled");
    sm_destroy(sm);
}

Test(sm_kv, key_of_256_bytes_ok_257_rejected)
{
    struct sm *sm = kv_new(0);
    char key[258];
    memset(key, 'k', sizeof(key));
    int n = sm_kv_encode_put(args, sizeof(args), key, 256, "v", 1);
    cr_assert_eq(kv_op(sm, SM_KV_OP_PUT, n), MSG_STATUS_OK);
    cr_assert_eq(sm_kv_encode_put(args, sizeof(args), key, 257, "v", 1), ORDO_ETOOBIG);
    cr_assert_eq(sm_kv_encode_get(args, sizeof(args), key, 0), ORDO_ETOOBIG);
    /* Hand-encode a 257-byte key: the replica must refuse it, not trust the client. */
    args[0] = 1;
    args[1] = 1;
    memset(args + 2, 'k', 257);
    memset(args + 259, 0, 4);
    cr_assert_eq(kv_op(sm, SM_KV_OP_PUT, 263), MSG_STATUS_INVALID);
    cr_assert_eq(sm_kv_count(sm), 1);
    sm_destroy(sm);
}

Test(sm_kv, empty_key_rejected)
{
    struct sm *sm = kv_new(0);
    uint8_t a[6] = {0, 0, 0, 0, 0, 0};
    cr_assert_eq(sm_apply(sm, SM_KV_OP_PUT, a, 6, out, sizeof(out), &out_len), MSG_STATUS_INVALID);
    sm_destroy(sm);
}

Test(sm_kv, value_max_is_enforced)
{
    struct sm *sm = kv_new(100);
    char v[102];
    memset(v, 'v', sizeof(v));
    v[100] = '\0';
    cr_assert_eq(kv_put(sm, "k", v), MSG_STATUS_OK, "exactly value_max");
    v[100] = 'v';
    v[101] = '\0';
    cr_assert_eq(kv_put(sm, "k", v), MSG_STATUS_INVALID, "value_max + 1");
    cr_assert_eq(kv_cas(sm, "k", v, "x"), MSG_STATUS_INVALID, "expected too long");
    cr_assert_eq(sm->result_max, 100);
    sm_destroy(sm);
    struct sm *big = NULL;
    struct sm_kv_config cfg = {.value_max = SM_KV_VALUE_MAX + 1};
    cr_assert_eq(sm_kv_create(&cfg, &big), ORDO_ECONFIG);
}

Test(sm_kv, default_value_max_is_4096)
{
    struct sm *sm = kv_new(0);
    static char v[SM_KV_VALUE_MAX + 2];
    memset(v, 'v', SM_KV_VALUE_MAX);
    cr_assert_eq(kv_put(sm, "k", v), MSG_STATUS_OK);
    v[SM_KV_VALUE_MAX] = 'v';
    cr_assert_eq(sm_kv_encode_put(args, sizeof(args), "k", 1, v, SM_KV_VALUE_MAX + 1),
                 ORDO_ETOOBIG);
    sm_destroy(sm);
}

Test(sm_kv, malformed_args_are_invalid_never_a_crash)
{
    struct sm *sm = kv_new(0);
    int n = sm_kv_encode_put(args, sizeof(args), "key", 3, "value", 5);
    for (uint32_t len = 0; len < (uint32_t)n; len++) {
        cr_assert_eq(sm_apply(sm, SM_KV_OP_PUT, args, len, out, sizeof(out), &out_len),
                     MSG_STATUS_INVALID, "truncated at %u", len);
    }
    cr_assert_eq(sm_apply(sm, SM_KV_OP_PUT, NULL, 0, out, sizeof(out), &out_len),
                 MSG_STATUS_INVALID);
    cr_assert_eq(kv_op(sm, SM_KV_OP_PUT, n + 1), MSG_STATUS_INVALID, "trailing byte");
    cr_assert_eq(kv_op(sm, 99, n), MSG_STATUS_INVALID, "unknown op");
    cr_assert_eq(kv_op(sm, SM_KV_OP_GET, n), MSG_STATUS_INVALID, "PUT args for GET");
    /* A value length near 2^32 must not wrap the bounds check. */
    args[6] = 0xfc;
    args[7] = 0xff;
    args[8] = 0xff;
    args[9] = 0xff;
    cr_assert_eq(kv_op(sm, SM_KV_OP_PUT, n), MSG_STATUS_INVALID);
    cr_assert_eq(sm_kv_count(sm), 0);
    sm_destroy(sm);
}

Test(sm_kv, decoder_reports_why)
{
    struct sm_kv_args a;
    int n = sm_kv_encode_cas(args, sizeof(args), "k", 1, "e", 1, "v", 1);
    cr_assert_eq(sm_kv_decode(SM_KV_OP_CAS, args, (uint32_t)n, 10, &a), 0);
    cr_assert_eq(a.key_len, 1);
    cr_assert_eq(a.value_len, 1);
    cr_assert_eq(a.expected_len, 1);
    cr_assert_eq(sm_kv_decode(SM_KV_OP_CAS, args, (uint32_t)n - 1, 10, &a), ORDO_ETRUNCATED);
    cr_assert_eq(sm_kv_decode(SM_KV_OP_CAS, args, (uint32_t)n + 1, 10, &a), ORDO_EMALFORMED);
    cr_assert_eq(sm_kv_decode(7, args, (uint32_t)n, 10, &a), ORDO_EBADTYPE);
    cr_assert_eq(sm_kv_encode_put(args, 4, "k", 1, "v", 1), ORDO_ENOSPACE);
}

Test(sm_kv, query_serves_get_only)
{
    struct sm *sm = kv_new(0);
    kv_put(sm, "k", "v");
    cr_assert(sm_is_read(sm, SM_KV_OP_GET));
    cr_assert_not(sm_is_read(sm, SM_KV_OP_PUT));
    cr_assert_not(sm_is_read(sm, MSG_OP_NOOP));
    int n = sm_kv_encode_get(args, sizeof(args), "k", 1);
    cr_assert_eq(sm_query(sm, SM_KV_OP_GET, args, (uint32_t)n, out, sizeof(out), &out_len),
                 MSG_STATUS_OK);
    cr_assert_eq(out_len, 1);
    n = sm_kv_encode_put(args, sizeof(args), "k", 1, "w", 1);
    cr_assert_eq(sm_query(sm, SM_KV_OP_PUT, args, (uint32_t)n, out, sizeof(out), &out_len),
                 MSG_STATUS_INVALID);
    expect_value(sm, "k", "v");
    sm_destroy(sm);
}

Test(sm_kv, small_out_buffer_is_too_large)
{
    struct sm *sm = kv_new(0);
    kv_put(sm, "k", "0123456789");
    int n = sm_kv_encode_get(args, sizeof(args), "k", 1);
    cr_assert_eq(sm_apply(sm, SM_KV_OP_GET, args, (uint32_t)n, out, 4, &out_len),
                 MSG_STATUS_TOO_LARGE);
    cr_assert_eq(out_len, 0);
    sm_destroy(sm);
}

Test(sm_kv, digest_independent_of_operation_order)
{
    struct sm *a = kv_new(0);
    struct sm *b = kv_new(0);
    char k[16], v[16];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        snprintf(v, sizeof(v), "val%d", i);
        kv_put(a, k, v);
    }
    /* b reaches the same pairs backwards, through overwrites, CAS and deleted extras. */
    for (int i = 199; i >= 0; i--) {
        snprintf(k, sizeof(k), "key%d", i);
        snprintf(v, sizeof(v), "val%d", i);
        kv_put(b, k, "temporary value");
        kv_put(b, "extra", k);
        cr_assert_eq(kv_cas(b, k, "temporary value", v), MSG_STATUS_OK);
    }
    kv_del(b, "extra");
    uint8_t da[MSG_DIGEST_LEN], db[MSG_DIGEST_LEN];
    digest_of(a, da);
    digest_of(b, db);
    cr_assert_eq(memcmp(da, db, sizeof(da)), 0);
    sm_destroy(a);
    sm_destroy(b);
}

Test(sm_kv, digest_returns_to_empty)
{
    struct sm *sm = kv_new(0);
    uint8_t d0[MSG_DIGEST_LEN], d1[MSG_DIGEST_LEN];
    digest_of(sm, d0);
    kv_put(sm, "k", "v");
    kv_del(sm, "k");
    digest_of(sm, d1);
    cr_assert_eq(memcmp(d0, d1, sizeof(d0)), 0);
    sm_destroy(sm);
}

Test(sm_kv, digest_differs_for_different_states)
{
    struct sm *a = kv_new(0);
    struct sm *b = kv_new(0);
    struct sm *c = kv_new(0);
    kv_put(a, "k", "value");
    kv_put(b, "k", "valuf");
    kv_put(c, "kv", "alue"); /* same bytes, another split between key and value */
    uint8_t da[MSG_DIGEST_LEN], db[MSG_DIGEST_LEN], dc[MSG_DIGEST_LEN];
    digest_of(a, da);
    digest_of(b, db);
    digest_of(c, dc);
    cr_assert_neq(memcmp(da, db, sizeof(da)), 0);
    cr_assert_neq(memcmp(da, dc, sizeof(da)), 0);
    kv_put(b, "k", "value");
    kv_put(b, "k2", "");
    digest_of(b, db);
    cr_assert_neq(memcmp(da, db, sizeof(da)), 0, "an extra empty pair is a different state");
    sm_destroy(a);
    sm_destroy(b);
    sm_destroy(c);
}

static struct sm *kv_sample(int n)
{
    struct sm *sm = kv_new(0);
    char k[16], v[32];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        kv_put(sm, k, v);
    }
    return sm;
}

Test(sm_kv, snapshot_round_trip_keeps_state_and_digest)
{
    struct sm *a = kv_sample(500);
    kv_put(a, "empty", "");
    struct sm_mem_sink s;
    snap(a, &s);
    struct sm *b = kv_sample(3); /* replaced whole, not merged */
    cr_assert_eq(restore(b, s.data, s.len), 0);
    uint8_t da[MSG_DIGEST_LEN], db[MSG_DIGEST_LEN];
    digest_of(a, da);
    digest_of(b, db);
    cr_assert_eq(memcmp(da, db, sizeof(da)), 0);
    cr_assert_eq(sm_kv_count(b), 501);
    expect_value(b, "k499", "value-3493");
    expect_value(b, "empty", "");
    cr_assert_eq(sm_snapshot_size(b), s.len);
    sm_mem_sink_free(&s);
    sm_destroy(a);
    sm_destroy(b);
}

Test(sm_kv, snapshot_of_empty_store_round_trips)
{
    struct sm *a = kv_new(0);
    struct sm *b = kv_sample(10);
    struct sm_mem_sink s;
    snap(a, &s);
    cr_assert_eq(restore(b, s.data, s.len), 0);
    cr_assert_eq(sm_kv_count(b), 0);
    sm_mem_sink_free(&s);
    sm_destroy(a);
    sm_destroy(b);
}

Test(sm_kv, corrupt_snapshot_rejected_and_old_state_kept)
{
    struct sm *a = kv_sample(5);
    struct sm *b = kv_sample(2);
    uint8_t before[MSG_DIGEST_LEN], after[MSG_DIGEST_LEN];
    digest_of(b, before);
    struct sm_mem_sink s;
    snap(a, &s);
    /* Every single-bit flip and every truncation must be refused. */
    for (size_t i = 0; i < s.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            s.data[i] ^= (uint8_t)(1u << bit);
            int rc = restore(b, s.data, s.len);
            s.data[i] ^= (uint8_t)(1u << bit);
            cr_assert_lt(rc, 0, "flip of byte %zu bit %d accepted", i, bit);
        }
    }
    for (size_t len = 0; len < s.len; len++) {
        cr_assert_lt(restore(b, s.data, len), 0, "truncation to %zu accepted", len);
    }
    digest_of(b, after);
    cr_assert_eq(memcmp(before, after, sizeof(after)), 0);
    cr_assert_eq(sm_kv_count(b), 2);
    expect_value(b, "k1", "value-7");
    sm_mem_sink_free(&s);
    sm_destroy(a);
    sm_destroy(b);
}

Test(sm_kv, snapshot_errors_name_the_cause)
{
    struct sm *a = kv_sample(3);
    struct sm_mem_sink s;
    snap(a, &s);
    s.data[0] ^= 1;
    cr_assert_eq(restore(a, s.data, s.len), ORDO_EBADMAGIC);
    s.data[0] ^= 1;
    s.data[4] ^= 1;
    cr_assert_eq(restore(a, s.data, s.len), ORDO_EVERSION);
    s.data[4] ^= 1;
    s.data[s.len - 1] ^= 1;
    cr_assert_eq(restore(a, s.data, s.len), ORDO_ECHECKSUM);
    s.data[s.len - 1] ^= 1;
    cr_assert_eq(restore(a, s.data, s.len - 1), ORDO_ETRUNCATED);
    cr_assert_eq(restore(a, s.data, s.len), 0);
    sm_mem_sink_free(&s);
    sm_destroy(a);
}

Test(sm_kv, snapshot_value_over_local_value_max_rejected)
{
    struct sm *a = kv_new(0);
    struct sm *b = kv_new(8);
    kv_put(a, "k", "a value longer than eight");
    struct sm_mem_sink s;
    snap(a, &s);
    cr_assert_eq(restore(b, s.data, s.len), ORDO_ETOOBIG);
    sm_mem_sink_free(&s);
    sm_destroy(a);
    sm_destroy(b);
}

Test(sm_kv, grows_to_100k_keys, .timeout = 60)
{
    struct sm *sm = kv_new(0);
    char k[32], v[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "key-%08d", i);
        snprintf(v, sizeof(v), "%d", i);
        cr_assert_eq(kv_put(sm, k, v), MSG_STATUS_OK);
    }
    cr_assert_eq(sm_kv_count(sm), 100000);
    for (int i = 0; i < 100000; i += 2) {
        snprintf(k, sizeof(k), "key-%08d", i);
        cr_assert_eq(kv_del(sm, k), MSG_STATUS_OK);
    }
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "key-%08d", i);
        snprintf(v, sizeof(v), "%d", i);
        if (i % 2 == 0) {
            cr_assert_eq(kv_get(sm, k), MSG_STATUS_NOT_FOUND, "%s", k);
        } else {
            expect_value(sm, k, v);
        }
    }
    cr_assert_eq(sm_kv_count(sm), 50000);
    sm_destroy(sm);
}

Test(sm_kv, allocation_failure_is_an_error_and_store_stays_usable)
{
    struct sm *sm = kv_new(0);
    char k[16];
    uint8_t before[MSG_DIGEST_LEN], after[MSG_DIGEST_LEN];
    /* Fail each allocation in turn, across table growth, then check nothing changed. */
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        digest_of(sm, before);
        uint64_t count = sm_kv_count(sm);
        mem_fault_set(0, 1);
        int rc = kv_put(sm, k, "value");
        mem_fault_set(-1, 0);
        digest_of(sm, after);
        cr_assert_eq(rc, -ENOMEM, "put %d under a failed allocation", i);
        cr_assert_eq(memcmp(before, after, sizeof(after)), 0);
        cr_assert_eq(sm_kv_count(sm), count);
        cr_assert_eq(kv_get(sm, k), MSG_STATUS_NOT_FOUND);
        cr_assert_eq(kv_put(sm, k, "value"), MSG_STATUS_OK, "usable after the failure");
    }
    mem_fault_set(0, 1);
    cr_assert_eq(kv_put(sm, "key3", "longer value"), -ENOMEM, "resize of a value");
    mem_fault_set(-1, 0);
    expect_value(sm, "key3", "value");
    sm_destroy(sm);
}

Test(sm_kv, allocation_failure_in_snapshot_read_keeps_old_state)
{
    struct sm *a = kv_sample(100);
    struct sm *b = kv_sample(4);
    struct sm_mem_sink s;
    snap(a, &s);
    for (int64_t countdown = 0; countdown < 101; countdown += 7) {
        mem_fault_set(countdown, 1);
        int rc = restore(b, s.data, s.len);
        mem_fault_set(-1, 0);
        cr_assert_eq(rc, -ENOMEM, "countdown %ld", (long)countdown);
        cr_assert_eq(sm_kv_count(b), 4);
    }
    cr_assert_eq(restore(b, s.data, s.len), 0);
    cr_assert_eq(sm_kv_count(b), 100);
    sm_mem_sink_free(&s);
    sm_destroy(a);
    sm_destroy(b);
}

Test(sm_kv, no_leaks)
{
    int64_t live = mem_live_count();
    struct sm *sm = kv_sample(1000);
    struct sm_mem_sink s;
    snap(sm, &s);
    cr_assert_eq(restore(sm, s.data, s.len), 0);
    sm_mem_sink_free(&s);
    sm_destroy(sm);
    cr_assert_eq(mem_live_count(), live);
}

/* ---- hand-built snapshots (the byte layout of docs/kv.md), valid checksums ---- */

struct hand {
    uint8_t b[256];
    size_t n;
};

static void hand_put(struct hand *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void hand_le(struct hand *h, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h->b[h->n++] = (uint8_t)(v >> (8 * i));
    }
}

static void hand_header(struct hand *h, uint64_t count)
{
    h->n = 0;
    hand_put(h, "OKVS", 4);
    hand_le(h, 1, 2);
    hand_le(h, 0, 2);
    hand_le(h, 4096, 4);
    hand_le(h, count, 8);
}

static void hand_pair(struct hand *h, const char *k, const char *v)
{
    hand_le(h, strlen(k), 2);
    hand_put(h, k, strlen(k));
    hand_le(h, strlen(v), 4);
    hand_put(h, v, strlen(v));
}

static void hand_finish(struct hand *h, const uint8_t digest[MSG_DIGEST_LEN])
{
    hand_put(h, digest, MSG_DIGEST_LEN);
    crypto_generichash(h->b + h->n, 32, h->b, h->n, NULL, 0);
    h->n += 32;
}

Test(sm_kv, hand_built_snapshot_as_documented_is_accepted)
{
    struct sm *ref = kv_new(0);
    kv_put(ref, "a", "1");
    kv_put(ref, "bb", "");
    uint8_t d[MSG_DIGEST_LEN];
    digest_of(ref, d);
    struct hand h;
    hand_header(&h, 2);
    hand_pair(&h, "bb", "");
    hand_pair(&h, "a", "1");
    hand_finish(&h, d);
    struct sm *sm = kv_new(0);
    cr_assert_eq(restore(sm, h.b, h.n), 0);
    expect_value(sm, "a", "1");
    expect_value(sm, "bb", "");
    sm_destroy(ref);
    sm_destroy(sm);
}

Test(sm_kv, snapshot_with_repeated_key_is_corrupt)
{
    struct sm *ref = kv_new(0);
    kv_put(ref, "a", "1");
    uint8_t d[MSG_DIGEST_LEN];
    digest_of(ref, d);
    struct hand h;
    hand_header(&h, 2);
    hand_pair(&h, "a", "1");
    hand_pair(&h, "a", "1");
    hand_finish(&h, d);
    cr_assert_eq(restore(ref, h.b, h.n), ORDO_ECORRUPT);
    sm_destroy(ref);
}

Test(sm_kv, snapshot_with_wrong_digest_is_corrupt)
{
    struct sm *sm = kv_new(0);
    static const uint8_t zero[MSG_DIGEST_LEN];
    struct hand h;
    hand_header(&h, 1);
    hand_pair(&h, "a", "1");
    hand_finish(&h, zero);
    cr_assert_eq(restore(sm, h.b, h.n), ORDO_ECORRUPT);
    cr_assert_eq(sm_kv_count(sm), 0);
    sm_destroy(sm);
}

Test(sm_kv, snapshot_with_empty_key_is_malformed)
{
    struct sm *sm = kv_new(0);
    static const uint8_t zero[MSG_DIGEST_LEN];
    struct hand h;
    hand_header(&h, 1);
    hand_pair(&h, "", "1");
    hand_finish(&h, zero);
    cr_assert_eq(restore(sm, h.b, h.n), ORDO_EMALFORMED);
    sm_destroy(sm);
}

Test(sm_kv, snapshot_count_beyond_input_is_refused_quickly)
{
    struct sm *sm = kv_new(0);
    struct hand h;
    hand_header(&h, UINT64_MAX);
    hand_pair(&h, "a", "1");
    cr_assert_eq(restore(sm, h.b, h.n), ORDO_ETRUNCATED);
    sm_destroy(sm);
}
