/* The built-in key-value state machine (an implementation of struct sm_ops) and the
 * encoding of its arguments, shared by clients (encoders) and replicas (decoder).
 * Pure and deterministic; memory only through mem_. Wire format: docs/kv.md. */
#ifndef ORDO_ENGINE_SM_KV_H
#define ORDO_ENGINE_SM_KV_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"
#include "engine/sm.h"

/* Operation codes (struct msg_client_request.op). 0 is MSG_OP_NOOP. */
enum sm_kv_op {
    SM_KV_OP_PUT = 1,    /* set key to value (create or replace); result empty */
    SM_KV_OP_GET = 2,    /* read; result = value; NOT_FOUND if absent; a read (is_read) */
    SM_KV_OP_DELETE = 3, /* remove; result empty; NOT_FOUND (no change) if absent */
    SM_KV_OP_CAS = 4,    /* compare-and-swap, see below */
};

/* CAS semantics. Args: key, new value, expected value (or SM_KV_CAS_ABSENT).
 * - expected is a value (0..value_max bytes; empty is an ordinary, empty value):
 *     key present with exactly that value -> set to new value, MSG_STATUS_OK, empty result;
 *     key present with another value      -> MSG_STATUS_CAS_MISMATCH, result = current value;
 *     key absent                          -> MSG_STATUS_NOT_FOUND, empty result.
 * - expected_len == SM_KV_CAS_ABSENT (no expected bytes follow): create only if absent:
 *     key absent  -> set to new value, MSG_STATUS_OK;
 *     key present -> MSG_STATUS_CAS_MISMATCH, result = current value.
 * A mismatch never changes the state. */
#define SM_KV_CAS_ABSENT UINT32_MAX

#define SM_KV_KEY_MIN 1u
#define SM_KV_KEY_MAX MSG_KEY_LEN_MAX     /* 256 */
#define SM_KV_VALUE_MAX MSG_VALUE_LEN_MAX /* 4096: the default and the upper bound */

/* Largest encoded args of any op (a CAS with maximal key, value and expected). */
#define SM_KV_ARGS_MAX (2u + SM_KV_KEY_MAX + 4u + SM_KV_VALUE_MAX + 4u + SM_KV_VALUE_MAX)

struct sm_kv_config {
    uint32_t value_max;     /* 0 = SM_KV_VALUE_MAX; otherwise 1..SM_KV_VALUE_MAX */
    uint32_t capacity_hint; /* keys to size the table for at create (0 = small); it grows */
};

/* Creates an empty store. cfg may be NULL (defaults). On success *out is a struct sm the
 * caller owns (free with sm_destroy) with result_max = value_max. Returns 0, ORDO_ECONFIG
 * for a bad value_max, or -ENOMEM. */
ORDO_API int sm_kv_create(const struct sm_kv_config *cfg, struct sm **out);

/* Number of keys stored. `sm` must come from sm_kv_create (asserted). */
ORDO_API uint64_t sm_kv_count(const struct sm *sm);

/* Decoded arguments; pointers borrow the args buffer they were decoded from. */
struct sm_kv_args {
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value; /* PUT, CAS: the new value (may be empty) */
    uint32_t value_len;
    const uint8_t *expected; /* CAS: NULL with expected_len SM_KV_CAS_ABSENT */
    uint32_t expected_len;
};

/* Bounds-checked decoder of the args of `op` (PUT, GET, DELETE, CAS): every length is
 * checked against the bytes present, keys are SM_KV_KEY_MIN..SM_KV_KEY_MAX bytes, values
 * and expected values 0..value_max, and no byte may trail. Returns 0, ORDO_EBADTYPE for
 * another op, ORDO_ETRUNCATED, ORDO_ETOOBIG or ORDO_EMALFORMED. Never reads outside
 * args[0..args_len). */
ORDO_API int sm_kv_decode(uint8_t op, const uint8_t *args, uint32_t args_len, uint32_t value_max,
                          struct sm_kv_args *out);

/* Encoders (clients): write the args of one op into buf (cap bytes, caller-owned) and return
 * the number of bytes written (> 0), or ORDO_ETOOBIG when the key or a value is out of
 * bounds (against SM_KV_VALUE_MAX; a replica configured lower answers MSG_STATUS_INVALID)
 * or ORDO_ENOSPACE when buf is too small (nothing useful is written then). */
ORDO_API int sm_kv_encode_put(uint8_t *buf, size_t cap, const void *key, size_t key_len,
                              const void *value, size_t value_len);
ORDO_API int sm_kv_encode_get(uint8_t *buf, size_t cap, const void *key, size_t key_len);
ORDO_API int sm_kv_encode_del(uint8_t *buf, size_t cap, const void *key, size_t key_len);
/* expected == NULL with expected_len == SM_KV_CAS_ABSENT: create only if absent. */
ORDO_API int sm_kv_encode_cas(uint8_t *buf, size_t cap, const void *key, size_t key_len,
                              const void *expected, size_t expected_len, const void *value,
                              size_t value_len);

#endif
