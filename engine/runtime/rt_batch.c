/* Sequencer batch codec (see rt_batch.h for the layout). Decoding never trusts a length. */
#include "engine/runtime/rt_batch.h"

#include <string.h>

#include "engine/err.h"

static void rt_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void rt_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void rt_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint16_t rt_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rt_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t rt_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint32_t rt_batch_init(uint8_t *buf)
{
    rt_put16(buf, 0);
    return RT_BATCH_HDR_LEN;
}

uint32_t rt_batch_count(const uint8_t *buf, size_t len)
{
    return len < RT_BATCH_HDR_LEN ? 0 : rt_get16(buf);
}

int rt_batch_add(uint8_t *buf, size_t cap, uint32_t *len, const struct rt_batch_cmd *c)
{
    uint32_t n = rt_get16(buf);
    if (n >= RT_BATCH_COUNT_MAX) {
        return ORDO_ETOOBIG;
    }
    if ((uint64_t)*len + RT_BATCH_CMD_FIXED + c->req.args_len > cap) {
        return ORDO_ENOSPACE;
    }
    uint8_t *p = buf + *len;
    memcpy(p, c->dst_mac, 6);
    memcpy(p + 6, &c->dst_ip, 4);
    rt_put16(p + 10, c->dst_port);
    p[12] = (uint8_t)((c->has_key & 1u) | (uint8_t)((c->multi & 1u) << 1));
    rt_put64(p + 13, c->req.client_id);
    rt_put64(p + 21, c->req.request_no);
    rt_put16(p + 29, c->req.flags);
    p[31] = c->req.op;
    rt_put32(p + 32, c->req.args_len);
    if (c->req.args_len != 0) {
        memcpy(p + RT_BATCH_CMD_FIXED, c->req.args, c->req.args_len);
    }
    *len += RT_BATCH_CMD_FIXED + c->req.args_len;
    rt_put16(buf, (uint16_t)(n + 1));
    return 0;
}

int rt_batch_iter_init(struct rt_batch_iter *it, const uint8_t *buf, size_t len)
{
    memset(it, 0, sizeof(*it));
    if (len < RT_BATCH_HDR_LEN || rt_get16(buf) > RT_BATCH_COUNT_MAX) {
        return ORDO_EMALFORMED;
    }
    it->buf = buf;
    it->len = len;
    it->off = RT_BATCH_HDR_LEN;
    it->left = rt_get16(buf);
    return 0;
}

int rt_batch_next(struct rt_batch_iter *it, struct rt_batch_cmd *c)
{
    if (it->left == 0) {
        return it->off == it->len ? 0 : ORDO_EMALFORMED;
    }
    if (it->len - it->off < RT_BATCH_CMD_FIXED) {
        return ORDO_EMALFORMED;
    }
    const uint8_t *p = it->buf + it->off;
    uint32_t args_len = rt_get32(p + 32);
    if (it->len - it->off - RT_BATCH_CMD_FIXED < args_len || p[12] > 3) {
        return ORDO_EMALFORMED;
    }
    memset(c, 0, sizeof(*c));
    memcpy(c->dst_mac, p, 6);
    memcpy(&c->dst_ip, p + 6, 4);
    c->dst_port = rt_get16(p + 10);
    c->has_key = p[12] & 1u;
    c->multi = (uint8_t)(p[12] >> 1);
    c->req.client_id = rt_get64(p + 13);
    c->req.request_no = rt_get64(p + 21);
    c->req.flags = rt_get16(p + 29);
    c->req.op = p[31];
    c->req.args_len = args_len;
    c->req.args = args_len != 0 ? p + RT_BATCH_CMD_FIXED : NULL;
    it->off += RT_BATCH_CMD_FIXED + args_len;
    it->left--;
    return 1;
}

enum rt_batch_close rt_batch_close_rule(const struct rt_batch_clock *c)
{
    if (c->idle && !c->log_writing) {
        return RT_BATCH_CLOSE_IDLE;
    }
    if (c->log_done) {
        return RT_BATCH_CLOSE_WRITE;
    }
    if (c->age < c->time) {
        return RT_BATCH_KEEP;
    }
    if (!c->log_writing) {
        return RT_BATCH_CLOSE_TIME;
    }
    return c->age >= c->hold_max ? RT_BATCH_CLOSE_HOLD : RT_BATCH_KEEP;
}
