/* Allocation wrappers with fault injection and live-count accounting.
 * The counters are process-wide and not thread-safe by design: only start-up and
 * control-plane code allocate, on one thread. */
#include "engine/mem.h"

#include <stdlib.h>

static int64_t mem_countdown = -1;
static int64_t mem_repeat;
static int64_t mem_live;

void mem_fault_set(int64_t countdown, int64_t repeat)
{
    mem_countdown = countdown;
    mem_repeat = repeat;
}

int64_t mem_live_count(void)
{
    return mem_live;
}

static int mem_should_fail(void)
{
    if (mem_countdown < 0) {
        return 0;
    }
    if (mem_countdown > 0) {
        mem_countdown--;
        return 0;
    }
    if (mem_repeat == 0) {
        mem_countdown = -1;
        return 0;
    }
    if (mem_repeat > 0) {
        mem_repeat--;
    }
    return 1;
}

void *mem_alloc(size_t size)
{
    if (mem_should_fail()) {
        return NULL;
    }
    void *p = malloc(size == 0 ? 1 : size);
    if (p != NULL) {
        mem_live++;
    }
    return p;
}

void *mem_calloc(size_t count, size_t size)
{
    if (mem_should_fail()) {
        return NULL;
    }
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    if (p != NULL) {
        mem_live++;
    }
    return p;
}

void *mem_realloc(void *p, size_t size)
{
    if (p == NULL) {
        return mem_alloc(size);
    }
    if (mem_should_fail()) {
        return NULL;
    }
    return realloc(p, size == 0 ? 1 : size);
}

void mem_free(void *p)
{
    if (p != NULL) {
        mem_live--;
        free(p);
    }
}
