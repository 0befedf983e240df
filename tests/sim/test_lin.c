/* Unit tests of the linearizability checker: known linearizable and known
 * non-linearizable histories, unknown (timed-out) results, and minimization. */
#include <criterion/criterion.h>

#include "tests/sim/lin.h"
#include "tests/sim/rng.h"

static struct lin_op op_put(uint64_t key, uint64_t v, uint64_t t0, uint64_t t1)
{
    return (struct lin_op){.key = key,
                           .kind = LIN_PUT,
                           .known = 1,
                           .status = LIN_ST_OK,
                           .arg = v,
                           .call_time = t0,
                           .ret_time = t1};
}

static struct lin_op op_get(uint64_t key, uint64_t v, uint64_t t0, uint64_t t1)
{
    return (struct lin_op){.key = key,
                           .kind = LIN_GET,
                           .known = 1,
                           .status = v == LIN_ABSENT ? LIN_ST_NOT_FOUND : LIN_ST_OK,
                           .out = v,
                           .call_time = t0,
                           .ret_time = t1};
}

static struct lin_op op_cas(uint64_t key, uint64_t expect, uint64_t v, uint8_t st, uint64_t t0,
                            uint64_t t1)
{
    return (struct lin_op){.key = key,
                           .kind = LIN_CAS,
                           .known = 1,
                           .status = st,
                           .expect = expect,
                           .arg = v,
                           .call_time = t0,
                           .ret_time = t1};
}

static struct lin_op op_del(uint64_t key, uint8_t st, uint64_t t0, uint64_t t1)
{
    return (struct lin_op){
        .key = key, .kind = LIN_DEL, .known = 1, .status = st, .call_time = t0, .ret_time = t1};
}

static struct lin_op pending(struct lin_op op)
{
    op.known = 0;
    op.ret_time = LIN_PENDING;
    return op;
}

static int check(const struct lin_op *ops, size_t n)
{
    struct lin_report rep;
    int rc = lin_check(ops, n, 0, &rep);
    lin_report_free(&rep);
    return rc;
}

Test(lin, empty_and_sequential_history_is_linearizable)
{
    cr_assert_eq(check(NULL, 0), LIN_OK);
    struct lin_op h[] = {op_get(1, 0, 1, 2), op_put(1, 5, 3, 4), op_get(1, 5, 5, 6),
                         op_del(1, LIN_ST_OK, 7, 8), op_get(1, 0, 9, 10)};
    cr_assert_eq(check(h, 5), LIN_OK);
}

Test(lin, concurrent_read_may_see_old_or_new_value)
{
    struct lin_op a[] = {op_put(1, 1, 1, 2), op_put(1, 2, 3, 10), op_get(1, 1, 4, 5),
                         op_get(1, 2, 6, 7), op_get(1, 2, 11, 12)};
    cr_assert_eq(check(a, 5), LIN_OK);
}

Test(lin, stale_read_after_completed_write_is_caught)
{
    struct lin_op h[] = {op_put(1, 1, 1, 2), op_put(1, 2, 3, 4), op_get(1, 1, 5, 6)};
    cr_assert_eq(check(h, 3), LIN_VIOLATION);
}

Test(lin, read_flip_flop_is_caught)
{
    /* Two reads inside one long write: new then old is impossible. */
    struct lin_op h[] = {op_put(1, 1, 1, 2), op_put(1, 2, 3, 20), op_get(1, 2, 4, 5),
                         op_get(1, 1, 6, 7)};
    cr_assert_eq(check(h, 4), LIN_VIOLATION);
}

Test(lin, read_of_never_written_value_is_caught)
{
    struct lin_op h[] = {op_put(1, 1, 1, 2), op_get(1, 9, 3, 4)};
    cr_assert_eq(check(h, 2), LIN_VIOLATION);
}

Test(lin, unknown_write_may_or_may_not_take_effect)
{
    struct lin_op seen[] = {pending(op_put(1, 7, 1, 0)), op_get(1, 7, 5, 6), op_get(1, 7, 8, 9)};
    cr_assert_eq(check(seen, 3), LIN_OK);
    struct lin_op unseen[] = {op_put(1, 1, 0, 1), pending(op_put(1, 7, 2, 0)), op_get(1, 1, 5, 6)};
    cr_assert_eq(check(unseen, 3), LIN_OK);
}

Test(lin, unknown_write_cannot_be_observed_before_it_was_invoked)
{
    struct lin_op h[] = {op_get(1, 7, 1, 2), pending(op_put(1, 7, 3, 0))};
    cr_assert_eq(check(h, 2), LIN_VIOLATION);
}

Test(lin, unknown_write_takes_effect_at_most_once_in_place)
{
    /* 7 seen, then overwritten by 8, then 7 again: an unknown write cannot reappear. */
    struct lin_op h[] = {pending(op_put(1, 7, 1, 0)), op_get(1, 7, 3, 4), op_put(1, 8, 5, 6),
                         op_get(1, 7, 7, 8)};
    cr_assert_eq(check(h, 4), LIN_VIOLATION);
}

