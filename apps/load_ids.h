/* Session id -> slot index for the load generators (ordo-cli load, ordo-load): each slot owns
 * one registered session, and a reply names its slot only by the session id it carries. */
#ifndef ORDO_APPS_LOAD_IDS_H
#define ORDO_APPS_LOAD_IDS_H

#include <stddef.h>
#include <stdint.h>

#define LOAD_IDS_NONE UINT32_MAX
#define LOAD_IDS_SLOTS_MAX (1u << 24)

/* Open addressing with linear probing over a power-of-two table at least twice the slot
 * count, so a probe always ends at an empty entry. Rebuilt whenever a slot's id changes
 * (registrations are rare; lookups happen per reply). */
struct load_ids {
    uint32_t *by_id; /* slot + 1, 0 empty; owned (mem_) */
    uint32_t mask;
    uint32_t slots;
    const uint8_t *base; /* the caller's slot array, borrowed since the last rebuild */
    size_t stride;       /* bytes per slot */
    size_t id_off;       /* offset of the slot's uint64_t session id (0: no session) */
};

/* Sizes the table for `slots` slots (1..LOAD_IDS_SLOTS_MAX). Returns 0, -EINVAL or -ENOMEM. */
int load_ids_init(struct load_ids *t, uint32_t slots);
void load_ids_fini(struct load_ids *t);

/* Indexes every slot of the array slot_array[0..slots) (stride bytes each, the session id
 * at id_off) whose id is not 0. The array is borrowed until the next rebuild or fini; call
 * again after any slot's id changed. */
void load_ids_rebuild(struct load_ids *t, const void *slot_array, size_t stride, size_t id_off);

/* The slot whose session id is id (as of its current value in the array), or
 * LOAD_IDS_NONE. */
uint32_t load_ids_find(const struct load_ids *t, uint64_t id);

#endif
