/* Unit tests of the load generators' session id -> slot index (apps/load_ids.c): lookups
 * through the caller's own slot array, rebuilds after ids change, collisions, bounds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/load_ids.h"

/* Shaped like the generators' slots: the id sits inside a larger struct. */
struct test_slot {
    uint32_t before;
    uint64_t client_id;
    uint8_t after[13];
};

#define TEST_SLOTS 64u

static struct test_slot test_slots[TEST_SLOTS];
static struct load_ids test_t;

static void test_rebuild(void)
{
    load_ids_rebuild(&test_t, test_slots, sizeof(test_slots[0]),
                     offsetof(struct test_slot, client_id));
}

static void setup(void)
{
    memset(test_slots, 0, sizeof(test_slots));
    cr_assert_eq(load_ids_init(&test_t, TEST_SLOTS), 0);
}

static void teardown(void)
{
    load_ids_fini(&test_t);
}

TestSuite(load_ids, .init = setup, .fini = teardown);

Test(load_ids, finds_every_registered_slot)
{
    for (uint32_t i = 0; i < TEST_SLOTS; i++) {
        test_slots[i].client_id = 1000003ull * (i + 1);
    }
    test_rebuild();
    for (uint32_t i = 0; i < TEST_SLOTS; i++) {
        cr_assert_eq(load_ids_find(&test_t, 1000003ull * (i + 1)), i);
    }
    cr_assert_eq(load_ids_find(&test_t, 7), LOAD_IDS_NONE);
}

Test(load_ids, slots_without_a_session_are_not_indexed)
{
    test_slots[3].client_id = 42;
    test_rebuild();
    cr_assert_eq(load_ids_find(&test_t, 42), 3);
    cr_assert_eq(load_ids_find(&test_t, 0), LOAD_IDS_NONE, "id 0 means no session");
}

/* A slot that lost its session (id 0) or registered a new one is found by its new id only,
 * once rebuilt; before the rebuild the stale entry no longer matches the slot's id. */
Test(load_ids, follows_changed_ids_after_rebuild)
{
    test_slots[5].client_id = 500;
    test_rebuild();
    test_slots[5].client_id = 0;
    cr_assert_eq(load_ids_find(&test_t, 500), LOAD_IDS_NONE, "checked against the slot's id");
    test_slots[5].client_id = 501;
    test_rebuild();
    cr_assert_eq(load_ids_find(&test_t, 501), 5);
    cr_assert_eq(load_ids_find(&test_t, 500), LOAD_IDS_NONE);
}

/* A full set of slots fills the table to one half: ids that share buckets are found by
 * probing, and every miss ends at an empty entry (no endless probe, no false match). */
Test(load_ids, half_full_table_finds_all_and_misses_cleanly)
{
    for (uint32_t i = 0; i < TEST_SLOTS; i++) {
        test_slots[i].client_id = (uint64_t)(i + 1) << 40;
    }
    test_rebuild();
    for (uint32_t i = 0; i < TEST_SLOTS; i++) {
        cr_assert_eq(load_ids_find(&test_t, (uint64_t)(i + 1) << 40), i);
    }
    for (uint64_t id = 1; id < 100000; id++) {
        cr_assert_eq(load_ids_find(&test_t, id), LOAD_IDS_NONE, "id %lu", (unsigned long)id);
    }
}

Test(load_ids, find_before_any_rebuild_is_none)
{
    cr_assert_eq(load_ids_find(&test_t, 1), LOAD_IDS_NONE);
}

Test(load_ids, init_bounds_the_slot_count, .init = NULL, .fini = NULL)
{
    struct load_ids t;
    cr_assert_eq(load_ids_init(&t, 0), -EINVAL);
    cr_assert_eq(load_ids_init(&t, LOAD_IDS_SLOTS_MAX + 1), -EINVAL);
    cr_assert_eq(load_ids_init(&t, 1), 0);
    cr_assert_geq(t.mask + 1, 4u);
    load_ids_fini(&t);
    cr_assert_null(t.by_id);
    load_ids_fini(&t); /* twice is harmless */
}