Test(lin, cas_semantics)
{
    struct lin_op ok[] = {op_put(1, 1, 1, 2), op_cas(1, 1, 2, LIN_ST_OK, 3, 4),
                          op_cas(1, 1, 3, LIN_ST_MISMATCH, 5, 6), op_get(1, 2, 7, 8),
                          op_cas(2, 1, 3, LIN_ST_NOT_FOUND, 1, 2)};
    cr_assert_eq(check(ok, 5), LIN_OK);
    /* Two concurrent cas from the same expected value cannot both succeed. */
    struct lin_op both[] = {op_put(1, 1, 1, 2), op_cas(1, 1, 2, LIN_ST_OK, 3, 10),
                            op_cas(1, 1, 3, LIN_ST_OK, 4, 11)};
    cr_assert_eq(check(both, 3), LIN_VIOLATION);
}

Test(lin, delete_semantics)
{
    struct lin_op ok[] = {op_del(1, LIN_ST_NOT_FOUND, 1, 2), op_put(1, 4, 3, 4),
                          op_del(1, LIN_ST_OK, 5, 6), op_get(1, 0, 7, 8)};
    cr_assert_eq(check(ok, 4), LIN_OK);
    struct lin_op bad[] = {op_put(1, 4, 1, 2), op_del(1, LIN_ST_NOT_FOUND, 3, 4)};
    cr_assert_eq(check(bad, 2), LIN_VIOLATION);
}

Test(lin, keys_are_checked_independently_and_the_failing_key_is_named)
{
    struct lin_op h[] = {op_put(1, 1, 1, 2), op_put(2, 5, 1, 2), op_get(1, 1, 3, 4),
                         op_get(2, 6, 3, 4)};
    struct lin_report rep;
    cr_assert_eq(lin_check(h, 4, 0, &rep), LIN_VIOLATION);
    cr_assert_eq(rep.key, 2);
    lin_report_free(&rep);
}

/* A random history generated from a real sequential execution, with each op's window
 * stretched around its linearization point: linearizable by construction. */
static size_t gen_history(struct lin_op *h, size_t n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    uint64_t val[4] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t key = rng_below(&r, 4);
        uint64_t point = 100 + 10 * i;
        uint64_t t0 = point - rng_below(&r, 40);
        uint64_t t1 = point + rng_below(&r, 40);
        switch (rng_below(&r, 3)) {
        case 0:
            h[i] = op_put(key, i + 1, t0, t1);
            val[key] = i + 1;
            break;
        case 1:
            h[i] = op_get(key, val[key], t0, t1);
            break;
        default:
            h[i] = op_cas(key, val[key], i + 1,
                          val[key] == LIN_ABSENT ? LIN_ST_NOT_FOUND : LIN_ST_OK, t0, t1);
            val[key] = val[key] == LIN_ABSENT ? LIN_ABSENT : i + 1;
        }
        h[i].client = (uint32_t)(i % 8);
    }
    return n;
}

Test(lin, random_linearizable_histories_pass)
{
    static struct lin_op h[600];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t n = gen_history(h, 600, seed);
        cr_assert_eq(check(h, n), LIN_OK, "seed %lu", (unsigned long)seed);
    }
}

Test(lin, violation_in_large_history_is_minimized)
{
    static struct lin_op h[400];
    size_t n = gen_history(h, 400, 7);
    /* Corrupt one read in the middle: make it return a value never written. */
    size_t bad = 0;
    for (size_t i = 200; i < n; i++) {
        if (h[i].kind == LIN_GET) {
            bad = i;
            break;
        }
    }
    cr_assert_neq(bad, 0);
    h[bad].status = LIN_ST_OK;
    h[bad].out = 99999;
    struct lin_report rep;
    cr_assert_eq(lin_check(h, n, 0, &rep), LIN_VIOLATION);
    cr_assert_eq(rep.key, h[bad].key);
    lin_print(stderr, h, &rep);
    cr_assert_eq(rep.n_min, 1, "minimal history has %zu ops", rep.n_min);
    cr_assert_eq(rep.min_idx[0], bad);
    lin_report_free(&rep);
}

Test(lin, minimal_history_of_stale_read_keeps_the_writes)
{
    static struct lin_op h[200];
    size_t n = gen_history(h, 200, 3);
    for (size_t i = 0; i < n; i++) {
        h[i].key = 1000 + h[i].key; /* keep them away from key 1 */
    }
    h[n - 3] = op_put(1, 1, 5000, 5001);
    h[n - 2] = op_put(1, 2, 5002, 5003);
    h[n - 1] = op_get(1, 1, 5004, 5005);
    struct lin_report rep;
    cr_assert_eq(lin_check(h, n, 0, &rep), LIN_VIOLATION);
    cr_assert_eq(rep.n_min, 3, "minimal history has %zu ops", rep.n_min);
    lin_print(stderr, h, &rep);
    lin_report_free(&rep);
}

Test(lin, budget_exhaustion_reports_unknown)
{
    static struct lin_op h[60];
    /* Many fully concurrent writes and one impossible read: a huge search space. */
    for (size_t i = 0; i < 59; i++) {
        h[i] = op_put(1, i + 1, 1, 1000);
    }
    h[59] = op_get(1, 5000, 1, 1000);
    struct lin_report rep;
    cr_assert_eq(lin_check(h, 60, 1000, &rep), LIN_UNKNOWN);
    lin_report_free(&rep);
}
