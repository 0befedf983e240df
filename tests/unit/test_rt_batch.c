/* Sequencer batch codec: round trip, limits, and malformed input never crashing. */
#include <criterion/criterion.h>
#include <string.h>

#include "engine/err.h"
#include "engine/runtime/rt_batch.h"

static struct rt_batch_cmd cmd(uint64_t client, uint64_t no, const char *args)
{
    struct rt_batch_cmd c;
    memset(&c, 0, sizeof(c));
    memcpy(c.dst_mac, (uint8_t[6]){2, 0, 0xc6, 0x12, 0, 1}, 6);
    c.dst_ip = 0x010012c6u;
    c.dst_port = 40000;
    c.has_key = (uint8_t)(no & 1u);
    c.multi = (uint8_t)((no >> 1) & 1u);
    c.req.client_id = client;
    c.req.request_no = no;
    c.req.flags = 0x0001;
    c.req.op = 3;
    c.req.args = (const uint8_t *)args;
    c.req.args_len = (uint32_t)strlen(args);
    return c;
}

Test(rt_batch, round_trip_keeps_every_field_in_order)
{
    uint8_t buf[512];
    uint32_t len = rt_batch_init(buf);
    const char *args[] = {"", "a", "hello world"};
    for (uint64_t i = 0; i < 3; i++) {
        struct rt_batch_cmd c = cmd(100 + i, i + 1, args[i]);
        cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), 0);
    }
    cr_assert_eq(rt_batch_count(buf, len), 3);
    struct rt_batch_iter it;
    cr_assert_eq(rt_batch_iter_init(&it, buf, len), 0);
    for (uint64_t i = 0; i < 3; i++) {
        struct rt_batch_cmd want = cmd(100 + i, i + 1, args[i]);
        struct rt_batch_cmd got;
        cr_assert_eq(rt_batch_next(&it, &got), 1);
        cr_assert_eq(memcmp(got.dst_mac, want.dst_mac, 6), 0);
        cr_assert_eq(got.dst_ip, want.dst_ip);
        cr_assert_eq(got.dst_port, want.dst_port);
        cr_assert_eq(got.has_key, want.has_key);
        cr_assert_eq(got.multi, want.multi);
        cr_assert_eq(got.req.client_id, want.req.client_id);
        cr_assert_eq(got.req.request_no, want.req.request_no);
        cr_assert_eq(got.req.flags, want.req.flags);
        cr_assert_eq(got.req.op, want.req.op);
        cr_assert_eq(got.req.args_len, want.req.args_len);
        cr_assert_eq(memcmp(got.req.args, args[i], got.req.args_len), 0);
    }
    struct rt_batch_cmd end;
    cr_assert_eq(rt_batch_next(&it, &end), 0);
}

Test(rt_batch, full_batch_refuses_with_enospace_and_stays_valid)
{
    uint8_t buf[RT_BATCH_HDR_LEN + 2 * (RT_BATCH_CMD_FIXED + 4)];
    uint32_t len = rt_batch_init(buf);
    struct rt_batch_cmd c = cmd(1, 1, "abcd");
    cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), 0);
    cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), 0);
    cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), ORDO_ENOSPACE);
    cr_assert_eq(len, sizeof(buf));
    cr_assert_eq(rt_batch_count(buf, len), 2);
}

Test(rt_batch, every_truncation_is_malformed_not_a_crash)
{
    uint8_t buf[256];
    uint32_t len = rt_batch_init(buf);
    struct rt_batch_cmd c = cmd(7, 9, "key-value");
    cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), 0);
    cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), 0);
    for (uint32_t cut = 0; cut < len; cut++) {
        struct rt_batch_iter it;
        struct rt_batch_cmd got;
        int rc = rt_batch_iter_init(&it, buf, cut);
        int n = 0;
        while (rc == 0 && (rc = rt_batch_next(&it, &got)) == 1) {
            n++;
            rc = 0;
        }
        cr_assert_eq(rc, ORDO_EMALFORMED, "cut at %u gave %d after %d", cut, rc, n);
    }
}

Test(rt_batch, trailing_bytes_and_bad_flag_are_malformed)
{
    uint8_t buf[256];
    uint32_t len = rt_batch_init(buf);
    struct rt_batch_cmd c = cmd(7, 9, "x");
    cr_assert_eq(rt_batch_add(buf, sizeof(buf), &len, &c), 0);
    struct rt_batch_iter it;
    struct rt_batch_cmd got;
    buf[len] = 0;
    cr_assert_eq(rt_batch_iter_init(&it, buf, len + 1), 0);
    cr_assert_eq(rt_batch_next(&it, &got), 1);
    cr_assert_eq(rt_batch_next(&it, &got), ORDO_EMALFORMED);
    buf[RT_BATCH_HDR_LEN + 12] = 4; /* reply flags: bits 0 (has_key) and 1 (multi) only */
    cr_assert_eq(rt_batch_iter_init(&it, buf, len), 0);
    cr_assert_eq(rt_batch_next(&it, &got), ORDO_EMALFORMED);
}

/* The sequencer's close rule: one behaviour per case. */
static struct rt_batch_clock close_clock(uint64_t age, int writing, int done, int idle)
{
    struct rt_batch_clock c = {.age = age, .time = 50, .hold_max = 2000};
    c.log_writing = (uint8_t)writing;
    c.log_done = (uint8_t)done;
    c.idle = (uint8_t)idle;
    return c;
}

Test(rt_batch, close_rule_idle_pipeline_closes_at_once)
{
    struct rt_batch_clock c = close_clock(0, 0, 0, 1);
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_CLOSE_IDLE);
}

Test(rt_batch, close_rule_idle_but_writing_waits)
{
    /* A write in flight (a heartbeat's no-op, a follower's entries) means the batch would wait
     * for it anyway: it keeps growing until the write completes. */
    struct rt_batch_clock c = close_clock(10, 1, 0, 1);
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_KEEP);
}

Test(rt_batch, close_rule_busy_pipeline_waits_batch_time)
{
    struct rt_batch_clock c = close_clock(49, 0, 0, 0);
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_KEEP);
    c.age = 50;
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_CLOSE_TIME);
}

Test(rt_batch, close_rule_write_completion_closes_a_young_batch)
{
    struct rt_batch_clock c = close_clock(1, 0, 1, 0);
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_CLOSE_WRITE);
}

Test(rt_batch, close_rule_holds_while_writing_up_to_hold_max)
{
    struct rt_batch_clock c = close_clock(1999, 1, 0, 0);
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_KEEP);
    c.age = 2000;
    cr_assert_eq(rt_batch_close_rule(&c), RT_BATCH_CLOSE_HOLD);
}
