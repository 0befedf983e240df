/* In-memory snapshot sink and source for the application interface (tests, fuzzing, small
 * snapshots). Pure: memory through mem_ only. */
#include "engine/sm.h"

#include <errno.h>
#include <string.h>

#include "engine/err.h"
#include "engine/mem.h"

int sm_mem_sink_write(void *ctx, const void *buf, size_t len)
{
    struct sm_mem_sink *s = ctx;
    if (len > SIZE_MAX / 2 - s->len) {
        return -ENOMEM;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap < 256 ? 256 : s->cap;
        /* Doubling bounds the loop by the bit width of size_t. */
        while (cap < s->len + len) {
            cap *= 2;
        }
        uint8_t *p = s->data == NULL ? mem_alloc(cap) : mem_realloc(s->data, cap);
        if (p == NULL) {
            return -ENOMEM;
        }
        s->data = p;
        s->cap = cap;
    }
    if (len > 0) {
        memcpy(s->data + s->len, buf, len);
    }
    s->len += len;
    return 0;
}

void sm_mem_sink_free(struct sm_mem_sink *s)
{
    mem_free(s->data);
    s->data = NULL;
    s->len = 0;
    s->cap = 0;
}

int sm_mem_source_read(void *ctx, void *buf, size_t len)
{
    struct sm_mem_source *s = ctx;
    if (s->pos > s->len || len > s->len - s->pos) {
        return ORDO_ETRUNCATED;
    }
    if (len > 0) {
        memcpy(buf, s->data + s->pos, len);
    }
    s->pos += len;
    return 0;
}
