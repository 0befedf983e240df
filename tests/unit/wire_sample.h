/* Deterministic sample messages of every type for the wire tests, the fuzz corpus
 * generator and the documentation example; and a field-by-field comparison. Test code. */
#ifndef ORDO_TESTS_UNIT_WIRE_SAMPLE_H
#define ORDO_TESTS_UNIT_WIRE_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/msg.h"
#include "engine/wire.h"

/* Every message type, for loops over all of them. */
extern const uint8_t wire_sample_types[];
extern const size_t wire_sample_types_n;

/* A message and the storage its pointers refer to (valid while the sample is). */
struct wire_sample {
    struct msg m;
    struct msg_entry entries[MSG_ENTRIES_MAX];
    uint8_t data[WIRE_BODY_LEN_MAX];
};

/* Fills s with a valid message of `type`; `variant` seeds the field values and picks the
 * sizes of the variable parts (0: empty; larger variants: more and longer parts; variant
 * 7 of AppendEntries carries MSG_ENTRIES_MAX entries). Peer messages get sender 1..5. */
void wire_sample_fill(struct wire_sample *s, uint8_t type, uint32_t variant);

/* Name of the first field where a and b differ (variable parts compared by content), or
 * NULL when equal. */
const char *wire_sample_diff(const struct msg *a, const struct msg *b);

/* Encodes into buf a multi frame of type (MSG_CLIENT_MULTI_*) with n items: sample
 * requests (multi-request) or replies and redirects (multi-reply) of small variants, every
 * odd item MAC'd under wire_sample_key(seed 2). Returns the length or a wire error. */
int wire_sample_multi(uint8_t type, uint32_t n, uint8_t *buf, size_t cap);

/* Item i of wire_sample_multi's frame, for comparisons: fills s, returns its key or NULL. */
const struct wire_key *wire_sample_multi_item(struct wire_sample *s, uint8_t type, uint32_t i);

/* The key tests use as the cluster key. */
void wire_sample_key(struct wire_key *key, uint8_t seed);

#endif
