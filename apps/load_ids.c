/* Session id -> slot index of the load generators: a linear-probing table at most half
 * full, keyed by the id each slot holds in the caller's own slot array. */
#include "apps/load_ids.h"

#include <errno.h>
#include <string.h>

#include "engine/mem.h"

int load_ids_init(struct load_ids *t, uint32_t slots)
{
    memset(t, 0, sizeof(*t));
    if (slots == 0 || slots > LOAD_IDS_SLOTS_MAX) {
        return -EINVAL;
    }
    uint32_t n = 4;
    while (n < 2 * slots) {
        n *= 2; /* load <= 1/2: every probe meets an empty entry */
    }
    t->by_id = mem_calloc(n, sizeof(*t->by_id));
    if (t->by_id == NULL) {
        return -ENOMEM;
    }
    t->mask = n - 1;
    t->slots = slots;
    return 0;
}

void load_ids_fini(struct load_ids *t)
{
    mem_free(t->by_id);
    memset(t, 0, sizeof(*t));
}

static uint32_t load_ids_hash(const struct load_ids *t, uint64_t id)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & t->mask;
}

static uint64_t load_ids_at(const struct load_ids *t, uint32_t slot)
{
    uint64_t id;
    memcpy(&id, t->base + (size_t)slot * t->stride + t->id_off, sizeof(id));
    return id;
}

void load_ids_rebuild(struct load_ids *t, const void *slot_array, size_t stride, size_t id_off)
{
    t->base = slot_array;
    t->stride = stride;
    t->id_off = id_off;
    memset(t->by_id, 0, ((size_t)t->mask + 1) * sizeof(*t->by_id));
    for (uint32_t i = 0; i < t->slots; i++) {
        uint64_t id = load_ids_at(t, i);
        if (id == 0) {
            continue;
        }
        uint32_t h = load_ids_hash(t, id);
        while (t->by_id[h] != 0) {
            h = (h + 1) & t->mask;
        }
        t->by_id[h] = i + 1;
    }
}

uint32_t load_ids_find(const struct load_ids *t, uint64_t id)
{
    if (t->base == NULL) {
        return LOAD_IDS_NONE;
    }
    for (uint32_t h = load_ids_hash(t, id), n = 0; n <= t->mask && t->by_id[h] != 0; n++) {
        if (load_ids_at(t, t->by_id[h] - 1) == id) {
            return t->by_id[h] - 1;
        }
        h = (h + 1) & t->mask;
    }
    return LOAD_IDS_NONE;
}
