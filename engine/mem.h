/* The only way Ordo code allocates: start-up, control plane, and application state.
 * Never on the data path. In non-sanitizer builds malloc is jemalloc (linked into
 * every binary). Tests install a counting allocator that fails on cue. */
#ifndef ORDO_ENGINE_MEM_H
#define ORDO_ENGINE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"

/* Returns NULL on failure (callers return -ENOMEM). Ownership passes to the caller. */
ORDO_API void *mem_alloc(size_t size);
ORDO_API void *mem_calloc(size_t count, size_t size);
ORDO_API void *mem_realloc(void *p, size_t size);
/* Takes ownership of p (NULL is accepted). */
ORDO_API void mem_free(void *p);

/* Fault hooks for tests: after `countdown` more successful allocations, fail the next
 * `repeat` allocations (repeat < 0: fail forever). countdown < 0 disables. */
ORDO_API void mem_fault_set(int64_t countdown, int64_t repeat);
/* Number of live allocations made through mem_ (allocs minus frees). */
ORDO_API int64_t mem_live_count(void);

#endif
