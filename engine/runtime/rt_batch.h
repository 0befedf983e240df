/* Compact encoding of one sequencer batch (the data of a MSG_ENTRY_BATCH log entry): the
 * client commands with the addresses the leader answers them at. Pure; little-endian. */
#ifndef ORDO_ENGINE_RUNTIME_RT_BATCH_H
#define ORDO_ENGINE_RUNTIME_RT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"

/* Layout: u16 count, then count commands, each:
 *   dst_mac[6] dst_ip[4] (network order) u16 dst_port  -- where the reply goes
 *   u8 reply flags: bit 0 has_key (the request carried a client MAC; the reply is MAC'd
 *      with its key), bit 1 multi (it came in a multi-request frame: its reply may be packed
 *      into a multi-reply); other bits 0. Older entries only ever have bit 0.
 *   u64 client_id u64 request_no u16 flags u8 op u32 args_len, args_len bytes of args. */
#define RT_BATCH_HDR_LEN 2u
#define RT_BATCH_CMD_FIXED 36u
#define RT_BATCH_COUNT_MAX 4096u

struct rt_batch_cmd {
    uint8_t dst_mac[6];
    uint32_t dst_ip;               /* network byte order */
    uint16_t dst_port;             /* host byte order */
    uint8_t has_key;               /* 0 or 1 */
    uint8_t multi;                 /* 0 or 1 */
    struct msg_client_request req; /* req.args borrows the batch bytes when decoded */
};

/* Bytes cmd adds to a batch. */
static inline uint32_t rt_batch_cmd_len(const struct rt_batch_cmd *c)
{
    return RT_BATCH_CMD_FIXED + c->req.args_len;
}

/* Starts an empty batch in buf (cap >= RT_BATCH_HDR_LEN). Returns RT_BATCH_HDR_LEN. */
ORDO_API uint32_t rt_batch_init(uint8_t *buf);

/* Appends c to the batch of *len bytes in buf (cap bytes). Returns 0, ORDO_ENOSPACE (does not
 * fit: close the batch first) or ORDO_ETOOBIG (count limit). */
ORDO_API int rt_batch_add(uint8_t *buf, size_t cap, uint32_t *len, const struct rt_batch_cmd *c);

/* Number of commands in a batch (0 for a short buffer). */
ORDO_API uint32_t rt_batch_count(const uint8_t *buf, size_t len);

/* What the sequencer knows, once per round, when it decides whether to close its open
 * (non-empty) batch; count and byte limits close it on their own. Times in one unit (TSC). */
struct rt_batch_clock {
    uint64_t age;        /* since the batch opened */
    uint64_t time;       /* batch_time_us */
    uint64_t hold_max;   /* longest hold while the log writes (RT_BATCH_HOLD_MAX x time) */
    uint8_t log_writing; /* a log write is in flight (after this round's completions) */
    uint8_t log_done;    /* a log write completed this round and the next is not submitted */
    uint8_t idle;        /* nothing proposed waits for commit and no request is queued */
};

/* Why the open batch closes now, or RT_BATCH_KEEP. */
enum rt_batch_close {
    RT_BATCH_KEEP = 0,
    RT_BATCH_CLOSE_IDLE = 1,  /* nothing in the pipeline: waiting would only add latency */
    RT_BATCH_CLOSE_WRITE = 2, /* the log just finished a write: ride the next one */
    RT_BATCH_CLOSE_TIME = 3,  /* batch_time passed and the log is not writing */
    RT_BATCH_CLOSE_HOLD = 4,  /* held hold_max while the log kept writing */
    RT_BATCH_CLOSES = 5,
};

/* The sequencer's close rule (group commit at the entry level; docs/replica.md). An idle
 * pipeline closes at once (a lone request waits for no timer); a completed log write closes it
 * so that everything gathered during that write goes into the next one; otherwise the batch
 * waits batch_time, and while the log writes up to hold_max (what is proposed meanwhile would
 * wait for that write anyway). Pure. */
ORDO_API enum rt_batch_close rt_batch_close_rule(const struct rt_batch_clock *c);

/* Iterator over a received batch (outside input: every length is checked). */
struct rt_batch_iter {
    const uint8_t *buf;
    size_t len;
    size_t off;
    uint32_t left;
};

/* Returns 0, or ORDO_EMALFORMED when the header is short or the count exceeds the limit. */
ORDO_API int rt_batch_iter_init(struct rt_batch_iter *it, const uint8_t *buf, size_t len);

/* Next command: 1 and *c filled, 0 at the end, ORDO_EMALFORMED for a truncated command or
 * trailing bytes after the last one. */
ORDO_API int rt_batch_next(struct rt_batch_iter *it, struct rt_batch_cmd *c);

#endif
